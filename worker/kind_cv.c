/* kind_cv.c: the worker side of cross-validation (see kind_cv.h).
 * method sklearn: the coordinator computed KFold's folds over every
 * training row of the job (kfold.h) and sends the shard's slice, one byte
 * per training row in order; method hash: each row's fold comes from its
 * global id, here. The cv_epoch and cv_evaluate kinds read a shard once
 * for every (trial, fold) instance of a search: a task per instance and
 * shard decoded the same shard and copied its fold's rows 18 times per
 * epoch. Arguments come over the network and are checked. */
#include "kind_cv.h"
#include "fpack.h"
#include "jobspec.h"
#include "kfold.h"
#include "metrics.h"
#include "model.h"
#include "packed_input.h"
#include "sgd.h"
#include "sgd_multi.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CV_TEST_ROW 255 /* the fold byte of a test row (folds < MLK_KFOLD_MAX <= 255) */

/* fold[i]: the fold of row i of f, CV_TEST_ROW for a test row. 0, or -1
 * after wk_task_fail. */
static int cv_folds(task_ctx_t *ctx, const Mlops__Tasks__CvRows *cv, size_t nrows, const uint8_t *test,
                    const int64_t *row_id, uint8_t *fold)
{
    if (cv->folds < 2 || cv->folds >= MLK_KFOLD_MAX || cv->folds >= CV_TEST_ROW)
        return wk_task_fail(ctx, 0, "cv: damaged task arguments (%u folds)", cv->folds);
    size_t ntrain = 0;
    for (size_t i = 0; i < nrows; i++) ntrain += !test || !test[i];
    if (!cv->hash && cv->assign.len != ntrain)
        return wk_task_fail(ctx, 0, "cv: %zu fold numbers for the %zu training rows of shard %s",
                            cv->assign.len, ntrain, ctx->ta->inputs[0]->key);
    size_t k = 0;
    for (size_t i = 0; i < nrows; i++) {
        if (test && test[i]) {
            fold[i] = CV_TEST_ROW;
            continue;
        }
        uint32_t v = cv->hash ? mlk_kfold_hash(cv->seed, row_id[i], cv->folds) : cv->assign.data[k];
        k++;
        if (v >= cv->folds) return wk_task_fail(ctx, 0, "cv: fold %u of a row is beyond the %u folds", v, cv->folds);
        fold[i] = (uint8_t)v;
    }
    return 0;
}

int wk_cv_select(task_ctx_t *ctx, const Mlops__Tasks__CvRows *cv, mlk_features **f)
{
    if (!cv) return 0;
    mlk_features *all = *f;
    if (cv->fold >= cv->folds)
        return wk_task_fail(ctx, 0, "cv: damaged task arguments (fold %u of %u)", cv->fold, cv->folds);
    uint8_t *sel = malloc(all->nrows ? all->nrows : 1);
    if (!sel) return wk_task_fail(ctx, 1, "out of memory");
    if (cv_folds(ctx, cv, all->nrows, all->test, all->row_id, sel) != 0) {
        free(sel);
        return -1;
    }
    for (size_t i = 0; i < all->nrows; i++)
        sel[i] = sel[i] != CV_TEST_ROW && (sel[i] == cv->fold) == (cv->holdout != 0);
    mlk_features *sub = mlk_features_select(all, sel, 1);
    free(sel);
    if (!sub) return wk_task_fail(ctx, 1, "out of memory");
    mlk_features_destroy(f);
    *f = sub;
    return 0;
}

/* The instances' folds against the rows' folds. */
static int cv_args_ok(task_ctx_t *ctx, const Mlops__Tasks__CvRows *rows, size_t ninst, const uint32_t *inst_fold,
                      size_t nfold)
{
    if (!rows) return wk_task_fail(ctx, 0, "cv: damaged task arguments (no rows' folds)");
    if (ninst == 0 || ninst != nfold)
        return wk_task_fail(ctx, 0, "cv: damaged task arguments (%zu instances, %zu folds)", ninst, nfold);
    for (size_t i = 0; i < ninst; i++)
        if (inst_fold[i] >= rows->folds)
            return wk_task_fail(ctx, 0, "cv: damaged task arguments (fold %u of %u)", inst_fold[i], rows->folds);
    return 0;
}

/* The shard data (any feature shard form) as arrays, and the fold of
 * each of its rows (*fold malloc'd). */
static int cv_decode(task_ctx_t *ctx, const Mlops__Tasks__CvRows *rows, const void *data, size_t len,
                     mlk_features **f, uint8_t **fold)
{
    *f = NULL;
    *fold = NULL;
    if (mlk_features_decode(data, len, f) != 0)
        return wk_task_fail(ctx, 0, "shard %s is not a feature shard (does the job need a hash stage?)",
                            ctx->ta->inputs[0]->key);
    if (!(*fold = malloc((*f)->nrows ? (*f)->nrows : 1))) return wk_task_fail(ctx, 1, "out of memory");
    return cv_folds(ctx, rows, (*f)->nrows, (*f)->test, (*f)->row_id, *fold);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void wk_epoch_opts(const Mlops__Tasks__TrainEpochArgs *a, mlk_sgd_opts *o)
{
    mlk_sgd_opts_default(o);
    switch (a->learning_rate) {
    case MLOPS_LR_CONSTANT: o->lr = MLK_LR_CONSTANT; break;
    case MLOPS_LR_INVSCALING: o->lr = MLK_LR_INVSCALING; break;
    case MLOPS_LR_ADAGRAD: o->lr = MLK_LR_ADAGRAD; break;
    default: o->lr = MLK_LR_OPTIMAL; break;
    }
    o->alpha = a->alpha;
    o->eta0 = a->eta0;
    o->power_t = a->power_t;
    o->batch_size = a->batch_size;
    o->seed = a->seed;
    o->shuffle = a->shuffle;
    o->epoch0 = a->epoch;
    o->shard = a->shard;
    o->epochs = 1;
}

/* One epoch of instance a over the rows of f outside its fold (skip: the
 * others), as train_epoch trains a copy of those rows: the kernel's skip
 * mask visits the same rows in the same order. */
static int cv_train_one(task_ctx_t *ctx, const Mlops__Tasks__TrainEpochArgs *a, const mlk_features *f,
                        const double *dense, const uint8_t *skip, size_t ntrain, Mlops__Tasks__TrainEpochResult *res)
{
    mlk_sgd_opts o;
    wk_epoch_opts(a, &o);
    mlk_cmodel *m = NULL;
    if (a->model.len) {
        if (mlk_cmodel_decode(a->model.data, a->model.len, &m, ctx->err, sizeof ctx->err) != 0) return -1;
    } else if (!(m = mlk_cmodel_new(a->classes, f->csr ? f->csr->ncols : 0, f->n_dense, o.lr == MLK_LR_ADAGRAD))) {
        return wk_task_fail(ctx, 1, "out of memory");
    }
    mlk_sgd_data d = {f->nrows, f->csr, f->n_dense ? dense : NULL, f->n_dense, f->label};
    double loss = 0;
    int rc = 0;
    if (ntrain && mlk_sgd_train_compact(m, &d, NULL, skip, &o, &loss, ctx->err, sizeof ctx->err) != 0) rc = -1;
    if (!rc && mlk_cmodel_encode(m, &res->model.data, &res->model.len) != 0) rc = wk_task_fail(ctx, 1, "out of memory");
    mlk_cmodel_destroy(&m);
    res->count = ntrain;
    res->loss = loss;
    return rc;
}

static int cv_epoch_result(task_ctx_t *ctx, size_t n, Mlops__Tasks__TrainEpochResult **resp, double *secs,
                           size_t nrows)
{
    Mlops__Tasks__CvEpochResult r = MLOPS__TASKS__CV_EPOCH_RESULT__INIT;
    r.n_inst = n;
    r.inst = resp;
    r.n_seconds = n;
    r.seconds = secs;
    int rc = wk_task_result_pack(ctx, &r.base);
    if (!rc) wk_task_metric(ctx, "rows", (double)nrows);
    return rc;
}

/* A packed shard a cv kind reads: its rows' record offsets and folds,
 * and each fold's list of rows, made when an instance of the fold first
 * comes (a search's instances come trial by trial, each trial's folds in
 * turn: a fold's list serves every trial). */
typedef struct {
    wk_packed_t w;        /* the shard (w.p), its rows' record offsets (w.off), in the thread's reused buffers */
    uint8_t *fold;        /* each row's fold, CV_TEST_ROW for a test row */
    uint32_t K;
    size_t **koff, *kn; /* per fold: its list's record offsets, their count */
    int32_t **klab;     /* per fold: their labels (a scored fold's list) */
} cv_packed_t;

/* Open shard bytes (data, len) as c (shuffled: wk_packed_take's) and
 * give each row its fold. The offsets and the records' huge-page copy
 * are the executor thread's buffers, kept from task to task as
 * train_epoch keeps them: fresh ones were faulted in and cleared by the
 * kernel on every task (each epoch's task per shard). 0, or -1 after
 * wk_task_fail; cv_packed_free in either case. */
static int cv_packed_open(task_ctx_t *ctx, const Mlops__Tasks__CvRows *rows, const void *data, size_t len,
                          int shuffled, cv_packed_t *c)
{
    memset(c, 0, sizeof *c);
    c->K = rows->folds;
    int rc = wk_packed_take(ctx, 0, data, len, shuffled, &c->w);
    if (!rc && (!(c->fold = malloc(c->w.p.nrows ? c->w.p.nrows : 1)) ||
                !(c->koff = calloc(c->K, sizeof *c->koff)) || !(c->klab = calloc(c->K, sizeof *c->klab)) ||
                !(c->kn = calloc(c->K, sizeof *c->kn))))
        rc = wk_task_fail(ctx, 1, "out of memory");
    if (!rc) rc = cv_folds(ctx, rows, c->w.p.nrows, c->w.p.test, c->w.p.row_id, c->fold);
    return rc;
}

/* Fold k's list in c, in row order, once: with in_fold 0 the training
 * rows outside fold k (what an instance of fold k trains on), with 1
 * the rows in it and their labels (what it is scored on). 0, or -1
 * after wk_task_fail. */
static int cv_fold_rows(task_ctx_t *ctx, cv_packed_t *c, uint32_t k, int in_fold)
{
    if (c->koff[k]) return 0;
    size_t nrows = c->w.p.nrows, n = 0;
    size_t *off = malloc((nrows ? nrows : 1) * sizeof *off);
    int32_t *lab = in_fold ? malloc((nrows ? nrows : 1) * sizeof *lab) : NULL;
    if (!off || (in_fold && !lab)) {
        free(off);
        free(lab);
        return wk_task_fail(ctx, 1, "out of memory");
    }
    for (size_t r = 0; r < nrows; r++) {
        uint8_t f = c->fold[r];
        if (in_fold ? f != k : f == CV_TEST_ROW || f == k) continue;
        if (in_fold) memcpy(&lab[n], c->w.p.recs + c->w.off[r], 4);
        off[n++] = c->w.off[r];
    }
    c->koff[k] = off;
    c->klab[k] = lab;
    c->kn[k] = n;
    return 0;
}

static void cv_packed_free(cv_packed_t *c)
{
    for (uint32_t k = 0; c->koff && k < c->K; k++) free(c->koff[k]);
    for (uint32_t k = 0; c->klab && k < c->K; k++) free(c->klab[k]);
    free(c->koff);
    free(c->klab);
    free(c->kn);
    free(c->fold);
    wk_packed_release(&c->w);
}

/* Instance a's start model over a packed shard p into *m. 0, or -1
 * after wk_task_fail (or with ctx->err set). */
static int cv_start_model(task_ctx_t *ctx, const Mlops__Tasks__TrainEpochArgs *a, const mlk_fpack *p,
                          mlk_cmodel **m)
{
    if (a->model.len) return mlk_cmodel_decode(a->model.data, a->model.len, m, ctx->err, sizeof ctx->err) ? -1 : 0;
    if (!(*m = mlk_cmodel_new(a->classes, p->hashed ? p->n_features : 0, p->n_dense,
                              a->learning_rate == MLOPS_LR_ADAGRAD)))
        return wk_task_fail(ctx, 1, "out of memory");
    return 0;
}

/* The bytes of instance e's arguments less its start model (and its
 * cv rows, unused here) into buf: what besides the model decides its
 * epoch, whichever fields the message grows. 0, or -1 when they do not
 * fit (then it is trained on its own). */
#define CV_KEY_MAX 512
static int cv_inst_key(const Mlops__Tasks__TrainEpochArgs *e, uint8_t *buf, size_t *len)
{
    Mlops__Tasks__TrainEpochArgs c = *e;
    c.model.len = 0;
    c.model.data = NULL;
    c.cv = NULL;
    if (mlops__tasks__train_epoch_args__get_packed_size(&c) > CV_KEY_MAX) return -1;
    *len = mlops__tasks__train_epoch_args__pack(&c, buf);
    return 0;
}

/* Instance i's twin among the instances before it that train: the same
 * fold, the same arguments and the same start model bytes, so the same
 * epoch bit for bit (a grid's trials that differ only in train.epochs
 * run the same epochs until the shorter one stops). Its index, or i. */
static size_t cv_twin(const Mlops__Tasks__CvEpochArgs *a, const size_t *twin, uint8_t (*key)[CV_KEY_MAX],
                      const size_t *klen, size_t i)
{
    const ProtobufCBinaryData *mi = &a->inst[i]->model;
    for (size_t j = 0; j < i; j++) {
        const ProtobufCBinaryData *mj = &a->inst[j]->model;
        if (twin[j] != j || a->fold[j] != a->fold[i] || !klen[j] || klen[j] != klen[i] ||
            memcmp(key[j], key[i], klen[i]) || mj->len != mi->len || (mi->len && memcmp(mj->data, mi->data, mi->len)))
            continue;
        return j;
    }
    return i;
}

/* cv_epoch over a packed shard: each fold's training rows as a list of
 * record offsets (made when an instance of the fold first comes), the
 * same rows in the same order as the skip masks of the array path, and
 * every instance with rows trained in one interleaved pass
 * (sgd_multi.h: each model the bits of training it alone; the pass
 * overlaps the instances' row-to-row chains and reads each record once
 * for the trials of a fold). */
static int cv_epoch_packed(task_ctx_t *ctx, const Mlops__Tasks__CvEpochArgs *a, const void *data, size_t len,
                           Mlops__Tasks__TrainEpochResult *res, Mlops__Tasks__TrainEpochResult **resp, double *secs)
{
    cv_packed_t c;
    size_t n = a->n_inst, nt = 0;
    double t0 = now_s();
    mlk_cmodel **m = calloc(n + 1, sizeof *m);
    mlk_sgd_inst *in = calloc(n + 1, sizeof *in);
    size_t *twin = calloc(n + 1, sizeof *twin), *klen = calloc(n + 1, sizeof *klen);
    uint8_t(*key)[CV_KEY_MAX] = malloc((n + 1) * sizeof *key);
    int rc = cv_packed_open(ctx, a->rows, data, len, 1, &c);
    if (!rc && (!m || !in || !twin || !klen || !key)) rc = wk_task_fail(ctx, 1, "out of memory");
    if (!rc) rc = wk_packed_check_labels(ctx, &c.w.p, c.w.off, a->inst[0]->classes);
    for (size_t i = 0; !rc && i < n; i++) {
        uint32_t k = a->fold[i];
        if ((rc = cv_fold_rows(ctx, &c, k, 0)) != 0) break;
        mlops__tasks__train_epoch_result__init(&res[i]);
        resp[i] = &res[i];
        if (a->inst[i]->classes != a->inst[0]->classes) {
            rc = wk_task_fail(ctx, 0, "cv: damaged task arguments (instances of %u and %u classes)",
                              a->inst[i]->classes, a->inst[0]->classes);
            break;
        }
        res[i].count = c.kn[k];
        twin[i] = i;
        if (c.kn[k] && cv_inst_key(a->inst[i], key[i], &klen[i]) == 0 &&
            (twin[i] = cv_twin(a, twin, key, klen, i)) != i)
            continue; /* trained once, as its twin */
        if ((rc = cv_start_model(ctx, a->inst[i], &c.w.p, &m[i])) != 0) break;
        if (!c.kn[k]) continue; /* nothing to train: the start model as it is */
        mlk_sgd_inst *q = &in[nt];
        nt++;
        wk_epoch_opts(a->inst[i], &q->o);
        q->m = m[i];
        q->off = c.koff[k];
        q->n = c.kn[k];
        q->loss = &res[i].loss;
    }
    if (!rc && nt && mlk_sgd_multi_train_packed(in, nt, &c.w.p, NULL, ctx->err, sizeof ctx->err) != 0) rc = -1;
    for (size_t i = 0; !rc && i < n; i++) {
        const Mlops__Tasks__TrainEpochResult *t = &res[twin[i]];
        if (twin[i] == i) {
            if (mlk_cmodel_encode(m[i], &res[i].model.data, &res[i].model.len) != 0)
                rc = wk_task_fail(ctx, 1, "out of memory");
        } else if (!(res[i].model.data = malloc(t->model.len))) {
            rc = wk_task_fail(ctx, 1, "out of memory");
        } else {
            memcpy(res[i].model.data, t->model.data, t->model.len);
            res[i].model.len = t->model.len;
            res[i].loss = t->loss;
        }
    }
    /* the pass trains them together: each its share of the task's time */
    double share = (now_s() - t0) / (double)(n ? n : 1);
    for (size_t i = 0; !rc && i < n; i++) secs[i] = share;
    if (!rc) rc = cv_epoch_result(ctx, n, resp, secs, c.w.p.nrows);
    for (size_t i = 0; m && i < n; i++) mlk_cmodel_destroy(&m[i]);
    free(m);
    free(in);
    free(twin);
    free(klen);
    free(key);
    cv_packed_free(&c);
    return rc;
}

/* A cv_epoch task's read of its shard (wk_task_input_with). */
typedef struct {
    task_ctx_t *ctx;
    const Mlops__Tasks__CvEpochArgs *a;
    int batched;
    Mlops__Tasks__TrainEpochResult *res, **resp;
    double *secs;
    mlk_features *f; /* not packed (or batched): decoded, with */
    uint8_t *fold;   /* the rows' folds */
    int packed, rc;  /* packed: trained here, rc the outcome */
} cv_in_t;

static int cv_epoch_input_fn(const void *data, size_t len, void *arg)
{
    cv_in_t *e = arg;
    if (mlk_fpack_is(data, len) && !e->batched) {
        e->packed = 1;
        e->rc = cv_epoch_packed(e->ctx, e->a, data, len, e->res, e->resp, e->secs);
        return 0;
    }
    return cv_decode(e->ctx, e->a->rows, data, len, &e->f, &e->fold);
}

int wk_kind_cv_epoch(task_ctx_t *ctx)
{
    Mlops__Tasks__CvEpochArgs *a = wk_task_args(ctx, &mlops__tasks__cv_epoch_args__descriptor);
    if (!a) return -1;
    mlk_features *f = NULL;
    uint8_t *fold = NULL, **skip = NULL; /* per fold, made when an instance of it first comes */
    double *dense = NULL;
    size_t n = a->n_inst;
    Mlops__Tasks__TrainEpochResult *res = calloc(n + 1, sizeof *res);
    Mlops__Tasks__TrainEpochResult **resp = calloc(n + 1, sizeof *resp);
    double *secs = calloc(n + 1, sizeof *secs);
    int rc = -1;
    if (!res || !resp || !secs) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    if (cv_args_ok(ctx, a->rows, n, a->fold, a->n_fold) != 0) goto out;
    int batched = 0;
    for (size_t i = 0; i < n; i++) {
        const Mlops__Tasks__TrainEpochArgs *e = a->inst[i];
        if (e->classes < 2 || e->classes > 65536 || e->n_features > INT32_MAX || e->cv) {
            rc = wk_task_fail(ctx, 0, "cv: damaged task arguments (%u classes, %llu features)", e->classes,
                              (unsigned long long)e->n_features);
            goto out;
        }
        batched |= e->batch_size > 1;
    }
    /* the shard read once, in the store's map when held here; a packed
     * one is trained from its records where they lie (mini-batches read
     * arrays: decoded) */
    cv_in_t in = {ctx, a, batched, res, resp, secs, NULL, NULL, 0, 0};
    int irc = wk_task_input_with(ctx, 0, cv_epoch_input_fn, &in);
    f = in.f;
    fold = in.fold;
    if (irc != 0 || in.packed) {
        rc = in.packed ? in.rc : -1;
        goto out;
    }
    for (size_t i = 0; i < f->nrows; i++)
        if (fold[i] != CV_TEST_ROW && (f->label[i] < 0 || (uint32_t)f->label[i] >= a->inst[0]->classes)) {
            rc = wk_task_fail(ctx, 0, "train: row %lld has no class label", (long long)f->row_id[i]);
            goto out;
        }
    const double *dv = f->dense64; /* f64 shards are read in place */
    if (f->n_dense && f->dense_type != MLK_DENSE_F64) dv = dense = mlk_features_dense_f64(f);
    if (f->n_dense && !dv) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    /* the instances come trial by trial, each trial's folds in turn */
    uint32_t K = a->rows->folds;
    size_t *ntrain = calloc(K, sizeof *ntrain);
    if (!ntrain || !(skip = calloc(K, sizeof *skip))) {
        free(ntrain);
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        double t0 = now_s();
        uint32_t k = a->fold[i];
        if (!skip[k] && (skip[k] = malloc(f->nrows ? f->nrows : 1)) != NULL)
            for (size_t r = 0; r < f->nrows; r++) {
                skip[k][r] = fold[r] == CV_TEST_ROW || fold[r] == k;
                ntrain[k] += !skip[k][r];
            }
        const uint8_t *sk = skip[k];
        if (!sk) {
            rc = wk_task_fail(ctx, 1, "out of memory");
            break;
        }
        mlops__tasks__train_epoch_result__init(&res[i]);
        resp[i] = &res[i];
        if (a->inst[i]->classes != a->inst[0]->classes)
            rc = wk_task_fail(ctx, 0, "cv: damaged task arguments (instances of %u and %u classes)",
                              a->inst[i]->classes, a->inst[0]->classes);
        else rc = cv_train_one(ctx, a->inst[i], f, dv, sk, ntrain[k], &res[i]);
        if (rc) break;
        secs[i] = now_s() - t0;
    }
    free(ntrain);
    if (rc) goto out;
    rc = cv_epoch_result(ctx, n, resp, secs, f->nrows);
out:
    for (size_t i = 0; res && i < n; i++) free(res[i].model.data);
    free(res);
    free(resp);
    free(secs);
    for (uint32_t k = 0; skip && a->rows && k < a->rows->folds; k++) free(skip[k]);
    free(skip);
    free(dense);
    free(fold);
    mlk_features_destroy(&f);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* The rows of one fold an instance is scored on: an array block g (with
 * its dense part), or, when p is set, the records at off[0..nr-1] of a
 * packed shard with their labels lab[]. */
typedef struct {
    const mlk_features *g;
    const double *dense;
    const mlk_fpack *p;
    const size_t *off;
    const int32_t *lab;
    size_t nr;
} cv_rows_t;

/* Instance a's metrics partial over the rows r of its fold. */
static int cv_score(task_ctx_t *ctx, const Mlops__Tasks__EvaluateArgs *a, const cv_rows_t *r,
                    Mlops__Tasks__EvaluateResult *res)
{
    mlk_cmodel *m = NULL;
    mlk_metrics *part = NULL;
    double *proba = NULL;
    int rc = -1;
    size_t n = r->p ? r->nr : r->g->nrows;
    if (a->classes < 2 || a->classes > 65536 || a->n_scale_mean || a->n_scale_scale || a->cv) {
        rc = wk_task_fail(ctx, 0, "cv: damaged evaluate arguments (%u classes)", a->classes);
        goto out;
    }
    if (mlk_cmodel_decode(a->model.data, a->model.len, &m, ctx->err, sizeof ctx->err) != 0) goto out;
    if (!(part = mlk_metrics_new(a->classes, 0))) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    if (n) {
        if (!(proba = malloc(n * a->classes * sizeof *proba))) {
            rc = wk_task_fail(ctx, 1, "out of memory");
            goto out;
        }
        if (r->p) {
            if (mlk_sgd_predict_proba_packed(m, r->p, r->off, n, proba, ctx->err, sizeof ctx->err) != 0) goto out;
        } else {
            mlk_sgd_data d = {n, r->g->csr, r->dense, r->g->n_dense, NULL};
            if (mlk_sgd_predict_proba_compact(m, &d, proba, ctx->err, sizeof ctx->err) != 0) goto out;
        }
        if (mlk_metrics_add(part, n, r->p ? r->lab : r->g->label, NULL, proba, ctx->err, sizeof ctx->err) != 0)
            goto out;
    }
    if (mlk_metrics_encode(part, &res->partial.data, &res->partial.len) != 0) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(proba);
    mlk_metrics_destroy(&part);
    mlk_cmodel_destroy(&m);
    return rc;
}

/* cv_evaluate over a packed shard: each fold's rows as record offsets
 * and labels, in row order (the rows the array path copies out). */
static int cv_evaluate_packed(task_ctx_t *ctx, const Mlops__Tasks__CvEvaluateArgs *a, const void *data,
                              size_t len, Mlops__Tasks__EvaluateResult *res, Mlops__Tasks__EvaluateResult **resp)
{
    cv_packed_t c;
    size_t n = a->n_inst;
    int rc = cv_packed_open(ctx, a->rows, data, len, 0, &c);
    for (size_t i = 0; !rc && i < n; i++) {
        uint32_t k = a->fold[i];
        if ((rc = cv_fold_rows(ctx, &c, k, 1)) != 0) break;
        mlops__tasks__evaluate_result__init(&res[i]);
        resp[i] = &res[i];
        cv_rows_t rows = {NULL, NULL, &c.w.p, c.koff[k], c.klab[k], c.kn[k]};
        rc = cv_score(ctx, a->inst[i], &rows, &res[i]);
    }
    if (!rc) {
        Mlops__Tasks__CvEvaluateResult r = MLOPS__TASKS__CV_EVALUATE_RESULT__INIT;
        r.n_inst = n;
        r.inst = resp;
        rc = wk_task_result_pack(ctx, &r.base);
        if (!rc) wk_task_metric(ctx, "rows", (double)c.w.p.nrows);
    }
    cv_packed_free(&c);
    return rc;
}

/* A cv_evaluate task's read of its shard. */
typedef struct {
    task_ctx_t *ctx;
    const Mlops__Tasks__CvEvaluateArgs *a;
    Mlops__Tasks__EvaluateResult *res, **resp;
    mlk_features *f;
    uint8_t *fold;
    int packed, rc;
} cv_eval_in_t;

static int cv_evaluate_input_fn(const void *data, size_t len, void *arg)
{
    cv_eval_in_t *e = arg;
    if (mlk_fpack_is(data, len)) {
        e->packed = 1;
        e->rc = cv_evaluate_packed(e->ctx, e->a, data, len, e->res, e->resp);
        return 0;
    }
    return cv_decode(e->ctx, e->a->rows, data, len, &e->f, &e->fold);
}

int wk_kind_cv_evaluate(task_ctx_t *ctx)
{
    Mlops__Tasks__CvEvaluateArgs *a = wk_task_args(ctx, &mlops__tasks__cv_evaluate_args__descriptor);
    if (!a) return -1;
    mlk_features *f = NULL, **g = NULL;
    uint8_t *fold = NULL, *sel = NULL;
    double **dense = NULL;
    size_t n = a->n_inst;
    uint32_t K = a->rows ? a->rows->folds : 0;
    Mlops__Tasks__EvaluateResult *res = calloc(n + 1, sizeof *res);
    Mlops__Tasks__EvaluateResult **resp = calloc(n + 1, sizeof *resp);
    int rc = -1;
    if (!res || !resp) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    if (cv_args_ok(ctx, a->rows, n, a->fold, a->n_fold) != 0) goto out;
    /* a packed shard is scored from its records where they lie */
    cv_eval_in_t in = {ctx, a, res, resp, NULL, NULL, 0, 0};
    int irc = wk_task_input_with(ctx, 0, cv_evaluate_input_fn, &in);
    f = in.f;
    fold = in.fold;
    if (irc != 0 || in.packed) {
        rc = in.packed ? in.rc : -1;
        goto out;
    }
    /* each fold's rows, copied when an instance of it first comes, as
     * evaluate copies them: one shard's training rows in all */
    g = calloc(K, sizeof *g);
    dense = calloc(K, sizeof *dense);
    sel = malloc(f->nrows ? f->nrows : 1);
    if (!g || !dense || !sel) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t k = a->fold[i];
        if (!g[k]) {
            for (size_t r = 0; r < f->nrows; r++) sel[r] = fold[r] == k;
            g[k] = mlk_features_select(f, sel, 1);
            if (g[k] && g[k]->n_dense && g[k]->nrows) dense[k] = mlk_features_dense_f64(g[k]);
            if (!g[k] || (g[k]->n_dense && g[k]->nrows && !dense[k])) {
                rc = wk_task_fail(ctx, 1, "out of memory");
                goto out;
            }
        }
        mlops__tasks__evaluate_result__init(&res[i]);
        resp[i] = &res[i];
        cv_rows_t rows = {g[k], dense[k], NULL, NULL, NULL, 0};
        if (cv_score(ctx, a->inst[i], &rows, &res[i]) != 0) goto out;
    }
    Mlops__Tasks__CvEvaluateResult r = MLOPS__TASKS__CV_EVALUATE_RESULT__INIT;
    r.n_inst = n;
    r.inst = resp;
    rc = wk_task_result_pack(ctx, &r.base);
    if (!rc) wk_task_metric(ctx, "rows", (double)f->nrows);
out:
    for (size_t i = 0; res && i < n; i++) free(res[i].partial.data);
    free(res);
    free(resp);
    free(sel);
    for (uint32_t k = 0; g && k < K; k++) mlk_features_destroy(&g[k]);
    for (uint32_t k = 0; dense && k < K; k++) free(dense[k]);
    free(g);
    free(dense);
    free(fold);
    mlk_features_destroy(&f);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}
