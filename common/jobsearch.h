/* jobsearch.h: the trials of a job's hyperparameter search.
 *
 * search.grid names numeric train.* keys of the job file's schema
 * (jobschema.h), each with a list of values or, for a random search, a
 * range. A trial is one value per key. The whole grid is enumerated as
 * scikit-learn's ParameterGrid does (keys in sorted order, which the
 * parser keeps; the last key varies fastest), so trial i here is
 * GridSearchCV's candidate i. search.random {n, seed} draws n trials
 * instead, each key in order: a list uniformly, a range uniformly or
 * log-uniformly, an integer key rounded to the nearest integer, from a
 * splitmix64 stream seeded by seed (deterministic, not numpy's stream).
 * A job without search has one trial: its own train values (cv alone).
 *
 * The search is generic over the schema: a new numeric train.* row can
 * be named in a grid without a change here. */
#ifndef MLOPS_JOBSEARCH_H
#define MLOPS_JOBSEARCH_H
#include <stddef.h>
#include <stdint.h>

#include "jobspec.h"

/* The number of trials of s (1 without a search; the product of the list
 * lengths, saturating at UINT64_MAX, for a grid; random.n). */
uint64_t mlops_search_count(const mlops_jobspec_t *s);

/* The trials: *vals = ntrials x nparams values (malloc'd, row-major, the
 * columns in s->search.params order), *ntrials. Without a search:
 * ntrials 1 and nparams 0. 0, MLOPS_EINVAL (more than max_trials), or
 * MLOPS_ENOMEM. */
int mlops_search_trials(const mlops_jobspec_t *s, double **vals, size_t *ntrials);

/* Set the train fields that trial vals (nparams values) names in s. */
void mlops_search_apply(mlops_jobspec_t *s, const double *vals);

/* The schema row of a grid key ("train.alpha"), NULL if the key is not
 * a numeric (integer or number) train.* key. */
const struct mlops_jobschema_key *mlops_search_row(const char *key);

#endif
