/* stage_clean.c: the clean stage (CSV frames). With iqr_k it runs
 * quantile rounds ("clean_qround": every shard answers the round's
 * request with histogram counts or values, merged here in shard order)
 * until Q1 and Q3 of every numeric column are exact, then
 * "clean_filter" (dropna + bounds). The first round is answered by the
 * ingest tasks (stage_clean_first_request), as the shard is parsed and
 * in memory there, or by the join tasks when the job has joins; it also
 * asks each shard for a window of its values around its own quartiles,
 * which proves the exact quartiles when the shards are alike, so that
 * usually no clean_qround phase is left and the filter follows ingest.
 * The filter tasks return their shard's labels.
 * Args and results: CleanQround*, CleanFilter* (proto/tasks.proto). */
#include "bytes.h"
#include "clean.h"
#include "err.h"
#include "jobmodel.h"
#include "quantile.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double s_quartiles[2] = {0.25, 0.75};

static int wants_iqr(const job_t *j)
{
    const mlops_jobspec_t *s = j->spec;
    return s->has_clean && s->clean.has_iqr && s->columns.n_numeric > 0;
}

/* Round 0 asks each shard for a window of CLEAN_WINDOW values around its
 * own quartiles too (mlk_qjob_set_window): for shards that are alike the
 * windows prove the quartiles, and the gather round is saved. 512 is
 * ~4.5 standard deviations of a 65,536-row shard's quartile rank. */
#define CLEAN_WINDOW 512

/* The quantile job of the first round, made the same way on both sides
 * (the request, and the merge of its answers). */
static mlk_qjob *clean_qjob_new(size_t nnum)
{
    mlk_qjob *q = mlk_qjob_new(nnum, s_quartiles, 2);
    if (q && mlk_qjob_set_window(q, CLEAN_WINDOW) != 0) mlk_qjob_destroy(&q);
    return q;
}

int stage_clean_first_request(const job_t *j, uint8_t **req, size_t *len)
{
    *req = NULL;
    *len = 0;
    if (!wants_iqr(j)) return 0;
    mlk_qjob *q = clean_qjob_new(j->spec->columns.n_numeric);
    if (!q) return MLOPS_ENOMEM;
    int rc = mlk_qjob_request(q, req, len);
    mlk_qjob_destroy(&q);
    return rc;
}

/* blob: u32 mode (0 = quantile rounds, 1 = filter), u32 ncols,
 *       mode 0: qjob bytes; mode 1: per column f64 lo, f64 hi, f64 q1, f64 q3 */
enum { CLEAN_ROUNDS = 0, CLEAN_FILTER = 1 };

static int clean_set_filter(job_t *j, stage_t *st, const double *lohi, size_t ncols)
{
    bw_t w;
    bw_init(&w);
    bw_u32(&w, CLEAN_FILTER);
    bw_u32(&w, (uint32_t)ncols);
    for (size_t c = 0; c < ncols * 4; c++) bw_f64(&w, lohi[c]);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    int rc = stage_set_tasks(st, stage_input_of(j, st)->ntasks, "clean_filter");
    if (rc) return rc;
    stage_set_output_keys(j, st, "/");
    return 0;
}

/* The quartiles are known: record them, set the IQR bounds and plan
 * the filter phase. */
static int clean_bounds_and_filter(job_t *j, stage_t *st, const mlk_qjob *q, uint32_t ncols)
{
    double *lohi = calloc((size_t)ncols * 4, sizeof *lohi);
    if (!lohi) return MLOPS_ENOMEM;
    double k = j->spec->clean.iqr_k;
    for (uint32_t c = 0; c < ncols; c++) {
        double qv[2];
        uint64_t n;
        mlk_qjob_result(q, c, qv, &n);
        mlk_iqr_bounds(qv[0], qv[1], k, &lohi[c * 4], &lohi[c * 4 + 1]);
        lohi[c * 4 + 2] = qv[0];
        lohi[c * 4 + 3] = qv[1];
        char name[300];
        snprintf(name, sizeof name, "q1.%s", j->spec->columns.numeric[c]);
        job_set_metric(j, name, qv[0]);
        snprintf(name, sizeof name, "q3.%s", j->spec->columns.numeric[c]);
        job_set_metric(j, name, qv[1]);
    }
    job_logf(j, "clean: quartiles exact after %u round%s", st->phase, st->phase == 1 ? "" : "s");
    int rc = clean_set_filter(j, st, lohi, ncols);
    free(lohi);
    return rc;
}

static int clean_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    size_t nnum = s->columns.n_numeric;
    if (!s->clean.has_iqr || nnum == 0) return clean_set_filter(j, st, NULL, 0);
    mlk_qjob *q = clean_qjob_new(nnum);
    if (!q) return MLOPS_ENOMEM;
    /* round 1 was answered by the ingest (or join) tasks: merge in shard
     * order; both results hold the answer as field 2 */
    stage_t *in = stage_join_first_round(j);
    int rc = 0;
    for (size_t t = 0; t < in->ntasks && !rc; t++) {
        const task_t *tk = &in->tasks[t];
        Mlops__Tasks__IngestResult *r = NULL;
        Mlops__Tasks__JoinResult *jr = NULL;
        ProtobufCBinaryData ans = {0, NULL};
        if (!strcmp(in->name, "join")) {
            if ((jr = mlops__tasks__join_result__unpack(NULL, tk->result_len, tk->result)))
                ans = jr->quantile_answer;
        } else if ((r = mlops__tasks__ingest_result__unpack(NULL, tk->result_len, tk->result)))
            ans = r->quantile_answer;
        if (!r && !jr)
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "clean: %s task %zu sent no quantile answer", in->name, t);
        else rc = mlk_qjob_add(q, ans.data, ans.len, err, errlen);
        if (r) mlops__tasks__ingest_result__free_unpacked(r, NULL);
        if (jr) mlops__tasks__join_result__free_unpacked(jr, NULL);
    }
    if (!rc) rc = mlk_qjob_step(q, err, errlen);
    if (rc) {
        mlk_qjob_destroy(&q);
        return rc;
    }
    st->phase = 1;
    if (mlk_qjob_done(q)) { /* few distinct values: one round was enough */
        rc = clean_bounds_and_filter(j, st, q, (uint32_t)nnum);
        mlk_qjob_destroy(&q);
        return rc;
    }
    uint8_t *qb;
    size_t ql;
    rc = mlk_qjob_encode(q, &qb, &ql);
    mlk_qjob_destroy(&q);
    if (rc) return rc;
    bw_t w;
    bw_init(&w);
    bw_u32(&w, CLEAN_ROUNDS);
    bw_u32(&w, (uint32_t)nnum);
    bw_put(&w, qb, ql);
    free(qb);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    if ((rc = stage_set_tasks(st, stage_input_of(j, st)->ntasks, "clean_qround")) != 0) return rc;
    stage_set_output_keys(j, st, NULL);
    return 0;
}

static int clean_decode(const stage_t *st, uint32_t *mode, uint32_t *ncols, mlk_qjob **q,
                        const uint8_t **lohi)
{
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    *mode = br_u32(&r);
    *ncols = br_u32(&r);
    if (r.err) return MLOPS_EPARSE;
    if (*mode == CLEAN_ROUNDS) {
        if (!q) return 0;
        return mlk_qjob_decode(st->blob + 8, st->blob_len - 8, q);
    }
    if (st->blob_len != 8 + (size_t)*ncols * 32) return MLOPS_EPARSE;
    if (lohi) *lohi = st->blob + 8;
    return 0;
}

static int clean_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    uint32_t mode, ncols;
    const uint8_t *lohi = NULL;
    if (clean_decode(st, &mode, &ncols, NULL, &lohi) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "clean plan is damaged");
    stage_t *in = stage_input_of(j, st);
    out->inputs = malloc(sizeof(char *));
    out->inputs[0] = strdup(in->tasks[t].output_key);
    out->ninputs = 1;
    if (mode == CLEAN_ROUNDS) {
        mlk_qjob *q = NULL;
        if (mlk_qjob_decode(st->blob + 8, st->blob_len - 8, &q) != 0)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "clean plan is damaged");
        uint8_t *req;
        size_t rl;
        int rc = mlk_qjob_request(q, &req, &rl);
        mlk_qjob_destroy(&q);
        if (rc) return mlops_seterr(err, errlen, rc, "quantile request: %s", mlops_strerror(rc));
        Mlops__Tasks__CleanQroundArgs a = MLOPS__TASKS__CLEAN_QROUND_ARGS__INIT;
        a.dropna = j->spec->clean.dropna != 0;
        a.quantile_request.data = req;
        a.quantile_request.len = rl;
        rc = args_pack(out, &a.base);
        free(req);
        return rc;
    }
    double *lo = calloc(ncols ? ncols : 1, sizeof *lo), *hi = calloc(ncols ? ncols : 1, sizeof *hi);
    int rc = lo && hi ? 0 : MLOPS_ENOMEM;
    for (uint32_t c = 0; !rc && c < ncols; c++) {
        memcpy(&lo[c], lohi + c * 32, 8);
        memcpy(&hi[c], lohi + c * 32 + 8, 8);
    }
    Mlops__Tasks__CleanFilterArgs a = MLOPS__TASKS__CLEAN_FILTER_ARGS__INIT;
    a.dropna = j->spec->clean.dropna != 0;
    a.n_lo = a.n_hi = ncols;
    a.lo = lo;
    a.hi = hi;
    if (!rc) rc = args_pack(out, &a.base);
    free(lo);
    free(hi);
    return rc;
}

static int clean_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    uint32_t mode, ncols;
    mlk_qjob *q = NULL;
    int rc = clean_decode(st, &mode, &ncols, &q, NULL);
    if (rc) return mlops_seterr(err, errlen, MLOPS_EPARSE, "clean plan is damaged");
    if (mode == CLEAN_FILTER) {
        job_set_metric(j, "rows_after_dropna", stage_sum_metric(st, "rows_after_dropna"));
        job_set_metric(j, "rows_after_clean", stage_sum_metric(st, "rows"));
        return stage_merge_labels(j, st, err, errlen);
    }
    /* merge every shard's answer in shard order, then close the round */
    for (size_t t = 0; t < st->ntasks; t++) {
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__CleanQroundResult *r =
            mlops__tasks__clean_qround_result__unpack(NULL, tk->result_len, tk->result);
        if (!r)
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "clean: damaged quantile answer from task %zu", t);
        else rc = mlk_qjob_add(q, r->quantile_answer.data, r->quantile_answer.len, err, errlen);
        if (r) mlops__tasks__clean_qround_result__free_unpacked(r, NULL);
        if (rc) {
            mlk_qjob_destroy(&q);
            return rc;
        }
    }
    if ((rc = mlk_qjob_step(q, err, errlen)) != 0) {
        mlk_qjob_destroy(&q);
        return rc;
    }
    st->phase++;
    if (!mlk_qjob_done(q)) {
        uint8_t *qb;
        size_t ql;
        rc = mlk_qjob_encode(q, &qb, &ql);
        mlk_qjob_destroy(&q);
        if (rc) return rc;
        bw_t w;
        bw_init(&w);
        bw_u32(&w, CLEAN_ROUNDS);
        bw_u32(&w, ncols);
        bw_put(&w, qb, ql);
        free(qb);
        free(st->blob);
        st->blob = bw_take(&w, &st->blob_len);
        if (!st->blob) return MLOPS_ENOMEM;
        size_t n = st->ntasks;
        if ((rc = stage_set_tasks(st, n, "clean_qround")) != 0) return rc;
        return 1;
    }
    rc = clean_bounds_and_filter(j, st, q, ncols);
    mlk_qjob_destroy(&q);
    return rc ? rc : 1;
}

const stage_ops_t stage_clean = {"clean", clean_start, clean_args, clean_done, 2, NULL, 0, NULL, NULL};
