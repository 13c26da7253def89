/* test_prom.c: the metrics registry (common/prom.h): the exact text
 * exposition 0.0.4 of counters, gauges and histograms (cumulative
 * buckets, +Inf, _sum, _count), label escaping, refused names, the bound
 * on label combinations, and updates from several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static void test_exposition(void **state)
{
    (void)state;
    mlops_prom_t *r = mlops_prom_new();
    mlops_prom_fam_t *c = mlops_prom_counter(r, "mlops_tasks_total", "Tasks.", "kind,result");
    mlops_prom_fam_t *g = mlops_prom_gauge(r, "mlops_up", "Line one\nand \\ two.", NULL);
    const double b[] = {0.1, 1};
    mlops_prom_fam_t *h = mlops_prom_histogram(r, "mlops_dur_seconds", "D.", "kind", b, 2);
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(h);
    mlops_prom_add(c, "train", "ok", 2);
    mlops_prom_add(c, "train", "ok", 1);
    mlops_prom_add(c, "say \"hi\"\n", "a\\b", 1);
    mlops_prom_add(c, "train", "ok", -5); /* a counter never goes down */
    mlops_prom_observe(h, "ingest", NULL, 0.05);
    mlops_prom_observe(h, "ingest", NULL, 0.1); /* le is inclusive */
    mlops_prom_observe(h, "ingest", NULL, 0.5);
    mlops_prom_observe(h, "ingest", NULL, 7.25);
    size_t len = 0;
    char *text = mlops_prom_render(r, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    const char *want =
        "# HELP mlops_tasks_total Tasks.\n"
        "# TYPE mlops_tasks_total counter\n"
        "mlops_tasks_total{kind=\"train\",result=\"ok\"} 3\n"
        "mlops_tasks_total{kind=\"say \\\"hi\\\"\\n\",result=\"a\\\\b\"} 1\n"
        "# HELP mlops_up Line one\\nand \\\\ two.\n"
        "# TYPE mlops_up gauge\n"
        "mlops_up 0\n"
        "# HELP mlops_dur_seconds D.\n"
        "# TYPE mlops_dur_seconds histogram\n"
        "mlops_dur_seconds_bucket{kind=\"ingest\",le=\"0.10000000000000001\"} 2\n"
        "mlops_dur_seconds_bucket{kind=\"ingest\",le=\"1\"} 3\n"
        "mlops_dur_seconds_bucket{kind=\"ingest\",le=\"+Inf\"} 4\n"
        "mlops_dur_seconds_sum{kind=\"ingest\"} 7.9000000000000004\n"
        "mlops_dur_seconds_count{kind=\"ingest\"} 4\n"
        "# HELP mlops_metrics_dropped_series_total";
    assert_memory_equal(text, want, strlen(want));
    free(text);
    assert_int_equal((int)mlops_prom_value(c, "train", "ok"), 3);
    assert_int_equal((int)mlops_prom_value(h, "ingest", NULL), 4);
    mlops_prom_set(g, NULL, NULL, 1.5);
    assert_true(mlops_prom_value(g, NULL, NULL) == 1.5);
    mlops_prom_zero(g);
    assert_true(mlops_prom_value(g, NULL, NULL) == 0);
    /* updates of the wrong kind and NULL families are no-ops */
    mlops_prom_set(c, "train", "ok", 100);
    mlops_prom_observe(c, "train", "ok", 1);
    mlops_prom_add(NULL, "x", NULL, 1);
    assert_int_equal((int)mlops_prom_value(c, "train", "ok"), 3);
    mlops_prom_destroy(&r);
    assert_null(r);
    mlops_prom_destroy(&r);
}

static void test_refused(void **state)
{
    (void)state;
    mlops_prom_t *r = mlops_prom_new();
    assert_null(mlops_prom_counter(r, "mlops_tasks", "no _total", NULL));
    assert_null(mlops_prom_counter(r, "9bad_total", "digit first", NULL));
    assert_null(mlops_prom_gauge(r, "mlops-bad", "dash", NULL));
    assert_null(mlops_prom_gauge(r, "mlops_x", "three labels", "a,b,c"));
    assert_null(mlops_prom_gauge(r, "mlops_x", "le is reserved", "le"));
    const double up[] = {1, 0.5};
    assert_null(mlops_prom_histogram(r, "mlops_h_seconds", "not ascending", NULL, up, 2));
    assert_null(mlops_prom_histogram(r, "mlops_h_total", "not a counter", NULL, up, 1));
    assert_non_null(mlops_prom_gauge(r, "mlops_x", "once", NULL));
    assert_null(mlops_prom_gauge(r, "mlops_x", "twice", NULL));
    mlops_prom_destroy(&r);
}

static void test_bounded(void **state)
{
    (void)state;
    mlops_prom_t *r = mlops_prom_new();
    mlops_prom_fam_t *c = mlops_prom_counter(r, "mlops_leak_total", "ids leaking", "id");
    char id[32];
    for (int i = 0; i < MLOPS_PROM_MAX_SERIES + 50; i++) {
        snprintf(id, sizeof id, "j%06d", i);
        mlops_prom_add(c, id, NULL, 1);
    }
    char *text = mlops_prom_render(r, NULL);
    assert_non_null(strstr(text, "mlops_metrics_dropped_series_total 50\n"));
    size_t lines = 0;
    for (char *p = text; (p = strstr(p, "mlops_leak_total{")); p++) lines++;
    assert_int_equal(lines, MLOPS_PROM_MAX_SERIES);
    free(text);
    mlops_prom_destroy(&r);
}

static mlops_prom_fam_t *s_c, *s_h;
static void *hammer(void *arg)
{
    const char *kind = arg;
    for (int i = 0; i < 20000; i++) {
        mlops_prom_add(s_c, kind, NULL, 1);
        mlops_prom_observe(s_h, kind, NULL, i % 3 ? 0.002 : 2);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    mlops_prom_t *r = mlops_prom_new();
    s_c = mlops_prom_counter(r, "mlops_t_total", "t", "kind");
    s_h = mlops_prom_histogram(r, "mlops_t_seconds", "t", "kind", MLOPS_PROM_SECONDS,
                               MLOPS_PROM_NSECONDS);
    pthread_t th[4];
    const char *kinds[4] = {"a", "b", "a", "b"};
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, (void *)kinds[i]);
    /* renders while updating: each is one moment (the copy is taken
     * under the lock), so a series' +Inf bucket equals its count, and a
     * counter never goes back between renders */
    double last = 0;
    for (int i = 0; i < 20; i++) {
        char *text = mlops_prom_render(r, NULL);
        assert_non_null(text);
        const char *inf = strstr(text, "mlops_t_seconds_bucket{kind=\"a\",le=\"+Inf\"} ");
        const char *cnt = strstr(text, "mlops_t_seconds_count{kind=\"a\"} ");
        const char *ctr = strstr(text, "mlops_t_total{kind=\"a\"} ");
        if (inf && cnt) assert_int_equal(atoll(strchr(inf, '}') + 2), atoll(strchr(cnt, '}') + 2));
        if (ctr) {
            double v = atof(strchr(ctr, '}') + 2);
            assert_true(v >= last);
            last = v;
        }
        free(text);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    assert_int_equal((int)mlops_prom_value(s_c, "a", NULL), 40000);
    assert_int_equal((int)mlops_prom_value(s_h, "b", NULL), 40000);
    mlops_prom_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposition),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
