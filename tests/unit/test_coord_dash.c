/* test_coord_dash.c: the coordinator's dashboard in-process (coord_new
 * with http_listen on 127.0.0.1:0): the address file, /api/ bodies from
 * the first snapshot, the pages, 404 for unknown jobs, paths and assets,
 * and a stale snapshot (nobody watching) refreshed by the loop for the
 * request that finds it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "coord.h"
#include "log.h"

static int get(int port, const char *path, char *out, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd, out + got, n - 1 - got)) > 0) got += (size_t)r;
    out[got] = 0;
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.%*d %d", &status);
    return status;
}

typedef struct {
    int port;
    _Atomic int status;
    char body[65536];
} req_t;

static void *get_thread(void *arg)
{
    req_t *q = arg;
    q->status = get(q->port, "/api/workers", q->body, sizeof q->body);
    return NULL;
}

static void test_dash(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_coord_dash.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char data[256], err[512] = "", path[300];
    snprintf(data, sizeof data, "%s/c", dir);
    coord_config_t cfg = {.bind = "tcp://127.0.0.1:*",
                          .data_dir = data,
                          .heartbeat_ms = 100,
                          .http_listen = "127.0.0.1:0"};
    coord_t *c = coord_new(&cfg, err, sizeof err);
    assert_non_null(c);
    snprintf(path, sizeof path, "%s/http.addr", data);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int port = 0;
    assert_int_equal(fscanf(f, "127.0.0.1:%d", &port), 1);
    fclose(f);
    static char buf[65536];
    assert_int_equal(get(port, "/api/jobs", buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "Content-Type: application/json"));
    assert_non_null(strstr(buf, "{\"jobs\":[]}"));
    assert_int_equal(get(port, "/api/workers", buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "{\"workers\":[]}"));
    assert_int_equal(get(port, "/", buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "/assets/app.js"));
    assert_int_equal(get(port, "/assets/app.js", buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "text/javascript"));
    assert_int_equal(get(port, "/assets/index.html", buf, sizeof buf), 404);
    assert_int_equal(get(port, "/jobs/j000001", buf, sizeof buf), 404);
    assert_int_equal(get(port, "/api/jobs/j000001", buf, sizeof buf), 404);
    assert_non_null(strstr(buf, "no job 'j000001'"));
    /* the registry's `models` verb, served like the others */
    assert_int_equal(get(port, "/api/models", buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "{\"models\":[]}"));
    /* a model no snapshot names: 404 for its page and its API, naming it */
    assert_int_equal(get(port, "/models/clicks", buf, sizeof buf), 404);
    assert_int_equal(get(port, "/api/models/clicks", buf, sizeof buf), 404);
    assert_non_null(strstr(buf, "no model 'clicks'"));
    assert_int_equal(get(port, "/api/models/clicks/history", buf, sizeof buf), 404);
    assert_int_equal(get(port, "/models", buf, sizeof buf), 200);
    assert_int_equal(get(port, "/api/nope", buf, sizeof buf), 404);
    assert_int_equal(get(port, "/nope/<b>", buf, sizeof buf), 404);
    assert_null(strstr(buf, "<b>"));
    /* let the snapshot go stale with nobody watching... */
    zclock_sleep(1800);
    /* ...then a request waits for the loop's next one, made while it waits */
    req_t q = {.port = port};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, get_thread, &q), 0);
    zclock_sleep(300);
    assert_int_equal(q.status, 0); /* still waiting: the loop has not run */
    for (int i = 0; i < 20; i++) assert_int_equal(coord_poll(c, 20), 0);
    pthread_join(t, NULL);
    assert_int_equal(q.status, 200);
    assert_non_null(strstr(q.body, "{\"workers\":[]}"));
    coord_destroy(&c);
    assert_null(c);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    mlog_init("coordinator", MLOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_dash)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
