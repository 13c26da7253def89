/* stage_scale.c: StandardScaler over the numeric columns (CSV frames)
 * or the dense part (IDX feature shards), with global statistics.
 *   phase 0 "scale_moments": every shard returns {count, mean, M2} per
 *           column; merged here in shard order by Chan's formulas.
 *   phase 1 "scale_apply":   every shard is transformed with the
 *           global mean and scale (final output).
 * Args: none, then ScaleApplyArgs; result ScaleMomentsResult
 * (proto/tasks.proto).
 * blob: u32 phase, u32 ncols, f64 mean[ncols], f64 scale[ncols]. */
#include "bytes.h"
#include "err.h"
#include "scaler.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int scale_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "scale: no input stage");
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 0);
    bw_u32(&w, 0);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    int rc = stage_set_tasks(st, in->ntasks, "scale_moments");
    if (!rc) stage_set_output_keys(j, st, NULL);
    return rc;
}

static int scale_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in || t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EINVAL, "scale: bad task");
    int rc = args_add_input(out, in->tasks[t].output_key);
    if (rc || strcmp(st->kind, "scale_apply")) return rc; /* scale_moments: no arguments */
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    uint32_t phase = br_u32(&r), ncols = br_u32(&r);
    double *mean = br_f64s(&r, ncols), *scale = br_f64s(&r, ncols);
    if (!br_done(&r) || phase != 1)
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "scale plan is damaged");
    Mlops__Tasks__ScaleApplyArgs a = MLOPS__TASKS__SCALE_APPLY_ARGS__INIT;
    a.n_mean = a.n_scale = ncols;
    a.mean = mean;
    a.scale = scale;
    if (!rc) rc = args_pack(out, &a.base);
    free(mean);
    free(scale);
    return rc;
}

static int scale_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    uint32_t phase = br_u32(&r);
    if (r.err) return mlops_seterr(err, errlen, MLOPS_EPARSE, "scale plan is damaged");
    if (phase == 1) return 0;
    mlk_moments *acc = NULL;
    size_t ncols = 0;
    for (size_t t = 0; t < st->ntasks; t++) {
        mlk_moments *m = NULL;
        size_t n = 0;
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__ScaleMomentsResult *res =
            mlops__tasks__scale_moments_result__unpack(NULL, tk->result_len, tk->result);
        int bad = !res || mlk_moments_decode(res->moments.data, res->moments.len, &m, &n) != 0;
        if (res) mlops__tasks__scale_moments_result__free_unpacked(res, NULL);
        if (bad) {
            free(acc);
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "scale: damaged moments from task %zu", t);
        }
        if (!acc) {
            acc = m;
            ncols = n;
            continue;
        }
        if (n != ncols) {
            free(m);
            free(acc);
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "scale: shards disagree on the columns");
        }
        for (size_t c = 0; c < ncols; c++) mlk_moments_merge(&acc[c], &m[c]);
        free(m);
    }
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 1);
    bw_u32(&w, (uint32_t)ncols);
    double *mean = calloc(ncols ? ncols : 1, sizeof *mean), *scale = calloc(ncols ? ncols : 1, sizeof *scale);
    if (!mean || !scale) {
        free(acc);
        free(mean);
        free(scale);
        bw_free(&w);
        return MLOPS_ENOMEM;
    }
    const mlops_jobspec_t *s = j->spec;
    for (size_t c = 0; c < ncols; c++) {
        double var;
        mlk_scaler_finalize(&acc[c], &mean[c], &var, &scale[c]);
        if (s->input.format == MLOPS_INPUT_CSV && c < s->columns.n_numeric) {
            char name[300];
            snprintf(name, sizeof name, "scaler.mean.%s", s->columns.numeric[c]);
            job_set_metric(j, name, mean[c]);
            snprintf(name, sizeof name, "scaler.scale.%s", s->columns.numeric[c]);
            job_set_metric(j, name, scale[c]);
        }
    }
    for (size_t c = 0; c < ncols; c++) bw_f64(&w, mean[c]);
    for (size_t c = 0; c < ncols; c++) bw_f64(&w, scale[c]);
    free(acc);
    free(mean);
    free(scale);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    st->phase = 1;
    /* fused: split's featurize tasks apply the statistics */
    if (stage_fused_features(j)) return 0;
    int rc = stage_set_tasks(st, st->ntasks, "scale_apply");
    if (rc) return rc;
    stage_set_output_keys(j, st, "/");
    return 1;
}

const stage_ops_t stage_scale = {"scale", scale_start, scale_args, scale_done, 2, NULL, 0, NULL, NULL};
