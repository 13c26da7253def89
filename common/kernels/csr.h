/* csr.h: a compressed sparse row matrix, the form of hashed features.
 * Row r has entries indptr[r] .. indptr[r+1]-1 of indices/data; indices
 * within a row are sorted ascending and unique (duplicates summed), as
 * scikit-learn's FeatureHasher produces after sum_duplicates(). */
#ifndef MLK_CSR_H
#define MLK_CSR_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t nrows;
    size_t ncols;     /* n_features */
    int64_t *indptr;  /* nrows + 1 */
    int32_t *indices; /* nnz */
    double *data;     /* nnz */
    size_t nnz_cap;
} mlk_csr;

#endif
