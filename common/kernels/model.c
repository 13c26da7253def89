/* model.c: model parameters, averaging and byte form. See model.h for the
 * layout and the format; this file only adds the mechanics. Decoding
 * checks every length against the bytes left before reading, so a short
 * or garbage buffer is answered with MLOPS_EPARSE, never a crash. */
#include "model.h"
#include "err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MAGIC "MLKM"
#define MODEL_VERSION 1u
#define MODEL_HDR 64u
enum { FLAG_ADAGRAD = 1u, FLAG_W_SPARSE = 2u, FLAG_G_SPARSE = 4u };
enum { KIND_BINARY = 1u, KIND_MULTI = 2u };

/* Element count n_vec * dim, or 0 if the shape is not acceptable. */
static uint64_t model_params(uint32_t k, uint64_t nf, uint64_t nd)
{
    if (k < 2 || nf > MLK_MODEL_MAX_PARAMS || nd > MLK_MODEL_MAX_PARAMS) return 0;
    uint64_t dim = nf + nd;
    uint64_t nvec = k == 2 ? 1 : k;
    if (dim == 0 || nvec > MLK_MODEL_MAX_PARAMS || dim > MLK_MODEL_MAX_PARAMS / nvec) return 0;
    return dim * nvec;
}

mlk_model *mlk_model_new(uint32_t n_classes, uint64_t n_features, uint64_t n_dense,
                         int with_adagrad)
{
    uint64_t np = model_params(n_classes, n_features, n_dense);
    if (np == 0) return NULL;
    mlk_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n_classes = n_classes;
    m->n_vec = n_classes == 2 ? 1 : n_classes;
    m->n_features = n_features;
    m->n_dense = n_dense;
    m->dim = n_features + n_dense;
    m->t = 1;
    m->w = calloc((size_t)np, sizeof *m->w);
    m->b = calloc(m->n_vec, sizeof *m->b);
    if (!m->w || !m->b || (with_adagrad && mlk_model_enable_adagrad(m) != 0)) {
        mlk_model_destroy(&m);
        return NULL;
    }
    return m;
}

void mlk_model_destroy(mlk_model **pm)
{
    if (!pm || !*pm) return;
    mlk_model *m = *pm;
    free(m->w);
    free(m->b);
    free(m->G);
    free(m->Gb);
    free(m);
    *pm = NULL;
}

int mlk_model_enable_adagrad(mlk_model *m)
{
    if (m->G) return 0;
    m->G = calloc((size_t)(m->dim * m->n_vec), sizeof *m->G);
    m->Gb = calloc(m->n_vec, sizeof *m->Gb);
    if (!m->G || !m->Gb) {
        free(m->G);
        free(m->Gb);
        m->G = m->Gb = NULL;
        return MLOPS_ENOMEM;
    }
    return 0;
}

mlk_model *mlk_model_clone(const mlk_model *m)
{
    mlk_model *c = mlk_model_new(m->n_classes, m->n_features, m->n_dense, m->G != NULL);
    if (!c) return NULL;
    size_t np = (size_t)(m->dim * m->n_vec);
    memcpy(c->w, m->w, np * sizeof *c->w);
    memcpy(c->b, m->b, m->n_vec * sizeof *c->b);
    if (m->G) {
        memcpy(c->G, m->G, np * sizeof *c->G);
        memcpy(c->Gb, m->Gb, m->n_vec * sizeof *c->Gb);
    }
    c->t = m->t;
    c->n_seen = m->n_seen;
    return c;
}

/* Bits of a double are not all zero (keeps -0.0, unlike v != 0). */
static int bits_nonzero(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u != 0;
}

static uint64_t count_nnz(const double *v, uint64_t n)
{
    uint64_t c = 0;
    for (uint64_t i = 0; i < n; i++) c += (uint64_t)bits_nonzero(v[i]);
    return c;
}

uint64_t mlk_model_nnz(const mlk_model *m)
{
    return count_nnz(m->w, m->dim * m->n_vec);
}

/* acc[i] += c * src[i] for n elements. */
static void axpy(double *acc, const double *src, double c, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) acc[i] += c * src[i];
}

static void scale(double *v, double div, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) v[i] /= div;
}

int mlk_model_average(const mlk_model *const *ms, const uint64_t *counts, size_t n,
                      mlk_model **out, char *err, size_t errlen)
{
    *out = NULL;
    if (n == 0 || !ms || !counts)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "model average: no models given");
    int all_g = 1;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!ms[i]) return mlops_seterr(err, errlen, MLOPS_EINVAL, "model average: model %zu is NULL", i);
        if (ms[i]->n_classes != ms[0]->n_classes || ms[i]->n_features != ms[0]->n_features ||
            ms[i]->n_dense != ms[0]->n_dense)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "model average: model %zu has shape K=%u nf=%llu nd=%llu, "
                                "model 0 has K=%u nf=%llu nd=%llu",
                                i, ms[i]->n_classes, (unsigned long long)ms[i]->n_features,
                                (unsigned long long)ms[i]->n_dense, ms[0]->n_classes,
                                (unsigned long long)ms[0]->n_features,
                                (unsigned long long)ms[0]->n_dense);
        all_g = all_g && ms[i]->G != NULL;
        total += (double)counts[i];
    }
    if (total <= 0.0)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "model average: example counts sum to 0");
    mlk_model *a = mlk_model_new(ms[0]->n_classes, ms[0]->n_features, ms[0]->n_dense, all_g);
    if (!a) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "model average: out of memory");
    uint64_t np = a->dim * a->n_vec;
    a->t = 0;
    for (size_t i = 0; i < n; i++) {
        double c = (double)counts[i];
        axpy(a->w, ms[i]->w, c, np);
        axpy(a->b, ms[i]->b, c, a->n_vec);
        if (all_g) {
            axpy(a->G, ms[i]->G, c, np);
            axpy(a->Gb, ms[i]->Gb, c, a->n_vec);
        }
        if (ms[i]->t > a->t) a->t = ms[i]->t;
        a->n_seen += ms[i]->n_seen;
    }
    scale(a->w, total, np);
    scale(a->b, total, a->n_vec);
    if (all_g) {
        scale(a->G, total, np);
        scale(a->Gb, total, a->n_vec);
    }
    *out = a;
    return 0;
}

/* ---- encoding ------------------------------------------------------- */

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
    memcpy(p, v, n);
    return p + n;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v) { return put(p, &v, sizeof v); }
static uint8_t *put_u64(uint8_t *p, uint64_t v) { return put(p, &v, sizeof v); }

/* Bytes of a block of n values with nnz non-zeros, and whether sparse. */
static uint64_t block_size(uint64_t n, uint64_t nnz, int *sparse)
{
    uint64_t dense = n * 8, sp = 8 + nnz * 12;
    *sparse = sp < dense;
    return *sparse ? sp : dense;
}

static uint8_t *put_block(uint8_t *p, const double *v, uint64_t n, uint64_t nnz, int sparse)
{
    if (!sparse) return put(p, v, (size_t)n * sizeof *v);
    p = put_u64(p, nnz);
    uint8_t *pi = p, *pv = p + nnz * 4;
    for (uint64_t i = 0; i < n; i++) {
        if (!bits_nonzero(v[i])) continue;
        pi = put_u32(pi, (uint32_t)i);
        pv = put(pv, &v[i], sizeof v[i]);
    }
    return pv;
}

int mlk_model_encode(const mlk_model *m, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    uint64_t np = model_params(m->n_classes, m->n_features, m->n_dense);
    if (np == 0 || m->n_vec != (m->n_classes == 2 ? 1u : m->n_classes)) return MLOPS_EINVAL;
    int wsp = 0, gsp = 0;
    uint64_t wnnz = count_nnz(m->w, np), gnnz = m->G ? count_nnz(m->G, np) : 0;
    uint64_t payload = (uint64_t)m->n_vec * 8 + block_size(np, wnnz, &wsp);
    if (m->G) payload += (uint64_t)m->n_vec * 8 + block_size(np, gnnz, &gsp);
    uint8_t *buf = malloc((size_t)(MODEL_HDR + payload));
    if (!buf) return MLOPS_ENOMEM;
    uint32_t flags = (m->G ? FLAG_ADAGRAD : 0) | (wsp ? FLAG_W_SPARSE : 0) | (gsp ? FLAG_G_SPARSE : 0);
    uint8_t *p = put(buf, MODEL_MAGIC, 4);
    p = put_u32(p, MODEL_VERSION);
    p = put_u32(p, m->n_classes == 2 ? KIND_BINARY : KIND_MULTI);
    p = put_u32(p, m->n_classes);
    p = put_u64(p, m->n_features);
    p = put_u64(p, m->n_dense);
    p = put_u64(p, m->t);
    p = put_u64(p, m->n_seen);
    p = put_u32(p, flags);
    p = put_u32(p, 0);
    p = put_u64(p, payload);
    p = put(p, m->b, m->n_vec * sizeof *m->b);
    p = put_block(p, m->w, np, wnnz, wsp);
    if (m->G) {
        p = put(p, m->Gb, m->n_vec * sizeof *m->Gb);
        p = put_block(p, m->G, np, gnnz, gsp);
    }
    *out = buf;
    *outlen = (size_t)(p - buf);
    return 0;
}

/* ---- decoding ------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t left;
} reader;

static int take(reader *r, void *dst, size_t n)
{
    if (r->left < n) return -1;
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

/* Read n finite doubles into dst. */
static int take_f64s(reader *r, double *dst, uint64_t n)
{
    if (r->left / 8 < n) return -1;
    memcpy(dst, r->p, (size_t)n * 8);
    r->p += n * 8;
    r->left -= (size_t)n * 8;
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) return -2;
    return 0;
}

/* Read one block of n values into zeroed dst; 0, or a message in err. */
static int take_block(reader *r, double *dst, uint64_t n, int sparse, const char *what, char *err,
                      size_t errlen)
{
    if (!sparse) {
        int rc = take_f64s(r, dst, n);
        if (rc == -1) return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s block truncated", what);
        if (rc == -2) return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s has a non-finite value", what);
        return 0;
    }
    uint64_t nnz;
    if (take(r, &nnz, 8) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s nnz truncated", what);
    if (nnz > n || r->left / 12 < nnz)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s nnz %llu does not fit", what,
                            (unsigned long long)nnz);
    const uint8_t *pi = r->p, *pv = r->p + nnz * 4;
    int64_t prev = -1;
    for (uint64_t i = 0; i < nnz; i++) {
        uint32_t idx;
        double v;
        memcpy(&idx, pi + i * 4, 4);
        memcpy(&v, pv + i * 8, 8);
        if ((int64_t)idx <= prev || idx >= n)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "model: %s entry %llu has index %u (previous %lld, size %llu)", what,
                                (unsigned long long)i, idx, (long long)prev, (unsigned long long)n);
        if (!isfinite(v))
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s entry %llu is not finite",
                                what, (unsigned long long)i);
        dst[idx] = v;
        prev = idx;
    }
    r->p += nnz * 12;
    r->left -= (size_t)nnz * 12;
    return 0;
}

int mlk_model_decode(const uint8_t *buf, size_t len, mlk_model **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!buf || len < MODEL_HDR)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %zu bytes, header needs %u", len,
                            MODEL_HDR);
    reader r = {buf, len};
    char magic[4];
    uint32_t version, kind, k, flags, reserved;
    uint64_t nf, nd, t, seen, payload;
    take(&r, magic, 4);
    take(&r, &version, 4);
    take(&r, &kind, 4);
    take(&r, &k, 4);
    take(&r, &nf, 8);
    take(&r, &nd, 8);
    take(&r, &t, 8);
    take(&r, &seen, 8);
    take(&r, &flags, 4);
    take(&r, &reserved, 4);
    take(&r, &payload, 8);
    if (memcmp(magic, MODEL_MAGIC, 4) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: bad magic");
    if (version != MODEL_VERSION)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: unsupported version %u", version);
    if (kind != (k == 2 ? KIND_BINARY : KIND_MULTI))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: kind %u does not match K=%u", kind, k);
    uint64_t np = model_params(k, nf, nd);
    if (np == 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "model: bad shape K=%u n_features=%llu n_dense=%llu", k,
                            (unsigned long long)nf, (unsigned long long)nd);
    if (flags & ~(uint32_t)(FLAG_ADAGRAD | FLAG_W_SPARSE | FLAG_G_SPARSE) || reserved != 0 ||
        (!(flags & FLAG_ADAGRAD) && (flags & FLAG_G_SPARSE)))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: bad flags 0x%x", flags);
    if (t == 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: step counter t is 0");
    if (payload != r.left)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "model: header says %llu payload bytes, buffer has %zu",
                            (unsigned long long)payload, r.left);
    mlk_model *m = mlk_model_new(k, nf, nd, (flags & FLAG_ADAGRAD) != 0);
    if (!m) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "model: out of memory");
    m->t = t;
    m->n_seen = seen;
    int rc;
    if (take_f64s(&r, m->b, m->n_vec) != 0) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "model: intercepts truncated or not finite");
        goto fail;
    }
    if ((rc = take_block(&r, m->w, np, (flags & FLAG_W_SPARSE) != 0, "weights", err, errlen)) != 0)
        goto fail;
    if (m->G) {
        if (take_f64s(&r, m->Gb, m->n_vec) != 0) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "model: adagrad intercept sums bad");
            goto fail;
        }
        if ((rc = take_block(&r, m->G, np, (flags & FLAG_G_SPARSE) != 0, "adagrad sums", err,
                             errlen)) != 0)
            goto fail;
    }
    if (m->G) {
        for (uint64_t i = 0; i < np; i++)
            if (m->G[i] < 0.0) {
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "model: adagrad sum %llu is negative",
                                  (unsigned long long)i);
                goto fail;
            }
        for (uint32_t i = 0; i < m->n_vec; i++)
            if (m->Gb[i] < 0.0) {
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                  "model: adagrad intercept sum %u is negative", i);
                goto fail;
            }
    }
    if (r.left != 0) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %zu trailing bytes", r.left);
        goto fail;
    }
    *out = m;
    return 0;
fail:
    mlk_model_destroy(&m);
    return rc;
}

/* ---- averaging encoded models --------------------------------------- */

/* One block of an encoded model as its non-zero entries (a dense block
 * is scanned into this form; a sparse one is pointed at, unaligned). */
typedef struct {
    uint64_t nnz;
    const uint8_t *idx, *val; /* u32[nnz], f64[nnz] */
    uint32_t *own_idx;        /* for a dense block: the arrays made */
    double *own_val;
} sblock;

typedef struct {
    uint32_t k;
    uint64_t nf, nd, t, seen, np;
    int has_g;
    const uint8_t *b, *gb; /* f64[n_vec], unaligned */
    sblock w, g;
} smodel;

static void sblock_free(sblock *s)
{
    free(s->own_idx);
    free(s->own_val);
}

static int sblock_read(reader *r, sblock *s, uint64_t n, int sparse, int nonneg, const char *what,
                       char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (sparse) {
        if (take(r, &s->nnz, 8) != 0)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s nnz truncated", what);
        if (s->nnz > n || r->left / 12 < s->nnz)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s nnz %llu does not fit", what,
                                (unsigned long long)s->nnz);
        s->idx = r->p;
        s->val = r->p + s->nnz * 4;
        int64_t prev = -1;
        for (uint64_t i = 0; i < s->nnz; i++) {
            uint32_t idx;
            double v;
            memcpy(&idx, s->idx + i * 4, 4);
            memcpy(&v, s->val + i * 8, 8);
            if ((int64_t)idx <= prev || idx >= n)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s entry %llu has index %u", what,
                                    (unsigned long long)i, idx);
            if (!isfinite(v) || (nonneg && v < 0.0))
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s entry %llu is bad", what,
                                    (unsigned long long)i);
            prev = idx;
        }
        r->p += s->nnz * 12;
        r->left -= (size_t)s->nnz * 12;
        return 0;
    }
    if (r->left / 8 < n) return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s block truncated", what);
    const uint8_t *p = r->p;
    uint64_t nnz = 0;
    for (uint64_t i = 0; i < n; i++) {
        double v;
        memcpy(&v, p + i * 8, 8);
        if (!isfinite(v) || (nonneg && v < 0.0))
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %s value %llu is bad", what,
                                (unsigned long long)i);
        nnz += (uint64_t)bits_nonzero(v);
    }
    s->own_idx = malloc((nnz ? nnz : 1) * sizeof *s->own_idx);
    s->own_val = malloc((nnz ? nnz : 1) * sizeof *s->own_val);
    if (!s->own_idx || !s->own_val) {
        sblock_free(s);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "model: out of memory");
    }
    for (uint64_t i = 0, o = 0; i < n; i++) {
        double v;
        memcpy(&v, p + i * 8, 8);
        if (!bits_nonzero(v)) continue;
        s->own_idx[o] = (uint32_t)i;
        s->own_val[o++] = v;
    }
    s->nnz = nnz;
    s->idx = (const uint8_t *)s->own_idx;
    s->val = (const uint8_t *)s->own_val;
    r->p += n * 8;
    r->left -= (size_t)n * 8;
    return 0;
}

static int smodel_read(const uint8_t *buf, size_t len, smodel *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (!buf || len < MODEL_HDR)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %zu bytes, header needs %u", len, MODEL_HDR);
    reader r = {buf, len};
    char magic[4];
    uint32_t version, kind, flags, reserved;
    uint64_t payload;
    take(&r, magic, 4);
    take(&r, &version, 4);
    take(&r, &kind, 4);
    take(&r, &m->k, 4);
    take(&r, &m->nf, 8);
    take(&r, &m->nd, 8);
    take(&r, &m->t, 8);
    take(&r, &m->seen, 8);
    take(&r, &flags, 4);
    take(&r, &reserved, 4);
    take(&r, &payload, 8);
    m->np = model_params(m->k, m->nf, m->nd);
    if (memcmp(magic, MODEL_MAGIC, 4) != 0 || version != MODEL_VERSION ||
        kind != (m->k == 2 ? KIND_BINARY : KIND_MULTI) || m->np == 0 || m->t == 0 || reserved != 0 ||
        (flags & ~(uint32_t)(FLAG_ADAGRAD | FLAG_W_SPARSE | FLAG_G_SPARSE)) ||
        (!(flags & FLAG_ADAGRAD) && (flags & FLAG_G_SPARSE)) || payload != r.left)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: bad header");
    uint32_t nvec = m->k == 2 ? 1 : m->k;
    m->has_g = (flags & FLAG_ADAGRAD) != 0;
    if (r.left / 8 < nvec) return mlops_seterr(err, errlen, MLOPS_EPARSE, "model: intercepts truncated");
    m->b = r.p;
    r.p += nvec * 8;
    r.left -= nvec * 8;
    int rc = sblock_read(&r, &m->w, m->np, (flags & FLAG_W_SPARSE) != 0, 0, "weights", err, errlen);
    if (!rc && m->has_g) {
        if (r.left / 8 < nvec) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "model: adagrad intercepts truncated");
        else {
            m->gb = r.p;
            r.p += nvec * 8;
            r.left -= nvec * 8;
            rc = sblock_read(&r, &m->g, m->np, (flags & FLAG_G_SPARSE) != 0, 1, "adagrad sums", err, errlen);
        }
    }
    for (uint32_t i = 0; !rc && i < nvec; i++) {
        double v, g = 0.0;
        memcpy(&v, m->b + i * 8, 8);
        if (m->gb) memcpy(&g, m->gb + i * 8, 8);
        if (!isfinite(v) || !isfinite(g) || g < 0.0)
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "model: intercept %u is bad", i);
    }
    if (!rc && r.left != 0) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "model: %zu trailing bytes", r.left);
    if (rc) {
        sblock_free(&m->w);
        sblock_free(&m->g);
    }
    return rc;
}

/* The weighted mean of block `which` over the models, as the dense
 * average computes it: acc = 0, acc += c_i * v_i in model order (an
 * absent entry is +0.0, as in the dense array), then acc / total; only
 * the indexes some model has are visited, which is every index whose
 * result can have non-zero bits. Sets *nnz, *idx and *val (malloc'd). */
static int sblock_average(const smodel *ms, size_t n, int which, const double *cs, double total,
                          uint64_t *nnz, uint32_t **idx, double **val)
{
    uint64_t cap = 0;
    for (size_t i = 0; i < n; i++) cap += which ? ms[i].g.nnz : ms[i].w.nnz;
    uint64_t *cur = calloc(n, sizeof *cur);
    *idx = malloc((cap ? cap : 1) * sizeof **idx);
    *val = malloc((cap ? cap : 1) * sizeof **val);
    if (!cur || !*idx || !*val) {
        free(cur);
        return MLOPS_ENOMEM;
    }
    uint64_t out = 0;
    for (;;) {
        uint64_t next = UINT64_MAX;
        for (size_t i = 0; i < n; i++) {
            const sblock *b = which ? &ms[i].g : &ms[i].w;
            if (cur[i] == b->nnz) continue;
            uint32_t ix;
            memcpy(&ix, b->idx + cur[i] * 4, 4);
            if (ix < next) next = ix;
        }
        if (next == UINT64_MAX) break;
        double acc = 0.0;
        for (size_t i = 0; i < n; i++) {
            const sblock *b = which ? &ms[i].g : &ms[i].w;
            double v = 0.0;
            uint32_t ix;
            if (cur[i] < b->nnz && (memcpy(&ix, b->idx + cur[i] * 4, 4), ix == next)) {
                memcpy(&v, b->val + cur[i] * 8, 8);
                cur[i]++;
            }
            acc += cs[i] * v;
        }
        acc /= total;
        if (!bits_nonzero(acc)) continue;
        (*idx)[out] = (uint32_t)next;
        (*val)[out++] = acc;
    }
    free(cur);
    *nnz = out;
    return 0;
}

static uint8_t *put_sblock(uint8_t *p, uint64_t np, uint64_t nnz, const uint32_t *idx, const double *val,
                           int sparse)
{
    if (sparse) {
        p = put_u64(p, nnz);
        p = put(p, idx, (size_t)nnz * 4);
        return put(p, val, (size_t)nnz * 8);
    }
    memset(p, 0, (size_t)np * 8);
    for (uint64_t i = 0; i < nnz; i++) memcpy(p + (size_t)idx[i] * 8, &val[i], 8);
    return p + np * 8;
}

int mlk_model_average_encoded(const uint8_t *const *bufs, const size_t *lens, const uint64_t *counts,
                              size_t n, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (n == 0 || !bufs || !lens || !counts)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "model average: no models given");
    smodel *ms = calloc(n, sizeof *ms);
    double *cs = malloc(n * sizeof *cs);
    uint32_t *wi = NULL, *gi = NULL;
    double *wv = NULL, *gv = NULL;
    size_t nread = 0;
    int rc = 0;
    if (!ms || !cs) rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "model average: out of memory");
    double total = 0.0;
    int all_g = 1;
    for (; !rc && nread < n; nread++) {
        char why[256];
        if ((rc = smodel_read(bufs[nread], lens[nread], &ms[nread], why, sizeof why)) != 0) {
            rc = mlops_seterr(err, errlen, rc, "model average: model %zu: %s", nread, why);
            break;
        }
        if (ms[nread].k != ms[0].k || ms[nread].nf != ms[0].nf || ms[nread].nd != ms[0].nd) {
            nread++;
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "model average: model %zu has another shape than model 0",
                              nread - 1);
            break;
        }
        all_g = all_g && ms[nread].has_g;
        cs[nread] = (double)counts[nread];
        total += cs[nread];
    }
    if (!rc && total <= 0.0)
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "model average: example counts sum to 0");
    uint64_t wnnz = 0, gnnz = 0;
    if (!rc && (sblock_average(ms, n, 0, cs, total, &wnnz, &wi, &wv) != 0 ||
                (all_g && sblock_average(ms, n, 1, cs, total, &gnnz, &gi, &gv) != 0)))
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "model average: out of memory");
    if (!rc) {
        uint32_t nvec = ms[0].k == 2 ? 1 : ms[0].k;
        uint64_t np = ms[0].np, t = 0, seen = 0;
        for (size_t i = 0; i < n; i++) {
            if (ms[i].t > t) t = ms[i].t;
            seen += ms[i].seen;
        }
        int wsp = 0, gsp = 0;
        uint64_t payload = (uint64_t)nvec * 8 + block_size(np, wnnz, &wsp);
        if (all_g) payload += (uint64_t)nvec * 8 + block_size(np, gnnz, &gsp);
        uint8_t *buf = malloc((size_t)(MODEL_HDR + payload));
        if (!buf) rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "model average: out of memory");
        else {
            uint32_t flags = (all_g ? FLAG_ADAGRAD : 0) | (wsp ? FLAG_W_SPARSE : 0) | (gsp ? FLAG_G_SPARSE : 0);
            uint8_t *p = put(buf, MODEL_MAGIC, 4);
            p = put_u32(p, MODEL_VERSION);
            p = put_u32(p, ms[0].k == 2 ? KIND_BINARY : KIND_MULTI);
            p = put_u32(p, ms[0].k);
            p = put_u64(p, ms[0].nf);
            p = put_u64(p, ms[0].nd);
            p = put_u64(p, t);
            p = put_u64(p, seen);
            p = put_u32(p, flags);
            p = put_u32(p, 0);
            p = put_u64(p, payload);
            /* the intercepts (and their sums) are short: dense, as mlk_model_average */
            for (int pass = 0; pass < 1 + all_g; pass++) {
                for (uint32_t k = 0; k < nvec; k++) {
                    double acc = 0.0;
                    for (size_t i = 0; i < n; i++) {
                        double v;
                        memcpy(&v, (pass ? ms[i].gb : ms[i].b) + k * 8, 8);
                        acc += cs[i] * v;
                    }
                    acc /= total;
                    p = put(p, &acc, 8);
                }
                p = pass ? put_sblock(p, np, gnnz, gi, gv, gsp) : put_sblock(p, np, wnnz, wi, wv, wsp);
            }
            *out = buf;
            *outlen = (size_t)(p - buf);
        }
    }
    for (size_t i = 0; ms && i < nread; i++) {
        sblock_free(&ms[i].w);
        sblock_free(&ms[i].g);
    }
    free(ms);
    free(cs);
    free(wi);
    free(wv);
    free(gi);
    free(gv);
    return rc;
}

/* ---- compact models ------------------------------------------------- */

mlk_cmodel *mlk_cmodel_new(uint32_t n_classes, uint64_t n_features, uint64_t n_dense, int with_adagrad)
{
    if (model_params(n_classes, n_features, n_dense) == 0) return NULL;
    mlk_cmodel *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n_classes = n_classes;
    c->n_vec = n_classes == 2 ? 1 : n_classes;
    c->n_features = n_features;
    c->n_dense = n_dense;
    c->dim = n_features + n_dense;
    c->t = 1;
    c->m = (size_t)n_dense;
    c->in = malloc((c->m ? c->m : 1) * sizeof *c->in);
    c->w = calloc(c->m * c->n_vec + 1, sizeof *c->w);
    c->b = calloc(c->n_vec, sizeof *c->b);
    if (!c->in || !c->w || !c->b || (with_adagrad && mlk_cmodel_enable_adagrad(c) != 0)) {
        mlk_cmodel_destroy(&c);
        return NULL;
    }
    for (size_t l = 0; l < c->m; l++) c->in[l] = (uint32_t)(n_features + l);
    return c;
}

void mlk_cmodel_destroy(mlk_cmodel **pc)
{
    if (!pc || !*pc) return;
    mlk_cmodel *c = *pc;
    free(c->in);
    free(c->w);
    free(c->b);
    free(c->G);
    free(c->Gb);
    free(c);
    *pc = NULL;
}

int mlk_cmodel_enable_adagrad(mlk_cmodel *c)
{
    if (c->G) return 0;
    c->G = calloc(c->m * c->n_vec + 1, sizeof *c->G);
    c->Gb = calloc(c->n_vec, sizeof *c->Gb);
    if (!c->G || !c->Gb) {
        free(c->G);
        free(c->Gb);
        c->G = c->Gb = NULL;
        return MLOPS_ENOMEM;
    }
    return 0;
}

/* dst (m' * kv, zeroed) gets src's rows at their places in the new list */
static void cm_move(double *dst, const double *src, const size_t *to, size_t mold, size_t kv)
{
    for (size_t l = 0; l < mold; l++) memcpy(dst + to[l] * kv, src + l * kv, kv * sizeof *dst);
}

int mlk_cmodel_reindex(mlk_cmodel *c, const uint32_t *in, size_t m)
{
    size_t kv = c->n_vec, *to = malloc((c->m ? c->m : 1) * sizeof *to);
    if (!to) return MLOPS_ENOMEM;
    size_t j = 0;
    for (size_t l = 0; l < c->m; l++) { /* merge: where each held input goes */
        while (j < m && in[j] < c->in[l]) j++;
        if (j == m || in[j] != c->in[l]) {
            free(to);
            return MLOPS_EINVAL;
        }
        to[l] = j++;
    }
    for (size_t l = 1; l < m; l++)
        if (in[l] <= in[l - 1]) {
            free(to);
            return MLOPS_EINVAL;
        }
    if (m && in[m - 1] >= c->dim) {
        free(to);
        return MLOPS_EINVAL;
    }
    uint32_t *nin = malloc((m ? m : 1) * sizeof *nin);
    double *nw = calloc(m * kv + 1, sizeof *nw), *ng = c->G ? calloc(m * kv + 1, sizeof *ng) : NULL;
    if (!nin || !nw || (c->G && !ng)) {
        free(to);
        free(nin);
        free(nw);
        free(ng);
        return MLOPS_ENOMEM;
    }
    memcpy(nin, in, m * sizeof *nin);
    cm_move(nw, c->w, to, c->m, kv);
    if (c->G) cm_move(ng, c->G, to, c->m, kv);
    free(to);
    free(c->in);
    free(c->w);
    free(c->G);
    c->in = nin;
    c->w = nw;
    c->G = ng;
    c->m = m;
    return 0;
}

int mlk_cmodel_decode(const uint8_t *buf, size_t len, mlk_cmodel **out, char *err, size_t errlen)
{
    *out = NULL;
    smodel s;
    int rc = smodel_read(buf, len, &s, err, errlen);
    if (rc) return rc;
    uint32_t kv = s.k == 2 ? 1 : s.k;
    mlk_cmodel *c = calloc(1, sizeof *c);
    /* inputs: those of the weights and of the sums (each list increasing), then the dense ones */
    size_t cap = (size_t)(s.w.nnz + s.g.nnz + s.nd);
    if (c) c->in = malloc((cap ? cap : 1) * sizeof *c->in);
    if (!c || !c->in) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "model: out of memory");
        goto done;
    }
    c->n_classes = s.k;
    c->n_vec = kv;
    c->n_features = s.nf;
    c->n_dense = s.nd;
    c->dim = s.nf + s.nd;
    c->t = s.t;
    c->n_seen = s.seen;
    uint64_t iw = 0, ig = 0;
    size_t m = 0;
    for (;;) {
        uint64_t jw = UINT64_MAX, jg = UINT64_MAX;
        uint32_t ix;
        if (iw < s.w.nnz) jw = (memcpy(&ix, s.w.idx + iw * 4, 4), ix / kv);
        if (ig < s.g.nnz) jg = (memcpy(&ix, s.g.idx + ig * 4, 4), ix / kv);
        uint64_t j = jw < jg ? jw : jg;
        if (j >= s.nf) break;
        c->in[m++] = (uint32_t)j;
        while (iw < s.w.nnz && (memcpy(&ix, s.w.idx + iw * 4, 4), ix / kv == j)) iw++;
        while (ig < s.g.nnz && (memcpy(&ix, s.g.idx + ig * 4, 4), ix / kv == j)) ig++;
    }
    for (uint64_t j = 0; j < s.nd; j++) c->in[m++] = (uint32_t)(s.nf + j);
    c->m = m;
    c->w = calloc(m * kv + 1, sizeof *c->w);
    c->b = malloc(kv * sizeof *c->b);
    if (!c->w || !c->b || (s.has_g && mlk_cmodel_enable_adagrad(c) != 0)) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "model: out of memory");
        goto done;
    }
    memcpy(c->b, s.b, kv * sizeof *c->b);
    if (s.has_g) memcpy(c->Gb, s.gb, kv * sizeof *c->Gb);
    /* scatter each block's entries to their local places: a merge, both are increasing */
    for (int pass = 0; pass < 1 + s.has_g; pass++) {
        const sblock *bl = pass ? &s.g : &s.w;
        double *dst = pass ? c->G : c->w;
        size_t l = 0;
        for (uint64_t i = 0; i < bl->nnz; i++) {
            uint32_t ix;
            memcpy(&ix, bl->idx + i * 4, 4);
            while (c->in[l] != ix / kv) l++;
            memcpy(&dst[l * kv + ix % kv], bl->val + i * 8, 8);
        }
    }
    *out = c;
    c = NULL;
done:
    sblock_free(&s.w);
    sblock_free(&s.g);
    mlk_cmodel_destroy(&c);
    return rc;
}

/* Values of a compact block whose bits are not all zero. */
static uint64_t cm_nnz(const mlk_cmodel *c, const double *v)
{
    return count_nnz(v, (uint64_t)c->m * c->n_vec);
}

/* A compact block in the model's block form (model.h): dense, or the
 * non-zero entries by increasing element index, which the increasing
 * input list gives in order. */
static uint8_t *put_cblock(uint8_t *p, const mlk_cmodel *c, const double *v, uint64_t np, uint64_t nnz,
                           int sparse)
{
    size_t kv = c->n_vec;
    if (!sparse) {
        memset(p, 0, (size_t)np * 8);
        for (size_t l = 0; l < c->m; l++) memcpy(p + (size_t)c->in[l] * kv * 8, v + l * kv, kv * 8);
        return p + np * 8;
    }
    p = put_u64(p, nnz);
    uint8_t *pi = p, *pv = p + nnz * 4;
    for (size_t l = 0; l < c->m; l++)
        for (size_t k = 0; k < kv; k++) {
            double x = v[l * kv + k];
            if (!bits_nonzero(x)) continue;
            pi = put_u32(pi, (uint32_t)(c->in[l] * kv + k));
            pv = put(pv, &x, 8);
        }
    return pv;
}

int mlk_cmodel_encode(const mlk_cmodel *c, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    uint64_t np = model_params(c->n_classes, c->n_features, c->n_dense);
    if (np == 0 || c->n_vec != (c->n_classes == 2 ? 1u : c->n_classes)) return MLOPS_EINVAL;
    int wsp = 0, gsp = 0;
    uint64_t wnnz = cm_nnz(c, c->w), gnnz = c->G ? cm_nnz(c, c->G) : 0;
    uint64_t payload = (uint64_t)c->n_vec * 8 + block_size(np, wnnz, &wsp);
    if (c->G) payload += (uint64_t)c->n_vec * 8 + block_size(np, gnnz, &gsp);
    uint8_t *buf = malloc((size_t)(MODEL_HDR + payload));
    if (!buf) return MLOPS_ENOMEM;
    uint32_t flags = (c->G ? FLAG_ADAGRAD : 0) | (wsp ? FLAG_W_SPARSE : 0) | (gsp ? FLAG_G_SPARSE : 0);
    uint8_t *p = put(buf, MODEL_MAGIC, 4);
    p = put_u32(p, MODEL_VERSION);
    p = put_u32(p, c->n_classes == 2 ? KIND_BINARY : KIND_MULTI);
    p = put_u32(p, c->n_classes);
    p = put_u64(p, c->n_features);
    p = put_u64(p, c->n_dense);
    p = put_u64(p, c->t);
    p = put_u64(p, c->n_seen);
    p = put_u32(p, flags);
    p = put_u32(p, 0);
    p = put_u64(p, payload);
    p = put(p, c->b, c->n_vec * sizeof *c->b);
    p = put_cblock(p, c, c->w, np, wnnz, wsp);
    if (c->G) {
        p = put(p, c->Gb, c->n_vec * sizeof *c->Gb);
        p = put_cblock(p, c, c->G, np, gnnz, gsp);
    }
    *out = buf;
    *outlen = (size_t)(p - buf);
    return 0;
}
