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

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int err;
} wbuf;

static void wput(wbuf *b, const void *src, size_t len)
{
    if (b->err) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->err = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    if (len) memcpy(b->p + b->n, src, len);
    b->n += len;
}

int mlk_frame_encode(const mlk_frame *f, uint8_t **out, size_t *outlen)
{
    wbuf b = {0};
    uint32_t v32 = 1;
    uint64_t n = f->nrows;
    wput(&b, "MLKF", 4);
    wput(&b, &v32, 4);
    wput(&b, &n, 8);
    v32 = (uint32_t)f->ncols;
    wput(&b, &v32, 4);
    wput(&b, f->row_id, n * 8);
    for (size_t c = 0; c < f->ncols; c++) {
        const mlk_col *col = &f->cols[c];
        uint32_t nl = (uint32_t)strlen(col->name), t = (uint32_t)col->type;
        wput(&b, &nl, 4);
        wput(&b, col->name, nl);
        wput(&b, &t, 4);
        if (col->type == MLK_F64) {
            wput(&b, col->f64, n * 8);
        } else {
            wput(&b, col->missing, n);
            wput(&b, col->off, (n + 1) * 8);
            wput(&b, col->str, col->off[n]);
        }
    }
    if (b.err) { free(b.p); return MLOPS_ENOMEM; }
    *out = b.p;
    *outlen = b.n;
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

int mlk_frame_decode(const uint8_t *buf, size_t len, mlk_frame **out)
{
    rbuf b = {buf, len, 0};
    char magic[4];
    uint32_t ver, ncols;
    uint64_t n;
    *out = NULL;
    if (rget(&b, magic, 4) || memcmp(magic, "MLKF", 4) || rget(&b, &ver, 4) || ver != 1 ||
        rget(&b, &n, 8) || rget(&b, &ncols, 4))
        return MLOPS_EPARSE;
    /* each row needs at least 8 bytes of row id: bound n by the buffer */
    if (n > len / 8 || ncols > 100000) return MLOPS_EPARSE;
    char **names = calloc(ncols ? ncols : 1, sizeof *names);
    mlk_coltype *types = calloc(ncols ? ncols : 1, sizeof *types);
    size_t *starts = calloc(ncols ? ncols : 1, sizeof *starts);
    mlk_frame *f = NULL;
    int rc = MLOPS_EPARSE;
    if (!names || !types || !starts) { rc = MLOPS_ENOMEM; goto done; }
    size_t rid_at = b.at;
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
            uint64_t last;
            memcpy(&last, b.p + b.at + n + n * 8, 8);
            b.at += n + (n + 1) * 8;
            if (last > b.n - b.at) goto done;
            b.at += last;
        }
    }
    if (b.at != b.n) goto done;
    f = mlk_frame_new(ncols, (const char *const *)names, types, n ? n : 1);
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
            if (col->off[0] != 0) goto done;
            for (uint64_t r = 0; r < n; r++)
                if (col->off[r + 1] < col->off[r]) goto done;
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
    rc = 0;
done:
    mlk_frame_destroy(&f);
    for (uint32_t c = 0; names && c < ncols; c++) free(names[c]);
    free(names);
    free(types);
    free(starts);
    return rc;
}
