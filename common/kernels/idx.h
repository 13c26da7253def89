/* idx.h: reader for IDX files (the MNIST / Fashion-MNIST format).
 *
 * An IDX file is a big-endian header -- magic 0x00 0x00 <type> <ndim>,
 * then ndim uint32 dimensions -- followed by the data in row-major order.
 * Only unsigned bytes (type 0x08) are supported, which is what the label
 * (idx1) and image (idx3) files use. Files may be gzip-compressed (as
 * Debian ships them) or plain; zlib reads both transparently.
 *
 * Every file is outside input: the magic, the dimensions and the amount
 * of data are checked, and a short or garbage file gives MLOPS_EPARSE (or
 * MLOPS_EIO / MLOPS_ENOTFOUND) with a message naming the file; nothing
 * here asserts or crashes on bad bytes.
 *
 * "Row" means the first dimension: an image (rows*cols bytes) or a label.
 * A range [begin, begin+count) of rows can be read alone, for sharding. */
#ifndef MLK_IDX_H
#define MLK_IDX_H
#include <stddef.h>
#include <stdint.h>

#define MLK_IDX_MAX_DIMS 4

typedef struct {
    int ndim;                        /* 1..MLK_IDX_MAX_DIMS */
    uint32_t dims[MLK_IDX_MAX_DIMS]; /* dims[0] = number of rows */
    size_t nrows;                    /* dims[0] */
    size_t row_len;                  /* product of dims[1..ndim-1] (1 for idx1) */
} mlk_idx_header;

/* Reads and validates the header of `path`. 0 or a negative code with a
 * message in err. */
int mlk_idx_read_header(const char *path, mlk_idx_header *h, char *err, size_t errlen);

/* Reads rows [begin, begin+count) of an unsigned-byte IDX file as floats
 * (pixel values 0..255 unscaled), row-major count x row_len. count ==
 * SIZE_MAX means "to the end". On success *out is a malloc'd buffer the
 * caller frees, *nrows_out the number of rows read and, if h is non-NULL,
 * the file's header is stored there. Reading to the end also checks that
 * no bytes follow the data. A range past the end is MLOPS_EINVAL. */
int mlk_idx_read_f32(const char *path, size_t begin, size_t count, float **out,
                     size_t *nrows_out, mlk_idx_header *h, char *err, size_t errlen);

/* Same for a label file (row_len must be 1): *out gets ints 0..255. */
int mlk_idx_read_labels(const char *path, size_t begin, size_t count, int32_t **out,
                        size_t *nrows_out, char *err, size_t errlen);

/* Row range of shard `i` of `nshards` over `nrows` rows: contiguous
 * blocks of ceil(nrows/nshards) rows, the last one possibly shorter or
 * empty. Returns 0, or MLOPS_EINVAL if nshards == 0 or i >= nshards. */
int mlk_idx_shard_range(size_t nrows, size_t nshards, size_t i, size_t *begin, size_t *count);

#endif
