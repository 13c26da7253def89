/* coord_dash.h: the coordinator's web dashboard (docs/dashboard.md):
 * `--http HOST:PORT` serves the pages (/, /jobs/ID, /workers, /models,
 * assets compiled in from coordinator/dashboard/) and a JSON API under
 * /api/ whose bodies are the Query replies mlopsctl gets.
 *
 * The HTTP threads never touch the job table: the loop publishes a
 * snapshot of the replies (jobs; status and logs of each job; workers;
 * models where the verb exists) at most every 250 ms, swapped under a
 * lock, and the handlers copy from the snapshot. A slow client therefore
 * costs the loop nothing but the snapshot's build, and the loop builds
 * snapshots only while someone has asked for one in the last 10 s: a
 * request that finds the snapshot over a second old waits (on its own
 * thread, up to a second) for the next. */
#ifndef MLOPS_COORD_DASH_H
#define MLOPS_COORD_DASH_H
#include <stddef.h>

typedef struct coord_dash coord_dash_t;
struct coord;

/* With cfg.http_listen, start the listener and write its address to
 * DATA_DIR/http.addr; *out stays NULL without the flag. 0, or a
 * negative code with err filled ("--http 0.0.0.0:8080: ..."). */
int coord_dash_start(struct coord *c, coord_dash_t **out, char *err, size_t errlen);
/* Publish a fresh snapshot if the last is 250 ms old and the dashboard
 * is watched. Loop thread only. */
void coord_dash_tick(struct coord *c, coord_dash_t *d);
void coord_dash_destroy(coord_dash_t **pd);

#endif
