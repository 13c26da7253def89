/* transport.h: every socket of mlops is made here, so that socket
 * options (ZMQ_IMMEDIATE, timeouts, linger) are chosen in one place. There
 * is no security layer today: traffic is plain TCP, so run a cluster on a
 * trusted network. CurveZMQ, when it comes, belongs here too.
 *
 * Endpoints are ZeroMQ endpoints. Binding to port 0 or "*" picks an
 * ephemeral port; the bound endpoint is returned with the wildcard host
 * replaced by `advertise_host` (or 127.0.0.1) so peers can use it. */
#ifndef MLOPS_TRANSPORT_H
#define MLOPS_TRANSPORT_H
#include <czmq.h>

/* ROUTER bound to `endpoint`. On success *bound (if non-NULL) receives a
 * malloc'd connectable endpoint. NULL on failure with err filled. */
zsock_t *transport_router_bind(const char *endpoint, const char *advertise_host, char **bound,
                               char *err, size_t errlen);

/* DEALER connected to `endpoint`. NULL on failure with err filled. */
zsock_t *transport_dealer_connect(const char *endpoint, char *err, size_t errlen);

/* DEALER to a peer's store: messages are queued only on a completed
 * connection (ZMQ_IMMEDIATE) and a send gives up after send_timeout_ms,
 * so a request to a dead peer fails at once instead of waiting in the
 * queue while ZeroMQ retries the connection. */
zsock_t *transport_peer_connect(const char *endpoint, int send_timeout_ms, char *err, size_t errlen);

/* The host part of a tcp:// endpoint ("tcp://h:p" -> "h"), malloc'd. */
char *transport_endpoint_host(const char *endpoint);

#endif
