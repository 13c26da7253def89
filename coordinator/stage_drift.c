/* stage_drift.c: `drift: {model: NAME@REF}`, the batch form of
 * mlops-serve's /drift (docs/serving.md#drift). One phase, a task per
 * ingested shard ("drift", worker/kind_predict.c): each scores its rows
 * with the pinned version's pipeline and counts them per bin of the
 * version's reference (common/driftref.h). The reducer sums the counts
 * in shard order (integers: the same with any number of workers) and
 * gives the PSI of every feature (common/kernels/psi.h) as the metric
 * psi.<feature>, the probability as psi.proba.
 *
 * The pin (registry_build.c) carries the reference in the PredictModel
 * (reference_json), so a re-run compares with the very same version.
 * Args: DriftArgs; result: DriftResult (proto/tasks.proto). */
#include "driftref.h"
#include "err.h"
#include "psi.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int drift_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "drift: no input stage");
    if (!j->pinned)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "drift: no model was pinned for the job");
    free(st->blob);
    st->blob = malloc(j->pinned_len ? j->pinned_len : 1);
    if (!st->blob) return MLOPS_ENOMEM;
    memcpy(st->blob, j->pinned, j->pinned_len);
    st->blob_len = j->pinned_len;
    int rc = stage_set_tasks(st, in->ntasks, "drift");
    if (!rc) stage_set_output_keys(j, st, NULL);
    return rc;
}

static int drift_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in || t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EINVAL, "drift: bad task");
    Mlops__Tasks__PredictModel *pm =
        mlops__tasks__predict_model__unpack(NULL, st->blob_len, st->blob);
    if (!pm) return mlops_seterr(err, errlen, MLOPS_EPARSE, "drift: the pinned model is damaged");
    int rc = args_add_input(out, in->tasks[t].output_key);
    if (!rc) {
        Mlops__Tasks__DriftArgs a = MLOPS__TASKS__DRIFT_ARGS__INIT;
        a.model = pm;
        rc = args_pack(out, &a.base);
    }
    mlops__tasks__predict_model__free_unpacked(pm, NULL);
    return rc;
}

static int drift_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    Mlops__Tasks__PredictModel *pm =
        mlops__tasks__predict_model__unpack(NULL, st->blob_len, st->blob);
    if (!pm) return mlops_seterr(err, errlen, MLOPS_EPARSE, "drift: the pinned model is damaged");
    json_t *ref = pm->reference_json ? json_loads(pm->reference_json, 0, NULL) : NULL;
    size_t nc = pm->n_numeric + pm->n_hashed;
    char **cols = calloc(nc + 1, sizeof *cols);
    mlops_driftref_t *d = NULL;
    double **sum = NULL;
    int rc = 0;
    for (size_t i = 0; cols && i < pm->n_numeric; i++) cols[i] = pm->numeric[i];
    for (size_t i = 0; cols && i < pm->n_hashed; i++) cols[pm->n_numeric + i] = pm->hashed[i];
    if (!cols || !ref ||
        !(d = mlops_driftref_new(ref, cols, nc, pm->classes, pm->n_classes)) ||
        !(sum = calloc(d->nf + 1, sizeof *sum))) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "drift: model %s: no usable reference", pm->ref);
        goto out;
    }
    size_t width = 0;
    for (size_t i = 0; i < d->nf; i++) {
        width += d->f[i].nbins;
        if (!(sum[i] = calloc(d->f[i].nbins, sizeof **sum))) {
            rc = MLOPS_ENOMEM;
            goto out;
        }
    }
    for (size_t t = 0; t < st->ntasks; t++) { /* shard order */
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__DriftResult *r =
            mlops__tasks__drift_result__unpack(NULL, tk->result_len, tk->result);
        if (!r || r->n_counts != width) {
            if (r) mlops__tasks__drift_result__free_unpacked(r, NULL);
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "drift: task %zu sent a damaged result", t);
            goto out;
        }
        size_t o = 0;
        for (size_t i = 0; i < d->nf; i++)
            for (size_t b = 0; b < d->f[i].nbins; b++) sum[i][b] += r->counts[o++];
        mlops__tasks__drift_result__free_unpacked(r, NULL);
    }
    char name[320], shifted[1024] = "";
    size_t so = 0;
    for (size_t i = 0; i < d->nf; i++) {
        double psi = mlk_psi(d->f[i].ref, sum[i], d->f[i].nbins);
        snprintf(name, sizeof name, "psi.%s", d->f[i].name);
        job_set_metric(j, name, psi);
        if (psi >= 0.25 && so < sizeof shifted)
            so += (size_t)snprintf(shifted + so, sizeof shifted - so, "%s%s %.3f", so ? ", " : "",
                                   d->f[i].name, psi);
    }
    job_set_metric(j, "rows_compared", stage_sum_metric(st, "rows"));
    if (so) job_logf(j, "drift: shifted against model %s (PSI >= 0.25): %s", pm->ref, shifted);
    else job_logf(j, "drift: no feature shifted against model %s (every PSI < 0.25)", pm->ref);
out:
    for (size_t i = 0; sum && d && i < d->nf; i++) free(sum[i]);
    free(sum);
    mlops_driftref_destroy(&d);
    free(cols);
    json_decref(ref);
    mlops__tasks__predict_model__free_unpacked(pm, NULL);
    return rc;
}

const stage_ops_t stage_drift = {"drift", drift_start, drift_args, drift_done, 2, NULL, 0, NULL, NULL};
