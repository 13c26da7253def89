/* worker.h: a worker as an object behind a thin main().
 * It registers with the coordinator, heartbeats (Paranoid Pirate),
 * runs assigned tasks on `slots` executor threads, keeps its shards in
 * its own LMDB store and serves them to peers on an ephemeral store
 * endpoint. */
#ifndef MLOPS_WORKER_H
#define MLOPS_WORKER_H
#include <stddef.h>

typedef struct {
    const char *coordinator; /* tcp://host:port */
    const char *data_dir;
    const char *name;
    const char *advertise;   /* host peers use to reach the store endpoint */
    int advertise_ip;        /* advertise gethostname()'s IPv4 address instead of the name */
    int slots;
    int queue_max;           /* tasks waiting for an executor; 0 = the default */
    int heartbeat_ms;        /* until the coordinator says otherwise */
    int verbose;
    /* security: with cert, the worker speaks CURVE to the coordinator
     * (checked against server_key) and its store endpoint serves only
     * keys found in worker_keys (peers) and client_keys (export) */
    const char *cert;        /* this worker's key pair (zcert) */
    const char *server_key;  /* the coordinator's public key: a file or Z85 */
    const char *worker_keys; /* directory of authorised worker public keys */
    const char *client_keys; /* directory of authorised client public keys */
    int insecure;            /* allow a plain store endpoint on a non-loopback address */
    const char *metrics_listen;  /* HOST:PORT for GET /metrics, or NULL */
    const char *http_token_file; /* bearer token for a non-loopback listener */
    const char *local_inputs;    /* directories whose files ingest tasks may read in place */
} worker_config_t;

typedef struct worker worker_t;

worker_t *worker_new(const worker_config_t *cfg, char *err, size_t errlen);
int worker_run(worker_t *w);
void worker_destroy(worker_t **pw);

#endif
