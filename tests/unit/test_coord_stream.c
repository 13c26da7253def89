/* test_coord_stream.c: the task stream and usage rings (coord_stream.c)
 * on a hand-made coordinator with two workers: tasks come back oldest
 * first with the worker's name and start = end - the worker's seconds,
 * the ring keeps the last 1000 across a wrap, and heartbeat samples are
 * taken at most one per 2 s per worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"

static void test_rings(void **state)
{
    (void)state;
    coord_t c;
    memset(&c, 0, sizeof c);
    coord_worker_t ws[2];
    memset(ws, 0, sizeof ws);
    snprintf(ws[0].id, sizeof ws[0].id, "w1");
    snprintf(ws[1].id, sizeof ws[1].id, "w2");
    ws[0].name = "alpha";
    ws[1].name = NULL; /* shown by its id */
    ws[0].rss_bytes = 1000;
    ws[0].store_bytes = 10;
    ws[0].executing = 2;
    c.workers = ws;
    c.nworkers = 2;
    c.stream = coord_stream_new();
    assert_non_null(c.stream);
    job_t j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "j000007");
    stage_t st;
    memset(&st, 0, sizeof st);
    snprintf(st.name, sizeof st.name, "clean");

    for (uint32_t t = 0; t < 1005; t++)
        coord_stream_task(&c, (int)(t % 2), &j, &st, t, 0.25, t != 1004);
    coord_stream_sample(&c, 0);
    coord_stream_sample(&c, 0); /* within 2 s of the first: not kept */
    ws[0].rss_bytes = 2000;

    json_t *doc = coord_stream_json(&c);
    json_t *tasks = json_object_get(doc, "tasks");
    assert_int_equal(json_array_size(tasks), 1000);
    json_t *first = json_array_get(tasks, 0), *last = json_array_get(tasks, 999);
    assert_int_equal(json_integer_value(json_object_get(first, "task")), 5);
    assert_string_equal(json_string_value(json_object_get(first, "worker")), "w2");
    assert_int_equal(json_integer_value(json_object_get(last, "task")), 1004);
    assert_string_equal(json_string_value(json_object_get(last, "worker")), "alpha");
    assert_string_equal(json_string_value(json_object_get(last, "job")), "j000007");
    assert_string_equal(json_string_value(json_object_get(last, "stage")), "clean");
    assert_true(json_is_false(json_object_get(last, "ok")));
    double s = json_real_value(json_object_get(last, "start"));
    double e = json_real_value(json_object_get(last, "end"));
    assert_true(e - s > 0.2499 && e - s < 0.2501);

    json_t *w = json_object_get(doc, "workers");
    assert_int_equal(json_array_size(w), 2);
    json_t *s0 = json_object_get(json_array_get(w, 0), "samples");
    assert_int_equal(json_array_size(s0), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(s0, 0), "rss_bytes")), 1000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(s0, 0), "running")), 2);
    assert_int_equal(json_array_size(json_object_get(json_array_get(w, 1), "samples")), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(w, 1), "name")), "w2");
    json_decref(doc);
    coord_stream_destroy(&c.stream);
    assert_null(c.stream);
    coord_stream_destroy(&c.stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rings)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
