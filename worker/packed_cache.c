/* packed_cache.c: packed shards validated once per store snapshot (see
 * packed_cache.h). A small table under one mutex: the lookups are a
 * scan of at most PACKED_CACHE_ENTRIES entries per task, nothing next to
 * the shard's own walk. */
#include "packed_cache.h"
#include "err.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key; /* NULL: a free slot */
    const void *data;
    size_t len;
    uint64_t snap;
    mlk_fpack p;
    size_t *off;
    size_t bytes; /* of off */
    unsigned refs;
    uint64_t used; /* the clock at its last use */
} entry_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry_t table[PACKED_CACHE_ENTRIES];
static size_t held_bytes;
static uint64_t clock_now, nhits, nkept;

static void entry_free(entry_t *e)
{
    held_bytes -= e->bytes;
    free(e->key);
    free(e->off);
    memset(e, 0, sizeof *e);
}

static int same(const entry_t *e, const char *key, const void *data, size_t len, uint64_t snap)
{
    return e->key && e->snap == snap && e->data == data && e->len == len && strcmp(e->key, key) == 0;
}

/* A free slot with room for `bytes` more, made by dropping the least
 * recently used entries not in use (and, first, those of this key under
 * another snapshot or address: they can never be used again). NULL when
 * the entries in use leave no room. Under mu. */
static entry_t *make_room(const char *key, size_t bytes)
{
    if (bytes > PACKED_CACHE_BYTES) return NULL;
    for (size_t i = 0; i < PACKED_CACHE_ENTRIES; i++)
        if (table[i].key && !table[i].refs && strcmp(table[i].key, key) == 0) entry_free(&table[i]);
    for (;;) {
        entry_t *slot = NULL, *lru = NULL;
        for (size_t i = 0; i < PACKED_CACHE_ENTRIES; i++) {
            entry_t *e = &table[i];
            if (!e->key) {
                if (!slot) slot = e;
            } else if (!e->refs && (!lru || e->used < lru->used)) {
                lru = e;
            }
        }
        if (slot && held_bytes + bytes <= PACKED_CACHE_BYTES) return slot;
        if (!lru) return NULL;
        entry_free(lru);
    }
}

int wk_packed_take_cached(task_ctx_t *ctx, size_t input, const void *data, size_t len, uint64_t snap,
                          wk_packed_t *w)
{
    if (!snap || ((uintptr_t)data & 7) || input >= ctx->ta->n_inputs)
        return wk_packed_take(ctx, input, data, len, 0, w);
    const char *key = ctx->ta->inputs[input]->key;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < PACKED_CACHE_ENTRIES; i++) {
        entry_t *e = &table[i];
        if (!same(e, key, data, len, snap)) continue;
        e->refs++;
        e->used = ++clock_now;
        nhits++;
        memset(w, 0, sizeof *w);
        w->p = e->p;
        w->off = e->off;
        w->cached = e;
        pthread_mutex_unlock(&mu);
        return 0;
    }
    pthread_mutex_unlock(&mu);
    int rc = wk_packed_take(ctx, input, data, len, 0, w);
    if (rc || w->copy || w->recs) return rc; /* failed, or not read in place: not kept */
    size_t bytes = (w->p.nrows ? w->p.nrows : 1) * sizeof *w->off;
    size_t *off = malloc(bytes);
    char *k = strdup(key);
    if (!off || !k) { /* kept only if there is memory to spare */
        free(off);
        free(k);
        return 0;
    }
    memcpy(off, w->off, w->p.nrows * sizeof *w->off);
    pthread_mutex_lock(&mu);
    entry_t *e = NULL;
    for (size_t i = 0; i < PACKED_CACHE_ENTRIES && !e; i++)
        if (same(&table[i], key, data, len, snap)) e = &table[i]; /* another thread kept it first */
    if (!e && (e = make_room(key, bytes)) != NULL) {
        e->key = k;
        e->data = data;
        e->len = len;
        e->snap = snap;
        e->p = w->p;
        e->off = off;
        e->bytes = bytes;
        e->refs = 0;
        e->used = ++clock_now;
        held_bytes += bytes;
        nkept++;
        k = NULL;
        off = NULL;
    }
    pthread_mutex_unlock(&mu);
    free(k);
    free(off);
    return 0;
}

void wk_packed_cache_unref(void *entry)
{
    entry_t *e = entry;
    pthread_mutex_lock(&mu);
    if (e->refs) e->refs--;
    pthread_mutex_unlock(&mu);
}

void wk_packed_cache_stats(uint64_t *hits, uint64_t *kept)
{
    pthread_mutex_lock(&mu);
    if (hits) *hits = nhits;
    if (kept) *kept = nkept;
    pthread_mutex_unlock(&mu);
}

void wk_packed_cache_clear(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < PACKED_CACHE_ENTRIES; i++)
        if (table[i].key && !table[i].refs) entry_free(&table[i]);
    pthread_mutex_unlock(&mu);
}
