/* cmd_query.c: the reading commands (jobs, status, result, workers, logs)
 * and cancel. Each is one Query to the coordinator; -o json prints the
 * coordinator's JSON unchanged, the table form prints it for people. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "output.h"
#include "searchtable.h"

int ctl_query(const ctl_ctx *ctx, const char *verb, const char *job_id, const char *const *args,
              size_t nargs, json_t **doc, char **raw)
{
    char err[1024];
    *doc = NULL;
    if (raw) *raw = NULL;
    ctl_client *c = ctl_client_new(ctx->endpoint, "the coordinator", ctx->timeout_ms, err, sizeof err);
    if (!c) {
        ctl_errorf("%s", err);
        return CTL_EXIT_USAGE; /* a malformed endpoint is a usage error */
    }
    ctl_client_set_retries(c, ctx->retries);
    int rc = ctl_client_query(c, verb, job_id, args, nargs, doc, raw, err, sizeof err);
    ctl_client_destroy(&c);
    if (rc) {
        ctl_errorf("%s", err);
        /* An Error reply with BAD_JOB only makes sense for submit; a query
         * refused by the coordinator is a server-side error (exit 1). */
        return rc == MLOPS_ETIMEOUT ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAILED;
    }
    return CTL_EXIT_OK;
}

static void print_raw(const char *raw)
{
    fputs(raw, stdout);
    size_t n = strlen(raw);
    if (!n || raw[n - 1] != '\n') fputc('\n', stdout);
}

static const char *num_cell(const json_t *v, const char *key, char *buf, size_t len)
{
    const json_t *x = json_object_get(v, key);
    if (!json_is_number(x)) return "-";
    ctl_fmt_num(json_number_value(x), buf, len);
    return buf;
}

static const char *seconds_cell(const json_t *v, const char *key, char *buf, size_t len)
{
    const json_t *x = json_object_get(v, key);
    if (!json_is_number(x)) return "-";
    snprintf(buf, len, "%.2fs", json_number_value(x));
    return buf;
}

/* What the reading commands share: one query, then either the
 * coordinator's JSON as it came (-o json) or render(doc) for people. */
typedef void (*render_fn)(const json_t *doc, const ctl_args *a);

static int show(ctl_ctx *ctx, const ctl_args *a, const char *verb, const char *job_id,
                render_fn render)
{
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, verb, job_id, NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) print_raw(raw);
    else render(doc, a);
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

/* A table of one row per element of doc[key]: row() fills the cells
 * (its buffers live in `cells`, CELLS_MAX of 64 bytes). */
#define CELLS_MAX 10
typedef void (*row_fn)(const json_t *v, const char **row, char cells[][64]);

static void print_rows(const json_t *arr, const char *const *hdr, size_t ncols, row_fn row)
{
    ctl_table *t = ctl_table_new(ncols, hdr);
    for (size_t i = 0; t && i < json_array_size(arr); i++) {
        const char *cells_p[CELLS_MAX];
        char cells[CELLS_MAX][64];
        row(json_array_get(arr, i), cells_p, cells);
        ctl_table_add(t, cells_p);
    }
    if (t) ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
}

static void job_row(const json_t *j, const char **row, char cells[][64])
{
    snprintf(cells[0], 64, "%.0f/%.0f", mlops_jsonreply_num(j, "stages_done", 0),
             mlops_jsonreply_num(j, "stages_total", 0));
    row[0] = mlops_jsonreply_str(j, "job", "?");
    row[1] = mlops_jsonreply_str(j, "name", "?");
    row[2] = mlops_jsonreply_str(j, "state", "?");
    row[3] = cells[0];
    row[4] = mlops_jsonreply_str(j, "submitted", "-");
}

static void render_jobs(const json_t *doc, const ctl_args *a)
{
    (void)a;
    const char *hdr[] = {"JOB", "NAME", "STATE", "STAGES", "SUBMITTED"};
    print_rows(json_object_get(doc, "jobs"), hdr, 5, job_row);
}

int cmd_jobs(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "jobs", NULL, render_jobs); }

static void stage_row(const json_t *s, const char **row, char cells[][64])
{
    snprintf(cells[0], 64, "%.0f/%.0f", mlops_jsonreply_num(s, "tasks_done", 0),
             mlops_jsonreply_num(s, "tasks_total", 0));
    row[0] = mlops_jsonreply_str(s, "name", "?");
    row[1] = mlops_jsonreply_str(s, "state", "?");
    row[2] = cells[0];
    row[3] = seconds_cell(s, "seconds", cells[1], 64);
}

/* The job header, the stage table and (for result) the metrics. */
static void print_job(const json_t *doc, int with_metrics)
{
    char b1[64];
    printf("JOB         %s\n", mlops_jsonreply_str(doc, "job", "?"));
    printf("NAME        %s\n", mlops_jsonreply_str(doc, "name", "?"));
    printf("STATE       %s\n", mlops_jsonreply_str(doc, "state", "?"));
    const char *error = mlops_jsonreply_str(doc, "error", NULL);
    if (error) printf("ERROR       %s\n", error);
    printf("SUBMITTED   %s\n", mlops_jsonreply_str(doc, "submitted", "-"));
    printf("FINISHED    %s\n", mlops_jsonreply_str(doc, "finished", "-"));
    printf("SECONDS     %s\n", seconds_cell(doc, "seconds", b1, sizeof b1));
    const char *model = mlops_jsonreply_str(doc, "model", NULL);
    if (model) printf("MODEL       %s\n", model);

    const json_t *stages = json_object_get(doc, "stages");
    if (json_array_size(stages)) {
        putchar('\n');
        const char *hdr[] = {"STAGE", "STATE", "TASKS", "SECONDS"};
        print_rows(stages, hdr, 4, stage_row);
    }
    const json_t *m = json_object_get(doc, "metrics");
    if (with_metrics && json_object_size(m)) {
        putchar('\n');
        const char *hdr[] = {"METRIC", "VALUE"};
        ctl_table *t = ctl_table_new(2, hdr);
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *)m, key, value) {
            if (!t) break;
            char val[1024];
            ctl_fmt_value(value, val, sizeof val);
            const char *row[] = {key, val};
            ctl_table_add(t, row);
        }
        if (t) ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
    }
    if (with_metrics) ctl_search_print(doc, stdout);
}

static void render_status(const json_t *doc, const ctl_args *a)
{
    (void)a;
    print_job(doc, 0);
}

static void render_result(const json_t *doc, const ctl_args *a)
{
    (void)a;
    print_job(doc, 1);
}

int cmd_status(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "status", a->pos[0], render_status); }

int cmd_result(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "result", a->pos[0], render_result); }

static void worker_row(const json_t *w, const char **row, char cells[][64])
{
    const json_t *ls = json_object_get(w, "last_seen_ms");
    if (json_is_number(ls)) snprintf(cells[4], 64, "%.1fs ago", json_number_value(ls) / 1000.0);
    else snprintf(cells[4], 64, "-");
    row[0] = mlops_jsonreply_str(w, "id", "?");
    row[1] = mlops_jsonreply_str(w, "name", "?");
    row[2] = mlops_jsonreply_str(w, "state", "?");
    row[3] = num_cell(w, "slots", cells[0], 64);
    row[4] = num_cell(w, "running", cells[1], 64);
    row[5] = num_cell(w, "tasks_done", cells[2], 64);
    row[6] = num_cell(w, "shards", cells[3], 64);
    row[7] = cells[4];
    row[8] = mlops_jsonreply_str(w, "endpoint", "-");
}

static void render_workers(const json_t *doc, const ctl_args *a)
{
    (void)a;
    const char *hdr[] = {"ID",    "NAME",   "STATE",     "SLOTS",   "RUNNING",
                         "TASKS", "SHARDS", "LAST SEEN", "ENDPOINT"};
    print_rows(json_object_get(doc, "workers"), hdr, 9, worker_row);
}

int cmd_workers(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "workers", NULL, render_workers); }

static void render_logs(const json_t *doc, const ctl_args *a)
{
    (void)a;
    const json_t *lines = json_object_get(doc, "lines");
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const char *line = json_string_value(json_array_get(lines, i));
        puts(line ? line : "");
    }
}

int cmd_logs(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "logs", a->pos[0], render_logs); }

/* One row per task of every stage: the stage's name is a column. */
static void render_tasks(const json_t *doc, const ctl_args *a)
{
    (void)a;
    const char *hdr[] = {"STAGE", "TASK", "STATE", "WORKER", "ATTEMPTS", "SECONDS", "ROWS", "ERROR"};
    ctl_table *t = ctl_table_new(8, hdr);
    const json_t *ss = json_object_get(doc, "stages");
    for (size_t s = 0; t && s < json_array_size(ss); s++) {
        const json_t *st = json_array_get(ss, s), *ts = json_object_get(st, "tasks");
        for (size_t i = 0; i < json_array_size(ts); i++) {
            const json_t *tk = json_array_get(ts, i);
            char task[32], att[32], secs[64], rows[32];
            const char *row[] = {mlops_jsonreply_str(st, "name", "?"),
                                 num_cell(tk, "task", task, sizeof task),
                                 mlops_jsonreply_str(tk, "state", "?"),
                                 mlops_jsonreply_str(tk, "worker", "-"),
                                 num_cell(tk, "attempts", att, sizeof att),
                                 seconds_cell(tk, "seconds", secs, sizeof secs),
                                 num_cell(tk, "rows", rows, sizeof rows),
                                 mlops_jsonreply_str(tk, "error", "")};
            ctl_table_add(t, row);
        }
    }
    if (t) ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
}

int cmd_tasks(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "tasks", a->pos[0], render_tasks); }

static void stream_row(const json_t *tk, const char **row, char cells[][64])
{
    snprintf(cells[1], 64, "%.3fs",
             json_number_value(json_object_get(tk, "end")) -
                 json_number_value(json_object_get(tk, "start")));
    row[0] = mlops_jsonreply_str(tk, "worker", "?");
    row[1] = mlops_jsonreply_str(tk, "job", "?");
    row[2] = mlops_jsonreply_str(tk, "stage", "?");
    row[3] = num_cell(tk, "task", cells[0], 64);
    row[4] = cells[1];
    row[5] = json_is_true(json_object_get(tk, "ok")) ? "yes" : "no";
}

static void render_stream(const json_t *doc, const ctl_args *a)
{
    (void)a;
    const char *hdr[] = {"WORKER", "JOB", "STAGE", "TASK", "SECONDS", "OK"};
    print_rows(json_object_get(doc, "tasks"), hdr, 6, stream_row);
}

int cmd_stream(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "stream", NULL, render_stream); }

/* cancel and rm answer {"job", ...}: the job id, and for cancel the
 * state it is left in. */
static void render_cancel(const json_t *doc, const ctl_args *a)
{
    printf("%s %s\n", mlops_jsonreply_str(doc, "job", a->pos[0]), mlops_jsonreply_str(doc, "state", "?"));
}

static void render_rm(const json_t *doc, const ctl_args *a)
{
    printf("%s\n", mlops_jsonreply_str(doc, "job", a->pos[0]));
}

int cmd_cancel(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "cancel", a->pos[0], render_cancel); }

int cmd_rm(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "rm", a->pos[0], render_rm); }

/* Exit 0 only when the coordinator answered the ping: what a container
 * HEALTHCHECK or a readiness probe runs (a refused key or no answer is
 * the usual non-zero exit with its one-line message). */
static void render_ping(const json_t *doc, const ctl_args *a)
{
    (void)doc;
    (void)a;
    printf("ok\n");
}

int cmd_ping(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "ping", NULL, render_ping); }

static void render_security(const json_t *doc, const ctl_args *a)
{
    (void)a;
    int on = json_is_true(json_object_get(doc, "curve"));
    printf("CURVE:             %s\n", on ? "on" : "OFF (plain text, no keys)");
    if (on) {
        printf("server key:        %s\n", mlops_jsonreply_str(doc, "server_key", "?"));
        printf("worker keys:       %s\n", mlops_jsonreply_str(doc, "worker_keys", "?"));
        printf("client keys:       %s\n", mlops_jsonreply_str(doc, "client_keys", "?"));
    }
    printf("refused keys:      %lld\n", (long long)json_integer_value(json_object_get(doc, "refused_keys")));
    printf("denied messages:   %lld\n", (long long)json_integer_value(json_object_get(doc, "denied")));
    printf("failed handshakes: %lld\n", (long long)json_integer_value(json_object_get(doc, "handshakes_failed")));
}

int cmd_security(ctl_ctx *ctx, const ctl_args *a) { return show(ctx, a, "security", NULL, render_security); }
