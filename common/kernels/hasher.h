/* hasher.h: the hashing trick, bit-identical to scikit-learn 1.2's
 * FeatureHasher, plus the life cycle and byte encoding of the CSR
 * matrices it produces (they travel between workers).
 *
 * A feature is a byte string and a value. scikit-learn hashes the UTF-8
 * bytes with MurmurHash3_x86_32 (seed 0, result read as int32 h), puts
 * the value at column |h| mod n_features (h == INT32_MIN maps to
 * 2^31 mod n_features) and, with alternate_sign, multiplies it by -1
 * when h < 0. A categorical value v of column c is the feature "c=v"
 * with value 1 (FeatureHasher(input_type='dict') on {c: v}); a numeric
 * value x of column c is the feature "c" with value x. Features whose
 * value is 0 are skipped, as scikit-learn does. Within a row, entries
 * that land on the same column are summed; an entry that sums to 0 is
 * kept as an explicit zero, as scipy's sum_duplicates() leaves it.
 *
 * Everything here is pure C over buffers; no global state. */
#ifndef MLK_HASHER_H
#define MLK_HASHER_H
#include "csr.h"
#include "frame.h"
#include <stddef.h>
#include <stdint.h>

#define MLK_HASH_DEFAULT_FEATURES (1 << 20)

typedef struct {
    int32_t n_features; /* 1 .. INT32_MAX (scikit-learn's bound) */
    int alternate_sign; /* nonzero: sign from the hash (the default) */
} mlk_hash_opts;

/* One raw feature for the low-level entry: `len` bytes (need not be
 * NUL-terminated) and its value. */
typedef struct {
    const char *bytes;
    size_t len;
    double value;
} mlk_hash_token;

/* Fill *o with scikit-learn's defaults: 2^20 features, alternate_sign. */
void mlk_hash_opts_default(mlk_hash_opts *o);

/* MurmurHash3_x86_32 of `len` bytes with `seed`, read as int32 (what
 * sklearn.utils.murmurhash3_32(key, seed) returns for bytes). */
int32_t mlk_murmur3_32(const void *key, size_t len, uint32_t seed);

/* Column of hash h among n_features (n_features >= 1), exactly as
 * scikit-learn's _hashing_fast.transform computes it. */
static inline int32_t mlk_hash_index(int32_t h, int32_t n_features)
{
    if (h == INT32_MIN) return (int32_t)(((uint32_t)1 << 31) % (uint32_t)n_features);
    return (h < 0 ? -h : h) % n_features;
}

/* Sign applied to a feature of hash h: -1 when alternate_sign and h < 0. */
static inline double mlk_hash_sign(int32_t h, int alternate_sign)
{
    return (alternate_sign && h < 0) ? -1.0 : 1.0;
}

/* Low-level entry: row r has tokens tok[row_ptr[r] .. row_ptr[r+1]-1]
 * (row_ptr has nrows + 1 increasing entries, row_ptr[0] = 0). On
 * success returns 0 and *out is a new CSR (nrows x n_features) that the
 * caller destroys with mlk_csr_destroy(). MLOPS_EINVAL on bad options
 * or row_ptr, MLOPS_ENOMEM. */
int mlk_hash_tokens(const mlk_hash_opts *o, size_t nrows, const size_t *row_ptr,
                    const mlk_hash_token *tok, mlk_csr **out, char *err, size_t errlen);

/* Frame entry: hashes the columns cols[0..ncols-1] of f, in that order
 * (the order of the dict's items in scikit-learn). A STR column gives
 * the token "name=value" with value 1 per row; an F64 column gives the
 * token "name" with the row's value (NaN = missing). A missing value
 * gives no token. Row i of *out is row i of f. */
int mlk_hash_frame(const mlk_hash_opts *o, const mlk_frame *f, const size_t *cols, size_t ncols,
                   mlk_csr **out, char *err, size_t errlen);

/* A new CSR with nrows rows, ncols columns, room for nnz_cap entries,
 * indptr all zero (every row empty). NULL on allocation failure. */
mlk_csr *mlk_csr_new(size_t nrows, size_t ncols, size_t nnz_cap);
/* Free a CSR and set *pm to NULL; safe on NULL and on *pm == NULL. */
void mlk_csr_destroy(mlk_csr **pm);

/* Encode m into one new malloc'd little-endian buffer (*out, *outlen).
 * 0, MLOPS_EINVAL (inconsistent m) or MLOPS_ENOMEM. */
int mlk_csr_encode(const mlk_csr *m, uint8_t **out, size_t *outlen);
/* Decode a buffer from a store or a peer (may be garbage; it is copied
 * and fully validated: sizes, indptr monotone from 0 to nnz, indices in
 * range and strictly increasing within each row). MLOPS_EPARSE with a
 * message on a bad buffer. */
int mlk_csr_decode(const uint8_t *buf, size_t len, mlk_csr **out, char *err, size_t errlen);

#endif
