/* test_kfold.c: fold assignment against scikit-learn's KFold(shuffle=True)
 * computed at test time by /usr/bin/python3, for several sizes and seeds;
 * the hash method's range and independence of sharding; the ddof = 0
 * standard deviation numpy's .std() gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "kfold.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* python prints, per case, the fold of every row position */
static const char *PY =
    "import sys\n"
    "from sklearn.model_selection import KFold\n"
    "import numpy as np\n"
    "for n, k, seed in [(10, 2, 0), (11, 3, 42), (97, 5, 1), (1000, 7, 123456), (5, 5, 7),"
    " (4096, 10, 4294967295), (70001, 3, 2)]:\n"
    "    f = np.full(n, -1)\n"
    "    for i, (_, te) in enumerate(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n))):\n"
    "        f[te] = i\n"
    "    print(n, k, seed, ' '.join(map(str, f)))\n";

static void test_against_sklearn(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0) skip();
    char path[] = "/tmp/test_kfold_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, PY, strlen(PY)), (ssize_t)strlen(PY));
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int cases = 0;
    size_t n;
    unsigned k;
    unsigned long seed;
    while (fscanf(p, "%zu %u %lu", &n, &k, &seed) == 3) {
        uint8_t *fold = malloc(n);
        char err[128];
        assert_int_equal(mlk_kfold_sklearn((uint32_t)seed, n, k, fold, err, sizeof err), 0);
        for (size_t i = 0; i < n; i++) {
            int want;
            assert_int_equal(fscanf(p, "%d", &want), 1);
            if (fold[i] != want)
                fail_msg("n=%zu k=%u seed=%lu row %zu: fold %d, KFold says %d", n, k, seed, i,
                         fold[i], want);
        }
        free(fold);
        cases++;
    }
    int rc = pclose(p);
    unlink(path);
    if (cases == 0 && rc != 0) skip(); /* no scikit-learn here */
    assert_int_equal(cases, 7);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    uint8_t f[4];
    char err[160];
    assert_int_equal(mlk_kfold_sklearn(0, 4, 5, f, err, sizeof err), MLOPS_EINVAL);
    assert_non_null(strstr(err, "5 folds with 4 training rows"));
    assert_int_equal(mlk_kfold_sklearn(0, 4, 1, f, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_kfold_sklearn(0, 4, 4, f, err, sizeof err), 0);
}

static void test_hash(void **state)
{
    (void)state;
    size_t count[5] = {0};
    for (int64_t r = 0; r < 50000; r++) {
        uint32_t f = mlk_kfold_hash(42, r, 5);
        assert_true(f < 5);
        assert_int_equal(f, mlk_kfold_hash(42, r, 5));
        count[f]++;
    }
    for (int f = 0; f < 5; f++) assert_true(count[f] > 9500 && count[f] < 10500);
    int differ = 0;
    for (int64_t r = 0; r < 100; r++) differ += mlk_kfold_hash(1, r, 5) != mlk_kfold_hash(2, r, 5);
    assert_true(differ > 50);
}

static void test_stats(void **state)
{
    (void)state;
    const double v[4] = {0.5, 0.75, 1.0, 0.25};
    double m, s;
    mlk_kfold_stats(v, 4, &m, &s);
    assert_true(fabs(m - 0.625) < 1e-15);
    assert_true(fabs(s - 0.27950849718747373) < 1e-15); /* np.std(v) */
    mlk_kfold_stats(v, 0, &m, &s);
    assert_true(m == 0 && s == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_sklearn),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
