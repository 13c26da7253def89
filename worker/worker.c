/* worker.c: the worker loop. See worker.h.
 *
 * The main thread owns three sockets: a DEALER to the coordinator, the
 * ROUTER store endpoint that serves shards to peers, and a PULL socket
 * that collects results from the executor threads. Tasks wait in a
 * mutex-protected FIFO for the `slots` executor threads, so a long task
 * never delays heartbeats or shard serving.
 *
 * Coordinator link (Paranoid Pirate, worker side): after 3 heartbeat
 * intervals without hearing from the coordinator the worker closes its
 * socket, waits (backoff doubling from one interval to 32), reconnects
 * and registers again, listing the shards its store holds.
 *
 * SIGTERM (or SIGINT) drains: the worker marks every job dropped, so its
 * running tasks stop at their next shard boundary and queued ones never
 * start, and tells the coordinator Leave, which re-queues them elsewhere
 * without counting a try. The worker then exits once its executors have
 * stopped. It hands back rather than finishes: the outputs of a finished
 * task would sit in a store that is about to go away. */
#include "worker.h"
#include "auth.h"
#include "keys.h"
#include "cancel.h"
#include "wk_obs.h"
#include "err.h"
#include "localin.h"
#include "log.h"
#include "store.h"
#include "store_answer.h"
#include "task.h"
#include "task_thread.h"
#include "transport.h"
#include "wire.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

struct worker {
    worker_config_t cfg;
    mlops_store_t *store;
    zsock_t *coord;
    zsock_t *storesock;
    char *store_endpoint;
    zsock_t *results;
    char results_ep[64];
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    envelope_t **q;
    size_t qhead, qtail, qcap;
    int quit;
    atomic_int running;
    int64_t hb_ms, last_recv, last_sent, reconnect_at, backoff;
    int registered;
    int64_t register_at; /* when the last Register was sent */
    /* the args bytes of the last TaskAssign that carried an args_id, which
     * a later one names with args_repeat (coordinator/args_repeat.c) */
    uint8_t *args_kept;
    size_t args_kept_len;
    uint64_t args_kept_id;
    char worker_id[16];
    uint64_t seq;
    uint64_t bad_frames;
    zframe_t *held; /* a result the coordinator's pipe refused, sent first */
    zcert_t *cert;           /* NULL: plain */
    mlops_auth_t *auth;      /* the store endpoint's ZAP domain */
    char server_key[MLOPS_KEY_Z85_LEN + 1];
    uint64_t denied;
    wk_cancel_t *cancel; /* jobs dropped by the coordinator (cancel.h) */
    wk_obs_t *obs;
};

/* ------------------------------------------------------------------ */
/* executor threads                                                    */

static envelope_t *queue_pop(worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->quit && w->qhead == w->qtail) pthread_cond_wait(&w->cv, &w->mu);
    envelope_t *e = NULL;
    if (w->qhead < w->qtail) e = w->q[w->qhead++];
    pthread_mutex_unlock(&w->mu);
    return e;
}

/* MLOPS_EFULL at --queue-max waiting tasks: the coordinator's credits
 * (slots x prefetch) keep the FIFO below that, so this guards against a
 * coordinator that lost count (a worker it expired and took back). */
static int queue_push(worker_t *w, envelope_t *e)
{
    pthread_mutex_lock(&w->mu);
    if (w->qtail - w->qhead >= (size_t)w->cfg.queue_max) {
        pthread_mutex_unlock(&w->mu);
        return MLOPS_EFULL;
    }
    if (w->qtail == w->qcap) {
        if (w->qhead) {
            memmove(w->q, w->q + w->qhead, (w->qtail - w->qhead) * sizeof *w->q);
            w->qtail -= w->qhead;
            w->qhead = 0;
        }
        if (w->qtail == w->qcap) {
            size_t cap = w->qcap ? w->qcap * 2 : 64;
            envelope_t **q = realloc(w->q, cap * sizeof *q);
            if (!q) {
                pthread_mutex_unlock(&w->mu);
                return MLOPS_ENOMEM;
            }
            w->q = q;
            w->qcap = cap;
        }
    }
    w->q[w->qtail++] = e;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void run_one(worker_t *w, task_thread_t *th, zsock_t *push, envelope_t *env)
{
    uint8_t *out = NULL;
    size_t len = 0;
    atomic_fetch_add(&w->running, 1);
    int rc = wk_task_run(env->task_assign, w->store, th, w->cancel, w->obs, &out, &len);
    atomic_fetch_sub(&w->running, 1);
    zframe_t *f = rc == 0 ? zframe_new(out, len) : NULL;
    if (!f) LOG_E("task %s: out of memory building its result", env->task_assign->kind);
    else if (zframe_send(&f, push, 0) != 0) zframe_destroy(&f);
    free(out);
}

static void *executor(void *arg)
{
    worker_t *w = arg;
    task_thread_t *th = wk_task_thread_new(w->cert);
    if (th) th->local_inputs = w->cfg.local_inputs;
    zsock_t *push = zsock_new(ZMQ_PUSH);
    if (push) {
        zsock_set_sndhwm(push, w->cfg.queue_max);
        if (zsock_connect(push, "%s", w->results_ep) != 0) zsock_destroy(&push);
    }
    if (!th || !push) {
        LOG_E("executor thread could not start");
        wk_task_thread_destroy(&th);
        zsock_destroy(&push);
        return NULL;
    }
    zsock_set_linger(push, 1000);
    envelope_t *env;
    while ((env = queue_pop(w)) != NULL) {
        run_one(w, th, push, env);
        wire_free(&env);
    }
    zsock_destroy(&push);
    wk_task_thread_destroy(&th);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* coordinator link                                                    */

static void send_env(worker_t *w, envelope_t *env)
{
    if (!w->coord) return;
    if (wire_send(w->coord, NULL, env) == 0) w->last_sent = zclock_mono();
}

static void send_register(worker_t *w)
{
    char **keys = NULL;
    size_t n = 0;
    if (mlops_store_list(w->store, "", &keys, &n) != 0) n = 0;
    envelope_t env;
    wire_init(&env, ++w->seq);
    Mlops__Register r = MLOPS__REGISTER__INIT;
    r.name = (char *)w->cfg.name;
    r.slots = (uint32_t)w->cfg.slots;
    r.store_endpoint = w->store_endpoint;
    r.held = keys;
    r.n_held = n;
    r.pid = (uint32_t)getpid();
    env.body_case = MLOPS__ENVELOPE__BODY_REGISTER;
    env.register_ = &r;
    send_env(w, &env);
    w->registered = 0; /* until its RegisterOk */
    w->register_at = zclock_mono();
    if (keys) mlops_store_list_free(&keys, n);
    LOG_I("registering with %s (%zu shards held)", w->cfg.coordinator, n);
}

/* Tasks still waiting in the FIFO when this worker registers again: the
 * coordinator re-queued them when it restarted or gave this connection
 * up (a new socket is a new worker to it), so their results would be
 * ignored; running them would only delay the tasks it sends next. */
static void drop_queued(worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->qtail - w->qhead;
    for (size_t i = w->qhead; i < w->qtail; i++) wire_free(&w->q[i]);
    w->qhead = w->qtail = 0;
    pthread_mutex_unlock(&w->mu);
    if (n) LOG_I("dropped %zu queued task(s) of the previous connection: the coordinator re-queued them", n);
}

static int connect_coord(worker_t *w)
{
    char err[512];
    drop_queued(w);
    zsock_destroy(&w->coord);
    transport_sec_t sec = {.cert = w->cert, .server_key = w->server_key};
    w->coord = transport_dealer_connect(w->cfg.coordinator, &sec, err, sizeof err);
    if (!w->coord) {
        LOG_E("%s", err);
        return -1;
    }
    w->registered = 0;
    w->last_recv = zclock_mono();
    send_register(w);
    return 0;
}

/* Answer an assignment the FIFO has no room for: busy, so the
 * coordinator gives it to a worker with room and counts no try. */
/* A repeat's bytes put back in ta (the message then owns a copy), or
 * those of a new args_id kept. -1: a repeat of args this worker does not
 * hold (refuse_args answers it). */
static int resolve_args(worker_t *w, Mlops__TaskAssign *ta)
{
    if (ta->args_repeat) {
        if (!ta->args_id || ta->args_id != w->args_kept_id || !w->args_kept || ta->args.len) return -1;
        uint8_t *copy = malloc(w->args_kept_len);
        if (!copy) return -1;
        memcpy(copy, w->args_kept, w->args_kept_len);
        ta->args.data = copy; /* freed with the message (protobuf-c's default allocator) */
        ta->args.len = w->args_kept_len;
        ta->args_repeat = 0;
        return 0;
    }
    if (ta->args_id && ta->args.len) {
        uint8_t *copy = realloc(w->args_kept, ta->args.len);
        if (!copy) { /* keep nothing: a repeat is answered args_missing */
            free(w->args_kept);
            w->args_kept = NULL;
            w->args_kept_len = 0;
            w->args_kept_id = 0;
            return 0;
        }
        memcpy(copy, ta->args.data, ta->args.len);
        w->args_kept = copy;
        w->args_kept_len = ta->args.len;
        w->args_kept_id = ta->args_id;
    }
    return 0;
}

/* A TaskAssign answered without running it: the coordinator queues the
 * task again, no try counted (busy: elsewhere, after a pause;
 * args_missing: with its arguments' bytes). */
static void refuse(worker_t *w, const Mlops__TaskAssign *ta, const char *text, int busy, int args_missing)
{
    envelope_t env;
    wire_init(&env, 0);
    Mlops__TaskResult r = MLOPS__TASK_RESULT__INIT;
    r.job_id = ta->job_id;
    r.stage_idx = ta->stage_idx;
    r.task_idx = ta->task_idx;
    r.attempt = ta->attempt;
    r.error = (char *)text;
    r.retry = 1;
    r.busy = busy;
    r.args_missing = args_missing;
    env.body_case = MLOPS__ENVELOPE__BODY_TASK_RESULT;
    env.task_result = &r;
    send_env(w, &env);
}

/* The answer to a repeat of args this worker does not hold. */
static void refuse_args(worker_t *w, const Mlops__TaskAssign *ta)
{
    LOG_I("task %s/%u/%u names arguments %llu, which this worker does not hold: asked again", ta->job_id,
          ta->stage_idx, ta->task_idx, (unsigned long long)ta->args_id);
    refuse(w, ta, "task arguments not held by this worker", 0, 1);
}

static void refuse_busy(worker_t *w, const Mlops__TaskAssign *ta)
{
    char text[256];
    snprintf(text, sizeof text, "worker %s: task queue full (%d waiting, --queue-max)", w->cfg.name,
             w->cfg.queue_max);
    LOG_W("%s: %s/%u/%u sent back", text, ta->job_id, ta->stage_idx, ta->task_idx);
    refuse(w, ta, text, 1, 0);
}


/* A stage's consumed outputs (DropJob with prefixes): only the keys
 * under each "<job>/<stage>/" prefix go, and the job is not marked
 * dropped, so its other tasks go on. job_id is empty on purpose: a worker
 * that predates the prefixes would otherwise drop the whole job. A prefix
 * of another form is a peer's mistake and deletes nothing. */
static void drop_prefixes(worker_t *w, const Mlops__DropJob *dj)
{
    for (size_t i = 0; i < dj->n_prefixes; i++) {
        const char *p = dj->prefixes[i] ? dj->prefixes[i] : "";
        const char *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        if (!s1 || s1 == p || !s2 || s2 == s1 + 1 || s2[1]) {
            LOG_W("DropJob: prefix '%s' is not <job>/<stage>/: ignored", p);
            continue;
        }
        int rc = mlops_store_del_prefix(w->store, p);
        if (rc < 0) LOG_W("dropping shards %s* failed: %s", p, mlops_strerror(rc));
        else LOG_I("dropped consumed shards %s*", p);
    }
}
static void on_coord(worker_t *w)
{
    char err[512];
    envelope_t *env = wire_recv(w->coord, NULL, err, sizeof err);
    if (!env) {
        w->bad_frames++;
        if (w->obs) mlops_prom_add(w->obs->bad_frames, NULL, NULL, 1);
        LOG_W("bad frame from the coordinator: %s", err);
        return;
    }
    w->last_recv = zclock_mono();
    switch (env->body_case) {
    case MLOPS__ENVELOPE__BODY_REGISTER_OK:
        w->registered = 1;
        w->backoff = 0;
        snprintf(w->worker_id, sizeof w->worker_id, "%s",
                 env->register_ok->worker_id ? env->register_ok->worker_id : "?");
        if (env->register_ok->heartbeat_ms >= 10 && env->register_ok->heartbeat_ms <= 600000)
            w->hb_ms = env->register_ok->heartbeat_ms;
        LOG_I("registered as %s (heartbeat %lld ms)", w->worker_id, (long long)w->hb_ms);
        break;
    case MLOPS__ENVELOPE__BODY_HEARTBEAT: break;
    case MLOPS__ENVELOPE__BODY_TASK_ASSIGN:
        if (resolve_args(w, env->task_assign) != 0) refuse_args(w, env->task_assign);
        else if (queue_push(w, env) == 0) env = NULL; /* the executor frees it */
        else refuse_busy(w, env->task_assign);
        break;
    case MLOPS__ENVELOPE__BODY_DROP_JOB:
        if (env->drop_job->n_prefixes) {
            drop_prefixes(w, env->drop_job);
        } else if (env->drop_job->job_id && *env->drop_job->job_id) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "%s/", env->drop_job->job_id);
            /* mark first: tasks of the job, queued or running, stop at
             * their next shard and write nothing after the delete */
            wk_cancel_lock(w->cancel);
            wk_cancel_mark_locked(w->cancel, env->drop_job->job_id);
            int rc = mlops_store_del_prefix(w->store, prefix);
            wk_cancel_unlock(w->cancel);
            if (rc < 0) LOG_W("dropping the shards of job %s failed: %s", env->drop_job->job_id, mlops_strerror(rc));
            else LOG_I("dropped the shards of job %s", env->drop_job->job_id);
        }
        break;
    case MLOPS__ENVELOPE__BODY_ERROR:
        if (env->error->code == MLOPS__ERROR_CODE__DENIED) {
            LOG_E("the coordinator refused this worker: %s",
                  env->error->message ? env->error->message : "");
        } else if (env->error->code == MLOPS__ERROR_CODE__NOT_REGISTERED) {
            /* a restarted coordinator answers this to each message it had
             * from us before our Register: one Register answers them all.
             * Another sent per error arrived as a second registration of
             * a worker it had just given tasks, which re-queued them as
             * lost (three in a burst failed a task: test_commit_burst
             * under ASan). Only one that went unanswered for three
             * heartbeats is sent again. */
            if (!w->registered && zclock_mono() - w->register_at < 3 * w->hb_ms) break;
            LOG_W("coordinator does not know us: registering again");
            drop_queued(w); /* it restarted or gave us up: it re-queued them */
            send_register(w);
        } else {
            LOG_W("coordinator error: %s", env->error->message ? env->error->message : "");
        }
        break;
    default: LOG_W("unexpected %s from the coordinator", wire_body_name(env));
    }
    wire_free(&env);
}

/* Serve one request on the store endpoint (store_answer.c). */
static void on_store(worker_t *w)
{
    char err[512];
    zframe_t *id = NULL;
    wire_peer_t peer;
    envelope_t *env = wire_recv_peer(w->storesock, &id, &peer, err, sizeof err);
    if (!env) {
        w->bad_frames++;
        if (w->obs) mlops_prom_add(w->obs->bad_frames, NULL, NULL, 1);
        LOG_W("bad frame on the store endpoint from %s: %s", peer.address, err);
    }
    char key[MLOPS_KEY_Z85_LEN + 1] = "";
    zframe_t *rep = NULL;
    if (env && w->cert && mlops_auth_role(peer.user_id, key) == MLOPS_ROLE_NONE) {
        /* the handshake admits only known keys: this is a belt to its braces */
        w->denied++;
        LOG_W("store: denied %s from %s: no authorised key (%llu denied so far)",
              wire_body_name(env), peer.address, (unsigned long long)w->denied);
        wire_send_error(w->storesock, id, env->seq, MLOPS__ERROR_CODE__DENIED,
                        "the store endpoint serves authorised keys only");
    } else if (id) {
        rep = wk_store_answer(w->store, w->cfg.name, env, err, w->obs);
    }
    /* a ROUTER drops a reply to a peer that is gone: never blocks */
    if (rep && zframe_send(&id, w->storesock, ZFRAME_MORE) == 0) zframe_send(&rep, w->storesock, 0);
    zframe_destroy(&rep);
    wire_free(&env);
    zframe_destroy(&id);
}

/* Results go to the coordinator without blocking the loop: one its pipe
 * refuses is held and sent first next time, and while one is held the
 * results socket is not read, so the executors stop at its high-water
 * mark (--queue-max) instead of results piling up. Without a connection
 * (reconnecting) a result waits the same way. */
static int send_result(worker_t *w, zframe_t **f)
{
    if (!w->coord) return -1;
    if (zframe_send(f, w->coord, ZFRAME_DONTWAIT) != 0) return -1;
    w->last_sent = zclock_mono();
    return 0;
}

static void forward_results(worker_t *w)
{
    if (w->held && send_result(w, &w->held) != 0) return;
    for (int n = 0; n < 1000; n++) {
        if (!(zsock_events(w->results) & ZMQ_POLLIN)) return;
        zframe_t *f = zframe_recv(w->results);
        if (!f) return;
        if (send_result(w, &f) != 0) {
            w->held = f;
            return;
        }
    }
}

/* SIGTERM: hand every task back (see the top of this file). */
static void drain(worker_t *w)
{
    wk_cancel_lock(w->cancel);
    wk_cancel_all_locked(w->cancel);
    wk_cancel_unlock(w->cancel);
    if (!w->coord || !w->registered) return;
    envelope_t env;
    wire_init(&env, ++w->seq);
    Mlops__Leave lv = MLOPS__LEAVE__INIT;
    lv.reason = "SIGTERM";
    env.body_case = MLOPS__ENVELOPE__BODY_LEAVE;
    env.leave = &lv;
    /* czmq closes with linger 0: give the Leave a moment to go out */
    zsock_set_linger(w->coord, 2000);
    send_env(w, &env);
    LOG_I("draining: handed %d running task(s) back to the coordinator", atomic_load(&w->running));
}

int worker_run(worker_t *w)
{
    if (connect_coord(w) != 0) return MLOPS_EIO;
    while (!zsys_interrupted) {
        zpoller_t *p = zpoller_new(w->storesock, NULL);
        if (!w->held) zpoller_add(p, w->results);
        if (w->coord) zpoller_add(p, w->coord);
        void *which = zpoller_wait(p, (int)(w->hb_ms / 4 > 0 ? w->hb_ms / 4 : 1));
        int term = !which && zsys_interrupted; /* not a mere EINTR */
        zpoller_destroy(&p);
        if (term) break;
        if (which && which == w->coord) {
            for (int n = 0; n < 1000 && w->coord; n++) {
                on_coord(w);
                if (!(zsock_events(w->coord) & ZMQ_POLLIN)) break;
            }
        } else if (which == w->storesock) {
            on_store(w);
        }
        forward_results(w); /* also the held one, once there is room */
        int64_t now = zclock_mono();
        if (w->coord) {
            if (now - w->last_recv > 3 * w->hb_ms) {
                w->backoff = w->backoff ? (w->backoff * 2 > 32 * w->hb_ms ? 32 * w->hb_ms : w->backoff * 2)
                                        : w->hb_ms;
                LOG_W("coordinator silent for %lld ms: reconnecting in %lld ms",
                      (long long)(now - w->last_recv), (long long)w->backoff);
                zsock_destroy(&w->coord);
                w->registered = 0;
                w->reconnect_at = now + w->backoff;
            } else if (now - w->last_sent >= w->hb_ms) {
                envelope_t env;
                wire_init(&env, 0);
                Mlops__Heartbeat hb = MLOPS__HEARTBEAT__INIT;
                hb.running = (uint32_t)atomic_load(&w->running);
                hb.store_bytes = (uint64_t)mlops_store_used_bytes(w->store);
                hb.rss_bytes = (uint64_t)wk_obs_rss_bytes();
                env.body_case = MLOPS__ENVELOPE__BODY_HEARTBEAT;
                env.heartbeat = &hb;
                send_env(w, &env);
            }
        } else if (now >= w->reconnect_at) {
            connect_coord(w);
        }
    }
    /* the loop ends only on a signal */
    drain(w);
    LOG_I("worker stopping");
    return 0;
}

static void on_interrupt(int sig)
{
    (void)sig;
    zsys_interrupted = 1;
    zctx_interrupted = 1;
}

/* The worker's key pair, the coordinator's public key and the store's
 * ZAP domain; or plain, where the store is on loopback or --insecure. */
static int security_open(worker_t *w, const char *bind, transport_sec_t *sec, char *err,
                         size_t errlen)
{
    const worker_config_t *cfg = &w->cfg;
    memset(sec, 0, sizeof *sec);
    if (!cfg->cert) {
        if (cfg->server_key || cfg->worker_keys || cfg->client_keys)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "--server-key, --worker-keys and --client-keys need --cert (this "
                                "worker's key pair)");
        if (!transport_is_loopback(bind) && !cfg->insecure)
            return mlops_seterr(err, errlen, MLOPS_EDENIED,
                                "refusing to serve shards on %s without keys: give --cert, "
                                "--server-key, --worker-keys and --client-keys (see "
                                "docs/security.md), or --insecure",
                                bind);
        LOG_W("INSECURE: no CURVE: shards travel in plain text and the store endpoint serves "
              "anyone who can connect");
        return 0;
    }
    if (cfg->insecure)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "--insecure and --cert exclude each other");
    if (!cfg->server_key)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "--cert needs --server-key (the coordinator's public key)");
    int rc = mlops_keys_load_public(cfg->server_key, w->server_key, err, errlen);
    if (rc) return rc;
    w->cert = mlops_keys_load_pair(cfg->cert, err, errlen);
    if (!w->cert) return MLOPS_EINVAL;
    w->auth = mlops_auth_new(cfg->worker_keys, cfg->client_keys, "store", err, errlen);
    if (!w->auth) return MLOPS_EINVAL;
    sec->cert = w->cert;
    sec->zap_domain = mlops_auth_domain(w->auth);
    return 0;
}

worker_t *worker_new(const worker_config_t *cfg, char *err, size_t errlen)
{
    worker_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->cfg = *cfg;
    if (w->cfg.slots < 1) w->cfg.slots = 1;
    if (w->cfg.queue_max < 1) w->cfg.queue_max = 65536;
    w->hb_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (!(w->cancel = wk_cancel_new())) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        worker_destroy(&w);
        return NULL;
    }
    if (cfg->local_inputs && mlops_localin_check_list(cfg->local_inputs, err, errlen) != 0) {
        worker_destroy(&w);
        return NULL;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/store", cfg->data_dir);
    if (mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST) {
        mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create data directory: %s", cfg->data_dir,
                     strerror(errno));
        worker_destroy(&w);
        return NULL;
    }
    w->store = mlops_store_open(path, 0, err, errlen);
    if (!w->store) {
        worker_destroy(&w);
        return NULL;
    }
    char *host = NULL;
    if (!cfg->advertise || !*cfg->advertise) {
        /* peers reach us the way we reach the coordinator: loopback stays
         * loopback, anything else advertises our host name */
        char *ch = transport_endpoint_host(cfg->coordinator);
        if (ch && (!strcmp(ch, "127.0.0.1") || !strcmp(ch, "localhost"))) {
            host = strdup("127.0.0.1");
        } else {
            char hn[256] = "127.0.0.1";
            gethostname(hn, sizeof hn - 1);
            host = strdup(hn);
        }
        free(ch);
    } else {
        host = strdup(cfg->advertise);
    }
    if (cfg->advertise_ip && (!cfg->advertise || !*cfg->advertise) && host &&
        strcmp(host, "127.0.0.1") != 0) {
        /* a container's name resolves only inside its network; its
         * address is routable from the docker host too */
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
        int grc = getaddrinfo(host, NULL, &hints, &ai);
        char ip[INET_ADDRSTRLEN] = "";
        if (grc == 0 && ai)
            inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof ip);
        if (ai) freeaddrinfo(ai);
        if (!ip[0]) {
            mlops_seterr(err, errlen, MLOPS_EINVAL, "--advertise-ip: this host's name '%s' has no IPv4 address: %s",
                         host, grc ? gai_strerror(grc) : "none listed");
            free(host);
            worker_destroy(&w);
            return NULL;
        }
        free(host);
        host = strdup(ip);
    }
    const char *bind = (host && !strcmp(host, "127.0.0.1")) ? "tcp://127.0.0.1:*" : "tcp://*:*";
    transport_sec_t sec;
    if (security_open(w, bind, &sec, err, errlen) != 0) {
        free(host);
        worker_destroy(&w);
        return NULL;
    }
    w->storesock = transport_router_bind(bind, host, &sec, &w->store_endpoint, err, errlen);
    free(host);
    if (!w->storesock) {
        worker_destroy(&w);
        return NULL;
    }
    snprintf(w->results_ep, sizeof w->results_ep, "inproc://results-%p", (void *)w);
    w->results = zsock_new(ZMQ_PULL);
    if (w->results) {
        zsock_set_rcvhwm(w->results, w->cfg.queue_max);
        if (zsock_bind(w->results, "%s", w->results_ep) != 0) zsock_destroy(&w->results);
    }
    if (!w->results) {
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot bind %s", w->results_ep);
        worker_destroy(&w);
        return NULL;
    }
    w->obs = wk_obs_new(cfg->metrics_listen, cfg->http_token_file, cfg->data_dir, w->store,
                        &w->running, w->cfg.slots, err, errlen);
    if (!w->obs) {
        worker_destroy(&w);
        return NULL;
    }
    zsys_handler_set(on_interrupt);
    w->threads = calloc((size_t)w->cfg.slots, sizeof *w->threads);
    for (int i = 0; w->threads && i < w->cfg.slots; i++) {
        if (pthread_create(&w->threads[i], NULL, executor, w) != 0) break;
        w->nthreads++;
    }
    if (w->nthreads != w->cfg.slots) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "cannot start %d executor threads", w->cfg.slots);
        worker_destroy(&w);
        return NULL;
    }
    LOG_I("worker %s: store %s, serving shards on %s, %d slots", cfg->name, path, w->store_endpoint,
          w->cfg.slots);
    return w;
}

void worker_destroy(worker_t **pw)
{
    if (!pw || !*pw) return;
    worker_t *w = *pw;
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
    free(w->threads);
    wk_obs_destroy(&w->obs);
    for (size_t i = w->qhead; i < w->qtail; i++) wire_free(&w->q[i]);
    free(w->q);
    free(w->args_kept);
    zframe_destroy(&w->held);
    zsock_destroy(&w->results);
    zsock_destroy(&w->coord);
    zsock_destroy(&w->storesock);
    mlops_auth_destroy(&w->auth);
    zcert_destroy(&w->cert);
    free(w->store_endpoint);
    mlops_store_close(&w->store);
    wk_cancel_destroy(&w->cancel);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    *pw = NULL;
}
