/* token.c: see token.h. */
#include "token.h"
#include "err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

int mlops_token_load(const char *path, char *out, size_t n, char *err, size_t errlen)
{
    if (!out || n < 2) return mlops_seterr(err, errlen, MLOPS_EINVAL, "token buffer too small");
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot read the token: %s", path,
                            strerror(errno));
    char line[1024];
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
                   s[len - 1] == '\t'))
        s[--len] = 0;
    if (len == 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: empty token", path);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 127)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "%s: the token has a blank or non-printable byte at column %zu",
                                path, i + 1);
    if (len < 16)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "%s: token too short (%zu bytes; at least 16)", path, len);
    if (len >= n)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: token too long (%zu bytes; at most %zu)",
                            path, len, n - 1);
    memcpy(out, s, len + 1);
    return 0;
}

int mlops_token_equal(const char *a, const char *b)
{
    if (!a || !b) return 0;
    size_t la = strlen(a), lb = strlen(b);
    /* compare over the longer length so a prefix match costs the same as
     * a mismatch at the first byte */
    size_t n = la > lb ? la : lb;
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        d |= (unsigned char)(x ^ y);
    }
    return d == 0;
}
