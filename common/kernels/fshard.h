/* fshard.h: a shard of model inputs — what the hash stage (CSV) or the
 * IDX ingest writes and the split, train, evaluate and k-NN stages read.
 *
 * Per row: its global row id, its class index (0..K-1, or -1 when the
 * job has no label), optionally a test flag (set by the split stage),
 * a sparse part (hashed categorical features, CSR over n_features
 * columns) and a dense part (n_dense values: the scaled numeric columns
 * as f64, or pixels as f32). The model input of a row is
 * hstack([sparse, dense]): dense column k is input n_features + k.
 *
 * Encoding (little-endian): "MLKX" u32 version=1, u64 nrows,
 *   i64 row_id[n], i32 label[n], u32 has_test, u8 test[n] if has_test,
 *   u32 has_csr, then (u64 n_features, i64 indptr[n+1], i32 indices[nnz],
 *   f64 data[nnz]) if has_csr,
 *   u64 n_dense, u32 dense_type (1 = f64, 2 = f32), values[n * n_dense].
 * mlk_features_decode validates a buffer that may be garbage; it also
 * reads the packed form ("MLKP", fpack.h) that the featurize task
 * writes, into the same arrays. */
#ifndef MLK_FEATURES_H
#define MLK_FEATURES_H
#include <stddef.h>
#include <stdint.h>
#include "csr.h"

enum { MLK_DENSE_F64 = 1, MLK_DENSE_F32 = 2 };

typedef struct {
    size_t nrows;
    int64_t *row_id;
    int32_t *label;   /* class index, -1 = none */
    uint8_t *test;    /* NULL, or 1 = test row */
    mlk_csr *csr;     /* NULL, or the sparse part */
    size_t n_dense;
    int dense_type;   /* MLK_DENSE_F64 / MLK_DENSE_F32 */
    double *dense64;  /* nrows * n_dense, row-major (F64) */
    float *dense32;   /* nrows * n_dense, row-major (F32) */
} mlk_features;

/* An empty shard of nrows rows (row_id, label allocated; label = -1). */
mlk_features *mlk_features_new(size_t nrows);
void mlk_features_destroy(mlk_features **pf);

int mlk_features_encode(const mlk_features *f, uint8_t **out, size_t *outlen);
int mlk_features_decode(const uint8_t *buf, size_t len, mlk_features **out);

/* The rows with sel[r] == want (e.g. the train rows: test flag 0), as a
 * new shard; the test flags are dropped. NULL on allocation failure. */
mlk_features *mlk_features_select(const mlk_features *f, const uint8_t *sel, uint8_t want);

/* Standardise the dense part in place: column c becomes (x - mean[c]) /
 * scale[c], computed in double (and rounded to float for an F32 shard),
 * as the scale stage transforms it. MLOPS_EINVAL if n != n_dense. */
int mlk_features_scale(mlk_features *f, const double *mean, const double *scale, size_t n);

/* Dense part as f64 (a new buffer for F32 shards, converted). */
double *mlk_features_dense_f64(const mlk_features *f);
/* Dense part as f32 (a new buffer for F64 shards, converted). */
float *mlk_features_dense_f32(const mlk_features *f);

#endif
