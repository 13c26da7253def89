/* test_jsondump.c: mlops_json_dumps prints each real in its short
 * round-trip form, leaves integers, strings and structure alone, and
 * every real it prints reads back to the same double. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsondump.h"

static void expect_dump(json_t *v, const char *want)
{
    char *got = mlops_json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    json_decref(v);
}

static void test_short_forms(void **state)
{
    (void)state;
    expect_dump(json_pack("[f,f,f,f]", 0.1, 10.04, 0.5, -2.25), "[0.1,10.04,0.5,-2.25]");
    expect_dump(json_pack("[f,f]", 1e-5, 1e300), "[1e-05,1e+300]");
    expect_dump(json_pack("[f,f]", 3.0, -0.0), "[3.0,-0.0]");
    /* a computed value that needs 17 digits keeps them */
    expect_dump(json_pack("[f]", 0.1 + 0.2), "[0.30000000000000004]");
    expect_dump(json_pack("{s:f}", "accuracy", 0.718978102189781), "{\"accuracy\":0.718978102189781}");
}

static void test_leaves_the_rest(void **state)
{
    (void)state;
    /* numbers inside strings, escapes, integers, nesting */
    expect_dump(json_pack("{s:s,s:I,s:[b,n]}", "k\"1.50000\"", "0.10000000000000001 \\\" 2.50",
                          "n", (json_int_t)-1234567890123LL, "a", 1),
                "{\"k\\\"1.50000\\\"\":\"0.10000000000000001 \\\\\\\" 2.50\",\"n\":-1234567890123,"
                "\"a\":[true,null]}");
}

static void test_round_trips(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        uint64_t bits = x;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d)) continue;
        json_t *a = json_pack("[f]", d);
        char *s = mlops_json_dumps(a, JSON_COMPACT);
        assert_non_null(s);
        double back = strtod(s + 1, NULL);
        assert_memory_equal(&back, &d, sizeof d);
        free(s);
        json_decref(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_forms),
        cmocka_unit_test(test_leaves_the_rest),
        cmocka_unit_test(test_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
