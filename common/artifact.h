/* artifact.h: a registered model as the whole fitted pipeline, and its
 * portable JSON form "mlops-model/1" (docs/model-format.md).
 *
 * Why one struct for the pipeline: scoring new rows needs more than the
 * weights. It needs the column roles, the scaler's mean and scale per
 * numeric column, the hasher's settings and the classes, in the order the
 * training stages used them. The JSON text is both the export and what
 * the coordinator stores (content-addressed, models/<sha256>.json), so
 * the exported file is byte for byte what the registry holds.
 *
 * Feature index space (the one `export --format svmlight` of the hash
 * stage uses): hashed features 0 .. n_features-1 (tokens "column=value",
 * scikit-learn's FeatureHasher), then the scaled numeric columns in
 * `numeric` order. Weights are the model's (mlk_model, feature-major);
 * a binary model has one weight vector, for classes[1].
 *
 * Doubles are written in their short round-trip form (jsondump.h: 15
 * significant digits where that reads back exactly, else 17), so a decoded
 * artifact has bit-identical weights, means and scales. */
#ifndef MLOPS_ARTIFACT_H
#define MLOPS_ARTIFACT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define MLOPS_ARTIFACT_FORMAT "mlops-model/1"

typedef struct {
    char *column;
    double mean, scale; /* x' = (x - mean) / scale; 0 and 1 without a scale stage */
} mlops_art_numeric_t;

typedef struct {
    char *role, *name; /* as the job uploaded it ("input", "data.csv") */
    uint64_t size;
    char sha256[65]; /* lower-case hex */
} mlops_art_input_t;

typedef struct {
    char *name;       /* registered model name */
    uint32_t version; /* 1, 2, ... */
    char *created;    /* ISO 8601 UTC */
    char *label;      /* the label column */
    char **classes;   /* in class-index order (scikit-learn's classes_) */
    size_t nclasses;
    mlops_art_numeric_t *numeric;
    size_t nnumeric;
    char **hashed; /* categorical columns hashed as "column=value" */
    size_t nhashed;
    uint32_t n_features; /* hashed feature space; 0 = no hash stage */
    int alternate_sign;
    mlk_model *model; /* owned */
    char **metric_names;
    double *metric_values; /* NaN = not computed */
    size_t nmetrics;
    double *train_loss;
    size_t ntrain_loss;
    char **tags;
    size_t ntags;
    char *job;      /* lineage: the training job */
    char *job_file; /* its canonical job-file text */
    mlops_art_input_t *inputs;
    size_t ninputs;
    /* reference distributions of the training rows (features and
     * predicted probability, docs/model-format.md), owned; NULL: none */
    json_t *reference;
} mlops_artifact_t;

/* An empty artifact (every field zero), or NULL when out of memory. */
mlops_artifact_t *mlops_artifact_new(void);
/* Free it and everything it owns; NULLs *pa; safe on NULL and twice. */
void mlops_artifact_destroy(mlops_artifact_t **pa);

/* Append one metric, one tag or one input (strings copied). 0 or MLOPS_ENOMEM. */
int mlops_artifact_add_metric(mlops_artifact_t *a, const char *name, double v);
int mlops_artifact_add_tag(mlops_artifact_t *a, const char *tag);

/* The portable JSON text (malloc'd, NUL-terminated, ends with a newline).
 * The same artifact always gives the same bytes. NULL with err filled on
 * a model that does not fit the artifact's shape or out of memory. */
char *mlops_artifact_to_json(const mlops_artifact_t *a, char *err, size_t errlen);

/* Parse and validate JSON text that may be anything (a file a user
 * edited). 0 and a new artifact in *out; MLOPS_EPARSE with a one-line
 * message naming the field (and line:column for bad JSON); MLOPS_ENOMEM. */
int mlops_artifact_from_json(const char *text, size_t len, mlops_artifact_t **out, char *err,
                             size_t errlen);

/* The value of a metric, or NaN. */
double mlops_artifact_metric(const mlops_artifact_t *a, const char *name);

#endif
