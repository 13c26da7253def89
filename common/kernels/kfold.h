/* kfold.h: which fold of a k-fold cross-validation a row belongs to, in
 * two forms, and the mean and spread of the per-fold scores.
 *
 * method sklearn: the folds of scikit-learn's KFold(n_splits=k,
 * shuffle=True, random_state=seed) over n rows, row for row: numpy's
 * legacy RandomState(seed) shuffles arange(n) (MT19937 and numpy's
 * shuffle, split.h), and fold f takes the next n // k (+ 1 for the first
 * n % k folds) entries of that order. The rows are the training rows in
 * their global order, so the caller needs n, and hands each shard its
 * slice.
 *
 * method hash: fold = a keyed 64-bit mix of the row's global id, mod k.
 * Every shard decides its rows alone, whatever the sharding; the folds
 * are only about equal in size. */
#ifndef MLK_KFOLD_H
#define MLK_KFOLD_H
#include <stddef.h>
#include <stdint.h>

#define MLK_KFOLD_MAX 255 /* folds fit a byte; 255 marks "no fold" (a test row) */

/* fold[i] in [0, k) for row position i < n, as KFold assigns them.
 * 2 <= k <= n and k < MLK_KFOLD_MAX, else MLOPS_EINVAL with a message
 * (scikit-learn raises too when k > n); MLOPS_ENOMEM. */
int mlk_kfold_sklearn(uint32_t seed, size_t n, uint32_t k, uint8_t *fold, char *err,
                      size_t errlen);

/* The hash method's fold of the row with global id row_id (k >= 1). */
uint32_t mlk_kfold_hash(uint64_t seed, int64_t row_id, uint32_t k);

/* Mean and standard deviation of n values, the std with ddof = 0 (what
 * numpy's .std() gives, as cross_val_score users compute it), summed in
 * index order. n = 0 gives 0 and 0. */
void mlk_kfold_stats(const double *v, size_t n, double *mean, double *std);

#endif
