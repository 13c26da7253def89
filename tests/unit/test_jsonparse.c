/* test_jsonparse.c: the strict JSON parser (common/jsonparse.h).
 * Valid documents of every type, the coordinator's reply shapes, escape
 * and UTF-8 handling, each strictness rule with its message, and a
 * garbage sweep (random bytes, truncations of a real reply, deep
 * nesting) that must never crash and never leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonparse.h"

static jv *parse(const char *s, char *err, size_t errlen)
{
    return jv_parse(s, strlen(s), err, errlen);
}

static void test_scalars(void **state)
{
    (void)state;
    char err[256];
    jv *v = parse("  42 ", err, sizeof err);
    assert_non_null(v);
    assert_int_equal(v->type, JV_NUMBER);
    assert_true(v->num == 42.0);
    jv_free(&v);
    assert_null(v);
    jv_free(&v); /* twice is fine */

    v = parse("-0.5e-3", err, sizeof err);
    assert_non_null(v);
    assert_true(v->num == -0.5e-3);
    jv_free(&v);

    v = parse("0.1", err, sizeof err);
    assert_true(v->num == 0.1);
    jv_free(&v);

    v = parse("true", err, sizeof err);
    assert_true(jv_bool(v, 0) == 1);
    jv_free(&v);
    v = parse("false", err, sizeof err);
    assert_true(jv_bool(v, 1) == 0);
    jv_free(&v);
    v = parse("null", err, sizeof err);
    assert_true(jv_is(v, JV_NULL));
    assert_string_equal(jv_str(v, "dflt"), "dflt");
    jv_free(&v);

    v = parse("\"hi\"", err, sizeof err);
    assert_string_equal(jv_str(v, NULL), "hi");
    assert_int_equal(v->len, 2);
    jv_free(&v);
}

static void test_reply_shapes(void **state)
{
    (void)state;
    const char *doc =
        "{\"job\":\"j000001\",\"name\":\"purchases\",\"state\":\"running\",\"error\":null,\n"
        " \"stages\":[{\"name\":\"ingest\",\"state\":\"done\",\"tasks_total\":16,\"tasks_done\":16,"
        "\"seconds\":0.25},{\"name\":\"clean\",\"state\":\"running\",\"tasks_total\":16,"
        "\"tasks_done\":9,\"seconds\":0.4}],\n"
        " \"metrics\":{\"rows_in\":1000000,\"rows_after_dropna\":999000},\"model\":null}";
    char err[256];
    jv *v = parse(doc, err, sizeof err);
    assert_non_null(v);
    assert_string_equal(jv_get_str(v, "job", ""), "j000001");
    assert_true(jv_is(jv_get(v, "error"), JV_NULL));
    const jv *st = jv_get(v, "stages");
    assert_int_equal(jv_len(st), 2);
    assert_string_equal(jv_get_str(jv_at(st, 1), "name", ""), "clean");
    assert_true(jv_get_num(jv_at(st, 1), "tasks_done", -1) == 9);
    assert_null(jv_at(st, 2));
    const jv *m = jv_get(v, "metrics");
    assert_int_equal(jv_len(m), 2);
    assert_string_equal(m->keys[1], "rows_after_dropna");
    assert_true(jv_get_num(m, "rows_in", 0) == 1e6);
    assert_true(jv_get_num(m, "absent", -7) == -7);
    assert_null(jv_get(st, "name")); /* not an object */
    jv_free(&v);

    /* many items: exercises growth */
    char big[64 * 1024];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof big - n, "[");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s%d", i ? "," : "", i);
    snprintf(big + n, sizeof big - n, "]");
    v = parse(big, err, sizeof err);
    assert_non_null(v);
    assert_int_equal(jv_len(v), 5000);
    assert_true(jv_num(jv_at(v, 4999), 0) == 4999);
    jv_free(&v);
}

static void test_escapes(void **state)
{
    (void)state;
    char err[256];
    jv *v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", err, sizeof err);
    assert_non_null(v);
    assert_string_equal(v->str, "a\"b\\c/d\b\f\n\r\t");
    jv_free(&v);

    v = parse("\"\\u00e9\\u20AC\\ud83d\\ude00\"", err, sizeof err); /* e-acute, euro, emoji */
    assert_non_null(v);
    assert_string_equal(v->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    jv_free(&v);

    v = parse("\"x\\u0000y\"", err, sizeof err); /* embedded NUL kept, len says so */
    assert_non_null(v);
    assert_int_equal(v->len, 3);
    assert_memory_equal(v->str, "x\0y", 3);
    jv_free(&v);

    v = parse("\"caf\xc3\xa9\"", err, sizeof err); /* raw UTF-8 passes */
    assert_non_null(v);
    assert_int_equal(v->len, 5);
    jv_free(&v);
}

/* Each bad document must fail with the given message fragment. */
static void expect_fail(const char *doc, size_t len, const char *fragment)
{
    char err[256] = "";
    jv *v = jv_parse(doc, len, err, sizeof err);
    if (v) {
        jv_free(&v);
        fail_msg("accepted: %.*s", (int)len, doc);
    }
    if (!strstr(err, fragment)) fail_msg("for %.*s: got '%s', want '%s'", (int)len, doc, err, fragment);
    assert_non_null(strstr(err, "json: line "));
}
#define EXPECT_FAIL(doc, frag) expect_fail(doc, sizeof(doc) - 1, frag)

static void test_strict(void **state)
{
    (void)state;
    EXPECT_FAIL("", "unexpected end of input");
    EXPECT_FAIL("   ", "unexpected end of input");
    EXPECT_FAIL("[1,2,]", "trailing comma in array");
    EXPECT_FAIL("{\"a\":1,}", "trailing comma in object");
    EXPECT_FAIL("{\"a\":1,\"a\":2}", "duplicate key");
    EXPECT_FAIL("{a:1}", "expected a string key");
    EXPECT_FAIL("{\"a\" 1}", "expected ':'");
    EXPECT_FAIL("{\"a\":1 \"b\":2}", "expected ',' or '}'");
    EXPECT_FAIL("[1 2]", "expected ',' or ']'");
    EXPECT_FAIL("[1,2", "unterminated array");
    EXPECT_FAIL("{\"a\":1", "unterminated object");
    EXPECT_FAIL("\"abc", "unterminated string");
    EXPECT_FAIL("\"a\nb\"", "control character");
    EXPECT_FAIL("\"\\x\"", "bad escape");
    EXPECT_FAIL("\"\\u12\"", "bad \\u escape");
    EXPECT_FAIL("\"\\ud83d\"", "high surrogate");
    EXPECT_FAIL("\"\\ude00\"", "lone low surrogate");
    EXPECT_FAIL("\"\xff\"", "invalid UTF-8");
    EXPECT_FAIL("\"\xc0\xaf\"", "invalid UTF-8");     /* overlong */
    EXPECT_FAIL("\"\xed\xa0\x80\"", "invalid UTF-8"); /* encoded surrogate */
    EXPECT_FAIL("\"\xe2\x82\"", "invalid UTF-8");     /* truncated */
    EXPECT_FAIL("01", "leading zero");
    EXPECT_FAIL("-", "expected a digit");
    EXPECT_FAIL("1.", "expected a digit after '.'");
    EXPECT_FAIL("1e+", "expected a digit in exponent");
    EXPECT_FAIL("+1", "unexpected character");
    EXPECT_FAIL("NaN", "unexpected character");
    EXPECT_FAIL("tru", "unexpected character");
    EXPECT_FAIL("nul", "unexpected character");
    EXPECT_FAIL("1 2", "unexpected text after the value");
    EXPECT_FAIL("{} x", "unexpected text after the value");
    EXPECT_FAIL("// c\n1", "unexpected character");
    EXPECT_FAIL("{\"a\\u0000\":1}", "\\u0000");
    expect_fail("[1,\0 2]", 7, "unexpected character");

    /* the message gives the position */
    char err[256];
    assert_null(parse("{\n  \"a\": [1,\n   2,,]}", err, sizeof err));
    assert_string_equal(err, "json: line 3, column 6: unexpected character");
    /* NULL err buffer is allowed */
    assert_null(jv_parse("[", 1, NULL, 0));
    assert_null(jv_parse(NULL, 0, err, sizeof err));
}

static void test_depth(void **state)
{
    (void)state;
    char doc[2 * JV_MAX_DEPTH + 8];
    /* exactly the limit parses */
    size_t n = 0;
    for (int i = 0; i < JV_MAX_DEPTH; i++) doc[n++] = '[';
    for (int i = 0; i < JV_MAX_DEPTH; i++) doc[n++] = ']';
    jv *v = jv_parse(doc, n, NULL, 0);
    assert_non_null(v);
    jv_free(&v);
    /* one more fails cleanly */
    n = 0;
    for (int i = 0; i <= JV_MAX_DEPTH; i++) doc[n++] = '[';
    for (int i = 0; i <= JV_MAX_DEPTH; i++) doc[n++] = ']';
    char err[256];
    assert_null(jv_parse(doc, n, err, sizeof err));
    assert_non_null(strstr(err, "nested too deeply"));

    /* a huge run of '[' or '{"a":' must not blow the stack */
    size_t big = 1 << 20;
    char *deep = malloc(big);
    assert_non_null(deep);
    memset(deep, '[', big);
    assert_null(jv_parse(deep, big, NULL, 0));
    for (size_t i = 0; i + 5 <= big; i += 5) memcpy(deep + i, "{\"a\":", 5);
    assert_null(jv_parse(deep, big - big % 5, NULL, 0));
    free(deep);
}

static void test_garbage(void **state)
{
    (void)state;
    /* every prefix of a valid document: only the full one parses */
    const char *doc = "{\"workers\":[{\"id\":\"w1\",\"name\":\"worker-1\",\"slots\":2,"
                      "\"alive\":true,\"x\":[null,false,-1.5e3,\"\\u00e9\"]}]}";
    size_t len = strlen(doc);
    for (size_t k = 0; k < len; k++) {
        char *copy = malloc(k ? k : 1); /* exact size: ASan catches over-reads */
        assert_non_null(copy);
        memcpy(copy, doc, k);
        jv *v = jv_parse(copy, k, NULL, 0);
        assert_null(v);
        free(copy);
    }
    jv *v = jv_parse(doc, len, NULL, 0);
    assert_non_null(v);
    jv_free(&v);

    /* random bytes and random mutations of the document */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    unsigned char buf[256];
    const char alphabet[] = "{}[]\":,\\u0123456789.eE+-truefalsn \n\t\x80\xc3\xff";
    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        n = (size_t)(x % sizeof buf);
        if (round % 2) {
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[i] = (unsigned char)alphabet[x % (sizeof alphabet - 1)];
            }
        } else {
            n = len < sizeof buf ? len : sizeof buf;
            memcpy(buf, doc, n);
            for (int m = 0; m < 3; m++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[x % n] = (unsigned char)(x >> 32);
            }
        }
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        char err[128];
        jv *g = jv_parse(copy, n, err, sizeof err);
        if (!g) assert_non_null(strstr(err, "json: "));
        jv_free(&g);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars), cmocka_unit_test(test_reply_shapes),
        cmocka_unit_test(test_escapes), cmocka_unit_test(test_strict),
        cmocka_unit_test(test_depth),   cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
