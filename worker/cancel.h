/* cancel.h: the jobs a worker has been told to drop (DropJob: the job
 * was cancelled or removed), shared by the main thread and the executor
 * threads.
 *
 * Why: a cancelled job's tasks may be waiting in the executor FIFO or
 * running. An executor checks the set before it starts a task, before
 * each input shard and before each output write, so a running task stops
 * at its next shard boundary and never writes a shard after the drop has
 * deleted the job's others (the check and the write hold the set's lock,
 * the same lock the drop holds while it deletes). The set keeps the last
 * WK_CANCEL_MAX job ids: a job's tasks stop arriving once the
 * coordinator has dropped it, so only recent ones matter.
 *
 * A draining worker (SIGTERM) marks every job at once (wk_cancel_all):
 * it has handed its tasks back, so they stop at their next shard. */
#ifndef MLOPS_WORKER_CANCEL_H
#define MLOPS_WORKER_CANCEL_H
#include <stddef.h>

#define WK_CANCEL_MAX 64

typedef struct wk_cancel wk_cancel_t;

wk_cancel_t *wk_cancel_new(void);
void wk_cancel_destroy(wk_cancel_t **pc);
/* Hold the set's lock around a mark and the deletion it guards, or a
 * check and the write it guards. */
void wk_cancel_lock(wk_cancel_t *c);
void wk_cancel_unlock(wk_cancel_t *c);
/* With the lock held: add job_id / is job_id in the set (1 or 0). */
void wk_cancel_mark_locked(wk_cancel_t *c, const char *job_id);
int wk_cancel_has_locked(wk_cancel_t *c, const char *job_id);
/* With the lock held: every job counts as dropped from now on. */
void wk_cancel_all_locked(wk_cancel_t *c);
/* Takes the lock itself. */
int wk_cancel_has(wk_cancel_t *c, const char *job_id);

#endif
