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
 * A larger right table (any join's, or join_broadcast_limit 0) makes
 * every join of the job a shuffle join, one join after another, in three
 * phases each after the load: "join_part" cuts every left and every
 * right shard into P partitions by the hash of the key (task k*P+p of
 * the left shards, then those of the right), "join" joins partition p of
 * left shard k with partition p of the right table (task p*S+k, so one
 * thread's tasks share a partition's table), and "join_gather" puts left
 * shard k's joined partitions back into its order. P is fixed by the
 * data and the limit, never by the workers, and the output is the
 * broadcast join's, row for row.
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

/* blob: u64 njoin, u64 nparts (0: broadcast); per join u64 nshards,
 * u64 keys_numeric; then per right shard u64 join, offset, end,
 * first_line */
#define JW 4
#define HDR 16

typedef struct {
    uint64_t njoin, nparts, nshards[16], numeric[16], first[16], total;
    const uint8_t *shard; /* total * JW words */
} jplan_t;

static int plan_decode(const stage_t *st, jplan_t *p)
{
    memset(p, 0, sizeof *p);
    if (!st->blob || st->blob_len < HDR) return MLOPS_EPARSE;
    memcpy(&p->njoin, st->blob, 8);
    memcpy(&p->nparts, st->blob + 8, 8);
    if (p->njoin == 0 || p->njoin > 16 || p->nparts > 4096 || st->blob_len < HDR + p->njoin * 16)
        return MLOPS_EPARSE;
    for (size_t i = 0; i < p->njoin; i++) {
        memcpy(&p->nshards[i], st->blob + HDR + i * 16, 8);
        memcpy(&p->numeric[i], st->blob + HDR + 8 + i * 16, 8);
        p->first[i] = p->total;
        p->total += p->nshards[i];
    }
    size_t at = HDR + p->njoin * 16;
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
    bw_u64(&w, 0); /* nparts, patched below */
    for (size_t i = 0; i < s->njoin; i++) {
        bw_u64(&w, 0); /* nshards, patched below */
        bw_u64(&w, 0);
    }
    uint64_t ns_of[16] = {0}, total = 0, biggest = 0;
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
        if (f->maplen > biggest) biggest = f->maplen;
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
    for (size_t i = 0; i < s->njoin; i++) memcpy(st->blob + HDR + i * 16, &ns_of[i], 8);
    /* partitions: about one broadcast limit's worth of right table each
     * (at least 8 MiB), 4..64 of them */
    uint64_t nparts = 0;
    if (biggest > s->join_broadcast_limit) {
        uint64_t per = s->join_broadcast_limit > (8u << 20) ? s->join_broadcast_limit : (8u << 20);
        nparts = (biggest + per - 1) / per;
        nparts = nparts < 4 ? 4 : nparts > 64 ? 64 : nparts;
        job_logf(j, "join: shuffle join in %llu partitions (a right table of %llu bytes is over "
                    "join_broadcast_limit %u)", (unsigned long long)nparts,
                 (unsigned long long)biggest, s->join_broadcast_limit);
    }
    memcpy(st->blob + 8, &nparts, 8);
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

/* shuffle phases: phase q >= 1 is step (q-1)%3 (part, join, gather) of
 * join (q-1)/3 */
enum { SH_PART = 0, SH_JOIN = 1, SH_GATHER = 2 };

static int add_key(task_args_t *out, const job_t *j, const stage_t *st, uint32_t phase, size_t t)
{
    char key[160];
    snprintf(key, sizeof key, "%s/%s.p%u/%zu", j->id, st->name, phase, t);
    return args_add_input(out, key);
}

static int shuffle_args(job_t *j, stage_t *st, const jplan_t *p, size_t t, task_args_t *out,
                        char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    uint32_t q = st->phase, step = (q - 1) % 3;
    size_t i = (q - 1) / 3, P = (size_t)p->nparts;
    stage_t *in = stage_input_of(j, st);
    size_t S = in ? in->ntasks : 0;
    if (i >= p->njoin || !in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
    int rc;
    if (step == SH_PART) {
        if (t >= (S + p->nshards[i]) * P)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
        if (t < S * P)
            rc = i == 0 ? args_add_input(out, in->tasks[t / P].output_key)
                        : add_key(out, j, st, q - 1, t / P);
        else
            rc = add_key(out, j, st, 0, p->first[i] + (t - S * P) / P);
        if (rc) return rc;
        Mlops__Tasks__JoinPartArgs a = MLOPS__TASKS__JOIN_PART_ARGS__INIT;
        a.on = s->join[i].on;
        a.keys_numeric = p->numeric[i] != 0;
        a.parts = (uint32_t)P;
        a.part = (uint32_t)(t % P);
        return args_pack(out, &a.base);
    }
    if (step == SH_JOIN) {
        size_t part = t / (S ? S : 1), k = t % (S ? S : 1);
        if (t >= S * P) return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
        rc = add_key(out, j, st, q - 1, k * P + part);
        for (size_t r = 0; !rc && r < p->nshards[i]; r++)
            rc = add_key(out, j, st, q - 1, S * P + r * P + part);
        if (rc) return rc;
        const stage_csvfile_t *f = stage_ingest_join_file(j, i, err, errlen);
        if (!f) return MLOPS_EIO;
        Mlops__Tasks__IngestColumn *cv = NULL, **cp = NULL;
        size_t nc = 0;
        rc = table_columns(s, i, 0, &cv, &cp, &nc);
        Mlops__Tasks__JoinTable tv = MLOPS__TASKS__JOIN_TABLE__INIT, *tp = &tv;
        tv.file_name = (char *)f->name;
        tv.on = s->join[i].on;
        tv.n_columns = nc;
        tv.columns = cp;
        tv.how = (uint32_t)s->join[i].how;
        tv.many_to_one = s->join[i].validate == MLOPS_JOIN_MANY_TO_ONE;
        tv.keys_numeric = p->numeric[i] != 0;
        tv.shards = (uint32_t)p->nshards[i];
        Mlops__Tasks__JoinArgs a = MLOPS__TASKS__JOIN_ARGS__INIT;
        a.n_tables = 1;
        a.tables = &tp;
        if (!rc) rc = args_pack(out, &a.base);
        free(cv);
        free(cp);
        return rc;
    }
    if (t >= S) return mlops_seterr(err, errlen, MLOPS_EINVAL, "join plan is damaged");
    rc = 0;
    for (size_t part = 0; !rc && part < P; part++) rc = add_key(out, j, st, q - 1, part * S + t);
    if (rc) return rc;
    uint8_t *req = NULL;
    size_t reql = 0;
    int final = i + 1 == p->njoin;
    if (final && (rc = stage_clean_first_request(j, &req, &reql)) != 0) return rc;
    Mlops__Tasks__JoinGatherArgs a = MLOPS__TASKS__JOIN_GATHER_ARGS__INIT;
    a.final = final;
    a.dropna = s->clean.dropna != 0;
    a.quantile_request.data = req;
    a.quantile_request.len = reql;
    rc = args_pack(out, &a.base);
    free(req);
    return rc;
}

static int join_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    jplan_t p;
    if (plan_decode(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "join plan is damaged");
    if (st->phase == 0) return load_args(j, &p, t, out, err, errlen);
    if (p.nparts) return shuffle_args(j, st, &p, t, out, err, errlen);
    return probe_args(j, st, &p, t, out, err, errlen);
}

/* the next phase: n tasks of kind, outputs intermediate (".pQ/") or final */
static int next_phase(job_t *j, stage_t *st, size_t n, const char *kind, int final)
{
    st->phase++;
    int rc = stage_set_tasks(st, n, kind);
    if (rc) return rc;
    char sfx[16];
    snprintf(sfx, sizeof sfx, ".p%u/", st->phase);
    stage_set_output_keys(j, st, final ? "/" : sfx);
    return 1;
}

/* the input's files, for messages: "ev.csv" or "ev-1.csv, ..." */
static const char *left_name(const job_t *j) { return job_file_name(j, "input"); }

/* pandas refuses to merge a number key with a text key: join i's left
 * keys (entry `at` of each task's left_numeric) against its right keys */
static int check_types(job_t *j, const stage_t *st, const jplan_t *p, size_t i, size_t at,
                       char *err, size_t errlen)
{
    int left_num = 1;
    for (size_t t = 0; t < st->ntasks; t++) {
        Mlops__Tasks__JoinResult *r =
            mlops__tasks__join_result__unpack(NULL, st->tasks[t].result_len, st->tasks[t].result);
        if (!r || r->n_left_numeric <= at) {
            if (r) mlops__tasks__join_result__free_unpacked(r, NULL);
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "join: damaged result from task %zu", t);
        }
        left_num &= r->left_numeric[at];
        mlops__tasks__join_result__free_unpacked(r, NULL);
    }
    if (left_num == (p->numeric[i] != 0)) return 0;
    char role[16];
    snprintf(role, sizeof role, "join.%zu", i);
    const char *rn = job_file_name(j, role), *ln = left_name(j);
    return mlops_seterr(err, errlen, MLOPS_EINVAL,
                        "join[%zu]: key '%s' is numeric in %s but not in %s (a value does not "
                        "parse as a number); pandas refuses to merge them",
                        i, j->spec->join[i].on, left_num ? ln : rn, left_num ? rn : ln);
}

static int join_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    jplan_t p;
    if (plan_decode(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "join plan is damaged");
    stage_t *in = stage_input_of(j, st);
    size_t S = in->ntasks, P = (size_t)p.nparts;
    int rc;
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
        for (size_t i = 0; i < p.njoin; i++) memcpy(st->blob + HDR + 8 + i * 16, &num[i], 8);
        job_set_metric(j, "rows_right", stage_sum_metric(st, "rows"));
        if (P) return next_phase(j, st, (S + p.nshards[0]) * P, "join_part", 0);
        return next_phase(j, st, S, "join", 1);
    }
    if (P) {
        uint32_t step = (st->phase - 1) % 3;
        size_t i = (st->phase - 1) / 3;
        if (step == SH_PART) return next_phase(j, st, S * P, "join", 0);
        if (step == SH_JOIN) {
            if ((rc = check_types(j, st, &p, i, 0, err, errlen)) != 0) return rc;
            return next_phase(j, st, S, "join_gather", i + 1 == p.njoin);
        }
        if (i + 1 < p.njoin) return next_phase(j, st, (S + p.nshards[i + 1]) * P, "join_part", 0);
    } else {
        for (size_t i = 0; i < p.njoin; i++)
            if ((rc = check_types(j, st, &p, i, i, err, errlen)) != 0) return rc;
    }
    job_set_metric(j, "rows_joined", stage_sum_metric(st, "rows"));
    return stage_merge_labels(j, st, err, errlen);
}

/* a lost right shard cannot be re-made from phase 1: start over */
static int join_restart(job_t *j, stage_t *st, char *err, size_t errlen)
{
    return join_start(j, st, err, errlen);
}

const stage_ops_t stage_join = {"join", join_start, join_args, join_done, 2, join_restart, 0, NULL, NULL};
