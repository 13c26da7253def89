/* split.h: the train/test split, in two forms.
 *
 * method hash (the default, for the cluster): deterministic and
 * independent of sharding. The split stage knows N, the number of clean
 * rows, and each row's rank r in [0, N) among the clean rows in input
 * order. A permutation of [0, N) keyed by the seed (a balanced Feistel
 * network over the smallest even number of bits that covers N, with
 * cycle-walking back into [0, N)) decides: row r is a test row iff
 * perm(r) < n_test. Exactly n_test rows are test rows, whatever the
 * sharding, and every shard decides its rows alone.
 *
 * method sklearn (for data on one node): the same indexes as
 * sklearn.model_selection.train_test_split(X, test_size, random_state =
 * seed), i.e. numpy's RandomState(seed).permutation(n): MT19937 seeded
 * by init_genrand, then numpy's legacy shuffle of arange(n). test =
 * perm[:n_test], train = perm[n_test:].
 *
 * Sizes follow scikit-learn: n_test = ceil(test_size * n) for a
 * fraction, or a count; n_train = n - n_test, which must be > 0. */
#ifndef MLK_SPLIT_H
#define MLK_SPLIT_H
#include <stddef.h>
#include <stdint.h>

/* n_test and n_train for n rows, as scikit-learn's
 * _validate_shuffle_split with train_size=None. If test_count >= 0 it
 * is the count (an int test_size: 1 <= count < n); otherwise test_frac
 * is the fraction, in (0, 1). MLOPS_EINVAL with a message when
 * scikit-learn would raise (bad size, empty train set). */
int mlk_split_sizes(uint64_t n, double test_frac, int64_t test_count, uint64_t *n_test,
                    uint64_t *n_train, char *err, size_t errlen);

/* --- method hash ---------------------------------------------------- */

/* The keyed permutation of [0, n): perm(r) for r < n (n >= 1). */
uint64_t mlk_split_perm(uint64_t seed, uint64_t n, uint64_t r);

/* Test mask of one shard: the shard holds the rows of ranks
 * first_rank .. first_rank + count - 1 among n clean rows; test_mask[i]
 * = 1 if row first_rank + i is a test row, else 0. Returns the number
 * of test rows in the shard (>= 0) or MLOPS_EINVAL (ranks beyond n,
 * n_test > n). */
int64_t mlk_split_hash_mask(uint64_t seed, uint64_t n, uint64_t n_test, uint64_t first_rank,
                            size_t count, uint8_t *test_mask, char *err, size_t errlen);

/* --- method sklearn ------------------------------------------------- */

/* numpy's MT19937 state (legacy RandomState). */
typedef struct {
    uint32_t key[624];
    int pos;
} mlk_mt19937;

/* Seed as RandomState(seed) for an int seed (init_genrand). */
void mlk_mt19937_seed(mlk_mt19937 *s, uint32_t seed);
/* Next 32-bit output. */
uint32_t mlk_mt19937_next32(mlk_mt19937 *s);
/* numpy's random_interval(max): uniform in [0, max] by masked
 * rejection; 32-bit draws when max <= 0xffffffff, else 64-bit ones. */
uint64_t mlk_mt19937_interval(mlk_mt19937 *s, uint64_t max);
/* RandomState.permutation(n) into perm[0..n-1]: arange(n) shuffled by
 * numpy's legacy shuffle. */
void mlk_mt19937_permutation(mlk_mt19937 *s, int64_t *perm, size_t n);

/* train_test_split indexes: seed in [0, 2^32 - 1] (numpy's bound),
 * n_test from mlk_split_sizes(); writes test[0..n_test-1] and
 * train[0..n-n_test-1] in scikit-learn's order. MLOPS_EINVAL or
 * MLOPS_ENOMEM with a message. */
int mlk_split_sklearn(int64_t seed, size_t n, size_t n_test, int64_t *train, int64_t *test,
                      char *err, size_t errlen);

#endif
