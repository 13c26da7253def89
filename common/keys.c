/* keys.c: see keys.h. zcert does the file format; this file adds the
 * checks a person needs a clear message for (a missing secret file, a
 * public file given where a pair is needed) and the fingerprint. */
#include "keys.h"
#include "err.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int all_zero(const char *z85)
{
    /* zcert leaves an absent secret key as 32 zero bytes, "0000..." in Z85 */
    for (const char *p = z85; *p; p++)
        if (*p != '0') return 0;
    return 1;
}

zcert_t *mlops_keys_load_pair(const char *path, char *err, size_t errlen)
{
    char secret[4200];
    snprintf(secret, sizeof secret, "%s_secret", path);
    if (access(secret, R_OK) != 0) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: cannot read the secret key file %s: %s", path,
                     secret, strerror(errno));
        return NULL;
    }
    zcert_t *c = zcert_load(path);
    if (!c) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: not a key pair in zcert format", path);
        return NULL;
    }
    const char *pub = zcert_public_txt(c), *sec = zcert_secret_txt(c);
    if (strlen(pub) != MLOPS_KEY_Z85_LEN || strlen(sec) != MLOPS_KEY_Z85_LEN || all_zero(sec)) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: the key pair has no valid secret key", path);
        zcert_destroy(&c);
        return NULL;
    }
    return c;
}

static int z85_ok(const char *s)
{
    if (strlen(s) != MLOPS_KEY_Z85_LEN) return 0;
    uint8_t bin[32];
    return zmq_z85_decode(bin, s) != NULL;
}

int mlops_keys_load_public(const char *spec, char out[MLOPS_KEY_Z85_LEN + 1], char *err,
                           size_t errlen)
{
    if (z85_ok(spec) && access(spec, F_OK) != 0) {
        memcpy(out, spec, MLOPS_KEY_Z85_LEN + 1);
        return 0;
    }
    if (access(spec, R_OK) != 0)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: cannot read the public key file (nor is it a 40-character Z85 "
                            "key): %s",
                            spec, strerror(errno));
    zcert_t *c = zcert_load(spec);
    if (!c || !z85_ok(zcert_public_txt(c))) {
        zcert_destroy(&c);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: not a public key in zcert format",
                            spec);
    }
    memcpy(out, zcert_public_txt(c), MLOPS_KEY_Z85_LEN + 1);
    zcert_destroy(&c);
    return 0;
}

void mlops_keys_fingerprint(const char *z85, char out[MLOPS_KEY_FP_LEN + 1])
{
    uint8_t bin[32];
    if (!z85 || !z85_ok(z85) || !zmq_z85_decode(bin, z85)) {
        snprintf(out, MLOPS_KEY_FP_LEN + 1, "?");
        return;
    }
    zdigest_t *d = zdigest_new();
    if (!d) {
        snprintf(out, MLOPS_KEY_FP_LEN + 1, "?");
        return;
    }
    zdigest_update(d, bin, sizeof bin);
    const char *hex = zdigest_string(d); /* upper-case hex */
    for (int i = 0; i < MLOPS_KEY_FP_LEN; i++) {
        char ch = hex[i];
        out[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[MLOPS_KEY_FP_LEN] = 0;
    zdigest_destroy(&d);
}

int mlops_keys_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

int mlops_keys_generate(const char *dir, const char *name, int overwrite, char *err, size_t errlen)
{
    if (!mlops_keys_name_ok(name))
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "key name '%s': use 1-64 letters, digits, '.', '_' or '-', not "
                            "starting with '.'",
                            name ? name : "");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create the key directory: %s", dir,
                            strerror(errno));
    char path[4200], secret[4300];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    snprintf(secret, sizeof secret, "%s_secret", path);
    if (!overwrite && access(path, F_OK) == 0 && access(secret, F_OK) == 0) return 0;
    zcert_t *c = zcert_new();
    if (!c) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "cannot generate a key pair");
    zcert_set_meta(c, "name", "%s", name);
    /* the secret file must be private from its first byte: zcert_save
     * honours the process umask */
    mode_t old = umask(077);
    int rc = zcert_save_secret(c, secret);
    umask(old);
    if (rc == 0) rc = zcert_save_public(c, path);
    zcert_destroy(&c);
    if (rc != 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot write the key pair: %s", path,
                            strerror(errno));
    chmod(secret, 0600);
    chmod(path, 0644);
    return 0;
}

int mlops_keys_authorise(const char *pair_path, const char *dir, char *err, size_t errlen)
{
    char pub[MLOPS_KEY_Z85_LEN + 1];
    int rc = mlops_keys_load_public(pair_path, pub, err, errlen);
    if (rc) return rc;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create the directory: %s", dir,
                            strerror(errno));
    const char *base = strrchr(pair_path, '/');
    base = base ? base + 1 : pair_path;
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, base);
    /* the "_secret" suffix makes a directory watcher skip the half-written file */
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp_secret", dir, base);
    zcert_t *c = zcert_load(pair_path);
    if (!c) return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: not a key file", pair_path);
    rc = zcert_save_public(c, tmp);
    zcert_destroy(&c);
    /* rename: a server watching the directory never reads half a file */
    if (rc != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}
