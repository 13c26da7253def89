/* kind_idx.c: task kind "ingest_idx" — one shard of an IDX image/label
 * pair (bytes cut by coordinator/stage_idx.c) into a feature shard
 * (fshard.h): row_id = the row's index in its file, label = the class
 * index of its label value (-1 if the value is not a class), dense f32
 * pixels / 255 as scikit-learn users scale them. The arguments come from
 * the network: every length is checked before use. */
#include "bytes.h"
#include "err.h"
#include "fshard.h"
#include "task.h"
#include <stdlib.h>
#include <string.h>

int wk_kind_ingest_idx(task_ctx_t *ctx);

/* Args: u64 first_row, u64 nrows, u64 row_len, u32 ncls, u8 cls[ncls],
 *       blob pixels (nrows*row_len), blob labels (nrows). */
int wk_kind_ingest_idx(task_ctx_t *ctx)
{
    br_t r;
    br_init(&r, ctx->ta->args.data, ctx->ta->args.len);
    uint64_t first = br_u64(&r), nrows = br_u64(&r), row_len = br_u64(&r);
    uint32_t ncls = br_u32(&r);
    uint8_t cls[256];
    if (r.err || ncls > 256 || row_len == 0 || row_len > (1u << 24) || nrows > (1u << 30) ||
        first > ((uint64_t)1 << 62))
        return wk_task_fail(ctx, 0, "ingest_idx: damaged task arguments");
    br_get(&r, cls, ncls);
    size_t npx, nlab;
    const uint8_t *px = br_blob(&r, &npx);
    const uint8_t *lab = br_blob(&r, &nlab);
    if (!br_done(&r) || npx != nrows * row_len || nlab != nrows)
        return wk_task_fail(ctx, 0, "ingest_idx: damaged task arguments (%zu pixel bytes, %zu labels for %llu rows)",
                         npx, nlab, (unsigned long long)nrows);
    int32_t map[256];
    for (int v = 0; v < 256; v++) map[v] = -1;
    for (uint32_t c = 0; c < ncls; c++) map[cls[c]] = (int32_t)c;
    mlk_features *f = mlk_features_new((size_t)nrows);
    if (!f) return wk_task_fail(ctx, 1, "out of memory");
    f->n_dense = (size_t)row_len;
    f->dense_type = MLK_DENSE_F32;
    f->dense32 = malloc((npx ? npx : 1) * sizeof(float));
    if (!f->dense32) {
        mlk_features_destroy(&f);
        return wk_task_fail(ctx, 1, "out of memory");
    }
    size_t unknown = 0;
    for (size_t i = 0; i < (size_t)nrows; i++) {
        f->row_id[i] = (int64_t)(first + i);
        f->label[i] = map[lab[i]];
        unknown += map[lab[i]] < 0;
    }
    for (size_t i = 0; i < npx; i++) f->dense32[i] = (float)px[i] / 255.0f;
    uint8_t *buf;
    size_t len;
    int rc = mlk_features_encode(f, &buf, &len);
    mlk_features_destroy(&f);
    if (rc) return wk_task_fail(ctx, 1, "out of memory encoding the shard");
    rc = wk_task_output(ctx, NULL, buf, len);
    free(buf);
    if (rc) return rc;
    wk_task_metric(ctx, "rows", (double)nrows);
    if (unknown) wk_task_metric(ctx, "rows_unknown_label", (double)unknown);
    return 0;
}
