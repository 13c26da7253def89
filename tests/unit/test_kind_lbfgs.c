/* test_kind_lbfgs.c: unit tests of the worker's lbfgs_grad kind
 * (worker/kind_lbfgs.c) on a packed shard in a real store, run on an
 * executor thread's state as the worker runs it:
 *  - touched_known leaves the touched inputs out of the result and
 *    nothing else changes: the same count, loss and gradient bit for
 *    bit, touched_count the number left out;
 *  - the arguments unpacked once per thread: a second task with the same
 *    bytes, another point, and the first point again each give what a
 *    task with no thread state (unpacked afresh) gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packed_fixture.h"
#include "stages.h"
#include "store.h"
#include "task_thread.h"
#include "tasks.pb-c.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

typedef struct {
    char dir[64];
    mlops_store_t *store;
    task_thread_t *th;
} fixture_t;

/* 30 rows, every 3rd a test row: columns 0..6 and 8..12 of 16, one dense */
static void setup(fixture_t *fx)
{
    strcpy(fx->dir, "/tmp/mlops_test_kind_lbfgs_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    char err[256] = "";
    fx->store = mlops_store_open(fx->dir, 0, err, sizeof err);
    assert_non_null(fx->store);
    int32_t lab[30];
    for (size_t i = 0; i < 30; i++) lab[i] = (int32_t)(i * 7 % 3 == 1);
    size_t len;
    uint8_t *buf = packed(30, lab, 1, &len);
    assert_int_equal(mlops_store_put(fx->store, "j1/split/0", buf, len), 0);
    free(buf);
    fx->th = wk_task_thread_new(NULL);
    assert_non_null(fx->th);
}

static void teardown(fixture_t *fx)
{
    wk_task_thread_destroy(&fx->th);
    mlops_store_close(&fx->store);
    nftw(fx->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static const uint32_t ACTIVE[] = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12};
enum { NA = sizeof ACTIVE / sizeof ACTIVE[0] };

/* Run lbfgs_grad at point `scale` (weights scale * (k - 6) / 10, the
 * dense one and the intercept too; 0: no weights, the start) on
 * `thread` (NULL: none), touched_known as given; the unpacked result. */
static Mlops__Tasks__LbfgsGradResult *run(fixture_t *fx, void *thread, double scale, int known)
{
    double w[NA + 1], b = 0.25 * scale;
    for (size_t k = 0; k <= NA; k++) w[k] = scale * ((double)k - 6.0) / 10.0;
    Mlops__Tasks__LbfgsGradArgs a = MLOPS__TASKS__LBFGS_GRAD_ARGS__INIT;
    a.classes = 2;
    a.n_features = 16;
    if (scale != 0) { /* the start: no active inputs yet (the first evaluation finds them) */
        a.n_active = NA;
        a.active = (uint32_t *)ACTIVE;
        a.n_w = NA + 1;
        a.w = w;
        a.n_b = 1;
        a.b = &b;
    }
    a.touched_known = known;
    task_args_t ta_args = {0};
    assert_int_equal(args_pack(&ta_args, &a.base), 0);

    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    task_ctx_t ctx;
    ctx_init_key(&ctx, &ta, &in, ins, "j1/split/0");
    ta.kind = "lbfgs_grad";
    ta.args.data = ta_args.args;
    ta.args.len = ta_args.args_len;
    ctx.store = fx->store;
    ctx.thread = thread;
    task_kind_fn fn = wk_task_kind_find("lbfgs_grad");
    assert_non_null(fn);
    if (fn(&ctx) != 0) fail_msg("lbfgs_grad failed: %s", ctx.err);
    Mlops__Tasks__LbfgsGradResult *r = mlops__tasks__lbfgs_grad_result__unpack(NULL, ctx.result_len, ctx.result);
    assert_non_null(r);
    free(ctx.result);
    for (size_t i = 0; i < ctx.nmetrics; i++) free(ctx.mnames[i]);
    free(ta_args.args);
    return r;
}

/* a and b: the same sums, bit for bit (touched compared where both sent them) */
static void same_sums(const Mlops__Tasks__LbfgsGradResult *a, const Mlops__Tasks__LbfgsGradResult *b)
{
    assert_int_equal(a->count, b->count);
    assert_memory_equal(&a->loss, &b->loss, sizeof a->loss);
    assert_int_equal(a->touched_count, b->touched_count);
    assert_int_equal(a->n_grad, b->n_grad);
    assert_memory_equal(a->grad, b->grad, a->n_grad * sizeof *a->grad);
    assert_int_equal(a->n_grad_b, b->n_grad_b);
    assert_memory_equal(a->grad_b, b->grad_b, a->n_grad_b * sizeof *a->grad_b);
    if (a->n_touched && b->n_touched) {
        assert_int_equal(a->n_touched, b->n_touched);
        assert_memory_equal(a->touched, b->touched, a->n_touched * sizeof *a->touched);
    }
}

static void test_touched_left_out(void **state)
{
    (void)state;
    fixture_t fx;
    setup(&fx);
    for (int start = 0; start < 2; start++) {
        double scale = start ? 0.0 : 1.0;
        Mlops__Tasks__LbfgsGradResult *sent = run(&fx, fx.th, scale, 0), *left = run(&fx, fx.th, scale, 1);
        assert_int_equal(sent->n_touched, NA); /* every column has training rows */
        assert_int_equal(sent->touched_count, NA);
        assert_memory_equal(sent->touched, ACTIVE, sizeof ACTIVE);
        assert_int_equal(sent->count, 20);
        assert_int_equal(sent->n_grad, NA + 1);
        assert_int_equal(left->n_touched, 0);
        assert_int_equal(left->touched_count, NA);
        same_sums(sent, left);
        mlops__tasks__lbfgs_grad_result__free_unpacked(sent, NULL);
        mlops__tasks__lbfgs_grad_result__free_unpacked(left, NULL);
    }
    teardown(&fx);
}

static void test_args_kept_per_thread(void **state)
{
    (void)state;
    fixture_t fx;
    setup(&fx);
    const double points[] = {1.0, 1.0, -2.5, 1.0, 0.0, -2.5};
    Mlops__Tasks__LbfgsGradResult *first = NULL;
    for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
        Mlops__Tasks__LbfgsGradResult *kept = run(&fx, fx.th, points[k], 0), *fresh = run(&fx, NULL, points[k], 0);
        same_sums(kept, fresh);
        if (k == 0) first = kept;
        else if (points[k] != points[0]) {
            /* another point: other sums (the kept arguments were not reused) */
            assert_memory_not_equal(kept->grad, first->grad, kept->n_grad * sizeof *kept->grad);
        }
        if (kept != first) mlops__tasks__lbfgs_grad_result__free_unpacked(kept, NULL);
        mlops__tasks__lbfgs_grad_result__free_unpacked(fresh, NULL);
    }
    mlops__tasks__lbfgs_grad_result__free_unpacked(first, NULL);
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_touched_left_out),
        cmocka_unit_test(test_args_kept_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
