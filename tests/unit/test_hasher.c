/* test_hasher.c: MurmurHash3 vectors, scikit-learn's index/sign rules
 * (INT32_MIN included), the streamed "name=value" hash against the
 * plain one, CSR row rules (sort, sum, explicit zeros, skipped zeros,
 * missing values) and CSR encode/decode with garbage buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "frame.h"
#include "hasher.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Published MurmurHash3_x86_32 vectors (SMHasher; sklearn.utils.
 * murmurhash3_32 gives the same). */
static void test_murmur_vectors(void **state)
{
    (void)state;
    struct { const char *key; size_t len; uint32_t seed, want; } v[] = {
        {"", 0, 0, 0},
        {"", 0, 1, 0x514e28b7u},
        {"", 0, 0xffffffffu, 0x81f16f39u},
        {"\0\0\0\0", 4, 0, 0x2362f9deu},
        {"aaaa", 4, 0x9747b28cu, 0x5a97808au},
        {"a", 1, 0x9747b28cu, 0x7fa09ea6u},
        {"abc", 3, 0x9747b28cu, 0xc84a62ddu},
        {"Hello, world!", 13, 0x9747b28cu, 0x24884cbau},
        {"The quick brown fox jumps over the lazy dog", 43, 0x9747b28cu, 0x2fa826cdu},
        {"foo", 3, 0, 0xf6a5c420u},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal((uint32_t)mlk_murmur3_32(v[i].key, v[i].len, v[i].seed), v[i].want);
    assert_int_equal(mlk_murmur3_32(NULL, 0, 0), 0);
}

static uint32_t inv_odd(uint32_t c)
{
    uint32_t x = c;
    for (int i = 0; i < 5; i++) x *= 2u - c * x;
    return x;
}

static uint32_t rotr32(uint32_t x, int r)
{
    return (x >> r) | (x << (32 - r));
}

/* The 4-byte key whose seed-0 hash is `target` (the 4-byte hash is a
 * bijection; invert each step). */
static void preimage4(uint32_t target, unsigned char key[4])
{
    uint32_t h = target;
    h ^= h >> 16;
    h *= inv_odd(0xc2b2ae35u);
    h ^= (h >> 13) ^ (h >> 26);
    h *= inv_odd(0x85ebca6bu);
    h ^= h >> 16;
    h ^= 4u;
    h = (h - 0xe6546b64u) * inv_odd(5u);
    uint32_t k = rotr32(h, 13);
    k *= inv_odd(0x1b873593u);
    k = rotr32(k, 15);
    k *= inv_odd(0xcc9e2d51u);
    for (int i = 0; i < 4; i++) key[i] = (unsigned char)(k >> (8 * i));
}

static void test_index_sign(void **state)
{
    (void)state;
    unsigned char key[4];
    preimage4(0x80000000u, key);
    int32_t h = mlk_murmur3_32(key, 4, 0);
    assert_int_equal(h, INT32_MIN);
    /* 2^31 mod n, as _hashing_fast computes for h == -2^31 */
    assert_int_equal(mlk_hash_index(h, 10), 8);
    assert_int_equal(mlk_hash_index(h, 1 << 20), 0);
    assert_int_equal(mlk_hash_index(h, 3), 2);
    assert_int_equal(mlk_hash_index(h, INT32_MAX), 1);
    assert_true(mlk_hash_sign(h, 1) == -1.0);
    assert_true(mlk_hash_sign(h, 0) == 1.0);
    assert_int_equal(mlk_hash_index(-7, 5), 2);
    assert_int_equal(mlk_hash_index(7, 5), 2);
    assert_int_equal(mlk_hash_index(INT32_MAX, 1), 0);
    assert_true(mlk_hash_sign(0, 1) == 1.0);

    /* Through the token entry, with n_features = 10. */
    mlk_hash_opts o = {.n_features = 10, .alternate_sign = 1};
    mlk_hash_token t = {(const char *)key, 4, 1.0};
    size_t rp[2] = {0, 1};
    mlk_csr *m = NULL;
    assert_int_equal(mlk_hash_tokens(&o, 1, rp, &t, &m, NULL, 0), 0);
    assert_int_equal(m->indptr[1], 1);
    assert_int_equal(m->indices[0], 8);
    assert_true(m->data[0] == -1.0);
    mlk_csr_destroy(&m);
    assert_null(m);
    mlk_csr_destroy(&m); /* twice is safe */
}

/* hash_frame streams "name=" then the value; compare with the plain
 * hash of the concatenation for every prefix/value length mod 4,
 * non-ASCII and a long value. */
static void test_stream_matches_plain(void **state)
{
    (void)state;
    const char *names[] = {"", "a", "ab", "abc", "abcd", "abcde", "h\xc3\xa9t\xc3\xa9rog\xc3\xa8ne"};
    const size_t nnames = sizeof names / sizeof names[0];
    mlk_coltype types[sizeof names / sizeof names[0]];
    for (size_t c = 0; c < nnames; c++) types[c] = MLK_STR;
    size_t nvals = 12;
    char *longv = malloc(100003);
    assert_non_null(longv);
    for (size_t i = 0; i < 100003; i++) longv[i] = (char)('a' + i % 26);
    mlk_frame *f = mlk_frame_new(nnames, names, types, nvals);
    assert_non_null(f);
    const char *vals[] = {"", "x", "xy", "xyz", "wxyz", "vwxyz", "\xe6\x97\xa5\xe6\x9c\xac",
                          "0123456789", "=", "a=b", NULL, NULL};
    for (size_t r = 0; r < nvals; r++) {
        for (size_t c = 0; c < nnames; c++) {
            if (r == 10) assert_int_equal(mlk_frame_str_push(f, c, r, longv, 100003, 0), 0);
            else if (r == 11) assert_int_equal(mlk_frame_str_push(f, c, r, "", 0, 1), 0);
            else assert_int_equal(mlk_frame_str_push(f, c, r, vals[r], strlen(vals[r]), 0), 0);
        }
        f->row_id[r] = (int64_t)r;
        f->nrows = r + 1;
    }
    char *buf = malloc(100003 + 64);
    assert_non_null(buf);
    for (size_t c = 0; c < nnames; c++) {
        size_t cols[1] = {c};
        mlk_hash_opts o;
        mlk_hash_opts_default(&o);
        mlk_csr *m = NULL;
        assert_int_equal(mlk_hash_frame(&o, f, cols, 1, &m, NULL, 0), 0);
        assert_int_equal(m->nrows, nvals);
        assert_int_equal(m->ncols, 1 << 20);
        for (size_t r = 0; r < nvals; r++) {
            if (r == 11) { /* missing: no entry */
                assert_int_equal(m->indptr[r + 1] - m->indptr[r], 0);
                continue;
            }
            size_t len;
            const char *v = mlk_str_at(&f->cols[c], r, &len);
            size_t nl = strlen(names[c]);
            memcpy(buf, names[c], nl);
            buf[nl] = '=';
            memcpy(buf + nl + 1, v, len);
            int32_t h = mlk_murmur3_32(buf, nl + 1 + len, 0);
            assert_int_equal(m->indptr[r + 1] - m->indptr[r], 1);
            assert_int_equal(m->indices[m->indptr[r]], mlk_hash_index(h, 1 << 20));
            assert_true(m->data[m->indptr[r]] == mlk_hash_sign(h, 1));
        }
        mlk_csr_destroy(&m);
    }
    free(buf);
    free(longv);
    mlk_frame_destroy(&f);
}

/* Many rows of short values (0..16 bytes, random bytes, some missing,
 * now and then a long one): the 8-row vector path of hash_frame (on a
 * CPU that has it), its fallbacks at long values and at the column's
 * end, and the scalar path all give the plain hash of "name=value",
 * for every prefix length mod 4. */
static void test_stream_many_rows(void **state)
{
    (void)state;
    const char *names[] = {"c", "ab", "abc", "item", "user_id", "category"};
    const size_t nnames = sizeof names / sizeof names[0];
    mlk_coltype types[sizeof names / sizeof names[0]];
    for (size_t c = 0; c < nnames; c++) types[c] = MLK_STR;
    const size_t nrows = 5003;
    mlk_frame *f = mlk_frame_new(nnames, names, types, nrows);
    assert_non_null(f);
    uint32_t x = 12345;
    char val[40];
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < nnames; c++) {
            x = x * 1103515245u + 12345u;
            size_t len = (x >> 8) % 17;
            if ((x >> 20) % 97 == 0) len = 13 + (x >> 4) % 27; /* a long one */
            for (size_t i = 0; i < len; i++) {
                x = x * 1103515245u + 12345u;
                val[i] = (char)(x >> 16);
            }
            int missing = (x >> 12) % 53 == 0;
            assert_int_equal(mlk_frame_str_push(f, c, r, val, missing ? 0 : len, missing), 0);
        }
        f->row_id[r] = (int64_t)r;
        f->nrows = r + 1;
    }
    size_t cols[sizeof names / sizeof names[0]];
    for (size_t c = 0; c < nnames; c++) cols[c] = c;
    mlk_hash_opts o = {.n_features = 1 << 30, .alternate_sign = 1};
    for (size_t c = 0; c < nnames; c++) {
        mlk_csr *m = NULL;
        assert_int_equal(mlk_hash_frame(&o, f, cols + c, 1, &m, NULL, 0), 0);
        char buf[80];
        size_t nl = strlen(names[c]);
        memcpy(buf, names[c], nl);
        buf[nl] = '=';
        for (size_t r = 0; r < nrows; r++) {
            if (f->cols[c].missing[r]) {
                assert_int_equal(m->indptr[r + 1] - m->indptr[r], 0);
                continue;
            }
            size_t len;
            const char *v = mlk_str_at(&f->cols[c], r, &len);
            memcpy(buf + nl + 1, v, len);
            int32_t h = mlk_murmur3_32(buf, nl + 1 + len, 0);
            assert_int_equal(m->indptr[r + 1] - m->indptr[r], 1);
            assert_int_equal(m->indices[m->indptr[r]], mlk_hash_index(h, 1 << 30));
            assert_true(m->data[m->indptr[r]] == mlk_hash_sign(h, 1));
        }
        mlk_csr_destroy(&m);
    }
    mlk_frame_destroy(&f);
}

static mlk_hash_token tk(const char *s, double v)
{
    mlk_hash_token t = {s, strlen(s), v};
    return t;
}

static void test_row_rules(void **state)
{
    (void)state;
    mlk_hash_opts o = {.n_features = 10, .alternate_sign = 1};
    /* row 0: duplicates that cancel (explicit zero stays) and a zero
     * value (skipped); row 1: empty; row 2: 40 tokens (long-row path). */
    mlk_hash_token t[64];
    size_t n = 0;
    t[n++] = tk("dog", 1);
    t[n++] = tk("dog", -1);
    t[n++] = tk("cat", 0);
    t[n++] = tk("cat", 2);
    t[n++] = tk("cat", 3);
    size_t r1 = n, r2 = n;
    char names[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i % 13);
        t[n++] = tk(names[i], 1.0 + i);
    }
    size_t rp[4] = {0, r1, r2, n};
    mlk_csr *m = NULL;
    assert_int_equal(mlk_hash_tokens(&o, 3, rp, t, &m, NULL, 0), 0);
    int32_t hd = mlk_murmur3_32("dog", 3, 0), hc = mlk_murmur3_32("cat", 3, 0);
    int32_t id = mlk_hash_index(hd, 10), ic = mlk_hash_index(hc, 10);
    assert_int_not_equal(id, ic); /* 3 and 9, as in sklearn's docstring */
    assert_int_equal(m->indptr[1], 2);
    int pd = m->indices[0] == id ? 0 : 1;
    assert_int_equal(m->indices[pd], id);
    assert_true(m->data[pd] == 0.0); /* explicit zero kept */
    assert_int_equal(m->indices[1 - pd], ic);
    assert_true(m->data[1 - pd] == 5.0 * mlk_hash_sign(hc, 1));
    assert_true(m->indices[0] < m->indices[1]);
    assert_int_equal(m->indptr[2], m->indptr[1]);
    /* long row: sorted, unique, sums match a direct accumulation */
    double want[10] = {0};
    int seen[10] = {0};
    for (size_t i = r2; i < n; i++) {
        int32_t h = mlk_murmur3_32(t[i].bytes, t[i].len, 0);
        want[mlk_hash_index(h, 10)] += mlk_hash_sign(h, 1) * t[i].value;
        seen[mlk_hash_index(h, 10)] = 1;
    }
    int64_t k = m->indptr[2];
    for (int j = 0; j < 10; j++) {
        if (!seen[j]) continue;
        assert_true(k < m->indptr[3]);
        assert_int_equal(m->indices[k], j);
        assert_true(m->data[k] == want[j]);
        k++;
    }
    assert_int_equal(k, m->indptr[3]);
    mlk_csr_destroy(&m);

    /* alternate_sign off: all values positive */
    o.alternate_sign = 0;
    size_t rp1[2] = {0, 1};
    mlk_hash_token neg = tk("abc", 1.0); /* hash of "abc" is negative */
    assert_true(mlk_murmur3_32("abc", 3, 0) < 0);
    assert_int_equal(mlk_hash_tokens(&o, 1, rp1, &neg, &m, NULL, 0), 0);
    assert_true(m->data[0] == 1.0);
    mlk_csr_destroy(&m);
}

/* The kernels reduce |h| without a division (a mask for powers of two,
 * else a multiply); compare with mlk_hash_index for many tokens and
 * widths, the INT32_MIN key included. */
static void test_index_fast_paths(void **state)
{
    (void)state;
    enum { NT = 2000 };
    static char bytes[NT][12];
    mlk_hash_token t[NT + 1];
    srand(99);
    for (int i = 0; i < NT; i++) {
        for (int j = 0; j < 12; j++) bytes[i][j] = (char)rand();
        t[i].bytes = bytes[i];
        t[i].len = 1 + (size_t)(i % 12);
        t[i].value = 1.0;
    }
    unsigned char key[4];
    preimage4(0x80000000u, key);
    t[NT].bytes = (const char *)key;
    t[NT].len = 4;
    t[NT].value = 1.0;
    static size_t rp[NT + 2];
    for (size_t i = 0; i <= NT + 1; i++) rp[i] = i;
    const int32_t widths[] = {1, 2, 3, 7, 10, 1000, 1 << 20, (1 << 20) + 1, 1000003, INT32_MAX - 1,
                              INT32_MAX, 1 << 30};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        mlk_hash_opts o = {.n_features = widths[wi], .alternate_sign = 1};
        mlk_csr *m = NULL;
        assert_int_equal(mlk_hash_tokens(&o, NT + 1, rp, t, &m, NULL, 0), 0);
        for (int i = 0; i <= NT; i++) {
            int32_t h = mlk_murmur3_32(t[i].bytes, t[i].len, 0);
            assert_int_equal(m->indptr[i + 1] - m->indptr[i], 1);
            assert_int_equal(m->indices[m->indptr[i]], mlk_hash_index(h, widths[wi]));
        }
        mlk_csr_destroy(&m);
    }
}

static void test_bad_args(void **state)
{
    (void)state;
    char err[128];
    mlk_hash_opts o = {.n_features = 0, .alternate_sign = 1};
    size_t rp[2] = {0, 0};
    mlk_csr *m = NULL;
    int rc = mlk_hash_tokens(&o, 1, rp, NULL, &m, err, sizeof err);
    assert_int_equal(rc, MLOPS_EINVAL);
    assert_non_null(strstr(err, "n_features"));
    assert_string_not_equal(mlops_strerror(rc), "");
    o.n_features = 16;
    size_t bad[3] = {0, 2, 1};
    mlk_hash_token t[2] = {tk("a", 1), tk("b", 1)};
    assert_int_equal(mlk_hash_tokens(&o, 2, bad, t, &m, err, sizeof err), MLOPS_EINVAL);
    assert_null(m);
    const char *names[] = {"x"};
    mlk_coltype types[] = {MLK_F64};
    mlk_frame *f = mlk_frame_new(1, names, types, 4);
    size_t cols[1] = {3};
    assert_int_equal(mlk_hash_frame(&o, f, cols, 1, &m, err, sizeof err), MLOPS_EINVAL);
    /* a numeric column: token "x" with the value; NaN and 0 skipped */
    double vals[4] = {2.5, NAN, 0.0, -1.0};
    for (int r = 0; r < 4; r++) {
        f->cols[0].f64[r] = vals[r];
        f->row_id[r] = r;
    }
    f->nrows = 4;
    cols[0] = 0;
    assert_int_equal(mlk_hash_frame(&o, f, cols, 1, &m, err, sizeof err), 0);
    int32_t h = mlk_murmur3_32("x", 1, 0);
    assert_int_equal(m->indptr[4], 2);
    assert_int_equal(m->indptr[1], 1);
    assert_int_equal(m->indptr[3], 1);
    assert_true(m->data[0] == 2.5 * mlk_hash_sign(h, 1));
    assert_true(m->data[1] == -1.0 * mlk_hash_sign(h, 1));
    assert_int_equal(m->indices[0], mlk_hash_index(h, 16));
    mlk_csr_destroy(&m);
    mlk_frame_destroy(&f);
}

static mlk_csr *sample_csr(void)
{
    mlk_hash_opts o = {.n_features = 1000, .alternate_sign = 1};
    mlk_hash_token t[6] = {tk("a=1", 1), tk("b=2", 1), tk("c=3", 1), tk("d", 0.5), tk("e", 7), tk("f", 1)};
    size_t rp[4] = {0, 3, 3, 6};
    mlk_csr *m = NULL;
    assert_int_equal(mlk_hash_tokens(&o, 3, rp, t, &m, NULL, 0), 0);
    return m;
}

static void test_encode_decode(void **state)
{
    (void)state;
    mlk_csr *m = sample_csr(), *back = NULL;
    uint8_t *buf;
    size_t len;
    char err[128];
    assert_int_equal(mlk_csr_encode(m, &buf, &len), 0);
    assert_int_equal(mlk_csr_decode(buf, len, &back, err, sizeof err), 0);
    assert_int_equal(back->nrows, m->nrows);
    assert_int_equal(back->ncols, m->ncols);
    size_t nnz = (size_t)m->indptr[m->nrows];
    assert_memory_equal(back->indptr, m->indptr, (m->nrows + 1) * 8);
    assert_memory_equal(back->indices, m->indices, nnz * 4);
    assert_memory_equal(back->data, m->data, nnz * 8);
    mlk_csr_destroy(&back);

    /* every truncation fails cleanly */
    for (size_t l = 0; l < len; l++) {
        assert_int_equal(mlk_csr_decode(buf, l, &back, err, sizeof err), MLOPS_EPARSE);
        assert_null(back);
    }
    /* every single-byte corruption either decodes to a valid matrix
     * (a data byte) or fails with EPARSE; never crashes */
    uint8_t *cp = malloc(len);
    assert_non_null(cp);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(cp, buf, len);
            cp[i] ^= (uint8_t)(1u << bit);
            int rc = mlk_csr_decode(cp, len, &back, err, sizeof err);
            if (rc == 0) {
                for (size_t r = 0; r < back->nrows; r++)
                    for (int64_t k = back->indptr[r]; k < back->indptr[r + 1]; k++) {
                        assert_true(back->indices[k] >= 0 && (size_t)back->indices[k] < back->ncols);
                        if (k > back->indptr[r]) assert_true(back->indices[k] > back->indices[k - 1]);
                    }
                mlk_csr_destroy(&back);
            } else {
                assert_int_equal(rc, MLOPS_EPARSE);
                assert_null(back);
            }
        }
    }
    /* huge row / entry counts must not overflow the size checks */
    memcpy(cp, buf, len);
    uint64_t huge = UINT64_MAX / 4;
    memcpy(cp + 8, &huge, 8);
    assert_int_equal(mlk_csr_decode(cp, len, &back, err, sizeof err), MLOPS_EPARSE);
    memcpy(cp, buf, len);
    memcpy(cp + 24, &huge, 8);
    assert_int_equal(mlk_csr_decode(cp, len, &back, err, sizeof err), MLOPS_EPARSE);
    /* random garbage */
    srand(7);
    for (int it = 0; it < 2000; it++) {
        size_t l = (size_t)(rand() % (int)len) + 1;
        for (size_t i = 0; i < l; i++) cp[i] = (uint8_t)rand();
        if (it % 2) memcpy(cp, "MLKC\1\0\0\0", l < 8 ? l : 8);
        int rc = mlk_csr_decode(cp, l, &back, err, sizeof err);
        if (rc == 0) mlk_csr_destroy(&back);
        else assert_int_equal(rc, MLOPS_EPARSE);
    }
    assert_int_equal(mlk_csr_decode(NULL, 0, &back, err, sizeof err), MLOPS_EPARSE);
    free(cp);
    free(buf);
    mlk_csr_destroy(&m);

    /* an empty matrix round-trips */
    m = mlk_csr_new(0, 5, 0);
    assert_non_null(m);
    assert_int_equal(mlk_csr_encode(m, &buf, &len), 0);
    assert_int_equal(mlk_csr_decode(buf, len, &back, err, sizeof err), 0);
    assert_int_equal(back->nrows, 0);
    free(buf);
    mlk_csr_destroy(&back);
    mlk_csr_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur_vectors),
        cmocka_unit_test(test_index_sign),
        cmocka_unit_test(test_stream_matches_plain),
        cmocka_unit_test(test_stream_many_rows),
        cmocka_unit_test(test_row_rules),
        cmocka_unit_test(test_index_fast_paths),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_encode_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
