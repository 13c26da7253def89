/* score.h: one frame of raw rows scored with a fitted pipeline (scaler,
 * hasher, linear model), the per-row scoring every consumer shares.
 *
 * Why one function: the batch predict kind (worker/kind_predict.c), the
 * promotion gate's scoring and the HTTP server (serve/) must give the
 * same bits for the same row. They all call this, which applies the
 * training kernels one for one: mlk_scaler_transform per numeric column
 * (as scale_apply did), mlk_hash_frame over the categorical columns (as
 * the hash kind did) and mlk_sgd_predict_proba (as evaluate does).
 *
 * A row with a missing value the pipeline needs (NaN, or a missing
 * string) is still computed but flagged in unscored[]: its probabilities
 * mean nothing and callers must not report them. */
#ifndef MLK_SCORE_H
#define MLK_SCORE_H
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "model.h"

/* The pipeline, borrowed. num_col/cat_col are column indexes of the
 * frame: num_col[c] must be MLK_F64, cat_col[c] MLK_STR (the caller has
 * looked them up by name and checked their types). */
typedef struct {
    const mlk_model *model;
    size_t nnumeric;
    const size_t *num_col;
    const double *mean, *scale; /* x' = (x - mean) / scale */
    size_t nhashed;
    const size_t *cat_col;
    uint32_t n_features; /* hashed space; 0 = no hash stage */
    int alternate_sign;
} mlk_score_spec;

/* Score every row of f: proba (f->nrows x model->n_classes, row-major)
 * and unscored (f->nrows flags), both the caller's. 0, MLOPS_EINVAL
 * (the spec does not match its model, err says how) or MLOPS_ENOMEM. */
int mlk_score_frame(const mlk_score_spec *s, const mlk_frame *f, double *proba, uint8_t *unscored,
                    char *err, size_t errlen);

#endif
