/* bytes.c: see bytes.h. */
#include "bytes.h"
#include <stdlib.h>
#include <string.h>

void bw_init(bw_t *w) { memset(w, 0, sizeof *w); }
void bw_free(bw_t *w) { free(w->p); memset(w, 0, sizeof *w); }

void bw_put(bw_t *w, const void *data, size_t len)
{
    if (w->err) return;
    if (w->n + len > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + len) cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) { w->err = 1; return; }
        w->p = p;
        w->cap = cap;
    }
    if (len) memcpy(w->p + w->n, data, len);
    w->n += len;
}

void bw_u32(bw_t *w, uint32_t v) { bw_put(w, &v, 4); }
void bw_u64(bw_t *w, uint64_t v) { bw_put(w, &v, 8); }
void bw_f64(bw_t *w, double v) { bw_put(w, &v, 8); }
void bw_str(bw_t *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bw_u32(w, (uint32_t)n);
    bw_put(w, s, n);
}
void bw_blob(bw_t *w, const void *data, size_t len)
{
    bw_u64(w, len);
    bw_put(w, data, len);
}

uint8_t *bw_take(bw_t *w, size_t *len)
{
    if (w->err) { bw_free(w); *len = 0; return NULL; }
    uint8_t *p = w->p;
    *len = w->n;
    if (!p) p = malloc(1);
    memset(w, 0, sizeof *w);
    return p;
}

void br_init(br_t *r, const void *data, size_t len)
{
    r->p = data;
    r->n = data ? len : 0;
    r->at = 0;
    r->err = 0;
}

void br_get(br_t *r, void *dst, size_t len)
{
    if (r->err || len > r->n - r->at) {
        r->err = 1;
        memset(dst, 0, len);
        return;
    }
    memcpy(dst, r->p + r->at, len);
    r->at += len;
}

uint32_t br_u32(br_t *r) { uint32_t v; br_get(r, &v, 4); return v; }
uint64_t br_u64(br_t *r) { uint64_t v; br_get(r, &v, 8); return v; }
double br_f64(br_t *r) { double v; br_get(r, &v, 8); return v; }

char *br_str(br_t *r)
{
    uint32_t n = br_u32(r);
    if (r->err || n > r->n - r->at) { r->err = 1; return NULL; }
    char *s = malloc((size_t)n + 1);
    if (!s) { r->err = 1; return NULL; }
    memcpy(s, r->p + r->at, n);
    s[n] = 0;
    r->at += n;
    return s;
}

void br_skip_str(br_t *r)
{
    uint32_t n = br_u32(r);
    if (r->err || n > r->n - r->at) r->err = 1;
    else r->at += n;
}

const uint8_t *br_blob(br_t *r, size_t *len)
{
    uint64_t n = br_u64(r);
    if (r->err || n > r->n - r->at) { r->err = 1; *len = 0; return NULL; }
    const uint8_t *p = r->p + r->at;
    r->at += (size_t)n;
    *len = (size_t)n;
    return p;
}

double *br_f64s(br_t *r, size_t n)
{
    if (r->err || n > (r->n - r->at) / 8) {
        r->err = 1;
        return NULL;
    }
    double *v = malloc(n ? n * 8 : 1);
    if (!v) {
        r->err = 1;
        return NULL;
    }
    br_get(r, v, n * 8);
    return v;
}

int br_done(const br_t *r) { return !r->err && r->at == r->n; }
