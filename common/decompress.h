/* decompress.h: compressed input files (`.csv.gz` with zlib, `.csv.zst`
 * with libzstd) read as the plain bytes they hold.
 *
 * Why here: the coordinator cuts a CSV into shards at record boundaries
 * by mapping it, which needs the plain text, and mlopsctl checks a CSV's
 * header before it uploads anything. Both read the same formats through
 * this one reader, which knows nothing of sockets or stores. The kind is
 * chosen by the file name's suffix, as pandas' compression='infer' does.
 *
 * Errors name the file and the byte offset in the compressed stream
 * where it went wrong: "events-2.csv.gz: corrupt gzip stream at byte
 * 1234: invalid block type". */
#ifndef MLOPS_DECOMPRESS_H
#define MLOPS_DECOMPRESS_H
#include <stddef.h>

typedef enum { MLOPS_COMP_NONE = 0, MLOPS_COMP_GZIP = 1, MLOPS_COMP_ZSTD = 2 } mlops_comp_kind;

/* The compression of a file named `name`: ".gz" gzip, ".zst" zstd,
 * anything else none. */
mlops_comp_kind mlops_decompress_kind(const char *name);

/* Decompress the file at `in` (named `name` in messages) into `out`,
 * written as out.tmp and renamed, so a crash leaves no half-written
 * `out`. 0, or MLOPS_EIO / MLOPS_EPARSE / MLOPS_ENOMEM with a one-line
 * message; on failure `out` does not exist. */
int mlops_decompress_file(const char *in, const char *name, mlops_comp_kind kind, const char *out,
                          char *err, size_t errlen);

/* The first bytes of the file's plain content: up to `max` bytes in a
 * malloc'd buffer *buf (NUL-terminated, length *len), fewer at the end
 * of the content. 0, or an error as for mlops_decompress_file. */
int mlops_decompress_head(const char *path, const char *name, mlops_comp_kind kind, size_t max,
                          char **buf, size_t *len, char *err, size_t errlen);

#endif
