/* kind_knn.c: the k-NN stage's task kinds (planned by
 * coordinator/stage_knn.c, which documents the phases; arguments and
 * results are the Knn* and Rec* messages of proto/tasks.proto).
 *
 *   knn_search     top-k of one query shard within one index shard
 *   knn_classify   merge a query shard's lists, vote, write predictions
 *   rec_keys       distinct users and items of a frame shard (read in
 *                  place), and its (user, item) pairs in those ids
 *   rec_search     neighbours of a user range within a user range (and,
 *                  "both", of the second within the first, from the same
 *                  dot products: one list shard, the first range's lists
 *                  then the second's)
 *   rec_recommend  merge, recommend, baseline, metrics, write the lists
 *
 * Lists between phases are "MLKT" shards: u32 version=1, u64 nq, u64 k,
 * f64 sim[nq*k], i64 id[nq*k], i32 label[nq*k] (the neighbour's class
 * index; -1 for users). Ids are global (row ids, user ids), so the lists
 * of different index shards merge with mlk_topk_merge exactly as one
 * search would rank them. Pairs are "MLKK" shards: u32 version=1, u64 n,
 * i32 user[n], i32 item[n] in the shard's own ids, then its keys: u64
 * nusers, nusers x (u64 len, bytes), the same for the items; a task that
 * reads them merges every shard's keys and ranks them as the coordinator
 * does (mlk_strid_sort_keys: a key's id is its rank), so the ~12,000
 * names do not travel in every task's arguments (one pass over the
 * frame where a second rec_encode phase read every shard again). Every
 * shard and argument is checked: they come from peers. */
#include "bytes.h"
#include "err.h"
#include "fshard.h"
#include "knn.h"
#include "recommend.h"
#include "strid.h"
#include "task.h"
#include "wire.h"
#include <czmq.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int wk_kind_knn_search(task_ctx_t *ctx);
int wk_kind_knn_classify(task_ctx_t *ctx);
int wk_kind_rec_keys(task_ctx_t *ctx);
int wk_kind_rec_search(task_ctx_t *ctx);
int wk_kind_rec_recommend(task_ctx_t *ctx);

#define MAX_DENSE_DIM (1u << 16)

/* n, or 1 for n == 0 (malloc sizes). */
static size_t nz(size_t n) { return n ? n : 1; }

/* ------------------------------------------------------------------ */
/* list shards                                                         */

typedef struct {
    mlk_topk *t;
    int32_t *label;
} knnlist_t;

static void list_free(knnlist_t *l)
{
    mlk_topk_destroy(&l->t);
    free(l->label);
    l->label = NULL;
}

/* The bytes of a list shard of nq x k entries. */
#define LIST_HEADER 24u
#define LIST_ENTRY 20u
/* A list or recommendation shard goes to a task on any worker, so it
 * must fit in one frame; the room left is for the envelope around it. */
#define SHARD_MAX_BYTES (MLOPS_MAX_FRAME - ((size_t)1 << 16))

/* 0 if n items of `each` bytes (plus `head`) fit in a shard a peer can
 * fetch; else the task fails naming what asked for it. Checked before
 * anything that size is allocated: the counts come from task arguments,
 * so from a peer. */
static int shard_fits(task_ctx_t *ctx, const char *what, uint64_t n, size_t each, size_t head)
{
    if (n <= (SHARD_MAX_BYTES - head) / each) return 0;
    return wk_task_fail(ctx, 0,
                        "%s: %llu entries of %zu bytes are more than the %zu MiB a shard sent to a "
                        "peer may hold (lower knn.k or knn.top_n)",
                        what, (unsigned long long)n, each, (size_t)(MLOPS_MAX_FRAME >> 20));
}

static int list_output(task_ctx_t *ctx, const mlk_topk *t, const int32_t *label)
{
    size_t n = t->nq * t->k;
    bw_t w;
    bw_init(&w);
    bw_put(&w, "MLKT", 4);
    bw_u32(&w, 1);
    bw_u64(&w, t->nq);
    bw_u64(&w, t->k);
    bw_put(&w, t->sim, n * sizeof *t->sim);
    bw_put(&w, t->id, n * sizeof *t->id);
    for (size_t i = 0; i < n; i++) {
        int32_t l = label ? label[i] : -1;
        bw_put(&w, &l, 4);
    }
    size_t len;
    uint8_t *buf = bw_take(&w, &len);
    if (!buf) return wk_task_fail(ctx, 1, "out of memory encoding a list");
    int rc = wk_task_output(ctx, NULL, buf, len);
    free(buf);
    return rc;
}

static int list_input(task_ctx_t *ctx, size_t i, knnlist_t *out)
{
    void *data;
    size_t len;
    memset(out, 0, sizeof *out);
    if (wk_task_input(ctx, i, &data, &len) != 0) return -1;
    br_t r;
    br_init(&r, data, len);
    char magic[4] = {0};
    br_get(&r, magic, 4);
    uint32_t ver = br_u32(&r);
    uint64_t nq = br_u64(&r), k = br_u64(&r);
    int rc = 0;
    if (r.err || memcmp(magic, "MLKT", 4) || ver != 1 || k == 0 || k > (1u << 20) ||
        nq > (len / 20) / k || len - r.at != nq * k * 20) {
        rc = wk_task_fail(ctx, 0, "shard %s is not a k-NN list", ctx->ta->inputs[i]->key);
    } else if (!(out->t = mlk_topk_new((size_t)nq, (size_t)k)) ||
               !(out->label = malloc(nz(nq * k) * sizeof *out->label))) {
        rc = wk_task_fail(ctx, 1, "out of memory");
    } else {
        size_t n = (size_t)(nq * k);
        br_get(&r, out->t->sim, n * sizeof(double));
        br_get(&r, out->t->id, n * sizeof(int64_t));
        br_get(&r, out->label, n * sizeof(int32_t));
    }
    free(data);
    if (rc) list_free(out);
    return rc;
}

typedef struct {
    int64_t id;
    int32_t label;
} idlab_t;

static int idlab_cmp(const void *a, const void *b)
{
    int64_t x = ((const idlab_t *)a)->id, y = ((const idlab_t *)b)->id;
    return x < y ? -1 : x > y;
}

/* Merge the n lists in order into *out; with labels, the label of a
 * merged slot is found in the list it came from, else it is -1 (user
 * lists have none: the per-query sort was half of the merge). */
static int merge_lists(task_ctx_t *ctx, const knnlist_t *ls, size_t n, size_t nq, size_t k, int labels,
                       knnlist_t *out)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    for (size_t s = 0; s < n && !rc; s++)
        if (ls[s].t->nq != nq || ls[s].t->k != k)
            rc = wk_task_fail(ctx, 0, "list %zu has %zu x %zu entries, expected %zu x %zu", s, ls[s].t->nq, ls[s].t->k,
                           nq, k);
    if (!rc && (!(out->t = mlk_topk_new(nq, k)) || !(out->label = malloc(nz(nq * k) * sizeof(int32_t)))))
        rc = wk_task_fail(ctx, 1, "out of memory");
    for (size_t s = 0; s < n && !rc; s++)
        if (mlk_topk_merge(out->t, ls[s].t) != 0) rc = wk_task_fail(ctx, 0, "list shapes differ");
    if (!rc && !labels)
        for (size_t i = 0; i < nq * k; i++) out->label[i] = -1;
    /* per query: every source's (id, label), sorted by id, then looked up */
    idlab_t *all = rc || !labels ? NULL : malloc(nz(n * k) * sizeof *all);
    if (!rc && labels && !all) rc = wk_task_fail(ctx, 1, "out of memory");
    for (size_t q = 0; labels && q < nq && !rc; q++) {
        size_t m = 0;
        for (size_t s = 0; s < n; s++)
            for (size_t j = 0; j < k; j++)
                if (ls[s].t->id[q * k + j] >= 0) {
                    all[m].id = ls[s].t->id[q * k + j];
                    all[m++].label = ls[s].label[q * k + j];
                }
        qsort(all, m, sizeof *all, idlab_cmp);
        for (size_t j = 0; j < k; j++) {
            idlab_t key = {out->t->id[q * k + j], -1}, *hit = NULL;
            if (key.id >= 0) hit = bsearch(&key, all, m, sizeof *all, idlab_cmp);
            out->label[q * k + j] = hit ? hit->label : -1;
        }
    }
    free(all);
    if (rc) list_free(out);
    return rc;
}

/* Keep lists [first, first + nq) of l (a both-ways list shard holds
 * two ranges' lists). */
static int list_rows(task_ctx_t *ctx, size_t i, knnlist_t *l, uint64_t first, size_t nq)
{
    if (first == 0 && l->t->nq == nq) return 0;
    size_t k = l->t->k;
    if (first > l->t->nq || nq > l->t->nq - first)
        return wk_task_fail(ctx, 0, "shard %s has %zu lists, not %llu + %zu", ctx->ta->inputs[i]->key,
                            l->t->nq, (unsigned long long)first, nq);
    knnlist_t c = {mlk_topk_new(nq, k), malloc(nz(nq * k) * sizeof(int32_t))};
    if (!c.t || !c.label) {
        list_free(&c);
        return wk_task_fail(ctx, 1, "out of memory");
    }
    memcpy(c.t->sim, l->t->sim + first * k, nq * k * sizeof *c.t->sim);
    memcpy(c.t->id, l->t->id + first * k, nq * k * sizeof *c.t->id);
    memcpy(c.label, l->label + first * k, nq * k * sizeof *c.label);
    list_free(l);
    *l = c;
    return 0;
}

/* merge_lists over the list shards of inputs [first, first+n); rows[s]
 * (rows may be NULL: 0) is where input s's lists for these queries start. */
static int lists_merge(task_ctx_t *ctx, size_t first, size_t n, const uint64_t *rows, size_t nq,
                       size_t k, int labels, knnlist_t *out)
{
    knnlist_t *ls = calloc(nz(n), sizeof *ls);
    if (!ls) return wk_task_fail(ctx, 1, "out of memory");
    int rc = 0;
    for (size_t s = 0; s < n && !rc; s++) {
        rc = list_input(ctx, first + s, &ls[s]);
        if (!rc) rc = list_rows(ctx, first + s, &ls[s], rows ? rows[s] : 0, nq);
    }
    if (!rc) rc = merge_lists(ctx, ls, n, nq, k, labels, out);
    for (size_t s = 0; s < n; s++) list_free(&ls[s]);
    free(ls);
    return rc;
}

/* ------------------------------------------------------------------ */
/* feature shards                                                      */

static int features_input(task_ctx_t *ctx, size_t i, mlk_features **out)
{
    void *data;
    size_t len;
    if (wk_task_input(ctx, i, &data, &len) != 0) return -1;
    int rc = mlk_features_decode(data, len, out);
    free(data);
    if (rc)
        return wk_task_fail(ctx, 0, "knn: shard %s is not a feature shard (knn classify reads IDX or hashed features)",
                         ctx->ta->inputs[i]->key);
    return 0;
}

/* Keep the rows whose test flag is `want` (want < 0: all rows). */
static int select_rows(task_ctx_t *ctx, size_t i, mlk_features **f, int want)
{
    if (want < 0) return 0;
    if (!(*f)->test) return wk_task_fail(ctx, 0, "knn: shard %s has no train/test flags", ctx->ta->inputs[i]->key);
    mlk_features *s = mlk_features_select(*f, (*f)->test, (uint8_t)want);
    if (!s) return wk_task_fail(ctx, 1, "out of memory");
    mlk_features_destroy(f);
    *f = s;
    return 0;
}

/* The model inputs of the rows as dense f32, hstack([sparse, dense]). */
static int densify(task_ctx_t *ctx, const mlk_features *f, float **out, size_t *dim)
{
    size_t ns = f->csr ? f->csr->ncols : 0, d = ns + f->n_dense;
    if (d == 0) return wk_task_fail(ctx, 0, "knn: the shard has no features");
    if (d > MAX_DENSE_DIM)
        return wk_task_fail(ctx, 0, "knn: %zu features are too many for the dense search (at most %u; lower hash.n_features)",
                         d, MAX_DENSE_DIM);
    float *x = calloc(nz(f->nrows * d), sizeof *x);
    if (!x) return wk_task_fail(ctx, 1, "out of memory for %zu x %zu features", f->nrows, d);
    for (size_t i = 0; i < f->nrows; i++) {
        float *row = x + i * d;
        if (f->csr)
            for (int64_t p = f->csr->indptr[i]; p < f->csr->indptr[i + 1]; p++)
                row[f->csr->indices[p]] += (float)f->csr->data[p];
        for (size_t c = 0; c < f->n_dense; c++)
            row[ns + c] = f->dense_type == MLK_DENSE_F32 ? f->dense32[i * f->n_dense + c]
                                                         : (float)f->dense64[i * f->n_dense + c];
    }
    *out = x;
    *dim = d;
    return 0;
}

/* The queries of input 0 (the test rows if qtest), scaled with the
 * nscale (mean, scale) pairs as the scale stage transformed the input,
 * as normalised dense rows. */
static int prepare_queries(task_ctx_t *ctx, int qtest, size_t nscale, const double *mean,
                           const double *scale, mlk_features **q, float **Q, size_t *d)
{
    if (features_input(ctx, 0, q) || select_rows(ctx, 0, q, qtest ? 1 : -1)) return -1;
    mlk_features *f = *q;
    if (nscale && f->n_dense != nscale)
        return wk_task_fail(ctx, 0, "knn: %zu scale statistics for %zu dense columns", nscale,
                            f->n_dense);
    if (nscale && mlk_features_scale(f, mean, scale, nscale) != 0)
        return wk_task_fail(ctx, 1, "out of memory");
    if (densify(ctx, f, Q, d)) return -1;
    mlk_knn_normalize(*Q, f->nrows, *d);
    return 0;
}

/* Top-k of the nq normalised queries Q (d wide) within index input i
 * (its train rows only if xtrain), as a list over global row ids. */
static int search_index(task_ctx_t *ctx, const float *Q, size_t nq, size_t d, size_t i, int xtrain, uint32_t k,
                        knnlist_t *out)
{
    mlk_features *x = NULL;
    float *X = NULL;
    size_t dx = 0;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (features_input(ctx, i, &x) || select_rows(ctx, i, &x, xtrain ? 0 : -1)) goto done;
    for (size_t r = 0; r < x->nrows; r++)
        if (x->label[r] < 0) {
            wk_task_fail(ctx, 0, "knn: index row %lld of %s has no class", (long long)x->row_id[r],
                      ctx->ta->inputs[i]->key);
            goto done;
        }
    if (densify(ctx, x, &X, &dx)) goto done;
    if (dx != d) {
        wk_task_fail(ctx, 0, "knn: queries have %zu features, the index %zu", d, dx);
        goto done;
    }
    mlk_knn_normalize(X, x->nrows, dx);
    /* the list goes to knn_classify on any worker: the same limit with
     * one worker as with eight */
    if (shard_fits(ctx, "knn", (uint64_t)nq * k, LIST_ENTRY, LIST_HEADER) != 0) goto done;
    out->t = mlk_topk_new(nq, k);
    out->label = malloc(nz(nq * k) * sizeof *out->label);
    if (!out->t || !out->label) {
        wk_task_fail(ctx, 1, "out of memory");
        goto done;
    }
    if (x->nrows && nq && mlk_knn_search(Q, nq, X, x->nrows, d, 0, NULL, out->t, NULL, ctx->err, sizeof ctx->err) != 0)
        goto done;
    /* local positions -> global row ids (increasing, so the order and the
     * tie rule are unchanged), and the neighbour's class */
    for (size_t j = 0; j < nq * k; j++) {
        int64_t id = out->t->id[j];
        out->label[j] = id >= 0 ? x->label[id] : -1;
        out->t->id[j] = id >= 0 ? x->row_id[id] : -1;
    }
    wk_task_metric(ctx, "index_rows", (double)x->nrows);
    rc = 0;
done:
    mlk_features_destroy(&x);
    free(X);
    if (rc) list_free(out);
    return rc;
}

/* A query shard made ready for the search (decoded, its rows selected,
 * scaled, densified, normalised), kept in the executor thread's cache:
 * the search tasks of one query shard against every index shard come
 * in a row (task qs * nx + xs), and each would redo all of it. */
typedef struct {
    float *Q; /* nq x d, normalised */
    size_t nq, d;
} knnq_t;

static void knnq_free(void *p)
{
    knnq_t *c = p;
    free(c->Q);
    free(c);
}

static const knnq_t *cached_queries(task_ctx_t *ctx, const Mlops__Tasks__KnnSearchArgs *a)
{
    /* the same shard key, selection and scale statistics give the same
     * rows: the statistics are the job's, fixed once its scale stage ran */
    char key[600];
    snprintf(key, sizeof key, "knnq|%s|%s|%d|%zu", ctx->ta->job_id, ctx->ta->inputs[0]->key,
             a->queries_test ? 1 : 0, a->n_scale_mean);
    knnq_t *c = wk_task_cache_get(ctx, key);
    if (c) return c;
    if (!(c = calloc(1, sizeof *c))) {
        wk_task_fail(ctx, 1, "out of memory");
        return NULL;
    }
    mlk_features *q = NULL;
    int rc = prepare_queries(ctx, a->queries_test, a->n_scale_mean, a->scale_mean, a->scale_scale,
                             &q, &c->Q, &c->d);
    c->nq = q ? q->nrows : 0;
    mlk_features_destroy(&q);
    if (rc != 0) {
        knnq_free(c);
        return NULL;
    }
    wk_task_cache_put(ctx, key, c, knnq_free);
    return c;
}

/* Args: KnnSearchArgs. Inputs: query shard, index shard. */
int wk_kind_knn_search(task_ctx_t *ctx)
{
    Mlops__Tasks__KnnSearchArgs *a = wk_task_args(ctx, &mlops__tasks__knn_search_args__descriptor);
    if (!a) return -1;
    uint32_t k = a->k;
    const knnq_t *c = NULL;
    knnlist_t l = {0};
    int rc = -1;
    if (k == 0 || k > (1u << 20) || a->n_scale_mean != a->n_scale_scale || ctx->ta->n_inputs != 2)
        wk_task_fail(ctx, 0,
                     "knn_search: damaged task arguments (k=%u, %zu means, %zu scales, %zu inputs)",
                     k, a->n_scale_mean, a->n_scale_scale, ctx->ta->n_inputs);
    else if ((c = cached_queries(ctx, a)) != NULL &&
             search_index(ctx, c->Q, c->nq, c->d, 1, a->index_train, k, &l) == 0 &&
             list_output(ctx, l.t, l.label) == 0) {
        wk_task_metric(ctx, "rows", (double)c->nq);
        rc = 0;
    }
    /* c belongs to the thread cache */
    list_free(&l);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* Args: KnnClassifyArgs. Inputs: the query shard, then its lists from
 *       every index shard in index shard order — or, direct (recomputing
 *       a lost prediction shard after the lists are gone), the index
 *       shards themselves, searched here.
 * Output: frame (label, predicted), row_id = the query's row id.
 * Result: KnnClassifyResult. */
int wk_kind_knn_classify(task_ctx_t *ctx)
{
    Mlops__Tasks__KnnClassifyArgs *a =
        wk_task_args(ctx, &mlops__tasks__knn_classify_args__descriptor);
    if (!a) return -1;
    uint32_t k = a->k;
    int weights = a->distance_weights, qtest = a->queries_test, direct = a->direct,
        xtrain = a->index_train;
    size_t ncls = a->n_classes, nscale = a->n_scale_mean;
    char **cls = a->classes;
    const double *mean = a->scale_mean, *scale = a->scale_scale;
    mlk_features *q = NULL;
    knnlist_t m = {0};
    int32_t *pred = NULL, *compact = NULL;
    mlk_frame *f = NULL;
    float *Q = NULL;
    int rc = -1;
    if (k == 0 || k > (1u << 20) || ncls > 100000 || ctx->ta->n_inputs < 2 ||
        a->n_scale_scale != nscale) {
        wk_task_fail(ctx, 0, "knn_classify: damaged task arguments (k=%u, %zu classes, %zu inputs)",
                     k, ncls, ctx->ta->n_inputs);
        goto out;
    }
    if (direct) {
        size_t d = 0, n = ctx->ta->n_inputs - 1;
        knnlist_t *ls = calloc(nz(n), sizeof *ls);
        if (!ls) {
            wk_task_fail(ctx, 1, "out of memory");
            goto out;
        }
        int bad = prepare_queries(ctx, qtest != 0, nscale, mean, scale, &q, &Q, &d);
        for (size_t i = 0; i < n && !bad; i++) bad = search_index(ctx, Q, q->nrows, d, 1 + i, xtrain != 0, k, &ls[i]);
        if (!bad) bad = merge_lists(ctx, ls, n, q->nrows, k, 1, &m);
        for (size_t i = 0; i < n; i++) list_free(&ls[i]);
        free(ls);
        if (bad) goto out;
    } else {
        if (features_input(ctx, 0, &q) || select_rows(ctx, 0, &q, qtest ? 1 : -1)) goto out;
        if (lists_merge(ctx, 1, ctx->ta->n_inputs - 1, NULL, q->nrows, k, 1, &m) != 0) goto out;
    }
    size_t nq = q->nrows;
    for (size_t i = 0; i < nq; i++)
        if (mlk_topk_count(m.t, i) < k) {
            wk_task_fail(ctx, 0, "knn: k=%u is more than the %zu index rows", k, mlk_topk_count(m.t, i));
            goto out;
        }
    /* vote over the neighbours' classes: ids become slots of `compact` */
    pred = malloc(nz(nq) * sizeof *pred);
    compact = malloc(nz(nq * k) * sizeof *compact);
    if (!pred || !compact) {
        wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nq * k; i++) {
        compact[i] = m.label[i];
        m.t->id[i] = (int64_t)i;
    }
    if (mlk_knn_classify(m.t, compact, nq * k, weights ? MLK_KNN_DISTANCE : MLK_KNN_UNIFORM, pred, ctx->err,
                         sizeof ctx->err) != 0)
        goto out;
    uint64_t correct = 0;
    const char *names[2] = {"label", "predicted"};
    mlk_coltype types[2] = {MLK_STR, MLK_STR};
    f = mlk_frame_new(2, names, types, nq);
    if (!f) {
        wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nq; i++) {
        correct += pred[i] == q->label[i];
        const char *tl = q->label[i] >= 0 && (size_t)q->label[i] < ncls ? cls[q->label[i]] : NULL;
        const char *pl = pred[i] >= 0 && (size_t)pred[i] < ncls ? cls[pred[i]] : NULL;
        f->row_id[i] = q->row_id[i];
        if (mlk_frame_str_push(f, 0, i, tl ? tl : "", tl ? strlen(tl) : 0, !tl) ||
            mlk_frame_str_push(f, 1, i, pl ? pl : "", pl ? strlen(pl) : 0, !pl)) {
            wk_task_fail(ctx, 1, "out of memory");
            goto out;
        }
        f->nrows = i + 1;
    }
    if (wk_task_output_frame(ctx, f) != 0) goto out;
    Mlops__Tasks__KnnClassifyResult res = MLOPS__TASKS__KNN_CLASSIFY_RESULT__INIT;
    res.queries = nq;
    res.correct = correct;
    if (wk_task_result_pack(ctx, &res.base) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)nq);
    wk_task_metric(ctx, "correct", (double)correct);
    rc = 0;
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    mlk_features_destroy(&q);
    list_free(&m);
    free(pred);
    free(compact);
    free(Q);
    mlk_frame_destroy(&f);
    return rc;
}

/* ------------------------------------------------------------------ */
/* recommend                                                           */

/* The user and item columns of a viewed frame shard (string columns). */
static int key_columns(task_ctx_t *ctx, const mlk_frameview *v, const char *user, const char *item,
                       int *cu, int *ci)
{
    *cu = mlk_frame_view_col(v, user);
    *ci = mlk_frame_view_col(v, item);
    if (*cu < 0 || *ci < 0 || v->cols[*cu].type != MLK_STR || v->cols[*ci].type != MLK_STR)
        return wk_task_fail(ctx, 0, "knn: shard %s has no text columns '%s' and '%s'", ctx->ta->inputs[0]->key, user,
                         item);
    return 0;
}

/* Row r of viewed string column c in place, up to its first NUL byte
 * (the keys travel as C strings). */
static const char *key_at(const mlk_colview *c, size_t r, size_t *len)
{
    const char *v = mlk_view_str_at(c, r, len);
    *len = strnlen(v, *len);
    return v;
}

/* What rec_keys gathers from its frame shard (read in place, so the
 * keys are copied into the maps before the view goes). */
typedef struct {
    task_ctx_t *ctx;
    const char *user, *item;
    mlk_strid *seen[2]; /* users, items: local id = first-seen order */
    int32_t *pairs;     /* the n pairs' local user ids, then (at rows) their item ids */
    size_t n, rows, missing;
} keys_arg_t;

static int keys_fn(const void *data, size_t len, void *arg)
{
    keys_arg_t *a = arg;
    mlk_frameview *v = NULL;
    int cu, ci, rc = -1;
    if (mlk_frame_view(data, len, &v) != 0)
        return wk_task_fail(a->ctx, 0, "shard %s is not a valid frame", a->ctx->ta->inputs[0]->key);
    if (key_columns(a->ctx, v, a->user, a->item, &cu, &ci)) goto out;
    a->rows = v->nrows;
    if (!(a->seen[0] = mlk_strid_new(v->nrows / 8)) || !(a->seen[1] = mlk_strid_new(v->nrows / 64)) ||
        !(a->pairs = malloc(nz(v->nrows) * 2 * sizeof *a->pairs))) {
        wk_task_fail(a->ctx, 1, "out of memory");
        goto out;
    }
    const mlk_colview *col[2] = {&v->cols[cu], &v->cols[ci]};
    for (size_t i = 0; i < v->nrows; i++) {
        if (col[0]->missing[i] || col[1]->missing[i]) {
            a->missing++;
            continue;
        }
        for (int s = 0; s < 2; s++) {
            size_t l;
            const char *k = key_at(col[s], i, &l);
            int64_t id = mlk_strid_add(a->seen[s], k, l);
            if (id < 0 || id > INT32_MAX) {
                wk_task_fail(a->ctx, 1, "out of memory");
                goto out;
            }
            a->pairs[(size_t)s * v->nrows + a->n] = (int32_t)id;
        }
        a->n++;
    }
    rc = 0;
out:
    mlk_frame_view_destroy(&v);
    return rc;
}

/* Args: RecKeysArgs. Result: RecKeysResult, the distinct users and items
 * in first-seen order. Output: the pairs shard of the rows with both (in
 * row order), in those lists' ids. Rows missing either are skipped. */
int wk_kind_rec_keys(task_ctx_t *ctx)
{
    Mlops__Tasks__RecKeysArgs *a = wk_task_args(ctx, &mlops__tasks__rec_keys_args__descriptor);
    if (!a) return -1;
    keys_arg_t ka = {.ctx = ctx, .user = a->user_column, .item = a->item_column};
    const char **keys[2] = {NULL, NULL};
    uint8_t *buf = NULL;
    int rc = -1;
    if (wk_task_input_with(ctx, 0, keys_fn, &ka) != 0) goto out;
    size_t n[2] = {mlk_strid_count(ka.seen[0]), mlk_strid_count(ka.seen[1])};
    bw_t w;
    bw_init(&w);
    bw_put(&w, "MLKK", 4);
    bw_u32(&w, 1);
    bw_u64(&w, ka.n);
    bw_put(&w, ka.pairs, ka.n * 4);
    bw_put(&w, ka.pairs + ka.rows, ka.n * 4);
    for (int s = 0; s < 2; s++) {
        if (!(keys[s] = malloc(nz(n[s]) * sizeof *keys[s]))) {
            bw_free(&w);
            wk_task_fail(ctx, 1, "out of memory");
            goto out;
        }
        bw_u64(&w, n[s]);
        for (size_t i = 0; i < n[s]; i++) {
            keys[s][i] = mlk_strid_key(ka.seen[s], i);
            bw_blob(&w, keys[s][i], strlen(keys[s][i]));
        }
    }
    size_t len;
    if (!(buf = bw_take(&w, &len))) {
        wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    if (wk_task_output(ctx, NULL, buf, len) != 0) goto out;
    Mlops__Tasks__RecKeysResult res = MLOPS__TASKS__REC_KEYS_RESULT__INIT;
    res.n_users = n[0];
    res.users = (char **)keys[0]; /* packed, not modified */
    res.n_items = n[1];
    res.items = (char **)keys[1];
    if (wk_task_result_pack(ctx, &res.base) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)ka.n);
    wk_task_metric(ctx, "rows_missing", (double)ka.missing);
    rc = 0;
out:
    for (int s = 0; s < 2; s++) {
        free(keys[s]);
        mlk_strid_destroy(&ka.seen[s]);
    }
    free(ka.pairs);
    free(buf);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* The pairs of the shards read so far, in the merged keys' first-seen
 * ids (ranked once every shard is read). */
typedef struct {
    task_ctx_t *ctx;
    size_t i;          /* the input being read */
    mlk_strid *map[2]; /* the merged users and items */
    int32_t *v[2];     /* users, items */
    size_t n, cap;
} pairs_arg_t;

/* The shard's local ids of side s (at ids, m of them, unaligned) as
 * merged ids at dst; its key list is read from r and added to the
 * merged keys. 0, 1 for a damaged shard, or -1 with the task failed. */
static int map_ids(pairs_arg_t *a, int s, br_t *r, const uint8_t *ids, size_t m, int32_t *dst)
{
    uint64_t nk = br_u64(r);
    if (r->err || nk > (r->n - r->at) / 8) return 1;
    int32_t *lu = malloc(nz((size_t)nk) * sizeof *lu);
    if (!lu) return wk_task_fail(a->ctx, 1, "out of memory");
    int rc = 0;
    for (uint64_t k = 0; k < nk && !rc; k++) {
        size_t len;
        const uint8_t *key = br_blob(r, &len);
        /* the keys are C strings (the recommender's names): one holding
         * a NUL is damaged */
        int64_t id = r->err || memchr(key, 0, len) ? -2 : mlk_strid_add(a->map[s], (const char *)key, len);
        if (id == -2 || id > INT32_MAX) rc = 1;
        else if (id < 0) rc = wk_task_fail(a->ctx, 1, "out of memory");
        else lu[k] = (int32_t)id;
    }
    if (m) memcpy(dst, ids, m * 4);
    for (size_t j = 0; j < m && !rc; j++) {
        if (dst[j] < 0 || (uint64_t)dst[j] >= nk) rc = 1;
        else dst[j] = lu[dst[j]];
    }
    free(lu);
    return rc;
}

static int pairs_fn(const void *data, size_t len, void *arg)
{
    pairs_arg_t *a = arg;
    br_t r;
    br_init(&r, data, len);
    char magic[4] = {0};
    br_get(&r, magic, 4);
    uint32_t ver = br_u32(&r);
    uint64_t m = br_u64(&r);
    int bad = r.err || memcmp(magic, "MLKK", 4) || ver != 1 || m > (len - r.at) / 8;
    if (!bad && a->n + m > a->cap) {
        size_t cap = (a->n + (size_t)m) * 2;
        for (int s = 0; s < 2; s++) {
            int32_t *x = realloc(a->v[s], cap * sizeof *x);
            if (!x) return wk_task_fail(a->ctx, 1, "out of memory");
            a->v[s] = x;
        }
        a->cap = cap;
    }
    const uint8_t *ids = (const uint8_t *)data + r.at;
    if (!bad) {
        r.at += (size_t)m * 8;
        for (int s = 0; s < 2 && !bad; s++) {
            /* a shard of no pairs still lists its keys; v[s] may be
             * unallocated then */
            int32_t *dst = m ? a->v[s] + a->n : NULL;
            int rc = map_ids(a, s, &r, ids + (size_t)s * m * 4, (size_t)m, dst);
            if (rc < 0) return rc;
            bad = rc != 0;
        }
    }
    if (bad || !br_done(&r))
        return wk_task_fail(a->ctx, 0, "shard %s is not a pairs shard", a->ctx->ta->inputs[a->i]->key);
    a->n += (size_t)m;
    return 0;
}

/* The recommendation data of a job and its merged keys: a user's or an
 * item's id is its rank among them (mlk_strid_sort_keys, as the
 * coordinator ranks the same key lists), so the ~12,000 names need not
 * travel in every task's arguments. */
typedef struct {
    mlk_rec_data *d;
    mlk_strid *map[2];   /* holds the keys' bytes */
    const char **key[2]; /* users, items by id */
} recdata_t;

static void rec_data_free(void *p)
{
    recdata_t *r = p;
    if (!r) return;
    mlk_rec_data_destroy(&r->d);
    for (int s = 0; s < 2; s++) {
        mlk_strid_destroy(&r->map[s]);
        free(r->key[s]);
    }
    free(r);
}

/* Rank side s's merged keys: key[s] gets them sorted, and the pairs'
 * first-seen ids become ranks. */
static int rank_keys(pairs_arg_t *a, int s, recdata_t *r)
{
    size_t n = mlk_strid_count(a->map[s]);
    int32_t *rank = malloc(nz(n) * sizeof *rank);
    if (!(r->key[s] = malloc(nz(n) * sizeof *r->key[s])) || !rank) {
        free(rank);
        return wk_task_fail(a->ctx, 1, "out of memory");
    }
    for (size_t i = 0; i < n; i++) r->key[s][i] = mlk_strid_key(a->map[s], i);
    mlk_strid_sort_keys(r->key[s], n);
    for (size_t i = 0; i < n; i++)
        rank[mlk_strid_find(a->map[s], r->key[s][i], strlen(r->key[s][i]))] = (int32_t)i;
    for (size_t i = 0; i < a->n; i++) a->v[s][i] = rank[a->v[s][i]];
    free(rank);
    return 0;
}

/* The pairs of inputs [0, nin), in input (= time) order, as the
 * leave-last-out data (binary user vectors), with the merged keys;
 * nusers and nitems are the coordinator's counts of them (checked). */
static int load_rec_data(task_ctx_t *ctx, size_t nin, size_t nusers, size_t nitems, recdata_t **out)
{
    pairs_arg_t a = {.ctx = ctx};
    recdata_t *r = calloc(1, sizeof *r);
    int rc = 0;
    /* the hints size the first tables only (they grow): the counts come
     * from a peer, so they are capped */
    if (!r || !(a.map[0] = mlk_strid_new(nusers < (1u << 16) ? nusers : (1u << 16))) ||
        !(a.map[1] = mlk_strid_new(nitems < (1u << 16) ? nitems : (1u << 16))))
        rc = wk_task_fail(ctx, 1, "out of memory");
    for (size_t i = 0; i < nin && !rc; i++) {
        a.i = i;
        rc = wk_task_input_with(ctx, i, pairs_fn, &a);
    }
    if (!rc && (mlk_strid_count(a.map[0]) != nusers || mlk_strid_count(a.map[1]) != nitems))
        rc = wk_task_fail(ctx, 0,
                          "knn: damaged task arguments (%zu users and %zu items; the pair shards "
                          "hold %zu and %zu)",
                          nusers, nitems, mlk_strid_count(a.map[0]), mlk_strid_count(a.map[1]));
    for (int s = 0; s < 2 && !rc; s++) rc = rank_keys(&a, s, r);
    if (!rc) {
        char err[512];
        r->d = mlk_rec_split(a.v[0] ? a.v[0] : (int32_t[]){0}, a.v[1] ? a.v[1] : (int32_t[]){0}, a.n,
                             nusers, nitems, MLK_REC_BINARY, err, sizeof err);
        if (!r->d) rc = wk_task_fail(ctx, 0, "knn: %s", err);
    }
    for (int s = 0; s < 2; s++) {
        if (r) r->map[s] = a.map[s];
        else mlk_strid_destroy(&a.map[s]);
        free(a.v[s]);
    }
    if (rc) rec_data_free(r);
    else *out = r;
    return rc;
}

/* Built once per executor thread: every rec_search / rec_recommend task
 * of the job reads the same pair shards. */
static int cached_rec_data(task_ctx_t *ctx, size_t nin, size_t nusers, size_t nitems,
                           const recdata_t **out)
{
    char key[600];
    snprintf(key, sizeof key, "rec|%s|%zu|%zu|%zu|%s", ctx->ta->job_id, nin, nusers, nitems,
             nin ? ctx->ta->inputs[nin - 1]->key : "");
    *out = wk_task_cache_get(ctx, key);
    if (*out) return 0;
    recdata_t *r = NULL;
    if (load_rec_data(ctx, nin, nusers, nitems, &r) != 0) return -1;
    wk_task_cache_put(ctx, key, r, rec_data_free);
    *out = r;
    return 0;
}

int wk_kind_rec_search(task_ctx_t *ctx)
{
    Mlops__Tasks__RecSearchArgs *a = wk_task_args(ctx, &mlops__tasks__rec_search_args__descriptor);
    if (!a) return -1;
    uint64_t nu = a->users, ni = a->items;
    uint32_t k = a->k;
    uint64_t qb = a->query_begin, qc = a->query_count, ub = a->index_begin, ue = a->index_end;
    int both = a->both;
    const recdata_t *rd = NULL;
    int rc = -1;
    uint64_t nl = both ? qc + (ue - ub) : qc;
    if (k == 0 || k > (1u << 20) || nu > INT32_MAX || ni > INT32_MAX || qb > nu || qc > nu - qb ||
        ub > ue || ue > nu || (both && qb < ue && ub < qb + qc))
        rc = wk_task_fail(ctx, 0, "rec_search: damaged task arguments (k=%u, %llu users, %llu items)",
                          k, (unsigned long long)nu, (unsigned long long)ni);
    else if (shard_fits(ctx, "rec_search", nl * k, LIST_ENTRY, LIST_HEADER) == 0)
        rc = cached_rec_data(ctx, ctx->ta->n_inputs, (size_t)nu, (size_t)ni, &rd);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    if (rc != 0) return -1;
    const mlk_rec_data *d = rd->d;
    rc = -1;
    /* both ways: one list shard, the queries' lists then the index
     * users'; the two halves are views into it */
    mlk_topk *t = mlk_topk_new((size_t)nl, k);
    mlk_topk fwd, back;
    if (t) {
        fwd = (mlk_topk){(size_t)qc, k, t->sim, t->id};
        back = (mlk_topk){(size_t)(nl - qc), k, t->sim + qc * k, t->id + qc * k};
    }
    if (!t) wk_task_fail(ctx, 1, "out of memory");
    else if ((both ? mlk_rec_neighbors_both(d, (size_t)qb, (size_t)qc, (size_t)ub, (size_t)ue, &fwd, &back,
                                            ctx->err, sizeof ctx->err)
                   : mlk_rec_neighbors(d, (size_t)qb, (size_t)qc, (size_t)ub, (size_t)ue, t, ctx->err,
                                       sizeof ctx->err)) == 0 &&
             list_output(ctx, t, NULL) == 0) {
        wk_task_metric(ctx, "rows", (double)nl);
        rc = 0;
    }
    mlk_topk_destroy(&t);
    /* d belongs to the thread cache */
    return rc;
}

/* Args: RecExportArgs. Inputs: every pairs shard. Result:
 * RecExportResult, the training data every rec_search and rec_recommend
 * task of the job rebuilt, for the registered recommender. */
int wk_kind_rec_export(task_ctx_t *ctx)
{
    Mlops__Tasks__RecExportArgs *a = wk_task_args(ctx, &mlops__tasks__rec_export_args__descriptor);
    if (!a) return -1;
    uint64_t nu = a->users, ni = a->items;
    const recdata_t *rd = NULL;
    int rc = -1;
    if (nu > INT32_MAX || ni > INT32_MAX)
        wk_task_fail(ctx, 0, "rec_export: damaged task arguments (%llu users, %llu items)",
                     (unsigned long long)nu, (unsigned long long)ni);
    else
        rc = cached_rec_data(ctx, ctx->ta->n_inputs, (size_t)nu, (size_t)ni, &rd);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    if (rc != 0) return -1;
    const mlk_rec_data *d = rd->d;
    rc = -1;
    size_t nnz = (size_t)d->indptr[d->nusers];
    /* packed varints: at most 10 bytes a number, in one result frame */
    uint64_t numbers = (uint64_t)nnz + d->nusers + 2 * (uint64_t)d->nitems + 1;
    if (numbers > SHARD_MAX_BYTES / 10)
        return wk_task_fail(ctx, 0,
                            "rec_export: %zu training interactions are more than a result of %zu "
                            "MiB may hold; the recommender cannot be registered",
                            nnz, (size_t)(MLOPS_MAX_FRAME >> 20));
    int32_t *pop = malloc(nz(d->nitems) * sizeof *pop);
    int64_t *cnt = malloc(nz(d->nitems) * sizeof *cnt);
    size_t np = 0;
    if (!pop || !cnt || mlk_rec_popular_rank(d, pop, &np) != 0) {
        wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < np; i++) cnt[i] = d->item_count[pop[i]];
    Mlops__Tasks__RecExportResult res = MLOPS__TASKS__REC_EXPORT_RESULT__INIT;
    res.n_indptr = d->nusers + 1;
    res.indptr = d->indptr;
    res.n_items = nnz;
    res.items = d->items;
    res.n_popular = res.n_popular_count = np;
    res.popular = pop;
    res.popular_count = cnt;
    if (wk_task_result_pack(ctx, &res.base) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)nnz);
    rc = 0;
out:
    /* d belongs to the thread cache */
    free(pop);
    free(cnt);
    return rc;
}

/* Args: RecRecommendArgs. Inputs: the pairs shards, then the R lists of
 * this user range. Output: frame (user, rank, item, score). Result:
 * RecRecommendResult. */
int wk_kind_rec_recommend(task_ctx_t *ctx)
{
    Mlops__Tasks__RecRecommendArgs *a =
        wk_task_args(ctx, &mlops__tasks__rec_recommend_args__descriptor);
    if (!a) return -1;
    uint64_t nu = a->users, ni = a->items;
    uint32_t k = a->k;
    uint64_t qb = a->query_begin, qc = a->query_count;
    uint32_t topn = a->top_n, R = a->ranges;
    const char *const *users = NULL, *const *items = NULL;
    const recdata_t *rd = NULL;
    const mlk_rec_data *d = NULL;
    knnlist_t m = {0};
    int32_t *recs = NULL, *pop = NULL;
    double *scores = NULL;
    mlk_frame *f = NULL;
    int rc = -1;
    if (k == 0 || k > (1u << 20) || nu > INT32_MAX || ni > INT32_MAX || qb > nu || qc > nu - qb ||
        topn == 0 || topn > 100000 || R == 0 || R >= ctx->ta->n_inputs ||
        (a->n_list_rows && a->n_list_rows != R)) {
        wk_task_fail(ctx, 0,
                     "rec_recommend: damaged task arguments (k=%u, %llu users, %llu items, top %u, "
                     "%u ranges)",
                     k, (unsigned long long)nu, (unsigned long long)ni, topn, R);
        goto out;
    }
    /* the output frame: row id, rank and score, and two names a row */
    if (shard_fits(ctx, "rec_recommend", qc * topn, 3 * sizeof(double), 0) != 0) goto out;
    size_t nin = ctx->ta->n_inputs - R;
    if (cached_rec_data(ctx, nin, (size_t)nu, (size_t)ni, &rd) != 0) goto out;
    d = rd->d;
    users = rd->key[0];
    items = rd->key[1];
    if (lists_merge(ctx, nin, R, a->n_list_rows ? a->list_rows : NULL, (size_t)qc, k, 0, &m) != 0) goto out;
    recs = malloc(nz(qc * topn) * sizeof *recs);
    pop = malloc(nz(qc * topn) * sizeof *pop);
    scores = malloc(nz(qc * topn) * sizeof *scores);
    if (!recs || !pop || !scores) {
        wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    if (mlk_rec_recommend_scored(d, m.t, (size_t)qb, topn, recs, scores, ctx->err, sizeof ctx->err) != 0 ||
        mlk_rec_popular(d, (size_t)qb, (size_t)qc, topn, pop, ctx->err, sizeof ctx->err) != 0)
        goto out;
    mlk_rec_metrics mk, mp;
    if (mlk_rec_evaluate(recs, (size_t)qc, topn, d->heldout + qb, &mk) != 0 ||
        mlk_rec_evaluate(pop, (size_t)qc, topn, d->heldout + qb, &mp) != 0) {
        wk_task_fail(ctx, 0, "rec_recommend: evaluation failed");
        goto out;
    }
    const char *names[4] = {"user", "rank", "item", "score"};
    mlk_coltype types[4] = {MLK_STR, MLK_F64, MLK_STR, MLK_F64};
    f = mlk_frame_new(4, names, types, (size_t)(qc * topn));
    if (!f) {
        wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    size_t row = 0;
    for (size_t q = 0; q < qc; q++)
        for (size_t j = 0; j < topn; j++) {
            int32_t it = recs[q * topn + j];
            if (it < 0 || (uint64_t)it >= ni) continue;
            f->row_id[row] = (int64_t)((qb + q) * topn + j);
            f->cols[1].f64[row] = (double)(j + 1);
            f->cols[3].f64[row] = scores[q * topn + j];
            const char *un = users[qb + q];
            if (mlk_frame_str_push(f, 0, row, un, strlen(un), 0) ||
                mlk_frame_str_push(f, 2, row, items[it], strlen(items[it]), 0)) {
                wk_task_fail(ctx, 1, "out of memory");
                goto out;
            }
            f->nrows = ++row;
        }
    if (wk_task_output_frame(ctx, f) != 0) goto out;
    double n = (double)mk.nusers;
    Mlops__Tasks__RecRecommendResult res = MLOPS__TASKS__REC_RECOMMEND_RESULT__INIT;
    res.users = mk.nusers;
    res.hit = mk.hit * n;
    res.precision = mk.precision * n;
    res.recall = mk.recall * n;
    res.ndcg = mk.ndcg * n;
    res.popular_hit = mp.hit * n;
    res.popular_ndcg = mp.ndcg * n;
    if (wk_task_result_pack(ctx, &res.base) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)row);
    rc = 0;
out:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    /* d belongs to the thread cache */
    list_free(&m);
    free(recs);
    free(pop);
    free(scores);
    mlk_frame_destroy(&f);
    return rc;
}
