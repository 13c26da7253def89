/* journal.c: see journal.h. One environment per process, opened after
 * any fork, mdb_reader_check at open, short read transactions. */
#include "journal.h"
#include "err.h"
#include "log.h"
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

enum { JOP_PUT = 0, JOP_DEL_PREFIX = 1, JOP_DEL = 2 };

typedef struct {
    char *key;
    void *data; /* JOP_PUT only */
    size_t len;
    int op;
} jop_t;

struct journal {
    MDB_env *env;
    MDB_dbi dbi;
    size_t mapsize;
    jop_t *ops;
    size_t nops, cap;
    char error[256]; /* why the last commit failed */
    char *dir;
    uint64_t commits, records, bytes; /* of the batches written (journal_written) */
};

/* LMDB reports a full file system as EIO (a short pwrite of its dirty
 * pages) or ENOSPC: the file system's free space tells which. */
static int disk_full(const journal_t *j, size_t need)
{
    struct statvfs fs;
    if (statvfs(j->dir, &fs) != 0) return 0;
    uint64_t avail = (uint64_t)fs.f_bavail * fs.f_frsize;
    return avail < (uint64_t)need + (1u << 20);
}

const char *journal_error(const journal_t *j) { return j->error; }

journal_t *journal_open(const char *dir, char *err, size_t errlen)
{
    return journal_open_ex(dir, (size_t)1 << 30, err, errlen);
}

int journal_reader_check(journal_t *j)
{
    int dead = 0;
    if (mdb_reader_check(j->env, &dead) != 0) return 0;
    if (dead) LOG_I("journal: cleared %d reader slots left by dead processes", dead);
    return dead;
}
size_t journal_mapsize(const journal_t *j) { return j->mapsize; }

journal_t *journal_open_ex(const char *dir, size_t mapsize, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
        return NULL;
    }
    journal_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->mapsize = mapsize;
    j->dir = strdup(dir);
    if (!j->dir) {
        free(j);
        return NULL;
    }
    int rc = mdb_env_create(&j->env);
    if (rc == 0) rc = mdb_env_set_mapsize(j->env, j->mapsize);
    if (rc == 0) rc = mdb_env_open(j->env, dir, 0, 0644);
    if (rc != 0) {
        mlops_seterr(err, errlen, MLOPS_ESTORE, "%s: cannot open journal: %s", dir, mdb_strerror(rc));
        if (j->env) mdb_env_close(j->env);
        free(j->dir);
        free(j);
        return NULL;
    }
    journal_reader_check(j);
    MDB_envinfo info;
    if (mdb_env_info(j->env, &info) == 0 && info.me_mapsize > j->mapsize) j->mapsize = info.me_mapsize;
    MDB_txn *txn;
    rc = mdb_txn_begin(j->env, NULL, 0, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, NULL, 0, &j->dbi);
    if (rc == 0) rc = mdb_txn_commit(txn);
    if (rc != 0) {
        mlops_seterr(err, errlen, MLOPS_ESTORE, "%s: %s", dir, mdb_strerror(rc));
        mdb_env_close(j->env);
        free(j->dir);
        free(j);
        return NULL;
    }
    return j;
}

static void clear_ops(journal_t *j)
{
    for (size_t i = 0; i < j->nops; i++) {
        free(j->ops[i].key);
        free(j->ops[i].data);
    }
    j->nops = 0;
}

void journal_close(journal_t **pj)
{
    if (!pj || !*pj) return;
    journal_t *j = *pj;
    if (j->nops) journal_commit(j);
    clear_ops(j);
    free(j->ops);
    mdb_env_close(j->env);
    free(j->dir);
    free(j);
    *pj = NULL;
}

/* take: data is a malloc'd buffer the op keeps (freed on failure too) */
static int push(journal_t *j, const char *key, const void *data, size_t len, int kind, int take)
{
    if (j->nops == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 256;
        jop_t *o = realloc(j->ops, cap * sizeof *o);
        if (!o) {
            if (take) free((void *)data);
            return MLOPS_ENOMEM;
        }
        j->ops = o;
        j->cap = cap;
    }
    jop_t *op = &j->ops[j->nops];
    op->key = strdup(key);
    op->data = NULL;
    op->len = len;
    op->op = kind;
    if (kind == JOP_PUT && take) {
        op->data = (void *)data;
    } else if (kind == JOP_PUT) {
        op->data = malloc(len ? len : 1);
        if (op->data && len) memcpy(op->data, data, len);
    }
    if (!op->key || (kind == JOP_PUT && !op->data)) {
        free(op->key);
        free(op->data);
        return MLOPS_ENOMEM;
    }
    j->nops++;
    return 0;
}

int journal_put(journal_t *j, const char *key, const void *data, size_t len)
{
    return push(j, key, data, len, JOP_PUT, 0);
}

int journal_put_take(journal_t *j, const char *key, void *data, size_t len)
{
    return push(j, key, data, len, JOP_PUT, 1);
}

int journal_del_prefix(journal_t *j, const char *prefix) { return push(j, prefix, NULL, 0, JOP_DEL_PREFIX, 0); }
int journal_del(journal_t *j, const char *key) { return push(j, key, NULL, 0, JOP_DEL, 0); }

size_t journal_pending(const journal_t *j) { return j->nops; }

void journal_written(const journal_t *j, uint64_t *commits, uint64_t *records, uint64_t *bytes)
{
    *commits = j->commits;
    *records = j->records;
    *bytes = j->bytes;
}

static int apply(journal_t *j, MDB_txn *txn)
{
    for (size_t i = 0; i < j->nops; i++) {
        jop_t *op = &j->ops[i];
        int rc;
        if (op->op == JOP_PUT) {
            MDB_val k = {strlen(op->key), op->key}, v = {op->len, op->data};
            rc = mdb_put(txn, j->dbi, &k, &v, 0);
        } else if (op->op == JOP_DEL) {
            MDB_val k = {strlen(op->key), op->key};
            rc = mdb_del(txn, j->dbi, &k, NULL);
            if (rc == MDB_NOTFOUND) rc = 0;
        } else {
            MDB_cursor *cur;
            rc = mdb_cursor_open(txn, j->dbi, &cur);
            if (rc) return rc;
            size_t pl = strlen(op->key);
            MDB_val k = {pl, op->key}, v;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            while (rc == 0 && k.mv_size >= pl && !memcmp(k.mv_data, op->key, pl)) {
                rc = mdb_cursor_del(cur, 0);
                if (rc) break;
                rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
                if (rc == EINVAL) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            }
            mdb_cursor_close(cur);
            if (rc == MDB_NOTFOUND) rc = 0;
        }
        if (rc) return rc;
    }
    return 0;
}

int journal_commit(journal_t *j)
{
    if (!j->nops) return 0;
    for (int tries = 0; tries < 8; tries++) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
        if (rc == 0) {
            rc = apply(j, txn);
            if (rc == 0) rc = mdb_txn_commit(txn);
            else mdb_txn_abort(txn);
        }
        if (rc == 0) {
            j->commits++;
            for (size_t i = 0; i < j->nops; i++) {
                j->records++;
                j->bytes += strlen(j->ops[i].key) + j->ops[i].len;
            }
            clear_ops(j);
            j->error[0] = 0;
            return 0;
        }
        if (rc != MDB_MAP_FULL) {
            /* the transaction was aborted: the file holds the last
             * committed batch, and this one stays queued for the next try */
            size_t need = 0;
            for (size_t i = 0; i < j->nops; i++) need += j->ops[i].len + strlen(j->ops[i].key);
            int full = rc == ENOSPC || rc == EDQUOT || (rc == EIO && disk_full(j, need));
            snprintf(j->error, sizeof j->error, "writing %zu records failed: %s", j->nops,
                     full ? "no space left on the device" : mdb_strerror(rc));
            return full ? MLOPS_EFULL : MLOPS_ESTORE;
        }
        j->mapsize *= 2;
        if ((rc = mdb_env_set_mapsize(j->env, j->mapsize)) != 0) {
            snprintf(j->error, sizeof j->error, "cannot grow its map to %zu MiB: %s",
                     j->mapsize >> 20, mdb_strerror(rc));
            return MLOPS_EFULL;
        }
        LOG_I("journal map grown to %zu MiB", j->mapsize >> 20);
    }
    snprintf(j->error, sizeof j->error, "map full at %zu MiB", j->mapsize >> 20);
    return MLOPS_EFULL;
}

int journal_foreach(journal_t *j, const char *prefix,
                    int (*cb)(const char *key, const void *data, size_t len, void *arg), void *arg)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(j->env, NULL, MDB_RDONLY, &txn);
    if (rc) return MLOPS_ESTORE;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, j->dbi, &cur);
    if (rc) { mdb_txn_abort(txn); return MLOPS_ESTORE; }
    size_t pl = strlen(prefix);
    MDB_val k = {pl, (void *)prefix}, v;
    int out = 0;
    char key[512];
    rc = mdb_cursor_get(cur, &k, &v, pl ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && k.mv_size >= pl && !memcmp(k.mv_data, prefix, pl)) {
        size_t kl = k.mv_size < sizeof key - 1 ? k.mv_size : sizeof key - 1;
        memcpy(key, k.mv_data, kl);
        key[kl] = 0;
        if ((out = cb(key, v.mv_data, v.mv_size, arg)) != 0) break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return out;
}
