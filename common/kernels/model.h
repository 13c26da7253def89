/* model.h: the parameters of a logistic-regression model trained by SGD
 * (sgd.h), their weighted average for parameter mixing, and their compact
 * byte form for the stores and the wire.
 *
 * A model has n_vec weight vectors over dim = n_features + n_dense inputs:
 * n_vec = 1 for a binary model (K = 2, the vector scores class 1, as in
 * scikit-learn) and n_vec = K for a multinomial (softmax) model. Input j
 * < n_features is hashed feature j; n_features + k is dense column k.
 *
 * Layout is feature-major: the weight of input j for vector k is
 * w[j * n_vec + k]. A sparse row then touches one short contiguous run per
 * feature, and the dense block is a (n_dense x n_vec) matrix with leading
 * dimension n_vec that BLAS can use as it is.
 *
 * Besides the weights a model carries what is needed to continue training
 * from it: the step counter t (1 for a fresh model, scikit-learn's t_),
 * the number of examples it has seen, and, for adagrad, the per-parameter
 * sums of squared gradients G (and Gb for the intercepts).
 *
 * Averaging (parameter mixing) takes the example-count-weighted mean of
 * the weights, intercepts and adagrad sums, summed in the caller's order
 * so that the result is byte-identical run after run. G is averaged, not
 * summed: each shard's G already grew from the same starting G, so the
 * mean keeps the per-feature step sizes at the scale one learner over
 * all the data would have had, while a sum would shrink them by the number
 * of shards at every mixing round. t becomes the largest input t (the
 * planner normally sets it explicitly for the next round) and n_seen the
 * sum of the inputs' n_seen.
 *
 * Byte form (host order = little-endian, like frame.h):
 *   "MLKM" u32 version=1, u32 kind (1 binary, 2 multinomial), u32 K,
 *   u64 n_features, u64 n_dense, u64 t, u64 n_seen,
 *   u32 flags (bit0 adagrad sums present, bit1 weights sparse, bit2 G sparse),
 *   u32 reserved = 0, u64 payload bytes,
 *   then f64 b[n_vec], the weight block, and with adagrad f64 Gb[n_vec]
 *   and the G block. A block is either dense (f64[n_vec*dim]) or sparse:
 *   u64 nnz, u32 index[nnz] strictly increasing, f64 value[nnz], holding
 *   every value whose bits are not all zero (so -0.0 survives). The
 *   smaller of the two is written; ties go to dense. */
#ifndef MLK_MODEL_H
#define MLK_MODEL_H
#include <stddef.h>
#include <stdint.h>

/* Largest n_vec * dim accepted (indexes fit in u32 and a garbage header
 * cannot ask for more than 1 GiB of weights). */
#define MLK_MODEL_MAX_PARAMS ((uint64_t)1 << 27)

typedef struct {
    uint32_t n_classes;  /* K >= 2 */
    uint32_t n_vec;      /* 1 if K == 2, else K */
    uint64_t n_features; /* hashed inputs */
    uint64_t n_dense;    /* dense inputs */
    uint64_t dim;        /* n_features + n_dense */
    double *w;           /* dim * n_vec, feature-major (see above) */
    double *b;           /* n_vec intercepts */
    uint64_t t;          /* step counter, 1 for a fresh model */
    uint64_t n_seen;     /* examples seen (row visits) */
    double *G;           /* adagrad sums, like w, or NULL */
    double *Gb;          /* adagrad sums of the intercepts, or NULL */
} mlk_model;

/* A zero model for K classes over n_features hashed + n_dense dense
 * inputs, t = 1, with zeroed adagrad sums if with_adagrad. NULL if K < 2,
 * dim == 0, the size exceeds MLK_MODEL_MAX_PARAMS, or out of memory. */
mlk_model *mlk_model_new(uint32_t n_classes, uint64_t n_features, uint64_t n_dense,
                         int with_adagrad);

/* Free a model and set *pm to NULL; safe on NULL and twice. */
void mlk_model_destroy(mlk_model **pm);

/* A deep copy, or NULL on allocation failure. */
mlk_model *mlk_model_clone(const mlk_model *m);

/* Give a model adagrad sums (zero) if it has none. 0 or MLOPS_ENOMEM. */
int mlk_model_enable_adagrad(mlk_model *m);

/* Number of weights whose bits are not all zero. */
uint64_t mlk_model_nnz(const mlk_model *m);

/* Weighted average of models ms[0..n-1] with weights counts[i] (example
 * counts), accumulated in index order. All models must have the same K,
 * n_features and n_dense; G is averaged only if every model has it. Sets
 * *out to a new model. MLOPS_EINVAL (with a message) on n == 0, a NULL
 * model, mismatched shapes or a zero total count; MLOPS_ENOMEM. */
int mlk_model_average(const mlk_model *const *ms, const uint64_t *counts, size_t n,
                      mlk_model **out, char *err, size_t errlen);

/* The same average over encoded models (bufs[i], lens[i]), straight into
 * the encoded average (*out, *outlen malloc'd): byte for byte what
 * encoding mlk_model_average of the decoded models gives, but it visits
 * only the entries the inputs hold (a model mixed after an epoch has
 * ~12,000 non-zero weights of 2^20), never a dense array. Inputs are
 * validated as mlk_model_decode does. MLOPS_EPARSE / MLOPS_EINVAL with a
 * message naming the model; MLOPS_ENOMEM. */
int mlk_model_average_encoded(const uint8_t *const *bufs, const size_t *lens, const uint64_t *counts,
                              size_t n, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Encode into a new malloc'd buffer (*out, *outlen). The same parameters
 * always give the same bytes. 0, MLOPS_EINVAL or MLOPS_ENOMEM. */
int mlk_model_encode(const mlk_model *m, uint8_t **out, size_t *outlen);

/* Decode a buffer that may be garbage into a new model *out. MLOPS_EPARSE
 * with a one-line message naming the bad field; MLOPS_ENOMEM. Rejects
 * non-finite values, out-of-order or out-of-range indexes, a size that
 * does not match the header and trailing bytes. */
int mlk_model_decode(const uint8_t *buf, size_t len, mlk_model **out, char *err, size_t errlen);

/* A compact model: the parameters of inputs in[0..m-1] only (strictly
 * increasing global input indexes below dim), every other parameter of
 * the model it stands for being zero. w, G are laid out like a model's
 * (feature-major) over the local inputs: the weight of input in[l] for
 * vector k is w[l * n_vec + k]. An epoch task works on this form only: a
 * shard touches ~12,000 of 2^20 hashed inputs, so the arrays stay in L2
 * and no 2^20 array is made, filled or scanned. Its byte form is the
 * model's (mlk_model_encode of the dense model it stands for, byte for
 * byte). */
typedef struct {
    uint32_t n_classes, n_vec;
    uint64_t n_features, n_dense, dim;
    size_t m;     /* inputs held */
    uint32_t *in; /* m increasing global input indexes */
    double *w;    /* m * n_vec */
    double *b;    /* n_vec */
    double *G;    /* adagrad sums like w, or NULL */
    double *Gb;   /* n_vec, or NULL */
    uint64_t t, n_seen;
} mlk_cmodel;

/* A zero compact model holding the dense inputs only (t = 1), with
 * zeroed adagrad sums if with_adagrad. NULL on a bad shape (as
 * mlk_model_new) or out of memory. */
mlk_cmodel *mlk_cmodel_new(uint32_t n_classes, uint64_t n_features, uint64_t n_dense, int with_adagrad);

/* Free a compact model and set *pc to NULL; safe on NULL and twice. */
void mlk_cmodel_destroy(mlk_cmodel **pc);

/* Give a compact model zero adagrad sums if it has none. 0 or MLOPS_ENOMEM. */
int mlk_cmodel_enable_adagrad(mlk_cmodel *c);

/* Hold exactly inputs in[0..m-1] (increasing, below dim, a superset of
 * the inputs held): the values of the inputs held move to their new
 * places by a merge of the two sorted lists, the new ones are zero.
 * MLOPS_EINVAL if in is not such a superset; MLOPS_ENOMEM. */
int mlk_cmodel_reindex(mlk_cmodel *c, const uint32_t *in, size_t m);

/* Decode a model's byte form (a buffer that may be garbage, validated as
 * mlk_model_decode does) into a compact model holding every input with
 * a non-zero weight or adagrad sum, and every dense input. MLOPS_EPARSE
 * with a message; MLOPS_ENOMEM. */
int mlk_cmodel_decode(const uint8_t *buf, size_t len, mlk_cmodel **out, char *err, size_t errlen);

/* Encode: the bytes mlk_model_encode gives for the dense model c stands
 * for. 0, MLOPS_EINVAL or MLOPS_ENOMEM. */
int mlk_cmodel_encode(const mlk_cmodel *c, uint8_t **out, size_t *outlen);

#endif
