/* test_store.c: the LMDB store (common/store.h): round trips, map growth
 * with big values from a small initial map, prefix list/delete, batches,
 * persistence across reopen, and crash safety of the durable mode (a
 * child process writes and dies without closing; the parent finds the
 * data). Every test works in its own fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "store.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup_dir(void **state)
{
    char *dir = strdup("/tmp/mlops_test_store_XXXXXX");
    if (!dir || !mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    char *dir = *state;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return 0;
}

/* A store in a subdirectory that does not exist yet (checks mkdir -p). */
static mlops_store_t *open_sub(const char *dir, const char *sub, int flags, size_t mapsize)
{
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mlops_store_t *s = mlops_store_open_ex(path, flags, mapsize, err, sizeof err);
    if (!s)
        print_error("open %s: %s\n", path, err);
    return s;
}

static void test_round_trip(void **state)
{
    mlops_store_t *s = open_sub(*state, "a/b/c", 0, 0);
    assert_non_null(s);
    assert_int_equal(mlops_store_put(s, "k1", "hello", 5), 0);
    assert_int_equal(mlops_store_put(s, "k2", "", 0), 0);
    assert_int_equal(mlops_store_has(s, "k1"), 1);
    assert_int_equal(mlops_store_has(s, "nope"), 0);

    void *d;
    size_t n;
    assert_int_equal(mlops_store_get(s, "k1", &d, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(d, "hello", 5);
    free(d);
    assert_int_equal(mlops_store_get(s, "k2", &d, &n), 0);
    assert_int_equal(n, 0);
    free(d);

    /* replace */
    assert_int_equal(mlops_store_put(s, "k1", "bye", 3), 0);
    assert_int_equal(mlops_store_get(s, "k1", &d, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(d, "bye", 3);
    free(d);

    assert_int_equal(mlops_store_get(s, "nope", &d, &n), MLOPS_ENOTFOUND);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_int_equal(mlops_store_del(s, "k1"), 0);
    assert_int_equal(mlops_store_del(s, "k1"), MLOPS_ENOTFOUND);
    assert_int_equal(mlops_store_has(s, "k1"), 0);

    /* bad keys and arguments are refused, not crashed on */
    char longkey[MLOPS_STORE_MAXKEY + 2];
    memset(longkey, 'x', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(mlops_store_put(s, "", "x", 1), MLOPS_EINVAL);
    assert_int_equal(mlops_store_put(s, NULL, "x", 1), MLOPS_EINVAL);
    assert_int_equal(mlops_store_put(s, longkey, "x", 1), MLOPS_EINVAL);
    assert_int_equal(mlops_store_put(s, "k", NULL, 4), MLOPS_EINVAL);
    assert_int_equal(mlops_store_get(s, longkey, &d, &n), MLOPS_EINVAL);
    assert_int_equal(mlops_store_put(NULL, "k", "x", 1), MLOPS_EINVAL);
    longkey[MLOPS_STORE_MAXKEY] = '\0'; /* exactly the limit: accepted */
    assert_int_equal(mlops_store_put(s, longkey, "x", 1), 0);
    assert_int_equal(mlops_store_has(s, longkey), 1);

    mlops_store_close(&s);
    assert_null(s);
    mlops_store_close(&s); /* twice is harmless */
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static void test_big_values_grow_map(void **state)
{
    const size_t small = 1 << 20; /* 1 MiB start */
    mlops_store_t *s = open_sub(*state, "big", 0, small);
    assert_non_null(s);
    assert_true(mlops_store_mapsize(s) < 2 * small);

    const size_t big = 64u << 20;
    unsigned char *buf = malloc(big);
    assert_non_null(buf);
    fill_pattern(buf, big, 7);
    assert_int_equal(mlops_store_put(s, "shard/0", buf, big), 0);
    assert_true(mlops_store_mapsize(s) >= big);

    /* several medium values on top: more growth, all still readable */
    for (unsigned i = 1; i <= 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "shard/%u", i);
        fill_pattern(buf, 8u << 20, i + 100);
        assert_int_equal(mlops_store_put(s, key, buf, 8u << 20), 0);
    }
    void *d;
    size_t n;
    assert_int_equal(mlops_store_get(s, "shard/0", &d, &n), 0);
    assert_int_equal(n, big);
    fill_pattern(buf, big, 7);
    assert_memory_equal(d, buf, big);
    free(d);
    assert_int_equal(mlops_store_get(s, "shard/3", &d, &n), 0);
    assert_int_equal(n, 8u << 20);
    fill_pattern(buf, 8u << 20, 103);
    assert_memory_equal(d, buf, 8u << 20);
    free(d);
    mlops_store_close(&s);

    /* reopen with the small size: the file's larger map is adopted */
    s = open_sub(*state, "big", 0, small);
    assert_non_null(s);
    assert_true(mlops_store_mapsize(s) >= big);
    assert_int_equal(mlops_store_get(s, "shard/4", &d, &n), 0);
    fill_pattern(buf, 8u << 20, 104);
    assert_int_equal(n, 8u << 20);
    assert_memory_equal(d, buf, 8u << 20);
    free(d);
    /* deleting the big ones frees pages for reuse */
    assert_int_equal(mlops_store_del_prefix(s, "shard/"), 0);
    assert_int_equal(mlops_store_has(s, "shard/0"), 0);
    mlops_store_close(&s);
    free(buf);
}

static const char *const KEYS[] = {"job/1/a", "job/1/b", "job/10/x", "job/2/a", "jobx", "z"};

static void put_keys(mlops_store_t *s)
{
    /* out of order on purpose: the store sorts */
    for (size_t i = sizeof KEYS / sizeof *KEYS; i-- > 0;)
        assert_int_equal(mlops_store_put(s, KEYS[i], KEYS[i], strlen(KEYS[i])), 0);
}

/* mlops_store_put_fill: the value is written in the store's reserved
 * space (16 MiB into a 1 MiB map: grown first, or replayed whole), and
 * a fill that fails leaves the old value and returns its code. */
typedef struct {
    size_t calls;
    unsigned seed;
    int fail;
} fill_arg;

static int fill_fn(void *dst, size_t len, void *arg)
{
    fill_arg *a = arg;
    a->calls++;
    if (a->fail) return a->fail;
    fill_pattern(dst, len, a->seed);
    return 0;
}

static void test_put_fill(void **state)
{
    mlops_store_t *s = open_sub(*state, "fill", 0, 1 << 20);
    assert_non_null(s);
    const size_t big = 16u << 20; /* beyond the 1 MiB map: grown and replayed */
    unsigned char *want = malloc(big);
    assert_non_null(want);
    fill_arg a = {0, 3, 0};
    assert_int_equal(mlops_store_put_fill(s, "shard/f", big, fill_fn, &a), 0);
    assert_true(a.calls >= 1);
    void *d;
    size_t n;
    assert_int_equal(mlops_store_get(s, "shard/f", &d, &n), 0);
    fill_pattern(want, big, 3);
    assert_int_equal(n, big);
    assert_memory_equal(d, want, big);
    free(d);
    a = (fill_arg){0, 4, MLOPS_ENOMEM};
    assert_int_equal(mlops_store_put_fill(s, "shard/f", 100, fill_fn, &a), MLOPS_ENOMEM);
    assert_int_equal(a.calls, 1);
    assert_int_equal(mlops_store_get(s, "shard/f", &d, &n), 0);
    assert_int_equal(n, big);
    assert_memory_equal(d, want, big);
    free(d);
    a = (fill_arg){0, 5, 0};
    assert_int_equal(mlops_store_put_fill(s, "shard/e", 0, fill_fn, &a), 0);
    assert_int_equal(mlops_store_get(s, "shard/e", &d, &n), 0);
    assert_int_equal(n, 0);
    free(d);
    assert_int_equal(mlops_store_put_fill(s, "shard/x", 8, NULL, NULL), MLOPS_EINVAL);
    free(want);
    mlops_store_close(&s);
}

/* mlops_store_put_derived: the new value is planned and written from the
 * stored source in one write transaction (16 MiB derived into a 1 MiB
 * map: replayed after the map grew, the plan starting over); a missing
 * source writes nothing and calls neither; a failing plan or derive
 * leaves the old value and returns its code; the source's pages, dropped
 * from the mapping after the read, read back the same. */
typedef struct {
    size_t plans, derives;
    int fail_plan, fail_derive;
} derive_arg;

static int plan_fn(const void *src, size_t srclen, size_t *len, void *arg)
{
    derive_arg *a = arg;
    (void)src;
    a->plans++;
    *len = srclen * 2;
    return a->fail_plan;
}

static int derive_fn(void *dst, size_t len, const void *src, size_t srclen, void *arg)
{
    derive_arg *a = arg;
    a->derives++;
    if (a->fail_derive) return a->fail_derive;
    assert_int_equal(len, srclen * 2);
    memcpy(dst, src, srclen); /* the source, then its bytes inverted */
    for (size_t i = 0; i < srclen; i++) ((unsigned char *)dst)[srclen + i] = (unsigned char)~((const unsigned char *)src)[i];
    return 0;
}

static void test_put_derived(void **state)
{
    mlops_store_t *s = open_sub(*state, "derived", 0, 1 << 20);
    assert_non_null(s);
    const size_t half = 8u << 20;
    unsigned char *src = malloc(half);
    assert_non_null(src);
    fill_pattern(src, half, 9);
    assert_int_equal(mlops_store_put(s, "shard/src", src, half), 0);
    derive_arg a = {0};
    assert_int_equal(mlops_store_put_derived(s, "shard/out", "shard/src", plan_fn, derive_fn, &a), 0);
    assert_true(a.plans >= 1);
    assert_true(a.derives >= 1 && a.plans >= a.derives); /* a replay plans again */
    void *d;
    size_t n;
    assert_int_equal(mlops_store_get(s, "shard/out", &d, &n), 0);
    assert_int_equal(n, 2 * half);
    assert_memory_equal(d, src, half);
    for (size_t i = 0; i < half; i++) assert_int_equal(((unsigned char *)d)[half + i], (unsigned char)~src[i]);
    free(d);
    /* the source is untouched */
    assert_int_equal(mlops_store_get(s, "shard/src", &d, &n), 0);
    assert_int_equal(n, half);
    assert_memory_equal(d, src, half);
    free(d);
    /* no source: nothing written, nothing called */
    a = (derive_arg){0};
    assert_int_equal(mlops_store_put_derived(s, "shard/none", "shard/gone", plan_fn, derive_fn, &a),
                     MLOPS_ENOTFOUND);
    assert_int_equal(a.plans + a.derives, 0);
    assert_int_equal(mlops_store_has(s, "shard/none"), 0);
    /* a failing plan or derive: its code, the old value kept */
    a = (derive_arg){.fail_plan = 1};
    assert_int_equal(mlops_store_put_derived(s, "shard/out", "shard/src", plan_fn, derive_fn, &a), 1);
    assert_int_equal(a.derives, 0);
    a = (derive_arg){.fail_derive = 2};
    assert_int_equal(mlops_store_put_derived(s, "shard/out", "shard/src", plan_fn, derive_fn, &a), 2);
    assert_int_equal(mlops_store_get(s, "shard/out", &d, &n), 0);
    assert_int_equal(n, 2 * half);
    assert_memory_equal(d, src, half);
    free(d);
    assert_int_equal(mlops_store_put_derived(s, "shard/x", "shard/src", NULL, derive_fn, &a), MLOPS_EINVAL);
    assert_int_equal(mlops_store_put_derived(s, "shard/x", "", plan_fn, derive_fn, &a), MLOPS_EINVAL);
    /* a value derived from itself would free the pages being read */
    assert_int_equal(mlops_store_put_derived(s, "shard/src", "shard/src", plan_fn, derive_fn, &a), MLOPS_EINVAL);
    free(src);
    mlops_store_close(&s);
}

static void test_prefix_list_del(void **state)
{
    mlops_store_t *s = open_sub(*state, "p", 0, 0);
    assert_non_null(s);
    put_keys(s);

    char **keys;
    size_t n;
    assert_int_equal(mlops_store_list(s, "job/1", &keys, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(keys[0], "job/1/a");
    assert_string_equal(keys[1], "job/1/b");
    assert_string_equal(keys[2], "job/10/x");
    mlops_store_list_free(&keys, n);
    assert_null(keys);

    assert_int_equal(mlops_store_list(s, "", &keys, &n), 0);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(keys[i], KEYS[i]);
    mlops_store_list_free(&keys, n);

    assert_int_equal(mlops_store_list(s, "nothing/", &keys, &n), 0);
    assert_int_equal(n, 0);
    assert_null(keys);

    assert_int_equal(mlops_store_del_prefix(s, "job/1/"), 0);
    assert_int_equal(mlops_store_list(s, "job/", &keys, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "job/10/x");
    assert_string_equal(keys[1], "job/2/a");
    mlops_store_list_free(&keys, n);
    assert_int_equal(mlops_store_del_prefix(s, "none/"), 0);
    assert_int_equal(mlops_store_del_prefix(s, ""), 0);
    assert_int_equal(mlops_store_list(s, "", &keys, &n), 0);
    assert_int_equal(n, 0);
    mlops_store_close(&s);
}

typedef struct {
    size_t seen;
    size_t bytes;
    size_t stop_after;
} walk_state;

static int walk_cb(const char *key, const void *data, size_t len, void *arg)
{
    walk_state *w = arg;
    /* each value is its own key */
    if (len != strlen(key) || memcmp(data, key, len) != 0)
        return -100;
    w->seen++;
    w->bytes += len;
    return w->seen == w->stop_after ? 42 : 0;
}

static void test_foreach(void **state)
{
    mlops_store_t *s = open_sub(*state, "f", 0, 0);
    assert_non_null(s);
    put_keys(s);
    walk_state w = {0};
    assert_int_equal(mlops_store_foreach(s, "job/", walk_cb, &w), 0);
    assert_int_equal(w.seen, 4);
    w = (walk_state){.stop_after = 2};
    assert_int_equal(mlops_store_foreach(s, "", walk_cb, &w), 42);
    assert_int_equal(w.seen, 2);
    assert_int_equal(mlops_store_foreach(s, "", NULL, &w), MLOPS_EINVAL);
    mlops_store_close(&s);
}

static void test_batch(void **state)
{
    mlops_store_t *s = open_sub(*state, "b", MLOPS_STORE_DURABLE, 1 << 20);
    assert_non_null(s);
    assert_int_equal(mlops_store_put(s, "old/1", "x", 1), 0);
    assert_int_equal(mlops_store_put(s, "old/2", "y", 1), 0);

    /* aborted: nothing happens */
    mlops_store_batch_t *b = mlops_store_batch_begin(s);
    assert_non_null(b);
    assert_int_equal(mlops_store_batch_put(b, "new/1", "a", 1), 0);
    assert_int_equal(mlops_store_batch_del(b, "old/1"), 0);
    assert_int_equal(mlops_store_batch_count(b), 2);
    mlops_store_batch_abort(&b);
    assert_null(b);
    assert_int_equal(mlops_store_has(s, "new/1"), 0);
    assert_int_equal(mlops_store_has(s, "old/1"), 1);

    /* committed: all, in order; a missing key's delete is not an error;
     * the values are copied at record time (buffer reused after). */
    b = mlops_store_batch_begin(s);
    char buf[16];
    for (int i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof key, "task/%03d", i);
        snprintf(buf, sizeof buf, "v%d", i);
        assert_int_equal(mlops_store_batch_put(b, key, buf, strlen(buf)), 0);
    }
    memset(buf, 0, sizeof buf);
    assert_int_equal(mlops_store_batch_del_prefix(b, "old/"), 0);
    assert_int_equal(mlops_store_batch_del(b, "absent"), 0);
    assert_int_equal(mlops_store_batch_put(b, "task/000", "again", 5), 0);
    assert_int_equal(mlops_store_batch_put(b, "", "bad", 3), MLOPS_EINVAL);
    assert_int_equal(mlops_store_batch_commit(&b), 0);
    assert_null(b);
    assert_int_equal(mlops_store_has(s, "old/1"), 0);
    assert_int_equal(mlops_store_has(s, "old/2"), 0);
    void *d;
    size_t n;
    assert_int_equal(mlops_store_get(s, "task/000", &d, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(d, "again", 5);
    free(d);
    assert_int_equal(mlops_store_get(s, "task/057", &d, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(d, "v57", 3);
    free(d);

    /* a batch larger than the map: grown and replayed as one transaction */
    size_t before = mlops_store_mapsize(s);
    b = mlops_store_batch_begin(s);
    unsigned char *big = malloc(1 << 20);
    assert_non_null(big);
    for (unsigned i = 0; i < 6; i++) {
        char key[32];
        snprintf(key, sizeof key, "blob/%u", i);
        fill_pattern(big, 1 << 20, i);
        assert_int_equal(mlops_store_batch_put(b, key, big, 1 << 20), 0);
    }
    assert_int_equal(mlops_store_batch_commit(&b), 0);
    assert_true(mlops_store_mapsize(s) > before);
    assert_int_equal(mlops_store_get(s, "blob/5", &d, &n), 0);
    fill_pattern(big, 1 << 20, 5);
    assert_int_equal(n, 1 << 20);
    assert_memory_equal(d, big, n);
    free(d);
    free(big);

    /* empty batch, and NULL handling */
    b = mlops_store_batch_begin(s);
    assert_int_equal(mlops_store_batch_commit(&b), 0);
    assert_int_equal(mlops_store_batch_commit(&b), MLOPS_EINVAL);
    mlops_store_batch_abort(&b);
    assert_null(mlops_store_batch_begin(NULL));
    mlops_store_close(&s);
}

static void test_reopen_persists(void **state)
{
    mlops_store_t *s = open_sub(*state, "r", 0, 0);
    assert_non_null(s);
    put_keys(s);
    mlops_store_close(&s);
    s = open_sub(*state, "r", 0, 0);
    assert_non_null(s);
    char **keys;
    size_t n;
    assert_int_equal(mlops_store_list(s, "", &keys, &n), 0);
    assert_int_equal(n, 6);
    mlops_store_list_free(&keys, n);
    void *d;
    size_t len;
    assert_int_equal(mlops_store_get(s, "job/2/a", &d, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(d, "job/2/a", 7);
    free(d);
    mlops_store_close(&s);
}

/* Durable mode: a child opens the journal, writes with single puts and a
 * batch, then dies abruptly (SIGKILL, no close, no atexit, no flush)
 * after each commit returned. The parent reopens: everything is there. */
static void test_durable_crash(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/journal", (char *)*state);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        mlops_store_t *s = mlops_store_open(path, MLOPS_STORE_DURABLE, err, sizeof err);
        if (!s)
            _exit(2);
        for (int i = 0; i < 50; i++) {
            char key[32], val[32];
            snprintf(key, sizeof key, "job/%02d", i);
            snprintf(val, sizeof val, "state=%d", i);
            if (mlops_store_put(s, key, val, strlen(val)) != 0)
                _exit(3);
        }
        mlops_store_batch_t *b = mlops_store_batch_begin(s);
        if (!b || mlops_store_batch_put(b, "task/1", "done", 4) != 0 ||
            mlops_store_batch_del(b, "job/00") != 0 || mlops_store_batch_commit(&b) != 0)
            _exit(4);
        /* Started but never committed: must not appear. */
        b = mlops_store_batch_begin(s);
        if (!b || mlops_store_batch_put(b, "task/2", "lost", 4) != 0)
            _exit(5);
        kill(getpid(), SIGKILL);
        _exit(6);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);

    char err[256] = "";
    mlops_store_t *s = mlops_store_open(path, MLOPS_STORE_DURABLE, err, sizeof err);
    assert_non_null(s);
    char **keys;
    size_t n;
    assert_int_equal(mlops_store_list(s, "job/", &keys, &n), 0);
    assert_int_equal(n, 49);
    assert_string_equal(keys[0], "job/01");
    mlops_store_list_free(&keys, n);
    void *d;
    size_t len;
    assert_int_equal(mlops_store_get(s, "job/49", &d, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(d, "state=49", 8);
    free(d);
    assert_int_equal(mlops_store_has(s, "task/1"), 1);
    assert_int_equal(mlops_store_has(s, "task/2"), 0);
    /* still writable after the crash (stale reader/writer state cleared) */
    assert_int_equal(mlops_store_put(s, "after", "1", 1), 0);
    mlops_store_close(&s);
}

/* Several threads writing and reading one store while the map grows
 * under them (from 1 MiB): every value written is read back intact. */
typedef struct {
    mlops_store_t *s;
    unsigned id;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    enum { N = 60, SZ = 64 << 10 };
    unsigned char *buf = malloc(SZ);
    if (!buf) {
        w->failures++;
        return NULL;
    }
    for (unsigned i = 0; i < N; i++) {
        char key[48];
        snprintf(key, sizeof key, "t%u/%03u", w->id, i);
        fill_pattern(buf, SZ, w->id * 1000 + i);
        if (mlops_store_put(w->s, key, buf, SZ) != 0)
            w->failures++;
        if (i % 7 == 0) { /* read an earlier one back */
            snprintf(key, sizeof key, "t%u/%03u", w->id, i / 2);
            void *d = NULL;
            size_t n = 0;
            fill_pattern(buf, SZ, w->id * 1000 + i / 2);
            if (mlops_store_get(w->s, key, &d, &n) != 0 || n != SZ || memcmp(d, buf, SZ) != 0)
                w->failures++;
            free(d);
        }
    }
    free(buf);
    return NULL;
}

static void test_threads_grow(void **state)
{
    mlops_store_t *s = open_sub(*state, "t", 0, 1 << 20);
    assert_non_null(s);
    pthread_t th[4];
    worker_arg args[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i] = (worker_arg){.s = s, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    char **keys;
    size_t n;
    assert_int_equal(mlops_store_list(s, "t", &keys, &n), 0);
    assert_int_equal(n, 240);
    mlops_store_list_free(&keys, n);
    assert_true(mlops_store_mapsize(s) >= 240u * (64u << 10));
    mlops_store_close(&s);
}

static void test_open_errors(void **state)
{
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/file", (char *)*state);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a directory\n", f);
    fclose(f);
    mlops_store_t *s = mlops_store_open(path, 0, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, path));

    snprintf(path, sizeof path, "%s/file/sub", (char *)*state);
    err[0] = '\0';
    assert_null(mlops_store_open(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "cannot create directory"));

    err[0] = '\0';
    assert_null(mlops_store_open("", 0, err, sizeof err));
    assert_true(err[0] != '\0');
    assert_null(mlops_store_open(NULL, 0, NULL, 0));
    snprintf(path, sizeof path, "%s/ok", (char *)*state);
    assert_null(mlops_store_open(path, 0x80, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_big_values_grow_map, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_put_fill, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_put_derived, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_prefix_list_del, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_foreach, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_batch, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reopen_persists, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_durable_crash, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_threads_grow, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_open_errors, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
