/* profile_counts.c: a shard's distinct training values of a text column
 * and their counts, for the profile kinds and the featurize task (see
 * profile_counts.h). */
#include "profile_counts.h"
#include "err.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t len;
} strref_t;

static int strref_cmp(const void *pa, const void *pb)
{
    const strref_t *a = pa, *b = pb;
    int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

typedef struct {
    strref_t r;
    uint64_t count;
} strcount_t;

static int strcount_cmp(const void *pa, const void *pb)
{
    return strref_cmp(&((const strcount_t *)pa)->r, &((const strcount_t *)pb)->r);
}

static uint64_t str_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* They are counted in an open-addressing table first and only the
 * distinct ones sorted: a shard has ~10,000 users in 52,000 rows, and a
 * sort of every row's string was most of the profile stage. The strings
 * point into the column while they are counted; the result holds
 * copies. */
int wk_profile_count_category(const void *col, wk_strcol_at at, const uint8_t *missing, const uint8_t *train,
                              size_t n, Mlops__Tasks__ProfileCategory *cat)
{
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    uint32_t *slot = calloc(cap, sizeof *slot); /* 0 empty, else index + 1 into v */
    strcount_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!slot || !v) {
        free(slot);
        free(v);
        return MLOPS_ENOMEM;
    }
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        if (!train[i]) continue;
        if (missing[i]) {
            cat->missing++;
            continue;
        }
        strref_t r;
        r.s = at(col, i, &r.len);
        size_t h = (size_t)str_hash(r.s, r.len) & (cap - 1);
        while (slot[h] && strref_cmp(&v[slot[h] - 1].r, &r)) h = (h + 1) & (cap - 1);
        if (slot[h]) {
            v[slot[h] - 1].count++;
            continue;
        }
        v[d].r = r;
        v[d].count = 1;
        slot[h] = (uint32_t)++d;
    }
    free(slot);
    qsort(v, d, sizeof *v, strcount_cmp);
    cat->values = calloc(d ? d : 1, sizeof *cat->values);
    cat->counts = calloc(d ? d : 1, sizeof *cat->counts);
    if (!cat->values || !cat->counts) {
        free(v);
        return MLOPS_ENOMEM;
    }
    for (size_t i = 0; i < d; i++) {
        if (!(cat->values[i] = strndup(v[i].r.s, v[i].r.len))) {
            free(v);
            return MLOPS_ENOMEM;
        }
        cat->counts[i] = v[i].count;
        cat->n_values = cat->n_counts = i + 1;
    }
    free(v);
    return 0;
}

void wk_profile_categories_free(Mlops__Tasks__ProfileCategory *cats, size_t n)
{
    for (size_t c = 0; cats && c < n; c++) {
        for (size_t i = 0; i < cats[c].n_values; i++) free(cats[c].values[i]);
        free(cats[c].values);
        free(cats[c].counts);
    }
    free(cats);
}
