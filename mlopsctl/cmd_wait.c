/* cmd_wait.c: following a job to its end (`wait`, `submit --wait`).
 * Asks `wait JOB HOLD` over one connection: the coordinator holds the
 * request until the job ends or HOLD ms pass (coordinator/waits.c), so
 * the end is seen the moment it is committed, and each reply in between
 * goes to the progress drawer. A reply that comes back at once without
 * the end (the coordinator holds too many) is followed by a POLL_MS
 * pause, as polling did. A poll that gets no reply is resent --retries
 * times with backoff, and the count starts again after every answer, so
 * a coordinator restarted on its data directory within about
 * (retries + 1) x timeout is followed through (the job resumes from its
 * journal); one that stays away ends the wait with exit 3, never a hang. */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "progress.h"

#define POLL_MS 40
#define HOLD_MS 500 /* at most a third of the reply timeout, see below */

static int terminal(const char *state)
{
    return !strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

int ctl_follow_job(ctl_ctx *ctx, const char *job_id)
{
    char err[1024];
    ctl_client *c = ctl_client_new(ctx->endpoint, "the coordinator", ctx->timeout_ms, err, sizeof err);
    if (!c) {
        ctl_errorf("%s", err);
        return CTL_EXIT_USAGE;
    }
    ctl_client_set_retries(c, ctx->retries);
    ctl_progress *p = ctl_progress_new(stderr, isatty(STDERR_FILENO));
    int code = CTL_EXIT_FAILED;
    if (!p) {
        ctl_errorf("out of memory");
        goto out;
    }
    /* the hold must end well inside the client's timeout, or a held
     * request would be taken for a lost one and resent */
    int hold = ctx->timeout_ms / 3 < HOLD_MS ? ctx->timeout_ms / 3 : HOLD_MS;
    char holds[16];
    snprintf(holds, sizeof holds, "%d", hold > 0 ? hold : 0);
    const char *args[] = {holds};
    for (;;) {
        json_t *doc = NULL;
        char *raw = NULL;
        int64_t t0 = zclock_mono();
        int rc = ctl_client_query(c, "wait", job_id, args, 1, &doc, &raw, err, sizeof err);
        if (rc) {
            ctl_errorf("%s", err);
            code = rc == MLOPS_ETIMEOUT ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAILED;
            break;
        }
        ctl_progress_update(p, doc);
        const char *state = mlops_jsonreply_str(doc, "state", "");
        if (terminal(state)) {
            if (ctx->json) {
                fputs(raw, stdout);
                fputc('\n', stdout);
            }
            if (!strcmp(state, "succeeded")) {
                code = CTL_EXIT_OK;
            } else {
                const char *why = mlops_jsonreply_str(doc, "error", NULL);
                if (why) ctl_errorf("job %s %s: %s", job_id, state, why);
                else ctl_errorf("job %s %s", job_id, state);
                code = CTL_EXIT_FAILED;
            }
            json_decref(doc);
            free(raw);
            break;
        }
        json_decref(doc);
        free(raw);
        if (zclock_mono() - t0 < POLL_MS / 4) zclock_sleep(POLL_MS);
    }
out:
    ctl_progress_destroy(&p);
    ctl_client_destroy(&c);
    return code;
}

int cmd_wait(ctl_ctx *ctx, const ctl_args *a) { return ctl_follow_job(ctx, a->pos[0]); }
