/* store.c: the LMDB store (see store.h).
 *
 * Why it looks like this:
 *  - Every write (a single put, a delete, a batch) is a list of operations
 *    applied by one function, run_ops(), in one write transaction. When
 *    LMDB says MDB_MAP_FULL the transaction is aborted, the map grown and
 *    the whole list replayed, so callers never see a full map. That is why
 *    a batch keeps its own copies of keys and values until commit.
 *  - mdb_env_set_mapsize() may only be called while this process has no
 *    transaction open. A rwlock makes that so: every transaction runs
 *    under the read side, growing takes the write side.
 *  - The journal is opened with LMDB's default full sync; a shard store
 *    with MDB_NOSYNC (the OS writes pages back when it likes; after a
 *    crash the shards are recomputed, never trusted).
 *  - A write transaction that dirties more pages than LMDB's dirty list
 *    holds (one value of about 256 MiB or more) spills pages, and LMDB
 *    0.9.24 (bookworm) never frees the spill list of a top-level
 *    transaction: 1 MiB leaks per such write, committed or aborted.
 *    Nothing here can free it. A shard a peer fetches must fit in a
 *    frame (MLOPS_MAX_FRAME) anyway, and the worker's kinds check the
 *    sizes their arguments ask for before they build them; only a shard
 *    that large written and read on one worker (a huge shard_rows)
 *    still meets the leak. */
#include "store.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct mlops_store {
    MDB_env *env;
    MDB_dbi dbi;
    int flags;
    size_t mapsize;         /* current map size, changed under the write lock */
    pthread_rwlock_t lock;  /* read: any transaction; write: resizing the map */
    char *dir;
    uint64_t serial;        /* this open's number in the process (snapshot ids) */
};

static _Atomic uint64_t store_serials;

enum { OP_PUT = 1, OP_DEL = 2, OP_DEL_PREFIX = 3 };

typedef struct {
    int kind;
    const char *key;
    size_t keylen;
    const void *data;
    size_t len;
    int must_exist; /* OP_DEL: report MLOPS_ENOTFOUND if the key is absent */
    int (*fill)(void *dst, size_t len, void *arg); /* OP_PUT: writes the value in place */
    void *arg;
    /* OP_PUT derived from the value at src (mlops_store_put_derived): plan
     * sizes it from src, then derive writes it in place */
    const char *src;
    size_t srclen;
    int (*plan)(const void *src, size_t srclen, size_t *len, void *arg);
    int (*derive)(void *dst, size_t len, const void *src, size_t srclen, void *arg);
} store_op;

struct mlops_store_batch {
    mlops_store_t *s;
    store_op *ops;
    size_t n, cap;
};

/* --- helpers ------------------------------------------------------------ */

/* Map an LMDB (or errno) code to an MLOPS_E* code, logging what failed. */
static int lmdb_code(const mlops_store_t *s, const char *what, int rc)
{
    switch (rc) {
    case 0: return 0;
    case MDB_NOTFOUND: return MLOPS_ENOTFOUND;
    case MDB_MAP_FULL: return MLOPS_EFULL;
    case ENOMEM: return MLOPS_ENOMEM;
    default:
        LOG_E("store %s: %s: %s", s ? s->dir : "?", what, mdb_strerror(rc));
        return MLOPS_ESTORE;
    }
}

/* A key must be a C string of 1..MLOPS_STORE_MAXKEY bytes. */
static int key_ok(const char *key, size_t *len)
{
    if (!key)
        return 0;
    size_t n = strnlen(key, MLOPS_STORE_MAXKEY + 1);
    if (n == 0 || n > MLOPS_STORE_MAXKEY)
        return 0;
    *len = n;
    return 1;
}

/* A prefix may be empty, but not longer than a key. */
static int prefix_ok(const char *prefix, size_t *len)
{
    if (!prefix)
        return 0;
    size_t n = strnlen(prefix, MLOPS_STORE_MAXKEY + 1);
    if (n > MLOPS_STORE_MAXKEY)
        return 0;
    *len = n;
    return 1;
}

/* mkdir -p; 0 or errno. */
static int mkdir_p(const char *dir)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p)
        return ENOMEM;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                return e;
            }
            p[i] = c;
        }
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static size_t page_round(size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t p = pg > 0 ? (size_t)pg : 4096;
    if (n > SIZE_MAX - p)
        return SIZE_MAX / p * p;
    return (n + p - 1) / p * p;
}

/* Grow the map after MDB_MAP_FULL: at least double it, and at least
 * twice `need` bytes more. Another thread may have grown it already
 * (seen != s->mapsize): then nothing to do. 0 or MLOPS_EFULL. */
static int grow_map(mlops_store_t *s, size_t seen, size_t need)
{
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    if (s->mapsize == seen) {
        if (seen >= MLOPS_STORE_MAX_MAPSIZE) {
            rc = MLOPS_EFULL;
        } else {
            size_t want = seen * 2;
            if (need > (MLOPS_STORE_MAX_MAPSIZE - seen) / 2)
                want = MLOPS_STORE_MAX_MAPSIZE;
            else if (seen + 2 * need > want)
                want = seen + 2 * need;
            if (want > MLOPS_STORE_MAX_MAPSIZE)
                want = MLOPS_STORE_MAX_MAPSIZE;
            want = page_round(want);
            int mrc = mdb_env_set_mapsize(s->env, want);
            if (mrc != 0) {
                rc = lmdb_code(s, "mdb_env_set_mapsize", mrc);
            } else {
                LOG_D("store %s: map grown from %zu to %zu bytes", s->dir, seen, want);
                s->mapsize = want;
            }
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* Another process grew the map (MDB_MAP_RESIZED): adopt its size. */
static int adopt_map(mlops_store_t *s)
{
    pthread_rwlock_wrlock(&s->lock);
    int rc = mdb_env_set_mapsize(s->env, 0);
    if (rc == 0) {
        MDB_envinfo info;
        if (mdb_env_info(s->env, &info) == 0)
            s->mapsize = info.me_mapsize;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc ? lmdb_code(s, "mdb_env_set_mapsize", rc) : 0;
}

/* Begin a transaction with the read lock held; on success the caller
 * must end the transaction and then unlock. *seen = map size at start. */
static int txn_begin_locked(mlops_store_t *s, unsigned flags, MDB_txn **txn, size_t *seen)
{
    for (int tries = 0; tries < 8; tries++) {
        pthread_rwlock_rdlock(&s->lock);
        if (seen)
            *seen = s->mapsize;
        int rc = mdb_txn_begin(s->env, NULL, flags, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&s->lock);
        if (rc != MDB_MAP_RESIZED)
            return lmdb_code(s, "mdb_txn_begin", rc);
        int arc = adopt_map(s);
        if (arc != 0)
            return arc;
    }
    return MLOPS_ESTORE;
}

/* Delete all keys starting with prefix inside txn. LMDB code. */
static int del_prefix_txn(mlops_store_t *s, MDB_txn *txn, const char *prefix, size_t plen)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->dbi, &cur);
    if (rc != 0)
        return rc;
    MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* LMDB reports a full file system as EIO (its pwrite of the dirty
 * pages fails) or ENOSPC: the file system's free space tells which. */
static int disk_full(const mlops_store_t *s, size_t need)
{
    struct statvfs fs;
    if (statvfs(s->dir, &fs) != 0) return 0;
    uint64_t avail = (uint64_t)fs.f_bavail * fs.f_frsize;
    return avail < (uint64_t)need + (1u << 20);
}

static void drop_mapped(const mlops_store_t *s, const void *data, size_t len);

/* Apply ops[0..n) in one write transaction, growing the map and
 * replaying on MDB_MAP_FULL. 0 or an MLOPS_E* code. */
static int run_ops(mlops_store_t *s, const store_op *ops, size_t n)
{
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        size_t add = ops[i].keylen + ops[i].len + 64;
        need = need > SIZE_MAX - add ? SIZE_MAX : need + add;
    }
    for (;;) {
        MDB_txn *txn;
        size_t seen;
        int rc = txn_begin_locked(s, 0, &txn, &seen);
        if (rc != 0)
            return rc;
        int notfound = 0, fill_rc = 0;
        const char *what = "mdb_put";
        for (size_t i = 0; i < n && rc == 0; i++) {
            const store_op *op = &ops[i];
            MDB_val k = {.mv_size = op->keylen, .mv_data = (void *)op->key};
            if (op->kind == OP_PUT && op->src) { /* read and written in this one transaction */
                MDB_val sk = {.mv_size = op->srclen, .mv_data = (void *)op->src}, sv, v;
                what = "mdb_get";
                if ((rc = mdb_get(txn, s->dbi, &sk, &sv)) == MDB_NOTFOUND) {
                    fill_rc = MLOPS_ENOTFOUND;
                    rc = 0;
                    break;
                }
                size_t len = 0;
                if (rc == 0 && (fill_rc = op->plan(sv.mv_data, sv.mv_size, &len, op->arg)) != 0) break;
                if (need < len + op->keylen + 64) need = len + op->keylen + 64; /* for a grow */
                v.mv_size = len;
                what = "mdb_put";
                if (rc == 0) rc = mdb_put(txn, s->dbi, &k, &v, MDB_RESERVE);
                if (rc == 0 && (fill_rc = op->derive(v.mv_data, len, sv.mv_data, sv.mv_size, op->arg)) != 0)
                    break;
                /* src's pages as a read drops them: they lie in the map, as src
                 * was committed before this transaction and this one writes
                 * only key (another key: mlops_store_put_derived), so none of
                 * them is a dirty copy (a large value's overflow pages are
                 * its own; drop_mapped leaves small ones alone) */
                if (rc == 0) drop_mapped(s, sv.mv_data, sv.mv_size);
            } else if (op->kind == OP_PUT) {
                MDB_val v = {.mv_size = op->len, .mv_data = (void *)op->data};
                what = "mdb_put";
                rc = mdb_put(txn, s->dbi, &k, &v, op->fill ? MDB_RESERVE : 0);
                if (rc == 0 && op->fill && (fill_rc = op->fill(v.mv_data, op->len, op->arg)) != 0)
                    break;
            } else if (op->kind == OP_DEL) {
                what = "mdb_del";
                rc = mdb_del(txn, s->dbi, &k, NULL);
                if (rc == MDB_NOTFOUND) {
                    rc = 0;
                    notfound |= op->must_exist;
                }
            } else {
                what = "delete prefix";
                rc = del_prefix_txn(s, txn, op->key, op->keylen);
            }
        }
        if (fill_rc != 0) { /* the caller's own failure: nothing written */
            mdb_txn_abort(txn);
            pthread_rwlock_unlock(&s->lock);
            return fill_rc;
        }
        if (rc == 0 && notfound) {
            /* Nothing changed; say so without a commit (and its fsync). */
            mdb_txn_abort(txn);
            pthread_rwlock_unlock(&s->lock);
            return MLOPS_ENOTFOUND;
        }
        if (rc == 0) {
            what = "mdb_txn_commit";
            rc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&s->lock);
        if (rc == MDB_MAP_FULL) {
            int grc = grow_map(s, seen, need);
            if (grc != 0) {
                LOG_E("store %s: map full at %zu bytes, cannot grow", s->dir, seen);
                return grc;
            }
            continue;
        }
        if ((rc == EIO || rc == ENOSPC) && disk_full(s, need)) {
            LOG_E("store %s: %s: no space left on the device", s->dir, what);
            return MLOPS_EFULL;
        }
        return lmdb_code(s, what, rc);
    }
}

/* --- open / close --------------------------------------------------------- */

mlops_store_t *mlops_store_open_ex(const char *dir, int flags, size_t mapsize, char *err,
                                   size_t errlen)
{
    if (!dir || !*dir) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "store: empty directory name");
        return NULL;
    }
    if (flags & ~MLOPS_STORE_DURABLE) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "store %s: unknown flags 0x%x", dir, flags);
        return NULL;
    }
    int e = mkdir_p(dir);
    if (e != 0) {
        mlops_seterr(err, errlen, MLOPS_EIO, "store %s: cannot create directory: %s", dir,
                     strerror(e));
        return NULL;
    }
    mlops_store_t *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "store %s: out of memory", dir);
        return NULL;
    }
    s->flags = flags;
    s->serial = ++store_serials;
    if (pthread_rwlock_init(&s->lock, NULL) != 0) {
        free(s->dir);
        free(s);
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "store %s: cannot create lock", dir);
        return NULL;
    }
    if (mapsize == 0)
        mapsize = MLOPS_STORE_DEFAULT_MAPSIZE;
    if (mapsize > MLOPS_STORE_MAX_MAPSIZE)
        mapsize = MLOPS_STORE_MAX_MAPSIZE;
    mapsize = page_round(mapsize);

    const char *what = "mdb_env_create";
    int rc = mdb_env_create(&s->env);
    if (rc == 0) {
        what = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(s->env, mapsize);
    }
    if (rc == 0) {
        /* Durable: LMDB's default, data and meta page fsync'd at commit.
         * Otherwise: no fsync at all; MDB_NOTLS lets a read transaction
         * live in any thread (we never keep one across calls anyway).
         * Not MDB_WRITEMAP: shards land on fresh pages of a sparse file,
         * and every write fault then zero-fills the page first (measured:
         * 26-43% of a worker's ingest time, against ~24% for pwrite()). */
        unsigned eflags = MDB_NOTLS;
        if (!(flags & MLOPS_STORE_DURABLE))
            eflags |= MDB_NOSYNC;
        what = "mdb_env_open";
        rc = mdb_env_open(s->env, dir, eflags, 0640);
    }
    if (rc == 0) {
        int dead = 0;
        what = "mdb_reader_check";
        rc = mdb_reader_check(s->env, &dead);
        if (rc == 0 && dead > 0)
            LOG_W("store %s: cleared %d stale reader slot(s)", dir, dead);
    }
    if (rc == 0) {
        MDB_envinfo info;
        what = "mdb_env_info";
        rc = mdb_env_info(s->env, &info);
        if (rc == 0)
            s->mapsize = info.me_mapsize; /* larger if the file already was */
    }
    if (rc == 0) {
        MDB_txn *txn;
        what = "mdb_txn_begin";
        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc == 0) {
            what = "mdb_dbi_open";
            rc = mdb_dbi_open(txn, NULL, 0, &s->dbi);
            if (rc == 0) {
                what = "mdb_txn_commit";
                rc = mdb_txn_commit(txn);
            } else {
                mdb_txn_abort(txn);
            }
        }
    }
    if (rc != 0) {
        mlops_seterr(err, errlen, rc == ENOMEM ? MLOPS_ENOMEM : MLOPS_ESTORE,
                     "store %s: %s: %s", dir, what, mdb_strerror(rc));
        if (s->env)
            mdb_env_close(s->env);
        pthread_rwlock_destroy(&s->lock);
        free(s->dir);
        free(s);
        return NULL;
    }
    return s;
}

mlops_store_t *mlops_store_open(const char *dir, int flags, char *err, size_t errlen)
{
    return mlops_store_open_ex(dir, flags, MLOPS_STORE_DEFAULT_MAPSIZE, err, errlen);
}

void mlops_store_close(mlops_store_t **ps)
{
    if (!ps || !*ps)
        return;
    mlops_store_t *s = *ps;
    if (!(s->flags & MLOPS_STORE_DURABLE)) {
        int rc = mdb_env_sync(s->env, 1);
        if (rc != 0)
            LOG_W("store %s: sync at close: %s", s->dir, mdb_strerror(rc));
    }
    mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->lock);
    free(s->dir);
    free(s);
    *ps = NULL;
}

size_t mlops_store_mapsize(mlops_store_t *s)
{
    if (!s)
        return 0;
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->mapsize;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

size_t mlops_store_used_bytes(mlops_store_t *s)
{
    if (!s)
        return 0;
    pthread_rwlock_rdlock(&s->lock);
    MDB_envinfo info;
    MDB_stat st;
    size_t n = 0;
    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &st) == 0)
        n = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

int mlops_store_sync(mlops_store_t *s)
{
    if (!s)
        return MLOPS_EINVAL;
    return lmdb_code(s, "mdb_env_sync", mdb_env_sync(s->env, 1));
}

/* --- single operations ------------------------------------------------------ */

int mlops_store_put(mlops_store_t *s, const char *key, const void *data, size_t len)
{
    store_op op = {.kind = OP_PUT, .key = key, .data = data, .len = len};
    if (!s || !key_ok(key, &op.keylen) || (!data && len))
        return MLOPS_EINVAL;
    if (!data)
        op.data = "";
    return run_ops(s, &op, 1);
}

int mlops_store_put_fill(mlops_store_t *s, const char *key, size_t len,
                         int (*fill)(void *dst, size_t len, void *arg), void *arg)
{
    store_op op = {.kind = OP_PUT, .key = key, .len = len, .fill = fill, .arg = arg};
    if (!s || !key_ok(key, &op.keylen) || !fill)
        return MLOPS_EINVAL;
    return run_ops(s, &op, 1);
}

int mlops_store_put_derived(mlops_store_t *s, const char *key, const char *src,
                            int (*plan)(const void *src, size_t srclen, size_t *len, void *arg),
                            int (*derive)(void *dst, size_t len, const void *src, size_t srclen,
                                          void *arg),
                            void *arg)
{
    store_op op = {.kind = OP_PUT, .key = key, .src = src, .plan = plan, .derive = derive, .arg = arg};
    /* src is read while key is written: the same key would free the
     * pages being read */
    if (!s || !key_ok(key, &op.keylen) || !key_ok(src, &op.srclen) || !plan || !derive ||
        !strcmp(key, src))
        return MLOPS_EINVAL;
    return run_ops(s, &op, 1);
}

int mlops_store_del(mlops_store_t *s, const char *key)
{
    store_op op = {.kind = OP_DEL, .key = key, .must_exist = 1};
    if (!s || !key_ok(key, &op.keylen))
        return MLOPS_EINVAL;
    return run_ops(s, &op, 1);
}

int mlops_store_del_prefix(mlops_store_t *s, const char *prefix)
{
    store_op op = {.kind = OP_DEL_PREFIX, .key = prefix};
    if (!s || !prefix_ok(prefix, &op.keylen))
        return MLOPS_EINVAL;
    return run_ops(s, &op, 1);
}

/* A shard read through the read-only map stays mapped in this process
 * and counts in its resident set, so a worker's RSS would grow with the
 * data it has read. Once a large value has been copied or decoded, its
 * whole pages are dropped from the mapping (not from the page cache: the
 * next read faults them back in). Only for the shard store: the journal
 * is small and read once. */
static void drop_mapped(const mlops_store_t *s, const void *data, size_t len)
{
    if ((s->flags & MLOPS_STORE_DURABLE) || len < (256u << 10)) return;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)data + pg - 1) & ~(pg - 1);
    uintptr_t b = ((uintptr_t)data + len) & ~(pg - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

int mlops_store_get(mlops_store_t *s, const char *key, void **data, size_t *len)
{
    size_t klen;
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (!s || !data || !len || !key_ok(key, &klen))
        return MLOPS_EINVAL;
    MDB_txn *txn;
    int rc = txn_begin_locked(s, MDB_RDONLY, &txn, NULL);
    if (rc != 0)
        return rc;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    int mrc = mdb_get(txn, s->dbi, &k, &v);
    if (mrc == 0) {
        /* Copy before the transaction ends: v points into the map. */
        void *copy = malloc(v.mv_size ? v.mv_size : 1);
        if (!copy) {
            rc = MLOPS_ENOMEM;
        } else {
            memcpy(copy, v.mv_data, v.mv_size);
            drop_mapped(s, v.mv_data, v.mv_size);
            *data = copy;
            *len = v.mv_size;
        }
    } else {
        rc = lmdb_code(s, "mdb_get", mrc);
    }
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int mlops_store_has(mlops_store_t *s, const char *key)
{
    size_t klen;
    if (!s || !key_ok(key, &klen))
        return MLOPS_EINVAL;
    MDB_txn *txn;
    int rc = txn_begin_locked(s, MDB_RDONLY, &txn, NULL);
    if (rc != 0)
        return rc;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    int mrc = mdb_get(txn, s->dbi, &k, &v);
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->lock);
    if (mrc == 0)
        return 1;
    if (mrc == MDB_NOTFOUND)
        return 0;
    return lmdb_code(s, "mdb_get", mrc);
}

typedef struct {
    int (*cb)(const char *key, const void *data, size_t len, void *arg);
    void *arg;
} plain_cb_t;

static int plain_cb(const char *key, const void *data, size_t len, uint64_t snap, void *arg)
{
    (void)snap;
    plain_cb_t *p = arg;
    return p->cb(key, data, len, p->arg);
}

int mlops_store_foreach(mlops_store_t *s, const char *prefix,
                        int (*cb)(const char *key, const void *data, size_t len, void *arg),
                        void *arg)
{
    if (!cb) return MLOPS_EINVAL;
    plain_cb_t p = {cb, arg};
    return mlops_store_foreach_snap(s, prefix, plain_cb, &p);
}

int mlops_store_foreach_snap(mlops_store_t *s, const char *prefix,
                             int (*cb)(const char *key, const void *data, size_t len, uint64_t snap, void *arg),
                             void *arg)
{
    size_t plen;
    if (!s || !cb || !prefix_ok(prefix, &plen))
        return MLOPS_EINVAL;
    MDB_txn *txn;
    int rc = txn_begin_locked(s, MDB_RDONLY, &txn, NULL);
    if (rc != 0)
        return rc;
    /* unique in the process: the transaction id of the last write seen
     * (LMDB's, from 0) with this open's number above it, so a store
     * closed and opened again (a test, a fuzzer), whose ids start over at
     * the same map address, never repeats one; never 0 */
    uint64_t snap = (s->serial << 40) + ((uint64_t)mdb_txn_id(txn) & (((uint64_t)1 << 40) - 1)) + 1;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi, &cur);
    if (mrc == 0) {
        MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix}, v;
        char kbuf[MLOPS_STORE_MAXKEY + 1];
        mrc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
        while (mrc == 0) {
            if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
                break;
            if (k.mv_size > MLOPS_STORE_MAXKEY) { /* not written by us: skip */
                mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
                continue;
            }
            memcpy(kbuf, k.mv_data, k.mv_size);
            kbuf[k.mv_size] = '\0';
            rc = cb(kbuf, v.mv_data, v.mv_size, snap, arg);
            drop_mapped(s, v.mv_data, v.mv_size);
            if (rc != 0)
                break;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = lmdb_code(s, "cursor walk", mrc);
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

typedef struct {
    char **keys;
    size_t n, cap;
} key_list;

static int list_cb(const char *key, const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    key_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **k = realloc(l->keys, cap * sizeof *k);
        if (!k)
            return MLOPS_ENOMEM;
        l->keys = k;
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key)))
        return MLOPS_ENOMEM;
    l->n++;
    return 0;
}

int mlops_store_list(mlops_store_t *s, const char *prefix, char ***keys, size_t *n)
{
    if (keys)
        *keys = NULL;
    if (n)
        *n = 0;
    if (!keys || !n)
        return MLOPS_EINVAL;
    key_list l = {0};
    int rc = mlops_store_foreach(s, prefix, list_cb, &l);
    if (rc != 0) {
        mlops_store_list_free(&l.keys, l.n);
        return rc;
    }
    *keys = l.keys;
    *n = l.n;
    return 0;
}

void mlops_store_list_free(char ***keys, size_t n)
{
    if (!keys || !*keys)
        return;
    for (size_t i = 0; i < n; i++)
        free((*keys)[i]);
    free(*keys);
    *keys = NULL;
}

/* --- batches ------------------------------------------------------------------ */

mlops_store_batch_t *mlops_store_batch_begin(mlops_store_t *s)
{
    if (!s)
        return NULL;
    mlops_store_batch_t *b = calloc(1, sizeof *b);
    if (b)
        b->s = s;
    return b;
}

/* Append an op, copying key (NUL-terminated) and data into one block. */
static int batch_add(mlops_store_batch_t *b, int kind, const char *key, size_t keylen,
                     const void *data, size_t len)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        store_op *ops = realloc(b->ops, cap * sizeof *ops);
        if (!ops)
            return MLOPS_ENOMEM;
        b->ops = ops;
        b->cap = cap;
    }
    if (len > SIZE_MAX - keylen - 1)
        return MLOPS_ENOMEM;
    char *blk = malloc(keylen + 1 + len);
    if (!blk)
        return MLOPS_ENOMEM;
    memcpy(blk, key, keylen);
    blk[keylen] = '\0';
    if (len)
        memcpy(blk + keylen + 1, data, len);
    b->ops[b->n++] = (store_op){
        .kind = kind, .key = blk, .keylen = keylen, .data = blk + keylen + 1, .len = len};
    return 0;
}

int mlops_store_batch_put(mlops_store_batch_t *b, const char *key, const void *data, size_t len)
{
    size_t klen;
    if (!b || !key_ok(key, &klen) || (!data && len))
        return MLOPS_EINVAL;
    return batch_add(b, OP_PUT, key, klen, data, len);
}

int mlops_store_batch_del(mlops_store_batch_t *b, const char *key)
{
    size_t klen;
    if (!b || !key_ok(key, &klen))
        return MLOPS_EINVAL;
    return batch_add(b, OP_DEL, key, klen, NULL, 0);
}

int mlops_store_batch_del_prefix(mlops_store_batch_t *b, const char *prefix)
{
    size_t plen;
    if (!b || !prefix_ok(prefix, &plen))
        return MLOPS_EINVAL;
    return batch_add(b, OP_DEL_PREFIX, prefix, plen, NULL, 0);
}

size_t mlops_store_batch_count(const mlops_store_batch_t *b)
{
    return b ? b->n : 0;
}

void mlops_store_batch_abort(mlops_store_batch_t **pb)
{
    if (!pb || !*pb)
        return;
    mlops_store_batch_t *b = *pb;
    for (size_t i = 0; i < b->n; i++)
        free((void *)b->ops[i].key); /* the block holding key and data */
    free(b->ops);
    free(b);
    *pb = NULL;
}

int mlops_store_batch_commit(mlops_store_batch_t **pb)
{
    if (!pb || !*pb)
        return MLOPS_EINVAL;
    mlops_store_batch_t *b = *pb;
    int rc = b->n ? run_ops(b->s, b->ops, b->n) : 0;
    mlops_store_batch_abort(pb);
    return rc;
}
