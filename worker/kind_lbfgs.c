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
 * retryable. Kernel: logistic.h over a feature shard (fshard.h). */
#include "err.h"
#include "fshard.h"
#include "kinds.h"
#include "logistic.h"
#include "model.h"
#include <stdlib.h>
#include <string.h>

int wk_kind_lbfgs_grad(task_ctx_t *ctx)
{
    Mlops__Tasks__LbfgsGradArgs *a = wk_task_args(ctx, &mlops__tasks__lbfgs_grad_args__descriptor);
    if (!a) return -1;
    uint32_t ncls = a->classes;
    mlk_features *all = NULL, *f = NULL;
    mlk_model *m = NULL;
    double *dense = NULL, *gw = NULL, *gb = NULL;
    uint8_t *touched = NULL;
    uint32_t *tidx = NULL;
    double *tgrad = NULL;
    int rc = -1;
    if (ncls < 2 || ncls > 65536 || a->n_features > INT32_MAX) {
        rc = wk_task_fail(ctx, 0, "lbfgs: damaged task arguments (%u classes, %llu features)", ncls,
                          (unsigned long long)a->n_features);
        goto out;
    }
    {
        void *data;
        size_t len;
        if (wk_task_input(ctx, 0, &data, &len) != 0) goto out;
        int drc = mlk_features_decode(data, len, &all);
        free(data);
        if (drc) {
            rc = wk_task_fail(ctx, 0, "shard %s is not a feature shard", ctx->ta->inputs[0]->key);
            goto out;
        }
    }
    if (all->test) {
        f = mlk_features_select(all, all->test, 0);
        if (!f) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    } else {
        f = all;
        all = NULL;
    }
    uint64_t nf = f->csr ? f->csr->ncols : 0, nd = f->n_dense;
    if (nf != a->n_features) {
        rc = wk_task_fail(ctx, 0, "lbfgs: shard has %llu hashed columns, the job %llu",
                          (unsigned long long)nf, (unsigned long long)a->n_features);
        goto out;
    }
    m = mlk_model_new(ncls, nf, nd, 0);
    if (!m) { rc = wk_task_fail(ctx, 1, "out of memory (model of %u classes, %llu inputs)", ncls,
                                (unsigned long long)(nf + nd)); goto out; }
    size_t kv = m->n_vec, na = a->n_active;
    if ((a->n_w && a->n_w != (na + nd) * kv) || (a->n_b && a->n_b != kv) || (!a->n_w && na)) {
        rc = wk_task_fail(ctx, 0, "lbfgs: damaged task arguments (%zu weights for %zu active inputs, "
                          "%llu dense, %zu vectors)", a->n_w, na, (unsigned long long)nd, kv);
        goto out;
    }
    for (size_t i = 0; i < na; i++)
        if (a->active[i] >= nf || (i && a->active[i] <= a->active[i - 1])) {
            rc = wk_task_fail(ctx, 0, "lbfgs: damaged task arguments (active input %zu is %u)", i,
                              a->active[i]);
            goto out;
        }
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
    size_t nt = 0;
    for (size_t j = 0; j < nf; j++) nt += touched[j];
    tidx = malloc((nt ? nt : 1) * sizeof *tidx);
    tgrad = malloc(((nt + nd) * kv + 1) * sizeof *tgrad);
    if (!tidx || !tgrad) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    for (size_t j = 0, t = 0; j < nf; j++)
        if (touched[j]) {
            tidx[t] = (uint32_t)j;
            memcpy(tgrad + t * kv, gw + j * kv, kv * 8);
            t++;
        }
    memcpy(tgrad + nt * kv, gw + nf * kv, nd * kv * 8);
    Mlops__Tasks__LbfgsGradResult res = MLOPS__TASKS__LBFGS_GRAD_RESULT__INIT;
    res.count = f->nrows;
    res.loss = loss;
    res.n_touched = nt;
    res.touched = tidx;
    res.n_grad = (nt + nd) * kv;
    res.grad = tgrad;
    res.n_grad_b = kv;
    res.grad_b = gb;
    res.n_dense = nd;
    rc = wk_task_result_pack(ctx, &res.base);
    wk_task_metric(ctx, "rows", (double)f->nrows);
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    free(dense);
    free(gw);
    free(gb);
    free(touched);
    free(tidx);
    free(tgrad);
    mlk_model_destroy(&m);
    mlk_features_destroy(&all);
    mlk_features_destroy(&f);
    return rc;
}
