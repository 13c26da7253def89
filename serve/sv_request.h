/* sv_request.h: a scoring request's body (MLflow's /invocations formats,
 * or the Open Inference Protocol's infer request) read into a frame of
 * the model's raw columns, or refused with one line naming the position
 * and the column.
 *
 * Why its own file: it is the part of mlops-serve that anyone on the
 * network feeds, so it is pure (no sockets, no model, no globals) and
 * has a libFuzzer target (tests/fuzz/fuzz_serve_request.c).
 *
 * Values follow the batch reader's rules, so a row gives the same frame
 * as the same row in a CSV given to a predict job (csv.h): a numeric
 * column takes a JSON number, null, or a string read with the CSV
 * converter (pandas' NA tokens and "" are missing); a text column takes
 * a string ("" and the NA tokens are missing), null (missing) or an
 * integer (its decimal text). Every column the model needs must be
 * there, and no other. */
#ifndef SV_REQUEST_H
#define SV_REQUEST_H
#include <stddef.h>

#include "frame.h"

/* The columns a request must carry, borrowed. */
typedef struct {
    size_t ncols;
    char *const *cols;
    const mlk_coltype *types;
} sv_schema_t;

/* The body of POST /invocations with its Content-Type: application/json
 * with exactly one of dataframe_split, dataframe_records, instances; or
 * text/csv with a header row. 0 and a new frame (columns in schema
 * order) in *out; MLOPS_EINVAL for a Content-Type it does not read (415);
 * MLOPS_EPARSE for a bad body (400), err naming where:
 *   "dataframe_split.data[3][1] (column 'price'): 'abc' is not a number"
 *   "dataframe_records[2]: missing column 'price'"
 *   "malformed JSON at line 1, column 17: ..." */
int sv_request_parse(const sv_schema_t *s, const char *ctype, const char *body, size_t len,
                     mlk_frame **out, char *err, size_t errlen);

/* The body of POST /v2/models/NAME/infer: one named tensor per column,
 * FP64 (or FP32, INT64, INT32) for numeric columns, BYTES for text, all
 * of shape [n] or [n, 1]. *id is the request's "id" (malloc'd) or NULL.
 * 0, or MLOPS_EPARSE with err. */
int sv_request_parse_v2(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out,
                        char **id, char *err, size_t errlen);

/* The same two with jansson alone, building the tree: what the above
 * fall back on for a body the tree-less reader does not take, and the
 * reference fuzz_serve_request holds that reader to. */
int sv_request_parse_tree(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out,
                          char *err, size_t errlen);
int sv_request_parse_v2_tree(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out,
                             char **id, char *err, size_t errlen);

#endif
