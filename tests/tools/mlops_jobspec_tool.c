/* mlops_jobspec_tool: validate a job file from the command line and print
 * its canonical YAML, the used columns and the input files.
 *
 *   mlops_jobspec_tool JOB.yaml [--set key=value]... [--header a,b,c]
 *   mlops_jobspec_tool --doc-table
 *
 * --doc-table prints the key table of docs/jobfile.md, generated from
 * the schema (jobschema.h), markers included: paste it over the old one
 * when a key changes (unit.test_jobschema fails until then).
 *
 * Exit 0 if valid (prints canonical YAML on stdout, then "# column" and
 * "# file" comment lines), 1 with the one-line error on stderr if not,
 * 2 on usage or I/O errors. Used by hand and by scripts; the unit tests
 * call the library directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jobschema.h"
#include "jobspec.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--doc-table")) {
        char *t = NULL;
        if (mlops_jobschema_doc_table(&t, NULL) != 0)
            return 2;
        printf("%s%s%s", MLOPS_JOBSCHEMA_DOC_BEGIN, t, MLOPS_JOBSCHEMA_DOC_END);
        free(t);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s JOB.yaml [--set key=value]... [--header a,b,c]\n       %s --doc-table\n", argv[0], argv[0]);
        return 2;
    }
    const char **sets = calloc((size_t)argc, sizeof *sets);
    size_t nsets = 0;
    const char *header = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (!strcmp(argv[i], "--header") && i + 1 < argc) {
            header = argv[++i];
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[i]);
            free(sets);
            return 2;
        }
    }
    size_t len = 0;
    char *text = slurp(argv[1], &len);
    if (!text) {
        perror(argv[1]);
        free(sets);
        return 2;
    }
    char err[512];
    mlops_jobspec_t *s = NULL;
    int rc = mlops_jobspec_parse_with_sets(text, len, argv[1], sets, nsets, &s, err, sizeof err);
    free(text);
    free(sets);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *yaml = NULL;
    if (mlops_jobspec_to_yaml(s, &yaml, NULL) != 0) {
        mlops_jobspec_destroy(&s);
        return 2;
    }
    fputs(yaml, stdout);
    free(yaml);

    mlops_jobspec_col_t *cols = NULL;
    size_t nc = 0;
    if (mlops_jobspec_used_columns(s, &cols, &nc) == 0)
        for (size_t i = 0; i < nc; i++)
            printf("# column %s %s\n", cols[i].name, cols[i].type == MLK_F64 ? "f64" : "str");
    free(cols);

    char *dir = mlops_jobspec_dirname(argv[1]);
    mlops_jobspec_file_t *files = NULL;
    size_t nf = 0;
    if (dir && mlops_jobspec_inputs(s, dir, &files, &nf) == 0)
        for (size_t i = 0; i < nf; i++)
            printf("# file %s %s\n", files[i].role, files[i].path);
    mlops_jobspec_files_free(&files, nf);
    free(dir);

    if (header) {
        /* split a,b,c in place */
        char *h = strdup(header);
        size_t n = 1;
        for (char *p = h; p && *p; p++)
            n += *p == ',';
        const char **names = calloc(n, sizeof *names);
        size_t k = 0;
        for (char *tok = h, *next; tok && names; tok = next) {
            next = strchr(tok, ',');
            if (next)
                *next++ = '\0';
            names[k++] = tok;
        }
        rc = names ? mlops_jobspec_check_header(s, "header", names, k, err, sizeof err)
                   : MLOPS_ENOMEM;
        free(names);
        free(h);
        if (rc != 0) {
            fprintf(stderr, "%s\n", err);
            mlops_jobspec_destroy(&s);
            return 1;
        }
    }
    mlops_jobspec_destroy(&s);
    return 0;
}
