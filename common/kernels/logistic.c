/* logistic.c: the summed log loss and its gradient over one shard (see
 * logistic.h). One pass over the rows: score, loss, derivative per
 * score, then the derivative times the row added into the gradient. */
#include "logistic.h"
#include "err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int check(const mlk_model *m, const mlk_sgd_data *d, char *err, size_t errlen)
{
    if (!m || !d) return mlops_seterr(err, errlen, MLOPS_EINVAL, "logistic: model or data is NULL");
    if (d->n_dense != m->n_dense || (m->n_dense && d->nrows && !d->dense))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "logistic: data has %zu dense columns, model %llu",
                            d->n_dense, (unsigned long long)m->n_dense);
    if ((m->n_features > 0) != (d->X != NULL))
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "logistic: hashed part %s but model has %llu hashed features",
                            d->X ? "given" : "absent", (unsigned long long)m->n_features);
    if (d->X) {
        const mlk_csr *X = d->X;
        if (X->nrows != d->nrows || X->ncols != m->n_features || !X->indptr || X->indptr[0] != 0)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "logistic: CSR is %zu x %zu, expected %zu x %llu",
                                X->nrows, X->ncols, d->nrows, (unsigned long long)m->n_features);
        for (size_t i = 0; i < d->nrows; i++)
            if (X->indptr[i + 1] < X->indptr[i])
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "logistic: CSR indptr decreases at row %zu", i);
        for (int64_t p = 0; p < X->indptr[d->nrows]; p++)
            if (X->indices[p] < 0 || (uint64_t)X->indices[p] >= m->n_features)
                return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                    "logistic: CSR entry %lld has column %d, n_features %llu",
                                    (long long)p, X->indices[p], (unsigned long long)m->n_features);
    }
    if (d->nrows && !d->y) return mlops_seterr(err, errlen, MLOPS_EINVAL, "logistic: no labels");
    for (size_t i = 0; i < d->nrows; i++)
        if (d->y[i] < 0 || (uint32_t)d->y[i] >= m->n_classes)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "logistic: row %zu has label %d, classes are 0..%u",
                                i, d->y[i], m->n_classes - 1);
    return 0;
}

/* log(1 + e^z) without overflow or cancellation */
static inline double log1pexp(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

int mlk_logistic_loss_grad(const mlk_model *m, const mlk_sgd_data *d, double *loss, double *gw,
                           double *gb, uint8_t *touched, char *err, size_t errlen)
{
    int rc = check(m, d, err, errlen);
    if (rc) return rc;
    size_t kv = m->n_vec, nf = (size_t)m->n_features, nd = (size_t)m->n_dense;
    double *z = malloc(kv * sizeof *z);
    if (!z) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "logistic: out of memory");
    double sum = 0.0;
    const double *wd = m->w + nf * kv;
    double *gd = gw + nf * kv;
    for (size_t i = 0; i < d->nrows; i++) {
        const int32_t *ind = NULL;
        const double *val = NULL;
        size_t nnz = 0;
        if (d->X) {
            int64_t p = d->X->indptr[i];
            ind = d->X->indices + p;
            val = d->X->data + p;
            nnz = (size_t)(d->X->indptr[i + 1] - p);
        }
        const double *x = nd ? d->dense + i * nd : NULL;
        for (size_t k = 0; k < kv; k++) z[k] = m->b[k];
        for (size_t p = 0; p < nnz; p++) {
            const double *wj = m->w + (size_t)ind[p] * kv;
            for (size_t k = 0; k < kv; k++) z[k] += wj[k] * val[p];
        }
        for (size_t j = 0; j < nd; j++)
            for (size_t k = 0; k < kv; k++) z[k] += wd[j * kv + k] * x[j];
        int32_t y = d->y[i];
        if (kv == 1) {
            double yy = y == 1 ? 1.0 : 0.0;
            sum += log1pexp(z[0]) - yy * z[0];
            double e = z[0] >= 0 ? 1.0 / (1.0 + exp(-z[0])) : exp(z[0]) / (1.0 + exp(z[0]));
            z[0] = e - yy;
        } else {
            double zmax = z[0], s = 0.0;
            for (size_t k = 1; k < kv; k++)
                if (z[k] > zmax) zmax = z[k];
            for (size_t k = 0; k < kv; k++) s += exp(z[k] - zmax);
            double lse = zmax + log(s);
            sum += lse - z[y];
            for (size_t k = 0; k < kv; k++) z[k] = exp(z[k] - lse);
            z[y] -= 1.0;
        }
        for (size_t k = 0; k < kv; k++) gb[k] += z[k];
        for (size_t p = 0; p < nnz; p++) {
            double *gj = gw + (size_t)ind[p] * kv;
            for (size_t k = 0; k < kv; k++) gj[k] += z[k] * val[p];
            if (touched) touched[ind[p]] = 1;
        }
        for (size_t j = 0; j < nd; j++)
            for (size_t k = 0; k < kv; k++) gd[j * kv + k] += z[k] * x[j];
    }
    free(z);
    *loss += sum;
    return 0;
}
