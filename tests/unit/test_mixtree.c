/* test_mixtree.c: the epoch's mixing tree (coordinator/mixtree.c), which
 * train and cv share: groups of MIXTREE_FANIN in shard order, level by
 * level, each the count-weighted average of its group. Checked against
 * the tree written out by hand with mlk_model_average_encoded (17 shards:
 * 8 + 8 + 1, then the three averages), against the weighted mean of all
 * the shards (the tree is that mean, up to rounding), one shard averaged
 * with itself, no shards refused with a message, and a damaged input
 * named without a leak (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "model.h"
#include "stages.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NF 64

/* shard i's model: a few weights that depend on i, so groups differ */
static void shard_model(size_t i, uint8_t **buf, size_t *len)
{
    mlk_model *m = mlk_model_new(2, NF, 2, 0);
    assert_non_null(m);
    for (size_t k = 0; k < 6; k++) m->w[(i * 7 + k * 11) % (NF + 2)] = (double)(i + 1) / (double)(k + 3);
    m->b[0] = 0.1 * (double)i - 0.5;
    m->n_seen = 100 + i;
    assert_int_equal(mlk_model_encode(m, buf, len), 0);
    mlk_model_destroy(&m);
}

typedef struct {
    uint8_t *bufs[17];
    size_t lens[17];
    uint64_t counts[17];
} shards_t;

static void make(shards_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        shard_model(i, &s->bufs[i], &s->lens[i]);
        s->counts[i] = 50 + 13 * i;
    }
}

static void drop(shards_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) free(s->bufs[i]);
}

static void avg(uint8_t *const *bufs, const size_t *lens, const uint64_t *counts, size_t n, uint8_t **out,
                size_t *outlen)
{
    char err[256];
    assert_int_equal(mlk_model_average_encoded((const uint8_t *const *)bufs, lens, counts, n, out, outlen, err, sizeof err), 0);
}

static void test_tree_of_17(void **state)
{
    (void)state;
    shards_t s;
    make(&s, 17);
    char err[256];
    uint8_t *got = NULL;
    size_t glen = 0;
    assert_int_equal(coord_mixtree((const uint8_t *const *)s.bufs, s.lens, s.counts, 17, &got, &glen, err, sizeof err), 0);
    /* by hand: level 1 is shards 0-7, 8-15, 16; level 2 their averages */
    uint8_t *l1[3];
    size_t l1len[3];
    uint64_t l1cnt[3] = {0, 0, 0};
    avg(s.bufs, s.lens, s.counts, 8, &l1[0], &l1len[0]);
    avg(s.bufs + 8, s.lens + 8, s.counts + 8, 8, &l1[1], &l1len[1]);
    avg(s.bufs + 16, s.lens + 16, s.counts + 16, 1, &l1[2], &l1len[2]);
    for (size_t i = 0; i < 17; i++) l1cnt[i / 8] += s.counts[i];
    uint8_t *want = NULL;
    size_t wlen = 0;
    avg(l1, l1len, l1cnt, 3, &want, &wlen);
    assert_int_equal(glen, wlen);
    assert_memory_equal(got, want, wlen);
    /* and that is the count-weighted mean of all 17, up to rounding */
    uint8_t *flat = NULL;
    size_t flen = 0;
    avg(s.bufs, s.lens, s.counts, 17, &flat, &flen);
    mlk_model *a = NULL, *b = NULL;
    assert_int_equal(mlk_model_decode(got, glen, &a, err, sizeof err), 0);
    assert_int_equal(mlk_model_decode(flat, flen, &b, err, sizeof err), 0);
    for (size_t k = 0; k < a->dim; k++) assert_true(fabs(a->w[k] - b->w[k]) <= 1e-12 * (1 + fabs(b->w[k])));
    assert_true(fabs(a->b[0] - b->b[0]) <= 1e-12);
    mlk_model_destroy(&a);
    mlk_model_destroy(&b);
    for (int i = 0; i < 3; i++) free(l1[i]);
    free(want);
    free(flat);
    free(got);
    drop(&s, 17);
}

static void test_one_shard_averaged_with_itself(void **state)
{
    (void)state;
    shards_t s;
    make(&s, 1);
    char err[256];
    uint8_t *got = NULL, *want = NULL;
    size_t glen = 0, wlen = 0;
    assert_int_equal(coord_mixtree((const uint8_t *const *)s.bufs, s.lens, s.counts, 1, &got, &glen, err, sizeof err), 0);
    avg(s.bufs, s.lens, s.counts, 1, &want, &wlen);
    assert_int_equal(glen, wlen);
    assert_memory_equal(got, want, wlen);
    free(got);
    free(want);
    drop(&s, 1);
}

static void test_refusals(void **state)
{
    (void)state;
    char err[256] = "";
    uint8_t *got = (uint8_t *)"x";
    size_t glen = 1;
    assert_int_equal(coord_mixtree(NULL, NULL, NULL, 0, &got, &glen, err, sizeof err), MLOPS_EINVAL);
    assert_null(got);
    assert_non_null(strstr(err, "no models"));
    /* a damaged model in the second group: refused, the first group's
     * average freed (ASan checks) */
    shards_t s;
    make(&s, 12);
    s.lens[10] = 7;
    err[0] = 0;
    int rc = coord_mixtree((const uint8_t *const *)s.bufs, s.lens, s.counts, 12, &got, &glen, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_null(got);
    assert_true(err[0] != 0);
    drop(&s, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_of_17),
        cmocka_unit_test(test_one_shard_averaged_with_itself),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
