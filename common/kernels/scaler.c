/* scaler.c: see scaler.h. */
#include "scaler.h"
#include "err.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pairwise sum of f(v[i]) over non-NaN v, for f = identity (sq = 0),
 * x - c (sq = 0, with c) or (x - c)^2 (sq = 1). Blocks of 128 are
 * summed with 8 accumulators, larger ranges split in halves, so the
 * rounding error grows with log n, as numpy's sum. */
static double psum(const double *v, size_t n, double c, int sq)
{
    if (n <= 128) {
        double a[8] = {0};
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) {
                double x = v[i + k];
                double d = isnan(x) ? 0.0 : x - c;
                a[k] += sq ? d * d : d;
            }
        double s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        for (; i < n; i++) {
            double x = v[i];
            double d = isnan(x) ? 0.0 : x - c;
            s += sq ? d * d : d;
        }
        return s;
    }
    size_t h = (n / 2) & ~(size_t)7;
    return psum(v, h, c, sq) + psum(v + h, n - h, c, sq);
}

mlk_moments mlk_moments_of(const double *v, size_t n)
{
    mlk_moments m = {0, 0.0, 0.0};
    for (size_t i = 0; i < n; i++) m.n += !isnan(v[i]);
    if (!m.n) return m;
    double cnt = (double)m.n;
    m.mean = psum(v, n, 0.0, 0) / cnt;
    double corr = psum(v, n, m.mean, 0);
    m.m2 = psum(v, n, m.mean, 1) - corr * corr / cnt;
    if (m.m2 < 0) m.m2 = 0;
    return m;
}

void mlk_moments_merge(mlk_moments *dst, const mlk_moments *src)
{
    if (!src->n) return;
    if (!dst->n) {
        *dst = *src;
        return;
    }
    double na = (double)dst->n, nb = (double)src->n, n = na + nb;
    double delta = src->mean - dst->mean;
    dst->mean = dst->mean + delta * (nb / n);
    dst->m2 = dst->m2 + src->m2 + delta * delta * (na * nb / n);
    dst->n += src->n;
}

int mlk_scaler_finalize(const mlk_moments *m, double *mean, double *var, double *scale)
{
    if (!m->n) return MLOPS_EINVAL;
    double n = (double)m->n;
    double v = m->m2 / n;
    *mean = m->mean;
    *var = v;
    double eps = DBL_EPSILON;
    double b = n * m->mean * eps;
    double upper = n * eps * v + b * b;
    *scale = v <= upper ? 1.0 : sqrt(v);
    return 0;
}

void mlk_scaler_transform(double *v, size_t n, double mean, double scale)
{
    for (size_t i = 0; i < n; i++) {
        double x = v[i] - mean;
        v[i] = x / scale;
    }
}

int mlk_moments_encode(const mlk_moments *m, size_t ncols, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (ncols > UINT32_MAX) return MLOPS_EINVAL;
    size_t sz = 12 + ncols * 24;
    uint8_t *b = malloc(sz), *p = b;
    if (!b) return MLOPS_ENOMEM;
    uint32_t ver = 1, nc = (uint32_t)ncols;
    memcpy(p, "MLKM", 4);
    memcpy(p + 4, &ver, 4);
    memcpy(p + 8, &nc, 4);
    p += 12;
    for (size_t c = 0; c < ncols; c++, p += 24) {
        memcpy(p, &m[c].n, 8);
        memcpy(p + 8, &m[c].mean, 8);
        memcpy(p + 16, &m[c].m2, 8);
    }
    *buf = b;
    *len = sz;
    return 0;
}

int mlk_moments_decode(const uint8_t *buf, size_t len, mlk_moments **out, size_t *ncols)
{
    *out = NULL;
    *ncols = 0;
    uint32_t ver, nc;
    if (!buf || len < 12 || memcmp(buf, "MLKM", 4) != 0) return MLOPS_EPARSE;
    memcpy(&ver, buf + 4, 4);
    memcpy(&nc, buf + 8, 4);
    if (ver != 1 || (len - 12) / 24 != nc || (len - 12) % 24 != 0) return MLOPS_EPARSE;
    mlk_moments *m = malloc((nc ? nc : 1) * sizeof *m);
    if (!m) return MLOPS_ENOMEM;
    const uint8_t *p = buf + 12;
    for (uint32_t c = 0; c < nc; c++, p += 24) {
        memcpy(&m[c].n, p, 8);
        memcpy(&m[c].mean, p + 8, 8);
        memcpy(&m[c].m2, p + 16, 8);
        if (!isfinite(m[c].mean) || !isfinite(m[c].m2) || m[c].m2 < 0 ||
            (m[c].n == 0 && (m[c].mean != 0 || m[c].m2 != 0))) {
            free(m);
            return MLOPS_EPARSE;
        }
    }
    *out = m;
    *ncols = nc;
    return 0;
}
