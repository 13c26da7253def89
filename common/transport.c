/* transport.c: see transport.h. Sockets are czmq zsock_t with linger 0
 * for requests (a dead peer must not block shutdown) and high-water marks
 * raised for shard transfer. */
#include "transport.h"
#include "err.h"
#include <string.h>

/* ZMQ_ZAP_ENFORCE_DOMAIN: a draft option in zmq.h's draft section,
 * which Debian's libzmq5 is built with; czmq's setter for it is compiled
 * out there, so it is set through zmq_setsockopt. */
#define TRANSPORT_ZAP_ENFORCE_DOMAIN 93

static void tune(zsock_t *s)
{
    zsock_set_linger(s, 200);
    zsock_set_sndhwm(s, 100000);
    zsock_set_rcvhwm(s, 100000);
    zsock_set_maxmsgsize(s, (int64_t)256 << 20);
}

/* CURVE before bind/connect: libzmq takes the mechanism of a connection
 * from the options the socket had when the connection was made. */
static int secure(zsock_t *s, const transport_sec_t *sec, int server, char *err, size_t errlen)
{
    if (!sec || !sec->cert) return 0;
    zcert_apply(sec->cert, s);
    if (server) {
        zsock_set_curve_server(s, 1);
        if (sec->zap_domain) {
            zsock_set_zap_domain(s, sec->zap_domain);
            /* fail closed: with no ZAP handler to ask, libzmq would let
             * any CURVE key in */
            int one = 1;
            zmq_setsockopt(zsock_resolve(s), TRANSPORT_ZAP_ENFORCE_DOMAIN, &one, sizeof one);
        }
        return 0;
    }
    if (!sec->server_key || strlen(sec->server_key) != 40)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "no public key of the server to connect to with CURVE");
    zsock_set_curve_serverkey(s, sec->server_key);
    return 0;
}

zsock_t *transport_router_bind(const char *endpoint, const char *advertise_host,
                               const transport_sec_t *sec, char **bound, char *err, size_t errlen)
{
    return transport_router_bind_hwm(endpoint, advertise_host, sec, 0, bound, err, errlen);
}

zsock_t *transport_router_bind_hwm(const char *endpoint, const char *advertise_host,
                                   const transport_sec_t *sec, int sndhwm, char **bound, char *err,
                                   size_t errlen)
{
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    if (!s) {
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot create socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    tune(s);
    if (sndhwm > 0) zsock_set_sndhwm(s, sndhwm);
    zsock_set_router_handover(s, 1); /* a reconnecting peer takes over its identity */
    if (secure(s, sec, 1, err, errlen) != 0) {
        zsock_destroy(&s);
        return NULL;
    }
    /* czmq turns ":*" into a scan upward from port 49152, which hands a
     * port freed a moment ago (a crashed coordinator's) to the next
     * binder; ":0" lets the kernel pick from its ephemeral range. */
    char ep[512];
    size_t el = strlen(endpoint);
    if (el >= 2 && el < sizeof ep && !strcmp(endpoint + el - 2, ":*")) {
        memcpy(ep, endpoint, el - 1);
        ep[el - 1] = '0';
        ep[el] = 0;
        endpoint = ep;
    }
    if (zsock_bind(s, "%s", endpoint) < 0) {
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot bind %s: %s", endpoint,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&s);
        return NULL;
    }
    if (bound) {
        char *last = zsock_last_endpoint(s); /* e.g. tcp://0.0.0.0:41234 */
        const char *colon = last ? strrchr(last, ':') : NULL;
        if (colon && !strncmp(last, "tcp://", 6)) {
            const char *host = advertise_host && *advertise_host ? advertise_host : "127.0.0.1";
            char buf[512];
            snprintf(buf, sizeof buf, "tcp://%s%s", host, colon);
            *bound = strdup(buf);
        } else {
            *bound = strdup(last ? last : endpoint);
        }
        zstr_free(&last);
    }
    return s;
}

/* A DEALER with our tuning, linger 0 and the security of sec, connected
 * to endpoint; a peer socket also queues only to a completed connection
 * and gives up a send after send_timeout_ms. With `mon`, the socket is
 * watched (transport_monitor) before it connects: libzmq drops the events
 * of a socket nobody is watching yet, and a handshake refused for a
 * mechanism mismatch is not followed by another (the coordinator logged
 * one refusal per client), so a monitor attached after the connect could
 * miss the only event that says why. */
static zsock_t *dealer_connect(const char *endpoint, int peer, int send_timeout_ms,
                               const transport_sec_t *sec, zsock_t **mon, char *err,
                               size_t errlen)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    if (!s) {
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot create socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    tune(s);
    zsock_set_linger(s, 0);
    if (peer) {
        zsock_set_immediate(s, 1);
        zsock_set_sndtimeo(s, send_timeout_ms);
    }
    if (secure(s, sec, 0, err, errlen) != 0) {
        zsock_destroy(&s);
        return NULL;
    }
    if (mon) *mon = transport_monitor(s);
    if (zsock_connect(s, "%s", endpoint) < 0) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "cannot connect to %s: %s", endpoint,
                     zmq_strerror(zmq_errno()));
        if (mon) zsock_destroy(mon);
        zsock_destroy(&s);
        return NULL;
    }
    return s;
}

zsock_t *transport_dealer_connect(const char *endpoint, const transport_sec_t *sec, char *err,
                                  size_t errlen)
{
    return dealer_connect(endpoint, 0, 0, sec, NULL, err, errlen);
}

zsock_t *transport_dealer_connect_watched(const char *endpoint, const transport_sec_t *sec,
                                          zsock_t **mon, char *err, size_t errlen)
{
    return dealer_connect(endpoint, 0, 0, sec, mon, err, errlen);
}

zsock_t *transport_peer_connect(const char *endpoint, int send_timeout_ms,
                                const transport_sec_t *sec, char *err, size_t errlen)
{
    return dealer_connect(endpoint, 1, send_timeout_ms, sec, NULL, err, errlen);
}

char *transport_endpoint_host(const char *endpoint)
{
    const char *p = strstr(endpoint, "://");
    p = p ? p + 3 : endpoint;
    const char *colon = strrchr(p, ':');
    size_t n = colon ? (size_t)(colon - p) : strlen(p);
    char *h = malloc(n + 1);
    if (!h) return NULL;
    memcpy(h, p, n);
    h[n] = 0;
    return h;
}

int transport_is_loopback(const char *endpoint)
{
    if (!strncmp(endpoint, "ipc://", 6) || !strncmp(endpoint, "inproc://", 9)) return 1;
    if (strncmp(endpoint, "tcp://", 6)) return 0;
    char *h = transport_endpoint_host(endpoint);
    if (!h) return 0;
    /* "tcp://lo;127.0.0.1:5555" names a source interface: judge the target */
    const char *t = strrchr(h, ';');
    t = t ? t + 1 : h;
    int yes = !strncmp(t, "127.", 4) || !strcmp(t, "localhost") || !strcmp(t, "[::1]") ||
              !strcmp(t, "::1");
    free(h);
    return yes;
}

zsock_t *transport_monitor(zsock_t *s)
{
    static _Atomic unsigned next;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://mlops-monitor-%u", ++next);
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(zsock_resolve(s), ep, events) != 0) return NULL;
    zsock_t *mon = zsock_new(ZMQ_PAIR);
    if (!mon) return NULL;
    zsock_set_linger(mon, 0);
    if (zsock_connect(mon, "%s", ep) != 0) {
        zsock_destroy(&mon);
        return NULL;
    }
    return mon;
}

int transport_monitor_poll(zsock_t *mon, char *address, size_t n)
{
    int seen = 0;
    while (mon && (zsock_events(mon) & ZMQ_POLLIN)) {
        zmsg_t *m = zmsg_recv(mon);
        if (!m) break;
        zframe_t *f = zmsg_first(m);
        zframe_t *a = zmsg_next(m);
        if (f && zframe_size(f) >= 2) {
            uint16_t ev;
            memcpy(&ev, zframe_data(f), 2);
            int bit = 0;
            if (ev == ZMQ_EVENT_CONNECTED || ev == ZMQ_EVENT_ACCEPTED) bit = TRANSPORT_CONNECTED;
            else if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) bit = TRANSPORT_HANDSHAKE_OK;
            else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) bit = TRANSPORT_REFUSED_AUTH;
            else bit = TRANSPORT_REFUSED_PROTO;
            seen |= bit;
            if (address && n && a && (bit & (TRANSPORT_REFUSED_AUTH | TRANSPORT_REFUSED_PROTO)))
                snprintf(address, n, "%.*s", (int)zframe_size(a), (const char *)zframe_data(a));
        }
        zmsg_destroy(&m);
    }
    return seen;
}
