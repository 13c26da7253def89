/* keyring.c: see keyring.h. The lookup runs once per process, on the
 * first connection, so commands that never connect (keygen, down, help)
 * never fail over a key. */
#include "keyring.h"
#include "err.h"
#include "keys.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *opt_key, *opt_server;
static char use_dir[4096];
static int resolved;
static zcert_t *cert;
static char key_path[4200], server_key[MLOPS_KEY_Z85_LEN + 1];

void mlops_keyring_set(const char *key, const char *server)
{
    opt_key = key;
    opt_server = server;
}

static int plain_forced;

void mlops_keyring_use_dir(const char *dir)
{
    snprintf(use_dir, sizeof use_dir, "%s", dir ? dir : "");
    plain_forced = !dir;
    zcert_destroy(&cert);
    resolved = 0;
}

static int resolve(char *err, size_t errlen)
{
    const char *home = getenv("HOME"), *mhome = getenv("MLOPS_HOME");
    const char *envkey = getenv("MLOPS_KEY"), *envserver = getenv("MLOPS_SERVER_KEY");
    const char *k = opt_key ? opt_key : (envkey && *envkey ? envkey : NULL);
    const char *srv = opt_server ? opt_server : (envserver && *envserver ? envserver : NULL);
    key_path[0] = 0;
    if (plain_forced) return 0;
    if (use_dir[0]) {
        snprintf(key_path, sizeof key_path, "%s/client.key", use_dir);
        srv = NULL;
    } else if (k) {
        snprintf(key_path, sizeof key_path, "%s", k);
    } else {
        char p[4200];
        if (mhome && *mhome) snprintf(p, sizeof p, "%s/keys/client.key", mhome);
        else if (home && *home) snprintf(p, sizeof p, "%s/.mlops/keys/client.key", home);
        else p[0] = 0;
        if (p[0] && access(p, F_OK) == 0) snprintf(key_path, sizeof key_path, "%s", p);
    }
    if (!key_path[0]) return 0; /* plain */
    cert = mlops_keys_load_pair(key_path, err, errlen);
    if (!cert) return MLOPS_EINVAL;
    char def[4300];
    if (!srv) {
        const char *slash = strrchr(key_path, '/');
        int dl = slash ? (int)(slash - key_path) : 1;
        snprintf(def, sizeof def, "%.*s/coordinator.key", dl, slash ? key_path : ".");
        srv = def;
    }
    int rc = mlops_keys_load_public(srv, server_key, err, errlen);
    if (rc) {
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0,
                 " (the coordinator's public key: --server-key or MLOPS_SERVER_KEY)");
        zcert_destroy(&cert);
        return rc;
    }
    return 0;
}

int mlops_keyring_sec(const char *store_key, transport_sec_t *sec, char *err, size_t errlen)
{
    memset(sec, 0, sizeof *sec);
    if (!resolved) {
        int rc = resolve(err, errlen);
        if (rc) return rc;
        resolved = 1;
    }
    if (!cert) return 0;
    sec->cert = cert;
    sec->server_key = store_key ? store_key : server_key;
    if (store_key && !*store_key)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "the export plan names no CURVE key for this worker store");
    return 0;
}

void mlops_keyring_hint(char *out, size_t n)
{
    if (!resolved || !cert) {
        snprintf(out, n,
                 "; mlopsctl has no client key (--key, MLOPS_KEY, "
                 "$MLOPS_HOME/keys/client.key, ~/.mlops/keys/client.key)");
        return;
    }
    char fp[MLOPS_KEY_FP_LEN + 1], sfp[MLOPS_KEY_FP_LEN + 1];
    mlops_keys_fingerprint(zcert_public_txt(cert), fp);
    mlops_keys_fingerprint(server_key, sfp);
    snprintf(out, n, "; client key %s from %s, expecting server key %s", fp, key_path, sfp);
}
