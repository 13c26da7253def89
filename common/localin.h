/* localin.h: input files read in place (a cluster started with
 * --local-inputs, as `mlopsctl up` does), instead of uploaded.
 *
 * Why here: the coordinator (at submit) and every worker (at each ingest
 * task) make the same checks on a path a client named, each against its
 * own allow-list, so a remote client can never make either read a file
 * outside the directories its operator listed, whatever the other says.
 * A file is known by its identity at submit (device, inode, size, mtime
 * in ns): a file replaced, grown, truncated or touched since fails the
 * job with a line naming it, instead of silently giving other answers.
 *
 * The allow-list is a comma-separated list of absolute directories; a
 * path is allowed when its realpath lies under the realpath of one of
 * them (so a symlink cannot lead out). */
#ifndef MLOPS_LOCALIN_H
#define MLOPS_LOCALIN_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t dev, ino, size;
    int64_t mtime_ns;
} mlops_localin_id_t;

/* The allow-list `list` is usable: every entry an absolute path of an
 * existing directory. 0, or MLOPS_EINVAL naming the entry. */
int mlops_localin_check_list(const char *list, char *err, size_t errlen);

/* Check the path a client named (`path`, shown as `name` in messages)
 * against `list`: absolute and normalised (no "." or ".." component, so
 * nothing outside the list is looked at), inside the list before and
 * after symlinks are resolved, a regular file, readable. On success its realpath goes
 * to canon and its identity to *id. Every refusal is one line naming
 * the file: MLOPS_EDENIED (outside the list), MLOPS_EINVAL (relative, a
 * directory, a FIFO or device), MLOPS_ENOTFOUND, MLOPS_EIO (unreadable). */
int mlops_localin_resolve(const char *list, const char *path, const char *name, char *canon,
                          size_t canonlen, mlops_localin_id_t *id, char *err, size_t errlen);

/* `path` made absolute against `cwd` (when relative) and normalised by
 * its text alone: "." and ".." components and repeated slashes removed,
 * symlinks left alone (the coordinator resolves them and checks the
 * result). What a client offers: 0, or MLOPS_EINVAL when it does not
 * fit outlen. */
int mlops_localin_absolute(const char *cwd, const char *path, char *out, size_t outlen);

/* The file at `canon` still has identity *want: 0, or MLOPS_EINVAL with
 * "NAME: changed since it was submitted (size 10 -> 12 bytes)" (or gone,
 * replaced, modified). Used before each read. */
int mlops_localin_verify(const char *canon, const char *name, const mlops_localin_id_t *want,
                         char *err, size_t errlen);

/* Read `len` bytes at `off` of the file at `canon` (which must be in
 * `list` and still have identity *want) into a malloc'd buffer *out. The
 * file is opened, checked on its descriptor and read with pread, so a
 * file truncated meanwhile is an error, never a fault. */
int mlops_localin_read(const char *list, const char *canon, const char *name,
                       const mlops_localin_id_t *want, uint64_t off, uint64_t len, uint8_t **out,
                       char *err, size_t errlen);

#endif
