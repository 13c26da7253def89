/* driftref.c: see driftref.h. */
#include "driftref.h"
#include "psi.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BINS 1000

static void feature_free(mlops_drift_feature_t *f)
{
    free(f->name);
    free(f->edges);
    for (size_t i = 0; f->values && i + 1 < f->nbins; i++) free(f->values[i]);
    free(f->values);
    free(f->lens);
    free(f->order);
    free(f->ref);
    memset(f, 0, sizeof *f);
}

void mlops_driftref_destroy(mlops_driftref_t **pr)
{
    if (!pr || !*pr) return;
    for (size_t i = 0; i < (*pr)->nf; i++) feature_free(&(*pr)->f[i]);
    free((*pr)->f);
    free(*pr);
    *pr = NULL;
}

static int col_of(char *const *cols, size_t ncols, const char *name, size_t *out)
{
    for (size_t i = 0; name && i < ncols; i++)
        if (!strcmp(cols[i], name)) {
            *out = i;
            return 0;
        }
    return -1;
}

/* 1 if the feature was read, 0 to leave it out, -1 out of memory */
static int read_numeric(mlops_drift_feature_t *f, const json_t *e)
{
    const json_t *edges = json_object_get(e, "edges"), *counts = json_object_get(e, "counts");
    size_t ne = json_array_size(edges);
    if (!json_is_array(edges) || !ne || ne >= MAX_BINS || json_array_size(counts) != ne + 1)
        return 0;
    for (size_t i = 0; i < ne; i++)
        if (!json_is_number(json_array_get(edges, i))) return 0;
    f->nbins = ne + 1;
    f->edges = calloc(ne, sizeof *f->edges);
    f->ref = calloc(ne + 1, sizeof *f->ref);
    if (!f->edges || !f->ref) return -1;
    for (size_t i = 0; i < ne; i++) f->edges[i] = json_number_value(json_array_get(edges, i));
    for (size_t i = 0; i <= ne; i++) f->ref[i] = json_number_value(json_array_get(counts, i));
    return 1;
}

/* top value k against the bytes s[0..n), by length first */
static int value_cmp(const mlops_drift_feature_t *f, size_t k, const char *s, size_t n)
{
    if (f->lens[k] != n) return f->lens[k] < n ? -1 : 1;
    return n ? memcmp(f->values[k], s, n) : 0;
}

static int read_categorical(mlops_drift_feature_t *f, const json_t *e)
{
    const json_t *top = json_object_get(e, "top");
    size_t nt = json_array_size(top);
    if (nt >= MAX_BINS) return 0;
    f->nbins = nt + 1;
    f->values = calloc(nt + 1, sizeof *f->values);
    f->ref = calloc(nt + 1, sizeof *f->ref);
    if (!f->values || !f->ref) return -1;
    for (size_t k = 0; k < nt; k++) {
        const json_t *t = json_array_get(top, k);
        const char *v = json_string_value(json_object_get(t, "value"));
        if (!(f->values[k] = strdup(v ? v : ""))) return -1;
        f->ref[k] = json_number_value(json_object_get(t, "count"));
    }
    f->ref[nt] = json_number_value(json_object_get(e, "other"));
    /* the values sorted by (length, bytes, index), for a binary search
     * per served row: the scan it replaces was most of mlops-serve's time
     * on 1,000-row requests */
    f->lens = malloc((nt + 1) * sizeof *f->lens);
    f->order = malloc((nt + 1) * sizeof *f->order);
    if (!f->lens || !f->order) return -1;
    for (size_t k = 0; k < nt; k++) {
        f->lens[k] = strlen(f->values[k]);
        size_t j = k;
        for (; j > 0 && value_cmp(f, f->order[j - 1], f->values[k], f->lens[k]) > 0; j--)
            f->order[j] = f->order[j - 1];
        f->order[j] = k;
    }
    return 1;
}

static int read_proba(mlops_drift_feature_t *f, const json_t *pr, const json_t *e)
{
    /* the probability's edges are [0, 0.1, ..., 1]: 11 edges, 10 bins */
    const json_t *pc = json_object_get(e, "counts");
    size_t nb = json_array_size(pc);
    if (nb < 2 || nb >= MAX_BINS || json_array_size(json_object_get(pr, "edges")) != nb + 1)
        return 0;
    f->nbins = nb;
    if (!(f->ref = calloc(nb, sizeof *f->ref))) return -1;
    for (size_t b = 0; b < nb; b++) f->ref[b] = json_number_value(json_array_get(pc, b));
    return 1;
}

mlops_driftref_t *mlops_driftref_new(const json_t *reference, char *const *cols, size_t ncols,
                                     char *const *classes, size_t nclasses)
{
    if (!json_is_object(reference)) return NULL;
    const json_t *num = json_object_get(reference, "numeric"),
                 *cat = json_object_get(reference, "categorical"),
                 *pr = json_object_get(reference, "proba");
    const json_t *pcl = json_object_get(pr, "classes");
    size_t max = json_array_size(num) + json_array_size(cat) + json_array_size(pcl);
    mlops_driftref_t *d = calloc(1, sizeof *d);
    if (!d || !(d->f = calloc(max + 1, sizeof *d->f))) goto fail;
    d->nclasses = nclasses;
    for (size_t g = 0; g < 3; g++) {
        const json_t *list = g == 0 ? num : g == 1 ? cat : pcl;
        for (size_t i = 0; i < json_array_size(list); i++) {
            const json_t *e = json_array_get(list, i);
            mlops_drift_feature_t *f = &d->f[d->nf];
            char name[300];
            if (g < 2) {
                const char *c = json_string_value(json_object_get(e, "column"));
                if (col_of(cols, ncols, c, &f->col)) continue;
                snprintf(name, sizeof name, "%s", c);
            } else {
                const char *cls = json_string_value(json_object_get(e, "class"));
                size_t k = 0;
                while (cls && k < nclasses && strcmp(classes[k], cls)) k++;
                if (!cls || k == nclasses) continue;
                f->col = k;
                if (nclasses == 2) snprintf(name, sizeof name, "proba");
                else snprintf(name, sizeof name, "proba_%s", cls);
            }
            f->kind = g == 0 ? MLOPS_DRIFT_NUMERIC : g == 1 ? MLOPS_DRIFT_CATEGORICAL
                                                              : MLOPS_DRIFT_PROBA;
            int ok = g == 0 ? read_numeric(f, e) : g == 1 ? read_categorical(f, e)
                                                          : read_proba(f, pr, e);
            if (ok > 0 && !(f->name = strdup(name))) ok = -1;
            if (ok < 0) {
                d->nf++; /* freed with the rest */
                goto fail;
            }
            if (ok == 0) feature_free(f);
            else d->nf++;
        }
    }
    return d;
fail:
    mlops_driftref_destroy(&d);
    return NULL;
}

size_t mlops_driftref_bin(const mlops_driftref_t *d, size_t i, const mlk_frame *f, size_t r,
                          const double *proba, const uint8_t *unscored)
{
    const mlops_drift_feature_t *ft = &d->f[i];
    if (ft->kind == MLOPS_DRIFT_NUMERIC) {
        double x = f->cols[ft->col].f64[r];
        return isnan(x) ? MLOPS_DRIFT_NO_BIN : mlk_psi_bin(ft->edges, ft->nbins - 1, x);
    }
    if (ft->kind == MLOPS_DRIFT_CATEGORICAL) {
        const mlk_col *c = &f->cols[ft->col];
        if (c->missing[r]) return MLOPS_DRIFT_NO_BIN;
        size_t len = 0;
        /* a column of only empty strings has no buffer: NULL + 0 is undefined */
        const char *s = c->str ? mlk_str_at(c, r, &len) : "";
        size_t lo = 0, hi = ft->nbins - 1; /* the first in order not below s */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (value_cmp(ft, ft->order[mid], s, len) < 0) lo = mid + 1;
            else hi = mid;
        }
        /* equal values sort by index, so this is the first match, as the scan found */
        if (lo + 1 < ft->nbins && !value_cmp(ft, ft->order[lo], s, len)) return ft->order[lo];
        return ft->nbins - 1;
    }
    if (unscored[r]) return MLOPS_DRIFT_NO_BIN;
    size_t b = mlk_psi_proba_bin(proba[r * d->nclasses + ft->col]);
    return b < ft->nbins ? b : ft->nbins - 1;
}
