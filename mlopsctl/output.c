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

static void cb_value(cellbuf *c, const jv *v, int top)
{
    char num[64];
    switch (v ? v->type : JV_NULL) {
    case JV_NULL: cb_put(c, top ? "-" : "null"); break;
    case JV_BOOL: cb_put(c, v->b ? "true" : "false"); break;
    case JV_NUMBER:
        ctl_fmt_num(v->num, num, sizeof num);
        cb_put(c, num);
        break;
    case JV_STRING:
        if (!top) cb_put(c, "\"");
        cb_put(c, v->str);
        if (!top) cb_put(c, "\"");
        break;
    case JV_ARRAY:
    case JV_OBJECT:
        cb_put(c, v->type == JV_ARRAY ? "[" : "{");
        for (size_t i = 0; i < v->len; i++) {
            if (i) cb_put(c, ",");
            if (v->type == JV_OBJECT) {
                cb_put(c, v->keys[i]);
                cb_put(c, ":");
            }
            cb_value(c, v->items[i], 0);
        }
        cb_put(c, v->type == JV_ARRAY ? "]" : "}");
        break;
    }
}

void ctl_fmt_value(const jv *v, char *buf, size_t len)
{
    if (!len) return;
    buf[0] = 0;
    cellbuf c = {buf, len, 0};
    cb_value(&c, v, 1);
}

void ctl_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20) fprintf(out, "\\u%04x", *p);
            else fputc(*p, out);
        }
    }
    fputc('"', out);
}
