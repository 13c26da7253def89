/* sgd.h: logistic regression trained by stochastic gradient descent, the
 * model step of the pipeline, binary (log loss, scikit-learn's
 * SGDClassifier(loss='log_loss')) and multinomial (softmax).
 *
 * A row's input is hstack([hashed CSR part, dense part]) as in model.h.
 * One call trains a model in place over one shard for some epochs. The
 * step counter m->t is read on entry (t_start: a fresh model has t = 1,
 * a parameter-mixing round continues from the counter the planner puts in
 * the model) and holds the counter after the last step on return.
 *
 * Update rules follow scikit-learn's _sgd_fast.pyx where the maths is the
 * same: L2 by scaling (w = wscale * v, so a sparse row costs O(nnz)),
 * learning rates 'optimal' (eta = 1/(alpha (t0 + t - 1)) with t0 from the
 * typw = sqrt(1/sqrt(alpha)) heuristic), 'constant' (eta0) and
 * 'invscaling' (eta0 / t^power_t), log-loss derivative with the z > 18 /
 * z < -18 shortcuts and clipping at 1e12, intercept update scaled by
 * intercept_decay (scikit-learn: 0.01 for sparse input, 1 for dense).
 * Multinomial uses the softmax gradient p_k - [y == k] with the same
 * schedule and penalty. 'adagrad' keeps one sum of squared gradients per
 * parameter (model.h) and steps eta0 g / sqrt(G + 1e-8); its L2 term is
 * applied lazily, only to the inputs present in the row (as Vowpal Wabbit
 * and FTRL do), so a sparse row still costs O(nnz).
 *
 * With batch_size > 1 a step uses the mean gradient of batch_size rows;
 * the dense block is scored and updated with OpenBLAS dgemm. t then
 * counts steps (batches), not rows.
 *
 * Rows are visited in `order` (or 0..n-1); with shuffle on, each epoch
 * visits a permutation of that order drawn from a splitmix64 stream
 * seeded by (seed, epoch index, shard index), so the same inputs give
 * byte-identical parameters. No global state; one thread.
 *
 * The weights trained are those of the shard's inputs alone (a compact
 * model, model.h): the shard's hashed columns are renumbered 0..m-1 once
 * per call through a bitmap of n_features bits, so the arrays a step
 * reads and writes are ~12,000 inputs long, not 2^20, and stay in L2;
 * the sums are added in the same order as over the dense array, so the
 * parameters are the same bits.
 *
 * Memory: besides the model, a call allocates n row slots, the bitmap
 * and, when rows are visited out of storage order one at a time
 * (shuffle or an order), a packed copy of the shard (about 8 + 8 nnz_row
 * + 8 n_dense bytes per row when the hashed values are exact floats,
 * else 8 + 12 nnz_row + 8 n_dense) so that each random visit reads one
 * record; without the memory it reads the arrays instead, with the same
 * result. */
#ifndef MLK_SGD_H
#define MLK_SGD_H
#include "csr.h"
#include "fpack.h"
#include "model.h"
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MLK_LR_OPTIMAL = 1,
    MLK_LR_CONSTANT = 2,
    MLK_LR_INVSCALING = 3,
    MLK_LR_ADAGRAD = 4,
} mlk_lr;

typedef struct {
    mlk_lr lr;              /* learning-rate schedule */
    double alpha;           /* L2 strength, > 0 for 'optimal' */
    double eta0;            /* base rate of constant, invscaling, adagrad */
    double power_t;         /* invscaling exponent */
    double intercept_decay; /* < 0: automatic (0.01 with a hashed part, else 1) */
    size_t batch_size;      /* rows per step, 0 or 1: one row per step */
    unsigned epochs;        /* passes over the shard, >= 1 */
    int shuffle;            /* permute the order every epoch */
    uint64_t seed;          /* shuffle seed */
    uint64_t epoch0;        /* global index of the first epoch (seeding) */
    uint64_t shard;         /* shard index (seeding) */
} mlk_sgd_opts;

/* A shard's rows. Either part may be absent (X == NULL or n_dense == 0),
 * not both. Borrowed; nothing is copied. */
typedef struct {
    size_t nrows;
    const mlk_csr *X;     /* hashed part: nrows x n_features, or NULL */
    const double *dense;  /* nrows x n_dense row-major, or NULL */
    size_t n_dense;
    const int32_t *y;     /* class indexes 0..K-1 (training only) */
} mlk_sgd_data;

/* scikit-learn's defaults: optimal, alpha 1e-4, eta0 0.01, power_t 0.5,
 * automatic intercept decay, batch 1, 5 epochs, shuffle, seed 0. */
void mlk_sgd_opts_default(mlk_sgd_opts *o);

/* Parse "optimal", "constant", "invscaling", "adagrad"; 0 if unknown. */
mlk_lr mlk_sgd_lr_parse(const char *name);

/* Train m in place over d for o->epochs epochs (see the top of this
 * file). order: nrows row indexes or NULL for 0..nrows-1. If epoch_loss
 * is non-NULL it receives o->epochs values, the mean training loss of
 * each pass (computed before each row's update, as scikit-learn does).
 * MLOPS_EINVAL with a message for bad options, a data shape that does not
 * match the model, an index, label or order entry out of range, or a
 * non-finite parameter after an epoch (divergence); MLOPS_ENOMEM. Creates
 * m's adagrad sums when the schedule is adagrad. On error m may be
 * partly trained. */
int mlk_sgd_train(mlk_model *m, const mlk_sgd_data *d, const int64_t *order,
                  const mlk_sgd_opts *o, double *epoch_loss, char *err, size_t errlen);

/* The same training on a compact model (model.h): m is first made to
 * hold the shard's hashed inputs too (new ones zero), then trained on
 * arrays of its inputs alone, with the shard's columns renumbered to
 * them once per call. The parameters, t, n_seen and losses are those
 * mlk_sgd_train gives on the dense model m stands for, bit for bit. No
 * array of n_features entries is made beyond a bitmap of n_features
 * bits. skip: NULL, or the rows with skip[i] != 0 are left out, as if d
 * held only the others in their order (the split's test flags: the train
 * rows need no copy; their labels are not checked; not with an order).
 * Errors as mlk_sgd_train's. */
int mlk_sgd_train_compact(mlk_cmodel *m, const mlk_sgd_data *d, const int64_t *order, const uint8_t *skip,
                          const mlk_sgd_opts *o, double *epoch_loss, char *err, size_t errlen);

/* The same training over the rows of a packed shard (fpack.h, opened
 * by mlk_fpack_open) at record offsets off[0..n-1], in that order (the
 * caller leaves out the test or held-out rows): the parameters, t,
 * n_seen and losses mlk_sgd_train_compact gives on the shard's arrays
 * with those rows skipped, bit for bit. The records are read in place
 * (no copy, no renumbering): the weights the shard's columns name are
 * gathered into an array in the shard's column order, trained, and
 * put back. The rows' labels must be 0..K-1. MLOPS_EINVAL also for
 * batch_size > 1 (mini-batches read arrays: decode the shard). */
int mlk_sgd_train_packed(mlk_cmodel *m, const mlk_fpack *p, const size_t *off, size_t n, const mlk_sgd_opts *o,
                         double *epoch_loss, char *err, size_t errlen);

/* mlk_sgd_train_packed with off[0..n-1] given over to the call: a
 * one-epoch call (an epoch task's) shuffles its visits in off itself
 * instead of in a fresh array of n (whose first touch and copy were ~15%
 * of a 1M-row epoch); on return off holds them in the order visited.
 * The same parameters, bit for bit. */
int mlk_sgd_train_packed_own(mlk_cmodel *m, const mlk_fpack *p, size_t *off, size_t n, const mlk_sgd_opts *o,
                             double *epoch_loss, char *err, size_t errlen);

/* Class probabilities of every row of d into proba (nrows x K,
 * row-major). d->y is ignored. MLOPS_EINVAL on a shape mismatch or an
 * index out of range; MLOPS_ENOMEM. */
int mlk_sgd_predict_proba(const mlk_model *m, const mlk_sgd_data *d, double *proba, char *err,
                          size_t errlen);

/* The same probabilities from a compact model (bit for bit those of the
 * dense model it stands for): a shard column the model does not hold
 * has weight zero. MLOPS_EINVAL also if c lacks a dense input. */
int mlk_sgd_predict_proba_compact(const mlk_cmodel *c, const mlk_sgd_data *d, double *proba, char *err,
                                  size_t errlen);

/* The same probabilities for the rows of a packed shard at record
 * offsets off[0..n-1] (proba: n x K), read in place: bit for bit
 * mlk_sgd_predict_proba_compact on those rows copied out as arrays (the
 * dense block goes through the same dgemm calls, 256 rows at a time). */
int mlk_sgd_predict_proba_packed(const mlk_cmodel *c, const mlk_fpack *p, const size_t *off, size_t n,
                                 double *proba, char *err, size_t errlen);

/* Full-batch objective at m: mean log loss over d plus alpha/2 ||w||^2
 * (intercepts not penalised) into *loss, and, if grad is non-NULL, its
 * gradient: dim * n_vec values laid out like m->w followed by n_vec for
 * the intercepts. For evaluation and checks, not for training speed.
 * MLOPS_EINVAL on bad data; MLOPS_ENOMEM. */
int mlk_sgd_objective(const mlk_model *m, const mlk_sgd_data *d, double alpha, double *loss,
                      double *grad, char *err, size_t errlen);

#endif
