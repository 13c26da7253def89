/* sv_drift.c: see sv_drift.h. The features and their binning are the
 * batch drift stage's own (common/driftref.h). */
#include "sv_drift.h"
#include "driftref.h"
#include "psi.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_BIN 0xFFFF

struct sv_drift {
    pthread_mutex_t mu;
    mlops_driftref_t *ref;
    double **cur;           /* per feature, its bins' counts in the window */
    size_t window, n, head; /* ring of window rows */
    uint16_t *bins;         /* window x nf */
};

void sv_drift_destroy(sv_drift_t **pd)
{
    if (!pd || !*pd) return;
    sv_drift_t *d = *pd;
    for (size_t i = 0; d->cur && d->ref && i < d->ref->nf; i++) free(d->cur[i]);
    free(d->cur);
    mlops_driftref_destroy(&d->ref);
    free(d->bins);
    pthread_mutex_destroy(&d->mu);
    free(d);
    *pd = NULL;
}

sv_drift_t *sv_drift_new(const json_t *reference, char *const *cols, size_t ncols,
                         char *const *classes, size_t nclasses, size_t window)
{
    if (!window) return NULL;
    mlops_driftref_t *ref = mlops_driftref_new(reference, cols, ncols, classes, nclasses);
    if (!ref) return NULL;
    sv_drift_t *d = calloc(1, sizeof *d);
    if (!d) {
        mlops_driftref_destroy(&ref);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    d->ref = ref;
    d->window = window;
    d->cur = calloc(ref->nf + 1, sizeof *d->cur);
    d->bins = malloc(window * (ref->nf ? ref->nf : 1) * sizeof *d->bins);
    int ok = d->cur && d->bins;
    for (size_t i = 0; ok && i < ref->nf; i++)
        ok = (d->cur[i] = calloc(ref->f[i].nbins, sizeof **d->cur)) != NULL;
    if (!ok) sv_drift_destroy(&d);
    return d;
}

static void bin_row(const sv_drift_t *d, const mlk_frame *f, size_t r, const double *proba,
                    const uint8_t *unscored, uint16_t *out)
{
    for (size_t i = 0; i < d->ref->nf; i++) {
        size_t b = mlops_driftref_bin(d->ref, i, f, r, proba, unscored);
        out[i] = b == MLOPS_DRIFT_NO_BIN ? NO_BIN : (uint16_t)b;
    }
}

void sv_drift_add(sv_drift_t *d, const mlk_frame *f, const double *proba,
                  const uint8_t *unscored)
{
    if (!d) return;
    size_t nf = d->ref->nf, n = f->nrows;
    /* Bin before taking the lock: binning is the costly part (a search
     * per feature and row) and reads only the reference, which never
     * changes, so the HTTP threads bin in parallel and hold the lock just
     * to move counts. Without the room for that, bin under the lock. */
    uint16_t local[512], *bins = n * nf <= 512 ? local : malloc(n * nf * sizeof *bins);
    if (bins)
        for (size_t r = 0; r < n; r++) bin_row(d, f, r, proba, unscored, &bins[r * nf]);
    pthread_mutex_lock(&d->mu);
    for (size_t r = 0; r < n; r++) {
        uint16_t *row = &d->bins[d->head * nf];
        if (d->n == d->window)
            for (size_t i = 0; i < nf; i++)
                if (row[i] != NO_BIN) d->cur[i][row[i]] -= 1;
        if (bins) memcpy(row, &bins[r * nf], nf * sizeof *row);
        else bin_row(d, f, r, proba, unscored, row);
        for (size_t i = 0; i < nf; i++)
            if (row[i] != NO_BIN) d->cur[i][row[i]] += 1;
        d->head = (d->head + 1) % d->window;
        if (d->n < d->window) d->n++;
    }
    pthread_mutex_unlock(&d->mu);
    if (bins != local) free(bins);
}

const char *sv_drift_status(double psi, double moderate, double shifted)
{
    if (isnan(psi)) return "unknown";
    return psi < moderate ? "stable" : psi < shifted ? "moderate" : "shifted";
}

json_t *sv_drift_json(sv_drift_t *d, double moderate, double shifted, const char **names_out,
                      double *psi_out, size_t max, size_t *nout)
{
    static const char *const KIND[] = {"numeric", "categorical", "proba"};
    json_t *fs = json_array();
    *nout = 0;
    pthread_mutex_lock(&d->mu);
    size_t n = d->n;
    for (size_t i = 0; fs && i < d->ref->nf; i++) {
        const mlops_drift_feature_t *f = &d->ref->f[i];
        double psi = mlk_psi(f->ref, d->cur[i], f->nbins);
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
