/* workers.c: the worker registry. A worker is known by its ROUTER
 * identity; it registers, is heard from (any message counts as a
 * heartbeat) and is declared lost after three heartbeat intervals of
 * silence (Paranoid Pirate), which re-queues its running tasks and drops
 * its shards from the directory. */
#include "coord_internal.h"
#include "log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void identity_key(zframe_t *id, char *out, size_t n)
{
    size_t len = zframe_size(id);
    const uint8_t *d = zframe_data(id);
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < n; i++) o += (size_t)snprintf(out + o, n - o, "%02x", d[i]);
    out[o] = 0;
}

int coord_worker_find(coord_t *c, zframe_t *id)
{
    char key[600];
    identity_key(id, key, sizeof key);
    void *v = zhashx_lookup(c->by_identity, key);
    return v ? (int)((intptr_t)v - 1) : -1;
}

/* Both ends of a worker: lost (silence, a re-registration: each running
 * task counts a try) or left (it said Leave while draining: none does). */
static void worker_gone(coord_t *c, int w, const char *why, int left)
{
    coord_worker_t *wk = &c->workers[w];
    if (!wk->alive) return;
    wk->alive = 0;
    wk->left = left;
    if (left) LOG_I("worker %s (%s) left (%s): re-queueing its tasks", wk->id, wk->name, why);
    else LOG_W("worker %s (%s) %s: re-queueing its tasks", wk->id, wk->name, why);
    char key[600];
    identity_key(wk->identity, key, sizeof key);
    zhashx_delete(c->by_identity, key);
    char why_task[160];
    if (left) snprintf(why_task, sizeof why_task, "worker %s (%s), which left (%s)", wk->id, wk->name, why);
    else snprintf(why_task, sizeof why_task, "worker lost (%s)", why);
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        for (size_t s = 0; s < j->nstages; s++) {
            stage_t *st = &j->stages[s];
            for (size_t t = 0; t < st->ntasks; t++) {
                task_t *tk = &st->tasks[t];
                if (tk->state != T_RUNNING || tk->worker != w) continue;
                if (left) coord_task_handback(c, j, s, t, why_task);
                else coord_task_retry(c, j, s, t, why_task);
            }
        }
    }
    wk->inflight = 0;
    wk->inflight_queueable = 0;
    coord_args_forget(c, w);
    coord_shard_forget_worker(c, w);
}

void coord_worker_lost(coord_t *c, int w, const char *why) { worker_gone(c, w, why, 0); }

void coord_worker_assigned(coord_t *c, int w, const stage_t *st)
{
    if (w < 0 || (size_t)w >= c->nworkers) return;
    coord_worker_t *wk = &c->workers[w];
    wk->inflight++;
    if (st->ops->prefetch == 0) wk->inflight_queueable++;
}

void coord_worker_released(coord_t *c, int w, const stage_t *st)
{
    if (w < 0 || (size_t)w >= c->nworkers) return;
    coord_worker_t *wk = &c->workers[w];
    if (wk->inflight) wk->inflight--;
    if (st->ops->prefetch == 0 && wk->inflight_queueable) wk->inflight_queueable--;
    if (wk->inflight_queueable > wk->inflight) wk->inflight_queueable = wk->inflight;
}
void coord_worker_left(coord_t *c, int w, const char *why) { worker_gone(c, w, why, 1); }

int coord_worker_register(coord_t *c, zframe_t *id)
{
    char key[600];
    identity_key(id, key, sizeof key);
    int w = coord_worker_find(c, id);
    if (w < 0) {
        if (c->nworkers == c->wcap) {
            size_t cap = c->wcap ? c->wcap * 2 : 16;
            coord_worker_t *a = realloc(c->workers, cap * sizeof *a);
            if (!a) return -1;
            c->workers = a;
            c->wcap = cap;
        }
        w = (int)c->nworkers++;
        coord_worker_t *wk = &c->workers[w];
        memset(wk, 0, sizeof *wk);
        snprintf(wk->id, sizeof wk->id, "w%d", w + 1);
        wk->identity = zframe_dup(id);
        zhashx_insert(c->by_identity, key, (void *)(intptr_t)(w + 1));
    } else if (c->workers[w].alive) {
        /* the same connection registering again: forget its old state */
        coord_worker_lost(c, w, "re-registered");
        zhashx_insert(c->by_identity, key, (void *)(intptr_t)(w + 1));
    }
    coord_worker_t *wk = &c->workers[w];
    coord_args_forget(c, w); /* a new process, or one that lost our messages */
    wk->alive = 1;
    wk->left = 0;
    wk->inflight = 0;
    wk->inflight_queueable = 0;
    wk->last_seen = zclock_mono();
    return w;
}

void coord_workers_heartbeat(coord_t *c)
{
    int64_t now = zclock_mono();
    for (size_t w = 0; w < c->nworkers; w++) {
        coord_worker_t *wk = &c->workers[w];
        if (!wk->alive) continue;
        if (now - wk->last_seen > 3 * c->hb_ms) {
            coord_worker_lost(c, (int)w, "expired (no heartbeat)");
            continue;
        }
        if (now - wk->last_sent >= c->hb_ms) {
            envelope_t env;
            wire_init(&env, 0);
            Mlops__Heartbeat hb = MLOPS__HEARTBEAT__INIT;
            env.body_case = MLOPS__ENVELOPE__BODY_HEARTBEAT;
            env.heartbeat = &hb;
            coord_outbox_add(c, wk->identity, &env);
            wk->last_sent = now;
        }
    }
}

