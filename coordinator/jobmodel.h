/* jobmodel.h: the coordinator's view of jobs, stages, tasks and workers,
 * and the planner interface through which each stage kind plans its
 * tasks.
 *
 * A job is a list of stages in pipeline order; a stage starts once the
 * earlier stages it needs are done (planner_stage_needs), so stages that
 * do not need each other run at the same time. A stage runs in one or more
 * phases (a quantile round, an SGD epoch, a reduction level); a phase is
 * a set of tasks, all of one kind, that may run in any order and on any
 * worker. When every task of a phase is done the stage's planner entry
 * reduces their results and either sets up the next phase or ends the
 * stage. Adding a stage = one worker kernel + one stage_ops_t entry.
 *
 * Task life cycle (state x event -> state), traced with -v:
 *   PENDING  --dispatch-->         RUNNING
 *   RUNNING  --result ok-->        DONE
 *   RUNNING  --result retryable--> PENDING (FAILED at max_attempts)
 *   RUNNING  --result error-->     FAILED  (the job fails)
 *   RUNNING  --worker expired-->   PENDING (FAILED at max_attempts)
 *   RUNNING  --task_timeout-->     PENDING (FAILED at max_attempts)
 *   DONE     --output lost-->      PENDING (re-run to recompute the shard)
 *   any      --job cancelled-->    (results ignored)
 * A result is applied only if its attempt equals the task's current
 * attempt, so duplicated or late results change nothing. */
#ifndef MLOPS_COORD_MODEL_H
#define MLOPS_COORD_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "jobspec.h"

enum { JOB_UPLOADING = 0, JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED };
enum { ST_PENDING = 0, ST_RUNNING, ST_DONE, ST_FAILED, ST_CANCELLED };
enum { T_PENDING = 0, T_RUNNING, T_DONE, T_FAILED };

const char *job_state_name(int s);
const char *stage_state_name(int s);

typedef struct {
    char *name;
    double value;
    /* pipeline position (stage index + 1) of the stage that set it first:
     * the metrics stay in pipeline order when stages run side by side */
    uint32_t rank;
} metric_t;

typedef struct {
    int state;
    uint32_t attempt;  /* the attempt a result must carry to be applied */
    uint32_t tries;    /* dispatches that ended without a result */
    int worker;        /* index of the worker running it, or -1 */
    int64_t deadline;  /* mono ms when the running dispatch times out, 0 none */
    char *output_key;  /* shard key it writes, or NULL */
    uint64_t rows;     /* rows in its output */
    uint8_t *result;   /* reducer input from TaskResult.result */
    size_t result_len;
    metric_t *metrics;
    size_t nmetrics;
    double seconds;
    int queued;        /* on the stage's pending queue */
    /* for the task table (`tasks` verb, the dashboard's job page); not
     * journalled: a restarted coordinator shows them from the next try */
    char ran_on[48];   /* name of the worker of its latest dispatch, "" none */
    uint32_t dispatches; /* times it was sent to a worker */
    char *error;       /* why its latest try ended without a result, or NULL */
} task_t;

struct job;
struct stage;

/* Arguments of one task as its planner entry builds them. */
typedef struct {
    uint8_t *args;     /* malloc'd, may be NULL */
    size_t args_len;
    char **inputs;     /* malloc'd shard keys the task reads */
    size_t ninputs;
    /* set by the caller when only the inputs are wanted (dispatch's
     * locality and lost-input checks): args_pack then packs nothing */
    int inputs_only;
} task_args_t;

typedef struct stage_ops {
    const char *name;
    /* Set up phase 0: ntasks, kind, output keys, blob. */
    int (*start)(struct job *j, struct stage *st, char *err, size_t errlen);
    /* Arguments and inputs of task t in the stage's current phase. Must also
     * work after the stage is done (recomputing a lost output). */
    int (*task_args)(struct job *j, struct stage *st, size_t t, task_args_t *out, char *err,
                     size_t errlen);
    /* Every task of the phase is done: reduce. Returns 1 if a next phase
     * was set up, 0 if the stage is complete, < 0 on error (err filled). */
    int (*phase_done)(struct job *j, struct stage *st, char *err, size_t errlen);
    int prefetch; /* assignments in flight per worker slot; 0: the coordinator's --prefetch-tasks */
    /* Optional: an input of the current phase was lost and cannot be
     * recomputed (it was made in an earlier phase). Re-arm the stage from
     * its journalled state (0), or leave it NULL and the job fails. */
    int (*restart)(struct job *j, struct stage *st, char *err, size_t errlen);
    /* 1: its tasks' results are not journalled, only that they were
     * sent (the record of the dispatch): a restarted coordinator runs
     * the phase's tasks again. For tasks that write nothing and cost
     * less to run again than their result costs to journal. */
    int volatile_results;
    /* Optional: whether the record of a running stage, changed (dirty),
     * is journalled now; 0 lets it wait for a later phase. A restart
     * then resumes from the record last journalled, which must lead to
     * the same result (a deterministic stage repeats its phases).
     * NULL: always now. */
    int (*save_due)(const struct job *j, const struct stage *st);
    /* Optional: task t of the current phase is done (its result is in
     * the task), before phase_done when it is the last: a reduction can
     * begin while the other tasks run. Cannot fail: phase_done decides. */
    void (*task_done)(struct job *j, struct stage *st, size_t t);
} stage_ops_t;

typedef struct stage {
    const stage_ops_t *ops;
    char name[32];
    char kind[32];     /* task kind of the current phase */
    int state;
    uint32_t phase;
    size_t ntasks;
    task_t *tasks;
    size_t ndone;      /* tasks DONE in the current phase */
    uint32_t *queue;   /* pending task indexes (FIFO) */
    size_t qhead, qtail, qcap;
    uint8_t *blob;     /* planner state, journalled */
    size_t blob_len;
    double started, seconds;
    uint32_t done_total, total_all; /* progress across phases */
    char outsfx[16];   /* output key suffix of this phase ("/" final), "" none */
    int dirty;
    int dropped;       /* its outputs were deleted once consumed (not journalled) */
    int held;          /* its phase's tasks wait for a stage (planner_phase_ready; not journalled) */
    /* the ops' own cache of what blob holds, for the current phase (not
     * journalled: rebuilt from blob when absent); stage_rt_drop frees it */
    void *rt;
    void (*rt_free)(void *rt);
} stage_t;

typedef struct {
    char *role, *name, *path;
    uint64_t size, received;
    int fd;
    /* read in place (--local-inputs): path is the file's realpath, and
     * these its identity at submit (common/localin.h); never written */
    int local;
    uint64_t dev, ino;
    int64_t mtime_ns;
} jfile_t;

typedef struct job {
    char id[16];
    char *name;
    int state;
    char *error;
    char *spec_yaml;
    size_t spec_len;
    char *spec_name;
    char *idem_key;    /* the client's idempotency key, NULL none */
    mlops_jobspec_t *spec;
    jfile_t *files;
    size_t nfiles;
    int uploaded;
    int prepared;      /* registry_build.c: its artifact was built ahead (not journalled) */
    double submitted, finished;
    size_t nstages;
    stage_t *stages;
    size_t cur;        /* the first stage not done (others may run beside it) */
    metric_t *metrics;
    size_t nmetrics;
    uint32_t metric_rank; /* rank of the metrics set now (lifecycle.c); 0 the last one's */
    double *train_loss;
    size_t ntrain_loss;
    char *model;
    char *registered;  /* "NAME@VERSION" once the registry holds its model */
    uint8_t *pinned;   /* predict: the packed PredictModel pinned at start (not journalled: */
    size_t pinned_len; /* pinned again at replay; the stage blob keeps a copy) */
    char **classes;    /* class labels in class-index order */
    size_t nclasses;
    char **log;
    size_t nlog, nlog_saved;
    int dirty;
    char owner[17];    /* fingerprint of the client key that submitted it; "" plain */
    /* planner scratch kept across stages (e.g. shard row counts) */
    void *plan;
} job_t;

/* planner.c */
/* The stage entries of a job, in pipeline order, from its spec. */
int planner_build(job_t *j, char *err, size_t errlen);
/* Release the planner's per-job state (mapped input). */
void planner_job_free(job_t *j);
/* The job's name from its spec. */
const char *planner_spec_name(const mlops_jobspec_t *spec);
/* What a stage's output shards hold, for export: "frame", "csr", ... */
const char *planner_output_kind(const job_t *j, const stage_t *st);
/* Whether the final outputs of `producer` may be deleted once consumed:
 * a stage of the row chain (CSV ingest, clean, scale, hash, split) whose
 * lost shard is recomputed from its own inputs, in a job without
 * keep_stages. */
int planner_stage_droppable(const job_t *j, const stage_t *producer);
/* Whether any phase of `reader` (a later stage) reads the final outputs
 * of `producer`. A stage kind this does not know reads everything. */
int planner_stage_reads(job_t *j, const stage_t *reader, const stage_t *producer);

/* helpers shared by planner entries (jobmodel.c) */
int stage_set_tasks(stage_t *st, size_t ntasks, const char *kind);
/* Free st's rt (its blob was replaced from the journal, or the job is
 * freed). */
void stage_rt_drop(stage_t *st);
/* Whether st's changed record is journalled now: always, but while the
 * job and the stage run and the stage's save_due says it may wait. */
int stage_save_due(const job_t *j, const stage_t *st);
/* Output keys of the phase's tasks: "<job>/<stage><suffix><task>".
 * suffix "/" marks the stage's final output (recomputable after the stage
 * ends); ".pN/" an intermediate one; NULL no output. */
void stage_set_output_keys(job_t *j, stage_t *st, const char *suffix);
void job_set_metric(job_t *j, const char *name, double v);
double job_metric(const job_t *j, const char *name, double dflt);
void job_logf(job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *job_file_path(const job_t *j, const char *role);
const char *job_file_name(const job_t *j, const char *role);
stage_t *job_stage(job_t *j, const char *name);
const char *task_metric(const task_t *t, const char *name, double *v);

#endif
