/* clean.h: the row filters of the cleaning stage, pandas' way:
 * dropna(subset=used columns), then the IQR outlier filter
 *   df[((df[c] >= q1 - k*iqr) & (df[c] <= q3 + k*iqr)) for all numeric c]
 * with q1, q3 the exact quartiles (quantile.h) of each numeric column
 * over the rows left after dropna, all computed before any row is
 * dropped by the IQR filter.
 *
 * Why a module of its own: workers apply these masks to their shards
 * while the coordinator only sees quartiles; keeping the bound and the
 * comparison here makes both sides use the same arithmetic. */
#ifndef MLK_CLEAN_H
#define MLK_CLEAN_H
#include "frame.h"
#include <stddef.h>
#include <stdint.h>

/* keep[r] = 1 if row r has no missing value in columns cols[0..ncols)
 * of f (every column when cols is NULL), else 0. Returns the number of
 * rows kept. */
size_t mlk_dropna_mask(const mlk_frame *f, const size_t *cols, size_t ncols, uint8_t *keep);

/* pandas' bounds: iqr = q3 - q1, lo = q1 - k*iqr, hi = q3 + k*iqr,
 * each operation rounded in double as Python does. */
void mlk_iqr_bounds(double q1, double q3, double k, double *lo, double *hi);

/* For each numeric (MLK_F64) column cols[i], clear keep[r] where the
 * value is outside [lo[i], hi[i]] (a NaN value is outside, as in
 * pandas). keep must already be filled (e.g. by mlk_dropna_mask).
 * Returns the number of rows still kept, or MLOPS_EINVAL (negative) if
 * a column is out of range or not numeric. */
long long mlk_iqr_mask(const mlk_frame *f, const size_t *cols, size_t ncols, const double *lo,
                       const double *hi, uint8_t *keep);

/* mlk_dropna_mask over the first ncols columns (at most all) of a
 * viewed encoding (frame.h): keep[r] = 1 if row r has no NaN number and
 * no missing string there. Returns the number of rows kept. */
size_t mlk_dropna_mask_view(const mlk_frameview *v, size_t ncols, uint8_t *keep);

/* mlk_iqr_mask over columns given as arrays: cols[i][0..n) against
 * [lo[i], hi[i]]. Returns the number of rows still kept. */
size_t mlk_iqr_mask_cols(const double *const *cols, size_t ncols, size_t n, const double *lo,
                         const double *hi, uint8_t *keep);

#endif
