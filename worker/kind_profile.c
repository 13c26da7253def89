/* kind_profile.c: the "profile_qround", "profile_bins" and
 * "profile_count" task kinds:
 * one shard's part of the training rows' reference distributions, which
 * the registered artifact keeps for drift monitoring (stage_profile.c).
 *
 * They read the shard's raw frame (input 0: the values before this job's
 * scaler and hasher) and its split shard (input 1: the same rows in the
 * same order, with the test flags and the features train used); a count
 * task asked for no column counts only the model's probabilities and
 * reads the split shard alone (input 0). Only the training rows (test
 * flag 0, or every row without a split) count.
 *   profile_qround: one round of the exact deciles (quantile.h) of the
 *                   numeric columns, masked to the training rows; in
 *                   round 0 also the category counts below, which need
 *                   neither the deciles nor the model, so that they run
 *                   beside train instead of after it.
 *   profile_count:  per numeric column the counts in the 10 bins that
 *                   the 9 deciles bound (bin = number of edges < x, as
 *                   numpy.searchsorted(edges, x, side="left")) and the
 *                   missing count; per categorical column named (none
 *                   when round 0 counted them) every distinct
 *                   value and its count, in byte order (the top values
 *                   need exact global counts); per weight vector the
 *                   counts of the model's probability in 10 equal bins
 *                   of [0, 1] (bin = min(floor(10 p), 9)); each part only
 *                   where asked (columns named, a model given): the
 *                   bins phase ("profile_bins", the same kind) counts
 *                   the columns beside train, the count phase after it
 *                   only the probabilities.
 * A count task with the model and no column reads a packed split shard
 * where it lies (read_packed_proba). Round 0 is usually answered by the
 * featurize tasks instead (profile_round0.h).
 * Everything returned is a count, so the coordinator's sums are the same
 * whatever the number of workers. */
#include "kinds.h"
#include "fpack.h"
#include "err.h"
#include "fshard.h"
#include "model.h"
#include "packed_input.h"
#include "profile_counts.h"
#include "profile_mask.h"
#include "quantile.h"
#include "sgd.h"
#include "task.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_EDGES 9
#define PROFILE_BINS 10

typedef struct {
    mlk_features *fs; /* only where the model scores the rows */
    size_t nrows;
    uint8_t *train; /* 1 = a training row */
    double **num;   /* the numeric columns asked for, copied from the frame */
    size_t nnum;
} prof_in_t;

static void prof_in_free(prof_in_t *p)
{
    mlk_features_destroy(&p->fs);
    free(p->train);
    for (size_t c = 0; p->num && c < p->nnum; c++) free(p->num[c]);
    free(p->num);
}

/* The training mask of a split shard (data, len) into p (profile_mask.h:
 * a packed shard's test flags alone, read where they lie). */
typedef struct {
    task_ctx_t *ctx;
    size_t input;
    prof_in_t *p;
} mask_read_t;

static int read_mask(const void *data, size_t len, void *arg)
{
    mask_read_t *m = arg;
    return wk_profile_mask(m->ctx, m->input, data, len, &m->p->train, &m->p->nrows);
}

/* What a task reads of the raw frame: the named numeric columns
 * (copied out) and the named text columns' counts (cats), in one view
 * of the stored encoding (frame.h): the decode copied every column,
 * the text ones included, and cost ~60 times the view. */
typedef struct {
    task_ctx_t *ctx;
    prof_in_t *p;
    char **numeric, **categorical;
    size_t nn, ncat;
    Mlops__Tasks__ProfileCategory *cats;
    Mlops__Tasks__ProfileCategory **catp;
} frame_read_t;

/* The strings of a viewed text column (profile_counts.h). */
static const char *view_str_at(const void *col, size_t r, size_t *len)
{
    return mlk_view_str_at(col, r, len);
}

static int read_frame(const void *data, size_t len, void *arg)
{
    frame_read_t *fr = arg;
    task_ctx_t *ctx = fr->ctx;
    prof_in_t *p = fr->p;
    mlk_frameview *v = NULL;
    if (mlk_frame_view(data, len, &v) != 0)
        return wk_task_fail(ctx, 0, "shard %s is not a valid frame", ctx->ta->inputs[0]->key);
    int rc = 0;
    if (v->nrows != p->nrows)
        rc = wk_task_fail(ctx, 0, "profile: split shard %s does not match frame %s",
                          ctx->ta->inputs[1]->key, ctx->ta->inputs[0]->key);
    if (!rc && !(p->num = calloc(fr->nn + 1, sizeof *p->num))) rc = wk_task_fail(ctx, 1, "out of memory");
    for (size_t c = 0; !rc && c < fr->nn; c++) {
        int k = mlk_frame_view_col(v, fr->numeric[c]);
        if (k < 0 || v->cols[k].type != MLK_F64) {
            rc = wk_task_fail(ctx, 0, "profile: the frame has no numeric column '%s'",
                              fr->numeric[c]);
            break;
        }
        p->nnum = c + 1;
        if (!(p->num[c] = malloc((v->nrows + 1) * sizeof **p->num))) {
            rc = wk_task_fail(ctx, 1, "out of memory");
            break;
        }
        mlk_frame_view_f64(v, (size_t)k, p->num[c]);
    }
    for (size_t c = 0; c < fr->ncat; c++) {
        mlops__tasks__profile_category__init(&fr->cats[c]);
        fr->catp[c] = &fr->cats[c];
    }
    for (size_t c = 0; !rc && c < fr->ncat; c++) {
        int k = mlk_frame_view_col(v, fr->categorical[c]);
        if (k < 0 || v->cols[k].type != MLK_STR)
            rc = wk_task_fail(ctx, 0, "profile: the frame has no text column '%s'",
                              fr->categorical[c]);
        else if (wk_profile_count_category(&v->cols[k], view_str_at, v->cols[k].missing, p->train, v->nrows,
                                           &fr->cats[c]) != 0)
            rc = wk_task_fail(ctx, 1, "out of memory");
    }
    mlk_frame_view_destroy(&v);
    return rc;
}

/* The split shard's training mask (and with features its features),
 * then with fr what fr asks of the frame. */
static int prof_inputs(task_ctx_t *ctx, prof_in_t *p, frame_read_t *fr, int features)
{
    int frame = fr != NULL;
    size_t si = frame ? 1 : 0;
    if (features) {
        if (wk_task_input_features(ctx, si, &p->fs) != 0) return -1;
        p->nrows = p->fs->nrows;
        if (!(p->train = malloc(p->nrows ? p->nrows : 1)))
            return wk_task_fail(ctx, 1, "out of memory");
        for (size_t i = 0; i < p->nrows; i++) p->train[i] = !p->fs->test || !p->fs->test[i];
    } else {
        mask_read_t m = {ctx, si, p};
        if (si >= ctx->ta->n_inputs || wk_task_input_with(ctx, si, read_mask, &m) != 0)
            /* as wk_task_input_features: a failed fetch already set the
             * message (the first one is kept) */
            return wk_task_fail(ctx, 0, "shard %s is not a valid feature shard",
                                si < ctx->ta->n_inputs ? ctx->ta->inputs[si]->key : "(none)");
    }
    if (frame) {
        fr->ctx = ctx;
        fr->p = p;
        if (ctx->ta->n_inputs < 1 || wk_task_input_with(ctx, 0, read_frame, fr) != 0)
            return wk_task_fail(ctx, 0, "shard %s is not a valid frame",
                                ctx->ta->n_inputs ? ctx->ta->inputs[0]->key : "(none)");
    }
    return 0;
}


int wk_kind_profile_qround(task_ctx_t *ctx)
{
    Mlops__Tasks__ProfileQroundArgs *a =
        wk_task_args(ctx, &mlops__tasks__profile_qround_args__descriptor);
    if (!a) return -1;
    prof_in_t p = {0};
    const double **cols = NULL;
    uint8_t *ans = NULL;
    size_t anslen = 0, ncat = a->n_categorical;
    Mlops__Tasks__ProfileCategory *cats = calloc(ncat + 1, sizeof *cats);
    Mlops__Tasks__ProfileCategory **catp = calloc(ncat + 1, sizeof *catp);
    int rc = -1;
    if (!cats || !catp) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    frame_read_t fr = {.numeric = a->numeric, .nn = a->n_numeric, .categorical = a->categorical,
                       .ncat = ncat, .cats = cats, .catp = catp};
    if (prof_inputs(ctx, &p, &fr, 0) != 0) goto out;
    cols = (const double **)p.num;
    if (mlk_qjob_answer_masked(a->quantile_request.data, a->quantile_request.len, cols,
                               a->n_numeric, p.nrows, p.train, &ans, &anslen, ctx->err,
                               sizeof ctx->err) != 0)
        goto out;
    Mlops__Tasks__ProfileQroundResult res = MLOPS__TASKS__PROFILE_QROUND_RESULT__INIT;
    res.quantile_answer.data = ans;
    res.quantile_answer.len = anslen;
    res.n_categorical = ncat;
    res.categorical = catp;
    rc = wk_task_result_pack(ctx, &res.base);
out:
    wk_profile_categories_free(cats, ncat);
    free(catp);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    free(ans);
    prof_in_free(&p);
    return rc;
}

/* The count phase with a model and no column to count: a packed split
 * shard's training mask and the model's probabilities of every row, read
 * in place (mlk_sgd_predict_proba_packed: bit for bit the arrays' ones),
 * where decoding the shard into arrays was most of the task, on the
 * job's critical path after train. An encoded shard: nothing (packed 0),
 * the caller decodes it. */
typedef struct {
    task_ctx_t *ctx;
    const mlk_cmodel *m;
    prof_in_t *p;
    double *proba;
    int packed;
} packed_proba_t;

static int read_packed_proba(const void *data, size_t len, void *arg)
{
    packed_proba_t *pp = arg;
    task_ctx_t *ctx = pp->ctx;
    if (!mlk_fpack_is(data, len)) return 0;
    pp->packed = 1;
    wk_packed_t w;
    int rc = wk_packed_take(ctx, 0, data, len, 0, &w);
    size_t n = rc ? 0 : w.p.nrows;
    if (!rc && (!(pp->p->train = malloc(n ? n : 1)) ||
                !(pp->proba = malloc((n * pp->m->n_classes + 1) * sizeof *pp->proba))))
        rc = wk_task_fail(ctx, 1, "out of memory");
    if (!rc) {
        pp->p->nrows = n;
        for (size_t i = 0; i < n; i++) pp->p->train[i] = !w.p.test || !w.p.test[i];
        if (n && mlk_sgd_predict_proba_packed(pp->m, &w.p, w.off, n, pp->proba, ctx->err, sizeof ctx->err) != 0)
            rc = -1;
    }
    wk_packed_release(&w);
    return rc;
}

static size_t bin_of(const double *edges, double x)
{
    size_t b = 0;
    while (b < PROFILE_EDGES && edges[b] < x) b++;
    return b;
}

int wk_kind_profile_count(task_ctx_t *ctx)
{
    Mlops__Tasks__ProfileCountArgs *a =
        wk_task_args(ctx, &mlops__tasks__profile_count_args__descriptor);
    if (!a) return -1;
    prof_in_t p = {0};
    const double **cols = NULL;
    mlk_cmodel *m = NULL; /* compact: its weights stay in L2 while the rows are scored */
    double *dense = NULL, *proba = NULL;
    uint64_t *num = NULL, *pc = NULL;
    Mlops__Tasks__ProfileCategory *cats = NULL, **catp = NULL;
    size_t ncat = a->n_categorical;
    int rc = -1;
    if (a->n_edges != a->n_numeric * PROFILE_EDGES) {
        rc = wk_task_fail(ctx, 0, "profile: damaged task arguments");
        goto out;
    }
    if (a->model.len &&
        mlk_cmodel_decode(a->model.data, a->model.len, &m, ctx->err, sizeof ctx->err) != 0) {
        ctx->retry = 0;
        goto out;
    }
    cats = calloc(ncat + 1, sizeof *cats);
    catp = calloc(ncat + 1, sizeof *catp);
    if (!cats || !catp) goto oom;
    frame_read_t fr = {.numeric = a->numeric, .nn = a->n_numeric, .categorical = a->categorical,
                       .ncat = ncat, .cats = cats, .catp = catp};
    packed_proba_t pp = {ctx, m, &p, NULL, 0};
    if (m && a->n_numeric + ncat == 0) {
        if (wk_task_input_with(ctx, 0, read_packed_proba, &pp) != 0) {
            wk_task_fail(ctx, 0, "shard %s is not a valid feature shard", ctx->ta->inputs[0]->key);
            proba = pp.proba;
            goto out;
        }
        proba = pp.proba;
    }
    if (!pp.packed && prof_inputs(ctx, &p, a->n_numeric + ncat > 0 ? &fr : NULL, m != NULL) != 0) goto out;
    cols = (const double **)p.num;
    size_t n = p.nrows, nn = a->n_numeric, K = m ? m->n_classes : 0, nvec = K == 2 ? 1 : K;
    num = calloc(nn * (PROFILE_BINS + 1) + 1, sizeof *num);
    pc = calloc(nvec * PROFILE_BINS + 1, sizeof *pc);
    if (!proba) proba = malloc((m ? n * K + 1 : 1) * sizeof *proba);
    if (!num || !pc || !proba) goto oom;
    uint64_t rows = 0;
    for (size_t i = 0; i < n; i++) rows += p.train[i];
    for (size_t c = 0; c < nn; c++) {
        uint64_t *cnt = &num[c * (PROFILE_BINS + 1)];
        const double *e = &a->edges[c * PROFILE_EDGES];
        for (size_t i = 0; i < n; i++) {
            if (!p.train[i]) continue;
            double x = cols[c][i];
            cnt[isnan(x) ? PROFILE_BINS : bin_of(e, x)]++;
        }
    }
    /* the model's probabilities on the features it was trained on */
    mlk_features *fs = p.fs;
    if (n && m && !pp.packed) {
        dense = fs->n_dense ? mlk_features_dense_f64(fs) : NULL;
        if (fs->n_dense && !dense) goto oom;
        mlk_sgd_data d = {n, fs->csr, dense, fs->n_dense, NULL};
        if (mlk_sgd_predict_proba_compact(m, &d, proba, ctx->err, sizeof ctx->err) != 0) goto out;
    }
    for (size_t i = 0; m && i < n; i++) {
        if (!p.train[i]) continue;
        for (size_t k = 0; k < nvec; k++) {
            double x = proba[i * K + (K == 2 ? 1 : k)];
            size_t b = x >= 1 ? PROFILE_BINS - 1 : x > 0 ? (size_t)(x * PROFILE_BINS) : 0;
            pc[k * PROFILE_BINS + (b < PROFILE_BINS ? b : PROFILE_BINS - 1)]++;
        }
    }
    Mlops__Tasks__ProfileCountResult res = MLOPS__TASKS__PROFILE_COUNT_RESULT__INIT;
    res.n_numeric = nn * (PROFILE_BINS + 1);
    res.numeric = num;
    res.n_categorical = ncat;
    res.categorical = catp;
    res.n_proba = nvec * PROFILE_BINS;
    res.proba = pc;
    res.rows = rows;
    rc = wk_task_result_pack(ctx, &res.base);
    if (!rc) wk_task_metric(ctx, "rows", (double)rows);
    goto out;
oom:
    rc = wk_task_fail(ctx, 1, "out of memory");
out:
    wk_profile_categories_free(cats, ncat);
    free(catp);
    free(num);
    free(pc);
    free(dense);
    free(proba);
    mlk_cmodel_destroy(&m);
    prof_in_free(&p);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}
