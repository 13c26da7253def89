/* transport.h: every socket of mlops is made here, so that socket
 * options (ZMQ_IMMEDIATE, timeouts, linger) and security are chosen in
 * one place. With a transport_sec_t that has a key pair, a socket speaks
 * CURVE (RFC 26): encrypted, and authenticated by long-term keys. A
 * server checks its peers through a ZAP domain (auth.h); a client checks
 * the server against the public key it was given. Without one (NULL, or
 * no cert) the socket is plain TCP: only for --insecure clusters.
 *
 * Endpoints are ZeroMQ endpoints. Binding to port 0 or "*" picks an
 * ephemeral port; the bound endpoint is returned with the wildcard host
 * replaced by `advertise_host` (or 127.0.0.1) so peers can use it. */
#ifndef MLOPS_TRANSPORT_H
#define MLOPS_TRANSPORT_H
#include <czmq.h>

/* Borrowed pointers; all may be NULL. */
typedef struct {
    zcert_t *cert;          /* this side's key pair; NULL = no CURVE */
    const char *zap_domain; /* server: the domain of its mlops_auth_t */
    const char *server_key; /* client: the server's public key, Z85 */
} transport_sec_t;

/* ROUTER bound to `endpoint`. On success *bound (if non-NULL) receives a
 * malloc'd connectable endpoint. NULL on failure with err filled. */
zsock_t *transport_router_bind(const char *endpoint, const char *advertise_host,
                               const transport_sec_t *sec, char **bound, char *err, size_t errlen);
/* The same with `sndhwm` messages queued to each peer before a send
 * would block (0: the default, 100 000). It must be set before the bind:
 * libzmq gives accepted connections the options the socket had then. */
zsock_t *transport_router_bind_hwm(const char *endpoint, const char *advertise_host,
                                   const transport_sec_t *sec, int sndhwm, char **bound, char *err,
                                   size_t errlen);

/* DEALER connected to `endpoint`. NULL on failure with err filled. */
zsock_t *transport_dealer_connect(const char *endpoint, const transport_sec_t *sec, char *err,
                                  size_t errlen);
/* The same, with *mon set to a monitor of it (transport_monitor; NULL if
 * none could be made) attached before the connect, so that no event of
 * the first connection is missed. */
zsock_t *transport_dealer_connect_watched(const char *endpoint, const transport_sec_t *sec,
                                          zsock_t **mon, char *err, size_t errlen);

/* DEALER to a peer's store: messages are queued only on a completed
 * connection (ZMQ_IMMEDIATE) and a send gives up after send_timeout_ms,
 * so a request to a dead peer fails at once instead of waiting in the
 * queue while ZeroMQ retries the connection. */
zsock_t *transport_peer_connect(const char *endpoint, int send_timeout_ms,
                                const transport_sec_t *sec, char *err, size_t errlen);

/* What happened to the connections of a socket, for telling a person
 * why a peer does not answer (transport_monitor_poll's bits). */
enum {
    TRANSPORT_CONNECTED = 1,     /* a TCP connection was made */
    TRANSPORT_HANDSHAKE_OK = 2,  /* the ZMTP/CURVE handshake succeeded */
    TRANSPORT_REFUSED_AUTH = 4,  /* the peer's ZAP handler refused our key */
    TRANSPORT_REFUSED_PROTO = 8, /* the handshake failed: mechanism or key mismatch */
};
/* Watch socket s (CONNECTED and HANDSHAKE events) through a PAIR socket
 * to be read with transport_monitor_poll. NULL on failure. */
zsock_t *transport_monitor(zsock_t *s);
/* Drain the events waiting on `mon`; the TRANSPORT_* bits seen. With
 * `address`, the peer address of the last failed handshake is copied. */
int transport_monitor_poll(zsock_t *mon, char *address, size_t n);

/* 1 if `endpoint` can only be reached from this host: tcp:// on
 * 127.0.0.0/8, localhost or ::1, or ipc:// and inproc://. */
int transport_is_loopback(const char *endpoint);

/* The host part of a tcp:// endpoint ("tcp://h:p" -> "h"), malloc'd. */
char *transport_endpoint_host(const char *endpoint);

#endif
