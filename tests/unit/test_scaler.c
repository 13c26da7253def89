/* test_scaler.c: moments, Chan merge over any split, scikit-learn's
 * constant-feature rule, transform, and the byte encoding under garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "scaler.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void near(double a, double b, double rel)
{
    if (a == b) return;
    assert_true(fabs(a - b) <= rel * fmax(fabs(a), fabs(b)));
}

static void test_known_values(void **state)
{
    (void)state;
    double v[] = {2, 4, 4, 4, 5, 5, 7, 9, NAN};
    mlk_moments m = mlk_moments_of(v, 9);
    assert_int_equal(m.n, 8);
    assert_true(m.mean == 5.0);
    assert_true(m.m2 == 32.0);
    double mean, var, scale;
    assert_int_equal(mlk_scaler_finalize(&m, &mean, &var, &scale), 0);
    assert_true(mean == 5.0 && var == 4.0 && scale == 2.0);
    mlk_scaler_transform(v, 8, mean, scale);
    assert_true(v[0] == -1.5 && v[7] == 2.0);

    mlk_moments none = mlk_moments_of(v + 8, 1);
    assert_int_equal(none.n, 0);
    assert_int_equal(mlk_scaler_finalize(&none, &mean, &var, &scale), MLOPS_EINVAL);
    double one = 3.5;
    mlk_moments o = mlk_moments_of(&one, 1);
    assert_int_equal(mlk_scaler_finalize(&o, &mean, &var, &scale), 0);
    assert_true(mean == 3.5 && var == 0.0 && scale == 1.0);
}

static void test_merge_any_split(void **state)
{
    (void)state;
    size_t n = 100003;
    double *v = malloc(n * sizeof *v);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = 1e6 + (double)(s >> 11) / 9007199254740992.0 * 1000.0;
    }
    mlk_moments whole = mlk_moments_of(v, n);
    size_t chunks[] = {1, 7, 1000, 50000};
    for (size_t c = 0; c < 4; c++) {
        mlk_moments acc = {0, 0, 0};
        for (size_t i = 0; i < n; i += chunks[c]) {
            size_t len = i + chunks[c] <= n ? chunks[c] : n - i;
            mlk_moments part = mlk_moments_of(v + i, len);
            mlk_moments_merge(&acc, &part);
        }
        assert_int_equal(acc.n, n);
        near(acc.mean, whole.mean, 1e-13);
        near(acc.m2, whole.m2, 1e-9);
    }
    free(v);
}

static void test_constant_rule(void **state)
{
    (void)state;
    double c[50];
    for (int i = 0; i < 50; i++) c[i] = 0.1;
    mlk_moments m = mlk_moments_of(c, 50);
    double mean, var, scale;
    mlk_scaler_finalize(&m, &mean, &var, &scale);
    assert_true(scale == 1.0);
    /* Spread of one ulp around 1e9: constant by scikit-learn's bound. */
    for (int i = 0; i < 50; i++) c[i] = 1e9 + (i % 2) * 1.1920928955078125e-07;
    m = mlk_moments_of(c, 50);
    mlk_scaler_finalize(&m, &mean, &var, &scale);
    assert_true(var > 0 && scale == 1.0);
    /* A small but real spread is scaled. */
    for (int i = 0; i < 50; i++) c[i] = (i % 2) * 1e-6;
    m = mlk_moments_of(c, 50);
    mlk_scaler_finalize(&m, &mean, &var, &scale);
    near(scale, 5e-7, 1e-12);
}

static void test_encoding(void **state)
{
    (void)state;
    mlk_moments m[2] = {{3, 1.5, 2.0}, {0, 0, 0}};
    uint8_t *b;
    size_t len, nc;
    mlk_moments *back;
    assert_int_equal(mlk_moments_encode(m, 2, &b, &len), 0);
    assert_int_equal(mlk_moments_decode(b, len, &back, &nc), 0);
    assert_int_equal(nc, 2);
    assert_memory_equal(back, m, sizeof m);
    free(back);
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(mlk_moments_decode(b, cut, &back, &nc), MLOPS_EPARSE);
        assert_null(back);
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t save = b[i];
        b[i] ^= 0x80;
        if (mlk_moments_decode(b, len, &back, &nc) == 0) free(back);
        b[i] = save;
    }
    double neg = -1.0;
    memcpy(b + 12 + 16, &neg, 8); /* m2 < 0 */
    assert_int_equal(mlk_moments_decode(b, len, &back, &nc), MLOPS_EPARSE);
    assert_int_equal(mlk_moments_decode(NULL, 0, &back, &nc), MLOPS_EPARSE);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_merge_any_split),
        cmocka_unit_test(test_constant_rule),
        cmocka_unit_test(test_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
