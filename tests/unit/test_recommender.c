/* test_recommender.c: a mlops-recommender/1 artifact built the way the
 * knn stage builds it answers every user exactly as the batch path does
 * (neighbours searched per user range and merged, then scored), bit for
 * bit; an unknown user gets the most popular items, flagged; the JSON
 * answer has the server's shape; a damaged artifact is refused with a
 * message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsondump.h"
#include "recommend.h"
#include "recommender.h"

#define NU 40
#define NI 30
#define NINTER 400
#define K 6
#define TOPN 8

typedef struct {
    mlk_rec_data *d;
    json_t *art;
} fixture_t;

/* Interactions from a fixed LCG: user u favours items near 3u mod NI, so
 * neighbours share items and some scores tie. */
static mlk_rec_data *make_data(void)
{
    int32_t u[NINTER], it[NINTER];
    uint32_t x = 12345;
    for (int i = 0; i < NINTER; i++) {
        x = x * 1103515245u + 12345u;
        u[i] = (int32_t)((x >> 8) % NU);
        x = x * 1103515245u + 12345u;
        it[i] = (int32_t)((3 * u[i] + (int)((x >> 8) % 7)) % NI);
    }
    char err[256];
    return mlk_rec_split(u, it, NINTER, NU, NI, MLK_REC_BINARY, err, sizeof err);
}

/* The artifact as registry_build.c writes it. User ids are "u<n>"
 * without padding, so their strcmp order is not their index order. */
static json_t *make_artifact(const mlk_rec_data *d)
{
    json_t *users = json_array(), *items = json_array(), *indptr = json_array(),
           *its = json_array(), *pi = json_array(), *pc = json_array();
    char name[32];
    for (int i = 0; i < NU; i++) {
        snprintf(name, sizeof name, "u%d", i);
        json_array_append_new(users, json_string(name));
    }
    for (int i = 0; i < NI; i++) {
        snprintf(name, sizeof name, "item-%02d", i);
        json_array_append_new(items, json_string(name));
    }
    for (int i = 0; i <= NU; i++) json_array_append_new(indptr, json_integer(d->indptr[i]));
    for (int64_t p = 0; p < d->indptr[NU]; p++) json_array_append_new(its, json_integer(d->items[p]));
    int32_t rank[NI];
    size_t nr = 0;
    assert_int_equal(mlk_rec_popular_rank(d, rank, &nr), 0);
    for (size_t r = 0; r < nr; r++) {
        json_array_append_new(pi, json_integer(rank[r]));
        json_array_append_new(pc, json_integer(d->item_count[rank[r]]));
    }
    json_t *a = json_pack(
        "{s:s,s:s,s:i,s:s,s:{s:i,s:i,s:s,s:s,s:b,s:s},s:{s:s,s:s},s:o,s:o,s:{s:o,s:o},s:{s:o,s:o}}",
        "format", "mlops-recommender/1", "name", "shop", "version", 3, "kind", "user-knn",
        "settings", "k", K, "n", TOPN, "similarity", "cosine", "values", "binary", "exclude_seen",
        1, "ties", "lower index", "columns", "user", "user_id", "item", "item_id", "users", users,
        "items", items, "interactions", "indptr", indptr, "items", its, "popular", "items", pi,
        "counts", pc);
    assert_non_null(a);
    return a;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->d = make_data();
    assert_non_null(f->d);
    f->art = make_artifact(f->d);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    mlk_rec_data_destroy(&f->d);
    json_decref(f->art);
    free(f);
    return 0;
}

static mlops_recommender_t *load(const json_t *art, char *err, size_t errlen)
{
    char *text = mlops_json_dumps(art, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    mlops_recommender_t *r = mlops_recommender_load(text, strlen(text), err, errlen);
    free(text);
    return r;
}

/* Every user: the batch path (3 user ranges searched apart and merged,
 * as rec_search + rec_recommend do) against one lookup. */
static void test_same_as_batch(void **state)
{
    fixture_t *f = *state;
    char err[512] = "";
    mlops_recommender_t *r = load(f->art, err, sizeof err);
    assert_non_null(r);
    assert_string_equal(mlops_recommender_name(r), "shop");
    assert_int_equal(mlops_recommender_version(r), 3);
    assert_int_equal(mlops_recommender_default_n(r), TOPN);
    mlk_topk *merged = mlk_topk_new(NU, K);
    const size_t cut[] = {0, 13, 27, NU};
    for (int s = 0; s < 3; s++) {
        mlk_topk *part = mlk_topk_new(NU, K);
        assert_int_equal(mlk_rec_neighbors(f->d, 0, NU, cut[s], cut[s + 1], part, err, sizeof err), 0);
        assert_int_equal(mlk_topk_merge(merged, part), 0);
        mlk_topk_destroy(&part);
    }
    int32_t recs[NU * TOPN];
    double scores[NU * TOPN];
    assert_int_equal(mlk_rec_recommend_scored(f->d, merged, 0, TOPN, recs, scores, err, sizeof err), 0);
    size_t full = 0, short_lists = 0;
    for (int u = 0; u < NU; u++) {
        char id[32];
        snprintf(id, sizeof id, "u%d", u);
        mlops_rec_item_t out[TOPN];
        size_t n = 99;
        int popular = -1;
        assert_int_equal(mlops_recommender_lookup(r, id, TOPN, out, &n, &popular, err, sizeof err), 0);
        assert_int_equal(popular, 0);
        size_t want = 0;
        while (want < TOPN && recs[u * TOPN + want] >= 0) want++;
        assert_int_equal(n, want);
        if (want == TOPN) full++;
        else short_lists++;
        for (size_t j = 0; j < n; j++) {
            char item[32];
            snprintf(item, sizeof item, "item-%02d", recs[u * TOPN + j]);
            assert_string_equal(out[j].item_id, item);
            assert_memory_equal(&out[j].score, &scores[u * TOPN + j], sizeof(double));
        }
    }
    assert_true(full > 0); /* the data exercises both cases */
    (void)short_lists;
    mlk_topk_destroy(&merged);
    mlops_recommender_destroy(&r);
    assert_null(r);
    mlops_recommender_destroy(&r);
}

static void test_unknown_user_and_answer(void **state)
{
    fixture_t *f = *state;
    char err[512] = "";
    mlops_recommender_t *r = load(f->art, err, sizeof err);
    assert_non_null(r);
    int32_t rank[NI];
    size_t nr = 0;
    assert_int_equal(mlk_rec_popular_rank(f->d, rank, &nr), 0);
    mlops_rec_item_t out[NI + 5];
    size_t n = 0;
    int popular = 0;
    assert_int_equal(mlops_recommender_lookup(r, "nobody", NI + 5, out, &n, &popular, err, sizeof err), 0);
    assert_int_equal(popular, 1);
    assert_int_equal(n, nr); /* every item with a training interaction, no more */
    for (size_t j = 0; j < n; j++) {
        char item[32];
        snprintf(item, sizeof item, "item-%02d", rank[j]);
        assert_string_equal(out[j].item_id, item);
        assert_true(out[j].score == (double)f->d->item_count[rank[j]]);
        if (j) assert_true(out[j].score <= out[j - 1].score);
    }
    /* the JSON answer */
    json_t *a = mlops_recommender_answer(r, "nobody", 3, err, sizeof err);
    assert_non_null(a);
    assert_true(json_is_true(json_object_get(a, "popular")));
    assert_int_equal(json_array_size(json_object_get(a, "items")), 3);
    const json_t *first = json_array_get(json_object_get(a, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "item_id")), out[0].item_id);
    assert_true(json_real_value(json_object_get(first, "score")) == out[0].score);
    const json_t *m = json_object_get(a, "model");
    assert_string_equal(json_string_value(json_object_get(m, "name")), "shop");
    assert_int_equal(json_integer_value(json_object_get(m, "version")), 3);
    json_decref(a);
    a = mlops_recommender_answer(r, "u7", 2, err, sizeof err);
    assert_non_null(a);
    assert_true(json_is_false(json_object_get(a, "popular")));
    json_decref(a);
    /* n out of range */
    assert_null(mlops_recommender_answer(r, "u7", 0, err, sizeof err));
    assert_non_null(strstr(err, "n: expected 1.."));
    assert_int_equal(mlops_recommender_lookup(r, "u7", MLOPS_RECOMMENDER_MAX_N + 1, out, &n,
                                              &popular, err, sizeof err),
                     MLOPS_EINVAL);
    mlops_recommender_destroy(&r);
}

/* The reloaded data is the split's: same norms, same neighbours. */
static void test_from_csr_and_index(void **state)
{
    fixture_t *f = *state;
    char err[256];
    mlk_rec_data *c = mlk_rec_data_from_csr(NU, NI, f->d->indptr, f->d->items,
                                            f->d->item_count, err, sizeof err);
    assert_non_null(c);
    assert_memory_equal(c->norm, f->d->norm, NU * sizeof(double));
    mlk_rec_index *ix = mlk_rec_index_new(c, 0, NU, err, sizeof err);
    assert_non_null(ix);
    mlk_topk *a = mlk_topk_new(NU, K), *b = mlk_topk_new(NU, K);
    assert_int_equal(mlk_rec_neighbors(f->d, 0, NU, 0, NU, a, err, sizeof err), 0);
    for (int u = 0; u < NU; u++) {
        mlk_topk *one = mlk_topk_new(1, K);
        assert_int_equal(mlk_rec_neighbors_in(c, ix, (size_t)u, 1, one, err, sizeof err), 0);
        memcpy(b->id + u * K, one->id, K * sizeof *one->id);
        memcpy(b->sim + u * K, one->sim, K * sizeof *one->sim);
        mlk_topk_destroy(&one);
    }
    assert_memory_equal(a->id, b->id, NU * K * sizeof *a->id);
    assert_memory_equal(a->sim, b->sim, NU * K * sizeof *a->sim);
    mlk_topk_destroy(&a);
    mlk_topk_destroy(&b);
    mlk_rec_index_destroy(&ix);
    assert_null(ix);
    /* unsorted items of a user are named */
    int64_t ptr[] = {0, 2};
    int32_t it[] = {3, 1};
    int64_t cnt[] = {0, 1, 0, 1};
    assert_null(mlk_rec_data_from_csr(1, 4, ptr, it, cnt, err, sizeof err));
    assert_non_null(strstr(err, "user 0's item 1"));
    /* an offset past the last one (found by fuzz_recommender) */
    int64_t past[] = {0, 2, 6, 5};
    int32_t five[] = {0, 2, 1, 2, 3};
    assert_null(mlk_rec_data_from_csr(3, 4, past, five, cnt, err, sizeof err));
    assert_non_null(strstr(err, "user 1's item range [2, 6)"));
    mlk_rec_data_destroy(&c);
}

/* One damaged copy of the artifact: path is "a.b" or "a.b[i]", set to
 * value (NULL: removed); the load must fail with `want` in the message. */
static void expect_bad(const json_t *art, const char *key, const char *sub, long idx, json_t *value,
                       const char *want)
{
    json_t *a = json_deep_copy(art);
    json_t *o = sub ? json_object_get(a, key) : a;
    const char *field = sub ? sub : key;
    if (idx >= 0) {
        json_t *arr = json_object_get(o, field);
        json_array_set_new(arr, (size_t)idx, value);
    } else if (value) {
        json_object_set_new(o, field, value);
    } else {
        json_object_del(o, field);
    }
    char err[512] = "";
    mlops_recommender_t *r = load(a, err, sizeof err);
    if (r || !strstr(err, want)) fail_msg("expected an error with '%s', got '%s'", want, err);
    assert_null(strchr(err, '\n'));
    json_decref(a);
}

static void test_bad_artifacts(void **state)
{
    fixture_t *f = *state;
    const json_t *a = f->art;
    expect_bad(a, "format", NULL, -1, json_string("mlops-model/1"), "format: expected \"mlops-recommender/1\"");
    expect_bad(a, "kind", NULL, -1, NULL, "kind: expected");
    expect_bad(a, "settings", "k", -1, json_integer(0), "settings.k: expected an integer in 1..1000");
    expect_bad(a, "settings", "n", -1, json_real(2.5), "settings.n: expected an integer");
    expect_bad(a, "settings", "similarity", -1, json_string("jaccard"), "settings.similarity");
    expect_bad(a, "users", NULL, 5, json_integer(4), "users[5]: expected a string");
    expect_bad(a, "users", NULL, 5, json_string("u9"), "users[9]: 'u9' is also users[5]");
    expect_bad(a, "interactions", "indptr", 0, json_integer(1), "interactions.indptr[0]: expected 0");
    expect_bad(a, "interactions", "indptr", 3, json_integer(0), "interactions: recommend: user 2");
    expect_bad(a, "interactions", "items", 0, json_integer(NI), "interactions.items[0]: expected an integer in 0..29");
    expect_bad(a, "interactions", "items", -1, json_array(), "interactions.items: expected");
    expect_bad(a, "popular", "counts", 0, json_integer(0), "popular.counts[0]: expected an integer in 1..");
    expect_bad(a, "popular", "counts", 1, json_integer(1000), "popular.items[0]: expected item");
    expect_bad(a, "popular", "items", 1, json_integer(json_integer_value(json_array_get(json_object_get(json_object_get(a, "popular"), "items"), 0))),
               "popular.items[1]: item");
    expect_bad(a, "popular", NULL, -1, NULL, "popular: expected an object");
    char err[512] = "";
    assert_null(mlops_recommender_load("{\"format\": \n ]", 15, err, sizeof err));
    assert_non_null(strstr(err, "line 2, column"));
    assert_null(mlops_recommender_load("{\"a\": 1, \"a\": 2}", 16, err, sizeof err));
    assert_non_null(strstr(err, "duplicate"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_as_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_user_and_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_csr_and_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_artifacts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
