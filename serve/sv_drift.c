/* sv_drift.c: see sv_drift.h. Features are read from the reference
 * once; a feature whose reference has no bins (a column with no values)
 * is left out. Missing values are not binned, as in the reference. */
#include "sv_drift.h"
#include "psi.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_BIN 0xFFFF

enum { F_NUM, F_CAT, F_PROBA };

typedef struct {
    char *name;
    int kind;
    size_t col;   /* frame column (F_NUM, F_CAT) or class index (F_PROBA) */
    size_t nbins; /* F_CAT: ntop + 1 ("other") */
    double *edges; /* F_NUM, F_PROBA: nbins - 1 */
    char **values; /* F_CAT: the top values */
    double *ref, *cur;
} feature_t;

struct sv_drift {
    pthread_mutex_t mu;
    feature_t *f;
    size_t nf;
    size_t window, n, head; /* ring of window rows */
    size_t nclasses;        /* the width of a proba row */
    uint16_t *bins;          /* window x nf */
};

static void feature_free(feature_t *f)
{
    free(f->name);
    free(f->edges);
    for (size_t i = 0; f->values && i + 1 < f->nbins; i++) free(f->values[i]);
    free(f->values);
    free(f->ref);
    free(f->cur);
}

void sv_drift_destroy(sv_drift_t **pd)
{
    if (!pd || !*pd) return;
    sv_drift_t *d = *pd;
    for (size_t i = 0; i < d->nf; i++) feature_free(&d->f[i]);
    free(d->f);
    free(d->bins);
    pthread_mutex_destroy(&d->mu);
    free(d);
    *pd = NULL;
}

static int col_of(char *const *cols, size_t ncols, const char *name, size_t *out)
{
    for (size_t i = 0; i < ncols; i++)
        if (!strcmp(cols[i], name)) {
            *out = i;
            return 0;
        }
    return -1;
}

/* edges (an array of numbers) and counts (one more) into f */
static int read_bins(feature_t *f, const json_t *edges, const json_t *counts)
{
    size_t ne = json_array_size(edges);
    if (!json_is_array(edges) || !ne || json_array_size(counts) != ne + 1 || ne > 1000) return -1;
    f->nbins = ne + 1;
    f->edges = calloc(ne, sizeof *f->edges);
    f->ref = calloc(ne + 1, sizeof *f->ref);
    f->cur = calloc(ne + 1, sizeof *f->cur);
    if (!f->edges || !f->ref || !f->cur) return -1;
    for (size_t i = 0; i < ne; i++) {
        if (!json_is_number(json_array_get(edges, i))) return -1;
        f->edges[i] = json_number_value(json_array_get(edges, i));
    }
    for (size_t i = 0; i <= ne; i++) f->ref[i] = json_number_value(json_array_get(counts, i));
    return 0;
}

sv_drift_t *sv_drift_new(const json_t *reference, char *const *cols, size_t ncols,
                         char *const *classes, size_t nclasses, size_t window)
{
    if (!json_is_object(reference) || !window) return NULL;
    const json_t *num = json_object_get(reference, "numeric"),
                 *cat = json_object_get(reference, "categorical"),
                 *pr = json_object_get(reference, "proba");
    const json_t *pcl = json_object_get(pr, "classes");
    size_t max = json_array_size(num) + json_array_size(cat) + json_array_size(pcl);
    sv_drift_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    pthread_mutex_init(&d->mu, NULL);
    d->f = calloc(max + 1, sizeof *d->f);
    if (!d->f) goto fail;
    for (size_t i = 0; i < json_array_size(num); i++) {
        const json_t *e = json_array_get(num, i);
        feature_t *f = &d->f[d->nf];
        const char *name = json_string_value(json_object_get(e, "column"));
        if (!name || col_of(cols, ncols, name, &f->col)) continue;
        f->kind = F_NUM;
        if (!(f->name = strdup(name))) goto fail;
        d->nf++;
        if (read_bins(f, json_object_get(e, "edges"), json_object_get(e, "counts"))) {
            feature_free(f); /* no values in training: nothing to compare with */
            memset(f, 0, sizeof *f);
            d->nf--;
        }
    }
    for (size_t i = 0; i < json_array_size(cat); i++) {
        const json_t *e = json_array_get(cat, i), *top = json_object_get(e, "top");
        feature_t *f = &d->f[d->nf];
        const char *name = json_string_value(json_object_get(e, "column"));
        size_t nt = json_array_size(top);
        if (!name || col_of(cols, ncols, name, &f->col) || nt > 1000) continue;
        f->kind = F_CAT;
        f->nbins = nt + 1;
        f->name = strdup(name);
        f->values = calloc(nt + 1, sizeof *f->values);
        f->ref = calloc(nt + 1, sizeof *f->ref);
        f->cur = calloc(nt + 1, sizeof *f->cur);
        d->nf++;
        if (!f->name || !f->values || !f->ref || !f->cur) goto fail;
        for (size_t k = 0; k < nt; k++) {
            const json_t *t = json_array_get(top, k);
            const char *v = json_string_value(json_object_get(t, "value"));
            if (!(f->values[k] = strdup(v ? v : ""))) goto fail;
            f->ref[k] = json_number_value(json_object_get(t, "count"));
        }
        f->ref[nt] = json_number_value(json_object_get(e, "other"));
    }
    for (size_t i = 0; i < json_array_size(pcl); i++) {
        const json_t *e = json_array_get(pcl, i);
        const char *cls = json_string_value(json_object_get(e, "class"));
        feature_t *f = &d->f[d->nf];
        size_t k = 0;
        while (cls && k < nclasses && strcmp(classes[k], cls)) k++;
        if (!cls || k == nclasses) continue;
        f->kind = F_PROBA;
        f->col = k;
        char name[300];
        if (nclasses == 2) snprintf(name, sizeof name, "proba");
        else snprintf(name, sizeof name, "proba_%s", cls);
        /* the probability's edges are [0, 0.1, ..., 1]: 11 edges, 10 bins */
        const json_t *pc = json_object_get(e, "counts");
        size_t nb = json_array_size(pc);
        if (nb < 2 || nb > 1000 || json_array_size(json_object_get(pr, "edges")) != nb + 1) continue;
        f->nbins = nb;
        f->name = strdup(name);
        f->ref = calloc(nb, sizeof *f->ref);
        f->cur = calloc(nb, sizeof *f->cur);
        d->nf++;
        if (!f->name || !f->ref || !f->cur) goto fail;
        for (size_t b = 0; b < nb; b++) f->ref[b] = json_number_value(json_array_get(pc, b));
    }
    d->window = window;
    d->nclasses = nclasses;
    if (!(d->bins = malloc(window * (d->nf ? d->nf : 1) * sizeof *d->bins))) goto fail;
    return d;
fail:
    sv_drift_destroy(&d);
    return NULL;
}

static size_t bin_of(const feature_t *ft, const mlk_frame *fr, size_t r, const double *proba,
                     size_t K, const uint8_t *unscored)
{
    if (ft->kind == F_NUM) {
        double x = fr->cols[ft->col].f64[r];
        return isnan(x) ? NO_BIN : mlk_psi_bin(ft->edges, ft->nbins - 1, x);
    }
    if (ft->kind == F_CAT) {
        const mlk_col *c = &fr->cols[ft->col];
        if (c->missing[r]) return NO_BIN;
        size_t len;
        const char *s = mlk_str_at(c, r, &len);
        for (size_t k = 0; k + 1 < ft->nbins; k++)
            if (strlen(ft->values[k]) == len && !memcmp(ft->values[k], s, len)) return k;
        return ft->nbins - 1;
    }
    if (unscored[r]) return NO_BIN;
    size_t b = mlk_psi_proba_bin(proba[r * K + ft->col]);
    return b < ft->nbins ? b : ft->nbins - 1;
}

void sv_drift_add(sv_drift_t *d, const mlk_frame *f, const double *proba,
                  const uint8_t *unscored)
{
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    for (size_t r = 0; r < f->nrows; r++) {
        uint16_t *row = &d->bins[d->head * d->nf];
        if (d->n == d->window)
            for (size_t i = 0; i < d->nf; i++)
                if (row[i] != NO_BIN) d->f[i].cur[row[i]] -= 1;
        for (size_t i = 0; i < d->nf; i++) {
            size_t b = bin_of(&d->f[i], f, r, proba, d->nclasses, unscored);
            row[i] = (uint16_t)b;
            if (b != NO_BIN) d->f[i].cur[b] += 1;
        }
        d->head = (d->head + 1) % d->window;
        if (d->n < d->window) d->n++;
    }
    pthread_mutex_unlock(&d->mu);
}

const char *sv_drift_status(double psi, double moderate, double shifted)
{
    if (isnan(psi)) return "unknown";
    return psi < moderate ? "stable" : psi < shifted ? "moderate" : "shifted";
}

json_t *sv_drift_json(sv_drift_t *d, double moderate, double shifted, const char **names_out,
                      double *psi_out, size_t max, size_t *nout)
{
    json_t *fs = json_array();
    *nout = 0;
    pthread_mutex_lock(&d->mu);
    size_t n = d->n;
    for (size_t i = 0; fs && i < d->nf; i++) {
        const feature_t *f = &d->f[i];
        double psi = mlk_psi(f->ref, f->cur, f->nbins);
        static const char *const KIND[] = {"numeric", "categorical", "proba"};
        json_array_append_new(fs, json_pack("{s:s,s:s,s:o,s:s}", "feature", f->name, "kind",
                                            KIND[f->kind], "psi",
                                            isnan(psi) ? json_null() : json_real(psi), "status",
                                            sv_drift_status(psi, moderate, shifted)));
        if (*nout < max) {
            names_out[*nout] = f->name;
            psi_out[(*nout)++] = psi;
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (!fs) return NULL;
    return json_pack("{s:I,s:I,s:{s:f,s:f},s:o}", "window", (json_int_t)d->window, "rows",
                     (json_int_t)n, "thresholds", "moderate", moderate, "shifted", shifted,
                     "features", fs);
}
