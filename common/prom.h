/* prom.h: the metrics registry every daemon exposes on /metrics:
 * counters, gauges and histograms, each with at most two labels whose
 * values come from a bounded set (task kinds, results, job states: never
 * job or user ids), rendered in the Prometheus text format 0.0.4.
 *
 * Thread-safe: the coordinator loop and the worker's executor threads
 * update it while the HTTP threads render it. One mutex guards it; an
 * update is a short linear search over a family's few series. A render
 * copies the series' numbers under the lock and writes the text after
 * releasing it, so neither the formatting nor a slow HTTP client ever
 * makes an update wait.
 *
 * A family takes at most MLOPS_PROM_MAX_SERIES label combinations; an
 * update with a new combination beyond that is dropped and counted in
 * mlops_metrics_dropped_series_total, so a bug that leaks ids into a
 * label cannot grow the process without bound. */
#ifndef MLOPS_PROM_H
#define MLOPS_PROM_H
#include <stddef.h>

#define MLOPS_PROM_MAX_SERIES 128
#define MLOPS_PROM_MAX_BUCKETS 24

typedef struct mlops_prom mlops_prom_t;
typedef struct mlops_prom_fam mlops_prom_fam_t;

/* Default duration buckets in seconds, 1 ms .. 5 min. */
extern const double MLOPS_PROM_SECONDS[];
extern const size_t MLOPS_PROM_NSECONDS;

mlops_prom_t *mlops_prom_new(void);
void mlops_prom_destroy(mlops_prom_t **pr);

/* Register a family. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]* (a
 * counter's name ends in _total); `labels` is NULL, "kind" or
 * "kind,result" (at most two). The registry owns the family; the pointer
 * stays valid until mlops_prom_destroy. NULL on a bad name or label list
 * (a programmer mistake: the caller asserts) or out of memory. */
mlops_prom_fam_t *mlops_prom_counter(mlops_prom_t *r, const char *name, const char *help,
                                     const char *labels);
mlops_prom_fam_t *mlops_prom_gauge(mlops_prom_t *r, const char *name, const char *help,
                                   const char *labels);
/* `bounds` ascending upper bounds (the +Inf bucket is implicit), at most
 * MLOPS_PROM_MAX_BUCKETS, copied. */
mlops_prom_fam_t *mlops_prom_histogram(mlops_prom_t *r, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t nbounds);

/* Updates. l1 and l2 are the label values, NULL where the family has
 * fewer labels; copied on the first use of a combination. Each is a
 * no-op on a NULL family, so an uninstrumented object needs no checks. */
void mlops_prom_add(mlops_prom_fam_t *f, const char *l1, const char *l2, double v);
void mlops_prom_set(mlops_prom_fam_t *f, const char *l1, const char *l2, double v);
void mlops_prom_observe(mlops_prom_fam_t *f, const char *l1, const char *l2, double v);
/* Set every existing series of a gauge to 0 (before re-counting jobs by
 * state, so a state no job is in any more reads 0, not its old count). */
void mlops_prom_zero(mlops_prom_fam_t *f);

/* The value of a counter or gauge series (0 if it does not exist), or a
 * histogram's count: for tests. */
double mlops_prom_value(mlops_prom_fam_t *f, const char *l1, const char *l2);

/* The whole registry in the text format 0.0.4, NUL-terminated, malloc'd
 * (the caller frees); *len its length. NULL when out of memory. */
char *mlops_prom_render(mlops_prom_t *r, size_t *len);

/* The release every daemon reports in mlops_build_info{version}. */
#ifndef MLOPS_VERSION
#define MLOPS_VERSION "0.1"
#endif

/* Register mlops_build_info{role,version} = 1. */
void mlops_prom_build_info(mlops_prom_t *r, const char *role);

/* The Content-Type of mlops_prom_render's output. */
#define MLOPS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
