/* token.h: the bearer token of mlops' HTTP listeners (metrics, dashboard,
 * serving). A listener on loopback needs none; on any other address it
 * requires "Authorization: Bearer <token>", the token being 32 random
 * bytes in hex kept in a file of mode 0600 (`mlopsctl up` and
 * `mlopsctl keygen --http-token` write CLUSTER_DIR/keys/http.token). */
#ifndef MLOPS_TOKEN_H
#define MLOPS_TOKEN_H
#include <stddef.h>

#define MLOPS_TOKEN_HEX 64

/* Write a fresh token to `path` (mode 0600), unless one is there and
 * !overwrite. 0, or a negative code with err. */
int mlops_token_generate(const char *path, int overwrite, char *err, size_t errlen);

/* Read the token in `path` into out (n >= MLOPS_TOKEN_HEX + 1): one line
 * of 64 hex digits. Refuses a file that others may read, since anyone
 * who reads it may use it. 0, or a negative code with "PATH: ..." in err. */
int mlops_token_load(const char *path, char *out, size_t n, char *err, size_t errlen);

/* 1 if the two strings are equal, in a time that depends on their
 * lengths only, never on where they first differ; 0 otherwise (and for
 * NULL). */
int mlops_token_equal(const char *a, const char *b);

#endif
