/* mlops-coordinator: thin main() over coord.h; its flags are the table
 * below (common/flags.h), which also prints --help. */
#include "coord.h"
#include "log.h"
#include <czmq.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

#define CFG(f) offsetof(coord_config_t, f)
static const mlops_flag_t FLAGS[] = {
    {.name = "data-dir", .shrt = 'd', .type = MLOPS_FLAG_STR, .meta = "DIR", .required = 1,
     .off = CFG(data_dir), .help = "journal and uploaded inputs"},
    {.name = "bind", .shrt = 'b', .type = MLOPS_FLAG_STR, .meta = "ENDPOINT",
     .dflt = "tcp://127.0.0.1:5555", .off = CFG(bind),
     .help = "where workers and mlopsctl connect; port 0 or * picks a free port, written to "
             "DIR/endpoint"},
    {.name = "heartbeat-ms", .shrt = 'H', .type = MLOPS_FLAG_INT, .meta = "N", .lo = 10,
     .hi = 600000, .dflt = "1000", .off = CFG(heartbeat_ms),
     .help = "heartbeat interval; a worker silent for 3 is dead"},
    {.name = "advertise", .shrt = 'a', .type = MLOPS_FLAG_STR, .meta = "HOST",
     .off = CFG(advertise), .help = "host name to publish for a wildcard bind (default 127.0.0.1)"},
    {.name = "retain-jobs", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 0, .hi = 100000000,
     .dflt = "0", .off = CFG(retain_jobs),
     .help = "keep the newest N finished jobs, remove older ones like `mlopsctl rm` (0 = keep all)"},
    {.name = "retain-age", .type = MLOPS_FLAG_INT, .meta = "SECONDS", .lo = 0, .hi = 2000000000,
     .dflt = "0", .off = CFG(retain_age_s),
     .help = "remove finished jobs this long after they ended (0 = never)"},
    {.name = "verbose", .shrt = 'v', .type = MLOPS_FLAG_BOOL, .off = CFG(verbose),
     .help = "trace every message and task transition"},
    {.name = "cert", .type = MLOPS_FLAG_STR, .meta = "FILE", .off = CFG(cert),
     .help = "this coordinator's key pair (FILE and FILE_secret, `mlopsctl keygen`): CURVE on"},
    {.name = "worker-keys", .type = MLOPS_FLAG_STR, .meta = "DIR", .off = CFG(worker_keys),
     .help = "public keys that may register as workers (re-read when the directory changes)"},
    {.name = "client-keys", .type = MLOPS_FLAG_STR, .meta = "DIR", .off = CFG(client_keys),
     .help = "public keys that may submit jobs and read results"},
    {.name = "insecure", .type = MLOPS_FLAG_BOOL, .off = CFG(insecure),
     .help = "serve a non-loopback address without keys (plain text, anyone may connect)"},
    {.name = "max-job-bytes", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 0, .hi = 1 << 30,
     .dflt = "1048576", .off = CFG(max_job_bytes), .help = "largest job file a client may submit (0: no limit)"},
    {.name = "max-input-mib", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 0, .hi = 1 << 24,
     .dflt = "65536", .off = CFG(max_input_mib), .help = "largest total input of one job, MiB (0: no limit)"},
    {.name = "max-running", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 0, .hi = 1000000,
     .dflt = "64", .off = CFG(max_running), .help = "jobs one client key may have uploading, queued or running (0: no limit)"},
    {.name = "max-jobs", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 1, .hi = 100000000,
     .dflt = "10000", .off = CFG(max_jobs),
     .help = "jobs uploading, queued or running, all clients together; a submit beyond is answered busy"},
    {.name = "outbox-max", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 16, .hi = 10000000,
     .dflt = "65536", .off = CFG(outbox_max),
     .help = "messages waiting for the next journal commit; at N the loop stops reading and dispatching until they are sent"},
    {.name = "send-hwm", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 16, .hi = 10000000,
     .dflt = "100000", .off = CFG(send_hwm),
     .help = "messages queued to one peer that does not read; beyond, a task is re-queued and other messages are dropped and counted"},
    {.name = "commit-delay-ms", .type = MLOPS_FLAG_INT, .meta = "MS", .lo = 0, .hi = 1000,
     .dflt = "20", .off = CFG(commit_delay_ms),
     .help = "longest a journal batch stays uncommitted while no reply or message waits on it (0: commit every turn); a crash re-runs at most that much work"},
    {.name = "prefetch-tasks", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 1, .hi = 64,
     .dflt = "2", .off = CFG(prefetch_tasks),
     .help = "train epoch tasks in flight per worker slot: the next waits on the worker while one runs (1: none waits)"},
    MLOPS_FLAG_ROW_METRICS_LISTEN(CFG(metrics_listen)),
    {.name = "http", .type = MLOPS_FLAG_STR, .meta = "HOST:PORT", .off = CFG(http_listen),
     .help = "serve the web dashboard and its JSON API on http://HOST:PORT/ (port 0 picks one, "
             "written to DIR/http.addr)"},
    MLOPS_FLAG_ROW_HTTP_TOKEN_FILE(CFG(http_token_file),
                                   "bearer token the HTTP listeners require; needed on a non-loopback address"),
    MLOPS_FLAG_ROW_LOG_FORMAT("human: one readable line; json: one JSON object per line, for log shippers"),
    {.name = "local-inputs", .type = MLOPS_FLAG_STR, .meta = "DIR[,DIR...]",
     .off = CFG(local_inputs),
     .help = "read clients' input files under these directories in place, not uploaded (a local cluster; docs/security.md)"},
    MLOPS_FLAG_ROW_HELP,
    {.name = NULL}};

#define SYNOPSIS "--data-dir DIR [OPTIONS]"

int main(int argc, char **argv)
{
    coord_config_t cfg = {0};
    mlops_flags_t flags;
    int code = mlops_flags_daemon("mlops-coordinator", SYNOPSIS, FLAGS, argc, argv, &flags, &cfg);
    if (code >= 0) return code;
    char err[1024] = "";
    zsys_init();
    zsys_set_logstream(NULL);
    mlog_init("coordinator", cfg.verbose ? MLOG_DEBUG : MLOG_INFO);
    mlog_set_json(mlops_flags_log_json(&flags));
    coord_t *co = coord_new(&cfg, err, sizeof err);
    if (!co) {
        LOG_E("%s", err);
        fprintf(stderr, "mlops-coordinator: %s\n", err);
        return 1;
    }
    int rc = coord_run(co);
    coord_destroy(&co);
    return rc == 0 ? 0 : 1;
}
