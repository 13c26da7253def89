/* stage_cv.c: k-fold cross-validation and hyperparameter search, as one
 * stage between split and train. Every (trial, fold) pair is an
 * *instance*: the train stage's iterative parameter mixing (the same
 * SGD epochs and the same fan-in-8 average tree in shard order) over the
 * shard rows outside its fold, with its trial's train.* values. All
 * instances advance in lockstep, one phase per epoch, and a task serves
 * every instance from one read of its shard (the shards the earlier
 * stages prepared once):
 *   "cv_epoch"     task c*S + s: shard s, one SGD pass per active instance
 *                  of chunk c (per_task: all of them unless their models
 *                  would pass 64 MiB) over the shard's training rows
 *                  outside its fold (CvRows, worker/kind_cv.c), from the
 *                  instance's epoch start model; the parameters come back
 *                  in the result (sparse) and are mixed here per instance
 *                  (coord_mixtree: the bytes the train_reduce levels gave).
 *   "cv_evaluate"  task c*S + s: every instance's model of chunk c on its
 *                  fold's rows of shard s; per instance the partials are
 *                  merged in shard order.
 * A journal written while a task ran per (instance, shard) still runs
 * on: "train_epoch", "train_reduce" (stored parameter shards) and
 * "evaluate" phases are read as before, and the next phase uses the
 * kinds above.
 * An instance whose trial has fewer epochs leaves the lockstep early.
 * Then each trial's score is the mean over its folds of search.metric;
 * the best trial (the first of equal means, as GridSearchCV ranks) has
 * its values written into the job's train section (and, with register,
 * its version's tags), so the train stage that follows refits it on all
 * training rows, evaluate scores it on the test split, and register and
 * promote treat it as any trained model. Without search there is one
 * trial, the job's own train values (cv alone).
 *
 * Folds: method sklearn computes KFold(k, shuffle=True,
 * random_state=seed)'s folds over the training rows in global order here
 * (kfold.h) and sends each task its shard's slice; method hash leaves it
 * to the worker (a hash of the row id).
 *
 * Determinism: the tasks depend only on the blob, the spec and the
 * shards, and the coordinator reduces in task order, so the trial table
 * and the refitted model are the same for any number of workers. A lost
 * parameter shard of the running epoch (stored only by the train_epoch
 * phases of an older journal) re-runs that epoch (restart).
 *
 * blob: u32 mode (0 epoch, 1 reduce, 2 evaluate, 3 done), u32 epoch,
 *       u32 level, u32 final, u32 T, u32 K, u32 S, u32 nact, u32
 *       act[nact], u64 nparts, u64 counts[nact * nparts], u64 first[S],
 *       u64 ntrain[S], u64 nassign, u8 assign[nassign], then per instance
 *       (T * K): blob model, f64 seconds, f64 score[CV_NS] (NaN: none). */
#include "bytes.h"
#include "err.h"
#include "jobschema.h"
#include "jobsearch.h"
#include "kfold.h"
#include "model.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CV_FANIN MIXTREE_FANIN /* the reduce phases' groups: the mixing tree's */
#define CV_NM 6    /* accuracy, logloss, auc, f1, precision, recall: the MLOPS_METRIC_* bits */
#define CV_NS 8    /* the scores kept per instance: CV_NM, then the fold's rows and its rows of class 1 */
#define CV_MAX_MODEL_BYTES 2147483648.0 /* the instances' models, held in the stage's blob */
#define CV_TASK_BYTES 67108864.0        /* the models of one cv_epoch task, at most */
enum { M_EPOCH = 0, M_REDUCE = 1, M_EVAL = 2, M_DONE = 3 };

static const char *const METRIC[CV_NM] = {"accuracy", "logloss", "auc", "f1", "precision", "recall"};

typedef struct {
    uint32_t mode, epoch, level, final, T, K, S, nact;
    const uint8_t *act; /* nact u32, unaligned (borrowed from the blob) */
    uint64_t nparts;
    const uint8_t *counts; /* nact * nparts u64 */
    const uint8_t *first, *ntrain; /* S u64 each */
    uint64_t nassign;
    const uint8_t *assign;
    const uint8_t **model; /* per instance, borrowed; malloc'd array */
    size_t *model_len;
    double *seconds, *score; /* malloc'd copies */
} cvplan_t;

static uint32_t rd32(const uint8_t *p, size_t i)
{
    uint32_t v;
    memcpy(&v, p + i * 4, 4);
    return v;
}

static uint64_t rd64(const uint8_t *p, size_t i)
{
    uint64_t v;
    memcpy(&v, p + i * 8, 8);
    return v;
}

static void plan_free(cvplan_t *p)
{
    free(p->model);
    free(p->model_len);
    free(p->seconds);
    free(p->score);
    memset(p, 0, sizeof *p);
}

static int plan_decode(const stage_t *st, cvplan_t *p)
{
    memset(p, 0, sizeof *p);
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    p->mode = br_u32(&r);
    p->epoch = br_u32(&r);
    p->level = br_u32(&r);
    p->final = br_u32(&r);
    p->T = br_u32(&r);
    p->K = br_u32(&r);
    p->S = br_u32(&r);
    p->nact = br_u32(&r);
    uint64_t ninst = (uint64_t)p->T * p->K;
    if (r.err || p->mode > M_DONE || p->nact > ninst || ninst > 100000000u ||
        (size_t)p->nact * 4 > st->blob_len - r.at)
        return MLOPS_EPARSE;
    p->act = st->blob + r.at;
    r.at += (size_t)p->nact * 4;
    p->nparts = br_u64(&r);
    if (r.err || p->nparts > st->blob_len || p->nact * p->nparts * 8 > st->blob_len - r.at) return MLOPS_EPARSE;
    p->counts = st->blob + r.at;
    r.at += p->nact * p->nparts * 8;
    if ((uint64_t)p->S * 16 > st->blob_len - r.at) return MLOPS_EPARSE;
    p->first = st->blob + r.at;
    p->ntrain = p->first + (size_t)p->S * 8;
    r.at += (size_t)p->S * 16;
    p->nassign = br_u64(&r);
    if (r.err || p->nassign > st->blob_len - r.at) return MLOPS_EPARSE;
    p->assign = st->blob + r.at;
    r.at += p->nassign;
    p->model = calloc(ninst + 1, sizeof *p->model);
    p->model_len = calloc(ninst + 1, sizeof *p->model_len);
    p->seconds = calloc(ninst + 1, sizeof *p->seconds);
    p->score = calloc(ninst * CV_NS + 1, sizeof *p->score);
    if (!p->model || !p->model_len || !p->seconds || !p->score) {
        plan_free(p);
        return MLOPS_ENOMEM;
    }
    for (uint64_t i = 0; i < ninst; i++) {
        p->model[i] = br_blob(&r, &p->model_len[i]);
        p->seconds[i] = br_f64(&r);
        for (int m = 0; m < CV_NS; m++) p->score[i * CV_NS + m] = br_f64(&r);
    }
    for (uint32_t a = 0; a < p->nact; a++)
        if (rd32(p->act, a) >= ninst) r.err = 1;
    if (r.err || !br_done(&r)) {
        plan_free(p);
        return MLOPS_EPARSE;
    }
    return 0;
}

/* A new blob from p, with act/counts/models replaced where given. */
static int plan_encode(stage_t *st, const cvplan_t *p, const uint32_t *act, uint32_t nact,
                       const uint64_t *counts, uint64_t nparts, uint8_t **models, const size_t *mlens)
{
    bw_t w;
    bw_init(&w);
    bw_u32(&w, p->mode);
    bw_u32(&w, p->epoch);
    bw_u32(&w, p->level);
    bw_u32(&w, p->final);
    bw_u32(&w, p->T);
    bw_u32(&w, p->K);
    bw_u32(&w, p->S);
    bw_u32(&w, nact);
    bw_put(&w, act, (size_t)nact * 4);
    bw_u64(&w, nparts);
    bw_put(&w, counts, nact * nparts * 8);
    bw_put(&w, p->first, (size_t)p->S * 8);
    bw_put(&w, p->ntrain, (size_t)p->S * 8);
    bw_u64(&w, p->nassign);
    bw_put(&w, p->assign, p->nassign);
    uint64_t ninst = (uint64_t)p->T * p->K;
    for (uint64_t i = 0; i < ninst; i++) {
        if (models && models[i]) bw_blob(&w, models[i], mlens[i]);
        else bw_blob(&w, p->model[i], p->model_len[i]);
        bw_f64(&w, p->seconds[i]);
        for (int m = 0; m < CV_NS; m++) bw_f64(&w, p->score[i * CV_NS + m]);
    }
    size_t len;
    uint8_t *b = bw_take(&w, &len);
    if (!b) return MLOPS_ENOMEM;
    free(st->blob);
    st->blob = b;
    st->blob_len = len;
    return 0;
}

static uint32_t cv_folds(const mlops_jobspec_t *s) { return s->has_search ? s->search.folds : s->cv.folds; }

/* The train section of trial `trial` (a copy of the job's, the trial's
 * values applied). */
static int trial_train(const job_t *j, uint32_t trial, mlops_jobspec_t *out)
{
    double *vals;
    size_t n;
    int rc = mlops_search_trials(j->spec, &vals, &n);
    if (rc) return rc;
    *out = *j->spec; /* shallow: only the scalar train fields are read */
    if (trial < n && j->spec->has_search) mlops_search_apply(out, vals + (size_t)trial * j->spec->search.nparams);
    free(vals);
    return trial < n ? 0 : MLOPS_EPARSE;
}

/* The instances still training in epoch e, in instance order. */
static int active_of(const job_t *j, const cvplan_t *p, uint32_t e, uint32_t **act, uint32_t *nact)
{
    uint32_t ninst = p->T * p->K, n = 0;
    uint32_t *a = malloc((ninst ? ninst : 1) * sizeof *a);
    if (!a) return MLOPS_ENOMEM;
    for (uint32_t t = 0; t < p->T; t++) {
        mlops_jobspec_t tr;
        int rc = trial_train(j, t, &tr);
        if (rc) {
            free(a);
            return rc;
        }
        if (tr.train.epochs > e)
            for (uint32_t f = 0; f < p->K; f++) a[n++] = t * p->K + f;
    }
    *act = a;
    *nact = n;
    return 0;
}

/* Instances per cv_epoch / cv_evaluate task: as many as keep a task's
 * models (arguments or results) within CV_TASK_BYTES at their largest
 * (dense) byte form, so a big grid is split across tasks instead of
 * making messages of gigabytes. Fixed by the spec, so the same for every
 * phase and after a restart. */
static uint32_t per_task(const job_t *j)
{
    const mlops_jobspec_t *sp = j->spec;
    double dim = (sp->has_hash ? (double)sp->hash.n_features : 0) + (double)sp->columns.n_numeric + 1;
    double bound = dim * (job_nclasses(j) > 2 ? (double)job_nclasses(j) : 1) * 8 + 256;
    double n = floor(CV_TASK_BYTES / bound);
    return n < 1 ? 1 : n > 100000000 ? 100000000 : (uint32_t)n;
}

/* Tasks of a phase over n instances: per shard, one per chunk of
 * per_task instances; task c*S + s is chunk c on shard s. The parameters
 * come back in the results (nothing stored) and are mixed here. */
static int set_shard_phase(job_t *j, stage_t *st, uint32_t n, uint32_t S, const char *kind)
{
    uint32_t per = per_task(j), chunks = n ? (n + per - 1) / per : 1;
    int rc = stage_set_tasks(st, (size_t)chunks * S, kind);
    if (!rc) stage_set_output_keys(j, st, NULL);
    return rc;
}

static int set_epoch_phase(job_t *j, stage_t *st, uint32_t nact, uint32_t S)
{
    return set_shard_phase(j, st, nact, S, "cv_epoch");
}

static int set_eval_phase(job_t *j, stage_t *st, const cvplan_t *p)
{
    return set_shard_phase(j, st, p->T * p->K, p->S, "cv_evaluate");
}

static int cv_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *sp = j->spec;
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "cv: no input stage");
    if (job_nclasses(j) < 2)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "cv: the label has %zu distinct value(s); need at least 2",
                            job_nclasses(j));
    double *vals;
    size_t T;
    int rc = mlops_search_trials(sp, &vals, &T);
    if (rc == MLOPS_EINVAL)
        return mlops_seterr(err, errlen, rc, "search: %llu trials exceed search.max_trials (%u)",
                            (unsigned long long)mlops_search_count(sp), sp->search.max_trials);
    if (rc) return rc;
    free(vals);
    uint32_t K = cv_folds(sp), S = (uint32_t)in->ntasks;
    /* the blob holds every instance's model: refuse what would not fit */
    double dim = (sp->has_hash ? (double)sp->hash.n_features : 0) + (double)sp->columns.n_numeric + 1;
    double bytes = dim * (job_nclasses(j) > 2 ? (double)job_nclasses(j) : 1) * 8 * (double)T * K;
    if (bytes > CV_MAX_MODEL_BYTES)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "search: %zu trials x %u folds of %.0f-weight models need %.1f GiB in the coordinator "
                            "(at most %.0f GiB): use fewer trials or folds, or a smaller hash.n_features",
                            T, K, dim, bytes / 1073741824.0, CV_MAX_MODEL_BYTES / 1073741824.0);
    int is_split = !strcmp(in->name, "split");
    uint64_t *first = calloc((size_t)S * 2 + 1, sizeof *first), ntr = 0;
    if (!first) return MLOPS_ENOMEM;
    for (uint32_t s = 0; s < S; s++) {
        double test = 0;
        if (is_split) task_metric(&in->tasks[s], "rows_test", &test);
        first[s] = ntr;
        first[S + s] = in->tasks[s].rows - (uint64_t)test;
        ntr += first[S + s];
    }
    uint8_t *assign = NULL;
    uint64_t nassign = 0;
    if (sp->cv.method == MLOPS_CV_SKLEARN) {
        assign = malloc(ntr ? ntr : 1);
        if (!assign) rc = MLOPS_ENOMEM;
        else rc = mlk_kfold_sklearn(sp->cv.seed, (size_t)ntr, K, assign, err, errlen);
        nassign = ntr;
    } else if (ntr < K) {
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "cv: cannot have %u folds with %llu training rows", K,
                          (unsigned long long)ntr);
    }
    cvplan_t p = {.mode = M_EPOCH, .T = (uint32_t)T, .K = K, .S = S, .first = (uint8_t *)first,
                  .ntrain = (uint8_t *)(first + S), .nassign = nassign, .assign = assign};
    uint64_t ninst = (uint64_t)T * K;
    p.model = calloc(ninst, sizeof *p.model);
    p.model_len = calloc(ninst, sizeof *p.model_len);
    p.seconds = calloc(ninst, sizeof *p.seconds);
    p.score = malloc(ninst * CV_NS * sizeof *p.score);
    if (!rc && (!p.model || !p.model_len || !p.seconds || !p.score)) rc = MLOPS_ENOMEM;
    for (uint64_t i = 0; !rc && i < ninst * CV_NS; i++) p.score[i] = NAN;
    uint32_t *act = NULL, nact = 0;
    if (!rc) rc = active_of(j, &p, 0, &act, &nact);
    if (!rc) rc = plan_encode(st, &p, act, nact, NULL, 0, NULL, NULL);
    free(first);
    free(assign);
    free(act);
    plan_free(&p);
    if (rc) return rc;
    double prep = 0; /* the stages before this one ran once for every trial and fold */
    for (size_t i = 0; i < (size_t)(st - j->stages); i++) prep += j->stages[i].seconds;
    if (sp->has_search)
        job_logf(j, "search: %zu trials x %u folds on %llu training rows (%s folds), sharing the "
                 "preparation of %.3f s (the stages before cv, once)", T, K, (unsigned long long)ntr,
                 sp->cv.method == MLOPS_CV_SKLEARN ? "KFold" : "hashed", prep);
    else
        job_logf(j, "cv: %u folds on %llu training rows", K, (unsigned long long)ntr);
    return set_epoch_phase(j, st, nact, S);
}

static int cv_rows_of(const job_t *j, const cvplan_t *p, uint32_t fold, uint32_t s, int holdout,
                      Mlops__Tasks__CvRows *cv)
{
    mlops__tasks__cv_rows__init(cv);
    cv->folds = p->K;
    cv->fold = fold;
    cv->holdout = holdout != 0;
    cv->hash = j->spec->cv.method == MLOPS_CV_HASH;
    cv->seed = j->spec->cv.seed;
    if (!cv->hash) {
        uint64_t first = rd64(p->first, s), n = rd64(p->ntrain, s);
        if (first > p->nassign || n > p->nassign - first) return MLOPS_EPARSE;
        cv->assign.data = (uint8_t *)p->assign + first;
        cv->assign.len = (size_t)n;
    }
    return 0;
}


/* The rows an instance of fold `fold` fits on, for its alpha = 1/(C n)
 * when the trial gives C: the training rows outside the fold, exactly
 * with method sklearn (KFold's fold sizes: n // K, one more for the
 * first n % K); with method hash, whose folds are only about equal and
 * counted by the workers as they read, the expected n - n // K. */
static uint64_t cv_fit_rows(const job_t *j, const cvplan_t *p, uint32_t fold)
{
    uint64_t n = 0;
    for (uint32_t s = 0; s < p->S; s++) n += rd64(p->ntrain, s);
    uint64_t in_fold = n / p->K;
    if (j->spec->cv.method == MLOPS_CV_SKLEARN && fold < n % p->K) in_fold++;
    return n - in_fold;
}

/* The train sections of all T trials (copies of the job's spec, each
 * trial's values applied), *out malloc'd: what trial_train gives trial
 * by trial, without recomputing the grid per instance. */
static int trial_specs(const job_t *j, uint32_t T, mlops_jobspec_t **out)
{
    double *vals;
    size_t n;
    int rc = mlops_search_trials(j->spec, &vals, &n);
    if (rc) return rc;
    mlops_jobspec_t *tr = n == T ? malloc((T ? T : 1) * sizeof *tr) : NULL;
    for (uint32_t t = 0; tr && t < T; t++) {
        tr[t] = *j->spec; /* shallow: only the scalar train fields are read */
        if (j->spec->has_search) mlops_search_apply(&tr[t], vals + (size_t)t * j->spec->search.nparams);
    }
    free(vals);
    if (!tr) return n == T ? MLOPS_ENOMEM : MLOPS_EPARSE;
    *out = tr;
    return 0;
}

/* The arguments of shard s's task of a cv_epoch phase (every active
 * instance, trial-major) or of the cv_evaluate phase (every instance). */
static int cv_shard_args(job_t *j, const cvplan_t *p, const stage_t *in, size_t t, int ev, task_args_t *out)
{
    uint32_t all = ev ? p->T * p->K : p->nact, per = per_task(j);
    size_t s = t % p->S, lo = t / p->S * (size_t)per;
    if (lo >= all) return MLOPS_EPARSE;
    uint32_t n = all - lo < per ? all - (uint32_t)lo : per;
    mlops_jobspec_t *tr = NULL;
    Mlops__Tasks__TrainEpochArgs *ea = ev ? NULL : calloc(n + 1, sizeof *ea);
    Mlops__Tasks__EvaluateArgs *va = ev ? calloc(n + 1, sizeof *va) : NULL;
    void **ptr = calloc(n + 1, sizeof *ptr);
    uint32_t *fold = calloc(n + 1, sizeof *fold);
    Mlops__Tasks__CvRows cv;
    int rc = (ea || va) && ptr && fold ? 0 : MLOPS_ENOMEM;
    if (!rc) rc = args_add_input(out, in->tasks[s].output_key);
    if (!rc) rc = cv_rows_of(j, p, 0, (uint32_t)s, 0, &cv);
    if (!rc && !ev) rc = trial_specs(j, p->T, &tr);
    for (uint32_t a = 0; !rc && a < n; a++) {
        uint32_t inst = ev ? (uint32_t)lo + a : rd32(p->act, lo + a);
        fold[a] = inst % p->K;
        if (ev) {
            mlops__tasks__evaluate_args__init(&va[a]);
            va[a].classes = (uint32_t)job_nclasses(j);
            va[a].model.data = (uint8_t *)p->model[inst];
            va[a].model.len = p->model_len[inst];
            ptr[a] = &va[a];
            continue;
        }
        const mlops_jobspec_t *t = &tr[inst / p->K];
        Mlops__Tasks__TrainEpochArgs *e = &ea[a];
        mlops__tasks__train_epoch_args__init(e);
        stage_train_sgd_args(t, cv_fit_rows(j, p, inst % p->K), e);
        e->epoch = p->epoch;
        e->shard = (uint32_t)s;
        e->classes = (uint32_t)job_nclasses(j);
        e->model.data = (uint8_t *)p->model[inst];
        e->model.len = p->model_len[inst];
        ptr[a] = e;
    }
    if (!rc && ev) {
        Mlops__Tasks__CvEvaluateArgs c = MLOPS__TASKS__CV_EVALUATE_ARGS__INIT;
        c.n_inst = n;
        c.inst = (Mlops__Tasks__EvaluateArgs **)ptr;
        c.n_fold = n;
        c.fold = fold;
        c.rows = &cv;
        rc = args_pack(out, &c.base);
    } else if (!rc) {
        Mlops__Tasks__CvEpochArgs c = MLOPS__TASKS__CV_EPOCH_ARGS__INIT;
        c.n_inst = n;
        c.inst = (Mlops__Tasks__TrainEpochArgs **)ptr;
        c.n_fold = n;
        c.fold = fold;
        c.rows = &cv;
        rc = args_pack(out, &c.base);
    }
    free(tr);
    free(ea);
    free(va);
    free(ptr);
    free(fold);
    return rc;
}

static int cv_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    cvplan_t p;
    if (plan_decode(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "cv plan is damaged");
    stage_t *in = stage_input_of(j, st);
    int rc = 0;
    if (!in || in->ntasks != p.S || p.S == 0) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "cv plan is damaged");
        goto out;
    }
    if (!strcmp(st->kind, "cv_epoch") || !strcmp(st->kind, "cv_evaluate")) {
        rc = cv_shard_args(j, &p, in, t, !strcmp(st->kind, "cv_evaluate"), out);
        if (rc == MLOPS_EPARSE) mlops_seterr(err, errlen, rc, "cv plan is damaged");
        goto out;
    }
    /* the kinds of a journal written before cv_epoch: a task per instance and shard */
    if (!strcmp(st->kind, "train_epoch") || !strcmp(st->kind, "evaluate")) {
        int ev = !strcmp(st->kind, "evaluate");
        size_t a = t / p.S, s = t % p.S;
        uint32_t inst = ev ? (uint32_t)a : (a < p.nact ? rd32(p.act, a) : UINT32_MAX);
        if (inst >= p.T * p.K) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "cv plan is damaged");
            goto out;
        }
        Mlops__Tasks__CvRows cv;
        mlops_jobspec_t tr;
        if ((rc = args_add_input(out, in->tasks[s].output_key)) != 0 ||
            (rc = cv_rows_of(j, &p, inst % p.K, (uint32_t)s, ev, &cv)) != 0 ||
            (rc = trial_train(j, inst / p.K, &tr)) != 0)
            goto out;
        if (ev) {
            Mlops__Tasks__EvaluateArgs e = MLOPS__TASKS__EVALUATE_ARGS__INIT;
            e.classes = (uint32_t)job_nclasses(j);
            e.model.data = (uint8_t *)p.model[inst];
            e.model.len = p.model_len[inst];
            e.cv = &cv;
            rc = args_pack(out, &e.base);
            goto out;
        }
        Mlops__Tasks__TrainEpochArgs e = MLOPS__TASKS__TRAIN_EPOCH_ARGS__INIT;
        stage_train_sgd_args(&tr, cv_fit_rows(j, &p, inst % p.K), &e);
        e.epoch = p.epoch;
        e.shard = (uint32_t)s;
        e.classes = (uint32_t)job_nclasses(j);
        e.model.data = (uint8_t *)p.model[inst];
        e.model.len = p.model_len[inst];
        e.cv = &cv;
        rc = args_pack(out, &e.base);
        goto out;
    }
    /* reduce: group g of instance act[a]'s parts of the previous level */
    size_t groups = (p.nparts + CV_FANIN - 1) / CV_FANIN;
    size_t a = groups ? t / groups : 0, g = groups ? t % groups : 0;
    size_t lo = g * CV_FANIN, hi = lo + CV_FANIN;
    if (hi > p.nparts) hi = p.nparts;
    if (a >= p.nact || lo >= hi) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "cv plan is damaged");
        goto out;
    }
    uint64_t counts[CV_FANIN];
    for (size_t i = lo; i < hi && !rc; i++) {
        counts[i - lo] = rd64(p.counts, a * p.nparts + i);
        char key[160];
        if (p.level == 1) snprintf(key, sizeof key, "%s/cv.e%u/%zu", j->id, p.epoch, a * p.nparts + i);
        else snprintf(key, sizeof key, "%s/cv.e%ur%u/%zu", j->id, p.epoch, p.level - 1, a * p.nparts + i);
        rc = args_add_input(out, key);
    }
    if (!rc) {
        Mlops__Tasks__TrainReduceArgs r = MLOPS__TASKS__TRAIN_REDUCE_ARGS__INIT;
        r.final = p.final != 0;
        r.n_counts = hi - lo;
        r.counts = counts;
        rc = args_pack(out, &r.base);
    }
out:
    plan_free(&p);
    return rc;
}

/* The score of instance i in metric m, oriented so that higher is better
 * (NaN, an undefined score, ranks last). */
static double better(double v, int m) { return isnan(v) ? -HUGE_VAL : m == 1 ? -v : v; }

/* Scores of every instance: the trials' table, the best trial's cv.*
 * metrics, and its values into the job's train section. */
static int finish(job_t *j, const cvplan_t *p, char *err, size_t errlen)
{
    mlops_jobspec_t *sp = j->spec;
    int metric = sp->has_search ? sp->search.metric : 0;
    unsigned want = (sp->has_evaluate ? sp->metrics : MLOPS_METRIC_ACCURACY) | (1u << metric);
    double *fold = malloc(p->K * sizeof *fold);
    if (!fold) return MLOPS_ENOMEM;
    uint32_t best = 0;
    double best_mean = 0, mean, sd;
    for (uint32_t t = 0; t < p->T; t++) {
        for (uint32_t f = 0; f < p->K; f++) fold[f] = p->score[((size_t)t * p->K + f) * CV_NS + metric];
        mlk_kfold_stats(fold, p->K, &mean, &sd);
        if (t == 0 || better(mean, metric) > better(best_mean, metric)) {
            best = t;
            best_mean = mean;
        }
    }
    char name[64];
    for (int m = 0; m < CV_NM; m++) {
        if (!(want & (1u << m))) continue;
        for (uint32_t f = 0; f < p->K; f++) {
            fold[f] = p->score[((size_t)best * p->K + f) * CV_NS + m];
            snprintf(name, sizeof name, "cv.%s.fold%u", METRIC[m], f);
            if (!isnan(fold[f])) job_set_metric(j, name, fold[f]);
        }
        mlk_kfold_stats(fold, p->K, &mean, &sd);
        if (isnan(mean)) continue;
        snprintf(name, sizeof name, "cv.%s.mean", METRIC[m]);
        job_set_metric(j, name, mean);
        snprintf(name, sizeof name, "cv.%s.std", METRIC[m]);
        job_set_metric(j, name, sd);
    }
    for (uint32_t f = 0; f < p->K; f++) {
        snprintf(name, sizeof name, "cv.rows.fold%u", f);
        job_set_metric(j, name, p->score[(size_t)f * CV_NS + 6]);
        snprintf(name, sizeof name, "cv.rows_class1.fold%u", f);
        job_set_metric(j, name, p->score[(size_t)f * CV_NS + 7]);
    }
    free(fold);
    if (!sp->has_search) {
        job_logf(j, "cv: %s %.6f (std %.6f over %u folds)", METRIC[metric],
                 job_metric(j, "cv.accuracy.mean", NAN), job_metric(j, "cv.accuracy.std", NAN), p->K);
        return 0;
    }
    job_set_metric(j, "search.trials", p->T);
    job_set_metric(j, "search.best", best);
    int rc = stage_cv_apply_best(j, best, err, errlen);
    if (rc) return rc;
    char line[512];
    size_t o = 0;
    line[0] = 0;
    for (size_t i = 0; i < sp->search.nparams && o < sizeof line - 64; i++) {
        const mlops_jobschema_key_t *k = mlops_search_row(sp->search.params[i].key);
        double v = k && k->type == MLOPS_JSK_UINT ? *(const uint32_t *)(const void *)((const char *)sp + k->off)
                                                  : *(const double *)(const void *)((const char *)sp + k->off);
        o += (size_t)snprintf(line + o, sizeof line - o, " %s=%.17g", sp->search.params[i].key, v);
    }
    job_logf(j, "search: trial %u of %u is best:%s (%s %.6f over %u folds); refitting it on every training row",
             best, p->T, line, METRIC[metric], best_mean, p->K);
    return 0;
}

/* "train.alpha=1e-05": a trial value as a tag */
static int add_tag(mlops_jobspec_t *sp, const char *key, double v, int integer)
{
    char tag[160];
    if (integer) snprintf(tag, sizeof tag, "%s=%.0f", key, v);
    else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(tag, sizeof tag, "%s=%.*g", key, prec, v);
            if (strtod(strchr(tag, '=') + 1, NULL) == v) break;
        }
    }
    char **tags = realloc(sp->reg.tags, (sp->reg.n_tags + 1) * sizeof *tags);
    if (!tags) return MLOPS_ENOMEM;
    sp->reg.tags = tags;
    if (!(tags[sp->reg.n_tags] = strdup(tag))) return MLOPS_ENOMEM;
    sp->reg.n_tags++;
    return 0;
}

int stage_cv_apply_best(job_t *j, uint32_t best, char *err, size_t errlen)
{
    mlops_jobspec_t *sp = j->spec;
    double *vals;
    size_t n;
    int rc = mlops_search_trials(sp, &vals, &n);
    if (rc) return rc;
    if (best >= n) {
        free(vals);
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "search: best trial %u of %zu", best, n);
    }
    const double *v = vals + (size_t)best * sp->search.nparams;
    mlops_search_apply(sp, v);
    for (size_t i = 0; !rc && i < sp->search.nparams; i++) {
        const mlops_jobschema_key_t *k = mlops_search_row(sp->search.params[i].key);
        rc = add_tag(sp, sp->search.params[i].key, v[i], k && k->type == MLOPS_JSK_UINT);
    }
    free(vals);
    return rc;
}

void stage_cv_replayed(job_t *j, const stage_t *st)
{
    char err[160];
    double best = job_metric(j, "search.best", -1);
    if (st->state == ST_DONE && j->spec->has_search && best >= 0 &&
        stage_cv_apply_best(j, (uint32_t)best, err, sizeof err) != 0)
        job_logf(j, "search: cannot re-apply the best trial after a restart: %s", err);
}


/* An instance's scores (CV_NS) from the merged partials of its fold. */
static void fold_scores(const mlk_metrics *acc, double *sc, char *err, size_t errlen)
{
    mlk_metrics_result res;
    if (mlk_metrics_rows(acc) && mlk_metrics_compute(acc, &res, err, errlen) == 0) {
        sc[0] = res.accuracy;
        sc[1] = res.has_log_loss ? res.log_loss : NAN;
        sc[2] = res.has_auc ? res.roc_auc : NAN;
        sc[3] = res.f1;
        sc[4] = res.precision;
        sc[5] = res.recall;
    }
    /* the fold's make-up, which is the same for every trial */
    const uint64_t *conf = mlk_metrics_confusion(acc);
    uint32_t nc = mlk_metrics_nclasses(acc);
    sc[6] = (double)mlk_metrics_rows(acc);
    sc[7] = 0;
    for (uint32_t c = 0; conf && nc >= 2 && c < nc; c++) sc[7] += (double)conf[nc + c];
}

/* Whether active instances b and a of an epoch phase got the same
 * results from every shard: model bytes and counts (instance x is entry
 * x % per of the results of tasks (x / per) * S + s). */
static int same_parts(Mlops__Tasks__CvEpochResult *const *er, size_t S, size_t per, size_t b, size_t a)
{
    for (size_t s = 0; s < S; s++) {
        const Mlops__Tasks__TrainEpochResult *x = er[b / per * S + s]->inst[b % per];
        const Mlops__Tasks__TrainEpochResult *y = er[a / per * S + s]->inst[a % per];
        if (x->count != y->count || x->model.len != y->model.len ||
            memcmp(x->model.data, y->model.data, x->model.len))
            return 0;
    }
    return 1;
}

/* A phase of cv_epoch or cv_evaluate tasks is done: the active
 * instances' epoch models into *models (per instance, malloc'd), or
 * every instance's scores into p->score. Instance a of the phase is
 * entry a % per of the results of tasks (a / per) * S + s. */
static int cv_shards_done(const job_t *j, const stage_t *st, cvplan_t *p, int ev, uint8_t **models, size_t *mlens,
                          char *err, size_t errlen)
{
    size_t S = p->S, n = ev ? (size_t)p->T * p->K : p->nact, per = per_task(j);
    size_t nt = st->ntasks;
    Mlops__Tasks__CvEpochResult **er = ev ? NULL : calloc(nt + 1, sizeof *er);
    Mlops__Tasks__CvEvaluateResult **vr = ev ? calloc(nt + 1, sizeof *vr) : NULL;
    const uint8_t **bufs = calloc(S + 1, sizeof *bufs);
    size_t *lens = calloc(S + 1, sizeof *lens);
    uint64_t *counts = calloc(S + 1, sizeof *counts);
    int rc = (er || vr) && bufs && lens && counts ? 0 : MLOPS_ENOMEM;
    if (!rc && (S == 0 || nt != (n ? (n + per - 1) / per : 1) * S))
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "cv: %zu tasks for %zu instances on %zu shards", nt, n, S);
    for (size_t t = 0; !rc && t < nt; t++) {
        const task_t *tk = &st->tasks[t];
        size_t lo = t / S * per, want = n - lo < per ? n - lo : per;
        if (ev) {
            vr[t] = mlops__tasks__cv_evaluate_result__unpack(NULL, tk->result_len, tk->result);
            if (!vr[t] || vr[t]->n_inst != want) rc = MLOPS_EPARSE;
        } else {
            er[t] = mlops__tasks__cv_epoch_result__unpack(NULL, tk->result_len, tk->result);
            if (!er[t] || er[t]->n_inst != want || (er[t]->n_seconds && er[t]->n_seconds != want)) rc = MLOPS_EPARSE;
        }
        if (rc) mlops_seterr(err, errlen, rc, "cv: damaged result of task %zu", t);
    }
    for (size_t a = 0; !rc && a < n; a++) {
        uint32_t inst = ev ? (uint32_t)a : rd32(p->act, a);
        size_t base = a / per * S, k = a % per, share = n - a / per * per < per ? n - a / per * per : per;
        if (ev) { /* the partials in shard order, as evaluate's merge */
            mlk_metrics *acc = NULL;
            for (size_t s = 0; !rc && s < S; s++) {
                mlk_metrics *m = NULL;
                const ProtobufCBinaryData *b = &vr[base + s]->inst[k]->partial;
                rc = mlk_metrics_decode(b->data, b->len, &m, err, errlen);
                if (!rc && !acc) acc = m;
                else if (!rc) {
                    rc = mlk_metrics_merge(acc, m, err, errlen);
                    mlk_metrics_destroy(&m);
                }
                p->seconds[inst] += st->tasks[base + s].seconds / (double)share;
            }
            if (!rc) fold_scores(acc, p->score + (size_t)inst * CV_NS, err, errlen);
            mlk_metrics_destroy(&acc);
            continue;
        }
        for (size_t s = 0; !rc && s < S; s++) {
            const Mlops__Tasks__CvEpochResult *r = er[base + s];
            const Mlops__Tasks__TrainEpochResult *ir = r->inst[k];
            if (!ir->model.len) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "cv: task %zu returned no model", base + s);
            bufs[s] = ir->model.data;
            lens[s] = ir->model.len;
            counts[s] = ir->count;
            p->seconds[inst] += r->n_seconds ? r->seconds[k] : st->tasks[base + s].seconds / (double)share;
        }
        if (!rc && models[inst]) rc = MLOPS_EPARSE;
        /* the same parts as an earlier instance's (trials that differ
         * only in train.epochs, until the shorter stops): the same mix */
        size_t twin = a;
        for (size_t b = 0; !rc && twin == a && b < a; b++)
            if (same_parts(er, S, per, b, a)) twin = b;
        uint32_t tinst = twin < a ? rd32(p->act, twin) : inst;
        if (!rc && twin < a) {
            if (!(models[inst] = malloc(mlens[tinst]))) rc = MLOPS_ENOMEM;
            else memcpy(models[inst], models[tinst], mlens[inst] = mlens[tinst]);
        } else if (!rc) {
            rc = coord_mixtree(bufs, lens, counts, S, &models[inst], &mlens[inst], err, errlen);
        }
    }
    for (size_t t = 0; t < nt; t++) {
        if (er && er[t]) mlops__tasks__cv_epoch_result__free_unpacked(er[t], NULL);
        if (vr && vr[t]) mlops__tasks__cv_evaluate_result__free_unpacked(vr[t], NULL);
    }
    free(er);
    free(vr);
    free(bufs);
    free(lens);
    free(counts);
    return rc;
}

static int cv_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    cvplan_t p;
    if (plan_decode(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "cv plan is damaged");
    uint64_t ninst = (uint64_t)p.T * p.K;
    uint64_t *counts = calloc(st->ntasks + 1, sizeof *counts);
    uint8_t **models = calloc(ninst + 1, sizeof *models);
    size_t *mlens = calloc(ninst + 1, sizeof *mlens);
    uint32_t *act = NULL, nact = 0;
    int rc = counts && models && mlens ? 0 : MLOPS_ENOMEM;
    int shards = !strcmp(st->kind, "cv_epoch") || !strcmp(st->kind, "cv_evaluate");
    int mode = !strcmp(st->kind, "train_epoch") || !strcmp(st->kind, "cv_epoch") ? M_EPOCH
               : !strcmp(st->kind, "evaluate") || !strcmp(st->kind, "cv_evaluate") ? M_EVAL
                                                                                  : M_REDUCE;
    size_t per = mode == M_REDUCE ? (p.nparts + CV_FANIN - 1) / CV_FANIN : p.S;
    mlk_metrics *acc = NULL;
    if (!rc && shards) {
        if ((rc = cv_shards_done(j, st, &p, mode == M_EVAL, models, mlens, err, errlen)) != 0) goto out;
        if (mode == M_EPOCH) { /* the epoch's models are mixed: as after the last reduce level */
            mode = M_REDUCE;
            p.final = 1;
        }
        goto mixed;
    }
    for (size_t t = 0; !rc && t < st->ntasks; t++) {
        const task_t *tk = &st->tasks[t];
        size_t a = per ? t / per : 0;
        uint32_t inst = mode == M_EVAL ? (uint32_t)a : a < p.nact ? rd32(p.act, a) : 0;
        if (inst < ninst) p.seconds[inst] += tk->seconds;
        if (mode == M_EPOCH) {
            Mlops__Tasks__TrainEpochResult *r = mlops__tasks__train_epoch_result__unpack(NULL, tk->result_len, tk->result);
            if (!r) rc = MLOPS_EPARSE;
            else counts[t] = r->count;
            mlops__tasks__train_epoch_result__free_unpacked(r, NULL);
        } else if (mode == M_REDUCE) {
            Mlops__Tasks__TrainReduceResult *r = mlops__tasks__train_reduce_result__unpack(NULL, tk->result_len, tk->result);
            if (!r || (p.final && (!r->model.len || models[inst]))) rc = MLOPS_EPARSE;
            else {
                counts[t] = r->count;
                if (p.final) {
                    if (!(models[inst] = malloc(r->model.len))) rc = MLOPS_ENOMEM;
                    else memcpy(models[inst], r->model.data, r->model.len);
                    mlens[inst] = r->model.len;
                }
            }
            if (r) mlops__tasks__train_reduce_result__free_unpacked(r, NULL);
        } else {
            Mlops__Tasks__EvaluateResult *r = mlops__tasks__evaluate_result__unpack(NULL, tk->result_len, tk->result);
            mlk_metrics *m = NULL;
            if (!r) rc = MLOPS_EPARSE;
            else rc = mlk_metrics_decode(r->partial.data, r->partial.len, &m, err, errlen);
            if (r) mlops__tasks__evaluate_result__free_unpacked(r, NULL);
            if (!rc && !acc) acc = m;
            else if (!rc) {
                rc = mlk_metrics_merge(acc, m, err, errlen);
                mlk_metrics_destroy(&m);
            }
            if (!rc && t % p.S == p.S - 1) { /* the instance's last shard: its fold's scores */
                fold_scores(acc, p.score + (size_t)inst * CV_NS, err, errlen);
                mlk_metrics_destroy(&acc);
            }
        }
        if (rc == MLOPS_EPARSE) mlops_seterr(err, errlen, rc, "cv: damaged result of task %zu", t);
    }
    mlk_metrics_destroy(&acc);
    if (rc) goto out;
mixed:
    if (mode == M_EVAL) {
        p.mode = M_DONE;
        if ((rc = finish(j, &p, err, errlen)) != 0) goto out;
        rc = plan_encode(st, &p, NULL, 0, NULL, 0, NULL, NULL);
        goto out;
    }
    if (mode == M_REDUCE && p.final) {
        /* the epoch's models: the next epoch of the instances still training, or evaluate */
        p.epoch++;
        p.level = p.final = 0;
        if ((rc = active_of(j, &p, p.epoch, &act, &nact)) != 0) goto out;
        p.mode = nact ? M_EPOCH : M_EVAL;
        if ((rc = plan_encode(st, &p, act, nact, NULL, 0, models, mlens)) != 0) goto out;
        plan_free(&p);
        if ((rc = plan_decode(st, &p)) != 0) goto out;
        st->phase++;
        rc = nact ? set_epoch_phase(j, st, nact, p.S) : set_eval_phase(j, st, &p);
        if (!rc) rc = 1;
        goto out;
    }
    /* the next level of every active instance's tree over this phase's parts */
    uint64_t nparts = per;
    size_t groups = (nparts + CV_FANIN - 1) / CV_FANIN;
    p.mode = M_REDUCE;
    p.level = mode == M_EPOCH ? 1 : p.level + 1;
    p.final = groups == 1;
    act = malloc(((size_t)p.nact + 1) * sizeof *act);
    if (!act) {
        rc = MLOPS_ENOMEM;
        goto out;
    }
    for (uint32_t a = 0; a < p.nact; a++) act[a] = rd32(p.act, a);
    if ((rc = plan_encode(st, &p, act, p.nact, counts, nparts, NULL, NULL)) != 0) goto out;
    st->phase++;
    if ((rc = stage_set_tasks(st, groups * p.nact, "train_reduce")) != 0) goto out;
    char sfx[16];
    if (p.final) snprintf(sfx, sizeof sfx, ".m%u/", p.epoch);
    else snprintf(sfx, sizeof sfx, ".e%ur%u/", p.epoch, p.level);
    stage_set_output_keys(j, st, sfx);
    rc = 1;
out:
    for (uint64_t i = 0; models && i < ninst; i++) free(models[i]);
    free(models);
    free(mlens);
    free(counts);
    free(act);
    plan_free(&p);
    return rc;
}

/* A parameter shard of the running epoch was lost: re-run the epoch from
 * the instances' start models, which gives the same bytes. */
static int cv_restart(job_t *j, stage_t *st, char *err, size_t errlen)
{
    cvplan_t p;
    if (plan_decode(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "cv plan is damaged");
    int rc;
    st->phase++;
    if (p.mode == M_EVAL || p.mode == M_DONE) {
        rc = set_eval_phase(j, st, &p);
        plan_free(&p);
        return rc;
    }
    uint32_t *act = malloc(((size_t)p.nact + 1) * sizeof *act), nact = p.nact;
    if (!act) {
        plan_free(&p);
        return MLOPS_ENOMEM;
    }
    for (uint32_t a = 0; a < p.nact; a++) act[a] = rd32(p.act, a);
    p.mode = M_EPOCH;
    p.level = p.final = 0;
    rc = plan_encode(st, &p, act, nact, NULL, 0, NULL, NULL);
    free(act);
    job_logf(j, "cv: parameters of epoch %u were lost with a worker: re-running the epoch", p.epoch + 1);
    if (!rc) rc = set_epoch_phase(j, st, nact, p.S);
    plan_free(&p);
    return rc;
}

json_t *stage_cv_search_json(const job_t *j)
{
    const stage_t *st = NULL;
    for (size_t i = 0; i < j->nstages; i++)
        if (j->stages[i].ops == &stage_cv) st = &j->stages[i];
    cvplan_t p;
    if (!st || !j->spec->has_search || plan_decode(st, &p) != 0) return NULL;
    if (p.mode != M_DONE) {
        plan_free(&p);
        return NULL;
    }
    double *vals;
    size_t n;
    if (mlops_search_trials(j->spec, &vals, &n) != 0 || n != p.T) {
        plan_free(&p);
        return NULL;
    }
    const mlops_jobspec_t *sp = j->spec;
    int metric = sp->search.metric;
    json_t *trials = json_array();
    double *fold = malloc(p.K * sizeof *fold);
    for (uint32_t t = 0; fold && t < p.T; t++) {
        json_t *params = json_object();
        for (size_t i = 0; i < sp->search.nparams; i++) {
            const mlops_jobschema_key_t *k = mlops_search_row(sp->search.params[i].key);
            double v = vals[(size_t)t * sp->search.nparams + i];
            json_object_set_new(params, sp->search.params[i].key,
                                k && k->type == MLOPS_JSK_UINT ? json_integer((json_int_t)v) : json_real(v));
        }
        double mean, sd, secs = 0;
        for (uint32_t f = 0; f < p.K; f++) {
            fold[f] = p.score[((size_t)t * p.K + f) * CV_NS + metric];
            secs += p.seconds[(size_t)t * p.K + f];
        }
        mlk_kfold_stats(fold, p.K, &mean, &sd);
        json_array_append_new(trials, json_pack("{s:o,s:o,s:o,s:f}", "params", params, "mean",
                                                isnan(mean) ? json_null() : json_real(mean), "std",
                                                isnan(sd) ? json_null() : json_real(sd), "seconds", secs));
    }
    free(fold);
    free(vals);
    plan_free(&p);
    return json_pack("{s:s,s:o,s:I}", "metric", METRIC[metric], "trials", trials, "best",
                     (json_int_t)job_metric(j, "search.best", 0));
}

const stage_ops_t stage_cv = {"cv", cv_start, cv_args, cv_done, 2, cv_restart, 0, NULL, NULL};
