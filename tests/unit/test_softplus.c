/* test_softplus.c: unit tests of softplus.h. Its exp and log1p against
 * the x87 long double ones (expl, log1pl: 11 more bits) over a dense
 * sweep and random points of their ranges: within 2 ulp; the ends and
 * the clamps; the block's loss and derivative against the textbook
 * formulas in long double, and the block equal, bit for bit, to one call
 * per row (the L-BFGS kernels score a shard by blocks and a row alone)
 * and to the scalar functions composed (the AVX2 build of the block
 * against the portable one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "softplus.h"

/* |a - ref| in units of the last place of ref (as a double) */
static double ulps(double a, long double ref)
{
    double r = (double)ref;
    double u = nextafter(fabs(r), INFINITY) - fabs(r);
    return (double)(fabsl((long double)a - ref) / (long double)u);
}

static uint64_t rng = 88172645463325252ULL;
static double unif(void) /* [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void test_exp(void **state)
{
    (void)state;
    double worst = 0, at = 0;
    for (int i = 0; i <= 2000000; i++) {
        double x = i < 1000000 ? -700.0 * i / 1000000.0 : -700.0 * unif();
        if (i % 3 == 0) x = -1.0 * unif(); /* dense near 0, where most scores are */
        double e = ulps(mlk_exp_neg(x), expl((long double)x));
        if (e > worst) worst = e, at = x;
    }
    printf("exp: worst %.3f ulp at %.17g\n", worst, at);
    assert_true(worst <= 2.0);
    assert_true(mlk_exp_neg(0.0) == 1.0);
    assert_true(mlk_exp_neg(-0.0) == 1.0);
    /* the clamps: below -700 the value at -700, above 0 the value at 0 */
    assert_true(mlk_exp_neg(-1e9) == mlk_exp_neg(-700.0));
    assert_true(mlk_exp_neg(-INFINITY) == mlk_exp_neg(-700.0));
    assert_true(mlk_exp_neg(-700.0) > 0 && isnormal(mlk_exp_neg(-700.0)));
    assert_true(mlk_exp_neg(3.0) == 1.0);
    assert_true(isnan(mlk_exp_neg(NAN)));
}

static void test_log1p(void **state)
{
    (void)state;
    double worst = 0, at = 0;
    for (int i = 0; i <= 2000000; i++) {
        double t = i < 1000000 ? i / 1000000.0 : unif();
        if (i % 5 == 0) t = ldexp(unif(), -(int)(unif() * 60)); /* tiny ones */
        if (t == 0) continue;
        double e = ulps(mlk_log1p_unit(t), log1pl((long double)t));
        if (e > worst) worst = e, at = t;
    }
    printf("log1p: worst %.3f ulp at %.17g\n", worst, at);
    assert_true(worst <= 2.0);
    assert_true(mlk_log1p_unit(0.0) == 0.0);
    assert_true(fabs(mlk_log1p_unit(1.0) - M_LN2) <= 1.2e-16);
    assert_true(mlk_log1p_unit(1e-300) == 1e-300);
    /* either side of the split at 1/2 */
    double lo = nextafter(0.5, 0), hi = 0.5;
    assert_true(ulps(mlk_log1p_unit(lo), log1pl(lo)) <= 2.0);
    assert_true(ulps(mlk_log1p_unit(hi), log1pl(hi)) <= 2.0);
    assert_true(mlk_log1p_unit(lo) < mlk_log1p_unit(hi));
}

static void test_block(void **state)
{
    (void)state;
    enum { N = 4099 };
    double *z = malloc(N * sizeof *z), *yy = malloc(N * sizeof *yy);
    double *l = malloc(N * sizeof *l), *d = malloc(N * sizeof *d);
    assert_non_null(z && yy && l && d);
    for (int i = 0; i < N; i++) {
        z[i] = (unif() - 0.5) * (i % 7 == 0 ? 1600.0 : 30.0);
        yy[i] = unif() < 0.5 ? 0.0 : 1.0;
    }
    z[0] = 0.0;
    z[1] = -0.0;
    z[2] = 800.0;
    z[3] = -800.0;
    z[4] = 1e-300;
    mlk_softplus_block(z, yy, N, l, d);
    double wl = 0, wd = 0;
    for (int i = 0; i < N; i++) {
        double l1, d1;
        mlk_softplus_block(z + i, yy + i, 1, &l1, &d1);
        assert_memory_equal(&l1, &l[i], sizeof l1);
        assert_memory_equal(&d1, &d[i], sizeof d1);
        /* and the scalar functions (built without the AVX2 clone the
         * block takes on a CPU that has it) composed here */
        double v0 = z[i], t0 = mlk_exp_neg(-fabs(v0)), lp = mlk_log1p_unit(t0), vl = v0 + lp;
        double l2 = (v0 > 0 ? vl : lp) - yy[i] * v0, d2 = (v0 >= 0 ? 1.0 : t0) / (1.0 + t0) - yy[i];
        assert_memory_equal(&l2, &l[i], sizeof l2);
        assert_memory_equal(&d2, &d[i], sizeof d2);
        long double v = z[i], ref_l, ref_d;
        if (v > 0) ref_l = v + log1pl(expl(-v));
        else ref_l = log1pl(expl(v));
        ref_l -= (long double)yy[i] * v;
        ref_d = 1.0L / (1.0L + expl(-v)) - (long double)yy[i];
        if (fabs(z[i]) > 700) { /* clamped: off by under 1e-300 */
            assert_true(fabsl((long double)l[i] - ref_l) <= 1e-300L + 1e-16L * fabsl(ref_l));
            assert_true(fabsl((long double)d[i] - ref_d) <= 1e-300L + 1e-16L);
            continue;
        }
        /* the loss relative to its largest term (max(z, 0) + log1p and
         * y z cancel where the row is well classified, as they do with
         * libm's functions); the derivative, in [-1, 1], absolutely */
        long double sl = fabsl(v) > 1 ? fabsl(v) : 1;
        if (fabsl(ref_l) > sl) sl = fabsl(ref_l);
        double el = (double)(fabsl((long double)l[i] - ref_l) / sl);
        double ed = (double)fabsl((long double)d[i] - ref_d);
        if (el > wl) wl = el;
        if (ed > wd) wd = ed;
    }
    printf("block: worst loss error %.3g (relative), derivative %.3g (absolute)\n", wl, wd);
    assert_true(wl < 4.5e-16);
    assert_true(wd < 4.5e-16);
    assert_true(l[0] == log(2.0) || fabs(l[0] - M_LN2) < 2e-16);
    assert_true(d[0] == 0.5 - yy[0]);
    free(z);
    free(yy);
    free(l);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_log1p),
        cmocka_unit_test(test_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
