/* fpack.h: the packed feature shard, the layout the featurize task writes
 * so that the SGD epoch loop (sgd.h), cross-validation and evaluation
 * read a shard's rows straight from the store's map: no decode into
 * arrays, no per-task copy and renumbering of every row (pack_rows was
 * ~30% of an epoch task and was redone for each of a search's 18
 * (trial, fold) instances).
 *
 * One row is one record, the record sgd.c's loops read:
 *   i32 label (class index, -1 none), u32 nnz, i32 col[nnz] (the row's
 *   hashed columns as shard-local indexes: the rank of the global column
 *   among the shard's distinct columns), the values (f32[nnz] when every
 *   value of the shard is exactly a float, as hashed counts are, else
 *   padding to 8 and f64[nnz]), padding to 8, f64 dense[n_dense].
 * Records follow each other; one of at most 64 bytes never straddles a
 * 64-byte line (from the start of the records): where it would, the
 * writer leaves a gap to the next line, marked by a record header whose
 * nnz is MLK_REC_GAP (a gap is at least 8 bytes, every record's size
 * being a multiple of 8), so a reader finds every record by walking.
 *
 * The shard (little-endian; every offset from the start of the value):
 *   0  "MLKP", u32 version = 1
 *   8  u64 nrows
 *   16 u64 n_features (hashed columns of the job; 0 without a hashed part)
 *   24 u64 n_dense
 *   32 u64 ncols (the shard's distinct hashed columns)
 *   40 u64 rec_bytes (the records' bytes, gaps included)
 *   48 u32 flags: bit0 hashed part present, bit1 test flags present,
 *      bit2 values are f32, bit3 every record fits one line; u32 0
 *   56 i64 row_id[nrows], u32 col[ncols] (the global columns, strictly
 *      increasing, < n_features), u8 test[nrows] if bit1,
 *      zero padding up to a multiple of 64, then the records.
 * The dense part is always f64 (the featurize stage's scaled numeric
 * columns); an F32 shard (IDX ingest) keeps the MLKX form (fshard.h).
 *
 * Alignment: LMDB does not promise a value's alignment (a large value
 * sits on overflow pages, 16 bytes past a page start, so 8-aligned in
 * practice). mlk_fpack_open reads in place only a buffer whose address
 * is a multiple of 8, so every i64/f64 of the value is aligned; a caller
 * with a misaligned buffer copies it first (mlk_fpack_aligned_copy).
 * mlk_features_decode (fshard.h) accepts this form too, for every other
 * reader of feature shards (export, profile, predict, lbfgs, ...). */
#ifndef MLK_FPACK_H
#define MLK_FPACK_H
#include "fshard.h"
#include <stddef.h>
#include <stdint.h>

#define MLK_REC_GAP UINT32_MAX /* nnz of a gap marker */

enum {
    MLK_FPACK_HASHED = 1,
    MLK_FPACK_TEST = 2,
    MLK_FPACK_F32 = 4,
    MLK_FPACK_ONE_LINE = 8,
};

/* Offset of a record's values, of its dense part, and its size. */
static inline size_t mlk_rec_vals_at(size_t nnz, int f32)
{
    return f32 ? 8 + 4 * nnz : 8 + ((nnz * 4 + 7) & ~(size_t)7);
}

static inline size_t mlk_rec_dense_at(size_t nnz, int f32)
{
    return f32 ? 8 + ((nnz * 8 + 7) & ~(size_t)7) : mlk_rec_vals_at(nnz, 0) + 8 * nnz;
}

static inline size_t mlk_rec_size(size_t nnz, size_t nd, int f32)
{
    return mlk_rec_dense_at(nnz, f32) + 8 * nd;
}

/* Where a record of sz bytes starts when the next free byte is at: at,
 * or the next line if a small record would straddle one. */
static inline size_t mlk_rec_place(size_t at, size_t sz)
{
    return (sz <= 64 && (at & 63) + sz > 64) ? (at + 63) & ~(size_t)63 : at;
}

/* A packed shard read in place: every pointer is into the buffer given
 * to mlk_fpack_open, valid as long as it is. */
typedef struct {
    size_t nrows;
    uint64_t n_features; /* 0 without a hashed part */
    int hashed;          /* a hashed part is present (even if empty) */
    size_t ncols;        /* distinct hashed columns of the shard */
    const uint32_t *cols; /* their global indexes, increasing */
    size_t n_dense;
    int f32;             /* record values are f32 */
    int one_line;        /* every record fits one 64-byte line */
    const int64_t *row_id;
    const uint8_t *test; /* NULL, or nrows flags */
    const uint8_t *recs; /* the records */
    size_t rec_bytes;
    int32_t label_min, label_max; /* over every row (0, -1 when there are none) */
} mlk_fpack;

/* 1 if buf starts like a packed shard ("MLKP"). */
int mlk_fpack_is(const void *buf, size_t len);

/* Encode shard f in the packed layout (*out malloc'd; 64-byte aligned,
 * so it can be opened in place). Its dense part must be f64 (or
 * absent). MLOPS_EINVAL for an F32 dense part or a row of more than
 * MLK_REC_GAP - 1 entries; MLOPS_ENOMEM. */
int mlk_fpack_encode(const mlk_features *f, uint8_t **out, size_t *outlen);

/* Validate buf (which may be garbage) as a packed shard and fill *p;
 * with off non-NULL, off[i] gets row i's record offset (from p->recs).
 * Checks the header against len, the columns (increasing, below
 * n_features), the test flags (0/1), and every record: its place,
 * nnz, local columns (< ncols) and label (>= -1); so a loop over the
 * records can index arrays of ncols entries without checks. buf must
 * be 8-aligned. MLOPS_EPARSE with a one-line message naming the field
 * (the caller adds the shard's key); MLOPS_EINVAL if misaligned. */
int mlk_fpack_open(const uint8_t *buf, size_t len, mlk_fpack *p, size_t *off, char *err, size_t errlen);

/* The record bytes buf's header announces (0 for a header too short or
 * a count beyond len): what mlk_fpack_open_copy's recs must hold. */
size_t mlk_fpack_rec_bytes(const uint8_t *buf, size_t len);

/* mlk_fpack_open with the records copied into recs (at least
 * mlk_fpack_rec_bytes(buf, len) bytes, 8-aligned; e.g. huge pages for a
 * shuffled epoch) as the walk goes, and p->recs pointing there: one pass
 * over the shard's bytes instead of a walk and then a copy (the walk
 * reads each step of the copy from the cache). What is checked is the
 * copy, which the epoch reads. On an error recs holds part of them. */
int mlk_fpack_open_copy(const uint8_t *buf, size_t len, mlk_fpack *p, size_t *off, uint8_t *recs, char *err,
                        size_t errlen);

/* The shard as arrays (fshard.h): hashed columns back to global ones,
 * values as f64 (exact), the dense part f64; bit for bit the shard that
 * was encoded. NULL when out of memory. */
mlk_features *mlk_fpack_to_features(const mlk_fpack *p, const size_t *off);

/* Records of more bytes than this are worth copying for an epoch
 * (mlk_fpack_recs_copy): beyond the TLB's reach with 4 KiB pages. */
#define MLK_FPACK_COPY_MIN ((size_t)6 << 20)

/* len bytes for random access or a large fresh array (2 MiB aligned,
 * marked for transparent huge pages: 512 times fewer page faults and
 * TLB misses); free() it. NULL when out of memory. */
void *mlk_fpack_alloc(size_t len);

/* A buffer kept for reuse (a worker thread's record offsets and record
 * copy, task after task): fresh pages cost their first touch on every
 * task (measured: 8 MiB of offsets 10-15 ms, a 64 MiB copy ~8 ms more
 * than the memcpy, at load 8; transparent huge pages' faults and
 * compaction), pages already mapped only the writes. */
typedef struct {
    void *p;
    size_t cap;
} mlk_fpack_buf;

/* b's memory, at least len bytes: the one it holds when that is large
 * enough, else a fresh mlk_fpack_alloc (the old one freed). NULL when out
 * of memory (b then holds none). */
void *mlk_fpack_buf_get(mlk_fpack_buf *b, size_t len);

/* Free b's memory (b holds none after). */
void mlk_fpack_buf_free(mlk_fpack_buf *b);

/* A copy of p's records in huge pages (mlk_fpack_alloc; free() it), for
 * the epoch loops: a store's map has 4 KiB pages, and a shuffled visit
 * of records spread over more than the TLB's reach missed it on every
 * row, which doubled the epoch (measured: 1M rows, 64 MiB of records,
 * 0.15 against 0.08 CPU-s). The offsets stay valid: point p->recs at the
 * copy. NULL when out of memory (the records can still be read where
 * they are). */
uint8_t *mlk_fpack_recs_copy(const mlk_fpack *p);

/* A copy of buf at an 8-aligned address (malloc'd), for a buffer that
 * is not; NULL when out of memory. */
uint8_t *mlk_fpack_aligned_copy(const void *buf, size_t len);

#endif
