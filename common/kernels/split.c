/* split.c: see split.h.
 *
 * The hash method's permutation: x in [0, 2^b) (b even, 2^b >= n) is
 * split into halves L, R of b/2 bits; six Feistel rounds
 * (L, R) <- (R, L ^ F_i(R)) with F_i(R) = mix64(R ^ k_i) masked to b/2
 * bits, round keys k_i drawn from splitmix64(seed), make a bijection of
 * [0, 2^b). Cycle-walking (re-apply while the result is >= n) restricts
 * it to a bijection of [0, n); since 2^b < 4n, a walk takes fewer than
 * four steps on average.
 *
 * The sklearn method follows numpy 1.24's legacy code paths:
 * _mt19937.pyx _legacy_seeding (mt19937_seed), mtrand.pyx shuffle
 * (_shuffle_raw: for i = n-1 .. 1, j = random_interval(i), swap) and
 * distributions.c random_interval. */
#include "split.h"
#include "err.h"
#include <math.h>
#include <stdlib.h>

int mlk_split_sizes(uint64_t n, double test_frac, int64_t test_count, uint64_t *n_test,
                    uint64_t *n_train, char *err, size_t errlen)
{
    uint64_t t;
    if (test_count >= 0) {
        if (test_count == 0 || (uint64_t)test_count >= n)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "split: test_size=%lld should be positive and smaller than the "
                                "number of samples %llu",
                                (long long)test_count, (unsigned long long)n);
        t = (uint64_t)test_count;
    } else {
        if (!(test_frac > 0.0 && test_frac < 1.0))
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "split: test_size=%g should be in the range (0, 1)", test_frac);
        /* The same double product and ceil as scikit-learn's
         * ceil(test_size * n_samples). */
        double prod = test_frac * (double)n;
        t = (uint64_t)ceil(prod);
    }
    if (t >= n)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "split: with n_samples=%llu and test_size=%g the train set is empty",
                            (unsigned long long)n, test_count >= 0 ? (double)test_count : test_frac);
    *n_test = t;
    *n_train = n - t;
    return 0;
}

/* --- method hash ---------------------------------------------------- */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define FEISTEL_ROUNDS 6

typedef struct {
    uint64_t n;
    unsigned half;  /* bits per half */
    uint64_t hmask; /* (1 << half) - 1 */
    uint64_t key[FEISTEL_ROUNDS];
} feistel;

static void feistel_init(feistel *fk, uint64_t seed, uint64_t n)
{
    unsigned bits = n > 1 ? 64u - (unsigned)__builtin_clzll(n - 1) : 0u;
    if (bits < 2) bits = 2;
    bits += bits & 1u;
    fk->n = n;
    fk->half = bits / 2;
    fk->hmask = (fk->half == 64 ? ~0ull : (1ull << fk->half) - 1);
    uint64_t s = seed;
    for (int i = 0; i < FEISTEL_ROUNDS; i++) {
        s += 0x9e3779b97f4a7c15ull; /* splitmix64 stream */
        fk->key[i] = mix64(s);
    }
}

static inline uint64_t feistel_once(const feistel *fk, uint64_t x)
{
    uint64_t l = x >> fk->half, r = x & fk->hmask;
    for (int i = 0; i < FEISTEL_ROUNDS; i++) {
        uint64_t t = l ^ (mix64(r ^ fk->key[i]) & fk->hmask);
        l = r;
        r = t;
    }
    return (l << fk->half) | r;
}

static inline uint64_t feistel_perm(const feistel *fk, uint64_t x)
{
    do x = feistel_once(fk, x);
    while (x >= fk->n);
    return x;
}

uint64_t mlk_split_perm(uint64_t seed, uint64_t n, uint64_t r)
{
    if (n == 0) return 0;
    feistel fk;
    feistel_init(&fk, seed, n);
    return feistel_perm(&fk, r % n);
}

int64_t mlk_split_hash_mask(uint64_t seed, uint64_t n, uint64_t n_test, uint64_t first_rank,
                            size_t count, uint8_t *test_mask, char *err, size_t errlen)
{
    if (count && !test_mask) return mlops_seterr(err, errlen, MLOPS_EINVAL, "split: NULL mask");
    if (n_test > n)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "split: n_test %llu exceeds %llu rows",
                            (unsigned long long)n_test, (unsigned long long)n);
    if (first_rank > n || count > n - first_rank)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "split: shard ranks %llu..+%zu lie beyond %llu rows",
                            (unsigned long long)first_rank, count, (unsigned long long)n);
    feistel fk;
    feistel_init(&fk, seed, n);
    int64_t ntest = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t t = feistel_perm(&fk, first_rank + i) < n_test;
        test_mask[i] = t;
        ntest += t;
    }
    return ntest;
}

/* --- method sklearn: numpy's MT19937 -------------------------------- */

#define MT_N 624
#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

void mlk_mt19937_seed(mlk_mt19937 *s, uint32_t seed)
{
    for (int i = 0; i < MT_N; i++) {
        s->key[i] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1u;
    }
    s->pos = MT_N;
}

static void mt_gen(mlk_mt19937 *s)
{
    uint32_t y;
    int i;
    for (i = 0; i < MT_N - MT_M; i++) {
        y = (s->key[i] & MT_UPPER) | (s->key[i + 1] & MT_LOWER);
        s->key[i] = s->key[i + MT_M] ^ (y >> 1) ^ (-(y & 1u) & MT_MATRIX_A);
    }
    for (; i < MT_N - 1; i++) {
        y = (s->key[i] & MT_UPPER) | (s->key[i + 1] & MT_LOWER);
        s->key[i] = s->key[i + (MT_M - MT_N)] ^ (y >> 1) ^ (-(y & 1u) & MT_MATRIX_A);
    }
    y = (s->key[MT_N - 1] & MT_UPPER) | (s->key[0] & MT_LOWER);
    s->key[MT_N - 1] = s->key[MT_M - 1] ^ (y >> 1) ^ (-(y & 1u) & MT_MATRIX_A);
    s->pos = 0;
}

uint32_t mlk_mt19937_next32(mlk_mt19937 *s)
{
    if (s->pos >= MT_N) mt_gen(s);
    uint32_t y = s->key[s->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t mlk_mt19937_interval(mlk_mt19937 *s, uint64_t max)
{
    if (max == 0) return 0;
    uint64_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    uint64_t v;
    if (max <= 0xffffffffull) {
        while ((v = (mlk_mt19937_next32(s) & mask)) > max) {}
    } else {
        do {
            uint64_t hi = mlk_mt19937_next32(s); /* numpy's next64: high word first */
            uint64_t lo = mlk_mt19937_next32(s);
            v = ((hi << 32) | lo) & mask;
        } while (v > max);
    }
    return v;
}

void mlk_mt19937_permutation(mlk_mt19937 *s, int64_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++) perm[i] = (int64_t)i;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)mlk_mt19937_interval(s, i);
        int64_t t = perm[j];
        perm[j] = perm[i];
        perm[i] = t;
    }
}

int mlk_split_sklearn(int64_t seed, size_t n, size_t n_test, int64_t *train, int64_t *test,
                      char *err, size_t errlen)
{
    if (seed < 0 || seed > (int64_t)0xffffffffll)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "split: seed %lld must be between 0 and 2**32 - 1", (long long)seed);
    if (n_test > n || (n_test && !test) || (n_test < n && !train))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "split: bad sizes or NULL output");
    if (n == 0) return 0;
    int64_t *perm = malloc(n * sizeof *perm);
    if (!perm) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "split: out of memory for %zu rows", n);
    mlk_mt19937 *mt = malloc(sizeof *mt);
    if (!mt) {
        free(perm);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "split: out of memory");
    }
    mlk_mt19937_seed(mt, (uint32_t)seed);
    mlk_mt19937_permutation(mt, perm, n);
    for (size_t i = 0; i < n_test; i++) test[i] = perm[i];
    for (size_t i = n_test; i < n; i++) train[i - n_test] = perm[i];
    free(mt);
    free(perm);
    return 0;
}
