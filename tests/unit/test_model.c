/* test_model.c: unit tests of model.h: construction, weighted averaging
 * (arithmetic, the given summation order, shapes), the byte form (round
 * trips, sparse vs dense choice, byte-identical output) and decoding of
 * truncated, corrupted and hand-broken buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model.h"

static void test_new_destroy(void **state)
{
    (void)state;
    assert_null(mlk_model_new(1, 10, 0, 0));
    assert_null(mlk_model_new(2, 0, 0, 0));
    assert_null(mlk_model_new(3, MLK_MODEL_MAX_PARAMS, 0, 0));
    mlk_model *m = mlk_model_new(2, 100, 4, 0);
    assert_non_null(m);
    assert_int_equal(m->n_vec, 1);
    assert_int_equal(m->dim, 104);
    assert_int_equal(m->t, 1);
    assert_null(m->G);
    mlk_model_destroy(&m);
    assert_null(m);
    mlk_model_destroy(&m);
    mlk_model_destroy(NULL);
    m = mlk_model_new(5, 0, 7, 1);
    assert_non_null(m);
    assert_int_equal(m->n_vec, 5);
    assert_non_null(m->G);
    assert_non_null(m->Gb);
    mlk_model_destroy(&m);
}

static void test_average_arithmetic(void **state)
{
    (void)state;
    mlk_model *ms[3];
    uint64_t counts[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++) {
        ms[i] = mlk_model_new(3, 4, 2, 1);
        assert_non_null(ms[i]);
        for (size_t j = 0; j < 18; j++) {
            ms[i]->w[j] = (double)(i + 1) * (double)(j + 1) * 0.1;
            ms[i]->G[j] = (double)(i * 10 + j);
        }
        for (int k = 0; k < 3; k++) {
            ms[i]->b[k] = (double)(i - k);
            ms[i]->Gb[k] = (double)(i + k);
        }
        ms[i]->t = 100 + (uint64_t)i * 7;
        ms[i]->n_seen = 1000 * (uint64_t)(i + 1);
    }
    mlk_model *a = NULL;
    char err[200];
    assert_int_equal(mlk_model_average((const mlk_model *const *)ms, counts, 3, &a, err, sizeof err), 0);
    for (size_t j = 0; j < 18; j++) {
        double e = (1.0 * ms[0]->w[j] + 2.0 * ms[1]->w[j] + 3.0 * ms[2]->w[j]) / 6.0;
        assert_true(a->w[j] == e);
        double g = (1.0 * ms[0]->G[j] + 2.0 * ms[1]->G[j] + 3.0 * ms[2]->G[j]) / 6.0;
        assert_true(a->G[j] == g);
    }
    for (int k = 0; k < 3; k++) {
        assert_true(a->b[k] == (1.0 * ms[0]->b[k] + 2.0 * ms[1]->b[k] + 3.0 * ms[2]->b[k]) / 6.0);
        assert_true(a->Gb[k] == (1.0 * ms[0]->Gb[k] + 2.0 * ms[1]->Gb[k] + 3.0 * ms[2]->Gb[k]) / 6.0);
    }
    assert_int_equal(a->t, 114);
    assert_int_equal(a->n_seen, 6000);
    mlk_model_destroy(&a);

    /* without G on one input, the average has none */
    free(ms[1]->G);
    free(ms[1]->Gb);
    ms[1]->G = ms[1]->Gb = NULL;
    assert_int_equal(mlk_model_average((const mlk_model *const *)ms, counts, 3, &a, err, sizeof err), 0);
    assert_null(a->G);
    mlk_model_destroy(&a);
    for (int i = 0; i < 3; i++) mlk_model_destroy(&ms[i]);
}

static void test_average_order(void **state)
{
    (void)state;
    /* 1e16 + 1 == 1e16 in doubles, so the order of the sum shows */
    double vals[3] = {1e16, -1e16, 1.0};
    mlk_model *ms[3];
    for (int i = 0; i < 3; i++) {
        ms[i] = mlk_model_new(2, 1, 0, 0);
        assert_non_null(ms[i]);
        ms[i]->w[0] = vals[i];
    }
    uint64_t counts[3] = {1, 1, 1};
    mlk_model *a = NULL, *c = NULL;
    assert_int_equal(mlk_model_average((const mlk_model *const *)ms, counts, 3, &a, NULL, 0), 0);
    assert_true(a->w[0] == 1.0 / 3.0);
    const mlk_model *other[3] = {ms[0], ms[2], ms[1]};
    assert_int_equal(mlk_model_average(other, counts, 3, &c, NULL, 0), 0);
    assert_true(c->w[0] == 0.0);
    /* the same order twice gives the same bytes */
    mlk_model *a2 = NULL;
    assert_int_equal(mlk_model_average((const mlk_model *const *)ms, counts, 3, &a2, NULL, 0), 0);
    assert_memory_equal(a->w, a2->w, sizeof(double));
    mlk_model_destroy(&a);
    mlk_model_destroy(&a2);
    mlk_model_destroy(&c);
    for (int i = 0; i < 3; i++) mlk_model_destroy(&ms[i]);
}

/* A model with a fraction `fill` of non-zero weights (some -0.0), for
 * the encoded average; fill near 1 makes its block dense. */
static mlk_model *random_model(uint32_t k, uint64_t nf, uint64_t nd, int adagrad, double fill, unsigned *seed)
{
    mlk_model *m = mlk_model_new(k, nf, nd, adagrad);
    assert_non_null(m);
    uint64_t np = m->dim * m->n_vec;
    for (uint64_t i = 0; i < np; i++) {
        double r = (double)rand_r(seed) / RAND_MAX;
        if (r < fill) m->w[i] = (double)rand_r(seed) / RAND_MAX - 0.5;
        else if (r < fill + 0.01) m->w[i] = -0.0;
        if (adagrad && r < fill) m->G[i] = (double)rand_r(seed) / RAND_MAX;
    }
    for (uint32_t v = 0; v < m->n_vec; v++) {
        m->b[v] = (double)rand_r(seed) / RAND_MAX - 0.5;
        if (adagrad) m->Gb[v] = (double)rand_r(seed) / RAND_MAX;
    }
    m->t = 1 + (uint64_t)(rand_r(seed) % 1000);
    m->n_seen = (uint64_t)(rand_r(seed) % 100000);
    return m;
}

/* mlk_model_average_encoded gives the bytes of encode(average(decoded)) */
static void test_average_encoded_same_bytes(void **state)
{
    (void)state;
    unsigned seed = 7;
    const struct { uint32_t k; uint64_t nf, nd; int ada; double fill; size_t n; } cases[] = {
        {2, 4096, 4, 0, 0.01, 3}, {2, 4096, 4, 0, 0.9, 2}, {3, 1000, 2, 1, 0.05, 5},
        {2, 64, 0, 1, 0.95, 9},   {4, 512, 3, 0, 0.0, 2},  {2, 1 << 13, 4, 0, 0.01, 12},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t n = cases[c].n;
        mlk_model *ms[16];
        uint8_t *bufs[16];
        size_t lens[16];
        uint64_t counts[16];
        for (size_t i = 0; i < n; i++) {
            /* a mix of fill levels, so dense and sparse inputs meet */
            double fill = i % 3 == 2 ? 1.0 - cases[c].fill : cases[c].fill;
            ms[i] = random_model(cases[c].k, cases[c].nf, cases[c].nd, cases[c].ada && i != 4, fill, &seed);
            counts[i] = 1 + (uint64_t)(rand_r(&seed) % 70000);
            assert_int_equal(mlk_model_encode(ms[i], &bufs[i], &lens[i]), 0);
        }
        mlk_model *avg = NULL;
        char err[256];
        assert_int_equal(mlk_model_average((const mlk_model *const *)ms, counts, n, &avg, err, sizeof err), 0);
        uint8_t *want, *got;
        size_t wlen, glen;
        assert_int_equal(mlk_model_encode(avg, &want, &wlen), 0);
        assert_int_equal(mlk_model_average_encoded((const uint8_t *const *)bufs, lens, counts, n, &got, &glen, err,
                                                   sizeof err),
                         0);
        assert_int_equal(glen, wlen);
        assert_memory_equal(got, want, wlen);
        free(want);
        free(got);
        mlk_model_destroy(&avg);
        /* a damaged input is refused with its index */
        bufs[n - 1][0] ^= 1;
        assert_int_equal(mlk_model_average_encoded((const uint8_t *const *)bufs, lens, counts, n, &got, &glen, err,
                                                   sizeof err),
                         MLOPS_EPARSE);
        assert_non_null(strstr(err, "model average: model"));
        for (size_t i = 0; i < n; i++) {
            free(bufs[i]);
            mlk_model_destroy(&ms[i]);
        }
    }
}

static void test_average_errors(void **state)
{
    (void)state;
    mlk_model *x = mlk_model_new(2, 8, 1, 0), *y = mlk_model_new(2, 8, 2, 0);
    const mlk_model *pair[2] = {x, y};
    uint64_t counts[2] = {1, 1}, zero[2] = {0, 0};
    mlk_model *a = NULL;
    char err[200] = "";
    assert_int_equal(mlk_model_average(pair, counts, 2, &a, err, sizeof err), MLOPS_EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "model 1"));
    pair[1] = x;
    assert_int_equal(mlk_model_average(pair, zero, 2, &a, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_model_average(pair, counts, 0, &a, err, sizeof err), MLOPS_EINVAL);
    pair[1] = NULL;
    assert_int_equal(mlk_model_average(pair, counts, 2, &a, err, sizeof err), MLOPS_EINVAL);
    mlk_model_destroy(&x);
    mlk_model_destroy(&y);
}

/* A K-class model over 2^16 hashed + 3 dense inputs with a few weights. */
static mlk_model *sparse_model(uint32_t k, int adagrad)
{
    mlk_model *m = mlk_model_new(k, 1u << 16, 3, adagrad);
    assert_non_null(m);
    uint64_t np = m->dim * m->n_vec;
    for (uint64_t j = 0; j < np; j += 997) m->w[j] = (double)j * 1e-3 - 7.0;
    m->w[5] = -0.0;
    for (uint32_t k2 = 0; k2 < m->n_vec; k2++) m->b[k2] = 0.25 * k2 - 1.0;
    if (adagrad)
        for (uint64_t j = 0; j < np; j += 1009) m->G[j] = (double)j;
    m->t = 123456;
    m->n_seen = 98765;
    return m;
}

static void assert_models_equal(const mlk_model *a, const mlk_model *b)
{
    assert_int_equal(a->n_classes, b->n_classes);
    assert_int_equal(a->n_features, b->n_features);
    assert_int_equal(a->n_dense, b->n_dense);
    assert_int_equal(a->t, b->t);
    assert_int_equal(a->n_seen, b->n_seen);
    size_t np = (size_t)(a->dim * a->n_vec);
    assert_memory_equal(a->w, b->w, np * sizeof(double));
    assert_memory_equal(a->b, b->b, a->n_vec * sizeof(double));
    assert_true((a->G == NULL) == (b->G == NULL));
    if (a->G) {
        assert_memory_equal(a->G, b->G, np * sizeof(double));
        assert_memory_equal(a->Gb, b->Gb, a->n_vec * sizeof(double));
    }
}

static void roundtrip(mlk_model *m, int expect_sparse)
{
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    assert_int_equal(mlk_model_encode(m, &buf, &len), 0);
    size_t dense_len = 64 + 8 * m->n_vec * (m->G ? 2 : 1) +
                       (size_t)(m->dim * m->n_vec) * 8 * (m->G ? 2 : 1);
    if (expect_sparse) assert_true(len < dense_len / 10);
    else assert_int_equal(len, dense_len);
    mlk_model *d = NULL;
    char err[200];
    assert_int_equal(mlk_model_decode(buf, len, &d, err, sizeof err), 0);
    assert_models_equal(m, d);
    assert_int_equal(mlk_model_encode(d, &buf2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    free(buf);
    free(buf2);
    mlk_model_destroy(&d);
}

static void test_roundtrip(void **state)
{
    (void)state;
    mlk_model *m = sparse_model(2, 0);
    roundtrip(m, 1);
    uint64_t np = m->dim * m->n_vec;
    for (uint64_t j = 0; j < np; j++) m->w[j] = sin((double)j);
    roundtrip(m, 0);
    mlk_model_destroy(&m);
    m = sparse_model(4, 1);
    roundtrip(m, 1);
    mlk_model *c = mlk_model_clone(m);
    assert_non_null(c);
    assert_models_equal(m, c);
    mlk_model_destroy(&c);
    mlk_model_destroy(&m);
    m = mlk_model_new(2, 0, 5, 0);
    for (int j = 0; j < 5; j++) m->w[j] = j - 2.5;
    roundtrip(m, 0); /* all non-zero: dense is smaller */
    mlk_model_destroy(&m);
}

static void test_encode_deterministic(void **state)
{
    (void)state;
    mlk_model *a = sparse_model(3, 1), *b = sparse_model(3, 1);
    uint8_t *x = NULL, *y = NULL;
    size_t nx, ny;
    assert_int_equal(mlk_model_encode(a, &x, &nx), 0);
    assert_int_equal(mlk_model_encode(b, &y, &ny), 0);
    assert_int_equal(nx, ny);
    assert_memory_equal(x, y, nx);
    free(x);
    free(y);
    mlk_model_destroy(&a);
    mlk_model_destroy(&b);
}

static int decode_rc(const uint8_t *buf, size_t len)
{
    mlk_model *m = NULL;
    char err[200] = "";
    int rc = mlk_model_decode(buf, len, &m, err, sizeof err);
    if (rc == 0) {
        assert_non_null(m);
        mlk_model_destroy(&m);
    } else {
        assert_null(m);
        assert_true(strlen(err) > 0);
        assert_string_not_equal(mlops_strerror(rc), "unknown error");
    }
    return rc;
}

static void test_garbage(void **state)
{
    (void)state;
    mlk_model *m = sparse_model(3, 1);
    uint8_t *buf = NULL;
    size_t len;
    assert_int_equal(mlk_model_encode(m, &buf, &len), 0);
    mlk_model_destroy(&m);
    /* every truncation fails cleanly */
    for (size_t n = 0; n < len; n++) assert_int_equal(decode_rc(buf, n), MLOPS_EPARSE);
    assert_int_equal(decode_rc(NULL, 0), MLOPS_EPARSE);
    /* trailing byte */
    uint8_t *big = malloc(len + 1);
    memcpy(big, buf, len);
    big[len] = 0;
    assert_int_equal(decode_rc(big, len + 1), MLOPS_EPARSE);
    free(big);
    /* every single-byte corruption either decodes or fails cleanly */
    uint8_t *cp = malloc(len);
    for (size_t i = 0; i < len; i++) {
        memcpy(cp, buf, len);
        cp[i] ^= 0xA5;
        int rc = decode_rc(cp, len);
        assert_true(rc == 0 || rc == MLOPS_EPARSE || rc == MLOPS_ENOMEM);
        /* magic, version, kind, reserved and payload length are checked exactly */
        if (i < 12 || (i >= 52 && i < 64)) assert_int_equal(rc, MLOPS_EPARSE);
    }
    /* a non-finite weight */
    memcpy(cp, buf, len);
    double nan = NAN;
    memcpy(cp + len - 8, &nan, 8);
    assert_int_equal(decode_rc(cp, len), MLOPS_EPARSE);
    /* random buffers */
    uint64_t s = 42;
    for (int r = 0; r < 2000; r++) {
        for (size_t i = 0; i < len; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            cp[i] = (uint8_t)(s >> 56);
        }
        if (r % 2) memcpy(cp, buf, 64); /* a valid header over a garbage body */
        assert_true(decode_rc(cp, len) != 0 || r % 2);
    }
    free(cp);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_destroy),
        cmocka_unit_test(test_average_arithmetic),
        cmocka_unit_test(test_average_order),
        cmocka_unit_test(test_average_errors),
        cmocka_unit_test(test_average_encoded_same_bytes),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_encode_deterministic),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
