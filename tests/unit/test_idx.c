/* test_idx.c: the IDX reader on hand-made files (plain and gzip), row
 * ranges, and truncated / garbage / lying files, which must give a clear
 * error naming the file and never crash. Uses the real Fashion-MNIST
 * files when Debian's dataset package is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "err.h"
#include "idx.h"

static char tmpdir[256];

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void write_plain(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *path, const unsigned char *b, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, b, (unsigned)n), (int)n);
    gzclose(g);
}

/* A 3-image 2x3 idx3 file: pixel (i, j) = 10*i + j. */
static size_t make_images(unsigned char *b)
{
    unsigned char h[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3};
    memcpy(b, h, sizeof h);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++)
            b[sizeof h + 6 * i + j] = (unsigned char)(10 * i + j);
    return sizeof h + 18;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mlops_test_idx_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void check_images(const char *path)
{
    float *x = NULL;
    size_t n = 0;
    mlk_idx_header h;
    char err[256] = "";
    assert_int_equal(mlk_idx_read_f32(path, 0, SIZE_MAX, &x, &n, &h, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(h.ndim, 3);
    assert_int_equal(h.row_len, 6);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++)
            assert_true(x[6 * i + j] == (float)(10 * i + j));
    free(x);
    /* the row range [1, 3) */
    assert_int_equal(mlk_idx_read_f32(path, 1, 2, &x, &n, NULL, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_true(x[0] == 10.0f && x[11] == 25.0f);
    free(x);
    /* empty range at the end is fine, past the end is not */
    assert_int_equal(mlk_idx_read_f32(path, 3, 0, &x, &n, NULL, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(x);
    assert_int_equal(mlk_idx_read_f32(path, 2, 2, &x, &n, NULL, err, sizeof err), MLOPS_EINVAL);
    assert_null(x);
    assert_non_null(strstr(err, path));
}

static void test_plain_and_gzip(void **state)
{
    (void)state;
    unsigned char b[64];
    size_t n = make_images(b);
    char p[300];
    path_of(p, sizeof p, "img.idx3");
    write_plain(p, b, n);
    check_images(p);
    path_of(p, sizeof p, "img.idx3.gz");
    write_gz(p, b, n);
    check_images(p);
}

static void test_labels(void **state)
{
    (void)state;
    unsigned char b[] = {0, 0, 8, 1, 0, 0, 0, 4, 9, 0, 3, 255};
    char p[300];
    path_of(p, sizeof p, "lab.idx1.gz");
    write_gz(p, b, sizeof b);
    int32_t *y = NULL;
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(mlk_idx_read_labels(p, 0, SIZE_MAX, &y, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(y[0], 9);
    assert_int_equal(y[3], 255);
    free(y);
    /* an image file is not a label file */
    unsigned char im[64];
    size_t m = make_images(im);
    path_of(p, sizeof p, "img_as_labels.gz");
    write_gz(p, im, m);
    assert_int_equal(mlk_idx_read_labels(p, 0, SIZE_MAX, &y, &n, err, sizeof err), MLOPS_EPARSE);
    assert_non_null(strstr(err, "label"));
}

/* Each bad file must fail with EPARSE and a message naming the file. */
static void expect_parse_error(const char *name, const unsigned char *b, size_t n, int gz,
                               const char *needle)
{
    char p[300];
    path_of(p, sizeof p, name);
    if (gz)
        write_gz(p, b, n);
    else
        write_plain(p, b, n);
    float *x = (float *)0x1;
    size_t rows = 7;
    char err[256] = "";
    int rc = mlk_idx_read_f32(p, 0, SIZE_MAX, &x, &rows, NULL, err, sizeof err);
    assert_int_equal(rc, MLOPS_EPARSE);
    assert_null(x);
    assert_int_equal(rows, 0);
    assert_non_null(strstr(err, p));
    if (needle && !strstr(err, needle)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
        fail();
    }
}

static void test_bad_files(void **state)
{
    (void)state;
    unsigned char b[64];
    size_t n = make_images(b);
    for (int gz = 0; gz <= 1; gz++) {
        expect_parse_error(gz ? "trunc_data.gz" : "trunc_data", b, n - 5, gz, "truncated");
        expect_parse_error(gz ? "trunc_hdr.gz" : "trunc_hdr", b, 9, gz, "truncated");
        expect_parse_error(gz ? "empty.gz" : "empty", b, 0, gz, "truncated");
        unsigned char extra[80];
        memcpy(extra, b, n);
        extra[n] = 1;
        expect_parse_error(gz ? "extra.gz" : "extra", extra, n + 1, gz, "after the last row");
    }
    const unsigned char garbage[] = "hello, this is not an idx file at all";
    expect_parse_error("garbage", garbage, sizeof garbage, 0, "not an IDX file");
    unsigned char badtype[64];
    memcpy(badtype, b, n);
    badtype[2] = 0x0D; /* float data: not supported */
    expect_parse_error("badtype", badtype, n, 0, "not supported");
    unsigned char baddims[64];
    memcpy(baddims, b, n);
    baddims[3] = 9;
    expect_parse_error("baddims", baddims, n, 0, "dimension count");
    /* a header claiming 2^32-1 rows of 2^32-1 bytes: must not allocate it */
    unsigned char huge[] = {0, 0, 8, 2, 255, 255, 255, 255, 255, 255, 255, 255, 1, 2, 3};
    expect_parse_error("huge", huge, sizeof huge, 0, NULL);
    /* a plausible header that lies: 100000 rows announced, 3 present */
    unsigned char liar[64];
    memcpy(liar, b, n);
    liar[5] = 1; liar[6] = 0x86; liar[7] = 0xA0;
    expect_parse_error("liar.gz", liar, n, 1, "truncated");
    /* a corrupt gzip stream (valid gzip magic, garbage afterwards) */
    char p[300];
    path_of(p, sizeof p, "img.gz");
    write_gz(p, b, n);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 12, SEEK_SET);
    unsigned char junk[8] = {0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8};
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    float *x = NULL;
    size_t rows = 0;
    char err[256] = "";
    int rc = mlk_idx_read_f32(p, 0, SIZE_MAX, &x, &rows, NULL, err, sizeof err);
    assert_true(rc < 0);
    assert_null(x);
    assert_non_null(strstr(err, p));
    /* missing file */
    path_of(p, sizeof p, "does_not_exist.gz");
    rc = mlk_idx_read_f32(p, 0, SIZE_MAX, &x, &rows, NULL, err, sizeof err);
    assert_int_equal(rc, MLOPS_ENOTFOUND);
    assert_non_null(strstr(err, p));
}

static void test_shard_range(void **state)
{
    (void)state;
    size_t b, c, total = 0;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(mlk_idx_shard_range(10, 4, i, &b, &c), 0);
        assert_int_equal(b, total);
        total += c;
    }
    assert_int_equal(total, 10);
    assert_int_equal(mlk_idx_shard_range(10, 4, 3, &b, &c), 0);
    assert_int_equal(b, 9);
    assert_int_equal(c, 1);
    assert_int_equal(mlk_idx_shard_range(2, 4, 3, &b, &c), 0);
    assert_int_equal(c, 0);
    assert_int_equal(mlk_idx_shard_range(10, 0, 0, &b, &c), MLOPS_EINVAL);
    assert_int_equal(mlk_idx_shard_range(10, 2, 2, &b, &c), MLOPS_EINVAL);
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    const char *lp = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    const char *ip = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (access(lp, R_OK) != 0 || access(ip, R_OK) != 0)
        skip();
    int32_t *y = NULL;
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(mlk_idx_read_labels(lp, 0, SIZE_MAX, &y, &n, err, sizeof err), 0);
    assert_int_equal(n, 10000);
    int count[10] = {0};
    for (size_t i = 0; i < n; i++) {
        assert_true(y[i] >= 0 && y[i] < 10);
        count[y[i]]++;
    }
    for (int c = 0; c < 10; c++)
        assert_int_equal(count[c], 1000); /* the test set is balanced */
    free(y);
    float *x = NULL, *part = NULL;
    mlk_idx_header h;
    assert_int_equal(mlk_idx_read_f32(ip, 0, SIZE_MAX, &x, &n, &h, err, sizeof err), 0);
    assert_int_equal(n, 10000);
    assert_int_equal(h.row_len, 784);
    assert_int_equal(mlk_idx_read_f32(ip, 4321, 100, &part, &n, NULL, err, sizeof err), 0);
    assert_memory_equal(part, x + 4321 * 784, 100 * 784 * sizeof(float));
    free(part);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_gzip), cmocka_unit_test(test_labels),
        cmocka_unit_test(test_bad_files),      cmocka_unit_test(test_shard_range),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
