/* sv_reader.h: the hot path's reader of a scoring body: MLflow's
 * dataframe_split, dataframe_records and instances, and the Open
 * Inference Protocol's infer request, read in one pass straight into the
 * frame the scoring kernel reads, with no JSON tree in between.
 *
 * It takes only the common shape of a well-formed body (keys in the
 * order clients write them: "columns" before "data", a tensor's "data"
 * last; "params", "parameters" and "outputs" read and dropped) and says
 * SV_READER_PUNT for anything else, malformed bodies included: the caller
 * then reads the body with sv_request's jansson path, which gives the
 * answer (a frame, or the message naming the position). So a frame this
 * reader returns is, value for value and bit for bit, the frame the
 * jansson path gives for the same body; fuzz_serve_request checks that. */
#ifndef SV_READER_H
#define SV_READER_H
#include <stddef.h>

#include "frame.h"
#include "sv_request.h"

/* Not read here: read the body with the jansson path. */
#define SV_READER_PUNT 1

/* A JSON body of POST /invocations. 0 and a frame in *out, SV_READER_PUNT,
 * or MLOPS_ENOMEM. */
int sv_reader_mlflow(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out);

/* A body of POST /v2/models/NAME/infer; *id is its "id" (malloc'd) or NULL.
 * 0, SV_READER_PUNT or MLOPS_ENOMEM (nothing in *out, *id then). */
int sv_reader_v2(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out, char **id);

#endif
