/* planner.c: the stages of a job, in pipeline order, from its spec
 * (planner_build), and the helpers the stage entries share. Each stage
 * entry lives in its own file, stage_<name>.c (see stages.h); the
 * matching task kinds run on workers (worker/kinds.c). */
#include <czmq.h>
#include "err.h"
#include "jobmodel.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *planner_spec_name(const mlops_jobspec_t *spec) { return spec && spec->name ? spec->name : "job"; }

const char *planner_output_kind(const job_t *j, const stage_t *st)
{
    if (!strcmp(st->name, "hash") || !strcmp(st->name, "split")) return "features";
    if (j->spec && j->spec->input.format == MLOPS_INPUT_IDX &&
        (!strcmp(st->name, "ingest") || !strcmp(st->name, "scale")))
        return "features";
    return "frame";
}

void planner_job_free(job_t *j) { stage_ingest_job_free(j); }

int planner_stage_droppable(const job_t *j, const stage_t *p)
{
    static const char *chain[] = {"clean", "scale", "hash", "split"};
    if (!j->spec || j->spec->keep_stages || j->spec->input.format != MLOPS_INPUT_CSV) return 0;
    if (p->ops == &stage_ingest) return 1;
    for (size_t k = 0; k < sizeof chain / sizeof *chain; k++)
        if (!strcmp(p->name, chain[k])) return 1;
    return 0;
}

/* The readers of the raw frame (clean's, else ingest's) besides the
 * chain: profile and promote pair it with the split shard, knn's
 * recommend mode reads its user and item columns. */
static int reads_raw(const stage_t *r)
{
    return !strcmp(r->name, "profile") || !strcmp(r->name, "promote") || !strcmp(r->name, "knn");
}

int planner_stage_reads(job_t *j, const stage_t *r, const stage_t *p)
{
    static const char *known[] = {"ingest", "clean", "scale", "hash", "split", "cv", "train",
                                  "evaluate", "promote", "profile", "knn", "predict", "drift"};
    size_t k = 0;
    while (k < sizeof known / sizeof *known && strcmp(r->name, known[k])) k++;
    if (k == sizeof known / sizeof *known) return 1;
    if (stage_input_of(j, r) == p) return 1;
    if (reads_raw(r)) {
        const stage_t *raw = job_stage(j, "clean");
        if (!raw) raw = job_stage(j, "ingest");
        if (raw == p) return 1;
    }
    return 0;
}

/* The row chain: each of its stages reads the shards of the one before
 * and what the stages before it set for the whole job (the class list,
 * scale's moments, split's row counts). */
static int in_chain(const stage_t *p)
{
    static const char *chain[] = {"ingest", "join", "clean", "scale", "hash", "split"};
    for (size_t k = 0; k < sizeof chain / sizeof *chain; k++)
        if (!strcmp(p->name, chain[k])) return 1;
    return 0;
}

/* What each stage reads besides its own blob, from an audit of its
 * start, task_args and phase_done (and the task kinds' arguments):
 *   evaluate  split's shards (or the chain's last), train's model
 *   profile   split's shards, the raw frame; its count phase also
 *             train's model (planner_phase_ready), its decile rounds not
 *   promote   split's shards, the raw frame, the class list; the champion
 *             was pinned when the job started
 *   knn       classify: the chain's last shards, split's row counts,
 *             scale's moments, the class list; recommend: the raw frame
 *             (clean's, else ingest's) only
 *   predict, drift: the chain's last shards; the pinned version
 * train reads the chain and cv (which rewrites the train section), cv
 * the chain, and the chain stages each other: they keep the default. */
int planner_stage_needs(job_t *j, const stage_t *r, const stage_t *p)
{
    if (p >= r) return 0;
    if (!strcmp(r->name, "knn") && j->spec && j->spec->knn.mode == MLOPS_KNN_RECOMMEND) {
        const stage_t *raw = job_stage(j, "clean");
        if (!raw) raw = job_stage(j, "ingest");
        return raw && p <= raw;
    }
    if (!strcmp(r->name, "knn") || !strcmp(r->name, "promote") || !strcmp(r->name, "predict") ||
        !strcmp(r->name, "drift") || !strcmp(r->name, "profile"))
        return in_chain(p);
    if (!strcmp(r->name, "evaluate")) return in_chain(p) || !strcmp(p->name, "train");
    return 1;
}

int planner_phase_ready(job_t *j, const stage_t *st)
{
    if (!strcmp(st->name, "profile") && !strcmp(st->kind, "profile_count")) {
        const stage_t *tr = job_stage(j, "train");
        return !tr || tr->state == ST_DONE;
    }
    return 1;
}

double stage_sum_metric(const stage_t *st, const char *name)
{
    double sum = 0, v;
    for (size_t t = 0; t < st->ntasks; t++)
        if (task_metric(&st->tasks[t], name, &v)) sum += v;
    return sum;
}

uint64_t stage_total_rows(const stage_t *st)
{
    uint64_t n = 0;
    for (size_t t = 0; t < st->ntasks; t++) n += st->tasks[t].rows;
    return n;
}

int stage_fused_features(const job_t *j)
{
    const mlops_jobspec_t *s = j->spec;
    if (!s || s->input.format != MLOPS_INPUT_CSV || !s->has_scale || !s->has_split || s->keep_stages ||
        !s->columns.n_numeric)
        return 0;
    int hash = 0;
    for (size_t i = 0; i < j->nstages; i++) hash |= !strcmp(j->stages[i].name, "hash");
    return hash;
}

stage_t *stage_input_of(job_t *j, const stage_t *st)
{
    static const char *chain[] = {"ingest", "join", "clean", "scale", "hash", "split"};
    int fused = stage_fused_features(j);
    for (size_t s = (size_t)(st - j->stages); s-- > 0;) {
        /* fused: scale and hash write nothing, split reads their input */
        if (fused && (!strcmp(j->stages[s].name, "scale") || !strcmp(j->stages[s].name, "hash"))) continue;
        for (size_t k = 0; k < sizeof chain / sizeof *chain; k++)
            if (!strcmp(j->stages[s].name, chain[k])) return &j->stages[s];
    }
    return NULL;
}

int args_pack(task_args_t *a, const ProtobufCMessage *m)
{
    if (a->inputs_only) return 0; /* a cv task's arguments are megabytes */
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return MLOPS_ENOMEM;
    protobuf_c_message_pack(m, b);
    free(a->args);
    a->args = b;
    a->args_len = n;
    return 0;
}

int args_add_input(task_args_t *a, const char *key)
{
    char **in = realloc(a->inputs, (a->ninputs + 1) * sizeof *in);
    if (!in) return MLOPS_ENOMEM;
    a->inputs = in;
    in[a->ninputs] = strdup(key ? key : "");
    if (!in[a->ninputs]) return MLOPS_ENOMEM;
    a->ninputs++;
    return 0;
}

/* label sets: ingest and clean_filter tasks return the distinct labels
 * of their shard (IngestResult, CleanFilterResult); the union is sorted
 * as numpy.unique sorts the label array pandas reads: numerically when
 * every value is a number, else by code point (UTF-8 byte order). */
static int num_cmp(const void *a, const void *b)
{
    double x = strtod(*(char *const *)a, NULL), y = strtod(*(char *const *)b, NULL);
    return x < y ? -1 : x > y;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_number(const char *s)
{
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return *end == 0;
}

int stage_merge_labels(job_t *j, const stage_t *st, char *err, size_t errlen)
{
    if (!mlops_jobspec_has_label(j->spec) || j->spec->input.format != MLOPS_INPUT_CSV) return 0;
    zhashx_t *seen = zhashx_new();
    char **labels = NULL;
    size_t n = 0;
    int rc = 0;
    int from_ingest = !strcmp(st->kind, "ingest"), from_join = !strncmp(st->kind, "join", 4);
    for (size_t t = 0; t < st->ntasks && !rc; t++) {
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__IngestResult *ir = NULL;
        Mlops__Tasks__CleanFilterResult *cr = NULL;
        Mlops__Tasks__JoinResult *jr = NULL;
        char **got = NULL;
        size_t k = 0;
        if (from_join) {
            if ((jr = mlops__tasks__join_result__unpack(NULL, tk->result_len, tk->result))) {
                got = jr->labels;
                k = jr->n_labels;
            } else {
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "damaged label set from %s task %zu",
                                  st->name, t);
                break;
            }
        } else if (from_ingest &&
            (ir = mlops__tasks__ingest_result__unpack(NULL, tk->result_len, tk->result))) {
            got = ir->labels;
            k = ir->n_labels;
        } else if (!from_ingest && (cr = mlops__tasks__clean_filter_result__unpack(
                                        NULL, tk->result_len, tk->result))) {
            got = cr->labels;
            k = cr->n_labels;
        } else {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "damaged label set from %s task %zu",
                              st->name, t);
            break;
        }
        for (size_t i = 0; i < k; i++) {
            if (zhashx_lookup(seen, got[i])) continue;
            char *l = strdup(got[i]);
            if (!l) {
                rc = MLOPS_ENOMEM;
                break;
            }
            if (n >= 10000) {
                free(l);
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "label column '%s' has more than 10000 distinct values",
                                  j->spec->columns.label);
                break;
            }
            zhashx_insert(seen, l, (void *)1);
            char **a = realloc(labels, (n + 1) * sizeof *a);
            if (!a) { free(l); rc = MLOPS_ENOMEM; break; }
            labels = a;
            labels[n++] = l;
        }
        if (ir) mlops__tasks__ingest_result__free_unpacked(ir, NULL);
        if (cr) mlops__tasks__clean_filter_result__free_unpacked(cr, NULL);
        if (jr) mlops__tasks__join_result__free_unpacked(jr, NULL);
    }
    zhashx_destroy(&seen);
    if (rc) {
        for (size_t i = 0; i < n; i++) free(labels[i]);
        free(labels);
        return rc;
    }
    /* columns.classes: a value outside the declared list is bad data */
    const mlops_jobspec_t *sp = j->spec;
    for (size_t i = 0; sp->columns.n_classes && i < n; i++) {
        size_t c = 0;
        while (c < sp->columns.n_classes && strcmp(sp->columns.classes[c], labels[i])) c++;
        if (c < sp->columns.n_classes) continue;
        char list[512] = "";
        for (size_t k = 0, o = 0; k < sp->columns.n_classes && o < sizeof list; k++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "", sp->columns.classes[k]);
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                          "%s: column '%s': label value '%s' is not one of columns.classes (%s)",
                          j->nfiles ? j->files[0].name : "input", sp->columns.label, labels[i], list);
        for (size_t k = 0; k < n; k++) free(labels[k]);
        free(labels);
        return rc;
    }
    int numeric = 1;
    for (size_t i = 0; i < n; i++) numeric &= is_number(labels[i]);
    /* no label at all (every shard empty) leaves labels NULL, which
     * qsort must not get even for 0 elements */
    if (n) qsort(labels, n, sizeof *labels, numeric ? num_cmp : str_cmp);
    job_set_classes(j, labels, n);
    return 0;
}

static int add_stage(job_t *j, const stage_ops_t *ops)
{
    stage_t *a = realloc(j->stages, (j->nstages + 1) * sizeof *a);
    if (!a) return MLOPS_ENOMEM;
    j->stages = a;
    stage_t *st = &a[j->nstages++];
    memset(st, 0, sizeof *st);
    st->ops = ops;
    snprintf(st->name, sizeof st->name, "%s", ops->name);
    return 0;
}

int planner_build(job_t *j, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    if (!s) return mlops_seterr(err, errlen, MLOPS_EINVAL, "job has no spec");
    if (j->nstages) return 0;
    if (s->has_noop) return add_stage(j, &stage_noop);
    int rc;
    if (s->input.format == MLOPS_INPUT_CSV) rc = add_stage(j, &stage_ingest);
    else if (s->input.format == MLOPS_INPUT_IDX) rc = add_stage(j, &stage_ingest_idx);
    else return mlops_seterr(err, errlen, MLOPS_EINVAL, "job has no input");
    if (!rc && s->njoin && s->input.format == MLOPS_INPUT_CSV) rc = add_stage(j, &stage_join);
    if (!rc && s->has_clean) rc = add_stage(j, &stage_clean);
    if (!rc && s->has_scale) rc = add_stage(j, &stage_scale);
    /* model stages read feature shards: a CSV job without a hash section
     * still gets the stage that builds them (numeric columns only) */
    int needs_features = s->has_split || s->has_train || (s->has_knn && s->knn.mode == MLOPS_KNN_CLASSIFY);
    if (!rc && (s->has_hash || (needs_features && s->input.format == MLOPS_INPUT_CSV)))
        rc = add_stage(j, &stage_hash);
    if (!rc && s->has_split) rc = add_stage(j, &stage_split);
    if (!rc && (s->has_cv || s->has_search)) rc = add_stage(j, &stage_cv);
    if (!rc && s->has_train)
        rc = add_stage(j, s->train.solver == MLOPS_SOLVER_LBFGS ? &stage_lbfgs : &stage_train);
    if (!rc && s->has_evaluate) rc = add_stage(j, &stage_evaluate);
    if (!rc && s->has_promote) rc = add_stage(j, &stage_promote);
    /* last of the model stages: a journal written before it existed
     * keeps its stage indexes */
    if (!rc && s->has_train && s->input.format == MLOPS_INPUT_CSV) rc = add_stage(j, &stage_profile);
    if (!rc && s->has_knn) rc = add_stage(j, &stage_knn);
    if (!rc && s->has_predict) rc = add_stage(j, &stage_predict);
    if (!rc && s->has_drift) rc = add_stage(j, &stage_drift);
    return rc;
}
