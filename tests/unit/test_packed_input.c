/* test_packed_input.c: unit tests of packed_input.h, a task's packed
 * feature shard. wk_packed_open gives the same record offsets from an
 * aligned buffer and from a misaligned one (read through its copy),
 * reads a large shard's records from its huge-page copy for a shuffled
 * epoch (a small one's where they lie), and refuses a
 * damaged shard with a one-line message naming the shard;
 * wk_packed_check_labels names the first training row without a class
 * label and ignores test rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fpack.h"
#include "hasher.h"
#include "packed_fixture.h"
#include "packed_input.h"

/* A context whose task reads one input, shard key "j1/hash/0". */
static void ctx_init(task_ctx_t *ctx, Mlops__TaskAssign *ta, Mlops__ShardRef *in, Mlops__ShardRef **ins)
{
    ctx_init_key(ctx, ta, in, ins, "j1/hash/0");
}

static void test_open_aligned_and_not(void **state)
{
    (void)state;
    enum { N = 40 };
    int32_t lab[N];
    for (size_t i = 0; i < N; i++) lab[i] = (int32_t)(i % 2);
    size_t len;
    uint8_t *buf = packed(N, lab, 1, &len);
    uint8_t *odd = malloc(len + 1); /* the same bytes at an odd address */
    assert_non_null(odd);
    memcpy(odd + 1, buf, len);
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    ctx_init(&ctx, &ta, &in, ins);
    mlk_fpack p, q;
    size_t *off, *off2;
    uint8_t *copy, *recs, *copy2, *recs2;
    assert_int_equal(wk_packed_open(&ctx, 0, buf, len, 0, &p, &off, &copy, &recs), 0);
    assert_null(copy);
    assert_null(recs);
    assert_int_equal(p.nrows, N);
    assert_int_equal(wk_packed_open(&ctx, 0, odd + 1, len, 1, &q, &off2, &copy2, &recs2), 0);
    assert_non_null(copy2);
    assert_int_equal(q.nrows, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(off[i], off2[i]);
        assert_int_equal(p.row_id[i], 100 + (int64_t)i);
        int32_t a, b;
        memcpy(&a, p.recs + off[i], 4);
        memcpy(&b, q.recs + off2[i], 4);
        assert_int_equal(a, lab[i]);
        assert_int_equal(b, lab[i]);
    }
    assert_int_equal(wk_packed_check_labels(&ctx, &p, off, 2), 0);
    free(off);
    free(copy);
    free(recs);
    free(off2);
    free(copy2);
    free(recs2);
    free(odd);
    free(buf);
}

static void test_recs_copy(void **state)
{
    (void)state;
    enum { N = 200000 }; /* records past MLK_FPACK_COPY_MIN */
    int32_t *lab = malloc(N * sizeof *lab);
    assert_non_null(lab);
    for (size_t i = 0; i < N; i++) lab[i] = (int32_t)(i % 3 == 0);
    size_t len;
    uint8_t *buf = packed(N, lab, 0, &len);
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    ctx_init(&ctx, &ta, &in, ins);
    mlk_fpack p;
    size_t *off;
    uint8_t *copy, *recs;
    assert_int_equal(wk_packed_open(&ctx, 0, buf, len, 1, &p, &off, &copy, &recs), 0);
    assert_true(p.rec_bytes >= MLK_FPACK_COPY_MIN);
    assert_non_null(recs);
    assert_ptr_equal(p.recs, recs);
    for (size_t i = 0; i < N; i += 997) {
        int32_t a;
        memcpy(&a, p.recs + off[i], 4);
        assert_int_equal(a, lab[i]);
    }
    lab[N - 1] = 5; /* the last row: a pass over every record finds it */
    free(off);
    free(copy);
    free(recs);
    free(buf);
    buf = packed(N, lab, 0, &len);
    assert_int_equal(wk_packed_open(&ctx, 0, buf, len, 1, &p, &off, &copy, &recs), 0);
    assert_int_equal(wk_packed_check_labels(&ctx, &p, off, 2), -1);
    assert_string_equal(ctx.err, "train: row 200099 has no class label");
    free(off);
    free(copy);
    free(recs);
    free(buf);
    free(lab);
}

static void test_damaged(void **state)
{
    (void)state;
    int32_t lab[4] = {0, 1, 0, 1};
    size_t len;
    uint8_t *buf = packed(4, lab, 0, &len);
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    ctx_init(&ctx, &ta, &in, ins);
    mlk_fpack p;
    size_t *off;
    uint8_t *copy, *recs;
    assert_int_equal(wk_packed_open(&ctx, 0, buf, len / 2, 0, &p, &off, &copy, &recs), -1);
    assert_int_equal(strncmp(ctx.err, "damaged feature shard j1/hash/0: ", 33), 0);
    assert_null(strchr(ctx.err, '\n'));
    assert_int_equal(ctx.retry, 0);
    free(off);
    free(copy);
    free(recs);
    free(buf);
}

static void test_labels(void **state)
{
    (void)state;
    enum { N = 9 };
    /* rows 2, 5 and 8 are test rows: their labels are not checked */
    int32_t lab[N] = {0, 1, -1, 1, 0, 7, 1, 2, -1};
    size_t len;
    uint8_t *buf = packed(N, lab, 1, &len);
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    ctx_init(&ctx, &ta, &in, ins);
    mlk_fpack p;
    size_t *off;
    uint8_t *copy, *recs;
    assert_int_equal(wk_packed_open(&ctx, 0, buf, len, 0, &p, &off, &copy, &recs), 0);
    assert_int_equal(wk_packed_check_labels(&ctx, &p, off, 3), 0); /* training labels 0..2 */
    assert_int_equal(wk_packed_check_labels(&ctx, &p, off, 2), -1); /* row 7 (id 107) has label 2 */
    assert_string_equal(ctx.err, "train: row 107 has no class label");
    free(off);
    free(copy);
    free(recs);
    free(buf);
    /* without test flags every row is a training row: row 2 (id 102) */
    buf = packed(N, lab, 0, &len);
    ctx_init(&ctx, &ta, &in, ins);
    assert_int_equal(wk_packed_open(&ctx, 0, buf, len, 0, &p, &off, &copy, &recs), 0);
    assert_int_equal(wk_packed_check_labels(&ctx, &p, off, 8), -1);
    assert_string_equal(ctx.err, "train: row 102 has no class label");
    free(off);
    free(copy);
    free(recs);
    free(buf);
}

/* wk_packed_take: the offsets and the huge-page copy come from the
 * thread's buffers, the same ones task after task (grown to the larger
 * shard), a second shard open at once gets its own; the records and
 * offsets are wk_packed_open's; a damaged shard is refused the same. */
static void test_take_reuses(void **state)
{
    (void)state;
    enum { N = 200000 }; /* records past MLK_FPACK_COPY_MIN */
    int32_t *lab = malloc(N * sizeof *lab);
    assert_non_null(lab);
    for (size_t i = 0; i < N; i++) lab[i] = (int32_t)(i % 3 == 0);
    size_t len, slen;
    uint8_t *big = packed(N, lab, 0, &len), *small = packed(50, lab, 1, &slen);
    task_ctx_t ctx;
    Mlops__TaskAssign ta;
    Mlops__ShardRef in, *ins[1];
    ctx_init(&ctx, &ta, &in, ins);
    mlk_fpack p;
    size_t *off;
    uint8_t *copy, *recs;
    assert_int_equal(wk_packed_open(&ctx, 0, big, len, 1, &p, &off, &copy, &recs), 0);
    wk_packed_t a, b, c;
    assert_int_equal(wk_packed_take(&ctx, 0, big, len, 1, &a), 0);
    assert_int_equal(a.fresh_off, 0);
    assert_int_equal(a.fresh_recs, 0);
    assert_ptr_equal(a.p.recs, a.recs);
    assert_int_equal(a.p.nrows, N);
    assert_memory_equal(a.off, off, N * sizeof *off);
    assert_memory_equal(a.p.recs, recs, p.rec_bytes);
    size_t *off1 = a.off;
    uint8_t *recs1 = a.recs;
    /* a second shard while the first is open: its own buffers */
    assert_int_equal(wk_packed_take(&ctx, 0, small, slen, 1, &b), 0);
    assert_int_equal(b.fresh_off, 1);
    assert_true(b.off != off1);
    assert_null(b.recs); /* small: read in place */
    wk_packed_release(&b);
    wk_packed_release(&a);
    assert_null(a.off);
    /* the next task: the same buffers, the small shard in them too */
    assert_int_equal(wk_packed_take(&ctx, 0, small, slen, 0, &c), 0);
    assert_ptr_equal(c.off, off1);
    assert_int_equal(wk_packed_check_labels(&ctx, &c.p, c.off, 2), 0);
    wk_packed_release(&c);
    assert_int_equal(wk_packed_take(&ctx, 0, big, len, 1, &c), 0);
    assert_ptr_equal(c.off, off1);
    assert_ptr_equal(c.recs, recs1);
    assert_memory_equal(c.off, off, N * sizeof *off);
    wk_packed_release(&c);
    /* damaged: refused, named, the buffers given back */
    assert_int_equal(wk_packed_take(&ctx, 0, big, len / 2, 1, &c), -1);
    assert_int_equal(strncmp(ctx.err, "damaged feature shard j1/hash/0: ", 33), 0);
    wk_packed_release(&c);
    assert_int_equal(wk_packed_take(&ctx, 0, small, slen, 0, &c), 0);
    assert_ptr_equal(c.off, off1);
    wk_packed_release(&c);
    wk_packed_pool_free();
    free(off);
    free(copy);
    free(recs);
    free(big);
    free(small);
    free(lab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_aligned_and_not),
        cmocka_unit_test(test_recs_copy),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_take_reuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
