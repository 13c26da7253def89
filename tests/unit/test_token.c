/* test_token.c: the HTTP bearer token file and its constant-time compare
 * (common/token.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "token.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_token.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_generate_load(void **state)
{
    (void)state;
    char path[128], err[256] = "", a[MLOPS_TOKEN_HEX + 1], b[MLOPS_TOKEN_HEX + 1];
    snprintf(path, sizeof path, "%s/http.token", dir);
    assert_int_equal(mlops_token_generate(path, 0, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, MLOPS_TOKEN_HEX + 1);
    assert_int_equal(mlops_token_load(path, a, sizeof a, err, sizeof err), 0);
    assert_int_equal(strlen(a), MLOPS_TOKEN_HEX);
    /* kept unless asked to overwrite */
    assert_int_equal(mlops_token_generate(path, 0, err, sizeof err), 0);
    assert_int_equal(mlops_token_load(path, b, sizeof b, err, sizeof err), 0);
    assert_string_equal(a, b);
    assert_int_equal(mlops_token_generate(path, 1, err, sizeof err), 0);
    assert_int_equal(mlops_token_load(path, b, sizeof b, err, sizeof err), 0);
    assert_string_not_equal(a, b); /* 2^-256 to fail by chance */
}

static void test_load_refuses(void **state)
{
    (void)state;
    char path[128], err[256] = "", out[MLOPS_TOKEN_HEX + 1];
    snprintf(path, sizeof path, "%s/bad.token", dir);
    const char *good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    write_file(path, good, 0644);
    assert_int_equal(mlops_token_load(path, out, sizeof out, err, sizeof err), MLOPS_EDENIED);
    assert_non_null(strstr(err, "mode 644"));
    write_file(path, "abc\n", 0600);
    assert_int_equal(mlops_token_load(path, out, sizeof out, err, sizeof err), MLOPS_EPARSE);
    assert_non_null(strstr(err, "expected 64 hex digits, got 3"));
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\n", 0600);
    assert_int_equal(mlops_token_load(path, out, sizeof out, err, sizeof err), MLOPS_EPARSE);
    assert_non_null(strstr(err, "column 64: 'g'"));
    snprintf(path, sizeof path, "%s/missing.token", dir);
    assert_int_equal(mlops_token_load(path, out, sizeof out, err, sizeof err), MLOPS_ENOTFOUND);
    assert_non_null(strstr(err, path));
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(mlops_token_equal("abc", "abc"));
    assert_true(mlops_token_equal("", ""));
    assert_false(mlops_token_equal("abc", "abd"));
    assert_false(mlops_token_equal("abc", "ab"));
    assert_false(mlops_token_equal("ab", "abc"));
    assert_false(mlops_token_equal("abc", ""));
    assert_false(mlops_token_equal(NULL, "abc"));
    assert_false(mlops_token_equal("abc", NULL));
    /* a difference in the first or the last byte alike */
    assert_false(mlops_token_equal("xbcdef", "abcdef"));
    assert_false(mlops_token_equal("abcdex", "abcdef"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_load),
        cmocka_unit_test(test_load_refuses),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
