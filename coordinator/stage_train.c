/* stage_train.c: logistic regression by iterative parameter mixing.
 * Epoch e:
 *   "train_epoch"  one task per shard: starts from the epoch's model
 *                  (args), one pass over the shard's train rows, returns
 *                  its parameters (sparse byte form, ~12,000 non-zero
 *                  weights of 2^20 here) with its example count.
 *   mixing         here, when the epoch's tasks are done: levels of a
 *                  tree over those, groups of TRAIN_FANIN in shard order,
 *                  each the count-weighted average of the group added in
 *                  a fixed order (mlk_model_average_encoded, which visits
 *                  only the entries the inputs hold). The result starts
 *                  the next epoch at once: one phase per epoch, where the
 *                  tree's levels were phases of "train_reduce" tasks with
 *                  their shards in the stores (the same bytes).
 * The tree's shape depends only on the number of shards, so the model is
 * byte-identical for any number of workers. The "train_reduce" phases
 * remain for a journal written while they were used: if a worker dies
 * holding their parameters, the epoch is re-run from its start model
 * (restart), which gives the same bytes.
 * Args and results: TrainEpoch*, TrainReduce* (proto/tasks.proto).
 * blob: u32 epoch, u32 level, u32 final, u64 nparts, u64 counts[nparts],
 *       f64 loss_sum, then the epoch's start model bytes (empty = fresh). */
#include "bytes.h"
#include "err.h"
#include "log.h"
#include "model.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_FANIN MIXTREE_FANIN /* the reduce phases' groups: the mixing tree's */

typedef struct {
    uint32_t epoch, level, final;
    uint64_t nparts;
    const uint8_t *counts; /* nparts u64, unaligned */
    double loss_sum;
    const uint8_t *model;
    size_t model_len;
} tstate_t;

static int tdecode(const stage_t *st, tstate_t *s)
{
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    s->epoch = br_u32(&r);
    s->level = br_u32(&r);
    s->final = br_u32(&r);
    s->nparts = br_u64(&r);
    if (r.err || s->nparts > (st->blob_len - r.at) / 8) return MLOPS_EPARSE;
    s->counts = st->blob + r.at;
    r.at += s->nparts * 8;
    s->loss_sum = br_f64(&r);
    s->model = br_blob(&r, &s->model_len);
    return br_done(&r) ? 0 : MLOPS_EPARSE;
}

static int tencode(stage_t *st, uint32_t epoch, uint32_t level, uint32_t final, uint64_t nparts,
                   const uint64_t *counts, double loss_sum, const uint8_t *model, size_t model_len)
{
    bw_t w;
    bw_init(&w);
    bw_u32(&w, epoch);
    bw_u32(&w, level);
    bw_u32(&w, final);
    bw_u64(&w, nparts);
    bw_put(&w, counts, nparts * 8);
    bw_f64(&w, loss_sum);
    bw_blob(&w, model, model_len);
    uint8_t *b = bw_take(&w, &st->blob_len);
    if (!b) return MLOPS_ENOMEM;
    free(st->blob);
    st->blob = b;
    return 0;
}

uint64_t stage_train_rows(job_t *j, const stage_t *st)
{
    stage_t *in = stage_input_of(j, (stage_t *)st);
    uint64_t total = in ? stage_total_rows(in) : 0;
    return j->spec->has_split ? (uint64_t)job_metric(j, "rows_train", (double)total) : total;
}

/* SGDClassifier's alpha of a train section fitted on n rows: as given,
 * or LogisticRegression's C turned into the same penalty on the mean
 * loss, 1/(C n). */
static double train_alpha_n(const mlops_jobspec_t *sp, uint64_t n)
{
    if (sp->train.has_alpha) return sp->train.alpha;
    return 1.0 / (sp->train.C * (double)(n ? n : 1));
}

static double train_alpha(job_t *j, const stage_t *st)
{
    return train_alpha_n(j->spec, stage_train_rows(j, st));
}

/* The schedule: as given, else SGDClassifier's 'optimal' with its alpha,
 * and adagrad (eta0 0.1) with C. 'optimal' steps 1/(alpha (t0 + t)):
 * with alpha = 1/(C n_train) its first steps are about alpha^(-1/4)
 * long and it has not settled after 5 epochs (100k purchase rows: 1.2
 * points below LogisticRegression(), adagrad 0.1 above it). */
static mlops_learning_rate train_lr(const mlops_jobspec_t *sp)
{
    if (sp->train.has_learning_rate) return sp->train.learning_rate;
    return sp->train.has_alpha ? MLOPS_LR_OPTIMAL : MLOPS_LR_ADAGRAD;
}

static double train_eta0(const mlops_jobspec_t *sp)
{
    if (sp->train.has_eta0 || train_lr(sp) != MLOPS_LR_ADAGRAD || sp->train.has_learning_rate)
        return sp->train.eta0;
    return 0.1;
}

void stage_train_sgd_args(const mlops_jobspec_t *sp, uint64_t n_fit, Mlops__Tasks__TrainEpochArgs *a)
{
    a->learning_rate = (uint32_t)train_lr(sp);
    a->alpha = train_alpha_n(sp, n_fit);
    a->eta0 = train_eta0(sp);
    a->power_t = sp->train.power_t;
    a->batch_size = sp->train.batch_size;
    a->seed = sp->train.seed;
    a->shuffle = sp->train.shuffle != 0;
    a->n_features = sp->has_hash ? sp->hash.n_features : 0;
}

static int set_epoch_phase(job_t *j, stage_t *st, uint32_t epoch)
{
    stage_t *in = stage_input_of(j, st);
    int rc = stage_set_tasks(st, in->ntasks, "train_epoch");
    if (rc) return rc;
    (void)epoch;
    stage_set_output_keys(j, st, NULL); /* the parameters come back in the results */
    return 0;
}

static int train_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "train: no input stage");
    if (job_nclasses(j) < 2)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "train: the label has %zu distinct value(s); need at least 2",
                            job_nclasses(j));
    j->ntrain_loss = 0;
    if (!j->spec->train.has_alpha)
        job_logf(j, "train: alpha = 1/(C n_train) = %.6g (C %g, %llu training rows)", train_alpha(j, st),
                 j->spec->train.C, (unsigned long long)stage_train_rows(j, st));
    int rc = tencode(st, 0, 0, 0, 0, NULL, 0, NULL, 0);
    if (rc) return rc;
    return set_epoch_phase(j, st, 0);
}

static int train_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    tstate_t s;
    if (tdecode(st, &s) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
    const mlops_jobspec_t *sp = j->spec;
    int rc = 0;
    if (!strcmp(st->kind, "train_epoch")) {
        stage_t *in = stage_input_of(j, st);
        if ((rc = args_add_input(out, in->tasks[t].output_key)) != 0) return rc;
        Mlops__Tasks__TrainEpochArgs a = MLOPS__TASKS__TRAIN_EPOCH_ARGS__INIT;
        stage_train_sgd_args(sp, stage_train_rows(j, st), &a);
        a.epoch = s.epoch;
        a.shard = (uint32_t)t;
        a.classes = (uint32_t)job_nclasses(j);
        a.model.data = (uint8_t *)s.model;
        a.model.len = s.model_len;
        return args_pack(out, &a.base);
    }
    /* reduce: group t of the previous level's outputs */
    size_t lo = t * TRAIN_FANIN, hi = lo + TRAIN_FANIN;
    if (hi > s.nparts) hi = s.nparts;
    if (lo >= hi) return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
    uint64_t counts[TRAIN_FANIN];
    for (size_t i = lo; i < hi; i++) {
        memcpy(&counts[i - lo], s.counts + i * 8, 8);
        char key[160];
        if (s.level == 1) snprintf(key, sizeof key, "%s/train.e%u/%zu", j->id, s.epoch, i);
        else snprintf(key, sizeof key, "%s/train.e%ur%u/%zu", j->id, s.epoch, s.level - 1, i);
        if ((rc = args_add_input(out, key)) != 0) return rc;
    }
    Mlops__Tasks__TrainReduceArgs a = MLOPS__TASKS__TRAIN_REDUCE_ARGS__INIT;
    a.final = s.final != 0;
    a.n_counts = hi - lo;
    a.counts = counts;
    return args_pack(out, &a.base);
}

/* counts of a reduce phase just done (a journal from before the mixing
 * moved here: see the top); with model, its model (malloc'd, the caller
 * frees it). The loss sum is the epoch phase's, so 0 here. */
static int gather_counts(const stage_t *st, uint64_t **counts, double *loss_sum, uint8_t **model,
                         size_t *model_len, char *err, size_t errlen)
{
    *counts = calloc(st->ntasks ? st->ntasks : 1, sizeof **counts);
    if (!*counts) return MLOPS_ENOMEM;
    *loss_sum = 0;
    for (size_t t = 0; t < st->ntasks; t++) {
        const task_t *tk = &st->tasks[t];
        int bad = 0;
        Mlops__Tasks__TrainReduceResult *r =
            mlops__tasks__train_reduce_result__unpack(NULL, tk->result_len, tk->result);
        if (!r) bad = 1;
        else {
            (*counts)[t] = r->count;
            if (model && !*model) {
                *model = malloc(r->model.len ? r->model.len : 1);
                if (*model) memcpy(*model, r->model.data, r->model.len);
                *model_len = r->model.len;
                bad = !*model || !r->model.len;
            }
            mlops__tasks__train_reduce_result__free_unpacked(r, NULL);
        }
        if (bad) {
            free(*counts);
            if (model) {
                free(*model);
                *model = NULL;
            }
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "train: damaged result of task %zu", t);
        }
    }
    return 0;
}

/* The epoch's average of the models the epoch tasks returned: the tree
 * the train_reduce phases computed (coord_mixtree), with the counts and
 * the count-weighted loss sum (added in task order). Each result is
 * unpacked once and its model read in place: the tree's first level
 * averages straight from the unpacked results, no copy of the ~0.3 MB
 * models. *model malloc'd. */
static int mix_epoch(const stage_t *st, uint64_t **counts, double *loss_sum, uint8_t **model, size_t *model_len,
                     char *err, size_t errlen)
{
    size_t n = st->ntasks;
    Mlops__Tasks__TrainEpochResult **res = calloc(n ? n : 1, sizeof *res);
    const uint8_t **src = calloc(n ? n : 1, sizeof *src);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    uint64_t *cnt = malloc((n ? n : 1) * sizeof *cnt);
    *counts = calloc(n ? n : 1, sizeof **counts);
    *loss_sum = 0;
    int rc = (!res || !src || !lens || !cnt || !*counts) ? MLOPS_ENOMEM : 0;
    for (size_t t = 0; !rc && t < n; t++) {
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__TrainEpochResult *r = res[t] =
            mlops__tasks__train_epoch_result__unpack(NULL, tk->result_len, tk->result);
        if (!r) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "train: damaged result of task %zu", t);
        else if (!r->model.len) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "train: task %zu returned no model", t);
        else {
            (*counts)[t] = cnt[t] = r->count;
            *loss_sum += r->loss * (double)r->count;
            src[t] = r->model.data;
            lens[t] = r->model.len;
        }
    }
    if (!rc) rc = coord_mixtree(src, lens, cnt, n, model, model_len, err, errlen);
    for (size_t t = 0; res && t < st->ntasks; t++)
        if (res[t]) mlops__tasks__train_epoch_result__free_unpacked(res[t], NULL);
    free(res);
    free(src);
    free(lens);
    free(cnt);
    if (rc) {
        free(*counts);
        *counts = NULL;
    }
    return rc;
}

static int train_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    tstate_t s;
    if (tdecode(st, &s) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
    uint64_t *counts = NULL;
    double loss_sum = 0;
    uint8_t *model = NULL;
    size_t model_len = 0;
    int is_epoch = !strcmp(st->kind, "train_epoch");
    /* the epoch's tasks returned their parameters: mix them here */
    int rc = is_epoch ? mix_epoch(st, &counts, &loss_sum, &model, &model_len, err, errlen)
                      : gather_counts(st, &counts, &loss_sum, s.final ? &model : NULL, &model_len, err, errlen);
    if (rc) return rc;
    size_t nparts = st->ntasks;
    if (is_epoch) {
        uint64_t total = 0;
        for (size_t i = 0; i < nparts; i++) total += counts[i];
        double mean_loss = total ? loss_sum / (double)total : 0;
        double *tl = realloc(j->train_loss, (s.epoch + 1) * sizeof *tl);
        if (!tl) { free(counts); return MLOPS_ENOMEM; }
        j->train_loss = tl;
        tl[s.epoch] = mean_loss;
        j->ntrain_loss = s.epoch + 1;
        j->dirty = 1;
        job_logf(j, "train: epoch %u: %llu examples, loss %.6f", s.epoch + 1, (unsigned long long)total,
                 mean_loss);
    }
    if (is_epoch || (s.final && !is_epoch)) {
        /* the epoch's average: the next epoch's start, or the model */
        uint32_t next = s.epoch + 1;
        uint8_t *copy = model;
        if (!copy) {
            free(counts);
            return MLOPS_EPARSE;
        }
        free(counts);
        if (next < j->spec->train.epochs) {
            rc = tencode(st, next, 0, 0, 0, NULL, 0, copy, model_len);
            free(copy);
            if (rc) return rc;
            st->phase++;
            if ((rc = set_epoch_phase(j, st, next)) != 0) return rc;
            return 1;
        }
        rc = tencode(st, next, 0, 1, 0, NULL, 0, copy, model_len);
        free(copy);
        if (rc) return rc;
        char id[64];
        snprintf(id, sizeof id, "%s-model", j->id);
        free(j->model);
        j->model = strdup(id);
        job_set_metric(j, "model_bytes", (double)model_len);
        j->dirty = 1;
        stage_set_output_keys(j, st, NULL);
        return 0;
    }
    /* next reduction level over this phase's outputs */
    uint32_t level = is_epoch ? 1 : s.level + 1;
    size_t groups = (nparts + TRAIN_FANIN - 1) / TRAIN_FANIN;
    uint32_t final = groups == 1;
    /* keep the epoch's start model and the loss for a restart */
    uint8_t *start = malloc(s.model_len ? s.model_len : 1);
    if (!start) { free(counts); return MLOPS_ENOMEM; }
    memcpy(start, s.model, s.model_len);
    rc = tencode(st, s.epoch, level, final, nparts, counts, loss_sum, start, s.model_len);
    free(start);
    free(counts);
    if (rc) return rc;
    st->phase++;
    if ((rc = stage_set_tasks(st, groups, "train_reduce")) != 0) return rc;
    char sfx[40];
    if (final) snprintf(sfx, sizeof sfx, ".m%u/", s.epoch);
    else snprintf(sfx, sizeof sfx, ".e%ur%u/", s.epoch, level);
    stage_set_output_keys(j, st, sfx);
    return 1;
}

static int train_restart(job_t *j, stage_t *st, char *err, size_t errlen)
{
    tstate_t s;
    if (tdecode(st, &s) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "train plan is damaged");
    uint8_t *start = malloc(s.model_len ? s.model_len : 1);
    if (!start) return MLOPS_ENOMEM;
    memcpy(start, s.model, s.model_len);
    int rc = tencode(st, s.epoch, 0, 0, 0, NULL, 0, start, s.model_len);
    free(start);
    if (rc) return rc;
    job_logf(j, "train: parameters of epoch %u were lost with a worker: re-running the epoch", s.epoch + 1);
    st->phase++;
    return set_epoch_phase(j, st, s.epoch);
}

/* The final model bytes of a finished train stage (for evaluate), or NULL. */
const uint8_t *train_model(const stage_t *st, size_t *len)
{
    tstate_t s;
    if (st && st->ops == &stage_lbfgs) return stage_lbfgs_model(st, len);
    if (!st || tdecode(st, &s) != 0 || !s.final) return NULL;
    *len = s.model_len;
    return s.model;
}

/* Assignments in flight per slot: the coordinator's --prefetch-tasks (2
 * by default), so a worker has its next epoch task (arguments decoded,
 * shard fetched) queued while it trains and the result -> commit ->
 * assign round trip (10-30 ms under load) is not a gap between every two
 * of its tasks. The arguments hold the sparse model (~0.1-0.3 MB), so a
 * queued task costs little memory. */
const stage_ops_t stage_train = {"train", train_start, train_args, train_done, 0, train_restart, 0, NULL, NULL};
