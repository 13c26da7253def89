/* test_fpack.c: unit tests of fpack.h, the packed feature shard. A
 * random shard encodes, opens in place and converts back to the same
 * arrays bit for bit (f32 and f64 values, with and without a hashed part,
 * test flags or a dense part, empty rows); records of mixed sizes leave
 * marked gaps and never straddle a line; a misaligned buffer is refused
 * by mlk_fpack_open and decoded through a copy by mlk_features_decode;
 * every truncation and many single-byte changes are refused with a
 * one-line message or give a shard that still converts (never a crash:
 * the ASan build runs this too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fpack.h"
#include "hasher.h"

static uint64_t rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

/* n rows, up to maxnnz entries each over nf columns, nd dense values. */
static mlk_features *shard(size_t n, size_t nf, size_t maxnnz, size_t nd, int exact, int test, uint64_t seed)
{
    uint64_t s = seed;
    mlk_features *f = mlk_features_new(n);
    assert_non_null(f);
    if (nf) {
        f->csr = mlk_csr_new(n, nf, n * maxnnz + 1);
        assert_non_null(f->csr);
        int64_t p = 0;
        for (size_t i = 0; i < n; i++) {
            size_t cnt = rng(&s) % (maxnnz + 1), col = rng(&s) % nf;
            for (size_t c = 0; c < cnt && col < nf; c++, col += 1 + rng(&s) % 5) {
                f->csr->indices[p] = (int32_t)col;
                f->csr->data[p++] = exact ? (double)(int)(rng(&s) % 5) - 2.0 : (double)rng(&s) / 1e9;
            }
            f->csr->indptr[i + 1] = p;
        }
    }
    f->n_dense = nd;
    if (nd) {
        f->dense64 = malloc(n * nd * sizeof(double) + 8);
        for (size_t i = 0; i < n * nd; i++) f->dense64[i] = (double)rng(&s) / 3e9 - 1.0;
    }
    if (test) {
        f->test = malloc(n + 1);
        for (size_t i = 0; i < n; i++) f->test[i] = rng(&s) % 4 == 0;
    }
    for (size_t i = 0; i < n; i++) {
        f->row_id[i] = (int64_t)(rng(&s) % 100000);
        f->label[i] = (int32_t)(rng(&s) % 4) - 1;
    }
    return f;
}

static void assert_same(const mlk_features *a, const mlk_features *b)
{
    uint8_t *x, *y;
    size_t xl, yl;
    assert_int_equal(mlk_features_encode(a, &x, &xl), 0);
    assert_int_equal(mlk_features_encode(b, &y, &yl), 0);
    assert_int_equal(xl, yl);
    assert_memory_equal(x, y, xl);
    free(x);
    free(y);
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int v = 0; v < 24; v++) {
        size_t nf = v % 3 == 0 ? 0 : v % 3 == 1 ? 64 : 1u << 20, nd = (size_t)(v / 3) % 3 * 2;
        if (!nf && !nd) nd = 1;
        mlk_features *f = shard(200 + (size_t)v, nf, v % 2 ? 12 : 3, nd, v % 4 < 2, v % 5 != 0, (uint64_t)v + 1);
        uint8_t *b;
        size_t len;
        assert_int_equal(mlk_fpack_encode(f, &b, &len), 0);
        assert_int_equal((uintptr_t)b % 64, 0);
        mlk_fpack p;
        size_t off[256];
        char err[200] = "";
        assert_int_equal(mlk_fpack_open(b, len, &p, off, err, sizeof err), 0);
        assert_int_equal(p.nrows, f->nrows);
        assert_int_equal(p.hashed, nf != 0);
        for (size_t i = 0; i < p.nrows; i++) { /* placed by the rule, never across a line */
            uint32_t nnz;
            memcpy(&nnz, p.recs + off[i] + 4, 4);
            size_t sz = mlk_rec_size(nnz, nd, p.f32);
            assert_int_equal(mlk_rec_place(off[i], sz), off[i]);
            if (i + 1 < p.nrows) assert_true(off[i + 1] >= off[i] + sz);
        }
        mlk_features *g = mlk_fpack_to_features(&p, off);
        assert_non_null(g);
        assert_same(f, g);
        mlk_features *h = NULL; /* the generic decoder reads the packed form too */
        assert_int_equal(mlk_features_decode(b, len, &h), 0);
        assert_same(f, h);
        /* misaligned: refused in place, decoded through a copy */
        uint8_t *room = malloc(len + 8);
        memcpy(room + 3, b, len);
        assert_int_equal(mlk_fpack_open(room + 3, len, &p, off, err, sizeof err), MLOPS_EINVAL);
        assert_non_null(strstr(err, "misaligned"));
        mlk_features *k = NULL;
        assert_int_equal(mlk_features_decode(room + 3, len, &k), 0);
        assert_same(f, k);
        free(room);
        mlk_features_destroy(&k);
        mlk_features_destroy(&g);
        mlk_features_destroy(&h);
        mlk_features_destroy(&f);
        free(b);
    }
}

/* Rows of 1 and of 9 entries alternate: gaps are left and marked. */
static void test_gaps(void **state)
{
    (void)state;
    mlk_features *f = mlk_features_new(50);
    f->csr = mlk_csr_new(50, 100, 500);
    int64_t p = 0;
    for (size_t i = 0; i < 50; i++) {
        size_t cnt = i % 2 ? 9 : 1;
        for (size_t c = 0; c < cnt; c++) {
            f->csr->indices[p] = (int32_t)(c * 10 + i % 10);
            f->csr->data[p++] = 1.0;
        }
        f->csr->indptr[i + 1] = p;
        f->label[i] = (int32_t)(i % 2);
    }
    f->n_dense = 1;
    f->dense64 = calloc(50, sizeof(double));
    uint8_t *b;
    size_t len, off[50];
    assert_int_equal(mlk_fpack_encode(f, &b, &len), 0);
    mlk_fpack pk;
    char err[200] = "";
    assert_int_equal(mlk_fpack_open(b, len, &pk, off, err, sizeof err), 0);
    size_t gaps = 0;
    for (size_t i = 1; i < 50; i++) {
        uint32_t prev;
        memcpy(&prev, pk.recs + off[i - 1] + 4, 4);
        size_t end = off[i - 1] + mlk_rec_size(prev, 1, pk.f32);
        if (end != off[i]) {
            uint32_t mark;
            memcpy(&mark, pk.recs + end + 4, 4);
            assert_int_equal(mark, MLK_REC_GAP);
            assert_int_equal(off[i] % 64, 0);
            gaps++;
        }
    }
    assert_true(gaps > 0);
    assert_int_equal(pk.one_line, 0);
    mlk_features_destroy(&f);
    free(b);
}

static void one_line(const char *err)
{
    assert_true(err[0] != 0);
    assert_null(strchr(err, '\n'));
}

static void test_damage(void **state)
{
    (void)state;
    mlk_features *f = shard(40, 256, 6, 2, 1, 1, 99);
    uint8_t *b;
    size_t len, off[64];
    assert_int_equal(mlk_fpack_encode(f, &b, &len), 0);
    uint8_t *c = aligned_alloc(64, (len + 63) & ~(size_t)63);
    mlk_fpack p;
    char err[200];
    for (size_t cut = 0; cut < len; cut++) { /* every truncation */
        memcpy(c, b, cut);
        err[0] = 0;
        assert_int_not_equal(mlk_fpack_open(c, cut, &p, off, err, sizeof err), 0);
        one_line(err);
    }
    uint64_t s = 5;
    size_t refused = 0;
    for (int t = 0; t < 4000; t++) { /* single bytes changed */
        memcpy(c, b, len);
        size_t at = rng(&s) % len;
        c[at] ^= (uint8_t)(1u << (rng(&s) % 8));
        err[0] = 0;
        int rc = mlk_fpack_open(c, len, &p, off, err, sizeof err);
        if (rc != 0) {
            one_line(err);
            refused++;
            mlk_features *g = NULL;
            assert_int_not_equal(mlk_features_decode(c, len, &g), 0);
            assert_null(g);
            continue;
        }
        mlk_features *g = mlk_fpack_to_features(&p, off);
        assert_non_null(g);
        mlk_features_destroy(&g);
    }
    assert_true(refused > 0);
    /* the header's counts may not point beyond the buffer */
    memcpy(c, b, len);
    uint64_t big = UINT64_MAX / 2;
    memcpy(c + 8, &big, 8);
    assert_int_equal(mlk_fpack_open(c, len, &p, off, err, sizeof err), MLOPS_EPARSE);
    one_line(err);
    /* an F32 dense part is not packed */
    f->dense_type = MLK_DENSE_F32;
    uint8_t *x = NULL;
    size_t xl;
    assert_int_equal(mlk_fpack_encode(f, &x, &xl), MLOPS_EINVAL);
    f->dense_type = MLK_DENSE_F64;
    free(c);
    free(b);
    mlk_features_destroy(&f);
}

/* mlk_fpack_open_copy: on every shard, every truncation and single
 * changed byte, the answer of mlk_fpack_open (code, message, every field
 * and offset) with p->recs at the copy, which holds the records' bytes. */
static void open_both(const uint8_t *c, size_t len, uint8_t *dst)
{
    mlk_fpack p, q;
    size_t off[128], off2[128];
    char e1[200] = "", e2[200] = "";
    int r1 = mlk_fpack_open(c, len, &p, off, e1, sizeof e1);
    size_t rb = mlk_fpack_rec_bytes(c, len);
    assert_true(rb <= len);
    int r2 = mlk_fpack_open_copy(c, len, &q, off2, dst, e2, sizeof e2);
    assert_int_equal(r1, r2);
    assert_string_equal(e1, e2);
    if (r1) return;
    assert_int_equal(rb, p.rec_bytes);
    assert_ptr_equal(q.recs, dst);
    assert_memory_equal(q.recs, p.recs, p.rec_bytes);
    q.recs = p.recs;
    assert_memory_equal(&p, &q, sizeof p);
    assert_memory_equal(off, off2, p.nrows * sizeof *off);
}

static void test_open_copy(void **state)
{
    (void)state;
    for (int k = 0; k < 6; k++) { /* f32 and f64 values, gaps or none, tests flags, no hashed part */
        mlk_features *f = shard(k == 5 ? 100 : 40, k == 4 ? 0 : 256, (size_t)(k % 3) * 4 + 1, k == 4 ? 2 : (size_t)(k % 2) * 3,
                                k % 2, k % 2, (uint64_t)(300 + k));
        uint8_t *b;
        size_t len;
        assert_int_equal(mlk_fpack_encode(f, &b, &len), 0);
        uint8_t *c = aligned_alloc(64, (len + 63) & ~(size_t)63), *dst = aligned_alloc(64, (len + 63) & ~(size_t)63);
        assert_true(c && dst);
        for (size_t cut = 0; cut <= len; cut++) {
            memcpy(c, b, cut);
            open_both(c, cut, dst);
        }
        uint64_t s = 17 + (uint64_t)k;
        for (int t = 0; t < 2000; t++) {
            memcpy(c, b, len);
            c[rng(&s) % len] ^= (uint8_t)(1u << (rng(&s) % 8));
            open_both(c, len, dst);
        }
        free(c);
        free(dst);
        free(b);
        mlk_features_destroy(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_gaps),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_open_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
