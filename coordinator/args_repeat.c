/* args_repeat.c: a task's arguments sent once per worker while they
 * repeat. An L-BFGS evaluation sends the same point (its ~12,000 active
 * weights and their inputs, ~140 KB) to each of its 16 gradient tasks;
 * each copy was packed, encrypted by CURVE, copied through the loopback
 * socket and decrypted again (CURVE alone was 12% of a fit). So the
 * coordinator keeps, per worker, the last arguments it sent with their
 * bytes, and a task whose arguments are the same bytes (memcmp: no hash
 * to collide) goes with an empty args field and args_repeat set; the
 * worker keeps the bytes of the last args_id it was sent
 * (worker/worker.c) and puts them back before the task runs.
 *
 * The id is the attempt number of the assignment that carried the
 * bytes: unique across coordinator restarts (attempts are reserved in
 * the journal), so a worker never takes another coordinator's kept
 * bytes for these. What a worker holds is only ever assumed: a
 * repeat that finds nothing (the carrying message was refused by a
 * full pipe, the worker restarted) is answered args_missing, and the
 * task is queued again with its bytes, no try counted. Any other
 * assignment that did not arrive, and a worker lost or registering
 * again, forget what it holds the same way. */
#include "coord_internal.h"
#include <stdlib.h>
#include <string.h>

/* Arguments shorter than this go as they are: the compare and the copy
 * would cost more than they save. */
#define ARGS_REPEAT_MIN 4096

int coord_args_repeat(coord_t *c, int w, const uint8_t *args, size_t len, uint64_t attempt, uint64_t *id)
{
    *id = 0;
    if (w < 0 || (size_t)w >= c->nworkers || len < ARGS_REPEAT_MIN) return 0;
    coord_worker_t *wk = &c->workers[w];
    if (wk->args_kept && wk->args_kept_len == len && memcmp(wk->args_kept, args, len) == 0) {
        *id = wk->args_kept_id;
        return 1;
    }
    uint8_t *copy = realloc(wk->args_kept, len);
    if (!copy) { /* sent as they are, and nothing assumed */
        coord_args_forget(c, w);
        return 0;
    }
    memcpy(copy, args, len);
    wk->args_kept = copy;
    wk->args_kept_len = len;
    wk->args_kept_id = attempt;
    *id = attempt;
    return 0;
}

void coord_args_forget(coord_t *c, int w)
{
    if (w < 0 || (size_t)w >= c->nworkers) return;
    coord_worker_t *wk = &c->workers[w];
    free(wk->args_kept);
    wk->args_kept = NULL;
    wk->args_kept_len = 0;
    wk->args_kept_id = 0;
}
