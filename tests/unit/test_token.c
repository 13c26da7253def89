/* test_token.c: the HTTP bearer token (common/token.h): loading the
 * file (trimmed line, refused when missing, empty, short or with blanks,
 * each with the file named) and the constant-time comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "token.h"

static char s_path[64];

static int load_text(const char *text, char *out, size_t n, char *err, size_t errlen)
{
    FILE *f = fopen(s_path, "w");
    fputs(text, f);
    fclose(f);
    return mlops_token_load(s_path, out, n, err, errlen);
}

static void test_load(void **state)
{
    (void)state;
    snprintf(s_path, sizeof s_path, "/tmp/test_token.%d", (int)getpid());
    char tok[64], err[256];
    assert_int_equal(load_text("  0123456789abcdef0123\r\n", tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "0123456789abcdef0123");
    assert_int_not_equal(load_text("\n", tok, sizeof tok, err, sizeof err), 0);
    assert_non_null(strstr(err, s_path));
    assert_non_null(strstr(err, "empty"));
    assert_int_not_equal(load_text("short\n", tok, sizeof tok, err, sizeof err), 0);
    assert_non_null(strstr(err, "too short"));
    assert_int_not_equal(load_text("0123456789 abcdef0123\n", tok, sizeof tok, err, sizeof err), 0);
    assert_non_null(strstr(err, "column 11"));
    assert_int_not_equal(load_text("0123456789abcdef0123\n", tok, 8, err, sizeof err), 0);
    assert_non_null(strstr(err, "too long"));
    unlink(s_path);
    assert_int_not_equal(mlops_token_load(s_path, tok, sizeof tok, err, sizeof err), 0);
    assert_non_null(strstr(err, s_path));
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(mlops_token_equal("abcdef", "abcdef"));
    assert_false(mlops_token_equal("abcdef", "abcdeg"));
    assert_false(mlops_token_equal("abcdef", "abcde"));
    assert_false(mlops_token_equal("abcde", "abcdef"));
    assert_false(mlops_token_equal("", "a"));
    assert_true(mlops_token_equal("", ""));
    assert_false(mlops_token_equal(NULL, "a"));
    assert_false(mlops_token_equal("a", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
