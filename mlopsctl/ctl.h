/* ctl.h: what the pieces of mlopsctl share: exit codes, the run context
 * built from global options, and the command entry points.
 *
 * Why one header: main.c owns the command table (name, options, help,
 * entry point) and each cmd_*.c implements a few commands against the
 * context; the table is the single place that drives parsing, --help and
 * dispatch, so a command cannot exist without its help text. */
#ifndef MLOPSCTL_CTL_H
#define MLOPSCTL_CTL_H
#include "args.h"
#include "jsonreply.h"

/* Process exit codes (documented in --help). */
enum {
    CTL_EXIT_OK = 0,          /* success */
    CTL_EXIT_FAILED = 1,      /* job failed/cancelled, or a server-side error */
    CTL_EXIT_USAGE = 2,       /* bad command line or job file */
    CTL_EXIT_UNREACHABLE = 3, /* coordinator (or a cluster process) did not answer in time */
};

#define CTL_DEFAULT_ENDPOINT "tcp://127.0.0.1:5555"
#define CTL_DEFAULT_TIMEOUT_MS 5000
#define CTL_DEFAULT_RETRIES 3

/* Settings every command sees: from the global options, overridden by
 * the same options given after the command name. */
typedef struct {
    const char *endpoint; /* coordinator endpoint */
    int timeout_ms;       /* reply timeout */
    int retries;          /* resends of a read or submit after a timeout */
    int json;             /* -o json */
    const char *cmd;      /* command name, for messages */
} ctl_ctx;

/* Print "mlopsctl: <message>" on stderr. */
void ctl_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Map an MLOPS_E* code to an exit code: ETIMEOUT -> 3, EINVAL -> 2
 * (bad usage, job file, or BAD_JOB from the coordinator), others -> 1. */
int ctl_exit_code(int rc);

/* One Query to the coordinator at ctx->endpoint. On success returns 0
 * with *doc (and *raw if non-NULL) to free; otherwise prints the error
 * and returns the exit code (3 unreachable, 1 refused or malformed). */
int ctl_query(const ctl_ctx *ctx, const char *verb, const char *job_id, const char *const *args,
              size_t nargs, json_t **doc, char **raw);

/* Command entry points: run with parsed arguments, return an exit code. */
int cmd_up(ctl_ctx *ctx, const ctl_args *a);
int cmd_down(ctl_ctx *ctx, const ctl_args *a);
int cmd_submit(ctl_ctx *ctx, const ctl_args *a);
int cmd_jobs(ctl_ctx *ctx, const ctl_args *a);
int cmd_status(ctl_ctx *ctx, const ctl_args *a);
int cmd_wait(ctl_ctx *ctx, const ctl_args *a);
int cmd_cancel(ctl_ctx *ctx, const ctl_args *a);
int cmd_rm(ctl_ctx *ctx, const ctl_args *a);
int cmd_result(ctl_ctx *ctx, const ctl_args *a);
int cmd_workers(ctl_ctx *ctx, const ctl_args *a);
int cmd_logs(ctl_ctx *ctx, const ctl_args *a);
int cmd_tasks(ctl_ctx *ctx, const ctl_args *a);
int cmd_stream(ctl_ctx *ctx, const ctl_args *a);
int cmd_export(ctl_ctx *ctx, const ctl_args *a);
int cmd_models(ctl_ctx *ctx, const ctl_args *a);
int cmd_model(ctl_ctx *ctx, const ctl_args *a);
int cmd_keygen(ctl_ctx *ctx, const ctl_args *a);
int cmd_security(ctl_ctx *ctx, const ctl_args *a);
int cmd_ping(ctl_ctx *ctx, const ctl_args *a);

/* Make the keys of a local cluster in keydir, keeping those already
 * there: coordinator, worker and client pairs, the authorised-key
 * directories workers/ and clients/, and http.token (cmd_keygen.c). */
int ctl_cluster_keys(const char *keydir, char *err, size_t errlen);
int cmd_report(ctl_ctx *ctx, const ctl_args *a);

/* Follow job `job_id` until it ends, drawing progress on stderr.
 * Returns an exit code: 0 succeeded, 1 failed/cancelled, 3 unreachable.
 * Shared by `wait` and `submit --wait`. */
int ctl_follow_job(ctl_ctx *ctx, const char *job_id);

#endif
