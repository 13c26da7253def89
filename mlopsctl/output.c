/* output.c: see output.h. */
#include "output.h"
#include "err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ctl_table {
    size_t ncols, nrows, cap;
    char **cells; /* (nrows + 1) * ncols, row 0 = header */
};

static int add_row(ctl_table *t, const char *const *cells)
{
    if (t->nrows + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c) return MLOPS_ENOMEM;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "-");
        if (!row[i]) {
            while (i--) free(row[i]);
            return MLOPS_ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

ctl_table *ctl_table_new(size_t ncols, const char *const *headers)
{
    ctl_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ncols = ncols ? ncols : 1;
    if (add_row(t, headers) != 0) ctl_table_destroy(&t);
    return t;
}

void ctl_table_destroy(ctl_table **pt)
{
    if (!pt || !*pt) return;
    ctl_table *t = *pt;
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    free(t);
    *pt = NULL;
}

int ctl_table_add(ctl_table *t, const char *const *cells) { return add_row(t, cells); }

void ctl_table_print(const ctl_table *t, FILE *out)
{
    size_t w[64] = {0};
    size_t nc = t->ncols < 64 ? t->ncols : 64;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < nc; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            if (n > w[c]) w[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < nc; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 == nc) fputs(cell, out); /* no trailing blanks */
            else fprintf(out, "%-*s   ", (int)w[c], cell);
        }
        fputc('\n', out);
    }
}

void ctl_fmt_num(double x, char *buf, size_t len)
{
    if (isfinite(x) && x == floor(x) && fabs(x) < 1e15) snprintf(buf, len, "%.0f", x);
    else snprintf(buf, len, "%.6g", x);
}

/* A memory stream would be simpler, but a fixed buffer keeps cells bounded. */
typedef struct {
    char *b;
    size_t len, n;
} cellbuf;

static void cb_put(cellbuf *c, const char *s)
{
    size_t k = strlen(s);
    if (c->n + 1 >= c->len) return;
    if (k > c->len - 1 - c->n) k = c->len - 1 - c->n;
    memcpy(c->b + c->n, s, k);
    c->n += k;
    c->b[c->n] = 0;
}

static void cb_value(cellbuf *c, const json_t *v, int top)
{
    char num[64];
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_NULL: cb_put(c, top ? "-" : "null"); break;
    case JSON_TRUE: cb_put(c, "true"); break;
    case JSON_FALSE: cb_put(c, "false"); break;
    case JSON_INTEGER:
    case JSON_REAL:
        ctl_fmt_num(json_number_value(v), num, sizeof num);
        cb_put(c, num);
        break;
    case JSON_STRING:
        if (!top) cb_put(c, "\"");
        cb_put(c, json_string_value(v));
        if (!top) cb_put(c, "\"");
        break;
    case JSON_ARRAY: {
        cb_put(c, "[");
        size_t i;
        json_t *item;
        json_array_foreach (v, i, item) {
            if (i) cb_put(c, ",");
            cb_value(c, item, 0);
        }
        cb_put(c, "]");
        break;
    }
    case JSON_OBJECT: {
        /* keys unquoted, as the cells have always shown them */
        cb_put(c, "{");
        const char *key;
        json_t *item;
        int first = 1;
        json_object_foreach ((json_t *)v, key, item) {
            if (!first) cb_put(c, ",");
            first = 0;
            cb_put(c, key);
            cb_put(c, ":");
            cb_value(c, item, 0);
        }
        cb_put(c, "}");
        break;
    }
    }
}

void ctl_fmt_value(const json_t *v, char *buf, size_t len)
{
    if (!len) return;
    buf[0] = 0;
    cellbuf c = {buf, len, 0};
    cb_value(&c, v, 1);
}

int ctl_json_print(FILE *out, const json_t *doc)
{
    /* to a string first: a failed dump must not leave half a line */
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text) return MLOPS_EINVAL;
    fputs(text, out);
    fputc('\n', out);
    free(text);
    return 0;
}
