/* mlk_lbfgs_tool: drives the L-BFGS solver (lbfgs.h) on the logistic
 * objective of logistic.h over one data file, for the reference test
 * (tests/ref/test_lbfgs_ref.py, which compares with scipy and
 * scikit-learn) and bench/bench_lbfgs.py. The objective is the one the
 * lbfgs train stage minimises: sum logloss + ||w||^2 / (2 C), intercepts
 * free, over every input (no active-set compression: keep n_features
 * small).
 *
 * Data file: the "MLKD" format of mlk_sgd_tool.c.
 * Usage: mlk_lbfgs_tool --train FILE [--C C] [--tol T] [--ftol F] [--max-iter N] [--coef-out FILE]
 * (--ftol: the relative-decrease test, default scipy's 2.2e-9)
 * Prints "key value" lines: objective (LogisticRegression's form,
 * C sum logloss + ½||w||²), iterations, evaluations, status, seconds.
 * --coef-out writes the parameters as f64: the weights laid out like
 * model.h (input-major), then the intercepts. Exit 0, or 1 with a message. */
#include "err.h"
#include "lbfgs.h"
#include "logistic.h"
#include "model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int rd(FILE *f, void *dst, size_t n, size_t count)
{
    return count == 0 || fread(dst, n, count, f) == count ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *train = NULL, *coef_out = NULL;
    double C = 1.0, tol = 1e-4, ftol = -1;
    unsigned max_iter = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--train") && i + 1 < argc) train = argv[++i];
        else if (!strcmp(argv[i], "--C") && i + 1 < argc) C = atof(argv[++i]);
        else if (!strcmp(argv[i], "--tol") && i + 1 < argc) tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--ftol") && i + 1 < argc) ftol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-iter") && i + 1 < argc) max_iter = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--coef-out") && i + 1 < argc) coef_out = argv[++i];
        else {
            fprintf(stderr, "usage: %s --train FILE [--C C] [--tol T] [--ftol F] [--max-iter N] [--coef-out FILE]\n", argv[0]);
            return 1;
        }
    }
    FILE *f = train ? fopen(train, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", train ? train : "(no --train)");
        return 1;
    }
    char magic[4];
    uint32_t version, K, has_y;
    uint64_t n, nf, nnz, nd;
    if (rd(f, magic, 4, 1) || memcmp(magic, "MLKD", 4) || rd(f, &version, 4, 1) || version != 1 ||
        rd(f, &K, 4, 1) || rd(f, &has_y, 4, 1) || !has_y || rd(f, &n, 8, 1) || rd(f, &nf, 8, 1) ||
        rd(f, &nnz, 8, 1) || rd(f, &nd, 8, 1) || n > (1u << 30) || nnz > (1ull << 32) ||
        nd > (1u << 20) || nf > (1u << 24)) {
        fprintf(stderr, "%s: bad header\n", train);
        fclose(f);
        return 1;
    }
    mlk_csr X;
    memset(&X, 0, sizeof X);
    X.nrows = n;
    X.ncols = nf;
    X.indptr = malloc((n + 1) * 8);
    X.indices = malloc(nnz * 4 + 4);
    X.data = malloc(nnz * 8 + 8);
    double *dense = malloc(n * nd * 8 + 8);
    int32_t *y = malloc(n * 4 + 4);
    int bad = !X.indptr || !X.indices || !X.data || !dense || !y;
    if (!bad && nf)
        bad = rd(f, X.indptr, 8, n + 1) || rd(f, X.indices, 4, nnz) || rd(f, X.data, 8, nnz);
    if (!bad) bad = rd(f, dense, 8, n * nd) || rd(f, y, 4, n);
    fclose(f);
    mlk_model *m = bad ? NULL : mlk_model_new(K, nf, nd, 0);
    if (!m) {
        fprintf(stderr, "%s: truncated body or out of memory\n", train);
        return 1;
    }
    size_t kv = m->n_vec, nw = (size_t)m->dim * kv, np = nw + kv;
    mlk_sgd_data d = {n, nf ? &X : NULL, dense, nd, y};
    mlk_lbfgs_opts o;
    mlk_lbfgs_opts_default(&o);
    o.gtol = tol;
    o.max_iter = max_iter;
    if (ftol >= 0) o.ftol = ftol;
    double *x0 = calloc(np, 8), *g = malloc(np * 8);
    mlk_lbfgs *s = x0 && g ? mlk_lbfgs_new(np, x0, &o) : NULL;
    if (!s) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    char err[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st;
    do {
        const double *x = mlk_lbfgs_x(s);
        memcpy(m->w, x, nw * 8);
        memcpy(m->b, x + nw, kv * 8);
        memset(g, 0, np * 8);
        double loss = 0, sq = 0;
        if (mlk_logistic_loss_grad(m, &d, &loss, g, g + nw, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        for (size_t j = 0; j < nw; j++) {
            sq += x[j] * x[j];
            g[j] += x[j] / C;
        }
        st = mlk_lbfgs_tell(s, loss + 0.5 * sq / C, g, err, sizeof err);
        if (st < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    } while (st == MLK_LBFGS_RUNNING);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double fb;
    const double *best = mlk_lbfgs_best(s, &fb, NULL);
    printf("objective %.17g\niterations %u\nevaluations %u\nstatus %s\nseconds %.6f\n", C * fb,
           mlk_lbfgs_iter(s), mlk_lbfgs_evals(s), mlk_lbfgs_status_name(st),
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    if (coef_out) {
        FILE *o2 = fopen(coef_out, "wb");
        if (!o2 || fwrite(best, 8, np, o2) != np || fclose(o2) != 0) {
            fprintf(stderr, "%s: cannot write\n", coef_out);
            return 1;
        }
    }
    mlk_lbfgs_destroy(&s);
    mlk_model_destroy(&m);
    free(x0);
    free(g);
    free(X.indptr);
    free(X.indices);
    free(X.data);
    free(dense);
    free(y);
    return 0;
}
