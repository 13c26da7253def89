/* test_jobschema.c: the job file's key table (common/jobschema.h).
 * The table is consistent (defaults within bounds, only_key names an
 * enum of the same section); a new spec holds every row's default; each
 * bounded row's limit gives the exact bounds message; and the key table
 * in docs/jobfile.md is the one the schema generates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jobschema.h"
#include "jobspec.h"

#define BASE "name: j\ninput: d.csv\ncolumns: {label: y, numeric: [a], categorical: [c]}\n"

static void test_table_consistent(void **state)
{
    (void)state;
    assert_true(mlops_jobschema_count > 30);
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        assert_ptr_equal(mlops_jobschema_find(k->sect, k->key), k); /* no duplicate */
        if (*k->sect && strcmp(k->sect, "input")) {
            const mlops_jobschema_key_t *sec = mlops_jobschema_find("", k->sect);
            assert_non_null(sec);
            /* a section's keys, or the keys of each mapping of a list (join) */
            assert_true(sec->type == MLOPS_JSK_SECTION || sec->type == MLOPS_JSK_JOINS);
            assert_true(sec < k); /* a section's keys follow it */
        }
        if (k->type == MLOPS_JSK_UINT || k->type == MLOPS_JSK_NUM) {
            assert_true(k->lo <= k->hi);
            if (!(k->flags & MLOPS_JSF_PRESENCE) || !isnan(k->dflt)) {
                assert_true(k->lo_open ? k->dflt > k->lo : k->dflt >= k->lo);
                assert_true(k->hi_open ? k->dflt < k->hi : k->dflt <= k->hi);
            }
        }
        if (k->type == MLOPS_JSK_UINT)
            assert_true(k->hi <= 4294967295.0 && k->lo >= 0 && k->dflt == floor(k->dflt));
        if (k->type == MLOPS_JSK_ENUM || k->type == MLOPS_JSK_SET) {
            assert_non_null(k->names);
            int n = 0;
            while (k->names[n])
                n++;
            assert_true(k->dflt >= 0 && k->dflt < n);
        }
        if (k->type == MLOPS_JSK_SET)
            assert_non_null(k->noun);
        if (k->only_key) {
            const mlops_jobschema_key_t *o = mlops_jobschema_find(k->sect, k->only_key);
            assert_non_null(o);
            assert_int_equal(o->type, MLOPS_JSK_ENUM);
            assert_true(o < k); /* parsed before the keys it gates */
            assert_non_null(o->names[k->only_val]);
        }
        if (k->type != MLOPS_JSK_SECTION)
            assert_non_null(k->help);
    }
    assert_null(mlops_jobschema_find("train", "epoks"));
    assert_null(mlops_jobschema_find("", "epochs"));
}

/* A spec with every section present and nothing set holds the defaults. */
static void test_defaults(void **state)
{
    (void)state;
    const char *text = BASE "clean: {}\nhash: {}\nsplit: {}\ntrain: {}\nknn: {}\n";
    char err[512] = "";
    mlops_jobspec_t *s = NULL;
    assert_int_equal(mlops_jobspec_parse(text, strlen(text), "job.yaml", &s, err, sizeof err), 0);
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        if (!strcmp(k->sect, "input") || !strcmp(k->sect, "noop") || !strcmp(k->sect, "join"))
            continue;
        const char *at = (const char *)s + k->off;
        switch (k->type) {
        case MLOPS_JSK_UINT: assert_int_equal(*(const uint32_t *)(const void *)at, k->dflt); break;
        case MLOPS_JSK_NUM: assert_true(*(const double *)(const void *)at == k->dflt); break;
        case MLOPS_JSK_BOOL:
        case MLOPS_JSK_ENUM: assert_int_equal(*(const int *)(const void *)at, k->dflt); break;
        default: break;
        }
    }
    assert_int_equal(s->shard_rows, 65536);
    assert_true(s->train.alpha == 0.0001);
    assert_int_equal(s->knn.top_n, 10);
    mlops_jobspec_destroy(&s);
}

/* Just past each bound, the getter names the key and words the bound
 * from the row. */
static void test_bounds_messages(void **state)
{
    (void)state;
    char want_spot[64];
    const mlops_jobschema_key_t *e = mlops_jobschema_find("train", "epochs");
    assert_string_equal(mlops_jobschema_want(e, want_spot, sizeof want_spot),
                        "an integer in 1..1000");
    assert_string_equal(mlops_jobschema_want(mlops_jobschema_find("split", "test_size"), want_spot,
                                             sizeof want_spot),
                        "a number in (0, 1)");
    assert_string_equal(mlops_jobschema_want(mlops_jobschema_find("", "shard_rows"), want_spot,
                                             sizeof want_spot),
                        "a positive integer");
    int checked = 0;
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        if (k->type != MLOPS_JSK_UINT && k->type != MLOPS_JSK_NUM)
            continue;
        char val[64], set[160], dotted[96], want[64], expect[400], err[512] = "";
        if (k->type == MLOPS_JSK_UINT && k->hi < 4294967295.0)
            snprintf(val, sizeof val, "%.0f", k->hi + 1);
        else if (k->type == MLOPS_JSK_UINT)
            snprintf(val, sizeof val, "-1");
        else if (!isinf(k->lo))
            snprintf(val, sizeof val, "%g", k->lo_open ? k->lo : k->lo - 1);
        else
            snprintf(val, sizeof val, "x");
        snprintf(dotted, sizeof dotted, "%s%s%s", k->sect, *k->sect ? "." : "", k->key);
        snprintf(set, sizeof set, "%s=%s", dotted, val);
        snprintf(expect, sizeof expect, "--set %s: %s: expected %s, got '%s'", set, dotted,
                 mlops_jobschema_want(k, want, sizeof want), val);
        const char *sets[1] = {set};
        mlops_jobspec_t *s = NULL;
        int rc = mlops_jobspec_parse_with_sets(BASE, strlen(BASE), "job.yaml", sets, 1, &s, err,
                                               sizeof err);
        assert_int_equal(rc, MLOPS_EINVAL);
        assert_null(s);
        assert_string_equal(err, expect);
        checked++;
    }
    assert_true(checked >= 14);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* docs/jobfile.md carries the generated table between the markers. */
static void test_doc_table(void **state)
{
    (void)state;
    const char *src = getenv("MLOPS_SOURCE_DIR");
    assert_non_null(src);
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/jobfile.md", src);
    char *doc = slurp(path);
    assert_non_null(doc);
    char *b = strstr(doc, MLOPS_JOBSCHEMA_DOC_BEGIN);
    char *e = b ? strstr(b, MLOPS_JOBSCHEMA_DOC_END) : NULL;
    if (!b || !e)
        fail_msg("%s: no generated key table between the markers", path);
    b += strlen(MLOPS_JOBSCHEMA_DOC_BEGIN);
    *e = '\0';
    char *table = NULL;
    assert_int_equal(mlops_jobschema_doc_table(&table, NULL), 0);
    if (strcmp(b, table)) {
        /* the first differing line, so the fix is obvious */
        const char *x = b, *y = table;
        int line = 1;
        while (*x && *x == *y) {
            if (*x == '\n')
                line++;
            x++;
            y++;
        }
        fail_msg("%s: key table line %d differs from the schema; regenerate it with "
                 "'mlops_jobspec_tool --doc-table'",
                 path, line);
    }
    free(table);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_consistent),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bounds_messages),
        cmocka_unit_test(test_doc_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
