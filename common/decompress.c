/* decompress.c: one pull reader over a plain, gzip or zstd file (see
 * decompress.h). Both codecs are driven the same way: fill an input
 * buffer from the file, let the codec fill the caller's buffer, and keep
 * count of the compressed bytes consumed, so an error can say where in
 * the file it happened. Concatenated gzip members and zstd frames are
 * read one after another, as gzip -d and zstd -d do. */
#include "decompress.h"
#include "err.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define IN_CHUNK (1u << 18)

typedef struct {
    FILE *f;
    const char *name;
    mlops_comp_kind kind;
    unsigned char *in;
    size_t in_len, in_pos;
    uint64_t in_base; /* compressed bytes before in[0] */
    int in_eof;
    int member_done; /* a gzip member or zstd frame just ended */
    int started;     /* some compressed input has been seen */
    z_stream z;
    int z_init;
    ZSTD_DStream *zs;
} dstream;

mlops_comp_kind mlops_decompress_kind(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n >= 3 && !strcmp(name + n - 3, ".gz")) return MLOPS_COMP_GZIP;
    if (n >= 4 && !strcmp(name + n - 4, ".zst")) return MLOPS_COMP_ZSTD;
    return MLOPS_COMP_NONE;
}

static void ds_close(dstream *d)
{
    if (d->f) fclose(d->f);
    if (d->z_init) inflateEnd(&d->z);
    ZSTD_freeDStream(d->zs);
    free(d->in);
    memset(d, 0, sizeof *d);
}

static int ds_open(dstream *d, const char *path, const char *name, mlops_comp_kind kind, char *err,
                   size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->name = name;
    d->kind = kind;
    d->f = fopen(path, "rb");
    if (!d->f) return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot open: %s", name, strerror(errno));
    d->in = malloc(IN_CHUNK);
    if (!d->in) {
        ds_close(d);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
    }
    if (kind == MLOPS_COMP_GZIP) {
        /* 15 + 16: gzip wrapper only, so a zlib or raw stream is refused
         * as corrupt rather than guessed at */
        if (inflateInit2(&d->z, 15 + 16) != Z_OK) {
            ds_close(d);
            return mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: cannot start zlib", name);
        }
        d->z_init = 1;
    } else if (kind == MLOPS_COMP_ZSTD) {
        d->zs = ZSTD_createDStream();
        if (!d->zs || ZSTD_isError(ZSTD_initDStream(d->zs))) {
            ds_close(d);
            return mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: cannot start zstd", name);
        }
    }
    return 0;
}

/* Refill the input buffer when it is used up. */
static int ds_fill(dstream *d, char *err, size_t errlen)
{
    if (d->in_pos < d->in_len || d->in_eof) return 0;
    d->in_base += d->in_len;
    d->in_len = fread(d->in, 1, IN_CHUNK, d->f);
    d->in_pos = 0;
    if (d->in_len < IN_CHUNK) {
        if (ferror(d->f))
            return mlops_seterr(err, errlen, MLOPS_EIO, "%s: read failed at byte %llu", d->name,
                                (unsigned long long)d->in_base + d->in_len);
        d->in_eof = 1;
    }
    if (d->in_len) d->started = 1;
    return 0;
}

/* Up to cap plain bytes into out; *got = 0 at the end. */
static int ds_read(dstream *d, unsigned char *out, size_t cap, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    int rc;
    if (d->kind == MLOPS_COMP_NONE) {
        *got = fread(out, 1, cap, d->f);
        if (*got < cap && ferror(d->f))
            return mlops_seterr(err, errlen, MLOPS_EIO, "%s: read failed", d->name);
        return 0;
    }
    while (*got < cap) {
        if ((rc = ds_fill(d, err, errlen)) != 0) return rc;
        int have_in = d->in_pos < d->in_len;
        if (!have_in && d->in_eof) {
            if (!d->started)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: empty %s file", d->name,
                                    d->kind == MLOPS_COMP_GZIP ? "gzip" : "zstd");
            if (!d->member_done)
                return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "%s: truncated %s stream: it ends at byte %llu", d->name,
                                    d->kind == MLOPS_COMP_GZIP ? "gzip" : "zstd",
                                    (unsigned long long)d->in_base + d->in_len);
            return 0;
        }
        if (d->kind == MLOPS_COMP_GZIP) {
            if (d->member_done) { /* another member follows */
                inflateReset(&d->z);
                d->member_done = 0;
            }
            d->z.next_in = d->in + d->in_pos;
            d->z.avail_in = (uInt)(d->in_len - d->in_pos);
            d->z.next_out = out + *got;
            d->z.avail_out = (uInt)(cap - *got);
            int zr = inflate(&d->z, Z_NO_FLUSH);
            size_t used = (d->in_len - d->in_pos) - d->z.avail_in;
            uint64_t at = d->in_base + d->in_pos + used;
            d->in_pos += used;
            *got = cap - d->z.avail_out;
            if (zr == Z_STREAM_END) d->member_done = 1;
            else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: corrupt gzip stream at byte %llu: %s",
                                    d->name, (unsigned long long)at, d->z.msg ? d->z.msg : "bad data");
            else if (zr == Z_MEM_ERROR) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", d->name);
            else if (zr == Z_BUF_ERROR && !used && *got < cap && d->in_pos < d->in_len)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: corrupt gzip stream at byte %llu",
                                    d->name, (unsigned long long)at);
        } else {
            ZSTD_inBuffer ib = {d->in, d->in_len, d->in_pos};
            ZSTD_outBuffer ob = {out, cap, *got};
            size_t zr = ZSTD_decompressStream(d->zs, &ob, &ib);
            if (ZSTD_isError(zr))
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: corrupt zstd stream at byte %llu: %s",
                                    d->name, (unsigned long long)(d->in_base + ib.pos),
                                    ZSTD_getErrorName(zr));
            d->in_pos = ib.pos;
            *got = ob.pos;
            d->member_done = zr == 0;
        }
    }
    return 0;
}

int mlops_decompress_file(const char *in, const char *name, mlops_comp_kind kind, const char *out,
                          char *err, size_t errlen)
{
    dstream d;
    int rc = ds_open(&d, in, name, kind, err, errlen);
    if (rc) return rc;
    size_t tl = strlen(out) + 5;
    char *tmp = malloc(tl);
    unsigned char *buf = malloc(1u << 20);
    FILE *o = NULL;
    if (!tmp || !buf) rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
    else {
        snprintf(tmp, tl, "%s.tmp", out);
        o = fopen(tmp, "wb");
        if (!o) rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    size_t got = 0;
    while (!rc && (rc = ds_read(&d, buf, 1u << 20, &got, err, errlen)) == 0 && got)
        if (fwrite(buf, 1, got, o) != got)
            rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: write failed: %s", tmp, strerror(errno));
    if (o) {
        if (fflush(o) != 0 || fsync(fileno(o)) != 0)
            if (!rc) rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: write failed: %s", tmp, strerror(errno));
        fclose(o);
        if (!rc && rename(tmp, out) != 0)
            rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot rename: %s", tmp, strerror(errno));
        if (rc) unlink(tmp);
    }
    free(tmp);
    free(buf);
    ds_close(&d);
    return rc;
}

int mlops_decompress_head(const char *path, const char *name, mlops_comp_kind kind, size_t max,
                          char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    dstream d;
    int rc = ds_open(&d, path, name, kind, err, errlen);
    if (rc) return rc;
    char *b = malloc(max + 1);
    size_t n = 0, got = 0;
    if (!b) rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
    while (!rc && n < max && (rc = ds_read(&d, (unsigned char *)b + n, max - n, &got, err, errlen)) == 0 && got)
        n += got;
    ds_close(&d);
    if (rc) {
        free(b);
        return rc;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}
