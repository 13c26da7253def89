/* mlops-serve: thin main() over sv.h; its flags are the table below
 * (common/flags.h), which also prints --help. */
#include "blasenv.h"
#include "flags.h"
#include "keyring.h"
#include "log.h"
#include "sv.h"
#include <czmq.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define CFG(f) offsetof(sv_config_t, f)
static const mlops_flag_t FLAGS[] = {
    {.name = "coordinator", .shrt = 'c', .type = MLOPS_FLAG_STR, .meta = "ENDPOINT",
     .env = "MLOPS_COORDINATOR", .required = 1, .off = CFG(coordinator),
     .help = "the coordinator to fetch the model from and follow its alias on"},
    {.name = "model", .shrt = 'm', .type = MLOPS_FLAG_STR, .meta = "NAME@REF", .required = 1,
     .off = CFG(model),
     .help = "the model to serve: NAME@ALIAS (followed: swapped when the alias moves) or "
             "NAME@VERSION"},
    {.name = "listen", .shrt = 'l', .type = MLOPS_FLAG_STR, .meta = "HOST:PORT",
     .dflt = "127.0.0.1:8080", .off = CFG(listen),
     .help = "HTTP address; port 0 picks a free one; off loopback it needs --http-token-file"},
    {.name = "threads", .shrt = 't', .type = MLOPS_FLAG_INT, .meta = "N", .lo = 1, .hi = 256,
     .dflt = "4", .off = CFG(threads), .help = "HTTP threads that parse and score requests"},
    {.name = "max-body-mib", .type = MLOPS_FLAG_INT, .meta = "N", .lo = 1, .hi = 1024,
     .dflt = "16", .off = CFG(max_body_mib), .help = "largest request body, MiB (413 above)"},
    {.name = "window", .type = MLOPS_FLAG_INT, .meta = "ROWS", .lo = 1, .hi = 10000000,
     .dflt = "10000", .off = CFG(window), .help = "drift: the last ROWS rows served are compared"},
    {.name = "psi-moderate", .type = MLOPS_FLAG_STR, .meta = "X", .dflt = "0.1",
     .off = CFG(psi_moderate), .help = "drift: a PSI from X on reads 'moderate'"},
    {.name = "psi-shifted", .type = MLOPS_FLAG_STR, .meta = "X", .dflt = "0.25",
     .off = CFG(psi_shifted), .help = "drift: a PSI from X on reads 'shifted'"},
    MLOPS_FLAG_ROW_HTTP_TOKEN_FILE(CFG(http_token_file),
                                   "bearer token every request must carry; needed on a non-loopback --listen"),
    {.name = "addr-file", .type = MLOPS_FLAG_STR, .meta = "FILE", .off = CFG(addr_file),
     .help = "write the bound HOST:PORT to FILE once listening"},
    {.name = "timeout", .type = MLOPS_FLAG_INT, .meta = "MS", .lo = 100, .hi = 600000,
     .dflt = "5000", .off = CFG(timeout_ms), .help = "wait for a coordinator reply"},
    {.name = "key", .type = MLOPS_FLAG_STR, .meta = "FILE", .off = MLOPS_FLAG_NOSTORE,
     .env = "MLOPS_KEY", .help = "client key pair (as mlopsctl's --key)"},
    {.name = "server-key", .type = MLOPS_FLAG_STR, .meta = "FILE|KEY", .off = MLOPS_FLAG_NOSTORE,
     .env = "MLOPS_SERVER_KEY", .help = "the coordinator's public key (as mlopsctl's)"},
    {.name = "insecure", .type = MLOPS_FLAG_BOOL, .off = MLOPS_FLAG_NOSTORE,
     .help = "no key: plain text, for a coordinator started with --insecure"},
    MLOPS_FLAG_ROW_LOG_FORMAT("human: one readable line; json: one JSON object per line"),
    {.name = "verbose", .shrt = 'v', .type = MLOPS_FLAG_BOOL, .off = CFG(verbose),
     .help = "debug logging"},
    MLOPS_FLAG_ROW_HELP,
    {.name = NULL}};

#define SYNOPSIS "--coordinator ENDPOINT --model NAME@ALIAS|NAME@VERSION [OPTIONS]"

int main(int argc, char **argv)
{
    /* one BLAS thread per HTTP thread: OpenBLAS's own pool would fight
     * --threads over the cores (and its kernel choice, see blasenv.h) */
    mlops_blas_ensure(argc, argv);
    sv_config_t cfg = {0};
    mlops_flags_t flags;
    int code = mlops_flags_daemon("mlops-serve", SYNOPSIS, FLAGS, argc, argv, &flags, &cfg);
    if (code >= 0) return code;
    char err[1024] = "";
    zsys_init();
    zsys_set_logstream(NULL);
    mlog_init("serve", cfg.verbose ? MLOG_DEBUG : MLOG_INFO);
    mlog_set_json(mlops_flags_log_json(&flags));
    /* the key flags as mlopsctl's, the environment read by the keyring */
    mlops_keyring_set(mlops_flags_get(&flags, "key"), mlops_flags_get(&flags, "server-key"));
    if (mlops_flags_has(&flags, "insecure")) mlops_keyring_use_dir(NULL);
    sv_t *s = sv_new(&cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "mlops-serve: %s\n", err);
        return 2;
    }
    int rc = sv_run(s, err, sizeof err);
    if (rc) {
        LOG_E("%s", err);
        fprintf(stderr, "mlops-serve: %s\n", err);
    }
    sv_destroy(&s);
    return rc ? 1 : 0;
}
