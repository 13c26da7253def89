/* test_packed_cache.c: unit tests of packed_cache.h and of the store
 * snapshots it keys on. A shard read twice under one snapshot is opened
 * once (the second read is a hit giving the same record offsets); a new
 * snapshot, another address, no snapshot, a misaligned value or a
 * damaged shard is not taken from the cache; an entry in use survives
 * the eviction of everything else; mlops_store_foreach_snap gives the
 * same id to reads with no write between them and a new one after any
 * write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packed_cache.h"
#include "packed_fixture.h"
#include "store.h"

/* n rows labelled 0, 1, 0, ..., no test rows: fixture's packed() */
static uint8_t *packed_n(size_t n, size_t *len)
{
    int32_t *lab = malloc(n * sizeof *lab + 4);
    assert_non_null(lab);
    for (size_t i = 0; i < n; i++) lab[i] = (int32_t)(i % 2);
    uint8_t *buf = packed(n, lab, 0, len);
    free(lab);
    return buf;
}

static uint64_t hits(void)
{
    uint64_t h;
    wk_packed_cache_stats(&h, NULL);
    return h;
}

static uint64_t kept(void)
{
    uint64_t k;
    wk_packed_cache_stats(NULL, &k);
    return k;
}

/* A fresh open's offsets, for comparison. */
static void fresh_offsets(task_ctx_t *ctx, const uint8_t *buf, size_t len, size_t *out, size_t n)
{
    wk_packed_t w;
    assert_int_equal(wk_packed_take(ctx, 0, buf, len, 0, &w), 0);
    assert_int_equal(w.p.nrows, n);
    memcpy(out, w.off, n * sizeof *out);
    wk_packed_release(&w);
}

static void test_hits_and_misses(void **state)
{
    (void)state;
    enum { N = 50 };
    size_t len, ref[N];
    uint8_t *buf = packed_n(N, &len);
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    ctx_init_key(&ctx, &ta, &in, ins, "j1/hash/0");
    fresh_offsets(&ctx, buf, len, ref, N);
    wk_packed_cache_clear();
    uint64_t h0 = hits(), k0 = kept();

    wk_packed_t w;
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 7, &w), 0); /* opened, kept */
    assert_null(w.cached);
    assert_memory_equal(w.off, ref, sizeof ref);
    wk_packed_release(&w);
    assert_int_equal(kept(), k0 + 1);
    assert_int_equal(hits(), h0);
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 7, &w), 0); /* the same: a hit */
    assert_non_null(w.cached);
    assert_int_equal(hits(), h0 + 1);
    assert_int_equal(w.p.nrows, N);
    assert_true((const uint8_t *)w.p.row_id > buf && (const uint8_t *)w.p.row_id < buf + len); /* in place */
    assert_memory_equal(w.off, ref, sizeof ref);
    wk_packed_release(&w);
    assert_null(w.cached);

    /* another snapshot, another key: opened again */
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 8, &w), 0);
    assert_null(w.cached);
    wk_packed_release(&w);
    assert_int_equal(hits(), h0 + 1);
    ctx_init_key(&ctx, &ta, &in, ins, "j1/hash/1");
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 8, &w), 0);
    assert_null(w.cached);
    wk_packed_release(&w);
    ctx_init_key(&ctx, &ta, &in, ins, "j1/hash/0");
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 8, &w), 0); /* now kept under 8 */
    assert_non_null(w.cached);
    wk_packed_release(&w);
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 7, &w), 0); /* 7's entry went for 8's */
    assert_null(w.cached);
    wk_packed_release(&w);

    /* the same bytes at another address; no snapshot; misaligned */
    uint8_t *other = malloc(len + 8);
    assert_non_null(other);
    memcpy(other, buf, len);
    assert_int_equal(wk_packed_take_cached(&ctx, 0, other, len, 7, &w), 0);
    assert_null(w.cached);
    wk_packed_release(&w);
    uint64_t k1 = kept();
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 0, &w), 0);
        assert_null(w.cached);
        assert_memory_equal(w.off, ref, sizeof ref);
        wk_packed_release(&w);
    }
    memmove(other + 1, other, len);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wk_packed_take_cached(&ctx, 0, other + 1, len, 9, &w), 0);
        assert_null(w.cached);
        wk_packed_release(&w);
    }
    assert_int_equal(kept(), k1);

    /* damaged: refused each time, never kept */
    memcpy(other, buf, len);
    other[len - 1] ^= 0xff;
    other[8] = 0xff; /* a row count beyond the buffer */
    for (int i = 0; i < 2; i++) {
        memset(ctx.err, 0, sizeof ctx.err);
        assert_int_not_equal(wk_packed_take_cached(&ctx, 0, other, len, 11, &w), 0);
        assert_non_null(strstr(ctx.err, "j1/hash/0"));
        wk_packed_release(&w);
    }
    assert_int_equal(kept(), k1);
    free(other);
    free(buf);
    wk_packed_cache_clear();
}

/* An entry in use is not evicted however many others come and go. */
static void test_in_use_survives(void **state)
{
    (void)state;
    enum { N = 20 };
    size_t len;
    uint8_t *buf = packed_n(N, &len);
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    wk_packed_cache_clear();
    ctx_init_key(&ctx, &ta, &in, ins, "j1/keep/0");
    wk_packed_t held, w;
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 3, &held), 0);
    wk_packed_release(&held);
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 3, &held), 0);
    assert_non_null(held.cached);
    char key[32];
    for (int i = 0; i < 3 * PACKED_CACHE_ENTRIES; i++) {
        snprintf(key, sizeof key, "j1/other/%d", i);
        ctx_init_key(&ctx, &ta, &in, ins, key);
        assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 3, &w), 0);
        wk_packed_release(&w);
    }
    assert_int_equal(held.p.nrows, N);
    assert_int_equal(held.off[N - 1] > held.off[0], 1); /* still its memory */
    wk_packed_release(&held);
    ctx_init_key(&ctx, &ta, &in, ins, "j1/keep/0");
    assert_int_equal(wk_packed_take_cached(&ctx, 0, buf, len, 3, &w), 0); /* and still kept */
    assert_non_null(w.cached);
    wk_packed_release(&w);
    free(buf);
    wk_packed_cache_clear();
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

typedef struct {
    uint64_t snap;
    size_t n;
} snap_arg_t;

static int snap_cb(const char *key, const void *data, size_t len, uint64_t snap, void *arg)
{
    (void)key, (void)data, (void)len;
    snap_arg_t *a = arg;
    a->snap = snap;
    a->n++;
    return 0;
}

static uint64_t snap_of(mlops_store_t *s)
{
    snap_arg_t a = {0, 0};
    assert_int_equal(mlops_store_foreach_snap(s, "k/", snap_cb, &a), 0);
    assert_true(a.n > 0);
    assert_true(a.snap != 0);
    return a.snap;
}

static void test_store_snapshots(void **state)
{
    (void)state;
    char dir[] = "/tmp/mlops_test_packed_cache_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[256] = "";
    mlops_store_t *s = mlops_store_open(dir, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(mlops_store_put(s, "k/a", "one", 3), 0);
    uint64_t s1 = snap_of(s);
    assert_int_equal(snap_of(s), s1); /* no write between: the same */
    assert_int_equal(mlops_store_put(s, "other", "x", 1), 0); /* any write, any key */
    uint64_t s2 = snap_of(s);
    assert_true(s2 != s1);
    assert_int_equal(snap_of(s), s2);
    assert_int_equal(mlops_store_del(s, "other"), 0);
    assert_true(snap_of(s) != s2);
    mlops_store_close(&s);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_and_misses),
        cmocka_unit_test(test_in_use_survives),
        cmocka_unit_test(test_store_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
