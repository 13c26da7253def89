/* stages.h: the stage entries (one file each, stage_*.c, plus the first
 * ones in planner.c) and helpers they share. See jobmodel.h for the
 * planner interface.
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
#include "jobmodel.h"

extern const stage_ops_t stage_ingest;
extern const stage_ops_t stage_ingest_idx;
extern const stage_ops_t stage_clean;
extern const stage_ops_t stage_noop;
extern const stage_ops_t stage_scale;
extern const stage_ops_t stage_hash;
extern const stage_ops_t stage_split;
extern const stage_ops_t stage_train;
extern const stage_ops_t stage_evaluate;
extern const stage_ops_t stage_knn;

/* The stage whose final outputs this stage reads: the nearest earlier
 * stage among ingest, clean, scale, hash, split. NULL if none. */
stage_t *stage_input_of(job_t *j, const stage_t *st);
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

#endif
