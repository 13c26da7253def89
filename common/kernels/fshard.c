/* fshard.c: see fshard.h. */
#include "fshard.h"
#include "err.h"
#include "fpack.h"
#include "hasher.h"
#include <stdlib.h>
#include <string.h>

mlk_features *mlk_features_new(size_t nrows)
{
    mlk_features *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->nrows = nrows;
    f->row_id = calloc(nrows ? nrows : 1, sizeof *f->row_id);
    f->label = malloc((nrows ? nrows : 1) * sizeof *f->label);
    f->dense_type = MLK_DENSE_F64;
    if (!f->row_id || !f->label) {
        mlk_features_destroy(&f);
        return NULL;
    }
    for (size_t i = 0; i < nrows; i++) f->label[i] = -1;
    return f;
}

void mlk_features_destroy(mlk_features **pf)
{
    if (!pf || !*pf) return;
    mlk_features *f = *pf;
    free(f->row_id);
    free(f->label);
    free(f->test);
    mlk_csr_destroy(&f->csr);
    free(f->dense64);
    free(f->dense32);
    free(f);
    *pf = NULL;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int err;
} wb_t;

static void put(wb_t *b, const void *src, size_t len)
{
    if (b->err || !len) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->err = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, len);
    b->n += len;
}

static void put32(wb_t *b, uint32_t v) { put(b, &v, 4); }
static void put64(wb_t *b, uint64_t v) { put(b, &v, 8); }

int mlk_features_encode(const mlk_features *f, uint8_t **out, size_t *outlen)
{
    wb_t b = {0};
    size_t n = f->nrows;
    put(&b, "MLKX", 4);
    put32(&b, 1);
    put64(&b, n);
    put(&b, f->row_id, n * 8);
    put(&b, f->label, n * 4);
    put32(&b, f->test != NULL);
    if (f->test) put(&b, f->test, n);
    put32(&b, f->csr != NULL);
    if (f->csr) {
        uint64_t nnz = (uint64_t)f->csr->indptr[n];
        put64(&b, f->csr->ncols);
        put(&b, f->csr->indptr, (n + 1) * 8);
        put(&b, f->csr->indices, nnz * 4);
        put(&b, f->csr->data, nnz * 8);
    }
    put64(&b, f->n_dense);
    put32(&b, (uint32_t)f->dense_type);
    if (f->n_dense) {
        if (f->dense_type == MLK_DENSE_F32) put(&b, f->dense32, n * f->n_dense * 4);
        else put(&b, f->dense64, n * f->n_dense * 8);
    }
    if (b.err) { free(b.p); return MLOPS_ENOMEM; }
    *out = b.p ? b.p : malloc(1);
    *outlen = b.n;
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t n, at;
    int err;
} rb_t;

static const void *take(rb_t *r, size_t len)
{
    if (r->err || len > r->n - r->at) { r->err = 1; return NULL; }
    const void *p = r->p + r->at;
    r->at += len;
    return p;
}

static uint32_t get32(rb_t *r) { uint32_t v = 0; const void *p = take(r, 4); if (p) memcpy(&v, p, 4); return v; }
static uint64_t get64(rb_t *r) { uint64_t v = 0; const void *p = take(r, 8); if (p) memcpy(&v, p, 8); return v; }

static void *dup_take(rb_t *r, size_t len)
{
    const void *p = take(r, len);
    if (!p) return NULL;
    void *d = malloc(len ? len : 1);
    if (!d) { r->err = 1; return NULL; }
    memcpy(d, p, len);
    return d;
}

/* The packed form (fpack.h) as arrays, for the readers that want them. */
static int decode_packed(const uint8_t *buf, size_t len, mlk_features **out)
{
    uint64_t n;
    if (len < 16) return MLOPS_EPARSE;
    memcpy(&n, buf + 8, 8);
    if (n > len / 8) return MLOPS_EPARSE;
    uint8_t *copy = ((uintptr_t)buf & 7) ? mlk_fpack_aligned_copy(buf, len) : NULL;
    size_t *off = malloc((n ? n : 1) * sizeof *off);
    int rc = MLOPS_ENOMEM;
    mlk_fpack p;
    char err[160];
    if (off && (copy || !((uintptr_t)buf & 7))) {
        rc = mlk_fpack_open(copy ? copy : buf, len, &p, off, err, sizeof err);
        if (rc == 0 && !(*out = mlk_fpack_to_features(&p, off))) rc = MLOPS_ENOMEM;
        else if (rc != 0) rc = MLOPS_EPARSE;
    }
    free(copy);
    free(off);
    return rc;
}

int mlk_features_decode(const uint8_t *buf, size_t len, mlk_features **out)
{
    rb_t r = {buf, len, 0, 0};
    *out = NULL;
    if (mlk_fpack_is(buf, len)) return decode_packed(buf, len, out);
    const void *magic = take(&r, 4);
    if (!magic || memcmp(magic, "MLKX", 4) || get32(&r) != 1) return MLOPS_EPARSE;
    uint64_t n = get64(&r);
    if (r.err || n > len / 12) return MLOPS_EPARSE;
    mlk_features *f = calloc(1, sizeof *f);
    if (!f) return MLOPS_ENOMEM;
    f->nrows = n;
    f->row_id = dup_take(&r, n * 8);
    f->label = dup_take(&r, n * 4);
    uint32_t has_test = get32(&r);
    if (has_test > 1) r.err = 1;
    if (has_test) f->test = dup_take(&r, n);
    uint32_t has_csr = get32(&r);
    if (has_csr > 1) r.err = 1;
    if (has_csr && !r.err) {
        uint64_t ncols = get64(&r);
        f->csr = calloc(1, sizeof *f->csr);
        if (!f->csr) r.err = 1;
        else {
            f->csr->nrows = n;
            f->csr->ncols = ncols;
            f->csr->indptr = dup_take(&r, (n + 1) * 8);
            if (f->csr->indptr) {
                int64_t nnz = f->csr->indptr[n];
                if (f->csr->indptr[0] != 0 || nnz < 0 || (uint64_t)nnz > len) r.err = 1;
                for (uint64_t i = 0; !r.err && i < n; i++)
                    if (f->csr->indptr[i + 1] < f->csr->indptr[i]) r.err = 1;
                if (!r.err) {
                    f->csr->indices = dup_take(&r, (size_t)nnz * 4);
                    f->csr->data = dup_take(&r, (size_t)nnz * 8);
                    f->csr->nnz_cap = (size_t)nnz;
                    for (int64_t i = 0; !r.err && i < nnz; i++)
                        if (f->csr->indices[i] < 0 || (uint64_t)f->csr->indices[i] >= ncols) r.err = 1;
                }
            }
        }
    }
    f->n_dense = get64(&r);
    f->dense_type = (int)get32(&r);
    if (!r.err && f->n_dense) {
        if (f->n_dense > len || (f->dense_type != MLK_DENSE_F64 && f->dense_type != MLK_DENSE_F32)) r.err = 1;
        else if (n && f->n_dense > (len / n)) r.err = 1;
        else if (f->dense_type == MLK_DENSE_F32) f->dense32 = dup_take(&r, n * f->n_dense * 4);
        else f->dense64 = dup_take(&r, n * f->n_dense * 8);
    }
    if (r.err || r.at != r.n) {
        mlk_features_destroy(&f);
        return MLOPS_EPARSE;
    }
    *out = f;
    return 0;
}

mlk_features *mlk_features_select(const mlk_features *f, const uint8_t *sel, uint8_t want)
{
    size_t m = 0;
    for (size_t i = 0; i < f->nrows; i++) m += (sel[i] == want);
    mlk_features *o = mlk_features_new(m);
    if (!o) return NULL;
    size_t nnz = 0;
    if (f->csr)
        for (size_t i = 0; i < f->nrows; i++)
            if (sel[i] == want) nnz += (size_t)(f->csr->indptr[i + 1] - f->csr->indptr[i]);
    if (f->csr && !(o->csr = mlk_csr_new(m, f->csr->ncols, nnz))) goto fail;
    o->n_dense = f->n_dense;
    o->dense_type = f->dense_type;
    size_t es = f->dense_type == MLK_DENSE_F32 ? 4 : 8;
    uint8_t *dst = NULL;
    const uint8_t *src = f->dense_type == MLK_DENSE_F32 ? (const uint8_t *)f->dense32 : (const uint8_t *)f->dense64;
    if (f->n_dense) {
        dst = malloc((m ? m : 1) * f->n_dense * es);
        if (!dst) goto fail;
        if (f->dense_type == MLK_DENSE_F32) o->dense32 = (float *)dst;
        else o->dense64 = (double *)dst;
    }
    size_t w = 0, k = 0;
    for (size_t i = 0; i < f->nrows; i++) {
        if (sel[i] != want) continue;
        o->row_id[w] = f->row_id[i];
        o->label[w] = f->label[i];
        if (f->csr) {
            for (int64_t p = f->csr->indptr[i]; p < f->csr->indptr[i + 1]; p++) {
                o->csr->indices[k] = f->csr->indices[p];
                o->csr->data[k++] = f->csr->data[p];
            }
            o->csr->indptr[w + 1] = (int64_t)k;
        }
        if (f->n_dense) memcpy(dst + w * f->n_dense * es, src + i * f->n_dense * es, f->n_dense * es);
        w++;
    }
    return o;
fail:
    mlk_features_destroy(&o);
    return NULL;
}

int mlk_features_scale(mlk_features *f, const double *mean, const double *scale, size_t n)
{
    if (n != f->n_dense) return MLOPS_EINVAL;
    for (size_t i = 0; i < f->nrows; i++)
        for (size_t c = 0; c < n; c++) {
            if (f->dense_type == MLK_DENSE_F32) {
                float *v = &f->dense32[i * n + c];
                *v = (float)(((double)*v - mean[c]) / scale[c]);
            } else {
                double *v = &f->dense64[i * n + c];
                *v = (*v - mean[c]) / scale[c];
            }
        }
    return 0;
}

double *mlk_features_dense_f64(const mlk_features *f)
{
    size_t n = f->nrows * f->n_dense;
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (!d) return NULL;
    if (f->dense_type == MLK_DENSE_F32) for (size_t i = 0; i < n; i++) d[i] = f->dense32[i];
    else if (n) memcpy(d, f->dense64, n * sizeof *d);
    return d;
}

float *mlk_features_dense_f32(const mlk_features *f)
{
    size_t n = f->nrows * f->n_dense;
    float *d = malloc((n ? n : 1) * sizeof *d);
    if (!d) return NULL;
    if (f->dense_type == MLK_DENSE_F32) { if (n) memcpy(d, f->dense32, n * sizeof *d); }
    else for (size_t i = 0; i < n; i++) d[i] = (float)f->dense64[i];
    return d;
}
