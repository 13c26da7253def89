/* stage_promote.c: the promotion gate's scoring. After evaluate has
 * scored the new version (the challenger) on the split's test rows, the
 * version holding `promote.alias` when the job started (the champion) is
 * scored on the same rows with its own pipeline: one "promote_score"
 * task per shard (worker/kind_predict.c) reads the shard's raw frame
 * (clean, else ingest: before this job's scaler and hasher) and its
 * split shard (test flags, labels), and returns a metrics partial. They
 * are merged here in shard order, as evaluate merges its own.
 *
 * The champion was pinned at job start (registry_build.c, job_t.pinned)
 * and is copied into the journalled blob. Without a champion the stage
 * has no tasks. The decision itself is the registry's, once the job has
 * succeeded and the challenger is a version (coord_registry_on_success).
 * Args PromoteScoreArgs, result EvaluateResult (proto/tasks.proto). */
#include "err.h"
#include "metrics.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const METRIC_NAMES[] = {"accuracy", "logloss",   "auc",
                                           "f1",       "precision", "recall"};

const char *stage_promote_metric_name(const job_t *j)
{
    int m = j->spec->promote.metric;
    return m >= 0 && m < 6 ? METRIC_NAMES[m] : "auc";
}

static stage_t *raw_stage(job_t *j)
{
    stage_t *st = job_stage(j, "clean");
    return st ? st : job_stage(j, "ingest");
}

static int promote_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *split = job_stage(j, "split"), *raw = raw_stage(j);
    if (!split || !raw || raw->ntasks != split->ntasks)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "promote: needs the split and its raw frames");
    if (!j->pinned) {
        job_logf(j, "promote: no version holds '%s': the new version will be promoted",
                 j->spec->promote.alias);
        return stage_set_tasks(st, 0, "promote_score");
    }
    free(st->blob);
    st->blob = malloc(j->pinned_len ? j->pinned_len : 1);
    if (!st->blob) return MLOPS_ENOMEM;
    memcpy(st->blob, j->pinned, j->pinned_len);
    st->blob_len = j->pinned_len;
    int rc = stage_set_tasks(st, split->ntasks, "promote_score");
    if (!rc) stage_set_output_keys(j, st, NULL);
    return rc;
}

static int promote_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *split = job_stage(j, "split"), *raw = raw_stage(j);
    if (!split || !raw || t >= split->ntasks || t >= raw->ntasks)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "promote: bad task");
    Mlops__Tasks__PredictModel *pm =
        mlops__tasks__predict_model__unpack(NULL, st->blob_len, st->blob);
    if (!pm)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "promote: the pinned champion is damaged");
    int rc = args_add_input(out, raw->tasks[t].output_key);
    if (!rc) rc = args_add_input(out, split->tasks[t].output_key);
    size_t ncls = job_nclasses(j);
    char **cls = calloc(ncls ? ncls : 1, sizeof *cls);
    if (!rc && !cls) rc = MLOPS_ENOMEM;
    if (!rc) {
        for (size_t i = 0; i < ncls; i++) cls[i] = (char *)job_class(j, i);
        Mlops__Tasks__PromoteScoreArgs a = MLOPS__TASKS__PROMOTE_SCORE_ARGS__INIT;
        a.model = pm;
        a.n_classes = ncls;
        a.classes = cls;
        rc = args_pack(out, &a.base);
    }
    free(cls);
    mlops__tasks__predict_model__free_unpacked(pm, NULL);
    return rc;
}

static int promote_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    if (!st->ntasks) return 0;
    mlk_metrics *acc = NULL;
    int rc = 0;
    for (size_t t = 0; t < st->ntasks && !rc; t++) {
        mlk_metrics *m = NULL;
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__EvaluateResult *res =
            mlops__tasks__evaluate_result__unpack(NULL, tk->result_len, tk->result);
        if (!res)
            rc =
                mlops_seterr(err, errlen, MLOPS_EPARSE, "promote: damaged result from task %zu", t);
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
        return rc ? rc : mlops_seterr(err, errlen, MLOPS_EINVAL, "promote: no partials");
    }
    mlk_metrics_result r;
    rc = mlk_metrics_compute(acc, &r, err, errlen);
    mlk_metrics_destroy(&acc);
    if (rc) return rc;
    const double vals[] = {r.accuracy,
                           r.has_log_loss ? r.log_loss : NAN,
                           r.has_auc ? r.roc_auc : NAN,
                           r.f1,
                           r.precision,
                           r.recall};
    double v = vals[j->spec->promote.metric < 6 ? j->spec->promote.metric : 2];
    job_set_metric(j, "promotion.champion_metric", v);
    job_logf(j, "promote: champion %s on %llu test rows: %s %.6f", stage_promote_metric_name(j),
             (unsigned long long)r.n, stage_promote_metric_name(j), v);
    return 0;
}

const stage_ops_t stage_promote = {"promote", promote_start, promote_args, promote_done, 2, NULL, 0, NULL, NULL};
