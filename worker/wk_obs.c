/* wk_obs.c: see wk_obs.h. Labels are bounded: task kinds from the kind table,
 * results from a fixed three; shard keys and job ids never are labels. */
#include "wk_obs.h"
#include "err.h"
#include "log.h"
#include "token.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double wk_obs_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    return n == 2 ? (double)res * (double)sysconf(_SC_PAGESIZE) : 0;
}

static void h_metrics(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)path;
    (void)query;
    wk_obs_t *o = arg;
    mlops_prom_set(o->store_bytes, NULL, NULL, (double)mlops_store_used_bytes(o->store));
    mlops_prom_set(o->rss, NULL, NULL, wk_obs_rss_bytes());
    if (o->nrunning) mlops_prom_set(o->running, NULL, NULL, (double)atomic_load(o->nrunning));
    mlops_http_metrics(rep, o->reg);
}

static const mlops_http_route_t ROUTES[] = {{.path = "/metrics", .fn = h_metrics}, {.path = NULL}};

wk_obs_t *wk_obs_new(const char *listen, const char *token_file, const char *data_dir,
                     mlops_store_t *store, const atomic_int *nrunning, int slots, char *err,
                     size_t errlen)
{
    wk_obs_t *o = calloc(1, sizeof *o);
    if (!o || !(o->reg = mlops_prom_new())) {
        free(o);
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics: out of memory");
        return NULL;
    }
    o->store = store;
    o->nrunning = nrunning;
    mlops_prom_t *r = o->reg;
    const double *sec = MLOPS_PROM_SECONDS;
    size_t nsec = MLOPS_PROM_NSECONDS;
    mlops_prom_build_info(r, "worker");
    o->tasks = mlops_prom_counter(r, "mlops_worker_tasks_total",
                                  "Tasks run, by kind and result (ok, retry, error).",
                                  "kind,result");
    o->duration = mlops_prom_histogram(r, "mlops_worker_task_duration_seconds",
                                       "Run time of a task on its executor thread, by kind.",
                                       "kind", sec, nsec);
    o->fetches = mlops_prom_counter(r, "mlops_worker_shard_fetches_total",
                                    "ShardGet requests to peer stores, by result (ok, error).",
                                    "result");
    o->fetched = mlops_prom_counter(r, "mlops_worker_shard_fetched_bytes_total",
                                    "Shard bytes received from peer stores.", NULL);
    o->fetch_seconds = mlops_prom_histogram(r, "mlops_worker_shard_fetch_duration_seconds",
                                            "Time waited for one peer ShardGet.", NULL, sec, nsec);
    o->served = mlops_prom_counter(r, "mlops_worker_shards_served_total",
                                   "ShardGet requests answered from this worker's store.", NULL);
    o->served_bytes = mlops_prom_counter(r, "mlops_worker_shard_served_bytes_total",
                                         "Shard bytes sent to peers and mlopsctl export.", NULL);
    o->store_bytes = mlops_prom_gauge(r, "mlops_worker_store_bytes",
                                      "Bytes of the LMDB shard store in use.", NULL);
    o->rss = mlops_prom_gauge(r, "mlops_worker_resident_memory_bytes",
                              "Resident set size of the worker process.", NULL);
    o->running = mlops_prom_gauge(r, "mlops_worker_tasks_running", "Tasks running now.", NULL);
    o->slots = mlops_prom_gauge(r, "mlops_worker_slots", "Executor threads (--slots).", NULL);
    o->bad_frames = mlops_prom_counter(r, "mlops_worker_bad_frames_total",
                                       "Frames received that did not decode.", NULL);
    mlops_prom_set(o->slots, NULL, NULL, slots);
    if (!listen) return o;
    char token[256] = "";
    if (token_file && mlops_token_load(token_file, token, sizeof token, err, errlen) != 0) {
        wk_obs_destroy(&o);
        return NULL;
    }
    char e[512];
    o->http = mlops_httpd_new(listen, ROUTES, o, token, e, sizeof e);
    if (!o->http) {
        mlops_seterr(err, errlen, MLOPS_EIO, "--metrics-listen %s", e);
        wk_obs_destroy(&o);
        return NULL;
    }
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/metrics.addr", data_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%s\n", mlops_httpd_addr(o->http));
        fclose(f);
        rename(tmp, path);
    }
    LOG_I("metrics on http://%s/metrics", mlops_httpd_addr(o->http));
    return o;
}

void wk_obs_destroy(wk_obs_t **po)
{
    if (!po || !*po) return;
    mlops_httpd_destroy(&(*po)->http);
    mlops_prom_destroy(&(*po)->reg);
    free(*po);
    *po = NULL;
}

void wk_obs_task(const wk_obs_t *o, const char *kind, const char *result, double seconds)
{
    if (!o) return;
    mlops_prom_add(o->tasks, kind, result, 1);
    mlops_prom_observe(o->duration, kind, NULL, seconds);
}

void wk_obs_fetch(const wk_obs_t *o, int ok, size_t bytes, double seconds)
{
    if (!o) return;
    mlops_prom_add(o->fetches, ok ? "ok" : "error", NULL, 1);
    if (ok) mlops_prom_add(o->fetched, NULL, NULL, (double)bytes);
    mlops_prom_observe(o->fetch_seconds, NULL, NULL, seconds);
}
