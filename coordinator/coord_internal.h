/* coord_internal.h: what the coordinator's own modules share and nothing
 * outside them may use: the coord_t struct, the worker registry's entry,
 * and one section per module (coord.c, jobrecord.c, lifecycle.c,
 * shards.c, workers.c, dispatch.c, upload.c, query.c).
 *
 * The planner and the stage files must not include this header: they see
 * the job model through jobmodel.h and stages.h only, so they can be built
 * and tested without the server around them. Everything here runs on the
 * coordinator's one thread, so nothing takes a lock. */
#ifndef MLOPS_COORD_INTERNAL_H
#define MLOPS_COORD_INTERNAL_H
#include "coord.h"
#include "jobmodel.h"
#include "journal.h"
#include "coord_obs.h"
#include "coord_dash.h"
#include "wire.h"
#include <czmq.h>
#include <stdint.h>
#include <time.h>

/* One registered worker. An index into coord_t.workers names it
 * everywhere (task_t.worker, the shard directory); entries are never
 * removed, a lost worker only turns !alive, so indexes stay valid. */
typedef struct {
    char id[16];
    char *name;
    zframe_t *identity;
    char *endpoint;
    uint32_t slots;
    uint32_t inflight;
    uint64_t tasks_done;
    uint64_t shards;
    int alive;
    int64_t last_seen, last_sent;
    uint32_t pid;
    int has_usage;                     /* a Heartbeat has said the two below */
    uint64_t store_bytes, rss_bytes;   /* as of the worker's last Heartbeat */
} coord_worker_t;

/* A message waiting in the outbox for the journal commit. */
typedef struct {
    zframe_t *identity;
    zframe_t *frame;
} coord_outmsg_t;

struct coord {
    coord_config_t cfg;
    char *data_dir;
    zsock_t *router;
    zpoller_t *poller; /* on router, for coord_poll */
    char *endpoint;
    journal_t *journal;
    coord_worker_t *workers;
    size_t nworkers, wcap;
    zhashx_t *by_identity; /* identity hex -> worker index + 1 */
    zhashx_t *shards;      /* shard key -> holders (shards.c) */
    job_t **jobs;
    size_t njobs, jcap;
    uint64_t next_job, next_attempt;
    int meta_dirty;
    coord_outmsg_t *out;
    size_t nout, outcap;
    int64_t hb_ms;
    uint64_t bad_frames;
    coord_obs_t obs;
    coord_dash_t *dash;
    int stop;
};

/* Wall-clock seconds, for the times a person reads (submitted, seconds). */
static inline double coord_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* coord.c: the outbox. Each queues a message to `identity` (borrowed)
 * that goes out after the next journal commit. */
void coord_outbox_add(coord_t *c, zframe_t *identity, envelope_t *env);
void coord_reply_error(coord_t *c, zframe_t *identity, uint64_t seq, Mlops__ErrorCode code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* `json` is borrowed and copied into the message. */
void coord_reply_json(coord_t *c, zframe_t *identity, uint64_t seq, const char *json);
void coord_reply_ack(coord_t *c, zframe_t *identity, uint64_t seq);

/* jobmodel.c: the parts of the model only the core uses. */
/* Append task t to the stage's pending FIFO, unless it is already on it. */
void coord_stage_enqueue(stage_t *st, uint32_t t);
/* Free a job and everything it owns (closes upload fds); NULLs *pj. */
void coord_job_free(job_t **pj);

/* jobrecord.c: journal records (written into the open batch; the loop
 * commits) and their replay at start-up. */
void coord_save_meta(coord_t *c);
void coord_save_job(coord_t *c, job_t *j);
void coord_save_stage(coord_t *c, job_t *j, size_t s);
void coord_save_task(coord_t *c, job_t *j, size_t s, size_t t);
/* Rebuild the job table from the journal and resume what was running.
 * Returns the number of unreadable records skipped. */
int coord_replay(coord_t *c);

/* lifecycle.c: the job table and the job/stage state machine. */
job_t *coord_job_find(coord_t *c, const char *id);
/* Takes ownership of j. */
int coord_job_add(coord_t *c, job_t *j);
void coord_job_start(coord_t *c, job_t *j);
/* Ends a job (no-op if it has ended); error may be NULL. */
void coord_job_finish(coord_t *c, job_t *j, int state, const char *error);
void coord_stage_start(coord_t *c, job_t *j, size_t s);
/* Every task of the stage's phase is done: reduce, next phase or stage. */
void coord_stage_complete(coord_t *c, job_t *j, size_t s);
/* Reset the task that produced `key` so it runs again. 0 if a producer is
 * (or already was) queued, -1 if the key cannot be recomputed. */
int coord_recompute(coord_t *c, const char *key);
/* Remove a finished job for good (journal, inputs, shards); frees j. */
void coord_job_remove(coord_t *c, job_t *j);

/* shards.c: the shard directory, shard key -> the workers holding it. */
zhashx_t *coord_shards_new(void);
void coord_shard_add(coord_t *c, const char *key, int w);
/* A live holder of key, or -1. */
int coord_shard_holder(coord_t *c, const char *key);
/* 1 if worker w holds key (alive or not), else 0. */
int coord_shard_held_by(coord_t *c, const char *key, int w);
void coord_shard_forget_worker(coord_t *c, int w);
/* Drop every entry of job `job_id` ("<job>/..." keys). */
void coord_shards_drop_job(coord_t *c, const char *job_id);

/* workers.c: the worker registry and its heartbeats. */
/* The worker index of a ROUTER identity, or -1. */
int coord_worker_find(coord_t *c, zframe_t *id);
/* The entry for `id`, new or reused (a re-registration loses the old
 * state first); alive, with fresh last_seen. -1 when out of memory. */
int coord_worker_register(coord_t *c, zframe_t *id);
/* Mark w dead and re-queue its running tasks. */
void coord_worker_lost(coord_t *c, int w, const char *why);
/* Expire silent workers and send heartbeats that are due. */
void coord_workers_heartbeat(coord_t *c);

/* dispatch.c: ready queues -> TaskAssign messages in the outbox. */
void coord_dispatch(coord_t *c);

/* upload.c: SubmitBegin and UploadChunk. */
void coord_on_submit(coord_t *c, zframe_t *id, envelope_t *env);
void coord_on_upload(coord_t *c, zframe_t *id, envelope_t *env);

/* query.c: Query verbs, answered with JSON. */
void coord_on_query(coord_t *c, zframe_t *id, envelope_t *env);
/* The JSON text (malloc'd) a reading Query verb (jobs, status, workers,
 * logs, models) would reply, exactly as mlopsctl receives it; NULL for
 * any other verb, a verb this coordinator lacks, or a missing job. For
 * the dashboard's snapshot (coord_dash.c). */
char *coord_query_text(coord_t *c, const char *verb, job_t *j);

#endif
