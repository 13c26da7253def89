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
#include "artifact.h"
#include "auth.h"
#include "coord.h"
#include "keys.h"
#include "jobmodel.h"
#include "journal.h"
#include "transport.h"
#include "coord_obs.h"
#include "coord_dash.h"
#include "wire.h"
#include <czmq.h>
#include <jansson.h>
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
    /* of those, tasks of a stage that queues more than one per slot at
     * its worker (prefetch 0: train's epochs): a second one is queued only
     * behind these, never behind a long task of another stage */
    uint32_t inflight_queueable;
    uint32_t executing; /* tasks running there, as its last Heartbeat said */
    uint64_t tasks_done;
    uint64_t shards;
    int alive;
    int left; /* it said Leave (a drain), not silence: listed "left", not "dead" */
    int64_t last_seen, last_sent;
    uint32_t pid;
    char key[MLOPS_KEY_Z85_LEN + 1]; /* its CURVE key, which its store serves with */
    int has_usage;                     /* a Heartbeat has said the two below */
    uint64_t store_bytes, rss_bytes;   /* as of the worker's last Heartbeat */
    int64_t paused_until; /* mono ms: its pipe or its queue was full, dispatch waits */
    /* args_repeat.c: the last task arguments sent to it with their bytes */
    uint8_t *args_kept;
    size_t args_kept_len;
    uint64_t args_kept_id;
} coord_worker_t;

/* A message waiting in the outbox for the journal commit. */
typedef struct {
    zframe_t *identity;
    zframe_t *frame;
    int early; /* a TaskAssign under a durable attempt: may go before the commit (coord.c) */
    uint64_t batch; /* the journal batch it waits for (coord.c: batch_open when queued) */
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
    /* attempt numbers are reserved in blocks (dispatch.c): the journalled
     * meta holds the high-water mark, so a restart never reuses one that
     * went out before its commit. saved: in the open batch; durable:
     * committed. */
    uint64_t attempt_reserved, attempt_saved, attempt_durable;
    int64_t batch_due; /* coord.c: mono ms the open batch must be committed by, 0 none */
    /* coord.c: journal batches are numbered; the open one takes the
     * records (and tags the messages) of now, the committer thread may
     * be writing the one before it, and a message goes out once its
     * batch is durable */
    uint64_t batch_open, batch_inflight, batch_durable;
    uint64_t attempt_inflight; /* attempt_saved when the batch in flight was handed over */
    zsock_t *jwake, *jwake_back; /* the committer signals the loop's poller on jwake_back */
    double jblocked_s;           /* seconds the loop waited for journal commits */
    int meta_dirty;
    coord_outmsg_t *out;
    size_t nout, outcap;
    int64_t hb_ms;
    uint64_t bad_frames;
    uint64_t unsent;      /* messages a full peer pipe refused (coord.c) */
    /* coord.c: the journal cannot be written (a full disk): writes are
     * refused, dispatch waits, the outbox's first nheld messages (queued
     * before the failed commit) wait for it */
    int jfull; /* 0, 1 full (no room), 2 another write error */
    char jfull_why[320];
    size_t nheld;
    int64_t jfull_since, jfull_retry;
    uint64_t busy;        /* requests answered BUSY at a bound */
    int64_t next_expire_scan; /* retry.c: mono ms of the next timeout scan */
    int64_t next_retain_scan; /* lifecycle.c: mono ms of the next retention pass */
    coord_obs_t obs;
    coord_dash_t *dash;
    struct coord_stream *stream; /* coord_stream.c */
    int stop;
    struct coord_registry *registry; /* registry.c */
    struct coord_watch *watch;       /* alias_watch.c: followers waiting for a move */
    struct coord_waits *waits;       /* waits.c */
    struct coord_digests *digests;   /* input_digest.c */
    /* access.c */
    zcert_t *cert;          /* NULL: plain connections */
    mlops_auth_t *auth;     /* the ZAP domain of the router */
    uint64_t denied;        /* messages refused for their key's role */
    zhashx_t *plain_seen;   /* identities already warned about (insecure) */
    zsock_t *mon;           /* the router's handshake events */
    uint64_t handshakes_failed;
    /* the message being handled: its sender's key, and its fingerprint */
    char msg_key[MLOPS_KEY_Z85_LEN + 1];
    char msg_owner[MLOPS_KEY_FP_LEN + 1];
};

/* Wall-clock seconds, for the times a person reads (submitted, seconds). */
static inline double coord_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* coord.c: one message from peer `id` (borrowed), who is *peer: env
 * (taken and freed) or, for a frame that did not decode, NULL with err
 * saying why. Every message takes this path: the loop's receive
 * (wire_recv_peer) and the fuzz target tests/fuzz/fuzz_coord.c
 * (wire_decode, no socket). Replies go to the outbox. */
void coord_handle(coord_t *c, zframe_t *id, const wire_peer_t *peer, envelope_t *env,
                  const char *err);

/* coord.c: 1 (and BUSY answered) if env needs a journal write while the
 * journal cannot be written: a submit, an upload, a Query verb that is
 * not a read (coord_query_reads). */
int coord_journal_refuse(coord_t *c, zframe_t *id, const envelope_t *env);
/* query.c: 1 if the verb only reads (answered while the journal is full). */
int coord_query_reads(const char *verb);

/* coord.c: the outbox. Each queues a message to `identity` (borrowed)
 * that goes out after the next journal commit. */
void coord_outbox_add(coord_t *c, zframe_t *identity, envelope_t *env);
/* The outbox holds --outbox-max messages: receive and dispatch wait for
 * the commit that sends them. */
int coord_outbox_full(const coord_t *c);
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
/* The job's log lines not yet journalled, without its record. */
void coord_save_log(coord_t *c, job_t *j);
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
/* Start every pending stage whose needs are done (planner_stage_needs),
 * in pipeline order; the job succeeds once every stage is done. */
void coord_job_advance(coord_t *c, job_t *j);
/* Reset the task that produced `key` so it runs again. 0 if a producer is
 * (or already was) queued, -1 if the key cannot be recomputed. */
int coord_recompute(coord_t *c, const char *key);
/* Remove a finished job for good (journal, inputs, shards); frees j. */
void coord_job_remove(coord_t *c, job_t *j);
/* Retention (--retain-jobs, --retain-age): remove, the way `rm` does, the
 * finished jobs beyond the newest N and those finished longer ago than
 * the age. Runs at most once per heartbeat interval. */
void coord_jobs_retain(coord_t *c);

/* shards.c: the shard directory, shard key -> the workers holding it. */
zhashx_t *coord_shards_new(void);
void coord_shard_add(coord_t *c, const char *key, int w);
/* The shards a registering worker reports: those of known jobs join the
 * directory; those of a job cancelled or removed (by rm or retention)
 * while the worker was away are dropped with a DropJob to it, so no
 * store keeps such a job's shards. */
void coord_shards_adopt(coord_t *c, int w, const char *const *keys, size_t n);
/* A live holder of key, or -1. */
int coord_shard_holder(coord_t *c, const char *key);
/* 1 if worker w holds key (alive or not), else 0. */
int coord_shard_held_by(coord_t *c, const char *key, int w);
void coord_shard_forget_worker(coord_t *c, int w);
/* Drop every entry of job `job_id` ("<job>/..." keys). */
void coord_shards_drop_job(coord_t *c, const char *job_id);
/* Drop every entry whose key starts with `prefix`; the number dropped. */
size_t coord_shards_drop_prefix(coord_t *c, const char *prefix);
/* Tell worker w to delete its shards under prefix ("<job>/<stage>/"):
 * a DropJob with prefixes, whose empty job id an older worker ignores. */
void coord_shards_tell_drop(coord_t *c, int w, const char *prefix);

/* workers.c: the worker registry and its heartbeats. */
/* The worker index of a ROUTER identity, or -1. */
int coord_worker_find(coord_t *c, zframe_t *id);
/* The entry for `id`, new or reused (a re-registration loses the old
 * state first); alive, with fresh last_seen. -1 when out of memory. */
int coord_worker_register(coord_t *c, zframe_t *id);
/* Mark w dead and re-queue its running tasks. */
void coord_worker_lost(coord_t *c, int w, const char *why);
/* An assignment of stage st to worker w went out / ended (result, retry,
 * hand-back, abandoned): its in-flight counts. w < 0 is ignored. */
void coord_worker_assigned(coord_t *c, int w, const stage_t *st);
void coord_worker_released(coord_t *c, int w, const stage_t *st);
/* w said Leave (it is draining): mark it left and re-queue its running
 * tasks without counting a try (coord_task_handback). */
void coord_worker_left(coord_t *c, int w, const char *why);
/* Expire silent workers and send heartbeats that are due. */
void coord_workers_heartbeat(coord_t *c);

/* dispatch.c: ready queues -> TaskAssign messages in the outbox. */
void coord_dispatch(coord_t *c);
/* Attempt numbers reserved (journalled) at a time: a restart skips what
 * is left of a block, and one assignment in a block waits for a commit. */
#define COORD_ATTEMPT_BLOCK 4096

/* retry.c: attempt limits and task timeouts. */
/* The mono-ms deadline of a dispatch of one of j's tasks made now. */
int64_t coord_task_deadline(const job_t *j);
/* The dispatch of task t of stage s ended without a good result (`why`,
 * one line): count a try, then re-queue it (0) or, at max_attempts,
 * fail the job with a message naming task, worker and why (-1). */
int coord_task_retry(coord_t *c, job_t *j, size_t s, size_t t, const char *why);
/* The TaskAssign of attempt `attempt` of task t of stage s never reached
 * its worker (`why`: its pipe or queue was full): back to the queue,
 * not counted as a try, and no dispatch to that worker for one heartbeat
 * interval. Nothing if the task has moved on. */
void coord_task_unsent(coord_t *c, job_t *j, size_t s, size_t t, uint32_t attempt, const char *why);
/* retry.c: its worker said args_missing for attempt `attempt` of task t
 * of stage s (args_repeat.c): forget what it keeps and queue the task
 * again, no try counted, no pause. */
void coord_task_args_missing(coord_t *c, job_t *j, size_t s, size_t t, uint32_t attempt);
/* The worker of running task t handed it back (it is stopping): re-queue
 * it with no try counted, since nothing went wrong with the task. */
void coord_task_handback(coord_t *c, job_t *j, size_t s, size_t t, const char *why);
/* args_repeat.c: arguments sent once per worker while they repeat. For
 * an assignment of `attempt` to worker w with these args bytes: 1 if
 * they are the bytes w was last sent (*id: the id they went under; send
 * them as a repeat), else 0 (*id: the id to send them under, 0 for none;
 * w is now assumed to keep them). */
int coord_args_repeat(coord_t *c, int w, const uint8_t *args, size_t len, uint64_t attempt, uint64_t *id);
/* Assume nothing of what w keeps (an assignment to it was not delivered,
 * it was lost or registered again). */
void coord_args_forget(coord_t *c, int w);
/* dispatch.c: 1 if an input shard of task t has no live holder now (it
 * went with a worker that left or died), so a fetch failure of the task
 * is explained by the loss, not by the task. */
int coord_task_inputs_lost(coord_t *c, job_t *j, stage_t *st, size_t t);
/* Retry the running tasks whose task_timeout has passed. */
void coord_tasks_expire(coord_t *c);

/* upload.c: SubmitBegin and UploadChunk. */
void coord_on_submit(coord_t *c, zframe_t *id, envelope_t *env);
void coord_on_upload(coord_t *c, zframe_t *id, envelope_t *env);

/* access.c: security. coord_access_open runs in coord_new before the
 * bind: loads the key pair and registers the ZAP domain, or refuses a
 * plain non-loopback bind without `insecure`. */
int coord_access_open(coord_t *c, transport_sec_t *sec, char *err, size_t errlen);
void coord_access_close(coord_t *c);
/* After the bind: watch the router's handshakes; and log the failed
 * ones (a plain client, a wrong server key) when the watch has events. */
void coord_access_watch(coord_t *c);
void coord_access_events(coord_t *c);
/* May this message be handled? Worker messages need a worker key, client
 * messages a client key. On 0, owner (if non-NULL) is the sender's key
 * fingerprint ("" on a plain connection). On -1 the DENIED reply is
 * queued, and the refusal logged and counted. */
int coord_access_check(coord_t *c, zframe_t *id, const envelope_t *env, const wire_peer_t *peer,
                       char owner[MLOPS_KEY_FP_LEN + 1]);
/* The limits of a submission by `owner` (file size, inputs, jobs at
 * once); 0, or -1 with the refusal queued. */
int coord_access_limits(coord_t *c, zframe_t *id, const envelope_t *env, const char *owner);
/* The `security` query: CURVE on or off, the server key's fingerprint
 * and the refusal counters. */
json_t *coord_access_json(const coord_t *c);
/* SIGHUP re-reads the authorised-key directories (on the loop's thread). */
void coord_access_sighup(coord_t *c);
/* The public key (Z85) of worker w, "" when it connected in plain. */
const char *coord_worker_key(const coord_t *c, int w);

/* coord_stream.c: the task stream and the workers' usage over time. */
typedef struct coord_stream coord_stream_t;
coord_stream_t *coord_stream_new(void);
void coord_stream_destroy(coord_stream_t **ps);
/* A task of stage st ended on worker w after `seconds` (the worker's). */
void coord_stream_task(coord_t *c, int w, const job_t *j, const stage_t *st, uint32_t t,
                       double seconds, int ok);
/* Worker w's Heartbeat was just applied: sample its usage. */
void coord_stream_sample(coord_t *c, int w);
/* The `stream` verb's reply: {"tasks": [...], "workers": [...]}. */
json_t *coord_stream_json(coord_t *c);

/* query.c: Query verbs, answered with JSON. */
void coord_on_query(coord_t *c, zframe_t *id, envelope_t *env);
/* The JSON text (malloc'd) a reading Query verb (jobs, status, workers,
 * logs, models, model-versions, model-history) would reply, exactly as
 * mlopsctl receives it; `arg` the verb's one argument (a model name) or
 * NULL. NULL for any other verb, a verb this coordinator lacks, a missing
 * job or model. For the dashboard's snapshot (coord_dash.c). */
char *coord_query_text(coord_t *c, const char *verb, job_t *j, const char *arg);
/* The `status` reply of job j to a request (waits.c answers with it). */
void coord_query_reply_status(coord_t *c, zframe_t *id, uint64_t seq, job_t *j);

/* waits.c: held `wait JOB HOLD_MS` queries, answered when the job ends
 * or the hold runs out. hold: 1 if the request is now held (answered
 * later), 0 if it must be answered at once (job ended, no hold asked,
 * too many held). tick: answer the ones that are due. */
typedef struct coord_waits coord_waits_t;
coord_waits_t *coord_waits_new(void);
void coord_waits_destroy(coord_waits_t **pw);
int coord_waits_hold(coord_t *c, zframe_t *id, uint64_t seq, const job_t *j, const Mlops__Query *q);
void coord_waits_tick(coord_t *c);

/* input_digest.c: the SHA-256 of each input file of a job, computed on a
 * thread from its start (the lineage of what it registers). start: begin
 * (once per job); get: input i's digest in hex, waiting for the thread,
 * or reading the file here if there is none (0, or MLOPS_EIO); forget:
 * stop and free the job's (its end, its removal). */
typedef struct coord_digests coord_digests_t;
coord_digests_t *coord_digests_new(void);
void coord_digests_destroy(coord_digests_t **pd);
void coord_digest_start(coord_t *c, const job_t *j);
int coord_digest_get(coord_t *c, const job_t *j, size_t i, char out[65]);
void coord_digest_forget(coord_t *c, const char *job_id);

/* registry.c: the model registry (versions, aliases, alias history) and
 * its journal records; registry_build.c: a succeeded job's artifact. */
typedef struct coord_registry coord_registry_t;
coord_registry_t *coord_registry_new(void);
void coord_registry_destroy(coord_registry_t **pr);
/* A journal record under "reg/" at replay: 0, or -1 if it does not unpack. */
int coord_registry_replay(coord_t *c, const char *key, const void *data, size_t len);
/* After replay: remove artifact files no version refers to (model rm). */
void coord_registry_collect(coord_t *c);
/* 1 if s matches [A-Za-z0-9._-]{1,max}. */
int coord_registry_valid_name(const char *s, size_t max);
/* Add artifact a (name and version are set here) as the next version of
 * model `name`, trained by `job`: its file is written durably, its records
 * queued. 0 with *version, or an error with err filled. */
int coord_registry_add(coord_t *c, const char *name, mlops_artifact_t *a, const char *job,
                       uint32_t *version, char *err, size_t errlen);
/* Ahead of the job's end (registry_build.c): write *pa (taken) as the
 * version model `name` would get now, without a record yet. add_prebuilt
 * at the job's end then queues its records: 1 with *version, 0 if there
 * is none or another version came first (build it again), or an error;
 * drop_prebuilt forgets a job's (it did not succeed). A file written for
 * a version that never came is collected at the next start. */
int coord_registry_prebuild(coord_t *c, const char *name, mlops_artifact_t **pa, const char *job,
                            char *err, size_t errlen);
int coord_registry_add_prebuilt(coord_t *c, const char *name, const char *job, uint32_t *version,
                                char *err, size_t errlen);
void coord_registry_drop_prebuilt(coord_t *c, const char *job);
/* registry_build.c: once every stage the model's artifact reads is done
 * and only knn stages still run, build and write it beside them, so the
 * job's end only journals its records. */
void coord_registry_prepare(coord_t *c, job_t *j);
/* The same for an artifact given as JSON (a recommender,
 * mlops-recommender/1): "name" and "version" are set in doc here, its
 * "metrics" and "tags" go to the version's record. */
int coord_registry_add_doc(coord_t *c, const char *name, json_t *doc, const char *job,
                           uint32_t *version, char *err, size_t errlen);
/* The artifact text of model `name` at ref ("" latest, a version, an
 * alias; malloc'd) and its version, or NULL with err naming what is missing. */
char *coord_registry_artifact(coord_t *c, const char *name, const char *ref, uint32_t *version,
                              char *err, size_t errlen);
/* A predict job starts (rewrite = 1) or is replayed (0): resolve
 * predict.model to a version, check the job's columns against the
 * model's, pin the model (job_t.pinned); with rewrite, the job's spec
 * takes the model's columns and the pinned NAME@VERSION. 0, or an error
 * with err filled (the job fails with it). */
int coord_registry_pin(coord_t *c, job_t *j, int rewrite, char *err, size_t errlen);
/* A job with a promotion gate starts (at_start = 1: pin the version that
 * holds promote.alias now, if any) or is replayed (0: pin it again by the
 * version journalled in its metrics). 0, or an error with err filled. */
int coord_registry_pin_champion(coord_t *c, job_t *j, int at_start, char *err, size_t errlen);
/* The gate's decision as an alias move: to a version (promoted), or 0
 * (kept: a move from the holder to itself, so the history has it),
 * recorded with the fingerprint of the key that submitted the job. */
int coord_registry_gate(coord_t *c, const char *name, const char *alias, uint32_t to,
                        const char *fingerprint, const char *reason);
/* A job ended JOB_SUCCEEDED: register its trained model, if it has one. */
void coord_registry_on_success(coord_t *c, job_t *j);
/* Whether a job registers a version when it succeeds (a trained model,
 * a recommender), i.e. needs its inputs' digests. */
int coord_registry_registers(const job_t *j);
/* The registry's verbs (models, model-*, alias-moves): the reply, or
 * NULL with *code and msg set. */
/* {"moves": [moves with seq > since, oldest first], "next": the last
 * seq} (the alias-moves reply), with that seq in *next; NULL: no memory. */
json_t *coord_registry_moves(coord_t *c, uint64_t since, uint64_t *next);

/* alias_watch.c: Query{alias-watch, [SINCE]} held until an alias moves
 * (the reply is the alias-moves one), pushed to mlops-serve. add queues
 * the reply itself (or holds it); notify answers every held watch after
 * a move; tick answers those held too long with no moves. */
void coord_watch_add(coord_t *c, zframe_t *id, uint64_t seq, const Mlops__Query *q);
void coord_watch_notify(coord_t *c);
void coord_watch_tick(coord_t *c);
void coord_watch_destroy(coord_t *c);

json_t *coord_registry_query(coord_t *c, const Mlops__Query *q, Mlops__ErrorCode *code, char *msg,
                             size_t msglen);

#endif
