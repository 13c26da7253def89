/* profile_round0.h: the profile stage's decile round 0 (and its category
 * counts) answered by the featurize task, which holds the shard's raw
 * frame and its test flags already, so that the profile stage's first
 * phase needs no pass of its own (stage_profile.c). The answer is the
 * one a profile_qround task gives in round 0 for the same shard
 * (kind_profile.c): the same request, values, mask and counting, so the
 * reference's bytes do not depend on which of them answered. */
#ifndef MLOPS_WK_PROFILE_ROUND0_H
#define MLOPS_WK_PROFILE_ROUND0_H
#include "frame.h"
#include "task.h"
#include "tasks.pb-c.h"

typedef struct wk_profile_round0 wk_profile_round0;

/* Before featurize scales f in place: the raw values of the numeric
 * columns a names (a->profile_numeric). *out NULL (and 0) when a asks
 * for no round 0 (no profile_request). 0, or -1 after wk_task_fail. */
int wk_profile_round0_begin(task_ctx_t *ctx, const Mlops__Tasks__FeaturizeArgs *a, const mlk_frame *f,
                            wk_profile_round0 **out);

/* With the rows' test flags (test NULL: every row trains): the answer to
 * the request over the training rows, and the counts of the text columns
 * a names in f, packed as the task's result (a ProfileQroundResult).
 * 0, or -1 after wk_task_fail. */
int wk_profile_round0_finish(task_ctx_t *ctx, wk_profile_round0 *r, const Mlops__Tasks__FeaturizeArgs *a,
                             const mlk_frame *f, const uint8_t *test);

void wk_profile_round0_destroy(wk_profile_round0 **pr);

#endif
