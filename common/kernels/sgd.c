/* sgd.c: SGD training, prediction and the full-batch objective of the
 * logistic-regression model. See sgd.h for the update rules.
 *
 * Three training loops share the scoring and gradient helpers: one row
 * per step with plain SGD (the hot path for hashed data: O(nnz * n_vec)
 * per row, L2 through the weight scale), one row per step with adagrad,
 * and mini-batches, where the dense block goes through dgemm. They run
 * on a compact model (model.h) with the shard's columns renumbered to its
 * inputs (train_core); mlk_sgd_train gathers a dense model's weights into
 * one and puts them back. During plain training m->w holds v with the
 * true weights w = wscale * v; the scale is folded back into m->w (and
 * into the rest of a dense model's array) before returning. */
#include "sgd.h"
#include "err.h"
#include "sgd_inline.h"
#include "fpack.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PREDICT_BLOCK 256  /* rows per dgemm when predicting */

void mlk_sgd_opts_default(mlk_sgd_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lr = MLK_LR_OPTIMAL;
    o->alpha = 1e-4;
    o->eta0 = 0.01;
    o->power_t = 0.5;
    o->intercept_decay = -1.0;
    o->batch_size = 1;
    o->epochs = 5;
    o->shuffle = 1;
}

mlk_lr mlk_sgd_lr_parse(const char *name)
{
    if (!name) return (mlk_lr)0;
    if (strcmp(name, "optimal") == 0) return MLK_LR_OPTIMAL;
    if (strcmp(name, "constant") == 0) return MLK_LR_CONSTANT;
    if (strcmp(name, "invscaling") == 0) return MLK_LR_INVSCALING;
    if (strcmp(name, "adagrad") == 0) return MLK_LR_ADAGRAD;
    return (mlk_lr)0;
}

/* ---- data access ---------------------------------------------------- */

/* The shard as flat pointers, plus the model shape it is used with. */
typedef struct {
    size_t n, nf, nd, kv;
    const int64_t *indptr; /* NULL if no hashed part */
    const int32_t *ind;
    const double *val;
    const double *dense; /* NULL if nd == 0 */
} rows;

/* The shape of a model the rows are checked against. */
typedef struct {
    uint32_t n_classes, n_vec;
    uint64_t n_features, n_dense;
} mshape;

/* Check d against a model of shape *m and fill r; need_y: 1 every
 * row's label, 2 those of the rows training does not skip. */
static int rows_init(rows *r, const mshape *m, const mlk_sgd_data *d, int need_y, const uint8_t *skip,
                     char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!d) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    r->n = d->nrows;
    r->nf = (size_t)m->n_features;
    r->nd = (size_t)m->n_dense;
    r->kv = m->n_vec;
    if (d->n_dense != r->nd || (r->nd > 0 && !d->dense))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: data has %zu dense columns%s, model %zu",
                            d->n_dense, (r->nd > 0 && !d->dense) ? " (no buffer)" : "", r->nd);
    if ((r->nf > 0) != (d->X != NULL))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: hashed part %s but model has %zu hashed features",
                            d->X ? "given" : "absent", r->nf);
    if (d->X) {
        const mlk_csr *X = d->X;
        if (X->nrows != r->n || X->ncols != r->nf)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "sgd: CSR is %zu x %zu, expected %zu x %zu", X->nrows, X->ncols,
                                r->n, r->nf);
        if (!X->indptr || X->indptr[0] != 0)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: CSR indptr[0] is not 0");
        for (size_t i = 0; i < r->n; i++)
            if (X->indptr[i + 1] < X->indptr[i])
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: CSR indptr decreases at row %zu", i);
        int64_t nnz = X->indptr[r->n];
        if (nnz > 0 && (!X->indices || !X->data))
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: CSR has %lld entries but no buffers",
                                (long long)nnz);
        unsigned bad = 0; /* one branch-free pass (vectorised), then locate */
        for (int64_t p = 0; p < nnz; p++) bad |= (uint64_t)(uint32_t)X->indices[p] >= r->nf;
        for (int64_t p = 0; bad && p < nnz; p++)
            if (X->indices[p] < 0 || (size_t)X->indices[p] >= r->nf)
                return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                    "sgd: CSR entry %lld has column %d, n_features %zu",
                                    (long long)p, X->indices[p], r->nf);
        r->indptr = X->indptr;
        r->ind = X->indices;
        r->val = X->data;
    }
    r->dense = r->nd ? d->dense : NULL;
    if (need_y) {
        if (r->n > 0 && !d->y) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: no labels");
        for (size_t i = 0; i < r->n; i++)
            if ((need_y == 1 || !skip || !skip[i]) && (d->y[i] < 0 || (uint32_t)d->y[i] >= m->n_classes))
                return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                    "sgd: row %zu has label %d, classes are 0..%u", i, d->y[i],
                                    m->n_classes - 1);
    }
    return 0;
}

/* One row as pointers: its hashed entries, dense values and label,
 * whether it lives in the CSR/dense/label arrays or in a packed record. */
typedef struct {
    const int32_t *ind;
    const double *val;  /* the values, or NULL when they are held as valf */
    const float *valf;  /* a packed record's values, each exactly a double */
    size_t nnz;
    const double *x; /* nd dense values (NULL if nd == 0) */
    int32_t y;
} row_view;

/* Row i of the shard arrays (y = 0 when there are no labels). */
static inline row_view row_at(const rows *r, const int32_t *y, size_t i)
{
    row_view v = {NULL, NULL, NULL, 0, NULL, y ? y[i] : 0};
    if (r->indptr) {
        int64_t p = r->indptr[i];
        v.ind = r->ind + p;
        v.val = r->val + p;
        v.nnz = (size_t)(r->indptr[i + 1] - p);
    }
    if (r->nd) v.x = r->dense + i * r->nd;
    return v;
}

/* Value p of a row: exact either way, so the arithmetic is the same. */
static inline double rv_val(const row_view *rw, size_t p)
{
    return rw->valf ? (double)rw->valf[p] : rw->val[p];
}

/* z[k] = sum_j x_j v[j*kv + k] over one row (no scale, no intercept). */
static inline void row_dot(const rows *r, const double *v, const row_view *rw, double *z)
{
    size_t kv = r->kv;
    if (kv == 1) {
        double s = 0.0;
        for (size_t p = 0; p < rw->nnz; p++) s += v[rw->ind[p]] * rv_val(rw, p);
        const double *vd = v + r->nf;
        for (size_t j = 0; j < r->nd; j++) s += vd[j] * rw->x[j];
        z[0] = s;
        return;
    }
    for (size_t k = 0; k < kv; k++) z[k] = 0.0;
    for (size_t p = 0; p < rw->nnz; p++) {
        const double *vj = v + (size_t)rw->ind[p] * kv;
        double x = rv_val(rw, p);
        for (size_t k = 0; k < kv; k++) z[k] += vj[k] * x;
    }
    for (size_t j = 0; j < r->nd; j++) {
        const double *vj = v + (r->nf + j) * kv;
        double x = rw->x[j];
        for (size_t k = 0; k < kv; k++) z[k] += vj[k] * x;
    }
}

/* v[j*kv + k] += x_j * u[k] over one row (u already divided by wscale). */
static inline void row_axpy(const rows *r, double *v, const row_view *rw, const double *u)
{
    size_t kv = r->kv;
    if (kv == 1) {
        for (size_t p = 0; p < rw->nnz; p++) v[rw->ind[p]] += rv_val(rw, p) * u[0];
        double *vd = v + r->nf;
        for (size_t j = 0; j < r->nd; j++) vd[j] += rw->x[j] * u[0];
        return;
    }
    for (size_t p = 0; p < rw->nnz; p++) {
        double *vj = v + (size_t)rw->ind[p] * kv;
        double x = rv_val(rw, p);
        for (size_t k = 0; k < kv; k++) vj[k] += x * u[k];
    }
    for (size_t j = 0; j < r->nd; j++) {
        double *vj = v + (r->nf + j) * kv;
        double x = rw->x[j];
        for (size_t k = 0; k < kv; k++) vj[k] += x * u[k];
    }
}

/* ---- packed rows ---------------------------------------------------- */

/* For shuffled per-row training each row is copied once per call into
 * one record: i32 label, u32 nnz, i32 ind[nnz], the values (f32[nnz]
 * when every value of the shard is exactly a float, as hashed counts
 * are, else f64[nnz] after padding to 8 bytes), padding to 8, f64
 * dense[nd]. A random visit then touches one or two adjacent cache lines
 * instead of five scattered ones (indptr, indices, data, dense, label),
 * and the shuffled array holds record offsets, so there is no indptr
 * lookup either; a row of 3 hashed values and 4 dense ones is 64 bytes,
 * one line. The visiting order and the values are unchanged. The
 * layout is fpack.h's, which the featurize task writes once per shard
 * (shard-local columns), so an epoch over such a shard reads its
 * records in place (mlk_sgd_train_packed) instead of packing. */
static inline row_view rec_at(const uint8_t *rec, size_t nd, int f32)
{
    row_view v;
    uint32_t nnz;
    memcpy(&v.y, rec, 4);
    memcpy(&nnz, rec + 4, 4);
    v.nnz = nnz;
    v.ind = (const int32_t *)(const void *)(rec + 8);
    v.val = f32 ? NULL : (const double *)(const void *)(rec + mlk_rec_vals_at(v.nnz, 0));
    v.valf = f32 ? (const float *)(const void *)(rec + mlk_rec_vals_at(v.nnz, 1)) : NULL;
    v.x = nd ? (const double *)(const void *)(rec + mlk_rec_dense_at(v.nnz, f32)) : NULL;
    return v;
}

/* A large buffer for random access: 2 MiB aligned and, on Linux, marked
 * for transparent huge pages, so that random visits do not also miss the
 * TLB on every row and the first touch faults 512 times less often. */
#define HUGE_PAGE ((size_t)2 << 20)
static void *big_alloc(size_t n)
{
    size_t len = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, len ? len : HUGE_PAGE);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, len, MADV_HUGEPAGE); /* a hint; failure is harmless */
#endif
    return p;
}

/* ---- the shard's inputs, numbered 0..m-1 ----------------------------- */

/* The hashed inputs a call trains (the shard's, and a compact model's)
 * as a bitmap with the count of set bits before each word: the local
 * index of input j is its rank among them, one popcount away. Each
 * word sits beside its count (tab[2i], tab[2i+1]), so a rank reads one
 * cache line, not two: the renumbering of a shard's entries is a random
 * read per entry, and half of them missed L2 with the two arrays apart.
 * The table is 2 nf bits (256 KiB for 2^20). */
typedef struct {
    uint64_t *tab; /* word i at 2i, the set bits before it at 2i + 1 */
    size_t nw, mh; /* words, set bits */
} inset;

static void inset_free(inset *s)
{
    free(s->tab);
}

static inline int inset_has(const inset *s, uint32_t j)
{
    return (int)((s->tab[2 * (j >> 6)] >> (j & 63)) & 1);
}

static inline int32_t inset_rank(const inset *s, uint32_t j)
{
    const uint64_t *e = s->tab + 2 * (j >> 6);
    uint64_t wd = e[0] & ((UINT64_C(1) << (j & 63)) - 1);
    return (int32_t)((uint32_t)e[1] + (uint32_t)__builtin_popcountll(wd));
}

/* An empty set over nf inputs. 0 or MLOPS_ENOMEM. */
static int inset_init(inset *s, size_t nf)
{
    memset(s, 0, sizeof *s);
    s->nw = nf / 64 + 1;
    s->tab = calloc(2 * s->nw, sizeof *s->tab);
    return s->tab ? 0 : MLOPS_ENOMEM;
}

static inline void inset_add(inset *s, uint32_t j)
{
    s->tab[2 * (j >> 6)] |= UINT64_C(1) << (j & 63);
}

/* The prefix counts, once every input is added. */
static void inset_finish(inset *s)
{
    uint64_t acc = 0;
    for (size_t i = 0; i < s->nw; i++) {
        s->tab[2 * i + 1] = acc;
        acc += (uint64_t)__builtin_popcountll(s->tab[2 * i]);
    }
    s->mh = (size_t)acc;
}

/* The set of r's hashed columns and the hashed inputs of c (if any). */
static int inset_build(inset *s, const rows *r, const mlk_cmodel *c)
{
    if (inset_init(s, r->nf) != 0) return MLOPS_ENOMEM;
    int64_t nnz = r->indptr ? r->indptr[r->n] : 0;
    for (int64_t p = 0; p < nnz; p++) inset_add(s, (uint32_t)r->ind[p]);
    for (size_t l = 0; c && l < c->m && c->in[l] < r->nf; l++) inset_add(s, c->in[l]);
    inset_finish(s);
    return 0;
}

/* The global inputs of the set, then the nd dense ones (malloc'd, mh + nd). */
static uint32_t *inset_list(const inset *s, size_t nf, size_t nd)
{
    uint32_t *in = malloc((s->mh + nd + 1) * sizeof *in);
    if (!in) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < s->nw; i++)
        for (uint64_t wd = s->tab[2 * i]; wd; wd &= wd - 1) in[o++] = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(wd));
    for (size_t j = 0; j < nd; j++) in[o++] = (uint32_t)(nf + j);
    return in;
}

/* Pack the rows keep[0..nk-1] (keep NULL: all rows, nk = r->n), their
 * hashed columns renumbered by rk (if non-NULL); off[0..nk-1] gets each
 * packed row's record offset, in packing order. A record of at most 64 bytes
 * never straddles two cache lines (a gap is left before it if it
 * would), so a visit of one costs one line and one prefetch; *one_line
 * says every record is that small. NULL if out of memory or a row has
 * more than UINT32_MAX entries (then the caller trains from the arrays
 * directly). Each row is written with fixed-size stores, no memcpy call
 * of a variable length: the copy is the cost here, not the arithmetic. */
#define RANK_AHEAD 64
static uint8_t *pack_rows(const rows *r, const int32_t *y, const size_t *keep, size_t nk, size_t *off,
                          const inset *rk, int *f32, int *one_line)
{
    int64_t nnz_all = r->indptr ? r->indptr[r->n] : 0;
    unsigned inexact = 0;
    for (int64_t p = 0; p < nnz_all; p++) inexact |= (double)(float)r->val[p] != r->val[p];
    *f32 = !inexact;
    size_t total = 0, nd = r->nd;
    int small = 1;
    for (size_t i = 0; i < nk; i++) {
        size_t row = keep ? keep[i] : i;
        size_t nnz = r->indptr ? (size_t)(r->indptr[row + 1] - r->indptr[row]) : 0;
        if (nnz > UINT32_MAX) return NULL;
        size_t sz = mlk_rec_size(nnz, nd, *f32);
        total = mlk_rec_place(total, sz);
        small &= sz <= 64;
        off[i] = total;
        total += sz;
    }
    *one_line = small;
    uint8_t *buf = big_alloc(total);
    if (!buf) return NULL;
    for (size_t i = 0; i < nk; i++) {
        size_t row = keep ? keep[i] : i;
        uint8_t *rec = buf + off[i];
        int32_t lab = y ? y[row] : 0;
        int64_t p0 = r->indptr ? r->indptr[row] : 0;
        uint32_t nnz = r->indptr ? (uint32_t)(r->indptr[row + 1] - p0) : 0;
        size_t dat = mlk_rec_dense_at(nnz, *f32);
        memset(rec + dat - 8, 0, 8); /* the padding, if any */
        memcpy(rec, &lab, 4);
        memcpy(rec + 4, &nnz, 4);
        const int32_t *ind = r->indptr ? r->ind + p0 : NULL; /* no hashed part: no arrays */
        const double *val = r->indptr ? r->val + p0 : NULL;
        uint8_t *ri = rec + 8;
        /* the ranks of entries RANK_AHEAD ahead: a large column's words
         * of the table are evicted by the copy's streaming between two
         * uses, and each rank would otherwise wait for L3 */
        if (rk)
            for (int64_t q = p0 + RANK_AHEAD; q < p0 + RANK_AHEAD + (int64_t)nnz && q < nnz_all; q++)
                __builtin_prefetch(&rk->tab[2 * ((uint32_t)r->ind[q] >> 6)]);
        for (uint32_t p = 0; p < nnz; p++) {
            int32_t j = rk ? inset_rank(rk, (uint32_t)ind[p]) : ind[p];
            memcpy(ri + 4 * p, &j, 4);
        }
        if (*f32) {
            uint8_t *fv = rec + mlk_rec_vals_at(nnz, 1);
            for (uint32_t p = 0; p < nnz; p++) {
                float x = (float)val[p];
                memcpy(fv + 4 * p, &x, 4);
            }
        } else {
            uint8_t *dv = rec + mlk_rec_vals_at(nnz, 0);
            for (uint32_t p = 0; p < nnz; p++) memcpy(dv + 8 * p, &val[p], 8);
        }
        const double *x = nd ? r->dense + row * nd : NULL;
        for (size_t j = 0; j < nd; j++) memcpy(rec + dat + 8 * j, &x[j], 8);
    }
    return buf;
}

/* ---- loss ----------------------------------------------------------- */

/* From scores z (kv values, intercepts included) and label y, write the
 * loss derivative per score into g (may alias z) and return the loss.
 * Binary: scikit-learn's log loss, derivative clipped to MAX_DLOSS.
 * Multinomial: softmax cross-entropy, g_k = p_k - [y == k]. */
static inline double loss_grad(const double *z, int32_t y, size_t kv, double *g)
{
    double loss;
    if (kv == 1) {
        double dl = log_dloss(z[0], y == 1 ? 1.0 : -1.0, &loss);
        if (dl < -MAX_DLOSS) dl = -MAX_DLOSS;
        else if (dl > MAX_DLOSS) dl = MAX_DLOSS;
        g[0] = dl;
        return loss;
    }
    double zmax = z[0];
    for (size_t k = 1; k < kv; k++)
        if (z[k] > zmax) zmax = z[k];
    double zy = z[y], s = 0.0;
    for (size_t k = 0; k < kv; k++) {
        g[k] = exp(z[k] - zmax);
        s += g[k];
    }
    for (size_t k = 0; k < kv; k++) g[k] /= s;
    g[y] -= 1.0;
    return log(s) + zmax - zy;
}

/* Probabilities of K classes from scores z (kv values). */
static void scores_proba(const double *z, size_t kv, double *pr)
{
    if (kv == 1) {
        double p1;
        if (z[0] >= 0.0) {
            p1 = 1.0 / (1.0 + exp(-z[0]));
        } else {
            double e = exp(z[0]);
            p1 = e / (1.0 + e);
        }
        pr[0] = 1.0 - p1;
        pr[1] = p1;
        return;
    }
    double zmax = z[0], s = 0.0;
    for (size_t k = 1; k < kv; k++)
        if (z[k] > zmax) zmax = z[k];
    for (size_t k = 0; k < kv; k++) {
        pr[k] = exp(z[k] - zmax);
        s += pr[k];
    }
    for (size_t k = 0; k < kv; k++) pr[k] /= s;
}

/* ---- training loops ------------------------------------------------- */

/* State of one training call. */
typedef struct {
    rows r;        /* hashed columns renumbered to the compact model's inputs */
    mlk_cmodel *m; /* the parameters trained */
    double *passive;   /* dense call: the whole weight array, folded with the scale */
    size_t npassive;
    const int32_t *y;
    sched s;
    double wscale; /* plain SGD: true weights are wscale * m->w */
    double *z;     /* kv scratch */
    size_t np;     /* dim * kv */
    const uint8_t *pack; /* packed rows (perm holds offsets), or NULL */
    int pack_f32;        /* their values are held as f32 */
    int pack_line;       /* every record lies in one cache line */
    double loss_sum;     /* loss of the epoch so far, plus log(loss_prod) */
    double loss_prod;    /* binary: product of pending (1 + e^z) factors */
    unsigned loss_cnt;   /* factors in loss_prod */
} trainer;

/* Row perm[s]: a packed record or a row of the arrays. */
static inline row_view trainer_row(const trainer *tr, const size_t *perm, size_t s)
{
    return tr->pack ? rec_at(tr->pack + perm[s], tr->r.nd, tr->pack_f32) : row_at(&tr->r, tr->y, perm[s]);
}

/* Fold the pending product into the loss sum and return the sum. */
static double loss_flush(trainer *tr)
{
    tr->loss_sum += log(tr->loss_prod);
    tr->loss_prod = 1.0;
    tr->loss_cnt = 0;
    return tr->loss_sum;
}

/* Rows are visited in a random order, so every row costs cache misses
 * (its record, or indptr then indices/data/dense/label); the weights
 * it names are the compact model's, which stay in L2, so they need no
 * prefetch (one cost 15% of the loop). The order is known ahead, so a
 * software prefetch overlaps the row misses: for packed rows the record
 * PF_DIST ahead; for array rows indptr PF_DIST ahead, the entries and
 * label PF_DIST/2 ahead. always_inline: GCC sees a function
 * holding only prefetches as free of side effects and drops its calls
 * before it would inline it. */
#define PF_DIST 16
__attribute__((always_inline)) static inline void prefetch_ahead(const trainer *tr,
                                                                 const size_t *perm, size_t s,
                                                                 size_t n)
{
    const rows *r = &tr->r;
    if (tr->pack) {
        if (s + PF_DIST < n) {
            const uint8_t *rec = tr->pack + perm[s + PF_DIST];
            __builtin_prefetch(rec);
            if (!tr->pack_line) __builtin_prefetch(rec + 64);
        }
    } else {
        if (s + PF_DIST < n && r->indptr) __builtin_prefetch(&r->indptr[perm[s + PF_DIST]]);
        if (s + PF_DIST / 2 < n) {
            size_t i = perm[s + PF_DIST / 2];
            if (r->indptr) {
                int64_t p = r->indptr[i];
                __builtin_prefetch(&r->ind[p]);
                __builtin_prefetch(&r->val[p]);
            }
            if (r->nd) __builtin_prefetch(&r->dense[i * r->nd]);
            __builtin_prefetch(&tr->y[i]);
        }
    }
}

/* Fold the scale into the weights: the trained ones and, in a call on a
 * dense model, every other weight of it (the same product per weight,
 * in the same order, as when the whole array was trained). */
static void wscale_fold(trainer *tr)
{
    for (size_t j = 0; j < tr->np; j++) tr->m->w[j] *= tr->wscale;
    for (size_t j = 0; j < tr->npassive; j++) tr->passive[j] *= tr->wscale;
    tr->wscale = 1.0;
}

/* Multiply the true weights by f (scikit-learn's WeightVector.scale). */
static void wscale_mul(trainer *tr, double f)
{
    tr->wscale *= f;
    if (tr->wscale < WSCALE_MIN) wscale_fold(tr);
}

/* One plain SGD step on row perm[s] of n; adds its loss to the epoch's. */
static void step_plain(trainer *tr, const size_t *perm, size_t s, size_t n, double eta)
{
    prefetch_ahead(tr, perm, s, n);
    row_view rw = trainer_row(tr, perm, s);
    const rows *r = &tr->r;
    mlk_cmodel *m = tr->m;
    double *z = tr->z;
    size_t kv = r->kv;
    row_dot(r, m->w, &rw, z);
    for (size_t k = 0; k < kv; k++) z[k] = z[k] * tr->wscale + m->b[k];
    if (kv == 1) z[0] = bin_dloss_acc(z[0], rw.y, &tr->loss_sum, &tr->loss_prod, &tr->loss_cnt);
    else tr->loss_sum += loss_grad(z, rw.y, kv, z);
    int any = 0;
    for (size_t k = 0; k < kv; k++) {
        z[k] = -eta * z[k]; /* the update */
        any |= z[k] != 0.0;
    }
    if (tr->s.alpha > 0.0) wscale_mul(tr, l2_factor(eta, tr->s.alpha));
    if (any) {
        for (size_t k = 0; k < kv; k++) m->b[k] += z[k] * tr->s.decay;
        for (size_t k = 0; k < kv; k++) z[k] = z[k] / tr->wscale;
        row_axpy(r, m->w, &rw, z);
    }
}

/* One adagrad step on row perm[s] of n; L2 only on the inputs of the
 * row. Adds its loss to the epoch's. */
static void step_adagrad(trainer *tr, const size_t *perm, size_t s, size_t n)
{
    prefetch_ahead(tr, perm, s, n);
    row_view rw = trainer_row(tr, perm, s);
    const rows *r = &tr->r;
    mlk_cmodel *m = tr->m;
    double *z = tr->z, alpha = tr->s.alpha, eta0 = tr->s.eta0;
    size_t kv = r->kv;
    row_dot(r, m->w, &rw, z);
    for (size_t k = 0; k < kv; k++) z[k] += m->b[k];
    tr->loss_sum += loss_grad(z, rw.y, kv, z);
    for (size_t p = 0; p < rw.nnz; p++) {
        size_t base = (size_t)rw.ind[p] * kv;
        for (size_t k = 0; k < kv; k++)
            adagrad_one(&m->w[base + k], &m->G[base + k], rv_val(&rw, p) * z[k] + alpha * m->w[base + k],
                        eta0);
    }
    for (size_t j = 0; j < r->nd; j++) {
        size_t base = (r->nf + j) * kv;
        for (size_t k = 0; k < kv; k++)
            adagrad_one(&m->w[base + k], &m->G[base + k], rw.x[j] * z[k] + alpha * m->w[base + k],
                        eta0);
    }
    for (size_t k = 0; k < kv; k++) {
        m->Gb[k] += z[k] * z[k];
        m->b[k] -= eta0 * z[k] / sqrt(m->Gb[k] + ADAGRAD_EPS) * tr->s.decay;
    }
}

/* A whole epoch of step_plain over packed rows of a binary model: the
 * same operations in the same order, bit for bit, with the state the
 * row-to-row chain runs through (the weight scale, the intercept, the
 * loss terms, t) in registers rather than in the trainer, which the
 * stores into the weights might alias, and the record read with the
 * layout known (f32: the values are floats). This loop is the kernel's
 * hot path: each row's update waits on the last one's (the dense
 * weights are in every row), so what it saves is latency per row.
 * Called with a literal ND of at most ND_REG (always_inline), the dense
 * part's weights are in registers too: in memory each row's dense dot
 * product waited on the last row's stores to them through
 * store-to-load forwarding, on the chain; the hashed columns' stores
 * cannot reach them (their local indexes are below ncols, checked by
 * mlk_fpack_open). A larger or a runtime ND works on them in memory. */
#define ND_REG 8
__attribute__((always_inline)) static inline void epoch_plain_bin(trainer *tr, const size_t *perm, size_t n,
                                                                  const int f32, const size_t ND)
{
    mlk_cmodel *m = tr->m;
    double *v = m->w, *vd = m->w + tr->r.nf;
    const double alpha = tr->s.alpha, decay = tr->s.decay;
    double wscale = tr->wscale, b0 = m->b[0];
    double loss_sum = tr->loss_sum, loss_prod = tr->loss_prod;
    unsigned loss_cnt = tr->loss_cnt;
    uint64_t t = m->t;
    const int inreg = ND <= ND_REG;
    double wloc[ND_REG], *wr = inreg ? wloc : vd;
    if (inreg)
        for (size_t j = 0; j < ND; j++) wr[j] = vd[j];
    for (size_t s = 0; s < n; s++, t++) {
        double eta = sched_eta(&tr->s, t);
        prefetch_ahead(tr, perm, s, n);
        const rec_view rv = rec_view_at(tr->pack + perm[s], f32);
        const int32_t label = rv.label, *ind = rv.ind;
        const uint32_t nnz = rv.nnz;
        const float *vf = rv.vf;
        const double *vv = rv.vv, *x = rv.x;
        double sum = 0.0;
        for (uint32_t p = 0; p < nnz; p++) sum += v[ind[p]] * (f32 ? (double)vf[p] : vv[p]);
        for (size_t j = 0; j < ND; j++) sum += wr[j] * x[j];
        double pz = sum * wscale + b0;
        double dl = bin_dloss_acc(pz, label, &loss_sum, &loss_prod, &loss_cnt);
        double u = -eta * dl;
        if (alpha > 0.0) {
            wscale *= l2_factor(eta, alpha);
            if (wscale < WSCALE_MIN) {
                if (inreg)
                    for (size_t j = 0; j < ND; j++) vd[j] = wr[j];
                tr->wscale = wscale;
                wscale_fold(tr);
                wscale = 1.0;
                if (inreg)
                    for (size_t j = 0; j < ND; j++) wr[j] = vd[j];
            }
        }
        if (u != 0.0) {
            b0 += u * decay;
            u = u / wscale;
            for (uint32_t p = 0; p < nnz; p++) v[ind[p]] += (f32 ? (double)vf[p] : vv[p]) * u;
            for (size_t j = 0; j < ND; j++) wr[j] += x[j] * u;
        }
    }
    if (inreg)
        for (size_t j = 0; j < ND; j++) vd[j] = wr[j];
    tr->wscale = wscale;
    m->b[0] = b0;
    tr->loss_sum = loss_sum;
    tr->loss_prod = loss_prod;
    tr->loss_cnt = loss_cnt;
    m->t = t;
}

/* A whole epoch of step_adagrad over packed rows of a binary model, bit
 * for bit (as epoch_plain_bin is to step_plain): the intercept, its sum
 * and the loss in registers, the record's layout known, and for a
 * literal ND of at most ND_REG the dense weights and their sums too. */
__attribute__((always_inline)) static inline void epoch_adagrad_bin(trainer *tr, const size_t *perm, size_t n,
                                                                    const int f32, const size_t ND)
{
    mlk_cmodel *m = tr->m;
    double *w = m->w, *G = m->G, *wd = m->w + tr->r.nf, *Gd = m->G + tr->r.nf;
    const double alpha = tr->s.alpha, eta0 = tr->s.eta0, decay = tr->s.decay;
    double b0 = m->b[0], Gb0 = m->Gb[0], loss_sum = tr->loss_sum;
    double la[LOSS_BLOCK], lc[LOSS_BLOCK];
    uint8_t lk[LOSS_BLOCK];
    const int inreg = ND <= ND_REG;
    double wloc[ND_REG], Gloc[ND_REG], *wr = inreg ? wloc : wd, *Gr = inreg ? Gloc : Gd;
    if (inreg)
        for (size_t j = 0; j < ND; j++) {
            wr[j] = wd[j];
            Gr[j] = Gd[j];
        }
    for (size_t s = 0; s < n; s++) {
        prefetch_ahead(tr, perm, s, n);
        const rec_view rv = rec_view_at(tr->pack + perm[s], f32);
        const int32_t label = rv.label, *ind = rv.ind;
        const uint32_t nnz = rv.nnz;
        const float *vf = rv.vf;
        const double *vv = rv.vv, *x = rv.x;
        double sum = 0.0;
        for (uint32_t p = 0; p < nnz; p++) sum += w[ind[p]] * (f32 ? (double)vf[p] : vv[p]);
        for (size_t j = 0; j < ND; j++) sum += wr[j] * x[j];
        /* log_dloss, its log1p deferred to the block's end; the sign by
         * negation (exact, as in bin_dloss_acc) */
        double y = label == 1 ? 1.0 : -1.0, zb = sum + b0, z = label == 1 ? zb : -zb, g;
        size_t k = s % LOSS_BLOCK;
        if (z > 18.0) {
            double e = exp(-z);
            la[k] = e;
            lk[k] = 0;
            g = e * -y;
        } else if (z < -18.0) {
            la[k] = -z;
            lk[k] = 0;
            g = -y;
        } else {
            double e = exp(z);
            la[k] = e;
            lc[k] = z;
            lk[k] = 1;
            g = -y / (e + 1.0);
        }
        if (k == LOSS_BLOCK - 1 || s == n - 1)
            for (size_t i = 0; i <= k; i++) loss_sum += lk[i] ? log1p(la[i]) - lc[i] : la[i];
        g = g < -MAX_DLOSS ? -MAX_DLOSS : g > MAX_DLOSS ? MAX_DLOSS : g;
        for (uint32_t p = 0; p < nnz; p++) {
            size_t q = (size_t)ind[p];
            adagrad_one(&w[q], &G[q], (f32 ? (double)vf[p] : vv[p]) * g + alpha * w[q], eta0);
        }
        for (size_t j = 0; j < ND; j++) adagrad_one(&wr[j], &Gr[j], x[j] * g + alpha * wr[j], eta0);
        Gb0 += g * g;
        b0 -= eta0 * g / sqrt(Gb0 + ADAGRAD_EPS) * decay;
    }
    if (inreg)
        for (size_t j = 0; j < ND; j++) {
            wd[j] = wr[j];
            Gd[j] = Gr[j];
        }
    m->b[0] = b0;
    m->Gb[0] = Gb0;
    tr->loss_sum = loss_sum;
    m->t += n;
}

/* An epoch of a binary model over packed rows: each value of nd up to
 * ND_REG and of the value type its own loop (the weights in registers),
 * a larger nd one loop over them in memory. */
#define ND_CASES(F, f32)                                                                                           \
    switch (nd) {                                                                                                  \
    case 0: F(tr, perm, n, f32, 0); return;                                                                        \
    case 1: F(tr, perm, n, f32, 1); return;                                                                        \
    case 2: F(tr, perm, n, f32, 2); return;                                                                        \
    case 3: F(tr, perm, n, f32, 3); return;                                                                        \
    case 4: F(tr, perm, n, f32, 4); return;                                                                        \
    case 5: F(tr, perm, n, f32, 5); return;                                                                        \
    case 6: F(tr, perm, n, f32, 6); return;                                                                        \
    case 7: F(tr, perm, n, f32, 7); return;                                                                        \
    case 8: F(tr, perm, n, f32, 8); return;                                                                        \
    default: F(tr, perm, n, f32, nd); return;                                                                      \
    }
static void epoch_packed_bin(trainer *tr, const size_t *perm, size_t n, int adagrad)
{
    size_t nd = tr->r.nd;
    if (adagrad && tr->pack_f32) {
        ND_CASES(epoch_adagrad_bin, 1)
    } else if (adagrad) {
        ND_CASES(epoch_adagrad_bin, 0)
    } else if (tr->pack_f32) {
        ND_CASES(epoch_plain_bin, 1)
    } else {
        ND_CASES(epoch_plain_bin, 0)
    }
}

/* Buffers of the mini-batch loop. */
typedef struct {
    size_t cap;
    double *xb;     /* cap x nd gathered dense rows */
    double *zb;     /* cap x kv scores, then gradients */
    double *gbuf;   /* adagrad: np summed gradient, zero between steps */
    uint8_t *mark;  /* adagrad: nf flags, hashed input touched */
    int32_t *touch; /* adagrad: touched hashed inputs in first-touch order */
} batchbuf;

static void batchbuf_free(batchbuf *bb)
{
    free(bb->xb);
    free(bb->zb);
    free(bb->gbuf);
    free(bb->mark);
    free(bb->touch);
}

static int batchbuf_init(batchbuf *bb, const trainer *tr, size_t cap, int adagrad)
{
    memset(bb, 0, sizeof *bb);
    bb->cap = cap;
    bb->xb = malloc((cap * tr->r.nd + 1) * sizeof *bb->xb);
    bb->zb = malloc(cap * tr->r.kv * sizeof *bb->zb);
    if (adagrad) {
        bb->gbuf = calloc(tr->np, sizeof *bb->gbuf);
        bb->mark = calloc(tr->r.nf + 1, 1);
        bb->touch = malloc((tr->r.nf + 1) * sizeof *bb->touch);
    }
    if (!bb->xb || !bb->zb || (adagrad && (!bb->gbuf || !bb->mark || !bb->touch))) {
        batchbuf_free(bb);
        return MLOPS_ENOMEM;
    }
    return 0;
}

/* One mini-batch step over rows idx[0..nb-1]; returns the summed loss. */
static double step_batch(trainer *tr, batchbuf *bb, const size_t *idx, size_t nb, double eta,
                         int adagrad)
{
    const rows *r = &tr->r;
    mlk_cmodel *m = tr->m;
    size_t kv = r->kv, nd = r->nd, nf = r->nf;
    double *zb = bb->zb, *xb = bb->xb, *wd = m->w + nf * kv;
    /* scores: dense block by dgemm, hashed part row by row */
    if (nd > 0) {
        for (size_t b = 0; b < nb; b++) memcpy(xb + b * nd, r->dense + idx[b] * nd, nd * sizeof *xb);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)kv, (int)nd, 1.0, xb,
                    (int)nd, wd, (int)kv, 0.0, zb, (int)kv);
    } else {
        memset(zb, 0, nb * kv * sizeof *zb);
    }
    if (r->indptr)
        for (size_t b = 0; b < nb; b++)
            for (int64_t p = r->indptr[idx[b]]; p < r->indptr[idx[b] + 1]; p++) {
                const double *vj = m->w + (size_t)r->ind[p] * kv;
                for (size_t k = 0; k < kv; k++) zb[b * kv + k] += vj[k] * r->val[p];
            }
    double loss = 0.0;
    for (size_t b = 0; b < nb; b++) {
        double *z = zb + b * kv;
        for (size_t k = 0; k < kv; k++) z[k] = z[k] * tr->wscale + m->b[k];
        loss += loss_grad(z, tr->y[idx[b]], kv, z);
    }
    double inv = 1.0 / (double)nb;
    if (!adagrad) {
        if (tr->s.alpha > 0.0) wscale_mul(tr, l2_factor(eta, tr->s.alpha));
        double cu = -eta * inv, c = cu / tr->wscale;
        if (r->indptr)
            for (size_t b = 0; b < nb; b++)
                for (int64_t p = r->indptr[idx[b]]; p < r->indptr[idx[b] + 1]; p++) {
                    double *vj = m->w + (size_t)r->ind[p] * kv, xc = r->val[p] * c;
                    for (size_t k = 0; k < kv; k++) vj[k] += xc * zb[b * kv + k];
                }
        if (nd > 0)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nd, (int)kv, (int)nb, c, xb,
                        (int)nd, zb, (int)kv, 1.0, wd, (int)kv);
        for (size_t k = 0; k < kv; k++) {
            double gs = 0.0;
            for (size_t b = 0; b < nb; b++) gs += zb[b * kv + k];
            m->b[k] += cu * gs * tr->s.decay;
        }
        return loss;
    }
    /* adagrad: sum the mean gradient per parameter, then step each once */
    double alpha = tr->s.alpha, eta0 = tr->s.eta0, *gb = bb->gbuf;
    size_t ntouch = 0;
    if (r->indptr)
        for (size_t b = 0; b < nb; b++)
            for (int64_t p = r->indptr[idx[b]]; p < r->indptr[idx[b] + 1]; p++) {
                int32_t j = r->ind[p];
                if (!bb->mark[j]) {
                    bb->mark[j] = 1;
                    bb->touch[ntouch++] = j;
                }
                double xs = r->val[p] * inv;
                for (size_t k = 0; k < kv; k++) gb[(size_t)j * kv + k] += xs * zb[b * kv + k];
            }
    if (nd > 0)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nd, (int)kv, (int)nb, inv, xb,
                    (int)nd, zb, (int)kv, 0.0, gb + nf * kv, (int)kv);
    for (size_t t = 0; t < ntouch; t++) {
        size_t base = (size_t)bb->touch[t] * kv;
        for (size_t k = 0; k < kv; k++) {
            adagrad_one(&m->w[base + k], &m->G[base + k], gb[base + k] + alpha * m->w[base + k], eta0);
            gb[base + k] = 0.0;
        }
        bb->mark[bb->touch[t]] = 0;
    }
    for (size_t q = nf * kv; q < tr->np; q++) {
        adagrad_one(&m->w[q], &m->G[q], gb[q] + alpha * m->w[q], eta0);
        gb[q] = 0.0;
    }
    for (size_t k = 0; k < kv; k++) {
        double g = 0.0;
        for (size_t b = 0; b < nb; b++) g += zb[b * kv + k];
        g *= inv;
        m->Gb[k] += g * g;
        m->b[k] -= eta0 * g / sqrt(m->Gb[k] + ADAGRAD_EPS) * tr->s.decay;
    }
    return loss;
}

/* All parameters finite (true weights = wscale * v). */
static int params_finite(const trainer *tr)
{
    if (!isfinite(tr->wscale)) return 0;
    for (size_t k = 0; k < tr->r.kv; k++)
        if (!isfinite(tr->m->b[k])) return 0;
    for (size_t j = 0; j < tr->np; j++)
        if (!isfinite(tr->m->w[j])) return 0;
    return 1;
}

/* Train compact model m over the rows r (checked, global columns) for
 * o->epochs epochs; rk renumbers r's hashed columns to m's inputs, which
 * hold them all. passive: a call on a dense model hands its whole
 * weight array, which every scale fold multiplies too. */
/* Records packed before the call (a packed shard, fpack.h), read in
 * place: the rows at off[0..n-1], in that order before any shuffle. */
typedef struct {
    const uint8_t *recs;
    const size_t *off;
    size_t n;
    int f32, one_line, hashed;
    size_t *own; /* off itself, when the caller gives it to be shuffled in place */
} packsrc;

static int train_core(mlk_cmodel *m, const rows *r, const int32_t *y, const uint8_t *skip, const inset *rk,
                      double *passive, size_t npassive, const int64_t *order, const mlk_sgd_opts *o,
                      double *epoch_loss, char *err, size_t errlen, const packsrc *xp)
{
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.r = *r;
    if (rk) tr.r.nf = rk->mh;
    size_t n = xp ? xp->n : r->n; /* rows trained: all, or those skip leaves */
    size_t *keep = NULL;
    if (skip && !xp) {
        n = 0;
        for (size_t i = 0; i < r->n; i++) n += !skip[i];
        if (!(keep = malloc((n ? n : 1) * sizeof *keep)))
            return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        for (size_t i = 0, k = 0; i < r->n; i++)
            if (!skip[i]) keep[k++] = i;
    }
    int adagrad = o->lr == MLK_LR_ADAGRAD;
    tr.m = m;
    tr.y = y;
    tr.passive = passive;
    tr.npassive = npassive;
    tr.wscale = 1.0;
    tr.np = m->m * m->n_vec;
    tr.s.lr = o->lr;
    tr.s.alpha = o->alpha;
    tr.s.eta0 = o->eta0;
    tr.s.power_t = o->power_t;
    int hashed = r->indptr != NULL || (xp && xp->hashed);
    tr.s.decay = o->intercept_decay >= 0.0 ? o->intercept_decay : (hashed ? 0.01 : 1.0);
    if (o->lr == MLK_LR_OPTIMAL) {
        double typw = sqrt(1.0 / sqrt(o->alpha)), unused;
        double initial_eta0 = typw / fmax(1.0, log_dloss(-typw, 1.0, &unused));
        tr.s.optimal_init = 1.0 / (initial_eta0 * o->alpha);
    }
    size_t bs = o->batch_size > 1 ? o->batch_size : 1;
    /* the visits: the caller's own list for one epoch (no fresh pages to
     * fault in and no copy), else an array of n (shuffled: random access) */
    size_t *own = xp && o->epochs == 1 ? xp->own : NULL;
    size_t *perm = own ? own : big_alloc(n * sizeof *perm);
    tr.z = malloc(tr.r.kv * sizeof *tr.z);
    batchbuf bb;
    memset(&bb, 0, sizeof bb);
    size_t *offs = NULL;
    uint8_t *pack = NULL;
    int32_t *lind = NULL;
    int rc = 0;
    if (!perm || !tr.z || (bs > 1 && batchbuf_init(&bb, &tr, bs, adagrad) != 0)) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto done;
    }
    /* rows visited out of storage order one at a time: pack them (if the
     * memory is there; otherwise read the arrays, same result), renumbered
     * on the way; else renumber a copy of the columns */
    /* one pass in storage order (the epoch tasks' case): the offsets go
     * straight into perm, no second array of n to fault in and copy */
    int direct = o->epochs == 1 && !order;
    if (xp) {
        tr.pack = xp->recs;
        tr.pack_f32 = xp->f32;
        tr.pack_line = xp->one_line;
    } else if (bs == 1 && (o->shuffle || order) && (direct || (offs = big_alloc(n * sizeof *offs)) != NULL))
        tr.pack = pack = pack_rows(r, y, keep, n, direct ? perm : offs, rk, &tr.pack_f32, &tr.pack_line);
    if (!pack && r->indptr) {
        int64_t nnz = r->indptr[r->n];
        if (!(lind = malloc((size_t)(nnz ? nnz : 1) * sizeof *lind))) {
            rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
            goto done;
        }
        for (int64_t p = 0; p < nnz; p++) lind[p] = inset_rank(rk, (uint32_t)r->ind[p]);
        tr.r.ind = lind;
    }
    for (unsigned e = 0; e < o->epochs; e++) {
        if (xp && n && !own) memcpy(perm, xp->off, n * sizeof *perm);
        for (size_t i = 0; !xp && !(pack && direct) && i < n; i++) {
            size_t row = order ? (size_t)order[i] : keep ? keep[i] : i;
            perm[i] = pack ? (size_t)offs[keep ? i : row] : row;
        }
        if (o->shuffle) shuffle_items(perm, n, o->seed, o->epoch0 + e, o->shard);
        tr.loss_sum = 0.0;
        tr.loss_prod = 1.0;
        tr.loss_cnt = 0;
        if (bs > 1) {
            for (size_t s = 0; s < n; s += bs) {
                size_t nb = n - s < bs ? n - s : bs;
                tr.loss_sum += step_batch(&tr, &bb, perm + s, nb, sched_eta(&tr.s, m->t), adagrad);
                m->t++;
            }
        } else if (adagrad && tr.pack && tr.r.kv == 1) {
            epoch_packed_bin(&tr, perm, n, 1);
        } else if (adagrad) {
            for (size_t s = 0; s < n; s++) {
                step_adagrad(&tr, perm, s, n);
                m->t++;
            }
        } else if (tr.pack && tr.r.kv == 1) {
            epoch_packed_bin(&tr, perm, n, 0);
        } else {
            for (size_t s = 0; s < n; s++) {
                step_plain(&tr, perm, s, n, sched_eta(&tr.s, m->t));
                m->t++;
            }
        }
        double sumloss = loss_flush(&tr);
        if (epoch_loss) epoch_loss[e] = n ? sumloss / (double)n : 0.0;
        if (!params_finite(&tr)) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                              "sgd: parameters not finite after epoch %u; lower eta0 or raise alpha",
                              e + 1);
            goto done;
        }
        m->n_seen += n;
    }
done:
    if (tr.wscale != 1.0) wscale_fold(&tr);
    if (!own) free(perm);
    free(pack);
    free(offs);
    free(lind);
    free(keep);
    free(tr.z);
    batchbuf_free(&bb);
    return rc;
}

/* What both entries check before training: the rows against the shape,
 * the options, the order. */
static int train_check(rows *r, const mshape *sh, uint64_t t, const mlk_sgd_data *d, const int64_t *order,
                       const uint8_t *skip, const mlk_sgd_opts *o, char *err, size_t errlen)
{
    int rc = rows_init(r, sh, d, 2, skip, err, errlen);
    if (rc != 0) return rc;
    if ((rc = check_opts(o, t, err, errlen)) != 0) return rc;
    if (order && skip) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: an order and skipped rows together");
    if (order)
        for (size_t i = 0; i < r->n; i++)
            if (order[i] < 0 || (uint64_t)order[i] >= r->n)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: order[%zu] = %lld out of 0..%zu",
                                    i, (long long)order[i], r->n ? r->n - 1 : 0);
    return 0;
}

int mlk_sgd_train(mlk_model *m, const mlk_sgd_data *d, const int64_t *order,
                  const mlk_sgd_opts *o, double *epoch_loss, char *err, size_t errlen)
{
    if (!m) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    mshape sh = {m->n_classes, m->n_vec, m->n_features, m->n_dense};
    rows r;
    int rc = train_check(&r, &sh, m->t, d, order, NULL, o, err, errlen);
    if (rc != 0) return rc;
    if (o->lr == MLK_LR_ADAGRAD && mlk_model_enable_adagrad(m) != 0)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory (adagrad sums)");
    /* the rows' inputs as a compact model gathered from m, trained, put back */
    inset rk;
    uint32_t *in = NULL;
    mlk_cmodel c;
    memset(&c, 0, sizeof c);
    size_t kv = m->n_vec;
    if (inset_build(&rk, &r, NULL) != 0 || !(in = inset_list(&rk, r.nf, r.nd))) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto out;
    }
    c.n_classes = m->n_classes;
    c.n_vec = m->n_vec;
    c.n_features = m->n_features;
    c.n_dense = m->n_dense;
    c.dim = m->dim;
    c.m = rk.mh + r.nd;
    c.in = in;
    c.b = m->b;
    c.Gb = m->Gb;
    c.t = m->t;
    c.n_seen = m->n_seen;
    c.w = malloc((c.m * kv + 1) * sizeof *c.w);
    if (m->G) c.G = malloc((c.m * kv + 1) * sizeof *c.G);
    if (!c.w || (m->G && !c.G)) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto out;
    }
    for (size_t l = 0; l < c.m; l++) {
        memcpy(c.w + l * kv, m->w + (size_t)in[l] * kv, kv * sizeof *c.w);
        if (m->G) memcpy(c.G + l * kv, m->G + (size_t)in[l] * kv, kv * sizeof *c.G);
    }
    rc = train_core(&c, &r, d->y, NULL, &rk, m->w, (size_t)(m->dim * kv), order, o, epoch_loss, err, errlen,
                    NULL);
    for (size_t l = 0; l < c.m; l++) {
        memcpy(m->w + (size_t)in[l] * kv, c.w + l * kv, kv * sizeof *c.w);
        if (m->G) memcpy(m->G + (size_t)in[l] * kv, c.G + l * kv, kv * sizeof *c.G);
    }
    m->t = c.t;
    m->n_seen = c.n_seen;
out:
    inset_free(&rk);
    free(in);
    free(c.w);
    free(c.G);
    return rc;
}

int mlk_sgd_train_compact(mlk_cmodel *m, const mlk_sgd_data *d, const int64_t *order, const uint8_t *skip,
                          const mlk_sgd_opts *o, double *epoch_loss, char *err, size_t errlen)
{
    if (!m) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    mshape sh = {m->n_classes, m->n_vec, m->n_features, m->n_dense};
    rows r;
    int rc = train_check(&r, &sh, m->t, d, order, skip, o, err, errlen);
    if (rc != 0) return rc;
    inset rk;
    uint32_t *in = NULL;
    if (inset_build(&rk, &r, m) != 0 || !(in = inset_list(&rk, r.nf, r.nd)) ||
        (o->lr == MLK_LR_ADAGRAD && mlk_cmodel_enable_adagrad(m) != 0)) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
    } else if ((rc = mlk_cmodel_reindex(m, in, rk.mh + r.nd)) != 0) {
        rc = mlops_seterr(err, errlen, rc, rc == MLOPS_ENOMEM ? "sgd: out of memory"
                                                              : "sgd: compact model holds an input out of range");
    } else {
        rc = train_core(m, &r, d->y, skip, &rk, NULL, 0, order, o, epoch_loss, err, errlen, NULL);
    }
    inset_free(&rk);
    free(in);
    return rc;
}

static int train_packed(mlk_cmodel *m, const mlk_fpack *p, const size_t *off, size_t *own, size_t n,
                        const mlk_sgd_opts *o, double *epoch_loss, char *err, size_t errlen)
{
    if (!m || !p || (n && !off)) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    int rc = check_opts(o, m->t, err, errlen);
    if (rc != 0) return rc;
    if (o->batch_size > 1)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: mini-batches read arrays, not a packed shard");
    size_t kv = m->n_vec, nd = p->n_dense, nc = p->ncols, nf = (size_t)m->n_features;
    if (nd != m->n_dense)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: data has %zu dense columns, model %zu", nd,
                            (size_t)m->n_dense);
    if ((nf > 0) != (p->hashed != 0) || (p->hashed && p->n_features != m->n_features))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: shard has %llu hashed features, model %zu",
                            (unsigned long long)p->n_features, nf);
    /* every row's label in range (known from mlk_fpack_open): no pass */
    int all_ok = p->label_min >= 0 && p->label_max < (int32_t)m->n_classes;
    for (size_t i = 0; !all_ok && i < n; i++) {
        int32_t lab;
        if (off[i] >= p->rec_bytes)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: record offset %zu beyond the shard", off[i]);
        memcpy(&lab, p->recs + off[i], 4);
        if (lab < 0 || (uint32_t)lab >= m->n_classes)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: training row %zu has label %d, classes are 0..%u",
                                i, lab, m->n_classes - 1);
    }
    if (o->lr == MLK_LR_ADAGRAD && mlk_cmodel_enable_adagrad(m) != 0)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
    /* the union of the model's hashed inputs and the shard's, sorted (as
     * mlk_sgd_train_compact makes it), and where each shard column is */
    size_t nh = 0;
    while (nh < m->m && m->in[nh] < nf) nh++;
    uint32_t *uin = malloc((nh + nc + nd + 1) * sizeof *uin);
    size_t *pos = malloc((nc + 1) * sizeof *pos);
    double *w2 = malloc(((nc + nd) * kv + 1) * sizeof *w2), *G2 = NULL;
    if (!uin || !pos || !w2) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto out;
    }
    size_t a = 0, b = 0, u = 0;
    while (a < nh || b < nc) {
        if (b == nc || (a < nh && m->in[a] < p->cols[b])) uin[u++] = m->in[a++];
        else {
            if (a < nh && m->in[a] == p->cols[b]) a++;
            pos[b] = u;
            uin[u++] = p->cols[b++];
        }
    }
    size_t uh = u;
    for (size_t j = 0; j < nd; j++) uin[u++] = (uint32_t)(nf + j);
    if ((rc = mlk_cmodel_reindex(m, uin, u)) != 0) {
        rc = mlops_seterr(err, errlen, rc, rc == MLOPS_ENOMEM ? "sgd: out of memory"
                                                              : "sgd: compact model holds an input out of range");
        goto out;
    }
    if (m->G && !(G2 = malloc(((nc + nd) * kv + 1) * sizeof *G2))) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto out;
    }
    /* the weights the rows touch, in the shard's column order (its
     * records' local indexes), then the dense ones; the model's other
     * weights only scale with the weight scale, as the passive array */
    for (size_t c = 0; c < nc + nd; c++) {
        size_t g = c < nc ? pos[c] : uh + (c - nc);
        memcpy(w2 + c * kv, m->w + g * kv, kv * sizeof *w2);
        if (G2) memcpy(G2 + c * kv, m->G + g * kv, kv * sizeof *G2);
    }
    mlk_cmodel s = *m;
    s.m = nc + nd;
    s.in = NULL;
    s.w = w2;
    s.G = G2;
    rows r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.nf = nc;
    r.nd = nd;
    r.kv = kv;
    packsrc xp = {p->recs, off, n, p->f32, p->one_line, p->hashed, own};
    rc = train_core(&s, &r, NULL, NULL, NULL, m->w, m->m * kv, NULL, o, epoch_loss, err, errlen, &xp);
    for (size_t c = 0; c < nc + nd; c++) {
        size_t g = c < nc ? pos[c] : uh + (c - nc);
        memcpy(m->w + g * kv, w2 + c * kv, kv * sizeof *w2);
        if (G2) memcpy(m->G + g * kv, G2 + c * kv, kv * sizeof *G2);
    }
    m->t = s.t;
    m->n_seen = s.n_seen;
out:
    free(uin);
    free(pos);
    free(w2);
    free(G2);
    return rc;
}

int mlk_sgd_train_packed(mlk_cmodel *m, const mlk_fpack *p, const size_t *off, size_t n, const mlk_sgd_opts *o,
                         double *epoch_loss, char *err, size_t errlen)
{
    return train_packed(m, p, off, NULL, n, o, epoch_loss, err, errlen);
}

int mlk_sgd_train_packed_own(mlk_cmodel *m, const mlk_fpack *p, size_t *off, size_t n, const mlk_sgd_opts *o,
                             double *epoch_loss, char *err, size_t errlen)
{
    return train_packed(m, p, off, off, n, o, epoch_loss, err, errlen);
}

/* ---- prediction and objective --------------------------------------- */

/* Probabilities of rows r (hashed columns numbered as w's inputs, dense
 * block at r->nf) under weights w and intercepts b. */
static int predict_rows(const double *w, const double *b, uint32_t K, const rows *r, double *proba, char *err,
                        size_t errlen)
{
    size_t kv = r->kv;
    double *z = malloc(PREDICT_BLOCK * kv * sizeof *z);
    if (!z) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
    for (size_t s = 0; s < r->n; s += PREDICT_BLOCK) {
        size_t nb = r->n - s < PREDICT_BLOCK ? r->n - s : PREDICT_BLOCK;
        if (r->nd > 0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)kv, (int)r->nd, 1.0,
                        r->dense + s * r->nd, (int)r->nd, w + r->nf * kv, (int)kv, 0.0, z, (int)kv);
        else
            memset(z, 0, nb * kv * sizeof *z);
        for (size_t bi = 0; bi < nb; bi++) {
            double *zr = z + bi * kv;
            if (r->indptr)
                for (int64_t p = r->indptr[s + bi]; p < r->indptr[s + bi + 1]; p++) {
                    const double *wj = w + (size_t)r->ind[p] * kv;
                    for (size_t k = 0; k < kv; k++) zr[k] += wj[k] * r->val[p];
                }
            for (size_t k = 0; k < kv; k++) zr[k] += b[k];
            scores_proba(zr, kv, proba + (s + bi) * K);
        }
    }
    free(z);
    return 0;
}

int mlk_sgd_predict_proba(const mlk_model *m, const mlk_sgd_data *d, double *proba, char *err,
                          size_t errlen)
{
    if (!m) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    mshape sh = {m->n_classes, m->n_vec, m->n_features, m->n_dense};
    rows r;
    int rc = rows_init(&r, &sh, d, 0, NULL, err, errlen);
    if (rc != 0) return rc;
    return predict_rows(m->w, m->b, m->n_classes, &r, proba, err, errlen);
}

int mlk_sgd_predict_proba_compact(const mlk_cmodel *c, const mlk_sgd_data *d, double *proba, char *err,
                                  size_t errlen)
{
    if (!c) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    mshape sh = {c->n_classes, c->n_vec, c->n_features, c->n_dense};
    rows r;
    int rc = rows_init(&r, &sh, d, 0, NULL, err, errlen);
    if (rc != 0) return rc;
    size_t kv = c->n_vec, nd = (size_t)c->n_dense, mh = c->m >= nd ? c->m - nd : 0;
    for (size_t j = 0; j < nd; j++)
        if (c->m < nd || c->in[mh + j] != c->n_features + j)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: compact model lacks dense input %zu", j);
    /* a column the model does not hold reads a row of zeros (index c->m),
     * so every product and sum is the dense model's */
    inset rk;
    int64_t nnz = r.indptr ? r.indptr[r.n] : 0;
    int32_t *lind = malloc((size_t)(nnz ? nnz : 1) * sizeof *lind);
    double *w = malloc((c->m + 1) * kv * sizeof *w);
    if (inset_init(&rk, r.nf) != 0 || !lind || !w) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto out;
    }
    for (size_t l = 0; l < mh; l++) inset_add(&rk, c->in[l]);
    inset_finish(&rk);
    for (int64_t p = 0; p < nnz; p++) {
        uint32_t j = (uint32_t)r.ind[p];
        lind[p] = inset_has(&rk, j) ? inset_rank(&rk, j) : (int32_t)c->m;
    }
    memcpy(w, c->w, c->m * kv * sizeof *w);
    memset(w + c->m * kv, 0, kv * sizeof *w);
    r.ind = lind;
    r.nf = mh;
    rc = predict_rows(w, c->b, c->n_classes, &r, proba, err, errlen);
out:
    inset_free(&rk);
    free(lind);
    free(w);
    return rc;
}

int mlk_sgd_predict_proba_packed(const mlk_cmodel *c, const mlk_fpack *p, const size_t *off, size_t n,
                                 double *proba, char *err, size_t errlen)
{
    if (!c || !p || (n && !off)) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    size_t kv = c->n_vec, nd = p->n_dense, nc = p->ncols, nf = (size_t)c->n_features;
    if (nd != c->n_dense)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: data has %zu dense columns, model %zu", nd,
                            (size_t)c->n_dense);
    if ((nf > 0) != (p->hashed != 0) || (p->hashed && p->n_features != c->n_features))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: shard has %llu hashed features, model %zu",
                            (unsigned long long)p->n_features, nf);
    size_t mh = c->m >= nd ? c->m - nd : 0;
    for (size_t j = 0; j < nd; j++)
        if (c->m < nd || c->in[mh + j] != c->n_features + j)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: compact model lacks dense input %zu", j);
    /* each shard column's row of the weights, or the zero row (index m):
     * the products and sums of mlk_sgd_predict_proba_compact */
    uint32_t *map = malloc((nc + 1) * sizeof *map);
    double *w = malloc((c->m + 1) * kv * sizeof *w);
    double *xb = malloc((PREDICT_BLOCK * nd + 1) * sizeof *xb), *z = malloc(PREDICT_BLOCK * kv * sizeof *z);
    int rc = 0;
    if (!map || !w || !xb || !z) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto out;
    }
    for (size_t i = 0, l = 0; i < nc; i++) {
        while (l < mh && c->in[l] < p->cols[i]) l++;
        map[i] = l < mh && c->in[l] == p->cols[i] ? (uint32_t)l : (uint32_t)c->m;
    }
    memcpy(w, c->w, c->m * kv * sizeof *w);
    memset(w + c->m * kv, 0, kv * sizeof *w);
    for (size_t s = 0; s < n; s += PREDICT_BLOCK) {
        size_t nb = n - s < PREDICT_BLOCK ? n - s : PREDICT_BLOCK;
        /* the block's dense rows side by side, as the arrays hold them */
        for (size_t bi = 0; bi < nb && nd; bi++) {
            const uint8_t *rec = p->recs + off[s + bi];
            uint32_t nnz;
            memcpy(&nnz, rec + 4, 4);
            memcpy(xb + bi * nd, rec + mlk_rec_dense_at(nnz, p->f32), nd * sizeof *xb);
        }
        if (nd > 0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)kv, (int)nd, 1.0, xb, (int)nd,
                        w + mh * kv, (int)kv, 0.0, z, (int)kv);
        else
            memset(z, 0, nb * kv * sizeof *z);
        for (size_t bi = 0; bi < nb; bi++) {
            double *zr = z + bi * kv;
            row_view rw = rec_at(p->recs + off[s + bi], nd, p->f32);
            for (size_t q = 0; q < rw.nnz; q++) {
                const double *wj = w + (size_t)map[rw.ind[q]] * kv;
                double x = rv_val(&rw, q);
                for (size_t k = 0; k < kv; k++) zr[k] += wj[k] * x;
            }
            for (size_t k = 0; k < kv; k++) zr[k] += c->b[k];
            scores_proba(zr, kv, proba + (s + bi) * c->n_classes);
        }
    }
out:
    free(map);
    free(w);
    free(xb);
    free(z);
    return rc;
}

int mlk_sgd_objective(const mlk_model *m, const mlk_sgd_data *d, double alpha, double *loss,
                      double *grad, char *err, size_t errlen)
{
    if (!m) return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    mshape sh = {m->n_classes, m->n_vec, m->n_features, m->n_dense};
    rows r;
    int rc = rows_init(&r, &sh, d, 1, NULL, err, errlen);
    if (rc != 0) return rc;
    size_t kv = r.kv, np = (size_t)(m->dim * kv);
    double *z = malloc(kv * sizeof *z);
    if (!z) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
    if (grad) memset(grad, 0, (np + kv) * sizeof *grad);
    double sum = 0.0, inv = r.n ? 1.0 / (double)r.n : 0.0;
    for (size_t i = 0; i < r.n; i++) {
        row_view rw = row_at(&r, d->y, i);
        row_dot(&r, m->w, &rw, z);
        for (size_t k = 0; k < kv; k++) z[k] += m->b[k];
        sum += loss_grad(z, rw.y, kv, z);
        if (!grad) continue;
        for (size_t k = 0; k < kv; k++) {
            z[k] *= inv;
            grad[np + k] += z[k];
        }
        row_axpy(&r, grad, &rw, z);
    }
    double sq = 0.0;
    for (size_t j = 0; j < np; j++) {
        sq += m->w[j] * m->w[j];
        if (grad) grad[j] += alpha * m->w[j];
    }
    *loss = sum * inv + 0.5 * alpha * sq;
    free(z);
    return 0;
}
