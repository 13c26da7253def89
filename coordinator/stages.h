/* stages.h: the stage entries and the helpers they share. See
 * jobmodel.h for the planner interface. One file per stage entry:
 *   stage_ingest.c    ingest (CSV: byte ranges of the upload -> frames)
 *   stage_idx.c       ingest (IDX images/labels -> feature shards)
 *   stage_join.c      join (pandas merge with the joins' right tables)
 *   stage_clean.c     clean (quantile rounds, then dropna + IQR filter)
 *   stage_scale.c     scale (moments, then apply)
 *   stage_hash.c      hash (frames -> feature shards)
 *   stage_split.c     split (the test flag of every row)
 *   stage_cv.c        cv (k-fold cross-validation and search trials, before train)
 *   stage_train.c     train (SGD epochs + reduction tree)
 *   stage_lbfgs.c     train with solver lbfgs (one phase per evaluation)
 *   stage_evaluate.c  evaluate (metrics partials)
 *   stage_knn.c       knn (classify or recommend)
 *   stage_predict.c   predict (batch scoring with a registered model)
 *   stage_promote.c   promote (the champion scored on the same test rows)
 *   stage_profile.c   profile (reference distributions of the training rows)
 *   stage_noop.c      noop (empty tasks, for the scheduler benchmark)
 *   mixtree.c         the epoch's mixing tree (train and cv)
 * planner.c builds a job's chain of stages and holds the helpers below.
 *
 * Data flows along a chain of stages whose final outputs (key suffix
 * "/") are shards of the same rows: ingest -> clean -> scale -> hash ->
 * split for CSV input (frames until hash, then fshard.h feature shards),
 * ingest -> scale -> split for IDX input (feature shards throughout).
 * split adds the test flag to every row. train, evaluate and knn read
 * the split shards (or the last shards of the chain when there is no
 * split) and produce models, metrics and recommendations. */
#ifndef MLOPS_COORD_STAGES_H
#define MLOPS_COORD_STAGES_H
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include "jobmodel.h"
#include "metrics.h"

extern const stage_ops_t stage_ingest;
extern const stage_ops_t stage_ingest_idx;
extern const stage_ops_t stage_join;
extern const stage_ops_t stage_clean;
extern const stage_ops_t stage_noop;
extern const stage_ops_t stage_scale;
extern const stage_ops_t stage_hash;
extern const stage_ops_t stage_split;
extern const stage_ops_t stage_train;
extern const stage_ops_t stage_lbfgs; /* train with solver lbfgs */
extern const stage_ops_t stage_evaluate;
extern const stage_ops_t stage_knn;
extern const stage_ops_t stage_predict;
extern const stage_ops_t stage_promote;
extern const stage_ops_t stage_profile;
extern const stage_ops_t stage_drift;
extern const stage_ops_t stage_cv;

/* stage_cv.c: write trial `best`'s values into the job's train section
 * and its register tags (the refit trains it). 0, or < 0 with err. */
int stage_cv_apply_best(job_t *j, uint32_t best, char *err, size_t errlen);
/* stage_cv.c: after replay rebuilt the spec, re-apply a done search's
 * best trial (jobrecord.c calls it for the cv stage). */
void stage_cv_replayed(job_t *j, const stage_t *st);
/* stage_cv.c: the "search" object of `result` ({"metric", "trials":
 * [{"params", "mean", "std", "seconds"}], "best"}), or NULL while the
 * search has not finished or the job has none. */
struct json_t *stage_cv_search_json(const job_t *j);

/* stage_promote.c: the name of promote.metric ("auc", ...). */
const char *stage_promote_metric_name(const job_t *j);

/* stage_evaluate.c: the ROC and calibration points and the confusion
 * matrix (*conf malloc'd, *k x *k; *k = 0 for more than 64 classes) of a
 * done evaluate stage, from its journalled blob. 0; MLOPS_ENOTFOUND
 * before the stage is done; MLOPS_EPARSE for a damaged blob. */
int stage_evaluate_curves(const stage_t *st, mlk_metrics_curves *c, uint64_t **conf, uint32_t *k);

/* stage_profile.c: the reference distributions as JSON text (malloc'd),
 * or NULL while the profile stage has not finished or the job has none. */
char *stage_profile_reference(const job_t *j);
/* stage_profile.c: after replay loaded a running profile stage, re-plan
 * it from round 0 if its blob is of another layout (an older
 * coordinator's) instead of failing the job (jobrecord.c calls it). */
void stage_profile_replayed(job_t *j, stage_t *st);
/* stage_profile.c: the profile's round 0 for a featurize task to answer
 * (fa->profile_*: the request malloc'd, the caller frees
 * fa->profile_request.data; the column names borrowed from the spec);
 * nothing when the job has no profile stage or it counts no numeric
 * column. 0 or MLOPS_ENOMEM. */
struct Mlops__Tasks__FeaturizeArgs;
int stage_profile_featurize_args(const job_t *j, struct Mlops__Tasks__FeaturizeArgs *fa);

/* stage_knn.c: the recommender part of a recommend job's artifact
 * (docs/model-format.md, mlops-recommender/1: kind, settings, columns,
 * users, items, interactions, popular) from the knn stage's blob, once
 * its rec_export phase has run; NULL with err otherwise. */
json_t *stage_knn_recommender(job_t *j, char *err, size_t errlen);

/* stage_ingest.c: release the mapped input of a CSV job (planner_job_free). */
void stage_ingest_job_free(job_t *j);
/* An uploaded CSV file, mapped as plain text (a .gz/.zst one inflated
 * once), and its header. */
typedef struct {
    void *map;
    size_t maplen;
    char **hdr;
    size_t nhdr;
    size_t data_start; /* offset of the first record after the header */
    const char *name;  /* the user's path, borrowed from the job */
} stage_csvfile_t;
/* stage_ingest.c: join i's right table (upload role "join.i"), mapped on
 * first use and kept with the job's input; NULL with err filled. */
const stage_csvfile_t *stage_ingest_join_file(job_t *j, size_t i, char *err, size_t errlen);
/* stage_join.c: the shards the clean stage's first quantile round was
 * answered by (the join's with joins, else ingest's). */
stage_t *stage_join_first_round(job_t *j);
/* stage_clean.c: the request of clean's first quantile round, which the
 * ingest tasks answer (malloc'd; NULL, 0 when clean has no IQR). */
int stage_clean_first_request(const job_t *j, uint8_t **req, size_t *len);
/* planner.c: merge the distinct labels the tasks of an ingest or
 * clean_filter phase returned into the job's class list (job_set_classes). */
int stage_merge_labels(job_t *j, const stage_t *st, char *err, size_t errlen);

/* Whether the job runs scale's apply step, hash and split as one
 * "featurize" task per shard (stage_split.c): a CSV job with scale (over
 * numeric columns), hash and split, without keep_stages. Then scale only
 * computes the statistics and hash has no tasks; neither writes shards. */
int stage_fused_features(const job_t *j);
/* stage_hash.c: a hash task's arguments (the class list malloc'd and
 * returned, the caller frees it; NULL when out of memory). */
struct Mlops__Tasks__HashArgs;
char **stage_hash_args(const job_t *j, struct Mlops__Tasks__HashArgs *a);
/* The stage whose final outputs this stage reads: the nearest earlier
 * stage among ingest, clean, scale, hash, split. NULL if none. */
stage_t *stage_input_of(job_t *j, const stage_t *st);
/* planner.c: whether stage `reader` may start only once `producer` (an
 * earlier stage) is done: it reads producer's shards, blob or what
 * producer sets for the job. A stage this does not name needs every
 * earlier stage. lifecycle.c starts each stage once all it needs is done,
 * so stages that do not need each other run at the same time. */
int planner_stage_needs(job_t *j, const stage_t *reader, const stage_t *producer);
/* planner.c: whether the tasks of the stage's current phase may run: a
 * phase can need more than its stage's start (profile's count phase
 * scores the rows with train's model, its decile rounds do not). */
int planner_phase_ready(job_t *j, const stage_t *st);
/* Pack a proto/tasks.proto message as a task's arguments (a->args). */
int args_pack(task_args_t *a, const ProtobufCMessage *m);
/* Append a shard key to a task's inputs (copied). */
int args_add_input(task_args_t *a, const char *key);
/* Sum of a metric over the current phase's tasks, in task order. */
double stage_sum_metric(const stage_t *st, const char *name);
/* Output rows of each task of a stage whose outputs are the chain's
 * shards (task->rows, from the "rows" metric). */
uint64_t stage_total_rows(const stage_t *st);

/* The job's class labels, sorted as scikit-learn sorts them (numeric
 * when every label parses as a number, else by code point), merged from
 * the per-shard label sets that ingest/clean tasks return. Set once by
 * the stage that first knows them; NULL/0 if none. */
void job_set_classes(job_t *j, char **labels, size_t n);
size_t job_nclasses(const job_t *j);
const char *job_class(const job_t *j, size_t i);

/* mixtree.c: one model from the n shard models of an SGD epoch (train's
 * and each cv instance's): the fan-in-MIXTREE_FANIN tree in shard order,
 * each node the count-weighted average of its group. *out malloc'd;
 * 0, or an MLOPS_E* code with err. */
#define MIXTREE_FANIN 8
int coord_mixtree(const uint8_t *const *bufs, const size_t *lens, const uint64_t *counts, size_t n, uint8_t **out,
                  size_t *outlen, char *err, size_t errlen);

/* stage_train.c: the rows the train stage learns from: the split's
 * training rows, or every row without a split. */
uint64_t stage_train_rows(job_t *j, const stage_t *st);
/* The SGD fields of an epoch's arguments (schedule, alpha, eta0,
 * power_t, batch size, seed, shuffle, n_features) for train section sp
 * fitted on n_fit rows: what train sends, and cv for each instance on
 * the rows outside its fold, so that a fold fits the model train would
 * (without train.alpha: alpha = 1/(C n_fit) and adagrad). */
struct Mlops__Tasks__TrainEpochArgs;
void stage_train_sgd_args(const mlops_jobspec_t *sp, uint64_t n_fit, struct Mlops__Tasks__TrainEpochArgs *a);
/* stage_lbfgs.c: the model of a finished lbfgs train stage, or NULL. */
const uint8_t *stage_lbfgs_model(const stage_t *st, size_t *len);

/* The encoded model (model.h) of a finished train stage, or NULL. Borrowed
 * from the stage: valid while the job lives. */
const uint8_t *train_model(const stage_t *st, size_t *len);

#endif
