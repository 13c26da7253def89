/* packed_fixture.h: what the packed-shard unit tests (test_packed_input.c,
 * test_packed_cache.c) build their cases from: a task context reading one
 * input, and a small packed shard. Included by one test file each. */
#ifndef MLOPS_TEST_PACKED_FIXTURE_H
#define MLOPS_TEST_PACKED_FIXTURE_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fpack.h"
#include "hasher.h"
#include "task.h"

/* A context whose task reads one input, shard key `key`. */
static void ctx_init_key(task_ctx_t *ctx, Mlops__TaskAssign *ta, Mlops__ShardRef *in, Mlops__ShardRef **ins,
                         const char *key)
{
    mlops__task_assign__init(ta);
    mlops__shard_ref__init(in);
    in->key = (char *)key;
    ins[0] = in;
    ta->job_id = "j1";
    ta->n_inputs = 1;
    ta->inputs = ins;
    memset(ctx, 0, sizeof *ctx);
    ctx->ta = ta;
}

/* n rows with labels lab[] (every 3rd a test row when test), two hashed
 * columns and one dense value each, packed. */
static uint8_t *packed(size_t n, const int32_t *lab, int test, size_t *len)
{
    mlk_features *f = mlk_features_new(n);
    assert_non_null(f);
    f->csr = mlk_csr_new(n, 16, 2 * n + 1);
    assert_non_null(f->csr);
    f->n_dense = 1;
    f->dense64 = malloc(n * sizeof(double) + 8);
    assert_non_null(f->dense64);
    if (test) {
        f->test = malloc(n + 1);
        assert_non_null(f->test);
    }
    for (size_t i = 0; i < n; i++) {
        f->csr->indices[2 * i] = (int32_t)(i % 7);
        f->csr->indices[2 * i + 1] = (int32_t)(8 + i % 5);
        f->csr->data[2 * i] = 1.0;
        f->csr->data[2 * i + 1] = -0.5 * (double)i;
        f->csr->indptr[i + 1] = (int64_t)(2 * i + 2);
        f->dense64[i] = (double)i / 3.0;
        f->row_id[i] = (int64_t)(100 + i);
        f->label[i] = lab[i];
        if (test) f->test[i] = i % 3 == 2;
    }
    uint8_t *buf = NULL;
    assert_int_equal(mlk_fpack_encode(f, &buf, len), 0);
    mlk_features_destroy(&f);
    return buf;
}

#endif
