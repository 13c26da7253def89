/* test_sgd.c: unit tests of sgd.h. The full-batch objective's gradient is
 * checked against finite differences; single SGD / adagrad / mini-batch
 * steps are then checked against that gradient (so the training loops
 * implement the maths they claim); training is deterministic, lowers the
 * objective, counts steps, and rejects bad input with a message. */
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
#include "fpack.h"
#include "hasher.h"
#include "model.h"
#include "sgd.h"

#define NF 16 /* hashed features */
#define ND 3  /* dense columns */

/* A small shard: rows with 0..3 hashed entries and ND dense values. */
typedef struct {
    size_t n;
    mlk_csr X;
    int64_t indptr[65];
    int32_t indices[64 * 3];
    double data[64 * 3];
    double dense[64 * ND];
    int32_t y[64];
    mlk_sgd_data d;
} shard;

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static double rng_unif(uint64_t *s) { return (double)rng_next(s) / 9007199254740992.0; }

static void shard_make(shard *sh, size_t n, uint32_t k, uint64_t seed)
{
    memset(sh, 0, sizeof *sh);
    uint64_t s = seed;
    sh->n = n;
    sh->indptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t p = sh->indptr[i];
        size_t cnt = rng_next(&s) % 4, col = rng_next(&s) % 4;
        for (size_t c = 0; c < cnt; c++) { /* ascending, unique */
            col += 1 + rng_next(&s) % 3;
            if (col >= NF) break;
            sh->indices[p] = (int32_t)col;
            sh->data[p] = rng_unif(&s) < 0.5 ? -1.0 : 1.0;
            p++;
        }
        sh->indptr[i + 1] = p;
        for (size_t j = 0; j < ND; j++) sh->dense[i * ND + j] = 2.0 * rng_unif(&s) - 1.0;
        double score = sh->dense[i * ND] * 2.0 - sh->dense[i * ND + 1];
        sh->y[i] = (int32_t)((score > 0 ? 1u : 0u) + (k > 2 ? (uint32_t)(rng_next(&s) % (k - 1)) : 0u)) % (int32_t)k;
    }
    sh->X.nrows = n;
    sh->X.ncols = NF;
    sh->X.indptr = sh->indptr;
    sh->X.indices = sh->indices;
    sh->X.data = sh->data;
    sh->X.nnz_cap = 64 * 3;
    sh->d.nrows = n;
    sh->d.X = &sh->X;
    sh->d.dense = sh->dense;
    sh->d.n_dense = ND;
    sh->d.y = sh->y;
}

static mlk_model *model_random(uint32_t k, uint64_t seed)
{
    mlk_model *m = mlk_model_new(k, NF, ND, 0);
    assert_non_null(m);
    uint64_t s = seed;
    for (size_t j = 0; j < m->dim * m->n_vec; j++) m->w[j] = rng_unif(&s) - 0.5;
    for (size_t k2 = 0; k2 < m->n_vec; k2++) m->b[k2] = rng_unif(&s) - 0.5;
    return m;
}

static void ok(int rc, const char *err)
{
    if (rc != 0) fail_msg("rc %d (%s): %s", rc, mlops_strerror(rc), err);
}

static double objective(const mlk_model *m, const mlk_sgd_data *d, double alpha, double *grad)
{
    double loss;
    char err[200] = "";
    ok(mlk_sgd_objective(m, d, alpha, &loss, grad, err, sizeof err), err);
    return loss;
}

static void check_gradient(uint32_t k)
{
    shard sh;
    shard_make(&sh, 40, k, 7 + k);
    mlk_model *m = model_random(k, 3);
    size_t np = (size_t)(m->dim * m->n_vec), nv = m->n_vec;
    double *g = malloc((np + nv) * sizeof *g);
    double alpha = 0.01;
    objective(m, &sh.d, alpha, g);
    for (size_t q = 0; q < np + nv; q++) {
        double *p = q < np ? &m->w[q] : &m->b[q - np], keep = *p, h = 1e-6;
        *p = keep + h;
        double lp = objective(m, &sh.d, alpha, NULL);
        *p = keep - h;
        double lm = objective(m, &sh.d, alpha, NULL);
        *p = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[q]) > 1e-6 * (1.0 + fabs(fd)))
            fail_msg("K=%u parameter %zu: analytic %.10g, finite difference %.10g", k, q, g[q], fd);
    }
    free(g);
    mlk_model_destroy(&m);
}

static void test_gradient_binary(void **state)
{
    (void)state;
    check_gradient(2);
}

static void test_gradient_multinomial(void **state)
{
    (void)state;
    check_gradient(4);
}

/* One step of `lr` over rows `order` as one batch, compared with the
 * objective's gradient at the start. */
static void check_step(uint32_t k, mlk_lr lr, size_t batch)
{
    shard sh;
    shard_make(&sh, 24, k, 99);
    size_t n = batch > 1 ? batch : 1;
    sh.d.nrows = sh.X.nrows = n; /* the first n rows make one step */
    mlk_model *m = model_random(k, 5);
    size_t np = (size_t)(m->dim * m->n_vec), nv = m->n_vec;
    double alpha = 0.05, eta0 = 0.3, decay = 0.5;
    double *g = malloc((np + nv) * sizeof *g);
    objective(m, &sh.d, 0.0, g); /* loss gradient only: mean over the rows */
    mlk_model *before = mlk_model_clone(m);
    mlk_sgd_opts o;
    mlk_sgd_opts_default(&o);
    o.lr = lr;
    o.alpha = alpha;
    o.eta0 = eta0;
    o.intercept_decay = decay;
    o.epochs = 1;
    o.shuffle = 0;
    o.batch_size = batch;
    char err[200] = "";
    double loss;
    ok(mlk_sgd_train(m, &sh.d, NULL, &o, &loss, err, sizeof err), err);
    assert_int_equal(m->t, 2);
    /* inputs present in the rows (adagrad's L2 touches only those) */
    uint8_t present[NF + ND] = {0};
    for (int64_t p = 0; p < sh.indptr[n]; p++) present[sh.indices[p]] = 1;
    for (size_t j = NF; j < NF + ND; j++) present[j] = 1;
    for (size_t q = 0; q < np; q++) {
        double w0 = before->w[q], expect;
        if (lr == MLK_LR_ADAGRAD) {
            double gg = g[q] + alpha * w0;
            expect = present[q / nv] ? w0 - eta0 * gg / sqrt(gg * gg + 1e-8) : w0;
        } else {
            expect = (1.0 - eta0 * alpha) * w0 - eta0 * g[q];
        }
        if (fabs(m->w[q] - expect) > 1e-12 * (1.0 + fabs(expect)))
            fail_msg("K=%u lr=%d batch=%zu weight %zu: got %.15g expected %.15g", k, (int)lr, batch, q,
                     m->w[q], expect);
    }
    for (size_t c = 0; c < nv; c++) {
        double gb = g[np + c], expect;
        if (lr == MLK_LR_ADAGRAD) expect = before->b[c] - eta0 * gb / sqrt(gb * gb + 1e-8) * decay;
        else expect = before->b[c] - eta0 * gb * decay;
        assert_true(fabs(m->b[c] - expect) < 1e-12);
    }
    free(g);
    mlk_model_destroy(&before);
    mlk_model_destroy(&m);
}

static void test_step_matches_gradient(void **state)
{
    (void)state;
    check_step(2, MLK_LR_CONSTANT, 1);
    check_step(5, MLK_LR_CONSTANT, 1);
    check_step(2, MLK_LR_ADAGRAD, 1);
    check_step(3, MLK_LR_ADAGRAD, 1);
    check_step(2, MLK_LR_CONSTANT, 16); /* dgemm path */
    check_step(4, MLK_LR_CONSTANT, 16);
    check_step(2, MLK_LR_ADAGRAD, 16);
    check_step(4, MLK_LR_ADAGRAD, 16);
}

static void test_optimal_schedule(void **state)
{
    (void)state;
    /* the first 'optimal' step uses eta = typw * ... = 1/(alpha t0) with
     * t0 = 1/(typw alpha), i.e. eta = typw = alpha^-1/4 */
    shard sh;
    shard_make(&sh, 1, 2, 11);
    mlk_model *m = mlk_model_new(2, NF, ND, 0), *m2 = mlk_model_new(2, NF, ND, 0);
    mlk_sgd_opts o;
    mlk_sgd_opts_default(&o);
    o.epochs = 1;
    o.alpha = 1e-4;
    char err[200] = "";
    ok(mlk_sgd_train(m, &sh.d, NULL, &o, NULL, err, sizeof err), err);
    o.lr = MLK_LR_CONSTANT;
    o.eta0 = pow(1e-4, -0.25);
    ok(mlk_sgd_train(m2, &sh.d, NULL, &o, NULL, err, sizeof err), err);
    for (size_t q = 0; q < m->dim; q++) assert_true(fabs(m->w[q] - m2->w[q]) <= 1e-12 * fabs(m2->w[q]));
    mlk_model_destroy(&m);
    mlk_model_destroy(&m2);
}

static uint8_t *train_bytes(uint32_t k, mlk_sgd_opts *o, size_t *len, uint64_t *t)
{
    shard sh;
    shard_make(&sh, 64, k, 21);
    mlk_model *m = mlk_model_new(k, NF, ND, 0);
    char err[200] = "";
    double losses[8];
    ok(mlk_sgd_train(m, &sh.d, NULL, o, losses, err, sizeof err), err);
    for (unsigned e = 0; e < o->epochs; e++) assert_true(isfinite(losses[e]) && losses[e] > 0);
    uint8_t *buf = NULL;
    ok(mlk_model_encode(m, &buf, len), "encode");
    *t = m->t;
    mlk_model_destroy(&m);
    return buf;
}

static void test_determinism(void **state)
{
    (void)state;
    mlk_lr lrs[] = {MLK_LR_OPTIMAL, MLK_LR_ADAGRAD, MLK_LR_INVSCALING};
    for (uint32_t k = 2; k <= 3; k++)
        for (size_t li = 0; li < 3; li++)
            for (size_t batch = 1; batch <= 8; batch += 7) {
                mlk_sgd_opts o;
                mlk_sgd_opts_default(&o);
                o.lr = lrs[li];
                o.eta0 = 0.1;
                o.epochs = 3;
                o.seed = 1234;
                o.batch_size = batch;
                size_t la, lb, lc;
                uint64_t ta, tb, tc;
                uint8_t *a = train_bytes(k, &o, &la, &ta), *b = train_bytes(k, &o, &lb, &tb);
                assert_int_equal(la, lb);
                assert_memory_equal(a, b, la);
                assert_int_equal(ta, 1 + 3 * (batch > 1 ? 8 : 64));
                o.seed = 1235; /* another shuffle, other parameters */
                uint8_t *c = train_bytes(k, &o, &lc, &tc);
                assert_true(la != lc || memcmp(a, c, la) != 0);
                free(c);
                o.seed = 1234;
                o.shard = 1;
                c = train_bytes(k, &o, &lc, &tc);
                assert_true(la != lc || memcmp(a, c, la) != 0);
                free(a);
                free(b);
                free(c);
            }
}

/* Rows given in an explicit order are packed into records (sgd.c); the
 * same visiting order straight from the arrays must give the same bytes.
 * With a vanishing step the pass's loss is the loss at the start point,
 * which checks the batched-log loss sum against the objective. */
static void test_packed_rows_and_pass_loss(void **state)
{
    (void)state;
    for (uint32_t k = 2; k <= 3; k++) {
        shard sh;
        shard_make(&sh, 64, k, 17);
        int64_t ident[64];
        for (int i = 0; i < 64; i++) ident[i] = i;
        mlk_sgd_opts o;
        mlk_sgd_opts_default(&o);
        o.shuffle = 0;
        o.epochs = 2;
        mlk_model *a = mlk_model_new(k, NF, ND, 0), *b = mlk_model_new(k, NF, ND, 0);
        char err[200] = "";
        ok(mlk_sgd_train(a, &sh.d, NULL, &o, NULL, err, sizeof err), err);
        ok(mlk_sgd_train(b, &sh.d, ident, &o, NULL, err, sizeof err), err);
        assert_memory_equal(a->w, b->w, a->dim * a->n_vec * sizeof(double));
        assert_memory_equal(a->b, b->b, a->n_vec * sizeof(double));
        mlk_model_destroy(&a);
        mlk_model_destroy(&b);

        mlk_model *m = model_random(k, 23);
        double start = objective(m, &sh.d, 0.0, NULL), pass[2];
        o.lr = MLK_LR_CONSTANT;
        o.eta0 = 1e-300;
        o.alpha = 0.0;
        o.epochs = 1;
        o.shuffle = 1;
        ok(mlk_sgd_train(m, &sh.d, NULL, &o, pass, err, sizeof err), err);
        if (fabs(pass[0] - start) > 1e-13 * start) fail_msg("K=%u pass loss %.17g, objective %.17g", k, pass[0], start);
        mlk_model_destroy(&m);
    }
}

/* The binary epochs over packed rows run in their own loops
 * (epoch_plain_bin, epoch_adagrad_bin in sgd.c); the generic steps over
 * the arrays visit the same rows in the same order when no order is
 * given and nothing is shuffled. Both must give the same bits for every
 * schedule, with the values held as f32 (exact: +-1) or f64 (0.1 is not
 * a float), with the weight scale folded during the epoch (alpha 0.3
 * drives it below 1e-9 within the pass), with adagrad's sums and its
 * losses summed in blocks (a shard of 64 rows and one of 50). */
static void test_packed_loops_match_steps(void **state)
{
    (void)state;
    mlk_lr lrs[] = {MLK_LR_OPTIMAL, MLK_LR_CONSTANT, MLK_LR_INVSCALING, MLK_LR_ADAGRAD};
    double alphas[] = {1e-4, 0.3};
    for (uint32_t k = 2; k <= 3; k++)
        for (int inexact = 0; inexact <= 1; inexact++)
            for (size_t li = 0; li < 4; li++)
                for (size_t ai = 0; ai < 2; ai++) {
                    shard sh; /* 50 rows: a partial block of deferred losses */
                    shard_make(&sh, inexact ? 50 : 64, k, 31 + li);
                    for (int64_t p = 0; inexact && p < sh.indptr[64]; p++) sh.data[p] *= 0.1;
                    int64_t ident[64];
                    for (int i = 0; i < 64; i++) ident[i] = i;
                    mlk_sgd_opts o;
                    mlk_sgd_opts_default(&o);
                    o.lr = lrs[li];
                    o.alpha = alphas[ai];
                    o.eta0 = ai ? 0.5 : 0.05; /* 0.5 x 0.3: the scale shrinks 0.85 a step */
                    o.shuffle = 0;
                    o.epochs = 3;
                    mlk_model *a = model_random(k, 5), *b = model_random(k, 5);
                    char err[200] = "";
                    double la[3], lb[3];
                    ok(mlk_sgd_train(a, &sh.d, NULL, &o, la, err, sizeof err), err);
                    ok(mlk_sgd_train(b, &sh.d, ident, &o, lb, err, sizeof err), err);
                    size_t np = (size_t)(a->dim * a->n_vec);
                    assert_memory_equal(a->w, b->w, np * sizeof(double));
                    assert_memory_equal(a->b, b->b, a->n_vec * sizeof(double));
                    assert_memory_equal(la, lb, sizeof la);
                    assert_int_equal(a->t, b->t);
                    assert_int_equal(a->n_seen, b->n_seen);
                    assert_true((a->G == NULL) == (b->G == NULL));
                    if (a->G) {
                        assert_memory_equal(a->G, b->G, np * sizeof(double));
                        assert_memory_equal(a->Gb, b->Gb, a->n_vec * sizeof(double));
                    }
                    mlk_model_destroy(&a);
                    mlk_model_destroy(&b);
                }
}

/* A call of one shuffled epoch packs its offsets straight into the
 * shuffled array, a call of several keeps them apart to start each pass
 * from: without a weight scale to fold between calls (adagrad; constant
 * with alpha 0), two calls of one epoch are one call of two, bit for bit. */
static void test_one_epoch_calls(void **state)
{
    (void)state;
    mlk_lr lrs[] = {MLK_LR_ADAGRAD, MLK_LR_CONSTANT};
    for (uint32_t k = 2; k <= 3; k++)
        for (size_t li = 0; li < 2; li++) {
            shard sh;
            shard_make(&sh, 64, k, 41);
            mlk_sgd_opts o;
            mlk_sgd_opts_default(&o);
            o.lr = lrs[li];
            o.alpha = li ? 0.0 : 1e-3;
            o.eta0 = 0.05;
            o.seed = 9;
            o.epochs = 2;
            mlk_model *a = model_random(k, 7), *b = model_random(k, 7);
            char err[200] = "";
            ok(mlk_sgd_train(a, &sh.d, NULL, &o, NULL, err, sizeof err), err);
            o.epochs = 1;
            ok(mlk_sgd_train(b, &sh.d, NULL, &o, NULL, err, sizeof err), err);
            o.epoch0 = 1;
            ok(mlk_sgd_train(b, &sh.d, NULL, &o, NULL, err, sizeof err), err);
            assert_memory_equal(a->w, b->w, a->dim * a->n_vec * sizeof(double));
            assert_memory_equal(a->b, b->b, a->n_vec * sizeof(double));
            assert_int_equal(a->t, b->t);
            mlk_model_destroy(&a);
            mlk_model_destroy(&b);
        }
}

static void test_training_lowers_objective(void **state)
{
    (void)state;
    for (uint32_t k = 2; k <= 4; k += 2) {
        shard sh;
        shard_make(&sh, 64, k, 5);
        mlk_model *m = mlk_model_new(k, NF, ND, 0);
        double alpha = 1e-3, before = objective(m, &sh.d, alpha, NULL);
        mlk_sgd_opts o;
        mlk_sgd_opts_default(&o);
        o.alpha = alpha;
        o.lr = MLK_LR_INVSCALING;
        o.eta0 = 0.1;
        o.epochs = 20;
        char err[200] = "";
        ok(mlk_sgd_train(m, &sh.d, NULL, &o, NULL, err, sizeof err), err);
        double after = objective(m, &sh.d, alpha, NULL);
        if (!(after < 0.9 * before)) fail_msg("K=%u objective %g -> %g", k, before, after);
        /* continuing from t: the counter goes on */
        uint64_t t = m->t;
        o.epochs = 1;
        ok(mlk_sgd_train(m, &sh.d, NULL, &o, NULL, err, sizeof err), err);
        assert_int_equal(m->t, t + 64);
        assert_int_equal(m->n_seen, 21 * 64);
        mlk_model_destroy(&m);
    }
}

/* The compact path (the epoch task's: decode the bytes into the model's
 * inputs, train on the shard's inputs renumbered, encode) gives the
 * bytes of the dense path, for a start model with weights on inputs the
 * shard lacks, every schedule, mini-batches, two chained calls, and an
 * L2 shrink so strong that the scale is folded into the weights during
 * the pass (and turns some to -0.0). */
static void test_compact_matches_dense(void **state)
{
    (void)state;
    mlk_lr lrs[] = {MLK_LR_OPTIMAL, MLK_LR_ADAGRAD, MLK_LR_INVSCALING, MLK_LR_CONSTANT};
    for (uint32_t k = 2; k <= 3; k++)
        for (size_t li = 0; li < 4; li++)
            for (size_t batch = 1; batch <= 8; batch += 7)
                for (int fold = 0; fold < 3; fold++) {
                    shard sh;
                    shard_make(&sh, 40, k, 5 + li);
                    for (int64_t p = 0; p < sh.indptr[40]; p++) sh.indices[p] = sh.indices[p] % (NF - 4); /* inputs 12..15 absent */
                    mlk_sgd_opts o;
                    mlk_sgd_opts_default(&o);
                    o.lr = lrs[li];
                    o.eta0 = fold == 1 ? 0.5 : fold == 2 ? 1.0 : 0.1;
                    o.alpha = fold == 1 ? 1.0 : fold == 2 ? 2.0 : 1e-3;
                    o.epochs = 2;
                    o.seed = 99;
                    o.batch_size = batch;
                    mlk_model *m = model_random(k, 41);
                    for (size_t j = 0; j < m->dim * m->n_vec; j += 3) m->w[j] = 0.0; /* some inputs zero */
                    uint8_t *start, *want, *got;
                    size_t slen, wlen, glen;
                    char err[200] = "";
                    ok(mlk_model_encode(m, &start, &slen), "encode");
                    mlk_cmodel *c = NULL;
                    ok(mlk_cmodel_decode(start, slen, &c, err, sizeof err), err);
                    double lw[2], lg[2];
                    for (int call = 0; call < 2; call++) {
                        o.epoch0 = (uint64_t)call * 2;
                        int rw = mlk_sgd_train(m, &sh.d, NULL, &o, lw, err, sizeof err);
                        int rg = mlk_sgd_train_compact(c, &sh.d, NULL, NULL, &o, lg, err, sizeof err);
                        assert_int_equal(rw, rg);
                        if (rw) break;
                        assert_memory_equal(lw, lg, sizeof lw);
                        ok(mlk_model_encode(m, &want, &wlen), "encode");
                        ok(mlk_cmodel_encode(c, &got, &glen), "encode");
                        if (wlen != glen || memcmp(want, got, wlen) != 0)
                            fail_msg("K=%u lr=%d batch=%zu fold=%d call %d: compact bytes differ", k, (int)lrs[li],
                                     batch, fold, call);
                        free(want);
                        free(got);
                    }
                    free(start);
                    mlk_cmodel_destroy(&c);
                    mlk_model_destroy(&m);
                }
    /* a fresh compact model holds the dense inputs only, and grows */
    mlk_cmodel *c = mlk_cmodel_new(2, NF, ND, 0);
    assert_non_null(c);
    assert_int_equal(c->m, ND);
    shard sh;
    shard_make(&sh, 30, 2, 3);
    mlk_sgd_opts o;
    mlk_sgd_opts_default(&o);
    char err[200] = "";
    ok(mlk_sgd_train_compact(c, &sh.d, NULL, NULL, &o, NULL, err, sizeof err), err);
    assert_true(c->m > ND && c->m <= NF + ND);
    for (size_t l = 1; l < c->m; l++) assert_true(c->in[l] > c->in[l - 1]);
    uint32_t fewer[1] = {0};
    assert_int_equal(mlk_cmodel_reindex(c, fewer, 1), MLOPS_EINVAL);
    /* predictions on rows with columns the model lacks equal the dense model's */
    uint8_t *bytes;
    size_t blen;
    ok(mlk_cmodel_encode(c, &bytes, &blen), "encode");
    mlk_model *dm = NULL;
    ok(mlk_model_decode(bytes, blen, &dm, err, sizeof err), err);
    shard other;
    shard_make(&other, 50, 2, 77);
    for (int64_t p = 0; p < other.indptr[50]; p++) other.indices[p] = NF - 1 - other.indices[p] % 5;
    double pd[100], pc[100];
    ok(mlk_sgd_predict_proba(dm, &other.d, pd, err, sizeof err), err);
    ok(mlk_sgd_predict_proba_compact(c, &other.d, pc, err, sizeof err), err);
    assert_memory_equal(pd, pc, sizeof pd);
    free(bytes);
    mlk_model_destroy(&dm);
    mlk_cmodel_destroy(&c);
}

/* Skipped rows (the split's test flags) train as if the data held only
 * the others: every fourth row of 40 skipped (one with a label out of
 * range, which is not checked) gives the bytes of the other 30 copied
 * into a shard of their own. */
static void test_skip_rows(void **state)
{
    (void)state;
    for (size_t batch = 1; batch <= 8; batch += 7)
        for (int shuffle = 0; shuffle < 2; shuffle++) {
            shard a, b;
            shard_make(&a, 40, 3, 11);
            shard_make(&b, 30, 3, 11);
            uint8_t skip[40] = {0};
            size_t w = 0;
            int64_t q = 0;
            for (size_t i = 0; i < 40; i++) {
                skip[i] = i % 4 == 1;
                if (skip[i]) continue;
                for (int64_t p = a.indptr[i]; p < a.indptr[i + 1]; p++, q++) {
                    b.indices[q] = a.indices[p];
                    b.data[q] = a.data[p];
                }
                b.indptr[w + 1] = q;
                memcpy(b.dense + w * ND, a.dense + i * ND, ND * sizeof(double));
                b.y[w++] = a.y[i];
            }
            assert_int_equal(w, 30);
            a.y[5] = 7;
            mlk_sgd_opts o;
            mlk_sgd_opts_default(&o);
            o.lr = MLK_LR_ADAGRAD;
            o.shuffle = shuffle;
            o.batch_size = batch;
            mlk_cmodel *ca = mlk_cmodel_new(3, NF, ND, 1), *cb = mlk_cmodel_new(3, NF, ND, 1);
            char err[200] = "";
            double la[5], lb[5];
            ok(mlk_sgd_train_compact(ca, &a.d, NULL, skip, &o, la, err, sizeof err), err);
            ok(mlk_sgd_train_compact(cb, &b.d, NULL, NULL, &o, lb, err, sizeof err), err);
            assert_memory_equal(la, lb, sizeof la);
            uint8_t *x, *y;
            size_t xl, yl;
            ok(mlk_cmodel_encode(ca, &x, &xl), "encode");
            ok(mlk_cmodel_encode(cb, &y, &yl), "encode");
            assert_int_equal(xl, yl);
            assert_memory_equal(x, y, xl);
            free(x);
            free(y);
            int64_t order[40];
            for (int i = 0; i < 40; i++) order[i] = i;
            assert_int_equal(mlk_sgd_train_compact(ca, &a.d, order, skip, &o, NULL, err, sizeof err), MLOPS_EINVAL);
            mlk_cmodel_destroy(&ca);
            mlk_cmodel_destroy(&cb);
        }
}

/* A random feature shard of n rows over nf hashed columns (0..7
 * entries a row, some rows empty; values +-1, or inexact ones with
 * exact == 0), ND dense values, labels 0..k-1 and test flags. */
static mlk_features *fshard_random(size_t n, uint32_t k, size_t nf, int exact, uint64_t seed)
{
    uint64_t s = seed;
    mlk_features *f = mlk_features_new(n);
    assert_non_null(f);
    f->csr = mlk_csr_new(n, nf, n * 8);
    f->test = malloc(n);
    f->dense64 = malloc(n * ND * sizeof(double));
    assert_true(f->csr && f->test && f->dense64);
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
        f->test[i] = rng_next(&s) % 5 == 0;
        f->row_id[i] = (int64_t)(1000 + 3 * i);
    }
    return f;
}

/* Training from the packed records in place gives the bytes, t and
 * losses of mlk_sgd_train_compact over the arrays with the test rows
 * skipped: every schedule, binary and multinomial, f32 and f64 values,
 * shuffled or not, one or two epochs, from a model holding inputs the
 * shard lacks, over two calls (the second continues the first). */
static void test_train_packed_matches_arrays(void **state)
{
    (void)state;
    mlk_lr lrs[] = {MLK_LR_OPTIMAL, MLK_LR_ADAGRAD, MLK_LR_INVSCALING, MLK_LR_CONSTANT};
    size_t nf = 512;
    for (uint32_t k = 2; k <= 3; k++)
        for (size_t li = 0; li < 4; li++)
            for (int exact = 0; exact < 2; exact++)
                for (int variant = 0; variant < 3; variant++) {
                    uint64_t seed = 1000 + k * 100 + li * 10 + (uint64_t)exact * 3 + (uint64_t)variant;
                    mlk_features *f = fshard_random(300, k, nf, exact, seed);
                    uint8_t *buf;
                    size_t len;
                    char err[200] = "";
                    ok(mlk_fpack_encode(f, &buf, &len), "encode");
                    mlk_fpack pk;
                    size_t *off = malloc(f->nrows * sizeof *off), ntr = 0;
                    ok(mlk_fpack_open(buf, len, &pk, off, err, sizeof err), err);
                    assert_int_equal(pk.f32, exact);
                    for (size_t i = 0; i < f->nrows; i++)
                        if (!f->test[i]) off[ntr++] = off[i];
                    mlk_sgd_opts o;
                    mlk_sgd_opts_default(&o);
                    o.lr = lrs[li];
                    o.eta0 = variant == 2 ? 0.5 : 0.05;
                    o.alpha = variant == 2 ? 0.5 : 1e-3; /* 0.5: the weight scale folds mid-epoch */
                    o.epochs = variant == 1 ? 2 : 1;
                    o.shuffle = variant != 1;
                    o.seed = seed;
                    o.shard = 3;
                    /* a model holding inputs the shard lacks, and missing some it has */
                    mlk_model *m0 = mlk_model_new(k, nf, ND, lrs[li] == MLK_LR_ADAGRAD);
                    assert_non_null(m0);
                    uint64_t s = seed;
                    for (size_t j = 0; j < m0->dim * m0->n_vec; j++)
                        if (rng_next(&s) % 3 == 0) m0->w[j] = rng_unif(&s) - 0.5;
                    if (m0->G)
                        for (size_t j = 0; j < m0->dim * m0->n_vec; j++) m0->G[j] = m0->w[j] != 0.0 ? rng_unif(&s) : 0.0;
                    m0->t = 17;
                    uint8_t *start;
                    size_t slen;
                    ok(mlk_model_encode(m0, &start, &slen), "encode");
                    mlk_cmodel *ca = NULL, *cb = NULL;
                    ok(mlk_cmodel_decode(start, slen, &ca, err, sizeof err), err);
                    ok(mlk_cmodel_decode(start, slen, &cb, err, sizeof err), err);
                    mlk_sgd_data d = {f->nrows, f->csr, f->dense64, ND, f->label};
                    for (int call = 0; call < 2; call++) {
                        double la[2] = {0}, lb[2] = {0};
                        o.epoch0 = (uint64_t)call * o.epochs;
                        int ra = mlk_sgd_train_compact(ca, &d, NULL, f->test, &o, la, err, sizeof err);
                        int rb = mlk_sgd_train_packed(cb, &pk, off, ntr, &o, lb, err, sizeof err);
                        assert_int_equal(ra, rb);
                        if (ra) break;
                        assert_memory_equal(la, lb, sizeof la);
                        assert_int_equal(ca->t, cb->t);
                        assert_int_equal(ca->n_seen, cb->n_seen);
                        uint8_t *x, *y;
                        size_t xl, yl;
                        ok(mlk_cmodel_encode(ca, &x, &xl), "encode");
                        ok(mlk_cmodel_encode(cb, &y, &yl), "encode");
                        if (xl != yl || memcmp(x, y, xl) != 0)
                            fail_msg("K=%u lr=%d exact=%d variant=%d call %d: packed bytes differ", k, (int)lrs[li],
                                     exact, variant, call);
                        free(x);
                        free(y);
                    }
                    /* scoring the test rows from the records equals scoring them copied out */
                    mlk_features *g = mlk_features_select(f, f->test, 1);
                    size_t *toff = malloc((g->nrows + 1) * sizeof *toff), nt = 0;
                    ok(mlk_fpack_open(buf, len, &pk, off, err, sizeof err), err); /* every row's offset again */
                    for (size_t i = 0; i < f->nrows; i++)
                        if (f->test[i]) toff[nt++] = off[i];
                    assert_int_equal(nt, g->nrows);
                    double *pa = malloc((nt * k + 1) * sizeof *pa), *pb = malloc((nt * k + 1) * sizeof *pb);
                    mlk_sgd_data dg = {g->nrows, g->csr, g->dense64, ND, NULL};
                    ok(mlk_sgd_predict_proba_compact(cb, &dg, pa, err, sizeof err), err);
                    ok(mlk_sgd_predict_proba_packed(cb, &pk, toff, nt, pb, err, sizeof err), err);
                    assert_memory_equal(pa, pb, nt * k * sizeof *pa);
                    free(pa);
                    free(pb);
                    free(toff);
                    mlk_features_destroy(&g);
                    for (size_t i = 0, w = 0; i < f->nrows; i++) /* back to the training rows */
                        if (!f->test[i]) off[w++] = off[i];
                    /* mini-batches and a model of another shape are refused */
                    o.batch_size = 4;
                    assert_int_equal(mlk_sgd_train_packed(cb, &pk, off, ntr, &o, NULL, err, sizeof err), MLOPS_EINVAL);
                    o.batch_size = 1;
                    mlk_cmodel *c3 = mlk_cmodel_new(k, nf + 1, ND, 0);
                    assert_int_equal(mlk_sgd_train_packed(c3, &pk, off, ntr, &o, NULL, err, sizeof err), MLOPS_EINVAL);
                    mlk_cmodel_destroy(&c3);
                    free(start);
                    free(off);
                    free(buf);
                    mlk_model_destroy(&m0);
                    mlk_cmodel_destroy(&ca);
                    mlk_cmodel_destroy(&cb);
                    mlk_features_destroy(&f);
                }
}

/* A binary shard like fshard_random's with nd dense columns. */
static mlk_features *fshard_nd(size_t n, size_t nf, size_t nd, int exact, uint64_t seed)
{
    mlk_features *f = fshard_random(n, 2, nf, exact, seed);
    uint64_t s = seed ^ 0x5bd1e995;
    free(f->dense64);
    f->dense64 = malloc((n * nd + 1) * sizeof(double));
    assert_non_null(f->dense64);
    f->n_dense = nd;
    for (size_t i = 0; i < n * nd; i++) f->dense64[i] = 2.0 * rng_unif(&s) - 1.0;
    return f;
}

static void cmodel_bytes_equal(const mlk_cmodel *a, const mlk_cmodel *b, const char *what)
{
    uint8_t *x, *y;
    size_t xl, yl;
    ok(mlk_cmodel_encode(a, &x, &xl), "encode");
    ok(mlk_cmodel_encode(b, &y, &yl), "encode");
    if (xl != yl || memcmp(x, y, xl) != 0) fail_msg("%s: model bytes differ", what);
    assert_int_equal(a->t, b->t);
    assert_int_equal(a->n_seen, b->n_seen);
    free(x);
    free(y);
}

/* The binary epoch loops over packed records keep the dense weights (and
 * adagrad's sums) in registers for nd <= 8, one loop per nd: in storage
 * order they give the bits of the per-row steps over the arrays (no
 * packing without a shuffle), for every nd of the register loops and one
 * beyond (the general loop), both schedules, f32 and f64 values, with the
 * weight scale folding mid-epoch. With the offsets given over
 * (mlk_sgd_train_packed_own) a shuffled epoch gives the bits of one that
 * copies them, and leaves its visits (a permutation of them) in the list. */
static void test_train_packed_nd_and_own(void **state)
{
    (void)state;
    size_t nds[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    mlk_lr lrs[] = {MLK_LR_OPTIMAL, MLK_LR_ADAGRAD};
    for (size_t di = 0; di < sizeof nds / sizeof *nds; di++)
        for (size_t li = 0; li < 2; li++)
            for (int exact = 0; exact < 2; exact++)
                for (int fold = 0; fold < 2; fold++) {
                    size_t nd = nds[di], nf = 256;
                    char what[120], err[200] = "";
                    snprintf(what, sizeof what, "nd=%zu lr=%d exact=%d fold=%d", nd, (int)lrs[li], exact, fold);
                    uint64_t seed = 7000 + di * 16 + li * 4 + (uint64_t)exact * 2 + (uint64_t)fold;
                    mlk_features *f = fshard_nd(400, nf, nd, exact, seed);
                    memset(f->test, 0, f->nrows);
                    uint8_t *buf;
                    size_t len;
                    ok(mlk_fpack_encode(f, &buf, &len), "encode");
                    mlk_fpack pk;
                    size_t *off = malloc(f->nrows * sizeof *off), *own = malloc(f->nrows * sizeof *own);
                    ok(mlk_fpack_open(buf, len, &pk, off, err, sizeof err), err);
                    mlk_sgd_opts o;
                    mlk_sgd_opts_default(&o);
                    o.lr = lrs[li];
                    o.eta0 = 0.05;
                    o.alpha = fold ? 0.5 : 1e-3; /* 0.5: the weight scale folds */
                    o.epochs = 1;
                    o.shuffle = 0;
                    o.seed = seed;
                    mlk_cmodel *ca = mlk_cmodel_new(2, nf, nd, lrs[li] == MLK_LR_ADAGRAD);
                    mlk_cmodel *cb = mlk_cmodel_new(2, nf, nd, lrs[li] == MLK_LR_ADAGRAD);
                    mlk_cmodel *cc = mlk_cmodel_new(2, nf, nd, lrs[li] == MLK_LR_ADAGRAD);
                    assert_true(ca && cb && cc);
                    mlk_sgd_data d = {f->nrows, f->csr, nd ? f->dense64 : NULL, nd, f->label};
                    for (int call = 0; call < 2; call++) { /* in order, then shuffled */
                        double la = 0, lb = 0, lc = 0;
                        o.shuffle = call;
                        o.epoch0 = (uint64_t)call;
                        memcpy(own, off, f->nrows * sizeof *own);
                        int ra = call ? 0 : mlk_sgd_train_compact(ca, &d, NULL, NULL, &o, &la, err, sizeof err);
                        ok(ra, err);
                        ok(mlk_sgd_train_packed(cb, &pk, off, f->nrows, &o, &lb, err, sizeof err), err);
                        ok(mlk_sgd_train_packed_own(cc, &pk, own, f->nrows, &o, &lc, err, sizeof err), err);
                        if (!call) {
                            assert_memory_equal(&la, &lb, sizeof la);
                            cmodel_bytes_equal(ca, cb, what);
                        }
                        assert_memory_equal(&lb, &lc, sizeof lb);
                        cmodel_bytes_equal(cb, cc, what);
                    }
                    /* own holds the shuffled visits: the same offsets, another order */
                    size_t moved = 0;
                    for (size_t i = 0; i < f->nrows; i++) moved += own[i] != off[i];
                    assert_true(moved > f->nrows / 2);
                    for (size_t i = 0; i < f->nrows; i++) {
                        size_t hits = 0;
                        for (size_t j = 0; j < f->nrows; j++) hits += own[j] == off[i];
                        assert_int_equal(hits, 1);
                    }
                    mlk_cmodel_destroy(&ca);
                    mlk_cmodel_destroy(&cb);
                    mlk_cmodel_destroy(&cc);
                    free(own);
                    free(off);
                    free(buf);
                    mlk_features_destroy(&f);
                }
}

static void test_predict(void **state)
{
    (void)state;
    shard sh;
    shard_make(&sh, 30, 2, 8);
    mlk_model *m = model_random(2, 9);
    double pr[60];
    char err[200] = "";
    ok(mlk_sgd_predict_proba(m, &sh.d, pr, err, sizeof err), err);
    for (size_t i = 0; i < 30; i++) {
        double z = m->b[0];
        for (int64_t p = sh.indptr[i]; p < sh.indptr[i + 1]; p++) z += m->w[sh.indices[p]] * sh.data[p];
        for (size_t j = 0; j < ND; j++) z += m->w[NF + j] * sh.dense[i * ND + j];
        assert_true(fabs(pr[2 * i + 1] - 1.0 / (1.0 + exp(-z))) < 1e-14);
        assert_true(fabs(pr[2 * i] + pr[2 * i + 1] - 1.0) < 1e-15);
    }
    mlk_model_destroy(&m);
    m = model_random(4, 9);
    double pr4[120];
    ok(mlk_sgd_predict_proba(m, &sh.d, pr4, err, sizeof err), err);
    for (size_t i = 0; i < 30; i++) {
        double s = 0;
        for (int c = 0; c < 4; c++) {
            assert_true(pr4[4 * i + c] > 0.0);
            s += pr4[4 * i + c];
        }
        assert_true(fabs(s - 1.0) < 1e-14);
    }
    mlk_model_destroy(&m);
}

static void expect_einval(mlk_model *m, const mlk_sgd_data *d, const int64_t *order,
                          const mlk_sgd_opts *o, const char *needle)
{
    char err[200] = "";
    int rc = mlk_sgd_train(m, d, order, o, NULL, err, sizeof err);
    if (rc != MLOPS_EINVAL || !strstr(err, needle))
        fail_msg("expected EINVAL mentioning '%s', got %d (%s): %s", needle, rc, mlops_strerror(rc), err);
}

static void test_bad_input(void **state)
{
    (void)state;
    shard sh;
    shard_make(&sh, 20, 3, 4);
    mlk_model *m = mlk_model_new(3, NF, ND, 0);
    mlk_sgd_opts o;
    mlk_sgd_opts_default(&o);
    int64_t order[20];
    for (int i = 0; i < 20; i++) order[i] = 19 - i;
    char err[200];
    ok(mlk_sgd_train(m, &sh.d, order, &o, NULL, err, sizeof err), err);
    order[3] = 20;
    expect_einval(m, &sh.d, order, &o, "order[3]");
    sh.y[5] = 3;
    expect_einval(m, &sh.d, NULL, &o, "row 5 has label 3");
    sh.y[5] = -1;
    expect_einval(m, &sh.d, NULL, &o, "label -1");
    sh.y[5] = 0;
    int32_t keep = sh.indices[2];
    sh.indices[2] = NF;
    expect_einval(m, &sh.d, NULL, &o, "column 16");
    sh.indices[2] = keep;
    sh.indptr[4] = sh.indptr[3] - 1;
    expect_einval(m, &sh.d, NULL, &o, "indptr decreases");
    shard_make(&sh, 20, 3, 4);
    sh.d.n_dense = 2;
    expect_einval(m, &sh.d, NULL, &o, "dense columns");
    sh.d.n_dense = ND;
    sh.X.ncols = NF + 1;
    expect_einval(m, &sh.d, NULL, &o, "CSR is");
    sh.X.ncols = NF;
    o.alpha = 0.0;
    expect_einval(m, &sh.d, NULL, &o, "alpha > 0");
    o.lr = MLK_LR_CONSTANT;
    o.eta0 = 0.0;
    expect_einval(m, &sh.d, NULL, &o, "eta0");
    o.eta0 = 1e300;
    o.alpha = 1e-300;
    for (size_t i = 0; i < 20 * ND; i++) sh.dense[i] = 1e300;
    expect_einval(m, &sh.d, NULL, &o, "not finite");
    mlk_sgd_opts_default(&o);
    o.epochs = 0;
    expect_einval(m, &sh.d, NULL, &o, "epochs");
    assert_int_equal(mlk_sgd_lr_parse("adagrad"), MLK_LR_ADAGRAD);
    assert_int_equal(mlk_sgd_lr_parse("fast"), 0);
    mlk_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_binary),
        cmocka_unit_test(test_gradient_multinomial),
        cmocka_unit_test(test_step_matches_gradient),
        cmocka_unit_test(test_optimal_schedule),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_packed_rows_and_pass_loss),
        cmocka_unit_test(test_packed_loops_match_steps),
        cmocka_unit_test(test_one_epoch_calls),
        cmocka_unit_test(test_training_lowers_objective),
        cmocka_unit_test(test_compact_matches_dense),
        cmocka_unit_test(test_skip_rows),
        cmocka_unit_test(test_train_packed_matches_arrays),
        cmocka_unit_test(test_train_packed_nd_and_own),
        cmocka_unit_test(test_predict),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
