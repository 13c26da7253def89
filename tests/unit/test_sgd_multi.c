/* test_sgd_multi.c: unit tests of sgd_multi.h, several models' epoch in
 * one interleaved pass over a packed shard. Every model, its t, n_seen
 * and loss must be the bits mlk_sgd_train_packed gives training it
 * alone: binary and multiclass, every schedule (adagrad, optimal,
 * constant with the weight scale folding mid-epoch, invscaling), f32
 * and f64 values, shuffled or not, fresh models and models holding
 * inputs the shard lacks, instances over different row sets (cv folds)
 * and sharing one, more instances than a group; batch_size 16, bad
 * options and a bad label fail as they fail alone, with the instance's
 * index. The last case times the pass against one-at-a-time on a
 * larger shard and prints the ratio (SGD_MULTI_ROWS rows, default 20000;
 * a printout, not a timed assertion). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "fpack.h"
#include "fshard.h"
#include "hasher.h"
#include "sgd.h"
#include "sgd_multi.h"

#define ND 4
#define NI 14 /* instances of a pass: more than a group holds */

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static double rng_unif(uint64_t *s) { return (double)rng_next(s) / 9007199254740992.0; }

static void ok(int rc, const char *err)
{
    if (rc != 0) fail_msg("rc %d (%s): %s", rc, mlops_strerror(rc), err);
}

/* A random feature shard: n rows over nf hashed columns (0..7 entries,
 * values +-1/2 or inexact ones), ND dense values, labels 0..k-1. */
static mlk_features *fshard_random(size_t n, uint32_t k, size_t nf, int exact, uint64_t seed)
{
    uint64_t s = seed;
    mlk_features *f = mlk_features_new(n);
    assert_non_null(f);
    f->csr = mlk_csr_new(n, nf, n * 8 + 3);
    f->dense64 = malloc(n * ND * sizeof(double) + 8);
    assert_true(f->csr && f->dense64);
    f->n_dense = ND;
    int64_t p = 0;
    for (size_t i = 0; i < n; i++) {
        size_t cnt = rng_next(&s) % 8, col = rng_next(&s) % (nf / 2);
        for (size_t c = 0; c < cnt; c++) {
            col += 1 + rng_next(&s) % (nf / 8 + 1);
            if (col >= nf) break;
            f->csr->indices[p] = (int32_t)col;
            f->csr->data[p] = exact ? (rng_unif(&s) < 0.5 ? -1.0 : 2.0) : rng_unif(&s) - 0.3;
            p++;
        }
        f->csr->indptr[i + 1] = p;
        for (size_t j = 0; j < ND; j++) f->dense64[i * ND + j] = 2.0 * rng_unif(&s) - 1.0;
        f->label[i] = (int32_t)(rng_next(&s) % k);
        f->row_id[i] = (int64_t)(1000 + 3 * i);
    }
    return f;
}

/* A start model of k classes: fresh, or holding random inputs (some
 * the shard lacks) with t = 17. Encoded, so each side decodes a copy. */
static void start_model(uint32_t k, size_t nf, int adagrad, int fresh, uint64_t seed, uint8_t **buf,
                        size_t *len)
{
    mlk_model *m0 = mlk_model_new(k, nf, ND, adagrad);
    assert_non_null(m0);
    if (!fresh) {
        uint64_t s = seed;
        for (size_t j = 0; j < m0->dim * m0->n_vec; j++)
            if (rng_next(&s) % 3 == 0) m0->w[j] = rng_unif(&s) - 0.5;
        if (m0->G)
            for (size_t j = 0; j < m0->dim * m0->n_vec; j++)
                m0->G[j] = m0->w[j] != 0.0 ? rng_unif(&s) : 0.0;
        m0->t = 17;
    }
    ok(mlk_model_encode(m0, buf, len), "encode");
    mlk_model_destroy(&m0);
}

static void same_model(const mlk_cmodel *a, const mlk_cmodel *b, const char *what, size_t i)
{
    uint8_t *x, *y;
    size_t xl, yl;
    ok(mlk_cmodel_encode(a, &x, &xl), "encode");
    ok(mlk_cmodel_encode(b, &y, &yl), "encode");
    if (xl != yl || memcmp(x, y, xl) != 0)
        fail_msg("%s: instance %zu: model bytes differ", what, i);
    free(x);
    free(y);
}

/* The options of instance i of a pass over schedule mix mix. */
static void inst_opts(mlk_sgd_opts *o, int mix, size_t i, uint64_t seed)
{
    static const mlk_lr lrs[] = {MLK_LR_ADAGRAD, MLK_LR_OPTIMAL, MLK_LR_CONSTANT,
                                 MLK_LR_INVSCALING};
    mlk_sgd_opts_default(o);
    o->lr = mix < 4 ? lrs[mix] : lrs[i % 4];
    o->alpha = o->lr == MLK_LR_ADAGRAD ? 1.0 / 3000.0
                                       : (i % 3 == 0   ? 1e-4
                                          : i % 3 == 1 ? 1e-3
                                                       : 1e-5);
    o->eta0 = o->lr == MLK_LR_ADAGRAD ? 0.1 : 0.05;
    if (o->lr == MLK_LR_CONSTANT && i % 2) {
        o->eta0 = 0.5;
        o->alpha = 0.5; /* the weight scale folds mid-epoch */
    }
    o->epochs = 1;
    o->shuffle = mix != 5 || i % 2;
    o->seed = i % 4 == 3 ? seed + i : 42; /* most share a seed: their orders are one */
    o->epoch0 = 2;
    o->shard = 3;
}

/* One pass of NI instances over one shard against each trained alone. */
static void one_case(uint32_t k, int exact, int mix, int fresh, uint64_t seed)
{
    size_t nf = 512;
    mlk_features *f = fshard_random(400, k, nf, exact, seed);
    uint8_t *buf;
    size_t len;
    char err[200] = "";
    ok(mlk_fpack_encode(f, &buf, &len), "encode");
    mlk_fpack pk;
    size_t *off = malloc(f->nrows * sizeof *off);
    ok(mlk_fpack_open(buf, len, &pk, off, err, sizeof err), err);
    assert_int_equal(pk.f32, exact);
    /* three folds' training rows, as cv_epoch lists them, and all rows */
    size_t *fold[4], nfold[4] = {0};
    for (int q = 0; q < 4; q++) {
        fold[q] = malloc(f->nrows * sizeof *fold[q]);
        for (size_t r = 0; r < f->nrows; r++)
            if (q == 3 || r % 3 != (size_t)q) fold[q][nfold[q]++] = off[r];
    }
    mlk_sgd_inst in[NI];
    mlk_cmodel *alone[NI];
    double la[NI], lb[NI];
    for (size_t i = 0; i < NI; i++) {
        inst_opts(&in[i].o, mix, i, seed);
        uint8_t *mb;
        size_t ml;
        start_model(k, nf, in[i].o.lr == MLK_LR_ADAGRAD, fresh || i % 5 == 0, seed + 7 * i, &mb,
                    &ml);
        in[i].m = alone[i] = NULL;
        ok(mlk_cmodel_decode(mb, ml, &in[i].m, err, sizeof err), err);
        ok(mlk_cmodel_decode(mb, ml, &alone[i], err, sizeof err), err);
        free(mb);
        in[i].off = fold[i % 4];
        in[i].n = nfold[i % 4];
        in[i].loss = &lb[i];
        ok(mlk_sgd_train_packed(alone[i], &pk, in[i].off, in[i].n, &in[i].o, &la[i], err,
                                sizeof err),
           err);
    }
    ok(mlk_sgd_multi_train_packed(in, NI, &pk, NULL, err, sizeof err), err);
    char what[120];
    snprintf(what, sizeof what, "K=%u exact=%d mix=%d fresh=%d", k, exact, mix, fresh);
    for (size_t i = 0; i < NI; i++) {
        same_model(alone[i], in[i].m, what, i);
        if (memcmp(&la[i], &lb[i], sizeof la[i]) != 0)
            fail_msg("%s: instance %zu: loss differs", what, i);
        assert_int_equal(alone[i]->t, in[i].m->t);
        assert_int_equal(alone[i]->n_seen, in[i].m->n_seen);
        mlk_cmodel_destroy(&in[i].m);
        mlk_cmodel_destroy(&alone[i]);
    }
    for (int q = 0; q < 4; q++) free(fold[q]);
    free(off);
    free(buf);
    mlk_features_destroy(&f);
}

static void test_matches_alone(void **state)
{
    (void)state;
    for (uint32_t k = 2; k <= 3; k++)
        for (int exact = 0; exact < 2; exact++)
            for (int mix = 0; mix < 6; mix++)
                for (int fresh = 0; fresh < 2; fresh++)
                    one_case(k, exact, mix, fresh,
                             100 + k * 50 + (uint64_t)exact * 20 + (uint64_t)mix * 3 +
                                 (uint64_t)fresh);
}

/* Failures as alone, with the instance's index: mini-batches (which
 * read arrays), bad options, a row whose label is out of range. */
static void test_errors(void **state)
{
    (void)state;
    mlk_features *f = fshard_random(100, 2, 256, 1, 9);
    for (size_t i = 0; i < f->nrows; i++)
        f->label[i] = i % 2 ? 1 : 7; /* labels out of range for 2 classes */
    uint8_t *buf;
    size_t len;
    char err[200] = "", err2[200] = "";
    ok(mlk_fpack_encode(f, &buf, &len), "encode");
    mlk_fpack pk;
    size_t off[100], odd[50], n = 0;
    ok(mlk_fpack_open(buf, len, &pk, off, err, sizeof err), err);
    for (size_t i = 1; i < f->nrows; i += 2) odd[n++] = off[i];
    for (int c = 0; c < 4; c++) {
        mlk_sgd_inst in[3];
        for (size_t i = 0; i < 3; i++) {
            inst_opts(&in[i].o, 1, i, 5);
            in[i].m = mlk_cmodel_new(2, 256, ND, 0);
            assert_non_null(in[i].m);
            in[i].off = odd;
            in[i].n = n;
            in[i].loss = NULL;
        }
        if (c == 0) in[1].o.batch_size = 16;
        if (c == 1) in[1].o.alpha = 0.0; /* optimal needs alpha > 0 */
        if (c == 2) in[1].off = off;     /* rows labelled 7 */
        if (c == 3) in[2].n = 0;         /* nothing to train: fine */
        size_t bad = 99;
        int rc = mlk_sgd_multi_train_packed(in, 3, &pk, &bad, err, sizeof err);
        if (c == 3) {
            ok(rc, err);
            assert_int_equal(in[2].m->n_seen, 0);
            assert_int_equal(in[0].m->n_seen, n);
        } else {
            assert_int_equal(rc, MLOPS_EINVAL);
            assert_int_equal(bad, 1);
            mlk_cmodel *m = mlk_cmodel_new(2, 256, ND, 0);
            int rc2 =
                mlk_sgd_train_packed(m, &pk, in[1].off, in[1].n, &in[1].o, NULL, err2, sizeof err2);
            assert_int_equal(rc2, rc);
            assert_string_equal(err, err2);
            assert_null(strchr(err, '\n'));
            mlk_cmodel_destroy(&m);
        }
        for (size_t i = 0; i < 3; i++) mlk_cmodel_destroy(&in[i].m);
    }
    assert_int_equal(mlk_sgd_multi_train_packed(NULL, 1, &pk, NULL, err, sizeof err), MLOPS_EINVAL);
    ok(mlk_sgd_multi_train_packed(NULL, 0, &pk, NULL, err, sizeof err), err);
    free(buf);
    mlk_features_destroy(&f);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU: the box is shared */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A search's shape: 6 trials (alphas, optimal) x 3 folds over one
 * shard of a purchases-like width; bit for bit, and timed both ways. */
static void test_search_shape_timed(void **state)
{
    (void)state;
    const char *env = getenv("SGD_MULTI_ROWS");
    size_t rows = env ? (size_t)strtoull(env, NULL, 10) : 20000, nf = 65536;
    if (rows < 10) rows = 10;
    mlk_features *f = fshard_random(rows, 2, nf, 1, 77);
    /* the purchases columns: a category of 20, an item of 2,000, a user
     * of 10,000, hashed with signs into 2^16; labels from a margin */
    uint64_t s = 78;
    for (size_t i = 0; i < rows; i++) {
        uint32_t v[3] = {(uint32_t)(rng_next(&s) % 20), 20 + (uint32_t)(rng_next(&s) % 2000),
                         2020 + (uint32_t)(rng_next(&s) % 10000)};
        for (int c = 0; c < 3; c++) {
            uint32_t h = v[c] * 2654435761u;
            f->csr->indices[3 * i + c] = (int32_t)(h >> 16);
            f->csr->data[3 * i + c] = h & 1 ? 1.0 : -1.0;
        }
        for (int c = 1; c < 3; c++) /* increasing within the row */
            for (int d = c; d > 0 && f->csr->indices[3 * i + d - 1] > f->csr->indices[3 * i + d];
                 d--) {
                int32_t t = f->csr->indices[3 * i + d];
                double x = f->csr->data[3 * i + d];
                f->csr->indices[3 * i + d] = f->csr->indices[3 * i + d - 1];
                f->csr->data[3 * i + d] = f->csr->data[3 * i + d - 1];
                f->csr->indices[3 * i + d - 1] = t;
                f->csr->data[3 * i + d - 1] = x;
            }
        f->csr->indptr[i + 1] = (int64_t)(3 * i + 3);
        f->label[i] = f->dense64[i * ND] + 0.3 * f->csr->data[3 * i] + rng_unif(&s) - 0.5 > 0;
    }
    uint8_t *buf;
    size_t len;
    char err[200] = "";
    ok(mlk_fpack_encode(f, &buf, &len), "encode");
    mlk_fpack pk;
    size_t *off = malloc(rows * sizeof *off);
    ok(mlk_fpack_open(buf, len, &pk, off, err, sizeof err), err);
    enum { T = 6, K = 3 };
    size_t *fold[K], nfold[K] = {0};
    for (int q = 0; q < K; q++) {
        fold[q] = malloc(rows * sizeof *fold[q]);
        for (size_t r = 0; r < rows; r++)
            if (r % K != (size_t)q) fold[q][nfold[q]++] = off[r];
    }
    for (int lr = 0; lr < 2; lr++) {
        mlk_sgd_inst in[T * K];
        mlk_cmodel *alone[T * K];
        for (size_t i = 0; i < T * K; i++) {
            mlk_sgd_opts_default(&in[i].o);
            in[i].o.lr = lr ? MLK_LR_ADAGRAD : MLK_LR_OPTIMAL;
            in[i].o.alpha = lr                 ? 1.0 / (double)rows
                            : (i / K) % 3 == 0 ? 1e-5
                            : (i / K) % 3 == 1 ? 1e-4
                                               : 1e-3;
            in[i].o.eta0 = 0.1;
            in[i].o.epochs = 1;
            in[i].o.seed = 42;
            in[i].m = mlk_cmodel_new(2, nf, ND, lr);
            alone[i] = mlk_cmodel_new(2, nf, ND, lr);
            assert_true(in[i].m && alone[i]);
            in[i].off = fold[i % K];
            in[i].n = nfold[i % K];
            in[i].loss = NULL;
        }
        double t0 = now_s();
        for (size_t i = 0; i < T * K; i++)
            ok(mlk_sgd_train_packed(alone[i], &pk, in[i].off, in[i].n, &in[i].o, NULL, err,
                                    sizeof err),
               err);
        double t1 = now_s();
        ok(mlk_sgd_multi_train_packed(in, T * K, &pk, NULL, err, sizeof err), err);
        double t2 = now_s();
        for (size_t i = 0; i < T * K; i++) {
            same_model(alone[i], in[i].m, lr ? "search shape, adagrad" : "search shape, optimal",
                       i);
            mlk_cmodel_destroy(&in[i].m);
            mlk_cmodel_destroy(&alone[i]);
        }
        printf("sgd_multi: %d x %d instances over %zu rows (%s): one at a time %.3f s, one pass "
               "%.3f s: %.2fx\n",
               T, K, rows, lr ? "adagrad" : "optimal", t1 - t0, t2 - t1, (t1 - t0) / (t2 - t1));
    }
    for (int q = 0; q < K; q++) free(fold[q]);
    free(off);
    free(buf);
    mlk_features_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_alone),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_search_shape_timed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
