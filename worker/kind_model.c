/* kind_model.c: worker kinds of the model stages — scale, hash, split,
 * train (epoch + reduce) and evaluate. Arguments and results are the
 * <Kind>Args and <Kind>Result messages of proto/tasks.proto, written and
 * read by the matching coordinator/stage_*.c; the values are validated
 * here because they come over the network. Kernels: scaler.h, hasher.h,
 * split.h, sgd.h, model.h, metrics.h, over frames (frame.h) and feature
 * shards (fshard.h). */
#include "err.h"
#include "fpack.h"
#include "fshard.h"
#include "hasher.h"
#include "kind_cv.h"
#include "kinds.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "packed_input.h"
#include "profile_round0.h"
#include "scaler.h"
#include "sgd.h"
#include "split.h"
#include <czmq.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* shard helpers                                                       */

static int is_fshard(const void *data, size_t len)
{
    return (len >= 4 && !memcmp(data, "MLKX", 4)) || mlk_fpack_is(data, len);
}

/* Input i as a feature shard, decoded straight from the store's map
 * when it is held here (one copy of the shard, not two: the epoch tasks
 * read their shard every epoch). */
static int input_fshard(task_ctx_t *ctx, size_t i, mlk_features **out)
{
    return wk_task_input_features(ctx, i, out);
}

static int output_fshard(task_ctx_t *ctx, const mlk_features *f)
{
    uint8_t *buf;
    size_t len;
    if (mlk_features_encode(f, &buf, &len) != 0) return wk_task_fail(ctx, 1, "out of memory encoding");
    int rc = wk_task_output(ctx, NULL, buf, len);
    free(buf);
    return rc;
}

/* The packed form (fpack.h) when the dense part is f64, else MLKX. */
static int output_fpack(task_ctx_t *ctx, const mlk_features *f)
{
    if (f->n_dense && f->dense_type != MLK_DENSE_F64) return output_fshard(ctx, f);
    uint8_t *buf;
    size_t len;
    if (mlk_fpack_encode(f, &buf, &len) != 0) return wk_task_fail(ctx, 1, "out of memory encoding");
    int rc = wk_task_output(ctx, NULL, buf, len);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* scale                                                               */

int wk_kind_scale_moments(task_ctx_t *ctx)
{
    void *data;
    size_t len;
    if (wk_task_input(ctx, 0, &data, &len) != 0) return -1;
    mlk_moments *m = NULL;
    size_t ncols = 0;
    int rc = -1;
    if (is_fshard(data, len)) {
        mlk_features *f = NULL;
        if (mlk_features_decode(data, len, &f) != 0) {
            free(data);
            return wk_task_fail(ctx, 0, "damaged feature shard %s", ctx->ta->inputs[0]->key);
        }
        ncols = f->n_dense;
        double *d = mlk_features_dense_f64(f);
        double *col = malloc((f->nrows ? f->nrows : 1) * sizeof *col);
        m = calloc(ncols ? ncols : 1, sizeof *m);
        if (d && col && m) {
            for (size_t c = 0; c < ncols; c++) {
                for (size_t r = 0; r < f->nrows; r++) col[r] = d[r * ncols + c];
                m[c] = mlk_moments_of(col, f->nrows);
            }
            rc = 0;
        }
        free(d);
        free(col);
        mlk_features_destroy(&f);
    } else {
        mlk_frame *f = NULL;
        if (mlk_frame_decode(data, len, &f) != 0) {
            free(data);
            return wk_task_fail(ctx, 0, "damaged shard %s", ctx->ta->inputs[0]->key);
        }
        size_t *idx = NULL;
        if (wk_task_numeric_cols(ctx, f, &idx, &ncols) == 0) {
            m = calloc(ncols ? ncols : 1, sizeof *m);
            if (m) {
                for (size_t c = 0; c < ncols; c++) m[c] = mlk_moments_of(f->cols[idx[c]].f64, f->nrows);
                rc = 0;
            }
        }
        free(idx);
        mlk_frame_destroy(&f);
    }
    free(data);
    if (rc) {
        free(m);
        return ctx->err[0] ? -1 : wk_task_fail(ctx, 1, "out of memory");
    }
    uint8_t *buf;
    size_t blen;
    rc = mlk_moments_encode(m, ncols, &buf, &blen);
    free(m);
    if (rc) return wk_task_fail(ctx, 1, "out of memory");
    Mlops__Tasks__ScaleMomentsResult res = MLOPS__TASKS__SCALE_MOMENTS_RESULT__INIT;
    res.moments.data = buf;
    res.moments.len = blen;
    rc = wk_task_result_pack(ctx, &res.base);
    free(buf);
    return rc;
}

int wk_kind_scale_apply(task_ctx_t *ctx)
{
    Mlops__Tasks__ScaleApplyArgs *a =
        wk_task_args(ctx, &mlops__tasks__scale_apply_args__descriptor);
    if (!a) return -1;
    void *data = NULL;
    size_t len;
    int rc = -1;
    const double *mean = a->mean, *scale = a->scale;
    if (a->n_mean != a->n_scale || a->n_mean > UINT32_MAX) {
        rc = wk_task_fail(ctx, 0, "scale: damaged task arguments (%zu means, %zu scales)",
                          a->n_mean, a->n_scale);
        goto out;
    }
    uint32_t ncols = (uint32_t)a->n_mean;
    if (wk_task_input(ctx, 0, &data, &len) != 0) goto out;
    if (is_fshard(data, len)) {
        mlk_features *f = NULL;
        if (mlk_features_decode(data, len, &f) != 0 || mlk_features_scale(f, mean, scale, ncols) != 0) {
            rc = wk_task_fail(ctx, 0, "scale: shard %s does not have %u dense columns", ctx->ta->inputs[0]->key, ncols);
        } else {
            rc = output_fshard(ctx, f);
            if (!rc) wk_task_metric(ctx, "rows", (double)f->nrows);
        }
        mlk_features_destroy(&f);
    } else {
        mlk_frame *f = NULL;
        size_t *idx = NULL, n = 0;
        if (mlk_frame_decode(data, len, &f) != 0) {
            rc = wk_task_fail(ctx, 0, "damaged shard %s", ctx->ta->inputs[0]->key);
        } else if (wk_task_numeric_cols(ctx, f, &idx, &n) == 0) {
            if (n != ncols) rc = wk_task_fail(ctx, 0, "scale: %u statistics for %zu columns", ncols, n);
            else {
                for (size_t c = 0; c < n; c++) mlk_scaler_transform(f->cols[idx[c]].f64, f->nrows, mean[c], scale[c]);
                rc = wk_task_output_frame(ctx, f);
                if (!rc) wk_task_metric(ctx, "rows", (double)f->nrows);
            }
        }
        free(idx);
        mlk_frame_destroy(&f);
    }
out:
    free(data);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* ------------------------------------------------------------------ */
/* hash                                                                */

/* The feature shard of frame f (*out): the categorical columns hashed
 * (nf features, 0 none), the numeric ones as the dense part, the label as
 * class indexes. 0, or -1 with the task failed. */
static int hash_frame(task_ctx_t *ctx, const mlk_frame *f, uint32_t nf, int alt, char *const *clsv, size_t ncls,
                      mlk_features **pout)
{
    *pout = NULL;
    zhashx_t *classes = zhashx_new();
    if (!classes) return wk_task_fail(ctx, 1, "out of memory");
    for (size_t i = 0; i < ncls; i++) zhashx_insert(classes, clsv[i], (void *)(intptr_t)(i + 1));
    const mlops_jobspec_t *s;
    mlk_features *out = NULL;
    size_t *cat = NULL, *num = NULL, nnum = 0;
    int rc = -1;
    if (wk_task_spec(ctx, &s) != 0) goto done;
    size_t ncat = s->columns.n_categorical;
    cat = calloc(ncat ? ncat : 1, sizeof *cat);
    if (!cat) { rc = wk_task_fail(ctx, 1, "out of memory"); goto done; }
    for (size_t c = 0; c < ncat; c++) {
        int ci = mlk_frame_col(f, s->columns.categorical[c]);
        if (ci < 0) { rc = wk_task_fail(ctx, 0, "hash: column '%s' missing from the shard", s->columns.categorical[c]); goto done; }
        cat[c] = (size_t)ci;
    }
    if (wk_task_numeric_cols(ctx, f, &num, &nnum) != 0) goto done;
    out = mlk_features_new(f->nrows);
    if (!out) { rc = wk_task_fail(ctx, 1, "out of memory"); goto done; }
    mlk_hash_opts ho;
    mlk_hash_opts_default(&ho);
    ho.n_features = nf ? (int32_t)nf : 1;
    ho.alternate_sign = alt;
    /* nf == 0: the job hashes nothing, the features are the numeric columns */
    if (nf && ncat && mlk_hash_frame(&ho, f, cat, ncat, &out->csr, ctx->err, sizeof ctx->err) != 0) goto done;
    if (nf && !ncat && !(out->csr = mlk_csr_new(f->nrows, nf, 0))) { rc = wk_task_fail(ctx, 1, "out of memory"); goto done; }
    out->n_dense = nnum;
    out->dense_type = MLK_DENSE_F64;
    if (nnum) {
        out->dense64 = malloc((f->nrows ? f->nrows : 1) * nnum * sizeof(double));
        if (!out->dense64) { rc = wk_task_fail(ctx, 1, "out of memory"); goto done; }
        for (size_t i = 0; i < f->nrows; i++)
            for (size_t c = 0; c < nnum; c++) out->dense64[i * nnum + c] = f->cols[num[c]].f64[i];
    }
    memcpy(out->row_id, f->row_id, f->nrows * sizeof *f->row_id);
    int lc = s->columns.label ? mlk_frame_col(f, s->columns.label) : -1;
    char buf[1024];
    for (size_t i = 0; lc >= 0 && i < f->nrows; i++) {
        const mlk_col *col = &f->cols[lc];
        if (col->missing[i]) continue;
        size_t len;
        const char *v = mlk_str_at(col, i, &len);
        if (len >= sizeof buf) len = sizeof buf - 1;
        memcpy(buf, v, len);
        buf[len] = 0;
        intptr_t k = (intptr_t)zhashx_lookup(classes, buf);
        if (!k) { rc = wk_task_fail(ctx, 0, "hash: label '%s' of row %lld is not a known class", buf, (long long)f->row_id[i]); goto done; }
        out->label[i] = (int32_t)(k - 1);
    }
    *pout = out;
    out = NULL;
    rc = 0;
done:
    zhashx_destroy(&classes);
    free(cat);
    free(num);
    mlk_features_destroy(&out);
    return rc;
}

static int hash_args_ok(task_ctx_t *ctx, const Mlops__Tasks__HashArgs *a)
{
    if (a->n_features > INT32_MAX || a->n_classes > 100000)
        return wk_task_fail(ctx, 0, "hash: damaged task arguments (%u features, %zu classes)", a->n_features,
                            a->n_classes);
    return 0;
}

int wk_kind_hash(task_ctx_t *ctx)
{
    Mlops__Tasks__HashArgs *a = wk_task_args(ctx, &mlops__tasks__hash_args__descriptor);
    if (!a) return -1;
    mlk_frame *f = NULL;
    mlk_features *out = NULL;
    int rc = hash_args_ok(ctx, a);
    if (!rc) rc = wk_task_input_frame(ctx, 0, &f);
    if (!rc) rc = hash_frame(ctx, f, a->n_features, a->alternate_sign, a->classes, a->n_classes, &out);
    if (!rc) rc = output_fshard(ctx, out);
    if (!rc) {
        wk_task_metric(ctx, "rows", (double)out->nrows);
        wk_task_metric(ctx, "nnz", out->csr ? (double)out->csr->indptr[out->nrows] : 0.0);
    }
    protobuf_c_message_free_unpacked(&a->base, NULL);
    mlk_frame_destroy(&f);
    mlk_features_destroy(&out);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* split                                                               */

/* Set f->test from the split arguments; the test row count in *ntest.
 * 0, or -1 with the task failed. */
static int split_args_ok(task_ctx_t *ctx, const Mlops__Tasks__SplitArgs *a)
{
    if (a->sklearn && a->test_flags.len != a->count)
        return wk_task_fail(ctx, 0, "split: damaged task arguments (%zu flags for %llu rows)", a->test_flags.len,
                            (unsigned long long)a->count);
    return 0;
}

static int split_flags(task_ctx_t *ctx, const Mlops__Tasks__SplitArgs *a, mlk_features *f, int64_t *ntest)
{
    uint64_t count = a->count;
    if (split_args_ok(ctx, a) != 0) return -1;
    if (f->nrows != count)
        return wk_task_fail(ctx, 0, "split: shard has %zu rows, plan says %llu", f->nrows,
                            (unsigned long long)count);
    free(f->test);
    f->test = malloc(count ? count : 1);
    if (!f->test) return wk_task_fail(ctx, 1, "out of memory");
    if (a->sklearn) {
        memcpy(f->test, a->test_flags.data, count);
        *ntest = 0;
        for (size_t i = 0; i < count; i++) *ntest += f->test[i] != 0;
        return 0;
    }
    *ntest = mlk_split_hash_mask(a->seed, a->rows, a->rows_test, a->first_rank, count, f->test, ctx->err,
                                 sizeof ctx->err);
    return *ntest < 0 ? -1 : 0;
}

int wk_kind_split(task_ctx_t *ctx)
{
    Mlops__Tasks__SplitArgs *a = wk_task_args(ctx, &mlops__tasks__split_args__descriptor);
    if (!a) return -1;
    mlk_features *f = NULL;
    int64_t ntest = 0;
    int rc = split_args_ok(ctx, a);
    if (!rc) rc = input_fshard(ctx, 0, &f);
    if (!rc) rc = split_flags(ctx, a, f, &ntest);
    if (!rc) rc = output_fshard(ctx, f);
    if (!rc) {
        wk_task_metric(ctx, "rows", (double)a->count);
        wk_task_metric(ctx, "rows_test", (double)ntest);
    }
    mlk_features_destroy(&f);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* featurize: scale_apply + hash + split in one task                   */

int wk_kind_featurize(task_ctx_t *ctx)
{
    Mlops__Tasks__FeaturizeArgs *a = wk_task_args(ctx, &mlops__tasks__featurize_args__descriptor);
    if (!a) return -1;
    mlk_frame *f = NULL;
    mlk_features *out = NULL;
    wk_profile_round0 *prof = NULL;
    size_t *idx = NULL, n = 0;
    int64_t ntest = 0;
    int rc = 0;
    if (!a->scale || !a->hash || !a->split || a->scale->n_mean != a->scale->n_scale)
        rc = wk_task_fail(ctx, 0, "featurize: damaged task arguments");
    if (!rc) rc = hash_args_ok(ctx, a->hash);
    if (!rc) rc = split_args_ok(ctx, a->split);
    if (!rc) rc = wk_task_input_frame(ctx, 0, &f);
    if (!rc) rc = wk_task_numeric_cols(ctx, f, &idx, &n);
    if (!rc && n != a->scale->n_mean)
        rc = wk_task_fail(ctx, 0, "scale: %zu statistics for %zu columns", a->scale->n_mean, n);
    /* the raw values the profile's deciles need, before the scaler */
    if (!rc) rc = wk_profile_round0_begin(ctx, a, f, &prof);
    /* the same transform as scale_apply, in place on the parsed frame */
    for (size_t c = 0; !rc && c < n; c++)
        mlk_scaler_transform(f->cols[idx[c]].f64, f->nrows, a->scale->mean[c], a->scale->scale[c]);
    if (!rc) rc = hash_frame(ctx, f, a->hash->n_features, a->hash->alternate_sign, a->hash->classes,
                             a->hash->n_classes, &out);
    if (!rc) rc = split_flags(ctx, a->split, out, &ntest);
    if (!rc && prof) rc = wk_profile_round0_finish(ctx, prof, a, f, out->test);
    /* in the layout the epoch, cv and evaluate tasks read in place (fpack.h) */
    if (!rc) rc = output_fpack(ctx, out);
    if (!rc) {
        wk_task_metric(ctx, "rows", (double)out->nrows);
        wk_task_metric(ctx, "rows_test", (double)ntest);
        wk_task_metric(ctx, "nnz", out->csr ? (double)out->csr->indptr[out->nrows] : 0.0);
    }
    free(idx);
    wk_profile_round0_destroy(&prof);
    mlk_frame_destroy(&f);
    mlk_features_destroy(&out);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* train                                                               */

/* The end of an epoch task: m's bytes in the result (a model mixed after
 * an epoch is ~12,000 non-zero weights, so its sparse form is small; the
 * coordinator mixes them) and, for a task with an output key, stored. */
static int epoch_finish(task_ctx_t *ctx, const mlk_cmodel *m, size_t ntrain, double loss)
{
    uint8_t *buf;
    size_t blen;
    if (mlk_cmodel_encode(m, &buf, &blen) != 0) return wk_task_fail(ctx, 1, "out of memory");
    int rc = ctx->ta->output_key && *ctx->ta->output_key ? wk_task_output(ctx, NULL, buf, blen) : 0;
    if (rc) {
        free(buf);
        return rc;
    }
    Mlops__Tasks__TrainEpochResult res = MLOPS__TASKS__TRAIN_EPOCH_RESULT__INIT;
    res.count = ntrain;
    res.loss = loss;
    res.model.data = buf;
    res.model.len = blen;
    rc = wk_task_result_pack(ctx, &res.base);
    free(buf);
    wk_task_metric(ctx, "rows", (double)ntrain);
    return rc;
}

/* The task's model: decoded from the arguments, or a fresh one. */
static int epoch_model(task_ctx_t *ctx, const Mlops__Tasks__TrainEpochArgs *a, const mlk_sgd_opts *o,
                       uint64_t n_features, size_t n_dense, mlk_cmodel **m)
{
    /* the compact form: the model's non-zero inputs and the shard's, never
     * an array of all n_features (2^20) inputs */
    if (a->model.len) return mlk_cmodel_decode(a->model.data, a->model.len, m, ctx->err, sizeof ctx->err) ? -1 : 0;
    if (!(*m = mlk_cmodel_new(a->classes, n_features, n_dense, o->lr == MLK_LR_ADAGRAD)))
        return wk_task_fail(ctx, 1, "out of memory");
    return 0;
}

/* An epoch over a packed shard, its records read where they lie. */
typedef struct {
    task_ctx_t *ctx;
    const Mlops__Tasks__TrainEpochArgs *a;
    const mlk_sgd_opts *o;
    int packed; /* the shard was packed and trained here */
    int rc;
    mlk_features *f; /* else the shard decoded */
} epoch_in_t;

static int epoch_packed(epoch_in_t *e, const void *data, size_t len)
{
    task_ctx_t *ctx = e->ctx;
    wk_packed_t w;
    size_t ntrain = 0;
    mlk_cmodel *m = NULL;
    int rc = wk_packed_take(ctx, 0, data, len, 1, &w);
    const mlk_fpack *p = &w.p;
    size_t *off = w.off;
    if (!rc) rc = wk_packed_check_labels(ctx, p, off, e->a->classes);
    for (size_t i = 0; !rc && i < p->nrows; i++)
        if (!p->test || !p->test[i]) off[ntrain++] = off[i]; /* the kernel trains these rows, in this order */
    if (!rc) rc = epoch_model(ctx, e->a, e->o, p->hashed ? p->n_features : 0, p->n_dense, &m);
    double loss = 0;
    /* the offsets are this task's own: shuffled in place */
    if (!rc && ntrain && mlk_sgd_train_packed_own(m, p, off, ntrain, e->o, &loss, ctx->err, sizeof ctx->err) != 0)
        rc = -1;
    if (!rc) rc = epoch_finish(ctx, m, ntrain, loss);
    mlk_cmodel_destroy(&m);
    wk_packed_release(&w);
    return rc;
}

static int epoch_input_fn(const void *data, size_t len, void *arg)
{
    epoch_in_t *e = arg;
    if (mlk_fpack_is(data, len) && !e->a->cv && e->o->batch_size <= 1) {
        e->packed = 1;
        e->rc = epoch_packed(e, data, len);
        return 0;
    }
    /* mini-batches and cv rows read arrays */
    return mlk_features_decode(data, len, &e->f);
}

int wk_kind_train_epoch(task_ctx_t *ctx)
{
    Mlops__Tasks__TrainEpochArgs *a =
        wk_task_args(ctx, &mlops__tasks__train_epoch_args__descriptor);
    if (!a) return -1;
    mlk_sgd_opts o;
    wk_epoch_opts(a, &o);
    uint32_t ncls = a->classes;
    mlk_features *all = NULL, *f = NULL;
    mlk_cmodel *m = NULL;
    double *dense = NULL;
    int rc = -1;
    if (ncls < 2 || ncls > 65536 || a->n_features > INT32_MAX) {
        rc = wk_task_fail(ctx, 0, "train: damaged task arguments (%u classes, %llu features)", ncls,
                          (unsigned long long)a->n_features);
        goto out;
    }
    /* held here: read in place from the store's map (one pass, no copy) */
    epoch_in_t e = {ctx, a, &o, 0, 0, NULL};
    if (wk_task_input_with(ctx, 0, epoch_input_fn, &e) != 0) {
        if (!e.packed)
            rc = ctx->err[0] ? -1 : wk_task_fail(ctx, 0, "shard %s is not a valid feature shard", ctx->ta->inputs[0]->key);
        goto out;
    }
    if (e.packed) {
        rc = e.rc;
        goto out;
    }
    all = e.f;
    if (wk_cv_select(ctx, a->cv, &all) != 0) goto out;
    f = all; /* the kernel leaves the test rows out (skip): no copy of the train rows */
    all = NULL;
    size_t ntrain = 0;
    for (size_t i = 0; i < f->nrows; i++) {
        if (f->test && f->test[i]) continue;
        ntrain++;
        if (f->label[i] < 0 || (uint32_t)f->label[i] >= ncls) {
            rc = wk_task_fail(ctx, 0, "train: row %lld has no class label", (long long)f->row_id[i]);
            goto out;
        }
    }
    if (epoch_model(ctx, a, &o, f->csr ? f->csr->ncols : 0, f->n_dense, &m) != 0) goto out;
    const double *dv = f->dense64; /* f64 shards are read in place */
    if (f->n_dense && f->dense_type != MLK_DENSE_F64) {
        if (!(dense = mlk_features_dense_f64(f))) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
        dv = dense;
    }
    mlk_sgd_data d = {f->nrows, f->csr, f->n_dense ? dv : NULL, f->n_dense, f->label};
    double loss = 0;
    if (ntrain && mlk_sgd_train_compact(m, &d, NULL, f->test, &o, &loss, ctx->err, sizeof ctx->err) != 0) goto out;
    rc = epoch_finish(ctx, m, ntrain, loss);
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    free(dense);
    mlk_cmodel_destroy(&m);
    mlk_features_destroy(&all);
    mlk_features_destroy(&f);
    return rc;
}

int wk_kind_train_reduce(task_ctx_t *ctx)
{
    Mlops__Tasks__TrainReduceArgs *a =
        wk_task_args(ctx, &mlops__tasks__train_reduce_args__descriptor);
    if (!a) return -1;
    size_t n = a->n_counts;
    int final = a->final;
    if (n == 0 || n > 1024 || n != ctx->ta->n_inputs) {
        protobuf_c_message_free_unpacked(&a->base, NULL);
        return wk_task_fail(ctx, 0, "train: damaged reduce arguments (%zu counts for %zu inputs)",
                            n, ctx->ta->n_inputs);
    }
    const uint64_t *counts = a->counts;
    /* averaged as encoded (sparse): the inputs touch ~1% of the weights */
    void **bufs = calloc(n, sizeof *bufs);
    size_t *lens = calloc(n, sizeof *lens);
    uint8_t *buf = NULL;
    size_t blen = 0;
    int rc = -1;
    if (!bufs || !lens) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += counts[i];
    for (size_t i = 0; i < n; i++)
        if (wk_task_input(ctx, i, &bufs[i], &lens[i]) != 0) goto out;
    if (mlk_model_average_encoded((const uint8_t *const *)bufs, lens, counts, n, &buf, &blen, ctx->err,
                                  sizeof ctx->err) != 0)
        goto out;
    rc = wk_task_output(ctx, NULL, buf, blen);
    if (!rc) {
        Mlops__Tasks__TrainReduceResult res = MLOPS__TASKS__TRAIN_REDUCE_RESULT__INIT;
        res.count = total;
        if (final) {
            res.model.data = buf;
            res.model.len = blen;
        }
        rc = wk_task_result_pack(ctx, &res.base);
    }
out:
    for (size_t i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(lens);
    free(buf);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* ------------------------------------------------------------------ */
/* evaluate                                                            */

/* An evaluate task over a packed shard. */
typedef struct {
    task_ctx_t *ctx;
    const Mlops__Tasks__EvaluateArgs *a;
    const mlk_cmodel *m;
    int packed; /* scored here */
    int rc;
    mlk_features *f; /* else the shard decoded */
} eval_in_t;

/* The metrics partial over the test rows (every row without test flags),
 * as the array path scores the rows it copies out. */
static int eval_packed(eval_in_t *e, const void *data, size_t len)
{
    task_ctx_t *ctx = e->ctx;
    uint32_t ncls = e->a->classes;
    wk_packed_t w;
    size_t n = 0;
    uint8_t *buf = NULL;
    int32_t *lab = NULL;
    double *proba = NULL;
    mlk_metrics *part = NULL;
    int rc = wk_packed_take(ctx, 0, data, len, 0, &w);
    const mlk_fpack p = w.p;
    size_t *off = w.off;
    if (!rc && (!(lab = malloc((p.nrows ? p.nrows : 1) * sizeof *lab)) || !(part = mlk_metrics_new(ncls, 0))))
        rc = wk_task_fail(ctx, 1, "out of memory");
    for (size_t i = 0; !rc && i < p.nrows; i++)
        if (!p.test || p.test[i]) {
            memcpy(&lab[n], p.recs + off[i], 4);
            off[n++] = off[i];
        }
    if (!rc && n) {
        if (!(proba = malloc(n * ncls * sizeof *proba))) rc = wk_task_fail(ctx, 1, "out of memory");
        else if (mlk_sgd_predict_proba_packed(e->m, &p, off, n, proba, ctx->err, sizeof ctx->err) != 0 ||
                 mlk_metrics_add(part, n, lab, NULL, proba, ctx->err, sizeof ctx->err) != 0)
            rc = -1;
    }
    size_t blen;
    if (!rc && mlk_metrics_encode(part, &buf, &blen) != 0) rc = wk_task_fail(ctx, 1, "out of memory");
    if (!rc) {
        Mlops__Tasks__EvaluateResult res = MLOPS__TASKS__EVALUATE_RESULT__INIT;
        res.partial.data = buf;
        res.partial.len = blen;
        rc = wk_task_result_pack(ctx, &res.base);
        if (!rc) wk_task_metric(ctx, "rows", (double)n);
    }
    free(buf);
    free(proba);
    free(lab);
    mlk_metrics_destroy(&part);
    wk_packed_release(&w);
    return rc;
}

static int eval_input_fn(const void *data, size_t len, void *arg)
{
    eval_in_t *e = arg;
    if (mlk_fpack_is(data, len) && !e->a->cv && !e->a->n_scale_mean) {
        e->packed = 1;
        e->rc = eval_packed(e, data, len);
        return 0;
    }
    return mlk_features_decode(data, len, &e->f);
}

int wk_kind_evaluate(task_ctx_t *ctx)
{
    Mlops__Tasks__EvaluateArgs *a = wk_task_args(ctx, &mlops__tasks__evaluate_args__descriptor);
    if (!a) return -1;
    uint32_t ncls = a->classes;
    size_t nscale = a->n_scale_mean;
    const double *smean = a->scale_mean, *sscale = a->scale_scale;
    mlk_features *all = NULL, *f = NULL;
    mlk_cmodel *m = NULL; /* compact: no 2^20 (times K) array per task */
    mlk_metrics *part = NULL;
    double *dense = NULL, *proba = NULL;
    int rc = -1;
    if (a->n_scale_scale != nscale || ncls < 2 || ncls > 65536) {
        rc = wk_task_fail(ctx, 0,
                          "evaluate: damaged task arguments (%u classes, %zu means, %zu scales)",
                          ncls, nscale, a->n_scale_scale);
        goto out;
    }
    if (mlk_cmodel_decode(a->model.data, a->model.len, &m, ctx->err, sizeof ctx->err) != 0) goto out;
    /* a packed shard is scored from its records where they lie (held
     * here: in the store's map); scaled queries and cv rows read arrays */
    eval_in_t e = {ctx, a, m, 0, 0, NULL};
    if (wk_task_input_with(ctx, 0, eval_input_fn, &e) != 0) {
        if (!e.packed)
            rc = ctx->err[0] ? -1 : wk_task_fail(ctx, 0, "shard %s is not a valid feature shard", ctx->ta->inputs[0]->key);
        goto out;
    }
    if (e.packed) {
        rc = e.rc;
        goto out;
    }
    all = e.f;
    if (wk_cv_select(ctx, a->cv, &all) != 0) goto out;
    if (all->test) {
        f = mlk_features_select(all, all->test, 1);
        if (!f) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    } else {
        f = all;
        all = NULL;
    }
    part = mlk_metrics_new(ncls, 0);
    if (!part) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    /* queries come unscaled: scale them as scale_apply did the index */
    if (nscale && mlk_features_scale(f, smean, sscale, nscale) != 0) {
        rc = wk_task_fail(ctx, 0, "evaluate: %zu scaler columns for %zu dense columns", nscale,
                          f->n_dense);
        goto out;
    }
    if (f->nrows) {
        /* an f64 dense part is read in place, as the epoch tasks do */
        const double *dv = f->dense64;
        if (f->n_dense && f->dense_type != MLK_DENSE_F64) dv = dense = mlk_features_dense_f64(f);
        proba = malloc(f->nrows * ncls * sizeof *proba);
        if ((f->n_dense && !dv) || !proba) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
        mlk_sgd_data d = {f->nrows, f->csr, f->n_dense ? dv : NULL, f->n_dense, NULL};
        if (mlk_sgd_predict_proba_compact(m, &d, proba, ctx->err, sizeof ctx->err) != 0) goto out;
        if (mlk_metrics_add(part, f->nrows, f->label, NULL, proba, ctx->err, sizeof ctx->err) != 0) goto out;
    }
    uint8_t *buf;
    size_t blen;
    if (mlk_metrics_encode(part, &buf, &blen) != 0) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    Mlops__Tasks__EvaluateResult res = MLOPS__TASKS__EVALUATE_RESULT__INIT;
    res.partial.data = buf;
    res.partial.len = blen;
    rc = wk_task_result_pack(ctx, &res.base);
    free(buf);
    if (rc) goto out;
    wk_task_metric(ctx, "rows", (double)f->nrows);
    rc = 0;
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    free(dense);
    free(proba);
    mlk_metrics_destroy(&part);
    mlk_cmodel_destroy(&m);
    mlk_features_destroy(&all);
    mlk_features_destroy(&f);
    return rc;
}
