/* packed_cache.h: packed shards validated once per store snapshot.
 *
 * An L-BFGS fit reads each of its shards once per evaluation, ~100
 * times, and each read walked and checked every record again
 * (mlk_fpack_open: 11% of a fit's samples). A shard's bytes at one
 * address under one store snapshot (mlops_store_foreach_snap) are the
 * same bytes, so the opened shard (its mlk_fpack and record offsets) is
 * kept under (key, address, length, snapshot) and given back for the
 * next read that finds all four equal. Any write to the store makes a
 * new snapshot, so nothing kept is ever taken for changed bytes; a
 * fetched copy (no snapshot), a misaligned value and a shuffled read
 * (its records copied as they are checked) are not kept.
 *
 * At most PACKED_CACHE_BYTES of offsets are kept (the least recently
 * used entry not in use goes first): the memory is bounded, not grown
 * with the number of shards. Thread-safe (the executor threads share
 * it). */
#ifndef MLOPS_WK_PACKED_CACHE_H
#define MLOPS_WK_PACKED_CACHE_H
#include "packed_input.h"
#include <stdint.h>

#define PACKED_CACHE_BYTES ((size_t)64 << 20)
#define PACKED_CACHE_ENTRIES 128

/* wk_packed_take(ctx, input, data, len, 0, w) through the cache: data
 * read under store snapshot snap (0: none, not cached). Released with
 * wk_packed_release, as ever. */
int wk_packed_take_cached(task_ctx_t *ctx, size_t input, const void *data, size_t len, uint64_t snap,
                          wk_packed_t *w);

/* wk_packed_release's part: an entry handed out is no longer in use. */
void wk_packed_cache_unref(void *entry);

/* Counts since start, for tests: reads answered from the cache, and
 * entries kept. */
void wk_packed_cache_stats(uint64_t *hits, uint64_t *kept);

/* Drop every entry not in use (tests; a worker never needs to). */
void wk_packed_cache_clear(void);

#endif
