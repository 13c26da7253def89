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
    int slots;
    int heartbeat_ms;        /* until the coordinator says otherwise */
    int verbose;
    const char *metrics_listen;  /* HOST:PORT for GET /metrics, or NULL */
    const char *http_token_file; /* bearer token for a non-loopback listener */
} worker_config_t;

typedef struct worker worker_t;

worker_t *worker_new(const worker_config_t *cfg, char *err, size_t errlen);
int worker_run(worker_t *w);
void worker_destroy(worker_t **pw);

#endif
