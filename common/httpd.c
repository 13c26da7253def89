/* httpd.c: see httpd.h. libmicrohttpd runs a small thread pool with its
 * own poll loop; each request is answered from one handler call into a
 * memory buffer, so no handler ever waits on the client. */
#include "httpd.h"
#include "err.h"
#include "log.h"
#include "prom.h"
#include "token.h"
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_THREADS 2
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_TIMEOUT_S 10
#define HTTP_MEMORY_LIMIT (32 * 1024) /* per connection: caps the request headers */

#define HTTP_MAX_BODY (1 << 20)

struct mlops_httpd {
    struct MHD_Daemon *d;
    size_t max_body;
    const mlops_http_route_t *routes;
    void *arg;
    char token[256];
    int need_token;
    const char *const *open_paths;
    int port;
    char addr[80];
};

int mlops_httpd_parse_listen(const char *listen, char *host, size_t hostlen, int *port,
                             int *loopback, char *err, size_t errlen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || colon == listen || !colon[1])
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "'%s': expected HOST:PORT, e.g. 127.0.0.1:9100",
                            listen ? listen : "");
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "'%s': port must be 0..65535", listen);
    size_t hl = (size_t)(colon - listen);
    if (hl >= hostlen) return mlops_seterr(err, errlen, MLOPS_EINVAL, "'%s': host too long", listen);
    memcpy(host, listen, hl);
    host[hl] = 0;
    if (!strcmp(host, "localhost")) snprintf(host, hostlen, "127.0.0.1");
    else if (!strcmp(host, "*")) snprintf(host, hostlen, "0.0.0.0");
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "'%s': host must be an IPv4 address or localhost", listen);
    *port = (int)p;
    *loopback = (ntohl(a.s_addr) >> 24) == 127;
    return 0;
}

void mlops_http_text(mlops_http_reply_t *rep, int status, const char *ctype, const char *text)
{
    rep->status = status;
    rep->ctype = ctype;
    rep->body = strdup(text);
    rep->len = rep->body ? strlen(rep->body) : 0;
}

void mlops_http_metrics(mlops_http_reply_t *rep, mlops_prom_t *reg)
{
    size_t len = 0;
    char *text = mlops_prom_render(reg, &len);
    if (!text) {
        mlops_http_text(rep, 503, NULL, "out of memory\n");
        return;
    }
    rep->status = 200;
    rep->ctype = MLOPS_PROM_CONTENT_TYPE;
    rep->body = text;
    rep->len = len;
}

/* cookie: when set, the token the browser showed in ?token=, kept in a
 * cookie so the page's own requests carry it */
static enum MHD_Result send_reply(struct MHD_Connection *conn, mlops_http_reply_t *rep,
                                  const char *cookie)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(rep->len, rep->body ? rep->body : (void *)"",
                                        rep->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(rep->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", rep->ctype ? rep->ctype : "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (rep->status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (rep->status == 405)
        MHD_add_response_header(r, "Allow", rep->allow ? rep->allow : "GET, HEAD");
    if (cookie) {
        char c[400];
        snprintf(c, sizeof c, "mlops_token=%s; Path=/; HttpOnly; SameSite=Strict", cookie);
        MHD_add_response_header(r, "Set-Cookie", c);
    }
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)(rep->status ? rep->status : 200), r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    char *q = cls;
    size_t n = strlen(q);
    snprintf(q + n, 1024 - n, "%s%s%s%s", n ? "&" : "", key, value ? "=" : "", value ? value : "");
    return MHD_YES;
}

/* The state of one request between libmicrohttpd's calls: the route it
 * matched and, for a `req` route, the body so far. */
typedef struct {
    const mlops_http_route_t *route;
    char *buf;
    size_t len, cap;
    int too_big;
} conn_t;

static const mlops_http_route_t *find_route(const mlops_httpd_t *h, const char *url)
{
    for (const mlops_http_route_t *r = h->routes; r && r->path; r++) {
        size_t n = strlen(r->path);
        if (!(r->prefix ? strncmp(url, r->path, n) : strcmp(url, r->path))) return r;
    }
    return NULL;
}

static void body_append(conn_t *c, size_t max, const char *data, size_t n)
{
    if (c->too_big) return;
    if (c->len + n > max) {
        c->too_big = 1;
        free(c->buf);
        c->buf = NULL;
        c->len = c->cap = 0;
        return;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1) cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) { /* answered as too big: the client may retry with less */
            c->too_big = 1;
            free(c->buf);
            c->buf = NULL;
            c->len = c->cap = 0;
            return;
        }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    c->buf[c->len] = 0;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)conn, (void)why;
    conn_t *c = *state;
    if (c) free(c->buf);
    free(c);
    *state = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    mlops_httpd_t *h = cls;
    mlops_http_reply_t rep = {0};
    /* the first call only sees the headers; answer on the last, after
     * the body has been collected (req routes) or discarded */
    if (!*state) {
        conn_t *c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        c->route = find_route(h, url);
        if (c->route && c->route->req) {
            const char *cl =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > h->max_body) c->too_big = 1;
        }
        *state = c;
        return MHD_YES;
    }
    conn_t *c = *state;
    if (*upload_size) {
        if (c->route && c->route->req) body_append(c, h->max_body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if ((!c->route || !c->route->req) && strcmp(method, "GET") && strcmp(method, "HEAD")) {
        mlops_http_text(&rep, 405, NULL, "only GET and HEAD are served here\n");
        return send_reply(conn, &rep, NULL);
    }
    const char *set_cookie = NULL;
    int open = 0;
    for (size_t i = 0; h->open_paths && h->open_paths[i]; i++)
        open |= !strcmp(url, h->open_paths[i]);
    if (h->need_token && !open) {
        /* a program sends the header; a browser has only the URL it was
         * given (?token=) and then the cookie this server sets from it */
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        const char *qtok = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
        const char *ctok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "mlops_token");
        int ok = auth && !strncmp(auth, "Bearer ", 7) && mlops_token_equal(auth + 7, h->token);
        if (!ok && qtok && mlops_token_equal(qtok, h->token)) {
            ok = 1;
            set_cookie = h->token;
        }
        if (!ok) ok = ctok && mlops_token_equal(ctok, h->token);
        if (!ok) {
            mlops_http_text(&rep, 401, NULL,
                            "a bearer token is required (Authorization: Bearer ..., or ?token= "
                            "in a browser)\n");
            return send_reply(conn, &rep, NULL);
        }
    }
    if (!c->route) {
        mlops_http_text(&rep, 404, NULL, "not found\n");
        return send_reply(conn, &rep, NULL);
    }
    char query[1024] = "";
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, query);
    if (c->route->req) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        mlops_http_req_t rq = {method, url, query, ct ? ct : "", c->buf ? c->buf : "",
                               c->len, c->too_big};
        c->route->req(h->arg, &rq, &rep);
    } else {
        c->route->fn(h->arg, url, query, &rep);
    }
    return send_reply(conn, &rep, set_cookie);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    LOG_D("http: %s", line);
}

mlops_httpd_t *mlops_httpd_new(const char *listen, const mlops_http_route_t *routes, void *arg,
                               const char *token, char *err, size_t errlen)
{
    return mlops_httpd_new_opts(listen, routes, arg, token, NULL, err, errlen);
}

mlops_httpd_t *mlops_httpd_new_opts(const char *listen, const mlops_http_route_t *routes,
                                    void *arg, const char *token, const mlops_httpd_opts_t *o,
                                    char *err, size_t errlen)
{
    char host[64];
    int port = 0, loopback = 0;
    if (mlops_httpd_parse_listen(listen, host, sizeof host, &port, &loopback, err, errlen) != 0)
        return NULL;
    if (!loopback && (!token || !*token)) {
        mlops_seterr(err, errlen, MLOPS_EDENIED,
                     "%s is not a loopback address: give --http-token-file so that only "
                     "holders of the token can read it",
                     listen);
        return NULL;
    }
    mlops_httpd_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->routes = routes;
    h->arg = arg;
    h->max_body = o && o->max_body ? o->max_body : HTTP_MAX_BODY;
    h->open_paths = o ? o->open_paths : NULL;
    unsigned threads = o && o->threads ? o->threads : HTTP_THREADS;
    unsigned maxconn = o && o->max_connections ? o->max_connections : HTTP_MAX_CONNECTIONS;
    if (token && *token) {
        snprintf(h->token, sizeof h->token, "%s", token);
        h->need_token = 1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_THREAD_POOL_SIZE, threads,
                            MHD_OPTION_CONNECTION_LIMIT, maxconn,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        int e = errno;
        mlops_seterr(err, errlen, MLOPS_EIO, "cannot listen on %s: %s", listen,
                     e ? strerror(e) : "libmicrohttpd failed to start");
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? (int)di->port : port;
    snprintf(h->addr, sizeof h->addr, "%s:%d", host, h->port);
    return h;
}

int mlops_httpd_port(const mlops_httpd_t *h) { return h ? h->port : 0; }
const char *mlops_httpd_addr(const mlops_httpd_t *h) { return h ? h->addr : ""; }

void mlops_httpd_destroy(mlops_httpd_t **ph)
{
    if (!ph || !*ph) return;
    MHD_stop_daemon((*ph)->d);
    free(*ph);
    *ph = NULL;
}
