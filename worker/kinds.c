/* kinds.c: the task kinds a worker runs, one function each, in a table.
 * Each reads the arguments its stage entry (coordinator/stage_*.c)
 * wrote, calls pure kernels (common/kernels), and writes its output
 * shard and result. Arguments come from the network: every read is
 * bounds-checked and a damaged argument fails the task, never the
 * process. */
#include "bytes.h"
#include <czmq.h>
#include "clean.h"
#include "csv.h"
#include "err.h"
#include "log.h"
#include "quantile.h"
#include "kinds.h"
#include "task.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The distinct labels of a shard as "u32 n, n strings" (for the
 * coordinator's class list), when the job has a label column; then, if
 * given, a blob (the ingest task's quantile answer). */
static int label_set_result(task_ctx_t *ctx, const mlk_frame *f, const uint8_t *extra, size_t extra_len)
{
    const mlops_jobspec_t *s;
    if (wk_task_spec(ctx, &s) != 0) return -1;
    int c = s->columns.label ? mlk_frame_col(f, s->columns.label) : -1;
    if (c >= 0 && f->cols[c].type != MLK_STR) c = -1;
    zhashx_t *seen = zhashx_new();
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 0);
    uint32_t n = 0;
    char buf[1024];
    const mlk_col *col = c >= 0 ? &f->cols[c] : NULL;
    for (size_t r = 0; col && r < f->nrows; r++) {
        if (col->missing[r]) continue;
        size_t len;
        const char *v = mlk_str_at(col, r, &len);
        if (len >= sizeof buf) len = sizeof buf - 1;
        memcpy(buf, v, len);
        buf[len] = 0;
        if (zhashx_lookup(seen, buf)) continue;
        zhashx_insert(seen, buf, (void *)1);
        bw_str(&w, buf);
        if (++n > 10000) break; /* the coordinator reports the error */
    }
    zhashx_destroy(&seen);
    bw_blob(&w, extra, extra_len);
    size_t len;
    uint8_t *out = bw_take(&w, &len);
    if (!out) return wk_task_fail(ctx, 1, "out of memory");
    memcpy(out, &n, 4);
    wk_task_result(ctx, out, len);
    return 0;
}

/* ------------------------------------------------------------------ */
/* clean                                                               */

/* dropna over every column of the shard (the used columns) */
static void dropna_all(const mlk_frame *f, int dropna, uint8_t *keep)
{
    memset(keep, 1, f->nrows);
    if (!dropna) return;
    size_t all[256];
    size_t n = f->ncols < 256 ? f->ncols : 256;
    for (size_t c = 0; c < n; c++) all[c] = c;
    mlk_dropna_mask(f, all, n, keep);
}

/* The shard's answer to a quantile request over its numeric columns
 * (after dropna, as pandas computes quartiles on the dropna'd frame). */
static int quantile_answer(task_ctx_t *ctx, const mlk_frame *f, int dropna, const uint8_t *req,
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

static int run_noop(task_ctx_t *ctx)
{
    (void)ctx;
    return 0;
}

/* ------------------------------------------------------------------ */
/* ingest: raw CSV bytes of one shard -> frame of the used columns      */

static int run_ingest(task_ctx_t *ctx)
{
    br_t r;
    br_init(&r, ctx->ta->args.data, ctx->ta->args.len);
    char *fname = br_str(&r);
    int64_t first_row = (int64_t)br_u64(&r);
    long first_line = (long)br_u64(&r);
    uint32_t nhdr = br_u32(&r);
    int rc = -1;
    char **hdr = NULL, **want = NULL;
    mlk_coltype *types = NULL;
    size_t *index = NULL;
    uint32_t nwant = 0;
    mlk_frame *f = NULL;
    if (r.err || nhdr > 100000) goto bad;
    hdr = calloc(nhdr ? nhdr : 1, sizeof *hdr);
    if (!hdr) goto bad;
    for (uint32_t i = 0; i < nhdr && !r.err; i++) hdr[i] = br_str(&r);
    nwant = br_u32(&r);
    if (r.err || nwant > nhdr) goto bad;
    want = calloc(nwant ? nwant : 1, sizeof *want);
    types = calloc(nwant ? nwant : 1, sizeof *types);
    index = calloc(nwant ? nwant : 1, sizeof *index);
    if (!want || !types || !index) goto bad;
    for (uint32_t i = 0; i < nwant && !r.err; i++) {
        want[i] = br_str(&r);
        uint32_t t = br_u32(&r);
        types[i] = t == MLK_STR ? MLK_STR : MLK_F64;
    }
    uint32_t skip_bad = br_u32(&r);
    size_t len, reqlen;
    const uint8_t *data = br_blob(&r, &len);
    uint32_t dropna = br_u32(&r);
    const uint8_t *req = br_blob(&r, &reqlen);
    if (!br_done(&r)) goto bad;
    mlk_csv_schema schema;
    if (mlk_csv_schema_init(&schema, (const char *const *)hdr, nhdr, (const char *const *)want, types,
                            nwant, index, ctx->err, sizeof ctx->err) != 0) {
        rc = -1;
        goto out;
    }
    size_t rows_bad = 0;
    if (mlk_csv_parse((const char *)data, len, &schema, first_row, first_line, fname, skip_bad != 0, &f,
                      &rows_bad, ctx->err, sizeof ctx->err) != 0) {
        rc = -1; /* a data error: the message names file and line */
        goto out;
    }
    if ((rc = wk_task_output_frame(ctx, f)) != 0) goto out;
    uint8_t *ans = NULL;
    size_t anslen = 0;
    if (reqlen && (rc = quantile_answer(ctx, f, (int)dropna, req, reqlen, &ans, &anslen)) != 0) goto out;
    rc = label_set_result(ctx, f, ans, anslen);
    free(ans);
    if (rc) goto out;
    wk_task_metric(ctx, "rows", (double)f->nrows);
    wk_task_metric(ctx, "rows_bad", (double)rows_bad);
    rc = 0;
    goto out;
bad:
    rc = wk_task_fail(ctx, 0, "ingest: damaged task arguments");
out:
    mlk_frame_destroy(&f);
    for (uint32_t i = 0; hdr && i < nhdr; i++) free(hdr[i]);
    for (uint32_t i = 0; want && i < nwant; i++) free(want[i]);
    free(hdr);
    free(want);
    free(types);
    free(index);
    free(fname);
    return rc;
}

static int run_clean_qround(task_ctx_t *ctx)
{
    br_t r;
    br_init(&r, ctx->ta->args.data, ctx->ta->args.len);
    uint32_t mode = br_u32(&r), dropna = br_u32(&r);
    size_t reqlen;
    const uint8_t *req = br_blob(&r, &reqlen);
    if (!br_done(&r) || mode != 0) return wk_task_fail(ctx, 0, "clean: damaged task arguments");
    mlk_frame *f = NULL;
    if (wk_task_input_frame(ctx, 0, &f) != 0) return -1;
    uint8_t *ans;
    size_t anslen;
    int rc = quantile_answer(ctx, f, (int)dropna, req, reqlen, &ans, &anslen);
    if (!rc) wk_task_result(ctx, ans, anslen);
    mlk_frame_destroy(&f);
    return rc;
}

static int run_clean_filter(task_ctx_t *ctx)
{
    br_t r;
    br_init(&r, ctx->ta->args.data, ctx->ta->args.len);
    uint32_t mode = br_u32(&r), dropna = br_u32(&r), nb = br_u32(&r);
    if (r.err || mode != 1 || nb > 100000) return wk_task_fail(ctx, 0, "clean: damaged task arguments");
    double *lo = calloc(nb ? nb : 1, sizeof *lo), *hi = calloc(nb ? nb : 1, sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return wk_task_fail(ctx, 1, "out of memory");
    }
    for (uint32_t c = 0; c < nb; c++) {
        lo[c] = br_f64(&r);
        hi[c] = br_f64(&r);
    }
    int rc = -1;
    mlk_frame *f = NULL;
    size_t *idx = NULL;
    size_t ncols = 0;
    uint8_t *keep = NULL;
    if (!br_done(&r)) { rc = wk_task_fail(ctx, 0, "clean: damaged task arguments"); goto out; }
    if (wk_task_input_frame(ctx, 0, &f) != 0) goto out;
    keep = malloc(f->nrows ? f->nrows : 1);
    if (!keep) { rc = wk_task_fail(ctx, 1, "out of memory"); goto out; }
    dropna_all(f, (int)dropna, keep);
    size_t after_dropna = 0;
    for (size_t i = 0; i < f->nrows; i++) after_dropna += keep[i];
    if (nb) {
        if (wk_task_numeric_cols(ctx, f, &idx, &ncols) != 0) goto out;
        if (ncols != nb) { rc = wk_task_fail(ctx, 0, "clean: bounds for %u columns, spec has %zu", nb, ncols); goto out; }
        if (mlk_iqr_mask(f, idx, ncols, lo, hi, keep) < 0) { rc = wk_task_fail(ctx, 0, "clean: bad IQR columns"); goto out; }
    }
    mlk_frame_filter(f, keep);
    if ((rc = wk_task_output_frame(ctx, f)) != 0) goto out;
    if ((rc = label_set_result(ctx, f, NULL, 0)) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)f->nrows);
    wk_task_metric(ctx, "rows_after_dropna", (double)after_dropna);
    rc = 0;
out:
    free(lo);
    free(hi);
    free(idx);
    free(keep);
    mlk_frame_destroy(&f);
    return rc;
}

/* ------------------------------------------------------------------ */

/* kind_idx.c, kind_knn.c */
int wk_kind_ingest_idx(task_ctx_t *ctx);
int wk_kind_knn_search(task_ctx_t *ctx);
int wk_kind_knn_classify(task_ctx_t *ctx);
int wk_kind_rec_keys(task_ctx_t *ctx);
int wk_kind_rec_encode(task_ctx_t *ctx);
int wk_kind_rec_search(task_ctx_t *ctx);
int wk_kind_rec_recommend(task_ctx_t *ctx);

static const struct {
    const char *name;
    task_kind_fn fn;
} s_kinds[] = {
    {"noop", run_noop},
    {"ingest", run_ingest},
    {"clean_qround", run_clean_qround},
    {"clean_filter", run_clean_filter},
    {"scale_moments", wk_kind_scale_moments},
    {"scale_apply", wk_kind_scale_apply},
    {"hash", wk_kind_hash},
    {"split", wk_kind_split},
    {"train_epoch", wk_kind_train_epoch},
    {"train_reduce", wk_kind_train_reduce},
    {"evaluate", wk_kind_evaluate},
    {"ingest_idx", wk_kind_ingest_idx},
    {"knn_search", wk_kind_knn_search},
    {"knn_classify", wk_kind_knn_classify},
    {"rec_keys", wk_kind_rec_keys},
    {"rec_encode", wk_kind_rec_encode},
    {"rec_search", wk_kind_rec_search},
    {"rec_recommend", wk_kind_rec_recommend},
};

task_kind_fn wk_task_kind_find(const char *kind)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof *s_kinds; i++)
        if (!strcmp(s_kinds[i].name, kind)) return s_kinds[i].fn;
    return NULL;
}
