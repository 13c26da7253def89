/* test_stage_profile.c: the profile stage's reduction of the count phase
 * (stage_profile.c): the shards' category lists, each in byte order, are
 * merged k ways into exact global counts (distinct, top, other), and a
 * list out of order (a damaged or hostile worker result) fails the stage
 * with a message naming the task and column, never a wrong profile. The
 * same lists returned by the decile round 0 (which counts them beside
 * train), with the numeric bins from the bins phase and only the
 * probabilities from the count phase, give the same reference bytes as
 * when the count phase counts everything. A running stage replayed with
 * a blob of round 5's layout (no layout word) is re-planned from round 0
 * at a phase number of its own and gives the same bytes; a done one's
 * reference is still read. Round 0 answered by the featurize tasks (their
 * results, merged when the stage starts: its first tasks are the bins')
 * gives the same bytes too, and a damaged answer there names the split
 * task. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bytes.h"
#include "jobmodel.h"
#include "quantile.h"
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

/* "v:n,v:n" into vals (pointing into buf) and counts; the count. */
static size_t parse_list(const char *list, char *buf, size_t buflen, char **vals, uint64_t *counts)
{
    size_t n = 0;
    snprintf(buf, buflen, "%s", list);
    for (char *p = strtok(buf, ","); p && n < 8; p = strtok(NULL, ",")) {
        char *colon = strchr(p, ':');
        *colon = 0;
        vals[n] = p;
        counts[n++] = strtoull(colon + 1, NULL, 10);
    }
    return n;
}

/* A job in profile's count phase with one result per list in `lists`
 * (each "v:n,v:n"), ntasks = nlists; with in_round0 the lists came with
 * the decile round 0 instead, and the count phase returns none. */
static job_t *count_phase(const char *const *lists, size_t nlists, int in_round0, int old);
static void count_results(job_t *j, const char *const *lists, size_t nlists, int in_round0);
static void free_job(job_t **pj);

/* as SPEC, with the scaler: split fused into featurize tasks */
static const char *SPEC_FUSED = "name: t\n"
                                "input: in.csv\n"
                                "columns: {label: y, numeric: [a], categorical: [c]}\n"
                                "scale: true\n"
                                "hash: {n_features: 1024}\n"
                                "split: {test_size: 0.2}\n"
                                "train: {epochs: 1}\n";

static job_t *new_job_of(const char *spec)
{
    job_t *j = calloc(1, sizeof *j);
    assert_non_null(j);
    char err[512] = "";
    if (mlops_jobspec_parse(spec, strlen(spec), NULL, &j->spec, err, sizeof err) != 0)
        fail_msg("job file: %s", err);
    if (planner_build(j, err, sizeof err) != 0) fail_msg("planner_build: %s", err);
    char **labels = malloc(2 * sizeof *labels);
    labels[0] = strdup("0");
    labels[1] = strdup("1");
    job_set_classes(j, labels, 2);
    return j;
}

static job_t *new_job(void) { return new_job_of(SPEC); }

#define PROF_LAYOUT 0x32465250u

/* The blob's head: the layout word, base (round 0's phase), mode. */
static void blob_head(bw_t *w, uint32_t base, uint32_t mode)
{
    bw_u32(w, PROF_LAYOUT);
    bw_u32(w, base);
    bw_u32(w, mode);
}

static const double s_deciles[9] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

/* Profile's first decile round: the ROUNDS blob as profile_start sets it. */
static void rounds_start(stage_t *st)
{
    mlk_qjob *q = mlk_qjob_new(1, s_deciles, 9);
    uint8_t *qb;
    size_t ql;
    assert_int_equal(mlk_qjob_encode(q, &qb, &ql), 0);
    mlk_qjob_destroy(&q);
    bw_t w;
    bw_init(&w);
    blob_head(&w, 0, 0); /* PROF_ROUNDS */
    bw_u32(&w, 1);
    bw_blob(&w, NULL, 0); /* no categories yet */
    bw_blob(&w, NULL, 0); /* nor numeric bins */
    bw_put(&w, qb, ql);
    free(qb);
    st->blob = bw_take(&w, &st->blob_len);
}

/* Every task's answer to the current round over one numeric column of
 * 1..40, round 0's with its list in `lists` (each "v:n,v:n"). */
static void round_results(stage_t *st, const char *const *lists, size_t nlists, uint32_t round)
{
    double col[40];
    for (int i = 0; i < 40; i++) col[i] = i + 1;
    const double *cols[1] = {col};
    char err[512] = "";
    mlk_qjob *q;
    assert_int_equal(stage_set_tasks(st, nlists, "profile_qround"), 0);
    /* the request as profile_args makes it: round 0 asks for windows */
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    assert_int_equal(br_u32(&r), PROF_LAYOUT);
    br_u32(&r); /* base */
    assert_int_equal(br_u32(&r), 0);
    br_u32(&r);
    size_t catlen;
    br_blob(&r, &catlen);
    assert_int_equal(catlen == 0, round == 0);
    br_blob(&r, &catlen);
    assert_int_equal(mlk_qjob_decode(st->blob + r.at, st->blob_len - r.at, &q), 0);
    if (round == 0) assert_int_equal(mlk_qjob_set_window(q, 512), 0);
    uint8_t *req;
    size_t rl;
    assert_int_equal(mlk_qjob_request(q, &req, &rl), 0);
    mlk_qjob_destroy(&q);
    for (size_t t = 0; t < nlists; t++) {
        uint8_t *ans;
        size_t al;
        assert_int_equal(
            mlk_qjob_answer_masked(req, rl, cols, 1, 40, NULL, &ans, &al, err, sizeof err), 0);
        char *vals[8], buf[256];
        uint64_t counts[8];
        Mlops__Tasks__ProfileCategory cat = MLOPS__TASKS__PROFILE_CATEGORY__INIT, *catp = &cat;
        cat.n_values = cat.n_counts = parse_list(lists[t], buf, sizeof buf, vals, counts);
        cat.values = vals;
        cat.counts = counts;
        Mlops__Tasks__ProfileQroundResult res = MLOPS__TASKS__PROFILE_QROUND_RESULT__INIT;
        res.quantile_answer.data = ans;
        res.quantile_answer.len = al;
        res.n_categorical = round == 0;
        res.categorical = &catp;
        task_t *tk = &st->tasks[t];
        tk->result_len = mlops__tasks__profile_qround_result__get_packed_size(&res);
        tk->result = malloc(tk->result_len);
        mlops__tasks__profile_qround_result__pack(&res, tk->result);
        tk->state = T_DONE;
        free(ans);
    }
    free(req);
}

static void free_results(stage_t *st)
{
    for (size_t t = 0; t < st->ntasks; t++) {
        free(st->tasks[t].result);
        st->tasks[t].result = NULL;
    }
}

/* Profile's inputs (the split shards and the raw frames): n tasks each. */
static void input_shards(job_t *j, size_t n)
{
    assert_int_equal(stage_set_tasks(job_stage(j, "split"), n, "featurize"), 0);
    assert_int_equal(stage_set_tasks(job_stage(j, "clean") ? job_stage(j, "clean") : job_stage(j, "ingest"), n,
                                     "ingest"),
                     0);
}

/* A running profile stage at phase 2 with a round-0 blob of round 5's
 * layout (u32 mode, u32 ncols, the two parts, the qjob), replayed. */
static void replay_old_layout(job_t *j, size_t nlists)
{
    stage_t *st = job_stage(j, "profile");
    input_shards(j, nlists);
    mlk_qjob *q = mlk_qjob_new(1, s_deciles, 9);
    uint8_t *qb;
    size_t ql;
    assert_int_equal(mlk_qjob_encode(q, &qb, &ql), 0);
    mlk_qjob_destroy(&q);
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 0); /* PROF_ROUNDS, no layout word */
    bw_u32(&w, 1);
    bw_blob(&w, NULL, 0);
    bw_blob(&w, NULL, 0);
    bw_put(&w, qb, ql);
    free(qb);
    st->blob = bw_take(&w, &st->blob_len);
    assert_int_equal(stage_set_tasks(st, nlists, "profile_qround"), 0);
    st->state = ST_RUNNING;
    st->phase = 2;
    stage_profile_replayed(j, st);
    assert_int_equal(st->phase, 3); /* no journalled task of phase 2 is loaded */
    assert_string_equal(st->kind, "profile_qround");
    assert_int_equal(st->ntasks, nlists);
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    assert_int_equal(br_u32(&r), PROF_LAYOUT);
    assert_int_equal(br_u32(&r), 3); /* round 0 is phase 3 */
    assert_int_equal(br_u32(&r), 0);
}

/* The decile rounds, round 0 returning the lists, until the count phase
 * is set; with old, from a replayed blob of round 5's layout. */
static void rounds(job_t *j, const char *const *lists, size_t nlists, int old)
{
    stage_t *st = job_stage(j, "profile");
    char err[512] = "";
    if (old) replay_old_layout(j, nlists);
    else rounds_start(st);
    for (uint32_t round = 0; round < 5; round++) {
        round_results(st, lists, nlists, round);
        if (st->ops->phase_done(j, st, err, sizeof err) != 1) fail_msg("round %u: %s", round, err);
        free_results(st);
        if (!strcmp(st->kind, "profile_bins")) return;
    }
    fail_msg("the deciles of 1..40 were not exact after 5 rounds");
}

/* The bins phase after the rounds: every task's bins of 1..40 (the
 * deciles put 4 values in each bin). */
static void bins(job_t *j, size_t nlists)
{
    stage_t *st = job_stage(j, "profile");
    for (size_t t = 0; t < nlists; t++) {
        uint64_t num[11] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0};
        Mlops__Tasks__ProfileCountResult r = MLOPS__TASKS__PROFILE_COUNT_RESULT__INIT;
        r.n_numeric = 11;
        r.numeric = num;
        r.rows = 40;
        task_t *tk = &st->tasks[t];
        tk->result_len = mlops__tasks__profile_count_result__get_packed_size(&r);
        tk->result = malloc(tk->result_len);
        mlops__tasks__profile_count_result__pack(&r, tk->result);
        tk->state = T_DONE;
    }
    char err[512] = "";
    if (st->ops->phase_done(j, st, err, sizeof err) != 1) fail_msg("bins: %s", err);
    free_results(st);
}

static job_t *count_phase(const char *const *lists, size_t nlists, int in_round0, int old)
{
    job_t *j = new_job();
    stage_t *st = job_stage(j, "profile");
    assert_non_null(st);
    if (in_round0) {
        rounds(j, lists, nlists, old);
        bins(j, nlists);
    } else {
        assert_int_equal(stage_set_tasks(st, nlists, "profile_count"), 0);
        bw_t w;
        bw_init(&w);
        blob_head(&w, 0, 1); /* PROF_COUNT */
        bw_u32(&w, 1); /* one numeric column */
        bw_blob(&w, NULL, 0); /* the categories: counted in this phase */
        bw_blob(&w, NULL, 0); /* the numeric bins too */
        for (int k = 0; k < 9; k++) bw_f64(&w, k + 1.0);
        st->blob = bw_take(&w, &st->blob_len);
    }
    count_results(j, lists, nlists, in_round0);
    return j;
}

/* The count phase's results: with in_round0 only the probabilities. */
static void count_results(job_t *j, const char *const *lists, size_t nlists, int in_round0)
{
    stage_t *st = job_stage(j, "profile");
    assert_string_equal(st->kind, "profile_count");
    for (size_t t = 0; t < nlists; t++) {
        char *vals[8], buf[256];
        uint64_t counts[8], num[11] = {0}, proba[10] = {0};
        Mlops__Tasks__ProfileCategory cat = MLOPS__TASKS__PROFILE_CATEGORY__INIT, *catp = &cat;
        cat.n_values = cat.n_counts = parse_list(lists[t], buf, sizeof buf, vals, counts);
        cat.values = vals;
        cat.counts = counts;
        Mlops__Tasks__ProfileCountResult r = MLOPS__TASKS__PROFILE_COUNT_RESULT__INIT;
        r.n_numeric = in_round0 ? 0 : 11;
        r.numeric = num;
        r.n_categorical = !in_round0;
        r.categorical = &catp;
        r.n_proba = 10;
        r.proba = proba;
        task_t *tk = &st->tasks[t];
        tk->result_len = mlops__tasks__profile_count_result__get_packed_size(&r);
        tk->result = malloc(tk->result_len);
        mlops__tasks__profile_count_result__pack(&r, tk->result);
        tk->state = T_DONE;
    }
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
    job_t *j = count_phase(lists, 4, 0, 0);
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
    job_t *j = count_phase(lists, 2, 0, 0);
    stage_t *st = job_stage(j, "profile");
    char err[512] = "";
    assert_true(st->ops->phase_done(j, st, err, sizeof err) < 0);
    assert_string_equal(err, "profile: damaged counts from task 1 (column 'c' not in byte order)");
    assert_null(stage_profile_reference(j));
    free_job(&j);
}

/* The categories' part of the reference text. */
static char *categorical_part(const char *ref)
{
    const char *a = strstr(ref, "\"categorical\":"), *b = a ? strstr(a, ",\"proba\":") : NULL;
    assert_non_null(b);
    return strndup(a, (size_t)(b - a));
}

static void test_round0_same_bytes(void **state)
{
    (void)state;
    const char *lists[] = {"a:2,b:1", "a:1,c:5", "", "b:4,d:1"};
    char err[512] = "";
    job_t *j0 = count_phase(lists, 4, 0, 0), *j1 = count_phase(lists, 4, 1, 0);
    stage_t *s0 = job_stage(j0, "profile"), *s1 = job_stage(j1, "profile");
    assert_int_equal(s0->ops->phase_done(j0, s0, err, sizeof err), 0);
    assert_int_equal(s1->ops->phase_done(j1, s1, err, sizeof err), 0);
    char *r0 = stage_profile_reference(j0), *r1 = stage_profile_reference(j1);
    assert_non_null(r0);
    assert_non_null(r1);
    char *c0 = categorical_part(r0), *c1 = categorical_part(r1);
    assert_string_equal(c0, c1);
    /* numpy.quantile(numpy.repeat(numpy.arange(1, 41), 4), deciles), as
     * mlops_json_dumps writes them (%.17g where %.15g does not read back) */
    assert_non_null(strstr(r1, "\"counts\":[16,16,16,16,16,16,16,16,16,16],\"missing\":0}]"));
    assert_non_null(strstr(r1, "\"edges\":[4.9,8.8,12.699999999999996,16.6,20.5,24.399999999999991,"
                               "28.299999999999997,32.2,36.099999999999994]"));
    free(c0);
    free(c1);
    free(r0);
    free(r1);
    free_job(&j0);
    free_job(&j1);
}

static void test_round0_out_of_order_refused(void **state)
{
    (void)state;
    const char *lists[] = {"a:2,b:1", "c:1,a:5"};
    job_t *j = new_job();
    char err[512] = "";
    stage_t *st = job_stage(j, "profile");
    rounds_start(st);
    round_results(st, lists, 2, 0);
    assert_true(st->ops->phase_done(j, st, err, sizeof err) < 0);
    assert_string_equal(err, "profile: damaged counts from task 1 (column 'c' not in byte order)");
    free_results(st);
    assert_null(stage_profile_reference(j));
    free_job(&j);
}

/* A restart finding a running stage's blob of round 5's layout reruns
 * it from round 0 to the same reference bytes; the reference of a stage
 * done under that layout is still read. */
static void test_old_layout(void **state)
{
    (void)state;
    const char *lists[] = {"a:2,b:1", "a:1,c:5", "", "b:4,d:1"};
    char err[512] = "";
    job_t *j1 = count_phase(lists, 4, 1, 0), *j2 = count_phase(lists, 4, 1, 1);
    stage_t *s1 = job_stage(j1, "profile"), *s2 = job_stage(j2, "profile");
    assert_int_equal(s1->ops->phase_done(j1, s1, err, sizeof err), 0);
    assert_int_equal(s2->ops->phase_done(j2, s2, err, sizeof err), 0);
    char *r1 = stage_profile_reference(j1), *r2 = stage_profile_reference(j2);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_string_equal(r1, r2);
    /* a stage done under the old layout: mode DONE, ncols, the two empty
     * parts, the edges, the text */
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 2);
    bw_u32(&w, 1);
    bw_blob(&w, NULL, 0);
    bw_blob(&w, NULL, 0);
    for (int k = 0; k < 9; k++) bw_f64(&w, k + 1.0);
    bw_put(&w, r1, strlen(r1));
    free(s1->blob);
    s1->blob = bw_take(&w, &s1->blob_len);
    s1->state = ST_DONE;
    stage_profile_replayed(j1, s1); /* not running: left as it is */
    char *r3 = stage_profile_reference(j1);
    assert_non_null(r3);
    assert_string_equal(r3, r1);
    free(r1);
    free(r2);
    free(r3);
    free_job(&j1);
    free_job(&j2);
}

/* A fused job whose featurize tasks answered round 0 (the answers as a
 * profile_qround task gives them, moved to the split stage's tasks);
 * with damage, task 1's answer cut short. The profile stage started. */
static job_t *split_round0(const char *const *lists, size_t nlists, int damage, int *rc, char *err,
                           size_t errlen)
{
    job_t *j0 = new_job(), *j = new_job_of(SPEC_FUSED);
    stage_t *s0 = job_stage(j0, "profile"), *st = job_stage(j, "profile"), *sp = job_stage(j, "split");
    rounds_start(s0);
    round_results(s0, lists, nlists, 0);
    input_shards(j, nlists);
    assert_string_equal(sp->kind, "featurize");
    for (size_t t = 0; t < nlists; t++) {
        sp->tasks[t].result = s0->tasks[t].result;
        sp->tasks[t].result_len = s0->tasks[t].result_len - (damage && t == 1 ? 3 : 0);
        sp->tasks[t].state = T_DONE;
        s0->tasks[t].result = NULL;
    }
    free_job(&j0);
    st->phase = 0;
    *rc = st->ops->start(j, st, err, errlen);
    return j;
}

static void test_round0_in_split(void **state)
{
    (void)state;
    const char *lists[] = {"a:2,b:1", "a:1,c:5", "", "b:4,d:1"};
    char err[512] = "";
    int rc;
    job_t *j1 = count_phase(lists, 4, 1, 0), *j2 = split_round0(lists, 4, 0, &rc, err, sizeof err);
    stage_t *s1 = job_stage(j1, "profile"), *s2 = job_stage(j2, "profile");
    assert_int_equal(rc, 0);
    /* round 0 merged at the start: its first tasks are the bins' */
    assert_string_equal(s2->kind, "profile_bins");
    assert_int_equal(s2->phase, 1);
    assert_int_equal(s2->ntasks, 4);
    assert_int_equal(s2->total_all, 4); /* round 0 ran no task of its own */
    bins(j2, 4);
    assert_int_equal(s2->phase, 2);
    count_results(j2, lists, 4, 1);
    assert_int_equal(s1->ops->phase_done(j1, s1, err, sizeof err), 0);
    assert_int_equal(s2->ops->phase_done(j2, s2, err, sizeof err), 0);
    char *r1 = stage_profile_reference(j1), *r2 = stage_profile_reference(j2);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_string_equal(r1, r2);
    free(r1);
    free(r2);
    free_job(&j1);
    free_job(&j2);
    /* a damaged answer fails the stage, naming the split task */
    job_t *j3 = split_round0(lists, 4, 1, &rc, err, sizeof err);
    assert_true(rc < 0);
    assert_string_equal(err, "profile: damaged quantile answer from split task 1");
    free_job(&j3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_out_of_order_refused),
        cmocka_unit_test(test_round0_same_bytes),
        cmocka_unit_test(test_round0_out_of_order_refused),
        cmocka_unit_test(test_old_layout),
        cmocka_unit_test(test_round0_in_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
