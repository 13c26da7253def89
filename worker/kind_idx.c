/* kind_idx.c: task kind "ingest_idx" — one shard of an IDX image/label
 * pair (bytes cut by coordinator/stage_idx.c) into a feature shard
 * (fshard.h): row_id = the row's index in its file, label = the class
 * index of its label value (-1 if the value is not a class), dense f32
 * pixels / 255 as scikit-learn users scale them. The arguments come from
 * the network: every length is checked before use. */
#include "err.h"
#include "fshard.h"
#include "task.h"
#include <stdlib.h>
#include <string.h>

int wk_kind_ingest_idx(task_ctx_t *ctx);

static int ingest(task_ctx_t *ctx, const Mlops__Tasks__IngestIdxArgs *a)
{
    uint64_t first = a->first_row, nrows = a->rows, row_len = a->row_len;
    size_t ncls = a->classes.len, npx = a->pixels.len, nlab = a->labels.len;
    const uint8_t *cls = a->classes.data, *px = a->pixels.data, *lab = a->labels.data;
    if (ncls > 256 || row_len == 0 || row_len > (1u << 24) || nrows > (1u << 30) ||
        first > ((uint64_t)1 << 62))
        return wk_task_fail(ctx, 0,
                            "ingest_idx: damaged task arguments (%zu classes, rows of %llu values)",
                            ncls, (unsigned long long)row_len);
    if (npx != nrows * row_len || nlab != nrows)
        return wk_task_fail(
            ctx, 0,
            "ingest_idx: damaged task arguments (%zu pixel bytes, %zu labels for %llu rows)", npx,
            nlab, (unsigned long long)nrows);
    int32_t map[256];
    for (int v = 0; v < 256; v++) map[v] = -1;
    for (size_t c = 0; c < ncls; c++) map[cls[c]] = (int32_t)c;
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

/* Args: IngestIdxArgs (proto/tasks.proto). */
int wk_kind_ingest_idx(task_ctx_t *ctx)
{
    Mlops__Tasks__IngestIdxArgs *a = wk_task_args(ctx, &mlops__tasks__ingest_idx_args__descriptor);
    if (!a) return -1;
    int rc = ingest(ctx, a);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}
