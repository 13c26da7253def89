/* test_httpd.c: the HTTP server wrapper (common/httpd.h) over real
 * loopback sockets: routes (exact and prefix), 404 for unknown paths, 405
 * for other methods, the bearer token (401 without or with a wrong one),
 * refusing a non-loopback address without a token, listen-address
 * errors, a stalled client that must not stop others being served, and
 * oversized headers answered without a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpd.h"

static void h_metrics(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)path;
    (void)query;
    (*(int *)arg)++;
    mlops_http_text(rep, 200, "text/plain; version=0.0.4", "mlops_up 1\n");
}

static void h_job(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)arg;
    char buf[256];
    snprintf(buf, sizeof buf, "job=%s query=%s", path + strlen("/jobs/"), query);
    mlops_http_text(rep, 200, NULL, buf);
}

static const mlops_http_route_t ROUTES[] = {
    {.path = "/metrics", .fn = h_metrics},
    {.path = "/jobs/", .prefix = 1, .fn = h_job},
    {.path = NULL}};

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Send `req` and read the whole reply (the server closes: Connection: close). */
static int request(int port, const char *req, char *out, size_t n)
{
    int fd = connect_to(port);
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd, out + got, n - 1 - got)) > 0) got += (size_t)r;
    out[got] = 0;
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.%*d %d", &status);
    return status;
}

static int get(int port, const char *path, const char *extra, char *out, size_t n)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", path,
             extra ? extra : "");
    return request(port, req, out, n);
}

static void test_routes(void **state)
{
    (void)state;
    int hits = 0;
    char err[256] = "";
    mlops_httpd_t *h = mlops_httpd_new("127.0.0.1:0", ROUTES, &hits, NULL, err, sizeof err);
    assert_non_null(h);
    int port = mlops_httpd_port(h);
    assert_true(port > 0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_string_equal(mlops_httpd_addr(h), want);
    char buf[8192];
    assert_int_equal(get(port, "/metrics", NULL, buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "\r\n\r\nmlops_up 1\n"));
    assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4"));
    assert_int_equal(hits, 1);
    assert_int_equal(get(port, "/jobs/j000007?a=1", NULL, buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "job=j000007 query=a=1"));
    assert_int_equal(get(port, "/metricsx", NULL, buf, sizeof buf), 404);
    assert_int_equal(get(port, "/", NULL, buf, sizeof buf), 404);
    assert_int_equal(get(port, "/../../etc/passwd", NULL, buf, sizeof buf), 404);
    assert_int_equal(request(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   "Content-Length: 3\r\n\r\nabc",
                             buf, sizeof buf),
                     405);
    assert_int_equal(hits, 1);
    /* a client that sends half a request and stalls does not block others */
    int stalled = connect_to(port);
    assert_int_equal(write(stalled, "GET /metr", 9), 9);
    assert_int_equal(get(port, "/metrics", NULL, buf, sizeof buf), 200);
    /* headers beyond the per-connection memory limit: an error status, no crash */
    char *big = malloc(100000);
    memset(big, 'a', 99990);
    memcpy(big, "X-Big: ", 7);
    memcpy(big + 99990, "\r\n", 3);
    int st = get(port, "/metrics", big, buf, sizeof buf);
    assert_true(st == 0 || st >= 400);
    free(big);
    assert_int_equal(get(port, "/metrics", NULL, buf, sizeof buf), 200);
    close(stalled);
    mlops_httpd_destroy(&h);
    assert_null(h);
    mlops_httpd_destroy(&h);
}

/* an open path (a health probe) is answered without the token; every
 * other path still needs it */
static void test_open_paths(void **state)
{
    (void)state;
    int hits = 0;
    char err[256] = "";
    static const char *const OPEN[] = {"/jobs/open", NULL};
    mlops_httpd_opts_t o = {0, 0, 0, OPEN};
    mlops_httpd_t *h = mlops_httpd_new_opts("127.0.0.1:0", ROUTES, &hits,
                                            "0123456789abcdef0123456789abcdef", &o, err, sizeof err);
    assert_non_null(h);
    int port = mlops_httpd_port(h);
    char buf[8192];
    assert_int_equal(get(port, "/jobs/open", NULL, buf, sizeof buf), 200);
    assert_int_equal(get(port, "/jobs/open2", NULL, buf, sizeof buf), 401);
    assert_int_equal(get(port, "/metrics", NULL, buf, sizeof buf), 401);
    mlops_httpd_destroy(&h);
}

static void test_token(void **state)
{
    (void)state;
    int hits = 0;
    char err[256] = "";
    const char *tok = "0123456789abcdef0123456789abcdef";
    mlops_httpd_t *h = mlops_httpd_new("127.0.0.1:0", ROUTES, &hits, tok, err, sizeof err);
    assert_non_null(h);
    int port = mlops_httpd_port(h);
    char buf[8192];
    assert_int_equal(get(port, "/metrics", NULL, buf, sizeof buf), 401);
    assert_non_null(strstr(buf, "WWW-Authenticate: Bearer"));
    assert_int_equal(get(port, "/metrics", "Authorization: Bearer nope\r\n", buf, sizeof buf), 401);
    assert_int_equal(get(port, "/nope", NULL, buf, sizeof buf), 401);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    assert_int_equal(get(port, "/metrics", hdr, buf, sizeof buf), 200);
    assert_int_equal(hits, 1);
    /* a browser: ?token= once, answered with the cookie it then sends */
    assert_int_equal(get(port, "/metrics?token=nope", NULL, buf, sizeof buf), 401);
    char path[128];
    snprintf(path, sizeof path, "/metrics?token=%s", tok);
    assert_int_equal(get(port, path, NULL, buf, sizeof buf), 200);
    snprintf(hdr, sizeof hdr, "Set-Cookie: mlops_token=%s; Path=/; HttpOnly", tok);
    assert_non_null(strstr(buf, hdr));
    snprintf(hdr, sizeof hdr, "Cookie: mlops_token=%s\r\n", tok);
    assert_int_equal(get(port, "/metrics", hdr, buf, sizeof buf), 200);
    assert_null(strstr(buf, "Set-Cookie"));
    assert_int_equal(get(port, "/metrics", "Cookie: mlops_token=nope\r\n", buf, sizeof buf), 401);
    assert_int_equal(hits, 3);
    mlops_httpd_destroy(&h);
}

static void test_refused(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(mlops_httpd_new("0.0.0.0:0", ROUTES, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "0.0.0.0:0 is not a loopback address"));
    assert_non_null(strstr(err, "--http-token-file"));
    const char *bad[] = {"9100", "127.0.0.1:", "127.0.0.1:99999", "host.example:80", ":80",
                         "127.0.0.1:12x", NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = 0;
        assert_null(mlops_httpd_new(bad[i], ROUTES, NULL, NULL, err, sizeof err));
        assert_non_null(strstr(err, bad[i]));
    }
    /* a port already taken names the address */
    mlops_httpd_t *h = mlops_httpd_new("localhost:0", ROUTES, NULL, NULL, err, sizeof err);
    assert_non_null(h);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", mlops_httpd_port(h));
    assert_null(mlops_httpd_new(addr, ROUTES, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot listen on"));
    mlops_httpd_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_open_paths),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
