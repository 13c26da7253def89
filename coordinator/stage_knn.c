/* stage_knn.c: the k-NN stage, cosine similarity, in two modes.
 *
 * Why this shape: the neighbour search is the costly part and splits
 * exactly (knn.h: per-shard top-k lists merge into the single-search
 * result, ties to the lower id), so it runs as independent tasks over
 * (query block x index block) pairs; the lists stay in the workers'
 * stores and a second phase merges them per query block. Only counts and
 * metric sums reach the coordinator, and they are added here in shard
 * order, so the numbers do not depend on how many workers ran what.
 *
 * classify (worker/kind_knn.c "knn_search", "knn_classify"):
 *   index   = the rows of the chain's last stage (stage_input_of); only
 *             the train rows (test flag 0) when that stage is split;
 *   queries = the test rows of the split shards, or, with knn.queries
 *             (IDX), the query shards "<job>/ingest.q/<t>" made by the
 *             IDX ingest stage (scaled here with the scale stage's mean
 *             and scale when the job has one, as the input was).
 *   phase 0 "knn_search": task qs*nx + xs = top-k of query shard qs
 *           within index shard xs -> list shard "<job>/knn.p0/<t>";
 *   phase 1 "knn_classify": task qs merges its nx lists in index shard
 *           order, votes (uniform or distance weights) and writes the
 *           predictions (frame: label, predicted) as the final output;
 *           result queries and correct ones -> knn_accuracy.
 * recommend ("rec_keys", "rec_search", "rec_recommend"):
 *   reads the frame shards of clean (or ingest): columns knn.user and
 *   knn.item, rows in time order.
 *   phase 0 every shard returns its distinct users and items and writes
 *           its (user, item) pairs in its own ids with those keys
 *           ".p1/"; the keys are merged and sorted here (numerically
 *           when all are numbers, else by code point): a user's id is
 *           its rank, so ties go to the lower one. The later tasks
 *           merge and rank the pair shards' keys the same way
 *           (mlk_strid_sort_keys), so only the counts travel;
 *   phase 1 one task per pair of user ranges a <= b (rec_pair): the
 *           neighbours of range a among range b and, for a < b, of b
 *           among a from the same dot products, in one list shard
 *           (the leave-last-out data is built once per executor
 *           thread from all the pairs, recommend.h) ".p2/";
 *   phase 2 task qr: merge its R lists (the rows of each pair's shard
 *           that are qr's), recommend top N unseen items,
 *           the most-popular baseline, RecBole metrics; final output
 *           frame (user, rank, item, score); result: metric sums.
 *   phase 3 "rec_export", only with register: (run between phases 0 and
 *           1, as phase 2's outputs must stay the stage's last): one
 *           task returns the leave-last-out training data and the
 *           most-popular ranking (RecExportResult), kept in the blob for
 *           the recommender the job registers when it succeeds
 *           (stage_knn_recommender, docs/model-format.md).
 *
 * Task arguments and results: the Knn* and Rec* messages of
 * proto/tasks.proto.
 *
 * blob: u32 mode, u32 phase, then
 *   classify:  u32 qsrc (0 query shards, 1 split test rows), u32 nqs,
 *              u32 nxs, u32 xsel (1: train rows only), u32 nscale,
 *              f64 mean[nscale], f64 scale[nscale];
 *   recommend: u32 nin, u64 nusers, u64 nitems, u64 range, u32 R,
 *              strings users[nusers], strings items[nitems], and once
 *              phase 3 is done: u64 len, the RecExportResult bytes. */
#include "bytes.h"
#include "err.h"
#include "jsondump.h"
#include "stages.h"
#include "strid.h"
#include "tasks.pb-c.h"
#include <czmq.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MODE_CLASSIFY = 0, MODE_RECOMMEND = 1 };
enum { QSRC_QUERIES = 0, QSRC_SPLIT = 1 };
#define REC_RANGES 4
#define KNN_MAX_K 1000 /* lists hold queries x k entries; merging costs O(k^2) */

typedef struct {
    uint32_t mode, phase;
    /* classify */
    uint32_t qsrc, nqs, nxs, xsel, nscale;
    double *mean, *scale;
    /* recommend */
    uint32_t nin, R;
    uint64_t nusers, nitems, range;
    char **users, **items;
    int unnamed; /* decoded without the names: not to be encoded */
    uint8_t *art; /* phase 3's RecExportResult, packed; NULL before */
    size_t art_len;
} knnplan_t;

static void plan_free(knnplan_t *p)
{
    free(p->mean);
    free(p->scale);
    for (uint64_t i = 0; p->users && i < p->nusers; i++) free(p->users[i]);
    for (uint64_t i = 0; p->items && i < p->nitems; i++) free(p->items[i]);
    free(p->users);
    free(p->items);
    free(p->art);
    memset(p, 0, sizeof *p);
}

static int plan_encode(stage_t *st, const knnplan_t *p)
{
    if (p->unnamed) return MLOPS_EINVAL;
    bw_t w;
    bw_init(&w);
    bw_u32(&w, p->mode);
    bw_u32(&w, p->phase);
    if (p->mode == MODE_CLASSIFY) {
        bw_u32(&w, p->qsrc);
        bw_u32(&w, p->nqs);
        bw_u32(&w, p->nxs);
        bw_u32(&w, p->xsel);
        bw_u32(&w, p->nscale);
        for (uint32_t c = 0; c < p->nscale; c++) bw_f64(&w, p->mean[c]);
        for (uint32_t c = 0; c < p->nscale; c++) bw_f64(&w, p->scale[c]);
    } else {
        bw_u32(&w, p->nin);
        bw_u64(&w, p->nusers);
        bw_u64(&w, p->nitems);
        bw_u64(&w, p->range);
        bw_u32(&w, p->R);
        for (uint64_t i = 0; i < p->nusers; i++) bw_str(&w, p->users[i]);
        for (uint64_t i = 0; i < p->nitems; i++) bw_str(&w, p->items[i]);
        if (p->art) {
            bw_u64(&w, p->art_len);
            bw_put(&w, p->art, p->art_len);
        }
    }
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    return st->blob ? 0 : MLOPS_ENOMEM;
}

/* names: 0 skips the recommend mode's user and item names (walked, not
 * copied: the task arguments do not carry them), and the plan may then
 * not be encoded again. */
static int plan_decode_names(const stage_t *st, knnplan_t *p, int names, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    p->mode = br_u32(&r);
    p->phase = br_u32(&r);
    if (p->mode == MODE_CLASSIFY) {
        p->qsrc = br_u32(&r);
        p->nqs = br_u32(&r);
        p->nxs = br_u32(&r);
        p->xsel = br_u32(&r);
        p->nscale = br_u32(&r);
        if (r.err || p->nscale > r.n / 16) goto bad;
        p->mean = calloc(p->nscale ? p->nscale : 1, sizeof *p->mean);
        p->scale = calloc(p->nscale ? p->nscale : 1, sizeof *p->scale);
        if (!p->mean || !p->scale) goto bad;
        for (uint32_t c = 0; c < p->nscale; c++) p->mean[c] = br_f64(&r);
        for (uint32_t c = 0; c < p->nscale; c++) p->scale[c] = br_f64(&r);
    } else if (p->mode == MODE_RECOMMEND) {
        p->nin = br_u32(&r);
        p->nusers = br_u64(&r);
        p->nitems = br_u64(&r);
        p->range = br_u64(&r);
        p->R = br_u32(&r);
        if (r.err || p->nusers > r.n / 4 || p->nitems > r.n / 4) goto bad;
        if (names) {
            p->users = calloc(p->nusers ? p->nusers : 1, sizeof *p->users);
            p->items = calloc(p->nitems ? p->nitems : 1, sizeof *p->items);
            if (!p->users || !p->items) goto bad;
            for (uint64_t i = 0; i < p->nusers && !r.err; i++) p->users[i] = br_str(&r);
            for (uint64_t i = 0; i < p->nitems && !r.err; i++) p->items[i] = br_str(&r);
        } else {
            for (uint64_t i = 0; i < p->nusers + p->nitems && !r.err; i++) br_skip_str(&r);
            p->unnamed = 1;
        }
        if (!r.err && r.at < r.n) {
            uint64_t n = br_u64(&r);
            if (r.err || n > r.n - r.at || !(p->art = malloc(n ? n : 1))) goto bad;
            br_get(&r, p->art, (size_t)n);
            p->art_len = (size_t)n;
        }
    } else {
        goto bad;
    }
    if (!br_done(&r)) goto bad;
    return 0;
bad:
    plan_free(p);
    return mlops_seterr(err, errlen, MLOPS_EPARSE, "knn plan is damaged");
}

static int plan_decode(const stage_t *st, knnplan_t *p, char *err, size_t errlen)
{
    return plan_decode_names(st, p, 1, err, errlen);
}

static int add_key(task_args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_key(task_args_t *a, const char *fmt, ...)
{
    char key[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    return args_add_input(a, key);
}

/* ------------------------------------------------------------------ */
/* classify                                                            */

static int classify_start(job_t *j, stage_t *st, knnplan_t *p, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: no input stage");
    int split = !strcmp(in->name, "split");
    if (s->knn.has_queries) {
        if (s->input.format != MLOPS_INPUT_IDX || s->knn.queries.format != MLOPS_INPUT_IDX)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "knn: knn.queries is supported with IDX input and IDX queries only");
        double nq = job_metric(j, "rows_queries", -1);
        if (nq < 1) return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: the query set was not ingested");
        uint64_t sr = s->shard_rows;
        p->qsrc = QSRC_QUERIES;
        p->nqs = (uint32_t)(((uint64_t)nq + sr - 1) / sr);
        p->xsel = (uint32_t)split;
        stage_t *sc = job_stage(j, "scale");
        if (sc && sc->blob_len >= 8) {
            /* scale stage blob: u32 phase, u32 ncols, f64 mean[ncols], f64 scale[ncols] */
            br_t r;
            br_init(&r, sc->blob, sc->blob_len);
            br_u32(&r);
            uint32_t nc = br_u32(&r);
            if (r.err || sc->blob_len != 8 + (size_t)nc * 16)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "knn: the scale stage's plan is damaged");
            p->nscale = nc;
            p->mean = calloc(nc ? nc : 1, sizeof *p->mean);
            p->scale = calloc(nc ? nc : 1, sizeof *p->scale);
            if (!p->mean || !p->scale) return MLOPS_ENOMEM;
            for (uint32_t c = 0; c < nc; c++) p->mean[c] = br_f64(&r);
            for (uint32_t c = 0; c < nc; c++) p->scale[c] = br_f64(&r);
        }
    } else {
        if (!split)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "knn: classify needs knn.queries or a split stage (the test rows are the queries)");
        p->qsrc = QSRC_SPLIT;
        p->nqs = (uint32_t)in->ntasks;
        p->xsel = 1;
    }
    p->nxs = (uint32_t)in->ntasks;
    if (!p->nxs) return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: the input has no shards");
    /* scikit-learn refuses n_neighbors > n_samples; the lists are nq x k */
    uint64_t total = stage_total_rows(in);
    uint64_t nidx = split ? (uint64_t)job_metric(j, "rows_train", (double)total) : total;
    if (s->knn.k > nidx)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: k=%u is more than the %llu index rows", s->knn.k,
                            (unsigned long long)nidx);
    return 0;
}

static const char *query_key(job_t *j, stage_t *st, const knnplan_t *p, size_t qs, char *buf, size_t n)
{
    if (p->qsrc == QSRC_SPLIT) {
        stage_t *in = stage_input_of(j, st);
        return in && qs < in->ntasks ? in->tasks[qs].output_key : NULL;
    }
    snprintf(buf, n, "%s/ingest.q/%zu", j->id, qs);
    return buf;
}

static int classify_args(job_t *j, stage_t *st, const knnplan_t *p, size_t t, task_args_t *out, char *err,
                         size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    char qbuf[200];
    int rc;
    if (p->phase == 0) {
        size_t qs = t / p->nxs, xs = t % p->nxs;
        const char *qk = query_key(j, st, p, qs, qbuf, sizeof qbuf);
        if (!in || qs >= p->nqs || xs >= in->ntasks || !qk || !in->tasks[xs].output_key)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn plan is damaged");
        if ((rc = args_add_input(out, qk)) || (rc = args_add_input(out, in->tasks[xs].output_key))) return rc;
        Mlops__Tasks__KnnSearchArgs a = MLOPS__TASKS__KNN_SEARCH_ARGS__INIT;
        a.k = j->spec->knn.k;
        a.queries_test = p->qsrc == QSRC_SPLIT;
        a.index_train = p->xsel != 0;
        a.n_scale_mean = a.n_scale_scale = p->nscale;
        a.scale_mean = p->mean;
        a.scale_scale = p->scale;
        return args_pack(out, &a.base);
    }
    /* after the stage, the lists may be gone: a lost prediction shard
     * is recomputed from the query and index shards directly */
    int direct = st->state == ST_DONE;
    const char *qk = query_key(j, st, p, t, qbuf, sizeof qbuf);
    if (!in || t >= p->nqs || !qk)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn plan is damaged");
    if ((rc = args_add_input(out, qk)) != 0) return rc;
    for (size_t xs = 0; xs < p->nxs; xs++) {
        if (direct)
            rc = xs < in->ntasks ? args_add_input(out, in->tasks[xs].output_key) : MLOPS_EINVAL;
        else rc = add_key(out, "%s/knn.p0/%zu", j->id, t * p->nxs + xs);
        if (rc) return rc;
    }
    size_t ncls = job_nclasses(j);
    char **cls = calloc(ncls ? ncls : 1, sizeof *cls);
    if (!cls) return MLOPS_ENOMEM;
    for (size_t c = 0; c < ncls; c++) cls[c] = (char *)job_class(j, c);
    Mlops__Tasks__KnnClassifyArgs a = MLOPS__TASKS__KNN_CLASSIFY_ARGS__INIT;
    a.k = j->spec->knn.k;
    a.distance_weights = j->spec->knn.weights == MLOPS_KNN_DISTANCE;
    a.queries_test = p->qsrc == QSRC_SPLIT;
    a.n_classes = ncls;
    a.classes = cls;
    a.direct = direct;
    if (direct) {
        a.index_train = p->xsel != 0;
        a.n_scale_mean = a.n_scale_scale = p->nscale;
        a.scale_mean = p->mean;
        a.scale_scale = p->scale;
    }
    rc = args_pack(out, &a.base);
    free(cls);
    return rc;
}

static int classify_done(job_t *j, stage_t *st, knnplan_t *p, char *err, size_t errlen)
{
    if (p->phase == 0) {
        p->phase = 1;
        st->phase = 1;
        int rc = plan_encode(st, p);
        if (!rc) rc = stage_set_tasks(st, p->nqs, "knn_classify");
        if (rc) return rc;
        stage_set_output_keys(j, st, "/");
        return 1;
    }
    uint64_t nq = 0, correct = 0;
    for (size_t t = 0; t < st->ntasks; t++) {
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__KnnClassifyResult *r =
            mlops__tasks__knn_classify_result__unpack(NULL, tk->result_len, tk->result);
        int bad = !r || r->correct > r->queries;
        if (!bad) {
            nq += r->queries;
            correct += r->correct;
        }
        if (r) mlops__tasks__knn_classify_result__free_unpacked(r, NULL);
        if (bad)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "knn: damaged result from classify task %zu", t);
    }
    job_set_metric(j, "knn_queries", (double)nq);
    job_set_metric(j, "knn_accuracy", nq ? (double)correct / (double)nq : 0.0);
    job_logf(j, "knn: %llu of %llu queries classified correctly (k=%u)", (unsigned long long)correct,
             (unsigned long long)nq, j->spec->knn.k);
    return 0;
}

/* ------------------------------------------------------------------ */
/* recommend                                                           */

static stage_t *frame_stage(job_t *j)
{
    stage_t *s = job_stage(j, "clean");
    return s ? s : job_stage(j, "ingest");
}

/* Sort ids as the class labels are sorted: numbers numerically, else by
 * code point (UTF-8 byte order); the workers rank the keys of the pair
 * shards with the same function (kind_knn.c). */
static void sort_ids(char **v, size_t n) { mlk_strid_sort_keys((const char **)v, n); }

/* A bump allocator for unpacking the key sets: each of the 16 results
 * holds nearly every user and item (~12,000 strings at 1M rows), and
 * protobuf-c's malloc and free per string made the merge ~60 ms of the
 * coordinator's loop between the phases, with the workers idle. */
typedef struct {
    uint8_t *blk[48];
    size_t nblk, used, cap, cap0; /* cap0: the first block's size */
} keyarena_t;

static void *keyarena_alloc(void *data, size_t size)
{
    keyarena_t *a = data;
    size = (size + 15) & ~(size_t)15;
    if (a->nblk == 0 || size > a->cap - a->used) {
        /* doubling blocks: 48 of them hold more than any result */
        size_t cap = ((size_t)1 << 20) << (a->nblk < 24 ? a->nblk : 24);
        if (size > cap) cap = size;
        if (a->nblk == sizeof a->blk / sizeof *a->blk) return NULL;
        uint8_t *b = malloc(cap);
        if (!b) return NULL;
        if (a->nblk == 0) a->cap0 = cap;
        a->blk[a->nblk++] = b;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->blk[a->nblk - 1] + a->used;
    a->used += size;
    return p;
}

static void keyarena_nofree(void *data, void *p)
{
    (void)data;
    (void)p;
}

/* Forget every allocation, keeping the first block for the next unpack. */
static void keyarena_reset(keyarena_t *a, int all)
{
    for (size_t i = all ? 0 : 1; i < a->nblk; i++) free(a->blk[i]);
    a->nblk = all || a->nblk == 0 ? 0 : 1;
    a->used = 0;
    a->cap = a->nblk ? a->cap0 : 0;
}

/* Merge the per-shard key sets of phase 0 (RecKeysResult). The merged
 * lists are in first-seen order before the sort, which is a total order
 * (mlk_strid_sort_keys), so the ranks do not depend on that order. */
static int rec_merge_keys(job_t *j, stage_t *st, knnplan_t *p, char *err, size_t errlen)
{
    mlk_strid *seen[2] = {mlk_strid_new(1u << 14), mlk_strid_new(1u << 12)};
    char **v[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    keyarena_t arena = {.nblk = 0};
    ProtobufCAllocator alloc = {keyarena_alloc, keyarena_nofree, &arena};
    int rc = seen[0] && seen[1] ? 0 : MLOPS_ENOMEM;
    for (size_t t = 0; t < st->ntasks && !rc; t++) {
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__RecKeysResult *r =
            mlops__tasks__rec_keys_result__unpack(&alloc, tk->result_len, tk->result);
        if (!r) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "knn: damaged key set from task %zu", t);
            break;
        }
        char **got[2] = {r->users, r->items};
        size_t ngot[2] = {r->n_users, r->n_items};
        for (int s = 0; s < 2 && !rc; s++)
            for (size_t i = 0; i < ngot[s] && !rc; i++)
                if (mlk_strid_add(seen[s], got[s][i], strlen(got[s][i])) < 0) rc = MLOPS_ENOMEM;
        keyarena_reset(&arena, 0);
    }
    keyarena_reset(&arena, 1);
    for (int s = 0; s < 2 && !rc; s++) {
        size_t m = mlk_strid_count(seen[s]);
        if (!(v[s] = calloc(m ? m : 1, sizeof *v[s]))) rc = MLOPS_ENOMEM;
        for (; !rc && n[s] < m; n[s]++)
            if (!(v[s][n[s]] = strdup(mlk_strid_key(seen[s], n[s])))) rc = MLOPS_ENOMEM;
    }
    mlk_strid_destroy(&seen[0]);
    mlk_strid_destroy(&seen[1]);
    if (!rc && (n[0] == 0 || n[1] == 0))
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: no rows with both '%s' and '%s'", j->spec->knn.user,
                            j->spec->knn.item);
    if (!rc && (n[0] > INT32_MAX || n[1] > INT32_MAX))
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: too many users or items");
    if (rc) {
        for (int s = 0; s < 2; s++) {
            for (size_t i = 0; i < n[s]; i++) free(v[s][i]);
            free(v[s]);
        }
        return rc;
    }
    sort_ids(v[0], n[0]);
    sort_ids(v[1], n[1]);
    for (uint64_t i = 0; i < p->nusers; i++) free(p->users[i]);
    for (uint64_t i = 0; i < p->nitems; i++) free(p->items[i]);
    free(p->users);
    free(p->items);
    p->users = v[0];
    p->nusers = n[0];
    p->items = v[1];
    p->nitems = n[1];
    p->range = (p->nusers + REC_RANGES - 1) / REC_RANGES;
    p->R = (uint32_t)((p->nusers + p->range - 1) / p->range);
    return 0;
}

/* Phase 1's task t searches the pair of user ranges a <= b (a < b both
 * ways: similarities are symmetric), in the order (0,0), (0,1), ...,
 * (0,R-1), (1,1), ...: R(R+1)/2 tasks where R x R did each pair twice. */
static size_t rec_pairs(const knnplan_t *p) { return (size_t)p->R * (p->R + 1) / 2; }

static void rec_pair(const knnplan_t *p, size_t t, size_t *a, size_t *b)
{
    size_t first = 0;
    for (*a = 0; *a + 1 < p->R && t >= first + (p->R - *a); (*a)++) first += p->R - *a;
    *b = *a + (t - first);
}

static size_t rec_pair_task(const knnplan_t *p, size_t a, size_t b)
{
    if (a > b) {
        size_t x = a;
        a = b;
        b = x;
    }
    return a * p->R - a * (a - 1) / 2 + (b - a);
}

static void rec_range(const knnplan_t *p, size_t r, uint64_t *begin, uint64_t *count)
{
    *begin = r * p->range;
    uint64_t end = *begin + p->range < p->nusers ? *begin + p->range : p->nusers;
    *count = end - *begin;
}

static int rec_args(job_t *j, const knnplan_t *p, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = frame_stage(j);
    const mlops_jobspec_t *s = j->spec;
    if (!in || in->ntasks != p->nin) return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn plan is damaged");
    int rc;
    switch (p->phase) {
    case 0: {
        if (t >= p->nin || !in->tasks[t].output_key)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn plan is damaged");
        if ((rc = args_add_input(out, in->tasks[t].output_key)) != 0) return rc;
        Mlops__Tasks__RecKeysArgs a = MLOPS__TASKS__REC_KEYS_ARGS__INIT;
        a.user_column = s->knn.user;
        a.item_column = s->knn.item;
        return args_pack(out, &a.base);
    }
    case 1:
    case 2: {
        size_t qr = t, xr = 0;
        if (p->phase == 1) rec_pair(p, t, &qr, &xr);
        uint64_t qb, qc, xb, xc;
        if (qr >= p->R || p->R > REC_RANGES || (p->phase == 1 && (t >= rec_pairs(p) || xr >= p->R)))
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn plan is damaged");
        rec_range(p, qr, &qb, &qc);
        for (uint32_t i = 0; i < p->nin; i++)
            if ((rc = add_key(out, "%s/knn.p1/%u", j->id, i)) != 0) return rc;
        if (p->phase == 1) {
            rec_range(p, xr, &xb, &xc);
            Mlops__Tasks__RecSearchArgs a = MLOPS__TASKS__REC_SEARCH_ARGS__INIT;
            a.both = qr != xr;
            a.users = p->nusers;
            a.items = p->nitems;
            a.k = s->knn.k;
            a.query_begin = qb;
            a.query_count = qc;
            a.index_begin = xb;
            a.index_end = xb + xc;
            return args_pack(out, &a.base);
        }
        /* this range's lists in each pair's shard: after the other
         * range's when that one is the pair's first */
        uint64_t rows[REC_RANGES];
        for (uint32_t xr = 0; xr < p->R; xr++) {
            if ((rc = add_key(out, "%s/knn.p2/%zu", j->id, rec_pair_task(p, qr, xr))) != 0) return rc;
            rec_range(p, xr, &xb, &xc);
            rows[xr] = xr < qr ? xc : 0;
        }
        Mlops__Tasks__RecRecommendArgs a = MLOPS__TASKS__REC_RECOMMEND_ARGS__INIT;
        a.n_list_rows = p->R;
        a.list_rows = rows;
        a.users = p->nusers;
        a.items = p->nitems;
        a.k = s->knn.k;
        a.query_begin = qb;
        a.query_count = qc;
        a.top_n = s->knn.top_n;
        a.ranges = p->R;
        return args_pack(out, &a.base);
    }
    case 3: {
        for (uint32_t i = 0; i < p->nin; i++)
            if ((rc = add_key(out, "%s/knn.p1/%u", j->id, i)) != 0) return rc;
        Mlops__Tasks__RecExportArgs a = MLOPS__TASKS__REC_EXPORT_ARGS__INIT;
        a.users = p->nusers;
        a.items = p->nitems;
        return args_pack(out, &a.base);
    }
    default:
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn plan is damaged");
    }
}

static int rec_set_phase(job_t *j, stage_t *st, knnplan_t *p, uint32_t phase)
{
    static const char *kinds[4] = {"rec_keys", "rec_search", "rec_recommend", "rec_export"};
    static const char *sfx[4] = {".p1/", ".p2/", "/", NULL};
    size_t n = phase == 0 ? p->nin : phase == 1 ? rec_pairs(p) : phase == 2 ? p->R : 1;
    p->phase = phase;
    st->phase = phase;
    int rc = plan_encode(st, p);
    if (!rc) rc = stage_set_tasks(st, n, kinds[phase]);
    if (rc) return rc;
    stage_set_output_keys(j, st, sfx[phase]);
    return 0;
}

static int rec_done(job_t *j, stage_t *st, knnplan_t *p, char *err, size_t errlen)
{
    int rc;
    switch (p->phase) {
    case 0:
        if ((rc = rec_merge_keys(j, st, p, err, errlen)) != 0) return rc;
        job_set_metric(j, "knn_users", (double)p->nusers);
        job_set_metric(j, "knn_items", (double)p->nitems);
        job_set_metric(j, "knn_interactions", stage_sum_metric(st, "rows"));
        job_logf(j, "knn: %llu users, %llu items, %u user ranges", (unsigned long long)p->nusers,
                 (unsigned long long)p->nitems, p->R);
        return (rc = rec_set_phase(j, st, p, j->spec->has_register ? 3 : 1)) != 0 ? rc : 1;
    case 3: {
        const task_t *tk = &st->tasks[0];
        Mlops__Tasks__RecExportResult *r =
            mlops__tasks__rec_export_result__unpack(NULL, tk->result_len, tk->result);
        int good = r && r->n_indptr == p->nusers + 1;
        if (r) mlops__tasks__rec_export_result__free_unpacked(r, NULL);
        if (!good)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "knn: damaged training data from rec_export (%zu bytes)",
                                tk->result_len);
        free(p->art);
        p->art = NULL;
        if (!(p->art = malloc(tk->result_len ? tk->result_len : 1))) return MLOPS_ENOMEM;
        if (tk->result_len) memcpy(p->art, tk->result, tk->result_len);
        p->art_len = tk->result_len;
        return (rc = rec_set_phase(j, st, p, 1)) != 0 ? rc : 1;
    }
    case 1:
        return (rc = rec_set_phase(j, st, p, 2)) != 0 ? rc : 1;
    case 2:
        break;
    default:
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn plan is damaged");
    }
    /* RecRecommendResult: users evaluated and the metric sums, added in
     * shard order */
    uint64_t n = 0;
    double sum[6] = {0};
    for (size_t t = 0; t < st->ntasks; t++) {
        const task_t *tk = &st->tasks[t];
        Mlops__Tasks__RecRecommendResult *r =
            mlops__tasks__rec_recommend_result__unpack(NULL, tk->result_len, tk->result);
        if (!r)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "knn: damaged result from task %zu", t);
        const double v[6] = {r->hit,  r->precision,   r->recall,
                             r->ndcg, r->popular_hit, r->popular_ndcg};
        n += r->users;
        for (int k = 0; k < 6; k++) sum[k] += v[k];
        mlops__tasks__rec_recommend_result__free_unpacked(r, NULL);
    }
    static const char *names[6] = {"hit_rate_at_n", "precision_at_n", "recall_at_n",
                                   "ndcg_at_n",     "popular_hit_rate_at_n", "popular_ndcg_at_n"};
    for (int k = 0; k < 6; k++) job_set_metric(j, names[k], n ? sum[k] / (double)n : 0.0);
    job_set_metric(j, "knn_users_evaluated", (double)n);
    job_logf(j, "knn: hit rate@%u %.4f (most popular %.4f) over %llu users", j->spec->knn.top_n,
             n ? sum[0] / (double)n : 0.0, n ? sum[4] / (double)n : 0.0, (unsigned long long)n);
    return 0;
}

/* ------------------------------------------------------------------ */

static int knn_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    if (s->knn.metric != MLOPS_KNN_COSINE)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: only metric: cosine is implemented");
    if (s->knn.k > KNN_MAX_K)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: k=%u is above the supported %u", s->knn.k, KNN_MAX_K);
    knnplan_t p;
    memset(&p, 0, sizeof p);
    int rc;
    if (s->knn.mode == MLOPS_KNN_RECOMMEND) {
        p.mode = MODE_RECOMMEND;
        stage_t *in = frame_stage(j);
        if (!in || !s->knn.user || !s->knn.item)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "knn: recommend needs CSV input with knn.user and knn.item");
        p.nin = (uint32_t)in->ntasks;
        rc = rec_set_phase(j, st, &p, 0);
    } else {
        p.mode = MODE_CLASSIFY;
        rc = classify_start(j, st, &p, err, errlen);
        if (!rc) rc = plan_encode(st, &p);
        if (!rc) rc = stage_set_tasks(st, (size_t)p.nqs * p.nxs, "knn_search");
        if (!rc) stage_set_output_keys(j, st, ".p0/");
    }
    plan_free(&p);
    return rc;
}

static int knn_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    /* called for every task sent and for the ones dispatch looks ahead
     * at: without the ~12,000 names (a copy each) the tasks do not get */
    knnplan_t p;
    int rc = plan_decode_names(st, &p, 0, err, errlen);
    if (rc) return rc;
    rc = p.mode == MODE_CLASSIFY ? classify_args(j, st, &p, t, out, err, errlen)
                                 : rec_args(j, &p, t, out, err, errlen);
    plan_free(&p);
    return rc;
}

static int knn_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    knnplan_t p;
    int rc = plan_decode(st, &p, err, errlen);
    if (rc) return rc;
    rc = p.mode == MODE_CLASSIFY ? classify_done(j, st, &p, err, errlen) : rec_done(j, st, &p, err, errlen);
    plan_free(&p);
    return rc;
}

/* An earlier phase's list or pair shard was lost: go back to the phase
 * that made it (its own inputs are the chain's recomputable shards). */
static int knn_restart(job_t *j, stage_t *st, char *err, size_t errlen)
{
    knnplan_t p;
    int rc = plan_decode(st, &p, err, errlen);
    if (rc) return rc;
    if (p.mode == MODE_CLASSIFY && p.phase == 1) {
        p.phase = 0;
        st->phase = 0;
        rc = plan_encode(st, &p);
        if (!rc) rc = stage_set_tasks(st, (size_t)p.nqs * p.nxs, "knn_search");
        if (!rc) stage_set_output_keys(j, st, ".p0/");
    } else if (p.mode == MODE_RECOMMEND && p.phase >= 1) {
        rc = rec_set_phase(j, st, &p, 0);
    } else {
        rc = mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "knn: an input shard of phase %u is lost", p.phase);
    }
    if (!rc) job_logf(j, "knn: an intermediate shard was lost; re-running from phase %u", p.phase);
    plan_free(&p);
    return rc;
}

const stage_ops_t stage_knn = {"knn", knn_start, knn_args, knn_done, 2, knn_restart, 0, NULL, NULL};

/* ------------------------------------------------------------------ */
/* the registered recommender                                          */

static json_t *int_array(const int64_t *v64, const int32_t *v32, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(v64 ? v64[i] : v32[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *str_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *stage_knn_recommender(job_t *j, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    const stage_t *st = job_stage(j, "knn");
    if (!st || !st->blob) {
        mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "the job has no knn stage");
        return NULL;
    }
    knnplan_t p;
    if (plan_decode(st, &p, err, errlen) != 0) return NULL;
    json_t *doc = NULL;
    Mlops__Tasks__RecExportResult *r =
        p.art ? mlops__tasks__rec_export_result__unpack(NULL, p.art_len, p.art) : NULL;
    if (p.mode != MODE_RECOMMEND || !r) {
        mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "the knn stage holds no recommender data");
        goto out;
    }
    if (r->n_indptr != p.nusers + 1 || r->n_popular != r->n_popular_count ||
        r->n_popular > p.nitems || (int64_t)r->n_items != r->indptr[p.nusers]) {
        mlops_seterr(err, errlen, MLOPS_EPARSE,
                     "the knn stage's training data is damaged (%zu offsets for %llu users)",
                     r->n_indptr, (unsigned long long)p.nusers);
        goto out;
    }
    json_t *settings = json_pack(
        "{s:I,s:I,s:s,s:s,s:b,s:s}", "k", (json_int_t)s->knn.k, "n", (json_int_t)s->knn.top_n,
        "similarity", "cosine", "values", "binary", "exclude_seen", 1, "ties",
        "neighbours: similarity descending, then the lower user index; items: score "
        "descending, then the lower item index");
    json_t *parts[6] = {settings,
                        str_array(p.users, p.nusers),
                        str_array(p.items, p.nitems),
                        int_array(r->indptr, NULL, r->n_indptr),
                        int_array(NULL, r->items, r->n_items),
                        int_array(NULL, r->popular, r->n_popular)};
    json_t *counts = int_array(r->popular_count, NULL, r->n_popular_count);
    int ok = counts != NULL;
    for (int i = 0; i < 6; i++) ok = ok && parts[i];
    /* "o" steals each part, also when json_pack fails */
    doc = ok ? json_pack("{s:s,s:o,s:{s:s,s:s},s:o,s:o,s:{s:o,s:o},s:{s:o,s:o}}", "kind",
                         "user-knn", "settings", parts[0], "columns", "user", s->knn.user, "item",
                         s->knn.item, "users", parts[1], "items", parts[2], "interactions",
                         "indptr", parts[3], "items", parts[4], "popular", "items", parts[5],
                         "counts", counts)
             : NULL;
    if (!ok) {
        for (int i = 0; i < 6; i++) json_decref(parts[i]);
        json_decref(counts);
    }
    if (!doc) mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory for the recommender");
out:
    if (r) mlops__tasks__rec_export_result__free_unpacked(r, NULL);
    plan_free(&p);
    return doc;
}
