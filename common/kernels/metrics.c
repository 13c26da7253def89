/* metrics.c: see metrics.h.
 *
 * A partial holds: the confusion matrix (counts), the number of rows and
 * of rows with probabilities, the log-loss sum as a double-double
 * (hi + lo), and for 2 classes the run-length list of distinct scores
 * (ascending) with their positive and negative counts.
 *
 * Encoding: "MLKM", u32 version = 1, u32 K, u32 reserved = 0, f64 eps,
 * u64 n, u64 n_proba, f64 loss_hi, f64 loss_lo, u64 conf[K*K],
 * u64 nruns, then per run f64 score, u64 npos, u64 nneg; little-endian
 * (host order, as frame.c). */
#include "metrics.h"
#include "err.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double score;
    uint64_t npos, nneg;
} score_run;

struct mlk_metrics {
    uint32_t k;
    double eps;
    uint64_t n, n_proba;
    double loss_hi, loss_lo;
    uint64_t *conf;
    score_run *runs;
    size_t nruns, runs_cap;
};

mlk_metrics *mlk_metrics_new(uint32_t nclasses, double eps)
{
    if (nclasses < 2 || nclasses > MLK_METRICS_MAX_CLASSES) return NULL;
    if (!(eps > 0)) eps = DBL_EPSILON;
    if (!(eps < 0.5)) return NULL;
    mlk_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->k = nclasses;
    m->eps = eps;
    m->conf = calloc((size_t)nclasses * nclasses, sizeof *m->conf);
    if (!m->conf) mlk_metrics_destroy(&m);
    return m;
}

void mlk_metrics_destroy(mlk_metrics **pm)
{
    if (!pm || !*pm) return;
    free((*pm)->conf);
    free((*pm)->runs);
    free(*pm);
    *pm = NULL;
}

uint32_t mlk_metrics_nclasses(const mlk_metrics *m)
{
    return m->k;
}

uint64_t mlk_metrics_rows(const mlk_metrics *m)
{
    return m->n;
}

const uint64_t *mlk_metrics_confusion(const mlk_metrics *m)
{
    return m->conf;
}

/* numpy's pairwise summation (pairwise_sum_DOUBLE), so that a row sum
 * has the same rounding as ndarray.sum(axis=1). */
static double pairwise_sum(const double *a, size_t n)
{
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* hi + lo += x, error-free (Knuth's TwoSum). */
static inline void dd_add(double *hi, double *lo, double x)
{
    double s = *hi + x;
    double bp = s - *hi;
    double e = (*hi - (s - bp)) + (x - bp);
    *hi = s;
    *lo += e;
}

static int cmp_run(const void *a, const void *b)
{
    double x = ((const score_run *)a)->score, y = ((const score_run *)b)->score;
    return (x > y) - (x < y);
}

/* Merge sorted run lists a (na) and b (nb) into dst; returns its length.
 * Equal scores (including -0.0 and 0.0) become one run. */
static size_t merge_runs(score_run *dst, const score_run *a, size_t na, const score_run *b, size_t nb)
{
    size_t i = 0, j = 0, w = 0;
    while (i < na || j < nb) {
        score_run r;
        if (j >= nb || (i < na && a[i].score < b[j].score)) r = a[i++];
        else if (i >= na || b[j].score < a[i].score) r = b[j++];
        else {
            r = a[i++];
            r.npos += b[j].npos;
            r.nneg += b[j++].nneg;
        }
        if (w > 0 && dst[w - 1].score == r.score) {
            dst[w - 1].npos += r.npos;
            dst[w - 1].nneg += r.nneg;
        } else {
            dst[w++] = r;
        }
    }
    return w;
}

/* The run list of n scores with their labels (pos[i]: class 1) into
 * add, ascending, equal scores one run, as qsort by score and
 * merge_runs make it; returns its length. For scores without the sign
 * bit (probabilities) a double's bits order as its value, so the bits
 * with the label below them are sorted as integers, 11 bits a pass,
 * skipping a pass where every key has the same digit: qsort's calls of
 * cmp_run were most of a cv search's scoring. Equal keys are the same
 * score and label, so their order cannot show. tmp: 2 n keys. Any
 * other score (negative, -0.0): qsort. */
#define RADIX_BITS 11
#define RADIX_N (1u << RADIX_BITS)
#define RADIX_PASSES ((64 + RADIX_BITS - 1) / RADIX_BITS)
static size_t score_runs(score_run *add, size_t n, const double *score, size_t stride, const int32_t *y_true,
                         uint64_t *tmp, size_t (*cnt)[RADIX_N])
{
    uint64_t *a = tmp, *b = tmp + n;
    int plain = 1;
    for (size_t i = 0; i < n && plain; i++) {
        uint64_t u;
        memcpy(&u, &score[i * stride], 8);
        plain = !(u >> 63);
        a[i] = u << 1 | (uint64_t)(y_true[i] == 1);
    }
    if (!plain) {
        for (size_t i = 0; i < n; i++) {
            add[i].score = score[i * stride];
            add[i].npos = y_true[i] == 1;
            add[i].nneg = y_true[i] != 1;
        }
        qsort(add, n, sizeof *add, cmp_run);
        return merge_runs(add, add, n, NULL, 0);
    }
    memset(cnt, 0, RADIX_PASSES * sizeof *cnt);
    for (size_t i = 0; i < n; i++)
        for (unsigned d = 0; d < RADIX_PASSES; d++) cnt[d][(a[i] >> (d * RADIX_BITS)) & (RADIX_N - 1)]++;
    for (unsigned d = 0; d < RADIX_PASSES; d++) {
        unsigned sh = d * RADIX_BITS;
        if (cnt[d][(a[0] >> sh) & (RADIX_N - 1)] == n) continue; /* one digit: the order stands */
        size_t sum = 0;
        for (unsigned v = 0; v < RADIX_N; v++) {
            size_t c = cnt[d][v];
            cnt[d][v] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) b[cnt[d][(a[i] >> sh) & (RADIX_N - 1)]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = a[i] >> 1;
        double sc;
        memcpy(&sc, &bits, 8);
        if (w == 0 || add[w - 1].score != sc) {
            add[w].score = sc;
            add[w].npos = add[w].nneg = 0;
            w++;
        }
        if (a[i] & 1) add[w - 1].npos++;
        else add[w - 1].nneg++;
    }
    return w;
}

/* m->runs = merge(m->runs, add[0..nadd)). */
static int runs_merge_into(mlk_metrics *m, const score_run *add, size_t nadd)
{
    if (nadd == 0) return 0;
    size_t cap = m->nruns + nadd;
    score_run *dst = malloc(cap * sizeof *dst);
    if (!dst) return MLOPS_ENOMEM;
    m->nruns = merge_runs(dst, m->runs, m->nruns, add, nadd);
    free(m->runs);
    m->runs = dst;
    m->runs_cap = cap;
    return 0;
}

#define MAX_PROBA_ROWS ((uint64_t)1 << 32)

int mlk_metrics_add(mlk_metrics *m, size_t n, const int32_t *y_true, const int32_t *y_pred,
                    const double *proba, char *err, size_t errlen)
{
    if (!m || (n && !y_true) || (n && !y_pred && !proba))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: NULL argument");
    const uint32_t k = m->k;
    for (size_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || (uint32_t)y_true[i] >= k)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "metrics: row %zu: true class %d not in [0, %u)", i, (int)y_true[i], k);
        if (y_pred && (y_pred[i] < 0 || (uint32_t)y_pred[i] >= k))
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "metrics: row %zu: predicted class %d not in [0, %u)", i,
                                (int)y_pred[i], k);
        if (proba)
            for (uint32_t c = 0; c < k; c++)
                if (!isfinite(proba[i * k + c]))
                    return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                        "metrics: row %zu: probability of class %u is not finite", i, c);
    }
    if (proba && m->n_proba + n > MAX_PROBA_ROWS)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: more than 2^32 rows with probabilities");

    double *row = NULL;
    score_run *add = NULL;
    uint64_t *keys = NULL;
    size_t (*cnt)[RADIX_N] = NULL;
    if (proba) {
        row = malloc(k * sizeof *row);
        if (k == 2 && n) {
            add = malloc(n * sizeof *add);
            keys = malloc(2 * n * sizeof *keys);
            cnt = malloc(RADIX_PASSES * sizeof *cnt);
        }
        if (!row || (k == 2 && n && (!add || !keys || !cnt))) {
            free(row);
            free(add);
            free(keys);
            free(cnt);
            return mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics: out of memory");
        }
        if (add) {
            /* the scores' runs, then merged */
            size_t w = score_runs(add, n, proba + 1, 2, y_true, keys, cnt);
            free(keys);
            free(cnt);
            if (runs_merge_into(m, add, w) != 0) {
                free(row);
                free(add);
                return mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics: out of memory");
            }
        }
    }
    /* Nothing can fail from here on. */
    const double eps = m->eps, hi = 1.0 - m->eps;
    for (size_t i = 0; i < n; i++) {
        int32_t t = y_true[i], p;
        if (y_pred) {
            p = y_pred[i];
        } else {
            const double *pr = proba + i * k;
            p = 0;
            for (uint32_t c = 1; c < k; c++)
                if (pr[c] > pr[p]) p = (int32_t)c;
        }
        m->conf[(size_t)t * k + (size_t)p]++;
        if (proba) {
            const double *pr = proba + i * k;
            for (uint32_t c = 0; c < k; c++) row[c] = pr[c] < eps ? eps : (pr[c] > hi ? hi : pr[c]);
            double s = pairwise_sum(row, k);
            dd_add(&m->loss_hi, &m->loss_lo, -log(row[t] / s));
        }
    }
    m->n += n;
    if (proba) m->n_proba += n;
    free(row);
    free(add);
    return 0;
}

int mlk_metrics_merge(mlk_metrics *into, const mlk_metrics *from, char *err, size_t errlen)
{
    if (!into || !from) return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: NULL argument");
    if (into->k != from->k || into->eps != from->eps)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "metrics: cannot merge partials of %u and %u classes (eps %g, %g)",
                            into->k, from->k, into->eps, from->eps);
    if (into->n_proba + from->n_proba > MAX_PROBA_ROWS)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: more than 2^32 rows with probabilities");
    if (runs_merge_into(into, from->runs, from->nruns) != 0)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics: out of memory");
    for (size_t i = 0; i < (size_t)into->k * into->k; i++) into->conf[i] += from->conf[i];
    into->n += from->n;
    into->n_proba += from->n_proba;
    dd_add(&into->loss_hi, &into->loss_lo, from->loss_hi);
    dd_add(&into->loss_hi, &into->loss_lo, from->loss_lo);
    return 0;
}

/* --- results -------------------------------------------------------- */

/* scikit-learn's _prf_divide with zero_division = 0. */
static inline double prf_div(double num, double den)
{
    return den == 0.0 ? 0.0 : num / den;
}

static inline double f1_of(double p, double r)
{
    double den = 1.0 * p + r;
    if (den == 0.0) den = 1.0;
    return 2.0 * p * r / den;
}

int mlk_metrics_compute(const mlk_metrics *m, mlk_metrics_result *r, char *err, size_t errlen)
{
    if (!m || !r) return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: NULL argument");
    memset(r, 0, sizeof *r);
    if (m->n == 0) return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: no rows to evaluate");
    const uint32_t k = m->k;
    uint64_t correct = 0;
    for (uint32_t c = 0; c < k; c++) correct += m->conf[(size_t)c * k + c];
    r->n = m->n;
    r->accuracy = (double)correct / (double)m->n;

    /* Per class: tp, predicted (column sum), true (row sum). */
    double *ps = malloc(3 * (size_t)k * sizeof *ps);
    if (!ps) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics: out of memory");
    double *rs = ps + k, *fs = ps + 2 * (size_t)k;
    size_t npresent = 0;
    for (uint32_t c = 0; c < k; c++) {
        uint64_t tp = m->conf[(size_t)c * k + c], pred = 0, tru = 0;
        for (uint32_t o = 0; o < k; o++) {
            pred += m->conf[(size_t)o * k + c];
            tru += m->conf[(size_t)c * k + o];
        }
        double p = prf_div((double)tp, (double)pred), rc = prf_div((double)tp, (double)tru);
        if (k == 2) {
            if (c == 1) {
                r->precision = p;
                r->recall = rc;
                r->f1 = f1_of(p, rc);
            }
        } else if (pred + tru > 0) { /* macro over labels present */
            ps[npresent] = p;
            rs[npresent] = rc;
            fs[npresent] = f1_of(p, rc);
            npresent++;
        }
    }
    if (k > 2) {
        r->precision = pairwise_sum(ps, npresent) / (double)npresent;
        r->recall = pairwise_sum(rs, npresent) / (double)npresent;
        r->f1 = pairwise_sum(fs, npresent) / (double)npresent;
    }
    free(ps);

    if (m->n_proba == m->n) {
        r->has_log_loss = 1;
        r->log_loss = (m->loss_hi + m->loss_lo) / (double)m->n;
    }
    if (k == 2 && m->n_proba == m->n) {
        uint64_t pos = 0, neg = 0, u2 = 0;
        for (size_t i = 0; i < m->nruns; i++) {
            /* positives here beat every negative below and tie (1/2)
             * with the negatives at this score: 2U counts in halves. */
            u2 += m->runs[i].npos * (2 * neg + m->runs[i].nneg);
            pos += m->runs[i].npos;
            neg += m->runs[i].nneg;
        }
        if (pos > 0 && neg > 0) {
            r->has_auc = 1;
            r->roc_auc = (double)u2 / (double)(2 * pos * neg);
        }
    }
    return 0;
}

/* --- curves --------------------------------------------------------- */

int mlk_metrics_curves_of(const mlk_metrics *m, mlk_metrics_curves *c, char *err, size_t errlen)
{
    if (!m || !c) return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: NULL argument");
    memset(c, 0, sizeof *c);
    if (m->k != 2 || m->n == 0 || m->n_proba != m->n)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "metrics: curves need 2 classes and a probability for every row");
    uint64_t pos = 0, neg = 0;
    for (size_t i = 0; i < m->nruns; i++) {
        pos += m->runs[i].npos;
        neg += m->runs[i].nneg;
    }
    if (!pos || !neg)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics: curves need both classes");
    /* ROC: point p (0 = the origin, then one per run from the highest
     * score down); keep p = round(i * (npoints - 1) / (MLK_ROC_POINTS - 1)) */
    size_t npoints = m->nruns + 1;
    size_t keep = npoints < MLK_ROC_POINTS ? npoints : MLK_ROC_POINTS;
    uint64_t tp = 0, fp = 0;
    size_t next = 0, p = 0;
    for (size_t i = 0; i < keep; i++) {
        size_t want = keep == npoints ? i : (size_t)((double)i * (double)(npoints - 1) /
                                                       (double)(keep - 1) + 0.5);
        while (p < want) { /* advance to point `want` */
            const score_run *r = &m->runs[m->nruns - 1 - p];
            tp += r->npos;
            fp += r->nneg;
            p++;
        }
        c->fpr[next] = (double)fp / (double)neg;
        c->tpr[next] = (double)tp / (double)pos;
        c->threshold[next] = p == 0 ? 2.0 : m->runs[m->nruns - p].score;
        next++;
    }
    c->nroc = next;
    /* calibration: numpy's linspace(0, 1, 11) edges are i * 0.1 */
    double sum[MLK_CALIB_BINS] = {0};
    uint64_t npos[MLK_CALIB_BINS] = {0}, cnt[MLK_CALIB_BINS] = {0};
    for (size_t i = 0; i < m->nruns; i++) {
        const score_run *r = &m->runs[i];
        size_t b = 0;
        while (b + 1 < MLK_CALIB_BINS && (double)(b + 1) * (1.0 / MLK_CALIB_BINS) < r->score) b++;
        uint64_t n = r->npos + r->nneg;
        sum[b] += r->score * (double)n;
        npos[b] += r->npos;
        cnt[b] += n;
    }
    for (size_t b = 0; b < MLK_CALIB_BINS; b++) {
        if (!cnt[b]) continue;
        c->prob_pred[c->ncal] = sum[b] / (double)cnt[b];
        c->prob_true[c->ncal] = (double)npos[b] / (double)cnt[b];
        c->count[c->ncal] = cnt[b];
        c->ncal++;
    }
    return 0;
}

/* --- encoding ------------------------------------------------------- */

#define MET_MAGIC "MLKM"
#define MET_VERSION 1u
#define MET_HDR (4 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 8)

int mlk_metrics_encode(const mlk_metrics *m, uint8_t **out, size_t *outlen)
{
    if (!m || !out || !outlen) return MLOPS_EINVAL;
    size_t kk = (size_t)m->k * m->k;
    size_t len = MET_HDR + kk * 8 + 8 + m->nruns * 24;
    uint8_t *b = malloc(len), *p = b;
    if (!b) return MLOPS_ENOMEM;
    uint32_t ver = MET_VERSION, zero = 0;
    uint64_t nr = m->nruns;
    memcpy(p, MET_MAGIC, 4); p += 4;
    memcpy(p, &ver, 4); p += 4;
    memcpy(p, &m->k, 4); p += 4;
    memcpy(p, &zero, 4); p += 4;
    memcpy(p, &m->eps, 8); p += 8;
    memcpy(p, &m->n, 8); p += 8;
    memcpy(p, &m->n_proba, 8); p += 8;
    memcpy(p, &m->loss_hi, 8); p += 8;
    memcpy(p, &m->loss_lo, 8); p += 8;
    memcpy(p, m->conf, kk * 8); p += kk * 8;
    memcpy(p, &nr, 8); p += 8;
    for (size_t i = 0; i < m->nruns; i++) {
        memcpy(p, &m->runs[i].score, 8);
        memcpy(p + 8, &m->runs[i].npos, 8);
        memcpy(p + 16, &m->runs[i].nneg, 8);
        p += 24;
    }
    *out = b;
    *outlen = len;
    return 0;
}

int mlk_metrics_decode(const uint8_t *buf, size_t len, mlk_metrics **out, char *err, size_t errlen)
{
    if (!out) return mlops_seterr(err, errlen, MLOPS_EINVAL, "metrics decode: NULL argument");
    *out = NULL;
    if (!buf || len < MET_HDR)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: buffer of %zu bytes is too short",
                            len);
    if (memcmp(buf, MET_MAGIC, 4) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: bad magic");
    uint32_t ver, k, resv;
    double eps, hi, lo;
    uint64_t n, np;
    memcpy(&ver, buf + 4, 4);
    memcpy(&k, buf + 8, 4);
    memcpy(&resv, buf + 12, 4);
    memcpy(&eps, buf + 16, 8);
    memcpy(&n, buf + 24, 8);
    memcpy(&np, buf + 32, 8);
    memcpy(&hi, buf + 40, 8);
    memcpy(&lo, buf + 48, 8);
    if (ver != MET_VERSION || resv != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: unsupported version %u", ver);
    if (k < 2 || k > MLK_METRICS_MAX_CLASSES || !(eps > 0 && eps < 0.5))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: bad classes %u or eps %g", k, eps);
    if (np > n || np > MAX_PROBA_ROWS || !isfinite(hi) || !isfinite(lo) || hi < 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: bad row counts or loss sum");
    size_t kk = (size_t)k * k;
    size_t rest = len - MET_HDR;
    if (rest / 8 < kk + 1)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: truncated confusion matrix");
    rest -= (kk + 1) * 8;
    uint64_t nruns;
    memcpy(&nruns, buf + MET_HDR + kk * 8, 8);
    if (nruns > rest / 24 || nruns * 24 != rest)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "metrics decode: %llu score runs do not match the %zu bytes left",
                            (unsigned long long)nruns, rest);
    if (k != 2 && nruns != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: score runs for %u classes", k);
    mlk_metrics *m = mlk_metrics_new(k, eps);
    if (!m) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics decode: out of memory");
    m->n = n;
    m->n_proba = np;
    m->loss_hi = hi;
    m->loss_lo = lo;
    memcpy(m->conf, buf + MET_HDR, kk * 8);
    int rc = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < kk; i++) {
        if (m->conf[i] > n - total) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: confusion counts exceed %llu rows",
                              (unsigned long long)n);
            goto done;
        }
        total += m->conf[i];
    }
    if (total != n) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: confusion counts sum to %llu, not %llu",
                          (unsigned long long)total, (unsigned long long)n);
        goto done;
    }
    if (nruns) {
        m->runs = malloc((size_t)nruns * sizeof *m->runs);
        if (!m->runs) {
            rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics decode: out of memory");
            goto done;
        }
        m->runs_cap = m->nruns = (size_t)nruns;
        const uint8_t *p = buf + MET_HDR + kk * 8 + 8;
        uint64_t cnt = 0;
        for (size_t i = 0; i < m->nruns; i++, p += 24) {
            score_run *r = &m->runs[i];
            memcpy(&r->score, p, 8);
            memcpy(&r->npos, p + 8, 8);
            memcpy(&r->nneg, p + 16, 8);
            if (!isfinite(r->score) || (i > 0 && !(r->score > m->runs[i - 1].score)) ||
                r->npos > np || r->nneg > np || r->npos + r->nneg == 0 ||
                r->npos + r->nneg > np - cnt) {
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: bad score run %zu", i);
                goto done;
            }
            cnt += r->npos + r->nneg;
        }
        if (cnt != np) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: score runs hold %llu rows, not %llu",
                              (unsigned long long)cnt, (unsigned long long)np);
            goto done;
        }
    } else if (k == 2 && np != 0) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "metrics decode: rows with scores but no score runs");
        goto done;
    }
done:
    if (rc) mlk_metrics_destroy(&m);
    *out = m;
    return rc;
}
