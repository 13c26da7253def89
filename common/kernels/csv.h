/* csv.h: RFC 4180 CSV over a byte buffer, split into shards and parsed
 * into frames (frame.h), with pandas.read_csv's defaults for what counts
 * as missing and for how numbers become doubles.
 *
 * Why here: the coordinator splits an upload into shards of whole
 * records without parsing it (mlk_csv_split), and each worker parses its
 * byte range into the columns a job uses (mlk_csv_parse). Both must agree
 * on what a record is, so both live in this one module.
 *
 * Dialect (the same as pandas.read_csv with default arguments):
 *  - fields separated by ',', records by LF or CRLF (a bare CR is data);
 *  - a field that starts with '"' is quoted: inside, '""' is one '"',
 *    and commas, CR and LF are data; after the closing quote, any further
 *    bytes up to the separator are appended literally. A '"' that is not
 *    the first byte of a field is an ordinary byte;
 *  - a UTF-8 byte order mark at the start of the buffer is skipped;
 *  - empty lines and lines of only spaces/tabs are skipped: they are not
 *    records and consume no row id (they still count as physical lines);
 *  - a field is MISSING when it is empty or equal to one of pandas'
 *    default NA tokens (pandas 1.5, the reference): "", "NA", "N/A",
 *    "NaN", "nan", "null", "NULL", "#N/A", "<NA>", "n/a", "-NaN", "-nan",
 *    "#NA", "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN", "#N/A N/A"
 *    (compared after unquoting, so "\"NA\"" is missing too). "None" is
 *    NOT missing: pandas 1.5 keeps it as a string (2.0 added it). Missing numbers are NaN;
 *    missing strings have their missing flag set;
 *  - numbers: optional surrounding spaces, optional sign, digits with an
 *    optional '.', optional exponent e/E; also inf/infinity (any case).
 *    Up to 19 digits with |10-exponent| <= 22 and mantissa <= 2^53 are
 *    converted with one exact multiply or divide (Clinger's fast path,
 *    correctly rounded, equal to pandas' converter); anything else goes
 *    through pandas 1.5's own arithmetic (at most 17 digits, leading
 *    zeros included, then one multiply or divide by the nearest double
 *    to the power of ten), which is not correctly rounded there: the
 *    values are pandas', bit for bit (checked on 20,000 hard cases).
 *    No NA token parses as a number, so for numeric columns the NA test
 *    runs only when the conversion fails.
 * Line numbers are 1-based physical lines of the file: the header is
 * line 1 (unless blank lines precede it). */
#ifndef MLK_CSV_H
#define MLK_CSV_H
#include "frame.h"
#include <stddef.h>
#include <stdint.h>

/* What mlk_csv_parse keeps: nfields is the expected number of fields per
 * record (the header's width); column i of the output frame is field
 * index[i], named names[i], of type types[i]. All arrays are borrowed. */
typedef struct {
    size_t nfields;
    size_t ncols;
    const size_t *index;
    const char *const *names;
    const mlk_coltype *types;
    /* 0 (what mlk_csv_schema_init sets): plain records take the fast
     * path; 1: every record goes through the general tokenizer, for the
     * tests that compare the two. */
    int general_only;
} mlk_csv_schema;

/* Parse the header record of buf[0..len). On success returns 0 and sets
 * *names (malloc'd array of *ncols malloc'd NUL-terminated names, free
 * with mlk_csv_names_free), *ncols, and *data_start (byte offset of the
 * first byte after the header's line terminator). An empty buffer, an
 * unterminated quote or an empty header is MLOPS_EPARSE with a message. */
int mlk_csv_header(const char *buf, size_t len, char ***names, size_t *ncols, size_t *data_start,
                   char *err, size_t errlen);

/* Free a names array from mlk_csv_header and NULL the pointer. */
void mlk_csv_names_free(char ***names, size_t ncols);

/* Fill schema (and the caller's index array of `nwant` entries) by
 * looking up want[i] among the header names hdr[0..nhdr). Returns
 * MLOPS_ENOTFOUND with "column 'x' not in header" if one is absent, and
 * MLOPS_EINVAL if a name is wanted twice. names/types are borrowed. */
int mlk_csv_schema_init(mlk_csv_schema *schema, const char *const *hdr, size_t nhdr,
                        const char *const *want, const mlk_coltype *types, size_t nwant,
                        size_t *index, char *err, size_t errlen);

/* Quote-aware scan of the records in buf[data_start..len) cutting them
 * into shards of `shard_rows` records (the last may be shorter). Sets
 * *offsets and *first_lines to malloc'd arrays of *nshards entries: the
 * byte offset where shard i starts (shards tile [data_start, len): shard
 * i ends where shard i+1 starts, the last at len) and the physical line
 * number at that offset. *total_rows is the number of records (blank
 * lines are not records). With no records, *nshards = 0 and the arrays
 * are NULL. Records are not validated here (field counts are checked by
 * mlk_csv_parse); an unterminated quote simply runs to the end.
 * 0, MLOPS_EINVAL (shard_rows == 0, data_start > len) or MLOPS_ENOMEM. */
int mlk_csv_split(const char *buf, size_t len, size_t data_start, size_t shard_rows,
                  uint64_t **offsets, long **first_lines, size_t *nshards, uint64_t *total_rows);

/* Parse the records of buf[0..len) (one shard: whole records) into a new
 * frame with the schema's columns. Row r of the range gets row_id
 * first_row_id + r; first_line is the physical line number of buf[0]
 * and filename names the file in messages, e.g.
 *   "data.csv:1234: expected 8 fields, got 7"
 *   "data.csv:88: column 'price': 'abc' is not a number".
 * If skip_bad is non-zero, a record with a wrong field count or a
 * non-number in an F64 column is skipped and counted in *rows_bad (its
 * row id is still consumed); otherwise it is MLOPS_EPARSE. A quote still
 * open at the end of the range is always MLOPS_EPARSE naming the line
 * where the record began. On success *out owns the new frame. */
int mlk_csv_parse(const char *buf, size_t len, const mlk_csv_schema *schema, int64_t first_row_id,
                  long first_line, const char *filename, int skip_bad, mlk_frame **out,
                  size_t *rows_bad, char *err, size_t errlen);

/* Convert one unquoted field s[0..n) to a double as pandas does (see the
 * top of this file). Returns 0, or MLOPS_EPARSE if it is not a number.
 * NA tokens are not handled here (see mlk_csv_is_na). */
int mlk_csv_to_double(const char *s, size_t n, double *out);

/* 1 if s[0..n) is empty or one of pandas' default NA tokens. */
int mlk_csv_is_na(const char *s, size_t n);

#endif
