/* fuzz_idx.c: the IDX reader (common/kernels/idx.h), plain and gzip, on
 * any bytes. The reader takes a path (zlib's gzFile reads the file), so
 * the bytes go to an in-memory file (memfd) opened by its /proc path.
 *
 * Input: byte 0 chooses how the rest reaches the reader (bit 0: gzip it
 * first, so that the fuzzer explores the IDX layout behind the gzip path
 * as well as zlib's own gzip parsing of raw bytes, which seeds that are
 * gzip files reach), byte 1 the first row and byte 2 the row count of
 * the range read (255: to the end); the rest is the file.
 *
 * Properties checked, beyond "no crash, no leak, no UB": an error names
 * the file and is never "out of memory" (inputs are small, so that means
 * a size taken from the header was allocated before the data was read); a whole-file read gives the header's row count; a range read
 * gives the rows asked for, equal to the same rows of the whole file. */
#include "fuzz.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "err.h"
#include "idx.h"

static int memfd = -1;
static char path[64];

static uint8_t *gzip_bytes(const uint8_t *in, size_t n, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, n) + 32;
    uint8_t *out = malloc(cap);
    if (out) {
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)n;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
            free(out);
            out = NULL;
        } else {
            *outlen = z.total_out;
        }
    }
    deflateEnd(&z);
    return out;
}

static void put_file(const uint8_t *b, size_t n)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_idx", 0);
        FUZZ_CHECK(memfd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    }
    FUZZ_CHECK(ftruncate(memfd, 0) == 0);
    FUZZ_CHECK(pwrite(memfd, b, n, 0) == (ssize_t)n);
}

static void check_err(int rc, const char *err)
{
    FUZZ_CHECK(rc < 0);
    if (rc == MLOPS_ENOMEM)
        fprintf(stderr, "%s\n", err);
    FUZZ_CHECK(rc != MLOPS_ENOMEM);
    FUZZ_CHECK(strstr(err, path) != NULL);
    FUZZ_CHECK(strchr(err, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int gz = data[0] & 1;
    size_t begin = data[1];
    size_t count = data[2] == 255 ? SIZE_MAX : data[2];
    const uint8_t *file = data + 3;
    size_t flen = size - 3;
    uint8_t *packed = NULL;
    if (gz) {
        packed = gzip_bytes(file, flen, &flen);
        FUZZ_CHECK(packed != NULL);
        file = packed;
    }
    put_file(file, flen);

    char err[512];
    mlk_idx_header h, h2;
    int hrc = mlk_idx_read_header(path, &h, err, sizeof err);
    if (hrc != 0)
        check_err(hrc, err);
    else
        FUZZ_CHECK(h.ndim >= 1 && h.ndim <= MLK_IDX_MAX_DIMS && h.row_len >= 1);

    float *all = NULL;
    size_t nall = 0;
    int arc = mlk_idx_read_f32(path, 0, SIZE_MAX, &all, &nall, &h2, err, sizeof err);
    if (arc == 0) {
        FUZZ_CHECK(hrc == 0 && nall == h.nrows && h2.row_len == h.row_len);
    } else {
        check_err(arc, err);
        FUZZ_CHECK(all == NULL);
    }

    float *part = NULL;
    size_t npart = 0;
    int prc = mlk_idx_read_f32(path, begin, count, &part, &npart, NULL, err, sizeof err);
    if (prc == 0) {
        FUZZ_CHECK(hrc == 0);
        FUZZ_CHECK(count == SIZE_MAX ? npart == h.nrows - begin : npart == count);
        if (arc == 0)
            FUZZ_CHECK(npart == 0 ||
                       memcmp(part, all + begin * h.row_len, npart * h.row_len * sizeof *part) == 0);
    } else {
        check_err(prc, err);
    }

    int32_t *labels = NULL;
    size_t nlab = 0;
    int lrc = mlk_idx_read_labels(path, begin, count, &labels, &nlab, err, sizeof err);
    if (lrc == 0) {
        FUZZ_CHECK(hrc == 0 && h.row_len == 1);
        for (size_t i = 0; i < nlab; i++)
            FUZZ_CHECK(labels[i] >= 0 && labels[i] <= 255);
    } else {
        check_err(lrc, err);
    }

    if (hrc == 0) {
        size_t b, c;
        size_t nsh = begin + 1, sum = 0;
        for (size_t i = 0; i < nsh; i++) {
            FUZZ_CHECK(mlk_idx_shard_range(h.nrows, nsh, i, &b, &c) == 0);
            FUZZ_CHECK(b + c <= h.nrows);
            sum += c;
        }
        FUZZ_CHECK(sum == h.nrows);
    }

    free(labels);
    free(part);
    free(all);
    free(packed);
    return 0;
}
