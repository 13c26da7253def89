/* kind_cv.h: the rows of a feature shard that a cross-validation fold's
 * task uses (the CvRows of its arguments, proto/tasks.proto). The train
 * and evaluate kinds call it before their own row selection. */
#ifndef MLOPS_WK_KIND_CV_H
#define MLOPS_WK_KIND_CV_H
#include "fshard.h"
#include "task.h"
#include "tasks.pb-c.h"

/* With cv NULL: 0 and *f unchanged. Otherwise *f becomes the training
 * rows (test flag 0) outside fold cv->fold (cv->holdout false) or inside
 * it (true), without test flags. 0, or -1 after wk_task_fail (damaged
 * arguments, out of memory). */
int wk_cv_select(task_ctx_t *ctx, const Mlops__Tasks__CvRows *cv, mlk_features **f);

#endif
