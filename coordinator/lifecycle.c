/* lifecycle.c: the job table and the job/stage state machine of
 * jobmodel.h: start a job, start a stage, complete a phase or a stage,
 * finish a job, recompute a lost shard, remove a finished job (by `rm`
 * or by the retention settings).
 *
 * The planner entries (stage_ops_t) decide what a phase is; this file
 * decides when they are called, and moves the job through its states. It
 * only marks records dirty: the loop journals them before anything that
 * depends on them is sent.
 *
 * Stages run as a graph, not a line: a pending stage starts as soon as
 * every stage it needs (planner_stage_needs) is done, so the knn of the
 * example job runs beside scale .. profile, and evaluate beside profile.
 * Every output depends only on its inputs, so the results are the same
 * whatever the overlap; dispatch (dispatch.c) still serves the stages in
 * pipeline order, so an earlier stage's queued task goes first. */
#include "coord_internal.h"
#include "err.h"
#include "log.h"
#include "stages.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

job_t *coord_job_find(coord_t *c, const char *id)
{
    for (size_t i = 0; i < c->njobs; i++)
        if (!strcmp(c->jobs[i]->id, id)) return c->jobs[i];
    return NULL;
}

int coord_job_add(coord_t *c, job_t *j)
{
    if (c->njobs == c->jcap) {
        size_t cap = c->jcap ? c->jcap * 2 : 16;
        job_t **a = realloc(c->jobs, cap * sizeof *a);
        if (!a) return MLOPS_ENOMEM;
        c->jobs = a;
        c->jcap = cap;
    }
    c->jobs[c->njobs++] = j;
    return 0;
}

/* The job's shards leave the directory, and every live worker gets
 * DropJob: it stops the job's queued and running tasks and deletes the
 * job's shards (a worker away now drops them when it registers again:
 * shards.c). */
static void drop_everywhere(coord_t *c, job_t *j)
{
    coord_shards_drop_job(c, j->id);
    for (size_t w = 0; w < c->nworkers; w++) {
        if (!c->workers[w].alive) continue;
        envelope_t env;
        wire_init(&env, 0);
        Mlops__DropJob dj = MLOPS__DROP_JOB__INIT;
        dj.job_id = j->id;
        env.body_case = MLOPS__ENVELOPE__BODY_DROP_JOB;
        env.drop_job = &dj;
        coord_outbox_add(c, c->workers[w].identity, &env);
    }
}

/* Whether a stage still has work that may read its inputs: not done, or
 * done with a task queued or running again (recomputing a lost shard). */
static int stage_busy(const stage_t *st)
{
    if (st->state != ST_DONE) return 1;
    for (size_t t = 0; t < st->ntasks; t++)
        if (st->tasks[t].state == T_PENDING || st->tasks[t].state == T_RUNNING) return 1;
    return 0;
}

/* Delete the outputs of every done chain stage whose readers are all done
 * (planner_stage_reads), so the stores stop growing with the job and
 * LMDB reuses the freed, resident pages for the next stage's writes. A
 * shard a later recompute needs is recomputed in turn from its own
 * inputs, back to the job's input file if need be (coord_recompute via
 * dispatch); `export --stage` of a dropped stage recomputes it the same
 * way. Called when a stage completes; once a stage is dropped, copies
 * recomputed later (for an export) stay until the job is removed. */
static void drop_consumed(coord_t *c, job_t *j)
{
    /* the last stage's shards are the job's product, not an intermediate:
     * an ingest + clean job keeps its clean rows for export */
    for (size_t p = 0; p + 1 < j->nstages; p++) {
        stage_t *ps = &j->stages[p];
        if (ps->dropped || stage_busy(ps) || strcmp(ps->outsfx, "/") || !planner_stage_droppable(j, ps))
            continue;
        int needed = 0;
        for (size_t r = p + 1; r < j->nstages && !needed; r++)
            needed = stage_busy(&j->stages[r]) && planner_stage_reads(j, &j->stages[r], ps);
        if (needed) continue;
        ps->dropped = 1;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s/%s/", j->id, ps->name);
        size_t n = coord_shards_drop_prefix(c, prefix);
        if (!n) continue;
        for (size_t w = 0; w < c->nworkers; w++)
            if (c->workers[w].alive) coord_shards_tell_drop(c, (int)w, prefix);
        job_logf(j, "stage %s: its %zu shards are consumed: dropped (keep_stages: true keeps them)", ps->name, n);
    }
}

void coord_job_finish(coord_t *c, job_t *j, int state, const char *error)
{
    if (j->state >= JOB_SUCCEEDED) return;
    j->state = state;
    j->finished = coord_now_s();
    free(j->error);
    j->error = error ? strdup(error) : NULL;
    for (size_t s = 0; s < j->nstages; s++) {
        stage_t *st = &j->stages[s];
        if (st->state == ST_RUNNING || st->state == ST_PENDING) {
            st->state = state == JOB_CANCELLED ? ST_CANCELLED : (st->state == ST_RUNNING ? ST_FAILED : ST_PENDING);
            if (st->started > 0) st->seconds = coord_now_s() - st->started;
            st->dirty = 1;
        }
        for (size_t t = 0; t < st->ntasks; t++) {
            task_t *tk = &st->tasks[t];
            if (tk->state == T_RUNNING && tk->worker >= 0) {
                coord_worker_released(c, tk->worker, st);
                tk->worker = -1;
                tk->attempt = 0; /* late results are ignored */
            }
            if (tk->state == T_PENDING || tk->state == T_RUNNING) {
                tk->state = T_FAILED;
                /* the task table tells these from the task that failed */
                free(tk->error);
                tk->error = strdup(state == JOB_CANCELLED ? "abandoned: the job was cancelled"
                                                          : "abandoned: the job failed");
            }
            tk->queued = 0;
        }
        st->qhead = st->qtail = 0;
    }
    if (state == JOB_SUCCEEDED) {
        uint32_t rank = j->metric_rank; /* after every stage's metrics */
        j->metric_rank = (uint32_t)j->nstages + 1;
        coord_registry_on_success(c, j);
        j->metric_rank = rank;
    }
    coord_digest_forget(c, j->id);
    coord_registry_drop_prebuilt(c, j->id);
    if (error) job_logf(j, "job %s: %s", job_state_name(state), error);
    else job_logf(j, "job %s in %.3f s", job_state_name(state), j->finished - j->submitted);
    j->dirty = 1;
    if (state == JOB_CANCELLED) drop_everywhere(c, j);
}

/* Queue the tasks of the stage's phase, or hold them until what the
 * phase needs is done (planner_phase_ready; coord_job_advance lets them
 * go). */
static void stage_enqueue_phase(job_t *j, stage_t *st)
{
    st->held = !planner_phase_ready(j, st);
    if (st->held) {
        job_logf(j, "stage %s: its %s tasks wait for the stages they need", st->name, st->kind);
        return;
    }
    for (size_t t = 0; t < st->ntasks; t++) coord_stage_enqueue(st, (uint32_t)t);
}

/* Whether every stage that stage s needs is done. */
static int stage_ready(job_t *j, size_t s)
{
    for (size_t p = 0; p < s; p++)
        if (j->stages[p].state != ST_DONE && planner_stage_needs(j, &j->stages[s], &j->stages[p])) return 0;
    return 1;
}

void coord_job_advance(coord_t *c, job_t *j)
{
    if (j->state != JOB_RUNNING) return;
    /* in pipeline order; a stage with no tasks completes at once, which
     * may start others (the recursion sees them running and skips them) */
    for (size_t s = 0; s < j->nstages && j->state == JOB_RUNNING; s++) {
        stage_t *st = &j->stages[s];
        if (st->state == ST_PENDING && stage_ready(j, s)) coord_stage_start(c, j, s);
        else if (st->state == ST_RUNNING && st->held && planner_phase_ready(j, st)) stage_enqueue_phase(j, st);
    }
    if (j->state != JOB_RUNNING) return;
    size_t first = 0;
    while (first < j->nstages && j->stages[first].state == ST_DONE) first++;
    if (j->cur != first) {
        j->cur = first;
        j->dirty = 1;
    }
    if (first == j->nstages) coord_job_finish(c, j, JOB_SUCCEEDED, NULL);
}

void coord_stage_complete(coord_t *c, job_t *j, size_t s)
{
    stage_t *st = &j->stages[s];
    for (;;) {
        char err[1024] = "";
        /* the metrics it sets sort by stage (job_set_metric) */
        j->metric_rank = (uint32_t)s + 1;
        int rc = st->ops->phase_done(j, st, err, sizeof err);
        j->metric_rank = 0;
        if (rc < 0) {
            st->state = ST_FAILED;
            st->seconds = coord_now_s() - st->started;
            st->dirty = 1;
            coord_job_finish(c, j, JOB_FAILED, err[0] ? err : mlops_strerror(rc));
            return;
        }
        if (rc == 1) {
            LOG_D("job %s stage %s phase %u: %zu %s tasks", j->id, st->name, st->phase, st->ntasks,
                  st->kind);
            st->dirty = 1;
            if (st->ntasks == 0) continue;
            stage_enqueue_phase(j, st);
            return;
        }
        break;
    }
    st->state = ST_DONE;
    st->seconds = coord_now_s() - st->started;
    st->dirty = 1;
    job_logf(j, "stage %s done in %.3f s", st->name, st->seconds);
    drop_consumed(c, j);
    coord_job_advance(c, j);
    coord_registry_prepare(c, j); /* beside the knn stages left, if only they are */
}

void coord_stage_start(coord_t *c, job_t *j, size_t s)
{
    stage_t *st = &j->stages[s];
    st->state = ST_RUNNING;
    st->phase = 0;
    st->started = coord_now_s();
    st->dirty = 1;
    char err[1024] = "";
    j->metric_rank = (uint32_t)s + 1;
    int rc = st->ops->start(j, st, err, sizeof err);
    j->metric_rank = 0;
    if (rc < 0) {
        st->state = ST_FAILED;
        st->dirty = 1;
        coord_job_finish(c, j, JOB_FAILED, err[0] ? err : mlops_strerror(rc));
        return;
    }
    job_logf(j, "stage %s started: %zu %s tasks", st->name, st->ntasks, st->kind);
    if (st->ntasks == 0) {
        coord_stage_complete(c, j, s);
        return;
    }
    stage_enqueue_phase(j, st);
}

void coord_job_start(coord_t *c, job_t *j)
{
    char err[1024] = "";
    if ((j->spec && (j->spec->has_predict || j->spec->has_drift) && coord_registry_pin(c, j, 1, err, sizeof err) != 0) ||
        (j->spec && j->spec->has_promote && coord_registry_pin_champion(c, j, 1, err, sizeof err) != 0) ||
        planner_build(j, err, sizeof err) != 0) {
        coord_job_finish(c, j, JOB_FAILED, err);
        return;
    }
    j->state = JOB_RUNNING;
    j->cur = 0;
    j->dirty = 1;
    /* the lineage of what it registers: hashing a 40 MB input took 0.1
     * CPU-s, a fifth of an ingest + clean job's, which registers nothing */
    if (coord_registry_registers(j)) coord_digest_start(c, j);
    job_logf(j, "job started: %zu stages", j->nstages);
    coord_job_advance(c, j);
}

/* Reset the task that produced `key` so it runs again. 0 if a producer is
 * (or already was) queued, -1 if the key cannot be recomputed. */
int coord_recompute(coord_t *c, const char *key)
{
    char jid[16], sname[40];
    size_t t;
    const char *p1 = strchr(key, '/');
    if (!p1 || p1 - key >= (long)sizeof jid) return -1;
    memcpy(jid, key, (size_t)(p1 - key));
    jid[p1 - key] = 0;
    const char *p2 = strrchr(key, '/');
    if (p2 == p1) return -1;
    size_t sl = (size_t)(p2 - p1 - 1);
    if (sl >= sizeof sname) return -1;
    memcpy(sname, p1 + 1, sl);
    sname[sl] = 0;
    char *end;
    t = strtoul(p2 + 1, &end, 10);
    if (*end) return -1;
    job_t *j = coord_job_find(c, jid);
    if (!j || j->state == JOB_FAILED || j->state == JOB_CANCELLED) return -1;
    char *dot = strchr(sname, '.');
    if (dot) *dot = 0;
    stage_t *st = job_stage(j, sname);
    if (!st || t >= st->ntasks || !st->tasks[t].output_key || strcmp(st->tasks[t].output_key, key))
        return -1;
    task_t *tk = &st->tasks[t];
    if (tk->state == T_PENDING || tk->state == T_RUNNING) return 0;
    if (tk->state != T_DONE) return -1;
    tk->state = T_PENDING;
    if (st->state == ST_RUNNING && st->ndone) st->ndone--;
    coord_stage_enqueue(st, (uint32_t)t);
    job_logf(j, "shard %s lost: re-running %s task %zu", key, st->name, t);
    coord_save_task(c, j, (size_t)(st - j->stages), t);
    return 0;
}

/* Remove a finished job for good: its journal records, its uploaded
 * inputs, its entries in the shard directory, and (DropJob) the shards in
 * every worker's store. */
void coord_job_remove(coord_t *c, job_t *j)
{
    char key[64], prefix[64];
    snprintf(key, sizeof key, "job/%s", j->id);
    snprintf(prefix, sizeof prefix, "job/%s/", j->id);
    journal_del(c->journal, key);
    journal_del_prefix(c->journal, prefix);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/jobs/%s", c->data_dir, j->id);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char path[4500];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
        rmdir(dir);
    }
    drop_everywhere(c, j);
    coord_digest_forget(c, j->id);
    LOG_I("job %s removed", j->id);
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i] == j) {
            memmove(&c->jobs[i], &c->jobs[i + 1], (c->njobs - i - 1) * sizeof *c->jobs);
            c->njobs--;
            break;
        }
    coord_job_free(&j);
}


static int by_finished(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *)a, *y = *(job_t *const *)b;
    if (x->finished != y->finished) return x->finished < y->finished ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Without retention the journal, the uploads and the workers' stores
 * would grow with every job ever run. */
void coord_jobs_retain(coord_t *c)
{
    int keep = c->cfg.retain_jobs, age = c->cfg.retain_age_s;
    if (keep <= 0 && age <= 0) return;
    int64_t now_ms = zclock_mono();
    if (now_ms < c->next_retain_scan) return;
    c->next_retain_scan = now_ms + c->hb_ms;
    size_t n = 0;
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i]->state >= JOB_SUCCEEDED) n++;
    if (!n) return;
    job_t **done = malloc(n * sizeof *done);
    if (!done) return;
    n = 0;
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i]->state >= JOB_SUCCEEDED) done[n++] = c->jobs[i];
    qsort(done, n, sizeof *done, by_finished);
    double now = coord_now_s();
    for (size_t i = 0; i < n; i++) {
        job_t *j = done[i];
        int over = keep > 0 && n - i > (size_t)keep;
        int old = age > 0 && now - j->finished > age;
        if (!over && !old) continue;
        if (over)
            LOG_I("job %s removed by retention: more than %d finished jobs (--retain-jobs)", j->id, keep);
        else
            LOG_I("job %s removed by retention: finished %.0f s ago (--retain-age %d)", j->id,
                  now - j->finished, age);
        coord_job_remove(c, j);
    }
    free(done);
}
