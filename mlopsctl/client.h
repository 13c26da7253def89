/* client.h: mlopsctl's side of the request/reply protocol.
 *
 * One client = one DEALER connected to one endpoint (the coordinator, or
 * a worker's store endpoint for export). Every call is bounded by the
 * client's timeout; a timeout is reported as MLOPS_ETIMEOUT with the
 * message "cannot reach the coordinator at EP (no reply within N ms)"
 * (or "the worker store at EP" for a store client), which mlopsctl turns
 * into exit code 3. An Error reply becomes a negative code with the
 * server's message: BAD_JOB -> MLOPS_EINVAL (exit 2), NOT_FOUND ->
 * MLOPS_ENOTFOUND, anything else -> MLOPS_EPROTO (exit 1). */
#ifndef MLOPSCTL_CLIENT_H
#define MLOPSCTL_CLIENT_H
#include <stdint.h>
#include "jsonreply.h"
#include "wire.h"

typedef struct ctl_client ctl_client;

/* Connect to `endpoint`; `what` names the peer in messages ("the
 * coordinator", "the worker store"). NULL with err filled on failure. */
ctl_client *ctl_client_new(const char *endpoint, const char *what, int timeout_ms, char *err,
                           size_t errlen);
/* The same, to a worker store whose CURVE public key is `server_key`
 * (from the export plan; NULL: the coordinator's, see keyring.h). */
ctl_client *ctl_client_new_store(const char *endpoint, const char *what, int timeout_ms,
                                 const char *server_key, char *err, size_t errlen);
void ctl_client_destroy(ctl_client **pc);

/* Send `req` (its seq is assigned here) and wait for the reply with the
 * same seq. On success *rep is the reply (free with wire_free) and is
 * never an Error: an Error reply is turned into a code and message. */
int ctl_client_call(ctl_client *c, envelope_t *req, envelope_t **rep, char *err, size_t errlen);

/* ctl_client_call, sent again up to `retries` more times (backoff
 * 0.2 s doubling to 3.2 s) while no reply comes; only for requests that
 * are safe to repeat: reads, and a submit with its idempotency key. The
 * unreachable message then ends ", N tries)". */
int ctl_client_call_retry(ctl_client *c, envelope_t *req, envelope_t **rep, char *err, size_t errlen);
void ctl_client_set_retries(ctl_client *c, int retries);

/* Query{verb, job_id, args} and parse the Reply's JSON. On success
 * *doc is the parsed document (json_decref it) and, if raw is non-NULL,
 * *raw the text as received (malloc'd, free it). A reply that is not
 * JSON is MLOPS_EPROTO with a message giving its line and column.
 * Sent with ctl_client_call_retry, except "rm": every other verb is a
 * read or answers a repeat the same (cancel of a cancelled job). */
int ctl_client_query(ctl_client *c, const char *verb, const char *job_id, const char *const *args,
                     size_t nargs, json_t **doc, char **raw, char *err, size_t errlen);

/* Pipelining (uploads keep several requests in flight): send assigns
 * req->seq; recv returns the next well-formed message of any seq
 * (Error replies included), or MLOPS_ETIMEOUT after the timeout. */
int ctl_client_send(ctl_client *c, envelope_t *req, char *err, size_t errlen);
int ctl_client_recv(ctl_client *c, envelope_t **rep, char *err, size_t errlen);
uint64_t ctl_client_next_seq(ctl_client *c);

/* Fill err with the "cannot reach ... (no reply within N ms)" line and
 * return MLOPS_ETIMEOUT. */
int ctl_client_unreachable(ctl_client *c, char *err, size_t errlen);

/* Turn an Error envelope into a code and message (see the top comment). */
int ctl_client_error(const envelope_t *rep, char *err, size_t errlen);

#endif
