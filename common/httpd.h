/* httpd.h: a small HTTP server for the daemons' read-only endpoints
 * (/metrics, the dashboard and its /api/), on libmicrohttpd's own
 * threads, so a slow or malicious client never stalls the caller's loop:
 * a handler must only read thread-safe state (the metrics registry, a
 * snapshot the loop publishes). Routes with a `req` handler also take
 * POST bodies, collected up to a limit (mlops-serve's scoring API).
 *
 * A server is a routes table: exact paths, or prefixes ("/jobs/"), each
 * with a handler. Unknown paths get 404, methods other than GET and HEAD
 * 405 (except on `req` routes, whose handler decides). Requests are limited in header size, connections and time.
 * Listening on a loopback address (127.0.0.0/8, localhost) is open;
 * anything else needs a bearer token, checked on every request (401
 * without it). Reused by mlops-serve. */
#ifndef MLOPS_HTTPD_H
#define MLOPS_HTTPD_H
#include <stddef.h>

typedef struct mlops_httpd mlops_httpd_t;

/* What a handler answers: status (200 if left 0), content type (static
 * string), and a malloc'd body that the server takes and frees. */
typedef struct {
    int status;
    const char *ctype;
    char *body;
    size_t len;
    const char *allow; /* a 405's Allow header (static); NULL: "GET, HEAD" */
} mlops_http_reply_t;

/* `path` is the request path without the query string; `query` the raw
 * query string or "" (borrowed for the call). */
typedef void (*mlops_http_fn)(void *arg, const char *path, const char *query,
                              mlops_http_reply_t *rep);

/* A request with its body, for the routes that take one (mlops-serve's
 * POST /invocations). All borrowed for the call. */
typedef struct {
    const char *method; /* "GET", "HEAD", "POST", ... */
    const char *path, *query;
    const char *ctype; /* the Content-Type header, or "" */
    const char *body;  /* NUL-terminated copy of the body ("" without one) */
    size_t len;
    int too_big; /* the body was over the server's max_body: body is "" */
} mlops_http_req_t;
typedef void (*mlops_http_req_fn)(void *arg, const mlops_http_req_t *req, mlops_http_reply_t *rep);

typedef struct {
    const char *path; /* "/metrics"; with prefix, "/jobs/" matches "/jobs/j000001" */
    int prefix;
    mlops_http_fn fn;
    /* instead of fn: any method, the body collected (up to max_body) */
    mlops_http_req_fn req;
} mlops_http_route_t;

/* What a server may take; zero fields take the defaults (2 threads, 64
 * connections, bodies of up to 1 MiB). */
typedef struct {
    unsigned threads;
    unsigned max_connections;
    size_t max_body;
    /* paths answered without the token (NULL-terminated, borrowed): the
     * health probes an orchestrator sends, which carry no credentials
     * and learn only whether the server is up */
    const char *const *open_paths;
} mlops_httpd_opts_t;

/* Parse "HOST:PORT" (IPv4 literal or localhost; port 0 picks a free
 * one). 0 and *loopback, or MLOPS_EINVAL with a line naming the text. */
int mlops_httpd_parse_listen(const char *listen, char *host, size_t hostlen, int *port,
                             int *loopback, char *err, size_t errlen);

/* Start serving `routes` (borrowed, must outlive the server; ends with a
 * NULL path) with `arg` passed to every handler. `token` (copied) is
 * required when `listen` is not loopback. NULL with err filled on
 * failure ("--metrics-listen 0.0.0.0:9100: not a loopback address; give
 * --http-token-file"; "cannot listen on 127.0.0.1:80: Permission denied"). */
mlops_httpd_t *mlops_httpd_new(const char *listen, const mlops_http_route_t *routes, void *arg,
                               const char *token, char *err, size_t errlen);
/* The same with opts (NULL: the defaults above). */
mlops_httpd_t *mlops_httpd_new_opts(const char *listen, const mlops_http_route_t *routes,
                                    void *arg, const char *token, const mlops_httpd_opts_t *opts,
                                    char *err, size_t errlen);
/* The bound port (useful after port 0). */
int mlops_httpd_port(const mlops_httpd_t *h);
/* "127.0.0.1:PORT", the address actually bound. */
const char *mlops_httpd_addr(const mlops_httpd_t *h);
void mlops_httpd_destroy(mlops_httpd_t **ph);

/* A reply helper: status, type, and a copy of the NUL-terminated text. */
void mlops_http_text(mlops_http_reply_t *rep, int status, const char *ctype, const char *text);

/* A /metrics answer: the registry in Prometheus' text format, or 503. */
struct mlops_prom;
void mlops_http_metrics(mlops_http_reply_t *rep, struct mlops_prom *reg);

#endif
