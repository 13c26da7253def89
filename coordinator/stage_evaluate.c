/* stage_evaluate.c: metrics of the trained model on held-out rows, from
 * per-shard partials merged here in shard order (metrics.h). The rows:
 * the test rows of the split shards; without a split, the query set of
 * an IDX job (knn.queries: "<job>/ingest.q/<t>", scaled as the training
 * data was); without either, every row (training metrics, logged so).
 * One phase, a task per shard; the model goes inline in the arguments.
 * Args EvaluateArgs, result EvaluateResult (proto/tasks.proto).
 *
 * The stage's blob keeps what the report plots, journalled with the
 * stage and bounded whatever the rows: u32 version 1, u32 nroc, then
 * nroc x (f64 fpr, f64 tpr, f64 threshold), u32 ncal, ncal x (f64
 * prob_pred, f64 prob_true, u64 count) (both 0 unless 2 classes with
 * probabilities), u32 K (0 above EVAL_MAX_CONFUSION), K x K u64 of the
 * confusion matrix (row = true class). */
#include "bytes.h"
#include "err.h"
#include "metrics.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define EVAL_MAX_CONFUSION 64

static int curves_blob(stage_t *st, const mlk_metrics *acc)
{
    mlk_metrics_curves *c = calloc(1, sizeof *c);
    if (!c) return MLOPS_ENOMEM;
    char e[128];
    if (mlk_metrics_curves_of(acc, c, e, sizeof e) != 0) c->nroc = c->ncal = 0;
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 1);
    bw_u32(&w, (uint32_t)c->nroc);
    for (size_t i = 0; i < c->nroc; i++) {
        bw_f64(&w, c->fpr[i]);
        bw_f64(&w, c->tpr[i]);
        bw_f64(&w, c->threshold[i]);
    }
    bw_u32(&w, (uint32_t)c->ncal);
    for (size_t i = 0; i < c->ncal; i++) {
        bw_f64(&w, c->prob_pred[i]);
        bw_f64(&w, c->prob_true[i]);
        bw_u64(&w, c->count[i]);
    }
    uint32_t k = mlk_metrics_nclasses(acc);
    if (k > EVAL_MAX_CONFUSION) k = 0;
    bw_u32(&w, k);
    const uint64_t *conf = mlk_metrics_confusion(acc);
    for (size_t i = 0; i < (size_t)k * k; i++) bw_u64(&w, conf[i]);
    free(c);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    return st->blob ? 0 : MLOPS_ENOMEM;
}

int stage_evaluate_curves(const stage_t *st, mlk_metrics_curves *c, uint64_t **conf, uint32_t *k)
{
    memset(c, 0, sizeof *c);
    *conf = NULL;
    *k = 0;
    if (!st || !st->blob || st->blob_len < 16) return MLOPS_ENOTFOUND;
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    if (br_u32(&r) != 1) return MLOPS_EPARSE;
    uint32_t n = br_u32(&r);
    if (n > MLK_ROC_POINTS) return MLOPS_EPARSE;
    for (uint32_t i = 0; i < n; i++) {
        c->fpr[i] = br_f64(&r);
        c->tpr[i] = br_f64(&r);
        c->threshold[i] = br_f64(&r);
    }
    c->nroc = n;
    n = br_u32(&r);
    if (n > MLK_CALIB_BINS) return MLOPS_EPARSE;
    for (uint32_t i = 0; i < n; i++) {
        c->prob_pred[i] = br_f64(&r);
        c->prob_true[i] = br_f64(&r);
        c->count[i] = br_u64(&r);
    }
    c->ncal = n;
    uint32_t kk = br_u32(&r);
    if (kk > EVAL_MAX_CONFUSION) return MLOPS_EPARSE;
    uint64_t *m = calloc((size_t)kk * kk + 1, sizeof *m);
    if (!m) return MLOPS_ENOMEM;
    for (size_t i = 0; i < (size_t)kk * kk; i++) m[i] = br_u64(&r);
    if (!br_done(&r)) {
        free(m);
        return MLOPS_EPARSE;
    }
    *conf = m;
    *k = kk;
    return 0;
}

/* the query set of an IDX job without a split: its shard count, or 0 */
static size_t query_shards(job_t *j, const stage_t *in)
{
    const mlops_jobspec_t *s = j->spec;
    if (!strcmp(in->name, "split") || !s->knn.has_queries || s->input.format != MLOPS_INPUT_IDX) return 0;
    double nq = job_metric(j, "rows_queries", 0);
    return nq >= 1 ? (size_t)(((uint64_t)nq + s->shard_rows - 1) / s->shard_rows) : 0;
}

static int eval_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    size_t len;
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "evaluate: no input stage");
    if (!train_model(job_stage(j, "train"), &len))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "evaluate: no trained model");
    size_t nq = query_shards(j, in);
    if (nq) job_logf(j, "evaluate: on the %.0f query rows (knn.queries)", job_metric(j, "rows_queries", 0));
    else if (strcmp(in->name, "split"))
        job_logf(j, "evaluate: no split and no query set: the metrics are on the training rows");
    int rc = stage_set_tasks(st, nq ? nq : in->ntasks, "evaluate");
    if (!rc) stage_set_output_keys(j, st, NULL);
    return rc;
}

static int eval_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    size_t len;
    const uint8_t *model = train_model(job_stage(j, "train"), &len);
    if (!in || !model) return mlops_seterr(err, errlen, MLOPS_EINVAL, "evaluate: bad task");
    size_t nq = query_shards(j, in);
    int rc;
    if (nq) {
        char key[160];
        snprintf(key, sizeof key, "%s/ingest.q/%zu", j->id, t);
        rc = args_add_input(out, key);
    } else {
        if (t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EINVAL, "evaluate: bad task");
        rc = args_add_input(out, in->tasks[t].output_key);
    }
    if (rc) return rc;
    Mlops__Tasks__EvaluateArgs a = MLOPS__TASKS__EVALUATE_ARGS__INIT;
    a.classes = (uint32_t)job_nclasses(j);
    a.model.data = (uint8_t *)model;
    a.model.len = len;
    /* queries come unscaled from ingest: scale them as the index was */
    stage_t *sc = nq ? job_stage(j, "scale") : NULL;
    double *mean = NULL, *scale = NULL;
    if (sc && sc->blob_len >= 8 && sc->blob_len == 8 + (size_t)((const uint32_t *)sc->blob)[1] * 16) {
        uint32_t nc;
        memcpy(&nc, sc->blob + 4, 4);
        mean = malloc((nc ? nc : 1) * sizeof *mean);
        scale = malloc((nc ? nc : 1) * sizeof *scale);
        if (!mean || !scale) rc = MLOPS_ENOMEM;
        else {
            memcpy(mean, sc->blob + 8, (size_t)nc * 8);
            memcpy(scale, sc->blob + 8 + (size_t)nc * 8, (size_t)nc * 8);
            a.n_scale_mean = a.n_scale_scale = nc;
            a.scale_mean = mean;
            a.scale_scale = scale;
        }
    }
    if (!rc) rc = args_pack(out, &a.base);
    free(mean);
    free(scale);
    return rc;
}

static int eval_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    mlk_metrics *acc = NULL;
    int rc = 0;
    for (size_t t = 0; t < st->ntasks && !rc; t++) {
        mlk_metrics *m = NULL;
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__EvaluateResult *res =
            mlops__tasks__evaluate_result__unpack(NULL, tk->result_len, tk->result);
        if (!res)
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "evaluate: damaged result from task %zu",
                              t);
        else rc = mlk_metrics_decode(res->partial.data, res->partial.len, &m, err, errlen);
        if (res) mlops__tasks__evaluate_result__free_unpacked(res, NULL);
        if (rc) break;
        if (!acc) acc = m;
        else {
            rc = mlk_metrics_merge(acc, m, err, errlen);
            mlk_metrics_destroy(&m);
        }
    }
    if (rc || !acc) {
        mlk_metrics_destroy(&acc);
        return rc ? rc : mlops_seterr(err, errlen, MLOPS_EINVAL, "evaluate: no partials");
    }
    mlk_metrics_result r;
    rc = mlk_metrics_compute(acc, &r, err, errlen);
    if (!rc) rc = curves_blob(st, acc);
    mlk_metrics_destroy(&acc);
    if (rc) return rc;
    unsigned want = j->spec->metrics;
    job_set_metric(j, "test_rows", (double)r.n);
    if (want & MLOPS_METRIC_ACCURACY) job_set_metric(j, "accuracy", r.accuracy);
    if ((want & MLOPS_METRIC_LOGLOSS) && r.has_log_loss) job_set_metric(j, "logloss", r.log_loss);
    if ((want & MLOPS_METRIC_AUC) && r.has_auc) job_set_metric(j, "auc", r.roc_auc);
    if (want & MLOPS_METRIC_F1) job_set_metric(j, "f1", r.f1);
    if (want & MLOPS_METRIC_PRECISION) job_set_metric(j, "precision", r.precision);
    if (want & MLOPS_METRIC_RECALL) job_set_metric(j, "recall", r.recall);
    return 0;
}

const stage_ops_t stage_evaluate = {"evaluate", eval_start, eval_args, eval_done, 2, NULL, 0, NULL, NULL};
