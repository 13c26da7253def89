/* packed_input.c: a task's packed feature shard, opened and checked for
 * the worker kinds that read it where it lies (see packed_input.h). */
#include "packed_input.h"
#include <string.h>

int wk_packed_open(task_ctx_t *ctx, size_t input, const void *data, size_t len, int shuffled, mlk_fpack *p,
                   size_t **off, uint8_t **copy, uint8_t **recs)
{
    *off = NULL;
    *copy = NULL;
    *recs = NULL;
    const uint8_t *b = data;
    if ((uintptr_t)b & 7) { /* LMDB does not promise alignment: read a copy */
        if (!(b = *copy = mlk_fpack_aligned_copy(data, len))) return wk_task_fail(ctx, 1, "out of memory");
    }
    uint64_t n = 0;
    if (len >= 16) memcpy(&n, b + 8, 8);
    if (n > len / 8) n = 0; /* garbage: mlk_fpack_open says so */
    char why[200] = "";
    if (!(*off = mlk_fpack_alloc((n ? n : 1) * sizeof **off))) return wk_task_fail(ctx, 1, "out of memory");
    if (mlk_fpack_open(b, len, p, *off, why, sizeof why) != 0)
        return wk_task_fail(ctx, 0, "damaged feature shard %s: %s", ctx->ta->inputs[input]->key, why);
    /* a large shard's records in huge pages: shuffled visits over the
     * map's 4 KiB pages missed the TLB on every row (mlk_fpack_recs_copy) */
    if (shuffled && p->rec_bytes >= MLK_FPACK_COPY_MIN && (*recs = mlk_fpack_recs_copy(p)) != NULL) p->recs = *recs;
    return 0;
}

int wk_packed_check_labels(task_ctx_t *ctx, const mlk_fpack *p, const size_t *off, uint32_t classes)
{
    /* the header's range over every row answers for the training rows
     * without a pass over the records */
    if (p->label_min >= 0 && (uint32_t)p->label_max < classes) return 0;
    for (size_t i = 0; i < p->nrows; i++) {
        if (p->test && p->test[i]) continue;
        int32_t lab;
        memcpy(&lab, p->recs + off[i], 4);
        if (lab < 0 || (uint32_t)lab >= classes)
            return wk_task_fail(ctx, 0, "train: row %lld has no class label", (long long)p->row_id[i]);
    }
    return 0;
}
