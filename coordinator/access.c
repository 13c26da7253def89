/* access.c: who may talk to the coordinator, and how much one client may
 * ask of it.
 *
 * The handshake (auth.h) already refused every key that is in neither
 * authorised directory; what is left is the role: a message from a
 * worker (Register, Heartbeat, TaskResult) needs a worker key, one from
 * a client (SubmitBegin, UploadChunk, Query) a client key, so a stolen
 * worker key cannot submit jobs or read results and a client key cannot
 * register as a worker and be handed tasks and shards. Every refusal is
 * logged with the peer's address and key fingerprint, and counted.
 *
 * Without a key pair the coordinator speaks plain ZeroMQ: allowed only on
 * loopback or with --insecure, and it says so at start and on every new
 * connection. */
#include "coord_internal.h"
#include "err.h"
#include "log.h"
#include "transport.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t hup;
static void on_hup(int sig)
{
    (void)sig;
    hup = 1;
}

int coord_access_open(coord_t *c, transport_sec_t *sec, char *err, size_t errlen)
{
    const coord_config_t *cfg = &c->cfg;
    memset(sec, 0, sizeof *sec);
    if (!cfg->cert) {
        if (cfg->worker_keys || cfg->client_keys)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "--worker-keys and --client-keys need --cert (this coordinator's "
                                "key pair)");
        if (!transport_is_loopback(cfg->bind) && !cfg->insecure)
            return mlops_seterr(err, errlen, MLOPS_EDENIED,
                                "refusing to serve %s without keys: anyone who can reach it could "
                                "submit jobs and read every result; give --cert, --worker-keys "
                                "and --client-keys (see docs/security.md), or --insecure",
                                cfg->bind);
        LOG_W("INSECURE: serving %s without CURVE: traffic is plain text and anyone who can "
              "connect may submit jobs and read results",
              cfg->bind);
        c->plain_seen = zhashx_new();
        return c->plain_seen ? 0 : mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    }
    if (cfg->insecure)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "--insecure and --cert exclude each other");
    c->cert = mlops_keys_load_pair(cfg->cert, err, errlen);
    if (!c->cert) return MLOPS_EINVAL;
    c->auth = mlops_auth_new(cfg->worker_keys, cfg->client_keys, "coordinator", err, errlen);
    if (!c->auth) return MLOPS_EINVAL;
    sec->cert = c->cert;
    sec->zap_domain = mlops_auth_domain(c->auth);
    struct sigaction sa = {.sa_handler = on_hup};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    char fp[MLOPS_KEY_FP_LEN + 1];
    mlops_keys_fingerprint(zcert_public_txt(c->cert), fp);
    LOG_I("CURVE on: server key %s, worker keys from %s, client keys from %s", fp, cfg->worker_keys,
          cfg->client_keys);
    return 0;
}

void coord_access_watch(coord_t *c)
{
    if (c->cert) c->mon = transport_monitor(c->router);
}

void coord_access_events(coord_t *c)
{
    char addr[256] = "?";
    int ev = transport_monitor_poll(c->mon, addr, sizeof addr);
    /* unknown keys are logged by the ZAP handler, with their fingerprint */
    if (ev & TRANSPORT_REFUSED_PROTO) {
        c->handshakes_failed++;
        LOG_W("refused a connection on %s: the handshake failed (a client without a key, or "
              "one expecting another server key; %llu so far)",
              addr, (unsigned long long)c->handshakes_failed);
    }
}

void coord_access_close(coord_t *c)
{
    zsock_destroy(&c->mon);
    zhashx_destroy(&c->plain_seen);
    mlops_auth_destroy(&c->auth);
    zcert_destroy(&c->cert);
}

static mlops_role_t needed_role(const envelope_t *env)
{
    switch (env->body_case) {
    case MLOPS__ENVELOPE__BODY_REGISTER:
    case MLOPS__ENVELOPE__BODY_HEARTBEAT:
    case MLOPS__ENVELOPE__BODY_LEAVE:
    case MLOPS__ENVELOPE__BODY_TASK_RESULT: return MLOPS_ROLE_WORKER;
    case MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN:
    case MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK:
    case MLOPS__ENVELOPE__BODY_QUERY: return MLOPS_ROLE_CLIENT;
    default: return MLOPS_ROLE_NONE; /* answered BAD_REQUEST or logged by coord.c */
    }
}

static void warn_plain(coord_t *c, zframe_t *id, const wire_peer_t *peer)
{
    char *hex = zframe_strhex(id);
    if (!hex) return;
    if (!zhashx_lookup(c->plain_seen, hex)) {
        /* bounded: a busy plain coordinator forgets and warns again */
        if (zhashx_size(c->plain_seen) > 100000) zhashx_purge(c->plain_seen);
        zhashx_insert(c->plain_seen, hex, (void *)1);
        LOG_W("INSECURE: plain-text connection from %s (no key: anyone can connect)",
              peer->address);
    }
    free(hex);
}

int coord_access_check(coord_t *c, zframe_t *id, const envelope_t *env, const wire_peer_t *peer,
                       char owner[MLOPS_KEY_FP_LEN + 1])
{
    if (owner) owner[0] = 0;
    if (!c->cert) {
        warn_plain(c, id, peer);
        return 0;
    }
    char key[MLOPS_KEY_Z85_LEN + 1] = "", fp[MLOPS_KEY_FP_LEN + 1];
    mlops_role_t have = mlops_auth_role(peer->user_id, key);
    mlops_role_t need = needed_role(env);
    /* a ping reveals nothing: any authorised key may ask, so a worker's
     * container health check needs no client key (docs/deploy.md) */
    if (env->body_case == MLOPS__ENVELOPE__BODY_QUERY && env->query->verb &&
        !strcmp(env->query->verb, "ping") && have != MLOPS_ROLE_NONE)
        return 0;
    if (need == MLOPS_ROLE_NONE || have == need) {
        /* the fingerprint (a SHA-1) only where an owner is recorded (a
         * job's; the key that moved a model alias, a query): heartbeats
         * and results are most of the traffic */
        if (owner && (env->body_case == MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN ||
                      env->body_case == MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK ||
                      env->body_case == MLOPS__ENVELOPE__BODY_QUERY))
            mlops_keys_fingerprint(key, owner);
        return 0;
    }
    mlops_keys_fingerprint(key, fp);
    c->denied++;
    const char *why = need == MLOPS_ROLE_WORKER ? "a client key cannot act as a worker"
                                                : "a worker key cannot submit jobs or read results";
    LOG_W("denied %s from %s (key %s, %s): %s (%llu denied so far)", wire_body_name(env),
          peer->address, fp, have == MLOPS_ROLE_WORKER ? "worker" : "client", why,
          (unsigned long long)c->denied);
    /* a worker that is told DENIED must not take it for NOT_REGISTERED */
    coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__DENIED, "key %s: %s", fp, why);
    return -1;
}

int coord_access_limits(coord_t *c, zframe_t *id, const envelope_t *env, const char *owner)
{
    const Mlops__SubmitBegin *sb = env->submit_begin;
    const coord_config_t *cfg = &c->cfg;
    if (cfg->max_job_bytes > 0 && sb->spec_yaml.len > (size_t)cfg->max_job_bytes) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__DENIED,
                          "job file of %zu bytes is over this coordinator's limit of %d bytes "
                          "(--max-job-bytes)",
                          sb->spec_yaml.len, cfg->max_job_bytes);
        return -1;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < sb->n_files; i++) total += sb->files[i]->size;
    if (cfg->max_input_mib > 0 && total > ((uint64_t)cfg->max_input_mib << 20)) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__DENIED,
                          "inputs of %llu bytes are over this coordinator's limit of %d MiB "
                          "(--max-input-mib)",
                          (unsigned long long)total, cfg->max_input_mib);
        return -1;
    }
    if (cfg->max_running > 0) {
        int n = 0;
        for (size_t i = 0; i < c->njobs; i++) {
            const job_t *j = c->jobs[i];
            if (!strcmp(j->owner, owner) &&
                (j->state == JOB_UPLOADING || j->state == JOB_QUEUED || j->state == JOB_RUNNING))
                n++;
        }
        if (n >= cfg->max_running) {
            /* busy: the same submit succeeds once one has ended */
            if (c->busy++ % 100 == 0)
                LOG_W("coordinator busy: a submit answered busy at %d jobs of one client "
                      "(--max-running); %llu so far",
                      n, (unsigned long long)c->busy);
            coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BUSY,
                              "%d jobs of this client are already uploading, queued or running: "
                              "the limit is %d (--max-running); wait for one to end",
                              n, cfg->max_running);
            return -1;
        }
    }
    return 0;
}

const char *coord_worker_key(const coord_t *c, int w)
{
    return w >= 0 && (size_t)w < c->nworkers ? c->workers[w].key : "";
}

void coord_access_sighup(coord_t *c)
{
    if (!hup || !c->auth) return;
    hup = 0;
    mlops_auth_reload(c->auth);
    LOG_I("SIGHUP: re-read the keys in %s and %s", c->cfg.worker_keys, c->cfg.client_keys);
}

json_t *coord_access_json(const coord_t *c)
{
    char fp[MLOPS_KEY_FP_LEN + 1] = "";
    if (c->cert) mlops_keys_fingerprint(zcert_public_txt(c->cert), fp);
    return json_pack("{s:b, s:s?, s:s?, s:s?, s:I, s:I, s:I}", "curve", c->cert != NULL,
                     "server_key", c->cert ? fp : NULL, "worker_keys", c->cfg.worker_keys,
                     "client_keys", c->cfg.client_keys, "refused_keys",
                     (json_int_t)(c->auth ? mlops_auth_refused(c->auth) : 0), "denied",
                     (json_int_t)c->denied, "handshakes_failed", (json_int_t)c->handshakes_failed);
}
