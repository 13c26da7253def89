/* clean.c: see clean.h. The comparisons are written exactly as pandas
 * evaluates them, so NaN fails both and inclusive bounds keep ties. */
#include "clean.h"
#include "err.h"
#include <math.h>
#include <string.h>

/* The masks run in blocks of BLK rows: a loop of a fixed count is one the
 * compiler turns into vector code at -O2 (its cheap cost model takes no
 * loop that needs a scalar tail); the tail runs row by row. */
#define BLK 16

/* keep[r] &= !isnan(v[r]): v[r] == v[r] is false only for NaN */
static void and_not_nan(uint8_t *restrict keep, const double *restrict v, size_t n)
{
    size_t r = 0;
    for (; r + BLK <= n; r += BLK)
        for (size_t k = 0; k < BLK; k++) keep[r + k] &= (uint8_t)(v[r + k] == v[r + k]);
    for (; r < n; r++) keep[r] &= (uint8_t)(v[r] == v[r]);
}

/* the same over n little-endian doubles at p (a view: not aligned) */
static void and_not_nan_bytes(uint8_t *restrict keep, const uint8_t *restrict p, size_t n)
{
    size_t r = 0;
    for (; r + BLK <= n; r += BLK) {
        double x[BLK];
        memcpy(x, p + r * 8, sizeof x);
        for (size_t k = 0; k < BLK; k++) keep[r + k] &= (uint8_t)(x[k] == x[k]);
    }
    for (; r < n; r++) {
        double x;
        memcpy(&x, p + r * 8, 8);
        keep[r] &= (uint8_t)(x == x);
    }
}

/* keep[r] &= !missing[r] (a viewed flag may be any byte: not 0 is missing) */
static void and_not_missing(uint8_t *restrict keep, const uint8_t *restrict missing, size_t n)
{
    size_t r = 0;
    for (; r + BLK <= n; r += BLK)
        for (size_t k = 0; k < BLK; k++) keep[r + k] &= (uint8_t)(missing[r + k] == 0);
    for (; r < n; r++) keep[r] &= (uint8_t)!missing[r];
}

/* keep[r] &= l <= v[r] <= h (NaN fails both) */
static void and_within(uint8_t *restrict keep, const double *restrict v, size_t n, double l, double h)
{
    size_t r = 0;
    for (; r + BLK <= n; r += BLK)
        for (size_t k = 0; k < BLK; k++)
            keep[r + k] &= (uint8_t)((v[r + k] >= l) & (v[r + k] <= h));
    for (; r < n; r++) keep[r] &= (uint8_t)((v[r] >= l) & (v[r] <= h));
}

static size_t count_kept(const uint8_t *keep, size_t n)
{
    size_t kept = 0, r = 0;
    for (; r + BLK <= n; r += BLK) {
        unsigned b = 0;
        for (size_t k = 0; k < BLK; k++) b += keep[r + k];
        kept += b;
    }
    for (; r < n; r++) kept += keep[r];
    return kept;
}

size_t mlk_dropna_mask(const mlk_frame *f, const size_t *cols, size_t ncols, uint8_t *keep)
{
    size_t n = f->nrows;
    size_t nc = cols ? ncols : f->ncols;
    memset(keep, 1, n);
    for (size_t i = 0; i < nc; i++) {
        size_t c = cols ? cols[i] : i;
        if (c >= f->ncols) continue;
        const mlk_col *col = &f->cols[c];
        if (col->type == MLK_F64) and_not_nan(keep, col->f64, n);
        else and_not_missing(keep, col->missing, n);
    }
    return count_kept(keep, n);
}

void mlk_iqr_bounds(double q1, double q3, double k, double *lo, double *hi)
{
    double iqr = q3 - q1;
    double span = k * iqr;
    *lo = q1 - span;
    *hi = q3 + span;
}

long long mlk_iqr_mask(const mlk_frame *f, const size_t *cols, size_t ncols, const double *lo,
                       const double *hi, uint8_t *keep)
{
    size_t n = f->nrows;
    for (size_t i = 0; i < ncols; i++)
        if (cols[i] >= f->ncols || f->cols[cols[i]].type != MLK_F64) return MLOPS_EINVAL;
    for (size_t i = 0; i < ncols; i++) and_within(keep, f->cols[cols[i]].f64, n, lo[i], hi[i]);
    return (long long)count_kept(keep, n);
}

size_t mlk_dropna_mask_view(const mlk_frameview *v, size_t ncols, uint8_t *keep)
{
    size_t n = v->nrows;
    memset(keep, 1, n);
    for (size_t c = 0; c < v->ncols && c < ncols; c++) {
        const mlk_colview *col = &v->cols[c];
        if (col->type == MLK_F64) and_not_nan_bytes(keep, col->f64, n);
        else and_not_missing(keep, col->missing, n);
    }
    return count_kept(keep, n);
}

size_t mlk_iqr_mask_cols(const double *const *cols, size_t ncols, size_t n, const double *lo,
                         const double *hi, uint8_t *keep)
{
    for (size_t i = 0; i < ncols; i++) and_within(keep, cols[i], n, lo[i], hi[i]);
    return count_kept(keep, n);
}
