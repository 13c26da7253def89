/* test_metrics.c: metric values on small hand-checked examples
 * (scikit-learn's docstring cases), merge = single partial, edge cases
 * (one class, empty partials, bad input), garbage buffers, and the
 * sorted score runs of one add the same bytes as row by row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "metrics.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_binary(void **state)
{
    (void)state;
    /* log_loss(["spam","ham","ham","spam"], [[.1,.9],[.9,.1],[.8,.2],
     * [.35,.65]]) = 0.21616... with ham = 0, spam = 1 */
    const int32_t yt[4] = {1, 0, 0, 1};
    const double pr[8] = {.1, .9, .9, .1, .8, .2, .35, .65};
    mlk_metrics *m = mlk_metrics_new(2, 0);
    assert_non_null(m);
    char err[160];
    assert_int_equal(mlk_metrics_add(m, 4, yt, NULL, pr, err, sizeof err), 0);
    mlk_metrics_result r;
    assert_int_equal(mlk_metrics_compute(m, &r, err, sizeof err), 0);
    assert_int_equal(r.n, 4);
    assert_true(r.has_log_loss);
    double want = -(log(.9) + log(.9) + log(.8) + log(.65)) / 4;
    assert_true(fabs(r.log_loss - want) < 1e-15);
    assert_true(fabs(r.log_loss - 0.21616) < 1e-5);
    /* predictions by argmax: all right */
    assert_true(r.accuracy == 1.0);
    assert_true(r.precision == 1.0 && r.recall == 1.0 && r.f1 == 1.0);
    assert_true(r.has_auc);
    assert_true(r.roc_auc == 1.0);
    const uint64_t *cm = mlk_metrics_confusion(m);
    assert_int_equal(cm[0], 2);
    assert_int_equal(cm[3], 2);
    mlk_metrics_destroy(&m);
    assert_null(m);

    /* roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.75; explicit
     * predictions: precision 1, recall 1/2, f1 2/3 */
    const int32_t y2[4] = {0, 0, 1, 1}, p2[4] = {0, 0, 0, 1};
    const double s2[8] = {.9, .1, .6, .4, .65, .35, .2, .8};
    m = mlk_metrics_new(2, 0);
    assert_int_equal(mlk_metrics_add(m, 4, y2, p2, s2, err, sizeof err), 0);
    assert_int_equal(mlk_metrics_compute(m, &r, err, sizeof err), 0);
    assert_true(r.roc_auc == 0.75);
    assert_true(r.accuracy == 0.75);
    assert_true(r.precision == 1.0);
    assert_true(r.recall == 0.5);
    assert_true(fabs(r.f1 - 2.0 / 3.0) < 1e-16);
    mlk_metrics_destroy(&m);

    /* ties count one half: all scores equal -> 0.5; -0.0 ties 0.0 */
    const int32_t y3[4] = {0, 1, 0, 1};
    const double s3[8] = {1, 0.0, 1, -0.0, 1, 0.0, 1, -0.0};
    m = mlk_metrics_new(2, 0);
    assert_int_equal(mlk_metrics_add(m, 4, y3, y3, s3, err, sizeof err), 0);
    assert_int_equal(mlk_metrics_compute(m, &r, err, sizeof err), 0);
    assert_true(r.roc_auc == 0.5);
    /* clipping: probability 0 for the true class gives -log(eps) */
    const double e = DBL_EPSILON; /* rows sum to (1 - e) + e = 1 */
    assert_true(fabs(r.log_loss - (-log(1 - e) - log(e)) / 2) < 1e-12);
    mlk_metrics_destroy(&m);
}

static void test_multiclass_macro(void **state)
{
    (void)state;
    /* sklearn docstring: y_true [0,1,2,0,1,2], y_pred [0,2,1,0,0,1]:
     * precision 2/9, recall 1/3, f1 0.2666..; class 3 never appears
     * and is left out of the macro average, as unique_labels does */
    const int32_t yt[6] = {0, 1, 2, 0, 1, 2}, yp[6] = {0, 2, 1, 0, 0, 1};
    mlk_metrics *m = mlk_metrics_new(4, 0);
    char err[160];
    assert_int_equal(mlk_metrics_add(m, 6, yt, yp, NULL, err, sizeof err), 0);
    mlk_metrics_result r;
    assert_int_equal(mlk_metrics_compute(m, &r, err, sizeof err), 0);
    assert_true(fabs(r.accuracy - 1.0 / 3.0) < 1e-16);
    assert_true(fabs(r.precision - 2.0 / 9.0) < 1e-16);
    assert_true(fabs(r.recall - 1.0 / 3.0) < 1e-16);
    assert_true(fabs(r.f1 - 0.8 / 3.0) < 1e-16);
    assert_false(r.has_log_loss);
    assert_false(r.has_auc);
    mlk_metrics_destroy(&m);
}

/* One add of n rows against n adds of one row (whose runs need no
 * sort, only merge_runs): the same partial, byte for byte, for scores
 * the radix path sorts (ties, 0, denormals, 1, labels mixed within a
 * score) and for those it leaves to qsort (negative, -0.0). */
static void test_sorted_runs_bytes(void **state)
{
    (void)state;
    enum { N = 3000, K = 2 };
    int32_t *yt = malloc(N * sizeof *yt);
    double *pr = malloc(N * K * sizeof *pr);
    assert_non_null(yt);
    assert_non_null(pr);
    char err[160];
    for (int neg = 0; neg < 2; neg++) {
        srand(11 + neg);
        for (int i = 0; i < N; i++) {
            /* scores that differ in each pass's digits, with ties */
            int c = rand() % 8;
            double p = c == 0   ? 0.0
                       : c == 1 ? 1.0
                       : c == 2 ? 4.9e-322 * (rand() % 4)
                       : c == 3 ? (double)rand() / RAND_MAX
                       : c == 4 ? 0.5 + (rand() % 4096) * 0x1p-52
                       : c == 5 ? 0.5 + (rand() % 4096) * 0x1p-41
                       : c == 6 ? 0.5 + (rand() % 4096) * 0x1p-30
                                : (rand() % 64) / 64.0;
            if (neg && rand() % 4 == 0) p = rand() % 2 ? -0.0 : -p - 0.25;
            yt[i] = rand() % 2;
            pr[2 * i] = 1 - p;
            pr[2 * i + 1] = p;
        }
        mlk_metrics *one = mlk_metrics_new(K, 0), *rows = mlk_metrics_new(K, 0);
        assert_int_equal(mlk_metrics_add(one, N, yt, NULL, pr, err, sizeof err), 0);
        for (int i = 0; i < N; i++)
            assert_int_equal(mlk_metrics_add(rows, 1, yt + i, NULL, pr + 2 * i, err, sizeof err), 0);
        uint8_t *a, *b;
        size_t al, bl;
        assert_int_equal(mlk_metrics_encode(one, &a, &al), 0);
        assert_int_equal(mlk_metrics_encode(rows, &b, &bl), 0);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
        free(a);
        free(b);
        mlk_metrics_destroy(&one);
        mlk_metrics_destroy(&rows);
    }
    free(yt);
    free(pr);
}

static void test_merge_equals_single(void **state)
{
    (void)state;
    enum { N = 1000, K = 2 };
    int32_t *yt = malloc(N * sizeof *yt);
    double *pr = malloc(N * K * sizeof *pr);
    assert_non_null(yt);
    assert_non_null(pr);
    srand(3);
    for (int i = 0; i < N; i++) {
        double p = (rand() % 50) / 50.0; /* many ties */
        yt[i] = (rand() % 100) < 30 + 40 * p;
        pr[2 * i] = 1 - p;
        pr[2 * i + 1] = p;
    }
    char err[160];
    mlk_metrics *one = mlk_metrics_new(K, 0), *acc = mlk_metrics_new(K, 0);
    assert_int_equal(mlk_metrics_add(one, N, yt, NULL, pr, err, sizeof err), 0);
    int cuts[] = {0, 1, 1, 333, 700, N};
    for (int s = 0; s + 1 < (int)(sizeof cuts / sizeof cuts[0]); s++) {
        mlk_metrics *part = mlk_metrics_new(K, 0), *back = NULL;
        assert_int_equal(mlk_metrics_add(part, (size_t)(cuts[s + 1] - cuts[s]), yt + cuts[s], NULL,
                                         pr + (size_t)cuts[s] * K, err, sizeof err), 0);
        uint8_t *b;
        size_t bl;
        assert_int_equal(mlk_metrics_encode(part, &b, &bl), 0);
        assert_int_equal(mlk_metrics_decode(b, bl, &back, err, sizeof err), 0);
        assert_int_equal(mlk_metrics_merge(acc, back, err, sizeof err), 0);
        free(b);
        mlk_metrics_destroy(&part);
        mlk_metrics_destroy(&back);
    }
    mlk_metrics_result a, b;
    assert_int_equal(mlk_metrics_compute(one, &a, err, sizeof err), 0);
    assert_int_equal(mlk_metrics_compute(acc, &b, err, sizeof err), 0);
    assert_int_equal(a.n, b.n);
    assert_true(a.accuracy == b.accuracy && a.precision == b.precision);
    assert_true(a.recall == b.recall && a.f1 == b.f1);
    assert_true(a.has_auc && b.has_auc && a.roc_auc == b.roc_auc);
    assert_true(fabs(a.log_loss - b.log_loss) <= 1e-15 * a.log_loss);
    assert_memory_equal(mlk_metrics_confusion(one), mlk_metrics_confusion(acc), K * K * 8);
    /* AUC by brute force over all pairs */
    double u = 0;
    long np = 0, nn = 0;
    for (int i = 0; i < N; i++) {
        if (yt[i] != 1) continue;
        np++;
        for (int j = 0; j < N; j++) {
            if (yt[j] == 1) continue;
            u += pr[2 * i + 1] > pr[2 * j + 1] ? 1.0 : pr[2 * i + 1] == pr[2 * j + 1] ? 0.5 : 0.0;
        }
    }
    for (int j = 0; j < N; j++) nn += yt[j] != 1;
    assert_true(a.roc_auc == u / ((double)np * (double)nn));
    mlk_metrics_destroy(&one);
    mlk_metrics_destroy(&acc);
    free(yt);
    free(pr);
}

static void test_edges(void **state)
{
    (void)state;
    char err[160];
    mlk_metrics_result r;
    /* empty partials: merge fine, compute refuses */
    mlk_metrics *a = mlk_metrics_new(2, 0), *b = mlk_metrics_new(2, 0);
    assert_int_equal(mlk_metrics_add(a, 0, NULL, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(mlk_metrics_merge(a, b, err, sizeof err), 0);
    int rc = mlk_metrics_compute(a, &r, err, sizeof err);
    assert_int_equal(rc, MLOPS_EINVAL);
    assert_non_null(strstr(err, "no rows"));
    assert_string_not_equal(mlops_strerror(rc), "");
    /* all one class: no AUC, zero-division precision = 0 */
    const int32_t y0[3] = {0, 0, 0};
    const double p0[6] = {.9, .1, .8, .2, .4, .6};
    assert_int_equal(mlk_metrics_add(a, 3, y0, NULL, p0, err, sizeof err), 0);
    assert_int_equal(mlk_metrics_compute(a, &r, err, sizeof err), 0);
    assert_false(r.has_auc);
    assert_true(r.has_log_loss);
    assert_true(fabs(r.accuracy - 2.0 / 3.0) < 1e-16);
    assert_true(r.precision == 0.0 && r.recall == 0.0 && r.f1 == 0.0);
    /* rows without probabilities: no log loss for the merged result */
    assert_int_equal(mlk_metrics_add(b, 3, y0, y0, NULL, err, sizeof err), 0);
    assert_int_equal(mlk_metrics_merge(a, b, err, sizeof err), 0);
    assert_int_equal(mlk_metrics_compute(a, &r, err, sizeof err), 0);
    assert_false(r.has_log_loss);
    assert_false(r.has_auc);
    assert_int_equal(r.n, 6);
    /* bad input leaves the partial unchanged */
    const int32_t bad[2] = {0, 2};
    const double nanp[4] = {.5, .5, NAN, .5};
    assert_int_equal(mlk_metrics_add(a, 2, bad, NULL, p0, err, sizeof err), MLOPS_EINVAL);
    assert_non_null(strstr(err, "row 1"));
    assert_int_equal(mlk_metrics_add(a, 2, y0, NULL, nanp, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_metrics_add(a, 2, y0, bad, NULL, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_metrics_add(a, 2, y0, NULL, NULL, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_metrics_rows(a), 6);
    /* merging different class counts is refused */
    mlk_metrics *c = mlk_metrics_new(3, 0);
    assert_int_equal(mlk_metrics_merge(a, c, err, sizeof err), MLOPS_EINVAL);
    assert_null(mlk_metrics_new(1, 0));
    assert_null(mlk_metrics_new(2, 0.7));
    mlk_metrics_destroy(&a);
    mlk_metrics_destroy(&b);
    mlk_metrics_destroy(&c);
    mlk_metrics_destroy(&c);
}

static void test_garbage(void **state)
{
    (void)state;
    const int32_t yt[5] = {0, 1, 1, 0, 1};
    const double pr[10] = {.7, .3, .2, .8, .5, .5, .5, .5, .1, .9};
    char err[160];
    mlk_metrics *m = mlk_metrics_new(2, 0), *back = NULL;
    assert_int_equal(mlk_metrics_add(m, 5, yt, NULL, pr, err, sizeof err), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(mlk_metrics_encode(m, &buf, &len), 0);
    for (size_t l = 0; l < len; l++) {
        assert_int_equal(mlk_metrics_decode(buf, l, &back, err, sizeof err), MLOPS_EPARSE);
        assert_null(back);
    }
    uint8_t *cp = malloc(len);
    assert_non_null(cp);
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(cp, buf, len);
            cp[i] ^= (uint8_t)(1u << bit);
            int rc = mlk_metrics_decode(cp, len, &back, err, sizeof err);
            if (rc == 0) {
                mlk_metrics_result r;
                (void)mlk_metrics_compute(back, &r, err, sizeof err);
                mlk_metrics_destroy(&back);
            } else {
                assert_int_equal(rc, MLOPS_EPARSE);
            }
        }
    srand(11);
    for (int it = 0; it < 2000; it++) {
        size_t l = (size_t)(rand() % (int)len) + 1;
        for (size_t i = 0; i < l; i++) cp[i] = (uint8_t)rand();
        if (it % 2) memcpy(cp, buf, l < 16 ? l : 16);
        int rc = mlk_metrics_decode(cp, l, &back, err, sizeof err);
        if (rc == 0) mlk_metrics_destroy(&back);
        else assert_int_equal(rc, MLOPS_EPARSE);
    }
    free(cp);
    free(buf);
    mlk_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary),   cmocka_unit_test(test_multiclass_macro),
        cmocka_unit_test(test_merge_equals_single), cmocka_unit_test(test_edges),
        cmocka_unit_test(test_garbage), cmocka_unit_test(test_sorted_runs_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
