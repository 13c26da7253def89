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
#include <string.h>

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
/* The same encoding written into the caller's dst, which holds exactly
 * mlk_frame_encoded_size(f) bytes (a store's reserved space). */
size_t mlk_frame_encoded_size(const mlk_frame *f);
void mlk_frame_encode_to(const mlk_frame *f, uint8_t *dst);
/* Decode a buffer (copied; the buffer may be freed afterwards). */
int mlk_frame_decode(const uint8_t *buf, size_t len, mlk_frame **out);

/* --- a view of an encoded frame, without decoding it ------------------
 *
 * A task that reads a stored frame only to test or filter its rows
 * (clean's quantile rounds and filter) need not copy every column into a
 * new frame: a view points into the encoded bytes (validated exactly as
 * mlk_frame_decode validates them) and borrows them, so the buffer must
 * outlive the view. The arrays of an encoding need not be aligned for
 * their type: numbers are read through mlk_frame_view_f64 (a copy into
 * the caller's aligned array) or memcpy. */
typedef struct {
    char *name;               /* owned by the view, NUL-terminated */
    mlk_coltype type;
    const uint8_t *f64;       /* MLK_F64: nrows little-endian doubles */
    const uint8_t *missing;   /* MLK_STR: nrows flags */
    const uint8_t *off;       /* MLK_STR: nrows + 1 little-endian u64 offsets */
    const uint8_t *str;       /* MLK_STR: the bytes the offsets point into */
} mlk_colview;

typedef struct {
    size_t nrows;
    size_t ncols;
    const uint8_t *row_id; /* nrows little-endian i64 */
    mlk_colview *cols;
    const uint8_t *end; /* the end of the viewed bytes */
} mlk_frameview;

/* A view of buf[0..len) (an encoding from mlk_frame_encode, or garbage:
 * MLOPS_EPARSE, as mlk_frame_decode). On success *out owns only the view
 * structure and names; the bytes stay borrowed. */
int mlk_frame_view(const uint8_t *buf, size_t len, mlk_frameview **out);
void mlk_frame_view_destroy(mlk_frameview **pv);

/* Column index by name, or -1. */
int mlk_frame_view_col(const mlk_frameview *v, const char *name);

/* Copy numeric column c (MLK_F64) into dst[0..nrows). */
void mlk_frame_view_f64(const mlk_frameview *v, size_t c, double *dst);

/* String value of row r of column c (MLK_STR); the offsets were
 * validated by mlk_frame_view. */
static inline const char *mlk_view_str_at(const mlk_colview *c, size_t r, size_t *len)
{
    uint64_t a, b;
    memcpy(&a, c->off + r * 8, 8);
    memcpy(&b, c->off + r * 8 + 8, 8);
    *len = (size_t)(b - a);
    return (const char *)c->str + a;
}

/* The encoding of the viewed frame with only the rows with keep[r] != 0,
 * in order: the same bytes as mlk_frame_decode + mlk_frame_filter +
 * mlk_frame_encode, in one pass into one buffer. Returns 0
 * and sets *out (malloc'd) and *outlen, or MLOPS_ENOMEM. */
int mlk_frame_encode_filtered(const mlk_frameview *v, const uint8_t *keep, uint8_t **out,
                              size_t *outlen);
/* The same encoding's exact size (the kept strings' bytes counted from
 * the offsets), and the encoding written into dst, which holds exactly
 * that many bytes (a store's reserved space: nothing past it is
 * touched). */
size_t mlk_frame_filtered_size(const mlk_frameview *v, const uint8_t *keep);
void mlk_frame_encode_filtered_to(const mlk_frameview *v, const uint8_t *keep, uint8_t *dst,
                                  size_t size);

#endif
