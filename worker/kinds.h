/* kinds.h: task kinds implemented outside kinds.c (one file per group). */
#ifndef MLOPS_WORKER_KINDS_H
#define MLOPS_WORKER_KINDS_H
#include "task.h"

/* kind_model.c: scale, hash, split, train, evaluate */
int wk_kind_scale_moments(task_ctx_t *ctx);
int wk_kind_scale_apply(task_ctx_t *ctx);
int wk_kind_hash(task_ctx_t *ctx);
int wk_kind_split(task_ctx_t *ctx);
int wk_kind_featurize(task_ctx_t *ctx); /* scale_apply + hash + split of a frame shard */
int wk_kind_train_epoch(task_ctx_t *ctx);
int wk_kind_train_reduce(task_ctx_t *ctx);
int wk_kind_evaluate(task_ctx_t *ctx);

/* kind_lbfgs.c: one shard's loss and sparse gradient for the L-BFGS solver */
int wk_kind_lbfgs_grad(task_ctx_t *ctx);

/* kind_predict.c: batch scoring with a registered model */
int wk_kind_predict(task_ctx_t *ctx);
int wk_kind_promote_score(task_ctx_t *ctx);
int wk_kind_drift(task_ctx_t *ctx);
/* kind_join.c: a join's right table shard, and the join of a left shard */
int wk_kind_join_load(task_ctx_t *ctx);
int wk_kind_join(task_ctx_t *ctx);
int wk_kind_join_part(task_ctx_t *ctx);
int wk_kind_join_gather(task_ctx_t *ctx);

/* kinds.c, shared with the kinds that answer clean's first round or
 * report labels: see kinds.c */
int wk_shard_labels(task_ctx_t *ctx, const mlk_frame *f, char ***labels, size_t *nlabels);
void wk_labels_free(char **v, size_t n);
int wk_quantile_answer(task_ctx_t *ctx, const mlk_frame *f, int dropna, const uint8_t *req,
                       size_t reqlen, uint8_t **ans, size_t *anslen);

/* kind_profile.c: the training rows' reference distributions */
int wk_kind_profile_qround(task_ctx_t *ctx);
int wk_kind_profile_count(task_ctx_t *ctx);

#endif
