/* test_flags.c: the shared flag tables (common/flags.h). Every accepted
 * form parses; every mistake gives the exact one-line message naming the
 * flag; mlops_flags_store fills a config from flags, the environment and
 * defaults and refuses a missing required flag; --help shows the
 * defaults and bounds from the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "flags.h"

typedef struct {
    const char *dir, *name;
    int slots, verbose, mode;
} cfg_t;

static const char *const MODES[] = {"fast", "slow", "exact", NULL};
static const mlops_flag_t DEFS[] = {
    {.name = "data-dir", .shrt = 'd', .type = MLOPS_FLAG_STR, .meta = "DIR", .required = 1,
     .off = offsetof(cfg_t, dir), .help = "where"},
    {.name = "name", .type = MLOPS_FLAG_STR, .meta = "NAME", .env = "TEST_FLAGS_NAME",
     .dflt = "anon", .off = offsetof(cfg_t, name), .help = "who"},
    {.name = "slots", .shrt = 's', .type = MLOPS_FLAG_INT, .meta = "N", .lo = 1, .hi = 256,
     .dflt = "1", .off = offsetof(cfg_t, slots), .help = "how many"},
    {.name = "mode", .type = MLOPS_FLAG_CHOICE, .meta = "M", .choices = MODES, .dflt = "slow",
     .off = offsetof(cfg_t, mode), .help = "how"},
    {.name = "verbose", .shrt = 'v', .type = MLOPS_FLAG_BOOL, .off = offsetof(cfg_t, verbose),
     .help = "say more"},
    {.name = "help", .shrt = 'h', .type = MLOPS_FLAG_BOOL, .off = MLOPS_FLAG_NOSTORE,
     .help = "print this help"},
    {.name = NULL}};

/* Parse a NULL-terminated argv list; the rc, message in err. */
static int parse(mlops_flags_t *f, char *err, size_t errlen, ...)
{
    static char *argv[32];
    va_list ap;
    va_start(ap, errlen);
    int argc = 0;
    char *a;
    while ((a = va_arg(ap, char *)) && argc < 32)
        argv[argc++] = a;
    va_end(ap);
    err[0] = '\0';
    return mlops_flags_parse(f, DEFS, argc, argv, 0, NULL, err, errlen);
}

static void test_forms(void **state)
{
    (void)state;
    mlops_flags_t f;
    char err[256];
    assert_int_equal(parse(&f, err, sizeof err, "--data-dir", "a", "pos1", "-s4", "--slots=7",
                           "-vh", "--name", "x", "--", "--slots", NULL),
                     0);
    assert_string_equal(mlops_flags_get(&f, "data-dir"), "a");
    assert_string_equal(mlops_flags_get(&f, "slots"), "7"); /* the last wins */
    assert_true(mlops_flags_has(&f, "verbose"));
    assert_true(mlops_flags_has(&f, "help"));
    assert_false(mlops_flags_has(&f, "mode"));
    assert_null(mlops_flags_get(&f, "mode"));
    const char *vals[4];
    assert_int_equal(mlops_flags_all(&f, "slots", vals, 4), 2);
    assert_string_equal(vals[0], "4");
    assert_int_equal(f.npos, 2);
    assert_string_equal(f.pos[0], "pos1");
    assert_string_equal(f.pos[1], "--slots"); /* after "--" */

    /* stop at the first positional: global options before a command */
    char *argv[] = {"-v", "cmd", "--slots", "3"};
    int used = -1;
    assert_int_equal(mlops_flags_parse(&f, DEFS, 4, argv, 1, &used, err, sizeof err), 0);
    assert_int_equal(used, 1);
    assert_int_equal(f.npos, 0);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--bogus", NULL, "unknown option '--bogus'"},
        {"-x", NULL, "unknown option '-x'"},
        {"--verbose=1", NULL, "option '--verbose' takes no value"},
        {"-vx", NULL, "option '-v' takes no value"},
        {"--slots", NULL, "option '--slots' needs a value (N)"},
        {"--slots", "x", "--slots: expected an integer in [1, 256], got 'x'"},
        {"--slots", "0", "--slots: expected an integer in [1, 256], got '0'"},
        {"-s257", NULL, "--slots: expected an integer in [1, 256], got '257'"},
        {"--slots=", NULL, "--slots: expected an integer in [1, 256], got ''"},
        {"--slots", "99999999999999999999", "--slots: expected an integer in [1, 256], got "
                                            "'99999999999999999999'"},
        {"--mode", "quick", "--mode: expected 'fast', 'slow' or 'exact', got 'quick'"},
        {"--name", "", "--name: expected NAME, got nothing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mlops_flags_t f;
        char err[256];
        assert_int_equal(parse(&f, err, sizeof err, cases[i].a, cases[i].b, NULL), MLOPS_EINVAL);
        assert_string_equal(err, cases[i].want);
    }
}

static void test_store(void **state)
{
    (void)state;
    mlops_flags_t f;
    char err[256];
    cfg_t c = {0};
    unsetenv("TEST_FLAGS_NAME");
    assert_int_equal(parse(&f, err, sizeof err, "-d", "/data", "--mode", "exact", NULL), 0);
    assert_int_equal(mlops_flags_store(&f, &c, err, sizeof err), 0);
    assert_string_equal(c.dir, "/data");
    assert_string_equal(c.name, "anon"); /* the default */
    assert_int_equal(c.slots, 1);
    assert_int_equal(c.mode, 2);
    assert_int_equal(c.verbose, 0);

    setenv("TEST_FLAGS_NAME", "from-env", 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(parse(&f, err, sizeof err, "-d", "/d", "-v", "-s", "9", NULL), 0);
    assert_int_equal(mlops_flags_store(&f, &c, err, sizeof err), 0);
    assert_string_equal(c.name, "from-env");
    assert_int_equal(c.slots, 9);
    assert_int_equal(c.verbose, 1);
    assert_int_equal(c.mode, 1);
    assert_int_equal(parse(&f, err, sizeof err, "-d", "/d", "--name", "given", NULL), 0);
    assert_int_equal(mlops_flags_store(&f, &c, err, sizeof err), 0);
    assert_string_equal(c.name, "given"); /* the flag beats the environment */
    unsetenv("TEST_FLAGS_NAME");

    assert_int_equal(parse(&f, err, sizeof err, "-v", NULL), 0);
    assert_int_equal(mlops_flags_store(&f, &c, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "--data-dir is required");
    assert_int_equal(parse(&f, err, sizeof err, "-d", "x", "stray", NULL), 0);
    assert_int_equal(mlops_flags_store(&f, &c, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "unexpected argument 'stray'");
}

static void test_help(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    mlops_flags_help(out, DEFS);
    fclose(out);
    assert_non_null(strstr(buf, "  -d, --data-dir DIR   where (required)\n"));
    assert_non_null(strstr(buf, "      --name NAME      who (env TEST_FLAGS_NAME, default anon)\n"));
    assert_non_null(strstr(buf, "  -s, --slots N        how many (1..256, default 1)\n"));
    assert_non_null(strstr(buf, "      --mode M         how (fast, slow or exact, default slow)\n"));
    assert_non_null(strstr(buf, "  -h, --help           print this help\n"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
