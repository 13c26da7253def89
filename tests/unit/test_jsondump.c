/* test_jsondump.c: mlops_json_dumps prints each real in its short
 * round-trip form, leaves integers, strings and structure alone, and
 * every real it prints reads back to the same double. Its direct path
 * (the tree written with each real formatted once) gives the same bytes
 * as its rewrite path (jansson's dump, each real token rewritten), which
 * JSON_ESCAPE_SLASH selects and which changes nothing in a tree without
 * '/': for random reals of every magnitude, strings with escapes and
 * multi-byte UTF-8, nesting, and the compact and indented layouts. */
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
    /* where jansson's own token is shorter it stays ("1e20", not "1e+20") */
    expect_dump(json_pack("[f,f,f]", 1e20, 1e23, 1.5e-7), "[1e20,1e+23,1.5e-07]");
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
    for (int i = 0; i < 8000; i++) {
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

static uint64_t s_x = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    s_x ^= s_x << 13, s_x ^= s_x >> 7, s_x ^= s_x << 17;
    return s_x;
}

/* A real of a random kind: any bit pattern, a short decimal, a whole
 * number, a power of ten, a tie of the 17 digits (…50) */
static double rnd_real(void)
{
    double d;
    uint64_t b = rnd();
    switch (b % 6) {
    case 0: memcpy(&d, &b, sizeof d); return isfinite(d) ? d : 1.5;
    case 1: return (double)(int64_t)(rnd() % 2000001 - 1000000) / 1000.0;
    case 2: return (double)(int64_t)(rnd() % 100000000000000000ULL) * (b & 64 ? -1 : 1);
    case 3: return pow(10.0, (double)(int)(rnd() % 600) - 300);
    case 4: return (double)(rnd() % 1000000) * 1e-7 + 0.05;
    default: return (double)(rnd() % 1000) / 7.0 * pow(10.0, (double)(int)(rnd() % 40) - 20);
    }
}

static json_t *rnd_tree(int depth)
{
    static const char *const strs[] = {"", "a", "k\"q\\", "tab\tnl\n\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                                       "1.5e3", "-0.0"};
    uint64_t k = rnd() % (depth > 4 ? 6 : 8);
    switch (k) {
    case 0: return json_real(rnd_real());
    case 1: return json_integer((json_int_t)rnd());
    case 2: return json_string(strs[rnd() % 7]);
    case 3: return rnd() & 1 ? json_true() : json_null();
    case 4: return json_false();
    case 5: return json_real(rnd_real());
    case 6: {
        json_t *a = json_array();
        for (uint64_t i = 0, n = rnd() % 6; i < n; i++) json_array_append_new(a, rnd_tree(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        char key[16];
        for (uint64_t i = 0, n = rnd() % 6; i < n; i++) {
            snprintf(key, sizeof key, "%s%u", strs[rnd() % 5], (unsigned)(rnd() % 100));
            json_object_set_new(o, key, rnd_tree(depth + 1));
        }
        return o;
    }
    }
}

static void test_direct_equals_rewrite(void **state)
{
    (void)state;
    static const size_t layouts[] = {JSON_COMPACT, JSON_COMPACT | JSON_PRESERVE_ORDER, 0,
                                     JSON_INDENT(1) | JSON_PRESERVE_ORDER, JSON_INDENT(2)};
    for (int i = 0; i < 150; i++) {
        json_t *t = json_array();
        for (int k = 0; k < 3; k++) json_array_append_new(t, rnd_tree(0));
        for (size_t l = 0; l < sizeof layouts / sizeof *layouts; l++) {
            char *a = mlops_json_dumps(t, layouts[l]);
            char *b = mlops_json_dumps(t, layouts[l] | JSON_ESCAPE_SLASH);
            assert_non_null(a);
            assert_non_null(b);
            assert_string_equal(a, b);
            free(a);
            free(b);
        }
        json_decref(t);
    }
    /* reals one by one, of every kind */
    for (int i = 0; i < 8000; i++) {
        json_t *a = json_pack("[f]", rnd_real());
        char *x = mlops_json_dumps(a, JSON_COMPACT), *y = mlops_json_dumps(a, JSON_COMPACT | JSON_ESCAPE_SLASH);
        assert_string_equal(x, y);
        free(x);
        free(y);
        json_decref(a);
    }
}

static void test_refuses_as_jansson(void **state)
{
    (void)state;
    /* invalid UTF-8 (jansson's dump fails), a bare scalar without
     * JSON_ENCODE_ANY, and with it */
    json_t *bad = json_pack("[o]", json_string_nocheck("a\xc0\x80" "b"));
    assert_null(mlops_json_dumps(bad, JSON_COMPACT));
    json_decref(bad);
    json_t *r = json_real(0.1);
    assert_null(mlops_json_dumps(r, JSON_COMPACT));
    char *s = mlops_json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(s, "0.1");
    free(s);
    json_decref(r);
    /* a string with a NUL byte, an empty array and object, indented */
    json_t *t = json_pack("{s:o,s:[],s:{}}", "z", json_stringn("a\0b", 3), "e", "o");
    s = mlops_json_dumps(t, JSON_INDENT(2));
    assert_string_equal(s, "{\n  \"z\": \"a\\u0000b\",\n  \"e\": [],\n  \"o\": {}\n}");
    free(s);
    json_decref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_forms),
        cmocka_unit_test(test_leaves_the_rest),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_direct_equals_rewrite),
        cmocka_unit_test(test_refuses_as_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
