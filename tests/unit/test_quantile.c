/* test_quantile.c: keys, exact quantiles against a sort-based reference
 * of numpy's formula, the distributed rounds over shards (with and
 * without round 0's windows), hostile bytes,
 * and the dropna / IQR masks of clean.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clean.h"
#include "err.h"
#include "frame.h"
#include "quantile.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy 1.24 'linear' quantile written from its definition over a sort. */
static double ref_quantile(const double *v, size_t n, double q)
{
    double *s = malloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_d);
    double vi = (double)(n - 1) * q;
    double prev = floor(vi), a, b, g;
    if (vi >= (double)(n - 1)) {
        a = b = s[n - 1];
        g = vi + 1.0;
    } else {
        a = s[(size_t)prev];
        b = s[(size_t)prev + 1];
        g = vi - prev;
    }
    free(s);
    double d = b - a;
    return g >= 0.5 ? b - d * (1 - g) : a + d * g;
}

static void same(double x, double y)
{
    if (x == 0 && y == 0) return; /* -0.0 vs +0.0: numpy orders them equal */
    assert_memory_equal(&x, &y, sizeof x);
}

static void test_keys(void **state)
{
    (void)state;
    double v[] = {-INFINITY, -1e300, -2.5, -1e-310, -0.0, 0.0, 1e-320, 1e-5, 1.0, 3.5, 1e308,
                  INFINITY};
    size_t n = sizeof v / sizeof *v;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] == v[i + 1]) assert_true(mlk_qkey(v[i]) == mlk_qkey(v[i + 1]));
        else assert_true(mlk_qkey(v[i]) < mlk_qkey(v[i + 1]));
        double back = mlk_qkey_value(mlk_qkey(v[i]));
        assert_true(back == v[i]);
    }
    assert_false(signbit(mlk_qkey_value(mlk_qkey(-0.0))));
}

static void test_small_known(void **state)
{
    (void)state;
    double v[] = {4, 1, 3, 2};
    double qs[] = {0, 0.25, 0.5, 0.75, 1};
    double out[5];
    assert_int_equal(mlk_quantiles_exact(v, 4, qs, 5, out), 0);
    assert_true(out[0] == 1 && out[1] == 1.75 && out[2] == 2.5 && out[3] == 3.25 && out[4] == 4);
    double one = -7.25;
    assert_int_equal(mlk_quantiles_exact(&one, 1, qs, 5, out), 0);
    for (int i = 0; i < 5; i++) assert_true(out[i] == -7.25);
    double two[] = {5, -5};
    assert_int_equal(mlk_quantiles_exact(two, 2, qs, 5, out), 0);
    assert_true(out[1] == -2.5 && out[3] == 2.5);
    double nanv[] = {1, NAN, 3};
    assert_int_equal(mlk_quantiles_exact(nanv, 3, qs, 5, out), 0);
    assert_true(isnan(out[2]));
    assert_int_equal(mlk_quantiles_exact(v, 0, qs, 1, out), 0);
    assert_true(isnan(out[0]));
    double badq = 1.5;
    assert_int_equal(mlk_quantiles_exact(v, 4, &badq, 1, out), MLOPS_EINVAL);
    assert_null(mlk_qjob_new(1, &badq, 1));
    assert_null(mlk_qjob_new(0, qs, 1));
    assert_true(mlk_q_pandas(0.25) == 0.25 && mlk_q_pandas(0.75) == 0.75);
}

/* Random arrays of several shapes: every quantile bit-identical. */
static void test_against_reference(void **state)
{
    (void)state;
    size_t sizes[] = {3, 10, 999, 100000, 300000};
    double qs[] = {0.25, 0.75, 0.1, 0.5, 0.9, 0.333, 0.999, 1.0};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        double *v = malloc(n * sizeof *v);
        for (int shape = 0; shape < 4; shape++) {
            for (size_t i = 0; i < n; i++) {
                switch (shape) {
                case 0: v[i] = (urand() - 0.5) * 1e6; break;            /* spread */
                case 1: v[i] = 1.0 + urand() * 0.0001; break;            /* one key bin */
                case 2: v[i] = (double)(rnd() % 3) - 1.0; break;         /* 3 values */
                default: v[i] = (rnd() % 2) ? -0.0 : round(urand() * 20); /* zeros, ties */
                }
            }
            double out[8];
            assert_int_equal(mlk_quantiles_exact(v, n, qs, 8, out), 0);
            for (int k = 0; k < 8; k++) same(out[k], ref_quantile(v, n, qs[k]));
        }
        free(v);
    }
}

/* The distributed job over uneven shards equals the in-process result,
 * and its state survives encode/decode between every round. */
static void test_distributed_rounds(void **state)
{
    (void)state;
    size_t n = 200000;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    uint8_t *keep = malloc(n);
    for (size_t i = 0; i < n; i++) {
        keep[i] = i % 7 != 3; /* rows a worker's dropna mask removed */
        a[i] = 100.0 + urand() * 0.001;
        b[i] = (rnd() % 5 == 0) ? NAN : -(double)(rnd() % 1000);
    }
    double qs[] = {0.25, 0.75};
    mlk_qjob *j = mlk_qjob_new(2, qs, 2);
    assert_non_null(j);
    size_t cuts[] = {0, 1, 70000, 70001, 150000, n};
    int rounds = 0;
    while (!mlk_qjob_done(j)) {
        uint8_t *req, *st;
        size_t reqlen, stlen;
        assert_int_equal(mlk_qjob_request(j, &req, &reqlen), 0);
        for (size_t s = 0; s + 1 < sizeof cuts / sizeof *cuts; s++) {
            const double *cols[2] = {a + cuts[s], b + cuts[s]};
            uint8_t *ans;
            size_t anslen;
            char err[128];
            assert_int_equal(mlk_qjob_answer_masked(req, reqlen, cols, 2, cuts[s + 1] - cuts[s],
                                                    keep + cuts[s], &ans, &anslen, err,
                                                    sizeof err),
                             0);
            /* A truncated answer is refused and changes nothing. */
            if (anslen > 12)
                assert_int_equal(mlk_qjob_add(j, ans, anslen - 1, err, sizeof err), MLOPS_EPARSE);
            assert_int_equal(mlk_qjob_add(j, ans, anslen, err, sizeof err), 0);
            free(ans);
        }
        free(req);
        assert_int_equal(mlk_qjob_step(j, NULL, 0), 0);
        assert_int_equal(mlk_qjob_encode(j, &st, &stlen), 0);
        mlk_qjob_destroy(&j);
        assert_null(j);
        assert_int_equal(mlk_qjob_decode(st, stlen, &j), 0);
        free(st);
        rounds++;
    }
    assert_true(rounds >= 2 && rounds <= 5);
    double out[2], want[2];
    uint64_t cnt;
    assert_int_equal(mlk_qjob_result(j, 0, out, &cnt), 0);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i]) a[m++] = a[i];
    assert_int_equal(cnt, m);
    assert_int_equal(mlk_quantiles_exact(a, m, qs, 2, want), 0);
    same(out[0], want[0]);
    same(out[1], want[1]);
    assert_int_equal(mlk_qjob_result(j, 1, out, &cnt), 0);
    m = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i] && !isnan(b[i])) b[m++] = b[i];
    assert_int_equal(cnt, m);
    assert_int_equal(mlk_quantiles_exact(b, m, qs, 2, want), 0);
    same(out[0], want[0]);
    same(out[1], want[1]);
    assert_int_equal(mlk_qjob_result(j, 2, out, &cnt), MLOPS_EINVAL);
    mlk_qjob_destroy(&j);
    free(a);
    free(b);
    free(keep);
}

/* Run a quantile job over nsh shards cut at cuts[] of the columns,
 * with the given round-0 window (0: none); the results into out
 * (ncols x nq) and the number of rounds taken. */
static int run_sharded(const double *const *colv, size_t ncols, const uint8_t *keep,
                       const size_t *cuts, size_t nsh, const double *qs, size_t nq, uint32_t window,
                       double *out)
{
    mlk_qjob *j = mlk_qjob_new(ncols, qs, nq);
    assert_non_null(j);
    assert_int_equal(mlk_qjob_set_window(j, window), 0);
    int rounds = 0;
    while (!mlk_qjob_done(j)) {
        uint8_t *req, *st;
        size_t reqlen, stlen;
        assert_int_equal(mlk_qjob_request(j, &req, &reqlen), 0);
        for (size_t s = 0; s < nsh; s++) {
            const double *cols[4];
            for (size_t c = 0; c < ncols; c++) cols[c] = colv[c] + cuts[s];
            uint8_t *ans;
            size_t anslen;
            char err[128];
            assert_int_equal(mlk_qjob_answer_masked(req, reqlen, cols, ncols, cuts[s + 1] - cuts[s],
                                                    keep ? keep + cuts[s] : NULL, &ans, &anslen,
                                                    err, sizeof err),
                             0);
            if (anslen > 12)
                assert_int_equal(mlk_qjob_add(j, ans, anslen - 1, err, sizeof err), MLOPS_EPARSE);
            assert_int_equal(mlk_qjob_add(j, ans, anslen, err, sizeof err), 0);
            free(ans);
        }
        free(req);
        assert_int_equal(mlk_qjob_step(j, NULL, 0), 0);
        assert_int_equal(mlk_qjob_encode(j, &st, &stlen), 0);
        mlk_qjob_destroy(&j);
        assert_int_equal(mlk_qjob_decode(st, stlen, &j), 0);
        free(st);
        rounds++;
    }
    for (size_t c = 0; c < ncols; c++) assert_int_equal(mlk_qjob_result(j, c, out + c * nq, NULL), 0);
    mlk_qjob_destroy(&j);
    return rounds;
}

/* Round 0's windows: the same exact values as without them on every
 * kind of column (alike shards, sorted shards that no window covers,
 * heavy ties, NaNs and dropped rows, tiny shards answered from sorted
 * keys), and one round instead of two where the shards are alike. */
static void test_windows(void **state)
{
    (void)state;
    size_t n = 300000;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c),
           *d = malloc(n * sizeof *d);
    uint8_t *keep = malloc(n);
    for (size_t i = 0; i < n; i++) {
        keep[i] = rnd() % 11 != 0;
        a[i] = round(urand() * 30000.0) / 100.0;          /* like prices */
        b[i] = (double)i * 0.5 + (rnd() % 3);             /* sorted: shards differ */
        c[i] = rnd() % 9 == 0 ? NAN : (double)(rnd() % 7); /* heavy ties */
        d[i] = 1e6 + urand() * 1e-3;                      /* one 16-bit bin */
    }
    const double *cols[4] = {a, b, c, d};
    double qs[] = {0.25, 0.75, 0.1};
    size_t cuts[] = {0, 65536, 131072, 196608, 262144, n};
    size_t tiny[] = {0, 3, 1000, 1001, 9000, 17000};
    double with[12], without[12];
    for (int masked = 0; masked < 2; masked++) {
        int r1 = run_sharded(cols, 4, masked ? keep : NULL, cuts, 5, qs, 3, 512, with);
        int r0 = run_sharded(cols, 4, masked ? keep : NULL, cuts, 5, qs, 3, 0, without);
        for (size_t k = 0; k < 12; k++) same(with[k], without[k]);
        assert_true(r1 <= r0);
        r1 = run_sharded(cols, 4, masked ? keep : NULL, tiny, 5, qs, 3, 64, with);
        r0 = run_sharded(cols, 4, masked ? keep : NULL, tiny, 5, qs, 3, 0, without);
        for (size_t k = 0; k < 12; k++) same(with[k], without[k]);
    }
    /* alike shards: the windows prove the quantiles in round 0 */
    const double *alike[2] = {a, d};
    assert_int_equal(run_sharded(alike, 2, keep, cuts, 5, qs, 3, 512, with), 1);
    assert_int_equal(run_sharded(alike, 2, keep, cuts, 5, qs, 3, 0, without), 2);
    for (size_t k = 0; k < 6; k++) same(with[k], without[k]);
    /* against the sort-based reference too */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i]) a[m++] = a[i];
    for (size_t k = 0; k < 3; k++) same(with[k], ref_quantile(a, m, qs[k]));
    /* bad settings */
    mlk_qjob *j = mlk_qjob_new(1, qs, 1);
    assert_int_equal(mlk_qjob_set_window(j, MLK_QWINDOW_MAX + 1), MLOPS_EINVAL);
    mlk_qjob_destroy(&j);
    free(a);
    free(b);
    free(c);
    free(d);
    free(keep);
}

static void test_hostile_bytes(void **state)
{
    (void)state;
    double qs[] = {0.5};
    mlk_qjob *j = mlk_qjob_new(1, qs, 1);
    uint8_t *req, *ans, *st;
    size_t reqlen, anslen, stlen;
    double v[] = {1, 2, 3};
    const double *cols[1] = {v};
    char err[128];
    assert_int_equal(mlk_qjob_request(j, &req, &reqlen), 0);
    for (size_t cut = 0; cut < reqlen; cut++)
        assert_int_equal(mlk_qjob_answer(req, cut, cols, 1, 3, &ans, &anslen, err, sizeof err),
                         MLOPS_EPARSE);
    /* A request naming a column the worker does not have. */
    assert_int_equal(mlk_qjob_answer(req, reqlen, cols, 0, 3, &ans, &anslen, err, sizeof err),
                     MLOPS_EPARSE);
    assert_non_null(strstr(err, "column"));
    for (size_t i = 0; i < reqlen; i++) {
        uint8_t save = req[i];
        req[i] ^= 0x5A;
        if (mlk_qjob_answer(req, reqlen, cols, 1, 3, &ans, &anslen, err, sizeof err) == 0)
            free(ans);
        req[i] = save;
    }
    assert_int_equal(mlk_qjob_answer(req, reqlen, cols, 1, 3, &ans, &anslen, err, sizeof err), 0);
    for (size_t i = 0; i < anslen; i++) {
        uint8_t save = ans[i];
        ans[i] ^= 0xFF;
        mlk_qjob *k = NULL;
        uint8_t *s2;
        size_t l2;
        assert_int_equal(mlk_qjob_encode(j, &s2, &l2), 0);
        assert_int_equal(mlk_qjob_decode(s2, l2, &k), 0);
        free(s2);
        (void)mlk_qjob_add(k, ans, anslen, err, sizeof err); /* refused or counted */
        mlk_qjob_destroy(&k);
        ans[i] = save;
    }
    assert_int_equal(mlk_qjob_encode(j, &st, &stlen), 0);
    for (size_t cut = 0; cut < stlen; cut++) {
        mlk_qjob *k = NULL;
        assert_int_equal(mlk_qjob_decode(st, cut, &k), MLOPS_EPARSE);
        assert_null(k);
    }
    free(st);
    free(req);
    free(ans);
    mlk_qjob_destroy(&j);
    mlk_qjob_destroy(&j);
}

static void test_clean_masks(void **state)
{
    (void)state;
    const char *names[] = {"x", "s"};
    mlk_coltype ty[] = {MLK_F64, MLK_STR};
    mlk_frame *f = mlk_frame_new(2, names, ty, 4);
    double xs[] = {1, NAN, 3, 100, -50, 2};
    int miss[] = {0, 0, 1, 0, 0, 0};
    for (size_t r = 0; r < 6; r++) {
        assert_int_equal(mlk_frame_reserve(f, r + 1), 0);
        f->cols[0].f64[r] = xs[r];
        assert_int_equal(mlk_frame_str_push(f, 1, r, "ab", miss[r] ? 0 : 2, miss[r]), 0);
        f->row_id[r] = (int64_t)r;
        f->nrows = r + 1;
    }
    uint8_t keep[6];
    assert_int_equal(mlk_dropna_mask(f, NULL, 0, keep), 4);
    uint8_t want1[] = {1, 0, 0, 1, 1, 1};
    assert_memory_equal(keep, want1, 6);
    size_t only_s = 1;
    assert_int_equal(mlk_dropna_mask(f, &only_s, 1, keep), 5);
    double lo, hi;
    mlk_iqr_bounds(1.0, 3.0, 1.5, &lo, &hi);
    assert_true(lo == -2.0 && hi == 6.0);
    mlk_iqr_bounds(0.1, 0.7, 1.5, &lo, &hi);
    assert_true(lo == 0.1 - 1.5 * (0.7 - 0.1) && hi == 0.7 + 1.5 * (0.7 - 0.1));
    mlk_dropna_mask(f, NULL, 0, keep);
    size_t c0 = 0;
    double l = -2.0, h = 2.0; /* inclusive: 2 is kept */
    assert_int_equal(mlk_iqr_mask(f, &c0, 1, &l, &h, keep), 2);
    uint8_t want2[] = {1, 0, 0, 0, 0, 1};
    assert_memory_equal(keep, want2, 6);
    size_t c1 = 1, c9 = 9;
    assert_int_equal(mlk_iqr_mask(f, &c1, 1, &l, &h, keep), MLOPS_EINVAL);
    assert_int_equal(mlk_iqr_mask(f, &c9, 1, &l, &h, keep), MLOPS_EINVAL);
    mlk_frame_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_small_known),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_distributed_rounds),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_clean_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
