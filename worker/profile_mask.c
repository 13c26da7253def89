/* profile_mask.c: a split shard's training-row mask for the profile
 * kinds (see profile_mask.h). */
#include "profile_mask.h"
#include "err.h"
#include "fshard.h"
#include "packed_input.h"
#include <stdlib.h>

int wk_profile_mask(task_ctx_t *ctx, size_t input, const void *data, size_t len, uint8_t **train,
                    size_t *nrows)
{
    *train = NULL;
    *nrows = 0;
    const uint8_t *test = NULL;
    mlk_features *fs = NULL;
    size_t *off = NULL;
    uint8_t *copy = NULL, *recs = NULL;
    mlk_fpack pk;
    int rc = 0;
    if (mlk_fpack_is(data, len)) {
        /* not shuffled: no huge-page copy of the records, which the
         * decile rounds and the bins never read */
        rc = wk_packed_open(ctx, input, data, len, 0, &pk, &off, &copy, &recs);
        if (!rc) {
            *nrows = pk.nrows;
            test = pk.test;
        }
    } else if ((rc = mlk_features_decode(data, len, &fs)) != 0) {
        rc = rc == MLOPS_ENOMEM ? wk_task_fail(ctx, 1, "out of memory")
                                : wk_task_fail(ctx, 0, "damaged feature shard %s: neither a packed nor "
                                                       "an encoded feature shard (%s)",
                                               ctx->ta->inputs[input]->key, mlops_strerror(rc));
    } else {
        *nrows = fs->nrows;
        test = fs->test;
    }
    if (!rc && !(*train = malloc(*nrows ? *nrows : 1))) rc = wk_task_fail(ctx, 1, "out of memory");
    for (size_t i = 0; !rc && i < *nrows; i++) (*train)[i] = !test || !test[i];
    free(off);
    free(copy);
    free(recs);
    mlk_features_destroy(&fs);
    if (rc) *nrows = 0;
    return rc;
}
