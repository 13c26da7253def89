/* keys.h: the long-term CURVE keys of mlops, in czmq's zcert format.
 *
 * A key pair NAME.key is two text files: NAME.key holds the public key
 * and can be handed to anyone; NAME.key_secret (mode 0600) also holds the
 * secret key and never leaves its host. An authorised-key directory holds
 * public files only. Keys are named in logs by a fingerprint, the first
 * 16 hex digits of the SHA-1 of the 32-byte public key, so a log never
 * carries a key and two keys are told apart at a glance. */
#ifndef MLOPS_KEYS_H
#define MLOPS_KEYS_H
#include <czmq.h>
#include <stddef.h>

#define MLOPS_KEY_Z85_LEN 40
#define MLOPS_KEY_FP_LEN 16

/* Load the pair at `path` (path and path_secret). NULL with
 * "PATH: ..." in err when a file is missing, unreadable, or holds no
 * secret key. */
zcert_t *mlops_keys_load_pair(const char *path, char *err, size_t errlen);

/* A public key for a client to check its server by: `spec` is either a
 * 40-character Z85 key or the path of a public (or secret) key file.
 * 0 with out filled, or MLOPS_EINVAL with err. */
int mlops_keys_load_public(const char *spec, char out[MLOPS_KEY_Z85_LEN + 1], char *err,
                           size_t errlen);

/* The fingerprint of a Z85 public key; "?" for a malformed one. */
void mlops_keys_fingerprint(const char *z85, char out[MLOPS_KEY_FP_LEN + 1]);

/* 1 if `name` may name a key file: [A-Za-z0-9._-], 1..64 characters,
 * not starting with '.' (so it stays inside the directory it is put in). */
int mlops_keys_name_ok(const char *name);

/* Create DIR (mode 0700) if needed and write a fresh pair DIR/NAME.key
 * and DIR/NAME.key_secret. An existing pair is left as it is unless
 * `overwrite`. 0, or a negative code with err. */
int mlops_keys_generate(const char *dir, const char *name, int overwrite, char *err, size_t errlen);

/* Copy the public file of pair `pair_path` into directory `dir` as
 * DIR/BASENAME (the authorised keys of a role). */
int mlops_keys_authorise(const char *pair_path, const char *dir, char *err, size_t errlen);

#endif
