/* localin.c: the allow-list and identity checks of input files read in
 * place (localin.h). The checks run twice, on the coordinator at submit
 * and on the worker at each read, because the two may have different
 * lists and a worker must not trust a path because the coordinator sent
 * it. */
#include "localin.h"
#include "err.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `path` lies in directory `dir` (both absolute, no trailing slash but
 * for "/"), by their text alone. */
static int under(const char *dir, size_t n, const char *path)
{
    if (n == 1 && dir[0] == '/') return path[0] == '/';
    return !strncmp(path, dir, n) && (path[n] == 0 || path[n] == '/');
}

/* Call fn on each entry of the comma-separated list, trailing slashes
 * dropped ("/" kept); stops at the first non-zero answer and returns it. */
static int each(const char *list, int (*fn)(const char *dir, void *arg), void *arg)
{
    const char *p = list ? list : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char dir[PATH_MAX];
        if (n && n < sizeof dir) {
            memcpy(dir, p, n);
            while (n > 1 && dir[n - 1] == '/') n--;
            dir[n] = 0;
            int rc = fn(dir, arg);
            if (rc) return rc;
        }
        p += e ? (size_t)(e - p) + 1 : n;
        if (!e) break;
    }
    return 0;
}

typedef struct {
    const char *path;
    int resolve; /* compare with the entry's realpath too */
} match_t;

static int match(const char *dir, void *arg)
{
    match_t *m = arg;
    if (under(dir, strlen(dir), m->path)) return 1;
    char real[PATH_MAX];
    if (m->resolve && realpath(dir, real) && under(real, strlen(real), m->path)) return 1;
    return 0;
}

static int allowed(const char *list, const char *path, int resolve)
{
    match_t m = {path, resolve};
    return each(list, match, &m) == 1;
}

typedef struct {
    char *err;
    size_t errlen;
} cerr_t;

static int check_one(const char *dir, void *arg)
{
    cerr_t *ce = arg;
    struct stat st;
    if (dir[0] != '/')
        return mlops_seterr(ce->err, ce->errlen, MLOPS_EINVAL,
                            "--local-inputs: '%s' is not an absolute path", dir);
    if (stat(dir, &st) != 0)
        return mlops_seterr(ce->err, ce->errlen, MLOPS_EINVAL, "--local-inputs: %s: %s", dir,
                            strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return mlops_seterr(ce->err, ce->errlen, MLOPS_EINVAL,
                            "--local-inputs: %s is not a directory", dir);
    return 0;
}

int mlops_localin_check_list(const char *list, char *err, size_t errlen)
{
    if (!list || !*list)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "--local-inputs: expected DIR[,DIR...]");
    cerr_t ce = {err, errlen};
    return each(list, check_one, &ce);
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int kind_refusal(const struct stat *st, const char *name, char *err, size_t errlen)
{
    if (S_ISREG(st->st_mode)) return 0;
    if (S_ISDIR(st->st_mode))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: is a directory, not a file", name);
    if (S_ISFIFO(st->st_mode))
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: is a FIFO, not a regular file (it cannot be read in place)", name);
    return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: not a regular file", name);
}

/* The file behind `st` is the one submitted: the first difference, named. */
static int same(const struct stat *st, const char *name, const mlops_localin_id_t *want, char *err,
                size_t errlen)
{
    if ((uint64_t)st->st_dev != want->dev || (uint64_t)st->st_ino != want->ino)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: replaced by another file since it was submitted", name);
    if ((uint64_t)st->st_size != want->size)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: changed since it was submitted (size %llu -> %llu bytes)", name,
                            (unsigned long long)want->size, (unsigned long long)st->st_size);
    if (mtime_ns(st) != want->mtime_ns)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: modified since it was submitted (its mtime changed)", name);
    return 0;
}

int mlops_localin_absolute(const char *cwd, const char *path, char *out, size_t outlen)
{
    char buf[PATH_MAX * 2];
    if ((size_t)snprintf(buf, sizeof buf, "%s/%s", path[0] == '/' ? "" : cwd, path) >= sizeof buf)
        return MLOPS_EINVAL;
    size_t n = 0; /* out holds "/a/b" so far, without a trailing slash */
    for (char *p = buf; *p;) {
        while (*p == '/') p++;
        char *e = p;
        while (*e && *e != '/') e++;
        size_t len = (size_t)(e - p);
        if (!len || (len == 1 && p[0] == '.')) {
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/') n--;
            if (n > 0) n--;
        } else {
            if (n + 1 + len + 1 > outlen) return MLOPS_EINVAL;
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p = e;
    }
    if (!n) {
        if (outlen < 2) return MLOPS_EINVAL;
        out[n++] = '/';
    }
    out[n] = 0;
    return 0;
}

/* No empty, "." or ".." component: the text says where the file is. */
static int normalised(const char *path)
{
    for (const char *p = path; *p;) {
        if (*p++ != '/') return 0;
        const char *e = p;
        while (*e && *e != '/') e++;
        size_t len = (size_t)(e - p);
        if ((!len && *e) || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p = e;
    }
    return 1;
}

int mlops_localin_resolve(const char *list, const char *path, const char *name, char *canon,
                          size_t canonlen, mlops_localin_id_t *id, char *err, size_t errlen)
{
    if (!path || path[0] != '/')
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: not an absolute path (the client resolves it)", name);
    if (!normalised(path))
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: '.', '..' or '//' in the path (the client normalises it)", name);
    /* by its text first: a path outside the list is refused before
     * anything about it (does it exist?) is looked at */
    if (!allowed(list, path, 1))
        return mlops_seterr(err, errlen, MLOPS_EDENIED, "%s: outside --local-inputs %s", name, list);
    char real[PATH_MAX];
    if (!realpath(path, real))
        return mlops_seterr(err, errlen, errno == ENOENT ? MLOPS_ENOTFOUND : MLOPS_EIO, "%s: %s",
                            name, strerror(errno));
    if (!allowed(list, real, 1))
        return mlops_seterr(err, errlen, MLOPS_EDENIED,
                            "%s: resolves to %s, outside --local-inputs %s", name, real, list);
    struct stat st;
    if (stat(real, &st) != 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: %s", name, strerror(errno));
    int rc = kind_refusal(&st, name, err, errlen);
    if (rc) return rc;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot read: %s", name, strerror(errno));
    if (fstat(fd, &st) != 0 || (rc = kind_refusal(&st, name, err, errlen)) != 0) {
        close(fd);
        return rc ? rc : mlops_seterr(err, errlen, MLOPS_EIO, "%s: %s", name, strerror(errno));
    }
    close(fd);
    if (strlen(real) >= canonlen)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: path too long", name);
    memcpy(canon, real, strlen(real) + 1);
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->size = (uint64_t)st.st_size;
    id->mtime_ns = mtime_ns(&st);
    return 0;
}

int mlops_localin_verify(const char *canon, const char *name, const mlops_localin_id_t *want,
                         char *err, size_t errlen)
{
    struct stat st;
    if (stat(canon, &st) != 0)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: gone since it was submitted (%s)", name,
                            strerror(errno));
    return same(&st, name, want, err, errlen);
}

int mlops_localin_read(const char *list, const char *canon, const char *name,
                       const mlops_localin_id_t *want, uint64_t off, uint64_t len, uint8_t **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    if (!list || !*list)
        return mlops_seterr(err, errlen, MLOPS_EDENIED,
                            "%s: this worker reads no file in place (start it with --local-inputs)",
                            name);
    /* the worker's own list: the coordinator's word is not enough */
    char real[PATH_MAX];
    if (!canon || canon[0] != '/' || !allowed(list, canon, 1))
        return mlops_seterr(err, errlen, MLOPS_EDENIED, "%s: outside this worker's --local-inputs %s",
                            name, list);
    if (!realpath(canon, real))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: gone since it was submitted (%s)", name,
                            strerror(errno));
    if (strcmp(real, canon) || !allowed(list, real, 1))
        return mlops_seterr(err, errlen, MLOPS_EDENIED,
                            "%s: resolves to %s now, not the file submitted", name, real);
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot read: %s", name, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? mlops_seterr(err, errlen, MLOPS_EIO, "%s: %s", name, strerror(errno))
                                 : kind_refusal(&st, name, err, errlen);
    if (!rc) rc = same(&st, name, want, err, errlen);
    if (!rc && (off > want->size || len > want->size - off))
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: bytes %llu..%llu are past its end (%llu)",
                          name, (unsigned long long)off, (unsigned long long)(off + len),
                          (unsigned long long)want->size);
    uint8_t *buf = NULL;
    if (!rc && !(buf = malloc(len ? len : 1))) rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    for (uint64_t got = 0; !rc && got < len;) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: read failed at byte %llu: %s", name,
                              (unsigned long long)(off + got), strerror(errno));
        else if (n == 0)
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                              "%s: changed since it was submitted (ends at byte %llu now)", name,
                              (unsigned long long)(off + got));
        else
            got += (uint64_t)n;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}
