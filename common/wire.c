/* wire.c: see wire.h. */
#include "wire.h"
#include "err.h"
#include "log.h"
#include <stdarg.h>

void wire_init(envelope_t *env, uint64_t seq)
{
    mlops__envelope__init(env);
    env->version = MLOPS_WIRE_VERSION;
    env->seq = seq;
}

int wire_send(zsock_t *s, zframe_t *identity, envelope_t *env)
{
    size_t len = mlops__envelope__get_packed_size(env);
    zframe_t *f = zframe_new(NULL, len);
    if (!f) return MLOPS_ENOMEM;
    mlops__envelope__pack(env, zframe_data(f));
    if (identity) {
        zframe_t *id = zframe_dup(identity);
        if (zframe_send(&id, s, ZFRAME_MORE) != 0) {
            zframe_destroy(&id);
            zframe_destroy(&f);
            return MLOPS_EIO;
        }
    }
    if (zframe_send(&f, s, 0) != 0) {
        zframe_destroy(&f);
        return MLOPS_EIO;
    }
    return 0;
}

envelope_t *wire_decode(const void *data, size_t len, char *err, size_t errlen)
{
    if (len > MLOPS_MAX_FRAME) {
        mlops_seterr(err, errlen, MLOPS_EPROTO, "frame of %zu bytes is over the limit", len);
        return NULL;
    }
    envelope_t *env = mlops__envelope__unpack(NULL, len, data);
    if (!env) {
        mlops_seterr(err, errlen, MLOPS_EPROTO, "frame of %zu bytes is not an Envelope", len);
        return NULL;
    }
    if (env->version != MLOPS_WIRE_VERSION) {
        mlops_seterr(err, errlen, MLOPS_EPROTO, "protocol version %u, expected %u", env->version,
                     MLOPS_WIRE_VERSION);
        wire_free(&env);
        return NULL;
    }
    if (env->body_case == MLOPS__ENVELOPE__BODY__NOT_SET) {
        mlops_seterr(err, errlen, MLOPS_EPROTO, "envelope without a body");
        wire_free(&env);
        return NULL;
    }
    return env;
}

envelope_t *wire_recv(zsock_t *s, zframe_t **identity, char *err, size_t errlen)
{
    return wire_recv_peer(s, identity, NULL, err, errlen);
}

/* Connection metadata is the same on every frame of a message: read it
 * from the body frame, which outlives the identity frame's pop. */
static void peer_meta(zframe_t *f, wire_peer_t *peer)
{
    const char *u = zframe_meta(f, "User-Id");
    const char *a = zframe_meta(f, "Peer-Address");
    snprintf(peer->user_id, sizeof peer->user_id, "%s", u ? u : "");
    snprintf(peer->address, sizeof peer->address, "%s", a ? a : "?");
}

envelope_t *wire_recv_peer(zsock_t *s, zframe_t **identity, wire_peer_t *peer, char *err,
                           size_t errlen)
{
    zmsg_t *msg = zmsg_recv(s);
    if (identity) *identity = NULL;
    if (peer) {
        peer->user_id[0] = 0;
        snprintf(peer->address, sizeof peer->address, "?");
    }
    if (!msg) {
        mlops_seterr(err, errlen, MLOPS_EIO, "receive interrupted");
        return NULL;
    }
    if (identity) {
        *identity = zmsg_pop(msg);
        if (!*identity) {
            mlops_seterr(err, errlen, MLOPS_EPROTO, "message without identity");
            zmsg_destroy(&msg);
            return NULL;
        }
    }
    envelope_t *env = NULL;
    size_t nframes = zmsg_size(msg);
    if (nframes != 1) {
        mlops_seterr(err, errlen, MLOPS_EPROTO, "expected 1 frame, got %zu", nframes);
        goto out;
    }
    zframe_t *f = zmsg_first(msg);
    if (peer) peer_meta(f, peer);
    env = wire_decode(zframe_data(f), zframe_size(f), err, errlen);
out:
    zmsg_destroy(&msg);
    return env;
}

void wire_free(envelope_t **env)
{
    if (env && *env) {
        mlops__envelope__free_unpacked(*env, NULL);
        *env = NULL;
    }
}

void wire_error_body(envelope_t *env, Mlops__Error *e, uint64_t seq, Mlops__ErrorCode code, const char *text)
{
    wire_init(env, seq);
    mlops__error__init(e);
    e->code = code;
    e->message = (char *)text;
    env->body_case = MLOPS__ENVELOPE__BODY_ERROR;
    env->error = e;
}

int wire_send_error(zsock_t *s, zframe_t *identity, uint64_t seq, Mlops__ErrorCode code,
                    const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    envelope_t env;
    Mlops__Error e;
    wire_error_body(&env, &e, seq, code, text);
    return wire_send(s, identity, &env);
}

envelope_t *wire_request(zsock_t *s, envelope_t *req, int timeout_ms, char *err, size_t errlen)
{
    if (wire_send(s, NULL, req) != 0) {
        mlops_seterr(err, errlen, MLOPS_EIO, "not reachable (send failed: %s)", zmq_strerror(zmq_errno()));
        return NULL;
    }
    int64_t deadline = zclock_mono() + timeout_ms;
    zpoller_t *p = zpoller_new(s, NULL);
    envelope_t *rep = NULL;
    while (!rep) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) {
            mlops_seterr(err, errlen, MLOPS_ETIMEOUT, "no reply within %d ms", timeout_ms);
            break;
        }
        void *which = zpoller_wait(p, (int)left);
        if (!which) {
            if (zsys_interrupted) {
                mlops_seterr(err, errlen, MLOPS_ECANCEL, "interrupted");
                break;
            }
            continue;
        }
        rep = wire_recv(s, NULL, err, errlen);
        if (!rep) break;
        if (rep->seq != req->seq) /* a stale reply to an earlier request */
            wire_free(&rep);
    }
    zpoller_destroy(&p);
    return rep;
}

const char *wire_body_name(const envelope_t *env)
{
    switch (env->body_case) {
    case MLOPS__ENVELOPE__BODY_REGISTER: return "Register";
    case MLOPS__ENVELOPE__BODY_REGISTER_OK: return "RegisterOk";
    case MLOPS__ENVELOPE__BODY_HEARTBEAT: return "Heartbeat";
    case MLOPS__ENVELOPE__BODY_TASK_ASSIGN: return "TaskAssign";
    case MLOPS__ENVELOPE__BODY_TASK_RESULT: return "TaskResult";
    case MLOPS__ENVELOPE__BODY_DROP_JOB: return "DropJob";
    case MLOPS__ENVELOPE__BODY_SHARD_GET: return "ShardGet";
    case MLOPS__ENVELOPE__BODY_SHARD_DATA: return "ShardData";
    case MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN: return "SubmitBegin";
    case MLOPS__ENVELOPE__BODY_JOB_ACK: return "JobAck";
    case MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK: return "UploadChunk";
    case MLOPS__ENVELOPE__BODY_ACK: return "Ack";
    case MLOPS__ENVELOPE__BODY_QUERY: return "Query";
    case MLOPS__ENVELOPE__BODY_REPLY: return "Reply";
    case MLOPS__ENVELOPE__BODY_ERROR: return "Error";
    case MLOPS__ENVELOPE__BODY_LEAVE: return "Leave";
    default: return "?";
    }
}
