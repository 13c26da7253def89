/* client.c: see client.h. The receive loop is our own rather than
 * wire_request() so that pipelined uploads and plain calls share one
 * deadline rule and the caller gets the error code, not just a text. */
#include "client.h"
#include "err.h"
#include "keyring.h"
#include "transport.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_client {
    zsock_t *sock;
    zsock_t *mon; /* its connection events: why a server does not answer */
    int events;
    char *endpoint;
    const char *what;
    int timeout_ms;
    int retries; /* resends of a read after a timeout */
    int tries;   /* of the last call, for the unreachable message */
    uint64_t seq;
};

ctl_client *ctl_client_new(const char *endpoint, const char *what, int timeout_ms, char *err,
                           size_t errlen)
{
    return ctl_client_new_store(endpoint, what, timeout_ms, NULL, err, errlen);
}

ctl_client *ctl_client_new_store(const char *endpoint, const char *what, int timeout_ms,
                                 const char *server_key, char *err, size_t errlen)
{
    ctl_client *c = calloc(1, sizeof *c);
    if (!c) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return NULL;
    }
    c->endpoint = strdup(endpoint);
    c->what = what;
    c->timeout_ms = timeout_ms;
    c->tries = 1;
    if (!c->endpoint) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        ctl_client_destroy(&c);
        return NULL;
    }
    transport_sec_t sec;
    if (mlops_keyring_sec(server_key, &sec, err, errlen) != 0) {
        ctl_client_destroy(&c);
        return NULL;
    }
    c->sock = transport_dealer_connect_watched(endpoint, &sec, &c->mon, err, errlen);
    if (!c->sock) ctl_client_destroy(&c);
    return c;
}

void ctl_client_destroy(ctl_client **pc)
{
    if (!pc || !*pc) return;
    ctl_client *c = *pc;
    zsock_destroy(&c->sock);
    zsock_destroy(&c->mon);
    free(c->endpoint);
    free(c);
    *pc = NULL;
}

uint64_t ctl_client_next_seq(ctl_client *c) { return ++c->seq; }

void ctl_client_set_retries(ctl_client *c, int retries) { c->retries = retries < 0 ? 0 : retries; }

int ctl_client_unreachable(ctl_client *c, char *err, size_t errlen)
{
    char hint[600] = "";
    /* the monitor's events arrive asynchronously: give them a moment */
    for (int i = 0; i < 5 && c->mon; i++) {
        c->events |= transport_monitor_poll(c->mon, NULL, 0);
        if (c->events & (TRANSPORT_REFUSED_AUTH | TRANSPORT_REFUSED_PROTO)) break;
        zclock_sleep(10);
    }
    if (c->events & TRANSPORT_REFUSED_AUTH) {
        mlops_keyring_hint(hint, sizeof hint);
        return mlops_seterr(err, errlen, MLOPS_EDENIED,
                            "%s at %s refused this client's key%s", c->what, c->endpoint, hint);
    }
    if ((c->events & TRANSPORT_REFUSED_PROTO) ||
        ((c->events & TRANSPORT_CONNECTED) && !(c->events & TRANSPORT_HANDSHAKE_OK))) {
        mlops_keyring_hint(hint, sizeof hint);
        return mlops_seterr(err, errlen, MLOPS_EDENIED,
                            "%s at %s did not complete the handshake%s", c->what, c->endpoint,
                            hint);
    }
    if (c->tries > 1)
        return mlops_seterr(err, errlen, MLOPS_ETIMEOUT,
                            "cannot reach %s at %s (no reply within %d ms, %d tries)%s", c->what,
                            c->endpoint, c->timeout_ms, c->tries, hint);
    return mlops_seterr(err, errlen, MLOPS_ETIMEOUT,
                        "cannot reach %s at %s (no reply within %d ms)%s", c->what, c->endpoint,
                        c->timeout_ms, hint);
}

int ctl_client_error(const envelope_t *rep, char *err, size_t errlen)
{
    const Mlops__Error *e = rep->error;
    const char *msg = e && e->message && *e->message ? e->message : "error without a message";
    int code = MLOPS_EPROTO;
    if (e && e->code == MLOPS__ERROR_CODE__BAD_JOB) code = MLOPS_EINVAL;
    else if (e && e->code == MLOPS__ERROR_CODE__NOT_FOUND) code = MLOPS_ENOTFOUND;
    else if (e && e->code == MLOPS__ERROR_CODE__DENIED) code = MLOPS_EDENIED;
    else if (e && e->code == MLOPS__ERROR_CODE__BUSY) code = MLOPS_EFULL;
    return mlops_seterr(err, errlen, code, "%s", msg);
}

int ctl_client_send(ctl_client *c, envelope_t *req, char *err, size_t errlen)
{
    req->seq = ctl_client_next_seq(c);
    if (wire_send(c->sock, NULL, req) != 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "cannot send to %s at %s", c->what, c->endpoint);
    return 0;
}

int ctl_client_recv(ctl_client *c, envelope_t **rep, char *err, size_t errlen)
{
    *rep = NULL;
    zpoller_t *p = zpoller_new(c->sock, NULL);
    if (!p) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    int64_t deadline = zclock_mono() + c->timeout_ms;
    int rc = 0;
    for (;;) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) {
            rc = ctl_client_unreachable(c, err, errlen);
            break;
        }
        if (zpoller_wait(p, (int)left)) {
            char why[256] = "";
            *rep = wire_recv(c->sock, NULL, why, sizeof why);
            if (!*rep)
                rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "bad reply from %s at %s: %s", c->what,
                                  c->endpoint, why);
            break;
        }
        if (zsys_interrupted) { /* not a mere EINTR (SIGWINCH, SIGCHLD) */
            rc = mlops_seterr(err, errlen, MLOPS_ECANCEL, "interrupted");
            break;
        }
    }
    zpoller_destroy(&p);
    return rc;
}

int ctl_client_call(ctl_client *c, envelope_t *req, envelope_t **rep, char *err, size_t errlen)
{
    *rep = NULL;
    int rc = ctl_client_send(c, req, err, errlen);
    while (!rc) {
        envelope_t *r = NULL;
        rc = ctl_client_recv(c, &r, err, errlen);
        if (rc) break;
        if (r->seq != req->seq) { /* a late reply to an earlier request */
            wire_free(&r);
            continue;
        }
        if (r->body_case == MLOPS__ENVELOPE__BODY_ERROR) {
            rc = ctl_client_error(r, err, errlen);
            wire_free(&r);
            break;
        }
        *rep = r;
        break;
    }
    return rc;
}

/* A request that changes nothing twice (a read, or a submit carrying its
 * idempotency key) may be sent again when no reply came: the peer may
 * be restarting (ZeroMQ reconnects the DEALER by itself) or the first
 * copy died with the old connection. Each resend takes a new seq, so a
 * late answer to an earlier copy is dropped by ctl_client_call. The
 * pause doubles from RETRY_FIRST_MS up to RETRY_MAX_MS.
 *
 * A BUSY answer (the coordinator is at a bound: --max-jobs, a client's
 * --max-running, a full journal) is sent again the same way for up to
 * CTL_BUSY_WAIT_MS, however many tries that takes (--retries 0: none):
 * the coordinator asked for it, and a flood of submits then waits its
 * turn instead of failing. */
#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS 3200
#define CTL_BUSY_WAIT_MS 60000
int ctl_client_call_retry(ctl_client *c, envelope_t *req, envelope_t **rep, char *err, size_t errlen)
{
    int pause = RETRY_FIRST_MS;
    int64_t busy_until = zclock_mono() + CTL_BUSY_WAIT_MS;
    int timeouts = 0;
    for (c->tries = 1;; c->tries++) {
        int rc = ctl_client_call(c, req, rep, err, errlen);
        if (rc == MLOPS_EFULL) {
            if (c->retries == 0 || zclock_mono() + pause > busy_until) {
                size_t n = strlen(err);
                if (n < errlen && c->tries > 1)
                    snprintf(err + n, errlen - n, " (still busy after %d tries)", c->tries);
                return rc;
            }
        } else if (rc != MLOPS_ETIMEOUT || ++timeouts > c->retries) {
            if (rc == MLOPS_ETIMEOUT) rc = ctl_client_unreachable(c, err, errlen);
            return rc;
        }
        zclock_sleep(pause);
        if (zsys_interrupted) return mlops_seterr(err, errlen, MLOPS_ECANCEL, "interrupted");
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
}

int ctl_client_query(ctl_client *c, const char *verb, const char *job_id, const char *const *args,
                     size_t nargs, json_t **doc, char **raw, char *err, size_t errlen)
{
    *doc = NULL;
    if (raw) *raw = NULL;
    envelope_t req;
    wire_init(&req, 0);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = (char *)verb;
    q.job_id = (char *)(job_id ? job_id : "");
    q.n_args = nargs;
    q.args = (char **)args;
    req.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    req.query = &q;
    envelope_t *rep = NULL;
    /* rm is the one verb whose repeat answers differently ("no job") */
    int rc = strcmp(verb, "rm") ? ctl_client_call_retry(c, &req, &rep, err, errlen)
                                : ctl_client_call(c, &req, &rep, err, errlen);
    if (rc) return rc;
    if (rep->body_case != MLOPS__ENVELOPE__BODY_REPLY || !rep->reply || !rep->reply->json) {
        rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "%s at %s answered %s to a %s query", c->what,
                          c->endpoint, wire_body_name(rep), verb);
        wire_free(&rep);
        return rc;
    }
    const char *text = rep->reply->json;
    char jerr[256];
    *doc = mlops_jsonreply_parse(text, strlen(text), jerr, sizeof jerr);
    if (!*doc) {
        rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "%s query: malformed reply from %s: %s", verb,
                          c->what, jerr);
        wire_free(&rep);
        return rc;
    }
    if (raw && !(*raw = strdup(text))) {
        json_decref(*doc);
        *doc = NULL;
        wire_free(&rep);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    }
    wire_free(&rep);
    return 0;
}
