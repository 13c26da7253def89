/* sv_drift.h: what mlops-serve has scored lately, against the reference
 * distributions stored with the model version (docs/model-format.md,
 * "reference"): a sliding window of the last N rows, binned as the
 * reference is, and the population stability index of every feature and
 * of the predicted probability (common/kernels/psi.h).
 *
 * Why bins per row and not the rows: the window only has to forget its
 * oldest row, so it keeps each row's bin of each feature (2 bytes) and
 * the running counts; the PSI is computed from the counts on demand.
 * A window belongs to one model version: a swap starts a fresh one.
 * Thread-safe (one mutex; an update is a few array writes). */
#ifndef SV_DRIFT_H
#define SV_DRIFT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct sv_drift sv_drift_t;

/* A window of `window` rows for a model whose request columns are
 * cols[0..ncols) (the frame's) and whose classes are classes[0..K).
 * `reference` is the artifact's (borrowed for the call). NULL when the
 * artifact has no reference (older models) or out of memory. */
sv_drift_t *sv_drift_new(const json_t *reference, char *const *cols, size_t ncols,
                         char *const *classes, size_t nclasses, size_t window);
void sv_drift_destroy(sv_drift_t **pd);

/* Add the scored rows of f (columns as given to sv_drift_new); proba is
 * n x K, rows flagged unscored count for the features only. */
void sv_drift_add(sv_drift_t *d, const mlk_frame *f, const double *proba,
                  const uint8_t *unscored);

/* {"window": N, "rows": n, "thresholds": {...}, "features": [{"feature",
 * "kind", "psi", "status"}...]}; each feature's PSI also goes to
 * psi_out[i] with its name in names_out[i] (borrowed) for the gauges,
 * up to max entries; *nout their count. NULL when out of memory. */
json_t *sv_drift_json(sv_drift_t *d, double moderate, double shifted, const char **names_out,
                      double *psi_out, size_t max, size_t *nout);

/* "stable", "moderate", "shifted", or "unknown" (NaN: no rows yet). */
const char *sv_drift_status(double psi, double moderate, double shifted);

#endif
