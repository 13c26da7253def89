/* test_recommend.c: the leave-last-out split, neighbours (self excluded,
 * ties to the lower user id, shards merged), scoring, the popularity
 * baseline and the metrics on a hand-made example worked out on paper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "recommend.h"

/* 4 users, 5 items, in time order:
 *   u0: 0 1 2 (held out 2)    train {0,1}
 *   u1: 0 1 3 (held out 3)    train {0,1}
 *   u2: 1 3 3 4 (held out 4)  train {1,3 x2}
 *   u3: 2                     one interaction: nothing held out, train {2} */
static const int32_t U[] = {0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 2};
static const int32_t I[] = {0, 0, 1, 1, 1, 3, 2, 2, 3, 3, 4};

static void test_split(void **state)
{
    (void)state;
    char err[128];
    mlk_rec_data *d = mlk_rec_split(U, I, 11, 4, 5, MLK_REC_COUNT, err, sizeof err);
    assert_non_null(d);
    int32_t held[] = {2, 3, 4, -1};
    assert_memory_equal(d->heldout, held, sizeof held);
    int64_t ptr[] = {0, 2, 4, 6, 7};
    assert_memory_equal(d->indptr, ptr, sizeof ptr);
    int32_t items[] = {0, 1, 0, 1, 1, 3, 2};
    assert_memory_equal(d->items, items, sizeof items);
    assert_true(d->values[5] == 2.0); /* u2 saw item 3 twice */
    assert_true(fabs(d->norm[2] - sqrt(5.0)) < 1e-15);
    int64_t cnt[] = {2, 3, 1, 2, 0};
    assert_memory_equal(d->item_count, cnt, sizeof cnt);
    mlk_rec_data_destroy(&d);
    assert_null(d);
    /* an id out of range is reported with its position */
    int32_t bu[] = {0, 7};
    assert_null(mlk_rec_split(bu, I, 2, 4, 5, MLK_REC_BINARY, err, sizeof err));
    assert_non_null(strstr(err, "interaction 1"));
}

static void test_neighbors_recommend_metrics(void **state)
{
    (void)state;
    char err[128];
    mlk_rec_data *d = mlk_rec_split(U, I, 11, 4, 5, MLK_REC_BINARY, err, sizeof err);
    assert_non_null(d);
    /* binary: u0 = u1 = {0,1}, u2 = {1,3}, u3 = {2}
     * sim(u0,u1) = 1, sim(u0,u2) = 1/2, sim(u0,u3) = 0 */
    mlk_topk *one = mlk_topk_new(4, 2), *merged = mlk_topk_new(4, 2);
    assert_int_equal(mlk_rec_neighbors(d, 0, 4, 0, 4, one, err, sizeof err), 0);
    int64_t want[] = {1, 2, 0, 2, 0, 1, 0, 1};
    assert_memory_equal(one->id, want, sizeof want);
    assert_true(fabs(one->sim[0] - 1.0) < 1e-15 && fabs(one->sim[1] - 0.5) < 1e-15);
    assert_true(one->sim[6] == 0.0); /* u3 shares nothing: sim 0, lowest ids */
    /* two shards, merged in reverse order */
    mlk_topk *p = mlk_topk_new(4, 2);
    assert_int_equal(mlk_rec_neighbors(d, 0, 4, 3, 4, p, err, sizeof err), 0);
    assert_int_equal(mlk_topk_merge(merged, p), 0);
    mlk_topk_clear(p);
    assert_int_equal(mlk_rec_neighbors(d, 0, 4, 0, 3, p, err, sizeof err), 0);
    assert_int_equal(mlk_topk_merge(merged, p), 0);
    assert_memory_equal(merged->id, one->id, sizeof want);
    mlk_topk_destroy(&p);
    /* u0: neighbours u1 (1.0: items 0,1) and u2 (0.5: items 1,3);
     * unseen candidates: 3 (0.5) -> [3, -1, -1]
     * u3: neighbours u0, u1 (sim 0): items 0, 1 with score 0 -> [0, 1, -1] */
    int32_t recs[12];
    assert_int_equal(mlk_rec_recommend(d, one, 0, 3, recs, err, sizeof err), 0);
    int32_t wr[] = {3, -1, -1, 3, -1, -1, 0, -1, -1, 0, 1, -1};
    assert_memory_equal(recs, wr, sizeof wr);
    /* popularity (counts 2,3,1,2,0): order 1, 0, 3, 2; item 4 never seen */
    int32_t pop[12];
    assert_int_equal(mlk_rec_popular(d, 0, 4, 3, pop, err, sizeof err), 0);
    int32_t wp[] = {3, 2, -1, 3, 2, -1, 0, 2, -1, 1, 0, 3};
    assert_memory_equal(pop, wp, sizeof wp);
    /* metrics over users 0..2 (u3 has no held-out item):
     * knn: u0 hit at rank 2? no: u0 held 2, recs [3] -> miss; u1 held 3,
     * rank 1 -> hit, ndcg 1; u2 held 4 -> miss. */
    mlk_rec_metrics m;
    assert_int_equal(mlk_rec_evaluate(recs, 4, 3, d->heldout, &m), 0);
    assert_int_equal(m.nusers, 3);
    assert_true(fabs(m.hit - 1.0 / 3) < 1e-15);
    assert_true(fabs(m.recall - 1.0 / 3) < 1e-15);
    assert_true(fabs(m.precision - 1.0 / 9) < 1e-15);
    assert_true(fabs(m.ndcg - 1.0 / 3) < 1e-15);
    /* pop: u0 held 2 at rank 2 -> 1/log2(3); u1 held 3 at rank 1; u2 miss */
    assert_int_equal(mlk_rec_evaluate(pop, 4, 3, d->heldout, &m), 0);
    assert_true(fabs(m.hit - 2.0 / 3) < 1e-15);
    assert_true(fabs(m.ndcg - (1.0 / log2(3.0) + 1.0) / 3) < 1e-15);
    assert_true(fabs(m.precision - 2.0 / 9) < 1e-15);
    /* bad ranges are errors */
    assert_int_equal(mlk_rec_neighbors(d, 0, 4, 2, 9, one, err, sizeof err), MLOPS_EINVAL);
    assert_int_equal(mlk_rec_neighbors(d, 1, 4, 0, 4, one, err, sizeof err), MLOPS_EINVAL);
    mlk_topk_destroy(&one);
    mlk_topk_destroy(&merged);
    mlk_rec_data_destroy(&d);
}

/* Both ways between two ranges gives, list for list and bit for bit,
 * the two one-way searches (binary and count values; a user with no
 * training items; a user with one item only), and refuses overlapping
 * ranges. */
static void test_neighbors_both(void **state)
{
    (void)state;
    const size_t nu = 60, ni = 25, n = 700, k = 4;
    int32_t *u = malloc(n * sizeof *u), *it = malloc(n * sizeof *it);
    assert_non_null(u);
    assert_non_null(it);
    uint32_t x = 7;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        u[i] = (int32_t)((x >> 8) % (nu - 2)); /* users 58, 59: none, then one */
        x = x * 1103515245u + 12345u;
        it[i] = (int32_t)((x >> 8) % ni);
    }
    u[0] = 59;
    for (int values = 0; values < 2; values++) {
        mlk_rec_data *d = mlk_rec_split(u, it, n, nu, ni, values ? MLK_REC_COUNT : MLK_REC_BINARY, NULL, 0);
        assert_non_null(d);
        const size_t ab = 3, ac = 27, bb = 30, be = 60; /* a = [3, 30), b = [30, 60) */
        mlk_topk *fwd = mlk_topk_new(ac, k), *back = mlk_topk_new(be - bb, k);
        mlk_topk *one = mlk_topk_new(ac, k), *two = mlk_topk_new(be - bb, k);
        assert_int_equal(mlk_rec_neighbors_both(d, ab, ac, bb, be, fwd, back, NULL, 0), 0);
        assert_int_equal(mlk_rec_neighbors(d, ab, ac, bb, be, one, NULL, 0), 0);
        assert_int_equal(mlk_rec_neighbors(d, bb, be - bb, ab, ab + ac, two, NULL, 0), 0);
        assert_memory_equal(fwd->sim, one->sim, ac * k * sizeof *fwd->sim);
        assert_memory_equal(fwd->id, one->id, ac * k * sizeof *fwd->id);
        assert_memory_equal(back->sim, two->sim, (be - bb) * k * sizeof *back->sim);
        assert_memory_equal(back->id, two->id, (be - bb) * k * sizeof *back->id);
        assert_true(back->id[(58 - bb) * k] >= 0); /* no items: still offered (similarity 0) */
        assert_int_equal(mlk_rec_neighbors_both(d, 25, ac, bb, be, one, back, NULL, 0), MLOPS_EINVAL);
        mlk_topk_destroy(&fwd);
        mlk_topk_destroy(&back);
        mlk_topk_destroy(&one);
        mlk_topk_destroy(&two);
        mlk_rec_data_destroy(&d);
    }
    free(u);
    free(it);
}

/* The definition the scan's bounds must not change: every shard user
 * but the query offered in id order with its similarity computed
 * directly (shared items / (|u| |v|), 0 when nothing is shared). */
static void naive_neighbors(const mlk_rec_data *d, size_t qb, size_t qc, size_t ub, size_t ue,
                            mlk_topk *out)
{
    for (size_t j = 0; j < qc; j++) {
        size_t u = qb + j;
        for (size_t v = ub; v < ue; v++) {
            if (v == u)
                continue;
            double a = 0.0;
            for (int64_t p = d->indptr[u], q = d->indptr[v]; p < d->indptr[u + 1] && q < d->indptr[v + 1];) {
                if (d->items[p] == d->items[q]) {
                    a += d->values[p] * d->values[q];
                    p++;
                    q++;
                } else if (d->items[p] < d->items[q]) {
                    p++;
                } else {
                    q++;
                }
            }
            mlk_topk_push(out, j, a != 0.0 ? a / (d->norm[u] * d->norm[v]) : 0.0, (int64_t)v);
        }
    }
}

/* 1 if user u has item it in training (a plain walk). */
static int naive_seen(const mlk_rec_data *d, size_t u, int32_t it)
{
    for (int64_t p = d->indptr[u]; p < d->indptr[u + 1]; p++)
        if (d->items[p] == it)
            return 1;
    return 0;
}

/* Recommendations and the popular baseline by their definitions
 * (recommend.h), compared with the kernel's, for every user. */
static void check_recommend(const mlk_rec_data *d, const mlk_topk *nbrs, size_t topn)
{
    size_t nu = d->nusers, ni = d->nitems;
    int32_t *recs = malloc(nu * topn * sizeof *recs), *pop = malloc(nu * topn * sizeof *pop);
    double *scores = malloc(nu * topn * sizeof *scores), *score = calloc(ni, sizeof *score);
    int32_t *rank = malloc(ni * sizeof *rank);
    assert_non_null(recs);
    assert_non_null(pop);
    assert_non_null(scores);
    assert_non_null(score);
    assert_non_null(rank);
    assert_int_equal(mlk_rec_recommend_scored(d, nbrs, 0, topn, recs, scores, NULL, 0), 0);
    assert_int_equal(mlk_rec_popular(d, 0, nu, topn, pop, NULL, 0), 0);
    size_t nr = 0;
    assert_int_equal(mlk_rec_popular_rank(d, rank, &nr), 0);
    /* the ranking's definition: every item with a count, count
     * descending, then id ascending */
    size_t counted = 0;
    for (size_t it = 0; it < ni; it++) counted += d->item_count[it] > 0;
    assert_int_equal(nr, counted);
    for (size_t r = 0; r + 1 < nr; r++) {
        int64_t c0 = d->item_count[rank[r]], c1 = d->item_count[rank[r + 1]];
        assert_true(c0 > c1 || (c0 == c1 && rank[r] < rank[r + 1]));
    }
    mlk_topk *best = mlk_topk_new(1, topn);
    assert_non_null(best);
    for (size_t u = 0; u < nu; u++) {
        memset(score, 0, ni * sizeof *score);
        for (size_t r = 0; r < nbrs->k && nbrs->id[u * nbrs->k + r] >= 0; r++) {
            int64_t v = nbrs->id[u * nbrs->k + r];
            for (int64_t p = d->indptr[v]; p < d->indptr[v + 1]; p++)
                score[d->items[p]] += nbrs->sim[u * nbrs->k + r];
        }
        mlk_topk_clear(best);
        for (size_t it = 0; it < ni; it++) {
            int touched = 0;
            for (size_t r = 0; r < nbrs->k && nbrs->id[u * nbrs->k + r] >= 0 && !touched; r++)
                touched = naive_seen(d, (size_t)nbrs->id[u * nbrs->k + r], (int32_t)it);
            if (touched && !naive_seen(d, u, (int32_t)it))
                mlk_topk_push(best, 0, score[it], (int64_t)it);
        }
        for (size_t r = 0; r < topn; r++) {
            assert_int_equal(recs[u * topn + r], best->id[r]);
            double want = best->id[r] >= 0 ? best->sim[r] : 0.0;
            assert_memory_equal(&scores[u * topn + r], &want, sizeof want);
        }
        size_t got = 0;
        for (size_t r = 0; r < nr && got < topn; r++)
            if (!naive_seen(d, u, rank[r]))
                assert_int_equal(pop[u * topn + got++], rank[r]);
        for (; got < topn; got++)
            assert_int_equal(pop[u * topn + got], -1);
    }
    mlk_topk_destroy(&best);
    free(recs);
    free(pop);
    free(scores);
    free(score);
    free(rank);
}

/* Larger random data (full scan groups, lists that fill early and
 * thresholds that move, both directions, a range against itself): the
 * search, the recommendations and the baseline equal their definitions
 * bit for bit, binary and count values. */
static void test_neighbors_naive(void **state)
{
    (void)state;
    const size_t nu = 403, ni = 70, n = 12000;
    int32_t *u = malloc(n * sizeof *u), *it = malloc(n * sizeof *it);
    assert_non_null(u);
    assert_non_null(it);
    uint32_t x = 11;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        u[i] = (int32_t)((x >> 8) % (nu - 3)); /* the last 3 users: no interactions */
        x = x * 1103515245u + 12345u;
        /* popular items first: shared counts vary, so do the bounds */
        uint32_t r = (x >> 8) % (ni * ni);
        it[i] = (int32_t)(ni - 1 - (size_t)sqrt((double)r));
    }
    for (int values = 0; values < 2; values++)
        for (size_t k = 1; k <= 10; k += 9) {
            mlk_rec_data *d = mlk_rec_split(u, it, n, nu, ni, values ? MLK_REC_COUNT : MLK_REC_BINARY, NULL, 0);
            assert_non_null(d);
            const size_t ab = 0, ac = 190, bb = 190, be = nu;
            mlk_topk *fwd = mlk_topk_new(ac, k), *back = mlk_topk_new(be - bb, k);
            mlk_topk *one = mlk_topk_new(ac, k), *two = mlk_topk_new(be - bb, k);
            mlk_topk *all = mlk_topk_new(nu, k), *want = mlk_topk_new(nu, k);
            assert_int_equal(mlk_rec_neighbors_both(d, ab, ac, bb, be, fwd, back, NULL, 0), 0);
            naive_neighbors(d, ab, ac, bb, be, one);
            naive_neighbors(d, bb, be - bb, ab, ab + ac, two);
            assert_memory_equal(fwd->sim, one->sim, ac * k * sizeof *fwd->sim);
            assert_memory_equal(fwd->id, one->id, ac * k * sizeof *fwd->id);
            assert_memory_equal(back->sim, two->sim, (be - bb) * k * sizeof *back->sim);
            assert_memory_equal(back->id, two->id, (be - bb) * k * sizeof *back->id);
            assert_int_equal(mlk_rec_neighbors(d, 0, nu, 0, nu, all, NULL, 0), 0);
            naive_neighbors(d, 0, nu, 0, nu, want);
            assert_memory_equal(all->sim, want->sim, nu * k * sizeof *all->sim);
            assert_memory_equal(all->id, want->id, nu * k * sizeof *all->id);
            check_recommend(d, all, 7);
            /* a range against itself that does not start at 0 */
            mlk_topk *mid = mlk_topk_new(150, k), *mwant = mlk_topk_new(150, k);
            assert_int_equal(mlk_rec_neighbors(d, 100, 150, 100, 250, mid, NULL, 0), 0);
            naive_neighbors(d, 100, 150, 100, 250, mwant);
            assert_memory_equal(mid->sim, mwant->sim, 150 * k * sizeof *mid->sim);
            assert_memory_equal(mid->id, mwant->id, 150 * k * sizeof *mid->id);
            mlk_topk_destroy(&mid);
            mlk_topk_destroy(&mwant);
            mlk_topk_destroy(&fwd);
            mlk_topk_destroy(&back);
            mlk_topk_destroy(&one);
            mlk_topk_destroy(&two);
            mlk_topk_destroy(&all);
            mlk_topk_destroy(&want);
            mlk_rec_data_destroy(&d);
        }
    free(u);
    free(it);
}

/* A shard of more than 65536 users: the scan walks the 32-bit user
 * lists there (16-bit ones below), with the same lists, one way and
 * both ways, as the definition. */
static void test_neighbors_wide_shard(void **state)
{
    (void)state;
    const size_t nu = 65540, ni = 40, n = 131080, k = 10, nb = 3000; /* nb back lists checked */
    int32_t *u = malloc(n * sizeof *u), *it = malloc(n * sizeof *it);
    assert_non_null(u);
    assert_non_null(it);
    uint32_t x = 5;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        u[i] = (int32_t)((x >> 8) % nu);
        x = x * 1103515245u + 12345u;
        uint32_t r = (x >> 8) % (ni * ni);
        it[i] = (int32_t)(ni - 1 - (size_t)sqrt((double)r));
    }
    mlk_rec_data *d = mlk_rec_split(u, it, n, nu, ni, MLK_REC_BINARY, NULL, 0);
    assert_non_null(d);
    const size_t qc = 25;
    mlk_topk *one = mlk_topk_new(qc, k), *want = mlk_topk_new(qc, k);
    assert_int_equal(mlk_rec_neighbors(d, 0, qc, 0, nu, one, NULL, 0), 0);
    naive_neighbors(d, 0, qc, 0, nu, want);
    assert_memory_equal(one->sim, want->sim, qc * k * sizeof *one->sim);
    assert_memory_equal(one->id, want->id, qc * k * sizeof *one->id);
    mlk_topk *fwd = mlk_topk_new(qc, k), *back = mlk_topk_new(nu - qc, k);
    mlk_topk *bwant = mlk_topk_new(nb, k);
    assert_int_equal(mlk_rec_neighbors_both(d, 0, qc, qc, nu, fwd, back, NULL, 0), 0);
    mlk_topk_destroy(&want);
    want = mlk_topk_new(qc, k);
    naive_neighbors(d, 0, qc, qc, nu, want);
    naive_neighbors(d, qc, nb, 0, qc, bwant);
    assert_memory_equal(fwd->sim, want->sim, qc * k * sizeof *fwd->sim);
    assert_memory_equal(fwd->id, want->id, qc * k * sizeof *fwd->id);
    assert_memory_equal(back->sim, bwant->sim, nb * k * sizeof *back->sim);
    assert_memory_equal(back->id, bwant->id, nb * k * sizeof *back->id);
    mlk_topk_destroy(&one);
    mlk_topk_destroy(&want);
    mlk_topk_destroy(&fwd);
    mlk_topk_destroy(&back);
    mlk_topk_destroy(&bwant);
    mlk_rec_data_destroy(&d);
    free(u);
    free(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_neighbors_recommend_metrics),
        cmocka_unit_test(test_neighbors_both),
        cmocka_unit_test(test_neighbors_naive),
        cmocka_unit_test(test_neighbors_wide_shard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
