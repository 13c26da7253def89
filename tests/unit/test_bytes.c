/* test_bytes.c: unit tests of the binary writer/reader (bytes.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bytes.h"

/* Every value read back as written, strings and blobs included. */
static void test_round_trip(void **state)
{
    (void)state;
    bw_t w;
    bw_init(&w);
    bw_u32(&w, 7);
    bw_str(&w, "alpha");
    bw_u64(&w, UINT64_C(1) << 40);
    bw_f64(&w, -2.5);
    bw_blob(&w, "xyz", 3);
    size_t len;
    uint8_t *buf = bw_take(&w, &len);
    assert_non_null(buf);
    br_t r;
    br_init(&r, buf, len);
    assert_int_equal(br_u32(&r), 7);
    char *s = br_str(&r);
    assert_string_equal(s, "alpha");
    free(s);
    assert_true(br_u64(&r) == UINT64_C(1) << 40);
    assert_true(br_f64(&r) == -2.5);
    size_t bl;
    const uint8_t *b = br_blob(&r, &bl);
    assert_int_equal(bl, 3);
    assert_memory_equal(b, "xyz", 3);
    assert_true(br_done(&r));
    free(buf);
}

/* br_skip_str lands where br_str does, on empty and long strings alike,
 * and a length past the buffer's end sets err instead of moving on. */
static void test_skip_str(void **state)
{
    (void)state;
    const char *strs[] = {"", "a", "user_12345", "a longer name with spaces and more bytes than the others"};
    const size_t ns = sizeof strs / sizeof *strs;
    bw_t w;
    bw_init(&w);
    for (size_t i = 0; i < ns; i++) bw_str(&w, strs[i]);
    bw_u32(&w, 0xfeedu);
    size_t len;
    uint8_t *buf = bw_take(&w, &len);
    assert_non_null(buf);
    for (size_t skip = 0; skip <= ns; skip++) {
        br_t a, b;
        br_init(&a, buf, len);
        br_init(&b, buf, len);
        for (size_t i = 0; i < skip; i++) {
            br_skip_str(&a);
            free(br_str(&b));
        }
        assert_int_equal(a.err, 0);
        assert_int_equal(a.at, b.at);
        if (skip == ns) assert_int_equal(br_u32(&a), 0xfeedu);
        else {
            char *s = br_str(&a);
            assert_string_equal(s, strs[skip]);
            free(s);
        }
    }
    /* cut inside the last string's bytes, then inside its length */
    size_t last = 4 + strlen(strs[ns - 1]);
    br_t r;
    br_init(&r, buf, len - 4 - last + 4 + 10);
    for (size_t i = 0; i < ns - 1; i++) br_skip_str(&r);
    assert_int_equal(r.err, 0);
    br_skip_str(&r);
    assert_int_equal(r.err, 1);
    br_init(&r, buf, 2);
    br_skip_str(&r);
    assert_int_equal(r.err, 1);
    /* a damaged length (larger than what is left) */
    uint8_t bad[8] = {0xff, 0xff, 0xff, 0x7f, 'a', 'b', 'c', 'd'};
    br_init(&r, bad, sizeof bad);
    br_skip_str(&r);
    assert_int_equal(r.err, 1);
    /* once err is set, nothing moves */
    br_init(&r, buf, len);
    r.err = 1;
    br_skip_str(&r);
    assert_int_equal(r.at, 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_skip_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
