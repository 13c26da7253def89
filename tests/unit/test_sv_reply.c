/* test_sv_reply.c: the scoring replies' number writer (serve/sv_reply.h)
 * writes every double exactly as snprintf's "%.17g" does: random bit
 * patterns, random probabilities, short decimals, the exact ties of
 * round-half-even, and the neighbours of each power of ten the fast
 * path's range turns on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sv_reply.h"

static long checked;

static void same(double v)
{
    if (!isfinite(v)) return;
    char a[64], b[64];
    size_t n = sv_reply_g17(v, a);
    int m = snprintf(b, sizeof b, "%.17g", v);
    if (strcmp(a, b)) fprintf(stderr, "%a: got %s, snprintf %s\n", v, a, b);
    assert_string_equal(a, b);
    assert_int_equal(n, (size_t)m);
    checked++;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void test_g17(void **state)
{
    (void)state;
    for (int i = 0; i < 150000; i++) {
        uint64_t x = next();
        double d;
        memcpy(&d, &x, sizeof d);
        same(d);
        same((double)(x >> 11) / 9007199254740992.0);                   /* [0, 1) */
        same(1.0 / (1.0 + exp(((double)(int64_t)x) / 4e17)));            /* a logistic */
        same(ldexp((double)(x >> 11), (int)(x % 120) - 100));            /* 2^-100 .. 2^72 */
        same((double)(int64_t)(x % 2000001) / 1000.0 - 1000.0);          /* short decimals */
    }
    /* exact ties at the 18th digit, and halves */
    for (int j = 1; j < 70; j++)
        for (int k = 1; k < 2000; k += 7) same(ldexp((double)k, -j));
    for (int e = -8; e <= 18; e++) {
        double p = pow(10, e);
        double v = p;
        for (int s = 0; s < 40; s++) v = nextafter(v, 0);
        for (int s = 0; s < 80; s++, v = nextafter(v, INFINITY)) same(v), same(-v);
    }
    same(0.0), same(-0.0), same(1.0), same(0.5), same(1e-5), same(9.99999999999999999e-6);
    fprintf(stderr, "%ld doubles as snprintf writes them\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_g17)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
