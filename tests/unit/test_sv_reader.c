/* test_sv_reader.c: the tree-less reader of scoring bodies
 * (serve/sv_reader.h): it takes each common shape itself (no fall back
 * to jansson), gives the very frame jansson's path gives (numbers bit for
 * bit, over many random ones), and hands every malformed or unusual body
 * to jansson, whose message still names the position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sv_reader.h"
#include "sv_request.h"

static char *COLS[] = {"price", "qty", "category"};
static const mlk_coltype TYPES[] = {MLK_F64, MLK_F64, MLK_STR};
static const sv_schema_t S = {3, COLS, TYPES};

static void same_frame(const mlk_frame *a, const mlk_frame *b)
{
    assert_int_equal(a->nrows, b->nrows);
    assert_int_equal(a->ncols, b->ncols);
    for (size_t r = 0; r < a->nrows; r++) assert_int_equal(a->row_id[r], b->row_id[r]);
    for (size_t c = 0; c < a->ncols; c++) {
        const mlk_col *x = &a->cols[c], *y = &b->cols[c];
        assert_int_equal(x->type, y->type);
        if (x->type == MLK_F64) {
            if (a->nrows) assert_memory_equal(x->f64, y->f64, a->nrows * sizeof *x->f64);
            continue;
        }
        for (size_t r = 0; r < a->nrows; r++) {
            /* not mlk_str_at: a column of only missing values has no bytes (str NULL) */
            size_t n1 = x->off[r + 1] - x->off[r], n2 = y->off[r + 1] - y->off[r];
            assert_int_equal(n1, n2);
            if (n1) assert_memory_equal(x->str + x->off[r], y->str + y->off[r], n1);
            assert_int_equal(x->missing[r], y->missing[r]);
        }
    }
}

/* The reader takes body itself, into jansson's frame; its row count. */
static size_t fast(const char *body, size_t len)
{
    mlk_frame *f = NULL, *t = NULL;
    char err[512] = "";
    int rc = sv_reader_mlflow(&S, body, len, &f);
    if (rc) fprintf(stderr, "not taken: %.200s\n", body);
    assert_int_equal(rc, 0);
    rc = sv_request_parse_tree(&S, body, len, &t, err, sizeof err);
    if (rc) fprintf(stderr, "jansson: %s\n", err);
    assert_int_equal(rc, 0);
    same_frame(f, t);
    size_t n = f->nrows;
    mlk_frame_destroy(&f);
    mlk_frame_destroy(&t);
    return n;
}

static void test_shapes(void **state)
{
    (void)state;
    static const char *const OK[] = {
        "{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\"], \"data\": "
        "[[1.5, 2, \"books\"], [null, \"3\", null], [\"NA\", -0, -0], [1e-7, 2E+3, 12]]}}",
        " {\"dataframe_split\":{\"columns\":[\"category\",\"qty\",\"price\"],\"data\":[]}}\n",
        "{\"dataframe_records\": [{\"price\": 1, \"qty\": 2, \"category\": \"caf\xc3\xa9\"}, "
        "{\"category\": \"\xf0\x9f\x98\x80\", \"price\": 9223372036854775807, \"qty\": "
        "-9223372036854775808}]}",
        "{\"instances\": [{\"price\": 0.1, \"qty\": 2.5e-320, \"category\": \"n/a\"}]}",
        "{\"instances\": {\"price\": [1, 2], \"qty\": [3, \"nan\"], \"category\": [\"x\", 7]}}",
        "{\"instances\": []}",
        /* MLflow's inference parameters: read and dropped */
        "{\"params\": {\"k\": [1, \"x\", null, true, {\"d\": -2.5e-3}], \"e\": {}}, \"instances\": "
        "[{\"price\": 1, \"qty\": 2, \"category\": \"a\"}]}",
        "{\"dataframe_records\": [{\"price\": 1, \"qty\": 2, \"category\": \"a\"}], \"params\": []}",
        /* pandas' orient="split", index first */
        "{\"dataframe_split\": {\"index\": [0, \"r1\", null, true, false, -1.5e3], \"columns\": "
        "[\"price\", \"qty\", \"category\"], \"data\": [[1, 2, \"a\"], [3, 4, \"b\"]]}}",
        "{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\"], \"data\": "
        "[[1, 2, \"a\"]], \"index\": []}}",
        /* escapes, as Python's json writes every non-ASCII character */
        "{\"dataframe_split\": {\"columns\": [\"pr\\u0069ce\", \"qty\", \"category\"], \"data\": "
        "[[1, 2, \"\\u5bb6\\u5c45\"], [\"1\\u002e5\", 3, \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"], "
        "[1, 2, \"\\ud83d\\ude00 \\u00e9\\u00E9\"]]}}",
    };
    for (size_t i = 0; i < sizeof OK / sizeof *OK; i++) fast(OK[i], strlen(OK[i]));

    const char *v2 = "{\"parameters\": {\"content_type\": \"pd\"}, \"inputs\": [{\"name\": \"price\", "
                     "\"datatype\": \"FP64\", \"shape\": [2], \"parameters\": {}, "
                     "\"data\": [1, 0.30000000000000004]}, {\"name\": \"qty\", \"datatype\": "
                     "\"INT64\", \"shape\": [2, 1], \"data\": [1, null]}, {\"name\": "
                     "\"category\", \"datatype\": \"BYTES\", \"shape\": [2], \"data\": [\"a\", "
                     "-0]}], \"id\": \"q1\", \"outputs\": [{\"name\": \"proba\"}]}";
    mlk_frame *f = NULL, *t = NULL;
    char *id = NULL, *tid = NULL, err[512];
    assert_int_equal(sv_reader_v2(&S, v2, strlen(v2), &f, &id), 0);
    assert_int_equal(sv_request_parse_v2_tree(&S, v2, strlen(v2), &t, &tid, err, sizeof err), 0);
    same_frame(f, t);
    assert_string_equal(id, "q1");
    assert_string_equal(tid, "q1");
    size_t n;
    const char *s = mlk_str_at(&f->cols[2], 1, &n);
    assert_int_equal(n, 1);
    assert_memory_equal(s, "0", 1); /* an integer's "%lld" text */
    free(id);
    free(tid);
    mlk_frame_destroy(&f);
    mlk_frame_destroy(&t);
}

/* Random numbers in the forms clients print them: each one the double
 * jansson (strtod, or long long for an integer) gives. */
static void test_numbers(void **state)
{
    (void)state;
    enum { N = 20000 };
    size_t cap = (size_t)N * 800 + 200, o = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    o += (size_t)snprintf(b + o, cap - o,
                          "{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\"], "
                          "\"data\": [");
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        uint64_t bits = x;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d)) d = (double)(int64_t)x;
        double u = (double)(x >> 11) / 9007199254740992.0 * pow(10, (double)(int)(x % 40) - 20);
        const char *fmt[] = {"%.17g", "%.15g", "%.3f", "%.6e", "%.20g"};
        char a[400], c[64];
        snprintf(a, sizeof a, fmt[x % 5], i % 2 ? d : u);
        snprintf(c, sizeof c, "%lld", (long long)x >> (x % 64));
        /* jansson refuses an integer past long long ("%.20g" of 1e20) */
        int big_int = !strpbrk(a, ".eE") && strlen(a) > 18;
        if (!strchr(a, 'n') && !strchr(a, 'i') && !big_int)
            o += (size_t)snprintf(b + o, cap - o, "%s[%s, %s, %s]", i ? "," : "", a, c, c);
        else
            o += (size_t)snprintf(b + o, cap - o, "%s[1, %s, %s]", i ? "," : "", c, c);
    }
    o += (size_t)snprintf(b + o, cap - o, "]}}");
    assert_int_equal(fast(b, o), N);
    free(b);
}

/* Bodies the reader leaves to jansson; the public parser's answer is
 * jansson's (an error naming the place, or the frame). */
static void test_punts(void **state)
{
    (void)state;
    static const struct {
        const char *body, *msg; /* msg NULL: jansson takes it */
    } P[] = {
        {"{\"dataframe_split\": {\"columns\": [\"price\"], \"data\": [[1]", "malformed JSON"},
        {"{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\"], \"data\": "
         "[[1, 2, \"a\"]]}} x",
         "malformed JSON"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"a\", \"qty\": 3}]}",
         "duplicate"},
        {"{\"instances\": [{\"price\": 01, \"qty\": 2, \"category\": \"a\"}]}", "malformed JSON"},
        {"{\"instances\": [{\"price\": 1., \"qty\": 2, \"category\": \"a\"}]}", "malformed JSON"},
        {"{\"instances\": [{\"price\": 1e400, \"qty\": 2, \"category\": \"a\"}]}", "overflow"},
        {"{\"instances\": [{\"price\": 9223372036854775808, \"qty\": 2, \"category\": \"a\"}]}",
         "too big integer"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"\xc0\x80\"}]}",
         "malformed JSON"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"\xed\xa0\x80\"}]}",
         "malformed JSON"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"a\tb\"}]}", "malformed JSON"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": 1.5}]}",
         "instances[0].category (column 'category'): expected a string, got a number"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"a\\u0000\"}]}",
         "malformed JSON"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"\\ud800x\"}]}",
         "malformed JSON"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"\\x\"}]}", "malformed JSON"},
        {"{\"dataframe_split\": {\"data\": [[1, 2, \"a\"]], \"columns\": [\"price\", \"qty\", "
         "\"category\"]}}",
         NULL},
        {"{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\"], \"data\": "
         "[[1, 2, \"a\"]], \"index\": [[0]]}}",
         NULL},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"a\"}], \"params\": {\"a\": "
         "1, \"b\": {\"c\": 2, \"c\": 3}}}",
         "duplicate"},
        {"{\"instances\": [{\"price\": 1, \"qty\": 2, \"category\": \"a\"}], \"params\": {\"\\u0061\": "
         "1}}",
         NULL},
    };
    for (size_t i = 0; i < sizeof P / sizeof *P; i++) {
        const char *body = P[i].body, *msg = P[i].msg;
        size_t len = strlen(body);
        mlk_frame *f = NULL;
        char err[512] = "";
        assert_int_equal(sv_reader_mlflow(&S, body, len, &f), SV_READER_PUNT);
        assert_null(f);
        int rc = sv_request_parse(&S, "application/json", body, len, &f, err, sizeof err);
        if (msg) {
            if (!strstr(err, msg)) fprintf(stderr, "body %zu: got '%s', want '%s'\n", i, err, msg);
            assert_int_equal(rc, MLOPS_EPARSE);
            assert_non_null(strstr(err, msg));
        } else {
            if (rc) fprintf(stderr, "body %zu: %s\n", i, err);
            assert_int_equal(rc, 0);
            assert_int_equal(f->nrows, 1);
        }
        mlk_frame_destroy(&f);
    }
    /* V2: a tensor's data before its shape, an unknown key, a shape past the body */
    static const char *const V2[] = {
        "{\"inputs\": [{\"name\": \"price\", \"data\": [1], \"datatype\": \"FP64\", \"shape\": [1]}]}",
        "{\"inputs\": [], \"parameters\": {}, \"parameters\": {}}",
        "{\"inputs\": [{\"name\": \"price\", \"datatype\": \"FP64\", \"shape\": [99999999999], "
        "\"data\": [1]}]}",
    };
    for (size_t i = 0; i < sizeof V2 / sizeof *V2; i++) {
        mlk_frame *f = NULL;
        char *id = NULL;
        assert_int_equal(sv_reader_v2(&S, V2[i], strlen(V2[i]), &f, &id), SV_READER_PUNT);
        assert_null(f);
        assert_null(id);
    }
}

/* More columns than the reader keeps on its stack (32): its heap path */
static void test_wide(void **state)
{
    (void)state;
    enum { NC = 40 };
    char *cols[NC], names[NC][8];
    mlk_coltype types[NC];
    for (int c = 0; c < NC; c++) {
        snprintf(names[c], sizeof names[c], "c%d", c);
        cols[c] = names[c];
        types[c] = c % 3 ? MLK_F64 : MLK_STR;
    }
    const sv_schema_t w = {NC, cols, types};
    char body[4096];
    size_t o = (size_t)snprintf(body, sizeof body, "{\"instances\": [");
    for (int r = 0; r < 3; r++) {
        o += (size_t)snprintf(body + o, sizeof body - o, "%s{", r ? "," : "");
        for (int c = NC - 1; c >= 0; c--) /* the reverse of the schema's order */
            o += (size_t)snprintf(body + o, sizeof body - o, "%s\"c%d\": %s%d.5%s",
                                  c == NC - 1 ? "" : ", ", c, c % 3 ? "" : "\"", r * 100 + c,
                                  c % 3 ? "" : "\"");
        o += (size_t)snprintf(body + o, sizeof body - o, "}");
    }
    o += (size_t)snprintf(body + o, sizeof body - o, "]}");
    mlk_frame *f = NULL, *t = NULL;
    char err[512] = "";
    assert_int_equal(sv_reader_mlflow(&w, body, o, &f), 0);
    assert_int_equal(sv_request_parse_tree(&w, body, o, &t, err, sizeof err), 0);
    same_frame(f, t);
    assert_int_equal(f->nrows, 3);
    assert_true(f->cols[1].f64[2] == 201.5);
    mlk_frame_destroy(&f);
    mlk_frame_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_wide),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_punts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
