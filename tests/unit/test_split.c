/* test_split.c: MT19937 against the reference outputs, numpy's
 * permutation, scikit-learn's size rules, and the hash split's
 * guarantees (bijection, exact test count, independence of sharding). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "split.h"
#include <stdlib.h>
#include <string.h>

static void test_mt_reference(void **state)
{
    (void)state;
    mlk_mt19937 mt;
    /* 5489: the reference generator's default seed (mt19937ar.c,
     * std::mt19937), whose 10000th output is 4123659995. */
    mlk_mt19937_seed(&mt, 5489u);
    assert_int_equal(mlk_mt19937_next32(&mt), 3499211612u);
    assert_int_equal(mlk_mt19937_next32(&mt), 581869302u);
    assert_int_equal(mlk_mt19937_next32(&mt), 3890346734u);
    for (int i = 3; i < 9999; i++) mlk_mt19937_next32(&mt);
    assert_int_equal(mlk_mt19937_next32(&mt), 4123659995u);
    /* numpy.random.RandomState(42) */
    mlk_mt19937_seed(&mt, 42u);
    assert_int_equal(mlk_mt19937_next32(&mt), 1608637542u);
    assert_int_equal(mlk_mt19937_next32(&mt), 3421126067u);
    assert_int_equal(mlk_mt19937_next32(&mt), 4083286876u);
}

static void test_permutation(void **state)
{
    (void)state;
    mlk_mt19937 mt;
    int64_t p[10];
    /* numpy.random.RandomState(42).permutation(10) */
    const int64_t want42[10] = {8, 1, 5, 0, 7, 2, 9, 4, 3, 6};
    mlk_mt19937_seed(&mt, 42u);
    mlk_mt19937_permutation(&mt, p, 10);
    assert_memory_equal(p, want42, sizeof want42);
    /* numpy.random.RandomState(0).permutation(7) */
    const int64_t want0[7] = {6, 2, 1, 3, 0, 5, 4};
    mlk_mt19937_seed(&mt, 0u);
    mlk_mt19937_permutation(&mt, p, 7);
    assert_memory_equal(p, want0, sizeof want0);
    /* interval: in range, both draw widths */
    mlk_mt19937_seed(&mt, 1u);
    assert_int_equal(mlk_mt19937_interval(&mt, 0), 0);
    for (int i = 0; i < 1000; i++) {
        assert_true(mlk_mt19937_interval(&mt, 5) <= 5);
        assert_true(mlk_mt19937_interval(&mt, 0x1ffffffffull) <= 0x1ffffffffull);
    }
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t t, tr;
    char err[160];
    assert_int_equal(mlk_split_sizes(10, 0.2, -1, &t, &tr, err, sizeof err), 0);
    assert_int_equal(t, 2);
    assert_int_equal(tr, 8);
    /* 0.07 * 100 = 7.000000000000001 in doubles: scikit-learn gets 8 */
    assert_int_equal(mlk_split_sizes(100, 0.07, -1, &t, &tr, err, sizeof err), 0);
    assert_int_equal(t, 8);
    assert_int_equal(mlk_split_sizes(3, 0.1, -1, &t, &tr, err, sizeof err), 0);
    assert_int_equal(t, 1);
    assert_int_equal(mlk_split_sizes(10, 0, 3, &t, &tr, err, sizeof err), 0);
    assert_int_equal(t, 3);
    assert_int_equal(tr, 7);
    /* errors scikit-learn raises */
    assert_int_equal(mlk_split_sizes(10, 0.0, -1, &t, &tr, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_sizes(10, 1.0, -1, &t, &tr, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_sizes(1, 0.5, -1, &t, &tr, err, sizeof err), MLOPS_EINVAL);
    assert_non_null(strstr(err, "train set is empty"));
    assert_int_equal(mlk_split_sizes(0, 0.5, -1, &t, &tr, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_sizes(10, 0.5, 10, &t, &tr, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_sizes(10, 0.5, 0, &t, &tr, err, sizeof err), MLOPS_EINVAL);
    assert_string_not_equal(mlops_strerror(MLOPS_EINVAL), "");
}

static void test_hash_perm_bijection(void **state)
{
    (void)state;
    for (uint64_t n = 1; n <= 300; n++) {
        uint8_t *seen = calloc(n, 1);
        assert_non_null(seen);
        for (uint64_t r = 0; r < n; r++) {
            uint64_t p = mlk_split_perm(12345, n, r);
            assert_true(p < n);
            assert_int_equal(seen[p], 0);
            seen[p] = 1;
        }
        free(seen);
    }
    /* large n: in range */
    for (uint64_t r = 0; r < 1000; r++) {
        assert_true(mlk_split_perm(1, 1000000007ull, r * 999983ull) < 1000000007ull);
        assert_true(mlk_split_perm(2, UINT64_MAX, r) < UINT64_MAX);
    }
}

static void test_hash_mask_shards(void **state)
{
    (void)state;
    const uint64_t n = 10007;
    uint64_t nt, ntr;
    char err[160];
    assert_int_equal(mlk_split_sizes(n, 0.2, -1, &nt, &ntr, err, sizeof err), 0);
    uint8_t *whole = malloc(n), *parts = malloc(n), *other = malloc(n);
    assert_non_null(whole);
    assert_non_null(parts);
    assert_non_null(other);
    assert_int_equal(mlk_split_hash_mask(42, n, nt, 0, n, whole, err, sizeof err), (int64_t)nt);
    /* shards of varied sizes (including empty ones) give the same mask */
    uint64_t first = 0, step = 1;
    int64_t total = 0;
    while (first < n) {
        uint64_t cnt = step % 7 == 0 ? 0 : (step * 37) % 1500 + 1;
        if (cnt > n - first) cnt = n - first;
        int64_t got = mlk_split_hash_mask(42, n, nt, first, cnt, parts + first, err, sizeof err);
        assert_true(got >= 0);
        total += got;
        first += cnt;
        step++;
    }
    assert_int_equal(total, (int64_t)nt);
    assert_memory_equal(whole, parts, n);
    /* another seed gives another split with the same count */
    assert_int_equal(mlk_split_hash_mask(43, n, nt, 0, n, other, err, sizeof err), (int64_t)nt);
    assert_memory_not_equal(whole, other, n);
    /* bad ranges */
    assert_int_equal(mlk_split_hash_mask(42, n, nt, n - 5, 6, parts, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_hash_mask(42, n, n + 1, 0, 1, parts, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_hash_mask(42, n, nt, UINT64_MAX, 2, parts, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_hash_mask(42, n, nt, n, 0, parts, err, sizeof err), 0);
    free(whole);
    free(parts);
    free(other);
}

static void test_sklearn_split(void **state)
{
    (void)state;
    int64_t train[8], test[2];
    char err[160];
    /* train_test_split(arange(10), test_size=0.2, random_state=42):
     * the permutation above, test first */
    assert_int_equal(mlk_split_sklearn(42, 10, 2, train, test, err, sizeof err), 0);
    const int64_t wtest[2] = {8, 1}, wtrain[8] = {5, 0, 7, 2, 9, 4, 3, 6};
    assert_memory_equal(test, wtest, sizeof wtest);
    assert_memory_equal(train, wtrain, sizeof wtrain);
    assert_int_equal(mlk_split_sklearn(-1, 10, 2, train, test, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_split_sklearn(1ll << 32, 10, 2, train, test, err, sizeof err), MLOPS_EINVAL);
    assert_non_null(strstr(err, "seed"));
    assert_int_equal(mlk_split_sklearn(0, 10, 11, train, test, err, sizeof err), MLOPS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mt_reference),   cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_sizes),          cmocka_unit_test(test_hash_perm_bijection),
        cmocka_unit_test(test_hash_mask_shards), cmocka_unit_test(test_sklearn_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
