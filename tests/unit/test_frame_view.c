/* test_frame_view.c: views of encoded frames (frame.h) against the
 * decode path they replace in clean's tasks: on random frames (numbers
 * with NaNs, strings with missing and empty values, rows kept at random)
 * mlk_frame_encode_filtered gives the bytes of decode + mlk_frame_filter
 * + encode, mlk_dropna_mask_view the mask of mlk_dropna_mask, and
 * mlk_iqr_mask_cols the mask of mlk_iqr_mask; a damaged encoding is
 * refused by the view exactly when decode refuses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clean.h"
#include "err.h"
#include "frame.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

/* A frame of nrows rows: columns alternate numeric and string, names of
 * varied lengths (so the arrays land at every alignment). */
static mlk_frame *random_frame(size_t nrows, size_t ncols)
{
    const char *names[8] = {"a", "price", "user_id", "q", "income12", "cat", "xyzzy_long_name", "l"};
    mlk_coltype types[8];
    for (size_t c = 0; c < ncols; c++) types[c] = (c + rnd() % 2) % 2 ? MLK_STR : MLK_F64;
    mlk_frame *f = mlk_frame_new(ncols, names, types, nrows);
    assert_non_null(f);
    assert_int_equal(mlk_frame_reserve(f, nrows), 0);
    for (size_t r = 0; r < nrows; r++) {
        f->row_id[r] = (int64_t)(r * 3 + rnd() % 3);
        for (size_t c = 0; c < ncols; c++) {
            mlk_col *col = &f->cols[c];
            if (col->type == MLK_F64) {
                col->f64[r] = rnd() % 17 == 0 ? NAN : (double)(int64_t)(rnd() % 2001 - 1000) / 8;
            } else {
                char s[24];
                size_t n = rnd() % 12;
                for (size_t i = 0; i < n; i++) s[i] = (char)('a' + rnd() % 26);
                int miss = rnd() % 13 == 0;
                assert_int_equal(mlk_frame_str_push(f, c, r, s, miss ? 0 : n, miss), 0);
            }
        }
    }
    f->nrows = nrows;
    return f;
}

static void test_filtered_matches_decode_filter_encode(void **state)
{
    (void)state;
    for (int trial = 0; trial < 200; trial++) {
        size_t nrows = trial < 3 ? (size_t)trial : 1 + rnd() % 700, ncols = 1 + rnd() % 8;
        mlk_frame *f = random_frame(nrows, ncols);
        uint8_t *enc;
        size_t len;
        assert_int_equal(mlk_frame_encode(f, &enc, &len), 0);
        /* an unaligned copy, as a view may meet in a store's map */
        uint8_t *odd = malloc(len + 1);
        memcpy(odd + 1, enc, len);
        mlk_frameview *v = NULL;
        assert_int_equal(mlk_frame_view(odd + 1, len, &v), 0);
        assert_int_equal(v->nrows, nrows);
        assert_int_equal(v->ncols, ncols);

        uint8_t *keep = malloc(nrows + 1), *keep2 = malloc(nrows + 1);
        /* dropna: the view's mask is the frame's */
        size_t k1 = mlk_dropna_mask(f, NULL, 0, keep);
        size_t k2 = mlk_dropna_mask_view(v, 256, keep2);
        assert_int_equal(k1, k2);
        if (nrows) assert_memory_equal(keep, keep2, nrows);
        /* the IQR mask over copied columns is the frame's */
        size_t idx[8], nnum = 0;
        const double *cols[8];
        double *copies[8];
        double lo[8], hi[8];
        for (size_t c = 0; c < ncols; c++)
            if (f->cols[c].type == MLK_F64) {
                idx[nnum] = c;
                copies[nnum] = malloc((nrows ? nrows : 1) * sizeof(double));
                mlk_frame_view_f64(v, c, copies[nnum]);
                cols[nnum] = copies[nnum];
                lo[nnum] = -(double)(rnd() % 100);
                hi[nnum] = (double)(rnd() % 100);
                nnum++;
            }
        if (trial % 2) { /* random rows instead of dropna's */
            for (size_t r = 0; r < nrows; r++) keep[r] = keep2[r] = (uint8_t)(rnd() % 3 != 0);
        }
        long long m1 = mlk_iqr_mask(f, idx, nnum, lo, hi, keep);
        size_t m2 = mlk_iqr_mask_cols(cols, nnum, nrows, lo, hi, keep2);
        assert_int_equal(m1, (long long)m2);
        if (nrows) assert_memory_equal(keep, keep2, nrows);
        if (trial % 5 == 0) memset(keep, 1, nrows); /* every row kept */
        if (trial % 7 == 0) memset(keep, 0, nrows); /* none */

        uint8_t *got;
        size_t gotlen;
        assert_int_equal(mlk_frame_encode_filtered(v, keep, &got, &gotlen), 0);
        mlk_frame *g = NULL;
        assert_int_equal(mlk_frame_decode(enc, len, &g), 0);
        mlk_frame_filter(g, keep);
        uint8_t *want;
        size_t wantlen;
        assert_int_equal(mlk_frame_encode(g, &want, &wantlen), 0);
        assert_int_equal(gotlen, wantlen);
        assert_memory_equal(got, want, wantlen);
        /* the exact size, and the same bytes written into a buffer of
         * exactly that size (a store's reserved space): nothing past it */
        size_t exact = mlk_frame_filtered_size(v, keep);
        assert_int_equal(exact, wantlen);
        uint8_t *into = malloc(exact + 32);
        memset(into, 0xA5, exact + 32);
        mlk_frame_encode_filtered_to(v, keep, into, exact);
        assert_memory_equal(into, want, wantlen);
        for (size_t i = exact; i < exact + 32; i++) assert_int_equal(into[i], 0xA5);
        free(into);
        /* string values read through the view are the frame's */
        for (size_t c = 0; c < ncols; c++)
            if (f->cols[c].type == MLK_STR)
                for (size_t r = 0; r < nrows; r++) {
                    size_t a, b;
                    const char *x = mlk_view_str_at(&v->cols[c], r, &a);
                    const char *y = mlk_str_at(&f->cols[c], r, &b);
                    assert_int_equal(a, b);
                    if (a) assert_memory_equal(x, y, a);
                }
        assert_int_equal(mlk_frame_view_col(v, f->cols[ncols - 1].name), (int)(ncols - 1));
        assert_int_equal(mlk_frame_view_col(v, "no such column"), -1);
        for (size_t i = 0; i < nnum; i++) free(copies[i]);
        free(got);
        free(want);
        free(keep);
        free(keep2);
        free(odd);
        free(enc);
        mlk_frame_destroy(&g);
        mlk_frame_destroy(&f);
        mlk_frame_view_destroy(&v);
        mlk_frame_view_destroy(&v); /* twice is safe */
    }
}

/* Truncated or damaged bytes: the view accepts exactly what decode
 * accepts, and never reads outside the buffer (ASan checks that). */
static void test_damaged_as_decode(void **state)
{
    (void)state;
    mlk_frame *f = random_frame(40, 5);
    uint8_t *enc;
    size_t len;
    assert_int_equal(mlk_frame_encode(f, &enc, &len), 0);
    mlk_frameview *v = NULL;
    mlk_frame *g = NULL;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, enc, cut);
        assert_int_equal(mlk_frame_view(c, cut, &v), MLOPS_EPARSE);
        assert_null(v);
        free(c);
    }
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            enc[i] ^= (uint8_t)(1u << bit);
            int rd = mlk_frame_decode(enc, len, &g), rv = mlk_frame_view(enc, len, &v);
            assert_int_equal(rd, rv);
            mlk_frame_destroy(&g);
            mlk_frame_view_destroy(&v);
            enc[i] ^= (uint8_t)(1u << bit);
        }
    free(enc);
    mlk_frame_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filtered_matches_decode_filter_encode),
        cmocka_unit_test(test_damaged_as_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
