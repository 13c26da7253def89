/* store.h: a key/value store on one LMDB environment per process.
 *
 * Two uses, one API:
 *  - a worker's shard store: intermediate shards that can be recomputed,
 *    so commits are not fsync'd (MDB_NOSYNC) and speed wins;
 *  - the coordinator's journal (MLOPS_STORE_DURABLE): every commit is
 *    fsync'd before the call returns, so a state change written before it
 *    is acknowledged survives a crash of the process or the machine.
 *
 * Keys are NUL-terminated strings of 1..MLOPS_STORE_MAXKEY bytes, sorted
 * bytewise (so "job/7/" prefixes group a job's keys). Values are opaque
 * bytes of any size (tens of MB are fine). The map starts at a set size
 * and doubles transparently when LMDB reports MDB_MAP_FULL.
 *
 * Rules that come from LMDB:
 *  - open a store after any fork(), never before, and at most once per
 *    directory per process; local disks only;
 *  - values returned to the caller are always copies (mlops_store_get) or
 *    borrowed only for the duration of a callback (mlops_store_foreach);
 *  - a foreach callback must not write to the same store.
 *
 * All functions are safe to call from several threads on one store.
 * Errors: 0 or a negative MLOPS_E* code (common/err.h); LMDB's own error
 * text is logged. */
#ifndef MLOPS_STORE_H
#define MLOPS_STORE_H
#include <stddef.h>
#include <stdint.h>

typedef struct mlops_store mlops_store_t;
typedef struct mlops_store_batch mlops_store_batch_t;

#define MLOPS_STORE_DURABLE 1 /* fsync each commit (journal) */

#define MLOPS_STORE_MAXKEY 511                       /* LMDB's default key limit */
#define MLOPS_STORE_DEFAULT_MAPSIZE ((size_t)1 << 30) /* 1 GiB to start */
#define MLOPS_STORE_MAX_MAPSIZE ((size_t)1 << 40)     /* growth stops at 1 TiB */

/* Open (creating with mkdir -p if needed) the store in directory `dir`.
 * flags: 0 (fast, not synced) or MLOPS_STORE_DURABLE. Stale reader slots
 * left by dead processes are cleared. The initial map is
 * MLOPS_STORE_DEFAULT_MAPSIZE, or larger if the existing data file is.
 * Returns NULL with a one-line message in err on failure. */
mlops_store_t *mlops_store_open(const char *dir, int flags, char *err, size_t errlen);

/* As mlops_store_open, with the initial map size in bytes (rounded up to
 * the page size; tests use a small map to exercise growth). */
mlops_store_t *mlops_store_open_ex(const char *dir, int flags, size_t mapsize, char *err,
                                   size_t errlen);

/* Close the store and set *ps to NULL. Safe with NULL or *ps == NULL.
 * A non-durable store is flushed to disk first (best effort). */
void mlops_store_close(mlops_store_t **ps);

/* Current map size in bytes (grows on demand). */
size_t mlops_store_mapsize(mlops_store_t *s);
/* Bytes of the map in use (pages up to the last one written), the size
 * the store takes on disk; safe from any thread. */
size_t mlops_store_used_bytes(mlops_store_t *s);

/* Force the data of a non-durable store to disk. 0 or MLOPS_ESTORE. */
int mlops_store_sync(mlops_store_t *s);

/* Store `len` bytes at `key`, replacing any old value; one committed
 * transaction. 0, MLOPS_EINVAL (bad key), MLOPS_EFULL (map cannot grow, or the disk is full),
 * MLOPS_ESTORE. */
int mlops_store_put(mlops_store_t *s, const char *key, const void *data, size_t len);

/* mlops_store_put of a value `len` bytes long that fill(dst, len, arg)
 * writes straight into the store's reserved space (MDB_RESERVE): no
 * copy of it is made first. fill may run more than once (the map grown
 * and the write replayed) and must write every byte; a non-zero return
 * aborts the write and is returned. dst is valid only during the call. */
int mlops_store_put_fill(mlops_store_t *s, const char *key, size_t len,
                         int (*fill)(void *dst, size_t len, void *arg), void *arg);

/* A value derived from the value at `src`, read and written in one write
 * transaction, so that neither is copied first and no read transaction
 * is open around the write (a write inside mlops_store_foreach's read
 * could deadlock on growing the map): plan(src, srclen, &len, arg) says
 * the new value's size, then derive(dst, len, src, srclen, arg) writes
 * all of it into the reserved space. Both may run more than once (the
 * map grown and the write replayed: plan must start over) and see src
 * only during the call. MLOPS_ENOTFOUND when `src` is not stored
 * (nothing written, neither called); a non-zero return of plan or
 * derive aborts the write and is returned; else as mlops_store_put. */
int mlops_store_put_derived(mlops_store_t *s, const char *key, const char *src,
                            int (*plan)(const void *src, size_t srclen, size_t *len, void *arg),
                            int (*derive)(void *dst, size_t len, const void *src, size_t srclen,
                                          void *arg),
                            void *arg);

/* A malloc'd copy of the value at `key` in *data (free() it) and its size
 * in *len. MLOPS_ENOTFOUND if absent (then *data = NULL, *len = 0). */
int mlops_store_get(mlops_store_t *s, const char *key, void **data, size_t *len);

/* 1 if `key` is present, 0 if not, negative code on error. */
int mlops_store_has(mlops_store_t *s, const char *key);

/* Delete `key`. 0, or MLOPS_ENOTFOUND if it was absent. */
int mlops_store_del(mlops_store_t *s, const char *key);

/* Delete every key that starts with `prefix` ("" deletes everything) in
 * one transaction. 0 (also when nothing matched) or a negative code. */
int mlops_store_del_prefix(mlops_store_t *s, const char *prefix);

/* The keys starting with `prefix`, sorted bytewise, as a malloc'd array
 * of malloc'd strings in *keys (free with mlops_store_list_free) and
 * their count in *n. An empty result is *keys = NULL, *n = 0. */
int mlops_store_list(mlops_store_t *s, const char *prefix, char ***keys, size_t *n);

/* Free a list returned by mlops_store_list and set *keys to NULL. */
void mlops_store_list_free(char ***keys, size_t n);

/* Call cb for each key starting with `prefix`, in sorted order, inside
 * one read transaction (a consistent snapshot). `data` is valid only
 * during the call. A non-zero return from cb stops the walk and is
 * returned; otherwise 0 or a negative code. */
int mlops_store_foreach(mlops_store_t *s, const char *prefix,
                        int (*cb)(const char *key, const void *data, size_t len, void *arg),
                        void *arg);

/* mlops_store_foreach, cb also given the snapshot's id (LMDB's
 * transaction id of the last write it sees, with the store's open
 * counted in the process above it; never 0): two calls that see the
 * same id see the same bytes at the same addresses, so what was checked
 * of a value under one id holds under it (worker/packed_cache.c). */
int mlops_store_foreach_snap(mlops_store_t *s, const char *prefix,
                             int (*cb)(const char *key, const void *data, size_t len, uint64_t snap, void *arg),
                             void *arg);

/* --- batches: several writes in ONE transaction (group commit) --------
 * A batch records puts and deletes (copying keys and values) and applies
 * them all at once, in order, at commit: either all are stored or none.
 * In a durable store the whole batch costs one fsync. */

/* A new empty batch for store s, NULL on allocation failure. */
mlops_store_batch_t *mlops_store_batch_begin(mlops_store_t *s);

/* Record a put of `len` bytes at `key` (the bytes are copied).
 * 0, MLOPS_EINVAL (bad key) or MLOPS_ENOMEM. */
int mlops_store_batch_put(mlops_store_batch_t *b, const char *key, const void *data, size_t len);

/* Record a delete of `key`; a key that is absent at commit is ignored. */
int mlops_store_batch_del(mlops_store_batch_t *b, const char *key);

/* Record a delete of every key starting with `prefix`. */
int mlops_store_batch_del_prefix(mlops_store_batch_t *b, const char *prefix);

/* Number of operations recorded so far. */
size_t mlops_store_batch_count(const mlops_store_batch_t *b);

/* Apply the batch in one transaction, free it and set *pb to NULL
 * (whatever the result). 0 or a negative code; on error nothing of the
 * batch is stored. An empty batch commits trivially. */
int mlops_store_batch_commit(mlops_store_batch_t **pb);

/* Drop the batch without writing anything; sets *pb to NULL. */
void mlops_store_batch_abort(mlops_store_batch_t **pb);

#endif
