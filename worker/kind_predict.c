/* kind_predict.c: the "predict" task kind (and promote_score, drift, which
 * score the same way): one ingested frame scored
 * with a registered model's own pipeline (PredictArgs, proto/tasks.proto)
 * into a frame of predictions: the kept input columns, then `proba`
 * (binary: of classes[1]) or one `proba_<class>` per class, then `label`.
 *
 * Why it calls mlk_score_frame (common/kernels/score.h): that function
 * reuses the training kernels one for one, so a row scored here gets the
 * bits it would have had in the training job, on any number of workers,
 * and mlops-serve, which calls it too, gives the same bits over HTTP.
 *
 * A row with a missing value the model needs is not scored: its
 * predictions are empty and it is counted in the "unscored" metric. */
#include "kinds.h"
#include "driftref.h"
#include "err.h"
#include "fshard.h"
#include "metrics.h"
#include "model.h"
#include "score.h"
#include "task.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mlk_frame *in, *out;
    mlk_model *m;
    double *proba;
    size_t *num, *cat, *keep;
    uint8_t *unscored;
    char **names;
    mlk_coltype *types;
    size_t nnames;
} pstate_t;

static void pstate_free(pstate_t *p)
{
    mlk_frame_destroy(&p->in);
    mlk_frame_destroy(&p->out);
    mlk_model_destroy(&p->m);
    free(p->proba);
    free(p->num);
    free(p->cat);
    free(p->keep);
    free(p->unscored);
    for (size_t i = 0; i < p->nnames; i++) free(p->names[i]);
    free(p->names);
    free(p->types);
}

/* Column `name` of the input, of the wanted type (0: any). */
static int find_col(task_ctx_t *ctx, const mlk_frame *f, const char *name, mlk_coltype want,
                    const char *ref, size_t *out)
{
    int c = mlk_frame_col(f, name);
    if (c < 0)
        return wk_task_fail(ctx, 0, "predict: the input has no column '%s', which model %s needs",
                            name, ref);
    if (want && f->cols[c].type != want)
        return wk_task_fail(ctx, 0, "predict: column '%s' must be %s for model %s", name,
                            want == MLK_F64 ? "numeric" : "text", ref);
    *out = (size_t)c;
    return 0;
}

static int add_name(pstate_t *p, const char *name, mlk_coltype t)
{
    p->names[p->nnames] = strdup(name);
    p->types[p->nnames] = t;
    return p->names[p->nnames++] ? 0 : MLOPS_ENOMEM;
}

/* Score frame p->in with model pm into p->proba (n x K) and
 * p->unscored, through the pipeline scorer the server shares
 * (common/kernels/score.h). */
static int score_frame(task_ctx_t *ctx, const Mlops__Tasks__PredictModel *pm, pstate_t *p)
{
    if (pm->n_mean != pm->n_numeric || pm->n_scale != pm->n_numeric || pm->n_classes < 2 ||
        pm->n_classes > 65536 || pm->n_features > INT32_MAX)
        return wk_task_fail(ctx, 0, "predict: damaged task arguments");
    const char *ref = pm->ref;
    if (mlk_model_decode(pm->model.data, pm->model.len, &p->m, ctx->err, sizeof ctx->err) != 0)
        return -1;
    if (p->m->n_classes != pm->n_classes || p->m->n_features != pm->n_features ||
        p->m->n_dense != pm->n_numeric)
        return wk_task_fail(ctx, 0, "predict: model %s does not match its pipeline", ref);
    size_t n = p->in->nrows, nnum = pm->n_numeric, ncat = pm->n_hashed, K = pm->n_classes;
    p->num = calloc(nnum + 1, sizeof *p->num);
    p->cat = calloc(ncat + 1, sizeof *p->cat);
    p->unscored = calloc(n + 1, 1);
    p->proba = malloc((n * K + 1) * sizeof *p->proba);
    if (!p->num || !p->cat || !p->unscored || !p->proba)
        return wk_task_fail(ctx, 1, "out of memory");
    for (size_t c = 0; c < nnum; c++)
        if (find_col(ctx, p->in, pm->numeric[c], MLK_F64, ref, &p->num[c])) return -1;
    for (size_t c = 0; c < ncat; c++)
        if (find_col(ctx, p->in, pm->hashed[c], MLK_STR, ref, &p->cat[c])) return -1;
    mlk_score_spec sp = {p->m,   nnum, p->num,          pm->mean, pm->scale,
                         ncat,   p->cat, (uint32_t)pm->n_features, pm->alternate_sign};
    return mlk_score_frame(&sp, p->in, p->proba, p->unscored, ctx->err, sizeof ctx->err) ? -1 : 0;
}

int wk_kind_predict(task_ctx_t *ctx)
{
    Mlops__Tasks__PredictArgs *a = wk_task_args(ctx, &mlops__tasks__predict_args__descriptor);
    if (!a) return -1;
    pstate_t p = {0};
    int rc = -1;
    const Mlops__Tasks__PredictModel *pm = a->model;
    if (!pm) {
        rc = wk_task_fail(ctx, 0, "predict: damaged task arguments");
        goto out;
    }
    const char *ref = pm->ref;
    if (wk_task_input_frame(ctx, 0, &p.in) != 0) goto out;
    if (score_frame(ctx, pm, &p) != 0) goto out;
    size_t n = p.in->nrows, K = pm->n_classes;
    p.keep = calloc(a->n_keep + 1, sizeof *p.keep);
    size_t nout = a->n_keep + (K == 2 ? 1 : K) + 1;
    p.names = calloc(nout, sizeof *p.names);
    p.types = calloc(nout, sizeof *p.types);
    if (!p.keep || !p.names || !p.types) goto oom;
    for (size_t c = 0; c < a->n_keep; c++)
        if (find_col(ctx, p.in, a->keep[c], 0, ref, &p.keep[c])) goto out;
    /* the predictions frame */
    for (size_t c = 0; c < a->n_keep; c++)
        if (add_name(&p, a->keep[c], p.in->cols[p.keep[c]].type)) goto oom;
    char name[600];
    if (K == 2) {
        if (add_name(&p, "proba", MLK_F64)) goto oom;
    } else {
        for (size_t k = 0; k < K; k++) {
            snprintf(name, sizeof name, "proba_%s", pm->classes[k]);
            if (add_name(&p, name, MLK_F64)) goto oom;
        }
    }
    if (add_name(&p, "label", MLK_STR)) goto oom;
    p.out = mlk_frame_new(p.nnames, (const char *const *)p.names, p.types, n ? n : 1);
    if (!p.out || mlk_frame_reserve(p.out, n ? n : 1)) goto oom;
    size_t oc = 0;
    for (size_t c = 0; c < a->n_keep; c++, oc++) {
        const mlk_col *src = &p.in->cols[p.keep[c]];
        for (size_t i = 0; i < n; i++) {
            if (src->type == MLK_F64) p.out->cols[oc].f64[i] = src->f64[i];
            else {
                size_t len;
                const char *s = mlk_str_at(src, i, &len);
                if (mlk_frame_str_push(p.out, oc, i, s, len, src->missing[i])) goto oom;
            }
        }
    }
    size_t nproba = K == 2 ? 1 : K, unscored = 0;
    for (size_t i = 0; i < n; i++) {
        unscored += p.unscored[i];
        size_t best = 0;
        for (size_t k = 1; k < K; k++)
            if (p.proba[i * K + k] > p.proba[i * K + best]) best = k;
        for (size_t k = 0; k < nproba; k++)
            p.out->cols[oc + k].f64[i] = p.unscored[i] ? NAN : p.proba[i * K + (K == 2 ? 1 : k)];
        const char *lab = pm->classes[best];
        if (mlk_frame_str_push(p.out, oc + nproba, i, p.unscored[i] ? "" : lab,
                               p.unscored[i] ? 0 : strlen(lab), p.unscored[i]))
            goto oom;
    }
    p.out->nrows = n;
    memcpy(p.out->row_id, p.in->row_id, n * sizeof *p.in->row_id);
    if (wk_task_output_frame(ctx, p.out) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)n);
    wk_task_metric(ctx, "unscored", (double)unscored);
    rc = 0;
    goto out;
oom:
    rc = wk_task_fail(ctx, 1, "out of memory");
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    pstate_free(&p);
    return rc;
}

/* promote_score: the champion (args) on the test rows of one shard. The
 * frame (input 0) and the split shard (input 1) hold the same rows in
 * the same order; the true class comes from the split shard's label
 * index, through its name, into the champion's own class order. */
int wk_kind_promote_score(task_ctx_t *ctx)
{
    Mlops__Tasks__PromoteScoreArgs *a =
        wk_task_args(ctx, &mlops__tasks__promote_score_args__descriptor);
    if (!a) return -1;
    pstate_t p = {0};
    mlk_features *fs = NULL;
    mlk_metrics *part = NULL;
    int32_t *y = NULL;
    double *rows = NULL;
    void *data = NULL;
    size_t len = 0;
    int rc = -1;
    const Mlops__Tasks__PredictModel *pm = a->model;
    if (!pm) {
        rc = wk_task_fail(ctx, 0, "promote: damaged task arguments");
        goto out;
    }
    if (wk_task_input_frame(ctx, 0, &p.in) != 0) goto out;
    if (wk_task_input(ctx, 1, &data, &len) != 0) goto out;
    if (mlk_features_decode(data, len, &fs) != 0 || fs->nrows != p.in->nrows || !fs->test) {
        rc = wk_task_fail(ctx, 0, "promote: split shard %s does not match frame %s",
                          ctx->ta->inputs[1]->key, ctx->ta->inputs[0]->key);
        goto out;
    }
    if (score_frame(ctx, pm, &p) != 0) goto out;
    size_t n = p.in->nrows, K = pm->n_classes, m = 0;
    y = malloc((n + 1) * sizeof *y);
    rows = malloc((n * K + 1) * sizeof *rows);
    part = mlk_metrics_new((uint32_t)K, 0);
    if (!y || !rows || !part) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!fs->test[i] || p.unscored[i] || fs->label[i] < 0 ||
            (size_t)fs->label[i] >= a->n_classes)
            continue;
        const char *name = a->classes[fs->label[i]];
        size_t k = 0;
        while (k < K && strcmp(pm->classes[k], name)) k++;
        if (k == K) continue; /* a class the champion never saw: it cannot be scored on it */
        y[m] = (int32_t)k;
        memcpy(&rows[m * K], &p.proba[i * K], K * sizeof *rows);
        m++;
    }
    if (m && mlk_metrics_add(part, m, y, NULL, rows, ctx->err, sizeof ctx->err) != 0) goto out;
    uint8_t *buf;
    size_t blen;
    if (mlk_metrics_encode(part, &buf, &blen) != 0) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    Mlops__Tasks__EvaluateResult res = MLOPS__TASKS__EVALUATE_RESULT__INIT;
    res.partial.data = buf;
    res.partial.len = blen;
    rc = wk_task_result_pack(ctx, &res.base);
    free(buf);
    if (!rc) wk_task_metric(ctx, "rows", (double)m);
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    free(data);
    free(y);
    free(rows);
    mlk_metrics_destroy(&part);
    mlk_features_destroy(&fs);
    pstate_free(&p);
    return rc;
}

/* drift: one shard scored like predict, then counted per bin of the
 * pinned version's reference (common/driftref.h) into a DriftResult;
 * stage_drift.c sums the shards and gives the PSI. The frame's own column
 * names drive the binning, so a feature is a column of the model. */
int wk_kind_drift(task_ctx_t *ctx)
{
    Mlops__Tasks__DriftArgs *a = wk_task_args(ctx, &mlops__tasks__drift_args__descriptor);
    if (!a) return -1;
    pstate_t p = {0};
    json_t *ref = NULL;
    mlops_driftref_t *d = NULL;
    char **names = NULL;
    double *counts = NULL;
    int rc = -1;
    const Mlops__Tasks__PredictModel *pm = a->model;
    if (!pm || !pm->reference_json) {
        rc = wk_task_fail(ctx, 0, "drift: damaged task arguments");
        goto out;
    }
    if (wk_task_input_frame(ctx, 0, &p.in) != 0) goto out;
    if (score_frame(ctx, pm, &p) != 0) goto out;
    json_error_t je;
    if (!(ref = json_loads(pm->reference_json, 0, &je))) {
        rc = wk_task_fail(ctx, 0, "drift: model %s: damaged reference: %s", pm->ref, je.text);
        goto out;
    }
    if (!(names = calloc(p.in->ncols + 1, sizeof *names))) goto oom;
    for (size_t c = 0; c < p.in->ncols; c++) names[c] = p.in->cols[c].name;
    if (!(d = mlops_driftref_new(ref, names, p.in->ncols, pm->classes, pm->n_classes))) goto oom;
    size_t width = 0;
    for (size_t i = 0; i < d->nf; i++) width += d->f[i].nbins;
    if (!(counts = calloc(width + 1, sizeof *counts))) goto oom;
    size_t n = p.in->nrows;
    for (size_t o = 0, i = 0; i < d->nf; o += d->f[i].nbins, i++)
        for (size_t r = 0; r < n; r++) {
            size_t b = mlops_driftref_bin(d, i, p.in, r, p.proba, p.unscored);
            if (b != MLOPS_DRIFT_NO_BIN) counts[o + b] += 1;
        }
    Mlops__Tasks__DriftResult res = MLOPS__TASKS__DRIFT_RESULT__INIT;
    res.counts = counts;
    res.n_counts = width;
    rc = wk_task_result_pack(ctx, &res.base);
    if (!rc) wk_task_metric(ctx, "rows", (double)n);
    goto out;
oom:
    rc = wk_task_fail(ctx, 1, "out of memory");
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    json_decref(ref);
    mlops_driftref_destroy(&d);
    free(names);
    free(counts);
    pstate_free(&p);
    return rc;
}
