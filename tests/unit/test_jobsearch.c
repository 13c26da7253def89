/* test_jobsearch.c: the trials of a search: ParameterGrid's order (keys
 * sorted, the last fastest), random draws within their ranges and
 * repeatable for a seed, integer keys rounded, applying a trial to the
 * spec, and the canonical YAML of cv and search reading back the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "jobsearch.h"
#include "jobspec.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *BASE = "name: s\n"
                          "input: d.csv\n"
                          "columns: {label: y, numeric: [a]}\n"
                          "train: {epochs: 5, alpha: 0.0001}\n";

static mlops_jobspec_t *parse(const char *set1, const char *set2)
{
    const char *sets[2] = {set1, set2};
    char err[512];
    mlops_jobspec_t *s = NULL;
    int rc = mlops_jobspec_parse_with_sets(BASE, strlen(BASE), "job.yaml", sets, set2 ? 2 : 1, &s,
                                           err, sizeof err);
    if (rc) fail_msg("%s", err);
    return s;
}

static void test_grid_order(void **state)
{
    (void)state;
    /* written epochs first: the trials still go as sorted keys, alpha slowest */
    mlops_jobspec_t *s = parse("search={grid: {train.epochs: [5, 20], train.alpha: [1e-6, 1e-5, 1e-4]}}", NULL);
    assert_int_equal(s->search.nparams, 2);
    assert_string_equal(s->search.params[0].key, "train.alpha");
    assert_int_equal(mlops_search_count(s), 6);
    double *v;
    size_t n;
    assert_int_equal(mlops_search_trials(s, &v, &n), 0);
    assert_int_equal(n, 6);
    const double want[12] = {1e-6, 5, 1e-6, 20, 1e-5, 5, 1e-5, 20, 1e-4, 5, 1e-4, 20};
    for (int i = 0; i < 12; i++) assert_true(v[i] == want[i]);
    mlops_search_apply(s, v + 2 * 3);
    assert_true(s->train.alpha == 1e-5 && s->train.epochs == 20);
    assert_true(s->train.has_alpha); /* the refit trains with the trial's alpha, not 1/(C n) */
    free(v);
    char *y;
    assert_int_equal(mlops_jobspec_to_yaml(s, &y, NULL), 0);
    assert_non_null(strstr(y, "search: {grid: {\"train.alpha\": [1e-06, 1e-05, 0.0001], \"train.epochs\": [5, 20]}"));
    mlops_jobspec_t *back = NULL;
    char err[256], *y2;
    assert_int_equal(mlops_jobspec_parse(y, strlen(y), "canon", &back, err, sizeof err), 0);
    assert_int_equal(mlops_jobspec_to_yaml(back, &y2, NULL), 0);
    /* the applied trial changed train; the canonical text of a fresh parse is the written one */
    mlops_jobspec_t *fresh = parse("search={grid: {train.epochs: [5, 20], train.alpha: [1e-6, 1e-5, 1e-4]}}", NULL);
    char *y3;
    assert_int_equal(mlops_jobspec_to_yaml(fresh, &y3, NULL), 0);
    mlops_jobspec_t *b3 = NULL;
    char *y4;
    assert_int_equal(mlops_jobspec_parse(y3, strlen(y3), "canon", &b3, err, sizeof err), 0);
    assert_int_equal(mlops_jobspec_to_yaml(b3, &y4, NULL), 0);
    assert_string_equal(y3, y4);
    free(y);
    free(y2);
    free(y3);
    free(y4);
    mlops_jobspec_destroy(&back);
    mlops_jobspec_destroy(&b3);
    mlops_jobspec_destroy(&fresh);
    mlops_jobspec_destroy(&s);
}

static void test_random(void **state)
{
    (void)state;
    mlops_jobspec_t *s = parse("search={grid: {train.alpha: {loguniform: [1e-7, 1e-3]}, train.epochs: "
                               "{uniform: [1, 10]}, train.eta0: [0.1, 0.2]}, random: {n: 50, seed: 1}}",
                               NULL);
    assert_int_equal(mlops_search_count(s), 50);
    double *v, *w;
    size_t n, m;
    assert_int_equal(mlops_search_trials(s, &v, &n), 0);
    assert_int_equal(mlops_search_trials(s, &w, &m), 0);
    assert_int_equal(n, 50);
    assert_memory_equal(v, w, n * 3 * sizeof *v);
    int small = 0, low_ep = 0;
    for (size_t t = 0; t < n; t++) {
        double a = v[t * 3], e = v[t * 3 + 1], eta = v[t * 3 + 2];
        assert_true(a >= 1e-7 && a <= 1e-3);
        assert_true(e >= 1 && e <= 10 && e == floor(e));
        assert_true(eta == 0.1 || eta == 0.2);
        small += a < 1e-5; /* log-uniform: half the draws below the geometric middle */
        low_ep += e <= 5;
    }
    assert_true(small > 10 && small < 40 && low_ep > 10 && low_ep < 40);
    free(v);
    free(w);
    mlops_jobspec_destroy(&s);
}

static void test_refused(void **state)
{
    (void)state;
    struct {
        const char *set, *want;
    } bad[] = {
        {"search={grid: {train.shuffle: [1]}}", "'train.shuffle' is not a numeric train key"},
        {"search={grid: {split.seed: [1]}}", "'split.seed' is not a numeric train key"},
        {"search={grid: {train.alpha: []}}", "search.grid.train.alpha: expected at least one value"},
        {"search={grid: {train.alpha: [0]}}", "learning_rate optimal needs alpha > 0"},
        {"search={grid: {train.alpha: {loguniform: [0, 1]}}, random: {n: 3}}", "loguniform needs lo > 0"},
        {"search={grid: {train.alpha: {uniform: [2, 1]}}, random: {n: 3}}", "low end is above its high end"},
        {"search={grid: {train.alpha: [1e-4]}, random: {n: 0}}", "search.random.n: expected an integer in 1..1000000"},
        {"search={metric: auc}", "search: missing required key 'grid'"},
        {"search={grid: {train.alpha: [1e-4]}, random: {n: 2, n: 3}}", "search.random: duplicate key 'n'"},
        {"cv={folds: 1}", "cv.folds: expected an integer in 2..100, got '1'"},
        /* BASE gives alpha: a C searched beside it would be ignored */
        {"search={grid: {train.C: [1, 2]}}", "search.grid.train.C: cannot be combined with train.alpha"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *sets[1] = {bad[i].set};
        char err[512] = "";
        mlops_jobspec_t *s = NULL;
        assert_int_equal(mlops_jobspec_parse_with_sets(BASE, strlen(BASE), "job.yaml", sets, 1, &s, err,
                                                       sizeof err),
                         MLOPS_EINVAL);
        if (!strstr(err, bad[i].want)) fail_msg("%s: got '%s', want '%s'", bad[i].set, err, bad[i].want);
    }
    /* a job that gives C (or neither) */
    static const char *BY_C = "name: s\n"
                              "input: d.csv\n"
                              "columns: {label: y, numeric: [a]}\n"
                              "train: {epochs: 5, C: 2}\n";
    struct {
        const char *set, *want;
    } bad_c[] = {
        {"search={grid: {train.alpha: [1e-4]}}", "search.grid.train.alpha: cannot be combined with train.C"},
        {"train.C=1", NULL},
        {"search={grid: {train.C: [1, 2], train.alpha: [1e-4]}}",
         "search.grid.train.C: cannot be combined with search.grid.train.alpha"},
    };
    for (size_t i = 0; i < sizeof bad_c / sizeof bad_c[0]; i++) {
        const char *sets[1] = {bad_c[i].set};
        char err[512] = "";
        mlops_jobspec_t *s = NULL;
        int rc = mlops_jobspec_parse_with_sets(BY_C, strlen(BY_C), "job.yaml", sets, 1, &s, err, sizeof err);
        if (!bad_c[i].want) { /* C searched with C given: the grid's values win, as for any key */
            assert_int_equal(rc, 0);
            mlops_jobspec_destroy(&s);
            continue;
        }
        assert_int_equal(rc, MLOPS_EINVAL);
        if (!strstr(err, bad_c[i].want)) fail_msg("%s: got '%s', want '%s'", bad_c[i].set, err, bad_c[i].want);
    }
    /* neither given: C and alpha in one grid are refused too */
    const char *sets[1] = {"search={grid: {train.C: [1, 2], train.alpha: [1e-4]}}"};
    static const char *NEITHER = "name: s\ninput: d.csv\ncolumns: {label: y, numeric: [a]}\ntrain: {epochs: 5}\n";
    char err[512] = "";
    mlops_jobspec_t *s = NULL;
    assert_int_equal(mlops_jobspec_parse_with_sets(NEITHER, strlen(NEITHER), "job.yaml", sets, 1, &s, err, sizeof err),
                     MLOPS_EINVAL);
    if (!strstr(err, "search.grid.train.C: cannot be combined with search.grid.train.alpha"))
        fail_msg("C and alpha in one grid: got '%s'", err);
}

static void test_no_search(void **state)
{
    (void)state;
    mlops_jobspec_t *s = parse("cv={folds: 4, method: hash}", NULL);
    assert_int_equal(s->cv.folds, 4);
    assert_int_equal(s->cv.method, MLOPS_CV_HASH);
    double *v;
    size_t n;
    assert_int_equal(mlops_search_count(s), 1);
    assert_int_equal(mlops_search_trials(s, &v, &n), 0);
    assert_int_equal(n, 1);
    free(v);
    mlops_jobspec_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_order),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_no_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
