/* cmd_export.c: `export JOB --stage NAME [--format csv] [-o FILE]`.
 *
 * Asks the coordinator for the stage's export plan (its output shards in
 * order, each with a holder's store endpoint), fetches each shard with
 * ShardGet straight from that worker, decodes it (mlk_frame_decode
 * validates it: a peer may send garbage) and appends its rows as CSV.
 * If a holder does not answer or no longer has the shard, the plan is
 * asked for once more (the coordinator recomputes shards lost with a
 * worker; while it does, it answers NOT_FOUND and we ask again, bounded)
 * and the export resumes at the same shard; a second failure ends the
 * export with a message naming the shard and endpoint.
 *
 * CSV: header = the frame's column names; numbers in the shortest form
 * that reads back to the same double; strings quoted per RFC 4180 when
 * they hold a comma, quote, CR or LF; missing values empty. With -o the
 * rows go to FILE.tmp, renamed to FILE only when complete. */
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "frame.h"
#include "fshard.h"

#define PATH_LEN 4096

/* Shortest "%.Ng" (N = 15..17) that round-trips; integers without a point. */
static size_t fmt_double(double x, char *buf, size_t len)
{
    if (isnan(x)) {
        buf[0] = 0;
        return 0;
    }
    if (isinf(x)) return (size_t)snprintf(buf, len, x > 0 ? "inf" : "-inf");
    if (x == (double)(int64_t)x && fabs(x) < 9007199254740992.0)
        return (size_t)snprintf(buf, len, "%lld", (long long)(int64_t)x);
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, len, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return n > 0 ? (size_t)n : 0;
}

static void write_str(FILE *out, const char *s, size_t n)
{
    int quote = n == 0; /* "" keeps an empty string apart from a missing value */
    for (size_t i = 0; i < n && !quote; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') quote = 1;
    if (!quote) {
        fwrite(s, 1, n, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') fputc('"', out);
        fputc(s[i], out);
    }
    fputc('"', out);
}

static void write_header(FILE *out, const mlk_frame *f)
{
    for (size_t c = 0; c < f->ncols; c++) {
        if (c) fputc(',', out);
        write_str(out, f->cols[c].name, strlen(f->cols[c].name));
    }
    fputc('\n', out);
}

static void write_rows(FILE *out, const mlk_frame *f)
{
    char num[64];
    for (size_t r = 0; r < f->nrows; r++) {
        for (size_t c = 0; c < f->ncols; c++) {
            if (c) fputc(',', out);
            const mlk_col *col = &f->cols[c];
            if (col->type == MLK_F64) {
                size_t n = fmt_double(col->f64[r], num, sizeof num);
                fwrite(num, 1, n, out);
            } else if (!col->missing[r]) {
                size_t n;
                const char *s = mlk_str_at(col, r, &n);
                write_str(out, s, n);
            }
        }
        fputc('\n', out);
    }
}

/* One svmlight line per row (scikit-learn's load_svmlight_file reads
 * it with zero_based=True): the class label (its text when numeric,
 * else the class index), then index:value pairs in increasing index
 * order, hashed features first and dense column k at n_features + k.
 * Zero values are omitted, as dump_svmlight_file does. */
static void put_value(FILE *out, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.15g", v);
    if (strtod(b, NULL) != v) snprintf(b, sizeof b, "%.17g", v);
    fputs(b, out);
}

static void write_svmlight(FILE *out, const mlk_features *f, const json_t *classes)
{
    size_t nf = f->csr ? f->csr->ncols : 0;
    for (size_t r = 0; r < f->nrows; r++) {
        int32_t y = f->label[r];
        const char *txt = y >= 0 ? json_string_value(json_array_get(classes, (size_t)y)) : NULL;
        char *end = NULL;
        if (txt && *txt) strtod(txt, &end);
        if (txt && *txt && end && !*end) fputs(txt, out);
        else fprintf(out, "%d", (int)y);
        if (f->csr)
            for (int64_t p = f->csr->indptr[r]; p < f->csr->indptr[r + 1]; p++) {
                if (f->csr->data[p] == 0) continue;
                fprintf(out, " %d:", (int)f->csr->indices[p]);
                put_value(out, f->csr->data[p]);
            }
        for (size_t k = 0; k < f->n_dense; k++) {
            double v = f->dense_type == MLK_DENSE_F32 ? (double)f->dense32[r * f->n_dense + k]
                                                      : f->dense64[r * f->n_dense + k];
            if (v == 0) continue;
            fprintf(out, " %zu:", nf + k);
            put_value(out, v);
        }
        fputc('\n', out);
    }
}

/* 1 if two frames have the same column names and types in order. */
static int same_columns(const mlk_frame *a, const mlk_frame *b)
{
    if (a->ncols != b->ncols) return 0;
    for (size_t c = 0; c < a->ncols; c++)
        if (a->cols[c].type != b->cols[c].type || strcmp(a->cols[c].name, b->cols[c].name)) return 0;
    return 1;
}

/* Fetch shard `key` from the store at `endpoint` and decode it as a
 * frame, or (when fs is non-NULL) as a feature shard. */
static int fetch_shard(const ctl_ctx *ctx, const char *endpoint, const char *server_key,
                       const char *key, mlk_frame **out, mlk_features **fs, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (fs) *fs = NULL;
    ctl_client *c = ctl_client_new_store(endpoint, "the worker store", ctx->timeout_ms, server_key,
                                         err, errlen);
    if (!c) return MLOPS_EIO;
    envelope_t req;
    wire_init(&req, 0);
    Mlops__ShardGet g = MLOPS__SHARD_GET__INIT;
    g.key = (char *)key;
    req.body_case = MLOPS__ENVELOPE__BODY_SHARD_GET;
    req.shard_get = &g;
    envelope_t *rep = NULL;
    int rc = ctl_client_call(c, &req, &rep, err, errlen);
    ctl_client_destroy(&c);
    if (rc) return rc;
    if (rep->body_case != MLOPS__ENVELOPE__BODY_SHARD_DATA || !rep->shard_data) {
        rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "%s answered %s to ShardGet", endpoint,
                          wire_body_name(rep));
    } else if (!rep->shard_data->key || strcmp(rep->shard_data->key, key)) {
        rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "%s sent shard '%s' for '%s'", endpoint,
                          rep->shard_data->key ? rep->shard_data->key : "", key);
    } else if (fs) {
        if (mlk_features_decode(rep->shard_data->data.data, rep->shard_data->data.len, fs) != 0)
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "shard %s from %s is not a valid feature shard",
                              key, endpoint);
    } else if (mlk_frame_decode(rep->shard_data->data.data, rep->shard_data->data.len, out) != 0) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "shard %s from %s is not a valid frame", key,
                          endpoint);
    }
    wire_free(&rep);
    return rc;
}

/* Check a plan's shape: kind "frame", shards [{index = position, key, endpoint}]. */
static int check_plan(const json_t *plan, const char *job, const char *stage)
{
    const char *kind = mlops_jsonreply_str(plan, "kind", "");
    if (strcmp(kind, "frame") && strcmp(kind, "features")) {
        ctl_errorf("job %s: stage %s produces '%s' output, which export cannot write", job, stage, kind);
        return CTL_EXIT_FAILED;
    }
    const json_t *shards = json_object_get(plan, "shards");
    if (!json_is_array(shards)) {
        ctl_errorf("job %s: export plan for stage %s has no shard list", job, stage);
        return CTL_EXIT_FAILED;
    }
    for (size_t i = 0; i < json_array_size(shards); i++) {
        const json_t *s = json_array_get(shards, i);
        if (!mlops_jsonreply_str(s, "key", NULL) || !mlops_jsonreply_str(s, "endpoint", NULL) ||
            mlops_jsonreply_num(s, "index", -1) != (double)i) {
            ctl_errorf("job %s: malformed export plan for stage %s (shard %zu)", job, stage, i);
            return CTL_EXIT_FAILED;
        }
    }
    return 0;
}

/* Ask for the plan. With `patient`, a NOT_FOUND answer (the coordinator
 * is recomputing shards lost with a worker) is asked again every
 * REPLAN_POLL_MS for up to REPLAN_WAIT_MS. Returns an exit code. */
#define REPLAN_POLL_MS 200
#define REPLAN_WAIT_MS 60000
static int get_plan(const ctl_ctx *ctx, const char *job, const char *stage, int patient,
                    json_t **plan)
{
    char err[1024];
    const char *args[] = {stage};
    *plan = NULL;
    ctl_client *c = ctl_client_new(ctx->endpoint, "the coordinator", ctx->timeout_ms, err, sizeof err);
    if (!c) {
        ctl_errorf("%s", err);
        return CTL_EXIT_USAGE;
    }
    int64_t deadline = zclock_mono() + REPLAN_WAIT_MS;
    int rc;
    for (;;) {
        rc = ctl_client_query(c, "export-plan", job, args, 1, plan, NULL, err, sizeof err);
        if (rc != MLOPS_ENOTFOUND || !patient || zclock_mono() >= deadline) break;
        zclock_sleep(REPLAN_POLL_MS);
    }
    ctl_client_destroy(&c);
    if (rc) {
        ctl_errorf("%s", err);
        return rc == MLOPS_ETIMEOUT ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAILED;
    }
    int code = check_plan(*plan, job, stage);
    if (code) {
        json_decref(*plan);
        *plan = NULL;
    }
    return code;
}

int cmd_export(ctl_ctx *ctx, const ctl_args *a)
{
    const char *job = a->pos[0];
    const char *stage = ctl_arg(a, "stage");
    const char *format = ctl_arg(a, "format");
    const char *outpath = ctl_arg(a, "output");
    if (!stage || !*stage) {
        ctl_errorf("export: --stage NAME is required");
        return CTL_EXIT_USAGE;
    }
    if (format && strcmp(format, "csv") && strcmp(format, "svmlight")) {
        ctl_errorf("export: --format: expected csv or svmlight, got '%s'", format);
        return CTL_EXIT_USAGE;
    }
    /* The job and stage must exist and be done; after that a NOT_FOUND
     * plan can only mean shards being recomputed, worth waiting for. */
    json_t *status = NULL;
    int code = ctl_query(ctx, "status", job, NULL, 0, &status, NULL);
    if (code) return code;
    const json_t *st = NULL, *stages = json_object_get(status, "stages");
    for (size_t i = 0; i < json_array_size(stages); i++)
        if (!strcmp(mlops_jsonreply_str(json_array_get(stages, i), "name", ""), stage))
            st = json_array_get(stages, i);
    if (!st || strcmp(mlops_jsonreply_str(st, "state", ""), "done")) {
        if (!st) ctl_errorf("job %s has no stage '%s'", job, stage);
        else
            ctl_errorf("stage '%s' of job %s is %s, not done: nothing to export yet", stage, job,
                       mlops_jsonreply_str(st, "state", "?"));
        json_decref(status);
        return CTL_EXIT_FAILED;
    }
    json_decref(status);
    json_t *plan = NULL;
    if ((code = get_plan(ctx, job, stage, 1, &plan))) return code;
    int features = !strcmp(mlops_jsonreply_str(plan, "kind", ""), "features");
    if (features && format && strcmp(format, "svmlight")) {
        ctl_errorf("export: stage '%s' holds feature rows: use --format svmlight", stage);
        json_decref(plan);
        return CTL_EXIT_USAGE;
    }
    if (!features && format && !strcmp(format, "svmlight")) {
        ctl_errorf("export: stage '%s' holds table rows: svmlight needs a hash (or later) stage", stage);
        json_decref(plan);
        return CTL_EXIT_USAGE;
    }

    char tmp[PATH_LEN];
    FILE *out = stdout;
    if (outpath && strcmp(outpath, "-")) {
        snprintf(tmp, sizeof tmp, "%s.tmp", outpath);
        out = fopen(tmp, "wb");
        if (!out) {
            ctl_errorf("cannot write %s", tmp);
            json_decref(plan);
            return CTL_EXIT_FAILED;
        }
        setvbuf(out, NULL, _IOFBF, 1 << 20);
    }
    mlk_frame *first = NULL;
    int replanned = 0;
    code = CTL_EXIT_OK;
    for (size_t i = 0; i < json_array_size(json_object_get(plan, "shards"));) {
        const json_t *s = json_array_get(json_object_get(plan, "shards"), i);
        const char *key = mlops_jsonreply_str(s, "key", ""),
                   *ep = mlops_jsonreply_str(s, "endpoint", ""),
                   *skey = mlops_jsonreply_str(s, "server_key", "");
        char err[1024];
        mlk_frame *f = NULL;
        mlk_features *fs = NULL;
        int rc = fetch_shard(ctx, ep, skey, key, &f, features ? &fs : NULL, err, sizeof err);
        if (rc) {
            if (!replanned && (rc == MLOPS_ETIMEOUT || rc == MLOPS_ENOTFOUND || rc == MLOPS_EIO)) {
                replanned = 1;
                fprintf(stderr, "mlopsctl: shard %s: %s; asking for a new plan\n", key, err);
                size_t had = json_array_size(json_object_get(plan, "shards"));
                json_decref(plan);
                if ((code = get_plan(ctx, job, stage, 1, &plan))) break;
                if (json_array_size(json_object_get(plan, "shards")) != had) {
                    ctl_errorf("job %s: stage %s now has %zu shards instead of %zu", job, stage,
                               json_array_size(json_object_get(plan, "shards")), had);
                    code = CTL_EXIT_FAILED;
                    break;
                }
                continue; /* same shard, new holder */
            }
            ctl_errorf("cannot fetch shard %s from %s: %s", key, ep, err);
            code = rc == MLOPS_ETIMEOUT ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAILED;
            break;
        }
        if (fs) {
            write_svmlight(out, fs, json_object_get(plan, "classes"));
            mlk_features_destroy(&fs);
            i++;
            continue;
        }
        if (!first) {
            write_header(out, f);
            first = f;
        } else if (!same_columns(first, f)) {
            ctl_errorf("shard %s has different columns from shard 0", key);
            mlk_frame_destroy(&f);
            code = CTL_EXIT_FAILED;
            break;
        }
        write_rows(out, f);
        if (f != first) mlk_frame_destroy(&f);
        i++;
    }
    mlk_frame_destroy(&first);
    json_decref(plan);
    if (fflush(out) != 0 || ferror(out)) {
        ctl_errorf("cannot write %s", out == stdout ? "standard output" : tmp);
        if (!code) code = CTL_EXIT_FAILED;
    }
    if (out != stdout) {
        if (fclose(out) != 0 && !code) {
            ctl_errorf("cannot write %s", tmp);
            code = CTL_EXIT_FAILED;
        }
        if (code) remove(tmp);
        else if (rename(tmp, outpath) != 0) {
            ctl_errorf("cannot rename %s to %s", tmp, outpath);
            code = CTL_EXIT_FAILED;
        }
    }
    return code;
}
