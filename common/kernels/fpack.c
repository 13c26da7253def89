/* fpack.c: the packed feature shard (see fpack.h). */
#include "fpack.h"
#include "err.h"
#include "hasher.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HDR 56
#define RANK_BITMAP_MAX ((uint64_t)1 << 26) /* beyond: sorted list + binary search */

int mlk_fpack_is(const void *buf, size_t len)
{
    return len >= 4 && !memcmp(buf, "MLKP", 4);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The shard's distinct columns (*cols, *ncols) and each entry's local
 * index (loc[nnz]): a bitmap with prefix counts for the usual 2^20
 * features, a sort for a huge n_features. */
static int local_columns(const mlk_csr *X, size_t n, uint32_t **cols, size_t *ncols, uint32_t *loc)
{
    int64_t nnz = X->indptr[n];
    *cols = NULL;
    *ncols = 0;
    if (X->ncols <= RANK_BITMAP_MAX) {
        size_t nw = X->ncols / 64 + 1;
        uint64_t *tab = calloc(2 * nw, sizeof *tab);
        if (!tab) return MLOPS_ENOMEM;
        for (int64_t p = 0; p < nnz; p++) {
            uint32_t j = (uint32_t)X->indices[p];
            tab[2 * (j >> 6)] |= UINT64_C(1) << (j & 63);
        }
        uint64_t acc = 0;
        for (size_t i = 0; i < nw; i++) {
            tab[2 * i + 1] = acc;
            acc += (uint64_t)__builtin_popcountll(tab[2 * i]);
        }
        uint32_t *c = malloc((acc ? acc : 1) * sizeof *c);
        if (!c) {
            free(tab);
            return MLOPS_ENOMEM;
        }
        size_t o = 0;
        for (size_t i = 0; i < nw; i++)
            for (uint64_t wd = tab[2 * i]; wd; wd &= wd - 1) c[o++] = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(wd));
        for (int64_t p = 0; p < nnz; p++) {
            uint32_t j = (uint32_t)X->indices[p];
            const uint64_t *e = tab + 2 * (j >> 6);
            loc[p] = (uint32_t)e[1] + (uint32_t)__builtin_popcountll(e[0] & ((UINT64_C(1) << (j & 63)) - 1));
        }
        free(tab);
        *cols = c;
        *ncols = (size_t)acc;
        return 0;
    }
    uint32_t *c = malloc((size_t)(nnz ? nnz : 1) * sizeof *c);
    if (!c) return MLOPS_ENOMEM;
    for (int64_t p = 0; p < nnz; p++) c[p] = (uint32_t)X->indices[p];
    qsort(c, (size_t)nnz, sizeof *c, cmp_u32);
    size_t m = 0;
    for (int64_t p = 0; p < nnz; p++)
        if (m == 0 || c[m - 1] != c[p]) c[m++] = c[p];
    for (int64_t p = 0; p < nnz; p++) {
        size_t lo = 0, hi = m;
        uint32_t j = (uint32_t)X->indices[p];
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (c[mid] <= j) lo = mid;
            else hi = mid;
        }
        loc[p] = (uint32_t)lo;
    }
    *cols = c;
    *ncols = m;
    return 0;
}

int mlk_fpack_encode(const mlk_features *f, uint8_t **out, size_t *outlen)
{
    size_t n = f->nrows, nd = f->n_dense;
    const mlk_csr *X = f->csr;
    if (nd && (f->dense_type != MLK_DENSE_F64 || !f->dense64)) return MLOPS_EINVAL;
    int64_t nnz_all = X ? X->indptr[n] : 0;
    unsigned inexact = 0;
    for (int64_t p = 0; p < nnz_all; p++) inexact |= (double)(float)X->data[p] != X->data[p];
    int f32 = !inexact, one_line = 1;
    size_t rec_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nnz = X ? (size_t)(X->indptr[i + 1] - X->indptr[i]) : 0;
        if (nnz >= MLK_REC_GAP) return MLOPS_EINVAL;
        size_t sz = mlk_rec_size(nnz, nd, f32);
        rec_bytes = mlk_rec_place(rec_bytes, sz) + sz;
        one_line &= sz <= 64;
    }
    uint32_t *cols = NULL, *loc = NULL;
    size_t ncols = 0;
    if (X) {
        if (!(loc = malloc((size_t)(nnz_all ? nnz_all : 1) * sizeof *loc))) return MLOPS_ENOMEM;
        if (local_columns(X, n, &cols, &ncols, loc) != 0) {
            free(loc);
            return MLOPS_ENOMEM;
        }
    }
    size_t head = HDR + 8 * n + 4 * ncols + (f->test ? n : 0);
    size_t recs_at = (head + 63) & ~(size_t)63, total = recs_at + rec_bytes;
    uint8_t *b = aligned_alloc(64, (total + 63) & ~(size_t)63);
    if (!b) {
        free(cols);
        free(loc);
        return MLOPS_ENOMEM;
    }
    memset(b, 0, recs_at);
    uint32_t u32;
    uint64_t u64;
    memcpy(b, "MLKP", 4);
    u32 = 1;
    memcpy(b + 4, &u32, 4);
    u64 = n;
    memcpy(b + 8, &u64, 8);
    u64 = X ? X->ncols : 0;
    memcpy(b + 16, &u64, 8);
    u64 = nd;
    memcpy(b + 24, &u64, 8);
    u64 = ncols;
    memcpy(b + 32, &u64, 8);
    u64 = rec_bytes;
    memcpy(b + 40, &u64, 8);
    u32 = (X ? MLK_FPACK_HASHED : 0) | (f->test ? MLK_FPACK_TEST : 0) | (f32 ? MLK_FPACK_F32 : 0) |
          (one_line ? MLK_FPACK_ONE_LINE : 0);
    memcpy(b + 48, &u32, 4);
    if (n) memcpy(b + HDR, f->row_id, 8 * n);
    if (ncols) memcpy(b + HDR + 8 * n, cols, 4 * ncols);
    if (f->test) memcpy(b + HDR + 8 * n + 4 * ncols, f->test, n);
    uint8_t *r = b + recs_at;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t p0 = X ? X->indptr[i] : 0;
        uint32_t nnz = X ? (uint32_t)(X->indptr[i + 1] - p0) : 0;
        size_t sz = mlk_rec_size(nnz, nd, f32), start = mlk_rec_place(at, sz);
        if (start != at) { /* the gap: a marker, then zeros */
            memset(r + at, 0, start - at);
            u32 = MLK_REC_GAP;
            memcpy(r + at + 4, &u32, 4);
        }
        uint8_t *rec = r + start;
        memset(rec + mlk_rec_dense_at(nnz, f32) - 8, 0, 8); /* padding, if any */
        memcpy(rec, &f->label[i], 4);
        memcpy(rec + 4, &nnz, 4);
        if (nnz) memcpy(rec + 8, loc + p0, 4 * (size_t)nnz);
        if (f32) {
            uint8_t *fv = rec + mlk_rec_vals_at(nnz, 1);
            for (uint32_t p = 0; p < nnz; p++) {
                float x = (float)X->data[p0 + p];
                memcpy(fv + 4 * p, &x, 4);
            }
        } else if (nnz) {
            memset(rec + 8 + 4 * (size_t)nnz, 0, mlk_rec_vals_at(nnz, 0) - 8 - 4 * (size_t)nnz);
            memcpy(rec + mlk_rec_vals_at(nnz, 0), X->data + p0, 8 * (size_t)nnz);
        }
        if (nd) memcpy(rec + mlk_rec_dense_at(nnz, f32), f->dense64 + i * nd, 8 * nd);
        at = start + sz;
    }
    free(cols);
    free(loc);
    *out = b;
    *outlen = total;
    return 0;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Copy the records src[have..] into dst up to at least byte x (in steps
 * of COPY_STEP, so the walk below reads each step from L2 right after
 * its copy); returns the new end. */
#define COPY_STEP ((size_t)64 << 10)
static size_t copy_ahead(uint8_t *dst, const uint8_t *src, size_t have, size_t x, size_t rb)
{
    size_t to = have + COPY_STEP > x ? have + COPY_STEP : x;
    if (to > rb) to = rb;
    memcpy(dst + have, src + have, to - have);
    return to;
}

/* mlk_fpack_open's walk; with dst, over a copy of the records made as
 * it goes (the bytes checked are the copy's, the ones read later). */
static int fpack_open(const uint8_t *buf, size_t len, mlk_fpack *p, size_t *off, uint8_t *dst, char *err,
                      size_t errlen)
{
    memset(p, 0, sizeof *p);
    if ((uintptr_t)buf & 7)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "packed shard at a misaligned address (copy it first)");
    if (len < HDR || memcmp(buf, "MLKP", 4))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: %zu bytes, no MLKP header", len);
    if (rd32(buf + 4) != 1)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: version %u, expected 1", rd32(buf + 4));
    uint64_t n = rd64(buf + 8), nf = rd64(buf + 16), nd = rd64(buf + 24), ncols = rd64(buf + 32);
    uint64_t rb = rd64(buf + 40);
    uint32_t flags = rd32(buf + 48);
    if (flags & ~(uint32_t)15 || rd32(buf + 52))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: unknown flags 0x%x", flags);
    int has_test = (flags & MLK_FPACK_TEST) != 0, f32 = (flags & MLK_FPACK_F32) != 0;
    /* each count bounded by the length first, so the sums cannot wrap */
    if (n > len / 8 || ncols > len / 4 || nd > len / 8 || rb > len)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: header counts exceed its %zu bytes", len);
    if (!(flags & MLK_FPACK_HASHED) && (nf || ncols))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: hashed columns without a hashed part");
    if (nf > INT32_MAX)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: n_features %llu", (unsigned long long)nf);
    uint64_t head = HDR + 8 * n + 4 * ncols + (has_test ? n : 0), at = (head + 63) & ~(uint64_t)63;
    if (at > len || rb != len - at)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: %llu record bytes, %zu bytes in all",
                            (unsigned long long)rb, len);
    p->nrows = n;
    p->n_features = nf;
    p->hashed = (flags & MLK_FPACK_HASHED) != 0;
    p->ncols = ncols;
    p->cols = (const uint32_t *)(const void *)(buf + HDR + 8 * n);
    p->n_dense = nd;
    p->f32 = f32;
    p->one_line = (flags & MLK_FPACK_ONE_LINE) != 0;
    p->row_id = (const int64_t *)(const void *)(buf + HDR);
    p->test = has_test ? buf + HDR + 8 * n + 4 * ncols : NULL;
    const uint8_t *src = buf + at;
    p->recs = dst ? dst : src;
    p->rec_bytes = rb;
    size_t have = dst ? 0 : rb; /* record bytes copied */
#define NEED(x) \
    if ((x) > have) have = copy_ahead(dst, src, have, (x), rb)
    for (uint64_t c = 0; c < ncols; c++)
        if (p->cols[c] >= nf || (c && p->cols[c] <= p->cols[c - 1]))
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: column %llu (%u) out of order or >= %llu",
                                (unsigned long long)c, p->cols[c], (unsigned long long)nf);
    for (uint64_t i = 0; has_test && i < n; i++)
        if (p->test[i] > 1)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: row %llu has test flag %u",
                                (unsigned long long)i, p->test[i]);
    size_t pos = 0;
    int small = 1;
    p->label_min = 0;
    p->label_max = -1;
    uint64_t i;
    for (i = 0; i < n; i++) {
        if (rb - pos < 8) goto short_rec;
        NEED(pos + 8);
        uint32_t nnz = rd32(p->recs + pos + 4);
        if (nnz == MLK_REC_GAP) { /* a gap: the record is on the next line */
            size_t next = (pos + 63) & ~(size_t)63;
            if (next == pos || next > rb || rb - next < 8)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: a gap at byte %zu of the records", pos);
            NEED(next + 8);
            if (rd32(p->recs + next + 4) == MLK_REC_GAP)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: a gap at byte %zu of the records", pos);
            pos = next;
            nnz = rd32(p->recs + pos + 4);
        }
        if (nnz > (rb - pos) / 4 || (!p->hashed && nnz)) goto short_rec;
        size_t sz = mlk_rec_size(nnz, (size_t)nd, f32);
        if (sz > rb - pos) goto short_rec;
        NEED(pos + sz);
        if (mlk_rec_place(pos, sz) != pos)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: record %llu straddles a line",
                                (unsigned long long)i);
        small &= sz <= 64;
        int32_t lab;
        memcpy(&lab, p->recs + pos, 4);
        if (lab < -1)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: row %llu has label %d",
                                (unsigned long long)i, lab);
        if (i == 0 || lab < p->label_min) p->label_min = lab;
        if (i == 0 || lab > p->label_max) p->label_max = lab;
        const uint8_t *ci = p->recs + pos + 8;
        unsigned bad = 0; /* branch-free, then locate */
        for (uint32_t q = 0; q < nnz; q++) bad |= rd32(ci + 4 * q) >= ncols;
        if (bad)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: row %llu names a column beyond its %llu",
                                (unsigned long long)i, (unsigned long long)ncols);
        if (off) off[i] = pos;
        pos += sz;
    }
    if (pos != rb)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: %zu bytes after the last record", rb - pos);
#undef NEED
    if (p->one_line && !small)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: one-line flag on records over 64 bytes");
    return 0;
short_rec:
    return mlops_seterr(err, errlen, MLOPS_EPARSE, "packed shard: record %llu (byte %zu) is cut short",
                        (unsigned long long)i, pos);
}

int mlk_fpack_open(const uint8_t *buf, size_t len, mlk_fpack *p, size_t *off, char *err, size_t errlen)
{
    return fpack_open(buf, len, p, off, NULL, err, errlen);
}

size_t mlk_fpack_rec_bytes(const uint8_t *buf, size_t len)
{
    uint64_t rb = len >= HDR ? rd64(buf + 40) : 0;
    return rb <= len ? (size_t)rb : 0;
}

int mlk_fpack_open_copy(const uint8_t *buf, size_t len, mlk_fpack *p, size_t *off, uint8_t *recs, char *err,
                        size_t errlen)
{
    return fpack_open(buf, len, p, off, recs, err, errlen);
}

mlk_features *mlk_fpack_to_features(const mlk_fpack *p, const size_t *off)
{
    size_t n = p->nrows, nd = p->n_dense, nnz = 0;
    for (size_t i = 0; i < n; i++) nnz += rd32(p->recs + off[i] + 4);
    mlk_features *f = mlk_features_new(n);
    if (!f) return NULL;
    if (n) memcpy(f->row_id, p->row_id, 8 * n);
    if (p->test) {
        if (!(f->test = malloc(n ? n : 1))) goto fail;
        if (n) memcpy(f->test, p->test, n);
    }
    if (p->hashed && !(f->csr = mlk_csr_new(n, (size_t)p->n_features, nnz))) goto fail;
    f->n_dense = nd;
    f->dense_type = MLK_DENSE_F64;
    if (nd && !(f->dense64 = malloc((n ? n : 1) * nd * sizeof *f->dense64))) goto fail;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = p->recs + off[i];
        uint32_t c = rd32(rec + 4);
        memcpy(&f->label[i], rec, 4);
        for (uint32_t q = 0; q < c; q++) {
            f->csr->indices[k + q] = (int32_t)p->cols[rd32(rec + 8 + 4 * q)];
            if (p->f32) {
                float x;
                memcpy(&x, rec + mlk_rec_vals_at(c, 1) + 4 * q, 4);
                f->csr->data[k + q] = x;
            } else {
                memcpy(&f->csr->data[k + q], rec + mlk_rec_vals_at(c, 0) + 8 * q, 8);
            }
        }
        k += c;
        if (f->csr) f->csr->indptr[i + 1] = (int64_t)k;
        if (nd) memcpy(f->dense64 + i * nd, rec + mlk_rec_dense_at(c, p->f32), 8 * nd);
    }
    return f;
fail:
    mlk_features_destroy(&f);
    return NULL;
}

uint8_t *mlk_fpack_aligned_copy(const void *buf, size_t len)
{
    uint8_t *c = aligned_alloc(64, ((len ? len : 1) + 63) & ~(size_t)63);
    if (c && len) memcpy(c, buf, len);
    return c;
}

void *mlk_fpack_alloc(size_t len)
{
    size_t huge = (size_t)2 << 20;
    len = (len + huge - 1) / huge * huge;
    void *c = aligned_alloc(huge, len ? len : huge);
#ifdef MADV_HUGEPAGE
    if (c) madvise(c, len ? len : huge, MADV_HUGEPAGE); /* a hint; failure is harmless */
#endif
    return c;
}

void *mlk_fpack_buf_get(mlk_fpack_buf *b, size_t len)
{
    if (b->p && b->cap >= len) return b->p;
    free(b->p);
    b->p = mlk_fpack_alloc(len);
    b->cap = b->p ? len : 0;
    return b->p;
}

void mlk_fpack_buf_free(mlk_fpack_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

uint8_t *mlk_fpack_recs_copy(const mlk_fpack *p)
{
    uint8_t *c = mlk_fpack_alloc(p->rec_bytes);
    if (c && p->rec_bytes) memcpy(c, p->recs, p->rec_bytes);
    return c;
}
