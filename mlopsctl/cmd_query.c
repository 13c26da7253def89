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

int cmd_jobs(ctl_ctx *ctx, const ctl_args *a)
{
    (void)a;
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "jobs", NULL, NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) {
        print_raw(raw);
    } else {
        const char *hdr[] = {"JOB", "NAME", "STATE", "STAGES", "SUBMITTED"};
        ctl_table *t = ctl_table_new(5, hdr);
        const json_t *jobs = json_object_get(doc, "jobs");
        for (size_t i = 0; t && i < json_array_size(jobs); i++) {
            const json_t *j = json_array_get(jobs, i);
            char stages[64];
            snprintf(stages, sizeof stages, "%.0f/%.0f", mlops_jsonreply_num(j, "stages_done", 0),
                     mlops_jsonreply_num(j, "stages_total", 0));
            const char *row[] = {mlops_jsonreply_str(j, "job", "?"),
                                 mlops_jsonreply_str(j, "name", "?"),
                                 mlops_jsonreply_str(j, "state", "?"), stages,
                                 mlops_jsonreply_str(j, "submitted", "-")};
            ctl_table_add(t, row);
        }
        if (t) ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
    }
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

/* The job header, the stage table and (for result) the metrics. */
static void print_job(const json_t *doc, int with_metrics)
{
    char b1[64], b2[64];
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
        ctl_table *t = ctl_table_new(4, hdr);
        for (size_t i = 0; t && i < json_array_size(stages); i++) {
            const json_t *s = json_array_get(stages, i);
            char tasks[64];
            snprintf(tasks, sizeof tasks, "%.0f/%.0f", mlops_jsonreply_num(s, "tasks_done", 0),
                     mlops_jsonreply_num(s, "tasks_total", 0));
            const char *row[] = {mlops_jsonreply_str(s, "name", "?"),
                                 mlops_jsonreply_str(s, "state", "?"), tasks,
                                 seconds_cell(s, "seconds", b2, sizeof b2)};
            ctl_table_add(t, row);
        }
        if (t) ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
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

static int job_query(ctl_ctx *ctx, const ctl_args *a, const char *verb, int with_metrics)
{
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, verb, a->pos[0], NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) print_raw(raw);
    else print_job(doc, with_metrics);
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

int cmd_status(ctl_ctx *ctx, const ctl_args *a) { return job_query(ctx, a, "status", 0); }

int cmd_result(ctl_ctx *ctx, const ctl_args *a) { return job_query(ctx, a, "result", 1); }

int cmd_workers(ctl_ctx *ctx, const ctl_args *a)
{
    (void)a;
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "workers", NULL, NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) {
        print_raw(raw);
    } else {
        const char *hdr[] = {"ID",    "NAME",   "STATE",     "SLOTS",   "RUNNING",
                             "TASKS", "SHARDS", "LAST SEEN", "ENDPOINT"};
        ctl_table *t = ctl_table_new(9, hdr);
        const json_t *ws = json_object_get(doc, "workers");
        for (size_t i = 0; t && i < json_array_size(ws); i++) {
            const json_t *w = json_array_get(ws, i);
            char slots[32], running[32], done[32], shards[32], seen[64];
            const json_t *ls = json_object_get(w, "last_seen_ms");
            if (json_is_number(ls))
                snprintf(seen, sizeof seen, "%.1fs ago", json_number_value(ls) / 1000.0);
            else snprintf(seen, sizeof seen, "-");
            const char *row[] = {mlops_jsonreply_str(w, "id", "?"),
                                 mlops_jsonreply_str(w, "name", "?"),
                                 mlops_jsonreply_str(w, "state", "?"),
                                 num_cell(w, "slots", slots, sizeof slots),
                                 num_cell(w, "running", running, sizeof running),
                                 num_cell(w, "tasks_done", done, sizeof done),
                                 num_cell(w, "shards", shards, sizeof shards),
                                 seen,
                                 mlops_jsonreply_str(w, "endpoint", "-")};
            ctl_table_add(t, row);
        }
        if (t) ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
    }
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

int cmd_logs(ctl_ctx *ctx, const ctl_args *a)
{
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "logs", a->pos[0], NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) {
        print_raw(raw);
    } else {
        const json_t *lines = json_object_get(doc, "lines");
        for (size_t i = 0; i < json_array_size(lines); i++) {
            const char *line = json_string_value(json_array_get(lines, i));
            puts(line ? line : "");
        }
    }
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

int cmd_tasks(ctl_ctx *ctx, const ctl_args *a)
{
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "tasks", a->pos[0], NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) {
        print_raw(raw);
    } else {
        const char *hdr[] = {"STAGE",    "TASK",    "STATE", "WORKER",
                             "ATTEMPTS", "SECONDS", "ROWS",  "ERROR"};
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
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

int cmd_stream(ctl_ctx *ctx, const ctl_args *a)
{
    (void)a;
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "stream", NULL, NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) {
        print_raw(raw);
    } else {
        const char *hdr[] = {"WORKER", "JOB", "STAGE", "TASK", "SECONDS", "OK"};
        ctl_table *t = ctl_table_new(6, hdr);
        const json_t *ts = json_object_get(doc, "tasks");
        for (size_t i = 0; t && i < json_array_size(ts); i++) {
            const json_t *tk = json_array_get(ts, i);
            char task[32], secs[64];
            snprintf(secs, sizeof secs, "%.3fs",
                     json_number_value(json_object_get(tk, "end")) -
                         json_number_value(json_object_get(tk, "start")));
            const char *row[] = {mlops_jsonreply_str(tk, "worker", "?"),
                                 mlops_jsonreply_str(tk, "job", "?"),
                                 mlops_jsonreply_str(tk, "stage", "?"),
                                 num_cell(tk, "task", task, sizeof task),
                                 secs,
                                 json_is_true(json_object_get(tk, "ok")) ? "yes" : "no"};
            ctl_table_add(t, row);
        }
        if (t) ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
    }
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

/* A verb on one job whose reply is {"job", ...}: the raw JSON, or the
 * job id followed by the reply's `field` (if given). */
static int job_verb(ctl_ctx *ctx, const ctl_args *a, const char *verb, const char *field)
{
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, verb, a->pos[0], NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) print_raw(raw);
    else if (field)
        printf("%s %s\n", mlops_jsonreply_str(doc, "job", a->pos[0]),
               mlops_jsonreply_str(doc, field, "?"));
    else printf("%s\n", mlops_jsonreply_str(doc, "job", a->pos[0]));
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

int cmd_cancel(ctl_ctx *ctx, const ctl_args *a) { return job_verb(ctx, a, "cancel", "state"); }

int cmd_rm(ctl_ctx *ctx, const ctl_args *a) { return job_verb(ctx, a, "rm", NULL); }

/* Exit 0 only when the coordinator answered the ping: what a container
 * HEALTHCHECK or a readiness probe runs (a refused key or no answer is
 * the usual non-zero exit with its one-line message). */
int cmd_ping(ctl_ctx *ctx, const ctl_args *a)
{
    (void)a;
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "ping", NULL, NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) print_raw(raw);
    else printf("ok\n");
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

int cmd_security(ctl_ctx *ctx, const ctl_args *a)
{
    (void)a;
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "security", NULL, NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) {
        print_raw(raw);
    } else {
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
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}
