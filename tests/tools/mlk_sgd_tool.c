/* mlk_sgd_tool: drives the SGD kernel (sgd.h, model.h) from files, for
 * the reference test (tests/ref/test_sgd_ref.py) and the benchmark
 * (bench/bench_sgd.py), which write the data with numpy.
 *
 * Data file ("MLKD", host order = little-endian):
 *   char magic[4] = "MLKD", u32 version = 1, u32 n_classes, u32 has_y,
 *   u64 nrows, u64 n_features, u64 nnz, u64 n_dense,
 *   i64 indptr[nrows+1], i32 indices[nnz], f64 data[nnz]   (if n_features)
 *   f64 dense[nrows * n_dense], i32 y[nrows] (if has_y)
 *
 * Usage:
 *   mlk_sgd_tool --train FILE [--test FILE] [--lr optimal|constant|invscaling|adagrad]
 *     [--alpha A] [--eta0 E] [--power-t P] [--decay D] [--epochs N] [--batch B]
 *     [--seed S] [--no-shuffle] [--shards S] [--compact | --packed [--cold]] [--model-out FILE] [--proba-out FILE]
 * With --shards S > 1 each epoch trains S contiguous shards from the current
 * model (one epoch each) and averages them weighted by their row counts:
 * the parameter-mixing step of the distributed pipeline. With --compact
 * (one shard) the model is trained as an epoch task trains it: a fresh
 * compact model (model.h), mlk_sgd_train_compact, then its byte form;
 * train_seconds then covers all three, and the bytes are decoded into a
 * dense model (untimed) for the lines below. With --packed the data are
 * first written as the featurize task writes a shard (fpack.h, untimed:
 * that is the featurize stage's work), then the epoch is timed as an
 * epoch task runs it on such a shard: mlk_fpack_open (validation, record
 * offsets), a copy of the records into huge pages (as an epoch task
 * copies a shard of more than MLK_FPACK_COPY_MIN bytes), a fresh compact
 * model, mlk_sgd_train_packed_own on them (the visits shuffled in the
 * offset list), the byte form. The offsets and the copy are in buffers
 * kept from one epoch to the next, as a worker's executor thread keeps
 * them from task to task (packed_input.c): one untimed epoch (seed + 1)
 * goes first, as the task before; with --cold there is none and
 * train_seconds includes the first touch of those pages.
 * Prints "key value" lines: train_seconds (wall), train_cpu_seconds, epoch_loss, t, nnz, model_bytes,
 * test_accuracy. Exit status 0, or 1 with a message on stderr. */
#include "err.h"
#include "fpack.h"
#include "model.h"
#include "sgd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint32_t n_classes;
    size_t nrows, nf, nd;
    mlk_csr X;
    double *dense;
    int32_t *y;
} dataset;

static void dataset_free(dataset *ds)
{
    free(ds->X.indptr);
    free(ds->X.indices);
    free(ds->X.data);
    free(ds->dense);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

static int read_exact(FILE *f, void *dst, size_t n, size_t count)
{
    if (count == 0) return 0;
    return fread(dst, n, count, f) == count ? 0 : -1;
}

static int load(const char *path, dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    char magic[4];
    uint32_t version, has_y;
    uint64_t nrows, nf, nnz, nd;
    if (read_exact(f, magic, 4, 1) || memcmp(magic, "MLKD", 4) || read_exact(f, &version, 4, 1) ||
        version != 1 || read_exact(f, &ds->n_classes, 4, 1) || read_exact(f, &has_y, 4, 1) ||
        read_exact(f, &nrows, 8, 1) || read_exact(f, &nf, 8, 1) || read_exact(f, &nnz, 8, 1) ||
        read_exact(f, &nd, 8, 1) || nrows > (1u << 30) || nnz > (1ull << 32) || nd > (1u << 20) ||
        nf > (1u << 30)) {
        fprintf(stderr, "%s: bad header\n", path);
        fclose(f);
        return -1;
    }
    ds->nrows = nrows;
    ds->nf = nf;
    ds->nd = nd;
    int bad = 0;
    if (nf) {
        ds->X.nrows = nrows;
        ds->X.ncols = nf;
        ds->X.indptr = malloc((nrows + 1) * 8);
        ds->X.indices = malloc(nnz * 4 + 4);
        ds->X.data = malloc(nnz * 8 + 8);
        ds->X.nnz_cap = nnz;
        bad = !ds->X.indptr || !ds->X.indices || !ds->X.data ||
              read_exact(f, ds->X.indptr, 8, nrows + 1) || read_exact(f, ds->X.indices, 4, nnz) ||
              read_exact(f, ds->X.data, 8, nnz) || ds->X.indptr[0] != 0 ||
              ds->X.indptr[nrows] != (int64_t)nnz;
        for (size_t i = 0; !bad && i < nrows; i++) bad = ds->X.indptr[i + 1] < ds->X.indptr[i];
    }
    if (!bad && nd) {
        ds->dense = malloc(nrows * nd * 8 + 8);
        bad = !ds->dense || read_exact(f, ds->dense, 8, nrows * nd);
    }
    if (!bad && has_y) {
        ds->y = malloc(nrows * 4 + 4);
        bad = !ds->y || read_exact(f, ds->y, 4, nrows);
    }
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: truncated or inconsistent body\n", path);
        dataset_free(ds);
        return -1;
    }
    return 0;
}

static mlk_sgd_data view(const dataset *ds)
{
    mlk_sgd_data d = {ds->nrows, ds->nf ? &ds->X : NULL, ds->dense, ds->nd, ds->y};
    return d;
}

/* Copy rows [lo, hi) of src into dst (for shards). */
static int slice(const dataset *src, size_t lo, size_t hi, dataset *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->n_classes = src->n_classes;
    dst->nrows = hi - lo;
    dst->nf = src->nf;
    dst->nd = src->nd;
    if (src->nf) {
        int64_t a = src->X.indptr[lo], b = src->X.indptr[hi];
        dst->X.nrows = hi - lo;
        dst->X.ncols = src->nf;
        dst->X.indptr = malloc((hi - lo + 1) * 8);
        dst->X.indices = malloc((size_t)(b - a) * 4 + 4);
        dst->X.data = malloc((size_t)(b - a) * 8 + 8);
        if (!dst->X.indptr || !dst->X.indices || !dst->X.data) return -1;
        for (size_t i = lo; i <= hi; i++) dst->X.indptr[i - lo] = src->X.indptr[i] - a;
        memcpy(dst->X.indices, src->X.indices + a, (size_t)(b - a) * 4);
        memcpy(dst->X.data, src->X.data + a, (size_t)(b - a) * 8);
    }
    if (src->nd) {
        dst->dense = malloc((hi - lo) * src->nd * 8 + 8);
        if (!dst->dense) return -1;
        memcpy(dst->dense, src->dense + lo * src->nd, (hi - lo) * src->nd * 8);
    }
    dst->y = malloc((hi - lo) * 4 + 4);
    if (!dst->y) return -1;
    memcpy(dst->y, src->y + lo, (hi - lo) * 4);
    return 0;
}

/* One epoch task's work on packed shard (buf, len), as the worker runs
 * it (kind_model.c's epoch_packed): the offsets and the record copy in
 * offb and recb, kept. The model's bytes in *out. */
static int packed_epoch(const uint8_t *buf, size_t len, const dataset *train, const mlk_sgd_opts *o, double *losses,
                        mlk_fpack_buf *offb, mlk_fpack_buf *recb, uint8_t **out, size_t *outlen, char *err,
                        size_t errlen)
{
    mlk_fpack p;
    size_t *off = mlk_fpack_buf_get(offb, (train->nrows + 1) * sizeof *off);
    mlk_cmodel *c = mlk_cmodel_new(train->n_classes, train->nf, train->nd, o->lr == MLK_LR_ADAGRAD);
    size_t rb = mlk_fpack_rec_bytes(buf, len);
    uint8_t *recs = rb >= MLK_FPACK_COPY_MIN ? mlk_fpack_buf_get(recb, rb) : NULL;
    int krc = !off || !c ? MLOPS_ENOMEM
              : recs     ? mlk_fpack_open_copy(buf, len, &p, off, recs, err, errlen)
                         : mlk_fpack_open(buf, len, &p, off, err, errlen);
    if (krc == 0) krc = mlk_sgd_train_packed_own(c, &p, off, train->nrows, o, losses, err, errlen);
    if (krc == 0) krc = mlk_cmodel_encode(c, out, outlen);
    mlk_cmodel_destroy(&c);
    return krc;
}

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int write_file(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(buf, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Parameter mixing: every epoch, shards of train from m, averaged. */
static int train_mixed(mlk_model **pm, const dataset *train, size_t nshards, mlk_sgd_opts o,
                       double *losses, char *err, size_t errlen)
{
    int rc = 0;
    dataset *sh = calloc(nshards, sizeof *sh);
    mlk_model **parts = calloc(nshards, sizeof *parts);
    uint64_t *counts = calloc(nshards, sizeof *counts);
    if (!sh || !parts || !counts) rc = MLOPS_ENOMEM;
    for (size_t s = 0; rc == 0 && s < nshards; s++) {
        if (slice(train, train->nrows * s / nshards, train->nrows * (s + 1) / nshards, &sh[s]) != 0)
            rc = MLOPS_ENOMEM;
        counts[s] = sh ? sh[s].nrows : 0;
    }
    unsigned epochs = o.epochs;
    o.epochs = 1;
    for (unsigned e = 0; rc == 0 && e < epochs; e++) {
        losses[e] = 0.0;
        o.epoch0 = e;
        for (size_t s = 0; rc == 0 && s < nshards; s++) {
            double l = 0.0;
            o.shard = s;
            parts[s] = mlk_model_clone(*pm);
            if (!parts[s]) rc = MLOPS_ENOMEM;
            else {
                mlk_sgd_data d = view(&sh[s]);
                rc = mlk_sgd_train(parts[s], &d, NULL, &o, &l, err, errlen);
            }
            losses[e] += l * (double)sh[s].nrows / (double)train->nrows;
        }
        mlk_model *avg = NULL;
        if (rc == 0) rc = mlk_model_average((const mlk_model *const *)parts, counts, nshards, &avg, err, errlen);
        for (size_t s = 0; s < nshards; s++) mlk_model_destroy(&parts[s]);
        if (rc == 0) {
            mlk_model_destroy(pm);
            *pm = avg;
        }
    }
    for (size_t s = 0; sh && s < nshards; s++) dataset_free(&sh[s]);
    free(sh);
    free(parts);
    free(counts);
    return rc;
}

int main(int argc, char **argv)
{
    const char *train_path = NULL, *test_path = NULL, *model_out = NULL, *proba_out = NULL;
    mlk_sgd_opts o;
    mlk_sgd_opts_default(&o);
    size_t nshards = 1;
    int compact = 0, cold = 0; /* 1 --compact, 2 --packed */
    uint8_t *packed = NULL;
    size_t plen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "--no-shuffle")) {
            o.shuffle = 0;
            takes = 0;
        } else if (!strcmp(a, "--compact")) {
            compact = 1;
            takes = 0;
        } else if (!strcmp(a, "--packed")) {
            compact = 2;
            takes = 0;
        } else if (!strcmp(a, "--cold")) {
            cold = 1;
            takes = 0;
        } else if (!v) {
            fprintf(stderr, "option %s needs a value\n", a);
            return 1;
        } else if (!strcmp(a, "--train")) train_path = v;
        else if (!strcmp(a, "--test")) test_path = v;
        else if (!strcmp(a, "--model-out")) model_out = v;
        else if (!strcmp(a, "--proba-out")) proba_out = v;
        else if (!strcmp(a, "--lr")) {
            o.lr = mlk_sgd_lr_parse(v);
            if (!o.lr) {
                fprintf(stderr, "unknown --lr %s\n", v);
                return 1;
            }
        } else if (!strcmp(a, "--alpha")) o.alpha = strtod(v, NULL);
        else if (!strcmp(a, "--eta0")) o.eta0 = strtod(v, NULL);
        else if (!strcmp(a, "--power-t")) o.power_t = strtod(v, NULL);
        else if (!strcmp(a, "--decay")) o.intercept_decay = strtod(v, NULL);
        else if (!strcmp(a, "--epochs")) o.epochs = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch")) o.batch_size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--shards")) nshards = strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 1;
        }
        i += takes;
    }
    if (!train_path || o.epochs < 1 || o.epochs > 10000 || nshards < 1) {
        fprintf(stderr, "usage: mlk_sgd_tool --train FILE [options] (see the source header)\n");
        return 1;
    }
    dataset train, test;
    memset(&test, 0, sizeof test);
    if (load(train_path, &train) != 0) return 1;
    if (!train.y || train.n_classes < 2 || nshards > train.nrows) {
        fprintf(stderr, "%s: needs labels, n_classes >= 2 and at least one row per shard\n", train_path);
        dataset_free(&train);
        return 1;
    }
    char err[256] = "";
    int rc = 0;
    double *losses = calloc(o.epochs, sizeof *losses);
    mlk_model *m = mlk_model_new(train.n_classes, train.nf, train.nd, 0);
    if (!m || !losses) {
        fprintf(stderr, "cannot create the model\n");
        rc = 1;
        goto out;
    }
    if (compact == 2) { /* the shard as featurize writes it (untimed) */
        mlk_features fs;
        memset(&fs, 0, sizeof fs);
        fs.nrows = train.nrows;
        fs.row_id = calloc(train.nrows + 1, sizeof *fs.row_id);
        fs.label = train.y;
        fs.csr = train.nf ? &train.X : NULL;
        fs.n_dense = train.nd;
        fs.dense_type = MLK_DENSE_F64;
        fs.dense64 = train.dense;
        if (!fs.row_id || mlk_fpack_encode(&fs, &packed, &plen) != 0) {
            fprintf(stderr, "cannot write the packed shard\n");
            free(fs.row_id);
            rc = 1;
            goto out;
        }
        free(fs.row_id);
    }
    int krc;
    uint8_t *cbytes = NULL;
    size_t clen = 0;
    mlk_fpack_buf offb = {NULL, 0}, recb = {NULL, 0};
    if (compact == 2 && !cold) { /* the task before, untimed */
        mlk_sgd_opts ow = o;
        ow.seed = o.seed + 1;
        krc = packed_epoch(packed, plen, &train, &ow, losses, &offb, &recb, &cbytes, &clen, err, sizeof err);
        free(cbytes);
        cbytes = NULL;
        if (krc != 0) {
            fprintf(stderr, "train: %s (%s)\n", err, mlops_strerror(krc));
            mlk_fpack_buf_free(&offb);
            mlk_fpack_buf_free(&recb);
            rc = 1;
            goto out;
        }
    }
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (nshards > 1) krc = train_mixed(&m, &train, nshards, o, losses, err, sizeof err);
    else if (compact == 2)
        krc = packed_epoch(packed, plen, &train, &o, losses, &offb, &recb, &cbytes, &clen, err, sizeof err);
    else if (compact) {
        mlk_cmodel *c = mlk_cmodel_new(train.n_classes, train.nf, train.nd, o.lr == MLK_LR_ADAGRAD);
        mlk_sgd_data d = view(&train);
        krc = c ? mlk_sgd_train_compact(c, &d, NULL, NULL, &o, losses, err, sizeof err) : MLOPS_ENOMEM;
        if (krc == 0) krc = mlk_cmodel_encode(c, &cbytes, &clen);
        mlk_cmodel_destroy(&c);
    } else {
        mlk_sgd_data d = view(&train);
        krc = mlk_sgd_train(m, &d, NULL, &o, losses, err, sizeof err);
    }
    double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    mlk_fpack_buf_free(&offb);
    mlk_fpack_buf_free(&recb);
    if (krc == 0 && compact) { /* both compact forms */
        mlk_model_destroy(&m);
        krc = mlk_model_decode(cbytes, clen, &m, err, sizeof err);
    }
    free(cbytes);
    if (krc != 0) {
        fprintf(stderr, "train: %s (%s)\n", err, mlops_strerror(krc));
        rc = 1;
        goto out;
    }
    printf("train_seconds %.6f\n", t1 - t0);
    printf("train_cpu_seconds %.6f\n", c1 - c0);
    for (unsigned e = 0; e < o.epochs; e++) printf("epoch_loss %u %.10f\n", e + 1, losses[e]);
    printf("t %llu\n", (unsigned long long)m->t);
    printf("nnz %llu\n", (unsigned long long)mlk_model_nnz(m));
    uint8_t *buf = NULL;
    size_t len = 0;
    if (mlk_model_encode(m, &buf, &len) != 0) {
        fprintf(stderr, "encode failed\n");
        rc = 1;
        goto out;
    }
    printf("model_bytes %zu\n", len);
    if (model_out && write_file(model_out, buf, len) != 0) {
        fprintf(stderr, "%s: cannot write\n", model_out);
        rc = 1;
    }
    free(buf);
    if (rc == 0 && test_path) {
        if (load(test_path, &test) != 0) {
            rc = 1;
            goto out;
        }
        double *proba = malloc((test.nrows * train.n_classes + 1) * sizeof *proba);
        mlk_sgd_data d = view(&test);
        if (!proba || (krc = mlk_sgd_predict_proba(m, &d, proba, err, sizeof err)) != 0) {
            fprintf(stderr, "predict: %s\n", proba ? err : "out of memory");
            free(proba);
            rc = 1;
            goto out;
        }
        if (test.y) {
            size_t ok = 0;
            for (size_t i = 0; i < test.nrows; i++) {
                uint32_t best = 0;
                for (uint32_t k = 1; k < train.n_classes; k++)
                    if (proba[i * train.n_classes + k] > proba[i * train.n_classes + best]) best = k;
                ok += (int32_t)best == test.y[i];
            }
            printf("test_accuracy %.6f\n", test.nrows ? (double)ok / (double)test.nrows : 0.0);
        }
        if (proba_out && write_file(proba_out, proba, test.nrows * train.n_classes * 8) != 0) {
            fprintf(stderr, "%s: cannot write\n", proba_out);
            rc = 1;
        }
        free(proba);
    }
out:
    free(packed);
    mlk_model_destroy(&m);
    free(losses);
    dataset_free(&train);
    dataset_free(&test);
    return rc;
}
