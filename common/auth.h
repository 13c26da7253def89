/* auth.h: who may talk to a CURVE server of this process, and as what.
 *
 * libzmq asks a ZAP handler (RFC 27) on inproc://zeromq.zap.01 about every
 * CURVE handshake. This module runs that handler, one per process, shared
 * by every server socket in it (the coordinator's ROUTER, a worker's store
 * endpoint, both in one test binary). Each server registers a ZAP domain
 * with two directories of authorised public keys, one per role: a key
 * found among the worker keys is accepted as "worker:<Z85 key>", one among
 * the client keys as "client:<Z85 key>", anything else is refused in the
 * handshake, before a single message is read. That string is the
 * connection's User-Id, which the server reads from every message
 * (wire_recv_peer) to decide what the peer may ask.
 *
 * The directories are watched: each handshake checks whether one changed
 * (file count, sizes, modification times) and re-reads it, so a key added
 * takes effect on the next connection and a removed key is refused on
 * its next connection. mlops_auth_reload forces a re-read (SIGHUP), for a
 * file replaced within the same second by one of the same size. */
#ifndef MLOPS_AUTH_H
#define MLOPS_AUTH_H
#include <stddef.h>
#include <stdint.h>

typedef struct mlops_auth mlops_auth_t;

typedef enum { MLOPS_ROLE_NONE = 0, MLOPS_ROLE_WORKER, MLOPS_ROLE_CLIENT } mlops_role_t;

/* Register a domain accepting the keys in worker_dir and client_dir (both
 * must be directories). `what` names the server in refusal logs. Starts
 * the process's ZAP handler on first use. NULL with err on failure. */
mlops_auth_t *mlops_auth_new(const char *worker_dir, const char *client_dir, const char *what,
                             char *err, size_t errlen);
/* The ZAP domain to set on the server socket. */
const char *mlops_auth_domain(const mlops_auth_t *a);
/* Handshakes refused so far (unknown key). */
uint64_t mlops_auth_refused(const mlops_auth_t *a);
/* Re-read both directories now. */
void mlops_auth_reload(mlops_auth_t *a);
void mlops_auth_destroy(mlops_auth_t **pa);

/* The role in a User-Id ("worker:KEY", "client:KEY"); the key (Z85, 40
 * characters) into key if non-NULL. MLOPS_ROLE_NONE for anything else. */
mlops_role_t mlops_auth_role(const char *user_id, char key[41]);

#endif
