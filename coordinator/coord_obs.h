/* coord_obs.h: the coordinator's metrics (docs/metrics.md): the families, the
 * counters its modules bump as things happen, the gauges the loop
 * refreshes from the job table and worker registry, and the /metrics
 * listener. The listener runs on libmicrohttpd's threads and reads only
 * the registry (its own lock), never the job table. */
#ifndef MLOPS_COORD_OBS_H
#define MLOPS_COORD_OBS_H
#include "httpd.h"
#include "prom.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    mlops_prom_t *reg;
    mlops_prom_fam_t *jobs, *dispatched, *done, *retried, *failed, *duration;
    mlops_prom_fam_t *handed_back;
    mlops_prom_fam_t *workers_alive, *workers_known, *commit, *bad_frames, *uploaded;
    mlops_prom_fam_t *submitted, *loop;
    mlops_prom_fam_t *jrecords, *jbytes;
    mlops_prom_fam_t *jblocked;
    uint64_t jrecords_seen, jbytes_seen; /* journal_written as of the last tick */
    double jblocked_seen;                /* coord_t.jblocked_s as of the last tick */
    mlops_httpd_t *http;
    int64_t next_refresh; /* zclock_mono ms */
} coord_obs_t;

struct coord;
/* Create the families and, with cfg.metrics_listen, start the listener
 * and write its address to DATA_DIR/metrics.addr. 0, or a negative code
 * with err filled. */
int coord_obs_start(struct coord *c, char *err, size_t errlen);
/* Refresh the gauges (jobs by state, workers alive), at most every
 * 250 ms, so a large job table costs the loop nothing measurable. */
void coord_obs_tick(struct coord *c);
void coord_obs_stop(struct coord *c);

#endif
