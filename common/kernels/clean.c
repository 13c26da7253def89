/* clean.c: see clean.h. The comparisons are written exactly as pandas
 * evaluates them, so NaN fails both and inclusive bounds keep ties. */
#include "clean.h"
#include "err.h"
#include <math.h>
#include <string.h>

size_t mlk_dropna_mask(const mlk_frame *f, const size_t *cols, size_t ncols, uint8_t *keep)
{
    size_t n = f->nrows, kept = 0;
    size_t nc = cols ? ncols : f->ncols;
    for (size_t r = 0; r < n; r++) keep[r] = 1;
    for (size_t i = 0; i < nc; i++) {
        size_t c = cols ? cols[i] : i;
        if (c >= f->ncols) continue;
        const mlk_col *col = &f->cols[c];
        if (col->type == MLK_F64) {
            for (size_t r = 0; r < n; r++) keep[r] &= (uint8_t)!isnan(col->f64[r]);
        } else {
            for (size_t r = 0; r < n; r++) keep[r] &= (uint8_t)!col->missing[r];
        }
    }
    for (size_t r = 0; r < n; r++) kept += keep[r];
    return kept;
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
    for (size_t i = 0; i < ncols; i++) {
        const double *v = f->cols[cols[i]].f64;
        double l = lo[i], h = hi[i];
        for (size_t r = 0; r < n; r++) keep[r] &= (uint8_t)((v[r] >= l) & (v[r] <= h));
    }
    long long kept = 0;
    for (size_t r = 0; r < n; r++) kept += keep[r];
    return kept;
}

size_t mlk_dropna_mask_view(const mlk_frameview *v, size_t ncols, uint8_t *keep)
{
    size_t n = v->nrows, kept = 0;
    memset(keep, 1, n);
    for (size_t c = 0; c < v->ncols && c < ncols; c++) {
        const mlk_colview *col = &v->cols[c];
        if (col->type == MLK_F64) {
            for (size_t r = 0; r < n; r++) {
                double x;
                memcpy(&x, col->f64 + r * 8, 8);
                keep[r] &= (uint8_t)!isnan(x);
            }
        } else {
            for (size_t r = 0; r < n; r++) keep[r] &= (uint8_t)!col->missing[r];
        }
    }
    for (size_t r = 0; r < n; r++) kept += keep[r];
    return kept;
}

size_t mlk_iqr_mask_cols(const double *const *cols, size_t ncols, size_t n, const double *lo,
                         const double *hi, uint8_t *keep)
{
    for (size_t i = 0; i < ncols; i++) {
        const double *v = cols[i];
        double l = lo[i], h = hi[i];
        for (size_t r = 0; r < n; r++) keep[r] &= (uint8_t)((v[r] >= l) & (v[r] <= h));
    }
    size_t kept = 0;
    for (size_t r = 0; r < n; r++) kept += keep[r];
    return kept;
}
