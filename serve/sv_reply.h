/* sv_reply.h: the bodies of the scoring replies: MLflow's
 * {"predictions": [...]} and the Open Inference Protocol's infer
 * response, written straight from the probabilities, no JSON tree.
 *
 * Why its own file: it is the serialize phase of every scoring request,
 * and the one place a probability becomes text, "%.17g" as before (the
 * client reads back the very double scored), but by an exact integer
 * path of its own for the usual range, since snprintf was most of the
 * phase's time. */
#ifndef SV_REPLY_H
#define SV_REPLY_H
#include <stddef.h>
#include <stdint.h>

#include "sv_model.h"

/* v as snprintf(out, 32, "%.17g", v) writes it, for a finite v: the
 * length written to out (at least 32 bytes), NUL-terminated. */
size_t sv_reply_g17(double v, char *out);

/* The reply to n rows scored by m (proba n x K, unscored n); id is the
 * V2 request's id or NULL. 0 and a malloc'd body in *body, *len; -1 when
 * out of memory. */
int sv_reply_mlflow(const sv_model_t *m, size_t n, const double *proba, const uint8_t *unscored,
                    const char *id, char **body, size_t *len);
int sv_reply_v2(const sv_model_t *m, size_t n, const double *proba, const uint8_t *unscored,
                const char *id, char **body, size_t *len);

#endif
