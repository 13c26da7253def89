/* test_stage_profile.c: the profile stage's reduction of the count phase
 * (stage_profile.c): the shards' category lists, each in byte order, are
 * merged k ways into exact global counts (distinct, top, other), and a
 * list out of order (a damaged or hostile worker result) fails the stage
 * with a message naming the task and column, never a wrong profile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bytes.h"
#include "jobmodel.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdlib.h>
#include <string.h>

static const char *SPEC = "name: t\n"
                          "input: in.csv\n"
                          "columns: {label: y, numeric: [a], categorical: [c]}\n"
                          "hash: {n_features: 1024}\n"
                          "split: {test_size: 0.2}\n"
                          "train: {epochs: 1}\n";

/* A job in profile's count phase with one result per list in `lists`
 * (each "v:n,v:n"), ntasks = nlists. */
static job_t *count_phase(const char *const *lists, size_t nlists)
{
    job_t *j = calloc(1, sizeof *j);
    assert_non_null(j);
    char err[512] = "";
    if (mlops_jobspec_parse(SPEC, strlen(SPEC), NULL, &j->spec, err, sizeof err) != 0)
        fail_msg("job file: %s", err);
    if (planner_build(j, err, sizeof err) != 0) fail_msg("planner_build: %s", err);
    char **labels = malloc(2 * sizeof *labels);
    labels[0] = strdup("0");
    labels[1] = strdup("1");
    job_set_classes(j, labels, 2);
    stage_t *st = job_stage(j, "profile");
    assert_non_null(st);
    assert_int_equal(stage_set_tasks(st, nlists, "profile_count"), 0);
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 1); /* PROF_COUNT */
    bw_u32(&w, 1); /* one numeric column */
    for (int k = 0; k < 9; k++) bw_f64(&w, k + 1.0);
    st->blob = bw_take(&w, &st->blob_len);
    for (size_t t = 0; t < nlists; t++) {
        char *vals[8], buf[256];
        uint64_t counts[8], num[11] = {0}, proba[10] = {0};
        size_t n = 0;
        snprintf(buf, sizeof buf, "%s", lists[t]);
        for (char *p = strtok(buf, ","); p && n < 8; p = strtok(NULL, ",")) {
            char *colon = strchr(p, ':');
            *colon = 0;
            vals[n] = p;
            counts[n++] = strtoull(colon + 1, NULL, 10);
        }
        Mlops__Tasks__ProfileCategory cat = MLOPS__TASKS__PROFILE_CATEGORY__INIT, *catp = &cat;
        cat.n_values = cat.n_counts = n;
        cat.values = vals;
        cat.counts = counts;
        Mlops__Tasks__ProfileCountResult r = MLOPS__TASKS__PROFILE_COUNT_RESULT__INIT;
        r.n_numeric = 11;
        r.numeric = num;
        r.n_categorical = 1;
        r.categorical = &catp;
        r.n_proba = 10;
        r.proba = proba;
        task_t *tk = &st->tasks[t];
        tk->result_len = mlops__tasks__profile_count_result__get_packed_size(&r);
        tk->result = malloc(tk->result_len);
        mlops__tasks__profile_count_result__pack(&r, tk->result);
        tk->state = T_DONE;
    }
    return j;
}

static void free_job(job_t **pj)
{
    job_t *j = *pj;
    for (size_t s = 0; s < j->nstages; s++) {
        stage_t *st = &j->stages[s];
        for (size_t t = 0; t < st->ntasks; t++) free(st->tasks[t].result);
        free(st->tasks);
        free(st->queue);
        free(st->blob);
    }
    free(j->stages);
    for (size_t i = 0; i < j->nclasses; i++) free(j->classes[i]);
    free(j->classes);
    for (size_t i = 0; i < j->nmetrics; i++) free(j->metrics[i].name);
    free(j->metrics);
    for (size_t i = 0; i < j->nlog; i++) free(j->log[i]);
    free(j->log);
    planner_job_free(j);
    mlops_jobspec_destroy(&j->spec);
    free(j);
    *pj = NULL;
}

static void test_merge(void **state)
{
    (void)state;
    const char *lists[] = {"a:2,b:1", "a:1,c:5", "", "b:4,d:1"};
    job_t *j = count_phase(lists, 4);
    stage_t *st = job_stage(j, "profile");
    char err[512] = "";
    assert_int_equal(st->ops->phase_done(j, st, err, sizeof err), 0);
    char *ref = stage_profile_reference(j);
    assert_non_null(ref);
    /* a 3, b 5, c 5, d 1: by count, ties by value */
    assert_non_null(strstr(ref, "\"distinct\":4,\"top\":[{\"value\":\"b\",\"count\":5},"
                                "{\"value\":\"c\",\"count\":5},{\"value\":\"a\",\"count\":3},"
                                "{\"value\":\"d\",\"count\":1}],\"other\":0"));
    free(ref);
    free_job(&j);
}

static void test_out_of_order_refused(void **state)
{
    (void)state;
    const char *lists[] = {"a:2,b:1", "c:1,a:5"};
    job_t *j = count_phase(lists, 2);
    stage_t *st = job_stage(j, "profile");
    char err[512] = "";
    assert_true(st->ops->phase_done(j, st, err, sizeof err) < 0);
    assert_string_equal(err, "profile: damaged counts from task 1 (column 'c' not in byte order)");
    assert_null(stage_profile_reference(j));
    free_job(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_out_of_order_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
