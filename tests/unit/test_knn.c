/* test_knn.c: top-k order and ties, shard merge == single search, zero
 * vectors, classification votes (uniform, distance, zero distance), and
 * the OpenBLAS kernel selection of blasenv (main() calls
 * mlops_blas_ensure() first, as the worker does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blasenv.h"
#include "err.h"
#include "idx.h"
#include "knn.h"

static char **g_argv;
static char *g_coretype_at_start; /* OPENBLAS_CORETYPE before any re-exec */

static void test_topk_ties(void **state)
{
    (void)state;
    mlk_topk *t = mlk_topk_new(1, 3);
    assert_non_null(t);
    assert_int_equal(mlk_topk_count(t, 0), 0);
    /* equal similarities arrive in arbitrary id order */
    assert_int_equal(mlk_topk_push(t, 0, 0.5, 7), 1);
    assert_int_equal(mlk_topk_push(t, 0, 0.5, 3), 1);
    assert_int_equal(mlk_topk_push(t, 0, 0.9, 9), 1);
    assert_int_equal(mlk_topk_count(t, 0), 3);
    assert_int_equal(mlk_topk_push(t, 0, 0.5, 5), 1);  /* beats id 7 */
    assert_int_equal(mlk_topk_push(t, 0, 0.5, 6), 0);  /* loses to 5 */
    assert_int_equal(mlk_topk_push(t, 0, 0.1, 0), 0);
    assert_int_equal(mlk_topk_push(t, 0, NAN, 1), 0);
    assert_int_equal(mlk_topk_push(t, 0, 0.9, -2), 0); /* ids are >= 0 */
    int64_t want[3] = {9, 3, 5};
    for (int j = 0; j < 3; j++)
        assert_int_equal(t->id[j], want[j]);
    assert_true(t->sim[0] == 0.9 && t->sim[2] == 0.5);
    mlk_topk_destroy(&t);
    assert_null(t);
    mlk_topk_destroy(&t); /* twice is fine */
    assert_null(mlk_topk_new(4, 0));
}

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) % 2001) / 1000.0f - 1.0f;
}

/* A brute-force reference: all similarities in double, sorted by rule. */
static void brute(const float *q, size_t nq, const float *x, size_t nx, size_t d,
                  const int64_t *excl, mlk_topk *out)
{
    mlk_topk_clear(out);
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < nx; j++) {
            if (excl && excl[i] == (int64_t)j)
                continue;
            float s = 0.0f; /* float like sgemm; quantised data makes it exact */
            for (size_t u = 0; u < d; u++)
                s += q[i * d + u] * x[j * d + u];
            mlk_topk_push(out, i, s, (int64_t)j);
        }
}

/* Data on a coarse grid (multiples of 1/8, d small) so that every dot
 * product is exact in float whatever the summation order, and many
 * similarities tie exactly. No normalisation: raw inner products. */
static void grid_data(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((int)(fabsf(frand(&seed)) * 4.0f)) / 8.0f;
}

static void test_search_matches_brute_and_shards(void **state)
{
    (void)state;
    size_t nq = 37, nx = 301, d = 5, k = 7;
    float *q = malloc(nq * d * sizeof *q), *x = malloc(nx * d * sizeof *x);
    grid_data(q, nq * d, 1);
    grid_data(x, nx * d, 2);
    int64_t *excl = malloc(nq * sizeof *excl);
    for (size_t i = 0; i < nq; i++)
        excl[i] = (int64_t)(i * 5);
    char err[256];
    mlk_topk *ref = mlk_topk_new(nq, k), *one = mlk_topk_new(nq, k), *all = mlk_topk_new(nq, k);
    for (int use_excl = 0; use_excl <= 1; use_excl++) {
        const int64_t *e = use_excl ? excl : NULL;
        brute(q, nq, x, nx, d, e, ref);
        /* small tiles force many tile boundaries */
        mlk_knn_opts o = {4, 16};
        mlk_topk_clear(one);
        assert_int_equal(mlk_knn_search(q, nq, x, nx, d, 0, e, one, &o, err, sizeof err), 0);
        assert_memory_equal(one->id, ref->id, nq * k * sizeof(int64_t));
        assert_memory_equal(one->sim, ref->sim, nq * k * sizeof(double));
        /* shards searched in reverse order, each with global ids, merged */
        mlk_topk_clear(all);
        size_t bounds[] = {0, 50, 51, 180, 301};
        for (int s = 3; s >= 0; s--) {
            mlk_topk *part = mlk_topk_new(nq, k);
            size_t b = bounds[s], c = bounds[s + 1] - b;
            assert_int_equal(mlk_knn_search(q, nq, x + b * d, c, d, (int64_t)b, e, part, NULL,
                                            err, sizeof err),
                             0);
            assert_int_equal(mlk_topk_merge(all, part), 0);
            mlk_topk_destroy(&part);
        }
        assert_memory_equal(all->id, ref->id, nq * k * sizeof(int64_t));
        if (use_excl)
            for (size_t i = 0; i < nq; i++)
                for (size_t j = 0; j < k; j++)
                    assert_true(all->id[i * k + j] != excl[i]);
    }
    /* ties really occurred (otherwise the test proves little) */
    int ties = 0;
    for (size_t i = 0; i < nq * k - 1; i++)
        ties += (i % k != k - 1) && ref->sim[i] == ref->sim[i + 1];
    assert_true(ties > 10);
    mlk_topk *bad = mlk_topk_new(nq + 1, k);
    assert_int_equal(mlk_topk_merge(all, bad), MLOPS_EINVAL);
    assert_int_equal(mlk_knn_search(q, nq, x, nx, d, 0, NULL, bad, NULL, err, sizeof err),
                     MLOPS_EINVAL);
    mlk_topk_destroy(&bad);
    mlk_topk_destroy(&ref);
    mlk_topk_destroy(&one);
    mlk_topk_destroy(&all);
    free(q);
    free(x);
    free(excl);
}

static void test_fewer_rows_than_k(void **state)
{
    (void)state;
    float x[] = {1, 0, 0, 1}, q[] = {1, 1};
    mlk_topk *t = mlk_topk_new(1, 5);
    char err[128];
    mlk_knn_normalize(q, 1, 2);
    assert_int_equal(mlk_knn_search(q, 1, x, 2, 2, 10, NULL, t, NULL, err, sizeof err), 0);
    assert_int_equal(mlk_topk_count(t, 0), 2);
    assert_int_equal(t->id[0], 10); /* equal similarity: lower id first */
    assert_int_equal(t->id[1], 11);
    assert_int_equal(t->id[2], -1);
    mlk_topk_destroy(&t);
}

static void test_zero_vectors(void **state)
{
    (void)state;
    /* a zero row stays zero: similarity 0 to everything */
    float x[] = {3, 4, 0, 0, -3, -4};
    mlk_knn_normalize(x, 3, 2);
    assert_true(fabsf(x[0] - 0.6f) < 1e-7f && fabsf(x[1] - 0.8f) < 1e-7f);
    assert_true(x[2] == 0.0f && x[3] == 0.0f);
    float q[] = {0, 0};
    mlk_topk *t = mlk_topk_new(1, 3);
    char err[128];
    assert_int_equal(mlk_knn_search(q, 1, x, 3, 2, 0, NULL, t, NULL, err, sizeof err), 0);
    for (int j = 0; j < 3; j++) {
        assert_true(t->sim[j] == 0.0);
        assert_int_equal(t->id[j], j);
    }
    /* a non-zero query ranks the zero row between +1 and -1 */
    float q2[] = {6, 8};
    mlk_knn_normalize(q2, 1, 2);
    mlk_topk_clear(t);
    assert_int_equal(mlk_knn_search(q2, 1, x, 3, 2, 0, NULL, t, NULL, err, sizeof err), 0);
    assert_int_equal(t->id[0], 0);
    assert_int_equal(t->id[1], 1);
    assert_true(t->sim[1] == 0.0);
    assert_int_equal(t->id[2], 2);
    mlk_topk_destroy(&t);
}

static void test_classify(void **state)
{
    (void)state;
    int32_t labels[] = {5, 2, 2, 5, 9, 9, 7};
    mlk_topk *t = mlk_topk_new(3, 4);
    /* query 0: labels 5,2,2,5 -> tie 2:2 goes to the smaller label 2 */
    mlk_topk_push(t, 0, 0.9, 0);
    mlk_topk_push(t, 0, 0.5, 1);
    mlk_topk_push(t, 0, 0.4, 2);
    mlk_topk_push(t, 0, 0.8, 3);
    /* query 1: labels 9,9,5,7; distance: 5 at d=0.05 (w 20) beats 9+9 */
    mlk_topk_push(t, 1, 0.5, 4);
    mlk_topk_push(t, 1, 0.5, 5);
    mlk_topk_push(t, 1, 0.95, 0);
    mlk_topk_push(t, 1, 0.1, 6);
    /* query 2: an exact match (sim 1 -> distance 0) decides alone */
    mlk_topk_push(t, 2, 1.0, 6);
    mlk_topk_push(t, 2, 0.99, 4);
    mlk_topk_push(t, 2, 0.99, 5);
    mlk_topk_push(t, 2, 0.98, 1);
    int32_t pred[3];
    char err[128];
    assert_int_equal(mlk_knn_classify(t, labels, 7, MLK_KNN_UNIFORM, pred, err, sizeof err), 0);
    assert_int_equal(pred[0], 2);
    assert_int_equal(pred[1], 9);
    assert_int_equal(pred[2], 9); /* labels 7, 9, 9, 2 */
    assert_int_equal(mlk_knn_classify(t, labels, 7, MLK_KNN_DISTANCE, pred, err, sizeof err), 0);
    assert_int_equal(pred[0], 5); /* 1/0.1 + 1/0.2 > 1/0.5 + 1/0.6 */
    assert_int_equal(pred[1], 5); /* 1/0.05 > 1/0.5 + 1/0.5 */
    assert_int_equal(pred[2], 7); /* zero distance: only the exact match votes */
    /* a label array too short for the ids is an error, not a crash */
    assert_int_equal(mlk_knn_classify(t, labels, 3, MLK_KNN_UNIFORM, pred, err, sizeof err),
                     MLOPS_EINVAL);
    assert_non_null(strstr(err, "no label"));
    mlk_topk *empty = mlk_topk_new(1, 2);
    assert_int_equal(mlk_knn_classify(empty, labels, 7, MLK_KNN_UNIFORM, pred, err, sizeof err),
                     MLOPS_EINVAL);
    mlk_topk_destroy(&empty);
    mlk_topk_destroy(&t);
    int32_t a[] = {1, 2, 3, 4}, b[] = {1, 0, 3, 0};
    assert_true(mlk_accuracy(a, b, 4) == 0.5);
    assert_true(mlk_accuracy(a, b, 0) == 0.0);
}

/* Runs this program again as "--print-corename" with the environment
 * changed as given (value NULL = unset) and returns its one output line. */
static void run_child(const char *coretype, const char *marker, char *line, size_t n)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        if (coretype)
            setenv("OPENBLAS_CORETYPE", coretype, 1);
        else
            unsetenv("OPENBLAS_CORETYPE");
        if (marker)
            setenv(MLOPS_BLAS_REEXEC_ENV, marker, 1);
        else
            unsetenv(MLOPS_BLAS_REEXEC_ENV);
        unsetenv("OPENBLAS_NUM_THREADS");
        char *args[] = {g_argv[0], "--print-corename", NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], line, n - 1);
    close(fd[0]);
    line[got > 0 ? got : 0] = 0;
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_blas_kernel_selection(void **state)
{
    (void)state;
    const char *core = mlops_blas_corename();
    const char *mark = getenv(MLOPS_BLAS_REEXEC_ENV);
    if (mark && *mark) {
        /* this process is the re-exec made by main(): SkylakeX is active */
        assert_true(mlops_blas_cpu_has_avx512f());
        assert_string_equal(core, "SkylakeX");
    } else if (g_coretype_at_start && *g_coretype_at_start) {
        /* chosen by the environment: respected, no re-exec */
        assert_true(strcasecmp(core, g_coretype_at_start) == 0);
    } else {
        assert_false(mlops_blas_cpu_has_avx512f()); /* else we would have re-executed */
    }
    assert_string_equal(getenv("OPENBLAS_NUM_THREADS") ? "set" : "unset", "set");

    char line[256];
    /* an existing OPENBLAS_CORETYPE is respected; threads default to 1 */
    run_child("Haswell", NULL, line, sizeof line);
    assert_string_equal(line, "Haswell Haswell 1 0\n");
    /* the marker stops a second re-exec even with the variable unset */
    run_child(NULL, "1", line, sizeof line);
    assert_non_null(strstr(line, " - 1 0\n"));
    /* nothing set: on an AVX-512 CPU the child re-executes itself */
    run_child(NULL, NULL, line, sizeof line);
    if (mlops_blas_cpu_has_avx512f())
        assert_string_equal(line, "SkylakeX SkylakeX 1 0\n");
    else
        assert_non_null(strstr(line, " - 1 0\n"));
}

int main(int argc, char **argv)
{
    /* a re-exec'd process sees the value ensure() set, with the marker */
    g_coretype_at_start = getenv("OPENBLAS_CORETYPE");
    int rc = mlops_blas_ensure(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "--print-corename") == 0) {
        const char *ct = getenv("OPENBLAS_CORETYPE"), *nt = getenv("OPENBLAS_NUM_THREADS");
        printf("%s %s %s %d\n", mlops_blas_corename(), ct ? ct : "-", nt ? nt : "-", rc);
        return 0;
    }
    if (rc)
        fprintf(stderr, "mlops_blas_ensure: %s\n", mlops_strerror(rc));
    g_argv = argv;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk_ties),
        cmocka_unit_test(test_search_matches_brute_and_shards),
        cmocka_unit_test(test_fewer_rows_than_k),
        cmocka_unit_test(test_zero_vectors),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_blas_kernel_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
