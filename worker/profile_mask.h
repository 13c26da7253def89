/* profile_mask.h: the training-row mask of a split shard, as the profile
 * kinds read it (kind_profile.c): which rows count toward the reference
 * distributions (test flag 0, or every row of a shard without a split). */
#ifndef MLOPS_WK_PROFILE_MASK_H
#define MLOPS_WK_PROFILE_MASK_H
#include "task.h"
#include <stddef.h>
#include <stdint.h>

/* Input `input`'s bytes (data, len), a packed (fpack.h) or encoded
 * feature shard, into *train (malloc'd, *nrows bytes, 1 = a training
 * row). A packed shard is validated where it lies (wk_packed_open) and
 * only its test flags are read. 0, or -1 after wk_task_fail naming the
 * shard and what is wrong with it (or out of memory, retried). */
int wk_profile_mask(task_ctx_t *ctx, size_t input, const void *data, size_t len, uint8_t **train,
                    size_t *nrows);

#endif
