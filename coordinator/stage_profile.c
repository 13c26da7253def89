/* stage_profile.c: the training rows' reference distributions, which the
 * registered artifact keeps ("reference", docs/model-format.md) so that
 * serving can compare traffic against them (drift).
 *   "profile_qround": rounds of the exact deciles (quantile.h, numpy's
 *                     'linear') of every numeric column over the
 *                     training rows, as clean finds its quartiles;
 *   "profile_bins":   per shard the counts per decile bin (and per
 *                     category when round 0 did not count them);
 *   "profile_count":  per shard the counts per probability bin (and what
 *                     no earlier phase counted) (worker/kind_profile.c).
 * They read the raw frame (clean, else ingest) and the split shard, as
 * promote does; a count task with no column to count, the split shard
 * alone. Every partial is merged in shard order and is a count or
 * an exact order statistic, so the result is the same bytes with any
 * number of workers. The categories: the top PROFILE_TOP by count (ties
 * by value, byte order) plus "other".
 *
 * Only the count phase waits for train (planner_phase_ready), so what it
 * does is on the job's critical path: it scores the training rows with
 * the model and nothing else. Round 0 also counts the categories (they
 * need neither deciles nor model) and asks each shard for a window
 * around its own deciles (mlk_qjob_set_window), which for alike shards
 * proves them without a gather round; the bins phase follows; all of it
 * runs beside train. Where split is fused (featurize tasks, reading the
 * raw frames profile reads), those tasks answer round 0 themselves from
 * the frame and flags they hold (stage_profile_featurize_args,
 * worker/profile_round0.c) and the stage merges their results as it
 * starts: its first tasks are round 1's or the bins', one pass over the
 * shards fewer. The merged categories and numeric bins wait in the
 * blob as the reference's JSON text (integers, strings and short-form
 * reals, which read back to the same bytes).
 * blob: u32 PROF_LAYOUT, u32 base (the stage's phase number of decile
 *       round 0), u32 mode, u32 ncols, blob categories (u64 length + the merged
 *       "categorical" JSON array; length 0 while not counted), blob
 *       numeric (the same for the "numeric" array), then mode ROUNDS:
 *       qjob bytes; modes BINS and COUNT: f64 edges[ncols * 9]; mode
 *       DONE: the edges, then the reference JSON text
 *       (stage_profile_reference).
 * A blob of another layout (round 5's began with the mode) found by a
 * restart re-plans a running stage from round 0, at a phase number no
 * journalled task has (stage_profile_replayed); a done one's reference
 * is still read. */
#include "bytes.h"
#include "err.h"
#include "jsondump.h"
#include "quantile.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_EDGES 9
#define PROFILE_BINS 10
#define PROFILE_TOP 20
/* as clean's CLEAN_WINDOW: ~4.5 standard deviations of a 65,536-row
 * shard's rank of a decile */
#define PROFILE_WINDOW 512

enum { PROF_ROUNDS = 0, PROF_COUNT = 1, PROF_DONE = 2, PROF_BINS = 3 };

/* the blob's first word ("PRF2"): round 5's blob began with the mode,
 * 0..3, and had no base */
#define PROF_LAYOUT 0x32465250u

static const double s_deciles[PROFILE_EDGES] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

static stage_t *raw_stage(job_t *j)
{
    stage_t *st = job_stage(j, "clean");
    return st ? st : job_stage(j, "ingest");
}

static size_t n_categorical(const job_t *j)
{
    return j->spec->has_hash ? j->spec->columns.n_categorical : 0;
}

/* The journalled blob, read back (pointers into st->blob). */
typedef struct {
    uint32_t base, mode, ncols;
    const char *cat; /* the merged categories' JSON text, catlen 0: not counted */
    size_t catlen;
    const char *num; /* the same for the numeric bins */
    size_t numlen;
    const uint8_t *rest; /* the mode's part */
    size_t restlen;
} plan_t;

/* 0; 1 for a blob of another layout (stage_profile_replayed);
 * MLOPS_EPARSE for a damaged one. old: read it as round 5's layout (no
 * PROF_LAYOUT, no base), as far as a done stage needs it. */
static int plan_read_as(const stage_t *st, plan_t *p, int old)
{
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    if (old) p->base = 0;
    else if (br_u32(&r) != PROF_LAYOUT || r.err) return 1;
    else p->base = br_u32(&r);
    p->mode = br_u32(&r);
    p->ncols = br_u32(&r);
    p->cat = (const char *)br_blob(&r, &p->catlen);
    p->num = (const char *)br_blob(&r, &p->numlen);
    if (r.err || p->mode > PROF_BINS) return MLOPS_EPARSE;
    p->rest = st->blob + r.at;
    p->restlen = st->blob_len - r.at;
    return 0;
}

static int plan_read(const stage_t *st, plan_t *p) { return plan_read_as(st, p, 0); }

static int set_blob(stage_t *st, uint32_t base, uint32_t mode, uint32_t ncols, const char *cat, size_t catlen,
                    const char *num, size_t numlen, const void *a, size_t alen, const void *b,
                    size_t blen)
{
    bw_t w;
    bw_init(&w);
    bw_u32(&w, PROF_LAYOUT);
    bw_u32(&w, base);
    bw_u32(&w, mode);
    bw_u32(&w, ncols);
    bw_blob(&w, cat, catlen);
    bw_blob(&w, num, numlen);
    if (alen) bw_put(&w, a, alen);
    if (blen) bw_put(&w, b, blen);
    uint8_t *blob = bw_take(&w, &st->blob_len);
    if (!blob) return MLOPS_ENOMEM;
    free(st->blob); /* after the copy: cat may point into it */
    st->blob = blob;
    return 0;
}

/* A decoded plan's quantile job; round 0 asks for the windows too,
 * on both sides (the request, and the merge of its answers). */
static mlk_qjob *plan_qjob(const stage_t *st, const plan_t *p)
{
    mlk_qjob *q = NULL;
    if (mlk_qjob_decode(p->rest, p->restlen, &q) != 0) return NULL;
    if (st->phase == p->base && mlk_qjob_set_window(q, PROFILE_WINDOW) != 0) mlk_qjob_destroy(&q);
    return q;
}

/* The next phase: ntasks tasks (one per input shard) of that kind. */
static int set_qjob(stage_t *st, uint32_t base, const mlk_qjob *q, uint32_t ncols, const char *cat,
                    size_t catlen, size_t ntasks)
{
    uint8_t *qb;
    size_t ql;
    int rc = mlk_qjob_encode(q, &qb, &ql);
    if (rc) return rc;
    rc = set_blob(st, base, PROF_ROUNDS, ncols, cat, catlen, NULL, 0, qb, ql, NULL, 0);
    free(qb);
    if (!rc) rc = stage_set_tasks(st, ntasks, "profile_qround");
    return rc;
}

/* The bins or the count phase (mode PROF_BINS or PROF_COUNT). */
static int set_counts(stage_t *st, uint32_t base, uint32_t mode, const void *edges, uint32_t ncols,
                      const char *cat, size_t catlen, const char *num, size_t numlen,
                      size_t ntasks)
{
    int rc = set_blob(st, base, mode, ncols, cat, catlen, num, numlen, edges,
                      (size_t)ncols * PROFILE_EDGES * 8, NULL, 0);
    if (!rc) rc = stage_set_tasks(st, ntasks, mode == PROF_BINS ? "profile_bins" : "profile_count");
    return rc;
}

/* What a bins or count task counts: the numeric bins, the categories,
 * the probabilities. */
static void counts_what(const job_t *j, const plan_t *p, int *num, int *cat, int *proba)
{
    *num = (p->mode == PROF_BINS || !p->numlen) && p->ncols > 0;
    *cat = !p->catlen && n_categorical(j) > 0;
    *proba = p->mode == PROF_COUNT;
}

static int rounds_merge(job_t *j, stage_t *st, const plan_t *p, const task_t *tasks, const char *who,
                        char *err, size_t errlen);

/* The featurize tasks answered round 0 (stage_profile_featurize_args):
 * the split stage fused, reading the raw frames profile reads, and every
 * task's result there (a coordinator of round 5 asked for none). */
static int round0_in_split(job_t *j, const stage_t *in, const stage_t *raw)
{
    if (strcmp(in->kind, "featurize") || stage_input_of(j, (stage_t *)in) != raw) return 0;
    for (size_t t = 0; t < in->ntasks; t++)
        if (!in->tasks[t].result_len) return 0;
    return 1;
}

/* Round 0 (or with no numeric column the count phase) at the stage's
 * current phase number; where the featurize tasks answered round 0, its
 * merge at once: the stage's first tasks are round 1's or the bins'. */
static int profile_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st), *raw = raw_stage(j);
    if (!in || !raw || raw->ntasks != in->ntasks)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "profile: needs the feature shards and their raw frames");
    size_t nn = j->spec->columns.n_numeric;
    int rc;
    if (nn) {
        mlk_qjob *q = mlk_qjob_new(nn, s_deciles, PROFILE_EDGES);
        if (!q) return MLOPS_ENOMEM;
        rc = set_qjob(st, st->phase, q, (uint32_t)nn, NULL, 0, in->ntasks);
        mlk_qjob_destroy(&q);
        plan_t p;
        if (!rc && round0_in_split(j, in, raw) && plan_read(st, &p) == 0) {
            st->total_all -= (uint32_t)in->ntasks; /* round 0's tasks never run here: not progress */
            rc = rounds_merge(j, st, &p, in->tasks, "split task", err, errlen);
            if (rc == 1) rc = 0;
        }
    } else {
        rc = set_counts(st, st->phase, PROF_COUNT, NULL, 0, NULL, 0, NULL, 0, in->ntasks);
    }
    if (!rc) stage_set_output_keys(j, st, NULL);
    return rc;
}

int stage_profile_featurize_args(const job_t *j, Mlops__Tasks__FeaturizeArgs *fa)
{
    size_t nn = j->spec->columns.n_numeric;
    stage_t *split = job_stage((job_t *)j, "split");
    /* featurize must read the frames profile reads (round0_in_split) */
    if (!job_stage((job_t *)j, "profile") || !nn || !split || stage_input_of((job_t *)j, split) != raw_stage((job_t *)j))
        return 0;
    mlk_qjob *q = mlk_qjob_new(nn, s_deciles, PROFILE_EDGES);
    int rc = q ? mlk_qjob_set_window(q, PROFILE_WINDOW) : MLOPS_ENOMEM;
    if (!rc) rc = mlk_qjob_request(q, &fa->profile_request.data, &fa->profile_request.len);
    mlk_qjob_destroy(&q);
    if (rc) return rc;
    fa->n_profile_numeric = nn;
    fa->profile_numeric = j->spec->columns.numeric;
    fa->n_profile_categorical = n_categorical(j);
    fa->profile_categorical = j->spec->columns.categorical;
    return 0;
}

void stage_profile_replayed(job_t *j, stage_t *st)
{
    plan_t p;
    if (st->state != ST_RUNNING || plan_read(st, &p) != 1) return;
    /* its tasks' journalled results may be of that layout too: a phase
     * number none of them has, so none is loaded as done */
    char err[512] = "";
    uint32_t phase = st->phase;
    st->phase = phase + 1;
    if (profile_start(j, st, err, sizeof err) != 0) {
        st->phase = phase; /* its tasks then fail the job, saying why */
        job_logf(j, "profile: cannot re-plan a plan of another layout: %s", err);
        return;
    }
    job_logf(j, "profile: a plan of another layout (an older coordinator's): rerunning the stage from round 0");
}

static int profile_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st), *raw = raw_stage(j);
    if (!in || !raw || t >= in->ntasks || t >= raw->ntasks)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "profile: bad task");
    plan_t p;
    const mlops_jobspec_t *s = j->spec;
    if (plan_read(st, &p) != 0 || p.ncols != s->columns.n_numeric)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "profile plan is damaged");
    uint32_t ncols = p.ncols;
    int num = 1, cat = 1, proba = 0;
    if (p.mode != PROF_ROUNDS) counts_what(j, &p, &num, &cat, &proba);
    int rc = num || cat ? args_add_input(out, raw->tasks[t].output_key) : 0;
    if (!rc) rc = args_add_input(out, in->tasks[t].output_key);
    if (rc || out->inputs_only) return rc;
    if (p.mode == PROF_ROUNDS) {
        mlk_qjob *q = plan_qjob(st, &p);
        if (!q) return mlops_seterr(err, errlen, MLOPS_EPARSE, "profile plan is damaged");
        uint8_t *req;
        size_t rl;
        rc = mlk_qjob_request(q, &req, &rl);
        mlk_qjob_destroy(&q);
        if (rc) return mlops_seterr(err, errlen, rc, "quantile request: %s", mlops_strerror(rc));
        Mlops__Tasks__ProfileQroundArgs a = MLOPS__TASKS__PROFILE_QROUND_ARGS__INIT;
        a.quantile_request.data = req;
        a.quantile_request.len = rl;
        a.n_numeric = ncols;
        a.numeric = s->columns.numeric;
        if (st->phase == p.base) {
            a.n_categorical = n_categorical(j);
            a.categorical = s->columns.categorical;
        }
        rc = args_pack(out, &a.base);
        free(req);
        return rc;
    }
    size_t ne = (size_t)ncols * PROFILE_EDGES, mlen = 0;
    if (p.restlen < ne * 8)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "profile plan is damaged");
    br_t r;
    br_init(&r, p.rest, p.restlen);
    double *edges = br_f64s(&r, ne);
    const uint8_t *mb = proba ? train_model(job_stage(j, "train"), &mlen) : NULL;
    if ((proba && !mb) || (ne && !edges)) {
        free(edges);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "profile: the train stage holds no model");
    }
    Mlops__Tasks__ProfileCountArgs a = MLOPS__TASKS__PROFILE_COUNT_ARGS__INIT;
    a.n_numeric = num ? ncols : 0;
    a.numeric = s->columns.numeric;
    a.n_edges = num ? ne : 0;
    a.edges = edges;
    a.n_categorical = cat ? n_categorical(j) : 0;
    a.categorical = s->columns.categorical;
    a.model.data = (uint8_t *)mb;
    a.model.len = mb ? mlen : 0;
    rc = args_pack(out, &a.base);
    free(edges);
    return rc;
}

typedef struct {
    const char *value;
    uint64_t count;
} catcount_t;

static int by_count(const void *pa, const void *pb)
{
    const catcount_t *a = pa, *b = pb;
    if (a->count != b->count) return a->count < b->count ? 1 : -1;
    return strcmp(a->value, b->value);
}

static json_t *counts_json(const uint64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* A binary min-heap of shard cursors by their current value, for the
 * k-way merge below. */
typedef struct {
    const Mlops__Tasks__ProfileCategory *pc;
    size_t i;
} cursor_t;

static int cur_less(const cursor_t *a, const cursor_t *b)
{
    return strcmp(a->pc->values[a->i], b->pc->values[b->i]) < 0;
}

static void heap_down(cursor_t *h, size_t n, size_t k)
{
    for (;;) {
        size_t l = 2 * k + 1, r = l + 1, m = k;
        if (l < n && cur_less(&h[l], &h[m])) m = l;
        if (r < n && cur_less(&h[r], &h[m])) m = r;
        if (m == k) return;
        cursor_t t = h[k];
        h[k] = h[m];
        h[m] = t;
        k = m;
    }
}

/* Column c's merged categories over every shard's result. Each shard's
 * values come in byte order (kind_profile.c), so they are merged k ways
 * (a qsort of every shard's list was O(N log N) in all the values, most
 * of count_done at many shards); a list out of order is damaged. NULL
 * with *bad = the task index of a damaged list, or out of memory. */
static json_t *category_json(const char *column, Mlops__Tasks__ProfileCategory ***res,
                             size_t nres, size_t c, size_t *bad)
{
    size_t total = 0;
    uint64_t missing = 0;
    *bad = SIZE_MAX;
    for (size_t t = 0; t < nres; t++) {
        const Mlops__Tasks__ProfileCategory *pc = res[t][c];
        total += pc->n_values;
        for (size_t i = 1; i < pc->n_values; i++)
            if (strcmp(pc->values[i - 1], pc->values[i]) > 0) {
                *bad = t;
                return NULL;
            }
    }
    catcount_t *v = malloc((total ? total : 1) * sizeof *v);
    cursor_t *h = malloc((nres ? nres : 1) * sizeof *h);
    if (!v || !h) {
        free(v);
        free(h);
        return NULL;
    }
    size_t nh = 0;
    for (size_t t = 0; t < nres; t++) {
        const Mlops__Tasks__ProfileCategory *pc = res[t][c];
        missing += pc->missing;
        if (pc->n_values) h[nh++] = (cursor_t){pc, 0};
    }
    for (size_t k = nh / 2; k-- > 0;) heap_down(h, nh, k);
    size_t d = 0;
    uint64_t rows = 0;
    while (nh) {
        const char *val = h[0].pc->values[h[0].i];
        uint64_t cnt = h[0].pc->counts[h[0].i];
        rows += cnt;
        if (d && !strcmp(val, v[d - 1].value)) v[d - 1].count += cnt;
        else v[d++] = (catcount_t){val, cnt};
        if (++h[0].i == h[0].pc->n_values) h[0] = h[--nh];
        heap_down(h, nh, 0);
    }
    free(h);
    qsort(v, d, sizeof *v, by_count);
    json_t *top = json_array();
    uint64_t in_top = 0;
    for (size_t i = 0; i < d && i < PROFILE_TOP; i++) {
        in_top += v[i].count;
        json_array_append_new(
            top, json_pack("{s:s,s:I}", "value", v[i].value, "count", (json_int_t)v[i].count));
    }
    free(v);
    return json_pack("{s:s,s:I,s:o,s:I,s:I}", "column", column, "distinct", (json_int_t)d, "top",
                     top, "other", (json_int_t)(rows - in_top), "missing", (json_int_t)missing);
}

/* The merged categories of every task's lists (cats[t][c], ncat
 * columns each) as the compact JSON text of the reference's
 * "categorical" array (*text malloc'd). 0, or < 0 with err. */
static int categories_text(job_t *j, Mlops__Tasks__ProfileCategory ***cats, size_t ntasks,
                           char **text, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    size_t ncat = n_categorical(j);
    int rc = 0;
    *text = NULL;
    for (size_t t = 0; t < ntasks; t++)
        for (size_t c = 0; c < ncat; c++)
            if (cats[t][c]->n_counts != cats[t][c]->n_values)
                return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "profile: damaged counts from task %zu", t);
    json_t *jc = json_array();
    if (!jc) return MLOPS_ENOMEM;
    for (size_t c = 0; c < ncat && !rc; c++) {
        size_t bad;
        json_t *cj = category_json(s->columns.categorical[c], cats, ntasks, c, &bad);
        if (cj) json_array_append_new(jc, cj);
        else if (bad != SIZE_MAX)
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "profile: damaged counts from task %zu (column '%s' not in byte order)",
                              bad, s->columns.categorical[c]);
        else rc = MLOPS_ENOMEM;
    }
    if (!rc && !(*text = mlops_json_dumps(jc, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "profile: a category is not valid UTF-8");
    json_decref(jc);
    return rc;
}

/* The end of a decile round: the answers of tasks[0..st->ntasks) (the
 * stage's, or round 0's from the split stage's, named by who). */
static int rounds_merge(job_t *j, stage_t *st, const plan_t *p, const task_t *tasks, const char *who,
                        char *err, size_t errlen)
{
    mlk_qjob *q = plan_qjob(st, p);
    if (!q) return mlops_seterr(err, errlen, MLOPS_EPARSE, "profile plan is damaged");
    size_t ncat = n_categorical(j), ncols = p->ncols;
    int counting = st->phase == p->base; /* round 0 counted the categories */
    Mlops__Tasks__ProfileQroundResult **res = calloc(st->ntasks + 1, sizeof *res);
    Mlops__Tasks__ProfileCategory ***cats = calloc(st->ntasks + 1, sizeof *cats);
    int rc = res && cats ? 0 : MLOPS_ENOMEM;
    for (size_t t = 0; t < st->ntasks && !rc; t++) {
        const task_t *tk = &tasks[t];
        res[t] = mlops__tasks__profile_qround_result__unpack(NULL, tk->result_len, tk->result);
        if (!res[t] || res[t]->n_categorical != (counting ? ncat : 0))
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "profile: damaged quantile answer from %s %zu", who, t);
        else rc = mlk_qjob_add(q, res[t]->quantile_answer.data, res[t]->quantile_answer.len, err,
                               errlen);
        if (!rc) cats[t] = res[t]->categorical;
    }
    char *text = NULL;
    if (!rc && counting) rc = categories_text(j, cats, st->ntasks, &text, err, errlen);
    for (size_t t = 0; res && t < st->ntasks; t++)
        if (res[t]) mlops__tasks__profile_qround_result__free_unpacked(res[t], NULL);
    free(res);
    free(cats);
    const char *cat = text ? text : p->cat;
    size_t catlen = text ? strlen(text) : p->catlen;
    if (!rc) rc = mlk_qjob_step(q, err, errlen);
    if (!rc) st->phase++;
    if (!rc && !mlk_qjob_done(q)) rc = set_qjob(st, p->base, q, (uint32_t)ncols, cat, catlen, st->ntasks);
    else if (!rc) {
        double *edges = calloc(ncols * PROFILE_EDGES + 1, sizeof *edges);
        if (!edges) rc = MLOPS_ENOMEM;
        for (size_t c = 0; !rc && c < ncols; c++) {
            uint64_t n = 0;
            rc = mlk_qjob_result(q, c, &edges[c * PROFILE_EDGES], &n);
        }
        if (!rc)
            rc = set_counts(st, p->base, PROF_BINS, edges, (uint32_t)ncols, cat, catlen, NULL, 0,
                            st->ntasks);
        if (!rc) job_logf(j, "profile: deciles exact after %u rounds", st->phase - p->base);
        free(edges);
    }
    free(text);
    mlk_qjob_destroy(&q);
    return rc ? rc : 1;
}

static int rounds_done(job_t *j, stage_t *st, const plan_t *p, char *err, size_t errlen)
{
    return rounds_merge(j, st, p, st->tasks, "task", err, errlen);
}

/* The reference's "numeric" array from the merged bin counts. */
static json_t *numeric_json(const job_t *j, const double *edges, const uint64_t *num, size_t ncols)
{
    json_t *jn = json_array();
    for (size_t c = 0; jn && c < ncols; c++) {
        json_t *e = json_array();
        for (size_t k = 0; k < PROFILE_EDGES; k++)
            json_array_append_new(e, real_or_null(edges[c * PROFILE_EDGES + k]));
        const uint64_t *cnt = &num[c * (PROFILE_BINS + 1)];
        json_array_append_new(jn, json_pack("{s:s,s:o,s:o,s:I}", "column", j->spec->columns.numeric[c],
                                            "edges", e, "counts", counts_json(cnt, PROFILE_BINS),
                                            "missing", (json_int_t)cnt[PROFILE_BINS]));
    }
    return jn;
}

/* A part kept as JSON text (or just made: text), back as a tree. */
static json_t *part_json(const char *text, const char *kept, size_t keptlen)
{
    return text ? json_loads(text, 0, NULL) : json_loadb(kept, keptlen, 0, NULL);
}

/* The end of the bins phase (the numeric bins, and the categories where
 * round 0 did not count them, kept as text; the count phase follows) or
 * of the count phase (the probabilities, and what no phase before it
 * counted: the reference). */
static int counts_done(job_t *j, stage_t *st, const plan_t *p, char *err, size_t errlen)
{
    size_t ncols = p->ncols, ne = ncols * PROFILE_EDGES;
    int want_num, want_cat, want_proba;
    counts_what(j, p, &want_num, &want_cat, &want_proba);
    size_t ncat = want_cat ? n_categorical(j) : 0;
    size_t ncls = job_nclasses(j), nvec = ncls == 2 ? 1 : ncls;
    if (p->restlen != ne * 8) return mlops_seterr(err, errlen, MLOPS_EPARSE, "profile plan is damaged");
    Mlops__Tasks__ProfileCountResult **res = calloc(st->ntasks + 1, sizeof *res);
    Mlops__Tasks__ProfileCategory ***cats = calloc(st->ntasks + 1, sizeof *cats);
    uint64_t *num = calloc(ncols * (PROFILE_BINS + 1) + 1, sizeof *num);
    uint64_t *pc = calloc(nvec * PROFILE_BINS + 1, sizeof *pc), rows = 0;
    double *edges = malloc((ne + 1) * sizeof *edges);
    int rc = res && cats && num && pc && edges ? 0 : MLOPS_ENOMEM;
    if (!rc) memcpy(edges, p->rest, ne * 8);
    for (size_t t = 0; !rc && t < st->ntasks; t++) {
        const task_t *tk = &st->tasks[t];
        res[t] = mlops__tasks__profile_count_result__unpack(NULL, tk->result_len, tk->result);
        if (!res[t] || res[t]->n_numeric != (want_num ? ncols * (PROFILE_BINS + 1) : 0) ||
            res[t]->n_categorical != ncat ||
            res[t]->n_proba != (want_proba ? nvec * PROFILE_BINS : 0)) {
            rc =
                mlops_seterr(err, errlen, MLOPS_EPARSE, "profile: damaged counts from task %zu", t);
            break;
        }
        cats[t] = res[t]->categorical;
        for (size_t i = 0; i < res[t]->n_numeric; i++) num[i] += res[t]->numeric[i];
        for (size_t i = 0; i < res[t]->n_proba; i++) pc[i] += res[t]->proba[i];
        rows += res[t]->rows;
    }
    char *cattext = NULL, *numtext = NULL, *text = NULL;
    if (!rc && want_cat) rc = categories_text(j, cats, st->ntasks, &cattext, err, errlen);
    if (!rc && want_num) {
        json_t *jn = numeric_json(j, edges, num, ncols);
        numtext = jn ? mlops_json_dumps(jn, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(jn);
        if (!numtext) rc = MLOPS_ENOMEM;
    }
    const char *cat = cattext ? cattext : p->cat, *nums = numtext ? numtext : p->num;
    size_t catlen = cattext ? strlen(cattext) : p->catlen;
    size_t numlen = numtext ? strlen(numtext) : p->numlen;
    if (!rc && p->mode == PROF_BINS) {
        /* a phase number of its own: a restart loads only the journalled
         * tasks of the stage's phase, and the bins tasks' results are not
         * counts (they were read as such after a restart mid-count) */
        st->phase++;
        rc = set_counts(st, p->base, PROF_COUNT, edges, (uint32_t)ncols, cat, catlen, nums, numlen,
                        st->ntasks);
    } else if (!rc) {
        json_t *doc = NULL, *jc = NULL, *jn = NULL;
        /* the parts' text back into the document: the dump below writes
         * the same bytes again */
        jc = part_json(cattext, p->cat, p->catlen);
        jn = ncols ? part_json(numtext, p->num, p->numlen) : json_array();
        if (!jc || !jn) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "profile plan is damaged");
        if (!rc) {
            json_t *jp = json_array(), *pe = json_array();
            for (size_t k = 0; k <= PROFILE_BINS; k++)
                json_array_append_new(pe, json_real((double)k / PROFILE_BINS));
            for (size_t k = 0; k < nvec; k++)
                json_array_append_new(jp, json_pack("{s:s,s:o}", "class",
                                                    job_class(j, ncls == 2 ? 1 : k), "counts",
                                                    counts_json(&pc[k * PROFILE_BINS], PROFILE_BINS)));
            doc = json_pack("{s:I,s:o,s:o,s:{s:o,s:o}}", "rows", (json_int_t)rows, "numeric", jn,
                            "categorical", jc, "proba", "edges", pe, "classes", jp);
            jc = jn = NULL; /* the document took them (or freed them on failure) */
            if (!doc) rc = MLOPS_ENOMEM;
        }
        json_decref(jc);
        json_decref(jn);
        text = doc && !rc ? mlops_json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (!rc && !text) rc = MLOPS_ENOMEM;
        json_decref(doc);
        if (!rc)
            rc = set_blob(st, p->base, PROF_DONE, (uint32_t)ncols, NULL, 0, NULL, 0, edges, ne * 8, text,
                          strlen(text));
        if (!rc)
            job_logf(j, "profile: reference distributions of %llu training rows",
                     (unsigned long long)rows);
    }
    for (size_t t = 0; res && t < st->ntasks; t++)
        if (res[t]) mlops__tasks__profile_count_result__free_unpacked(res[t], NULL);
    free(res);
    free(cats);
    free(cattext);
    free(numtext);
    free(num);
    free(pc);
    free(edges);
    free(text);
    if (rc) return rc;
    return p->mode == PROF_BINS ? 1 : 0;
}

static int profile_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    plan_t p;
    if (plan_read(st, &p) != 0) return mlops_seterr(err, errlen, MLOPS_EPARSE, "profile plan is damaged");
    if (p.mode == PROF_ROUNDS) return rounds_done(j, st, &p, err, errlen);
    if (p.mode == PROF_COUNT || p.mode == PROF_BINS) return counts_done(j, st, &p, err, errlen);
    return 0;
}

char *stage_profile_reference(const job_t *j)
{
    const stage_t *st = job_stage((job_t *)j, "profile");
    plan_t p;
    int rc = st ? plan_read(st, &p) : -1;
    if (rc == 1) rc = plan_read_as(st, &p, 1); /* round 5's layout: no PROF_LAYOUT, no base */
    if (rc != 0 || p.mode != PROF_DONE) return NULL;
    size_t off = (size_t)p.ncols * PROFILE_EDGES * 8;
    if (p.restlen <= off) return NULL;
    return strndup((const char *)p.rest + off, p.restlen - off);
}

const stage_ops_t stage_profile = {"profile", profile_start, profile_args, profile_done, 2, NULL, 0, NULL, NULL};
