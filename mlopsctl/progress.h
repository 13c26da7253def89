/* progress.h: drawing a job's progress while mlopsctl follows it.
 *
 * On a terminal: one bar per stage, redrawn in place with ANSI cursor
 * movement ("  clean   [#########-----]   9/16   0.40s  running").
 * Elsewhere (logs, CI, pipes): one plain line each time the job or a
 * stage changes state, so the output reads well in a file. The module
 * only formats; the caller polls the coordinator and feeds it each
 * status document. */
#ifndef MLOPSCTL_PROGRESS_H
#define MLOPSCTL_PROGRESS_H
#include <stdio.h>
#include "jsonreply.h"

typedef struct ctl_progress ctl_progress;

/* Draw to `out`; `tty` selects bars (1) or plain lines (0). */
ctl_progress *ctl_progress_new(FILE *out, int tty);
void ctl_progress_destroy(ctl_progress **pp);

/* Show one status document ({"job","state","stages":[...]} as the
 * coordinator's `status` reply). */
void ctl_progress_update(ctl_progress *p, const json_t *status);

#endif
