/* sv_reader.c: see sv_reader.h.
 *
 * Why a reader of our own and not a library: jansson (already linked)
 * builds a tree of every value before we see one, and for a 1,000-row
 * body that costs twice what scoring it does. libyajl (Debian's libyajl2)
 * streams, but its upstream has made no release since 2014 (Debian
 * carries its CVE fixes), and its callbacks would still need a state
 * machine per body shape, as long as this file, to know which column a
 * value belongs to. The shapes are few and fixed and everything outside
 * them goes to jansson, so this reader only has to recognise a
 * well-formed body exactly as jansson reads it: UTF-8 checked and
 * escapes decoded by jansson's rules (Python's json writes every
 * non-ASCII character as \uXXXX), duplicate keys refused (JSON_REJECT_DUPLICATES),
 * integers through long long (jansson refuses larger ones), reals as
 * strtod rounds them (the fast path below is exact, so it agrees), an
 * integer given for a text column as its "%lld" text. */
#include "sv_reader.h"
#include "csv.h"
#include "err.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PUNT SV_READER_PUNT

typedef struct {
    const char *p, *end;
    char *tmp; /* an unescaped string, until the next one */
    size_t tmp_cap;
} rd_t;

/* What a request's columns need while reading: the schema's name
 * lengths, which were seen, the request's order of them. */
typedef struct {
    const sv_schema_t *s;
    size_t *lens, *order;
    unsigned char *seen;
    size_t buf[3 * 32];
    unsigned char seen_buf[32];
} cx_t;

static int cx_init(cx_t *x, const sv_schema_t *s)
{
    x->s = s;
    if (s->ncols <= 32) {
        x->lens = x->buf;
        x->order = x->buf + 32;
        x->seen = x->seen_buf;
    } else {
        x->lens = malloc(2 * s->ncols * sizeof *x->lens);
        x->seen = malloc(s->ncols);
        if (!x->lens || !x->seen) {
            free(x->lens);
            free(x->seen);
            return MLOPS_ENOMEM;
        }
        x->order = x->lens + s->ncols;
    }
    for (size_t i = 0; i < s->ncols; i++) x->lens[i] = strlen(s->cols[i]), x->order[i] = i;
    memset(x->seen, 0, s->ncols);
    return 0;
}

static void cx_fini(cx_t *x)
{
    if (x->lens != x->buf) {
        free(x->lens);
        free(x->seen);
    }
}

/* The schema column named k[0..n), trying `guess` first (clients write
 * every record's keys in one order); -1 if none. */
static int col_of(const cx_t *x, const char *k, size_t n, size_t guess)
{
    const sv_schema_t *s = x->s;
    if (guess < s->ncols && x->lens[guess] == n && !memcmp(s->cols[guess], k, n)) return (int)guess;
    for (size_t i = 0; i < s->ncols; i++)
        if (x->lens[i] == n && !memcmp(s->cols[i], k, n)) return (int)i;
    return -1;
}

static inline void ws(rd_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

/* Take c if it is next after whitespace. */
static inline int eat(rd_t *r, char c)
{
    ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    return 0;
}

static inline int peek(rd_t *r)
{
    ws(r);
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

static int lit(rd_t *r, const char *w, size_t n)
{
    ws(r);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n)) return 0;
    r->p += n;
    return 1;
}

/* Length of the UTF-8 sequence at p (first byte >= 0x80), 0 if jansson
 * refuses it: overlong forms, surrogates, past U+10FFFF, cut short. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c < 0xC2) return 0;
    if (c < 0xE0) n = 2, v = c & 0x1F;
    else if (c < 0xF0) n = 3, v = c & 0x0F;
    else if (c <= 0xF4) n = 4, v = c & 0x07;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return n;
}

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *v)
{
    if (end - p < 4) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d = c - '0' < 10 ? c - '0' : (c | 32) - 'a' < 6 ? (c | 32) - 'a' + 10 : 16;
        if (d > 15) return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* The rest of a string from its first backslash at p, unescaped into
 * r->tmp after the n0 bytes before it (b); -1 where jansson refuses it
 * (a bad escape, \u0000, a lone surrogate). */
static int str_escaped(rd_t *r, const unsigned char *b, const unsigned char *p, const char **s,
                       size_t *n)
{
    const unsigned char *end = (const unsigned char *)r->end;
    /* the unescaped text is never longer than the escaped */
    size_t need = (size_t)(end - b) + 1;
    if (need > r->tmp_cap) {
        char *t = realloc(r->tmp, need);
        if (!t) return -1;
        r->tmp = t;
        r->tmp_cap = need;
    }
    char *o = r->tmp;
    memcpy(o, b, (size_t)(p - b));
    o += p - b;
    while (p < end) {
        unsigned c = *p;
        if (c == '"') {
            *s = r->tmp;
            *n = (size_t)(o - r->tmp);
            r->p = (const char *)p + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c >= 0x80) {
            size_t k = utf8_len(p, end);
            if (!k) return -1;
            memcpy(o, p, k);
            o += k, p += k;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c, p++;
            continue;
        }
        if (++p >= end) return -1;
        static const char FROM[] = "\"\\/bfnrt", TO[] = "\"\\/\b\f\n\r\t";
        const char *e = *p ? strchr(FROM, *p) : NULL;
        if (e) {
            *o++ = TO[e - FROM], p++;
            continue;
        }
        uint32_t u, lo;
        if (*p != 'u' || hex4(p + 1, end, &u)) return -1;
        p += 5;
        if (u >= 0xDC00 && u <= 0xDFFF) return -1;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF)
                return -1;
            p += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (u == 0) return -1; /* jansson refuses \u0000 (no JSON_ALLOW_NUL) */
        if (u < 0x80) *o++ = (char)u;
        else if (u < 0x800) *o++ = (char)(0xC0 | u >> 6), *o++ = (char)(0x80 | (u & 0x3F));
        else if (u < 0x10000)
            *o++ = (char)(0xE0 | u >> 12), *o++ = (char)(0x80 | (u >> 6 & 0x3F)),
            *o++ = (char)(0x80 | (u & 0x3F));
        else
            *o++ = (char)(0xF0 | u >> 18), *o++ = (char)(0x80 | (u >> 12 & 0x3F)),
            *o++ = (char)(0x80 | (u >> 6 & 0x3F)), *o++ = (char)(0x80 | (u & 0x3F));
    }
    return -1;
}

/* A string: its bytes in [*s, *s + *n), in the body itself or, when it
 * has escapes, unescaped in r->tmp until the next string. -1 if not one. */
static int str(rd_t *r, const char **s, size_t *n)
{
    if (!eat(r, '"')) return -1;
    const unsigned char *p = (const unsigned char *)r->p, *b = p;
    const unsigned char *end = (const unsigned char *)r->end;
    while (p < end) {
        unsigned c = *p;
        if (c == '"') {
            *s = (const char *)b;
            *n = (size_t)(p - b);
            r->p = (const char *)p + 1;
            return 0;
        }
        if (c == '\\') return str_escaped(r, b, p, s, n);
        if (c < 0x20) return -1;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_len(p, end);
        if (!k) return -1;
        p += k;
    }
    return -1;
}

/* A key and its colon. */
static int key(rd_t *r, const char **k, size_t *n)
{
    return str(r, k, n) || !eat(r, ':') ? -1 : 0;
}

static int is(const char *k, size_t n, const char *w)
{
    return strlen(w) == n && !memcmp(k, w, n);
}

typedef struct {
    double v;
    long long ll; /* an integer's value */
    int is_int;   /* no fraction, no exponent: jansson's JSON_INTEGER */
    const char *t;
    size_t n;
} num_t;

static const double P10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number, valued as jansson values it; -1 if the grammar does not
 * hold or jansson refuses it (an integer past long long, a real past
 * DBL_MAX). */
static int number(rd_t *r, num_t *x)
{
    ws(r);
    const char *p = r->p, *end = r->end, *t = p;
    int neg = 0, nd = 0, exp10 = 0, is_int = 1;
    uint64_t mant = 0;
    if (p < end && *p == '-') neg = 1, p++;
    if (p >= end || (unsigned)(*p - '0') > 9) return -1;
    if (*p == '0') p++;
    else
        for (; p < end && (unsigned)(*p - '0') <= 9; p++, nd++)
            if (nd < 19) mant = mant * 10 + (uint64_t)(*p - '0');
    if (p < end && (unsigned)(*p - '0') <= 9) return -1; /* a leading zero */
    if (p < end && *p == '.') {
        const char *f0 = ++p;
        is_int = 0;
        for (; p < end && (unsigned)(*p - '0') <= 9; p++, nd++)
            if (nd < 19) mant = mant * 10 + (uint64_t)(*p - '0'), exp10--;
        if (p == f0) return -1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0, e = 0;
        is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        const char *e0 = p;
        for (; p < end && (unsigned)(*p - '0') <= 9; p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        if (p == e0) return -1;
        exp10 += eneg ? -e : e;
    }
    x->t = t;
    x->n = (size_t)(p - t);
    x->is_int = is_int;
    r->p = p;
    if (is_int) {
        /* 19 digits fit in a uint64_t; jansson refuses past long long */
        if (nd > 19 || mant > (uint64_t)LLONG_MAX + (uint64_t)neg) return -1;
        x->ll = neg ? (mant == (uint64_t)LLONG_MAX + 1 ? LLONG_MIN : -(long long)mant)
                    : (long long)mant;
        x->v = (double)x->ll;
        return 0;
    }
    /* digits and power of ten both exact doubles: one rounding, the
     * correctly rounded result strtod gives too */
    if (nd <= 19 && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 >= 0 ? v * P10[exp10] : v / P10[-exp10];
        x->v = neg ? -v : v;
        return 0;
    }
    char sbuf[128], *buf = x->n < sizeof sbuf ? sbuf : malloc(x->n + 1);
    if (!buf) return -1;
    memcpy(buf, t, x->n);
    buf[x->n] = 0;
    errno = 0;
    x->v = strtod(buf, NULL);
    int over = (x->v == HUGE_VAL || x->v == -HUGE_VAL) && errno == ERANGE;
    if (buf != sbuf) free(buf);
    return over ? -1 : 0;
}

/* Room for row `row` in every column. */
static int room(mlk_frame *f, size_t row)
{
    return row < f->cap ? 0 : mlk_frame_reserve(f, row + 1);
}

/* One value into row `row` of column c, by sv_request's rules (put()). */
static int cell(rd_t *r, mlk_frame *f, size_t c, size_t row)
{
    mlk_col *col = &f->cols[c];
    int ch = peek(r);
    const char *t = "";
    size_t n = 0;
    num_t x;
    if (col->type == MLK_F64) {
        double v = NAN;
        if (ch == '"') {
            if (str(r, &t, &n) || (!mlk_csv_is_na(t, n) && mlk_csv_to_double(t, n, &v) != 0))
                return PUNT;
        } else if (ch == 'n') {
            if (!lit(r, "null", 4)) return PUNT;
        } else {
            if (number(r, &x)) return PUNT;
            v = x.v;
        }
        col->f64[row] = v;
        return 0;
    }
    int missing = 0;
    if (ch == '"') {
        if (str(r, &t, &n)) return PUNT;
        missing = mlk_csv_is_na(t, n);
    } else if (ch == 'n') {
        if (!lit(r, "null", 4)) return PUNT;
        missing = 1;
    } else {
        if (number(r, &x) || !x.is_int) return PUNT;
        t = x.t;
        n = x.n;
        if (x.ll == 0) t = "0", n = 1; /* "-0" is 0 */
    }
    if (missing) n = 0;
    return mlk_frame_str_push(f, c, row, t, n, missing) ? MLOPS_ENOMEM : 0;
}

static mlk_frame *new_frame(const sv_schema_t *s, size_t cap)
{
    return mlk_frame_new(s->ncols, (const char *const *)s->cols, s->types, cap);
}

static void row_ids(mlk_frame *f, size_t n)
{
    for (size_t i = 0; i < n; i++) f->row_id[i] = (int64_t)i;
    f->nrows = n;
}

/* "columns": the request's order of the schema's columns, all of them */
static int split_columns(rd_t *r, cx_t *x, size_t *nc)
{
    const char *k;
    size_t kn;
    if (!eat(r, '[')) return PUNT;
    if (!eat(r, ']')) do {
            int c;
            if (str(r, &k, &kn) || (c = col_of(x, k, kn, *nc)) < 0 || x->seen[c]) return PUNT;
            x->seen[c] = 1;
            x->order[(*nc)++] = (size_t)c;
        } while (eat(r, ','));
    return (*nc && !eat(r, ']')) || *nc != x->s->ncols ? PUNT : 0;
}

/* [row, row, ...], each row read by fn into the frame's next row */
static int rows(rd_t *r, cx_t *x, mlk_frame *f, size_t nc,
                int (*fn)(rd_t *, cx_t *, mlk_frame *, size_t row, size_t nc))
{
    size_t row = 0;
    int rc;
    if (!eat(r, '[')) return PUNT;
    if (!eat(r, ']')) {
        do {
            if ((rc = room(f, row)) != 0 || (rc = fn(r, x, f, row, nc)) != 0) return rc;
            row++;
        } while (eat(r, ','));
        if (!eat(r, ']')) return PUNT;
    }
    row_ids(f, row);
    return 0;
}

/* a row of "data": [nc values in the columns' order] */
static int split_row(rd_t *r, cx_t *x, mlk_frame *f, size_t row, size_t nc)
{
    int rc;
    if (!eat(r, '[')) return PUNT;
    for (size_t i = 0; i < nc; i++)
        if ((i && !eat(r, ',')) || (rc = cell(r, f, x->order[i], row)) != 0) return rc ? rc : PUNT;
    return eat(r, ']') ? 0 : PUNT;
}

/* pandas' "index" (its orient="split" writes it first): an array of
 * scalars, read and dropped, as the jansson path drops it */
static int skip_index(rd_t *r)
{
    if (!eat(r, '[')) return -1;
    if (eat(r, ']')) return 0;
    do {
        const char *t;
        size_t n;
        num_t x;
        int ch = peek(r);
        if (ch == '"' ? str(r, &t, &n)
            : ch == 'n' ? !lit(r, "null", 4)
            : ch == 't' ? !lit(r, "true", 4)
            : ch == 'f' ? !lit(r, "false", 5)
                        : number(r, &x))
            return -1;
    } while (eat(r, ','));
    return eat(r, ']') ? 0 : -1;
}

/* {"columns": [...], "data": [[...], ...]}, columns before data, an
 * "index" anywhere */
static int split(rd_t *r, cx_t *x, mlk_frame *f)
{
    int cols = 0, data = 0, index = 0, rc;
    size_t nc = 0;
    if (!eat(r, '{')) return PUNT;
    do {
        const char *k;
        size_t kn;
        if (key(r, &k, &kn)) return PUNT;
        if (is(k, kn, "columns") && !cols) {
            cols = 1;
            if ((rc = split_columns(r, x, &nc)) != 0) return rc;
        } else if (is(k, kn, "data") && cols && !data) {
            data = 1;
            if ((rc = rows(r, x, f, nc, split_row)) != 0) return rc;
        } else if (is(k, kn, "index") && !index) {
            index = 1;
            if (skip_index(r)) return PUNT;
        } else {
            return PUNT;
        }
    } while (eat(r, ','));
    return data && eat(r, '}') ? 0 : PUNT;
}

/* a record: {"col": value, ...}, every column once */
static int record_row(rd_t *r, cx_t *x, mlk_frame *f, size_t row, size_t nc)
{
    size_t got = 0;
    int rc;
    if (!eat(r, '{')) return PUNT;
    memset(x->seen, 0, nc);
    if (!eat(r, '}')) {
        do {
            const char *k;
            size_t kn;
            int c;
            if (key(r, &k, &kn) || (c = col_of(x, k, kn, got < nc ? x->order[got] : 0)) < 0 ||
                x->seen[c])
                return PUNT;
            x->seen[c] = 1;
            if (got < nc) x->order[got] = (size_t)c;
            got++;
            if ((rc = cell(r, f, (size_t)c, row)) != 0) return rc;
        } while (eat(r, ','));
        if (!eat(r, '}')) return PUNT;
    }
    return got == nc ? 0 : PUNT;
}

/* {"col": [values], ...}: instances by column */
static int columns(rd_t *r, cx_t *x, mlk_frame *f)
{
    size_t n = 0, got = 0;
    int rc;
    if (!eat(r, '{')) return PUNT;
    do {
        const char *k;
        size_t kn, row = 0;
        int c;
        if (key(r, &k, &kn) || (c = col_of(x, k, kn, got)) < 0 || x->seen[c] || !eat(r, '['))
            return PUNT;
        x->seen[c] = 1;
        if (!eat(r, ']')) {
            do {
                if (got ? row >= n : (rc = room(f, row)) != 0) return got ? PUNT : rc;
                if ((rc = cell(r, f, (size_t)c, row)) != 0) return rc;
                row++;
            } while (eat(r, ','));
            if (!eat(r, ']')) return PUNT;
        }
        if (got && row != n) return PUNT;
        n = row;
        got++;
    } while (eat(r, ','));
    if (!eat(r, '}') || got != x->s->ncols) return PUNT;
    row_ids(f, n);
    return 0;
}

static int at_end(rd_t *r)
{
    if (!eat(r, '}')) return 0;
    ws(r);
    return r->p == r->end;
}

/* Any JSON value, read and dropped as jansson reads it (MLflow's
 * "params", V2's "parameters" and "outputs", which the jansson path reads
 * and ignores); -1 where jansson refuses it, or past what is checked here
 * (nesting past 16 levels, an object of over 64 keys or with an escaped
 * key: duplicate keys are refused, compared as written). */
static int skip_value(rd_t *r, int depth)
{
    const char *t;
    size_t n;
    num_t x;
    int ch = peek(r);
    if (ch == '"') return str(r, &t, &n);
    if (ch == 'n' || ch == 't' || ch == 'f')
        return lit(r, ch == 'n' ? "null" : ch == 't' ? "true" : "false", ch == 'f' ? 5 : 4) ? 0
                                                                                          : -1;
    if (ch != '[' && ch != '{') return number(r, &x);
    if (depth >= 16) return -1;
    r->p++;
    if (eat(r, ch == '[' ? ']' : '}')) return 0;
    const char *ks[64];
    size_t kl[64], nk = 0;
    do {
        if (ch == '{') {
            if (nk == 64 || key(r, &t, &n) || (r->tmp && t == r->tmp)) return -1;
            for (size_t i = 0; i < nk; i++)
                if (kl[i] == n && !memcmp(ks[i], t, n)) return -1;
            ks[nk] = t, kl[nk++] = n;
        }
        if (skip_value(r, depth + 1)) return -1;
    } while (eat(r, ','));
    return eat(r, ch == '[' ? ']' : '}') ? 0 : -1;
}

int sv_reader_mlflow(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out)
{
    *out = NULL;
    rd_t r = {body, body + len, NULL, 0};
    cx_t x;
    if (cx_init(&x, s)) return MLOPS_ENOMEM;
    mlk_frame *f = NULL;
    int params = 0, rc = eat(&r, '{') ? 0 : PUNT;
    if (!rc) do {
            const char *k;
            size_t kn;
            if (key(&r, &k, &kn)) {
                rc = PUNT;
                break;
            }
            if (is(k, kn, "params") && !params) {
                params = 1;
                rc = skip_value(&r, 0) ? PUNT : 0;
                continue;
            }
            int form = f                                ? -1
                       : is(k, kn, "dataframe_split")   ? 0
                       : is(k, kn, "dataframe_records") ? 1
                       : is(k, kn, "instances")         ? (peek(&r) == '{' ? 2 : 1)
                                                        : -1;
            rc = form < 0                       ? PUNT
                 : !(f = new_frame(s, 16))      ? MLOPS_ENOMEM
                 : form == 0                    ? split(&r, &x, f)
                 : form == 1                    ? rows(&r, &x, f, s->ncols, record_row)
                                                : columns(&r, &x, f);
        } while (!rc && eat(&r, ','));
    if (!rc && (!f || !at_end(&r))) rc = PUNT;
    free(r.tmp);
    cx_fini(&x);
    if (rc) mlk_frame_destroy(&f);
    *out = f;
    return rc;
}

/* One V2 tensor, {"name", "datatype", "shape", then "data"}, into its
 * column; *n: the rows of the tensors before (SIZE_MAX for none). */
static int tensor(rd_t *r, cx_t *x, mlk_frame **pf, size_t len, size_t *n)
{
    const char *k;
    size_t kn, rows = 0;
    int c = -1, shaped = 0, done = 0, params = 0, rc;
    int dtype = 0; /* 1 numeric, 2 BYTES, 3 another */
    if (!eat(r, '{')) return PUNT;
    do {
        if (done || key(r, &k, &kn)) return PUNT;
        if (is(k, kn, "name")) {
            if (c >= 0 || str(r, &k, &kn) || (c = col_of(x, k, kn, 0)) < 0 || x->seen[c])
                return PUNT;
            x->seen[c] = 1;
        } else if (is(k, kn, "datatype")) {
            if (dtype || str(r, &k, &kn)) return PUNT;
            dtype = is(k, kn, "FP64") || is(k, kn, "FP32") || is(k, kn, "INT64") ||
                            is(k, kn, "INT32")
                        ? 1
                    : is(k, kn, "BYTES") ? 2
                                         : 3;
        } else if (is(k, kn, "shape")) {
            num_t d0, d1;
            if (shaped || !eat(r, '[') || number(r, &d0) || !d0.is_int || d0.ll < 0) return PUNT;
            if (eat(r, ',') && (number(r, &d1) || !d1.is_int || d1.ll != 1)) return PUNT;
            if (!eat(r, ']')) return PUNT;
            shaped = 1;
            rows = (size_t)d0.ll;
        } else if (is(k, kn, "parameters") && !params) {
            params = 1;
            if (skip_value(r, 0)) return PUNT;
        } else if (is(k, kn, "data")) {
            if (c < 0 || !shaped || (*n != SIZE_MAX && rows != *n) || rows > len ||
                dtype != (x->s->types[c] == MLK_F64 ? 1 : 2))
                return PUNT;
            if (!*pf && !(*pf = new_frame(x->s, rows))) return MLOPS_ENOMEM;
            if (!eat(r, '[')) return PUNT;
            for (size_t i = 0; i < rows; i++)
                if ((i && !eat(r, ',')) || (rc = cell(r, *pf, (size_t)c, i)) != 0)
                    return rc ? rc : PUNT;
            if (!eat(r, ']')) return PUNT;
            *n = rows;
            done = 1;
        } else {
            return PUNT;
        }
    } while (eat(r, ','));
    return done && eat(r, '}') ? 0 : PUNT;
}

int sv_reader_v2(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out, char **id)
{
    *out = NULL;
    *id = NULL;
    rd_t r = {body, body + len, NULL, 0};
    cx_t x;
    if (cx_init(&x, s)) return MLOPS_ENOMEM;
    mlk_frame *f = NULL;
    size_t n = SIZE_MAX, got = 0;
    int inputs = 0, extra = 0, rc = eat(&r, '{') ? 0 : PUNT;
    if (!rc) do {
            const char *k;
            size_t kn;
            if ((rc = key(&r, &k, &kn) ? PUNT : 0) != 0) break;
            if (is(k, kn, "id")) {
                const char *v;
                size_t vn;
                if (*id || str(&r, &v, &vn)) rc = PUNT;
                else if (!(*id = strndup(v, vn))) rc = MLOPS_ENOMEM;
            } else if ((is(k, kn, "parameters") && !(extra & 1)) ||
                       (is(k, kn, "outputs") && !(extra & 2))) {
                extra |= is(k, kn, "parameters") ? 1 : 2;
                rc = skip_value(&r, 0) ? PUNT : 0;
            } else if (is(k, kn, "inputs") && !inputs) {
                inputs = 1;
                if (!eat(&r, '[')) rc = PUNT;
                else if (!eat(&r, ']')) {
                    do got++;
                    while (!(rc = tensor(&r, &x, &f, len, &n)) && eat(&r, ','));
                    if (!rc && !eat(&r, ']')) rc = PUNT;
                }
            } else {
                rc = PUNT;
            }
        } while (!rc && eat(&r, ','));
    if (!rc && (!at_end(&r) || !f || got != s->ncols)) rc = PUNT;
    free(r.tmp);
    cx_fini(&x);
    if (rc) {
        mlk_frame_destroy(&f);
        free(*id);
        *id = NULL;
    } else {
        row_ids(f, n);
    }
    *out = f;
    return rc;
}
