/* kfold.c: fold assignment for cross-validation (see kfold.h). */
#include "kfold.h"
#include "err.h"
#include "split.h"
#include <math.h>
#include <stdlib.h>

int mlk_kfold_sklearn(uint32_t seed, size_t n, uint32_t k, uint8_t *fold, char *err, size_t errlen)
{
    if (k < 2 || k >= MLK_KFOLD_MAX)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "cv: %u folds; expected 2..%d", k,
                            MLK_KFOLD_MAX - 1);
    if (n < k)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "cv: cannot have %u folds with %zu training rows (KFold needs folds <= rows)",
                            k, n);
    int64_t *perm = malloc(n * sizeof *perm);
    mlk_mt19937 *mt = malloc(sizeof *mt);
    if (!perm || !mt) {
        free(perm);
        free(mt);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "cv: out of memory for %zu rows", n);
    }
    mlk_mt19937_seed(mt, seed);
    mlk_mt19937_permutation(mt, perm, n);
    /* KFold._iter_test_indices: fold sizes n // k, the first n % k one more */
    size_t at = 0, base = n / k, extra = n % k;
    for (uint32_t f = 0; f < k; f++) {
        size_t size = base + (f < extra);
        for (size_t i = 0; i < size; i++) fold[perm[at + i]] = (uint8_t)f;
        at += size;
    }
    free(perm);
    free(mt);
    return 0;
}

/* splitmix64's finaliser: every input bit moves every output bit */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t mlk_kfold_hash(uint64_t seed, int64_t row_id, uint32_t k)
{
    if (k <= 1) return 0;
    uint64_t h = mix64(mix64(seed + 0x9e3779b97f4a7c15ull) ^ (uint64_t)row_id);
    return (uint32_t)(h % k);
}

void mlk_kfold_stats(const double *v, size_t n, double *mean, double *std)
{
    *mean = *std = 0;
    if (!n) return;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    double m = s / (double)n, q = 0;
    for (size_t i = 0; i < n; i++) q += (v[i] - m) * (v[i] - m);
    *mean = m;
    *std = sqrt(q / (double)n);
}
