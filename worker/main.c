/* mlops-worker: thin main() over worker.h. */
#include "blasenv.h"
#include "log.h"
#include "worker.h"
#include <czmq.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mlops-worker --coordinator ENDPOINT --data-dir DIR [--slots N] [--name NAME]\n"
            "                    [--advertise HOST] [-v]\n"
            "  --coordinator ENDPOINT  e.g. tcp://10.0.0.5:5555\n"
            "  --data-dir DIR          this worker's own LMDB shard store\n"
            "  --slots N               tasks run at once (default 1)\n"
            "  --name NAME             shown by `mlopsctl workers` (default host-pid)\n"
            "  --advertise HOST        host peers use to fetch shards from this worker\n"
            "  -v, --verbose           trace every task\n");
}

int main(int argc, char **argv)
{
    /* first: pick the fast OpenBLAS kernel (may re-exec) and one thread */
    mlops_blas_ensure(argc, argv);
    worker_config_t cfg = {.slots = 1, .heartbeat_ms = 1000};
    static const struct option opts[] = {
        {"coordinator", required_argument, 0, 'c'}, {"data-dir", required_argument, 0, 'd'},
        {"slots", required_argument, 0, 's'},       {"name", required_argument, 0, 'n'},
        {"advertise", required_argument, 0, 'a'},   {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:d:s:n:a:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg.coordinator = optarg; break;
        case 'd': cfg.data_dir = optarg; break;
        case 's': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "mlops-worker: --slots: expected 1..256, got '%s'\n", optarg);
                return 2;
            }
            cfg.slots = (int)v;
            break;
        }
        case 'n': cfg.name = optarg; break;
        case 'a': cfg.advertise = optarg; break;
        case 'v': cfg.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *env = getenv("MLOPS_COORDINATOR");
    if (!cfg.coordinator && env && *env) cfg.coordinator = env;
    if (!cfg.coordinator || !cfg.data_dir || optind < argc) {
        fprintf(stderr, "mlops-worker: --coordinator and --data-dir are required\n");
        usage(stderr);
        return 2;
    }
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
    LOG_I("OpenBLAS kernel: %s", mlops_blas_corename());
    char err[1024] = "";
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
