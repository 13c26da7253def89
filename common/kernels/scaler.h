/* scaler.h: StandardScaler statistics as mergeable per-column moments.
 *
 * Why moments: each worker summarises its shard as {count, mean, M2}
 * (M2 = sum of squared deviations from the shard mean), the coordinator
 * merges them with Chan et al.'s parallel formula and finalises to the
 * mean and scale scikit-learn 1.2's StandardScaler would fit on all the
 * rows at once (population variance, ddof = 0). NaN values are ignored,
 * as scikit-learn does. A shard's moments use pairwise summation and a
 * corrected two-pass variance, so they stay accurate for large shards.
 *
 * Near-constant columns follow scikit-learn's _is_constant_feature:
 * scale = 1 where var <= n*eps*var + (n*mean*eps)^2 (eps = DBL_EPSILON),
 * which includes var == 0; otherwise scale = sqrt(var). */
#ifndef MLK_SCALER_H
#define MLK_SCALER_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t n;  /* non-NaN values seen */
    double mean; /* their mean */
    double m2;   /* sum of squared deviations from mean */
} mlk_moments;

/* Moments of v[0..n) (NaN skipped), computed in two passes. */
mlk_moments mlk_moments_of(const double *v, size_t n);

/* dst := moments of the union of dst's and src's values (Chan). */
void mlk_moments_merge(mlk_moments *dst, const mlk_moments *src);

/* Fit result: mean, population variance and scale (see above).
 * MLOPS_EINVAL if m->n == 0. */
int mlk_scaler_finalize(const mlk_moments *m, double *mean, double *var, double *scale);

/* v[i] = (v[i] - mean) / scale, in place, as StandardScaler.transform. */
void mlk_scaler_transform(double *v, size_t n, double mean, double scale);

/* ncols moments to new malloc'd bytes ("MLKM" u32 version=1, u32 ncols,
 * then u64 n, f64 mean, f64 m2 per column, little-endian), and back. The
 * buffer may be garbage: decode checks the size, magic and that every
 * entry is sane (finite, m2 >= 0, mean == 0 when n == 0) and returns
 * MLOPS_EPARSE otherwise. *out from decode is malloc'd (ncols entries). */
int mlk_moments_encode(const mlk_moments *m, size_t ncols, uint8_t **buf, size_t *len);
int mlk_moments_decode(const uint8_t *buf, size_t len, mlk_moments **out, size_t *ncols);

#endif
