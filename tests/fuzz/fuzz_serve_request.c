/* fuzz_serve_request.c: mlops-serve's request parser (serve/sv_request.h)
 * on any bytes, as a client on the network sends them. Byte 0 picks the
 * endpoint and Content-Type (MLflow JSON, text/csv, an unread type, the
 * V2 infer body); the rest is the body, for a model of two numeric and
 * two text columns.
 *
 * Properties checked, beyond "no crash, no leak, no UB":
 *  - an accepted body gives a frame of exactly the schema's columns, in
 *    order and of their types, with row ids 0..n-1;
 *  - a refused one gives no frame and a one-line message;
 *  - a Content-Type it does not read is MLOPS_EINVAL (a 415), nothing else. */
#include "fuzz.h"

#include <string.h>

#include "err.h"
#include "frame.h"
#include "sv_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *cols[] = {"price", "quantity", "category", "item_id"};
    static const mlk_coltype types[] = {MLK_F64, MLK_F64, MLK_STR, MLK_STR};
    static const char *const CTYPES[] = {"application/json", "text/csv", "text/plain",
                                         "application/json; charset=utf-8"};
    if (size < 1) return 0;
    sv_schema_t s = {4, cols, types};
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    mlk_frame *f = NULL;
    char err[1024] = "";
    char *id = NULL;
    int pick = data[0] % 5, rc;
    if (pick == 4) rc = sv_request_parse_v2(&s, body, len, &f, &id, err, sizeof err);
    else rc = sv_request_parse(&s, CTYPES[pick], body, len, &f, err, sizeof err);
    if (pick == 2) FUZZ_CHECK(rc == MLOPS_EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(f && f->ncols == 4);
        for (size_t c = 0; c < 4; c++)
            FUZZ_CHECK(!strcmp(f->cols[c].name, cols[c]) && f->cols[c].type == types[c]);
        for (size_t r = 0; r < f->nrows; r++) FUZZ_CHECK(f->row_id[r] == (int64_t)r);
    } else {
        FUZZ_CHECK(!f && !id);
        FUZZ_CHECK(err[0] && !strchr(err, '\n'));
    }
    free(id);
    mlk_frame_destroy(&f);
    return 0;
}
