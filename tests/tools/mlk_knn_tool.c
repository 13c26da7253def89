/* mlk_knn_tool: drives the k-NN, IDX and recommendation kernels for the
 * reference tests (tests/ref/test_knn_ref.py, test_recommend_ref.py) and
 * the benchmark (bench/bench_knn.py). Raw little-endian binary files in
 * and out; results as key=value lines on stdout.
 *
 *   mlk_knn_tool sgemm --n 4096 [--reps 3]
 *   mlk_knn_tool search --index F --nx N --queries F --nq N --d D --k K
 *        [--shards S] [--labels F] [--out-ids F] [--out-sims F]
 *        [--pred-uniform F] [--pred-distance F] [--tile-q T] [--tile-x T]
 *   mlk_knn_tool fmnist --dir D --k K [--nq N] [--nx N] [--shards S]
 *        [--tile-q T] [--tile-x T] [--pred-uniform F] [--pred-distance F]
 *   mlk_knn_tool recommend --interactions F --n-inter N --nusers U
 *        --nitems I --k K --top N [--values binary|count] [--shards S]
 *        [--out-recs F] [--out-pop F] [--out-nbr-ids F] [--out-heldout F]
 *
 * Files: float32 rows, int32 labels / ids, int32 (user, item) pairs. */
#include "blasenv.h"
#include "err.h"
#include "idx.h"
#include "knn.h"
#include "recommend.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

static int g_argc;
static char **g_argv;

static const char *opt(const char *name, const char *def)
{
    for (int i = 2; i + 1 < g_argc; i++)
        if (strcmp(g_argv[i], name) == 0)
            return g_argv[i + 1];
    return def;
}

static size_t opt_z(const char *name, size_t def)
{
    const char *v = opt(name, NULL);
    return v ? (size_t)strtoull(v, NULL, 10) : def;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process (less sensitive than wall time to other
 * load on a shared machine; reported beside it). */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void *read_file(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return NULL;
    }
    void *b = malloc(bytes ? bytes : 1);
    if (b && fread(b, 1, bytes, f) != bytes) {
        fprintf(stderr, "%s: expected %zu bytes\n", path, bytes);
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static int write_file(const char *path, const void *b, size_t bytes)
{
    if (!path)
        return 0;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, bytes, f) != bytes) {
        fprintf(stderr, "%s: cannot write\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int cmd_sgemm(void)
{
    size_t n = opt_z("--n", 4096), reps = opt_z("--reps", 3);
    float *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b),
          *c = malloc(n * n * sizeof *c);
    if (!a || !b || !c)
        return 1;
    for (size_t i = 0; i < n * n; i++) {
        a[i] = (float)((i * 7919) % 1000) / 1000.0f;
        b[i] = (float)((i * 104729) % 1000) / 1000.0f;
    }
    double best = 1e30;
    for (size_t r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0f, a,
                    (int)n, b, (int)n, 0.0f, c, (int)n);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("corename=%s\nsgemm_n=%zu\nsgemm_seconds=%.6f\nsgemm_gflops=%.3f\n",
           mlops_blas_corename(), n, best, 2.0 * n * n * n / best / 1e9);
    free(a);
    free(b);
    free(c);
    return 0;
}

/* Searches q against x split into `shards` contiguous index shards, each
 * into its own list, then merges (as the cluster does). */
static int sharded_search(const float *q, size_t nq, const float *x, size_t nx, size_t d,
                          size_t k, size_t shards, const mlk_knn_opts *o, mlk_topk **out)
{
    char err[256] = "";
    mlk_topk *all = mlk_topk_new(nq, k);
    if (!all)
        return -1;
    for (size_t s = 0; s < shards; s++) {
        size_t b, c;
        mlk_idx_shard_range(nx, shards, s, &b, &c);
        mlk_topk *part = shards == 1 ? all : mlk_topk_new(nq, k);
        if (!part || mlk_knn_search(q, nq, x + b * d, c, d, (int64_t)b, NULL, part, o, err,
                                    sizeof err) != 0) {
            fprintf(stderr, "search: %s\n", err);
            return -1;
        }
        if (part != all) {
            mlk_topk_merge(all, part);
            mlk_topk_destroy(&part);
        }
    }
    *out = all;
    return 0;
}

static int classify_out(const mlk_topk *t, const int32_t *labels, size_t nx,
                        const int32_t *truth)
{
    const char *files[2] = {opt("--pred-uniform", NULL), opt("--pred-distance", NULL)};
    const char *names[2] = {"uniform", "distance"};
    int32_t *pred = malloc((t->nq ? t->nq : 1) * sizeof *pred);
    char err[256] = "";
    for (int w = 0; w < 2 && pred; w++) {
        if (mlk_knn_classify(t, labels, nx, (mlk_knn_weights)w, pred, err, sizeof err) != 0) {
            fprintf(stderr, "classify: %s\n", err);
            free(pred);
            return -1;
        }
        if (truth)
            printf("accuracy_%s=%.6f\n", names[w], mlk_accuracy(pred, truth, t->nq));
        if (write_file(files[w], pred, t->nq * sizeof *pred))
            return -1;
    }
    free(pred);
    return 0;
}

static int cmd_search(void)
{
    size_t nx = opt_z("--nx", 0), nq = opt_z("--nq", 0), d = opt_z("--d", 0),
           k = opt_z("--k", 10), shards = opt_z("--shards", 1);
    const char *fi = opt("--index", NULL), *fq = opt("--queries", NULL);
    if (!fi || !fq || !d || !shards) {
        fprintf(stderr, "search: need --index --queries --d\n");
        return 2;
    }
    float *x = read_file(fi, nx * d * sizeof(float)), *q = read_file(fq, nq * d * sizeof(float));
    if (!x || !q)
        return 1;
    mlk_knn_opts o = {opt_z("--tile-q", 0), opt_z("--tile-x", 0)};
    double t0 = now();
    mlk_knn_normalize(x, nx, d);
    mlk_knn_normalize(q, nq, d);
    mlk_topk *t = NULL;
    if (sharded_search(q, nq, x, nx, d, k, shards, &o, &t))
        return 1;
    printf("search_seconds=%.6f\n", now() - t0);
    int rc = write_file(opt("--out-ids", NULL), t->id, nq * k * sizeof *t->id) ||
             write_file(opt("--out-sims", NULL), t->sim, nq * k * sizeof *t->sim);
    const char *fl = opt("--labels", NULL);
    if (!rc && fl) {
        int32_t *labels = read_file(fl, nx * sizeof(int32_t));
        rc = !labels || classify_out(t, labels, nx, NULL);
        free(labels);
    }
    mlk_topk_destroy(&t);
    free(x);
    free(q);
    return rc ? 1 : 0;
}

static int cmd_fmnist(void)
{
    const char *dir = opt("--dir", "/usr/share/datasets/fashion-mnist");
    size_t k = opt_z("--k", 10), shards = opt_z("--shards", 1);
    char p[4][512];
    const char *names[4] = {"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                            "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++)
        snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    char err[512] = "";
    float *x = NULL, *q = NULL;
    int32_t *ly = NULL, *ty = NULL;
    size_t nx, nq, nlx, nlq;
    mlk_idx_header h;
    double t0 = now();
    if (mlk_idx_read_f32(p[0], 0, opt_z("--nx", SIZE_MAX), &x, &nx, &h, err, sizeof err) ||
        mlk_idx_read_f32(p[1], 0, opt_z("--nq", SIZE_MAX), &q, &nq, NULL, err, sizeof err) ||
        mlk_idx_read_labels(p[2], 0, nx, &ly, &nlx, err, sizeof err) ||
        mlk_idx_read_labels(p[3], 0, nq, &ty, &nlq, err, sizeof err)) {
        fprintf(stderr, "fmnist: %s\n", err);
        return 1;
    }
    size_t d = h.row_len;
    printf("load_seconds=%.6f\nnx=%zu\nnq=%zu\nd=%zu\ncorename=%s\n", now() - t0, nx, nq, d,
           mlops_blas_corename());
    mlk_knn_opts o = {opt_z("--tile-q", 0), opt_z("--tile-x", 0)};
    t0 = now();
    double c0 = cpu_now();
    mlk_knn_normalize(x, nx, d);
    mlk_knn_normalize(q, nq, d);
    mlk_topk *t = NULL;
    if (sharded_search(q, nq, x, nx, d, k, shards, &o, &t))
        return 1;
    double ts = now() - t0, tc = cpu_now() - c0;
    printf("search_seconds=%.6f\nsearch_cpu_seconds=%.6f\nknn_gflops=%.3f\nknn_cpu_gflops=%.3f\n",
           ts, tc, 2.0 * nq * nx * d / ts / 1e9, 2.0 * nq * nx * d / tc / 1e9);
    int rc = classify_out(t, ly, nx, ty);
    mlk_topk_destroy(&t);
    free(x);
    free(q);
    free(ly);
    free(ty);
    return rc ? 1 : 0;
}

static void print_metrics(const char *name, const mlk_rec_metrics *m, size_t topn)
{
    printf("%s_users=%zu\n%s_hit@%zu=%.10f\n%s_precision@%zu=%.10f\n%s_recall@%zu=%.10f\n"
           "%s_ndcg@%zu=%.10f\n",
           name, m->nusers, name, topn, m->hit, name, topn, m->precision, name, topn, m->recall,
           name, topn, m->ndcg);
}

static int cmd_recommend(void)
{
    size_t n = opt_z("--n-inter", 0), nu = opt_z("--nusers", 0), ni = opt_z("--nitems", 0),
           k = opt_z("--k", 20), topn = opt_z("--top", 10), shards = opt_z("--shards", 1);
    const char *fi = opt("--interactions", NULL), *vals = opt("--values", "binary");
    if (!fi || !shards || !topn || !k) {
        fprintf(stderr, "recommend: need --interactions, k, top, shards >= 1\n");
        return 2;
    }
    int32_t *pairs = read_file(fi, n * 2 * sizeof(int32_t));
    int32_t *user = malloc((n ? n : 1) * sizeof *user), *item = malloc((n ? n : 1) * sizeof *item);
    if (!pairs || !user || !item)
        return 1;
    for (size_t i = 0; i < n; i++) {
        user[i] = pairs[2 * i];
        item[i] = pairs[2 * i + 1];
    }
    char err[256] = "";
    double t0 = now();
    mlk_rec_data *d = mlk_rec_split(user, item, n, nu, ni,
                                    strcmp(vals, "count") == 0 ? MLK_REC_COUNT : MLK_REC_BINARY,
                                    err, sizeof err);
    if (!d) {
        fprintf(stderr, "recommend: %s\n", err);
        return 1;
    }
    /* every user is a query; the index is split into user-range shards */
    mlk_topk *all = mlk_topk_new(nu, k);
    int32_t *recs = malloc((nu ? nu : 1) * topn * sizeof *recs);
    int32_t *pop = malloc((nu ? nu : 1) * topn * sizeof *pop);
    if (!all || !recs || !pop)
        return 1;
    for (size_t s = 0; s < shards; s++) {
        size_t b, c;
        mlk_idx_shard_range(nu, shards, s, &b, &c);
        mlk_topk *part = mlk_topk_new(nu, k);
        if (!part || mlk_rec_neighbors(d, 0, nu, b, b + c, part, err, sizeof err) ||
            mlk_topk_merge(all, part)) {
            fprintf(stderr, "recommend: %s\n", err);
            return 1;
        }
        mlk_topk_destroy(&part);
    }
    double tn = now() - t0;
    if (mlk_rec_recommend(d, all, 0, topn, recs, err, sizeof err) ||
        mlk_rec_popular(d, 0, nu, topn, pop, err, sizeof err)) {
        fprintf(stderr, "recommend: %s\n", err);
        return 1;
    }
    printf("neighbors_seconds=%.6f\ntotal_seconds=%.6f\n", tn, now() - t0);
    mlk_rec_metrics m;
    mlk_rec_evaluate(recs, nu, topn, d->heldout, &m);
    print_metrics("knn", &m, topn);
    mlk_rec_evaluate(pop, nu, topn, d->heldout, &m);
    print_metrics("pop", &m, topn);
    int rc = write_file(opt("--out-recs", NULL), recs, nu * topn * sizeof *recs) ||
             write_file(opt("--out-pop", NULL), pop, nu * topn * sizeof *pop) ||
             write_file(opt("--out-nbr-ids", NULL), all->id, nu * k * sizeof *all->id) ||
             write_file(opt("--out-heldout", NULL), d->heldout, nu * sizeof *d->heldout);
    mlk_topk_destroy(&all);
    mlk_rec_data_destroy(&d);
    free(recs);
    free(pop);
    free(pairs);
    free(user);
    free(item);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    int brc = mlops_blas_ensure(argc, argv);
    if (brc)
        fprintf(stderr, "warning: could not select the OpenBLAS kernel: %s\n",
                mlops_strerror(brc));
    g_argc = argc;
    g_argv = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: %s sgemm|search|fmnist|recommend [options]\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "sgemm") == 0)
        return cmd_sgemm();
    if (strcmp(argv[1], "search") == 0)
        return cmd_search();
    if (strcmp(argv[1], "fmnist") == 0)
        return cmd_fmnist();
    if (strcmp(argv[1], "recommend") == 0)
        return cmd_recommend();
    fprintf(stderr, "unknown command %s\n", argv[1]);
    return 2;
}
