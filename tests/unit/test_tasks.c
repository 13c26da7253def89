/* test_tasks.c: task arguments (proto/tasks.proto) that come damaged from
 * the network fail the task with a message naming the kind and the
 * message type, as a peer's fault (not retryable), and never crash the
 * worker; well-formed arguments with values out of bounds fail the same
 * way. Round trips of every kind are covered by the integration tests,
 * which run every stage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stages.h"
#include "task.h"
#include "tasks.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every kind that takes arguments. */
static const char *s_kinds[] = {"ingest",   "clean_qround", "clean_filter", "scale_apply",
                                "hash",     "split",        "featurize",    "train_epoch",  "train_reduce",
                                "evaluate", "ingest_idx",   "knn_search",   "knn_classify",
                                "rec_keys", "rec_export",   "rec_search",   "rec_recommend",
                                "lbfgs_grad", "cv_epoch", "cv_evaluate"};

/* Run kind on args with no inputs and no store; returns its rc, the
 * failure text in ctx. */
static int run_kind(const char *kind, const uint8_t *args, size_t len, task_ctx_t *ctx)
{
    static Mlops__TaskAssign ta;
    mlops__task_assign__init(&ta);
    ta.job_id = "j1";
    ta.kind = (char *)kind;
    ta.args.data = (uint8_t *)args;
    ta.args.len = len;
    memset(ctx, 0, sizeof *ctx);
    ctx->ta = &ta;
    task_kind_fn fn = wk_task_kind_find(kind);
    assert_non_null(fn);
    int rc = fn(ctx);
    free(ctx->result);
    for (size_t i = 0; i < ctx->nmetrics; i++) free(ctx->mnames[i]);
    return rc;
}

static void test_garbage_args(void **state)
{
    (void)state;
    /* a tag with wire type 7 (there is none), and a field whose length
     * runs past the end of the buffer */
    static const uint8_t bad_wire[] = {0x0f, 0x01};
    static const uint8_t short_field[] = {0x0a, 0x10, 'x'};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{bad_wire, sizeof bad_wire}, {short_field, sizeof short_field}};
    for (size_t k = 0; k < sizeof s_kinds / sizeof *s_kinds; k++)
        for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
            task_ctx_t ctx;
            assert_int_equal(run_kind(s_kinds[k], bad[b].p, bad[b].n, &ctx), -1);
            assert_int_equal(ctx.retry, 0);
            char want[200];
            snprintf(want, sizeof want,
                     "%s: damaged task arguments (%zu bytes are not a mlops.tasks.", s_kinds[k],
                     bad[b].n);
            if (strncmp(ctx.err, want, strlen(want)) != 0)
                fail_msg("%s: got '%s'", s_kinds[k], ctx.err);
        }
}

/* Pack m as a task would get it, run kind on it, return the message. */
static const char *run_msg(const char *kind, const ProtobufCMessage *m, task_ctx_t *ctx)
{
    task_args_t a = {0};
    assert_int_equal(args_pack(&a, m), 0);
    assert_int_equal(run_kind(kind, a.args, a.args_len, ctx), -1);
    free(a.args);
    assert_int_equal(ctx->retry, 0);
    return ctx->err;
}

static void test_out_of_bounds(void **state)
{
    (void)state;
    task_ctx_t ctx;
    Mlops__Tasks__TrainEpochArgs te = MLOPS__TASKS__TRAIN_EPOCH_ARGS__INIT;
    te.classes = 1;
    assert_string_equal(run_msg("train_epoch", &te.base, &ctx),
                        "train: damaged task arguments (1 classes, 0 features)");

    Mlops__Tasks__LbfgsGradArgs lg = MLOPS__TASKS__LBFGS_GRAD_ARGS__INIT;
    lg.classes = 1;
    assert_string_equal(run_msg("lbfgs_grad", &lg.base, &ctx),
                        "lbfgs: damaged task arguments (1 classes, 0 features)");

    Mlops__Tasks__HashArgs h = MLOPS__TASKS__HASH_ARGS__INIT;
    h.n_features = 0x80000000u;
    assert_string_equal(run_msg("hash", &h.base, &ctx),
                        "hash: damaged task arguments (2147483648 features, 0 classes)");

    double mean[2] = {1, 2}, scale[1] = {1};
    Mlops__Tasks__ScaleApplyArgs sa = MLOPS__TASKS__SCALE_APPLY_ARGS__INIT;
    sa.n_mean = 2;
    sa.mean = mean;
    sa.n_scale = 1;
    sa.scale = scale;
    assert_string_equal(run_msg("scale_apply", &sa.base, &ctx),
                        "scale: damaged task arguments (2 means, 1 scales)");

    uint64_t counts[2] = {3, 4};
    Mlops__Tasks__TrainReduceArgs tr = MLOPS__TASKS__TRAIN_REDUCE_ARGS__INIT;
    tr.n_counts = 2;
    tr.counts = counts;
    assert_string_equal(run_msg("train_reduce", &tr.base, &ctx),
                        "train: damaged reduce arguments (2 counts for 0 inputs)");

    Mlops__Tasks__IngestIdxArgs ix = MLOPS__TASKS__INGEST_IDX_ARGS__INIT;
    ix.rows = 2;
    ix.row_len = 4;
    ix.pixels.data = (uint8_t *)"abcdefg";
    ix.pixels.len = 7;
    assert_string_equal(run_msg("ingest_idx", &ix.base, &ctx),
                        "ingest_idx: damaged task arguments (7 pixel bytes, 0 labels for 2 rows)");

    Mlops__Tasks__SplitArgs sp = MLOPS__TASKS__SPLIT_ARGS__INIT;
    sp.sklearn = 1;
    sp.count = 3;
    assert_string_equal(run_msg("split", &sp.base, &ctx),
                        "split: damaged task arguments (0 flags for 3 rows)");

    /* cv: instances without folds, a fold beyond the folds, no rows */
    Mlops__Tasks__CvRows rows = MLOPS__TASKS__CV_ROWS__INIT;
    rows.folds = 3;
    Mlops__Tasks__TrainEpochArgs cve = MLOPS__TASKS__TRAIN_EPOCH_ARGS__INIT, *cvep = &cve;
    Mlops__Tasks__CvEpochArgs ce = MLOPS__TASKS__CV_EPOCH_ARGS__INIT;
    ce.n_inst = 1;
    ce.inst = &cvep;
    ce.rows = &rows;
    assert_string_equal(run_msg("cv_epoch", &ce.base, &ctx),
                        "cv: damaged task arguments (1 instances, 0 folds)");
    uint32_t fold = 3;
    ce.n_fold = 1;
    ce.fold = &fold;
    assert_string_equal(run_msg("cv_epoch", &ce.base, &ctx), "cv: damaged task arguments (fold 3 of 3)");
    Mlops__Tasks__EvaluateArgs cva = MLOPS__TASKS__EVALUATE_ARGS__INIT, *cvap = &cva;
    Mlops__Tasks__CvEvaluateArgs cv = MLOPS__TASKS__CV_EVALUATE_ARGS__INIT;
    cv.n_inst = 1;
    cv.inst = &cvap;
    cv.n_fold = 1;
    cv.fold = &fold;
    fold = 0;
    assert_string_equal(run_msg("cv_evaluate", &cv.base, &ctx),
                        "cv: damaged task arguments (no rows' folds)");

    Mlops__Tasks__RecSearchArgs rs = MLOPS__TASKS__REC_SEARCH_ARGS__INIT;
    assert_string_equal(run_msg("rec_search", &rs.base, &ctx),
                        "rec_search: damaged task arguments (k=0, 0 users, 0 items)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_args),
        cmocka_unit_test(test_out_of_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
