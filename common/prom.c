/* prom.c: see prom.h. We write the text exposition ourselves because
 * Debian packages no C client for Prometheus: `apt-cache search
 * prometheus` (bookworm) lists only Go (golang-github-prometheus-client-
 * golang-dev, ...) and Perl (libnet-prometheus-perl) libraries, and
 * digitalocean's prometheus-client-c (libprom) is not packaged. The
 * format is small: HELP/TYPE lines, one line per series, histograms as
 * cumulative _bucket{le=...} plus _sum and _count. */
#include "prom.h"
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_COUNTER, P_GAUGE, P_HISTOGRAM };

const double MLOPS_PROM_SECONDS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,      2.5,   5,    10,    30,   60,  300};
const size_t MLOPS_PROM_NSECONDS = sizeof MLOPS_PROM_SECONDS / sizeof MLOPS_PROM_SECONDS[0];

typedef struct {
    char *lv[2];
    double value; /* counter, gauge; histogram: sum */
    unsigned long long count;
    unsigned long long buckets[MLOPS_PROM_MAX_BUCKETS]; /* not cumulative */
} series_t;

struct mlops_prom_fam {
    mlops_prom_t *reg;
    int type;
    char *name, *help;
    char *ln[2];
    int nlabels;
    double bounds[MLOPS_PROM_MAX_BUCKETS];
    size_t nbounds;
    series_t *series;
    size_t nseries, cap;
};

struct mlops_prom {
    pthread_mutex_t mu;
    mlops_prom_fam_t **fams;
    size_t nfams, cap;
    unsigned long long dropped;
};

mlops_prom_t *mlops_prom_new(void)
{
    mlops_prom_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void fam_free(mlops_prom_fam_t *f)
{
    for (size_t i = 0; i < f->nseries; i++) {
        free(f->series[i].lv[0]);
        free(f->series[i].lv[1]);
    }
    free(f->series);
    free(f->name);
    free(f->help);
    free(f->ln[0]);
    free(f->ln[1]);
    free(f);
}

void mlops_prom_destroy(mlops_prom_t **pr)
{
    if (!pr || !*pr) return;
    mlops_prom_t *r = *pr;
    for (size_t i = 0; i < r->nfams; i++) fam_free(r->fams[i]);
    free(r->fams);
    pthread_mutex_destroy(&r->mu);
    free(r);
    *pr = NULL;
}

static int valid_name(const char *s)
{
    if (!s || !*s || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

static mlops_prom_fam_t *fam_new(mlops_prom_t *r, int type, const char *name, const char *help,
                                 const char *labels)
{
    if (!r || !valid_name(name) || !help) return NULL;
    size_t nl = strlen(name);
    if (type == P_COUNTER && (nl < 7 || strcmp(name + nl - 6, "_total"))) return NULL;
    mlops_prom_fam_t *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->reg = r;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    if (!f->name || !f->help) {
        fam_free(f);
        return NULL;
    }
    if (labels && *labels) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", labels);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (f->nlabels == 2 || !valid_name(t) || !strcmp(t, "le")) {
                fam_free(f);
                return NULL;
            }
            f->ln[f->nlabels++] = strdup(t);
        }
    }
    pthread_mutex_lock(&r->mu);
    int ok = 1;
    for (size_t i = 0; i < r->nfams; i++)
        if (!strcmp(r->fams[i]->name, name)) ok = 0;
    if (ok && r->nfams == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        mlops_prom_fam_t **n = realloc(r->fams, cap * sizeof *n);
        if (n) {
            r->fams = n;
            r->cap = cap;
        } else
            ok = 0;
    }
    if (ok) r->fams[r->nfams++] = f;
    pthread_mutex_unlock(&r->mu);
    if (!ok) {
        fam_free(f);
        return NULL;
    }
    return f;
}

mlops_prom_fam_t *mlops_prom_counter(mlops_prom_t *r, const char *name, const char *help,
                                     const char *labels)
{
    return fam_new(r, P_COUNTER, name, help, labels);
}

mlops_prom_fam_t *mlops_prom_gauge(mlops_prom_t *r, const char *name, const char *help,
                                   const char *labels)
{
    return fam_new(r, P_GAUGE, name, help, labels);
}

mlops_prom_fam_t *mlops_prom_histogram(mlops_prom_t *r, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t nbounds)
{
    if (!bounds || nbounds == 0 || nbounds > MLOPS_PROM_MAX_BUCKETS) return NULL;
    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1])) return NULL;
    size_t nl = name ? strlen(name) : 0;
    if (nl > 6 && !strcmp(name + nl - 6, "_total")) return NULL;
    mlops_prom_fam_t *f = fam_new(r, P_HISTOGRAM, name, help, labels);
    if (!f) return NULL;
    memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
    f->nbounds = nbounds;
    return f;
}

static int same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

/* The series for the label values, created on first use; NULL when the
 * family is full. Called with the lock held. */
static series_t *find(mlops_prom_fam_t *f, const char *l1, const char *l2)
{
    const char *lv[2] = {f->nlabels > 0 ? (l1 ? l1 : "") : NULL,
                         f->nlabels > 1 ? (l2 ? l2 : "") : NULL};
    for (size_t i = 0; i < f->nseries; i++)
        if (same(f->series[i].lv[0], lv[0]) && same(f->series[i].lv[1], lv[1]))
            return &f->series[i];
    if (f->nseries == MLOPS_PROM_MAX_SERIES) {
        f->reg->dropped++;
        return NULL;
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        series_t *n = realloc(f->series, cap * sizeof *n);
        if (!n) return NULL;
        f->series = n;
        f->cap = cap;
    }
    series_t *s = &f->series[f->nseries];
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 2; i++)
        if (lv[i] && !(s->lv[i] = strdup(lv[i]))) {
            free(s->lv[0]);
            return NULL;
        }
    f->nseries++;
    return s;
}

void mlops_prom_add(mlops_prom_fam_t *f, const char *l1, const char *l2, double v)
{
    if (!f || f->type == P_HISTOGRAM) return;
    /* a counter only goes up: a negative add is a caller bug, not data */
    if (f->type == P_COUNTER && !(v >= 0)) return;
    pthread_mutex_lock(&f->reg->mu);
    series_t *s = find(f, l1, l2);
    if (s) s->value += v;
    pthread_mutex_unlock(&f->reg->mu);
}

void mlops_prom_set(mlops_prom_fam_t *f, const char *l1, const char *l2, double v)
{
    if (!f || f->type != P_GAUGE) return;
    pthread_mutex_lock(&f->reg->mu);
    series_t *s = find(f, l1, l2);
    if (s) s->value = v;
    pthread_mutex_unlock(&f->reg->mu);
}

void mlops_prom_observe(mlops_prom_fam_t *f, const char *l1, const char *l2, double v)
{
    if (!f || f->type != P_HISTOGRAM || isnan(v)) return;
    pthread_mutex_lock(&f->reg->mu);
    series_t *s = find(f, l1, l2);
    if (s) {
        size_t b = 0;
        while (b < f->nbounds && v > f->bounds[b]) b++;
        if (b < f->nbounds) s->buckets[b]++;
        s->count++;
        s->value += v;
    }
    pthread_mutex_unlock(&f->reg->mu);
}

void mlops_prom_zero(mlops_prom_fam_t *f)
{
    if (!f || f->type != P_GAUGE) return;
    pthread_mutex_lock(&f->reg->mu);
    for (size_t i = 0; i < f->nseries; i++) f->series[i].value = 0;
    pthread_mutex_unlock(&f->reg->mu);
}

double mlops_prom_value(mlops_prom_fam_t *f, const char *l1, const char *l2)
{
    if (!f) return 0;
    double v = 0;
    pthread_mutex_lock(&f->reg->mu);
    const char *lv[2] = {f->nlabels > 0 ? (l1 ? l1 : "") : NULL,
                         f->nlabels > 1 ? (l2 ? l2 : "") : NULL};
    for (size_t i = 0; i < f->nseries; i++)
        if (same(f->series[i].lv[0], lv[0]) && same(f->series[i].lv[1], lv[1]))
            v = f->type == P_HISTOGRAM ? (double)f->series[i].count : f->series[i].value;
    pthread_mutex_unlock(&f->reg->mu);
    return v;
}

/* ------------------------------------------------------------------ */
/* rendering                                                           */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
}

/* Label values escape \, " and newline; HELP text escapes \ and newline. */
static void sb_escaped(sbuf_t *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\') sb_printf(b, "\\\\");
        else if (*s == '\n') sb_printf(b, "\\n");
        else if (*s == '"' && quote) sb_printf(b, "\\\"");
        else sb_printf(b, "%c", *s);
    }
}

static void sb_number(sbuf_t *b, double v)
{
    if (isnan(v)) sb_printf(b, "NaN");
    else if (isinf(v)) sb_printf(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) sb_printf(b, "%.0f", v);
    else sb_printf(b, "%.17g", v);
}

/* {a="x",b="y"} plus an optional le; nothing when there are no labels. */
static void sb_labels(sbuf_t *b, const mlops_prom_fam_t *f, const series_t *s, const char *le)
{
    if (f->nlabels == 0 && !le) return;
    sb_printf(b, "{");
    for (int i = 0; i < f->nlabels; i++) {
        sb_printf(b, "%s%s=\"", i ? "," : "", f->ln[i]);
        sb_escaped(b, s->lv[i] ? s->lv[i] : "", 1);
        sb_printf(b, "\"");
    }
    if (le) sb_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    sb_printf(b, "}");
}

/* One family's series as they were when the render began: `s` copied
 * under the lock; the family's name, help, labels and bounds never change
 * after registration, and a series' label strings live until the
 * registry does, so both are read without it. */
typedef struct {
    const mlops_prom_fam_t *f;
    series_t *s;
    size_t n;
} famcopy_t;

static void render_fam(sbuf_t *b, const famcopy_t *fc)
{
    const mlops_prom_fam_t *f = fc->f;
    static const char *tn[] = {"counter", "gauge", "histogram"};
    sb_printf(b, "# HELP %s ", f->name);
    sb_escaped(b, f->help, 0);
    sb_printf(b, "\n# TYPE %s %s\n", f->name, tn[f->type]);
    /* a family without labels shows 0 before its first update, so a
     * query for it finds the series from the first scrape */
    series_t zero = {0};
    size_t n = fc->n;
    const series_t *ss = fc->s;
    if (n == 0 && f->nlabels == 0) {
        ss = &zero;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const series_t *s = &ss[i];
        if (f->type != P_HISTOGRAM) {
            sb_printf(b, "%s", f->name);
            sb_labels(b, f, s, NULL);
            sb_printf(b, " ");
            sb_number(b, s->value);
            sb_printf(b, "\n");
            continue;
        }
        unsigned long long cum = 0;
        for (size_t k = 0; k <= f->nbounds; k++) {
            char le[40];
            if (k < f->nbounds) {
                cum += s->buckets[k];
                snprintf(le, sizeof le, "%.17g", f->bounds[k]);
            } else {
                cum = s->count;
                snprintf(le, sizeof le, "+Inf");
            }
            sb_printf(b, "%s_bucket", f->name);
            sb_labels(b, f, s, le);
            sb_printf(b, " %llu\n", cum);
        }
        sb_printf(b, "%s_sum", f->name);
        sb_labels(b, f, s, NULL);
        sb_printf(b, " ");
        sb_number(b, s->value);
        sb_printf(b, "\n%s_count", f->name);
        sb_labels(b, f, s, NULL);
        sb_printf(b, " %llu\n", s->count);
    }
}

/* Why copy first: the loop thread and the executors update the registry
 * under its one lock, and formatting a few hundred lines takes far longer
 * than copying their numbers; a scrape would stall every update for the
 * whole of it. Under the lock only memcpy runs; the text is written after. */
char *mlops_prom_render(mlops_prom_t *r, size_t *len)
{
    pthread_mutex_lock(&r->mu);
    size_t nf = r->nfams;
    unsigned long long dropped = r->dropped;
    famcopy_t *fc = calloc(nf ? nf : 1, sizeof *fc);
    int oom = !fc;
    for (size_t i = 0; !oom && i < nf; i++) {
        const mlops_prom_fam_t *f = r->fams[i];
        fc[i].f = f;
        fc[i].n = f->nseries;
        if (!f->nseries) continue;
        fc[i].s = malloc(f->nseries * sizeof *fc[i].s);
        if (!fc[i].s) oom = 1;
        else memcpy(fc[i].s, f->series, f->nseries * sizeof *fc[i].s);
    }
    pthread_mutex_unlock(&r->mu);
    sbuf_t b = {.cap = 4096};
    b.buf = oom ? NULL : malloc(b.cap);
    if (b.buf) {
        b.buf[0] = 0;
        for (size_t i = 0; i < nf; i++) render_fam(&b, &fc[i]);
        sb_printf(&b,
                  "# HELP mlops_metrics_dropped_series_total Updates dropped because a family "
                  "reached %d label combinations.\n"
                  "# TYPE mlops_metrics_dropped_series_total counter\n"
                  "mlops_metrics_dropped_series_total %llu\n",
                  MLOPS_PROM_MAX_SERIES, dropped);
    }
    for (size_t i = 0; fc && i < nf; i++) free(fc[i].s);
    free(fc);
    if (!b.buf || b.oom) {
        free(b.buf);
        return NULL;
    }
    if (len) *len = b.len;
    return b.buf;
}

void mlops_prom_build_info(mlops_prom_t *r, const char *role)
{
    mlops_prom_fam_t *f =
        mlops_prom_gauge(r, "mlops_build_info", "Always 1; the labels name the program and release.",
                         "role,version");
    mlops_prom_set(f, role, MLOPS_VERSION, 1);
}
