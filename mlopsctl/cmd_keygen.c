/* cmd_keygen.c: `mlopsctl keygen`, and the keys `up` gives a local
 * cluster. Both write czmq zcert files (common/keys.h), so a key made
 * here works with any CURVE peer, and a cluster's keys are ordinary files
 * an operator can copy to other hosts (docs/security.md). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "err.h"
#include "keys.h"
#include "token.h"

static int mkdir_out(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create: %s", dir, strerror(errno));
    return 0;
}

int ctl_cluster_keys(const char *keydir, char *err, size_t errlen)
{
    static const char *const names[] = {"coordinator", "worker", "client"};
    for (size_t i = 0; i < 3; i++) {
        int rc = mlops_keys_generate(keydir, names[i], 0, err, errlen);
        if (rc) return rc;
    }
    char path[4200], dir[4200];
    snprintf(path, sizeof path, "%s/worker.key", keydir);
    snprintf(dir, sizeof dir, "%s/workers", keydir);
    int rc = mlops_keys_authorise(path, dir, err, errlen);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/client.key", keydir);
    snprintf(dir, sizeof dir, "%s/clients", keydir);
    rc = mlops_keys_authorise(path, dir, err, errlen);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/http.token", keydir);
    return mlops_token_generate(path, 0, err, errlen);
}

int cmd_keygen(ctl_ctx *ctx, const ctl_args *a)
{
    (void)ctx;
    const char *out = ctl_arg(a, "out");
    const char *name = a->npos ? a->pos[0] : NULL;
    int token = ctl_flag(a, "http-token"), force = ctl_flag(a, "force");
    char err[1024];
    if (!out) {
        ctl_errorf("keygen: --out DIR is required");
        return CTL_EXIT_USAGE;
    }
    if (ctl_flag(a, "cluster")) {
        if (name) {
            ctl_errorf("keygen: --cluster takes no NAME");
            return CTL_EXIT_USAGE;
        }
        if (ctl_cluster_keys(out, err, sizeof err) != 0) {
            ctl_errorf("keygen: %s", err);
            return CTL_EXIT_FAILED;
        }
        printf("%s\n", out);
        return CTL_EXIT_OK;
    }
    if (!name && !token) {
        ctl_errorf("keygen: give a key NAME, --http-token or --cluster");
        return CTL_EXIT_USAGE;
    }
    if (name) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.key", out, name);
        if (!force && mlops_keys_name_ok(name) && access(path, F_OK) == 0) {
            ctl_errorf("keygen: %s exists; give --force to replace it", path);
            return CTL_EXIT_FAILED;
        }
        int rc = mlops_keys_generate(out, name, 1, err, sizeof err);
        if (rc) {
            ctl_errorf("keygen: %s", err);
            return rc == MLOPS_EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_FAILED;
        }
        char pub[MLOPS_KEY_Z85_LEN + 1], fp[MLOPS_KEY_FP_LEN + 1];
        if (mlops_keys_load_public(path, pub, err, sizeof err) == 0) {
            mlops_keys_fingerprint(pub, fp);
            printf("%s\t%s\t%s\n", path, fp, pub);
        }
    }
    if (token) {
        char path[4200];
        snprintf(path, sizeof path, "%s/http.token", out);
        if (!force && access(path, F_OK) == 0) {
            ctl_errorf("keygen: %s exists; give --force to replace it", path);
            return CTL_EXIT_FAILED;
        }
        if (!name && mkdir_out(out, err, sizeof err) != 0) {
            ctl_errorf("keygen: %s", err);
            return CTL_EXIT_FAILED;
        }
        int rc = mlops_token_generate(path, 1, err, sizeof err);
        if (rc) {
            ctl_errorf("keygen: %s", err);
            return CTL_EXIT_FAILED;
        }
        printf("%s\n", path);
    }
    return CTL_EXIT_OK;
}
