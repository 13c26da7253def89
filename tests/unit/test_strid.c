/* test_strid.c: unit tests of the string -> dense id map (strid.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strid.h"

/* Ids in first-seen order, found again by bytes (not NUL-terminated
 * where looked up), through several growths of the table and arena;
 * the empty string and strings that differ only in length are distinct. */
static void test_ids(void **state)
{
    (void)state;
    mlk_strid *m = mlk_strid_new(2);
    assert_non_null(m);
    char buf[32];
    const size_t n = 20000;
    for (size_t i = 0; i < n; i++) {
        int l = snprintf(buf, sizeof buf, "user_%zu", i * 7919 % n);
        assert_int_equal(mlk_strid_add(m, buf, (size_t)l), (int64_t)i);
        assert_int_equal(mlk_strid_add(m, buf, (size_t)l), (int64_t)i); /* again: the same id */
    }
    assert_int_equal(mlk_strid_count(m), n);
    for (size_t i = 0; i < n; i++) {
        int l = snprintf(buf, sizeof buf, "user_%zu", i * 7919 % n);
        char in_place[40];
        memcpy(in_place, buf, (size_t)l);
        memcpy(in_place + l, "XYZ", 3); /* bytes after the key must not count */
        assert_int_equal(mlk_strid_find(m, in_place, (size_t)l), (int64_t)i);
        assert_string_equal(mlk_strid_key(m, i), buf);
    }
    assert_int_equal(mlk_strid_find(m, "user_", 5), -1);
    assert_int_equal(mlk_strid_find(m, "user_1x", 7), -1);
    assert_int_equal(mlk_strid_add(m, "", 0), (int64_t)n);
    assert_int_equal(mlk_strid_find(m, "", 0), (int64_t)n);
    assert_string_equal(mlk_strid_key(m, n), "");
    assert_null(mlk_strid_key(m, n + 1));
    mlk_strid_destroy(&m);
    assert_null(m);
    mlk_strid_destroy(&m); /* twice is safe */
    assert_int_equal(mlk_strid_find(NULL, "a", 1), -1);
    assert_int_equal(mlk_strid_count(NULL), 0);
}

/* The recommend stage's ranking of keys (the coordinator and every
 * worker sort with it): numbers numerically when all are, equal values
 * by their bytes; else byte order. */
static void test_sort_keys(void **state)
{
    (void)state;
    const char *num[] = {"10", "9", "2.5", "-1", "1.0", "1"};
    const char *num_want[] = {"-1", "1", "1.0", "2.5", "9", "10"};
    mlk_strid_sort_keys(num, 6);
    for (int i = 0; i < 6; i++) assert_string_equal(num[i], num_want[i]);
    const char *txt[] = {"u10", "10", "u9", "\xc3\xa9", "U1", "9"};
    const char *txt_want[] = {"10", "9", "U1", "u10", "u9", "\xc3\xa9"};
    mlk_strid_sort_keys(txt, 6);
    for (int i = 0; i < 6; i++) assert_string_equal(txt[i], txt_want[i]);
    /* not finite: not numbers */
    const char *inf[] = {"inf", "2", "10"};
    mlk_strid_sort_keys(inf, 3);
    assert_string_equal(inf[0], "10");
    assert_string_equal(inf[2], "inf");
    mlk_strid_sort_keys(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_sort_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
