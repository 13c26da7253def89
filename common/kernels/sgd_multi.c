/* sgd_multi.c: several models' SGD epoch over one packed shard in one
 * interleaved pass (see sgd_multi.h). Each model is prepared as
 * mlk_sgd_train_packed prepares it (the weights its shard's columns name
 * gathered in the shard's column order, then the dense ones), trained
 * by the same per-row operations as sgd.c's epoch_plain_bin and
 * epoch_adagrad_bin with its state in its own slot, and put back. The
 * one-model loops keep that state in registers; here it lives in the
 * slot, which costs a load and a store per row and model, but the next
 * model's row does not wait on it, which is the point. */
#include "sgd_multi.h"
#include "err.h"
#include "sgd_inline.h"
#include <stdlib.h>
#include <string.h>

#define MULTI_PF_DIST 16 /* records prefetched ahead (32 and 64 measured no better) */
/* The most plain models of a group: the 6 trials of a fold in a
 * search's grid read each record once. Measured (18 models, 65536 rows
 * of the purchases' width, one thread, CPU time, medians of 5): on the
 * box at load 1.7, groups of 1, 2, 4, 6 and 8 at 1.05x, 1.08x, 1.21x,
 * 1.23x and 1.13x one model at a time (at load 9-12: 0.99x, -, 1.01x,
 * 1.04x, 0.79x; 8 models' weights no longer fit L2 beside the
 * records); in the cluster (bench_search's job, 400k rows, 2
 * workers) groups of 6 took the workers 4.2-4.3 CPU-s, of 4 4.5-5.2.
 * Adagrad models, with twice the state, measured no better in groups
 * and step alone. */
#define MULTI_MAX 6

/* One model of the pass and its training state. */
typedef struct {
    mlk_sgd_inst *in;
    mlk_cmodel *m;
    size_t n, uh, *pos, *own; /* own: this model's shuffled order, when not shared */
    const size_t *perm;       /* the order it visits: own, another model's, or in->off */
    double *w2, *G2;          /* the gathered weights (and adagrad sums) */
    int adagrad, lead;        /* lead: the first model of its group with this order (prefetches) */
    sched s;
    double wscale, b0, Gb0, loss_sum, loss_prod;
    unsigned loss_cnt;
    uint64_t t;
    double la[LOSS_BLOCK], lc[LOSS_BLOCK];
    uint8_t lk[LOSS_BLOCK];
} minst;

/* sgd.c's wscale_fold: the gathered weights, then the model's whole
 * array (the passive weights), each times the scale. */
static void minst_fold(minst *q, double wscale, size_t np)
{
    for (size_t j = 0; j < np; j++) q->w2[j] *= wscale;
    for (size_t j = 0; j < q->m->m; j++) q->m->w[j] *= wscale;
}

/* mlk_sgd_train_packed's checks and gathering for model q (binary, one
 * epoch, one row per step), and train_core's schedule. */
static int minst_init(minst *q, mlk_sgd_inst *in, const mlk_fpack *p, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    q->in = in;
    q->m = in->m;
    q->n = in->n;
    mlk_cmodel *m = in->m;
    const mlk_sgd_opts *o = &in->o;
    size_t nd = p->n_dense, nc = p->ncols, nf = (size_t)m->n_features;
    if (in->n && !in->off)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    if (nd != m->n_dense)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: data has %zu dense columns, model %zu",
                            nd, (size_t)m->n_dense);
    if ((nf > 0) != (p->hashed != 0) || (p->hashed && p->n_features != m->n_features))
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "sgd: shard has %llu hashed features, model %zu",
                            (unsigned long long)p->n_features, nf);
    int all_ok = p->label_min >= 0 && p->label_max < (int32_t)m->n_classes;
    for (size_t i = 0; !all_ok && i < in->n; i++) {
        int32_t lab;
        if (in->off[i] >= p->rec_bytes)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "sgd: record offset %zu beyond the shard", in->off[i]);
        memcpy(&lab, p->recs + in->off[i], 4);
        if (lab < 0 || (uint32_t)lab >= m->n_classes)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "sgd: training row %zu has label %d, classes are 0..%u", i, lab,
                                m->n_classes - 1);
    }
    q->adagrad = o->lr == MLK_LR_ADAGRAD;
    if (q->adagrad && mlk_cmodel_enable_adagrad(m) != 0)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
    size_t nh = 0;
    while (nh < m->m && m->in[nh] < nf) nh++;
    uint32_t *uin = malloc((nh + nc + nd + 1) * sizeof *uin);
    q->pos = malloc((nc + 1) * sizeof *q->pos);
    q->w2 = malloc((nc + nd + 1) * sizeof *q->w2);
    if (!uin || !q->pos || !q->w2) {
        free(uin);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
    }
    size_t a = 0, b = 0, u = 0;
    while (a < nh || b < nc) {
        if (b == nc || (a < nh && m->in[a] < p->cols[b])) uin[u++] = m->in[a++];
        else {
            if (a < nh && m->in[a] == p->cols[b]) a++;
            q->pos[b] = u;
            uin[u++] = p->cols[b++];
        }
    }
    q->uh = u;
    for (size_t j = 0; j < nd; j++) uin[u++] = (uint32_t)(nf + j);
    int rc = mlk_cmodel_reindex(m, uin, u);
    free(uin);
    if (rc != 0)
        return mlops_seterr(err, errlen, rc,
                            rc == MLOPS_ENOMEM ? "sgd: out of memory"
                                               : "sgd: compact model holds an input out of range");
    if (m->G && !(q->G2 = malloc((nc + nd + 1) * sizeof *q->G2)))
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
    for (size_t c = 0; c < nc + nd; c++) {
        size_t g = c < nc ? q->pos[c] : q->uh + (c - nc);
        q->w2[c] = m->w[g];
        if (q->G2) q->G2[c] = m->G[g];
    }
    q->s.lr = o->lr;
    q->s.alpha = o->alpha;
    q->s.eta0 = o->eta0;
    q->s.power_t = o->power_t;
    q->s.decay = o->intercept_decay >= 0.0 ? o->intercept_decay : (p->hashed ? 0.01 : 1.0);
    if (o->lr == MLK_LR_OPTIMAL) {
        double typw = sqrt(1.0 / sqrt(o->alpha)), unused;
        double initial_eta0 = typw / fmax(1.0, log_dloss(-typw, 1.0, &unused));
        q->s.optimal_init = 1.0 / (initial_eta0 * o->alpha);
    }
    q->wscale = 1.0;
    q->b0 = m->b[0];
    q->Gb0 = m->Gb ? m->Gb[0] : 0.0;
    q->loss_prod = 1.0;
    q->t = m->t;
    return 0;
}

/* Model q's order: in->off as it is (no shuffle), an earlier model's
 * when it visits the same rows with the same draws, else its own. */
static int minst_order(minst *q, minst *all, size_t i)
{
    const mlk_sgd_opts *o = &q->in->o;
    if (!o->shuffle || q->n < 2) {
        q->perm = q->in->off;
        return 0;
    }
    for (size_t j = 0; j < i; j++) {
        const mlk_sgd_opts *e = &all[j].in->o;
        if (all[j].own && all[j].in->off == q->in->off && all[j].n == q->n && e->seed == o->seed &&
            e->epoch0 == o->epoch0 && e->shard == o->shard) {
            q->perm = all[j].perm;
            return 0;
        }
    }
    if (!(q->own = mlk_fpack_alloc(q->n * sizeof *q->own))) return MLOPS_ENOMEM;
    memcpy(q->own, q->in->off, q->n * sizeof *q->own);
    shuffle_items(q->own, q->n, o->seed, o->epoch0, o->shard);
    q->perm = q->own;
    return 0;
}

/* A step of a model is cut in three phases, each run for every model
 * of the group before the next: the score (a chain of adds over the
 * row's weights), the loss and its derivative (exp and divisions), the
 * update. A whole step of one model is more instructions than the core
 * looks ahead over, so stepping the models one after another overlapped
 * little; phase by phase, the group's independent scores, then their
 * exps, sit side by side in the window. Each model's own operations and
 * their order are epoch_plain_bin's and epoch_adagrad_bin's. */

/* Phase 1: the score of record rec under model q's weights. */
__attribute__((always_inline)) static inline double step_score(const minst *q, const rec_view *rv,
                                                               size_t nc, size_t nd, const int f32)
{
    const double *v = q->w2, *vd = q->w2 + nc;
    double sum = 0.0;
    for (uint32_t p = 0; p < rv->nnz; p++)
        sum += v[rv->ind[p]] * (f32 ? (double)rv->vf[p] : rv->vv[p]);
    for (size_t j = 0; j < nd; j++) sum += vd[j] * rv->x[j];
    return sum;
}

/* Phase 2, plain SGD: the loss, the shrink and the step's update u
 * (divided by the weight scale; 0: none). */
__attribute__((always_inline)) static inline double plain_mid(minst *q, int32_t label, double sum,
                                                              size_t np)
{
    const double alpha = q->s.alpha;
    double eta = sched_eta(&q->s, q->t);
    double wscale = q->wscale;
    double pz = sum * wscale + q->b0;
    double dl = bin_dloss_acc(pz, label, &q->loss_sum, &q->loss_prod, &q->loss_cnt);
    double u = -eta * dl;
    if (alpha > 0.0) {
        wscale *= l2_factor(eta, alpha);
        if (wscale < WSCALE_MIN) {
            minst_fold(q, wscale, np);
            wscale = 1.0;
        }
    }
    q->wscale = wscale;
    q->t++;
    if (u != 0.0) {
        q->b0 += u * q->s.decay;
        u = u / wscale;
    }
    return u;
}

/* Phase 3, plain SGD: the row's weights plus u times its values. */
__attribute__((always_inline)) static inline void
plain_update(minst *q, const rec_view *rv, double u, size_t nc, size_t nd, const int f32)
{
    if (u == 0.0) return;
    double *v = q->w2, *vd = q->w2 + nc;
    for (uint32_t p = 0; p < rv->nnz; p++)
        v[rv->ind[p]] += (f32 ? (double)rv->vf[p] : rv->vv[p]) * u;
    for (size_t j = 0; j < nd; j++) vd[j] += rv->x[j] * u;
}

/* Phase 2, adagrad: the loss (its log1p deferred to the block's end)
 * and the derivative g at step s. */
__attribute__((always_inline)) static inline double ada_mid(minst *q, int32_t label, double sum,
                                                            size_t s)
{
    double y = label == 1 ? 1.0 : -1.0, z = (sum + q->b0) * y, g;
    size_t k = s % LOSS_BLOCK;
    if (z > 18.0) {
        double e = exp(-z);
        q->la[k] = e;
        q->lk[k] = 0;
        g = e * -y;
    } else if (z < -18.0) {
        q->la[k] = -z;
        q->lk[k] = 0;
        g = -y;
    } else {
        double e = exp(z);
        q->la[k] = e;
        q->lc[k] = z;
        q->lk[k] = 1;
        g = -y / (e + 1.0);
    }
    if (k == LOSS_BLOCK - 1 || s == q->n - 1)
        for (size_t i = 0; i <= k; i++)
            q->loss_sum += q->lk[i] ? log1p(q->la[i]) - q->lc[i] : q->la[i];
    return g < -MAX_DLOSS ? -MAX_DLOSS : g > MAX_DLOSS ? MAX_DLOSS : g;
}

/* Phase 3, adagrad: each of the row's parameters and the intercept. */
__attribute__((always_inline)) static inline void ada_update(minst *q, const rec_view *rv, double g,
                                                             size_t nc, size_t nd, const int f32)
{
    double *w = q->w2, *G = q->G2, *wd = q->w2 + nc, *Gd = q->G2 + nc;
    const double alpha = q->s.alpha, eta0 = q->s.eta0;
    for (uint32_t p = 0; p < rv->nnz; p++) {
        size_t r = (size_t)rv->ind[p];
        adagrad_one(&w[r], &G[r], (f32 ? (double)rv->vf[p] : rv->vv[p]) * g + alpha * w[r], eta0);
    }
    for (size_t j = 0; j < nd; j++) adagrad_one(&wd[j], &Gd[j], rv->x[j] * g + alpha * wd[j], eta0);
    q->Gb0 += g * g;
    q->b0 -= eta0 * g / sqrt(q->Gb0 + ADAGRAD_EPS) * q->s.decay;
}

/* The models q[0..ng-1] (ng <= MULTI_MAX) stepped together, step s of
 * each in turn, phase by phase. */
__attribute__((always_inline)) static inline void group_pass(minst *const *q, size_t ng,
                                                             const mlk_fpack *p, const int f32)
{
    const uint8_t *recs = p->recs;
    size_t nc = p->ncols, nd = p->n_dense, nmax = 0;
    for (size_t g = 0; g < ng; g++)
        if (q[g]->n > nmax) nmax = q[g]->n;
    rec_view rv[MULTI_MAX];
    double x[MULTI_MAX];
    for (size_t s = 0; s < nmax; s++) {
        for (size_t g = 0; g < ng; g++)
            if (q[g]->lead && s + MULTI_PF_DIST < q[g]->n) {
                const uint8_t *rec = recs + q[g]->perm[s + MULTI_PF_DIST];
                __builtin_prefetch(rec);
                if (!p->one_line) __builtin_prefetch(rec + 64);
            }
        for (size_t g = 0; g < ng; g++)
            if (s < q[g]->n) {
                rv[g] = rec_view_at(recs + q[g]->perm[s], f32);
                x[g] = step_score(q[g], &rv[g], nc, nd, f32);
            }
        for (size_t g = 0; g < ng; g++)
            if (s < q[g]->n)
                x[g] = q[g]->adagrad ? ada_mid(q[g], rv[g].label, x[g], s)
                                     : plain_mid(q[g], rv[g].label, x[g], nc + nd);
        for (size_t g = 0; g < ng; g++)
            if (s < q[g]->n) {
                if (q[g]->adagrad) ada_update(q[g], &rv[g], x[g], nc, nd, f32);
                else plain_update(q[g], &rv[g], x[g], nc, nd, f32);
            }
    }
}

/* train_core's end of the epoch for model q, and the put-back of
 * mlk_sgd_train_packed. */
static int minst_finish(minst *q, const mlk_fpack *p, char *err, size_t errlen)
{
    mlk_cmodel *m = q->m;
    size_t nc = p->ncols, nd = p->n_dense, np = nc + nd;
    int rc = 0;
    if (q->adagrad) m->t += q->n;
    else m->t = q->t;
    m->b[0] = q->b0;
    if (q->adagrad) m->Gb[0] = q->Gb0;
    q->loss_sum += log(q->loss_prod);
    if (q->in->loss) q->in->loss[0] = q->n ? q->loss_sum / (double)q->n : 0.0;
    int finite = isfinite(q->wscale) && isfinite(q->b0);
    for (size_t j = 0; finite && j < np; j++) finite = isfinite(q->w2[j]);
    if (!finite)
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                          "sgd: parameters not finite after epoch 1; lower eta0 or raise alpha");
    else m->n_seen += q->n;
    if (q->wscale != 1.0) minst_fold(q, q->wscale, np);
    for (size_t c = 0; c < np; c++) {
        size_t g = c < nc ? q->pos[c] : q->uh + (c - nc);
        m->w[g] = q->w2[c];
        if (q->G2) m->G[g] = q->G2[c];
    }
    return rc;
}

static void minst_free(minst *q)
{
    free(q->pos);
    free(q->own);
    free(q->w2);
    free(q->G2);
}

/* An instance the interleaved pass trains: binary, one epoch, one row
 * per step, valid options. */
static int interleaved(const mlk_sgd_inst *in)
{
    return in->m && in->m->n_vec == 1 && in->o.epochs == 1 && in->o.batch_size <= 1;
}

int mlk_sgd_multi_train_packed(mlk_sgd_inst *in, size_t ninst, const mlk_fpack *p, size_t *bad,
                               char *err, size_t errlen)
{
    if (!p || (ninst && !in))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
    minst *q = calloc(ninst + 1, sizeof *q), **grp = calloc(ninst + 1, sizeof *grp);
    size_t *idx = malloc((ninst + 1) * sizeof *idx), nq = 0, at = 0;
    int rc = 0;
    if (!q || !grp || !idx) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        goto out;
    }
    /* the others trained alone, as they would be; the rest prepared */
    for (size_t i = 0; i < ninst && !rc; i++) {
        at = i;
        if (!in[i].m) rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "sgd: model or data is NULL");
        else if (!interleaved(&in[i]) || check_opts(&in[i].o, in[i].m->t, err, errlen) != 0)
            rc = mlk_sgd_train_packed(in[i].m, p, in[i].off, in[i].n, &in[i].o, in[i].loss, err,
                                      errlen);
        else {
            idx[nq] = i;
            rc = minst_init(&q[nq++], &in[i], p, err, errlen); /* freed below either way */
        }
    }
    for (size_t i = 0; !rc && i < nq; i++)
        if (minst_order(&q[i], q, i) != 0) {
            at = idx[i];
            rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "sgd: out of memory");
        }
    if (rc) goto out;
    /* the models of one order side by side: a group shares each record */
    size_t ns = 0;
    for (size_t i = 0; i < nq; i++) {
        int seen = 0;
        for (size_t h = 0; h < ns && !seen; h++) seen = grp[h]->perm == q[i].perm;
        for (size_t j = i; !seen && j < nq; j++)
            if (q[j].perm == q[i].perm) grp[ns++] = &q[j];
    }
    for (size_t g0 = 0, ng; g0 < ns; g0 += ng) {
        ng = 1;
        if (!grp[g0]->adagrad)
            while (ng < MULTI_MAX && g0 + ng < ns && !grp[g0 + ng]->adagrad) ng++;
        for (size_t g = 0; g < ng; g++) {
            grp[g0 + g]->lead = 1;
            for (size_t h = 0; h < g; h++)
                if (grp[g0 + h]->perm == grp[g0 + g]->perm) grp[g0 + g]->lead = 0;
        }
        if (p->f32) group_pass(grp + g0, ng, p, 1);
        else group_pass(grp + g0, ng, p, 0);
    }
    /* finished in the callers' order: the failure named is the first */
    for (size_t i = 0; i < nq; i++)
        if (minst_finish(&q[i], p, rc ? NULL : err, rc ? 0 : errlen) != 0 && !rc) {
            rc = MLOPS_EINVAL;
            at = idx[i];
        }
out:
    if (rc && bad) *bad = at;
    for (size_t i = 0; q && i < nq; i++) minst_free(&q[i]);
    free(q);
    free(grp);
    free(idx);
    return rc;
}
