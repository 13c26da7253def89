/* test_csv_fast.c: the CSV parser's fast path (plain records, converted
 * as they are scanned) against its general tokenizer: for every input
 * both must give the same frame bytes, the same return code, the same
 * message and the same count of skipped rows. Built four times: with
 * the CPU's best path (test_csv_fast: AVX-512, AVX2 or SSE2), without
 * AVX-512 (_avx2), with SSE2 only (_sse2) and with the portable
 * byte-at-a-time structural scan (_scalar, -DMLK_CSV_SCALAR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "csv.h"
#include "err.h"
#include "frame.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int rc;
    size_t bad;
    char err[256];
    uint8_t *enc; /* the frame's bytes, NULL on failure */
    size_t enclen;
    mlk_frame *f;
} outcome;

/* Parse text (header + records) from an exactly sized heap copy (so that
 * a read past the end shows under ASan) with the given path. */
static outcome run(const char *text, size_t len, const mlk_coltype *types, const size_t *keep,
                   size_t nkeep, int skip_bad, int general_only)
{
    outcome o = {0};
    char *buf = malloc(len ? len : 1);
    memcpy(buf, text, len);
    char **hdr = NULL;
    size_t nhdr = 0, ds = 0, index[16];
    o.rc = mlk_csv_header(buf, len, &hdr, &nhdr, &ds, o.err, sizeof o.err);
    if (o.rc == 0) {
        const char *want[16];
        size_t n = 0;
        for (size_t i = 0; i < nkeep && keep[i] < nhdr; i++) want[n++] = hdr[keep[i]];
        mlk_csv_schema s;
        o.rc = mlk_csv_schema_init(&s, (const char *const *)hdr, nhdr, want, types, n, index, o.err,
                                   sizeof o.err);
        if (o.rc == 0) {
            s.general_only = general_only;
            long line = 1;
            for (size_t i = 0; i < ds; i++) line += buf[i] == '\n';
            o.rc = mlk_csv_parse(buf + ds, len - ds, &s, 7, line, "t.csv", skip_bad, &o.f, &o.bad,
                                 o.err, sizeof o.err);
            if (o.rc == 0) assert_int_equal(mlk_frame_encode(o.f, &o.enc, &o.enclen), 0);
        }
    }
    mlk_csv_names_free(&hdr, nhdr);
    free(buf);
    return o;
}

static void done(outcome *o)
{
    free(o->enc);
    mlk_frame_destroy(&o->f);
}

/* Both paths agree on text; returns the fast path's outcome (caller
 * calls done) for checks of the values themselves. */
static outcome agree(const char *text, size_t len, const mlk_coltype *types, const size_t *keep,
                     size_t nkeep, int skip_bad)
{
    outcome a = run(text, len, types, keep, nkeep, skip_bad, 0);
    outcome b = run(text, len, types, keep, nkeep, skip_bad, 1);
    if (a.rc != b.rc || strcmp(a.err, b.err) != 0 || a.bad != b.bad || a.enclen != b.enclen ||
        (a.enclen && memcmp(a.enc, b.enc, a.enclen) != 0)) {
        fprintf(stderr, "fast and general paths differ on [%.*s]: rc %d/%d '%s'/'%s' bad %zu/%zu\n",
                (int)len, text, a.rc, b.rc, a.err, b.err, a.bad, b.bad);
        fail();
    }
    done(&b);
    return a;
}

static const mlk_coltype F3[] = {MLK_F64, MLK_F64, MLK_F64};
static const mlk_coltype S3[] = {MLK_STR, MLK_STR, MLK_STR};
static const size_t ALL3[] = {0, 1, 2};

static void test_numbers(void **state)
{
    (void)state;
    /* the 8-byte word conversion, the digit loop beyond 8 bytes, and
     * what both leave to the general path (>17 or >19 digits, exponents,
     * inf, spaces, NA tokens, signs alone, two dots) */
    const char *cells[] = {"0",
                           "-0",
                           "+5.",
                           ".5",
                           "-.5",
                           "00000001",
                           "12345678",
                           "1234567.8",
                           "123456789",
                           "0.1234567",
                           "9007199254740993",
                           "12345678901234567",
                           "123456789012345678",
                           "12345678901234567890123",
                           "0.000000000000000000001",
                           "1e5",
                           "-inf",
                           " 7",
                           "7 ",
                           "NA",
                           "nan",
                           "",
                           "-",
                           ".",
                           "1.2.3",
                           "+",
                           "1-2",
                           "99999999",
                           "-99999999",
                           "1.0000000",
                           "4.35",
                           "0.3",
                           "14.26",
                           "16000"};
    size_t n = sizeof cells / sizeof *cells;
    for (size_t i = 0; i < n; i++) {
        char t[256];
        int len = snprintf(t, sizeof t, "a,b,c\n%s,1,%s\n2,%s,3", cells[i], cells[i], cells[i]);
        for (int skip = 0; skip < 2; skip++) {
            outcome o = agree(t, (size_t)len, F3, ALL3, 3, skip);
            double v;
            if (o.rc == 0 && o.f->nrows == 2 &&
                mlk_csv_to_double(cells[i], strlen(cells[i]), &v) == 0) {
                assert_memory_equal(&o.f->cols[0].f64[0], &v, sizeof v);
                assert_memory_equal(&o.f->cols[1].f64[1], &v, sizeof v);
            }
            done(&o);
        }
    }
    outcome o = agree("a,b,c\n14.26,-0,16000\n", 21, F3, ALL3, 3, 0);
    assert_int_equal(o.rc, 0);
    assert_true(o.f->cols[0].f64[0] == 14.26 && o.f->cols[2].f64[0] == 16000.0);
    assert_true(o.f->cols[1].f64[0] == 0 && signbit(o.f->cols[1].f64[0]));
    done(&o);
}

static void test_records(void **state)
{
    (void)state;
    const char *texts[] = {
        /* CRLF, the last field trimmed on the fast path */
        "a,b,c\r\n1,2,3\r\n4,5,6\r\n",
        /* a CR that is data, a CR at the very end */
        "a,b,c\n1,x\ry,3\n4,5,6\r",
        /* blank lines, lines of spaces, and an error after them */
        "a,b,c\n\n1,2,3\n  \t\n\r\n4,5\n7,8,9\n",
        /* too many fields, too few, one field */
        "a,b,c\n1,2,3,4\n1,2\n1\n1,2,3\n",
        /* a quoted field across the 16- and 64-byte blocks */
        "a,b,c\n1,2,3\n1234567890,\"abc,def\n\"\"ghi\"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",9\n5,"
        "6,7\n",
        /* a '"' inside a field is data; a field that starts quoted */
        "a,b,c\nx\"y,2,3\n\"q\"tail,2,3\n",
        /* NA tokens in every column */
        "a,b,c\nNA,N/A,\n#N/A N/A,<NA>,-1.#QNAN\nNone,null,1\n",
        /* long fields, UTF-8 and bytes that are not */
        "a,b,c\n\xc3\xa9t\xc3\xa9,\xe5\xae\xb6\xe5\xb1\x85,abcdefghijklmnopqrstuvwxyz0123456789\n"
        "ok,\xff,3\n\xed\xa0\x80,2,3\n",
        /* quoted fields the fast path takes: commas inside, empty,
         * numbers, the last before a CRLF or the end; and those it
         * leaves: a '""' inside, a quote closing early */
        "a,b,c\n\"toys, games\",\"\",\"12.5\"\r\n\"1,5\",2,\"3\"\n4,\",\",\"NA\"\n7,8,\"9\"",
        "a,b,c\n\"a\"\"b\",2,3\n\"x\"y\",2,3\n1,\"2\",\"3\"\"\n",
        /* no final newline, an unterminated quote */
        "a,b,c\n1,2,3\n4,5,\"6",
        "a,b,c\n1,2,3\n4,5,6",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        size_t len = strlen(texts[i]);
        for (int skip = 0; skip < 2; skip++) {
            const mlk_coltype mixed[] = {MLK_STR, MLK_F64, MLK_STR};
            const size_t two[] = {2, 0};
            outcome o = agree(texts[i], len, F3, ALL3, 3, skip);
            done(&o);
            o = agree(texts[i], len, S3, ALL3, 3, skip);
            done(&o);
            o = agree(texts[i], len, mixed, ALL3, 3, skip);
            done(&o);
            o = agree(texts[i], len, S3, two, 2, skip); /* a field not kept */
            done(&o);
        }
    }
    /* the values of a CRLF file, a quoted field across blocks */
    outcome o = agree(texts[0], strlen(texts[0]), F3, ALL3, 3, 0);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.f->nrows, 2);
    assert_true(o.f->cols[2].f64[0] == 3 && o.f->cols[2].f64[1] == 6);
    done(&o);
    o = agree(texts[4], strlen(texts[4]), S3, ALL3, 3, 0);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.f->nrows, 3);
    size_t n;
    const char *s = mlk_str_at(&o.f->cols[1], 1, &n);
    assert_int_equal(n, 48);
    assert_memory_equal(s, "abc,def\n\"ghi\"", 13);
    assert_int_equal(o.f->row_id[2], 9);
    done(&o);
    o = agree(texts[8], strlen(texts[8]), S3, ALL3, 3, 0);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.f->nrows, 4);
    s = mlk_str_at(&o.f->cols[0], 0, &n);
    assert_true(n == 11 && !memcmp(s, "toys, games", 11));
    assert_true(o.f->cols[1].missing[0] && !o.f->cols[2].missing[0]);
    assert_true(o.f->cols[2].missing[2]); /* "NA" quoted is missing too */
    s = mlk_str_at(&o.f->cols[1], 2, &n);
    assert_true(n == 1 && s[0] == ',');
    done(&o);
    const mlk_coltype ssf[] = {MLK_STR, MLK_STR, MLK_F64};
    o = agree(texts[8], strlen(texts[8]), ssf, ALL3, 3, 0);
    assert_int_equal(o.rc, 0);
    assert_true(o.f->cols[2].f64[0] == 12.5 && o.f->cols[2].f64[1] == 3);
    assert_true(isnan(o.f->cols[2].f64[2]) && o.f->cols[2].f64[3] == 9);
    done(&o);
    o = agree(texts[6], strlen(texts[6]), S3, ALL3, 3, 0);
    assert_int_equal(o.rc, 0);
    assert_true(o.f->cols[0].missing[0] && o.f->cols[1].missing[0] && o.f->cols[2].missing[0]);
    assert_true(o.f->cols[0].missing[1] && o.f->cols[1].missing[1] && o.f->cols[2].missing[1]);
    assert_false(o.f->cols[0].missing[2]); /* "None" is a string in pandas 1.5 */
    done(&o);
    o = agree(texts[2], strlen(texts[2]), F3, ALL3, 3, 0);
    assert_int_equal(o.rc, MLOPS_EPARSE);
    assert_string_equal(o.err, "t.csv:6: expected 3 fields, got 2");
    done(&o);
}

static uint64_t rnd(uint64_t *seed, uint64_t n)
{
    *seed = *seed * 6364136223846793005u + 1442695040888963407u;
    return (*seed >> 33) % n;
}

/* Random records, field by field: mostly numbers of every shape the
 * fast conversion takes or hands on (sign, 0-12 digits, a '.', 0-9
 * decimals), words, and atoms of every byte the dialect treats
 * specially; mostly 3 fields, LF or CRLF. Both paths must agree. */
static void test_random_agree(void **state)
{
    (void)state;
    static const char *const atoms[] = {
        "-",    "+",         ".",        "e",      "E",    ",",
        "\r",   "\"",        "\"\"",     " ",      "\t",   "NA",
        "nan",  "inf",       "\xc3\xa9", "\xff",   "\n",   "abcdefghijklmnopq",
        "#N/A", "\"a,\nb\"", "\"a,b\"",  "\"12\"", "\",\""};
    const size_t natoms = sizeof atoms / sizeof *atoms;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char buf[1200];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = (size_t)sprintf(buf, "a,b,c\n");
        size_t nrec = 1 + rnd(&seed, 12);
        for (size_t r = 0; r < nrec && len < sizeof buf - 200; r++) {
            size_t nf = rnd(&seed, 10) == 0 ? 2 + 2 * rnd(&seed, 2) : 3;
            for (size_t k = 0; k < nf; k++) {
                uint64_t kind = rnd(&seed, 10);
                if (kind < 7) {
                    if (rnd(&seed, 8) == 0) buf[len++] = rnd(&seed, 2) ? '-' : '+';
                    size_t id = rnd(&seed, 13);
                    for (size_t i = 0; i < id; i++) buf[len++] = (char)('0' + rnd(&seed, 10));
                    if (rnd(&seed, 2)) {
                        buf[len++] = '.';
                        size_t fd = rnd(&seed, 10);
                        for (size_t i = 0; i < fd; i++) buf[len++] = (char)('0' + rnd(&seed, 10));
                    }
                } else if (kind < 9) {
                    size_t wl = rnd(&seed, 20);
                    for (size_t i = 0; i < wl; i++) buf[len++] = (char)('a' + rnd(&seed, 26));
                } else {
                    const char *a = atoms[rnd(&seed, natoms)];
                    memcpy(buf + len, a, strlen(a));
                    len += strlen(a);
                }
                if (k + 1 < nf) buf[len++] = ',';
            }
            if (r + 1 < nrec || rnd(&seed, 2)) {
                if (rnd(&seed, 10) == 0) buf[len++] = '\r';
                buf[len++] = '\n';
            }
        }
        const mlk_coltype types[][3] = {
            {MLK_F64, MLK_F64, MLK_F64}, {MLK_STR, MLK_STR, MLK_STR}, {MLK_F64, MLK_STR, MLK_F64}};
        const size_t keep_one[] = {1};
        for (int skip = 0; skip < 2; skip++) {
            outcome o = agree(buf, len, types[iter % 3], ALL3, 3, skip);
            done(&o);
        }
        outcome o = agree(buf, len, types[1], keep_one, 1, 1);
        done(&o);
    }
}

/* Every field of 1 to 4 bytes over the bytes a short number is made of
 * (digits, '.', signs, 'e', a space, a letter), and random ones of 5 to
 * 8 bytes, as the first and as the last field of a record: the fast
 * conversion of short numbers (one shuffle with SSSE3, the SWAR word
 * otherwise) must give the general path's doubles, -0.0 included, and
 * refuse what it refuses. */
static void test_short_numbers_agree(void **state)
{
    (void)state;
    static const char alpha[] = "0159.-+e a";
    enum { NA = sizeof alpha - 1, NENUM = 10 + 100 + 1000 + 10000, NRAND = 50000 };
    size_t cap = 16 + (size_t)(NENUM + NRAND) * 12;
    char *first = malloc(cap), *last = malloc(cap);
    assert_non_null(first);
    assert_non_null(last);
    size_t lf = (size_t)sprintf(first, "a,b\n"), ll = (size_t)sprintf(last, "a,b\n");
    uint64_t seed = 0x243f6a8885a308d3u;
    for (size_t i = 0; i < NENUM + NRAND; i++) {
        char fld[8];
        size_t n = 0;
        if (i < NENUM) { /* i's length and digits in base NA, shortest first */
            size_t code = i, w = 1, pw = NA;
            while (code >= pw) code -= pw, w++, pw *= NA;
            for (size_t at = 0; at < w; at++, code /= NA) fld[at] = alpha[code % NA];
            n = w;
        } else { /* mostly digits */
            n = 5 + rnd(&seed, 4);
            for (size_t at = 0; at < n; at++)
                fld[at] = alpha[rnd(&seed, 10) < 7 ? rnd(&seed, 4) : rnd(&seed, NA)];
        }
        memcpy(first + lf, fld, n);
        lf += n;
        lf += (size_t)sprintf(first + lf, ",7\n");
        ll += (size_t)sprintf(last + ll, "7,");
        memcpy(last + ll, fld, n);
        ll += n;
        last[ll++] = '\n';
    }
    const mlk_coltype types[] = {MLK_F64, MLK_F64};
    const size_t keep[] = {0, 1};
    outcome o = agree(first, lf, types, keep, 2, 1);
    assert_true(o.f->nrows > 1000); /* most fields of digits are numbers */
    done(&o);
    o = agree(last, ll, types, keep, 2, 1);
    done(&o);
    free(first);
    free(last);
}

/* The splitter's walk through quotes against the general tokenizer: in
 * random text of quotes, "", commas, line breaks, blanks and runs of
 * plain records (what the AVX-512 record skip takes, 64 bytes at a
 * time), every shard of k records must parse (general path) as exactly k
 * records, kept or skipped (the last one 1 to k), or be the last one
 * with its quote left open, and start at the line the LFs before it
 * say. */
static void test_split_random(void **state)
{
    (void)state;
    static const char *const atoms[] = {"a", "1", ",", "\"", "\"\"", "\n", "\r\n", " ", "\r",
                                        "\"x,\ny\"", "\n\n", ",\"", "\"\n",
                                        "ab,12\nc,3\nd,45\ne,6\nfg,7\nh,8\n", "\n \n", "\n\t1,2\n"};
    const size_t natoms = sizeof atoms / sizeof *atoms;
    const mlk_coltype types[] = {MLK_STR, MLK_STR};
    uint64_t seed = 0x13198a2e03707344u;
    char buf[4096];
    static const size_t ks[] = {1, 2, 3, 5, 8};
    for (int iter = 0; iter < 2500; iter++) {
        const size_t k = ks[iter % 5];
        size_t len = (size_t)sprintf(buf, "a,b\n");
        size_t natom = rnd(&seed, 80);
        for (size_t i = 0; i < natom; i++) {
            const char *a = atoms[rnd(&seed, natoms)];
            memcpy(buf + len, a, strlen(a));
            len += strlen(a);
        }
        uint64_t *off;
        long *lines;
        size_t ns;
        uint64_t total;
        assert_int_equal(mlk_csv_split(buf, len, 4, k, &off, &lines, &ns, &total), 0);
        assert_int_equal(ns, (total + k - 1) / k);
        for (size_t i = 0; i < ns; i++) {
            size_t end = i + 1 < ns ? off[i + 1] : len;
            long line = 1;
            for (size_t b = 0; b < off[i]; b++) line += buf[b] == '\n';
            assert_int_equal(lines[i], line);
            char **hdr = NULL;
            size_t nhdr, ds, index[2];
            char err[256];
            assert_int_equal(mlk_csv_header(buf, len, &hdr, &nhdr, &ds, err, sizeof err), 0);
            mlk_csv_schema sch;
            const char *want[] = {"a", "b"};
            assert_int_equal(mlk_csv_schema_init(&sch, (const char *const *)hdr, nhdr, want, types,
                                                 2, index, err, sizeof err),
                             0);
            sch.general_only = 1;
            mlk_frame *f = NULL;
            size_t bad = 0;
            int rc = mlk_csv_parse(buf + off[i], end - off[i], &sch, 0, lines[i], "t.csv", 1, &f,
                                   &bad, err, sizeof err);
            if (rc != 0) {
                assert_true(i + 1 == ns && strstr(err, "unterminated") != NULL);
            } else {
                size_t want = i + 1 < ns ? k : total - (ns - 1) * k;
                if (f->nrows + bad != want)
                    fprintf(stderr, "shard %zu (of %zu records) of [%.*s] holds %zu records\n", i,
                            k, (int)len, buf, f->nrows + bad);
                assert_int_equal(f->nrows + bad, want);
            }
            mlk_frame_destroy(&f);
            mlk_csv_names_free(&hdr, nhdr);
        }
        free(off);
        free(lines);
    }
}

/* Buffers of many windows and chunks of the fast path (100-300 KB):
 * mostly plain records, with every special record now and then, a
 * record longer than a window, and CRLFs, so that a window or a chunk
 * ends at every kind of byte: both paths must agree on all of it. */
static void test_long_agree(void **state)
{
    (void)state;
    static const char *const odd[] = {
        "1,\"a,b\",3",   "\"x\"\"y\",2,3", "1,2,\"a\nb\"",  "  ,1,2",        "1,NA,3",
        "1,2",           "1,2,3,4",      "1e5,2,3",       "1,\xc3\xa9,2", "1,\xff,2",
        "1,2,3\r",       "",             " \t",           "1,\"\",2",       "12345678901234567890,1,2"};
    const size_t nodd = sizeof odd / sizeof *odd;
    uint64_t seed = 0x2545f4914f6cdd1du;
    size_t cap = 320 * 1024;
    char *buf = malloc(cap);
    for (int iter = 0; iter < 24; iter++) {
        size_t len = (size_t)sprintf(buf, "a,b,c\n");
        size_t target = 100 * 1024 + rnd(&seed, 200 * 1024);
        while (len < target) {
            uint64_t kind = rnd(&seed, 40);
            if (kind == 0) {
                const char *a = odd[rnd(&seed, nodd)];
                memcpy(buf + len, a, strlen(a));
                len += strlen(a);
            } else if (kind == 1 && iter % 4 == 0) {
                /* a record longer than a window (16 KiB) */
                size_t wl = 17000 + rnd(&seed, 5000);
                buf[len++] = '1';
                buf[len++] = ',';
                for (size_t i = 0; i < wl; i++) buf[len++] = (char)('a' + rnd(&seed, 26));
                buf[len++] = ',';
                buf[len++] = '2';
            } else {
                for (int k = 0; k < 3; k++) {
                    if (k) buf[len++] = ',';
                    if (rnd(&seed, 6) == 0) continue; /* empty: missing */
                    if (rnd(&seed, 12) == 0) {
                        len += (size_t)sprintf(buf + len, "\"%llu, %llu\"",
                                               (unsigned long long)rnd(&seed, 100),
                                               (unsigned long long)rnd(&seed, 100));
                        continue;
                    }
                    len += (size_t)sprintf(buf + len, "%llu.%02llu",
                                           (unsigned long long)rnd(&seed, 100000),
                                           (unsigned long long)rnd(&seed, 100));
                }
            }
            if (rnd(&seed, 9) == 0) buf[len++] = '\r';
            buf[len++] = '\n';
        }
        if (iter % 2) len--; /* the last record without its LF */
        const mlk_coltype types[][3] = {
            {MLK_F64, MLK_F64, MLK_F64}, {MLK_STR, MLK_STR, MLK_STR}, {MLK_F64, MLK_STR, MLK_F64}};
        outcome o = agree(buf, len, types[iter % 3], ALL3, 3, 1);
        done(&o);
        o = agree(buf, len, types[(iter + 1) % 3], ALL3, 3, 0);
        done(&o);
    }
    free(buf);
}

/* A categorical column of a few UTF-8 values (the fast path keeps the
 * last two it validated and takes repeats by a compare), among values of
 * the same length that differ in a byte and are not UTF-8, NA tokens,
 * empties and ASCII, over many chunks: both paths agree, and with
 * skip_bad the bad ones are exactly the rows skipped. */
static void test_categorical_utf8(void **state)
{
    (void)state;
    static const char *const vals[] = {
        "\xe5\xae\xb6\xe5\xb1\x85",                 /* 家居 */
        "\xc3\xa9lectronique",                           /* électronique */
        "\xe5\xae\xb6\xe5\xb1\xff",                 /* 家居 with a bad last byte */
        "\xc3\xa9lectroniqu\xc3",                       /* cut in a character */
        "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6", /* 16 bytes, cut */
        "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad", /* 15 bytes */
        "NA", "", "shoes", "\xc3\xa9"};
    const size_t nvals = sizeof vals / sizeof *vals;
    const int bad[] = {0, 0, 1, 1, 1, 0, 0, 0, 0, 0};
    uint64_t seed = 0x51afd7ed558ccd1du;
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    static const mlk_coltype types[] = {MLK_F64, MLK_STR, MLK_STR};
    for (int iter = 0; iter < 40; iter++) {
        size_t len = (size_t)sprintf(buf, "a,b,c\n"), nbad = 0;
        /* mostly the two good values; the others now and then (none
         * at all in every fourth input: only the compare then) */
        for (int r = 0; r < 1500; r++) {
            size_t v = rnd(&seed, 8) ? rnd(&seed, 2) : rnd(&seed, nvals);
            if (iter % 4 == 0 && bad[v]) v = 1;
            size_t w = rnd(&seed, 3) ? 0 : rnd(&seed, nvals);
            if (iter % 4 == 0 && bad[w]) w = 0;
            nbad += bad[v] || bad[w];
            len += (size_t)sprintf(buf + len, "%d,%s,%s\n", r, vals[v], vals[w]);
        }
        outcome o = agree(buf, len, types, ALL3, 3, 1);
        assert_int_equal(o.rc, 0);
        assert_int_equal(o.bad, nbad);
        assert_int_equal(o.f->nrows, 1500 - nbad);
        done(&o);
        o = agree(buf, len, types, ALL3, 3, 0);
        assert_int_equal(o.rc == 0, nbad == 0);
        done(&o);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_random_agree),
        cmocka_unit_test(test_long_agree),
        cmocka_unit_test(test_short_numbers_agree),
        cmocka_unit_test(test_split_random),
        cmocka_unit_test(test_categorical_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
