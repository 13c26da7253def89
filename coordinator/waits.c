/* waits.c: the held `wait` queries. `mlopsctl wait` (and `submit --wait`)
 * asks `wait JOB HOLD_MS`; instead of answering at once with the status,
 * the coordinator keeps the request and answers it when the job ends,
 * or when the hold runs out (so the client can redraw its progress and
 * knows the coordinator is alive), whichever comes first. Replies go
 * through the outbox like every other, after the commit that ended the
 * job. A client that polled would add half its poll interval to every
 * submit-to-result time, and ask dozens of times per job. */
#include "coord_internal.h"
#include "log.h"
#include <stdlib.h>
#include <string.h>

#define WAITS_MAX 1024      /* held at once; more are answered at once */
#define WAIT_HOLD_MAX 10000 /* ms, whatever the client asks */

typedef struct {
    zframe_t *identity;
    uint64_t seq;
    char job_id[16];
    int64_t deadline; /* mono ms */
} held_t;

struct coord_waits {
    held_t w[WAITS_MAX];
    size_t n;
};

coord_waits_t *coord_waits_new(void) { return calloc(1, sizeof(coord_waits_t)); }

void coord_waits_destroy(coord_waits_t **pw)
{
    if (!pw || !*pw) return;
    for (size_t i = 0; i < (*pw)->n; i++) zframe_destroy(&(*pw)->w[i].identity);
    free(*pw);
    *pw = NULL;
}

int coord_waits_hold(coord_t *c, zframe_t *id, uint64_t seq, const job_t *j, const Mlops__Query *q)
{
    coord_waits_t *ws = c->waits;
    if (!ws || j->state >= JOB_SUCCEEDED || ws->n >= WAITS_MAX) return 0;
    long hold = q->n_args ? strtol(q->args[0], NULL, 10) : 0;
    if (hold <= 0) return 0;
    if (hold > WAIT_HOLD_MAX) hold = WAIT_HOLD_MAX;
    held_t *h = &ws->w[ws->n];
    h->identity = zframe_dup(id);
    if (!h->identity) return 0;
    h->seq = seq;
    snprintf(h->job_id, sizeof h->job_id, "%s", j->id);
    h->deadline = zclock_mono() + hold;
    ws->n++;
    return 1;
}

void coord_waits_tick(coord_t *c)
{
    coord_waits_t *ws = c->waits;
    if (!ws || !ws->n) return;
    int64_t now = zclock_mono();
    size_t keep = 0;
    for (size_t i = 0; i < ws->n; i++) {
        held_t *h = &ws->w[i];
        job_t *j = coord_job_find(c, h->job_id);
        if (j && j->state < JOB_SUCCEEDED && now < h->deadline) {
            ws->w[keep++] = *h;
            continue;
        }
        if (j) coord_query_reply_status(c, h->identity, h->seq, j);
        else coord_reply_error(c, h->identity, h->seq, MLOPS__ERROR_CODE__NOT_FOUND,
                               "job '%s' was removed while waited for", h->job_id);
        zframe_destroy(&h->identity);
    }
    ws->n = keep;
}
