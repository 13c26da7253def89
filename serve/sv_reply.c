/* sv_reply.c: see sv_reply.h. */
#include "sv_reply.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing reply body. */
typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sbuf_t;

static int sb_room(sbuf_t *s, size_t n)
{
    if (s->oom) return -1;
    if (s->n + n + 1 <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->n + n + 1) cap *= 2;
    char *b = realloc(s->b, cap);
    if (!b) {
        s->oom = 1;
        return -1;
    }
    s->b = b;
    s->cap = cap;
    return 0;
}

static void sb_put(sbuf_t *s, const char *p, size_t n)
{
    if (sb_room(s, n)) return;
    memcpy(s->b + s->n, p, n);
    s->n += n;
    s->b[s->n] = 0;
}

static void sb_str(sbuf_t *s, const char *p) { sb_put(s, p, strlen(p)); }

static void sb_num(sbuf_t *s, double v)
{
    if (!isfinite(v)) {
        sb_put(s, "null", 4);
        return;
    }
    if (sb_room(s, 32)) return;
    s->n += sv_reply_g17(v, s->b + s->n);
}

/* x as a JSON string literal (the model's name, the request's id). */
static void sb_quoted(sbuf_t *s, const char *x)
{
    json_t *j = json_string(x);
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!q) s->oom = 1;
    else sb_str(s, q);
    free(q);
}

static int sb_done(sbuf_t *s, char **body, size_t *len)
{
    if (s->oom) {
        free(s->b);
        return -1;
    }
    *body = s->b;
    *len = s->n;
    return 0;
}

/* ---- "%.17g" -------------------------------------------------------- */

/* The 17 significant digits of a (> 0) with exponent e10 (a = D x
 * 10^(e10-16)), rounded half to even as glibc's printf does, computed
 * exactly: a = m 2^e2, so D = round(m 10^k / 2^-e2), k = 16 - e10, all
 * in 128 bits while 0 <= k <= 21 and the shift is below 128. 0 if a is
 * outside that range. */
static uint64_t digits17(double a, int e10)
{
    int k = 16 - e10, e2;
    if (k < 0 || k > 21) return 0;
    double fr = frexp(a, &e2); /* a = fr 2^e2, fr in [0.5, 1) */
    uint64_t m = (uint64_t)ldexp(fr, 53);
    e2 -= 53;
    unsigned __int128 N = m;
    for (int i = 0; i < k; i++) N *= 10;
    if (e2 >= 0) return e2 > 10 ? 0 : (uint64_t)(N << e2);
    int sh = -e2;
    if (sh >= 127) return 0;
    unsigned __int128 q = N >> sh, rem = N - (q << sh), half = (unsigned __int128)1 << (sh - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint64_t)q;
}

size_t sv_reply_g17(double v, char *out)
{
    static const uint64_t LO = 10000000000000000ULL, HI = 100000000000000000ULL;
    double a = fabs(v);
    uint64_t d = 0;
    int e10 = 0;
    if (a >= 1e-5 && a < 1e17) {
        e10 = (int)floor(log10(a));
        for (int tries = 0; tries < 3; tries++) {
            d = digits17(a, e10);
            if (!d) break;
            if (d < LO) e10--;
            else if (d >= HI) e10++;
            else break;
            d = 0;
        }
    }
    if (!d || e10 < -5 || e10 > 16) return (size_t)snprintf(out, 32, "%.17g", v);
    char dg[17];
    for (int i = 16; i >= 0; i--) dg[i] = (char)('0' + d % 10), d /= 10;
    int nd = 17;
    while (nd > 1 && dg[nd - 1] == '0') nd--; /* %g drops trailing zeros */
    char *o = out;
    if (signbit(v)) *o++ = '-';
    if (e10 < -4) { /* d.ddde-05 */
        *o++ = dg[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dg + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        memcpy(o, "e-05", 4);
        o += 4;
    } else if (e10 < 0) { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -e10 - 1; i++) *o++ = '0';
        memcpy(o, dg, (size_t)nd);
        o += nd;
    } else { /* ddd.ddd */
        memcpy(o, dg, (size_t)e10 + 1);
        o += e10 + 1;
        if (nd > e10 + 1) {
            *o++ = '.';
            memcpy(o, dg + e10 + 1, (size_t)(nd - e10 - 1));
            o += nd - e10 - 1;
        }
    }
    *o = 0;
    return (size_t)(o - out);
}

/* ---- the bodies ------------------------------------------------------- */

/* the class scored highest: the first of equals, as the predict kind */
static size_t best_of(const double *p, size_t K)
{
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* {"predictions": [{"proba": p, "label": "1"}, ...], "model": {...}} */
int sv_reply_mlflow(const sv_model_t *m, size_t n, const double *proba, const uint8_t *unscored,
                    const char *id, char **body, size_t *len)
{
    (void)id;
    size_t K = m->art->nclasses;
    sbuf_t b = {0};
    sb_room(&b, n * (K * 32 + 48) + 256);
    sb_str(&b, "{\"predictions\":[");
    for (size_t i = 0; i < n; i++) {
        const double *p = &proba[i * K];
        sb_str(&b, i ? ",{\"proba\":" : "{\"proba\":");
        if (unscored[i]) {
            sb_str(&b, "null,\"label\":null}");
            continue;
        }
        if (K == 2) sb_num(&b, p[1]);
        else {
            sb_str(&b, "{");
            for (size_t k = 0; k < K; k++) {
                if (k) sb_str(&b, ",");
                sb_str(&b, m->class_json[k]);
                sb_str(&b, ":");
                sb_num(&b, p[k]);
            }
            sb_str(&b, "}");
        }
        sb_str(&b, ",\"label\":");
        sb_str(&b, m->class_json[best_of(p, K)]);
        sb_str(&b, "}");
    }
    sb_str(&b, "],\"model\":{\"name\":");
    sb_quoted(&b, m->name);
    char tail[64];
    snprintf(tail, sizeof tail, ",\"version\":%u}}\n", m->version);
    sb_str(&b, tail);
    return sb_done(&b, body, len);
}

int sv_reply_v2(const sv_model_t *m, size_t n, const double *proba, const uint8_t *unscored,
                const char *id, char **body, size_t *len)
{
    size_t K = m->art->nclasses, w = K == 2 ? 1 : K;
    sbuf_t b = {0};
    char t[160];
    sb_room(&b, n * (w * 26 + 8) + 512);
    sb_str(&b, "{\"model_name\":");
    sb_quoted(&b, m->name);
    snprintf(t, sizeof t, ",\"model_version\":\"%u\"", m->version);
    sb_str(&b, t);
    if (id) {
        sb_str(&b, ",\"id\":");
        sb_quoted(&b, id);
    }
    if (K == 2) snprintf(t, sizeof t, ",\"outputs\":[{\"name\":\"proba\",\"datatype\":\"FP64\",\"shape\":[%zu],\"data\":[", n);
    else snprintf(t, sizeof t, ",\"outputs\":[{\"name\":\"proba\",\"datatype\":\"FP64\",\"shape\":[%zu,%zu],\"data\":[", n, K);
    sb_str(&b, t);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < w; k++) {
            if (i || k) sb_str(&b, ",");
            if (unscored[i]) sb_str(&b, "null");
            else sb_num(&b, proba[i * K + (K == 2 ? 1 : k)]);
        }
    snprintf(t, sizeof t, "]},{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[%zu],\"data\":[", n);
    sb_str(&b, t);
    for (size_t i = 0; i < n; i++) {
        if (i) sb_str(&b, ",");
        sb_str(&b, unscored[i] ? "null" : m->class_json[best_of(&proba[i * K], K)]);
    }
    sb_str(&b, "]}]}\n");
    return sb_done(&b, body, len);
}
