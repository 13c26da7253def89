/* frame.c: see frame.h.
 * Encoding: "MLKF" u32 version=1, u64 nrows, u32 ncols, then i64 row_id[nrows],
 * then per column: u32 namelen, name bytes, u32 type, and
 *   F64: f64[nrows]
 *   STR: u8 missing[nrows], u64 off[nrows+1], bytes str[off[nrows]]
 * All little-endian (the host order on every supported platform). */
#include "frame.h"
#include "err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

mlk_frame *mlk_frame_new(size_t ncols, const char *const *names, const mlk_coltype *types,
                         size_t cap)
{
    mlk_frame *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->ncols = ncols;
    f->cols = calloc(ncols ? ncols : 1, sizeof *f->cols);
    if (!f->cols) goto fail;
    for (size_t c = 0; c < ncols; c++) {
        f->cols[c].name = strdup(names[c]);
        f->cols[c].type = types[c];
        if (!f->cols[c].name) goto fail;
    }
    if (mlk_frame_reserve(f, cap ? cap : 16) != 0) goto fail;
    return f;
fail:
    mlk_frame_destroy(&f);
    return NULL;
}

void mlk_frame_destroy(mlk_frame **pf)
{
    if (!pf || !*pf) return;
    mlk_frame *f = *pf;
    for (size_t c = 0; f->cols && c < f->ncols; c++) {
        free(f->cols[c].name);
        free(f->cols[c].f64);
        free(f->cols[c].off);
        free(f->cols[c].str);
        free(f->cols[c].missing);
    }
    free(f->cols);
    free(f->row_id);
    free(f);
    *pf = NULL;
}

int mlk_frame_reserve(mlk_frame *f, size_t rows)
{
    if (rows <= f->cap && f->row_id) return 0;
    size_t cap = f->cap ? f->cap : 16;
    while (cap < rows) cap *= 2;
    int64_t *rid = realloc(f->row_id, cap * sizeof *rid);
    if (!rid) return MLOPS_ENOMEM;
    f->row_id = rid;
    for (size_t c = 0; c < f->ncols; c++) {
        mlk_col *col = &f->cols[c];
        if (col->type == MLK_F64) {
            double *v = realloc(col->f64, cap * sizeof *v);
            if (!v) return MLOPS_ENOMEM;
            col->f64 = v;
        } else {
            int fresh = col->off == NULL;
            uint64_t *o = realloc(col->off, (cap + 1) * sizeof *o);
            if (!o) return MLOPS_ENOMEM;
            col->off = o;
            if (fresh) o[0] = 0;
            uint8_t *m = realloc(col->missing, cap);
            if (!m) return MLOPS_ENOMEM;
            col->missing = m;
        }
    }
    f->cap = cap;
    return 0;
}

int mlk_frame_str_push(mlk_frame *f, size_t c, size_t row, const char *s, size_t len, int missing)
{
    mlk_col *col = &f->cols[c];
    uint64_t at = col->off[row];
    if (at + len > col->str_cap) {
        size_t ncap = col->str_cap ? col->str_cap : 256;
        while (ncap < at + len) ncap *= 2;
        char *n = realloc(col->str, ncap);
        if (!n) return MLOPS_ENOMEM;
        col->str = n;
        col->str_cap = ncap;
    }
    if (len) memcpy(col->str + at, s, len);
    col->off[row + 1] = at + len;
    col->missing[row] = (uint8_t)(missing != 0);
    return 0;
}

int mlk_frame_col(const mlk_frame *f, const char *name)
{
    for (size_t c = 0; c < f->ncols; c++)
        if (!strcmp(f->cols[c].name, name)) return (int)c;
    return -1;
}

void mlk_frame_filter(mlk_frame *f, const uint8_t *keep)
{
    size_t w = 0;
    for (size_t r = 0; r < f->nrows; r++) {
        if (!keep[r]) continue;
        f->row_id[w] = f->row_id[r];
        for (size_t c = 0; c < f->ncols; c++) {
            mlk_col *col = &f->cols[c];
            if (col->type == MLK_F64) {
                col->f64[w] = col->f64[r];
            } else {
                size_t len;
                const char *s = mlk_str_at(col, r, &len);
                uint64_t at = col->off[w];
                memmove(col->str + at, s, len); /* w <= r: moves only backwards */
                col->missing[w] = col->missing[r];
                /* off[r+1] is read before off[w+1] is written only when w == r */
                if (w != r) col->off[w + 1] = at + len;
            }
        }
        w++;
    }
    f->nrows = w;
}

/* --- encoding ------------------------------------------------------- */

/* The encoding's size, so that it is written into one buffer of the
 * right size (growing it by doubling copied a shard's frame twice). */
static size_t encoded_size(const mlk_frame *f)
{
    size_t n = f->nrows, len = 20 + n * 8;
    for (size_t c = 0; c < f->ncols; c++) {
        const mlk_col *col = &f->cols[c];
        len += 8 + strlen(col->name);
        len += col->type == MLK_F64 ? n * 8 : n + (n + 1) * 8 + (size_t)col->off[n];
    }
    return len;
}

size_t mlk_frame_encoded_size(const mlk_frame *f)
{
    return encoded_size(f);
}

static uint8_t *put(uint8_t *p, const void *src, size_t len)
{
    if (len) memcpy(p, src, len);
    return p + len;
}

void mlk_frame_encode_to(const mlk_frame *f, uint8_t *p)
{
    uint32_t v32 = 1;
    uint64_t n = f->nrows;
    p = put(p, "MLKF", 4);
    p = put(p, &v32, 4);
    p = put(p, &n, 8);
    v32 = (uint32_t)f->ncols;
    p = put(p, &v32, 4);
    p = put(p, f->row_id, n * 8);
    for (size_t c = 0; c < f->ncols; c++) {
        const mlk_col *col = &f->cols[c];
        uint32_t nl = (uint32_t)strlen(col->name), t = (uint32_t)col->type;
        p = put(p, &nl, 4);
        p = put(p, col->name, nl);
        p = put(p, &t, 4);
        if (col->type == MLK_F64) {
            p = put(p, col->f64, n * 8);
        } else {
            p = put(p, col->missing, n);
            p = put(p, col->off, (n + 1) * 8);
            p = put(p, col->str, col->off[n]);
        }
    }
}

int mlk_frame_encode(const mlk_frame *f, uint8_t **out, size_t *outlen)
{
    size_t size = encoded_size(f);
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return MLOPS_ENOMEM;
    mlk_frame_encode_to(f, b);
    *out = b;
    *outlen = size;
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t n, at;
} rbuf;

static int rget(rbuf *b, void *dst, size_t len)
{
    if (len > b->n - b->at) return -1;
    if (len) memcpy(dst, b->p + b->at, len);
    b->at += len;
    return 0;
}

/* Walk and validate the layout of an encoding: nrows, ncols, the
 * offset of the row ids, and per column its name (malloc'd), type and
 * the offset of its data. String offsets must start at 0 and never
 * decrease. 0, MLOPS_EPARSE or MLOPS_ENOMEM; on failure nothing is left
 * allocated. */
static int layout(const uint8_t *buf, size_t len, uint64_t *pn, uint32_t *pncols, size_t *rid_at,
                  char ***pnames, mlk_coltype **ptypes, size_t **pstarts)
{
    rbuf b = {buf, len, 0};
    char magic[4];
    uint32_t ver, ncols;
    uint64_t n;
    *pnames = NULL;
    *ptypes = NULL;
    *pstarts = NULL;
    if (rget(&b, magic, 4) || memcmp(magic, "MLKF", 4) || rget(&b, &ver, 4) || ver != 1 ||
        rget(&b, &n, 8) || rget(&b, &ncols, 4))
        return MLOPS_EPARSE;
    /* each row needs at least 8 bytes of row id: bound n by the buffer */
    if (n > len / 8 || ncols > 100000) return MLOPS_EPARSE;
    char **names = calloc(ncols ? ncols : 1, sizeof *names);
    mlk_coltype *types = calloc(ncols ? ncols : 1, sizeof *types);
    size_t *starts = calloc(ncols ? ncols : 1, sizeof *starts);
    int rc = MLOPS_EPARSE;
    if (!names || !types || !starts) { rc = MLOPS_ENOMEM; goto done; }
    *rid_at = b.at;
    if (n * 8 > b.n - b.at) goto done;
    b.at += n * 8;
    for (uint32_t c = 0; c < ncols; c++) {
        uint32_t nl, t;
        if (rget(&b, &nl, 4) || nl > 4096 || nl > b.n - b.at) goto done;
        names[c] = malloc(nl + 1);
        if (!names[c]) { rc = MLOPS_ENOMEM; goto done; }
        rget(&b, names[c], nl);
        names[c][nl] = 0;
        if (rget(&b, &t, 4) || (t != MLK_F64 && t != MLK_STR)) goto done;
        types[c] = (mlk_coltype)t;
        starts[c] = b.at;
        if (t == MLK_F64) {
            if (n * 8 > b.n - b.at) goto done;
            b.at += n * 8;
        } else {
            if (n + (n + 1) * 8 > b.n - b.at) goto done;
            const uint8_t *off = b.p + b.at + n;
            uint64_t prev, next;
            memcpy(&prev, off, 8);
            if (prev != 0) goto done;
            for (uint64_t r = 0; r < n; r++, prev = next) {
                memcpy(&next, off + (r + 1) * 8, 8);
                if (next < prev) goto done;
            }
            b.at += n + (n + 1) * 8;
            if (prev > b.n - b.at) goto done;
            b.at += prev;
        }
    }
    if (b.at != b.n) goto done;
    *pn = n;
    *pncols = ncols;
    *pnames = names;
    *ptypes = types;
    *pstarts = starts;
    return 0;
done:
    for (uint32_t c = 0; names && c < ncols; c++) free(names[c]);
    free(names);
    free(types);
    free(starts);
    return rc;
}

int mlk_frame_decode(const uint8_t *buf, size_t len, mlk_frame **out)
{
    uint32_t ncols;
    uint64_t n;
    size_t rid_at, *starts;
    char **names;
    mlk_coltype *types;
    *out = NULL;
    int rc = layout(buf, len, &n, &ncols, &rid_at, &names, &types, &starts);
    if (rc) return rc;
    mlk_frame *f = mlk_frame_new(ncols, (const char *const *)names, types, n ? n : 1);
    if (!f) { rc = MLOPS_ENOMEM; goto done; }
    memcpy(f->row_id, buf + rid_at, n * 8);
    for (uint32_t c = 0; c < ncols; c++) {
        mlk_col *col = &f->cols[c];
        const uint8_t *p = buf + starts[c];
        if (types[c] == MLK_F64) {
            memcpy(col->f64, p, n * 8);
        } else {
            memcpy(col->missing, p, n);
            memcpy(col->off, p + n, (n + 1) * 8);
            uint64_t sl = col->off[n];
            col->str = malloc(sl ? sl : 1);
            if (!col->str) { rc = MLOPS_ENOMEM; goto done; }
            col->str_cap = sl ? sl : 1;
            memcpy(col->str, p + n + (n + 1) * 8, sl);
        }
    }
    f->nrows = n;
    *out = f;
    f = NULL;
done:
    mlk_frame_destroy(&f);
    for (uint32_t c = 0; c < ncols; c++) free(names[c]);
    free(names);
    free(types);
    free(starts);
    return rc;
}

/* --- views ---------------------------------------------------------- */

int mlk_frame_view(const uint8_t *buf, size_t len, mlk_frameview **out)
{
    uint32_t ncols;
    uint64_t n;
    size_t rid_at, *starts;
    char **names;
    mlk_coltype *types;
    *out = NULL;
    int rc = layout(buf, len, &n, &ncols, &rid_at, &names, &types, &starts);
    if (rc) return rc;
    mlk_frameview *v = calloc(1, sizeof *v);
    mlk_colview *cols = calloc(ncols ? ncols : 1, sizeof *cols);
    if (!v || !cols) {
        for (uint32_t c = 0; c < ncols; c++) free(names[c]);
        free(v);
        free(cols);
        rc = MLOPS_ENOMEM;
    } else {
        v->nrows = n;
        v->ncols = ncols;
        v->row_id = buf + rid_at;
        v->cols = cols;
        v->end = buf + len;
        for (uint32_t c = 0; c < ncols; c++) {
            const uint8_t *p = buf + starts[c];
            cols[c].name = names[c];
            cols[c].type = types[c];
            if (types[c] == MLK_F64) {
                cols[c].f64 = p;
            } else {
                cols[c].missing = p;
                cols[c].off = p + n;
                cols[c].str = p + n + (n + 1) * 8;
            }
        }
        *out = v;
    }
    free(names);
    free(types);
    free(starts);
    return rc;
}

void mlk_frame_view_destroy(mlk_frameview **pv)
{
    if (!pv || !*pv) return;
    for (size_t c = 0; c < (*pv)->ncols; c++) free((*pv)->cols[c].name);
    free((*pv)->cols);
    free(*pv);
    *pv = NULL;
}

int mlk_frame_view_col(const mlk_frameview *v, const char *name)
{
    for (size_t c = 0; c < v->ncols; c++)
        if (!strcmp(v->cols[c].name, name)) return (int)c;
    return -1;
}

void mlk_frame_view_f64(const mlk_frameview *v, size_t c, double *dst)
{
    memcpy(dst, v->cols[c].f64, v->nrows * 8);
}

/* Copy the 8-byte items of src whose keep flag is set to dst; returns
 * the bytes written. room: the bytes writable from dst on, as the
 * branch-free loop writes one item past the last kept one. */
static size_t keep8(uint8_t *dst, size_t room, const uint8_t *src, const uint8_t *keep, size_t n)
{
    uint8_t *w = dst;
    size_t r = 0;
    for (; r < n && (size_t)(w - dst) + 8 <= room; r++) {
        memcpy(w, src + r * 8, 8);
        w += keep[r] ? 8 : 0; /* written always, kept when flagged: no branch to mispredict */
    }
    for (; r < n; r++) /* only at the end of a buffer sized exactly */
        if (keep[r]) {
            memcpy(w, src + r * 8, 8);
            w += 8;
        }
    return (size_t)(w - dst);
}

size_t mlk_frame_filtered_size(const mlk_frameview *v, const uint8_t *keep)
{
    size_t n = v->nrows, k = 0;
    for (size_t r = 0; r < n; r++) k += keep[r] != 0;
    size_t size = 20 + k * 8;
    for (size_t c = 0; c < v->ncols; c++) {
        const mlk_colview *col = &v->cols[c];
        size += 8 + strlen(col->name);
        if (col->type == MLK_F64) {
            size += k * 8;
            continue;
        }
        /* the kept strings' bytes from the offsets alone (no string is read) */
        uint64_t bytes = 0, a, b;
        memcpy(&a, col->off, 8);
        for (size_t r = 0; r < n; r++, a = b) {
            memcpy(&b, col->off + (r + 1) * 8, 8);
            bytes += keep[r] ? b - a : 0;
        }
        size += k + (k + 1) * 8 + (size_t)bytes;
    }
    return size;
}

void mlk_frame_encode_filtered_to(const mlk_frameview *v, const uint8_t *keep, uint8_t *dst,
                                  size_t size)
{
    size_t n = v->nrows, k = 0;
    for (size_t r = 0; r < n; r++) k += keep[r] != 0;
    uint8_t *p = dst, *end = dst + size;
    uint32_t v32 = 1;
    uint64_t n64 = k;
    memcpy(p, "MLKF", 4);
    memcpy(p + 4, &v32, 4);
    memcpy(p + 8, &n64, 8);
    v32 = (uint32_t)v->ncols;
    memcpy(p + 16, &v32, 4);
    p += 20;
    p += keep8(p, (size_t)(end - p), v->row_id, keep, n);
    for (size_t c = 0; c < v->ncols; c++) {
        const mlk_colview *col = &v->cols[c];
        uint32_t nl = (uint32_t)strlen(col->name), t = (uint32_t)col->type;
        memcpy(p, &nl, 4);
        memcpy(p + 4, col->name, nl);
        memcpy(p + 4 + nl, &t, 4);
        p += 8 + nl;
        if (col->type == MLK_F64) {
            p += keep8(p, (size_t)(end - p), col->f64, keep, n);
            continue;
        }
        uint8_t *miss = p, *off = p + k, *str = p + k + (k + 1) * 8;
        uint64_t at = 0;
        memcpy(off, &at, 8);
        size_t w = 0;
        for (size_t r = 0; r < n; r++) {
            if (!keep[r]) continue;
            size_t len;
            const char *s = mlk_view_str_at(col, r, &len);
            miss[w] = col->missing[r];
            /* most strings are short: one fixed copy, not a call, where
             * both the source and the destination have 16 bytes left */
            if (len <= 16 && v->end - (const uint8_t *)s >= 16 && end - (str + at) >= 16)
                memcpy(str + at, s, 16);
            else memcpy(str + at, s, len);
            at += len;
            memcpy(off + (w + 1) * 8, &at, 8);
            w++;
        }
        p = str + at;
    }
}

int mlk_frame_encode_filtered(const mlk_frameview *v, const uint8_t *keep, uint8_t **out,
                              size_t *outlen)
{
    size_t size = mlk_frame_filtered_size(v, keep);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return MLOPS_ENOMEM;
    mlk_frame_encode_filtered_to(v, keep, buf, size);
    *out = buf;
    *outlen = size;
    return 0;
}
