/* test_csv.c: the CSV kernel's dialect and error messages, the splitter
 * agreeing with the parser for every shard size, and frame round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "csv.h"
#include "err.h"
#include "frame.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse a whole buffer (header + data) keeping the named columns. */
typedef struct {
    mlk_frame *f;
    size_t bad;
    int rc;
    char err[256];
} parsed;

static parsed parse_all(const char *text, size_t len, const char *const *want,
                        const mlk_coltype *types, size_t nwant, int skip_bad)
{
    parsed p = {0};
    char **hdr = NULL;
    size_t nhdr = 0, ds = 0, index[16];
    p.rc = mlk_csv_header(text, len, &hdr, &nhdr, &ds, p.err, sizeof p.err);
    if (p.rc) return p;
    mlk_csv_schema s;
    p.rc = mlk_csv_schema_init(&s, (const char *const *)hdr, nhdr, want, types, nwant, index, p.err,
                               sizeof p.err);
    if (p.rc == 0) {
        long line = 1;
        for (size_t i = 0; i < ds; i++) line += text[i] == '\n';
        p.rc = mlk_csv_parse(text + ds, len - ds, &s, 0, line, "t.csv", skip_bad, &p.f, &p.bad,
                             p.err, sizeof p.err);
    }
    mlk_csv_names_free(&hdr, nhdr);
    return p;
}

static const char *str_of(const mlk_frame *f, size_t c, size_t r, char *buf)
{
    size_t n;
    const char *s = mlk_str_at(&f->cols[c], r, &n);
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

static void test_header_bom_quotes(void **state)
{
    (void)state;
    const char t[] = "\xEF\xBB\xBF\"a,1\",b,\"c\"\"q\",\r\n1,2,3,4\r\n";
    char **names;
    size_t n, ds;
    char err[128];
    assert_int_equal(mlk_csv_header(t, sizeof t - 1, &names, &n, &ds, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "a,1");
    assert_string_equal(names[1], "b");
    assert_string_equal(names[2], "c\"q");
    assert_string_equal(names[3], "Unnamed: 3");
    assert_string_equal(t + ds, "1,2,3,4\r\n");
    mlk_csv_names_free(&names, n);
    assert_null(names);
}

static void test_empty_and_header_only(void **state)
{
    (void)state;
    char **names;
    size_t n, ds;
    char err[128];
    assert_int_equal(mlk_csv_header("", 0, &names, &n, &ds, err, sizeof err), MLOPS_EPARSE);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(mlk_csv_header("\n\n  \n", 5, &names, &n, &ds, err, sizeof err),
                     MLOPS_EPARSE);
    assert_int_equal(mlk_csv_header("\"ab\n", 4, &names, &n, &ds, err, sizeof err),
                     MLOPS_EPARSE);
    assert_non_null(strstr(err, "unterminated"));

    const char *want[] = {"x"};
    mlk_coltype ty[] = {MLK_F64};
    parsed p = parse_all("x,y\n", 4, want, ty, 1, 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.f->nrows, 0);
    mlk_frame_destroy(&p.f);
    p = parse_all("x,y", 3, want, ty, 1, 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.f->nrows, 0);
    mlk_frame_destroy(&p.f);

    uint64_t *off;
    long *lines;
    size_t ns;
    uint64_t total;
    assert_int_equal(mlk_csv_split("x,y\n", 4, 4, 10, &off, &lines, &ns, &total), 0);
    assert_int_equal(ns, 0);
    assert_int_equal(total, 0);
    assert_null(off);
    assert_int_equal(mlk_csv_split("x,y\n", 4, 4, 0, &off, &lines, &ns, &total), MLOPS_EINVAL);
    assert_int_equal(mlk_csv_split("x,y\n", 4, 5, 1, &off, &lines, &ns, &total), MLOPS_EINVAL);
}

static void test_fields_quotes_na(void **state)
{
    (void)state;
    const char t[] = "s,x,n\r\n"
                     "\"a,b\",1.5,-2\r\n"
                     "\"say \"\"hi\"\"\",-0.0,1e3\r\n"
                     "\"multi\nline\",NA,\"7\"\r\n"
                     "\r\n"
                     "   \n"
                     ",#N/A N/A,  3.25 \n"
                     "None,-1.#IND,+.5\n"
                     "\"NA\",inf,-Infinity\n"
                     "\"ab\"cd,1.#QNAN,5.\n"
                     "x\"y,<NA>,-nan";
    const char *want[] = {"s", "x", "n"};
    mlk_coltype ty[] = {MLK_STR, MLK_F64, MLK_F64};
    parsed p = parse_all(t, sizeof t - 1, want, ty, 3, 0);
    assert_int_equal(p.rc, 0);
    mlk_frame *f = p.f;
    assert_int_equal(f->nrows, 8);
    char b[64];
    assert_string_equal(str_of(f, 0, 0, b), "a,b");
    assert_string_equal(str_of(f, 0, 1, b), "say \"hi\"");
    assert_string_equal(str_of(f, 0, 2, b), "multi\nline");
    assert_true(f->cols[0].missing[3]);
    assert_string_equal(str_of(f, 0, 4, b), "None"); /* not NA in pandas 1.5 */
    assert_false(f->cols[0].missing[4]);
    assert_true(f->cols[0].missing[5]); /* quoted "NA" */
    assert_string_equal(str_of(f, 0, 6, b), "abcd");
    assert_string_equal(str_of(f, 0, 7, b), "x\"y");
    double *x = f->cols[1].f64, *n = f->cols[2].f64;
    assert_true(x[0] == 1.5 && n[0] == -2.0);
    assert_true(x[1] == 0.0 && signbit(x[1]));
    assert_true(n[1] == 1000.0);
    assert_true(isnan(x[2]) && n[2] == 7.0);
    assert_true(isnan(x[3]) && n[3] == 3.25);
    assert_true(isnan(x[4]) && n[4] == 0.5);
    assert_true(isinf(x[5]) && x[5] > 0 && isinf(n[5]) && n[5] < 0);
    assert_true(isnan(x[6]) && n[6] == 5.0);
    assert_true(isnan(x[7]) && isnan(n[7]));
    for (size_t r = 0; r < 8; r++) assert_int_equal(f->row_id[r], (int64_t)r);
    mlk_frame_destroy(&f);
}

static void test_numbers_exact(void **state)
{
    (void)state;
    /* Expected values are pandas 1.5.3's read_csv (its default converter),
     * produced by:
     *   /usr/bin/python3 -c "import pandas as pd, io; print(float(pd.read_csv(
     *       io.StringIO('x\\n' + TEXT + '\\n'))['x'].iloc[0]).hex())"
     * It agrees with a correctly rounded strtod up to 17 digits below 2^53
     * and differs past that (the last four cases). */
    static const struct {
        const char *text;
        double pandas;
    } cases[] = {
        {"0.1", 0x1.999999999999ap-4},
        {"123.456", 0x1.edd2f1a9fbe77p+6},
        {"-9007199254740993", -0x1.0000000000000p+53},
        {"1e22", 0x1.0f0cf064dd592p+73},
        {"1e23", 0x1.52d02c7e14af6p+76},
        {"4.9e-324", 0x0.0000000000001p-1022},
        {"2.2250738585072014e-308", 0x1.0000000000000p-1022},
        {"123456789012345678901234567890", 0x1.8ee90ff6c373ep+96},
        {"1.7976931348623157e308", 0x1.fffffffffffffp+1023},
        {"1e400", INFINITY},
        {"00012.5000", 0x1.9000000000000p+3},
        {"0.30000000000000004", 0x1.3333333333333p-2},
        {"3.14159265358979323846264338327950288", 0x1.921fb54442d17p+1},
        {"0.06570500540660813", 0x1.0d20b1167a68bp-4},
        {"0.000000000000954293", 0x1.0c955b31f4477p-40},
        {"0.00000000000000005089680", 0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double v;
        assert_int_equal(mlk_csv_to_double(cases[i].text, strlen(cases[i].text), &v), 0);
        assert_memory_equal(&v, &cases[i].pandas, sizeof v);
    }
    const char *bad[] = {"abc", "1.2.3", "1e", "-", ".", "1,5", "0x10", "nan", "1 2", "e5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v;
        assert_int_equal(mlk_csv_to_double(bad[i], strlen(bad[i]), &v), MLOPS_EPARSE);
    }
    assert_true(mlk_csv_is_na("", 0));
    assert_true(mlk_csv_is_na("-1.#QNAN", 8));
    assert_false(mlk_csv_is_na("None", 4));
    assert_false(mlk_csv_is_na("na", 2));
}

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    const char *want[] = {"a", "b"};
    mlk_coltype ty[] = {MLK_F64, MLK_F64};
    const char t1[] = "a,b,c\n1,2,3\n\n4,5\n";
    parsed p = parse_all(t1, sizeof t1 - 1, want, ty, 2, 0);
    assert_int_equal(p.rc, MLOPS_EPARSE);
    assert_null(p.f);
    assert_string_equal(p.err, "t.csv:4: expected 3 fields, got 2");

    const char t2[] = "a,b\n1,2\n\"x\ny\",2\nabc,3\n";
    const char *want2[] = {"b", "a"};
    p = parse_all(t2, sizeof t2 - 1, want2, ty, 2, 0);
    assert_int_equal(p.rc, MLOPS_EPARSE);
    assert_string_equal(p.err, "t.csv:3: column 'a': 'x?y' is not a number");

    p = parse_all(t2, sizeof t2 - 1, want2, ty, 2, 1);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.bad, 2);
    assert_int_equal(p.f->nrows, 1);
    assert_int_equal(p.f->row_id[0], 0);
    mlk_frame_destroy(&p.f);

    /* Skipped bad rows still consume their row ids. */
    const char t3[] = "a,b\n1\n2,2\n3,3,3\n4,4\n";
    p = parse_all(t3, sizeof t3 - 1, want, ty, 2, 1);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.bad, 2);
    assert_int_equal(p.f->nrows, 2);
    assert_int_equal(p.f->row_id[0], 1);
    assert_int_equal(p.f->row_id[1], 3);
    mlk_frame_destroy(&p.f);

    const char t4[] = "a,b\n1,2\n3,\"open\n4,5\n";
    p = parse_all(t4, sizeof t4 - 1, want, ty, 2, 1);
    assert_int_equal(p.rc, MLOPS_EPARSE);
    assert_string_equal(p.err, "t.csv:3: unterminated quoted field");

    const char *missing[] = {"zz"};
    p = parse_all(t1, sizeof t1 - 1, missing, ty, 1, 0);
    assert_int_equal(p.rc, MLOPS_ENOTFOUND);
    assert_string_equal(p.err, "column 'zz' not in header");
}

/* String fields must be well-formed UTF-8 (RFC 3629): valid 2-, 3- and
 * 4-byte forms pass (quoted too); a stray continuation byte, an overlong
 * form, a surrogate, a code point past U+10FFFF and a truncated sequence
 * are refused with the line, the column and the byte, or skipped. */
static void test_utf8(void **state)
{
    (void)state;
    const char *want[] = {"s"};
    mlk_coltype ty[] = {MLK_STR};
    const char ok[] = "s\n\xc3\xa9t\xc3\xa9\n\"\xe2\x82\xac,\"\n\xf0\x9f\x98\x80\n";
    parsed p = parse_all(ok, sizeof ok - 1, want, ty, 1, 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.f->nrows, 3);
    mlk_frame_destroy(&p.f);
    const char *bad[] = {"x\x80y", "\xc0\xaf", "a\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe2\x82"};
    const char *why[] = {"t.csv:3: column 's': invalid UTF-8 at byte 2 of the field",
                         "t.csv:3: column 's': invalid UTF-8 at byte 1 of the field",
                         "t.csv:3: column 's': invalid UTF-8 at byte 2 of the field",
                         "t.csv:3: column 's': invalid UTF-8 at byte 1 of the field",
                         "t.csv:3: column 's': invalid UTF-8 at byte 3 of the field"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[64];
        int n = snprintf(t, sizeof t, "s\nfine\n%s\nlast\n", bad[i]);
        p = parse_all(t, (size_t)n, want, ty, 1, 0);
        assert_int_equal(p.rc, MLOPS_EPARSE);
        assert_null(p.f);
        assert_string_equal(p.err, why[i]);
        p = parse_all(t, (size_t)n, want, ty, 1, 1);
        assert_int_equal(p.rc, 0);
        assert_int_equal(p.bad, 1);
        assert_int_equal(p.f->nrows, 2);
        mlk_frame_destroy(&p.f);
    }
}

/* Splitting into shards and parsing each must give the same rows, row
 * ids and line numbers as parsing the whole, for every shard size. */
static void test_split_matches_parse(void **state)
{
    (void)state;
    char *t = malloc(1 << 16);
    size_t len = (size_t)sprintf(t, "id,s,v\n");
    for (int i = 0; i < 300; i++) {
        if (i % 17 == 0) len += (size_t)sprintf(t + len, "\n");
        if (i % 13 == 0)
            len += (size_t)sprintf(t + len, "%d,\"q,\"\"\n%d\",%d.5\r\n", i, i, i);
        else if (i % 11 == 0)
            len += (size_t)sprintf(t + len, "%d,a\"b,%d\n", i, i);
        else
            len += (size_t)sprintf(t + len, "%d,s%d,%d\n", i, i, i);
    }
    len += (size_t)sprintf(t + len, "300,last,1"); /* no final newline */
    char **hdr;
    size_t nhdr, ds, index[3];
    char err[256];
    assert_int_equal(mlk_csv_header(t, len, &hdr, &nhdr, &ds, err, sizeof err), 0);
    const char *want[] = {"id", "s", "v"};
    mlk_coltype ty[] = {MLK_F64, MLK_STR, MLK_F64};
    mlk_csv_schema s;
    assert_int_equal(mlk_csv_schema_init(&s, (const char *const *)hdr, nhdr, want, ty, 3, index,
                                         err, sizeof err),
                     0);
    size_t sizes[] = {1, 2, 7, 64, 300, 301, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint64_t *off;
        long *lines;
        size_t ns;
        uint64_t total;
        assert_int_equal(mlk_csv_split(t, len, ds, sizes[k], &off, &lines, &ns, &total), 0);
        assert_int_equal(total, 301);
        assert_int_equal(ns, (301 + sizes[k] - 1) / sizes[k]);
        assert_int_equal(off[0], ds);
        assert_int_equal(lines[0], 2);
        int64_t next = 0;
        for (size_t i = 0; i < ns; i++) {
            size_t end = i + 1 < ns ? off[i + 1] : len;
            long line = 1;
            for (size_t b = 0; b < off[i]; b++) line += t[b] == '\n';
            assert_int_equal(lines[i], line);
            mlk_frame *f = NULL;
            size_t bad;
            assert_int_equal(mlk_csv_parse(t + off[i], end - off[i], &s,
                                           (int64_t)(i * sizes[k]), lines[i], "t.csv", 0, &f,
                                           &bad, err, sizeof err),
                             0);
            for (size_t r = 0; r < f->nrows; r++) {
                assert_int_equal(f->row_id[r], next);
                assert_true(f->cols[0].f64[r] == (double)next);
                next++;
            }
            mlk_frame_destroy(&f);
        }
        assert_int_equal(next, 301);
        free(off);
        free(lines);
    }
    mlk_csv_names_free(&hdr, nhdr);
    free(t);
}

static void test_frame_roundtrip_and_garbage(void **state)
{
    (void)state;
    const char t[] = "a,s\n1.5,x\n,\n-2,\"y,z\"\n";
    const char *want[] = {"a", "s"};
    mlk_coltype ty[] = {MLK_F64, MLK_STR};
    parsed p = parse_all(t, sizeof t - 1, want, ty, 2, 0);
    assert_int_equal(p.rc, 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(mlk_frame_encode(p.f, &buf, &len), 0);
    mlk_frame *g = NULL;
    assert_int_equal(mlk_frame_decode(buf, len, &g), 0);
    assert_int_equal(g->nrows, 3);
    assert_true(isnan(g->cols[0].f64[1]));
    char b[16];
    assert_string_equal(str_of(g, 1, 2, b), "y,z");
    mlk_frame_destroy(&g);
    /* Truncations and flipped bytes must be refused or decoded, never crash. */
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_not_equal(mlk_frame_decode(buf, cut, &g), 0);
        assert_null(g);
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t save = buf[i];
        buf[i] ^= 0xA5;
        if (mlk_frame_decode(buf, len, &g) == 0) mlk_frame_destroy(&g);
        buf[i] = save;
    }
    free(buf);
    mlk_frame_destroy(&p.f);
}

static void test_first_row_and_line_range(void **state)
{
    (void)state;
    /* a peer's task arguments give the first row id and line: ones the
     * shard's records would overflow are refused in one line */
    const char *hdr[] = {"a"};
    const char *want[] = {"a"};
    mlk_coltype ty[] = {MLK_F64};
    size_t index[1];
    char err[256];
    mlk_csv_schema s;
    assert_int_equal(mlk_csv_schema_init(&s, hdr, 1, want, ty, 1, index, err, sizeof err), 0);
    mlk_frame *f = NULL;
    size_t bad;
    assert_int_equal(mlk_csv_parse("1\n2\n", 4, &s, INT64_MAX, 2, "r.csv", 0, &f, &bad, err,
                                   sizeof err),
                     MLOPS_EINVAL);
    assert_null(f);
    assert_non_null(strstr(err, "r.csv: first row"));
    assert_null(strchr(err, '\n'));
    assert_int_equal(mlk_csv_parse("1\n2\n", 4, &s, 0, LONG_MAX, "r.csv", 0, &f, &bad, err,
                                   sizeof err),
                     MLOPS_EINVAL);
    assert_int_equal(mlk_csv_parse("1\n2\n", 4, &s, -1, 2, "r.csv", 0, &f, &bad, err, sizeof err),
                     MLOPS_EINVAL);
    assert_int_equal(mlk_csv_parse("1\n2\n", 4, &s, INT64_MAX - 4, LONG_MAX - 5, "r.csv", 0, &f,
                                   &bad, err, sizeof err),
                     0);
    assert_int_equal(f->nrows, 2);
    assert_int_equal(f->row_id[1], INT64_MAX - 3);
    mlk_frame_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_bom_quotes),
        cmocka_unit_test(test_empty_and_header_only),
        cmocka_unit_test(test_fields_quotes_na),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_split_matches_parse),
        cmocka_unit_test(test_frame_roundtrip_and_garbage),
        cmocka_unit_test(test_first_row_and_line_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
