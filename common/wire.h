/* wire.h: Envelope framing over czmq sockets.
 * One Envelope per ZeroMQ frame; ROUTER messages carry the peer identity
 * frame first. Receiving validates everything a peer controls: frame
 * count, size, unpacking, version and the presence of a body. */
#ifndef MLOPS_WIRE_H
#define MLOPS_WIRE_H
#include <czmq.h>
#include "mlops.pb-c.h"

#define MLOPS_WIRE_VERSION 1
#define MLOPS_MAX_FRAME ((size_t)256 << 20)

typedef Mlops__Envelope envelope_t;

/* Send `env` (borrowed). If `identity` is non-NULL the message goes
 * through a ROUTER to that peer (identity is borrowed). 0 or MLOPS_EIO. */
int wire_send(zsock_t *s, zframe_t *identity, envelope_t *env);

/* Receive one message. On success returns an envelope to free with
 * wire_free() and sets *identity (if non-NULL: ROUTER sockets) to a frame
 * the caller owns. On a bad message returns NULL with err filled and,
 * for ROUTER sockets, *identity still set so the caller can answer. */
envelope_t *wire_recv(zsock_t *s, zframe_t **identity, char *err, size_t errlen);

/* Decode one frame's bytes data[0..len) (borrowed) from a peer into an
 * envelope to free with wire_free(): the checks wire_recv makes on every
 * frame (size limit, unpacking, version, a body), apart from the socket,
 * so that they can be tested and fuzzed on bytes alone. NULL with err
 * filled (MLOPS_EPROTO text) on a bad frame. */
envelope_t *wire_decode(const void *data, size_t len, char *err, size_t errlen);

/* Who sent a message, from its connection: the User-Id the ZAP handler
 * gave it (auth.h; "" on a plain connection) and its address. */
typedef struct {
    char user_id[64];
    char address[64];
} wire_peer_t;

/* wire_recv, also filling *peer (if non-NULL), even for a bad message
 * once its body frame has arrived. */
envelope_t *wire_recv_peer(zsock_t *s, zframe_t **identity, wire_peer_t *peer, char *err,
                           size_t errlen);

void wire_free(envelope_t **env);

/* Fill env (seq) with the Error body e {code, text}; both borrowed. */
void wire_error_body(envelope_t *env, Mlops__Error *e, uint64_t seq, Mlops__ErrorCode code, const char *text);

/* Build and send an Error envelope. */
int wire_send_error(zsock_t *s, zframe_t *identity, uint64_t seq, Mlops__ErrorCode code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Initialise an envelope on the stack: version set, seq given. */
void wire_init(envelope_t *env, uint64_t seq);

/* Request/reply helper for clients (mlopsctl, peers): send `req` on a
 * DEALER and wait up to timeout_ms for the reply with the same seq,
 * dropping stale replies. NULL on timeout (err says so) or bad frame. */
envelope_t *wire_request(zsock_t *s, envelope_t *req, int timeout_ms, char *err, size_t errlen);

/* Name of the body case, for logs. */
const char *wire_body_name(const envelope_t *env);

#endif
