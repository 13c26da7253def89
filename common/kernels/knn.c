/* knn.c: cosine k-NN by tiled sgemm + thresholded top-k. See knn.h.
 *
 * Cost model: each similarity costs 2*d flops in sgemm (d = 784 for
 * Fashion-MNIST, ~1500 flops) but only one compare in the scan, because
 * a query's list changes rarely once full (about k*ln(n/k) times in n
 * candidates), so the scan keeps the k-th similarity as a threshold and
 * tests 16 candidates per branch. Tiles are large on purpose: OpenBLAS
 * repacks both operands on every sgemm call (cost ~ 1/tile_x + 1/tile_q
 * of the multiply), while the similarity tile (16 MiB by default) is
 * touched once by sgemm and once by the scan, a few bytes per 1500 flops,
 * so it need not fit in L2. Measured on Fashion-MNIST with the SkylakeX
 * kernel: 2048 x 128 tiles ~88 GFLOP/s, 1024 x 4096 ~98 (sgemm ~100). */
#include "knn.h"
#include "err.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#define DEFAULT_TILE_Q 1024
#define DEFAULT_TILE_X 4096

mlk_topk *mlk_topk_new(size_t nq, size_t k)
{
    if (k == 0 || (nq && k > SIZE_MAX / sizeof(double) / nq))
        return NULL;
    mlk_topk *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->nq = nq;
    t->k = k;
    size_t n = nq * k;
    if (n == 0)
        n = 1;
    t->sim = malloc(n * sizeof *t->sim);
    t->id = malloc(n * sizeof *t->id);
    if (!t->sim || !t->id) {
        mlk_topk_destroy(&t);
        return NULL;
    }
    mlk_topk_clear(t);
    return t;
}

void mlk_topk_destroy(mlk_topk **t)
{
    if (!t || !*t)
        return;
    free((*t)->sim);
    free((*t)->id);
    free(*t);
    *t = NULL;
}

void mlk_topk_clear(mlk_topk *t)
{
    for (size_t i = 0; i < t->nq * t->k; i++) {
        t->sim[i] = -INFINITY;
        t->id[i] = -1;
    }
}

/* (s1, i1) ranks before (s2, i2): higher similarity, then lower id. */
static inline int ranks_before(double s1, int64_t i1, double s2, int64_t i2)
{
    return s1 > s2 || (s1 == s2 && i1 < i2);
}

int mlk_topk_push(mlk_topk *t, size_t q, double sim, int64_t id)
{
    if (sim != sim || id < 0 || q >= t->nq)
        return 0;
    size_t k = t->k;
    double *s = t->sim + q * k;
    int64_t *ids = t->id + q * k;
    if (ids[k - 1] >= 0 && !ranks_before(sim, id, s[k - 1], ids[k - 1]))
        return 0;
    size_t j = k - 1;
    while (j > 0 && (ids[j - 1] < 0 || ranks_before(sim, id, s[j - 1], ids[j - 1]))) {
        s[j] = s[j - 1];
        ids[j] = ids[j - 1];
        j--;
    }
    s[j] = sim;
    ids[j] = id;
    return 1;
}

size_t mlk_topk_count(const mlk_topk *t, size_t q)
{
    size_t n = 0;
    while (n < t->k && t->id[q * t->k + n] >= 0)
        n++;
    return n;
}

int mlk_topk_merge(mlk_topk *dst, const mlk_topk *src)
{
    if (!dst || !src || dst->nq != src->nq || dst->k != src->k)
        return MLOPS_EINVAL;
    for (size_t q = 0; q < src->nq; q++)
        for (size_t j = 0; j < src->k; j++) {
            int64_t id = src->id[q * src->k + j];
            if (id < 0)
                break;
            /* src is sorted: once one is rejected, the rest are too */
            if (!mlk_topk_push(dst, q, src->sim[q * src->k + j], id))
                break;
        }
    return 0;
}

void mlk_knn_normalize(float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * d;
        double ss = 0.0;
        for (size_t j = 0; j < d; j++)
            ss += (double)r[j] * r[j];
        if (ss == 0.0 || ss != ss)
            continue;
        float nrm = (float)sqrt(ss);
        for (size_t j = 0; j < d; j++)
            r[j] /= nrm;
    }
}

/* Threshold for query q: a float no greater than its k-th similarity
 * (so the scan never drops a candidate that could enter), or -inf while
 * the list is not full. */
static inline float threshold(const mlk_topk *t, size_t q)
{
    size_t last = q * t->k + t->k - 1;
    if (t->id[last] < 0)
        return -INFINITY;
    double w = t->sim[last];
    float f = (float)w;
    if ((double)f > w)
        f = nextafterf(f, -INFINITY);
    return f;
}

/* Offers one row of similarities (ids base..base+n-1) to query q. */
static void scan_row(mlk_topk *t, size_t q, const float *row, size_t n, int64_t base,
                     int64_t excl)
{
    float thr = threshold(t, q);
    size_t j = 0;
#if defined(__SSE2__)
    __m128 vt = _mm_set1_ps(thr);
    for (; j + 16 <= n; j += 16) {
        __m128 a = _mm_cmpge_ps(_mm_loadu_ps(row + j), vt);
        __m128 b = _mm_cmpge_ps(_mm_loadu_ps(row + j + 4), vt);
        __m128 c = _mm_cmpge_ps(_mm_loadu_ps(row + j + 8), vt);
        __m128 e = _mm_cmpge_ps(_mm_loadu_ps(row + j + 12), vt);
        if (!_mm_movemask_ps(_mm_or_ps(_mm_or_ps(a, b), _mm_or_ps(c, e))))
            continue;
        for (size_t u = j; u < j + 16; u++) {
            if (row[u] >= thr && base + (int64_t)u != excl &&
                mlk_topk_push(t, q, row[u], base + (int64_t)u))
                thr = threshold(t, q);
        }
        vt = _mm_set1_ps(thr);
    }
#endif
    for (; j < n; j++) {
        if (row[j] >= thr && base + (int64_t)j != excl &&
            mlk_topk_push(t, q, row[j], base + (int64_t)j))
            thr = threshold(t, q);
    }
}

int mlk_knn_search(const float *q, size_t nq, const float *x, size_t nx, size_t d,
                   int64_t id_base, const int64_t *exclude, mlk_topk *out,
                   const mlk_knn_opts *opts, char *err, size_t errlen)
{
    if (!out || out->nq != nq)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: result has %zu queries, expected %zu",
                      out ? out->nq : 0, nq);
    if (id_base < 0)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: negative id base %lld",
                      (long long)id_base);
    if (nq == 0 || nx == 0)
        return 0;
    if (!q || !x || d == 0)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: missing data or zero dimension");
    if (d > (size_t)INT32_MAX)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: dimension %zu too large", d);
    size_t tq = opts && opts->tile_q ? opts->tile_q : DEFAULT_TILE_Q;
    size_t tx = opts && opts->tile_x ? opts->tile_x : DEFAULT_TILE_X;
    if (tq > nq)
        tq = nq;
    if (tx > nx)
        tx = nx;
    if (tq > (size_t)INT32_MAX || tx > (size_t)INT32_MAX || tq > SIZE_MAX / sizeof(float) / tx)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: tile %zu x %zu too large", tq, tx);
    float *sims = malloc(tq * tx * sizeof *sims);
    if (!sims)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "knn: out of memory for a %zu x %zu tile", tq,
                      tx);
    for (size_t q0 = 0; q0 < nq; q0 += tq) {
        size_t mq = nq - q0 < tq ? nq - q0 : tq;
        for (size_t x0 = 0; x0 < nx; x0 += tx) {
            size_t mx = nx - x0 < tx ? nx - x0 : tx;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mq, (int)mx, (int)d, 1.0f,
                        q + q0 * d, (int)d, x + x0 * d, (int)d, 0.0f, sims, (int)mx);
            int64_t base = id_base + (int64_t)x0;
            for (size_t i = 0; i < mq; i++)
                scan_row(out, q0 + i, sims + i * mx, mx, base, exclude ? exclude[q0 + i] : -1);
        }
    }
    free(sims);
    return 0;
}

int mlk_knn_classify(const mlk_topk *t, const int32_t *labels, size_t nlabels,
                     mlk_knn_weights weights, int32_t *pred, char *err, size_t errlen)
{
    if (!t || !labels || !pred)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn classify: missing argument");
    if (weights != MLK_KNN_UNIFORM && weights != MLK_KNN_DISTANCE)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn classify: unknown weights %d",
                      (int)weights);
    size_t k = t->k;
    int32_t *lab = malloc(k * sizeof *lab);
    double *w = malloc(k * sizeof *w);
    if (!lab || !w) {
        free(lab);
        free(w);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "knn classify: out of memory");
    }
    int rc = 0;
    for (size_t q = 0; q < t->nq && rc == 0; q++) {
        size_t n = mlk_topk_count(t, q);
        if (n == 0) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "knn classify: query %zu has no neighbours", q);
            break;
        }
        int any_zero = 0;
        for (size_t j = 0; j < n; j++) {
            int64_t id = t->id[q * k + j];
            if ((uint64_t)id >= nlabels) {
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "knn classify: neighbour id %lld has no label (%zu labels)",
                            (long long)id, nlabels);
                break;
            }
            lab[j] = labels[id];
            if (weights == MLK_KNN_UNIFORM) {
                w[j] = 1.0;
            } else {
                /* scikit-learn: float32 1 - sim, clipped to [0, 2], then 1/d */
                float dist = 1.0f - (float)t->sim[q * k + j];
                dist = dist < 0.0f ? 0.0f : (dist > 2.0f ? 2.0f : dist);
                if (dist == 0.0f)
                    any_zero = 1;
                w[j] = dist == 0.0f ? INFINITY : (double)(1.0f / dist);
            }
        }
        if (rc)
            break;
        if (any_zero)
            for (size_t j = 0; j < n; j++)
                w[j] = isinf(w[j]) ? 1.0 : 0.0;
        /* sort (label, weight) by label, k is small: insertion sort */
        for (size_t j = 1; j < n; j++) {
            int32_t l = lab[j];
            double wj = w[j];
            size_t m = j;
            while (m > 0 && lab[m - 1] > l) {
                lab[m] = lab[m - 1];
                w[m] = w[m - 1];
                m--;
            }
            lab[m] = l;
            w[m] = wj;
        }
        int32_t best = lab[0];
        double best_w = -1.0;
        for (size_t j = 0; j < n;) {
            double sum = 0.0;
            size_t m = j;
            while (m < n && lab[m] == lab[j])
                sum += w[m++];
            if (sum > best_w) { /* strict: a tie keeps the smaller label */
                best_w = sum;
                best = lab[j];
            }
            j = m;
        }
        pred[q] = best;
    }
    free(lab);
    free(w);
    return rc;
}

double mlk_accuracy(const int32_t *pred, const int32_t *truth, size_t n)
{
    if (n == 0 || !pred || !truth)
        return 0.0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += pred[i] == truth[i];
    return (double)ok / (double)n;
}
