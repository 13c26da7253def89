/* driftref.h: the features a drift check compares, read from a model
 * version's reference distributions (docs/model-format.md, "reference"):
 * for each numeric column its decile edges, for each hashed column its
 * top values plus "other", and for each weight vector the probability in
 * 10 bins, each with the training rows' counts.
 *
 * Why shared: mlops-serve's sliding window (serve/sv_drift.c) and the
 * batch drift stage (coordinator/stage_drift.c with the worker's drift
 * kind) must bin a row the same way and compare with the same counts,
 * so both read the reference through this, and compute the PSI with
 * common/kernels/psi.h. Missing values are not binned (the reference
 * counts them apart). */
#ifndef MLOPS_DRIFTREF_H
#define MLOPS_DRIFTREF_H
#include <jansson.h>
#include <stddef.h>

#include "frame.h"

#define MLOPS_DRIFT_NO_BIN ((size_t)-1)

enum { MLOPS_DRIFT_NUMERIC, MLOPS_DRIFT_CATEGORICAL, MLOPS_DRIFT_PROBA };

typedef struct {
    char *name; /* the column, or "proba" (binary), "proba_<class>" */
    int kind;
    size_t col;   /* frame column (numeric, categorical) or class index (proba) */
    size_t nbins; /* categorical: ntop + 1 ("other") */
    double *edges; /* numeric: nbins - 1 */
    char **values; /* categorical: the top values */
    size_t *lens, *order; /* categorical: their lengths, and their indexes by (length, bytes) */
    double *ref;   /* the training rows' count per bin */
} mlops_drift_feature_t;

typedef struct {
    mlops_drift_feature_t *f;
    size_t nf;
    size_t nclasses; /* the width of a proba row */
} mlops_driftref_t;

/* The features of `reference` for a frame whose columns are
 * cols[0..ncols) (a reference column not among them is left out, as is
 * a numeric one without edges: no values in training) and a model of
 * classes[0..nclasses). NULL when reference is not an object or out of
 * memory. */
mlops_driftref_t *mlops_driftref_new(const json_t *reference, char *const *cols, size_t ncols,
                                     char *const *classes, size_t nclasses);
void mlops_driftref_destroy(mlops_driftref_t **pr);

/* The bin of row r for feature i: f the frame (columns as given to new),
 * proba its n x nclasses probabilities, unscored its flags (a proba
 * feature skips unscored rows). MLOPS_DRIFT_NO_BIN for a missing value. */
size_t mlops_driftref_bin(const mlops_driftref_t *d, size_t i, const mlk_frame *f, size_t r,
                          const double *proba, const uint8_t *unscored);

#endif
