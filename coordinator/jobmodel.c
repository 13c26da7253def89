/* jobmodel.c: the job/stage/task model: everything jobmodel.h and
 * stages.h declare that is not a planner entry, plus the task queue and
 * the job destructor the core uses (coord_internal.h).
 *
 * It knows nothing of sockets, workers or the journal: a field that must
 * reach the disk is marked dirty here and written by jobrecord.c when the
 * loop persists, so the planner can be linked and tested without them. */
#include "coord_internal.h"
#include "err.h"
#include "log.h"
#include "stages.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *job_state_name(int s)
{
    static const char *n[] = {"uploading", "queued", "running", "succeeded", "failed", "cancelled"};
    return s >= 0 && s <= JOB_CANCELLED ? n[s] : "?";
}

const char *stage_state_name(int s)
{
    static const char *n[] = {"pending", "running", "done", "failed", "cancelled"};
    return s >= 0 && s <= ST_CANCELLED ? n[s] : "?";
}

static void task_clear(task_t *t)
{
    free(t->output_key);
    free(t->result);
    for (size_t i = 0; i < t->nmetrics; i++) free(t->metrics[i].name);
    free(t->metrics);
    free(t->error);
    memset(t, 0, sizeof *t);
    t->worker = -1;
}

void coord_stage_enqueue(stage_t *st, uint32_t t)
{
    if (st->tasks[t].queued) return;
    if (st->qtail == st->qcap) {
        if (st->qhead > 0) {
            memmove(st->queue, st->queue + st->qhead, (st->qtail - st->qhead) * sizeof *st->queue);
            st->qtail -= st->qhead;
            st->qhead = 0;
        }
        if (st->qtail == st->qcap) {
            size_t cap = st->qcap ? st->qcap * 2 : 64;
            uint32_t *q = realloc(st->queue, cap * sizeof *q);
            if (!q) return;
            st->queue = q;
            st->qcap = cap;
        }
    }
    st->queue[st->qtail++] = t;
    st->tasks[t].queued = 1;
}

int stage_set_tasks(stage_t *st, size_t ntasks, const char *kind)
{
    for (size_t i = 0; i < st->ntasks; i++) task_clear(&st->tasks[i]);
    free(st->tasks);
    st->tasks = calloc(ntasks ? ntasks : 1, sizeof *st->tasks);
    if (!st->tasks) return MLOPS_ENOMEM;
    st->ntasks = ntasks;
    for (size_t i = 0; i < ntasks; i++) st->tasks[i].worker = -1;
    st->ndone = 0;
    st->qhead = st->qtail = 0;
    st->total_all += (uint32_t)ntasks;
    snprintf(st->kind, sizeof st->kind, "%s", kind);
    st->outsfx[0] = 0;
    st->dirty = 1;
    return 0;
}

void stage_set_output_keys(job_t *j, stage_t *st, const char *suffix)
{
    snprintf(st->outsfx, sizeof st->outsfx, "%s", suffix ? suffix : "");
    for (size_t t = 0; t < st->ntasks; t++) {
        free(st->tasks[t].output_key);
        st->tasks[t].output_key = NULL;
        if (!suffix) continue;
        char key[160];
        snprintf(key, sizeof key, "%s/%s%s%zu", j->id, st->name, suffix, t);
        st->tasks[t].output_key = strdup(key);
    }
}

void job_set_metric(job_t *j, const char *name, double v)
{
    for (size_t i = 0; i < j->nmetrics; i++)
        if (!strcmp(j->metrics[i].name, name)) {
            j->metrics[i].value = v;
            j->dirty = 1;
            return;
        }
    metric_t *m = realloc(j->metrics, (j->nmetrics + 1) * sizeof *m);
    if (!m) return;
    j->metrics = m;
    char *copy = strdup(name);
    if (!copy) return;
    /* after every metric of an earlier or the same stage: the order
     * `result` shows does not depend on which stage finished first. Run
     * one after another, the stages only ever append. */
    uint32_t rank = j->metric_rank ? j->metric_rank : (j->nmetrics ? m[j->nmetrics - 1].rank : 0);
    size_t at = j->nmetrics;
    while (at > 0 && m[at - 1].rank > rank) at--;
    memmove(&m[at + 1], &m[at], (j->nmetrics - at) * sizeof *m);
    m[at].name = copy;
    m[at].value = v;
    m[at].rank = rank;
    j->nmetrics++;
    j->dirty = 1;
}

double job_metric(const job_t *j, const char *name, double dflt)
{
    for (size_t i = 0; i < j->nmetrics; i++)
        if (!strcmp(j->metrics[i].name, name)) return j->metrics[i].value;
    return dflt;
}

void job_logf(job_t *j, const char *fmt, ...)
{
    char text[900], line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000), text);
    char **l = realloc(j->log, (j->nlog + 1) * sizeof *l);
    if (!l) return;
    j->log = l;
    l[j->nlog] = strdup(line);
    if (l[j->nlog]) j->nlog++;
    j->dirty = 1;
    LOG_I("job %s: %s", j->id, text);
}

void job_set_classes(job_t *j, char **labels, size_t n)
{
    for (size_t i = 0; i < j->nclasses; i++) free(j->classes[i]);
    free(j->classes);
    j->classes = labels;
    j->nclasses = n;
    j->dirty = 1;
}

size_t job_nclasses(const job_t *j) { return j->nclasses; }
const char *job_class(const job_t *j, size_t i) { return i < j->nclasses ? j->classes[i] : NULL; }

const char *job_file_path(const job_t *j, const char *role)
{
    for (size_t i = 0; i < j->nfiles; i++)
        if (!strcmp(j->files[i].role, role)) return j->files[i].path;
    return NULL;
}

const char *job_file_name(const job_t *j, const char *role)
{
    for (size_t i = 0; i < j->nfiles; i++)
        if (!strcmp(j->files[i].role, role)) return j->files[i].name;
    return NULL;
}

stage_t *job_stage(job_t *j, const char *name)
{
    for (size_t i = 0; i < j->nstages; i++)
        if (!strcmp(j->stages[i].name, name)) return &j->stages[i];
    return NULL;
}

const char *task_metric(const task_t *t, const char *name, double *v)
{
    for (size_t i = 0; i < t->nmetrics; i++)
        if (!strcmp(t->metrics[i].name, name)) {
            *v = t->metrics[i].value;
            return t->metrics[i].name;
        }
    return NULL;
}

void coord_job_free(job_t **pj)
{
    if (!pj || !*pj) return;
    job_t *j = *pj;
    for (size_t s = 0; s < j->nstages; s++) {
        stage_t *st = &j->stages[s];
        for (size_t t = 0; t < st->ntasks; t++) task_clear(&st->tasks[t]);
        free(st->tasks);
        free(st->queue);
        free(st->blob);
        stage_rt_drop(st);
    }
    free(j->stages);
    for (size_t i = 0; i < j->nfiles; i++) {
        if (j->files[i].fd >= 0) close(j->files[i].fd);
        free(j->files[i].role);
        free(j->files[i].name);
        free(j->files[i].path);
    }
    free(j->files);
    for (size_t i = 0; i < j->nmetrics; i++) free(j->metrics[i].name);
    free(j->metrics);
    for (size_t i = 0; i < j->nlog; i++) free(j->log[i]);
    free(j->log);
    free(j->train_loss);
    for (size_t i = 0; i < j->nclasses; i++) free(j->classes[i]);
    free(j->classes);
    free(j->name);
    free(j->error);
    free(j->spec_yaml);
    free(j->spec_name);
    free(j->idem_key);
    free(j->model);
    free(j->registered);
    free(j->pinned);
    planner_job_free(j);
    mlops_jobspec_destroy(&j->spec);
    free(j);
    *pj = NULL;
}

int stage_save_due(const job_t *j, const stage_t *st)
{
    return !st->ops || !st->ops->save_due || j->state != JOB_RUNNING || st->state != ST_RUNNING ||
           st->ops->save_due(j, st);
}

void stage_rt_drop(stage_t *st)
{
    if (st->rt && st->rt_free) st->rt_free(st->rt);
    st->rt = NULL;
    st->rt_free = NULL;
}
