/* recommender.c: load a mlops-recommender/1 artifact and answer for one
 * user with the batch stage's kernel code (recommender.h).
 *
 * Why JSON and not a binary form: the registry stores, hashes and
 * exports every artifact as JSON text (registry.c, `model export`), and
 * the training data is integers (item indexes), about 6 bytes each in
 * the text: the purchases example's recommender is a few MB, read in
 * well under a second. Everything read from the file is checked before
 * use (it may come from anyone's `model export`); the kernel rebuilds
 * the norms exactly as the stage did (mlk_rec_data_from_csr), and the
 * inverted index of all users is built once here, so a lookup costs one
 * user's dot products, not a pass over the data. */
#include "recommender.h"
#include "err.h"
#include "recommend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_MAX_K 1000 /* as the knn stage (stage_knn.c) */

struct mlops_recommender {
    char *name;
    uint32_t version;
    uint32_t k, n;
    size_t nusers, nitems;
    char **users, **items; /* by index */
    uint32_t *order;       /* user indexes sorted by strcmp of their ids, for lookups */
    mlk_rec_data *d;
    mlk_rec_index *ix;
    int32_t *popular; /* item indexes, most popular first */
    int64_t *popular_count;
    size_t npopular;
};

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mlops_seterr(err, errlen, MLOPS_EPARSE, "recommender file: %s", msg);
}

void mlops_recommender_destroy(mlops_recommender_t **pr)
{
    if (!pr || !*pr) return;
    mlops_recommender_t *r = *pr;
    free(r->name);
    for (size_t i = 0; r->users && i < r->nusers; i++) free(r->users[i]);
    for (size_t i = 0; r->items && i < r->nitems; i++) free(r->items[i]);
    free(r->users);
    free(r->items);
    free(r->order);
    mlk_rec_index_destroy(&r->ix);
    mlk_rec_data_destroy(&r->d);
    free(r->popular);
    free(r->popular_count);
    free(r);
    *pr = NULL;
}

const char *mlops_recommender_name(const mlops_recommender_t *r) { return r->name; }
uint32_t mlops_recommender_version(const mlops_recommender_t *r) { return r->version; }
size_t mlops_recommender_default_n(const mlops_recommender_t *r) { return r->n; }

static const char *get_str(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An integer member in [lo, hi]. */
static int get_int(const json_t *o, const char *key, const char *where, json_int_t lo,
                   json_int_t hi, json_int_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(err, errlen, "%s%s: expected an integer in %lld..%lld", where, key,
                   (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

/* A list of strings, copied; *n its length. */
static int get_strs(const json_t *doc, const char *key, char ***out, size_t *n, char *err,
                    size_t errlen)
{
    json_t *a = json_object_get(doc, key);
    if (!json_is_array(a) || json_array_size(a) > INT32_MAX)
        return bad(err, errlen, "%s: expected a list of strings", key);
    size_t len = json_array_size(a);
    if (!(*out = calloc(len ? len : 1, sizeof **out))) return MLOPS_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s) return bad(err, errlen, "%s[%zu]: expected a string", key, i);
        if (!((*out)[i] = strdup(s))) return MLOPS_ENOMEM;
        *n = i + 1;
    }
    *n = len;
    return 0;
}

/* A list of exactly `want` integers in [lo, hi] (want = SIZE_MAX: any
 * length, *n gets it), into int64 or int32 storage. */
static int get_ints(const json_t *o, const char *key, const char *where, size_t want,
                    json_int_t lo, json_int_t hi, int64_t **v64, int32_t **v32, size_t *n,
                    char *err, size_t errlen)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a)) return bad(err, errlen, "%s%s: expected a list of integers", where, key);
    size_t len = json_array_size(a);
    if (want != SIZE_MAX && len != want)
        return bad(err, errlen, "%s%s: expected %zu integers, got %zu", where, key, want, len);
    if (v64 && !(*v64 = malloc((len ? len : 1) * sizeof **v64))) return MLOPS_ENOMEM;
    if (v32 && !(*v32 = malloc((len ? len : 1) * sizeof **v32))) return MLOPS_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi)
            return bad(err, errlen, "%s%s[%zu]: expected an integer in %lld..%lld", where, key, i,
                       (long long)lo, (long long)hi);
        if (v64) (*v64)[i] = json_integer_value(x);
        else (*v32)[i] = (int32_t)json_integer_value(x);
    }
    if (n) *n = len;
    return 0;
}

typedef struct {
    const char *id;
    uint32_t index;
} byid_t;

static int cmp_byid(const void *a, const void *b)
{
    return strcmp(((const byid_t *)a)->id, ((const byid_t *)b)->id);
}

/* r->order: the user indexes by id (strcmp), so a lookup is a binary
 * search whatever order the stage sorted the users in; a repeated id is
 * refused, as the lookup could not tell them apart. */
static int sort_users(mlops_recommender_t *r, char *err, size_t errlen)
{
    byid_t *v = malloc((r->nusers ? r->nusers : 1) * sizeof *v);
    if (!v || !(r->order = malloc((r->nusers ? r->nusers : 1) * sizeof *r->order))) {
        free(v);
        return MLOPS_ENOMEM;
    }
    for (size_t i = 0; i < r->nusers; i++) v[i] = (byid_t){r->users[i], (uint32_t)i};
    qsort(v, r->nusers, sizeof *v, cmp_byid);
    int rc = 0;
    for (size_t i = 0; i < r->nusers; i++) {
        r->order[i] = v[i].index;
        if (!rc && i && !strcmp(v[i - 1].id, v[i].id))
            rc = bad(err, errlen, "users[%u]: '%s' is also users[%u]",
                     v[i].index > v[i - 1].index ? v[i].index : v[i - 1].index, v[i].id,
                     v[i].index > v[i - 1].index ? v[i - 1].index : v[i].index);
    }
    free(v);
    return rc;
}

static int read_settings(mlops_recommender_t *r, const json_t *doc, char *err, size_t errlen)
{
    const json_t *s = json_object_get(doc, "settings");
    if (!json_is_object(s)) return bad(err, errlen, "settings: expected an object");
    json_int_t k, n;
    int rc;
    if ((rc = get_int(s, "k", "settings.", 1, REC_MAX_K, &k, err, errlen)) ||
        (rc = get_int(s, "n", "settings.", 1, MLOPS_RECOMMENDER_MAX_N, &n, err, errlen)))
        return rc;
    r->k = (uint32_t)k;
    r->n = (uint32_t)n;
    const char *v = get_str(s, "similarity");
    if (!v || strcmp(v, "cosine")) return bad(err, errlen, "settings.similarity: expected \"cosine\"");
    v = get_str(s, "values");
    if (!v || strcmp(v, "binary")) return bad(err, errlen, "settings.values: expected \"binary\"");
    if (!json_is_true(json_object_get(s, "exclude_seen")))
        return bad(err, errlen, "settings.exclude_seen: expected true");
    return 0;
}

/* The popular list: item indexes, unique, counts > 0, in the kernel's
 * ranking order (checked by ranking the counts again). */
static int read_popular(mlops_recommender_t *r, const json_t *doc, int64_t *item_count,
                        char *err, size_t errlen)
{
    const json_t *p = json_object_get(doc, "popular");
    if (!json_is_object(p)) return bad(err, errlen, "popular: expected an object");
    int rc = get_ints(p, "items", "popular.", SIZE_MAX, 0, (json_int_t)r->nitems - 1, NULL,
                      &r->popular, &r->npopular, err, errlen);
    if (!rc)
        rc = get_ints(p, "counts", "popular.", r->npopular, 1, INT64_MAX, &r->popular_count, NULL,
                      NULL, err, errlen);
    if (rc) return rc;
    for (size_t i = 0; i < r->npopular; i++) {
        if (item_count[r->popular[i]])
            return bad(err, errlen, "popular.items[%zu]: item %d is listed twice", i,
                       r->popular[i]);
        item_count[r->popular[i]] = r->popular_count[i];
    }
    return 0;
}

static int check_popular(const mlops_recommender_t *r, char *err, size_t errlen)
{
    int32_t *rank = malloc((r->nitems ? r->nitems : 1) * sizeof *rank);
    size_t n = 0;
    if (!rank || mlk_rec_popular_rank(r->d, rank, &n) != 0) {
        free(rank);
        return MLOPS_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (rank[i] != r->popular[i])
            rc = bad(err, errlen,
                     "popular.items[%zu]: expected item %d (count descending, then index)", i,
                     rank[i]);
    free(rank);
    return rc;
}

static int read_doc(mlops_recommender_t *r, const json_t *doc, char *err, size_t errlen)
{
    if (!json_is_object(doc)) return bad(err, errlen, "expected a JSON object");
    const char *s = get_str(doc, "format");
    if (!s || strcmp(s, MLOPS_RECOMMENDER_FORMAT))
        return bad(err, errlen, "format: expected \"%s\"", MLOPS_RECOMMENDER_FORMAT);
    s = get_str(doc, "kind");
    if (!s || strcmp(s, "user-knn")) return bad(err, errlen, "kind: expected \"user-knn\"");
    s = get_str(doc, "name");
    if (!(r->name = strdup(s ? s : ""))) return MLOPS_ENOMEM;
    json_int_t v = 0;
    int rc;
    if (json_object_get(doc, "version") &&
        (rc = get_int(doc, "version", "", 0, UINT32_MAX, &v, err, errlen)))
        return rc;
    r->version = (uint32_t)v;
    if ((rc = read_settings(r, doc, err, errlen)) ||
        (rc = get_strs(doc, "users", &r->users, &r->nusers, err, errlen)) ||
        (rc = get_strs(doc, "items", &r->items, &r->nitems, err, errlen)))
        return rc;
    if ((rc = sort_users(r, err, errlen))) return rc;
    const json_t *in = json_object_get(doc, "interactions");
    if (!json_is_object(in)) return bad(err, errlen, "interactions: expected an object");
    int64_t *indptr = NULL, *count = NULL;
    int32_t *items = NULL;
    size_t nnz = 0;
    rc = get_ints(in, "indptr", "interactions.", r->nusers + 1, 0, INT32_MAX, &indptr, NULL,
                  NULL, err, errlen);
    if (!rc && indptr[0] != 0) rc = bad(err, errlen, "interactions.indptr[0]: expected 0");
    if (!rc)
        rc = get_ints(in, "items", "interactions.", (size_t)indptr[r->nusers], 0,
                      (json_int_t)r->nitems - 1, NULL, &items, &nnz, err, errlen);
    if (!rc && !(count = calloc(r->nitems ? r->nitems : 1, sizeof *count))) rc = MLOPS_ENOMEM;
    if (!rc) rc = read_popular(r, doc, count, err, errlen);
    if (!rc) {
        char kerr[256];
        r->d = mlk_rec_data_from_csr(r->nusers, r->nitems, indptr, items, count, kerr, sizeof kerr);
        if (!r->d) rc = bad(err, errlen, "interactions: %s", kerr);
    }
    if (!rc) rc = check_popular(r, err, errlen);
    if (!rc && !(r->ix = mlk_rec_index_new(r->d, 0, r->nusers, err, errlen))) rc = MLOPS_ENOMEM;
    free(indptr);
    free(items);
    free(count);
    return rc;
}

mlops_recommender_t *mlops_recommender_from_json(const json_t *doc, char *err, size_t errlen)
{
    mlops_recommender_t *r = calloc(1, sizeof *r);
    if (!r) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory for the recommender");
        return NULL;
    }
    int rc = read_doc(r, doc, err, errlen);
    if (rc) {
        if (rc == MLOPS_ENOMEM) mlops_seterr(err, errlen, rc, "out of memory for the recommender");
        mlops_recommender_destroy(&r);
    }
    return r;
}

mlops_recommender_t *mlops_recommender_load(const char *text, size_t len, char *err,
                                            size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        bad(err, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    mlops_recommender_t *r = mlops_recommender_from_json(doc, err, errlen);
    json_decref(doc);
    return r;
}

/* The index of user_id, or -1. */
static int64_t find_user(const mlops_recommender_t *r, const char *user_id)
{
    size_t lo = 0, hi = r->nusers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->users[r->order[mid]], user_id);
        if (c < 0) lo = mid + 1;
        else if (c > 0) hi = mid;
        else return r->order[mid];
    }
    return -1;
}

int mlops_recommender_lookup(const mlops_recommender_t *r, const char *user_id, size_t n,
                             mlops_rec_item_t *out, size_t *nout, int *popular, char *err,
                             size_t errlen)
{
    *nout = 0;
    *popular = 0;
    if (n < 1 || n > MLOPS_RECOMMENDER_MAX_N)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "n: expected 1..%d, got %zu",
                            MLOPS_RECOMMENDER_MAX_N, n);
    int64_t u = user_id ? find_user(r, user_id) : -1;
    if (u < 0) {
        *popular = 1;
        for (size_t i = 0; i < n && i < r->npopular; i++) {
            out[i].item_id = r->items[r->popular[i]];
            out[i].score = (double)r->popular_count[i];
            *nout = i + 1;
        }
        return 0;
    }
    mlk_topk *t = mlk_topk_new(1, r->k);
    int32_t *recs = malloc(n * sizeof *recs);
    double *scores = malloc(n * sizeof *scores);
    int rc = t && recs && scores ? 0 : mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    if (!rc) rc = mlk_rec_neighbors_in(r->d, r->ix, (size_t)u, 1, t, err, errlen);
    if (!rc) rc = mlk_rec_recommend_scored(r->d, t, (size_t)u, n, recs, scores, err, errlen);
    for (size_t i = 0; !rc && i < n && recs[i] >= 0; i++) {
        out[i].item_id = r->items[recs[i]];
        out[i].score = scores[i];
        *nout = i + 1;
    }
    mlk_topk_destroy(&t);
    free(recs);
    free(scores);
    return rc;
}

json_t *mlops_recommender_answer(const mlops_recommender_t *r, const char *user_id, size_t n,
                                 char *err, size_t errlen)
{
    if (n < 1 || n > MLOPS_RECOMMENDER_MAX_N) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "n: expected 1..%d, got %zu",
                     MLOPS_RECOMMENDER_MAX_N, n);
        return NULL;
    }
    mlops_rec_item_t *it = malloc(n * sizeof *it);
    size_t got = 0;
    int popular = 0;
    if (!it) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return NULL;
    }
    if (mlops_recommender_lookup(r, user_id, n, it, &got, &popular, err, errlen) != 0) {
        free(it);
        return NULL;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < got; i++)
        if (json_array_append_new(items, json_pack("{s:s,s:f}", "item_id", it[i].item_id, "score",
                                                   it[i].score)) != 0) {
            json_decref(items);
            items = NULL;
        }
    free(it);
    json_t *doc = items ? json_pack("{s:o,s:b,s:{s:s,s:I}}", "items", items, "popular", popular,
                                    "model", "name", r->name, "version", (json_int_t)r->version)
                        : NULL;
    if (!doc) mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    return doc;
}
