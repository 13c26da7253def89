/* packed_input.c: a task's packed feature shard, opened and checked for
 * the worker kinds that read it where it lies (see packed_input.h). */
#include "packed_input.h"
#include "packed_cache.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The executor thread's reusable buffers (wk_packed_take): the record
 * offsets and the huge-page copy of a large shard's records, each in
 * use by at most one open shard at a time (a second one gets its own). */
typedef struct {
    mlk_fpack_buf off, recs;
    int off_busy, recs_busy;
} packed_pool_t;

static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_ok; /* the key was made */

static void pool_destroy(void *arg)
{
    packed_pool_t *pl = arg;
    mlk_fpack_buf_free(&pl->off);
    mlk_fpack_buf_free(&pl->recs);
    free(pl);
}

static void pool_key_make(void)
{
    pool_ok = pthread_key_create(&pool_key, pool_destroy) == 0; /* else no pool: fresh buffers */
}

/* This thread's pool (made on first use), or NULL without one. */
static packed_pool_t *pool_get(void)
{
    pthread_once(&pool_once, pool_key_make);
    if (!pool_ok) return NULL;
    packed_pool_t *pl = pthread_getspecific(pool_key);
    if (!pl && (pl = calloc(1, sizeof *pl)) && pthread_setspecific(pool_key, pl) != 0) {
        free(pl);
        pl = NULL;
    }
    return pl;
}

void wk_packed_pool_free(void)
{
    pthread_once(&pool_once, pool_key_make);
    packed_pool_t *pl = pool_ok ? pthread_getspecific(pool_key) : NULL;
    if (!pl || pl->off_busy || pl->recs_busy) return;
    pthread_setspecific(pool_key, NULL);
    pool_destroy(pl);
}

/* len bytes from the pool's buffer b (marked busy) or, when b is in use
 * or there is no pool, fresh (*fresh set: the caller frees it). */
static void *pool_take(mlk_fpack_buf *b, int *busy, size_t len, int *fresh)
{
    *fresh = 1;
    if (!b || *busy) return mlk_fpack_alloc(len);
    void *p = mlk_fpack_buf_get(b, len);
    if (p) {
        *busy = 1;
        *fresh = 0;
    }
    return p;
}

static int packed_open(task_ctx_t *ctx, size_t input, const void *data, size_t len, int shuffled, mlk_fpack *p,
                       size_t **off, uint8_t **copy, uint8_t **recs, packed_pool_t *pl, int *fresh_off,
                       int *fresh_recs)
{
    *off = NULL;
    *copy = NULL;
    *recs = NULL;
    *fresh_off = *fresh_recs = 1;
    const uint8_t *b = data;
    if ((uintptr_t)b & 7) { /* LMDB does not promise alignment: read a copy */
        if (!(b = *copy = mlk_fpack_aligned_copy(data, len))) return wk_task_fail(ctx, 1, "out of memory");
    }
    uint64_t n = 0;
    if (len >= 16) memcpy(&n, b + 8, 8);
    if (n > len / 8) n = 0; /* garbage: mlk_fpack_open says so */
    char why[200] = "";
    size_t nb = (n ? n : 1) * sizeof **off;
    if (!(*off = pool_take(pl ? &pl->off : NULL, pl ? &pl->off_busy : NULL, nb, fresh_off)))
        return wk_task_fail(ctx, 1, "out of memory");
    /* a large shard's records in huge pages: shuffled visits over the
     * map's 4 KiB pages missed the TLB on every row (mlk_fpack_recs_copy);
     * copied as they are checked, in one pass (without the memory, they
     * are read where they lie) */
    size_t rb = shuffled ? mlk_fpack_rec_bytes(b, len) : 0;
    if (rb >= MLK_FPACK_COPY_MIN)
        *recs = pool_take(pl ? &pl->recs : NULL, pl ? &pl->recs_busy : NULL, rb, fresh_recs);
    int orc = *recs ? mlk_fpack_open_copy(b, len, p, *off, *recs, why, sizeof why)
                    : mlk_fpack_open(b, len, p, *off, why, sizeof why);
    if (orc != 0) return wk_task_fail(ctx, 0, "damaged feature shard %s: %s", ctx->ta->inputs[input]->key, why);
    return 0;
}

int wk_packed_open(task_ctx_t *ctx, size_t input, const void *data, size_t len, int shuffled, mlk_fpack *p,
                   size_t **off, uint8_t **copy, uint8_t **recs)
{
    int fo, fr;
    return packed_open(ctx, input, data, len, shuffled, p, off, copy, recs, NULL, &fo, &fr);
}

int wk_packed_take(task_ctx_t *ctx, size_t input, const void *data, size_t len, int shuffled, wk_packed_t *w)
{
    memset(w, 0, sizeof *w);
    return packed_open(ctx, input, data, len, shuffled, &w->p, &w->off, &w->copy, &w->recs, pool_get(),
                       &w->fresh_off, &w->fresh_recs);
}

void wk_packed_release(wk_packed_t *w)
{
    if (w->cached) {
        wk_packed_cache_unref(w->cached);
        memset(w, 0, sizeof *w);
        return;
    }
    packed_pool_t *pl = pool_ok ? pthread_getspecific(pool_key) : NULL;
    if (w->off && w->fresh_off) free(w->off);
    else if (w->off && pl) pl->off_busy = 0;
    if (w->recs && w->fresh_recs) free(w->recs);
    else if (w->recs && pl) pl->recs_busy = 0;
    free(w->copy);
    memset(w, 0, sizeof *w);
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
