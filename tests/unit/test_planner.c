/* test_planner.c: which stages read which (planner_stage_reads) and which
 * stages' shards may be dropped once consumed (planner_stage_droppable),
 * on the stage lists planner_build makes from job files. A read missed
 * here would make the coordinator drop shards a later stage still needs
 * (the job would then recompute them: slower, still correct). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobmodel.h"
#include "stages.h"
#include <stdlib.h>
#include <string.h>

static const char *BASE = "name: t\n"
                          "input: in.csv\n"
                          "columns: {label: y, numeric: [a, b], categorical: [c, d]}\n"
                          "clean: {dropna: true}\n"
                          "scale: true\n"
                          "hash: {n_features: 1024}\n"
                          "split: {test_size: 0.2}\n"
                          "train: {epochs: 1}\n"
                          "evaluate: [accuracy]\n";

static job_t *plan(const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text, "%s%s", BASE, extra);
    job_t *j = calloc(1, sizeof *j);
    assert_non_null(j);
    char err[512] = "";
    if (mlops_jobspec_parse(text, strlen(text), NULL, &j->spec, err, sizeof err) != 0)
        fail_msg("job file: %s", err);
    if (planner_build(j, err, sizeof err) != 0) fail_msg("planner_build: %s", err);
    return j;
}

static void unplan(job_t **pj)
{
    job_t *j = *pj;
    free(j->stages);
    mlops_jobspec_destroy(&j->spec);
    free(j);
    *pj = NULL;
}

static int reads(job_t *j, const char *reader, const char *producer)
{
    stage_t *r = job_stage(j, reader), *p = job_stage(j, producer);
    if (!r || !p) fail_msg("no stage %s or %s", reader, producer);
    return planner_stage_reads(j, r, p);
}

static int droppable(job_t *j, const char *name)
{
    stage_t *st = job_stage(j, name);
    if (!st) fail_msg("no stage %s", name);
    return planner_stage_droppable(j, st);
}

static void test_fused_chain(void **state)
{
    (void)state;
    job_t *j = plan("");
    assert_true(stage_fused_features(j));
    /* clean reads ingest; scale's moments and fused split read clean */
    assert_true(reads(j, "clean", "ingest"));
    assert_true(reads(j, "scale", "clean"));
    assert_true(reads(j, "split", "clean"));
    assert_false(reads(j, "split", "ingest"));
    /* train and evaluate read split only */
    assert_true(reads(j, "train", "split"));
    assert_false(reads(j, "train", "clean"));
    assert_true(reads(j, "evaluate", "split"));
    assert_false(reads(j, "evaluate", "clean"));
    /* profile pairs the raw frame with the split shard */
    assert_true(reads(j, "profile", "split"));
    assert_true(reads(j, "profile", "clean"));
    assert_false(reads(j, "profile", "ingest"));
    const char *chain[] = {"ingest", "clean", "scale", "hash", "split"};
    for (size_t i = 0; i < 5; i++) assert_true(droppable(j, chain[i]));
    assert_false(droppable(j, "train"));
    assert_false(droppable(j, "evaluate"));
    assert_false(droppable(j, "profile"));
    unplan(&j);
}

static void test_keep_stages(void **state)
{
    (void)state;
    job_t *j = plan("keep_stages: true\n");
    assert_false(stage_fused_features(j));
    /* unfused: each chain stage reads the one before */
    assert_true(reads(j, "hash", "scale"));
    assert_true(reads(j, "split", "hash"));
    assert_false(reads(j, "split", "clean"));
    /* nothing is dropped */
    for (size_t s = 0; s < j->nstages; s++) assert_false(planner_stage_droppable(j, &j->stages[s]));
    unplan(&j);
}

static void test_knn_reads_raw(void **state)
{
    (void)state;
    job_t *j = plan("knn: {k: 5, mode: recommend, user: c, item: d}\n");
    assert_true(reads(j, "knn", "clean"));
    assert_false(droppable(j, "knn"));
    unplan(&j);
}

static void test_unknown_reader_reads_all(void **state)
{
    (void)state;
    job_t *j = plan("");
    /* a stage kind planner.c does not know is taken to read everything */
    stage_t *tr = job_stage(j, "train");
    char saved[32];
    memcpy(saved, tr->name, sizeof saved);
    snprintf(tr->name, sizeof tr->name, "%s", "newkind");
    assert_true(planner_stage_reads(j, tr, job_stage(j, "ingest")));
    memcpy(tr->name, saved, sizeof saved);
    unplan(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_chain),
        cmocka_unit_test(test_keep_stages),
        cmocka_unit_test(test_knn_reads_raw),
        cmocka_unit_test(test_unknown_reader_reads_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
