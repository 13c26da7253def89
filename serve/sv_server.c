/* sv_server.c: mlops-serve's HTTP side: the routes table and handlers
 * (docs/serving.md).
 *
 * Why libmicrohttpd (through common/httpd.c, the daemons' listener): it
 * is a maintained Debian library (libmicrohttpd12), it answers from its
 * own thread pool (--threads) with epoll, so scoring runs on several
 * cores with no event loop of ours, and it is what Prometheus' C client
 * (libprom's promhttp) serves with, so one library serves both the
 * scores and /metrics.
 *
 * Every request takes a reference to the current model (sv_slot_get)
 * and answers with it to the end, so a hot swap never fails or delays a
 * request: the reply names the version that answered. A request a client
 * got wrong is a 4xx {"error_code": "BAD_REQUEST", "message": ...};
 * nothing a client sends leads to a 5xx. */
#include "err.h"
#include "jsondump.h"
#include "log.h"
#include "sv_internal.h"
#include "sv_reply.h"
#include "sv_request.h"
#include "token.h"
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void reply_json(mlops_http_reply_t *rep, int status, json_t *doc)
{
    char *text = doc ? mlops_json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!text) {
        mlops_http_text(rep, 500, "application/json",
                        "{\"error_code\":\"INTERNAL_ERROR\",\"message\":\"out of memory\"}");
        return;
    }
    rep->status = status;
    rep->ctype = "application/json";
    rep->body = text;
    rep->len = strlen(text);
}

static void reply_error(mlops_http_reply_t *rep, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(mlops_http_reply_t *rep, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* "error" too: the Open Inference Protocol's error field */
    reply_json(rep, status, json_pack("{s:s,s:s,s:s}", "error_code", code, "message", msg, "error", msg));
}

static void count(sv_t *s, const char *endpoint, const mlops_http_reply_t *rep)
{
    char code[8];
    snprintf(code, sizeof code, "%d", rep->status ? rep->status : 200);
    mlops_prom_add(s->requests, endpoint, code, 1);
}

static void not_loaded(sv_t *s, mlops_http_reply_t *rep)
{
    reply_error(rep, 503, "MODEL_NOT_LOADED", "model %s@%s is not loaded yet", s->name, s->ref);
}

/* A recommender version answers POST /recommend only. */
static int refuse_recommender(const sv_model_t *m, mlops_http_reply_t *rep)
{
    if (!m->rec) return 0;
    reply_error(rep, 404, "BAD_REQUEST",
                "model %s version %u is a recommender: ask POST /recommend with {\"user_id\": ...}",
                m->name, m->version);
    return 1;
}

static sv_schema_t schema_of(const sv_model_t *m)
{
    return (sv_schema_t){m->ncols, m->cols, m->types};
}

/* Score frame f with m; on success proba (n x K) and unscored are the
 * caller's. Timings into the latency histogram. */
static int score(sv_t *s, sv_model_t *m, const mlk_frame *f, double **proba, uint8_t **unscored,
                 mlops_http_reply_t *rep)
{
    size_t n = f->nrows, K = m->art->nclasses;
    *proba = malloc((n * K + 1) * sizeof **proba);
    *unscored = malloc(n + 1);
    char err[512];
    if (!*proba || !*unscored) {
        reply_error(rep, 500, "INTERNAL_ERROR", "out of memory");
        return -1;
    }
    double t = now_s();
    if (sv_model_score(m, f, *proba, *unscored, err, sizeof err) != 0) {
        reply_error(rep, 500, "INTERNAL_ERROR", "model %s version %u: %s", m->name, m->version, err);
        return -1;
    }
    mlops_prom_observe(s->latency, "predict", NULL, now_s() - t);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += (*unscored)[i];
    mlops_prom_add(s->rows, "scored", NULL, (double)(n - bad));
    if (bad) mlops_prom_add(s->rows, "unscored", NULL, (double)bad);
    sv_drift_add(m->drift, f, *proba, *unscored);
    return 0;
}

/* What POST /invocations and POST /v2/models/NAME/infer do not share:
 * how the body is read and how the reply is written. */
typedef struct {
    int (*parse)(const sv_schema_t *sc, const mlops_http_req_t *rq, mlk_frame **out, char **id,
                 char *err, size_t errlen);
    int (*reply)(const sv_model_t *m, size_t n, const double *proba, const uint8_t *unscored,
                 const char *id, char **body, size_t *len);
} sv_format_t;

static int parse_mlflow(const sv_schema_t *sc, const mlops_http_req_t *rq, mlk_frame **out,
                        char **id, char *err, size_t errlen)
{
    *id = NULL;
    return sv_request_parse(sc, rq->ctype, rq->body, rq->len, out, err, errlen);
}

static int parse_v2(const sv_schema_t *sc, const mlops_http_req_t *rq, mlk_frame **out, char **id,
                    char *err, size_t errlen)
{
    return sv_request_parse_v2(sc, rq->body, rq->len, out, id, err, errlen);
}

static const sv_format_t MLFLOW = {parse_mlflow, sv_reply_mlflow};
static const sv_format_t V2 = {parse_v2, sv_reply_v2};

/* A scoring request to model m in format fmt: parse, score, serialize,
 * each phase timed into the latency histogram. */
static void score_request(sv_t *s, sv_model_t *m, const sv_format_t *fmt,
                          const mlops_http_req_t *rq, mlops_http_reply_t *rep)
{
    mlk_frame *f = NULL;
    double *proba = NULL;
    uint8_t *unscored = NULL;
    char *id = NULL;
    if (rq->too_big) {
        reply_error(rep, 413, "BAD_REQUEST", "the body is over the limit of %d MiB (--max-body-mib)",
                    s->cfg.max_body_mib);
        return;
    }
    double t = now_s();
    char err[1024];
    sv_schema_t sc = schema_of(m);
    int rc = fmt->parse(&sc, rq, &f, &id, err, sizeof err);
    if (rc) {
        reply_error(rep, rc == MLOPS_EINVAL ? 415 : rc == MLOPS_ENOMEM ? 413 : 400, "BAD_REQUEST",
                    "%s", err);
        return;
    }
    mlops_prom_observe(s->latency, "parse", NULL, now_s() - t);
    if (score(s, m, f, &proba, &unscored, rep)) goto out;
    t = now_s();
    char *body;
    size_t len;
    if (fmt->reply(m, f->nrows, proba, unscored, id, &body, &len)) {
        reply_error(rep, 500, "INTERNAL_ERROR", "out of memory");
        goto out;
    }
    rep->status = 200;
    rep->ctype = "application/json";
    rep->body = body;
    rep->len = len;
    mlops_prom_observe(s->latency, "serialize", NULL, now_s() - t);
out:
    free(id);
    mlk_frame_destroy(&f);
    free(proba);
    free(unscored);
}

static void on_invocations(void *arg, const mlops_http_req_t *rq, mlops_http_reply_t *rep)
{
    sv_t *s = arg;
    sv_model_t *m = NULL;
    if (strcmp(rq->method, "POST")) {
        reply_error(rep, 405, "BAD_REQUEST", "/invocations takes POST");
        rep->allow = "POST";
    } else if (!(m = sv_slot_get(&s->slot))) {
        not_loaded(s, rep);
    } else if (!refuse_recommender(m, rep)) {
        score_request(s, m, &MLFLOW, rq, rep);
    }
    count(s, "/invocations", rep);
    sv_model_release(&m);
}

static void on_health(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)query;
    sv_t *s = arg;
    sv_model_t *m = sv_slot_get(&s->slot);
    if (m) mlops_http_text(rep, 200, "text/plain; charset=utf-8", "\n");
    else mlops_http_text(rep, 503, "text/plain; charset=utf-8", "no model loaded yet\n");
    sv_model_release(&m);
    count(s, path, rep);
}

static json_t *model_json(const sv_model_t *m)
{
    return json_pack("{s:s,s:I}", "name", m->name, "version", (json_int_t)m->version);
}

static void on_version(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)query;
    sv_t *s = arg;
    sv_model_t *m = sv_slot_get(&s->slot);
    reply_json(rep, 200,
               json_pack("{s:s,s:s,s:o}", "mlops", MLOPS_VERSION, "follows", s->cfg.model, "model",
                         m ? model_json(m) : json_null()));
    sv_model_release(&m);
    count(s, path, rep);
}

/* the drift gauges, refreshed from the current window */
static json_t *drift_now(sv_t *s, sv_model_t *m)
{
    const char *names[128];
    double psi[128];
    size_t n = 0;
    if (!m->drift) return NULL;
    json_t *doc = sv_drift_json(m->drift, s->psi_moderate, s->psi_shifted, names, psi, 128, &n);
    mlops_prom_zero(s->psi);
    for (size_t i = 0; i < n; i++)
        if (!isnan(psi[i])) mlops_prom_set(s->psi, names[i], NULL, psi[i]);
    mlops_prom_set(s->drift_rows, NULL, NULL,
                   (double)json_integer_value(json_object_get(doc, "rows")));
    return doc;
}

static void on_drift(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)query;
    sv_t *s = arg;
    sv_model_t *m = sv_slot_get(&s->slot);
    if (!m) not_loaded(s, rep);
    else if (refuse_recommender(m, rep))
        ;
    else if (!m->drift)
        reply_error(rep, 404, "BAD_REQUEST",
                    "model %s version %u has no reference distributions to compare with (an "
                    "artifact from before they were stored)",
                    m->name, m->version);
    else {
        json_t *doc = drift_now(s, m);
        if (doc) json_object_set_new(doc, "model", model_json(m));
        reply_json(rep, 200, doc);
    }
    sv_model_release(&m);
    count(s, path, rep);
}

static void on_metrics(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)query;
    sv_t *s = arg;
    sv_model_t *m = sv_slot_get(&s->slot);
    if (m) json_decref(drift_now(s, m));
    sv_model_release(&m);
    count(s, path, rep); /* before rendering: this request counts itself */
    mlops_http_metrics(rep, s->prom);
}

/* ---- the Open Inference Protocol (KServe / Seldon V2) ----------------- */

static void on_v2_live(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)query;
    sv_t *s = arg;
    reply_json(rep, 200, json_pack("{s:b}", "live", 1));
    count(s, path, rep);
}

static void on_v2_ready(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)query;
    sv_t *s = arg;
    sv_model_t *m = sv_slot_get(&s->slot);
    reply_json(rep, m ? 200 : 503, json_pack("{s:b}", "ready", m != NULL));
    sv_model_release(&m);
    count(s, path, rep);
}

static json_t *v2_metadata(const sv_model_t *m)
{
    json_t *in = json_array();
    for (size_t i = 0; i < m->ncols; i++)
        json_array_append_new(in, json_pack("{s:s,s:s,s:[i]}", "name", m->cols[i], "datatype",
                                            m->types[i] == MLK_F64 ? "FP64" : "BYTES", "shape",
                                            -1));
    size_t K = m->art->nclasses;
    json_t *proba = K == 2 ? json_pack("{s:s,s:s,s:[i]}", "name", "proba", "datatype", "FP64",
                                       "shape", -1)
                           : json_pack("{s:s,s:s,s:[i,I]}", "name", "proba", "datatype", "FP64",
                                       "shape", -1, (json_int_t)K);
    char ver[16];
    snprintf(ver, sizeof ver, "%u", m->version);
    return json_pack("{s:s,s:[s],s:s,s:o,s:[o,{s:s,s:s,s:[i]}]}", "name", m->name, "versions", ver,
                     "platform", "mlops", "inputs", in, "outputs", proba, "name", "label",
                     "datatype", "BYTES", "shape", -1);
}

/* /v2/models/NAME[/versions/V][/ready|/infer] */
static void on_v2_models(void *arg, const mlops_http_req_t *rq, mlops_http_reply_t *rep)
{
    sv_t *s = arg;
    sv_model_t *m = NULL;
    const char *endpoint = "/v2/models";
    const char *rest = rq->path + strlen("/v2/models/");
    char name[200];
    size_t nl = strcspn(rest, "/");
    snprintf(name, sizeof name, "%.*s", (int)(nl < 190 ? nl : 190), rest);
    const char *tail = rest + nl;
    char ver[32] = "";
    if (!strncmp(tail, "/versions/", 10)) {
        size_t vl = strcspn(tail + 10, "/");
        snprintf(ver, sizeof ver, "%.*s", (int)(vl < 30 ? vl : 30), tail + 10);
        tail += 10 + vl;
    }
    int infer = !strcmp(tail, "/infer"), ready = !strcmp(tail, "/ready");
    if (infer) endpoint = "/v2/models/infer";
    if (!(m = sv_slot_get(&s->slot))) {
        not_loaded(s, rep);
        goto out;
    }
    if (strcmp(name, m->name)) {
        reply_error(rep, 404, "BAD_REQUEST", "unknown model '%s': this server serves '%s'", name,
                    m->name);
        goto out;
    }
    if (refuse_recommender(m, rep)) goto out;
    char have[16];
    snprintf(have, sizeof have, "%u", m->version);
    if (*ver && strcmp(ver, have)) {
        reply_error(rep, 404, "BAD_REQUEST", "model '%s' version %s is not served here (version %s is)",
                    name, ver, have);
        goto out;
    }
    if (!infer && !ready && *tail) {
        reply_error(rep, 404, "BAD_REQUEST", "no such endpoint: %s", rq->path);
        goto out;
    }
    if (!infer) {
        if (strcmp(rq->method, "GET") && strcmp(rq->method, "HEAD")) {
            reply_error(rep, 405, "BAD_REQUEST", "%s takes GET", rq->path);
            rep->allow = "GET, HEAD";
        } else if (ready) {
            reply_json(rep, 200, json_pack("{s:s,s:b}", "name", m->name, "ready", 1));
        } else {
            reply_json(rep, 200, v2_metadata(m));
        }
        goto out;
    }
    if (strcmp(rq->method, "POST")) {
        reply_error(rep, 405, "BAD_REQUEST", "%s takes POST", rq->path);
        rep->allow = "POST";
        goto out;
    }
    score_request(s, m, &V2, rq, rep);
out:
    count(s, endpoint, rep);
    sv_model_release(&m);
}

static void on_v2_server(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)query;
    sv_t *s = arg;
    reply_json(rep, 200, json_pack("{s:s,s:s,s:[]}", "name", "mlops-serve", "version",
                                   MLOPS_VERSION, "extensions"));
    count(s, path, rep);
}

/* POST /recommend {"user_id": "...", "n": 10}: a recommender version
 * answers with the batch knn stage's items for that user, in its order
 * and with its scores (common/recommender.h); an unknown user gets the
 * most popular items, "popular": true. A classifier cannot answer. */
static void on_recommend(void *arg, const mlops_http_req_t *rq, mlops_http_reply_t *rep)
{
    sv_t *s = arg;
    sv_model_t *m = NULL;
    json_t *body = NULL;
    if (strcmp(rq->method, "POST")) {
        reply_error(rep, 405, "BAD_REQUEST", "/recommend takes POST");
        rep->allow = "POST";
        goto out;
    }
    if (!(m = sv_slot_get(&s->slot))) {
        not_loaded(s, rep);
        goto out;
    }
    if (!m->rec) {
        reply_error(rep, 404, "BAD_REQUEST",
                    "model %s version %u is a classifier: /recommend needs a recommender version "
                    "(a knn stage in recommend mode); score rows with POST /invocations",
                    m->name, m->version);
        goto out;
    }
    if (rq->too_big) {
        reply_error(rep, 413, "BAD_REQUEST", "the body is over the limit of %d MiB (--max-body-mib)",
                    s->cfg.max_body_mib);
        goto out;
    }
    json_error_t je;
    body = json_loadb(rq->body ? rq->body : "", rq->len, 0, &je);
    if (!body || !json_is_object(body)) {
        if (!body)
            reply_error(rep, 400, "BAD_REQUEST", "malformed JSON at line %d, column %d: %s", je.line,
                        je.column, je.text);
        else
            reply_error(rep, 400, "BAD_REQUEST", "the body must be a JSON object {\"user_id\": ..., \"n\": ...}");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "user_id") && strcmp(key, "n")) {
            reply_error(rep, 400, "BAD_REQUEST", "unknown field '%s' (expected user_id and n)", key);
            goto out;
        }
    }
    const json_t *u = json_object_get(body, "user_id");
    if (!json_is_string(u)) {
        reply_error(rep, 400, "BAD_REQUEST", "user_id: %s", u ? "expected a string" : "missing");
        goto out;
    }
    size_t n = mlops_recommender_default_n(m->rec);
    const json_t *jn = json_object_get(body, "n");
    if (jn) {
        if (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
            json_integer_value(jn) > MLOPS_RECOMMENDER_MAX_N) {
            reply_error(rep, 400, "BAD_REQUEST", "n: expected an integer from 1 to %d",
                        MLOPS_RECOMMENDER_MAX_N);
            goto out;
        }
        n = (size_t)json_integer_value(jn);
    }
    double t = now_s();
    char err[512];
    json_t *ans = mlops_recommender_answer(m->rec, json_string_value(u), n, err, sizeof err);
    mlops_prom_observe(s->latency, "predict", NULL, now_s() - t);
    if (!ans) {
        reply_error(rep, 400, "BAD_REQUEST", "%s", err);
        goto out;
    }
    reply_json(rep, 200, ans);
out:
    json_decref(body);
    sv_model_release(&m);
    count(s, "/recommend", rep);
}

static const mlops_http_route_t ROUTES[] = {
    {"/invocations", 0, NULL, on_invocations},
    {"/ping", 0, on_health, NULL},
    {"/health", 0, on_health, NULL},
    {"/version", 0, on_version, NULL},
    {"/metrics", 0, on_metrics, NULL},
    {"/drift", 0, on_drift, NULL},
    {"/v2/health/live", 0, on_v2_live, NULL},
    {"/v2/health/ready", 0, on_v2_ready, NULL},
    {"/v2/models/", 1, NULL, on_v2_models},
    {"/v2", 0, on_v2_server, NULL},
    {"/recommend", 0, NULL, on_recommend},
    {NULL, 0, NULL, NULL},
};

int sv_server_start(sv_t *s, char *err, size_t errlen)
{
    static const double BOUNDS[] = {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
                                    5e-3,  10e-3, 25e-3,  50e-3,  0.1,    0.25, 0.5,
                                    1,     2.5,   5};
    s->prom = mlops_prom_new();
    if (!s->prom) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    mlops_prom_build_info(s->prom, "serve");
    s->requests = mlops_prom_counter(s->prom, "mlops_serve_requests_total",
                                     "HTTP requests answered, by endpoint and status code",
                                     "endpoint,code");
    s->latency = mlops_prom_histogram(
        s->prom, "mlops_serve_request_duration_seconds",
        "time spent on a scoring request, by phase (parse, predict, serialize)", "phase", BOUNDS,
        sizeof BOUNDS / sizeof *BOUNDS);
    s->rows = mlops_prom_counter(s->prom, "mlops_serve_rows_total",
                                 "rows answered: scored, or unscored (a missing value)", "result");
    s->info = mlops_prom_gauge(s->prom, "mlops_serve_model_info",
                               "1 for the model version that answers now", "model,version");
    s->swaps = mlops_prom_counter(s->prom, "mlops_serve_swaps_total",
                                  "times a new model version went live", NULL);
    s->psi = mlops_prom_gauge(s->prom, "mlops_serve_drift_psi",
                              "population stability index of the drift window against the "
                              "model's reference, per feature",
                              "feature");
    s->drift_rows = mlops_prom_gauge(s->prom, "mlops_serve_drift_window_rows",
                                     "rows in the drift window", NULL);
    /* the probes of Kubernetes and compose carry no token */
    static const char *const OPEN[] = {"/ping", "/health", "/v2/health/live", "/v2/health/ready",
                                       NULL};
    mlops_httpd_opts_t o = {(unsigned)s->cfg.threads, 256, (size_t)s->cfg.max_body_mib << 20,
                            OPEN};
    s->http = mlops_httpd_new_opts(s->cfg.listen, ROUTES, s, s->token[0] ? s->token : NULL, &o, err,
                                   errlen);
    return s->http ? 0 : MLOPS_EIO;
}
