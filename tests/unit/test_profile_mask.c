/* test_profile_mask.c: unit tests of profile_mask.h, the training-row
 * mask the profile kinds read from a split shard: a packed shard's test
 * flags (aligned or not) and an encoded one's give the same mask, and a
 * damaged shard is refused with a one-line message naming the shard and
 * what is wrong, not retried (an out-of-memory would be). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fpack.h"
#include "fshard.h"
#include "hasher.h"
#include "profile_mask.h"

static void ctx_init(task_ctx_t *ctx, Mlops__TaskAssign *ta, Mlops__ShardRef *in, Mlops__ShardRef **ins)
{
    mlops__task_assign__init(ta);
    mlops__shard_ref__init(in);
    in->key = "j1/split/3";
    ins[0] = in;
    ta->job_id = "j1";
    ta->n_inputs = 1;
    ta->inputs = ins;
    memset(ctx, 0, sizeof *ctx);
    ctx->ta = ta;
}

/* n rows, every 3rd a test row, one hashed column; packed or encoded. */
static uint8_t *shard(size_t n, int pack, size_t *len)
{
    mlk_features *f = mlk_features_new(n);
    assert_non_null(f);
    f->csr = mlk_csr_new(n, 16, n + 1);
    assert_non_null(f->csr);
    f->test = malloc(n + 1);
    assert_non_null(f->test);
    for (size_t i = 0; i < n; i++) {
        f->csr->indices[i] = (int32_t)(i % 16);
        f->csr->data[i] = 1.0;
        f->csr->indptr[i + 1] = (int64_t)(i + 1);
        f->row_id[i] = (int64_t)i;
        f->label[i] = (int32_t)(i % 2);
        f->test[i] = i % 3 == 2;
    }
    uint8_t *buf = NULL;
    assert_int_equal(pack ? mlk_fpack_encode(f, &buf, len) : mlk_features_encode(f, &buf, len), 0);
    mlk_features_destroy(&f);
    return buf;
}

static void check_mask(const uint8_t *train, size_t nrows, size_t n)
{
    assert_int_equal(nrows, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(train[i], i % 3 != 2);
}

static void test_mask(void **state)
{
    (void)state;
    enum { N = 50 };
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    ctx_init(&ctx, &ta, &in, ins);
    for (int pack = 0; pack <= 1; pack++) {
        size_t len, nrows;
        uint8_t *buf = shard(N, pack, &len), *train;
        assert_int_equal(wk_profile_mask(&ctx, 0, buf, len, &train, &nrows), 0);
        check_mask(train, nrows, N);
        free(train);
        uint8_t *odd = malloc(len + 1); /* misaligned: read through a copy */
        assert_non_null(odd);
        memcpy(odd + 1, buf, len);
        assert_int_equal(wk_profile_mask(&ctx, 0, odd + 1, len, &train, &nrows), 0);
        check_mask(train, nrows, N);
        free(train);
        free(odd);
        free(buf);
    }
    assert_string_equal(ctx.err, "");
}

static void test_damaged(void **state)
{
    (void)state;
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    size_t len, nrows;
    uint8_t *buf = shard(50, 1, &len), *train = (uint8_t *)"x";
    /* a packed shard cut short: its records run past the end */
    ctx_init(&ctx, &ta, &in, ins);
    assert_int_equal(wk_profile_mask(&ctx, 0, buf, len - 9, &train, &nrows), -1);
    assert_null(train);
    assert_int_equal(nrows, 0);
    assert_non_null(strstr(ctx.err, "damaged feature shard j1/split/3: "));
    assert_true(strlen(ctx.err) > strlen("damaged feature shard j1/split/3: "));
    assert_null(strchr(ctx.err, '\n'));
    assert_int_equal(ctx.retry, 0);
    /* bytes that are no feature shard at all */
    ctx_init(&ctx, &ta, &in, ins);
    memset(buf, 'z', 64);
    assert_int_equal(wk_profile_mask(&ctx, 0, buf, 64, &train, &nrows), -1);
    assert_non_null(strstr(ctx.err, "damaged feature shard j1/split/3: neither a packed nor an encoded"));
    assert_int_equal(ctx.retry, 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
