/* jsonw.c: see jsonw.h. */
#include "jsonw.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(jsonw_t *w) { memset(w, 0, sizeof *w); }
void jw_free(jsonw_t *w) { free(w->buf); memset(w, 0, sizeof *w); }

static void put(jsonw_t *w, const char *s, size_t n)
{
    if (w->err) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1) cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) { w->err = 1; return; }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

/* before a value or a key: a comma if something came before at this level */
static void sep(jsonw_t *w)
{
    if (w->depth > 0 && w->depth < 64) {
        if (w->need_comma[w->depth]) put(w, ",", 1);
        w->need_comma[w->depth] = 1;
    }
}

static void value_start(jsonw_t *w)
{
    if (w->after_key) { w->after_key = 0; return; }
    sep(w);
}

void jw_obj(jsonw_t *w)
{
    value_start(w);
    put(w, "{", 1);
    w->depth++;
    if (w->depth < 64) w->need_comma[w->depth] = 0;
}
void jw_obj_end(jsonw_t *w) { w->depth--; put(w, "}", 1); }
void jw_arr(jsonw_t *w)
{
    value_start(w);
    put(w, "[", 1);
    w->depth++;
    if (w->depth < 64) w->need_comma[w->depth] = 0;
}
void jw_arr_end(jsonw_t *w) { w->depth--; put(w, "]", 1); }

static void put_escaped(jsonw_t *w, const char *s, size_t n)
{
    put(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, s + run, i - run);
        char esc[8];
        switch (c) {
        case '"': put(w, "\\\"", 2); break;
        case '\\': put(w, "\\\\", 2); break;
        case '\n': put(w, "\\n", 2); break;
        case '\r': put(w, "\\r", 2); break;
        case '\t': put(w, "\\t", 2); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); put(w, esc, 6);
        }
        run = i + 1;
    }
    put(w, s + run, n - run);
    put(w, "\"", 1);
}

void jw_key(jsonw_t *w, const char *k)
{
    sep(w);
    put_escaped(w, k, strlen(k));
    put(w, ":", 1);
    w->after_key = 1;
}

void jw_strn(jsonw_t *w, const char *s, size_t n) { value_start(w); put_escaped(w, s, n); }
void jw_str(jsonw_t *w, const char *s) { jw_strn(w, s, strlen(s)); }

void jw_num(jsonw_t *w, double v)
{
    value_start(w);
    if (!isfinite(v)) { put(w, "null", 4); return; }
    char b[40];
    /* shortest representation that round-trips */
    int n = snprintf(b, sizeof b, "%.15g", v);
    if (strtod(b, NULL) != v) n = snprintf(b, sizeof b, "%.17g", v);
    put(w, b, (size_t)n);
}

void jw_int(jsonw_t *w, int64_t v)
{
    value_start(w);
    char b[32];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    put(w, b, (size_t)n);
}

void jw_bool(jsonw_t *w, int v) { value_start(w); put(w, v ? "true" : "false", v ? 4 : 5); }
void jw_null(jsonw_t *w) { value_start(w); put(w, "null", 4); }
void jw_raw(jsonw_t *w, const char *json) { value_start(w); put(w, json, strlen(json)); }

const char *jw_text(jsonw_t *w)
{
    if (w->err) return NULL;
    if (!w->buf) put(w, "", 0);
    return w->err ? NULL : w->buf;
}

void jw_kstr(jsonw_t *w, const char *k, const char *v)
{
    jw_key(w, k);
    if (v) jw_str(w, v);
    else jw_null(w);
}
