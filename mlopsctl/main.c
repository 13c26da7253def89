/* main.c: mlopsctl, the command-line client of mlops (docker/kubectl
 * style: `mlopsctl [OPTIONS] COMMAND [ARGS]`).
 *
 * This file holds the command table: for each command its name, usage,
 * summary, options and entry point; each command's options are a flag
 * table (common/flags.h) with types, bounds and defaults. The table
 * drives argument parsing,
 * `mlopsctl --help`, `mlopsctl CMD --help` and dispatch, so help and
 * behaviour cannot drift apart. Commands live in cmd_*.c. */
#include <cblas.h>
#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "err.h"
#include "keyring.h"
#include "log.h"
#include "wire.h"

/* Options every command accepts, and -o for the reading commands. */
#define STR2(x) #x
#define STR(x) STR2(x)
static const char *const OUTPUT_FORMATS[] = {"table", "json", NULL};
#define OPT_COORD                                                                                  \
    {.name = "coordinator", .shrt = 'c', .type = MLOPS_FLAG_STR, .meta = "ENDPOINT",              \
     .help = "coordinator endpoint", .env = "MLOPS_COORDINATOR", .dflt = CTL_DEFAULT_ENDPOINT}
#define OPT_TIMEOUT                                                                                \
    {.name = "timeout", .type = MLOPS_FLAG_INT, .meta = "MS", .lo = 1, .hi = 3600000,             \
     .dflt = STR(CTL_DEFAULT_TIMEOUT_MS), .help = "reply timeout in milliseconds"}
#define OPT_HELP {.name = "help", .shrt = 'h', .type = MLOPS_FLAG_BOOL, .help = "print this help"}
#define OPT_OUTPUT                                                                                 \
    {.name = "output", .shrt = 'o', .type = MLOPS_FLAG_CHOICE, .meta = "FORMAT",                  \
     .choices = OUTPUT_FORMATS, .dflt = "table", .help = "output format"}
#define OPT_DATA_DIR                                                                               \
    {.name = "data-dir", .shrt = 'd', .type = MLOPS_FLAG_STR, .meta = "DIR",                      \
     .help = "data directory (default $MLOPS_HOME or $HOME/.mlops)"}
#define OPT_END {.name = NULL}

static const ctl_optdef global_opts[] = {
    OPT_COORD, OPT_TIMEOUT, OPT_OUTPUT, OPT_HELP,
    {.name = "key", .type = MLOPS_FLAG_STR, .meta = "FILE", .env = "MLOPS_KEY",
     .help = "client key pair (default $MLOPS_HOME/keys/client.key or ~/.mlops/keys/client.key)"},
    {.name = "server-key", .type = MLOPS_FLAG_STR, .meta = "FILE|KEY", .env = "MLOPS_SERVER_KEY",
     .help = "the coordinator's public key (default coordinator.key beside the client key)"},
    {.name = "retries", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 0, .hi = 100,
     .dflt = STR(CTL_DEFAULT_RETRIES),
     .help = "resend a read or a submit N more times when no reply comes (backoff 0.2-3.2 s)"},
    {.name = "version", .type = MLOPS_FLAG_BOOL, .help = "print the version"}, OPT_END};

/* the bounds of up's numbers are also checked by cmd_up */
static const ctl_optdef up_opts[] = {
    {.name = "workers", .shrt = 'n', .type = MLOPS_FLAG_INT, .meta = "N", .lo = 0, .hi = 256,
     .dflt = "2", .help = "number of workers to start"},
    OPT_DATA_DIR,
    {.name = "port", .shrt = 'p', .type = MLOPS_FLAG_INT, .meta = "PORT", .lo = 0, .hi = 65535,
     .dflt = "5555", .help = "coordinator port on 127.0.0.1, 0 = ephemeral"},
    {.name = "slots", .shrt = 's', .type = MLOPS_FLAG_INT, .meta = "S", .lo = 1, .hi = 1024,
     .help = "task slots per worker (absent: the worker's own default)"},
    {.name = "wait-timeout", .type = MLOPS_FLAG_INT, .meta = "SECONDS", .lo = 1, .hi = 3600,
     .dflt = "30", .help = "how long to wait for the cluster to come up"},
    {.name = "insecure", .type = MLOPS_FLAG_BOOL,
     .help = "no CURVE: plain text on loopback (to measure what CURVE costs)"},
    {.name = "serve", .type = MLOPS_FLAG_STR, .meta = "NAME@REF",
     .help = "also start mlops-serve for this model (docs/serving.md)"},
    {.name = "serve-listen", .type = MLOPS_FLAG_STR, .meta = "HOST:PORT",
     .dflt = "127.0.0.1:8080", .help = "where --serve listens (port 0 picks one)"},
    {.name = "local-inputs", .type = MLOPS_FLAG_STR, .meta = "DIR[,DIR...]", .dflt = "/",
     .help = "input files under these directories are read in place, not uploaded (docs/security.md)"},
    {.name = "no-local-inputs", .type = MLOPS_FLAG_BOOL,
     .help = "every input is uploaded, as to a remote cluster"},
    OPT_OUTPUT, OPT_TIMEOUT, OPT_HELP, OPT_END};
static const ctl_optdef down_opts[] = {OPT_DATA_DIR, OPT_HELP, OPT_END};
static const ctl_optdef submit_opts[] = {
    {.name = "set", .type = MLOPS_FLAG_STR, .meta = "KEY=VALUE",
     .help = "override a job-file value (dotted path, repeatable): train.epochs=3"},
    {.name = "wait", .shrt = 'w', .type = MLOPS_FLAG_BOOL,
     .help = "follow the job until it ends; exit 1 if it fails"},
    {.name = "dry-run", .type = MLOPS_FLAG_BOOL,
     .help = "validate the job file and its CSV header, send nothing"},
    {.name = "idempotency-key", .type = MLOPS_FLAG_STR, .meta = "KEY",
     .help = "a submit repeated with the same KEY answers the first job (default: random)"},
    {.name = "upload", .type = MLOPS_FLAG_BOOL,
     .help = "upload every input, even to a local cluster that reads them in place"},
    OPT_OUTPUT, OPT_COORD, OPT_TIMEOUT, OPT_HELP, OPT_END};
static const ctl_optdef read_opts[] = {OPT_OUTPUT, OPT_COORD, OPT_TIMEOUT, OPT_HELP, OPT_END};
static const ctl_optdef export_opts[] = {
    {.name = "stage", .type = MLOPS_FLAG_STR, .meta = "NAME",
     .help = "stage whose output to export (required)"},
    {.name = "format", .type = MLOPS_FLAG_STR, .meta = "FORMAT",
     .help = "csv (table stages) or svmlight (hash, split: load with zero_based=True)"},
    {.name = "output", .shrt = 'o', .type = MLOPS_FLAG_STR, .meta = "FILE",
     .help = "write to FILE instead of stdout"},
    OPT_COORD, OPT_TIMEOUT, OPT_HELP, OPT_END};
static const ctl_optdef report_opts[] = {
    {.name = "output", .shrt = 'o', .type = MLOPS_FLAG_STR, .meta = "FILE",
     .help = "write the HTML to FILE instead of stdout"},
    OPT_COORD, OPT_TIMEOUT, OPT_HELP, OPT_END};

static const ctl_optdef model_opts[] = {
    {.name = "output", .shrt = 'o', .type = MLOPS_FLAG_STR, .meta = "FORMAT|FILE",
     .help = "table or json; for export, the file to write (default stdout)"},
    {.name = "reason", .type = MLOPS_FLAG_STR, .meta = "TEXT",
     .help = "alias, unalias: why, kept in the alias history"},
    {.name = "top", .shrt = 'n', .type = MLOPS_FLAG_STR, .meta = "N",
     .help = "recommend: how many items (default: the job's knn.top_n)"},
    OPT_COORD, OPT_TIMEOUT, OPT_HELP, OPT_END};
static const ctl_optdef keygen_opts[] = {
    {.name = "out", .type = MLOPS_FLAG_STR, .meta = "DIR",
     .help = "directory for NAME.key (public) and NAME.key_secret (mode 0600); required"},
    {.name = "http-token", .type = MLOPS_FLAG_BOOL,
     .help = "also write DIR/http.token, the bearer token of HTTP listeners"},
    {.name = "cluster", .type = MLOPS_FLAG_BOOL,
     .help = "make what `up` makes in DIR (coordinator, worker, client, workers/, clients/, "
             "http.token), keeping what is there"},
    {.name = "force", .type = MLOPS_FLAG_BOOL, .help = "replace existing files"},
    OPT_HELP, OPT_END};

typedef struct {
    const char *name, *args, *summary;
    const ctl_optdef *opts;
    size_t min_pos, max_pos;
    int (*run)(ctl_ctx *, const ctl_args *);
} ctl_command;

static const ctl_command commands[] = {
    {"up", "", "Start a local coordinator and workers in the background", up_opts, 0, 0, cmd_up},
    {"down", "", "Stop the local cluster started by 'up'", down_opts, 0, 0, cmd_down},
    {"submit", "JOB.yaml", "Validate a job file, upload it with its inputs, print the job id", submit_opts, 1, 1, cmd_submit},
    {"jobs", "", "List jobs", read_opts, 0, 0, cmd_jobs},
    {"status", "JOB", "Show a job's state and stages", read_opts, 1, 1, cmd_status},
    {"wait", "JOB", "Follow a job until it ends (exit 0 succeeded, 1 failed/cancelled)", read_opts, 1, 1, cmd_wait},
    {"cancel", "JOB", "Cancel a job", read_opts, 1, 1, cmd_cancel},
    {"rm", "JOB", "Remove a finished job: its record, its uploads and its shards on every worker", read_opts, 1, 1, cmd_rm},
    {"result", "JOB", "Show a job's stages and metrics", read_opts, 1, 1, cmd_result},
    {"workers", "", "List workers", read_opts, 0, 0, cmd_workers},
    {"logs", "JOB", "Show a job's log lines", read_opts, 1, 1, cmd_logs},
    {"stream", "", "Show the last tasks each worker ran (the task stream) and the workers' usage samples", read_opts, 0, 0, cmd_stream},
    {"tasks", "JOB", "Show each stage's tasks: state, worker, attempts, seconds, rows, error", read_opts, 1, 1, cmd_tasks},
    {"export", "JOB", "Write a stage's output (CSV rows, or svmlight features)", export_opts, 1, 1, cmd_export},
    {"models", "", "List registered models with their latest version and aliases", read_opts, 0, 0, cmd_models},
    {"model", "show|versions|history NAME[@REF] | alias NAME VERSION ALIAS | unalias NAME ALIAS | export NAME[@REF] | rm NAME@VERSION | recommend NAME[@REF] USER",
     "Inspect a registered model, move its aliases, export or remove a version, ask a recommender", model_opts, 2, 4, cmd_model},
    {"security", "", "Show whether CURVE is on, the server key, and the refusals counted", read_opts, 0, 0, cmd_security},
    {"ping", "", "Check that the coordinator answers with this key (exit 0): the containers' health check", read_opts, 0, 0, cmd_ping},
    {"keygen", "[NAME]", "Write a CURVE key pair NAME.key (zcert format), or an HTTP token", keygen_opts, 0, 1, cmd_keygen},
    {"report", "JOB", "Write a self-contained HTML report: metrics, loss, ROC, calibration, confusion", report_opts, 1, 1, cmd_report},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

void ctl_errorf(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mlopsctl: %s\n", line);
}

int ctl_exit_code(int rc)
{
    if (rc == 0) return CTL_EXIT_OK;
    if (rc == MLOPS_ETIMEOUT) return CTL_EXIT_UNREACHABLE;
    if (rc == MLOPS_EINVAL) return CTL_EXIT_USAGE;
    return CTL_EXIT_FAILED;
}

static void main_help(FILE *out)
{
    fprintf(out,
            "\nUsage:  mlopsctl [OPTIONS] COMMAND [ARGS]\n\n"
            "A client for the mlops pipeline scheduler: start a local cluster, submit\n"
            "job files, follow them, read their results and export stage outputs.\n\n"
            "Options:\n");
    ctl_args_help(out, global_opts);
    fprintf(out, "\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nExit codes: 0 ok, 1 job failed or cancelled (or a server-side error),\n"
            "2 usage or job-file error, 3 coordinator unreachable.\n\n"
            "Run 'mlopsctl COMMAND --help' for more information on a command.\n");
}

static void command_help(FILE *out, const ctl_command *c)
{
    fprintf(out, "\nUsage:  mlopsctl %s [OPTIONS]%s%s\n\n%s\n\nOptions:\n", c->name,
            *c->args ? " " : "", c->args, c->summary);
    ctl_args_help(out, c->opts);
}

static int usage_error(const char *cmd, const char *msg)
{
    if (cmd) {
        ctl_errorf("%s: %s", cmd, msg);
        fprintf(stderr, "See 'mlopsctl %s --help'.\n", cmd);
    } else {
        ctl_errorf("%s", msg);
        fprintf(stderr, "See 'mlopsctl --help'.\n");
    }
    return CTL_EXIT_USAGE;
}

/* Apply -c/--timeout/-o from a parsed argument set onto the context;
 * the parser has checked their values against the table. */
static int apply_common(ctl_ctx *ctx, const ctl_args *a, int has_output, char *err, size_t errlen)
{
    const char *v;
    long n;
    if ((v = ctl_arg(a, "coordinator")))
        ctx->endpoint = v;
    if ((v = ctl_arg(a, "timeout"))) {
        int rc = ctl_parse_int(v, 1, 3600000, "--timeout", &n, err, errlen);
        if (rc) return rc;
        ctx->timeout_ms = (int)n;
    }
    if ((v = ctl_arg(a, "retries"))) {
        int rc = ctl_parse_int(v, 0, 100, "--retries", &n, err, errlen);
        if (rc) return rc;
        ctx->retries = (int)n;
    }
    if (has_output && (v = ctl_arg(a, "output"))) {
        const ctl_optdef out = OPT_OUTPUT;
        int rc = mlops_flags_check(&out, v, &n, err, errlen);
        if (rc) return rc;
        ctx->json = n == 1;
    }
    return 0;
}

static int has_option(const ctl_optdef *defs, const char *lng, char shrt)
{
    for (int i = 0; defs[i].name; i++)
        if (!strcmp(defs[i].name, lng) && defs[i].shrt == shrt) return 1;
    return 0;
}

/* OpenBLAS (linked for `model recommend`, whose one query is small)
 * starts its threads when it loads, and idle they spin in sched_yield
 * for about 2^28 cycles: measured, half of mlopsctl's CPU in a short
 * `submit --wait`. One thread, and the others stopped; the stop is
 * OpenBLAS's own exported (undeclared) call, taken weakly, so a build
 * whose OpenBLAS lacks it only keeps the spinning. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
static void blas_quiet(void)
{
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
}

int main(int argc, char **argv)
{
    blas_quiet();
    /* No czmq signal handler: Ctrl-C simply ends the client. */
    zsys_handler_set(NULL);
    mlog_init("ctl", MLOG_WARN);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    ctl_ctx ctx = {.endpoint = CTL_DEFAULT_ENDPOINT, .timeout_ms = CTL_DEFAULT_TIMEOUT_MS,
                   .retries = CTL_DEFAULT_RETRIES};
    const char *env = getenv("MLOPS_COORDINATOR");
    if (env && *env) ctx.endpoint = env;

    char err[512];
    ctl_args g;
    int used = 0;
    if (ctl_args_parse(&g, global_opts, argc - 1, argv + 1, 1, &used, err, sizeof err) != 0)
        return usage_error(NULL, err);
    if (ctl_flag(&g, "help")) {
        main_help(stdout);
        return CTL_EXIT_OK;
    }
    if (ctl_flag(&g, "version")) {
        printf("mlopsctl 0.1 (wire protocol %d)\n", MLOPS_WIRE_VERSION);
        return CTL_EXIT_OK;
    }
    if (apply_common(&ctx, &g, 1, err, sizeof err) != 0) return usage_error(NULL, err);
    mlops_keyring_set(ctl_arg(&g, "key"), ctl_arg(&g, "server-key"));
    int rest = 1 + used;
    if (rest >= argc) {
        main_help(stderr);
        return CTL_EXIT_USAGE;
    }
    const char *name = argv[rest];
    const ctl_command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name)) cmd = &commands[i];
    if (!cmd) {
        if (!strcmp(name, "help")) {
            main_help(stdout);
            return CTL_EXIT_OK;
        }
        snprintf(err, sizeof err, "unknown command '%s'", name);
        return usage_error(NULL, err);
    }
    ctx.cmd = cmd->name;

    ctl_args a;
    if (ctl_args_parse(&a, cmd->opts, argc - rest - 1, argv + rest + 1, 0, NULL, err, sizeof err))
        return usage_error(cmd->name, err);
    if (ctl_flag(&a, "help")) {
        command_help(stdout, cmd);
        return CTL_EXIT_OK;
    }
    /* export's, model's and report's -o is a file, not a format */
    int reads = has_option(cmd->opts, "output", 'o') && cmd->run != cmd_export &&
                cmd->run != cmd_model && cmd->run != cmd_report;
    if (apply_common(&ctx, &a, reads, err, sizeof err) != 0) return usage_error(cmd->name, err);
    if (a.npos < cmd->min_pos) {
        snprintf(err, sizeof err, "expected %s", cmd->args);
        return usage_error(cmd->name, err);
    }
    if (a.npos > cmd->max_pos) {
        snprintf(err, sizeof err, "unexpected argument '%s'", a.pos[cmd->max_pos]);
        return usage_error(cmd->name, err);
    }
    int code = cmd->run(&ctx, &a);
    fflush(stdout);
    return code;
}
