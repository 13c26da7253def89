/* retry.c: what happens to a dispatch that ends without a good result —
 * its worker was lost, it ran past the job's task_timeout, or it failed
 * with a retryable error. Each such end counts one try; below the job's
 * max_attempts the task goes back to its queue with a fresh attempt
 * number (so the late result of the abandoned attempt is ignored), and
 * at the limit the job fails with one line naming the task, the worker
 * it last ran on and what ended it — never a bare "failed".
 *
 * The count is journalled with the task (TaskRecord.tries), so a task
 * that keeps failing is not given max_attempts afresh by a coordinator
 * restart. The restart itself is not counted: the attempt in flight is
 * void through no fault of the task (jobrecord.c re-queues it).
 * Nor is a worker that drains (SIGTERM, then Leave): it hands its tasks
 * back (coord_task_handback), so a rolling restart or a scale-down never
 * brings a job closer to max_attempts. */
#include "coord_internal.h"
#include "log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t max_attempts(const job_t *j)
{
    return j->spec && j->spec->max_attempts ? j->spec->max_attempts : 3;
}

int64_t coord_task_deadline(const job_t *j)
{
    double s = j->spec && j->spec->task_timeout > 0 ? j->spec->task_timeout : 600;
    return zclock_mono() + (int64_t)(s * 1000.0 + 0.5);
}

int coord_task_retry(coord_t *c, job_t *j, size_t s, size_t t, const char *why)
{
    stage_t *st = &j->stages[s];
    task_t *tk = &st->tasks[t];
    int w = tk->worker;
    char where[96] = "no worker";
    if (w >= 0 && (size_t)w < c->nworkers) {
        snprintf(where, sizeof where, "worker %s (%s)", c->workers[w].id,
                 c->workers[w].name ? c->workers[w].name : "?");
        if (tk->state == T_RUNNING) coord_worker_released(c, w, st);
    }
    tk->worker = -1;
    tk->deadline = 0;
    tk->tries++;
    free(tk->error);
    tk->error = strdup(why);
    uint32_t max = max_attempts(j);
    if (tk->tries < max) {
        tk->state = T_PENDING;
        coord_stage_enqueue(st, (uint32_t)t);
        coord_save_task(c, j, s, t); /* the try, in the batch the log line goes in */
        mlops_prom_add(c->obs.retried, st->kind, NULL, 1);
        job_logf(j, "%s task %zu attempt %u of %u on %s: %s; re-queued", st->name, t, tk->tries,
                 max, where, why);
        return 0;
    }
    tk->state = T_FAILED;
    coord_save_task(c, j, s, t);
    if (st->state == ST_RUNNING) {
        st->state = ST_FAILED;
        st->seconds = coord_now_s() - st->started;
        st->dirty = 1;
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s task %zu failed %u of %u attempts; the last on %s: %s", st->name,
             t, tk->tries, max, where, why);
    LOG_W("job %s: %s", j->id, msg);
    coord_job_finish(c, j, JOB_FAILED, msg);
    return -1;
}

/* Attempt `attempt` of task t of stage s never started on its worker:
 * back to the queue, no try counted. why: the assignment never got
 * there (its pipe or queue was full: that worker gets none for one
 * heartbeat interval); NULL: it named kept arguments the worker does not
 * hold (args_repeat.c). Either way the worker is assumed to keep none. */
static void requeue_unstarted(coord_t *c, job_t *j, size_t s, size_t t, uint32_t attempt, const char *why)
{
    if (s >= j->nstages || t >= j->stages[s].ntasks) return;
    stage_t *st = &j->stages[s];
    task_t *tk = &st->tasks[t];
    if (tk->state != T_RUNNING || tk->attempt != attempt) return;
    int w = tk->worker;
    if (w >= 0 && (size_t)w < c->nworkers) {
        coord_worker_t *wk = &c->workers[w];
        coord_worker_released(c, w, st);
        coord_args_forget(c, w); /* it may have carried the bytes a repeat names */
        if (why) {
            wk->paused_until = zclock_mono() + c->hb_ms;
            LOG_W("job %s: %s task %zu not delivered to worker %s (%s): %s; re-queued", j->id, st->name,
                  t, wk->id, wk->name ? wk->name : "?", why);
        } else {
            LOG_I("job %s: %s task %zu: worker %s does not hold the arguments it was sent; sending them again",
                  j->id, st->name, t, wk->id);
        }
    }
    tk->worker = -1;
    tk->deadline = 0;
    tk->state = T_PENDING;
    coord_stage_enqueue(st, (uint32_t)t);
    coord_save_task(c, j, s, t);
}

void coord_task_unsent(coord_t *c, job_t *j, size_t s, size_t t, uint32_t attempt, const char *why)
{
    requeue_unstarted(c, j, s, t, attempt, why ? why : "not delivered");
}

void coord_task_args_missing(coord_t *c, job_t *j, size_t s, size_t t, uint32_t attempt)
{
    requeue_unstarted(c, j, s, t, attempt, NULL);
}

void coord_task_handback(coord_t *c, job_t *j, size_t s, size_t t, const char *why)
{
    stage_t *st = &j->stages[s];
    task_t *tk = &st->tasks[t];
    int w = tk->worker;
    coord_worker_released(c, w, st);
    tk->worker = -1;
    tk->deadline = 0;
    tk->state = T_PENDING;
    coord_stage_enqueue(st, (uint32_t)t);
    coord_save_task(c, j, s, t);
    mlops_prom_add(c->obs.handed_back, st->kind, NULL, 1);
    job_logf(j, "%s task %zu handed back by %s; re-queued, no try counted", st->name, t, why);
}

void coord_tasks_expire(coord_t *c)
{
    int64_t now = zclock_mono();
    /* a full scan of the task tables: at most twice per heartbeat interval */
    if (now < c->next_expire_scan) return;
    c->next_expire_scan = now + (c->hb_ms / 2 > 0 ? c->hb_ms / 2 : 1);
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        if (j->state != JOB_RUNNING && j->state != JOB_SUCCEEDED) continue;
        for (size_t s = 0; s < j->nstages; s++) {
            stage_t *st = &j->stages[s];
            for (size_t t = 0; t < st->ntasks; t++) {
                task_t *tk = &st->tasks[t];
                if (tk->state != T_RUNNING || !tk->deadline || now < tk->deadline) continue;
                char why[96];
                snprintf(why, sizeof why, "timed out after %g s (task_timeout)",
                         j->spec ? j->spec->task_timeout : 600.0);
                if (coord_task_retry(c, j, s, t, why) != 0) break;
            }
            if (j->state != JOB_RUNNING && j->state != JOB_SUCCEEDED) break;
        }
    }
}
