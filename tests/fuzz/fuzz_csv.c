/* fuzz_csv.c: the CSV module (common/kernels/csv.h) on any bytes, as an
 * uploaded file reaches it: the coordinator reads the header and cuts
 * the records into shards (mlk_csv_header, mlk_csv_split), each worker
 * parses its shard (mlk_csv_parse) into the header's columns, alternately
 * all numeric and all strings, failing and skipping bad rows.
 *
 * Properties checked, beyond "no crash, no leak, no UB":
 *  - the shards tile [data_start, len) in order, with increasing lines;
 *  - an error is one line (a field quoted in it may hold a line break);
 *  - with skip_bad, every shard parses (only an open quote may fail),
 *    and parsed + skipped rows equal the records mlk_csv_split counted;
 *  - a number mlk_csv_to_double accepts is never an NA token;
 *  - the parser's fast path and its general tokenizer (general_only)
 *    give the same frame bytes, skipped rows, return code and message. */
#include "fuzz.h"
#include <stdlib.h>

#include <string.h>

#include "csv.h"
#include "err.h"
#include "frame.h"

#define MAX_COLS 64

static void parse_shards(const char *buf, size_t len, char **names, size_t ncols,
                         const uint64_t *off, const long *lines, size_t nshards,
                         uint64_t total_rows, mlk_coltype type, int skip_bad)
{
    size_t index[MAX_COLS];
    mlk_coltype types[MAX_COLS];
    size_t nc = ncols < MAX_COLS ? ncols : MAX_COLS;
    for (size_t i = 0; i < nc; i++) {
        index[i] = i;
        types[i] = type;
    }
    mlk_csv_schema s;
    char err[256];
    if (mlk_csv_schema_init(&s, (const char *const *)names, ncols, (const char *const *)names,
                            types, nc, index, err, sizeof err) != 0)
        return; /* a name twice in the header */
    uint64_t rows = 0;
    int all_ok = 1;
    int64_t row_id = 0;
    for (size_t i = 0; i < nshards; i++) {
        size_t b = off[i], e = i + 1 < nshards ? off[i + 1] : len;
        mlk_frame *f = NULL;
        size_t bad = 0;
        int rc = mlk_csv_parse(buf + b, e - b, &s, row_id, lines[i], "fuzz.csv", skip_bad, &f,
                               &bad, err, sizeof err);
        /* the fast path and the general tokenizer give the same answer */
        mlk_frame *g = NULL;
        size_t gbad = 0;
        char gerr[256];
        s.general_only = 1;
        int grc = mlk_csv_parse(buf + b, e - b, &s, row_id, lines[i], "fuzz.csv", skip_bad, &g,
                                &gbad, gerr, sizeof gerr);
        s.general_only = 0;
        FUZZ_CHECK(grc == rc);
        if (rc == 0) {
            uint8_t *x = NULL, *y = NULL;
            size_t xl = 0, yl = 0;
            FUZZ_CHECK(gbad == bad);
            if (mlk_frame_encode(f, &x, &xl) == 0 && mlk_frame_encode(g, &y, &yl) == 0)
                FUZZ_CHECK(xl == yl && memcmp(x, y, xl) == 0);
            free(x);
            free(y);
        } else {
            FUZZ_CHECK(strcmp(err, gerr) == 0);
        }
        mlk_frame_destroy(&g);
        if (rc == 0) {
            FUZZ_CHECK(f != NULL && f->ncols == nc);
            rows += f->nrows + bad;
            row_id += (int64_t)(f->nrows + bad);
            for (size_t r = 1; r < f->nrows; r++)
                FUZZ_CHECK(f->row_id[r] > f->row_id[r - 1]);
        } else {
            FUZZ_CHECK(f == NULL);
            FUZZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
            all_ok = 0;
        }
        mlk_frame_destroy(&f);
    }
    if (all_ok && skip_bad)
        FUZZ_CHECK(rows == total_rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    char err[256];

    /* every field-sized prefix as a number */
    for (size_t n = 0; n <= size && n <= 40; n += 7) {
        double v;
        if (mlk_csv_to_double(buf, n, &v) == 0)
            FUZZ_CHECK(!mlk_csv_is_na(buf, n));
    }

    char **names = NULL;
    size_t ncols = 0, ds = 0;
    if (mlk_csv_header(buf, size, &names, &ncols, &ds, err, sizeof err) != 0) {
        FUZZ_CHECK(names == NULL && err[0] != 0 && strchr(err, '\n') == NULL);
        return 0;
    }
    FUZZ_CHECK(ncols > 0 && ds <= size);

    /* a shard size from the data, so that both one shard and many occur */
    size_t shard_rows = size ? (size_t)data[size - 1] % 7 + 1 : 1;
    uint64_t *off = NULL;
    long *lines = NULL;
    size_t nshards = 0;
    uint64_t total = 0;
    int rc = mlk_csv_split(buf, size, ds, shard_rows, &off, &lines, &nshards, &total);
    if (rc == 0) {
        FUZZ_CHECK(nshards == 0 || off[0] == ds);
        for (size_t i = 1; i < nshards; i++) {
            FUZZ_CHECK(off[i] > off[i - 1] && off[i] <= size);
            FUZZ_CHECK(lines[i] > lines[i - 1]);
        }
        FUZZ_CHECK(total <= (uint64_t)nshards * shard_rows);
        parse_shards(buf, size, names, ncols, off, lines, nshards, total, MLK_F64, 1);
        parse_shards(buf, size, names, ncols, off, lines, nshards, total, MLK_STR, 0);
        parse_shards(buf, size, names, ncols, off, lines, nshards, total, MLK_STR, 1);
    }
    free(off);
    free(lines);
    mlk_csv_names_free(&names, ncols);
    return 0;
}
