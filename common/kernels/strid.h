/* strid.h: dense ids for distinct byte strings (interning), for the
 * k-NN recommend stage's user and item keys.
 *
 * A string is `len` bytes, not NUL-terminated where it is looked up
 * (frame columns are read in place); each distinct one gets the next
 * id, 0, 1, ..., and a NUL-terminated copy that mlk_strid_key() returns.
 * Open addressing on MurmurHash3 (hasher.h) with linear probing, the
 * table kept at most half full. Pure C over buffers; no global state. */
#ifndef MLK_STRID_H
#define MLK_STRID_H
#include <stddef.h>
#include <stdint.h>

typedef struct mlk_strid mlk_strid;

/* A new empty map with room for about `hint` strings (it grows). NULL
 * on allocation failure. */
mlk_strid *mlk_strid_new(size_t hint);

/* Frees and nulls *m; safe on NULL and twice. */
void mlk_strid_destroy(mlk_strid **m);

/* The id of s, or -1 when it has none. */
int64_t mlk_strid_find(const mlk_strid *m, const char *s, size_t len);

/* The id of s, given the next one when it is new; -1 when out of
 * memory (the map is unchanged). */
int64_t mlk_strid_add(mlk_strid *m, const char *s, size_t len);

/* Distinct strings held. */
size_t mlk_strid_count(const mlk_strid *m);

/* The NUL-terminated copy of string `id` (< mlk_strid_count); valid
 * until the next mlk_strid_add or the map's end. */
const char *mlk_strid_key(const mlk_strid *m, size_t id);

/* Sorts the n NUL-terminated keys the way the recommend stage ranks its
 * users and items (and the class labels are sorted): numerically when
 * every key is a finite number (equal values by their bytes), else by
 * byte order (UTF-8 code points). A total order on distinct keys, so
 * the coordinator and every worker that sorts the same set get the same
 * ranks. */
void mlk_strid_sort_keys(const char **keys, size_t n);

#endif
