/* mlops-coordinator: thin main() over coord.h. */
#include "coord.h"
#include "log.h"
#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mlops-coordinator --data-dir DIR [--bind ENDPOINT] [--heartbeat-ms N]\n"
            "                         [--advertise HOST] [-v]\n"
            "  --bind ENDPOINT     where workers and mlopsctl connect (default tcp://*:5555;\n"
            "                      port 0 or * picks a free port, written to DIR/endpoint)\n"
            "  --data-dir DIR      journal and uploaded inputs (required)\n"
            "  --heartbeat-ms N    heartbeat interval; a worker silent for 3 is dead (default 1000)\n"
            "  --advertise HOST    host name to publish for a wildcard bind (default 127.0.0.1)\n"
            "  -v, --verbose       trace every message and task transition\n");
}

int main(int argc, char **argv)
{
    coord_config_t cfg = {.bind = "tcp://*:5555", .heartbeat_ms = 1000};
    static const struct option opts[] = {
        {"bind", required_argument, 0, 'b'},      {"data-dir", required_argument, 0, 'd'},
        {"heartbeat-ms", required_argument, 0, 'H'}, {"advertise", required_argument, 0, 'a'},
        {"verbose", no_argument, 0, 'v'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "b:d:H:a:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'b': cfg.bind = optarg; break;
        case 'd': cfg.data_dir = optarg; break;
        case 'H': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 10 || v > 600000) {
                fprintf(stderr, "mlops-coordinator: --heartbeat-ms: expected 10..600000, got '%s'\n", optarg);
                return 2;
            }
            cfg.heartbeat_ms = (int)v;
            break;
        }
        case 'a': cfg.advertise = optarg; break;
        case 'v': cfg.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!cfg.data_dir || optind < argc) {
        if (!cfg.data_dir) fprintf(stderr, "mlops-coordinator: --data-dir is required\n");
        else fprintf(stderr, "mlops-coordinator: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    zsys_init();
    zsys_set_logstream(NULL);
    mlog_init("coordinator", cfg.verbose ? MLOG_DEBUG : MLOG_INFO);
    char err[1024] = "";
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
