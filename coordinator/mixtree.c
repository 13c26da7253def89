/* mixtree.c: the fan-in-8 mixing tree of the SGD epochs (train's and each
 * cv instance's): n shard models become one, level by level, groups of
 * MIXTREE_FANIN in shard order, each the count-weighted average of its
 * group (mlk_model_average_encoded). The tree's shape depends only on n,
 * so the model's bytes do not depend on the number of workers; they are
 * those the train_reduce task levels gave, one shard averaged with itself
 * as a one-input reduce did. */
#include "err.h"
#include "model.h"
#include "stages.h"
#include <stdlib.h>
#include <string.h>

int coord_mixtree(const uint8_t *const *bufs, const size_t *lens, const uint64_t *counts, size_t n, uint8_t **out,
                  size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (!n) return mlops_seterr(err, errlen, MLOPS_EINVAL, "mixing: no models to average");
    size_t n0 = n;
    uint8_t **cur = calloc(n, sizeof *cur);
    size_t *clen = calloc(n, sizeof *clen);
    uint64_t *cnt = malloc(n * sizeof *cnt);
    int rc = cur && clen && cnt ? 0 : MLOPS_ENOMEM;
    int owned = 0; /* level 1 reads the inputs in place, later ones their own averages */
    if (!rc) memcpy(cnt, counts, n * sizeof *cnt);
    do {
        size_t groups = (n + MIXTREE_FANIN - 1) / MIXTREE_FANIN;
        for (size_t g = 0; !rc && g < groups; g++) {
            size_t lo = g * MIXTREE_FANIN, hi = lo + MIXTREE_FANIN < n ? lo + MIXTREE_FANIN : n;
            uint8_t *avg = NULL;
            size_t alen = 0;
            uint64_t total = 0;
            for (size_t i = lo; i < hi; i++) total += cnt[i];
            rc = mlk_model_average_encoded(owned ? (const uint8_t *const *)cur + lo : bufs + lo,
                                           owned ? clen + lo : lens + lo, cnt + lo, hi - lo, &avg, &alen, err,
                                           errlen);
            for (size_t i = lo; owned && i < hi; i++) {
                free(cur[i]);
                cur[i] = NULL;
            }
            cur[g] = avg;
            clen[g] = alen;
            cnt[g] = total;
        }
        owned = 1;
        n = groups;
    } while (!rc && n > 1);
    if (!rc) {
        *out = cur[0];
        *outlen = clen[0];
        cur[0] = NULL;
    }
    /* after a failed group: what is left of this level and the last */
    for (size_t i = 0; cur && i < n0; i++) free(cur[i]);
    free(cur);
    free(clen);
    free(cnt);
    return rc;
}
