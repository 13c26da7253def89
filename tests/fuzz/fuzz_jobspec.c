/* fuzz_jobspec.c: the job-file parser (common/jobspec.h) on any bytes, as
 * mlopsctl reads a job file and the coordinator reads the text mlopsctl
 * sends. Input: the job file's text, then optionally a NUL byte and
 * --set overrides separated by NUL bytes ("train.epochs=3\0input=x.csv").
 *
 * Properties checked, beyond "no crash, no leak, no UB":
 *  - an error is one line, never empty;
 *  - a spec's canonical YAML parses again, to the very same text (the
 *    promise of mlops_jobspec_to_yaml, on which the coordinator relies);
 *  - a CSV header holding exactly the used columns passes
 *    mlops_jobspec_check_header, and one without the last of them fails. */
#include "fuzz.h"

#include <string.h>

#include "err.h"
#include "jobspec.h"

#define MAX_SETS 8

static void check_err(const char *err)
{
    FUZZ_CHECK(err[0] != 0);
    FUZZ_CHECK(strchr(err, '\n') == NULL);
}

static void check_spec(const mlops_jobspec_t *s)
{
    char err[512];
    char *yaml = NULL;
    size_t ylen = 0;
    FUZZ_CHECK(mlops_jobspec_to_yaml(s, &yaml, &ylen) == 0);
    mlops_jobspec_t *again = NULL;
    int rc = mlops_jobspec_parse(yaml, ylen, "canonical.yaml", &again, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "canonical YAML does not parse: %s\n%s", err, yaml);
    FUZZ_CHECK(rc == 0);
    char *yaml2 = NULL;
    size_t ylen2 = 0;
    FUZZ_CHECK(mlops_jobspec_to_yaml(again, &yaml2, &ylen2) == 0);
    if (ylen != ylen2 || memcmp(yaml, yaml2, ylen) != 0)
        fprintf(stderr, "canonical YAML changes when parsed again:\n%s---\n%s", yaml, yaml2);
    FUZZ_CHECK(ylen == ylen2 && memcmp(yaml, yaml2, ylen) == 0);
    free(yaml2);
    free(yaml);
    mlops_jobspec_destroy(&again);
    FUZZ_CHECK(again == NULL);

    mlops_jobspec_col_t *cols = NULL;
    size_t n = 0;
    FUZZ_CHECK(mlops_jobspec_used_columns(s, &cols, &n) == 0);
    if (n > 0) {
        const char **names = malloc(n * sizeof *names);
        FUZZ_CHECK(names != NULL);
        size_t distinct = 0;
        for (size_t i = 0; i < n; i++) {
            int dup = 0;
            for (size_t j = 0; j < distinct; j++)
                dup |= strcmp(names[j], cols[i].name) == 0;
            if (!dup)
                names[distinct++] = cols[i].name;
        }
        err[0] = 0;
        rc = mlops_jobspec_check_header(s, "fuzz.csv", names, distinct, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "header of the used columns refused: %s\n", err);
        FUZZ_CHECK(rc == 0);
        err[0] = 0;
        rc = mlops_jobspec_check_header(s, "fuzz.csv", names, distinct - 1, err, sizeof err);
        FUZZ_CHECK(rc != 0);
        check_err(err);
        free(names);
    }
    free(cols);

    mlops_jobspec_file_t *files = NULL;
    size_t nf = 0;
    /* a glob that matches no file is refused, with a one-line message */
    err[0] = 0;
    rc = mlops_jobspec_inputs_err(s, "jobs/dir", &files, &nf, err, sizeof err);
    if (rc == 0)
        mlops_jobspec_files_free(&files, nf);
    else {
        FUZZ_CHECK(files == NULL && nf == 0);
        check_err(err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, 0, size);
    size_t tlen = nul ? (size_t)(nul - text) : size;

    /* the overrides: NUL-separated strings after the text, each copied so
     * that the last one is NUL-terminated and exactly as long as given */
    char *sets[MAX_SETS];
    size_t nsets = 0;
    if (nul) {
        const char *p = nul + 1, *end = text + size;
        while (p <= end && nsets < MAX_SETS) {
            const char *q = memchr(p, 0, (size_t)(end - p));
            size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
            sets[nsets] = malloc(n + 1);
            FUZZ_CHECK(sets[nsets] != NULL);
            memcpy(sets[nsets], p, n);
            sets[nsets][n] = 0;
            nsets++;
            if (!q)
                break;
            p = q + 1;
        }
    }

    char err[512];
    mlops_jobspec_t *s = NULL;
    int rc = mlops_jobspec_parse_with_sets(text, tlen, "fuzz.yaml", (const char *const *)sets,
                                           nsets, &s, err, sizeof err);
    if (rc == 0) {
        FUZZ_CHECK(s != NULL);
        check_spec(s);
    } else {
        FUZZ_CHECK(s == NULL);
        check_err(err);
    }
    mlops_jobspec_destroy(&s);
    for (size_t i = 0; i < nsets; i++)
        free(sets[i]);
    return 0;
}
