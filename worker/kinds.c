/* kinds.c: the task kinds a worker runs, one function each, in a table.
 * Each reads the arguments its stage entry (coordinator/stage_*.c)
 * wrote (a <Kind>Args message of proto/tasks.proto), calls pure kernels
 * (common/kernels), and writes its output shard and <Kind>Result.
 * Arguments come from the network: a message that does not unpack or a
 * value out of bounds fails the task, never the process. */
#include <czmq.h>
#include "clean.h"
#include "csv.h"
#include "err.h"
#include "log.h"
#include "quantile.h"
#include "kinds.h"
#include "kind_cv.h"
#include "task.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The distinct labels of rows r < nrows with keep[r] (keep NULL: all)
 * of a label column, either a frame's (col) or a viewed encoding's
 * (vcol), in order of first appearance. */
static int labels_of(task_ctx_t *ctx, size_t nrows, const mlk_col *col, const mlk_colview *vcol,
                     const uint8_t *keep, char ***labels, size_t *nlabels)
{
    zhashx_t *seen = zhashx_new();
    size_t n = 0, cap = 0, lens[8];
    char **v = NULL, buf[1024];
    const uint8_t *missing = col ? col->missing : vcol ? vcol->missing : NULL;
    int rc = 0;
    for (size_t r = 0; missing && r < nrows && n <= 10000; r++) {
        if (missing[r] || (keep && !keep[r])) continue;
        size_t len;
        const char *x = col ? mlk_str_at(col, r, &len) : mlk_view_str_at(vcol, r, &len);
        if (len >= sizeof buf) len = sizeof buf - 1;
        /* a label is mostly one of a few seen already: compare with the
         * first ones before building a key and hashing it */
        size_t i = 0;
        while (i < n && i < 8 && !(lens[i] == len && !memcmp(v[i], x, len))) i++;
        if (i < n && i < 8) continue;
        memcpy(buf, x, len);
        buf[len] = 0;
        if (zhashx_lookup(seen, buf)) continue;
        zhashx_insert(seen, buf, (void *)1);
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **a = realloc(v, cap * sizeof *a);
            if (!a) {
                rc = -1;
                break;
            }
            v = a;
        }
        if (!(v[n] = strdup(buf))) {
            rc = -1;
            break;
        }
        if (n < 8) lens[n] = strlen(v[n]); /* a NUL inside cuts the key, as strdup does */
        n++;
    }
    zhashx_destroy(&seen);
    if (rc) {
        for (size_t i = 0; i < n; i++) free(v[i]);
        free(v);
        return wk_task_fail(ctx, 1, "out of memory");
    }
    *labels = v;
    *nlabels = n;
    return 0;
}

/* The distinct labels of a shard (for the coordinator's class list),
 * when the job has a label column, into *labels (malloc'd strings;
 * stops after 10001: the coordinator reports the error). */
int wk_shard_labels(task_ctx_t *ctx, const mlk_frame *f, char ***labels, size_t *nlabels)
{
    const mlops_jobspec_t *s;
    *labels = NULL;
    *nlabels = 0;
    if (wk_task_spec(ctx, &s) != 0) return -1;
    int c = s->columns.label ? mlk_frame_col(f, s->columns.label) : -1;
    if (c >= 0 && f->cols[c].type != MLK_STR) c = -1;
    return labels_of(ctx, f->nrows, c >= 0 ? &f->cols[c] : NULL, NULL, NULL, labels, nlabels);
}

void wk_labels_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ------------------------------------------------------------------ */
/* clean                                                               */

/* dropna looks at this many columns at most (a shard has the used ones) */
#define DROPNA_MAX_COLS 256

/* dropna over every column of the shard (the used columns) */
static void dropna_all(const mlk_frame *f, int dropna, uint8_t *keep)
{
    memset(keep, 1, f->nrows);
    if (!dropna) return;
    size_t all[DROPNA_MAX_COLS];
    size_t n = f->ncols < DROPNA_MAX_COLS ? f->ncols : DROPNA_MAX_COLS;
    for (size_t c = 0; c < n; c++) all[c] = c;
    mlk_dropna_mask(f, all, n, keep);
}

/* The shard's answer to a quantile request over its numeric columns
 * (after dropna, as pandas computes quartiles on the dropna'd frame). */
int wk_quantile_answer(task_ctx_t *ctx, const mlk_frame *f, int dropna, const uint8_t *req,
                           size_t reqlen, uint8_t **ans, size_t *anslen)
{
    int rc = -1;
    size_t *idx = NULL, ncols = 0;
    const double **cols = NULL;
    uint8_t *keep = malloc(f->nrows ? f->nrows : 1);
    if (!keep) return wk_task_fail(ctx, 1, "out of memory");
    if (wk_task_numeric_cols(ctx, f, &idx, &ncols) != 0) goto out;
    dropna_all(f, dropna, keep);
    cols = calloc(ncols ? ncols : 1, sizeof *cols);
    if (!cols) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    for (size_t c = 0; c < ncols; c++) cols[c] = f->cols[idx[c]].f64;
    /* the dropna mask goes in as it is: no copy of the kept rows */
    if (mlk_qjob_answer_masked(req, reqlen, cols, ncols, f->nrows, keep, ans, anslen, ctx->err,
                               sizeof ctx->err) != 0)
        goto out;
    rc = 0;
out:
    free(cols);
    free(idx);
    free(keep);
    return rc;
}

/* noop.task_ms simulates work in 10 ms steps, each a cancel point, so a
 * scheduler test can hold tasks running and see a cancel stop them. */
static int run_noop(task_ctx_t *ctx)
{
    const mlops_jobspec_t *spec = NULL;
    if (wk_task_spec(ctx, &spec) != 0) return -1;
    for (uint32_t left = spec->noop.task_ms; left > 0;) {
        uint32_t step = left < 10 ? left : 10;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        left -= step;
        if (wk_task_check_cancel(ctx)) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* ingest: raw CSV bytes of one shard -> frame of the used columns      */

static int run_ingest(task_ctx_t *ctx)
{
    Mlops__Tasks__IngestArgs *a = wk_task_args(ctx, &mlops__tasks__ingest_args__descriptor);
    if (!a) return -1;
    int rc = -1;
    char **want = NULL, **labels = NULL;
    size_t nlabels = 0;
    mlk_coltype *types = NULL;
    size_t *index = NULL, nwant = a->n_columns;
    mlk_frame *f = NULL;
    uint8_t *ans = NULL, *local = NULL;
    size_t anslen = 0;
    if (a->n_header > 100000 || nwant > a->n_header) {
        rc = wk_task_fail(ctx, 0, "ingest: damaged task arguments (%zu columns of %zu)", nwant,
                          a->n_header);
        goto out;
    }
    want = calloc(nwant ? nwant : 1, sizeof *want);
    types = calloc(nwant ? nwant : 1, sizeof *types);
    index = calloc(nwant ? nwant : 1, sizeof *index);
    if (!want || !types || !index) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nwant; i++) {
        want[i] = a->columns[i]->name;
        types[i] = a->columns[i]->type == MLK_STR ? MLK_STR : MLK_F64;
    }
    mlk_csv_schema schema;
    if (mlk_csv_schema_init(&schema, (const char *const *)a->header, a->n_header,
                            (const char *const *)want, types, nwant, index, ctx->err,
                            sizeof ctx->err) != 0)
        goto out;
    size_t rows_bad = 0;
    const uint8_t *data = a->data.data;
    size_t len = a->data.len;
    if (a->local) { /* read in place: the same bytes the upload would have carried */
        if (wk_task_read_local(ctx, a->local, a->file_name, &local) != 0) goto out; /* rc stays -1 */
        data = local;
        len = (size_t)a->local->length;
    }
    /* a data error: the message names file and line */
    if (mlk_csv_parse(data ? (const char *)data : "", len, &schema,
                      (int64_t)a->first_row, (long)a->first_line, a->file_name, a->skip_bad_rows,
                      &f, &rows_bad, ctx->err, sizeof ctx->err) != 0)
        goto out;
    if ((rc = wk_task_output_frame(ctx, f)) != 0) goto out;
    if (a->quantile_request.len &&
        (rc = wk_quantile_answer(ctx, f, a->dropna, a->quantile_request.data, a->quantile_request.len,
                              &ans, &anslen)) != 0)
        goto out;
    if ((rc = wk_shard_labels(ctx, f, &labels, &nlabels)) != 0) goto out;
    Mlops__Tasks__IngestResult res = MLOPS__TASKS__INGEST_RESULT__INIT;
    res.n_labels = nlabels;
    res.labels = labels;
    res.quantile_answer.data = ans;
    res.quantile_answer.len = anslen;
    if ((rc = wk_task_result_pack(ctx, &res.base)) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)f->nrows);
    wk_task_metric(ctx, "rows_bad", (double)rows_bad);
    rc = 0;
out:
    mlk_frame_destroy(&f);
    wk_labels_free(labels, nlabels);
    free(ans);
    free(local);
    free(want);
    free(types);
    free(index);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* clean's rounds and filter read the ingest frame only to test and
 * drop rows: they work on a view of its encoding, in the store's map
 * when held locally (mlk_frame_view, wk_task_input_with), and the filter
 * writes the kept rows' encoding in one pass, instead of decoding the
 * whole frame into a copy, filtering it in place and encoding it again;
 * held locally, into the store's own space (wk_task_output_derived). */
typedef struct {
    task_ctx_t *ctx;
    int dropna;
    /* round: the request, and the answer made */
    const uint8_t *req;
    size_t reqlen;
    uint8_t *ans;
    size_t anslen;
    /* filter: the bounds; the kept rows' encoding and counts, labels */
    const double *lo, *hi;
    size_t nb;
    uint8_t *out;
    size_t outlen, after_dropna, kept;
    char **labels;
    size_t nlabels;
    mlk_frameview *v; /* filter: the viewed input and its kept rows */
    uint8_t *keep;
} clean_arg_t;

/* The dropna mask of a viewed shard (all ones without dropna), and its
 * numeric columns in spec order, copied into one aligned block. */
static int view_rows(clean_arg_t *a, const mlk_frameview *v, int numeric, uint8_t **keep,
                     double **block, const double ***cols, size_t *ncols)
{
    const mlops_jobspec_t *s;
    *keep = NULL;
    *block = NULL;
    *cols = NULL;
    if (wk_task_spec(a->ctx, &s) != 0) return -1;
    size_t n = v->nrows, nc = numeric ? s->columns.n_numeric : 0;
    *keep = malloc(n ? n : 1);
    *block = malloc((n ? n : 1) * (nc ? nc : 1) * sizeof **block);
    *cols = calloc(nc ? nc : 1, sizeof **cols);
    if (!*keep || !*block || !*cols) return wk_task_fail(a->ctx, 1, "out of memory");
    /* the same columns as dropna_all, which answered the first round */
    if (a->dropna) a->after_dropna = mlk_dropna_mask_view(v, DROPNA_MAX_COLS, *keep);
    else {
        memset(*keep, 1, n);
        a->after_dropna = n;
    }
    for (size_t c = 0; c < nc; c++) {
        int ci = mlk_frame_view_col(v, s->columns.numeric[c]);
        if (ci < 0 || v->cols[ci].type != MLK_F64)
            return wk_task_fail(a->ctx, 0, "column '%s' is not a numeric column of the shard",
                                s->columns.numeric[c]);
        mlk_frame_view_f64(v, (size_t)ci, *block + c * n);
        (*cols)[c] = *block + c * n;
    }
    *ncols = nc;
    return 0;
}

static int view_fail(clean_arg_t *a)
{
    return wk_task_fail(a->ctx, 0, "shard %s is not a valid frame", a->ctx->ta->inputs[0]->key);
}

static int qround_fn(const void *data, size_t len, void *arg)
{
    clean_arg_t *a = arg;
    mlk_frameview *v = NULL;
    uint8_t *keep = NULL;
    double *block = NULL;
    const double **cols = NULL;
    size_t ncols = 0;
    int rc = mlk_frame_view(data, len, &v) != 0 ? view_fail(a) : 0;
    if (!rc) rc = view_rows(a, v, 1, &keep, &block, &cols, &ncols);
    /* the dropna mask goes in as it is: no copy of the kept rows */
    if (!rc && mlk_qjob_answer_masked(a->req, a->reqlen, cols, ncols, v->nrows, keep, &a->ans,
                                      &a->anslen, a->ctx->err, sizeof a->ctx->err) != 0)
        rc = -1;
    free(cols);
    free(block);
    free(keep);
    mlk_frame_view_destroy(&v);
    return rc;
}

static int run_clean_qround(task_ctx_t *ctx)
{
    Mlops__Tasks__CleanQroundArgs *a =
        wk_task_args(ctx, &mlops__tasks__clean_qround_args__descriptor);
    if (!a) return -1;
    clean_arg_t ca = {.ctx = ctx, .dropna = a->dropna, .req = a->quantile_request.data,
                      .reqlen = a->quantile_request.len};
    int rc = wk_task_input_with(ctx, 0, qround_fn, &ca);
    if (!rc) {
        Mlops__Tasks__CleanQroundResult res = MLOPS__TASKS__CLEAN_QROUND_RESULT__INIT;
        res.quantile_answer.data = ca.ans;
        res.quantile_answer.len = ca.anslen;
        rc = wk_task_result_pack(ctx, &res.base);
    }
    free(ca.ans);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc ? -1 : 0;
}

/* The filter's work on a viewed shard before its output is written: the
 * kept rows' mask and counts, their labels, and the output's size. Kept
 * in a (the view borrows the shard's bytes) for filter_derive or filter_fn. */
static int filter_rows(clean_arg_t *a, const void *data, size_t len)
{
    double *block = NULL;
    const double **cols = NULL;
    size_t ncols = 0;
    const mlops_jobspec_t *s;
    int rc = mlk_frame_view(data, len, &a->v) != 0 ? view_fail(a) : 0;
    /* the numeric columns only for bounds (a job without IQR needs none) */
    if (!rc) rc = view_rows(a, a->v, a->nb != 0, &a->keep, &block, &cols, &ncols);
    if (!rc && a->nb && ncols != a->nb)
        rc = wk_task_fail(a->ctx, 0, "clean: bounds for %zu columns, spec has %zu", a->nb, ncols);
    if (!rc) {
        a->kept = a->nb ? mlk_iqr_mask_cols(cols, ncols, a->v->nrows, a->lo, a->hi, a->keep)
                        : a->after_dropna;
        a->outlen = mlk_frame_filtered_size(a->v, a->keep);
    }
    /* the labels of the kept rows, while the view is valid */
    if (!rc && (rc = wk_task_spec(a->ctx, &s)) == 0) {
        int c = s->columns.label ? mlk_frame_view_col(a->v, s->columns.label) : -1;
        if (c >= 0 && a->v->cols[c].type == MLK_STR)
            rc = labels_of(a->ctx, a->v->nrows, NULL, &a->v->cols[c], a->keep, &a->labels,
                           &a->nlabels);
    }
    free(cols);
    free(block);
    return rc;
}

/* What filter_rows made, let go (before a replay, and at the end). */
static void filter_reset(clean_arg_t *a)
{
    mlk_frame_view_destroy(&a->v);
    free(a->keep);
    a->keep = NULL;
    wk_labels_free(a->labels, a->nlabels);
    a->labels = NULL;
    a->nlabels = 0;
}

/* Held locally: the shard is read and the kept rows written in one store
 * transaction (wk_task_output_derived), straight into the store's
 * reserved space; no copy of the output is made first. */
static int filter_plan(const void *src, size_t srclen, size_t *len, void *arg)
{
    clean_arg_t *a = arg;
    filter_reset(a); /* a replay after the map grew starts over */
    if (filter_rows(a, src, srclen) != 0) return 1;
    *len = a->outlen;
    return 0;
}

static int filter_derive(void *dst, size_t len, const void *src, size_t srclen, void *arg)
{
    (void)src;
    (void)srclen;
    clean_arg_t *a = arg;
    mlk_frame_encode_filtered_to(a->v, a->keep, dst, len);
    return 0;
}

/* Fetched from another worker: the copy is filtered into a buffer. */
static int filter_fn(const void *data, size_t len, void *arg)
{
    clean_arg_t *a = arg;
    int rc = filter_rows(a, data, len);
    if (!rc && mlk_frame_encode_filtered(a->v, a->keep, &a->out, &a->outlen) != 0)
        rc = wk_task_fail(a->ctx, 1, "out of memory encoding");
    mlk_frame_view_destroy(&a->v); /* data goes away after the call */
    return rc;
}

static int run_clean_filter(task_ctx_t *ctx)
{
    Mlops__Tasks__CleanFilterArgs *a =
        wk_task_args(ctx, &mlops__tasks__clean_filter_args__descriptor);
    if (!a) return -1;
    int rc = -1;
    clean_arg_t ca = {.ctx = ctx, .dropna = a->dropna, .lo = a->lo, .hi = a->hi, .nb = a->n_lo};
    if (a->n_hi != a->n_lo) {
        rc = wk_task_fail(ctx, 0, "clean: damaged task arguments (%zu lower, %zu upper bounds)",
                          a->n_lo, a->n_hi);
        goto out;
    }
    int drc = wk_task_output_derived(ctx, 0, filter_plan, filter_derive, &ca);
    if (drc < 0) goto out;
    if (drc == 1) { /* not held here */
        filter_reset(&ca);
        if (wk_task_input_with(ctx, 0, filter_fn, &ca) != 0) goto out;
        if ((rc = wk_task_output(ctx, NULL, ca.out, ca.outlen)) != 0) goto out;
    }
    Mlops__Tasks__CleanFilterResult res = MLOPS__TASKS__CLEAN_FILTER_RESULT__INIT;
    res.n_labels = ca.nlabels;
    res.labels = ca.labels;
    if ((rc = wk_task_result_pack(ctx, &res.base)) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)ca.kept);
    wk_task_metric(ctx, "rows_after_dropna", (double)ca.after_dropna);
    rc = 0;
out:
    filter_reset(&ca);
    free(ca.out);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* ------------------------------------------------------------------ */

/* kind_idx.c, kind_knn.c */
int wk_kind_ingest_idx(task_ctx_t *ctx);
int wk_kind_knn_search(task_ctx_t *ctx);
int wk_kind_knn_classify(task_ctx_t *ctx);
int wk_kind_rec_keys(task_ctx_t *ctx);
int wk_kind_rec_search(task_ctx_t *ctx);
int wk_kind_rec_recommend(task_ctx_t *ctx);
int wk_kind_rec_export(task_ctx_t *ctx);

static const struct {
    const char *name;
    task_kind_fn fn;
} s_kinds[] = {
    {"noop", run_noop},
    {"ingest", run_ingest},
    {"join_load", wk_kind_join_load},
    {"join", wk_kind_join},
    {"join_part", wk_kind_join_part},
    {"join_gather", wk_kind_join_gather},
    {"clean_qround", run_clean_qround},
    {"clean_filter", run_clean_filter},
    {"scale_moments", wk_kind_scale_moments},
    {"scale_apply", wk_kind_scale_apply},
    {"hash", wk_kind_hash},
    {"split", wk_kind_split},
    {"featurize", wk_kind_featurize},
    {"train_epoch", wk_kind_train_epoch},
    {"train_reduce", wk_kind_train_reduce},
    {"lbfgs_grad", wk_kind_lbfgs_grad},
    {"evaluate", wk_kind_evaluate},
    {"cv_epoch", wk_kind_cv_epoch},
    {"cv_evaluate", wk_kind_cv_evaluate},
    {"ingest_idx", wk_kind_ingest_idx},
    {"knn_search", wk_kind_knn_search},
    {"knn_classify", wk_kind_knn_classify},
    {"rec_keys", wk_kind_rec_keys},
    {"rec_search", wk_kind_rec_search},
    {"rec_recommend", wk_kind_rec_recommend},
    {"rec_export", wk_kind_rec_export},
    {"predict", wk_kind_predict},
    {"promote_score", wk_kind_promote_score},
    {"drift", wk_kind_drift},
    {"profile_qround", wk_kind_profile_qround},
    {"profile_count", wk_kind_profile_count},
    {"profile_bins", wk_kind_profile_count}, /* the same counts, asked for before the model exists */
};

task_kind_fn wk_task_kind_find(const char *kind)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof *s_kinds; i++)
        if (!strcmp(s_kinds[i].name, kind)) return s_kinds[i].fn;
    return NULL;
}
