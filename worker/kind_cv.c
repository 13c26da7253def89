/* kind_cv.c: a cross-validation fold's rows of a shard (see kind_cv.h).
 * method sklearn: the coordinator computed KFold's folds over every
 * training row of the job (kfold.h) and sends the shard's slice, one byte
 * per training row in order; method hash: each row's fold comes from its
 * global id, here. Arguments come over the network and are checked. */
#include "kind_cv.h"
#include "kfold.h"
#include <stdlib.h>

int wk_cv_select(task_ctx_t *ctx, const Mlops__Tasks__CvRows *cv, mlk_features **f)
{
    if (!cv) return 0;
    mlk_features *all = *f;
    if (cv->folds < 2 || cv->folds >= MLK_KFOLD_MAX || cv->fold >= cv->folds)
        return wk_task_fail(ctx, 0, "cv: damaged task arguments (fold %u of %u)", cv->fold, cv->folds);
    size_t ntrain = 0;
    for (size_t i = 0; i < all->nrows; i++) ntrain += !all->test || !all->test[i];
    if (!cv->hash && cv->assign.len != ntrain)
        return wk_task_fail(ctx, 0, "cv: %zu fold numbers for the %zu training rows of shard %s",
                            cv->assign.len, ntrain, ctx->ta->inputs[0]->key);
    uint8_t *sel = malloc(all->nrows ? all->nrows : 1);
    if (!sel) return wk_task_fail(ctx, 1, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < all->nrows; i++) {
        if (all->test && all->test[i]) {
            sel[i] = 0;
            continue;
        }
        uint32_t fold = cv->hash ? mlk_kfold_hash(cv->seed, all->row_id[i], cv->folds) : cv->assign.data[k];
        k++;
        if (fold >= cv->folds) {
            free(sel);
            return wk_task_fail(ctx, 0, "cv: fold %u of a row is beyond the %u folds", fold, cv->folds);
        }
        sel[i] = (fold == cv->fold) == (cv->holdout != 0);
    }
    mlk_features *sub = mlk_features_select(all, sel, 1);
    free(sel);
    if (!sub) return wk_task_fail(ctx, 1, "out of memory");
    mlk_features_destroy(f);
    *f = sub;
    return 0;
}
