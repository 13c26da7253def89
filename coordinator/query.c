/* query.c: the Query verbs of mlopsctl (jobs, status, result, workers,
 * logs, tasks, stream, cancel, rm, export-plan, ping), answered with Reply{json}.
 *
 * One table row per verb: its wire name, whether it names a job (looked
 * up here, so a handler always has one), and the handler that builds the
 * reply with jansson. The keys and their order are what `mlopsctl -o
 * json` prints, so they are part of the interface: change one and the
 * scripts reading them break. */
#include "coord_internal.h"
#include "jsondump.h"
#include "log.h"
#include "stages.h"
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why a handler refused: the Error the client gets instead of a reply. */
typedef struct {
    Mlops__ErrorCode code;
    char msg[1024];
} qerr_t;

typedef json_t *(*query_fn)(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e);

static json_t *refuse(qerr_t *e, Mlops__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *refuse(qerr_t *e, Mlops__ErrorCode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return NULL;
}

/* A string value, or null for NULL. Names, errors and log lines can hold
 * bytes from a user's file that are not UTF-8, which jansson refuses:
 * those bytes become U+FFFD rather than losing the whole reply. */
static json_t *jstr(const char *s)
{
    if (!s) return json_null();
    json_t *v = json_string(s);
    if (v) return v;
    size_t n = strlen(s);
    char *clean = malloc(n * 3 + 1);
    if (!clean) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)s[i];
        size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] >> 6) == 2;
        if (ok) {
            json_t *probe = json_stringn(s + i, len); /* rejects overlongs and surrogates */
            ok = probe != NULL;
            json_decref(probe);
        }
        if (ok) {
            memcpy(clean + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    v = json_stringn(clean, o);
    free(clean);
    return v;
}

/* A double as the replies have always printed it: integral values as
 * integers, NaN and infinities (which JSON lacks) as null. */
static json_t *jnum(double v)
{
    if (!isfinite(v)) return json_null();
    if (v == floor(v) && fabs(v) < 1e15) return json_integer((json_int_t)v);
    return json_real(v);
}

static void iso_time(double t, char *buf, size_t n)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *job_summary(const job_t *j)
{
    char ts[32];
    iso_time(j->submitted, ts, sizeof ts);
    size_t done = 0;
    for (size_t s = 0; s < j->nstages; s++)
        if (j->stages[s].state == ST_DONE) done++;
    json_t *o = json_object();
    json_object_set_new(o, "job", jstr(j->id));
    json_object_set_new(o, "name", jstr(j->name));
    json_object_set_new(o, "state", jstr(job_state_name(j->state)));
    json_object_set_new(o, "submitted", jstr(ts));
    json_object_set_new(o, "stages_done", json_integer((json_int_t)done));
    json_object_set_new(o, "stages_total", json_integer((json_int_t)j->nstages));
    return o;
}

static json_t *jnums(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, jnum(v[i]));
    return a;
}

/* The evaluate stage's curves and confusion matrix (stage_evaluate.c),
 * for `mlopsctl report` and the dashboard; NULL before it is done. */
static json_t *evaluation(const job_t *j)
{
    stage_t *st = NULL;
    for (size_t s = 0; s < j->nstages; s++)
        if (!strcmp(j->stages[s].name, "evaluate") && j->stages[s].state == ST_DONE)
            st = &j->stages[s];
    mlk_metrics_curves c;
    uint64_t *conf = NULL;
    uint32_t k = 0;
    if (!st || stage_evaluate_curves(st, &c, &conf, &k) != 0) return NULL;
    json_t *o = json_object();
    if (c.nroc)
        json_object_set_new(o, "roc",
                            json_pack("{s:o,s:o,s:o}", "fpr", jnums(c.fpr, c.nroc), "tpr",
                                      jnums(c.tpr, c.nroc), "thresholds",
                                      jnums(c.threshold, c.nroc)));
    if (c.ncal) {
        json_t *cnt = json_array();
        for (size_t i = 0; i < c.ncal; i++) json_array_append_new(cnt, json_integer((json_int_t)c.count[i]));
        json_object_set_new(o, "calibration",
                            json_pack("{s:o,s:o,s:o}", "prob_pred", jnums(c.prob_pred, c.ncal),
                                      "prob_true", jnums(c.prob_true, c.ncal), "count", cnt));
    }
    if (k) {
        json_t *rows = json_array();
        for (uint32_t r = 0; r < k; r++) {
            json_t *row = json_array();
            for (uint32_t q = 0; q < k; q++)
                json_array_append_new(row, json_integer((json_int_t)conf[(size_t)r * k + q]));
            json_array_append_new(rows, row);
        }
        json_t *classes = json_array();
        for (size_t i = 0; i < j->nclasses && i < k; i++)
            json_array_append_new(classes, jstr(j->classes[i]));
        json_object_set_new(o, "classes", classes);
        json_object_set_new(o, "confusion_matrix", rows);
    }
    free(conf);
    return o;
}

static json_t *job_full(const job_t *j)
{
    char ts[32];
    json_t *o = json_object();
    json_object_set_new(o, "job", jstr(j->id));
    json_object_set_new(o, "name", jstr(j->name));
    json_object_set_new(o, "state", jstr(job_state_name(j->state)));
    json_object_set_new(o, "error", jstr(j->error));
    iso_time(j->submitted, ts, sizeof ts);
    json_object_set_new(o, "submitted", jstr(ts));
    if (j->finished > 0) iso_time(j->finished, ts, sizeof ts);
    json_object_set_new(o, "finished", j->finished > 0 ? jstr(ts) : json_null());
    json_object_set_new(o, "seconds",
                        jnum((j->finished > 0 ? j->finished : coord_now_s()) - j->submitted));
    json_t *stages = json_array();
    for (size_t s = 0; s < j->nstages; s++) {
        const stage_t *st = &j->stages[s];
        json_t *so = json_object();
        json_object_set_new(so, "name", jstr(st->name));
        json_object_set_new(so, "state", jstr(stage_state_name(st->state)));
        /* progress across phases: done over all tasks planned so far */
        json_object_set_new(so, "tasks_total", json_integer(st->total_all));
        json_object_set_new(so, "tasks_done", json_integer(st->done_total));
        json_object_set_new(so, "phase", json_integer(st->phase));
        double secs = st->state == ST_RUNNING ? coord_now_s() - st->started : st->seconds;
        json_object_set_new(so, "seconds", jnum(secs));
        /* when it began, in seconds after the job's submission: the timeline's x */
        json_object_set_new(so, "started_s",
                            st->started > 0 ? jnum(st->started - j->submitted) : json_null());
        json_array_append_new(stages, so);
    }
    json_object_set_new(o, "stages", stages);
    json_t *m = json_object();
    for (size_t i = 0; i < j->nmetrics; i++) {
        double v = j->metrics[i].value;
        json_object_set_new(m, j->metrics[i].name,
                            v == floor(v) && fabs(v) < 9e15 ? json_integer((json_int_t)v)
                                                            : jnum(v));
    }
    if (j->ntrain_loss) {
        json_t *tl = json_array();
        for (size_t i = 0; i < j->ntrain_loss; i++)
            json_array_append_new(tl, jnum(j->train_loss[i]));
        json_object_set_new(m, "train_loss", tl);
    }
    if (j->model) json_object_set_new(m, "model", jstr(j->model));
    json_object_set_new(o, "metrics", m);
    json_object_set_new(o, "model", jstr(j->model));
    json_object_set_new(o, "registered", jstr(j->registered));
    double promoted = job_metric(j, "promotion.promoted", NAN);
    if (!isnan(promoted)) { /* the promotion gate's decision (registry_build.c) */
        const char *metric = stage_promote_metric_name(j);
        double cv = job_metric(j, "promotion.champion_version", 0);
        json_t *champ = cv > 0 ? json_pack("{s:o,s:o}", "version", jnum(cv), "metric",
                                           jnum(job_metric(j, "promotion.champion_metric", NAN)))
                               : json_null();
        json_object_set_new(
            o, "promotion",
            json_pack("{s:s,s:o,s:s,s:o,s:{s:o,s:o}}", "decision", promoted ? "promoted" : "kept",
                      "alias", jstr(j->spec->promote.alias), "metric", metric, "champion", champ,
                      "challenger", "version",
                      jnum(job_metric(j, "promotion.challenger_version", NAN)), "metric",
                      jnum(job_metric(j, metric, NAN))));
    }
    json_t *ev = evaluation(j);
    if (ev) json_object_set_new(o, "evaluation", ev);
    json_t *search = stage_cv_search_json(j);
    if (search) json_object_set_new(o, "search", search);
    return o;
}

static json_t *q_ping(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)c, (void)j, (void)q, (void)e;
    return json_pack("{s:b}", "ok", 1);
}

static json_t *q_jobs(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)j, (void)q, (void)e;
    json_t *a = json_array();
    for (size_t i = 0; i < c->njobs; i++) json_array_append_new(a, job_summary(c->jobs[i]));
    return json_pack("{s:o}", "jobs", a);
}

/* status and result are one reply: result is status once the job ends */
static json_t *q_status(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)c, (void)q, (void)e;
    return job_full(j);
}

static json_t *q_workers(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)j, (void)q, (void)e;
    int64_t now = zclock_mono();
    json_t *a = json_array();
    for (size_t i = 0; i < c->nworkers; i++) {
        const coord_worker_t *wk = &c->workers[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", jstr(wk->id));
        json_object_set_new(o, "name", jstr(wk->name));
        json_object_set_new(o, "endpoint", jstr(wk->endpoint));
        json_object_set_new(o, "state", jstr(wk->alive ? "alive" : wk->left ? "left" : "dead"));
        json_object_set_new(o, "slots", json_integer(wk->slots));
        json_object_set_new(o, "running", json_integer(wk->inflight));
        json_object_set_new(o, "executing", json_integer(wk->executing));
        json_object_set_new(o, "tasks_done", json_integer((json_int_t)wk->tasks_done));
        json_object_set_new(o, "shards", json_integer((json_int_t)wk->shards));
        json_object_set_new(o, "pid", json_integer(wk->pid));
        json_object_set_new(o, "last_seen_ms", json_integer(now - wk->last_seen));
        /* null until the worker's first Heartbeat says them */
        json_object_set_new(o, "store_bytes",
                            wk->has_usage ? json_integer((json_int_t)wk->store_bytes) : json_null());
        json_object_set_new(o, "rss_bytes",
                            wk->has_usage ? json_integer((json_int_t)wk->rss_bytes) : json_null());
        json_array_append_new(a, o);
    }
    return json_pack("{s:o}", "workers", a);
}

static json_t *q_logs(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)c, (void)q, (void)e;
    json_t *a = json_array();
    for (size_t i = 0; i < j->nlog; i++) json_array_append_new(a, jstr(j->log[i]));
    return json_pack("{s:o,s:o}", "job", jstr(j->id), "lines", a);
}

/* The task table of each stage (its current or last phase: a phase's
 * tasks replace the previous phase's). A stage lists its first
 * TASKS_HEAD tasks and, beyond them, only those running, failed or
 * retried, at most TASKS_MORE: a 50,000-task stage stays a small reply,
 * and the tasks worth a look are all there. */
#define TASKS_HEAD 200
#define TASKS_MORE 1000
static json_t *q_tasks(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)c, (void)q, (void)e;
    static const char *const TN[] = {"pending", "running", "done", "failed"};
    json_t *stages = json_array();
    for (size_t s = 0; s < j->nstages; s++) {
        const stage_t *st = &j->stages[s];
        json_t *ts = json_array();
        size_t more = 0, shown = 0;
        for (size_t t = 0; t < st->ntasks; t++) {
            const task_t *tk = &st->tasks[t];
            int notable = tk->state == T_RUNNING || tk->state == T_FAILED || tk->tries > 0;
            if (t >= TASKS_HEAD && (!notable || more == TASKS_MORE)) continue;
            if (t >= TASKS_HEAD) more++;
            shown++;
            json_t *o = json_object();
            json_object_set_new(o, "task", json_integer((json_int_t)t));
            json_object_set_new(
                o, "state", jstr(tk->state >= 0 && tk->state <= T_FAILED ? TN[tk->state] : "?"));
            json_object_set_new(o, "worker", tk->ran_on[0] ? jstr(tk->ran_on) : json_null());
            json_object_set_new(o, "attempts", json_integer(tk->dispatches));
            json_object_set_new(o, "retries", json_integer(tk->tries));
            json_object_set_new(o, "seconds",
                                tk->state == T_DONE ? jnum(tk->seconds) : json_null());
            json_object_set_new(
                o, "rows", tk->state == T_DONE ? json_integer((json_int_t)tk->rows) : json_null());
            json_object_set_new(o, "error", jstr(tk->error));
            json_array_append_new(ts, o);
        }
        json_array_append_new(stages, json_pack("{s:o,s:s,s:I,s:I,s:I,s:o}", "name", jstr(st->name),
                                                "kind", st->kind, "phase", (json_int_t)st->phase,
                                                "tasks_total", (json_int_t)st->ntasks,
                                                "tasks_shown", (json_int_t)shown, "tasks", ts));
    }
    return json_pack("{s:o,s:o}", "job", jstr(j->id), "stages", stages);
}

static json_t *q_cancel(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)q, (void)e;
    if (j->state < JOB_SUCCEEDED) coord_job_finish(c, j, JOB_CANCELLED, "cancelled by user");
    return json_pack("{s:o,s:o}", "job", jstr(j->id), "state", jstr(job_state_name(j->state)));
}

static json_t *q_rm(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)q;
    if (j->state < JOB_SUCCEEDED)
        return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST,
                      "job %s is %s: cancel it first (mlopsctl cancel %s)", j->id,
                      job_state_name(j->state), j->id);
    json_t *o = json_pack("{s:o,s:b}", "job", jstr(j->id), "removed", 1);
    coord_job_remove(c, j);
    return o;
}

static json_t *q_export_plan(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    const char *sname = q->n_args ? q->args[0] : "";
    stage_t *st = job_stage(j, sname);
    if (!st)
        return refuse(e, MLOPS__ERROR_CODE__NOT_FOUND, "job %s has no stage '%s'", j->id, sname);
    if (stage_fused_features(j) && (!strcmp(st->name, "scale") || !strcmp(st->name, "hash")))
        return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST,
                      "stage '%s' of job %s kept no output: it ran fused into split's tasks "
                      "(set keep_stages: true in the job file to keep it)",
                      sname, j->id);
    if (st->state != ST_DONE || strcmp(st->outsfx, "/"))
        return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST,
                      "stage '%s' of job %s has no output to export (state %s)", sname, j->id,
                      stage_state_name(st->state));
    json_t *classes = json_array();
    for (size_t i = 0; i < j->nclasses; i++) json_array_append_new(classes, jstr(j->classes[i]));
    json_t *shards = json_array();
    int lost = 0;
    for (size_t t = 0; t < st->ntasks; t++) {
        task_t *tk = &st->tasks[t];
        int h = tk->output_key ? coord_shard_holder(c, tk->output_key) : -1;
        if (h < 0 && tk->output_key) {
            lost++;
            coord_recompute(c, tk->output_key);
        }
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)t));
        json_object_set_new(o, "key", jstr(tk->output_key));
        json_object_set_new(o, "endpoint", jstr(h >= 0 ? c->workers[h].endpoint : NULL));
        json_object_set_new(o, "server_key", jstr(h >= 0 ? c->workers[h].key : NULL));
        json_object_set_new(o, "rows", json_integer((json_int_t)tk->rows));
        json_array_append_new(shards, o);
    }
    if (lost && st->dropped) {
        json_decref(classes);
        json_decref(shards);
        return refuse(e, MLOPS__ERROR_CODE__NOT_FOUND,
                      "stage '%s' of job %s was dropped once consumed: %d shard(s) are being "
                      "recomputed from the input; try again shortly (keep_stages: true keeps them)",
                      sname, j->id, lost);
    }
    if (lost) {
        json_decref(classes);
        json_decref(shards);
        return refuse(e, MLOPS__ERROR_CODE__NOT_FOUND,
                      "%d shard(s) of stage '%s' were lost with their worker and are being "
                      "recomputed; try again shortly",
                      lost, sname);
    }
    json_t *o = json_object();
    json_object_set_new(o, "job", jstr(j->id));
    json_object_set_new(o, "stage", jstr(st->name));
    json_object_set_new(o, "kind", jstr(planner_output_kind(j, st)));
    json_object_set_new(o, "classes", classes);
    json_object_set_new(o, "shards", shards);
    return o;
}

/* models, model-* and alias-moves: the registry's own table (registry.c) */
static json_t *q_registry(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)j;
    return coord_registry_query(c, q, &e->code, e->msg, sizeof e->msg);
}

static json_t *q_security(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)j, (void)q, (void)e;
    return coord_access_json(c);
}

static json_t *q_stream(coord_t *c, job_t *j, const Mlops__Query *q, qerr_t *e)
{
    (void)j, (void)q, (void)e;
    return coord_stream_json(c);
}

static const struct {
    const char *verb;
    int needs_job;
    query_fn fn;
} verbs[] = {
    {"ping", 0, q_ping},     {"jobs", 0, q_jobs},       {"status", 1, q_status},
    {"result", 1, q_status}, {"workers", 0, q_workers}, {"logs", 1, q_logs},
    {"cancel", 1, q_cancel}, {"rm", 1, q_rm},           {"export-plan", 1, q_export_plan},
    {"models", 0, q_registry},        {"model-show", 0, q_registry},
    {"model-versions", 0, q_registry}, {"model-alias", 0, q_registry},
    {"model-unalias", 0, q_registry}, {"model-history", 0, q_registry},
    {"model-export", 0, q_registry},  {"model-rm", 0, q_registry},
    {"alias-moves", 0, q_registry},
    {"alias-watch", 0, NULL}, /* held until a move: alias_watch.c answers it */
    {"security", 0, q_security},
    {"tasks", 1, q_tasks},
    {"stream", 0, q_stream},
    {"wait", 1, q_status}, /* held until the job ends (waits.c) */
};

void coord_on_query(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__Query *q = env->query;
    const char *verb = q->verb ? q->verb : "";
    size_t v = 0;
    while (v < sizeof verbs / sizeof *verbs && strcmp(verbs[v].verb, verb)) v++;
    if (v == sizeof verbs / sizeof *verbs) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, "unknown query '%s'",
                          verb);
        return;
    }
    if (!verbs[v].fn) {
        coord_watch_add(c, id, env->seq, q);
        return;
    }
    job_t *j = NULL;
    if (verbs[v].needs_job) {
        j = q->job_id ? coord_job_find(c, q->job_id) : NULL;
        if (!j) {
            coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_FOUND, "no job '%s'",
                              q->job_id ? q->job_id : "");
            return;
        }
    }
    if (!strcmp(verb, "wait") && coord_waits_hold(c, id, env->seq, j, q)) return; /* waits.c answers */
    qerr_t e = {MLOPS__ERROR_CODE__INTERNAL, "out of memory"};
    json_t *reply = verbs[v].fn(c, j, q, &e);
    /* every real in its short round-trip form (jsondump.h says why) */
    char *text = reply ? mlops_json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text) coord_reply_json(c, id, env->seq, text);
    else coord_reply_error(c, id, env->seq, e.code, "%s", e.msg);
    free(text);
    json_decref(reply);
}

void coord_query_reply_status(coord_t *c, zframe_t *id, uint64_t seq, job_t *j)
{
    json_t *reply = job_full(j);
    char *text = reply ? mlops_json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text) coord_reply_json(c, id, seq, text);
    else coord_reply_error(c, id, seq, MLOPS__ERROR_CODE__INTERNAL, "out of memory");
    free(text);
    json_decref(reply);
}

int coord_query_reads(const char *verb)
{
    /* an allow-list: a verb added later is refused while the journal is
     * full until it is listed here as a read */
    static const char *const READS[] = {"ping",          "jobs",           "status",
                                        "result",        "workers",        "logs",
                                        "export-plan",   "models",         "model-show",
                                        "model-versions", "model-history", "model-export",
                                        "alias-moves",   "security",       "tasks",
                                        "stream",        "wait",           "alias-watch",
                                        NULL};
    for (size_t r = 0; READS[r]; r++)
        if (!strcmp(READS[r], verb)) return 1;
    return 0;
}

char *coord_query_text(coord_t *c, const char *verb, job_t *j, const char *arg)
{
    /* only the verbs that read: the dashboard must never cancel or remove */
    static const char *const READERS[] = {
        "jobs",           "status",        "workers", "logs",   "models",
        "model-versions", "model-history", "tasks",   "stream", NULL};
    size_t r = 0;
    while (READERS[r] && strcmp(READERS[r], verb)) r++;
    if (!READERS[r]) return NULL;
    for (size_t v = 0; v < sizeof verbs / sizeof *verbs; v++) {
        if (strcmp(verbs[v].verb, verb) || (verbs[v].needs_job && !j) || !verbs[v].fn) continue;
        Mlops__Query q = MLOPS__QUERY__INIT;
        q.verb = (char *)verb;
        q.job_id = j ? j->id : NULL;
        char *args[1] = {(char *)arg};
        if (arg) {
            q.args = args;
            q.n_args = 1;
        }
        qerr_t e = {MLOPS__ERROR_CODE__INTERNAL, ""};
        json_t *reply = verbs[v].fn(c, j, &q, &e);
        char *text =
            reply ? json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
                  : NULL;
        json_decref(reply);
        return text;
    }
    return NULL;
}
