/* token.h: the bearer token that guards the HTTP listeners (metrics,
 * dashboard) on any address other than loopback. The file holds one
 * line; mlopsctl up writes it to CLUSTER_DIR/keys/http.token.
 * (The Security work owns this API; this is the same contract.) */
#ifndef MLOPS_TOKEN_H
#define MLOPS_TOKEN_H
#include <stddef.h>

/* Read the token from `path` into out (n bytes): the first line without
 * its newline and surrounding blanks. 0, or a negative MLOPS_E* with one
 * line in err naming the file ("keys/http.token: empty token"). A token
 * must be 16..n-1 printable, non-blank bytes. */
int mlops_token_load(const char *path, char *out, size_t n, char *err, size_t errlen);

/* 1 if a and b are the same string, in time that depends only on their
 * lengths, not on where they differ; 0 otherwise (also for NULL). */
int mlops_token_equal(const char *a, const char *b);

#endif
