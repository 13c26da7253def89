/* score.c: see score.h. The order of the steps is the training jobs'
 * own (scale, then hash, then the model), so that nothing a compiler or
 * BLAS could reorder differs between the batch and the served path. */
#include "score.h"
#include "err.h"
#include "hasher.h"
#include "scaler.h"
#include "sgd.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int mlk_score_frame(const mlk_score_spec *s, const mlk_frame *f, double *proba, uint8_t *unscored,
                    char *err, size_t errlen)
{
    const mlk_model *m = s->model;
    if (!m || m->n_features != s->n_features || m->n_dense != s->nnumeric)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "the model does not match its pipeline (%zu numeric, %u hashed "
                            "features)",
                            s->nnumeric, (unsigned)s->n_features);
    size_t n = f->nrows, nnum = s->nnumeric, ncat = s->nhashed;
    memset(unscored, 0, n);
    double *dense = malloc((n * nnum + 1) * sizeof *dense);
    double *col = malloc((n + 1) * sizeof *col);
    mlk_csr *csr = NULL;
    int rc = 0;
    if (!dense || !col) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < nnum; c++) {
        const double *x = f->cols[s->num_col[c]].f64;
        memcpy(col, x, n * sizeof *col);
        mlk_scaler_transform(col, n, s->mean[c], s->scale[c]);
        for (size_t i = 0; i < n; i++) {
            if (isnan(x[i])) unscored[i] = 1;
            dense[i * nnum + c] = col[i];
        }
    }
    for (size_t c = 0; c < ncat; c++)
        for (size_t i = 0; i < n; i++)
            if (f->cols[s->cat_col[c]].missing[i]) unscored[i] = 1;
    mlk_hash_opts ho;
    mlk_hash_opts_default(&ho);
    ho.n_features = s->n_features ? (int32_t)s->n_features : 1;
    ho.alternate_sign = s->alternate_sign;
    if (s->n_features && ncat &&
        (rc = mlk_hash_frame(&ho, f, s->cat_col, ncat, &csr, err, errlen)) != 0)
        goto out;
    if (s->n_features && !ncat && !(csr = mlk_csr_new(n, s->n_features, 0))) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        goto out;
    }
    if (n) {
        mlk_sgd_data d = {n, csr, nnum ? dense : NULL, nnum, NULL};
        rc = mlk_sgd_predict_proba(m, &d, proba, err, errlen);
    }
out:
    mlk_csr_destroy(&csr);
    free(dense);
    free(col);
    return rc;
}
