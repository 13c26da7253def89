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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
