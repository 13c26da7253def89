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
 *  - a Content-Type it does not read is MLOPS_EINVAL (a 415), nothing else;
 *  - a JSON body the tree-less reader (sv_reader.h) takes, jansson's
 *    path takes too, into the same frame bit for bit (and the same id). */
#include "fuzz.h"

#include <string.h>

#include "err.h"
#include "frame.h"
#include "sv_reader.h"
#include "sv_request.h"

static int same_frame(const mlk_frame *a, const mlk_frame *b)
{
    if (a->nrows != b->nrows || a->ncols != b->ncols) return 0;
    for (size_t c = 0; c < a->ncols; c++) {
        const mlk_col *x = &a->cols[c], *y = &b->cols[c];
        if (x->type == MLK_F64) {
            if (a->nrows && memcmp(x->f64, y->f64, a->nrows * sizeof *x->f64)) return 0;
            continue;
        }
        for (size_t r = 0; r < a->nrows; r++) {
            /* not mlk_str_at: a column of only missing values has no bytes (str NULL) */
            size_t n1 = x->off[r + 1] - x->off[r], n2 = y->off[r + 1] - y->off[r];
            if (n1 != n2 || (n1 && memcmp(x->str + x->off[r], y->str + y->off[r], n1)) ||
                x->missing[r] != y->missing[r])
                return 0;
        }
    }
    return 1;
}

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
    if (pick != 1 && pick != 2) {
        mlk_frame *fast = NULL, *tree = NULL;
        char *fid = NULL, *tid = NULL;
        int frc = pick == 4 ? sv_reader_v2(&s, body, len, &fast, &fid)
                            : sv_reader_mlflow(&s, body, len, &fast);
        if (frc == 0) {
            int trc = pick == 4 ? sv_request_parse_v2_tree(&s, body, len, &tree, &tid, err, sizeof err)
                                : sv_request_parse_tree(&s, body, len, &tree, err, sizeof err);
            FUZZ_CHECK(trc == 0 && same_frame(fast, tree));
            FUZZ_CHECK(!fid == !tid && (!fid || !strcmp(fid, tid)));
        } else {
            FUZZ_CHECK(frc == SV_READER_PUNT && !fast && !fid);
        }
        free(fid);
        free(tid);
        mlk_frame_destroy(&fast);
        mlk_frame_destroy(&tree);
    }
    free(id);
    mlk_frame_destroy(&f);
    return 0;
}
