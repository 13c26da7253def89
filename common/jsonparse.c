/* jsonparse.c: see jsonparse.h.
 * A recursive-descent parser over a bounded buffer (never reads past
 * `len`, never needs a NUL). Recursion depth is capped at JV_MAX_DEPTH,
 * so garbage such as "[[[[..." fails cleanly instead of exhausting the
 * stack. Every allocation failure or syntax error unwinds through the
 * partly built node, which jv_free() releases. */
#include "jsonparse.h"
#include "err.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;   /* text */
    size_t len, pos; /* bytes, cursor */
    int depth;
    char *err;
    size_t errlen;
    int failed;
} parser;

/* Record the first error with the line and column of the cursor. */
static jv *fail(parser *ps, const char *what)
{
    if (ps->failed) return NULL;
    ps->failed = 1;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < ps->pos && i < ps->len; i++) {
        if (ps->p[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    mlops_seterr(ps->err, ps->errlen, MLOPS_EPARSE, "json: line %zu, column %zu: %s", line, col,
                 what);
    return NULL;
}

static void skip_ws(parser *ps)
{
    while (ps->pos < ps->len) {
        char c = ps->p[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        ps->pos++;
    }
}

static int peek(const parser *ps) { return ps->pos < ps->len ? (unsigned char)ps->p[ps->pos] : -1; }

static jv *node(jv_type t)
{
    jv *v = calloc(1, sizeof *v);
    if (v) v->type = t;
    return v;
}

/* A growable byte buffer for decoding strings. */
typedef struct {
    char *b;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *s, const char *src, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 32;
        while (cap < s->n + n + 1) cap *= 2;
        char *b = realloc(s->b, cap);
        if (!b) return MLOPS_ENOMEM;
        s->b = b;
        s->cap = cap;
    }
    memcpy(s->b + s->n, src, n);
    s->n += n;
    s->b[s->n] = 0;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at the cursor (after "\u"); -1 if malformed. */
static long read_hex4(parser *ps)
{
    if (ps->len - ps->pos < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)ps->p[ps->pos + (size_t)i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    ps->pos += 4;
    return v;
}

static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence starting at s[0] (n bytes left),
 * or 0 if invalid (overlong forms, surrogates, > U+10FFFF rejected). */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned long cp, min;
    if ((c & 0xE0) == 0xC0) {
        need = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        need = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        need = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return need;
}

/* A string at the cursor (which is on the opening quote). */
static int parse_string(parser *ps, char **out, size_t *outlen)
{
    sbuf sb = {0};
    ps->pos++; /* opening quote */
    if (sb_put(&sb, "", 0) != 0) goto nomem;
    for (;;) {
        if (ps->pos >= ps->len) {
            fail(ps, "unterminated string");
            goto bad;
        }
        /* Copy a run of plain bytes at once. */
        size_t start = ps->pos;
        while (ps->pos < ps->len) {
            unsigned char c = (unsigned char)ps->p[ps->pos];
            if (c == '"' || c == '\\' || c < 0x20) break;
            if (c < 0x80) {
                ps->pos++;
                continue;
            }
            size_t k = utf8_valid((const unsigned char *)ps->p + ps->pos, ps->len - ps->pos);
            if (!k) {
                fail(ps, "invalid UTF-8 in string");
                goto bad;
            }
            ps->pos += k;
        }
        if (ps->pos > start && sb_put(&sb, ps->p + start, ps->pos - start) != 0) goto nomem;
        if (ps->pos >= ps->len) continue; /* reports unterminated */
        unsigned char c = (unsigned char)ps->p[ps->pos];
        if (c == '"') {
            ps->pos++;
            break;
        }
        if (c < 0x20) {
            fail(ps, "control character in string");
            goto bad;
        }
        /* backslash escape */
        ps->pos++;
        if (ps->pos >= ps->len) {
            fail(ps, "unterminated string");
            goto bad;
        }
        char e = ps->p[ps->pos++];
        char ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            long hi = read_hex4(ps);
            if (hi < 0) {
                fail(ps, "bad \\u escape (expected 4 hex digits)");
                goto bad;
            }
            unsigned long cp = (unsigned long)hi;
            if (hi >= 0xDC00 && hi <= 0xDFFF) {
                fail(ps, "lone low surrogate in \\u escape");
                goto bad;
            }
            if (hi >= 0xD800 && hi <= 0xDBFF) {
                if (ps->len - ps->pos < 2 || ps->p[ps->pos] != '\\' || ps->p[ps->pos + 1] != 'u') {
                    fail(ps, "high surrogate not followed by a low surrogate");
                    goto bad;
                }
                ps->pos += 2;
                long lo = read_hex4(ps);
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(ps, "high surrogate not followed by a low surrogate");
                    goto bad;
                }
                cp = 0x10000 + (((unsigned long)hi - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
            }
            char u[4];
            size_t k = utf8_encode(cp, u);
            if (sb_put(&sb, u, k) != 0) goto nomem;
            continue;
        }
        default:
            ps->pos--;
            fail(ps, "bad escape in string");
            goto bad;
        }
        if (sb_put(&sb, &ch, 1) != 0) goto nomem;
    }
    *out = sb.b;
    *outlen = sb.n;
    return 0;
nomem:
    fail(ps, "out of memory");
bad:
    free(sb.b);
    return MLOPS_EPARSE;
}

/* A number per the JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static jv *parse_number(parser *ps)
{
    size_t s = ps->pos, i = ps->pos;
    const char *p = ps->p;
    size_t n = ps->len;
#define DIGIT(k) ((k) < n && p[k] >= '0' && p[k] <= '9')
    if (i < n && p[i] == '-') i++;
    if (i < n && p[i] == '0') {
        i++;
        if (DIGIT(i)) {
            ps->pos = i;
            return fail(ps, "leading zero in number");
        }
    } else if (DIGIT(i)) {
        while (DIGIT(i)) i++;
    } else {
        ps->pos = i;
        return fail(ps, "expected a digit");
    }
    if (i < n && p[i] == '.') {
        i++;
        if (!DIGIT(i)) {
            ps->pos = i;
            return fail(ps, "expected a digit after '.'");
        }
        while (DIGIT(i)) i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) i++;
        if (!DIGIT(i)) {
            ps->pos = i;
            return fail(ps, "expected a digit in exponent");
        }
        while (DIGIT(i)) i++;
    }
#undef DIGIT
    /* strtod needs a NUL-terminated copy; the span is validated already. */
    char small[64], *buf = small;
    size_t k = i - s;
    if (k >= sizeof small) {
        buf = malloc(k + 1);
        if (!buf) return fail(ps, "out of memory");
    }
    memcpy(buf, p + s, k);
    buf[k] = 0;
    double d = strtod(buf, NULL); /* overflow gives +-HUGE_VAL: acceptable */
    if (buf != small) free(buf);
    jv *v = node(JV_NUMBER);
    if (!v) return fail(ps, "out of memory");
    v->num = d;
    ps->pos = i;
    return v;
}

static jv *parse_value(parser *ps);

static int push_item(jv *v, char *key, jv *item)
{
    /* capacity is implicit: 4, then doubled whenever len reaches a power of two */
    if (v->len == 0 || (v->len >= 4 && (v->len & (v->len - 1)) == 0)) {
        size_t cap = v->len ? v->len * 2 : 4;
        jv **items = realloc(v->items, cap * sizeof *items);
        if (!items) return MLOPS_ENOMEM;
        v->items = items;
        if (v->type == JV_OBJECT) {
            char **keys = realloc(v->keys, cap * sizeof *keys);
            if (!keys) return MLOPS_ENOMEM;
            v->keys = keys;
        }
    }
    if (v->type == JV_OBJECT) v->keys[v->len] = key;
    v->items[v->len++] = item;
    return 0;
}

static jv *parse_array(parser *ps)
{
    jv *v = node(JV_ARRAY);
    if (!v) return fail(ps, "out of memory");
    ps->pos++; /* [ */
    skip_ws(ps);
    if (peek(ps) == ']') {
        ps->pos++;
        return v;
    }
    for (;;) {
        jv *item = parse_value(ps);
        if (!item) goto bad;
        if (push_item(v, NULL, item) != 0) {
            jv_free(&item);
            fail(ps, "out of memory");
            goto bad;
        }
        skip_ws(ps);
        int c = peek(ps);
        if (c == ',') {
            ps->pos++;
            skip_ws(ps);
            if (peek(ps) == ']') {
                fail(ps, "trailing comma in array");
                goto bad;
            }
            continue;
        }
        if (c == ']') {
            ps->pos++;
            return v;
        }
        fail(ps, c < 0 ? "unterminated array" : "expected ',' or ']' in array");
        goto bad;
    }
bad:
    jv_free(&v);
    return NULL;
}

static jv *parse_object(parser *ps)
{
    jv *v = node(JV_OBJECT);
    if (!v) return fail(ps, "out of memory");
    ps->pos++; /* { */
    skip_ws(ps);
    if (peek(ps) == '}') {
        ps->pos++;
        return v;
    }
    for (;;) {
        skip_ws(ps);
        if (peek(ps) != '"') {
            fail(ps, peek(ps) == '}' ? "trailing comma in object" : "expected a string key in object");
            goto bad;
        }
        size_t keypos = ps->pos;
        char *key = NULL;
        size_t keylen = 0;
        if (parse_string(ps, &key, &keylen) != 0) goto bad;
        if (strlen(key) != keylen) {
            free(key);
            ps->pos = keypos;
            fail(ps, "object key contains \\u0000");
            goto bad;
        }
        for (size_t i = 0; i < v->len; i++) {
            if (!strcmp(v->keys[i], key)) {
                free(key);
                ps->pos = keypos;
                fail(ps, "duplicate key in object");
                goto bad;
            }
        }
        skip_ws(ps);
        if (peek(ps) != ':') {
            free(key);
            fail(ps, "expected ':' after object key");
            goto bad;
        }
        ps->pos++;
        jv *item = parse_value(ps);
        if (!item) {
            free(key);
            goto bad;
        }
        if (push_item(v, key, item) != 0) {
            free(key);
            jv_free(&item);
            fail(ps, "out of memory");
            goto bad;
        }
        skip_ws(ps);
        int c = peek(ps);
        if (c == ',') {
            ps->pos++;
            continue;
        }
        if (c == '}') {
            ps->pos++;
            return v;
        }
        fail(ps, c < 0 ? "unterminated object" : "expected ',' or '}' in object");
        goto bad;
    }
bad:
    jv_free(&v);
    return NULL;
}

static jv *parse_literal(parser *ps, const char *word, jv_type t, int b)
{
    size_t k = strlen(word);
    if (ps->len - ps->pos < k || memcmp(ps->p + ps->pos, word, k) != 0)
        return fail(ps, "unexpected character");
    jv *v = node(t);
    if (!v) return fail(ps, "out of memory");
    v->b = b;
    ps->pos += k;
    return v;
}

static jv *parse_value(parser *ps)
{
    skip_ws(ps);
    int c = peek(ps);
    if (c < 0) return fail(ps, "unexpected end of input");
    jv *v = NULL;
    if (c == '{' || c == '[') {
        if (ps->depth >= JV_MAX_DEPTH) return fail(ps, "nested too deeply");
        ps->depth++;
        v = c == '{' ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return v;
    }
    if (c == '"') {
        v = node(JV_STRING);
        if (!v) return fail(ps, "out of memory");
        if (parse_string(ps, &v->str, &v->len) != 0) jv_free(&v);
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
    if (c == 't') return parse_literal(ps, "true", JV_BOOL, 1);
    if (c == 'f') return parse_literal(ps, "false", JV_BOOL, 0);
    if (c == 'n') return parse_literal(ps, "null", JV_NULL, 0);
    return fail(ps, "unexpected character");
}

jv *jv_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!text) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "json: no input");
        return NULL;
    }
    parser ps = {.p = text, .len = len, .err = err, .errlen = errlen};
    jv *v = parse_value(&ps);
    if (!v) return NULL;
    skip_ws(&ps);
    if (ps.pos != ps.len) {
        fail(&ps, "unexpected text after the value");
        jv_free(&v);
    }
    return v;
}

void jv_free(jv **pv)
{
    if (!pv || !*pv) return;
    jv *v = *pv;
    for (size_t i = 0; i < v->len && v->items; i++) {
        jv_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
    *pv = NULL;
}

const jv *jv_get(const jv *v, const char *key)
{
    if (!v || v->type != JV_OBJECT || !key) return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (!strcmp(v->keys[i], key)) return v->items[i];
    return NULL;
}

const jv *jv_at(const jv *v, size_t i)
{
    if (!v || v->type != JV_ARRAY || i >= v->len) return NULL;
    return v->items[i];
}

size_t jv_len(const jv *v)
{
    return v && (v->type == JV_ARRAY || v->type == JV_OBJECT) ? v->len : 0;
}

const char *jv_str(const jv *v, const char *dflt) { return v && v->type == JV_STRING ? v->str : dflt; }

double jv_num(const jv *v, double dflt) { return v && v->type == JV_NUMBER ? v->num : dflt; }

int jv_bool(const jv *v, int dflt) { return v && v->type == JV_BOOL ? v->b : dflt; }

int jv_is(const jv *v, jv_type t) { return v && v->type == t; }

const char *jv_get_str(const jv *v, const char *key, const char *dflt)
{
    return jv_str(jv_get(v, key), dflt);
}

double jv_get_num(const jv *v, const char *key, double dflt) { return jv_num(jv_get(v, key), dflt); }
