/* dispatch.c: from the stages' ready queues to TaskAssign messages.
 *
 * Each loop iteration walks the running jobs' stages in order and hands
 * out pending tasks while some worker has room: up to slots x prefetch
 * assignments per worker, preferring the worker that already holds most
 * of a task's inputs, then the least loaded one, skipping a worker paused
 * because an assignment to it did not go out (coord_task_unsent), and
 * stopping while the outbox is full (--outbox-max). A worker with room
 * whose best task is all remote takes a later task it holds the inputs of
 * first (local_task_ahead). Stages running beside an earlier stage they
 * do not need share all but one slot (side_budget), offered after the
 * other stages, the last side stage first. An input without a live
 * holder is recomputed by its producer (the task waits at the back of
 * its queue) or, if it cannot be, re-arms the stage or fails the job. */
#include "coord_internal.h"
#include "err.h"
#include "log.h"
#include "stages.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stage's assignments in flight per worker slot: its own, or the
 * cluster's --prefetch-tasks where it leaves that open (0). */
static uint32_t stage_prefetch(const coord_t *c, const stage_ops_t *ops)
{
    if (ops->prefetch > 0) return (uint32_t)ops->prefetch;
    return c->cfg.prefetch_tasks > 0 ? (uint32_t)c->cfg.prefetch_tasks : 2;
}

static int pick_worker(coord_t *c, const stage_ops_t *ops, char **inputs, size_t ninputs, int *nlocal)
{
    int64_t now = zclock_mono();
    int best = -1;
    int best_local = -1;
    uint32_t best_load = UINT32_MAX;
    for (size_t w = 0; w < c->nworkers; w++) {
        coord_worker_t *wk = &c->workers[w];
        uint32_t cap = wk->slots * stage_prefetch(c, ops);
        /* past its slots, a task waits in the worker's queue: only behind
         * tasks of its own kind, never behind a long side-stage task
         * (knn, profile) that would hold its epoch's barrier */
        if (ops->prefetch == 0 && wk->inflight >= wk->slots && wk->inflight_queueable < wk->inflight) cap = wk->slots;
        if (!wk->alive || wk->inflight >= cap || wk->paused_until > now) continue;
        int local = 0;
        for (size_t i = 0; i < ninputs; i++) local += coord_shard_held_by(c, inputs[i], (int)w);
        /* load as a fraction of capacity, so bigger workers get more */
        uint32_t load = (uint32_t)((uint64_t)wk->inflight * 1024 / wk->slots);
        if (local > best_local || (local == best_local && load < best_load)) {
            best = (int)w;
            best_local = local;
            best_load = load;
        }
    }
    *nlocal = best_local;
    return best;
}

static int any_capacity(coord_t *c)
{
    for (size_t w = 0; w < c->nworkers; w++)
        if (c->workers[w].alive && c->workers[w].inflight < c->workers[w].slots * 512) return 1;
    return 0;
}

static void free_args(task_args_t *a)
{
    free(a->args);
    for (size_t i = 0; i < a->ninputs; i++) free(a->inputs[i]);
    free(a->inputs);
    memset(a, 0, sizeof *a);
}

int coord_task_inputs_lost(coord_t *c, job_t *j, stage_t *st, size_t t)
{
    task_args_t a;
    memset(&a, 0, sizeof a);
    a.inputs_only = 1;
    char err[256];
    if (st->ops->task_args(j, st, t, &a, err, sizeof err) != 0) {
        free_args(&a);
        return 0;
    }
    int lost = 0;
    for (size_t i = 0; i < a.ninputs && !lost; i++) lost = coord_shard_holder(c, a.inputs[i]) < 0;
    free_args(&a);
    return lost;
}

/* Whether key is a final output of one of the job's row-chain stages
 * (planner_stage_droppable): those are read where they are held, so a
 * worker that fetches one need not keep a copy. */
static int chain_shard(job_t *j, const char *key)
{
    const char *s = strchr(key, '/'), *e = s ? strchr(s + 1, '/') : NULL;
    char name[40];
    if (!e || (size_t)(e - s - 1) >= sizeof name) return 0;
    memcpy(name, s + 1, (size_t)(e - s - 1));
    name[e - s - 1] = 0;
    const stage_t *st = job_stage(j, name);
    return st && planner_stage_droppable(j, st);
}

/* Forget the stage's running tasks, releasing their workers' slots. */
static void stage_abandon_running(coord_t *c, stage_t *st)
{
    for (size_t t = 0; t < st->ntasks; t++) {
        task_t *tk = &st->tasks[t];
        if (tk->state != T_RUNNING) continue;
        coord_worker_released(c, tk->worker, st);
        tk->worker = -1;
        tk->state = T_PENDING;
        tk->attempt = 0;
    }
}

/* The queue position (after qhead, within LOOKAHEAD) of a pending task
 * whose inputs worker w already holds and all have a live holder, or 0.
 * A worker with room takes such a task before one it would have to fetch
 * every input of from a busy holder: every fetched byte crosses CURVE
 * twice and is written again. Without one it takes the remote task, so
 * no worker idles while tasks wait. */
#define LOOKAHEAD 32
static size_t local_task_ahead(coord_t *c, job_t *j, stage_t *st, int w)
{
    size_t end = st->qtail - st->qhead > LOOKAHEAD ? st->qhead + LOOKAHEAD : st->qtail;
    for (size_t q = st->qhead + 1; q < end; q++) {
        uint32_t u = st->queue[q];
        if (st->tasks[u].state != T_PENDING) continue;
        task_args_t a = {.inputs_only = 1};
        char err[256];
        int ok = st->ops->task_args(j, st, u, &a, err, sizeof err) == 0 && a.ninputs > 0, local = 0;
        for (size_t i = 0; ok && i < a.ninputs; i++) {
            ok = coord_shard_holder(c, a.inputs[i]) >= 0;
            local |= coord_shard_held_by(c, a.inputs[i], w);
        }
        free_args(&a);
        if (ok && local) return q;
    }
    return 0;
}

/* Whether stage s runs beside an earlier stage it does not need (knn
 * or profile's decile rounds beside train). */
static int side_stage(job_t *j, size_t s)
{
    for (size_t p = 0; p < s; p++)
        if (j->stages[p].state == ST_RUNNING && !planner_stage_needs(j, &j->stages[s], &j->stages[p])) return 1;
    return 0;
}

/* How many more tasks the job's side stages may start: together they
 * hold at most all but one of the cluster's slots, so an earlier stage's
 * next phase always finds a free slot instead of waiting behind the side
 * stages' longer tasks at each of its barriers (measured: train took
 * nearly twice as long without it). With one slot the side stages wait: the
 * stages then run in pipeline order, as one slot allows. */
static size_t side_budget(coord_t *c, job_t *j)
{
    size_t slots = 0, held = 0;
    for (size_t w = 0; w < c->nworkers; w++)
        if (c->workers[w].alive) slots += c->workers[w].slots;
    for (size_t s = 0; s < j->nstages; s++) {
        const stage_t *st = &j->stages[s];
        if (st->state != ST_RUNNING || !side_stage(j, s)) continue;
        for (size_t t = 0; t < st->ntasks; t++) held += st->tasks[t].state == T_RUNNING;
    }
    return slots > held + 1 ? slots - held - 1 : 0;
}

/* Dispatch what can run from one stage. Returns 0 when no worker has
 * room for this stage's tasks. */
static int dispatch_stage(coord_t *c, job_t *j, size_t s, size_t *budget)
{
    stage_t *st = &j->stages[s];
    size_t blocked = 0;
    while (st->qhead < st->qtail && (!budget || *budget > 0)) {
        uint32_t t = st->queue[st->qhead];
        task_t *tk = &st->tasks[t];
        if (tk->state != T_PENDING) {
            st->qhead++;
            tk->queued = 0;
            continue;
        }
        /* the inputs first: the arguments are packed only for a task
         * that goes out (not for one that waits for room or for an input) */
        task_args_t a = {.inputs_only = 1};
        char err[1024] = "";
        int rc = st->ops->task_args(j, st, t, &a, err, sizeof err);
        if (rc != 0) {
            free_args(&a);
            coord_job_finish(c, j, JOB_FAILED, err[0] ? err : mlops_strerror(rc));
            return 1;
        }
        /* every input must have a live holder */
        int missing = 0;
        Mlops__ShardRef *refs = calloc(a.ninputs ? a.ninputs : 1, sizeof *refs);
        Mlops__ShardRef **rp = calloc(a.ninputs ? a.ninputs : 1, sizeof *rp);
        for (size_t i = 0; refs && rp && i < a.ninputs; i++) {
            int h = coord_shard_holder(c, a.inputs[i]);
            if (h < 0) {
                missing++;
                if (coord_recompute(c, a.inputs[i]) != 0) {
                    char msg[1024] = "";
                    int rrc = -1;
                    if (st->ops->restart && st->state == ST_RUNNING) {
                        /* an earlier phase's output: re-arm the stage. Its
                         * running tasks are dropped: give their workers'
                         * slots back (their late results are ignored). */
                        stage_abandon_running(c, st);
                        rrc = st->ops->restart(j, st, msg, sizeof msg);
                        if (rrc == 0) {
                            st->dirty = 1;
                            for (size_t k = 0; k < st->ntasks; k++) coord_stage_enqueue(st, (uint32_t)k);
                        }
                    }
                    if (rrc != 0) {
                        if (!msg[0]) snprintf(msg, sizeof msg, "shard %s is lost and cannot be recomputed", a.inputs[i]);
                        coord_job_finish(c, j, JOB_FAILED, msg);
                    }
                    free(refs);
                    free(rp);
                    free_args(&a);
                    return 1;
                }
                continue;
            }
            mlops__shard_ref__init(&refs[i]);
            refs[i].key = a.inputs[i];
            refs[i].endpoint = c->workers[h].endpoint;
            refs[i].worker_id = c->workers[h].id;
            refs[i].server_key = (char *)coord_worker_key(c, h);
            refs[i].no_cache = chain_shard(j, a.inputs[i]);
            rp[i] = &refs[i];
        }
        if (missing) {
            /* wait for the producer: move to the back of the queue */
            free(refs);
            free(rp);
            free_args(&a);
            st->qhead++;
            tk->queued = 0;
            coord_stage_enqueue(st, t);
            if (++blocked >= st->qtail - st->qhead) return 1;
            continue;
        }
        int nlocal = 0;
        int w = coord_outbox_full(c) ? -1 : pick_worker(c, st->ops, a.inputs, a.ninputs, &nlocal);
        if (w < 0) {
            free(refs);
            free(rp);
            free_args(&a);
            return 0;
        }
        size_t ahead = a.ninputs && !nlocal ? local_task_ahead(c, j, st, w) : 0;
        if (ahead) {
            /* run that one first; this task stays at the head */
            st->queue[st->qhead] = st->queue[ahead];
            st->queue[ahead] = t;
            free(refs);
            free(rp);
            free_args(&a);
            continue;
        }
        task_args_t full = {0};
        if ((rc = st->ops->task_args(j, st, t, &full, err, sizeof err)) != 0) {
            free_args(&full);
            free(refs);
            free(rp);
            free_args(&a);
            coord_job_finish(c, j, JOB_FAILED, err[0] ? err : mlops_strerror(rc));
            return 1;
        }
        coord_worker_t *wk = &c->workers[w];
        tk->attempt = (uint32_t)(++c->next_attempt);
        if (c->next_attempt > c->attempt_reserved) {
            /* this assignment waits for the commit of the new block; the
             * next ATTEMPT_BLOCK may go out before theirs (coord.c) */
            c->attempt_reserved = c->next_attempt + COORD_ATTEMPT_BLOCK;
            c->meta_dirty = 1;
        }
        tk->state = T_RUNNING;
        tk->worker = w;
        snprintf(tk->ran_on, sizeof tk->ran_on, "%s", wk->name ? wk->name : wk->id);
        tk->dispatches++;
        tk->deadline = coord_task_deadline(j);
        coord_worker_assigned(c, w, st);
        if (budget) (*budget)--;
        st->qhead++;
        tk->queued = 0;
        envelope_t env;
        wire_init(&env, 0);
        Mlops__TaskAssign ta = MLOPS__TASK_ASSIGN__INIT;
        ta.job_id = j->id;
        ta.stage_idx = (uint32_t)s;
        ta.task_idx = t;
        ta.attempt = tk->attempt;
        ta.kind = st->kind;
        ta.spec.data = (uint8_t *)j->spec_yaml;
        ta.spec.len = j->spec_len;
        ta.args.data = full.args;
        ta.args.len = full.args_len;
        if (coord_args_repeat(c, w, full.args, full.args_len, tk->attempt, &ta.args_id)) {
            ta.args_repeat = 1;
            ta.args.data = NULL;
            ta.args.len = 0;
        }
        ta.n_inputs = a.ninputs;
        ta.inputs = rp;
        ta.output_key = tk->output_key ? tk->output_key : "";
        env.body_case = MLOPS__ENVELOPE__BODY_TASK_ASSIGN;
        env.task_assign = &ta;
        coord_outbox_add(c, wk->identity, &env);
        mlops_prom_add(c->obs.dispatched, st->kind, NULL, 1);
        wk->last_sent = zclock_mono();
        coord_save_task(c, j, s, t);
        LOG_D("assign %s/%s/%u (%s) attempt %u -> %s%s", j->id, st->name, t, st->kind, tk->attempt,
              wk->id, ta.args_repeat ? " (its arguments: a repeat)" : "");
        free(refs);
        free(rp);
        free_args(&a);
        free_args(&full);
    }
    return 1;
}

void coord_dispatch(coord_t *c)
{
    if (!any_capacity(c)) return;
    for (size_t i = 0; i < c->njobs && !coord_outbox_full(c); i++) {
        job_t *j = c->jobs[i];
        if (j->state != JOB_RUNNING && j->state != JOB_SUCCEEDED) continue;
        size_t budget = SIZE_MAX;
        int budgeted = 0;
        /* the stages in order, but the side stages after the others and
         * from the last back: in the purchases job knn, the job's longest
         * path, is offered the side budget before profile, whose count
         * phase waits for train anyway (8 interleaved sets of 3 jobs at
         * 1M rows, 2 workers: the sets' medians 1.85-2.15 s, median 2.05,
         * before; 1.76-2.23 s, median 1.88, after; faster in 6 of 8) */
        for (size_t k = 0; k < 2 * j->nstages; k++) {
            int pass = k >= j->nstages; /* 0: the other stages, 1: the side stages */
            size_t s = pass ? 2 * j->nstages - 1 - k : k;
            if (j->stages[s].qhead == j->stages[s].qtail) continue;
            int side = j->state == JOB_RUNNING && side_stage(j, s);
            if (side != pass) continue;
            if (side && !budgeted) {
                budget = side_budget(c, j);
                budgeted = 1;
            }
            dispatch_stage(c, j, s, side ? &budget : NULL);
            if (j->state != JOB_RUNNING && j->state != JOB_SUCCEEDED) break;
        }
    }
}

