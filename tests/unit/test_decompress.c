/* test_decompress.c: the compressed-input reader (common/decompress.h).
 * Data is compressed here with zlib and libzstd themselves, then read
 * back: plain, gzip (two concatenated members) and zstd round trips of
 * several MiB; a gzip stream corrupt in the middle (the message names the
 * file and a byte offset inside the damaged range); truncated gzip and
 * zstd streams; an empty compressed file; and no output file left behind
 * by a failure. */
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
#include <zstd.h>

#include "decompress.h"
#include "err.h"

#define N (3u << 20)

static char dir[] = "/tmp/test_decompress.XXXXXX";
static unsigned char *plain;

static void put(const char *name, const void *d, size_t n)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

static char *path(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* one gzip member of src */
static size_t gz(const unsigned char *src, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)src;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

static void check_same(const char *file)
{
    FILE *f = fopen(path(file), "rb");
    assert_non_null(f);
    unsigned char *b = malloc(N + 1);
    assert_int_equal(fread(b, 1, N + 1, f), N);
    fclose(f);
    assert_memory_equal(b, plain, N);
    free(b);
}

static void test_round_trips(void **st)
{
    (void)st;
    char err[256];
    put("p.csv", plain, N);
    assert_int_equal(mlops_decompress_file(path("p.csv"), "p.csv", MLOPS_COMP_NONE, path("p.out"), err,
                                           sizeof err), 0);
    check_same("p.out");

    unsigned char *c = malloc(2 * N);
    size_t a = gz(plain, N / 3, c, 2 * N);
    size_t b = gz(plain + N / 3, N - N / 3, c + a, 2 * N - a);
    put("g.csv.gz", c, a + b);
    assert_int_equal(mlops_decompress_kind("g.csv.gz"), MLOPS_COMP_GZIP);
    assert_int_equal(mlops_decompress_file(path("g.csv.gz"), "g.csv.gz", MLOPS_COMP_GZIP, path("g.out"),
                                           err, sizeof err), 0);
    check_same("g.out");

    size_t zl = ZSTD_compress(c, 2 * N, plain, N, 3);
    assert_false(ZSTD_isError(zl));
    put("z.csv.zst", c, zl);
    assert_int_equal(mlops_decompress_kind("z.csv.zst"), MLOPS_COMP_ZSTD);
    assert_int_equal(mlops_decompress_file(path("z.csv.zst"), "z.csv.zst", MLOPS_COMP_ZSTD, path("z.out"),
                                           err, sizeof err), 0);
    check_same("z.out");

    char *h = NULL;
    size_t hl = 0;
    assert_int_equal(mlops_decompress_head(path("z.csv.zst"), "z", MLOPS_COMP_ZSTD, 100, &h, &hl, err,
                                           sizeof err), 0);
    assert_int_equal(hl, 100);
    assert_memory_equal(h, plain, 100);
    free(h);
    free(c);
}

static void test_corrupt(void **st)
{
    (void)st;
    char err[256];
    unsigned char *c = malloc(2 * N);
    size_t n = gz(plain, N, c, 2 * N);
    for (size_t i = n / 2; i < n / 2 + 64; i++) c[i] ^= 0x5a;
    put("bad.csv.gz", c, n);
    assert_int_equal(mlops_decompress_file(path("bad.csv.gz"), "bad.csv.gz", MLOPS_COMP_GZIP,
                                           path("bad.out"), err, sizeof err), MLOPS_EPARSE);
    unsigned long long at = 0;
    assert_int_equal(sscanf(err, "bad.csv.gz: corrupt gzip stream at byte %llu", &at), 1);
    assert_true(at >= n / 2 && at <= n);
    assert_int_not_equal(access(path("bad.out"), F_OK), 0);
    assert_int_not_equal(access(path("bad.out.tmp"), F_OK), 0);

    n = gz(plain, N, c, 2 * N);
    put("cut.csv.gz", c, n - 100);
    assert_int_equal(mlops_decompress_file(path("cut.csv.gz"), "cut.csv.gz", MLOPS_COMP_GZIP,
                                           path("cut.out"), err, sizeof err), MLOPS_EPARSE);
    char want[128];
    snprintf(want, sizeof want, "cut.csv.gz: truncated gzip stream: it ends at byte %zu", n - 100);
    assert_string_equal(err, want);

    size_t zl = ZSTD_compress(c, 2 * N, plain, N, 3);
    put("cut.csv.zst", c, zl / 2);
    assert_int_equal(mlops_decompress_file(path("cut.csv.zst"), "cut.csv.zst", MLOPS_COMP_ZSTD,
                                           path("cutz.out"), err, sizeof err), MLOPS_EPARSE);
    assert_non_null(strstr(err, "cut.csv.zst: truncated zstd stream"));

    put("empty.csv.gz", c, 0);
    assert_int_equal(mlops_decompress_file(path("empty.csv.gz"), "empty.csv.gz", MLOPS_COMP_GZIP,
                                           path("e.out"), err, sizeof err), MLOPS_EPARSE);
    assert_string_equal(err, "empty.csv.gz: empty gzip file");
    assert_int_equal(mlops_decompress_file(path("nope.gz"), "nope.gz", MLOPS_COMP_GZIP, path("n.out"), err,
                                           sizeof err), MLOPS_EIO);
    assert_non_null(strstr(err, "nope.gz: cannot open"));
    free(c);
}

int main(void)
{
    assert_non_null(mkdtemp(dir));
    plain = malloc(N);
    uint32_t x = 12345;
    for (size_t i = 0; i < N; i++) { /* compressible CSV-like text */
        x = x * 1103515245u + 12345u;
        plain[i] = (i % 40 == 39) ? '\n' : (unsigned char)("0123456789,abc"[(x >> 16) % 14]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_corrupt),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    free(plain);
    return rc;
}
