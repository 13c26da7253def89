/* test_clean.c: the dropna and IQR masks (clean.h), which run in blocks
 * of rows with a row-by-row tail, against the plain definition row by
 * row (pandas': a NaN or missing value drops the row; a value outside
 * [lo, hi], NaN included, drops it), for every length from 0 to 70 and
 * a few long ones, so that every tail length is met. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clean.h"
#include "frame.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_rng = 0x853c49e6748fea9bULL;
static uint64_t rnd(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static double value(void)
{
    static const double odd[] = {0.0, -0.0, INFINITY, -INFINITY, 1e300, -1e-300, 5.0, -5.0};
    uint64_t k = rnd() % 10;
    if (k == 0) return NAN;
    if (k == 1) return odd[rnd() % 8];
    return (double)(int64_t)(rnd() % 2001 - 1000) / 100;
}

static void test_masks_match_rows(void **state)
{
    (void)state;
    const char *names[3] = {"x", "s", "y"};
    const mlk_coltype types[3] = {MLK_F64, MLK_STR, MLK_F64};
    for (size_t trial = 0; trial < 80; trial++) {
        size_t n = trial <= 70 ? trial : 1000 + rnd() % 3000;
        mlk_frame *f = mlk_frame_new(3, names, types, n);
        assert_non_null(f);
        assert_int_equal(mlk_frame_reserve(f, n), 0);
        for (size_t r = 0; r < n; r++) {
            f->row_id[r] = (int64_t)r;
            f->cols[0].f64[r] = value();
            f->cols[2].f64[r] = value();
            int miss = rnd() % 7 == 0;
            assert_int_equal(mlk_frame_str_push(f, 1, r, "ab", miss ? 0 : 2, miss), 0);
        }
        f->nrows = n;
        uint8_t *keep = malloc(n + 1), *want = malloc(n + 1);
        size_t want_n = 0;
        for (size_t r = 0; r < n; r++) {
            want[r] = !isnan(f->cols[0].f64[r]) && !isnan(f->cols[2].f64[r]) &&
                      !f->cols[1].missing[r];
            want_n += want[r];
        }
        assert_int_equal(mlk_dropna_mask(f, NULL, 0, keep), want_n);
        if (n) assert_memory_equal(keep, want, n);
        /* a subset of the columns: only the string's flags */
        const size_t only_s[1] = {1};
        size_t s_n = 0;
        for (size_t r = 0; r < n; r++) s_n += !f->cols[1].missing[r];
        assert_int_equal(mlk_dropna_mask(f, only_s, 1, keep), s_n);
        for (size_t r = 0; r < n; r++) assert_int_equal(keep[r], !f->cols[1].missing[r]);

        /* IQR bounds over the dropna'd rows, inclusive, NaN fails */
        const size_t num[2] = {0, 2};
        const double lo[2] = {-3.5, -0.0}, hi[2] = {4.25, INFINITY};
        mlk_dropna_mask(f, NULL, 0, keep);
        want_n = 0;
        for (size_t r = 0; r < n; r++) {
            for (size_t i = 0; i < 2; i++) {
                double v = f->cols[num[i]].f64[r];
                want[r] &= (uint8_t)(v >= lo[i] && v <= hi[i]);
            }
            want_n += want[r];
        }
        assert_int_equal(mlk_iqr_mask(f, num, 2, lo, hi, keep), (long long)want_n);
        if (n) assert_memory_equal(keep, want, n);
        const double *cols[2] = {f->cols[0].f64, f->cols[2].f64};
        mlk_dropna_mask(f, NULL, 0, keep);
        assert_int_equal(mlk_iqr_mask_cols(cols, 2, n, lo, hi, keep), want_n);
        if (n) assert_memory_equal(keep, want, n);

        /* the view of the encoding gives the frame's dropna mask */
        uint8_t *enc;
        size_t len;
        assert_int_equal(mlk_frame_encode(f, &enc, &len), 0);
        mlk_frameview *v = NULL;
        assert_int_equal(mlk_frame_view(enc, len, &v), 0);
        size_t k1 = mlk_dropna_mask(f, NULL, 0, want);
        assert_int_equal(mlk_dropna_mask_view(v, 256, keep), k1);
        if (n) assert_memory_equal(keep, want, n);
        mlk_frame_view_destroy(&v);
        free(enc);
        free(keep);
        free(want);
        mlk_frame_destroy(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masks_match_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
