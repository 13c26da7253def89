/* cancel.c: see cancel.h. A ring of job ids under one mutex; the set is
 * small and looked up once per shard, so a linear scan is enough. */
#include "cancel.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wk_cancel {
    pthread_mutex_t mu;
    char ids[WK_CANCEL_MAX][32];
    size_t n, next;
    int all; /* draining: every job is dropped */
};

wk_cancel_t *wk_cancel_new(void)
{
    wk_cancel_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void wk_cancel_destroy(wk_cancel_t **pc)
{
    if (!pc || !*pc) return;
    pthread_mutex_destroy(&(*pc)->mu);
    free(*pc);
    *pc = NULL;
}

void wk_cancel_lock(wk_cancel_t *c) { pthread_mutex_lock(&c->mu); }
void wk_cancel_unlock(wk_cancel_t *c) { pthread_mutex_unlock(&c->mu); }

int wk_cancel_has_locked(wk_cancel_t *c, const char *job_id)
{
    if (c->all) return 1;
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->ids[i], job_id)) return 1;
    return 0;
}

void wk_cancel_mark_locked(wk_cancel_t *c, const char *job_id)
{
    if (wk_cancel_has_locked(c, job_id)) return;
    snprintf(c->ids[c->next], sizeof c->ids[c->next], "%s", job_id);
    c->next = (c->next + 1) % WK_CANCEL_MAX;
    if (c->n < WK_CANCEL_MAX) c->n++;
}

void wk_cancel_all_locked(wk_cancel_t *c) { c->all = 1; }

int wk_cancel_has(wk_cancel_t *c, const char *job_id)
{
    wk_cancel_lock(c);
    int r = wk_cancel_has_locked(c, job_id);
    wk_cancel_unlock(c);
    return r;
}
