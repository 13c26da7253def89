/* wk_obs.h: the worker's metrics (docs/metrics.md) and its /metrics
 * listener. Executor threads count tasks and shard fetches as they
 * happen (the registry has its own lock); the gauges (store bytes,
 * resident memory, running tasks) are read when Prometheus scrapes, on
 * the HTTP thread, from thread-safe sources only. */
#ifndef MLOPS_WK_OBS_H
#define MLOPS_WK_OBS_H
#include "httpd.h"
#include "prom.h"
#include "store.h"
#include <stdatomic.h>
#include <stddef.h>

typedef struct wk_obs {
    mlops_prom_t *reg;
    mlops_prom_fam_t *tasks, *duration, *fetches, *fetched, *fetch_seconds, *served, *served_bytes;
    mlops_prom_fam_t *store_bytes, *rss, *running, *slots, *bad_frames;
    mlops_httpd_t *http;
    mlops_store_t *store;       /* borrowed */
    const atomic_int *nrunning; /* borrowed */
} wk_obs_t;

/* Create the families; with `listen`, start the listener (token from
 * token_file when given) and write its address to DATA_DIR/metrics.addr.
 * NULL with err filled on failure. */
wk_obs_t *wk_obs_new(const char *listen, const char *token_file, const char *data_dir,
                     mlops_store_t *store, const atomic_int *nrunning, int slots, char *err,
                     size_t errlen);
void wk_obs_destroy(wk_obs_t **po);

/* Resident set size from /proc/self/statm, 0 where unreadable. */
double wk_obs_rss_bytes(void);
/* One finished task: result "ok", "retry" or "error". */
void wk_obs_task(const wk_obs_t *o, const char *kind, const char *result, double seconds);
/* One ShardGet to a peer: ok or not, bytes received, seconds waited. */
void wk_obs_fetch(const wk_obs_t *o, int ok, size_t bytes, double seconds);

#endif
