/* idx.c: IDX file reader over zlib (gzip or plain). See idx.h.
 * The header is parsed from bytes with explicit big-endian decoding, every
 * size product is checked for overflow, and data is read in chunks so a
 * lying header cannot make us allocate more than the data there is. */
#include "idx.h"
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08

/* Reads exactly n bytes; returns 0, or a code with a message. */
static int gz_read_exact(gzFile gz, const char *path, void *buf, size_t n, const char *what,
                         char *err, size_t errlen)
{
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(gz, p, chunk);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            return mlops_seterr(err, errlen, zerr == Z_ERRNO ? MLOPS_EIO : MLOPS_EPARSE,
                                "%s: corrupt or unreadable while reading %s: %s", path, what,
                                msg ? msg : "zlib error");
        }
        if (got == 0) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            if (zerr != Z_OK && zerr != Z_BUF_ERROR)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: corrupt while reading %s: %s",
                                    path, what, msg ? msg : "zlib error");
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "%s: truncated: file ends while reading %s", path, what);
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static int open_gz(const char *path, gzFile *gz, char *err, size_t errlen)
{
    if (!path)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "idx: no path given");
    errno = 0;
    *gz = gzopen(path, "rb");
    if (!*gz)
        return mlops_seterr(err, errlen, errno == ENOENT ? MLOPS_ENOTFOUND : MLOPS_EIO,
                            "%s: cannot open: %s", path, errno ? strerror(errno) : "zlib error");
    gzbuffer(*gz, 1u << 17);
    return 0;
}

static int parse_header(gzFile gz, const char *path, mlk_idx_header *h, char *err, size_t errlen)
{
    unsigned char m[4];
    int rc = gz_read_exact(gz, path, m, 4, "the magic number", err, errlen);
    if (rc)
        return rc;
    if (m[0] != 0 || m[1] != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "%s: not an IDX file (magic %02x %02x %02x %02x, expected 00 00 08 nn)",
                            path, m[0], m[1], m[2], m[3]);
    if (m[2] != IDX_TYPE_UBYTE)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "%s: IDX data type 0x%02x not supported (only 0x08 unsigned byte)",
                            path, m[2]);
    if (m[3] < 1 || m[3] > MLK_IDX_MAX_DIMS)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: IDX dimension count %u not in 1..%d",
                            path, m[3], MLK_IDX_MAX_DIMS);
    h->ndim = m[3];
    unsigned char d[4 * MLK_IDX_MAX_DIMS];
    rc = gz_read_exact(gz, path, d, 4 * (size_t)h->ndim, "the dimensions", err, errlen);
    if (rc)
        return rc;
    size_t row_len = 1;
    for (int i = 0; i < h->ndim; i++) {
        uint32_t v = ((uint32_t)d[4 * i] << 24) | ((uint32_t)d[4 * i + 1] << 16) |
                     ((uint32_t)d[4 * i + 2] << 8) | (uint32_t)d[4 * i + 3];
        h->dims[i] = v;
        if (i > 0) {
            if (v == 0)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: IDX dimension %d is zero",
                                    path, i);
            if (row_len > ((size_t)1 << 40) / v)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: IDX row size too large",
                                    path);
            row_len *= v;
        }
    }
    for (int i = h->ndim; i < MLK_IDX_MAX_DIMS; i++)
        h->dims[i] = 0;
    h->nrows = h->dims[0];
    h->row_len = row_len;
    return 0;
}

int mlk_idx_read_header(const char *path, mlk_idx_header *h, char *err, size_t errlen)
{
    if (!h)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "idx: no header output");
    gzFile gz = NULL;
    int rc = open_gz(path, &gz, err, errlen);
    if (rc)
        return rc;
    rc = parse_header(gz, path, h, err, errlen);
    gzclose(gz);
    return rc;
}

/* Shared body: reads the row range as raw bytes through `sink`, which
 * converts n bytes, values first..first+n of the range, into the
 * caller's output. */
typedef void (*idx_sink)(void *out, size_t first, const unsigned char *bytes, size_t n);

static void sink_f32(void *out, size_t first, const unsigned char *b, size_t n)
{
    float *o = (float *)out + first;
    for (size_t i = 0; i < n; i++)
        o[i] = (float)b[i];
}

static void sink_i32(void *out, size_t first, const unsigned char *b, size_t n)
{
    int32_t *o = (int32_t *)out + first;
    for (size_t i = 0; i < n; i++)
        o[i] = b[i];
}

#define IDX_CHUNK ((size_t)1 << 20)

static int read_range(const char *path, size_t begin, size_t count, size_t elem_size,
                      idx_sink sink, int want_labels, void **out, size_t *nrows_out,
                      mlk_idx_header *hout, char *err, size_t errlen)
{
    if (!out || !nrows_out)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "idx: no output given");
    *out = NULL;
    *nrows_out = 0;
    gzFile gz = NULL;
    int rc = open_gz(path, &gz, err, errlen);
    if (rc)
        return rc;
    mlk_idx_header h;
    unsigned char *chunk = NULL;
    void *buf = NULL;
    rc = parse_header(gz, path, &h, err, errlen);
    if (rc)
        goto done;
    if (want_labels && h.row_len != 1) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                          "%s: expected a label file (idx1), found %d dimensions", path, h.ndim);
        goto done;
    }
    if (begin > h.nrows) {
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: row %zu past the end (%zu rows)", path,
                          begin, h.nrows);
        goto done;
    }
    int to_end = count == SIZE_MAX || count == h.nrows - begin;
    if (count == SIZE_MAX)
        count = h.nrows - begin;
    if (count > h.nrows - begin) {
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                          "%s: rows [%zu, %zu+%zu) past the end (%zu rows)", path, begin, begin,
                          count, h.nrows);
        goto done;
    }
    /* skip rows before the range (gzseek decompresses forward) */
    if (begin > 0) {
        /* no file holds 2^62 bytes: past that the offset would wrap */
        if (begin > (((size_t)1 << 62) - 4 - 4 * MLK_IDX_MAX_DIMS) / h.row_len) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "%s: truncated: cannot reach row %zu (header says %zu rows)", path,
                              begin, h.nrows);
            goto done;
        }
        z_off_t target = (z_off_t)(4 + 4 * (size_t)h.ndim + begin * h.row_len);
        if (gzseek(gz, target, SEEK_SET) != target) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "%s: truncated: cannot reach row %zu (header says %zu rows)", path,
                              begin, h.nrows);
            goto done;
        }
    }
    if (count > 0 && h.row_len > SIZE_MAX / elem_size / count) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: header claims %zu rows of %zu values: too large",
                    path, h.nrows, h.row_len);
        goto done;
    }
    /* The range is read as a byte stream in chunks of at most IDX_CHUNK
     * bytes, and the output grows with the data actually read, so a
     * header that lies about the row count or the row size cannot make
     * us allocate for it (a single claimed row of 8 GiB did, found by
     * fuzz_idx). */
    size_t total = count * h.row_len;
    size_t cap = 0;
    chunk = malloc(IDX_CHUNK);
    if (!chunk) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t at = 0; at < total;) {
        size_t n = total - at < IDX_CHUNK ? total - at : IDX_CHUNK;
        char what[64];
        snprintf(what, sizeof what, "row %zu", begin + at / h.row_len);
        rc = gz_read_exact(gz, path, chunk, n, what, err, errlen);
        if (rc)
            goto done;
        if (at + n > cap) {
            size_t want = cap * 2 > at + n ? cap * 2 : at + n;
            if (want > total)
                want = total;
            void *nb = realloc(buf, want * elem_size);
            if (!nb) {
                rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory for %zu rows",
                                  path, want / h.row_len);
                goto done;
            }
            buf = nb;
            cap = want;
        }
        sink(buf, at, chunk, n);
        at += n;
    }
    if (!buf && !(buf = malloc(1))) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    if (to_end) {
        unsigned char extra;
        int got = gzread(gz, &extra, 1);
        if (got != 0) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              got > 0 ? "%s: unexpected bytes after the last row"
                                      : "%s: corrupt data after the last row",
                              path);
            goto done;
        }
        int zerr = 0;
        gzerror(gz, &zerr);
        if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: corrupt compressed stream", path);
            goto done;
        }
    }
    *out = buf;
    buf = NULL;
    *nrows_out = count;
    if (hout)
        *hout = h;
done:
    free(buf);
    free(chunk);
    gzclose(gz);
    return rc;
}

int mlk_idx_read_f32(const char *path, size_t begin, size_t count, float **out,
                     size_t *nrows_out, mlk_idx_header *h, char *err, size_t errlen)
{
    if (!out)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "idx: no output given");
    void *p = NULL;
    int rc = read_range(path, begin, count, sizeof(float), sink_f32, 0, &p, nrows_out, h, err,
                        errlen);
    *out = p;
    return rc;
}

int mlk_idx_read_labels(const char *path, size_t begin, size_t count, int32_t **out,
                        size_t *nrows_out, char *err, size_t errlen)
{
    if (!out)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "idx: no output given");
    void *p = NULL;
    int rc = read_range(path, begin, count, sizeof(int32_t), sink_i32, 1, &p, nrows_out, NULL,
                        err, errlen);
    *out = p;
    return rc;
}

int mlk_idx_shard_range(size_t nrows, size_t nshards, size_t i, size_t *begin, size_t *count)
{
    if (nshards == 0 || i >= nshards || !begin || !count)
        return MLOPS_EINVAL;
    size_t per = nrows / nshards + (nrows % nshards != 0);
    size_t b = i * per;
    if (b > nrows)
        b = nrows;
    size_t e = b + per > nrows ? nrows : b + per;
    *begin = b;
    *count = e - b;
    return 0;
}
