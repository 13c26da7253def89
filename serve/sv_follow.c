/* sv_follow.c: mlops-serve's side of the coordinator: fetch the model
 * version (Query model-export), and follow its alias (Query alias-watch,
 * coordinator/alias_watch.c), swapping within the round trip of the push.
 *
 * The loop, on the one DEALER this thread owns:
 *   1. alias-watch "" -> the last move's seq (nothing is waited for);
 *   2. model-export NAME REF -> the artifact, parsed and put live;
 *   3. alias-watch SEQ, held by the coordinator until an alias moves (or
 *      20 s pass): a move of NAME@ALIAS sends it back to 2.
 * A model or alias that does not exist yet is waited for: watched if an
 * alias (a move creates it), fetched again every second if a version.
 * A request without a reply (the coordinator restarting, the network)
 * drops the socket and starts again at 1 after a pause: the fetch after
 * a reconnect is the slow fallback that catches a move pushed while the
 * server was cut off. Keys: the keyring's lookup (common/keyring.h),
 * the same as mlopsctl's. */
#include "err.h"
#include "jsondump.h"
#include "jsonreply.h"
#include "keyring.h"
#include "log.h"
#include "sv_internal.h"
#include "transport.h"
#include "wire.h"
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_WAIT_MS 30000 /* the coordinator answers a watch within 20 s */
#define RETRY_MS 1000

typedef struct {
    zsock_t *sock;
    uint64_t seq;
} link_t;

/* s if a message waits on it within ms, else NULL */
static zsock_t *wait_readable(zsock_t *s, int ms)
{
    zmq_pollitem_t it = {zsock_resolve(s), 0, ZMQ_POLLIN, 0};
    return zmq_poll(&it, 1, ms) > 0 && (it.revents & ZMQ_POLLIN) ? s : NULL;
}

/* Query verb args -> the reply's JSON, or a negative code with err:
 * MLOPS_ETIMEOUT (no reply within wait_ms), MLOPS_ENOTFOUND, MLOPS_EPROTO. */
static int call(sv_t *s, link_t *l, const char *verb, const char *const *args, size_t nargs,
                int wait_ms, json_t **doc, char *err, size_t errlen)
{
    *doc = NULL;
    envelope_t req;
    wire_init(&req, ++l->seq);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = (char *)verb;
    q.job_id = (char *)"";
    q.n_args = nargs;
    q.args = (char **)args;
    req.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    req.query = &q;
    if (wire_send(l->sock, NULL, &req) != 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "cannot send to the coordinator at %s",
                            s->cfg.coordinator);
    int64_t deadline = zclock_mono() + wait_ms;
    while (!atomic_load(&s->stop) && !zsys_interrupted) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) break;
        zsock_t *which = wait_readable(l->sock, left > 200 ? 200 : (int)left);
        if (!which) continue;
        char why[256] = "";
        envelope_t *rep = wire_recv(l->sock, NULL, why, sizeof why);
        if (!rep) continue;
        if (rep->seq != l->seq) { /* a late answer to a request given up on */
            wire_free(&rep);
            continue;
        }
        int rc = 0;
        if (rep->body_case == MLOPS__ENVELOPE__BODY_ERROR) {
            const Mlops__Error *e = rep->error;
            rc = mlops_seterr(err, errlen,
                              e && e->code == MLOPS__ERROR_CODE__NOT_FOUND ? MLOPS_ENOTFOUND
                                                                           : MLOPS_EPROTO,
                              "%s", e && e->message ? e->message : "error");
        } else if (rep->body_case != MLOPS__ENVELOPE__BODY_REPLY || !rep->reply ||
                   !rep->reply->json) {
            rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "the coordinator answered %s to %s",
                              wire_body_name(rep), verb);
        } else {
            /* plain jansson: integers stay integers (the artifact's version) */
            json_error_t je;
            *doc = json_loads(rep->reply->json, JSON_REJECT_DUPLICATES, &je);
            if (!*doc)
                rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "%s: malformed reply: %s", verb,
                                  je.text);
        }
        wire_free(&rep);
        return rc;
    }
    if (atomic_load(&s->stop) || zsys_interrupted)
        return mlops_seterr(err, errlen, MLOPS_ECANCEL, "interrupted");
    return mlops_seterr(err, errlen, MLOPS_ETIMEOUT,
                        "cannot reach the coordinator at %s (no reply within %d ms)",
                        s->cfg.coordinator, wait_ms);
}

/* Fetch NAME@REF and put it live. */
static int load(sv_t *s, link_t *l, const char *ref, char *err, size_t errlen)
{
    const char *args[] = {s->name, ref};
    json_t *doc = NULL;
    int rc = call(s, l, "model-export", args, 2, s->cfg.timeout_ms, &doc, err, errlen);
    if (rc) return rc;
    const json_t *art = json_object_get(doc, "artifact");
    char *text = art ? mlops_json_dumps(art, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) return mlops_seterr(err, errlen, MLOPS_EPROTO, "model-export: no artifact in the reply");
    sv_model_t *m = sv_model_new(text, strlen(text), err, errlen);
    free(text);
    if (!m) return MLOPS_EINVAL;
    sv_model_t *cur = sv_slot_get(&s->slot);
    int same = cur && cur->version == m->version;
    sv_model_release(&cur);
    if (same) sv_model_release(&m); /* a refetch after a reconnect: nothing moved */
    else sv_install(s, m);
    return 0;
}

/* The moves of a watch reply: 1 if our alias moved; *since advanced. */
static int moved(sv_t *s, const json_t *doc, uint64_t *since)
{
    const json_t *mv = json_object_get(doc, "moves");
    int hit = 0;
    for (size_t i = 0; i < json_array_size(mv); i++) {
        const json_t *m = json_array_get(mv, i);
        if (strcmp(mlops_jsonreply_str(m, "model", ""), s->name) ||
            strcmp(mlops_jsonreply_str(m, "alias", ""), s->ref))
            continue;
        if (json_is_null(json_object_get(m, "to")))
            LOG_W("alias %s@%s was removed: still serving the version loaded", s->name, s->ref);
        else hit = 1;
    }
    *since = (uint64_t)json_integer_value(json_object_get(doc, "next"));
    return hit;
}

static void pause_ms(sv_t *s, int ms)
{
    for (int t = 0; t < ms && !atomic_load(&s->stop) && !zsys_interrupted; t += 100)
        zclock_sleep(100);
}

int sv_run(sv_t *s, char *err, size_t errlen)
{
    link_t l = {0};
    int rc = 0;
    while (!atomic_load(&s->stop) && !zsys_interrupted) {
        if (!l.sock) {
            transport_sec_t sec;
            if ((rc = mlops_keyring_sec(NULL, &sec, err, errlen)) != 0) break;
            l.sock = transport_dealer_connect(s->cfg.coordinator, &sec, err, errlen);
            if (!l.sock) {
                rc = MLOPS_EINVAL;
                break;
            }
        }
        char e2[1024] = "";
        json_t *doc = NULL;
        uint64_t since = 0;
        const char *none[] = {""};
        int r = s->by_version ? 0 : call(s, &l, "alias-watch", none, 1, s->cfg.timeout_ms, &doc, e2, sizeof e2);
        if (!r && !s->by_version) moved(s, doc, &since);
        json_decref(doc);
        if (!r) r = load(s, &l, s->ref, e2, sizeof e2);
        if (r == MLOPS_ENOTFOUND && !s->by_version) {
            /* not registered or aliased yet (`up --serve` before the first
             * training): health says 503 until a move makes it exist */
            LOG_W("%s: waiting for %s to exist (health answers 503)", e2, s->cfg.model);
            r = 0;
        }
        while (!r && !atomic_load(&s->stop) && !zsys_interrupted) {
            if (s->by_version) { /* a fixed version never changes */
                pause_ms(s, 500);
                continue;
            }
            char sn[24];
            snprintf(sn, sizeof sn, "%llu", (unsigned long long)since);
            const char *args[] = {sn};
            r = call(s, &l, "alias-watch", args, 1, WATCH_WAIT_MS, &doc, e2, sizeof e2);
            if (!r && moved(s, doc, &since)) r = load(s, &l, s->ref, e2, sizeof e2);
            json_decref(doc);
            doc = NULL;
        }
        if (r == MLOPS_ECANCEL) break;
        sv_model_t *cur = sv_slot_get(&s->slot);
        int loaded = cur != NULL;
        sv_model_release(&cur);
        if (!loaded && r == MLOPS_EINVAL) {
            rc = mlops_seterr(err, errlen, r, "--model %s: %s", s->cfg.model, e2);
            break;
        }
        LOG_W("%s; retrying", e2);
        zsock_destroy(&l.sock);
        pause_ms(s, RETRY_MS);
    }
    zsock_destroy(&l.sock);
    return rc;
}
