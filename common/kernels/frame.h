/* frame.h: a shard of rows in columns, the unit every stage reads and
 * writes, and its byte encoding for the stores.
 *
 * Columns are numeric (double, NaN = missing) or string (offsets into one
 * byte buffer, with a missing flag per row). Every row keeps its global
 * row index: its 0-based position among the data rows of the input file,
 * so that filtering, splitting and exporting never depend on sharding.
 *
 * A frame owns all its buffers. mlk_frame_encode() writes one contiguous
 * little-endian buffer; mlk_frame_decode() validates a buffer from a
 * store or a peer (it may be garbage) and returns MLOPS_EPARSE if it is. */
#ifndef MLK_FRAME_H
#define MLK_FRAME_H
#include <stddef.h>
#include <stdint.h>

typedef enum { MLK_F64 = 1, MLK_STR = 2 } mlk_coltype;

typedef struct {
    char *name;
    mlk_coltype type;
    double *f64;      /* MLK_F64: nrows values, NaN = missing */
    uint64_t *off;    /* MLK_STR: nrows + 1 offsets into str */
    char *str;        /* MLK_STR: concatenated bytes (not NUL-separated) */
    uint8_t *missing; /* MLK_STR: nrows flags, 1 = missing */
    size_t str_cap;   /* capacity of str in bytes (builder use) */
} mlk_col;

typedef struct {
    size_t nrows;
    size_t cap;      /* rows allocated */
    size_t ncols;
    int64_t *row_id; /* nrows global row indexes, non-decreasing (a join repeats a multiplied row's) */
    mlk_col *cols;
} mlk_frame;

/* A new empty frame with the given column names and types, room for
 * `cap` rows (grows on demand). NULL on allocation failure. */
mlk_frame *mlk_frame_new(size_t ncols, const char *const *names, const mlk_coltype *types,
                         size_t cap);
void mlk_frame_destroy(mlk_frame **pf);

/* Ensure room for `rows` rows. 0 or MLOPS_ENOMEM. */
int mlk_frame_reserve(mlk_frame *f, size_t rows);
/* Append `len` bytes to string column c as row `row` (row == current
 * length of the column, i.e. rows are filled in order). */
int mlk_frame_str_push(mlk_frame *f, size_t c, size_t row, const char *s, size_t len, int missing);

/* Column index by name, or -1. */
int mlk_frame_col(const mlk_frame *f, const char *name);

/* String value of row r in column c (not NUL-terminated). */
static inline const char *mlk_str_at(const mlk_col *c, size_t r, size_t *len)
{
    *len = (size_t)(c->off[r + 1] - c->off[r]);
    return c->str + c->off[r];
}

/* Keep only rows with keep[r] != 0, in order. */
void mlk_frame_filter(mlk_frame *f, const uint8_t *keep);

/* Encode into a new malloc'd buffer; returns 0 and sets *out, *outlen. */
int mlk_frame_encode(const mlk_frame *f, uint8_t **out, size_t *outlen);
/* Decode a buffer (copied; the buffer may be freed afterwards). */
int mlk_frame_decode(const uint8_t *buf, size_t len, mlk_frame **out);

#endif
