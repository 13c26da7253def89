/* transport.c: see transport.h. Sockets are czmq zsock_t with linger 0
 * for requests (a dead peer must not block shutdown) and high-water marks
 * raised for shard transfer. */
#include "transport.h"
#include "err.h"
#include <string.h>

static void tune(zsock_t *s)
{
    zsock_set_linger(s, 200);
    zsock_set_sndhwm(s, 100000);
    zsock_set_rcvhwm(s, 100000);
    zsock_set_maxmsgsize(s, (int64_t)256 << 20);
}

zsock_t *transport_router_bind(const char *endpoint, const char *advertise_host, char **bound,
                               char *err, size_t errlen)
{
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    if (!s) {
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot create socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    tune(s);
    zsock_set_router_handover(s, 1); /* a reconnecting peer takes over its identity */
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

zsock_t *transport_dealer_connect(const char *endpoint, char *err, size_t errlen)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    if (!s) {
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot create socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    tune(s);
    zsock_set_linger(s, 0);
    if (zsock_connect(s, "%s", endpoint) < 0) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "cannot connect to %s: %s", endpoint,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&s);
        return NULL;
    }
    return s;
}

zsock_t *transport_peer_connect(const char *endpoint, int send_timeout_ms, char *err, size_t errlen)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    if (!s) {
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot create socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    tune(s);
    zsock_set_linger(s, 0);
    zsock_set_immediate(s, 1);
    zsock_set_sndtimeo(s, send_timeout_ms);
    if (zsock_connect(s, "%s", endpoint) < 0) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "cannot connect to %s: %s", endpoint,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&s);
        return NULL;
    }
    return s;
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
