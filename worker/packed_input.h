/* packed_input.h: a task's packed feature shard (fpack.h) as the worker
 * kinds read it: opened and validated where it lies (or in an aligned
 * copy), each row's record offset listed, and its training rows' labels
 * checked against the model's classes. Used by train_epoch, evaluate
 * (kind_model.c) and the cross-validation kinds (kind_cv.c). */
#ifndef MLOPS_WK_PACKED_INPUT_H
#define MLOPS_WK_PACKED_INPUT_H
#include "fpack.h"
#include "task.h"
#include <stddef.h>
#include <stdint.h>

/* Open input `input`'s bytes (data, len) as a packed shard (fpack.h):
 * validated in place, or in an aligned copy (*copy, malloc'd) when data
 * is not 8-aligned; *off (malloc'd) gets each row's record offset, and
 * with shuffled set (an epoch's visits), a large shard's records are
 * copied into huge pages (*recs,
 * p->recs pointing there; left in place if that memory is not to be
 * had). 0, or -1 after wk_task_fail naming the shard and what is
 * damaged. The caller frees *off, *copy and *recs in either case. */
int wk_packed_open(task_ctx_t *ctx, size_t input, const void *data, size_t len, int shuffled, mlk_fpack *p,
                   size_t **off, uint8_t **copy, uint8_t **recs);

/* A shard opened by wk_packed_take: p, its record offsets (off) and the
 * memory behind them. */
typedef struct {
    mlk_fpack p;
    size_t *off;
    uint8_t *copy, *recs;
    int fresh_off, fresh_recs; /* not the thread's pooled buffers */
    void *cached;              /* p and off are a packed_cache.c entry's */
} wk_packed_t;

/* wk_packed_open into w, with the offsets and the huge-page copy in this
 * executor thread's buffers, kept for its next task (grown to the
 * largest shard it has opened: memory bounded by the largest shard, not
 * by their number) instead of fresh pages each task. Give them back with
 * wk_packed_release, in either case. */
int wk_packed_take(task_ctx_t *ctx, size_t input, const void *data, size_t len, int shuffled, wk_packed_t *w);

/* Give back what wk_packed_take took (w is zeroed). */
void wk_packed_release(wk_packed_t *w);

/* Free this thread's pooled buffers now (they are freed when it exits);
 * nothing if one is in use. */
void wk_packed_pool_free(void);

/* 0 when every training row (test flag 0) of p, its record at off[i],
 * has a label in [0, classes); else -1 after wk_task_fail naming the
 * first row that has none. */
int wk_packed_check_labels(task_ctx_t *ctx, const mlk_fpack *p, const size_t *off, uint32_t classes);

#endif
