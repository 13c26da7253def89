/* stage_join.c: the join stage, between ingest and clean: the input's
 * rows merged with each join's right table as pandas' merge does (the
 * semantics are in common/kernels/join.h).
 *
 * A right table up to join_broadcast_limit bytes is broadcast: phase 0
 * ("join_load") cuts it at record boundaries into shards of shard_rows
 * records, as ingest cuts the input, and each task parses one into a
 * frame of the key and the appended columns, which stays in the worker
 * stores; phase 1 ("join"), one task per ingest shard, reads its left
 * shard and every right shard (fetched from the stores once per worker
 * thread and job, and built into a hash table there) and writes the
 * joined shard. The joins run in file order inside each task.
 *
 * The key types are checked between the phases as pandas checks them: a
 * key that is numeric on one side only fails the job. The join tasks
 * answer clean's first quantile round, as ingest does without joins.
 * Args and results: JoinLoad*, Join* (proto/tasks.proto). */
#include "bytes.h"
#include "csv.h"
#include "err.h"
#include "jobmodel.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* blob: u64 njoin; per join u64 nshards, u64 keys_numeric; then per
 * right shard u64 join, offset, end, first_line */
#define JW 4

typedef struct {
    uint64_t njoin, nshards[16], numeric[16], total;
    const uint8_t *shard; /* total * JW words */
} jplan_t;

static int plan_decode(const stage_t *st, jplan_t *p)
{
    memset(p, 0, sizeof *p);
    if (!st->blob || st->blob_len < 8) return MLOPS_EPARSE;
    memcpy(&p->njoin, st->blob, 8);
    if (p->njoin == 0 || p->njoin > 16 || st->blob_len < 8 + p->njoin * 16) return MLOPS_EPARSE;
    for (size_t i = 0; i < p->njoin; i++) {
        memcpy(&p->nshards[i], st->blob + 8 + i * 16, 8);
        memcpy(&p->numeric[i], st->blob + 16 + i * 16, 8);
        p->total += p->nshards[i];
    }
    size_t at = 8 + p->njoin * 16;
    if (st->blob_len != at + p->total * JW * 8) return MLOPS_EPARSE;
    p->shard = st->blob + at;
    return 0;
}

stage_t *stage_join_first_round(job_t *j)
{
    stage_t *js = job_stage(j, "join");
    return js ? js : job_stage(j, "ingest");
}

/* the type an appended column has downstream: a listed numeric column
 * is a number, anything else text */
static mlk_coltype col_type(const mlops_jobspec_t *s, const char *name)
{
    for (size_t i = 0; i < s->columns.n_numeric; i++)
        if (!strcmp(s->columns.numeric[i], name)) return MLK_F64;
    return MLK_STR;
}

static int in_header(const stage_csvfile_t *f, const char *name)
{
    for (size_t c = 0; c < f->nhdr; c++)
        if (!strcmp(f->hdr[c], name)) return 1;
    return 0;
}

static int join_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    if (!s->njoin || s->njoin > 16) return mlops_seterr(err, errlen, MLOPS_EINVAL, "join: no joins");
    bw_t w;
    bw_init(&w);
    bw_u64(&w, s->njoin);
    for (size_t i = 0; i < s->njoin; i++) {
        bw_u64(&w, 0); /* nshards, patched below */
        bw_u64(&w, 0);
    }
    uint64_t ns_of[16] = {0}, total = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < s->njoin; i++) {
        const mlops_jobspec_join_t *jn = &s->join[i];
        const stage_csvfile_t *f = stage_ingest_join_file(j, i, err, errlen);
        if (!f) {
            rc = MLOPS_EIO;
            break;
        }
        if (!in_header(f, jn->on)) {
            rc = mlops_seterr(err, errlen, MLOPS_ENOTFOUND,
                              "%s: join key '%s' (join[%zu].on) is not in the header", f->name,
                              jn->on, i);
            break;
        }
        for (size_t c = 0; !rc && c < jn->ncolumns; c++)
            if (!in_header(f, jn->columns[c]))
                rc = mlops_seterr(err, errlen, MLOPS_ENOTFOUND,
                                  "%s: column '%s' (join[%zu].columns) is not in the header",
                                  f->name, jn->columns[c], i);
        if (rc) break;
        if (f->maplen > s->join_broadcast_limit) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                              "%s: %zu bytes, over join_broadcast_limit (%u); only broadcast "
                              "joins are built so far: raise the limit",
                              f->name, f->maplen, s->join_broadcast_limit);
            break;
        }
        uint64_t *offs = NULL, rows = 0;
        long *lines = NULL;
        size_t ns = 0;
        rc = mlk_csv_split(f->map ? f->map : "", f->maplen, f->data_start, s->shard_rows, &offs,
                           &lines, &ns, &rows);
        if (rc) {
            rc = mlops_seterr(err, errlen, rc, "%s: cannot split into shards: %s", f->name,
                              mlops_strerror(rc));
        } else if (rows == 0 || ns == 0) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                              "%s: the right table of join[%zu] has no rows", f->name, i);
        }
        for (size_t k = 0; !rc && k < ns; k++) {
            bw_u64(&w, i);
            bw_u64(&w, offs[k]);
            bw_u64(&w, k + 1 < ns ? offs[k + 1] : f->maplen);
            bw_u64(&w, (uint64_t)lines[k]);
        }
        ns_of[i] = ns;
        total += ns;
        free(offs);
        free(lines);
    }
    if (rc) {
        bw_free(&w);
        return rc;
    }
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    for (size_t i = 0; i < s->njoin; i++) memcpy(st->blob + 8 + i * 16, &ns_of[i], 8);
    st->phase = 0;
    if ((rc = stage_set_tasks(st, total, "join_load")) != 0) return rc;
    stage_set_output_keys(j, st, ".p0/");
    return 0;
}

/* the columns of join i's tasks: the key first (phase 0 only), then the
 * appended ones; names borrowed from the spec */
static int table_columns(const mlops_jobspec_t *s, size_t i, int with_key,
                         Mlops__Tasks__IngestColumn **cv, Mlops__Tasks__IngestColumn ***cp,
                         size_t *n)
{
    const mlops_jobspec_join_t *jn = &s->join[i];
    *n = jn->ncolumns + (with_key ? 1 : 0);
    *cv = calloc(*n, sizeof **cv);
    *cp = calloc(*n, sizeof **cp);
    if (!*cv || !*cp) return MLOPS_ENOMEM;
    for (size_t c = 0; c < *n; c++) {
        mlops__tasks__ingest_column__init(&(*cv)[c]);
        const char *name = with_key ? (c ? jn->columns[c - 1] : jn->on) : jn->columns[c];
        (*cv)[c].name = (char *)name;
        (*cv)[c].type = (uint32_t)(with_key && c == 0 ? MLK_STR : col_type(s, name));
        (*cp)[c] = &(*cv)[c];
    }
    return 0;
}

static int load_args(job_t *j, const jplan_t *p, size_t t, task_args_t *out, char *err,
                     size_t errlen)
{
    uint64_t e[JW];
    if (t >= p->total) return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
    memcpy(e, p->shard + t * JW * 8, sizeof e);
    if (e[0] >= p->njoin) return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
    const stage_csvfile_t *f = stage_ingest_join_file(j, e[0], err, errlen);
    if (!f) return MLOPS_EIO;
    if (e[1] > e[2] || e[2] > f->maplen)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
    Mlops__Tasks__IngestColumn *cv = NULL, **cp = NULL;
    size_t nc = 0;
    int rc = table_columns(j->spec, e[0], 1, &cv, &cp, &nc);
    if (!rc) {
        Mlops__Tasks__JoinLoadArgs a = MLOPS__TASKS__JOIN_LOAD_ARGS__INIT;
        a.file_name = (char *)f->name;
        a.first_line = e[3];
        a.n_header = f->nhdr;
        a.header = f->hdr;
        a.n_columns = nc;
        a.columns = cp;
        a.data.data = (uint8_t *)f->map + e[1];
        a.data.len = (size_t)(e[2] - e[1]);
        rc = args_pack(out, &a.base);
    }
    free(cv);
    free(cp);
    return rc;
}

static int probe_args(job_t *j, stage_t *st, const jplan_t *p, size_t t, task_args_t *out,
                      char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    stage_t *in = stage_input_of(j, st);
    if (!in || t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
    int rc = args_add_input(out, in->tasks[t].output_key);
    char key[160];
    for (size_t k = 0; !rc && k < p->total; k++) {
        snprintf(key, sizeof key, "%s/%s.p0/%zu", j->id, st->name, k);
        rc = args_add_input(out, key);
    }
    if (rc) return rc;
    Mlops__Tasks__JoinTable tv[16], *tp[16];
    Mlops__Tasks__IngestColumn *cv[16] = {0}, **cp[16] = {0};
    uint8_t *req = NULL;
    size_t reql = 0;
    for (size_t i = 0; !rc && i < p->njoin; i++) {
        const stage_csvfile_t *f = stage_ingest_join_file(j, i, err, errlen);
        if (!f) {
            rc = MLOPS_EIO;
            break;
        }
        mlops__tasks__join_table__init(&tv[i]);
        size_t nc = 0;
        rc = table_columns(s, i, 0, &cv[i], &cp[i], &nc);
        tv[i].file_name = (char *)f->name;
        tv[i].on = s->join[i].on;
        tv[i].n_columns = nc;
        tv[i].columns = cp[i];
        tv[i].how = (uint32_t)s->join[i].how;
        tv[i].many_to_one = s->join[i].validate == MLOPS_JOIN_MANY_TO_ONE;
        tv[i].keys_numeric = p->numeric[i] != 0;
        tv[i].shards = (uint32_t)p->nshards[i];
        tp[i] = &tv[i];
    }
    if (!rc) rc = stage_clean_first_request(j, &req, &reql);
    if (!rc) {
        Mlops__Tasks__JoinArgs a = MLOPS__TASKS__JOIN_ARGS__INIT;
        a.n_tables = p->njoin;
        a.tables = tp;
        a.dropna = s->clean.dropna != 0;
        a.quantile_request.data = req;
        a.quantile_request.len = reql;
        rc = args_pack(out, &a.base);
    }
    free(req);
    for (size_t i = 0; i < 16; i++) {
        free(cv[i]);
        free(cp[i]);
    }
    return rc;
}

static int join_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    jplan_t p;
    if (plan_decode(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "join plan is damaged");
    if (st->phase == 0) return load_args(j, &p, t, out, err, errlen);
    return probe_args(j, st, &p, t, out, err, errlen);
}

/* the input's files, for messages: "ev.csv" or "ev-1.csv, ..." */
static const char *left_name(const job_t *j) { return job_file_name(j, "input"); }

static int join_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    jplan_t p;
    if (plan_decode(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "join plan is damaged");
    if (st->phase == 0) {
        /* a key column is numeric when every shard's keys are */
        uint64_t num[16];
        for (size_t i = 0; i < p.njoin; i++) num[i] = 1;
        for (size_t t = 0; t < st->ntasks; t++) {
            uint64_t e0;
            memcpy(&e0, p.shard + t * JW * 8, 8);
            Mlops__Tasks__JoinLoadResult *r =
                mlops__tasks__join_load_result__unpack(NULL, st->tasks[t].result_len, st->tasks[t].result);
            if (!r || e0 >= p.njoin) {
                if (r) mlops__tasks__join_load_result__free_unpacked(r, NULL);
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "join: damaged result from task %zu", t);
            }
            if (!r->keys_numeric) num[e0] = 0;
            mlops__tasks__join_load_result__free_unpacked(r, NULL);
        }
        for (size_t i = 0; i < p.njoin; i++) memcpy(st->blob + 16 + i * 16, &num[i], 8);
        job_set_metric(j, "rows_right", stage_sum_metric(st, "rows"));
        stage_t *in = stage_input_of(j, st);
        st->phase = 1;
        int rc = stage_set_tasks(st, in->ntasks, "join");
        if (rc) return rc;
        stage_set_output_keys(j, st, "/");
        return 1;
    }
    /* pandas refuses to merge a number key with a text key */
    for (size_t i = 0; i < p.njoin; i++) {
        int left_num = 1;
        for (size_t t = 0; t < st->ntasks; t++) {
            Mlops__Tasks__JoinResult *r =
                mlops__tasks__join_result__unpack(NULL, st->tasks[t].result_len, st->tasks[t].result);
            if (!r || r->n_left_numeric != p.njoin) {
                if (r) mlops__tasks__join_result__free_unpacked(r, NULL);
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "join: damaged result from task %zu", t);
            }
            left_num &= r->left_numeric[i];
            mlops__tasks__join_result__free_unpacked(r, NULL);
        }
        if (left_num != (p.numeric[i] != 0)) {
            char role[16];
            snprintf(role, sizeof role, "join.%zu", i);
            const char *rn = job_file_name(j, role);
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "join[%zu]: key '%s' is numeric in %s but not in %s (a value "
                                "does not parse as a number); pandas refuses to merge them",
                                i, s->join[i].on, left_num ? left_name(j) : rn,
                                left_num ? rn : left_name(j));
        }
    }
    job_set_metric(j, "rows_joined", stage_sum_metric(st, "rows"));
    return stage_merge_labels(j, st, err, errlen);
}

/* a lost right shard cannot be re-made from phase 1: start over */
static int join_restart(job_t *j, stage_t *st, char *err, size_t errlen)
{
    return join_start(j, st, err, errlen);
}

const stage_ops_t stage_join = {"join", join_start, join_args, join_done, 2, join_restart};
