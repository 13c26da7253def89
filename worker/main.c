/* mlops-worker: thin main() over worker.h; its flags are the table below
 * (common/flags.h), which also prints --help. */
#include "blasenv.h"
#include "log.h"
#include "worker.h"
#include <czmq.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"

#define CFG(f) offsetof(worker_config_t, f)
static const mlops_flag_t FLAGS[] = {
    {.name = "coordinator", .shrt = 'c', .type = MLOPS_FLAG_STR, .meta = "ENDPOINT",
     .required = 1, .env = "MLOPS_COORDINATOR", .off = CFG(coordinator),
     .help = "e.g. tcp://10.0.0.5:5555"},
    {.name = "data-dir", .shrt = 'd', .type = MLOPS_FLAG_STR, .meta = "DIR", .required = 1,
     .off = CFG(data_dir), .help = "this worker's own LMDB shard store"},
    {.name = "slots", .shrt = 's', .type = MLOPS_FLAG_INT, .meta = "N", .lo = 1, .hi = 256,
     .dflt = "1", .off = CFG(slots), .help = "tasks run at once"},
    {.name = "queue-max", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 1, .hi = 1000000,
     .dflt = "65536", .off = CFG(queue_max),
     .help = "tasks waiting for an executor (and results for the coordinator); beyond, an assignment is answered busy"},
    {.name = "name", .shrt = 'n', .type = MLOPS_FLAG_STR, .meta = "NAME", .off = CFG(name),
     .help = "shown by `mlopsctl workers` (default host-pid)"},
    {.name = "advertise", .shrt = 'a', .type = MLOPS_FLAG_STR, .meta = "HOST",
     .off = CFG(advertise), .help = "host peers use to fetch shards from this worker"},
    {.name = "advertise-ip", .type = MLOPS_FLAG_BOOL, .off = CFG(advertise_ip),
     .help = "advertise the IPv4 address this host's name resolves to, not the name (a container "
             "that the docker host must reach for `mlopsctl export`)"},
    {.name = "verbose", .shrt = 'v', .type = MLOPS_FLAG_BOOL, .off = CFG(verbose),
     .help = "trace every task"},
    {.name = "cert", .type = MLOPS_FLAG_STR, .meta = "FILE", .off = CFG(cert),
     .help = "this worker's key pair (FILE and FILE_secret, `mlopsctl keygen`): CURVE on"},
    {.name = "server-key", .type = MLOPS_FLAG_STR, .meta = "FILE|KEY",
     .off = CFG(server_key), .help = "the coordinator's public key: its .key file, or the Z85 text"},
    {.name = "worker-keys", .type = MLOPS_FLAG_STR, .meta = "DIR", .off = CFG(worker_keys),
     .help = "public keys of the peers that may fetch shards from this worker"},
    {.name = "client-keys", .type = MLOPS_FLAG_STR, .meta = "DIR", .off = CFG(client_keys),
     .help = "public keys of the clients that may export shards from this worker"},
    {.name = "insecure", .type = MLOPS_FLAG_BOOL, .off = CFG(insecure),
     .help = "serve shards on a non-loopback address without keys (plain text)"},
    MLOPS_FLAG_ROW_METRICS_LISTEN(CFG(metrics_listen)),
    MLOPS_FLAG_ROW_HTTP_TOKEN_FILE(CFG(http_token_file),
                                   "bearer token the HTTP listeners require; needed on a non-loopback address"),
    MLOPS_FLAG_ROW_LOG_FORMAT("human: one readable line; json: one JSON object per line, for log shippers"),
    {.name = "local-inputs", .type = MLOPS_FLAG_STR, .meta = "DIR[,DIR...]",
     .off = CFG(local_inputs),
     .help = "ingest tasks may read input files under these directories in place (never outside them)"},
    MLOPS_FLAG_ROW_HELP,
    {.name = NULL}};

#define SYNOPSIS "--coordinator ENDPOINT --data-dir DIR [OPTIONS]"

int main(int argc, char **argv)
{
    /* first: pick the fast OpenBLAS kernel (may re-exec) and one thread */
    mlops_blas_ensure(argc, argv);
    worker_config_t cfg = {.heartbeat_ms = 1000};
    mlops_flags_t flags;
    int code = mlops_flags_daemon("mlops-worker", SYNOPSIS, FLAGS, argc, argv, &flags, &cfg);
    if (code >= 0) return code;
    char err[1024] = "";
    char defname[300];
    if (!cfg.name) {
        char hn[256] = "worker";
        gethostname(hn, sizeof hn - 1);
        snprintf(defname, sizeof defname, "%s-%d", hn, (int)getpid());
        cfg.name = defname;
    }
    /* shard-sized buffers come and go with every task: keep them in the
     * heap instead of fresh zeroed mmaps (page faults dominated otherwise) */
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1024 << 20);
    /* executor threads would otherwise get arenas of 64 MiB heaps, and a
     * task needing more (a reduction over 8 models of 8 MiB) maps and
     * unmaps a heap every time; one arena keeps the pages */
    mallopt(M_ARENA_MAX, 1);
    zsys_init();
    zsys_set_logstream(NULL);
    mlog_init("worker", cfg.verbose ? MLOG_DEBUG : MLOG_INFO);
    mlog_set_json(mlops_flags_log_json(&flags));
    LOG_I("OpenBLAS kernel: %s", mlops_blas_corename());
    worker_t *w = worker_new(&cfg, err, sizeof err);
    if (!w) {
        LOG_E("%s", err);
        fprintf(stderr, "mlops-worker: %s\n", err);
        return 1;
    }
    int rc = worker_run(w);
    worker_destroy(&w);
    return rc == 0 ? 0 : 1;
}
