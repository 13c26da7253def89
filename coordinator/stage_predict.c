/* stage_predict.c: batch scoring with a registered model. One phase, a
 * task per ingested shard ("predict", worker/kind_predict.c); each writes
 * a frame of predictions as the stage's final output, which `mlopsctl
 * export --stage predict` writes in input row order.
 *
 * The model was pinned when the job started (registry_build.c puts the
 * packed PredictModel in job_t.pinned); start copies it into the stage
 * blob, which is journalled, so re-runs and a restarted coordinator score
 * with the very same version even if the alias has moved since.
 * Args: PredictArgs (proto/tasks.proto); metrics rows, unscored. */
#include "err.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdlib.h>
#include <string.h>

static int predict_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "predict: no input stage");
    if (!j->pinned)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "predict: no model was pinned for the job");
    free(st->blob);
    st->blob = malloc(j->pinned_len ? j->pinned_len : 1);
    if (!st->blob) return MLOPS_ENOMEM;
    memcpy(st->blob, j->pinned, j->pinned_len);
    st->blob_len = j->pinned_len;
    int rc = stage_set_tasks(st, in->ntasks, "predict");
    if (!rc) stage_set_output_keys(j, st, "/");
    return rc;
}

static int predict_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in || t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EINVAL, "predict: bad task");
    Mlops__Tasks__PredictModel *pm =
        mlops__tasks__predict_model__unpack(NULL, st->blob_len, st->blob);
    if (!pm) return mlops_seterr(err, errlen, MLOPS_EPARSE, "predict: the pinned model is damaged");
    int rc = args_add_input(out, in->tasks[t].output_key);
    if (!rc) {
        Mlops__Tasks__PredictArgs a = MLOPS__TASKS__PREDICT_ARGS__INIT;
        a.model = pm;
        a.n_keep = j->spec->predict.n_keep;
        a.keep = j->spec->predict.keep;
        rc = args_pack(out, &a.base);
    }
    mlops__tasks__predict_model__free_unpacked(pm, NULL);
    return rc;
}

static int predict_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    double rows = stage_sum_metric(st, "rows"), unscored = stage_sum_metric(st, "unscored");
    job_set_metric(j, "rows_scored", rows - unscored);
    job_set_metric(j, "rows_unscored", unscored);
    if (unscored > 0)
        job_logf(j, "predict: %.0f row(s) have a missing value and were not scored", unscored);
    return 0;
}

const stage_ops_t stage_predict = {"predict", predict_start, predict_args, predict_done, 2, NULL, 0, NULL, NULL};
