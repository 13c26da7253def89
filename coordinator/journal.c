/* journal.c: see journal.h. One environment per process, opened after
 * any fork, mdb_reader_check at open, short read transactions.
 *
 * The committer thread (started by the first journal_commit_start) owns
 * every write transaction it runs from begin to commit, as LMDB wants: it
 * takes the batch the caller hands over (the ops array is moved, not
 * copied), writes, commits (LMDB's two fdatasyncs) and grows the map,
 * while the caller goes on queueing the next batch. The caller's thread
 * reads the journal only while no commit is in flight (journal_foreach
 * waits first), so a map growth never remaps under a reader. */
#include "journal.h"
#include "err.h"
#include "log.h"
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

enum { JOP_PUT = 0, JOP_DEL_PREFIX = 1, JOP_DEL = 2, JOP_SYNC = 3 /* key: a path to fsync */ };

typedef struct {
    char *key;
    void *data; /* JOP_PUT only */
    size_t len;
    int op;
} jop_t;

struct journal {
    MDB_env *env;
    MDB_dbi dbi;
    _Atomic size_t mapsize; /* grown by whichever thread commits */
    jop_t *ops;             /* the open batch: the caller's */
    size_t nops, cap;
    char error[256]; /* why the last commit failed */
    char *dir;
    uint64_t commits, records, bytes; /* of the batches written (journal_written) */
    /* the batch in flight: the committer's from journal_commit_start
     * until it says done, then the caller's again (reap) */
    jop_t *fops;
    size_t nfops, fcap;
    pthread_t thread;
    int has_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* go, done and quit change */
    int go, done, quit; /* under mu */
    int busy;           /* the caller's: handed over and not reaped yet */
    int frc;            /* the committer's result, read after done */
    double fsecs;       /* how long the commit took */
    char ferror[256];   /* the committer's error text */
    void (*notify)(void *);
    void *notify_arg;
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
size_t journal_mapsize(const journal_t *j) { return atomic_load(&((journal_t *)j)->mapsize); }

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
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
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

static void free_ops(jop_t *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ops[i].key);
        free(ops[i].data);
    }
}

static void clear_ops(journal_t *j)
{
    free_ops(j->ops, j->nops);
    j->nops = 0;
}

void journal_close(journal_t **pj)
{
    if (!pj || !*pj) return;
    journal_t *j = *pj;
    if (j->nops || j->busy) journal_commit(j);
    if (j->has_thread) {
        pthread_mutex_lock(&j->mu);
        j->quit = 1;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
    }
    clear_ops(j);
    free(j->ops);
    free_ops(j->fops, j->nfops);
    free(j->fops);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
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
int journal_sync_path(journal_t *j, const char *path) { return push(j, path, NULL, 0, JOP_SYNC, 0); }

size_t journal_pending(const journal_t *j) { return j->nops; }

void journal_written(const journal_t *j, uint64_t *commits, uint64_t *records, uint64_t *bytes)
{
    *commits = j->commits;
    *records = j->records;
    *bytes = j->bytes;
}

static int apply(const journal_t *j, MDB_txn *txn, const jop_t *ops, size_t nops)
{
    for (size_t i = 0; i < nops; i++) {
        const jop_t *op = &ops[i];
        int rc;
        if (op->op == JOP_SYNC) continue; /* done before the transaction (sync_paths) */
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

/* The files and directories the batch's records name, made durable
 * before the records are (journal_sync_path). */
static int sync_paths(const jop_t *ops, size_t nops, char *error, size_t errlen)
{
    for (size_t i = 0; i < nops; i++) {
        if (ops[i].op != JOP_SYNC) continue;
        int fd = open(ops[i].key, O_RDONLY | O_CLOEXEC);
        int rc = fd >= 0 ? fsync(fd) : -1;
        int e = errno;
        if (fd >= 0) close(fd);
        if (rc != 0) {
            snprintf(error, errlen, "cannot make %s durable before the records that name it: %s",
                     ops[i].key, strerror(e));
            return MLOPS_ESTORE;
        }
    }
    return 0;
}

/* Write ops in one transaction, growing the map on MDB_MAP_FULL: 0, or
 * (nothing written) MLOPS_EFULL / MLOPS_ESTORE with error filled. Runs
 * on the committer thread, or on the caller's when none is in flight. */
static int write_batch(journal_t *j, const jop_t *ops, size_t nops, char *error, size_t errlen)
{
    int src = sync_paths(ops, nops, error, errlen);
    if (src) return src;
    for (int tries = 0; tries < 8; tries++) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(j->env, NULL, 0, &txn);
        if (rc == 0) {
            rc = apply(j, txn, ops, nops);
            if (rc == 0) rc = mdb_txn_commit(txn);
            else mdb_txn_abort(txn);
        }
        if (rc == 0) {
            error[0] = 0;
            return 0;
        }
        if (rc != MDB_MAP_FULL) {
            /* the transaction was aborted: the file holds the last
             * committed batch, and this one stays queued for the next try */
            size_t need = 0;
            for (size_t i = 0; i < nops; i++) need += ops[i].len + strlen(ops[i].key);
            int full = rc == ENOSPC || rc == EDQUOT || (rc == EIO && disk_full(j, need));
            snprintf(error, errlen, "writing %zu records failed: %s", nops,
                     full ? "no space left on the device" : mdb_strerror(rc));
            return full ? MLOPS_EFULL : MLOPS_ESTORE;
        }
        size_t grown = atomic_load(&j->mapsize) * 2;
        atomic_store(&j->mapsize, grown);
        if ((rc = mdb_env_set_mapsize(j->env, grown)) != 0) {
            snprintf(error, errlen, "cannot grow its map to %zu MiB: %s", grown >> 20,
                     mdb_strerror(rc));
            return MLOPS_EFULL;
        }
        LOG_I("journal map grown to %zu MiB", grown >> 20);
    }
    snprintf(error, errlen, "map full at %zu MiB", atomic_load(&j->mapsize) >> 20);
    return MLOPS_EFULL;
}

static void count_written(journal_t *j, const jop_t *ops, size_t nops)
{
    j->commits++;
    for (size_t i = 0; i < nops; i++) {
        if (ops[i].op == JOP_SYNC) continue;
        j->records++;
        j->bytes += strlen(ops[i].key) + ops[i].len;
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *committer(void *arg)
{
    journal_t *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->go && !j->quit) pthread_cond_wait(&j->cv, &j->mu);
        if (!j->go) break; /* quit, nothing handed over */
        j->go = 0;
        pthread_mutex_unlock(&j->mu);
        double t0 = mono_s();
        int rc = write_batch(j, j->fops, j->nfops, j->ferror, sizeof j->ferror);
        double secs = mono_s() - t0;
        pthread_mutex_lock(&j->mu);
        j->frc = rc;
        j->fsecs = secs;
        j->done = 1;
        pthread_cond_broadcast(&j->cv);
        void (*notify)(void *) = j->notify;
        void *narg = j->notify_arg;
        pthread_mutex_unlock(&j->mu);
        /* outside the lock: the caller may be waiting on it meanwhile */
        if (notify) notify(narg);
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

void journal_set_notify(journal_t *j, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&j->mu);
    j->notify = fn;
    j->notify_arg = arg;
    pthread_mutex_unlock(&j->mu);
}

int journal_commit_busy(const journal_t *j) { return j->busy; }

int journal_commit_start(journal_t *j)
{
    if (j->busy) return MLOPS_EINVAL; /* one in flight at a time */
    if (!j->nops) return 0;
    if (!j->has_thread) {
        if (pthread_create(&j->thread, NULL, committer, j) != 0) {
            snprintf(j->error, sizeof j->error, "cannot start the committer thread: %s",
                     strerror(errno));
            return MLOPS_ESTORE;
        }
        j->has_thread = 1;
    }
    /* the open batch moves to the committer; the array it had is the
     * next open batch's (empty since its last reap) */
    jop_t *ops = j->fops;
    size_t cap = j->fcap;
    j->fops = j->ops;
    j->nfops = j->nops;
    j->fcap = j->cap;
    j->ops = ops;
    j->cap = cap;
    j->nops = 0;
    j->busy = 1;
    pthread_mutex_lock(&j->mu);
    j->done = 0;
    j->go = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return 1;
}

/* The batch in flight has been written (done): count it, or put it back
 * in front of the open batch when it failed, so the next commit writes
 * both in their order. */
static int reap(journal_t *j, double *secs)
{
    j->busy = 0;
    if (secs) *secs = j->fsecs;
    if (j->frc == 0) {
        count_written(j, j->fops, j->nfops);
        free_ops(j->fops, j->nfops);
        j->nfops = 0;
        return 0;
    }
    snprintf(j->error, sizeof j->error, "%s", j->ferror);
    size_t n = j->nfops + j->nops;
    if (n > j->fcap) {
        jop_t *o = realloc(j->fops, n * sizeof *o);
        if (!o) { /* keep them in flight's array: the next try reaps again */
            j->busy = 1;
            return j->frc;
        }
        j->fops = o;
        j->fcap = n;
    }
    if (j->nops) memcpy(j->fops + j->nfops, j->ops, j->nops * sizeof *j->ops);
    jop_t *ops = j->ops;
    size_t cap = j->cap;
    j->ops = j->fops;
    j->nops = n;
    j->cap = j->fcap;
    j->fops = ops;
    j->fcap = cap;
    j->nfops = 0;
    return j->frc;
}

int journal_commit_poll(journal_t *j, int *rc, double *secs)
{
    if (!j->busy) return 0;
    pthread_mutex_lock(&j->mu);
    int done = j->done;
    pthread_mutex_unlock(&j->mu);
    if (!done) return 0;
    *rc = reap(j, secs);
    return 1;
}

int journal_commit_wait(journal_t *j, int *rc, double *secs)
{
    if (!j->busy) return 0;
    pthread_mutex_lock(&j->mu);
    while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    *rc = reap(j, secs);
    return 1;
}

int journal_commit(journal_t *j)
{
    int rc = 0;
    /* a failed batch in flight comes back in front of the open one */
    if (journal_commit_wait(j, &rc, NULL) && j->busy) return rc;
    if (!j->nops) return 0;
    rc = write_batch(j, j->ops, j->nops, j->error, sizeof j->error);
    if (rc == 0) {
        count_written(j, j->ops, j->nops);
        clear_ops(j);
    }
    return rc;
}

int journal_foreach(journal_t *j, const char *prefix,
                    int (*cb)(const char *key, const void *data, size_t len, void *arg), void *arg)
{
    /* no read while a commit may grow (remap) the map */
    if (j->busy) {
        pthread_mutex_lock(&j->mu);
        while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
        pthread_mutex_unlock(&j->mu);
    }
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
