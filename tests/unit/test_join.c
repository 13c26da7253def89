/* test_join.c: the join kernel (common/kernels/join.h) on small frames
 * whose pandas merge is known: left order kept, duplicate right keys
 * multiplying rows in the right table's order, missing keys, inner,
 * numeric keys matched by value, NaN matching NaN, validate
 * many_to_one's message; and the shuffle's partition + gather giving
 * the broadcast join's rows exactly. (The same against pandas itself, at
 * test time: tests/integration/test_join.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "frame.h"
#include "join.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a frame of string column k (NULL = missing) and number column v */
static mlk_frame *kv(const char *kname, const char *vname, mlk_coltype vt, const char *const *keys,
                     const char *const *vals, size_t n)
{
    const char *names[2] = {kname, vname};
    mlk_coltype types[2] = {MLK_STR, vt};
    mlk_frame *f = mlk_frame_new(2, names, types, n ? n : 1);
    assert_non_null(f);
    assert_int_equal(mlk_frame_reserve(f, n ? n : 1), 0);
    for (size_t r = 0; r < n; r++) {
        const char *k = keys[r] ? keys[r] : "";
        assert_int_equal(mlk_frame_str_push(f, 0, r, k, strlen(k), keys[r] == NULL), 0);
        if (vt == MLK_F64) f->cols[1].f64[r] = vals[r] ? atof(vals[r]) : NAN;
        else assert_int_equal(mlk_frame_str_push(f, 1, r, vals[r] ? vals[r] : "", vals[r] ? strlen(vals[r]) : 0, vals[r] == NULL), 0);
        f->row_id[r] = (int64_t)r;
        f->nrows = r + 1;
    }
    return f;
}

/* row r of f as "key|value|row_id" */
static void row_str(const mlk_frame *f, size_t r, char *buf, size_t n)
{
    size_t o = 0;
    for (size_t c = 0; c < f->ncols; c++) {
        const mlk_col *col = &f->cols[c];
        if (col->type == MLK_F64) o += (size_t)snprintf(buf + o, n - o, "%g|", col->f64[r]);
        else if (col->missing[r]) o += (size_t)snprintf(buf + o, n - o, "NA|");
        else {
            size_t len;
            const char *s = mlk_str_at(col, r, &len);
            o += (size_t)snprintf(buf + o, n - o, "%.*s|", (int)len, s);
        }
    }
    snprintf(buf + o, n - o, "%lld", (long long)f->row_id[r]);
}

static void expect_rows(const mlk_frame *f, const char *const *want, size_t n)
{
    char buf[256];
    assert_int_equal(f->nrows, n);
    for (size_t r = 0; r < n; r++) {
        row_str(f, r, buf, sizeof buf);
        assert_string_equal(buf, want[r]);
    }
}

static const char *LK[] = {"b", "a", "b", "c", "a", NULL};
static const char *LV[] = {"0", "1", "2", "3", "4", "5"};
static const char *RK[] = {"a", "b", "a", NULL};
static const char *RV[] = {"x", "y", "z", "n"};

/* pandas: l.merge(r, on="k", how="left") for these frames */
static void test_left_duplicates_missing(void **state)
{
    (void)state;
    mlk_frame *l = kv("k", "v", MLK_F64, LK, LV, 6), *r = kv("k", "w", MLK_STR, RK, RV, 4), *o = NULL;
    mlk_join_table *t = NULL;
    char err[256];
    const mlk_frame *rs[1] = {r};
    assert_int_equal(mlk_join_table_new(rs, 1, 0, 0, &t, err, sizeof err), 0);
    assert_int_equal(mlk_join_table_rows(t), 4);
    int num = -1;
    assert_int_equal(mlk_join_apply(l, 0, t, 0, &o, &num), 0);
    static const char *want[] = {"b|0|y|0", "a|1|x|1", "a|1|z|1", "b|2|y|2", "c|3|NA|3",
                                 "a|4|x|4", "a|4|z|4", "NA|5|n|5"};
    expect_rows(o, want, 8);
    assert_int_equal(num, 0);
    mlk_frame_destroy(&o);
    /* inner: the unmatched c row goes; the left order stays */
    assert_int_equal(mlk_join_apply(l, 0, t, 1, &o, &num), 0);
    static const char *inner[] = {"b|0|y|0", "a|1|x|1", "a|1|z|1", "b|2|y|2",
                                  "a|4|x|4", "a|4|z|4", "NA|5|n|5"};
    expect_rows(o, inner, 7);
    mlk_frame_destroy(&o);
    mlk_join_table_destroy(&t);
    /* many_to_one names the first key seen twice */
    assert_int_equal(mlk_join_table_new(rs, 1, 0, 1, &t, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "key 'a' appears more than once");
    assert_null(t);
    mlk_join_table_destroy(&t);
    mlk_frame_destroy(&l);
    mlk_frame_destroy(&r);
}

/* numeric keys compare by value: "7" matches "7.0" and "7e0"; a text
 * key makes the left side non-numeric */
static void test_numeric_keys(void **state)
{
    (void)state;
    static const char *lk[] = {"7", "8", "07", "x"}, *lv[] = {"1", "2", "3", "4"};
    static const char *rk[] = {"7.0", "8e0"}, *rv[] = {"s", "e"};
    mlk_frame *l = kv("k", "v", MLK_F64, lk, lv, 4), *r = kv("k", "w", MLK_STR, rk, rv, 2), *o = NULL;
    assert_int_equal(mlk_join_keys_numeric(&r->cols[0], r->nrows), 1);
    assert_int_equal(mlk_join_keys_numeric(&l->cols[0], l->nrows), 0);
    mlk_join_table *t = NULL;
    char err[256];
    const mlk_frame *rs[1] = {r};
    assert_int_equal(mlk_join_table_new(rs, 1, 1, 1, &t, err, sizeof err), 0);
    int num = -1;
    assert_int_equal(mlk_join_apply(l, 0, t, 0, &o, &num), 0);
    static const char *want[] = {"7|1|s|0", "8|2|e|1", "07|3|s|2", "x|4|NA|3"};
    expect_rows(o, want, 4);
    assert_int_equal(num, 0);
    mlk_frame_destroy(&o);
    mlk_join_table_destroy(&t);
    mlk_frame_destroy(&l);
    mlk_frame_destroy(&r);
}

/* keys longer than a hash slot holds inline match as short ones do */
static void test_long_keys(void **state)
{
    (void)state;
    static const char *lk[] = {"a-key-much-longer-than-twenty-four-bytes-1", "short",
                               "a-key-much-longer-than-twenty-four-bytes-2", "nope-this-one-is-long-too-xxxxx"};
    static const char *lv[] = {"1", "2", "3", "4"};
    static const char *rk[] = {"a-key-much-longer-than-twenty-four-bytes-2", "short",
                               "a-key-much-longer-than-twenty-four-bytes-1"};
    static const char *rv[] = {"two", "s", "one"};
    mlk_frame *l = kv("k", "v", MLK_F64, lk, lv, 4), *r = kv("k", "w", MLK_STR, rk, rv, 3), *o = NULL;
    mlk_join_table *t = NULL;
    char err[256];
    const mlk_frame *rs[1] = {r};
    assert_int_equal(mlk_join_table_new(rs, 1, 0, 1, &t, err, sizeof err), 0);
    int num = -1;
    assert_int_equal(mlk_join_apply(l, 0, t, 1, &o, &num), 0);
    static const char *want[] = {"a-key-much-longer-than-twenty-four-bytes-1|1|one|0", "short|2|s|1",
                                 "a-key-much-longer-than-twenty-four-bytes-2|3|two|2"};
    expect_rows(o, want, 3);
    mlk_frame_destroy(&o);
    mlk_join_table_destroy(&t);
    mlk_frame_destroy(&l);
    mlk_frame_destroy(&r);
}

/* the shuffle's partitions, joined alone and gathered, are the broadcast
 * join row for row, for any partition count */
static void test_partition_gather(void **state)
{
    (void)state;
    enum { N = 500, M = 40 };
    char *lk[N], *lv[N], *rk[M + 10], *rv[M + 10];
    for (size_t i = 0; i < N; i++) {
        lk[i] = malloc(16);
        lv[i] = malloc(16);
        snprintf(lk[i], 16, "k%zu", (i * 7919) % (M + 5));
        snprintf(lv[i], 16, "%zu", i);
    }
    for (size_t i = 0; i < M + 10; i++) {
        rk[i] = malloc(16);
        rv[i] = malloc(16);
        snprintf(rk[i], 16, "k%zu", i % M);
        snprintf(rv[i], 16, "r%zu", i);
    }
    mlk_frame *l = kv("k", "v", MLK_F64, (const char *const *)lk, (const char *const *)lv, N);
    mlk_frame *r = kv("k", "w", MLK_STR, (const char *const *)rk, (const char *const *)rv, M + 10);
    char err[256];
    mlk_join_table *t = NULL;
    const mlk_frame *rs[1] = {r};
    assert_int_equal(mlk_join_table_new(rs, 1, 0, 0, &t, err, sizeof err), 0);
    mlk_frame *want = NULL;
    int num;
    assert_int_equal(mlk_join_apply(l, 0, t, 0, &want, &num), 0);
    assert_true(want->nrows > N);
    mlk_join_table_destroy(&t);
    for (uint32_t P = 1; P <= 7; P += 3) {
        mlk_frame *joined[7] = {0};
        for (uint32_t p = 0; p < P; p++) {
            mlk_frame *lp = NULL, *rp = NULL;
            assert_int_equal(mlk_join_partition(l, 0, 0, P, p, &lp), 0);
            assert_int_equal(mlk_join_partition(r, 0, 0, P, p, &rp), 0);
            const mlk_frame *rps[1] = {rp};
            assert_int_equal(mlk_join_table_new(rps, 1, 0, 0, &t, err, sizeof err), 0);
            assert_int_equal(mlk_join_apply(lp, 0, t, 0, &joined[p], &num), 0);
            mlk_join_table_destroy(&t);
            mlk_frame_destroy(&lp);
            mlk_frame_destroy(&rp);
        }
        mlk_frame *g = NULL;
        assert_int_equal(mlk_join_gather((const mlk_frame *const *)joined, P, &g), 0);
        uint8_t *a, *b;
        size_t al, bl;
        assert_int_equal(mlk_frame_encode(want, &a, &al), 0);
        assert_int_equal(mlk_frame_encode(g, &b, &bl), 0);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
        free(a);
        free(b);
        mlk_frame_destroy(&g);
        for (uint32_t p = 0; p < P; p++) mlk_frame_destroy(&joined[p]);
    }
    mlk_frame_destroy(&want);
    assert_int_equal(mlk_join_partition(l, 0, 0, 0, 0, &want), MLOPS_EINVAL);
    assert_null(want);
    mlk_frame_destroy(&l);
    mlk_frame_destroy(&r);
    for (size_t i = 0; i < N; i++) {
        free(lk[i]);
        free(lv[i]);
    }
    for (size_t i = 0; i < M + 10; i++) {
        free(rk[i]);
        free(rv[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_left_duplicates_missing),
        cmocka_unit_test(test_numeric_keys),
        cmocka_unit_test(test_long_keys),
        cmocka_unit_test(test_partition_gather),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
