/* kind_lbfgs.c: the worker's part of the L-BFGS solver — the lbfgs_grad
 * kind: one shard's summed log loss and gradient at the point the
 * coordinator names (coordinator/stage_lbfgs.c reduces them in shard
 * order and steps the solver, common/kernels/lbfgs.h).
 *
 * Only the hashed inputs some training row holds have weights (the
 * others stay zero through every iteration, their gradient being the
 * penalty's alone), so the arguments carry the weights of those active
 * inputs and the result the gradient of the inputs this shard touches:
 * a few thousand values where the model has 2^20. The arguments come
 * over the network and are checked: a mismatch fails the task, not
 * retryable.
 *
 * A packed shard (fpack.h, what featurize writes) is read where it lies
 * in the store's map, and the weights and gradient live in the shard's
 * own column space (its few thousand distinct columns): no decode into
 * arrays, no model or gradient of n_features entries to allocate, zero
 * and scan on each of the ~100 evaluations of a fit (those were half a
 * task's time). Nor is the shard walked and checked again on each of
 * them: it is opened once per store snapshot (packed_cache.h). Any
 * other feature shard is decoded (fshard.h) and goes
 * through the dense kernel. Both give the same sums, bit for bit
 * (logistic.h). */
#include "err.h"
#include "fshard.h"
#include "kinds.h"
#include "logistic.h"
#include "model.h"
#include "packed_cache.h"
#include "packed_input.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An evaluation's arguments, unpacked once per executor thread for
 * every task of it that the thread runs (they all carry the same bytes:
 * unpacking ~130 KB was 0.14 of a task's 3 ms), kept in the thread's
 * cache (task.h) with a copy of the bytes they were unpacked from, which
 * the next task's are compared with; and the task's scratch arrays, the
 * size of the largest shard's columns so far (they were six callocs a
 * task). */
typedef struct {
    uint8_t *bytes;
    size_t len;
    Mlops__Tasks__LbfgsGradArgs *a;
    double *wl, *gl;  /* cap_c * kv */
    uint8_t *tl;      /* cap_c */
    size_t cap_c, kv; /* what wl, gl, tl hold room for */
    int owned;        /* no thread cache (a test's context): the task frees it */
} lbfgs_args_t;

static void args_free(void *p)
{
    lbfgs_args_t *c = p;
    if (!c) return;
    if (c->a) protobuf_c_message_free_unpacked(&c->a->base, NULL);
    free(c->bytes);
    free(c->wl);
    free(c->gl);
    free(c->tl);
    free(c);
}

/* The task's arguments, unpacked (borrowed from the thread's cache), or
 * NULL after wk_task_fail. */
static lbfgs_args_t *args_of(task_ctx_t *ctx)
{
    const uint8_t *data = ctx->ta->args.data;
    size_t len = ctx->ta->args.len;
    char key[96];
    snprintf(key, sizeof key, "lbfgs_grad %s", ctx->ta->job_id ? ctx->ta->job_id : "");
    lbfgs_args_t *c = ctx->thread ? wk_task_cache_get(ctx, key) : NULL;
    if (c && c->len == len && (!len || !memcmp(c->bytes, data, len))) return c;
    Mlops__Tasks__LbfgsGradArgs *a = wk_task_args(ctx, &mlops__tasks__lbfgs_grad_args__descriptor);
    if (!a) return NULL;
    if (!c && (c = calloc(1, sizeof *c)) != NULL) {
        c->owned = !ctx->thread;
        if (c->owned) {
            c->a = a;
            return c;
        }
        wk_task_cache_put(ctx, key, c, args_free); /* frees c if it cannot keep it */
        c = wk_task_cache_get(ctx, key);
    }
    uint8_t *b = c ? malloc(len ? len : 1) : NULL;
    if (!b) {
        protobuf_c_message_free_unpacked(&a->base, NULL);
        wk_task_fail(ctx, 1, "out of memory");
        return NULL;
    }
    memcpy(b, data, len);
    if (c->a) protobuf_c_message_free_unpacked(&c->a->base, NULL);
    free(c->bytes);
    c->a = a;
    c->bytes = b;
    c->len = len;
    return c;
}

/* c's scratch arrays with room for nc columns of kv values; -1 without
 * memory. wl and gl are not cleared (the caller sets every value). */
static int scratch(lbfgs_args_t *c, size_t nc, size_t kv)
{
    if (c->cap_c >= nc && c->kv == kv && c->wl) return 0;
    free(c->wl);
    free(c->gl);
    free(c->tl);
    c->wl = malloc((nc * kv + 1) * sizeof *c->wl);
    c->gl = malloc((nc * kv + 1) * sizeof *c->gl);
    c->tl = malloc(nc + 1);
    c->cap_c = c->wl && c->gl && c->tl ? nc : 0;
    c->kv = kv;
    return c->cap_c == nc ? 0 : -1;
}

typedef struct {
    task_ctx_t *ctx;
    lbfgs_args_t *c;
    Mlops__Tasks__LbfgsGradArgs *a;
    int packed, rc;
    mlk_features *f; /* the decoded shard, when not packed */
} lbfgs_in_t;

/* The arguments against the shard: its hashed width nf and dense width
 * nd, kv score vectors. 0, or -1 after wk_task_fail. */
static int check_args(task_ctx_t *ctx, const Mlops__Tasks__LbfgsGradArgs *a, uint64_t nf, uint64_t nd,
                      size_t kv)
{
    if (nf != a->n_features)
        return wk_task_fail(ctx, 0, "lbfgs: shard has %llu hashed columns, the job %llu", (unsigned long long)nf,
                            (unsigned long long)a->n_features);
    size_t na = a->n_active;
    if ((a->n_w && a->n_w != (na + nd) * kv) || (a->n_b && a->n_b != kv) || (!a->n_w && na))
        return wk_task_fail(ctx, 0,
                            "lbfgs: damaged task arguments (%zu weights for %zu active inputs, "
                            "%llu dense, %zu vectors)",
                            a->n_w, na, (unsigned long long)nd, kv);
    for (size_t i = 0; i < na; i++)
        if (a->active[i] >= nf || (i && a->active[i] <= a->active[i - 1]))
            return wk_task_fail(ctx, 0, "lbfgs: damaged task arguments (active input %zu is %u)", i,
                                a->active[i]);
    return 0;
}

/* The result: count training rows, their loss, and the gradient: of the
 * hashed inputs some row touched (flag touched[c] for the nc columns of
 * g, nc * kv values; column c is hashed input cols[c], or c without
 * cols), then of the nd dense inputs (gd) and the intercepts (gb). The
 * touched inputs are in increasing order, as the columns are; they go
 * with the gradient unless the coordinator holds them already
 * (touched_known: the same rows touch the same inputs at every
 * evaluation), their count always. Left out, they are a quarter less to
 * pack, encrypt, send and unpack per result. */
static int send_result(task_ctx_t *ctx, size_t count, double loss, const uint8_t *touched, size_t nc,
                       const uint32_t *cols, const double *g, const double *gd, size_t nd, double *gb, size_t kv,
                       int touched_known)
{
    size_t nt = 0;
    for (size_t c = 0; c < nc; c++) nt += touched[c];
    uint32_t *tidx = malloc((nt ? nt : 1) * sizeof *tidx);
    double *grad = malloc(((nt + nd) * kv + 1) * sizeof *grad);
    if (!tidx || !grad) {
        free(tidx);
        free(grad);
        return wk_task_fail(ctx, 1, "out of memory");
    }
    for (size_t c = 0, t = 0; c < nc; c++)
        if (touched[c]) {
            tidx[t] = cols ? cols[c] : (uint32_t)c;
            memcpy(grad + t * kv, g + c * kv, kv * sizeof *grad);
            t++;
        }
    memcpy(grad + nt * kv, gd, nd * kv * sizeof *grad);
    Mlops__Tasks__LbfgsGradResult res = MLOPS__TASKS__LBFGS_GRAD_RESULT__INIT;
    res.count = count;
    res.loss = loss;
    res.n_touched = touched_known ? 0 : nt;
    res.touched = tidx;
    res.touched_count = nt;
    res.n_grad = (nt + nd) * kv;
    res.grad = grad;
    res.n_grad_b = kv;
    res.grad_b = gb;
    res.n_dense = nd;
    int rc = wk_task_result_pack(ctx, &res.base);
    wk_task_metric(ctx, "rows", (double)count);
    free(tidx);
    free(grad);
    return rc;
}

static int grad_packed(lbfgs_in_t *e, const void *data, size_t len, uint64_t snap)
{
    task_ctx_t *ctx = e->ctx;
    const Mlops__Tasks__LbfgsGradArgs *a = e->a;
    wk_packed_t w;
    /* each evaluation reads the same shard again: opened once per store
     * snapshot (packed_cache.h); released at out, failed or not */
    int rc = wk_packed_take_cached(ctx, 0, data, len, snap, &w);
    const mlk_fpack *p = &w.p;
    size_t kv = a->classes == 2 ? 1 : a->classes, nc = p->ncols, nd = p->n_dense, na = a->n_active;
    double *wl = NULL, *wd = NULL, *b = NULL, *gl = NULL, *gd = NULL, *gb = NULL;
    uint8_t *tl = NULL;
    if (!rc) rc = check_args(ctx, a, p->hashed ? p->n_features : 0, nd, kv);
    if (!rc) rc = wk_packed_check_labels(ctx, p, w.off, a->classes);
    if (rc) goto out;
    wd = calloc(nd * kv + 1, sizeof *wd);
    b = calloc(kv, sizeof *b);
    gd = calloc(nd * kv + 1, sizeof *gd);
    gb = calloc(kv, sizeof *gb);
    if (!wd || !b || !gd || !gb || scratch(e->c, nc, kv) != 0) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    wl = e->c->wl;
    gl = e->c->gl;
    tl = e->c->tl;
    memset(gl, 0, nc * kv * sizeof *gl);
    memset(tl, 0, nc);
    /* the weights of the shard's columns: both lists increase; a column
     * no training row of the job holds is not active and weighs 0 (no
     * weights at all: the starting point, zero) */
    if (!a->n_w) {
        memset(wl, 0, nc * kv * sizeof *wl);
    } else if (kv == 1) {
        for (size_t c = 0, i = 0; c < nc; c++) {
            while (i < na && a->active[i] < p->cols[c]) i++;
            wl[c] = i < na && a->active[i] == p->cols[c] ? a->w[i] : 0.0;
        }
    } else {
        for (size_t c = 0, i = 0; c < nc; c++) {
            while (i < na && a->active[i] < p->cols[c]) i++;
            if (i < na && a->active[i] == p->cols[c]) memcpy(wl + c * kv, a->w + i * kv, kv * sizeof *wl);
            else memset(wl + c * kv, 0, kv * sizeof *wl);
        }
    }
    if (a->n_w) memcpy(wd, a->w + na * kv, nd * kv * sizeof *wd);
    if (a->n_b) memcpy(b, a->b, kv * sizeof *b);
    double loss = 0.0;
    if (mlk_logistic_loss_grad_packed(p, w.off, kv, wl, wd, b, &loss, gl, gd, gb, tl, ctx->err,
                                      sizeof ctx->err) != 0) {
        rc = -1;
        goto out;
    }
    size_t count = 0;
    for (size_t i = 0; i < p->nrows; i++) count += !(p->test && p->test[i]);
    rc = send_result(ctx, count, loss, tl, nc, p->cols, gl, gd, nd, gb, kv, a->touched_known);
out:
    free(wd);
    free(b);
    free(gd);
    free(gb);
    wk_packed_release(&w);
    return rc;
}

static int input_fn(const void *data, size_t len, uint64_t snap, void *arg)
{
    lbfgs_in_t *e = arg;
    if (mlk_fpack_is(data, len)) {
        e->packed = 1;
        e->rc = grad_packed(e, data, len, snap);
        return 0;
    }
    return mlk_features_decode(data, len, &e->f);
}

/* A decoded shard: its training rows through the dense kernel. */
static int grad_arrays(task_ctx_t *ctx, const Mlops__Tasks__LbfgsGradArgs *a, mlk_features *all)
{
    uint32_t ncls = a->classes;
    mlk_features *f = NULL;
    mlk_model *m = NULL;
    double *dense = NULL, *gw = NULL, *gb = NULL;
    uint8_t *touched = NULL;
    int rc = -1;
    if (all->test) {
        f = mlk_features_select(all, all->test, 0);
        if (!f) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    } else {
        f = all;
        all = NULL;
    }
    uint64_t nf = f->csr ? f->csr->ncols : 0, nd = f->n_dense;
    m = mlk_model_new(ncls, nf, nd, 0);
    if (!m) { rc = wk_task_fail(ctx, 1, "out of memory (model of %u classes, %llu inputs)", ncls,
                                (unsigned long long)(nf + nd)); goto out; }
    size_t kv = m->n_vec, na = a->n_active;
    if (check_args(ctx, a, nf, nd, kv) != 0) goto out;
    if (a->n_w) {
        for (size_t i = 0; i < na; i++) memcpy(m->w + (size_t)a->active[i] * kv, a->w + i * kv, kv * 8);
        memcpy(m->w + nf * kv, a->w + na * kv, nd * kv * 8);
    }
    if (a->n_b) memcpy(m->b, a->b, kv * 8);
    for (size_t i = 0; i < f->nrows; i++)
        if (f->label[i] < 0 || (uint32_t)f->label[i] >= ncls) {
            rc = wk_task_fail(ctx, 0, "lbfgs: row %lld has no class label", (long long)f->row_id[i]);
            goto out;
        }
    dense = nd ? mlk_features_dense_f64(f) : NULL;
    gw = calloc((nf + nd) * kv, sizeof *gw);
    touched = calloc(nf ? nf : 1, 1);
    gb = calloc(kv, sizeof *gb);
    if ((nd && !dense) || !gw || !touched || !gb) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    mlk_sgd_data d = {f->nrows, f->csr, dense, nd, f->label};
    double loss = 0.0;
    if (mlk_logistic_loss_grad(m, &d, &loss, gw, gb, touched, ctx->err, sizeof ctx->err) != 0) goto out;
    rc = send_result(ctx, f->nrows, loss, touched, nf, NULL, gw, gw + nf * kv, nd, gb, kv, a->touched_known);
out:
    free(dense);
    free(gw);
    free(gb);
    free(touched);
    mlk_model_destroy(&m);
    mlk_features_destroy(&all);
    mlk_features_destroy(&f);
    return rc;
}

int wk_kind_lbfgs_grad(task_ctx_t *ctx)
{
    lbfgs_args_t *c = args_of(ctx);
    if (!c) return -1;
    Mlops__Tasks__LbfgsGradArgs *a = c->a;
    int rc;
    lbfgs_in_t e = {ctx, c, a, 0, 0, NULL};
    if (a->classes < 2 || a->classes > 65536 || a->n_features > INT32_MAX)
        rc = wk_task_fail(ctx, 0, "lbfgs: damaged task arguments (%u classes, %llu features)", a->classes,
                          (unsigned long long)a->n_features);
    else if (wk_task_input_with_snap(ctx, 0, input_fn, &e) != 0) /* held here: read in place from the map */
        rc = e.packed || ctx->err[0]
                 ? -1
                 : wk_task_fail(ctx, 0, "shard %s is not a feature shard", ctx->ta->inputs[0]->key);
    else
        rc = e.packed ? e.rc : grad_arrays(ctx, a, e.f);
    if (c->owned) args_free(c);
    return rc;
}
