/* stage_lbfgs.c: the train stage with `solver: lbfgs` — full-batch
 * L-BFGS on scikit-learn's LogisticRegression(C) objective,
 *   f(w, b) = sum_i logloss_i + ||w||^2 / (2 C)   (intercepts free),
 * which is LogisticRegression's C sum logloss + ½||w||² divided by C, the
 * form scikit-learn 1.2 hands scipy (so `tol` is its gtol on the same
 * gradient). With `alpha` given instead of C, C = 1/(alpha n_train).
 *
 * Each phase is one evaluation: "lbfgs_grad" tasks, one per shard
 * (worker/kind_lbfgs.c), return the summed loss and the gradient of the
 * hashed inputs they touch; this file sums them in shard order, adds the
 * penalty, and tells the solver (common/kernels/lbfgs.h), which names
 * the next point or stops. The first evaluation, at zero, also gathers
 * the active inputs: the union of the touched ones. No other hashed
 * weight can leave zero (its gradient is w_j / C alone), so the solver
 * works on the active weights, the dense weights and the intercepts
 * only, and only they travel. Sums in shard order and a deterministic
 * solver: the same model bytes for any number of workers.
 *
 * The tasks write nothing to the stores, so a lost worker only re-runs
 * its task of the current evaluation; there is no restart entry.
 *
 * What is journalled: a gradient is ~140 KB, and the solver's state
 * ~2 MB (its history), so journalling each result and each evaluation's
 * state wrote ~4 MB per evaluation, 430 MB per fit, through the
 * journal's fsyncs (measured: 7% of the fit). The results are volatile
 * (stage_ops_t: a restart runs the evaluation's tasks again, ~3 ms
 * each), and the state is journalled every LBFGS_CHECKPOINT
 * evaluations, at the first and when the fit ends. A restart resumes
 * from the last one journalled and repeats the evaluations after it:
 * the solver being deterministic, they name the same points and give
 * the same sums, so the fit ends with the same model bytes (tested by
 * integration.test_lbfgs_kill). The loss curve is cut back to the
 * length it had at that state, so the repeated iterations are not
 * counted twice; the job's log says where the fit resumed.
 *
 * blob: u32 version = 2, u32 final, f64 C, u64 n_dense, u64 nactive,
 *       u32 active[nactive], blob solver state (lbfgs.h; empty before
 *       the first evaluation), blob model (model.h; final only), u64
 *       the loss curve's length at this state. Version 1 (a journal of
 *       an older coordinator) has no length: its curve is kept. */
#include "bytes.h"
#include "err.h"
#include "lbfgs.h"
#include "log.h"
#include "model.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The solver's state is journalled every this many evaluations. */
#define LBFGS_CHECKPOINT 10

typedef struct {
    uint32_t final;
    uint64_t nloss; /* the loss curve's length at this state, UINT64_MAX unknown */
    double C;
    uint64_t nd, na;
    const uint8_t *active; /* na u32, unaligned */
    const uint8_t *state, *model;
    size_t state_len, model_len;
} lstate_t;

static int ldecode(const stage_t *st, lstate_t *s)
{
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    uint32_t ver = br_u32(&r);
    s->final = br_u32(&r);
    s->C = br_f64(&r);
    s->nd = br_u64(&r);
    s->na = br_u64(&r);
    if (r.err || (ver != 1 && ver != 2) || s->na > (st->blob_len - r.at) / 4) return MLOPS_EPARSE;
    s->active = st->blob + r.at;
    r.at += s->na * 4;
    s->state = br_blob(&r, &s->state_len);
    s->model = br_blob(&r, &s->model_len);
    s->nloss = ver == 2 ? br_u64(&r) : UINT64_MAX;
    return br_done(&r) ? 0 : MLOPS_EPARSE;
}

static int lencode(stage_t *st, uint32_t final, double C, uint64_t nd, uint64_t na,
                   const uint32_t *active, const uint8_t *state, size_t state_len,
                   const uint8_t *model, size_t model_len, uint64_t nloss)
{
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 2);
    bw_u32(&w, final);
    bw_f64(&w, C);
    bw_u64(&w, nd);
    bw_u64(&w, na);
    bw_put(&w, active, na * 4);
    bw_blob(&w, state, state_len);
    bw_blob(&w, model, model_len);
    bw_u64(&w, nloss);
    size_t len;
    uint8_t *b = bw_take(&w, &len);
    if (!b) return MLOPS_ENOMEM;
    free(st->blob);
    st->blob = b;
    st->blob_len = len;
    return 0;
}

/* An evaluation's sums over its tasks' results, in shard order: tasks
 * [0, next) added. */
typedef struct {
    int ready;        /* set up (sum_init) */
    size_t next;
    double f;         /* the summed loss */
    uint64_t count;   /* training rows */
    double *g;        /* the gradient: active, dense, intercepts */
    uint32_t *active; /* the na active inputs (the blob's, aligned) */
    size_t na;
} lsum_t;

static void sum_free(lsum_t *sm)
{
    free(sm->g);
    free(sm->active);
    memset(sm, 0, sizeof *sm);
}

/* Each task's (shard's) touched inputs, as their places among the
 * active ones, from an evaluation whose results carried them: the same
 * at every evaluation, so the later ones' results leave them out
 * (LbfgsGradArgs.touched_known) once every task's are held. */
typedef struct {
    size_t nt;
    uint32_t **pos; /* pos[t]: n[t] places, ascending */
    size_t *n;
    uint8_t *have;
} ltouch_t;

static void touch_free(ltouch_t *tp)
{
    for (size_t t = 0; tp->pos && t < tp->nt; t++) free(tp->pos[t]);
    free(tp->pos);
    free(tp->n);
    free(tp->have);
    memset(tp, 0, sizeof *tp);
}

/* tp with room for nt tasks' (nothing held), unless it has it; -1
 * without memory. */
static int touch_init(ltouch_t *tp, size_t nt)
{
    if (tp->nt == nt && tp->pos) return 0;
    touch_free(tp);
    tp->pos = calloc(nt ? nt : 1, sizeof *tp->pos);
    tp->n = calloc(nt ? nt : 1, sizeof *tp->n);
    tp->have = calloc(nt ? nt : 1, 1);
    if (!tp->pos || !tp->n || !tp->have) {
        touch_free(tp);
        return -1;
    }
    tp->nt = nt;
    return 0;
}

static int touch_complete(const ltouch_t *tp, size_t nt)
{
    if (!tp->have || tp->nt != nt || nt == 0) return 0;
    for (size_t t = 0; t < nt; t++)
        if (!tp->have[t]) return 0;
    return 1;
}

/* st->rt: what the blob's solver state is, kept for its phase so that
 * each evaluation does not decode the ~2 MB state again (lbfgs_done) nor
 * pack the same arguments for each of its tasks (lbfgs_args): the
 * solver as the last evaluation left it, the phase's packed arguments
 * once made, its sums so far, and the touched inputs (kept from phase
 * to phase). Rebuilt from the blob when absent (a restart replays the
 * blob and drops this; the next results carry their touched inputs
 * again). */
typedef struct {
    uint32_t phase; /* the phase all these are of */
    mlk_lbfgs *ls;  /* NULL: decode the blob's */
    uint8_t *args;  /* NULL: not made yet */
    size_t args_len;
    lsum_t sum;     /* the results summed so far (lbfgs_task_done) */
    ltouch_t touch;
} lrt_t;

static void lrt_free(void *p)
{
    lrt_t *rt = p;
    if (!rt) return;
    mlk_lbfgs_destroy(&rt->ls);
    free(rt->args);
    sum_free(&rt->sum);
    touch_free(&rt->touch);
    free(rt);
}

/* st's rt if it is of the current phase, else NULL (and dropped). */
static lrt_t *lrt_of(stage_t *st)
{
    lrt_t *rt = st->rt_free == lrt_free ? st->rt : NULL;
    if (rt && rt->phase == st->phase) return rt;
    stage_rt_drop(st);
    return NULL;
}

/* A fresh rt for st's current phase, set on st (NULL without memory:
 * then nothing is kept, and the blob is read as before). */
static lrt_t *lrt_new(stage_t *st)
{
    stage_rt_drop(st);
    lrt_t *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    rt->phase = st->phase;
    st->rt = rt;
    st->rt_free = lrt_free;
    return rt;
}

static uint32_t n_vec(const job_t *j) { return job_nclasses(j) == 2 ? 1 : (uint32_t)job_nclasses(j); }

static int lbfgs_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "train: no input stage");
    if (job_nclasses(j) < 2)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "train: the label has %zu distinct value(s); need at least 2",
                            job_nclasses(j));
    const mlops_jobspec_t *sp = j->spec;
    uint64_t n = stage_train_rows(j, st);
    double C = sp->train.C;
    if (sp->train.has_alpha) {
        if (!(sp->train.alpha > 0))
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "train.alpha: solver lbfgs needs a penalty > 0 (alpha %g)", sp->train.alpha);
        C = 1.0 / (sp->train.alpha * (double)(n ? n : 1));
    }
    j->ntrain_loss = 0;
    stage_rt_drop(st);
    job_logf(j, "train: L-BFGS on LogisticRegression's objective, C %.6g, %llu training rows, max_iter %u, tol %g",
             C, (unsigned long long)n, sp->train.max_iter, sp->train.tol);
    int rc = lencode(st, 0, C, 0, 0, NULL, NULL, 0, NULL, 0, 0);
    if (rc) return rc;
    if ((rc = stage_set_tasks(st, in->ntasks, "lbfgs_grad")) != 0) return rc;
    stage_set_output_keys(j, st, NULL);
    return 0;
}

static int lbfgs_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    lstate_t s;
    if (ldecode(st, &s) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
    stage_t *in = stage_input_of(j, st);
    if (!in || t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
    int rc = args_add_input(out, in->tasks[t].output_key);
    if (rc) return rc;
    if (out->inputs_only) return 0;
    /* every task of an evaluation gets the same arguments: packed once */
    lrt_t *rt = lrt_of(st);
    if (rt && rt->args) {
        if (!(out->args = malloc(rt->args_len ? rt->args_len : 1))) return MLOPS_ENOMEM;
        memcpy(out->args, rt->args, rt->args_len);
        out->args_len = rt->args_len;
        return 0;
    }
    Mlops__Tasks__LbfgsGradArgs a = MLOPS__TASKS__LBFGS_GRAD_ARGS__INIT;
    a.classes = (uint32_t)job_nclasses(j);
    a.n_features = j->spec->has_hash ? j->spec->hash.n_features : 0;
    double *x = NULL;
    uint32_t *active = NULL;
    if (s.state_len) {
        /* the point only (every task of an evaluation gets the same one):
         * a decode would copy the solver's history, ~2 MB, per task */
        size_t n = 0;
        if (mlk_lbfgs_peek_x(s.state, s.state_len, &x, &n, err, errlen) != 0) return MLOPS_EPARSE;
        size_t kv = n_vec(j), nw = (s.na + s.nd) * kv;
        if (n != nw + kv) {
            free(x);
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
        }
        active = malloc((s.na ? s.na : 1) * sizeof *active);
        if (!active) {
            free(x);
            return MLOPS_ENOMEM;
        }
        memcpy(active, s.active, s.na * 4);
        a.n_active = s.na;
        a.active = active;
        a.n_w = nw;
        a.w = x;
        a.n_b = kv;
        a.b = x + nw;
        a.touched_known = rt && touch_complete(&rt->touch, st->ntasks);
    }
    rc = args_pack(out, &a.base);
    free(active);
    free(x);
    if (rc == 0) { /* kept for the phase's other tasks (without memory: packed again) */
        if (!rt) rt = lrt_new(st);
        if (rt && !rt->args && (rt->args = malloc(out->args_len ? out->args_len : 1)) != NULL) {
            memcpy(rt->args, out->args, out->args_len);
            rt->args_len = out->args_len;
        }
    }
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The union of the touched inputs of every result (ascending). */
static int gather_active(Mlops__Tasks__LbfgsGradResult **rs, size_t n, uint32_t **act, size_t *na)
{
    size_t total = 0;
    for (size_t t = 0; t < n; t++) total += rs[t]->n_touched;
    uint32_t *a = malloc((total ? total : 1) * sizeof *a);
    if (!a) return MLOPS_ENOMEM;
    size_t k = 0;
    for (size_t t = 0; t < n; t++) {
        memcpy(a + k, rs[t]->touched, rs[t]->n_touched * sizeof *a);
        k += rs[t]->n_touched;
    }
    qsort(a, total, sizeof *a, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < total; i++)
        if (!u || a[i] != a[u - 1]) a[u++] = a[i];
    *act = a;
    *na = u;
    return 0;
}

/* The solver's final point as a model (model.h bytes, malloc'd). */
static int make_model(job_t *j, const lstate_t *s, const double *x, uint64_t n_seen, uint8_t **buf,
                      size_t *len)
{
    uint64_t nf = j->spec->has_hash ? j->spec->hash.n_features : 0;
    mlk_model *m = mlk_model_new((uint32_t)job_nclasses(j), nf, s->nd, 0);
    if (!m) return MLOPS_ENOMEM;
    size_t kv = m->n_vec;
    for (size_t i = 0; i < s->na; i++) {
        uint32_t a;
        memcpy(&a, s->active + i * 4, 4);
        if (a >= nf) {
            mlk_model_destroy(&m);
            return MLOPS_EPARSE;
        }
        memcpy(m->w + (size_t)a * kv, x + i * kv, kv * 8);
    }
    memcpy(m->w + nf * kv, x + s->na * kv, s->nd * kv * 8);
    memcpy(m->b, x + (s->na + s->nd) * kv, kv * 8);
    m->n_seen = n_seen;
    int rc = mlk_model_encode(m, buf, len);
    mlk_model_destroy(&m);
    return rc;
}

/* The result of task t, unpacked and checked against the evaluation's
 * shapes (*nd dense inputs, kv vectors; *nd UINT64_MAX: the first
 * evaluation's first result, which tells it); NULL with err set. */
static Mlops__Tasks__LbfgsGradResult *result_of(const stage_t *st, size_t t, size_t kv, uint64_t *nd, char *err,
                                                size_t errlen)
{
    const task_t *tk = &st->tasks[t];
    Mlops__Tasks__LbfgsGradResult *r = mlops__tasks__lbfgs_grad_result__unpack(NULL, tk->result_len, tk->result);
    if (r && *nd == UINT64_MAX) *nd = r->n_dense;
    /* touched inputs left out: touched_count says how many grad holds */
    uint64_t ntouch = r && !r->n_touched ? r->touched_count : (r ? r->n_touched : 0);
    if (!r || r->n_grad_b != kv || r->n_dense != *nd || ntouch > r->n_grad || r->n_grad != (ntouch + *nd) * kv ||
        (r->n_touched && r->touched_count && r->touched_count != r->n_touched) || *nd > ((uint64_t)1 << 24)) {
        if (r) mlops__tasks__lbfgs_grad_result__free_unpacked(r, NULL);
        mlops_seterr(err, errlen, MLOPS_EPARSE, "train: damaged result of task %zu", t);
        return NULL;
    }
    return r;
}

/* Task t's result added into sm (the task before it added last). Its
 * touched inputs are the result's, whose places are kept in tp (when
 * given) for the results after that leave them out, or tp's. */
static int sum_add(lsum_t *sm, ltouch_t *tp, const Mlops__Tasks__LbfgsGradResult *r, size_t t, size_t nd,
                   size_t kv, char *err, size_t errlen)
{
    const uint32_t *active = sm->active;
    size_t na = sm->na, nw = (na + nd) * kv;
    double *g = sm->g;
    size_t nt = r->n_touched ? r->n_touched : (size_t)r->touched_count;
    const uint32_t *kept = NULL;
    uint32_t *keep = NULL;
    if (!r->n_touched && r->touched_count) {
        if (!tp || t >= tp->nt || !tp->have[t] || tp->n[t] != nt)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "train: task %zu left out its %zu touched inputs, which this coordinator does not hold",
                                t, nt);
        kept = tp->pos[t];
    } else if (tp && t < tp->nt && !tp->have[t]) {
        keep = malloc((nt ? nt : 1) * sizeof *keep); /* without memory: the next results carry them again */
    }
    sm->count += r->count;
    sm->f += r->loss;
    size_t pos = 0;
    for (size_t i = 0; i < nt; i++) {
        if (kept) {
            pos = kept[i];
        } else {
            /* both lists ascend: walk forward */
            while (pos < na && active[pos] < r->touched[i]) pos++;
            if (pos == na || active[pos] != r->touched[i]) {
                free(keep);
                return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "train: task %zu touched hashed input %u, not active", t, r->touched[i]);
            }
            if (keep) keep[i] = (uint32_t)pos;
        }
        for (size_t k = 0; k < kv; k++) g[pos * kv + k] += r->grad[i * kv + k];
    }
    if (keep) {
        tp->pos[t] = keep;
        tp->n[t] = nt;
        tp->have[t] = 1;
    }
    for (size_t q = 0; q < nd * kv; q++) g[na * kv + q] += r->grad[nt * kv + q];
    for (size_t k = 0; k < kv; k++) g[nw + k] += r->grad_b[k];
    sm->next = t + 1;
    return 0;
}

/* sm set up for an evaluation of the na active inputs (a copy of the
 * blob's unaligned list), nd dense, kv vectors: nothing summed. */
static int sum_init(lsum_t *sm, const uint8_t *active, size_t na, size_t nd, size_t kv)
{
    sum_free(sm);
    size_t n = (na + nd) * kv + kv;
    sm->active = malloc((na ? na : 1) * sizeof *sm->active);
    sm->g = calloc(n, sizeof *sm->g);
    if (!sm->active || !sm->g) {
        sum_free(sm);
        return MLOPS_ENOMEM;
    }
    memcpy(sm->active, active, na * 4);
    sm->na = na;
    sm->ready = 1;
    return 0;
}

/* Sum the evaluation's results that are in, in shard order, from the
 * first not yet summed up to the first not in (the rest wait for their
 * turn): off the critical path, while the other tasks run, what
 * lbfgs_done did when the last came (unpack ~140 KB and add, per task:
 * 2.4 of the 4.4 ms between the last result and the next evaluation's
 * first assignment). An evaluation after the first only (the first
 * finds the active inputs from all of them); a result that does not
 * sum is left for lbfgs_done, which fails the stage on it. */
static void lbfgs_task_done(job_t *j, stage_t *st, size_t t)
{
    (void)t;
    lrt_t *rt = lrt_of(st);
    lstate_t s;
    if (!rt || ldecode(st, &s) != 0 || !s.state_len) return;
    size_t kv = n_vec(j);
    char err[256];
    if (!rt->sum.ready && sum_init(&rt->sum, s.active, s.na, s.nd, kv) != 0) return;
    while (rt->sum.next < st->ntasks && st->tasks[rt->sum.next].state == T_DONE) {
        size_t k = rt->sum.next;
        uint64_t nd = s.nd;
        Mlops__Tasks__LbfgsGradResult *r = result_of(st, k, kv, &nd, err, sizeof err);
        if (!r) return;
        int rc = touch_init(&rt->touch, st->ntasks) == 0
                     ? sum_add(&rt->sum, &rt->touch, r, k, s.nd, kv, err, sizeof err)
                     : -1;
        mlops__tasks__lbfgs_grad_result__free_unpacked(r, NULL);
        if (rc) {
            rt->sum.next = k; /* lbfgs_done meets it again, and fails */
            return;
        }
    }
}

static int lbfgs_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    lstate_t s;
    if (ldecode(st, &s) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
    size_t nt = st->ntasks, kv = n_vec(j);
    mlk_lbfgs *ls = NULL;
    uint32_t *active = NULL;
    uint8_t *sbuf = NULL, *mbuf = NULL;
    size_t slen = 0, mlen = 0;
    int rc = 0;
    uint64_t nd = s.nd;
    size_t na = s.na;
    lsum_t own = {0}, *sm = &own; /* the sums: rt's, begun by lbfgs_task_done, or this call's */
    ltouch_t own_touch = {0}, *tp = &own_touch; /* the touched inputs: rt's, or this call's */
    if (!s.state_len) { /* the first evaluation, at zero: the active inputs */
        Mlops__Tasks__LbfgsGradResult **rs = calloc(nt ? nt : 1, sizeof *rs);
        if (!rs) return MLOPS_ENOMEM;
        nd = UINT64_MAX; /* the first result tells the dense width */
        for (size_t t = 0; t < nt && rc == 0; t++)
            if (!(rs[t] = result_of(st, t, kv, &nd, err, errlen))) rc = MLOPS_EPARSE;
        if (rc == 0) rc = gather_active(rs, nt, &active, &na);
        if (rc == 0) rc = sum_init(sm, (const uint8_t *)active, na, nd, kv);
        if (rc == 0 && touch_init(tp, nt) != 0) rc = MLOPS_ENOMEM;
        for (size_t t = 0; t < nt && rc == 0; t++) rc = sum_add(sm, tp, rs[t], t, nd, kv, err, errlen);
        for (size_t t = 0; t < nt; t++)
            if (rs[t]) mlops__tasks__lbfgs_grad_result__free_unpacked(rs[t], NULL);
        free(rs);
        if (rc) goto out;
        size_t n = (na + nd) * kv + kv;
        double *x0 = calloc(n, sizeof *x0);
        mlk_lbfgs_opts o;
        mlk_lbfgs_opts_default(&o);
        o.max_iter = j->spec->train.max_iter;
        o.gtol = j->spec->train.tol;
        ls = x0 ? mlk_lbfgs_new(n, x0, &o) : NULL;
        free(x0);
        if (!ls) { rc = MLOPS_ENOMEM; goto out; }
        job_logf(j, "train: %zu of the hashed inputs are active, %zu parameters", na, n);
    } else {
        active = malloc((na ? na : 1) * sizeof *active);
        if (!active) { rc = MLOPS_ENOMEM; goto out; }
        memcpy(active, s.active, na * 4);
        lrt_t *rt = lrt_of(st);
        if (rt && rt->ls) { /* the solver the blob's state was encoded from */
            ls = rt->ls;
            rt->ls = NULL;
        } else if (mlk_lbfgs_decode(s.state, s.state_len, &ls, err, errlen) != 0) {
            rc = MLOPS_EPARSE;
            goto out;
        } else {
            /* from the journal (a restart): the evaluations after its
             * state run again, and their loss points are made again */
            if (s.nloss < j->ntrain_loss) j->ntrain_loss = (size_t)s.nloss;
            job_logf(j, "train: L-BFGS resumed from its journalled state (iteration %u, %u evaluations)",
                     mlk_lbfgs_iter(ls), mlk_lbfgs_evals(ls));
        }
        if (mlk_lbfgs_n(ls) != (na + nd) * kv + kv) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
            goto out;
        }
        /* the sums, in shard order: on from where lbfgs_task_done stopped */
        if (rt && rt->sum.ready) sm = &rt->sum;
        else if ((rc = sum_init(sm, s.active, na, nd, kv)) != 0) goto out;
        if (rt) tp = &rt->touch;
        if (touch_init(tp, nt) != 0) { rc = MLOPS_ENOMEM; goto out; }
        for (size_t t = sm->next; t < nt; t++) {
            Mlops__Tasks__LbfgsGradResult *r = result_of(st, t, kv, &nd, err, errlen);
            if (!r) { rc = MLOPS_EPARSE; goto out; }
            rc = sum_add(sm, tp, r, t, nd, kv, err, errlen);
            mlops__tasks__lbfgs_grad_result__free_unpacked(r, NULL);
            if (rc) goto out;
        }
    }
    size_t nw = (na + nd) * kv;
    double *g = sm->g, f = sm->f;
    uint64_t count = sm->count;
    const double *x = mlk_lbfgs_x(ls);
    double sq = 0.0, C = s.C;
    for (size_t q = 0; q < nw; q++) {
        sq += x[q] * x[q];
        g[q] += x[q] / C;
    }
    f += 0.5 * sq / C;
    unsigned iter0 = mlk_lbfgs_iter(ls);
    int st_rc = mlk_lbfgs_tell(ls, f, g, err, errlen);
    if (st_rc < 0) { rc = st_rc; goto out; }
    double fb, gmax;
    mlk_lbfgs_best(ls, &fb, &gmax);
    if (mlk_lbfgs_iter(ls) != iter0 || iter0 == 0) {
        double *tl = realloc(j->train_loss, (j->ntrain_loss + 1) * sizeof *tl);
        if (!tl) { rc = MLOPS_ENOMEM; goto out; }
        j->train_loss = tl;
        tl[j->ntrain_loss++] = count ? fb / (double)count : fb;
        j->dirty = 1;
        if (mlk_lbfgs_iter(ls) != iter0)
            job_logf(j, "train: L-BFGS iteration %u: objective %.10g, max |gradient| %.3g (%u evaluations)",
                     mlk_lbfgs_iter(ls), C * fb, C * gmax, mlk_lbfgs_evals(ls));
    }
    if ((rc = mlk_lbfgs_encode(ls, &sbuf, &slen)) != 0) goto out;
    if (st_rc == MLK_LBFGS_RUNNING) {
        /* the touched inputs go on to the next phase's rt */
        ltouch_t keep = *tp;
        memset(tp, 0, sizeof *tp);
        stage_rt_drop(st); /* of the phase that ends */
        if ((rc = lencode(st, 0, C, nd, na, active, sbuf, slen, NULL, 0, j->ntrain_loss)) != 0) goto out;
        st->phase++;
        if ((rc = stage_set_tasks(st, nt, "lbfgs_grad")) != 0) goto out;
        stage_set_output_keys(j, st, NULL);
        /* the solver kept for the next evaluation: what the blob now holds */
        lrt_t *rt = lrt_new(st);
        if (rt) {
            rt->ls = ls;
            ls = NULL;
            rt->touch = keep;
        } else {
            touch_free(&keep);
        }
        rc = 1;
        goto out;
    }
    stage_rt_drop(st);
    /* stopped: the last accepted point is the model */
    lstate_t s2 = s;
    s2.nd = nd;
    s2.na = na;
    s2.active = (const uint8_t *)active;
    const double *best = mlk_lbfgs_best(ls, NULL, NULL);
    if ((rc = make_model(j, &s2, best, count * mlk_lbfgs_evals(ls), &mbuf, &mlen)) != 0) goto out;
    /* the solver's state is no longer needed: keep the journal small */
    if ((rc = lencode(st, 1, C, nd, na, active, NULL, 0, mbuf, mlen, j->ntrain_loss)) != 0) goto out;
    job_logf(j, "train: L-BFGS stopped (%s) after %u iterations, %u evaluations: objective %.10g",
             mlk_lbfgs_status_name(mlk_lbfgs_status_of(ls)), mlk_lbfgs_iter(ls), mlk_lbfgs_evals(ls), C * fb);
    job_set_metric(j, "lbfgs_iterations", (double)mlk_lbfgs_iter(ls));
    job_set_metric(j, "lbfgs_evaluations", (double)mlk_lbfgs_evals(ls));
    job_set_metric(j, "lbfgs_objective", C * fb);
    job_set_metric(j, "model_bytes", (double)mlen);
    char id[64];
    snprintf(id, sizeof id, "%s-model", j->id);
    free(j->model);
    j->model = strdup(id);
    j->dirty = 1;
    rc = 0;
out:
    sum_free(&own);
    touch_free(&own_touch);
    free(active);
    free(sbuf);
    free(mbuf);
    mlk_lbfgs_destroy(&ls);
    return rc;
}

const uint8_t *stage_lbfgs_model(const stage_t *st, size_t *len)
{
    lstate_t s;
    if (!st || ldecode(st, &s) != 0 || !s.final || !s.model_len) return NULL;
    *len = s.model_len;
    return s.model;
}

/* Prefetch 0, as train's epochs: the coordinator's --prefetch-tasks (2)
 * per slot, a second one queued only behind tasks of such barrier
 * phases (dispatch.c), so a worker has its next shard's gradient task
 * while it computes one, instead of a result -> assign round trip
 * between each two of an evaluation's tasks (it had 1). */
/* The running stage's record (its blob: the solver's state) is
 * journalled every LBFGS_CHECKPOINT evaluations (phases), and after the
 * first; the top of this file. */
static int lbfgs_save_due(const job_t *j, const stage_t *st)
{
    (void)j;
    return st->phase <= 1 || st->phase % LBFGS_CHECKPOINT == 0;
}

const stage_ops_t stage_lbfgs = {"train", lbfgs_start, lbfgs_args, lbfgs_done, 0, NULL, 1, lbfgs_save_due,
                                 lbfgs_task_done};
