/* token.c: see token.h. */
#include "token.h"
#include "err.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int mlops_token_generate(const char *path, int overwrite, char *err, size_t errlen)
{
    if (!overwrite && access(path, F_OK) == 0) return 0;
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return mlops_seterr(err, errlen, MLOPS_EIO, "no random bytes for a token: %s",
                                strerror(errno));
        got += (size_t)r;
    }
    char line[MLOPS_TOKEN_HEX + 2];
    for (size_t i = 0; i < sizeof raw; i++) snprintf(line + 2 * i, 3, "%02x", raw[i]);
    line[MLOPS_TOKEN_HEX] = '\n';
    line[MLOPS_TOKEN_HEX + 1] = 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    ssize_t w = write(fd, line, MLOPS_TOKEN_HEX + 1);
    int ok = w == MLOPS_TOKEN_HEX + 1 && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

int mlops_token_load(const char *path, char *out, size_t n, char *err, size_t errlen)
{
    if (n < MLOPS_TOKEN_HEX + 1)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "token buffer too small");
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "%s: cannot read the token: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: not a regular file", path);
    }
    /* group read is allowed only on a file root made for our own group:
     * a Kubernetes Secret mounted with fsGroup (kubelet adds g+r) or a
     * key an admin provisioned; others may never read it */
    int provisioned = st.st_uid == 0 && geteuid() != 0 && st.st_gid == getegid() &&
                      (st.st_mode & 077) == 040;
    if ((st.st_mode & 077) && !provisioned) {
        close(fd);
        return mlops_seterr(err, errlen, MLOPS_EDENIED,
                            "%s: mode %03o lets others read the token; chmod 600 it", path,
                            (unsigned)(st.st_mode & 0777));
    }
    char buf[MLOPS_TOKEN_HEX + 8];
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r < 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot read: %s", path, strerror(errno));
    size_t len = (size_t)r;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) len--;
    buf[len] = 0;
    if (len != MLOPS_TOKEN_HEX)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "%s: line 1: expected %d hex digits, got %zu characters", path,
                            MLOPS_TOKEN_HEX, len);
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "%s: line 1, column %zu: '%c' is not a hex digit", path, i + 1, ch);
    }
    memcpy(out, buf, len + 1);
    return 0;
}

int mlops_token_equal(const char *a, const char *b)
{
    if (!a || !b) return 0;
    size_t la = strlen(a), lb = strlen(b);
    /* walk the longer length so the time does not tell a prefix match */
    size_t n = la > lb ? la : lb;
    volatile unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}
