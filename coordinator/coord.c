/* coord.c: the coordinator's server loop, its outbox and the handlers of
 * the worker messages (Register, TaskResult). See coord.h for the object,
 * coord_internal.h for the modules it is built from, and jobmodel.h for
 * the job model and the task life cycle.
 *
 * One thread, one ROUTER socket. Each loop iteration: receive and handle
 * every waiting message, dispatch ready tasks, send heartbeats and expire
 * silent workers, then commit the journal batch (one fsync) and only then
 * send the replies queued in the outbox — so nothing is acknowledged
 * before it is durable.
 *
 * Task assignments go out before the commit, so the workers compute
 * while the fsync runs (outbox_send_ready). An assignment tells no one
 * that anything is durable: a coordinator killed before the commit
 * restarts from the last one and runs those tasks again under new
 * attempts, ignoring the old tries' results. Two rules keep that true:
 * an assignment goes early only under an attempt number the journal
 * already reserves (dispatch.c, COORD_ATTEMPT_BLOCK), so a restart never
 * hands out the same number twice; and never ahead of a message queued
 * before it to the same peer (a RegisterOk, a DropJob), so each peer
 * still sees its messages in the order they were decided. Heartbeats
 * carry no state and go early too.
 *
 * So a batch that no message waits on (results, assignments) need not be
 * committed at once: it stays open for up to --commit-delay-ms while the
 * loop goes on, and one fsync covers the results of several turns. Every
 * reply, DropJob or RegisterOk still waits for the commit of everything
 * decided before it, and commits at once. A crash loses at most that
 * delay's results, whose tasks run again.
 *
 * The commit itself runs on the journal's committer thread, so the loop
 * does not wait for LMDB's fsyncs: it hands the batch over
 * (journal_commit_start) and goes on receiving, handling and
 * dispatching into the next batch. Batches are numbered; each message
 * queued in the outbox is tagged with the batch open at that moment,
 * which holds every record decided before the message, and goes out
 * once that batch is durable. Tags only grow along the outbox, so the
 * order to each peer is kept. The committer wakes the poller (jwake)
 * when a batch is written; one batch is in flight at a time, and the
 * next one is handed over at once if a message waits on it. A SIGKILL
 * while a batch is in flight loses that batch and the open one, as it
 * lost the batch of a blocking commit: nothing they hold was told to
 * anyone. */
#include "coord_internal.h"
#include "err.h"
#include "localin.h"
#include "log.h"
#include "transport.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void coord_outbox_add(coord_t *c, zframe_t *identity, envelope_t *env)
{
    if (c->nout == c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 256;
        coord_outmsg_t *o = realloc(c->out, cap * sizeof *o);
        if (!o) return;
        c->out = o;
        c->outcap = cap;
    }
    size_t len = mlops__envelope__get_packed_size(env);
    zframe_t *f = zframe_new(NULL, len);
    if (!f) return;
    mlops__envelope__pack(env, zframe_data(f));
    c->out[c->nout].identity = zframe_dup(identity);
    c->out[c->nout].frame = f;
    c->out[c->nout].batch = c->batch_open;
    c->out[c->nout].early = (env->body_case == MLOPS__ENVELOPE__BODY_TASK_ASSIGN && env->task_assign &&
                             env->task_assign->attempt <= c->attempt_durable) ||
                            env->body_case == MLOPS__ENVELOPE__BODY_HEARTBEAT;
    c->nout++;
}

/* the messages held for a journal that cannot be written do not count:
 * reads are still answered meanwhile */
int coord_outbox_full(const coord_t *c) { return c->nout - c->nheld >= (size_t)c->cfg.outbox_max; }

/* A message the peer's full pipe refused (it has --send-hwm unread): a
 * TaskAssign goes back to its queue, not counted as a try; a reply or a
 * heartbeat is dropped and counted (a client sends its request again, a
 * worker hears the next heartbeat). */
static void outbox_unsent(coord_t *c, const coord_outmsg_t *m)
{
    char err[256];
    envelope_t *env = wire_decode(zframe_data(m->frame), zframe_size(m->frame), err, sizeof err);
    if (env && env->body_case == MLOPS__ENVELOPE__BODY_TASK_ASSIGN) {
        const Mlops__TaskAssign *ta = env->task_assign;
        job_t *j = ta->job_id ? coord_job_find(c, ta->job_id) : NULL;
        if (j)
            coord_task_unsent(c, j, ta->stage_idx, ta->task_idx, ta->attempt,
                              "its connection has --send-hwm messages unread");
    } else if (c->unsent++ % 1000 == 0) {
        LOG_W("a peer does not read its messages: %s dropped (%llu so far; --send-hwm %d)",
              env ? wire_body_name(env) : "a message", (unsigned long long)c->unsent,
              c->cfg.send_hwm);
    }
    wire_free(&env);
}

static void send_one(coord_t *c, coord_outmsg_t *m)
{
    int rc = zframe_send(&m->identity, c->router, ZFRAME_MORE | ZFRAME_DONTWAIT);
    if (rc == 0) rc = zframe_send(&m->frame, c->router, ZFRAME_DONTWAIT);
    if (rc != 0 && errno == EAGAIN && m->frame) outbox_unsent(c, m);
    zframe_destroy(&m->identity);
    zframe_destroy(&m->frame);
}

/* Send the outbox from message `from` on, keeping those before it. */
static void outbox_flush_from(coord_t *c, size_t from)
{
    for (size_t i = from; i < c->nout; i++) {
        coord_outmsg_t *m = &c->out[i];
        /* never blocks: the router is ROUTER_MANDATORY, so a full pipe
         * says EAGAIN (handled) where it would drop silently; a peer that
         * is gone says EHOSTUNREACH, and its loss is noticed by expiry */
        send_one(c, m);
    }
    c->nout = from;
}

static void outbox_flush(coord_t *c) { outbox_flush_from(c, 0); }

/* Send the messages whose batch is durable, and the early ones (see the
 * top of this file) that no message still waiting for its commit
 * precedes on the same peer; keep the rest in order. A durable message
 * never follows a waiting one (tags grow), so each peer's order holds.
 * Past LATE_PEERS such peers every early one waits too: that bounds
 * the scan, and a loop with that many clients to answer is not waiting
 * on its workers. */
#define LATE_PEERS 32
static void outbox_send_ready(coord_t *c)
{
    zframe_t *late[LATE_PEERS];
    size_t nlate = 0, keep = c->nheld;
    int all_late = 0;
    for (size_t i = c->nheld; i < c->nout; i++) {
        coord_outmsg_t *m = &c->out[i];
        if (m->batch <= c->batch_durable) {
            send_one(c, m);
            continue;
        }
        int go = m->early && !all_late;
        for (size_t k = 0; go && k < nlate; k++) go = !zframe_eq(late[k], m->identity);
        if (go) {
            send_one(c, m);
            continue;
        }
        if (!all_late) {
            size_t k = 0;
            while (k < nlate && !zframe_eq(late[k], m->identity)) k++;
            if (k == nlate) {
                if (nlate < LATE_PEERS) late[nlate++] = m->identity;
                else all_late = 1;
            }
        }
        c->out[keep++] = *m;
    }
    c->nout = keep;
}

void coord_reply_error(coord_t *c, zframe_t *identity, uint64_t seq, Mlops__ErrorCode code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void coord_reply_error(coord_t *c, zframe_t *identity, uint64_t seq, Mlops__ErrorCode code,
                        const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* an error is one line, even when it quotes a peer's bytes (a job id
     * or a file name holding a line break) */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    envelope_t env;
    Mlops__Error e;
    wire_error_body(&env, &e, seq, code, text);
    coord_outbox_add(c, identity, &env);
}

void coord_reply_json(coord_t *c, zframe_t *identity, uint64_t seq, const char *json)
{
    envelope_t env;
    wire_init(&env, seq);
    Mlops__Reply r = MLOPS__REPLY__INIT;
    r.json = (char *)json;
    env.body_case = MLOPS__ENVELOPE__BODY_REPLY;
    env.reply = &r;
    coord_outbox_add(c, identity, &env);
}

void coord_reply_ack(coord_t *c, zframe_t *identity, uint64_t seq)
{
    envelope_t env;
    wire_init(&env, seq);
    Mlops__Ack a = MLOPS__ACK__INIT;
    env.body_case = MLOPS__ENVELOPE__BODY_ACK;
    env.ack = &a;
    coord_outbox_add(c, identity, &env);
}

static void on_register(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__Register *r = env->register_;
    int w = coord_worker_register(c, id);
    if (w < 0) return;
    coord_worker_t *wk = &c->workers[w];
    free(wk->name);
    free(wk->endpoint);
    wk->name = strdup(r->name && *r->name ? r->name : wk->id);
    wk->endpoint = strdup(r->store_endpoint ? r->store_endpoint : "");
    wk->slots = r->slots ? (r->slots > 256 ? 256 : r->slots) : 1;
    wk->pid = r->pid;
    snprintf(wk->key, sizeof wk->key, "%s", c->msg_key);
    coord_shards_adopt(c, w, (const char *const *)r->held, r->n_held);
    LOG_I("worker %s registered: name=%s slots=%u store=%s shards=%zu", wk->id, wk->name, wk->slots,
          wk->endpoint, r->n_held);
    envelope_t rep;
    wire_init(&rep, env->seq);
    Mlops__RegisterOk ok = MLOPS__REGISTER_OK__INIT;
    ok.worker_id = wk->id;
    ok.heartbeat_ms = (uint32_t)c->hb_ms;
    rep.body_case = MLOPS__ENVELOPE__BODY_REGISTER_OK;
    rep.register_ok = &ok;
    coord_outbox_add(c, id, &rep);
    wk->last_sent = zclock_mono();
}

static void on_result(coord_t *c, int w, envelope_t *env)
{
    Mlops__TaskResult *r = env->task_result;
    coord_worker_t *wk = &c->workers[w];
    job_t *j = r->job_id ? coord_job_find(c, r->job_id) : NULL;
    if (!j || r->stage_idx >= j->nstages) {
        LOG_W("result for unknown job/stage %s/%u from %s ignored", r->job_id ? r->job_id : "?",
              r->stage_idx, wk->id);
        return;
    }
    stage_t *st = &j->stages[r->stage_idx];
    if (r->task_idx >= st->ntasks) return;
    task_t *tk = &st->tasks[r->task_idx];
    if (tk->state != T_RUNNING || tk->attempt != r->attempt || tk->worker != w) {
        LOG_D("late or duplicate result %s/%s/%u attempt %u ignored", j->id, st->name, r->task_idx,
              r->attempt);
        return;
    }
    if (!r->ok) {
        const char *why = r->error && *r->error ? r->error : "task failed (no message)";
        if (r->args_missing) {
            coord_task_args_missing(c, j, r->stage_idx, r->task_idx, r->attempt);
            return;
        }
        if (r->busy) {
            coord_task_unsent(c, j, r->stage_idx, r->task_idx, r->attempt, why);
            return;
        }
        if (r->retry) {
            coord_stream_task(c, w, j, st, r->task_idx, r->seconds, 0);
            /* a fetch from a peer that has left or died since the task
             * was sent: no try counted; dispatch recomputes the input */
            if (coord_task_inputs_lost(c, j, st, r->task_idx))
                coord_task_handback(c, j, r->stage_idx, r->task_idx,
                                    "its worker: an input shard went with a worker that left");
            else
                coord_task_retry(c, j, r->stage_idx, r->task_idx, why);
            return;
        }
        coord_worker_released(c, w, st);
        tk->worker = -1;
        tk->deadline = 0;
        tk->state = T_FAILED;
        free(tk->error);
        tk->error = strdup(why);
        coord_stream_task(c, w, j, st, r->task_idx, r->seconds, 0);
        mlops_prom_add(c->obs.failed, st->kind, NULL, 1);
        coord_save_task(c, j, r->stage_idx, r->task_idx);
        if (st->state == ST_RUNNING) st->state = ST_FAILED;
        st->seconds = coord_now_s() - st->started;
        st->dirty = 1;
        /* a deterministic failure: the task's own line (file:line: what)
         * is the job's error; the log says where it ran */
        job_logf(j, "%s task %u failed on worker %s (%s), not retried", st->name, r->task_idx,
                 wk->id, wk->name ? wk->name : "?");
        coord_job_finish(c, j, JOB_FAILED, why);
        return;
    }
    coord_worker_released(c, w, st);
    tk->worker = -1;
    tk->deadline = 0;
    wk->tasks_done++;
    tk->state = T_DONE;
    mlops_prom_add(c->obs.done, st->kind, NULL, 1);
    mlops_prom_observe(c->obs.duration, st->kind, NULL, r->seconds);
    tk->seconds = r->seconds;
    coord_stream_task(c, w, j, st, r->task_idx, r->seconds, 1);
    free(tk->result);
    tk->result = NULL;
    tk->result_len = 0;
    if (r->result.len) {
        /* taken from the message, not copied (it may be a model): a
         * protobuf-c bytes field is a malloc'd buffer of its own, and the
         * message frees none once its pointer is NULL */
        tk->result = r->result.data;
        tk->result_len = r->result.len;
        r->result.data = NULL;
        r->result.len = 0;
    }
    for (size_t i = 0; i < tk->nmetrics; i++) free(tk->metrics[i].name);
    free(tk->metrics);
    tk->metrics = NULL;
    tk->nmetrics = 0;
    if (r->n_metrics) {
        tk->metrics = calloc(r->n_metrics, sizeof *tk->metrics);
        for (size_t i = 0; tk->metrics && i < r->n_metrics; i++) {
            tk->metrics[i].name = strdup(r->metrics[i]->name ? r->metrics[i]->name : "");
            tk->metrics[i].value = r->metrics[i]->value;
            tk->nmetrics++;
            if (!strcmp(tk->metrics[i].name, "rows")) tk->rows = (uint64_t)r->metrics[i]->value;
        }
    }
    for (size_t i = 0; i < r->n_outputs; i++) coord_shard_add(c, r->outputs[i], w);
    /* a volatile result (stage_ops_t) is not journalled: the record of
     * its dispatch stands, and a restart runs the task again */
    if (!st->ops->volatile_results) coord_save_task(c, j, r->stage_idx, r->task_idx);
    if (j->state != JOB_RUNNING) return;
    if (st->state != ST_RUNNING) return; /* a recomputed shard of a finished stage */
    /* progress only: the task record above carries it (replay counts the
     * done tasks), so the stage record and its blob are not rewritten */
    st->ndone++;
    st->done_total++;
    if (st->ops->task_done) st->ops->task_done(j, st, r->task_idx);
    if (st->ndone == st->ntasks) coord_stage_complete(c, j, r->stage_idx);
}

/* ------------------------------------------------------------------ */
/* the loop                                                            */

void coord_handle(coord_t *c, zframe_t *id, const wire_peer_t *peer, envelope_t *env,
                  const char *err)
{
    if (!env) {
        c->bad_frames++;
        mlops_prom_add(c->obs.bad_frames, NULL, NULL, 1);
        LOG_W("bad frame from %s (%s); %llu so far", peer->address, err,
              (unsigned long long)c->bad_frames);
        coord_reply_error(c, id, 0, MLOPS__ERROR_CODE__BAD_FRAME, "%s", err);
        return;
    }
    if (coord_access_check(c, id, env, peer, c->msg_owner) != 0) {
        wire_free(&env);
        return;
    }
    if (coord_journal_refuse(c, id, env)) {
        wire_free(&env);
        return;
    }
    c->msg_key[0] = 0;
    mlops_auth_role(peer->user_id, c->msg_key);
    int w = coord_worker_find(c, id);
    if (w >= 0) c->workers[w].last_seen = zclock_mono();
    switch (env->body_case) {
    case MLOPS__ENVELOPE__BODY_REGISTER: on_register(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_HEARTBEAT:
    case MLOPS__ENVELOPE__BODY_TASK_RESULT:
        if (w < 0 || !c->workers[w].alive) {
            coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_REGISTERED, "register first");
            break;
        }
        if (env->body_case == MLOPS__ENVELOPE__BODY_TASK_RESULT) on_result(c, w, env);
        else if (env->heartbeat) {
            c->workers[w].executing = env->heartbeat->running;
            c->workers[w].has_usage = 1;
            c->workers[w].store_bytes = env->heartbeat->store_bytes;
            c->workers[w].rss_bytes = env->heartbeat->rss_bytes;
            coord_stream_sample(c, w);
        }
        break;
    case MLOPS__ENVELOPE__BODY_LEAVE:
        /* no reply: the worker is closing its socket */
        if (w >= 0 && c->workers[w].alive)
            coord_worker_left(c, w, env->leave->reason && *env->leave->reason ? env->leave->reason : "draining");
        break;
    case MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN: coord_on_submit(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK: coord_on_upload(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_QUERY: coord_on_query(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_ERROR:
        LOG_W("peer error: %s", env->error->message ? env->error->message : "");
        break;
    default:
        c->bad_frames++;
        mlops_prom_add(c->obs.bad_frames, NULL, NULL, 1);
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, "unexpected %s",
                    wire_body_name(env));
    }
    wire_free(&env);
}

static void handle(coord_t *c)
{
    char err[512];
    zframe_t *id = NULL;
    wire_peer_t peer;
    envelope_t *env = wire_recv_peer(c->router, &id, &peer, err, sizeof err);
    if (id) {
        coord_handle(c, id, &peer, env, err); /* takes env */
        zframe_destroy(&id);
        return;
    }
    /* no identity: nobody to answer */
    c->bad_frames++;
    mlops_prom_add(c->obs.bad_frames, NULL, NULL, 1);
    LOG_W("bad frame without an identity (%s); %llu so far", err,
          (unsigned long long)c->bad_frames);
    wire_free(&env);
}

int coord_journal_refuse(coord_t *c, zframe_t *id, const envelope_t *env)
{
    if (!c->jfull) return 0;
    const char *what = NULL;
    if (env->body_case == MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN) what = "a submit";
    else if (env->body_case == MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK) what = "an upload";
    else if (env->body_case == MLOPS__ENVELOPE__BODY_QUERY &&
             !coord_query_reads(env->query->verb ? env->query->verb : ""))
        what = env->query->verb;
    if (!what) return 0;
    if (c->busy++ % 100 == 0)
        LOG_W("coordinator journal %s: %s refused (%llu requests answered busy so far)",
              c->jfull == 1 ? "full" : "not writable", what, (unsigned long long)c->busy);
    coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BUSY,
                      "coordinator journal %s: %s; %s refused, retry once %s",
                      c->jfull == 1 ? "full" : "not writable", c->jfull_why, what,
                      c->jfull == 1 ? "space is freed" : "it can be written");
    return 1;
}

/* The journal commit failed for want of room: keep the batch, and the
 * messages queued with it, until a later commit succeeds (once per
 * heartbeat interval). Meanwhile writes are refused with BUSY, nothing is
 * dispatched, and the rest is answered: reads, heartbeats, registrations.
 * Running jobs are kept, not failed: their progress is in memory and in
 * the batch, and failing them would need a journal write too; they go on
 * from where they were once space is freed (after a restart, from the
 * last commit: their tasks run again, with the same results). */
static void journal_stalled(coord_t *c, int rc)
{
    int64_t now = zclock_mono();
    if (!c->jfull) {
        c->jfull = rc == MLOPS_EFULL ? 1 : 2;
        c->nheld = c->nout;
        c->jfull_since = now;
        snprintf(c->jfull_why, sizeof c->jfull_why, "%s/journal: %s", c->data_dir,
                 journal_error(c->journal));
        LOG_E("coordinator journal %s: %s; holding %zu messages, refusing writes and pausing "
              "dispatch until it can be written",
              rc == MLOPS_EFULL ? "full" : "not writable", c->jfull_why, c->nheld);
    }
    c->jfull_retry = now + c->hb_ms;
    outbox_flush_from(c, c->nheld);
}

/* Commit everything queued on this thread (after the batch in flight):
 * at start-up and shutdown, and to retry a journal that could not be
 * written. 0, or the journal's error (journal_stalled has run). */
static int commit_now(coord_t *c)
{
    int64_t t0 = zclock_usecs();
    size_t pending = journal_pending(c->journal) + (size_t)journal_commit_busy(c->journal);
    int rc = journal_commit(c->journal);
    double secs = (double)(zclock_usecs() - t0) / 1e6;
    c->jblocked_s += secs;
    if (rc != 0) {
        /* keep running: the batch stays queued and is retried */
        journal_stalled(c, rc);
        return rc;
    }
    c->attempt_durable = c->attempt_saved;
    c->batch_durable = c->batch_open++;
    c->batch_due = 0;
    if (c->jfull) {
        LOG_I("coordinator journal written again after %.1f s: %zu held messages sent, dispatch "
              "resumes",
              (double)(zclock_mono() - c->jfull_since) / 1000.0, c->nheld);
        c->jfull = 0;
        c->nheld = 0;
    }
    if (pending) mlops_prom_observe(c->obs.commit, NULL, NULL, secs);
    return 0;
}

/* The batch in flight, if it is written (wait: once it is): what waited
 * on it may go, or, if it failed, the journal holds it queued again and
 * the loop stalls (journal_stalled) as for a blocking commit. */
static void commit_reap(coord_t *c, int wait)
{
    int rc = 0;
    double secs = 0;
    int64_t t0 = wait ? zclock_usecs() : 0;
    int got = wait ? journal_commit_wait(c->journal, &rc, &secs)
                   : journal_commit_poll(c->journal, &rc, &secs);
    if (wait) c->jblocked_s += (double)(zclock_usecs() - t0) / 1e6;
    if (!got) return;
    if (rc != 0) {
        journal_stalled(c, rc);
        return;
    }
    mlops_prom_observe(c->obs.commit, NULL, NULL, secs);
    c->batch_durable = c->batch_inflight;
    c->attempt_durable = c->attempt_inflight;
}

/* Whether the open batch should be handed over now: a message waits on
 * it, or it has been open --commit-delay-ms (the top of this file). */
static int commit_due(coord_t *c)
{
    if (c->cfg.commit_delay_ms <= 0) return 1;
    if (c->nout > c->nheld && c->out[c->nout - 1].batch >= c->batch_open) return 1;
    int64_t now = zclock_mono();
    if (!c->batch_due) c->batch_due = now + c->cfg.commit_delay_ms;
    return now >= c->batch_due;
}

void coord_journal_idle(coord_t *c) { commit_reap(c, 1); }

/* Journal what changed, hand the batch to the committer (unless it may
 * wait: the top of this file) and send what the commits so far release.
 * force: commit everything now, on this thread. */
static void persist(coord_t *c, int force)
{
    /* first, so that an assignment a full pipe refuses is re-queued in
     * this batch; not while a failed batch holds the outbox */
    if (!c->jfull) outbox_send_ready(c);
    if (c->meta_dirty) {
        coord_save_meta(c);
        c->meta_dirty = 0;
    }
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        for (size_t s = 0; s < j->nstages; s++)
            if (j->stages[s].dirty && (force || stage_save_due(j, &j->stages[s]))) coord_save_stage(c, j, s);
        /* a log line alone does not rewrite the job's record (its spec) */
        if (j->dirty) coord_save_job(c, j);
        else if (j->nlog_saved < j->nlog) coord_save_log(c, j);
    }
    if (c->jfull && zclock_mono() < c->jfull_retry) {
        outbox_flush_from(c, c->nheld);
        return;
    }
    if (force || c->jfull) {
        if (commit_now(c) == 0) outbox_flush(c);
        return;
    }
    /* a full outbox stops the receiving (coord_poll): then the loop has
     * nothing to do but wait for the commit that empties it, and waits
     * here rather than spin on a readable socket it does not read */
    commit_reap(c, coord_outbox_full(c));
    if (c->jfull) return; /* the batch in flight failed: held (journal_stalled) */
    if (!journal_commit_busy(c->journal)) {
        if (!journal_pending(c->journal)) {
            /* nothing queued and nothing in flight: the open batch is
             * empty, so what waits on it waits on nothing */
            c->batch_durable = c->batch_open++;
            c->batch_due = 0;
        } else if (commit_due(c)) {
            c->batch_due = 0;
            c->attempt_inflight = c->attempt_saved;
            c->batch_inflight = c->batch_open++;
            if (journal_commit_start(c->journal) < 0 && commit_now(c) == 0) outbox_flush(c);
        }
    }
    if (!c->jfull) outbox_send_ready(c);
}

int coord_poll(coord_t *c, int timeout_ms)
{
    if (c->batch_due) { /* wake up to commit the open batch in time */
        int64_t left = c->batch_due - zclock_mono();
        if (left < timeout_ms) timeout_ms = left > 0 ? (int)left : 0;
    }
    void *which = zpoller_wait(c->poller, timeout_ms);
    /* zpoller_terminated() is also true after a harmless EINTR: only
     * a real SIGINT/SIGTERM (zsys_interrupted) stops the coordinator */
    if (!which && zsys_interrupted) return MLOPS_ECANCEL;
    if (which && which == c->mon) coord_access_events(c);
    if (which && which == c->jwake) /* a batch is written: persist() reaps it */
        while (zsock_events(c->jwake) & ZMQ_POLLIN) zsock_wait(c->jwake);
    if (which == c->router) {
        /* drain everything waiting, bounded so heartbeats still go out */
        for (int n = 0; n < 10000 && !coord_outbox_full(c); n++) {
            handle(c);
            if (!(zsock_events(c->router) & ZMQ_POLLIN)) break;
        }
    }
    coord_access_sighup(c);
    coord_workers_heartbeat(c);
    coord_tasks_expire(c);
    if (!c->jfull) { /* both write the journal */
        coord_jobs_retain(c);
        coord_dispatch(c);
    }
    coord_watch_tick(c);
    coord_waits_tick(c);
    persist(c, 0);
    coord_obs_tick(c);
    coord_dash_tick(c, c->dash);
    return 0;
}

int coord_run(coord_t *c)
{
    LOG_I("coordinator serving on %s (heartbeat %lld ms)", c->endpoint, (long long)c->hb_ms);
    while (!c->stop && !zsys_interrupted)
        if (coord_poll(c, (int)(c->hb_ms / 2 > 0 ? c->hb_ms / 2 : 1)) != 0) break;
    persist(c, 1);
    LOG_I("coordinator stopping");
    return 0;
}

void coord_stop(coord_t *c) { c->stop = 1; }
const char *coord_endpoint(const coord_t *c) { return c->endpoint; }

/* On the committer thread, which alone uses jwake_back. */
static void on_committed(void *arg)
{
    coord_t *c = arg;
    zsock_signal(c->jwake_back, 0);
}

static void on_interrupt(int sig)
{
    (void)sig;
    zsys_interrupted = 1;
    zctx_interrupted = 1;
}

coord_t *coord_new(const coord_config_t *cfg, char *err, size_t errlen)
{
    coord_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cfg = *cfg;
    if (c->cfg.outbox_max <= 0) c->cfg.outbox_max = 65536;
    if (c->cfg.send_hwm <= 0) c->cfg.send_hwm = 100000;
    if (c->cfg.max_jobs <= 0) c->cfg.max_jobs = 10000;
    c->hb_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    c->data_dir = strdup(cfg->data_dir);
    if (cfg->local_inputs && mlops_localin_check_list(cfg->local_inputs, err, errlen) != 0) {
        coord_destroy(&c);
        return NULL;
    }
    if (mkdir(c->data_dir, 0755) != 0 && errno != EEXIST) {
        mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create data directory: %s", c->data_dir,
                     strerror(errno));
        coord_destroy(&c);
        return NULL;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/journal", c->data_dir);
    c->journal = journal_open(path, err, errlen);
    if (!c->journal) {
        coord_destroy(&c);
        return NULL;
    }
    c->batch_open = 1;
    c->jwake = zsys_create_pipe(&c->jwake_back);
    if (!c->jwake) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "coordinator: cannot create the journal's wake pipe");
        coord_destroy(&c);
        return NULL;
    }
    journal_set_notify(c->journal, on_committed, c);
    c->by_identity = zhashx_new();
    c->shards = coord_shards_new();
    if (!c->by_identity || !c->shards) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "coordinator: out of memory");
        coord_destroy(&c);
        return NULL;
    }
    c->registry = coord_registry_new();
    c->stream = coord_stream_new();
    c->waits = coord_waits_new();
    c->digests = coord_digests_new();
    if (!c->registry || !c->stream || !c->waits || !c->digests) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "cannot set up the model registry");
        coord_destroy(&c);
        return NULL;
    }
    transport_sec_t sec;
    if (coord_access_open(c, &sec, err, errlen) != 0) {
        coord_destroy(&c);
        return NULL;
    }
    int bad = coord_replay(c);
    if (bad) LOG_W("journal: %d unreadable records skipped", bad);
    if (c->njobs) LOG_I("journal replayed: %zu jobs", c->njobs);
    c->router = transport_router_bind_hwm(cfg->bind, cfg->advertise, &sec, c->cfg.send_hwm,
                                          &c->endpoint, err, errlen);
    if (!c->router) {
        coord_destroy(&c);
        return NULL;
    }
    /* each peer's pipe holds --send-hwm (set before the bind), and a
     * full one is reported, not dropped silently (outbox_flush) */
    zsock_set_router_mandatory(c->router, 1);
    coord_access_watch(c);
    if (coord_obs_start(c, err, errlen) != 0 || coord_dash_start(c, &c->dash, err, errlen) != 0) {
        coord_destroy(&c);
        return NULL;
    }
    c->poller = c->mon ? zpoller_new(c->router, c->mon, c->jwake, NULL)
                       : zpoller_new(c->router, c->jwake, NULL);
    if (!c->poller) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "coordinator: cannot create a poller");
        coord_destroy(&c);
        return NULL;
    }
    /* the endpoint file lets `mlopsctl up --port 0` find an ephemeral port */
    snprintf(path, sizeof path, "%s/endpoint", c->data_dir);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%s\n", c->endpoint);
        fclose(f);
        rename(tmp, path);
    }
    zsys_handler_set(on_interrupt);
    persist(c, 1);
    return c;
}

void coord_destroy(coord_t **pc)
{
    if (!pc || !*pc) return;
    coord_t *c = *pc;
    for (size_t i = 0; i < c->njobs; i++) coord_job_free(&c->jobs[i]);
    free(c->jobs);
    for (size_t w = 0; w < c->nworkers; w++) {
        zframe_destroy(&c->workers[w].identity);
        free(c->workers[w].args_kept);
        free(c->workers[w].name);
        free(c->workers[w].endpoint);
    }
    free(c->workers);
    for (size_t i = 0; i < c->nout; i++) {
        zframe_destroy(&c->out[i].identity);
        zframe_destroy(&c->out[i].frame);
    }
    free(c->out);
    coord_dash_destroy(&c->dash);
    coord_obs_stop(c);
    zhashx_destroy(&c->by_identity);
    zhashx_destroy(&c->shards);
    coord_watch_destroy(c);
    coord_registry_destroy(&c->registry);
    coord_stream_destroy(&c->stream);
    coord_waits_destroy(&c->waits);
    coord_digests_destroy(&c->digests);
    zpoller_destroy(&c->poller);
    zsock_destroy(&c->router);
    coord_access_close(c);
    journal_close(&c->journal); /* joins the committer, which signals jwake_back */
    zsock_destroy(&c->jwake);
    zsock_destroy(&c->jwake_back);
    free(c->endpoint);
    free(c->data_dir);
    free(c);
    *pc = NULL;
}

