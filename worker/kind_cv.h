/* kind_cv.h: the worker side of cross-validation: the rows of a feature
 * shard a fold's task uses (the CvRows of its arguments,
 * proto/tasks.proto), and the cv_epoch and cv_evaluate kinds that serve
 * every (trial, fold) instance of a search from one read of a shard. */
#ifndef MLOPS_WK_KIND_CV_H
#define MLOPS_WK_KIND_CV_H
#include "fshard.h"
#include "sgd.h"
#include "task.h"
#include "tasks.pb-c.h"

/* With cv NULL: 0 and *f unchanged. Otherwise *f becomes the training
 * rows (test flag 0) outside fold cv->fold (cv->holdout false) or inside
 * it (true), without test flags. 0, or -1 after wk_task_fail (damaged
 * arguments, out of memory). The train and evaluate kinds call it
 * before their own row selection. */
int wk_cv_select(task_ctx_t *ctx, const Mlops__Tasks__CvRows *cv, mlk_features **f);

/* The SGD options of one epoch task's arguments: a train_epoch task's,
 * and each instance's of a cv_epoch task (one epoch from a->epoch). */
void wk_epoch_opts(const Mlops__Tasks__TrainEpochArgs *a, mlk_sgd_opts *o);

/* cv_epoch (CvEpochArgs -> CvEpochResult): one SGD epoch of each
 * instance over the shard's training rows outside its fold, the same
 * parameters as a train_epoch task of that instance with CvRows. */
int wk_kind_cv_epoch(task_ctx_t *ctx);

/* cv_evaluate (CvEvaluateArgs -> CvEvaluateResult): each instance's
 * metrics partial over its fold's rows, as evaluate with CvRows. */
int wk_kind_cv_evaluate(task_ctx_t *ctx);

#endif
