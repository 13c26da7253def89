/* test_driftref.c: a text value's drift bin (common/driftref.h) found by
 * the binary search over the sorted top values is the bin the plain scan
 * of the list finds: the first equal top value, else "other"; for values
 * of every length, prefixes, a repeated top value and random strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftref.h"

static size_t scan(const char *const *top, size_t nt, const char *s)
{
    for (size_t k = 0; k < nt; k++)
        if (!strcmp(top[k], s)) return k;
    return nt;
}

static void test_categorical_bins(void **state)
{
    (void)state;
    static const char *const TOP[] = {"b", "a", "ab", "abc", "aa", "i0531", "i0530", "b",
                                      "zz", "\xc3\xa9", "i05", "ba", "a b", "A"};
    size_t nt = sizeof TOP / sizeof *TOP;
    json_t *top = json_array();
    for (size_t k = 0; k < nt; k++)
        json_array_append_new(top, json_pack("{s:s,s:i}", "value", TOP[k], "count", (int)k + 1));
    json_t *ref = json_pack("{s:[{s:s,s:o,s:i}]}", "categorical", "column", "item", "top", top,
                            "other", 5);
    char *cols[] = {"item"};
    mlops_driftref_t *d = mlops_driftref_new(ref, cols, 1, NULL, 0);
    assert_non_null(d);
    assert_int_equal(d->nf, 1);
    assert_int_equal(d->f[0].nbins, nt + 1);

    enum { N = 4000 };
    const mlk_coltype types[] = {MLK_STR};
    mlk_frame *f = mlk_frame_new(1, (const char *const *)cols, types, N);
    assert_non_null(f);
    size_t *w = malloc(N * sizeof *w);
    assert_non_null(w);
    uint64_t x = 12345;
    for (size_t r = 0; r < N; r++) {
        char v[8];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (r < nt) snprintf(v, sizeof v, "%s", TOP[r]);
        else { /* short strings over a small alphabet: many hits, prefixes and near misses */
            size_t n = 1 + x % 5;
            for (size_t i = 0; i < n; i++) v[i] = "abi05 z"[(x >> (8 + 3 * i)) % 7];
            v[n] = 0;
        }
        assert_int_equal(mlk_frame_str_push(f, 0, r, v, strlen(v), 0), 0);
        w[r] = scan(TOP, nt, v);
    }
    f->nrows = N;
    size_t hits = 0;
    for (size_t r = 0; r < N; r++) {
        size_t b = mlops_driftref_bin(d, 0, f, r, NULL, NULL);
        assert_int_equal(b, w[r]);
        hits += b < nt;
    }
    assert_true(hits > 100); /* the strings did hit top values */
    assert_int_equal(mlops_driftref_bin(d, 0, f, 7, NULL, NULL), 0); /* "b" twice: its first bin */
    free(w);
    mlk_frame_destroy(&f);
    mlops_driftref_destroy(&d);
    json_decref(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_categorical_bins)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
