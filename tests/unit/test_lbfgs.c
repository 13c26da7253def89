/* test_lbfgs.c: unit tests of lbfgs.h and logistic.h. The solver finds
 * the minimum of Rosenbrock's function and of a convex quadratic; a run
 * whose state is saved to bytes and read back after every evaluation
 * gives the same bytes as one that never stops (what a coordinator
 * restart does); bad values and damaged states are refused with a
 * message. The logistic loss gradient (binary and multinomial) matches
 * finite differences and flags exactly the hashed inputs rows hold.
 * tests/ref/test_lbfgs_ref.py compares the two with scipy. */
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
#include "fshard.h"
#include "hasher.h"
#include "lbfgs.h"
#include "logistic.h"
#include "model.h"

static double rosen(const double *x, double *g)
{
    double a = 1.0 - x[0], b = x[1] - x[0] * x[0];
    g[0] = -2.0 * a - 400.0 * x[0] * b;
    g[1] = 200.0 * b;
    return a * a + 100.0 * b * b;
}

/* Drive s to the end on rosen; with roundtrip, through bytes each time. */
static int drive(mlk_lbfgs **s, int roundtrip)
{
    int st;
    double g[2];
    char err[256];
    do {
        double f = rosen(mlk_lbfgs_x(*s), g);
        st = mlk_lbfgs_tell(*s, f, g, err, sizeof err);
        assert_true(st >= 0);
        if (roundtrip) {
            uint8_t *buf;
            size_t len;
            assert_int_equal(mlk_lbfgs_encode(*s, &buf, &len), 0);
            /* the point alone, as the coordinator reads it for the tasks */
            double *px;
            size_t pn;
            assert_int_equal(mlk_lbfgs_peek_x(buf, len, &px, &pn, err, sizeof err), 0);
            assert_int_equal(pn, 2);
            assert_memory_equal(px, mlk_lbfgs_x(*s), 2 * sizeof *px);
            free(px);
            assert_int_equal(mlk_lbfgs_peek_x(buf, len - 1, &px, &pn, err, sizeof err), MLOPS_EPARSE);
            assert_null(px);
            mlk_lbfgs_destroy(s);
            assert_int_equal(mlk_lbfgs_decode(buf, len, s, err, sizeof err), 0);
            free(buf);
        }
    } while (st == MLK_LBFGS_RUNNING);
    return st;
}

static void test_rosenbrock(void **state)
{
    (void)state;
    mlk_lbfgs_opts o;
    mlk_lbfgs_opts_default(&o);
    o.gtol = 1e-9;
    o.ftol = 0;
    o.max_iter = 1000;
    double x0[2] = {-1.2, 1.0};
    mlk_lbfgs *a = mlk_lbfgs_new(2, x0, &o), *b = mlk_lbfgs_new(2, x0, &o);
    assert_non_null(a);
    assert_non_null(b);
    int sa = drive(&a, 0), sb = drive(&b, 1);
    assert_int_equal(sa, MLK_LBFGS_GTOL);
    assert_int_equal(sb, sa);
    double f, gmax;
    const double *x = mlk_lbfgs_best(a, &f, &gmax);
    assert_true(fabs(x[0] - 1.0) < 1e-6 && fabs(x[1] - 1.0) < 1e-6);
    assert_true(gmax <= 1e-9 && f < 1e-12);
    assert_true(mlk_lbfgs_iter(a) > 10 && mlk_lbfgs_iter(a) < 200);
    /* the saved-and-restored run is the same run, bit for bit */
    assert_memory_equal(mlk_lbfgs_best(b, NULL, NULL), x, 2 * sizeof *x);
    assert_int_equal(mlk_lbfgs_evals(a), mlk_lbfgs_evals(b));
    /* a stopped solver refuses more values */
    char err[256] = "";
    double g[2] = {0, 0};
    assert_int_equal(mlk_lbfgs_tell(a, 0.0, g, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "lbfgs: the solver has stopped (gtol)");
    mlk_lbfgs_destroy(&a);
    mlk_lbfgs_destroy(&b);
    mlk_lbfgs_destroy(&b);
}

/* f = sum_i c_i (x_i - i)^2 with c from 1 to 1e3: ill-conditioned, convex
 * (scipy's L-BFGS-B stops on ftol after 191 iterations, 205 evaluations). */
static void test_quadratic_and_limits(void **state)
{
    (void)state;
    enum { N = 50 };
    mlk_lbfgs_opts o;
    mlk_lbfgs_opts_default(&o);
    o.gtol = 1e-8;
    o.max_iter = 1000;
    double x0[N] = {0}, g[N];
    mlk_lbfgs *s = mlk_lbfgs_new(N, x0, &o);
    int st;
    char err[256];
    do {
        const double *x = mlk_lbfgs_x(s);
        double f = 0;
        for (int i = 0; i < N; i++) {
            double c = pow(1e3, (double)i / (N - 1)), d = x[i] - i;
            f += c * d * d;
            g[i] = 2 * c * d;
        }
        st = mlk_lbfgs_tell(s, f, g, err, sizeof err);
    } while (st == MLK_LBFGS_RUNNING);
    if (st != MLK_LBFGS_GTOL && st != MLK_LBFGS_FTOL)
        fail_msg("stopped by %s after %u iterations", mlk_lbfgs_status_name(st), mlk_lbfgs_iter(s));
    const double *x = mlk_lbfgs_best(s, NULL, NULL);
    for (int i = 0; i < N; i++) assert_true(fabs(x[i] - i) < 1e-3);
    assert_true(mlk_lbfgs_iter(s) < 300);
    mlk_lbfgs_destroy(&s);

    /* max_iter stops it, with the last accepted point */
    o.max_iter = 3;
    s = mlk_lbfgs_new(N, x0, &o);
    do {
        const double *xx = mlk_lbfgs_x(s);
        double f = 0;
        for (int i = 0; i < N; i++) {
            double c = pow(1e3, (double)i / (N - 1)), d = xx[i] - i;
            f += c * d * d;
            g[i] = 2 * c * d;
        }
        st = mlk_lbfgs_tell(s, f, g, err, sizeof err);
    } while (st == MLK_LBFGS_RUNNING);
    assert_int_equal(st, MLK_LBFGS_MAXITER);
    assert_int_equal(mlk_lbfgs_iter(s), 3);
    assert_string_equal(mlk_lbfgs_status_name(st), "max_iter");
    mlk_lbfgs_destroy(&s);
}

static void test_bad_values(void **state)
{
    (void)state;
    mlk_lbfgs_opts o;
    mlk_lbfgs_opts_default(&o);
    double x0[2] = {0, 0}, g[2] = {1, NAN};
    char err[256] = "";
    assert_null(mlk_lbfgs_new(0, x0, &o));
    o.m = 0;
    assert_null(mlk_lbfgs_new(2, x0, &o));
    mlk_lbfgs_opts_default(&o);
    o.gtol = -1;
    assert_null(mlk_lbfgs_new(2, x0, &o));
    mlk_lbfgs_opts_default(&o);
    mlk_lbfgs *s = mlk_lbfgs_new(2, x0, &o);
    assert_int_equal(mlk_lbfgs_tell(s, INFINITY, g, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "lbfgs: objective is inf at evaluation 1");
    assert_int_equal(mlk_lbfgs_tell(s, 1.0, g, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "lbfgs: gradient entry 1 is nan at evaluation 1");
    /* a zero gradient at the start is already optimal */
    g[1] = 0;
    g[0] = 0;
    assert_int_equal(mlk_lbfgs_tell(s, 1.0, g, err, sizeof err), MLK_LBFGS_GTOL);
    uint8_t *buf;
    size_t len;
    assert_int_equal(mlk_lbfgs_encode(s, &buf, &len), 0);
    mlk_lbfgs *t = NULL;
    assert_int_equal(mlk_lbfgs_decode(buf, len - 1, &t, err, sizeof err), MLOPS_EPARSE);
    assert_null(t);
    buf[0] = 'X';
    assert_int_equal(mlk_lbfgs_decode(buf, len, &t, err, sizeof err), MLOPS_EPARSE);
    assert_non_null(strstr(err, "not a solver state"));
    free(buf);
    mlk_lbfgs_destroy(&s);
}

/* A tiny shard: 12 rows, 6 hashed inputs (input 5 never used), 2 dense. */
static void shard(mlk_csr *X, int64_t *indptr, int32_t *ind, double *val, double *dense, int32_t *y,
                  uint32_t K)
{
    size_t p = 0;
    for (int i = 0; i < 12; i++) {
        indptr[i] = (int64_t)p;
        for (int k = 0; k < 2; k++) {
            ind[p] = (i * 3 + k * 2) % 5;
            val[p] = k ? -1.0 : 0.5 + 0.1 * i;
            p++;
        }
        dense[2 * i] = sin(i + 1.0);
        dense[2 * i + 1] = cos(2.0 * i);
        y[i] = (int32_t)((i * 7 + i / 3) % K);
    }
    indptr[12] = (int64_t)p;
    memset(X, 0, sizeof *X);
    X->nrows = 12;
    X->ncols = 6;
    X->indptr = indptr;
    X->indices = ind;
    X->data = val;
}

static void grad_check(uint32_t K)
{
    mlk_csr X;
    int64_t indptr[13];
    int32_t ind[24], y[12];
    double val[24], dense[24];
    shard(&X, indptr, ind, val, dense, y, K);
    mlk_model *m = mlk_model_new(K, 6, 2, 0);
    size_t np = (size_t)(m->dim * m->n_vec), kv = m->n_vec;
    for (size_t j = 0; j < np; j++) m->w[j] = 0.3 * sin(1.7 * (double)j);
    for (size_t k = 0; k < kv; k++) m->b[k] = 0.1 * (double)k - 0.05;
    mlk_sgd_data d = {12, &X, dense, 2, y};
    double loss = 0, *gw = calloc(np, sizeof *gw), gb[8] = {0};
    uint8_t touched[6] = {0};
    char err[256];
    assert_int_equal(mlk_logistic_loss_grad(m, &d, &loss, gw, gb, touched, err, sizeof err), 0);
    assert_memory_equal(touched, ((uint8_t[]){1, 1, 1, 1, 1, 0}), 6);
    assert_true(gw[5 * kv] == 0.0);
    const double h = 1e-6;
    for (size_t j = 0; j < np + kv; j++) {
        double *p = j < np ? &m->w[j] : &m->b[j - np], keep = *p, lp = 0, lm = 0, dummy[64], db[8];
        memset(dummy, 0, sizeof dummy);
        *p = keep + h;
        double *g2 = calloc(np, sizeof *g2);
        assert_int_equal(mlk_logistic_loss_grad(m, &d, &lp, g2, db, NULL, err, sizeof err), 0);
        *p = keep - h;
        assert_int_equal(mlk_logistic_loss_grad(m, &d, &lm, g2, db, NULL, err, sizeof err), 0);
        *p = keep;
        free(g2);
        double num = (lp - lm) / (2 * h), ana = j < np ? gw[j] : gb[j - np];
        assert_true(fabs(num - ana) < 1e-6 * fmax(1.0, fabs(ana)));
    }
    /* a label out of range is refused with a message */
    y[3] = (int32_t)K;
    assert_int_equal(mlk_logistic_loss_grad(m, &d, &loss, gw, gb, NULL, err, sizeof err), MLOPS_EINVAL);
    char want[96];
    snprintf(want, sizeof want, "logistic: row 3 has label %u, classes are 0..%u", K, K - 1);
    assert_string_equal(err, want);
    free(gw);
    mlk_model_destroy(&m);
}

static void test_logistic_gradient(void **state)
{
    (void)state;
    grad_check(2);
    grad_check(4);
}

static uint64_t xs(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The packed kernel against the dense one over the same training rows:
 * a 300-row shard over 2^12 hashed inputs (sparse rows of 0-6 entries,
 * f32-exact values or not, some test rows, 2 dense columns, a few rows
 * of label -1 among the test rows), K classes. The loss and every
 * gradient entry must be the same doubles, bit for bit, the touched
 * columns the same, in the shard's column space. */
static void packed_check(uint32_t K, int f32_values)
{
    const size_t n = 300, nf = 4096, nd = 2;
    uint64_t x = 0x9e3779b97f4a7c15ull + K * 131 + (uint64_t)f32_values;
#define RND() xs(&x)
    mlk_features *f = mlk_features_new(n);
    f->csr = mlk_csr_new(n, nf, n * 6);
    f->test = calloc(n, 1);
    f->n_dense = nd;
    f->dense_type = MLK_DENSE_F64;
    f->dense64 = malloc(n * nd * sizeof *f->dense64);
    assert_true(f->csr && f->test && f->dense64);
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        f->row_id[i] = (int64_t)(1000 + i);
        f->test[i] = RND() % 5 == 0;
        int none = f->test[i] && RND() % 4 == 0;
        f->label[i] = none ? -1 : (int32_t)(RND() % K);
        f->csr->indptr[i] = (int64_t)p;
        size_t k = RND() % 7;
        int32_t col = (int32_t)(RND() % 64);
        for (size_t q = 0; q < k; q++) {
            col += 1 + (int32_t)(RND() % 600);
            if (col >= (int32_t)nf) break;
            f->csr->indices[p] = col;
            double mag = (double)(1 + RND() % 3), sign = RND() % 2 ? 1.0 : -1.0;
            f->csr->data[p] = f32_values ? mag * sign : ((double)(RND() % 100000) - 50000) / 7.0;
            p++;
        }
        for (size_t j = 0; j < nd; j++) f->dense64[i * nd + j] = ((double)(RND() % 2001) - 1000) / 333.0;
    }
    f->csr->indptr[n] = (int64_t)p;
    uint8_t *buf;
    size_t len;
    assert_int_equal(mlk_fpack_encode(f, &buf, &len), 0);
    mlk_fpack pk;
    size_t *off = malloc(n * sizeof *off);
    char err[256];
    assert_int_equal(mlk_fpack_open(buf, len, &pk, off, err, sizeof err), 0);
    assert_int_equal(pk.f32, f32_values);

    mlk_features *tr = mlk_features_select(f, f->test, 0);
    mlk_model *m = mlk_model_new(K, nf, nd, 0);
    size_t kv = m->n_vec, np = (size_t)m->dim * kv;
    for (size_t j = 0; j < np; j++) m->w[j] = 0.01 * (double)((RND() % 2001) - 1000) / 7.0;
    for (size_t k = 0; k < kv; k++) m->b[k] = 0.03 * (double)k - 0.1;
    mlk_sgd_data d = {tr->nrows, tr->csr, tr->dense64, nd, tr->label};
    double loss = 0.25, *gw = calloc(np, sizeof *gw), gb[8] = {0};
    uint8_t *touched = calloc(nf, 1);
    assert_int_equal(mlk_logistic_loss_grad(m, &d, &loss, gw, gb, touched, err, sizeof err), 0);

    size_t nc = pk.ncols;
    double *wl = calloc(nc * kv + 1, sizeof *wl), *gl = calloc(nc * kv + 1, sizeof *gl);
    double gd[2 * 8] = {0}, gb2[8] = {0}, loss2 = 0.25;
    uint8_t *tl = calloc(nc + 1, 1);
    for (size_t c = 0; c < nc; c++) memcpy(wl + c * kv, m->w + (size_t)pk.cols[c] * kv, kv * sizeof *wl);
    assert_int_equal(mlk_logistic_loss_grad_packed(&pk, off, kv, wl, m->w + nf * kv, m->b, &loss2, gl, gd, gb2,
                                                   tl, err, sizeof err),
                     0);
    assert_memory_equal(&loss, &loss2, sizeof loss);
    assert_memory_equal(gb, gb2, kv * sizeof *gb);
    assert_memory_equal(gw + nf * kv, gd, nd * kv * sizeof *gd);
    size_t nt = 0, nt2 = 0;
    for (size_t j = 0; j < nf; j++) nt += touched[j];
    for (size_t c = 0; c < nc; c++) {
        nt2 += tl[c];
        assert_int_equal(tl[c], touched[pk.cols[c]]);
        assert_memory_equal(gl + c * kv, gw + (size_t)pk.cols[c] * kv, kv * sizeof *gl);
    }
    assert_int_equal(nt, nt2);
    assert_true(nt > 100 && nt < nc); /* some columns only test rows hold */
    assert_int_equal(mlk_logistic_loss_grad_packed(&pk, off, 0, wl, m->w, m->b, &loss2, gl, gd, gb2, tl, err,
                                                   sizeof err),
                     MLOPS_EINVAL);
    free(wl);
    free(gl);
    free(tl);
    free(gw);
    free(touched);
    free(off);
    free(buf);
    mlk_model_destroy(&m);
    mlk_features_destroy(&tr);
    mlk_features_destroy(&f);
#undef RND
}

static void test_logistic_packed(void **state)
{
    (void)state;
    packed_check(2, 1);
    packed_check(2, 0);
    packed_check(3, 1);
    packed_check(5, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rosenbrock),
        cmocka_unit_test(test_quadratic_and_limits),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_logistic_gradient),
        cmocka_unit_test(test_logistic_packed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
