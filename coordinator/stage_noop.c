/* stage_noop.c: N empty tasks ("noop"), for measuring the scheduler
 * (bench/bench_cluster.py). */
#include "jobmodel.h"
#include "stages.h"

static int noop_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return stage_set_tasks(st, j->spec->noop.tasks, "noop");
}

static int noop_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    (void)j;
    (void)st;
    (void)t;
    (void)out;
    (void)err;
    (void)errlen;
    return 0;
}

static int noop_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    job_set_metric(j, "tasks", (double)st->ntasks);
    return 0;
}

const stage_ops_t stage_noop = {"noop", noop_start, noop_args, noop_done, 256, NULL, 0, NULL, NULL};
