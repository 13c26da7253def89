/* test_planner.c: which stages read which (planner_stage_reads), which
 * stages' shards may be dropped once consumed (planner_stage_droppable)
 * and which stages must be done before another may start
 * (planner_stage_needs), on the stage lists planner_build makes from job
 * files; and that the job's metrics stay in pipeline order whichever
 * stage sets them first (job_set_metric). A read missed here would make
 * the coordinator drop shards a later stage still needs (the job would
 * then recompute them: slower, still correct); a need missed would start
 * a stage before what it reads exists. */
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

static int needs(job_t *j, const char *reader, const char *producer)
{
    stage_t *r = job_stage(j, reader), *p = job_stage(j, producer);
    if (!r || !p) fail_msg("no stage %s or %s", reader, producer);
    return planner_stage_needs(j, r, p);
}

static void test_needs_recommend(void **state)
{
    (void)state;
    /* the example job's shape: knn's recommend reads the raw frame only */
    job_t *j = plan("knn: {k: 5, mode: recommend, user: c, item: d}\n");
    assert_true(needs(j, "knn", "ingest"));
    assert_true(needs(j, "knn", "clean"));
    const char *not_knn[] = {"scale", "hash", "split", "train", "evaluate", "profile"};
    for (size_t i = 0; i < 6; i++) assert_false(needs(j, "knn", not_knn[i]));
    /* evaluate needs the model and the split; profile starts with the
     * split (its decile rounds), only its count phase needs the model */
    assert_true(needs(j, "evaluate", "train"));
    assert_true(needs(j, "evaluate", "split"));
    assert_true(needs(j, "profile", "split"));
    assert_true(needs(j, "profile", "clean"));
    assert_false(needs(j, "profile", "train"));
    assert_false(needs(j, "profile", "evaluate"));
    stage_t *pr = job_stage(j, "profile"), *tr = job_stage(j, "train");
    snprintf(pr->kind, sizeof pr->kind, "%s", "profile_qround");
    assert_true(planner_phase_ready(j, pr));
    snprintf(pr->kind, sizeof pr->kind, "%s", "profile_count");
    tr->state = ST_RUNNING;
    assert_false(planner_phase_ready(j, pr));
    tr->state = ST_DONE;
    assert_true(planner_phase_ready(j, pr));
    tr->state = ST_PENDING;
    /* the chain and train keep the default: every earlier stage */
    for (size_t s = 0; s < j->nstages; s++) {
        stage_t *st = &j->stages[s];
        if (strcmp(st->name, "train") && strcmp(st->name, "split") && strcmp(st->name, "scale")) continue;
        for (size_t p = 0; p < s; p++) assert_true(planner_stage_needs(j, st, &j->stages[p]));
    }
    /* never a later stage or itself */
    assert_false(needs(j, "clean", "knn"));
    assert_false(needs(j, "train", "train"));
    unplan(&j);
}

static void test_needs_classify(void **state)
{
    (void)state;
    /* classify reads the split shards, its row counts and scale's moments */
    job_t *j = plan("knn: {k: 5}\n");
    assert_true(needs(j, "knn", "split"));
    assert_true(needs(j, "knn", "scale"));
    assert_false(needs(j, "knn", "train"));
    assert_false(needs(j, "knn", "evaluate"));
    unplan(&j);
    /* with a search, train needs cv (it rewrites the train section) */
    j = plan("search: {folds: 2, grid: {train.alpha: [0.001, 0.01]}}\n");
    assert_true(needs(j, "cv", "split"));
    assert_true(needs(j, "train", "cv"));
    assert_true(needs(j, "evaluate", "train")); /* and so, through train, cv */
    unplan(&j);
}

static void test_unknown_reader_needs_all(void **state)
{
    (void)state;
    job_t *j = plan("knn: {k: 5, mode: recommend, user: c, item: d}\n");
    stage_t *kn = job_stage(j, "knn");
    char saved[32];
    memcpy(saved, kn->name, sizeof saved);
    snprintf(kn->name, sizeof kn->name, "%s", "newkind");
    for (size_t p = 0; p < (size_t)(kn - j->stages); p++) assert_true(planner_stage_needs(j, kn, &j->stages[p]));
    memcpy(kn->name, saved, sizeof saved);
    unplan(&j);
}

static void test_metric_order(void **state)
{
    (void)state;
    job_t j;
    memset(&j, 0, sizeof j);
    /* one after another the stages only append */
    job_set_metric(&j, "pinned", 0); /* unranked, before any stage */
    j.metric_rank = 1;
    job_set_metric(&j, "rows_in", 10);
    j.metric_rank = 7;
    job_set_metric(&j, "accuracy", 0.5);
    /* a later stage (9) that finished first, then an earlier one (8) */
    j.metric_rank = 9;
    job_set_metric(&j, "knn_ndcg", 0.1);
    j.metric_rank = 8;
    job_set_metric(&j, "profile_rows", 3);
    job_set_metric(&j, "profile_cols", 4);
    j.metric_rank = 0; /* unranked: goes last */
    job_set_metric(&j, "late", 1);
    /* an update keeps its place */
    j.metric_rank = 1;
    job_set_metric(&j, "rows_in", 11);
    const char *want[] = {"pinned", "rows_in", "accuracy", "profile_rows", "profile_cols", "knn_ndcg", "late"};
    assert_int_equal(j.nmetrics, 7);
    for (size_t i = 0; i < 7; i++) assert_string_equal(j.metrics[i].name, want[i]);
    assert_true(job_metric(&j, "rows_in", 0) == 11);
    for (size_t i = 0; i < j.nmetrics; i++) free(j.metrics[i].name);
    free(j.metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_chain),
        cmocka_unit_test(test_keep_stages),
        cmocka_unit_test(test_knn_reads_raw),
        cmocka_unit_test(test_unknown_reader_reads_all),
        cmocka_unit_test(test_needs_recommend),
        cmocka_unit_test(test_needs_classify),
        cmocka_unit_test(test_unknown_reader_needs_all),
        cmocka_unit_test(test_metric_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
