/* test_jsonreply.c: reading the coordinator's Reply{json} (common/jsonreply.h).
 * The reply shapes mlopsctl reads and the getters' defaults; a bad reply
 * fails with one line giving its line and column (duplicate keys,
 * trailing text and control characters included); and a garbage sweep
 * (every truncation of a real reply, random mutations) that must never
 * crash, never leak and always say where it failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonreply.h"

static json_t *parse(const char *s, char *err, size_t errlen)
{
    return mlops_jsonreply_parse(s, strlen(s), err, errlen);
}

static void test_reply_shapes(void **state)
{
    (void)state;
    const char *doc =
        "{\"job\":\"j000001\",\"name\":\"purchases\",\"state\":\"running\",\"error\":null,\n"
        " \"stages\":[{\"name\":\"ingest\",\"state\":\"done\",\"tasks_total\":16,\"tasks_done\":16,"
        "\"seconds\":0.25},{\"name\":\"clean\",\"state\":\"running\",\"tasks_total\":16,"
        "\"tasks_done\":9,\"seconds\":0.4}],\n"
        " \"metrics\":{\"rows_in\":1000000,\"rows_after_dropna\":999000,\"a\":1},\"model\":null,"
        " \"big\":18446744073709551615}";
    char err[256] = "";
    json_t *v = parse(doc, err, sizeof err);
    assert_non_null(v);
    assert_string_equal(err, "");
    assert_string_equal(mlops_jsonreply_str(v, "job", ""), "j000001");
    /* null, absent and wrong-typed members give the default */
    assert_null(mlops_jsonreply_str(v, "error", NULL));
    assert_string_equal(mlops_jsonreply_str(v, "absent", "d"), "d");
    assert_string_equal(mlops_jsonreply_str(v, "stages", "d"), "d");
    assert_true(mlops_jsonreply_num(v, "name", -7) == -7);
    assert_string_equal(mlops_jsonreply_str(NULL, "job", "n"), "n");
    assert_true(mlops_jsonreply_num(NULL, "x", 3) == 3);

    const json_t *st = json_object_get(v, "stages");
    assert_int_equal(json_array_size(st), 2);
    const json_t *clean = json_array_get(st, 1);
    assert_string_equal(mlops_jsonreply_str(clean, "name", ""), "clean");
    assert_true(mlops_jsonreply_num(clean, "tasks_done", -1) == 9);
    assert_true(mlops_jsonreply_num(clean, "seconds", -1) == 0.4);
    assert_null(json_array_get(st, 2));
    assert_string_equal(mlops_jsonreply_str(st, "name", "arr"), "arr"); /* not an object */

    /* metrics print in the coordinator's order, not sorted */
    const json_t *m = json_object_get(v, "metrics");
    const char *want[] = {"rows_in", "rows_after_dropna", "a"};
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)m, key, val) {
        assert_true(i < 3);
        assert_string_equal(key, want[i++]);
        assert_true(json_is_number(val));
    }
    assert_int_equal(i, 3);
    assert_true(mlops_jsonreply_num(m, "rows_in", 0) == 1e6);
    /* an integer past int64 is a number, not a parse error */
    assert_true(mlops_jsonreply_num(v, "big", 0) == 18446744073709551615.0);
    json_decref(v);
}

/* Each bad document must fail with exactly this message. */
static void expect_fail(const char *doc, size_t len, const char *want)
{
    char err[256] = "";
    json_t *v = mlops_jsonreply_parse(doc, len, err, sizeof err);
    if (v) {
        json_decref(v);
        fail_msg("accepted: %.*s", (int)len, doc);
    }
    if (strcmp(err, want)) fail_msg("for %.*s: got '%s', want '%s'", (int)len, doc, err, want);
}
#define EXPECT_FAIL(doc, want) expect_fail(doc, sizeof(doc) - 1, want)

static void test_strict(void **state)
{
    (void)state;
    EXPECT_FAIL("{\"a\":1,\"a\":2}", "line 1, column 10: duplicate object key near '\"a\"'");
    EXPECT_FAIL("{\n  \"a\": [1,\n   2,,]}", "line 3, column 6: unexpected token near ','");
    /* a reply is an object (or an array), never a bare value */
    EXPECT_FAIL("\"ok\"", "line 1, column 4: '[' or '{' expected near '\"ok\"'");
    EXPECT_FAIL("{} x", "line 1, column 4: end of file expected near 'x'");
    EXPECT_FAIL("[1,2,]", "line 1, column 6: unexpected token near ']'");
    EXPECT_FAIL("{\"error\":nul}", "line 1, column 12: invalid token near 'nul'");
    EXPECT_FAIL("{\"a\":1e400}", "line 1, column 10: real number overflow near '1e400'");
    EXPECT_FAIL("{\"a\":\"\\ud83d\"}",
                "line 1, column 13: invalid Unicode '\\uD83D' near '\"\\ud83d\"'");
    expect_fail("{\"a\":\"x\0y\"}", 11, "line 1, column 7: control character 0x0 near '\"x'");
    EXPECT_FAIL(
        "{\"a\":\"\\u0000\"}",
        "line 1, column 13: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"\\u0000\"'");
    EXPECT_FAIL("{\"a\":\"x\ty\"}", "line 1, column 7: control character 0x9 near '\"x'");
    /* jansson quotes a bad token as it is, here an ESC: the message keeps
     * to one line of plain text */
    EXPECT_FAIL("[1,\x1b]", "line 1, column 4: invalid token near '?'");

    /* no buffer, or no text, is not a crash */
    assert_null(mlops_jsonreply_parse("[", 1, NULL, 0));
    char err[64];
    assert_null(mlops_jsonreply_parse(NULL, 0, err, sizeof err));
    assert_string_equal(err, "no text");
    /* a short buffer truncates the line, still terminated */
    char tiny[8];
    assert_null(parse("{} x", tiny, sizeof tiny));
    assert_string_equal(tiny, "line 1,");
}

/* A failure message: "line L, column C: ..." on one line. */
static void assert_one_line_position(const char *err)
{
    int line = 0, col = 0;
    if (sscanf(err, "line %d, column %d: ", &line, &col) != 2 || line < 1)
        fail_msg("no position in '%s'", err);
    for (const unsigned char *p = (const unsigned char *)err; *p; p++)
        if (*p < 0x20) fail_msg("control character in '%s'", err);
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
        char err[256] = "";
        json_t *v = mlops_jsonreply_parse(copy, k, err, sizeof err);
        if (v) fail_msg("accepted a prefix of %zu bytes", k);
        assert_one_line_position(err);
        free(copy);
    }
    json_t *v = mlops_jsonreply_parse(doc, len, NULL, 0);
    assert_non_null(v);
    json_decref(v);

    /* random bytes and random mutations of the document */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    unsigned char buf[256];
    const char alphabet[] = "{}[]\":,\\u0123456789.eE+-truefalsn \n\t\x80\xc3\xff";
    for (int round = 0; round < 20000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (size_t)(x % sizeof buf);
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
        char err[256] = "";
        json_t *g = mlops_jsonreply_parse(copy, n, err, sizeof err);
        if (!g) assert_one_line_position(err);
        json_decref(g);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_shapes),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
