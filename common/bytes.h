/* bytes.h: little binary writer/reader for bulk shard payloads (k-NN
 * lists, rating pairs) and the coordinator's journalled stage state; task
 * arguments and results are proto/tasks.proto messages. The reader
 * checks every length against the buffer: the bytes may come from a peer
 * or the disk, so a short or garbage buffer sets r->err instead of
 * reading past the end. Values are little-endian host order. */
#ifndef MLOPS_BYTES_H
#define MLOPS_BYTES_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int err;
} bw_t;

typedef struct {
    const uint8_t *p;
    size_t n, at;
    int err;
} br_t;

void bw_init(bw_t *w);
void bw_free(bw_t *w);
void bw_put(bw_t *w, const void *data, size_t len);
void bw_u32(bw_t *w, uint32_t v);
void bw_u64(bw_t *w, uint64_t v);
void bw_f64(bw_t *w, double v);
void bw_str(bw_t *w, const char *s);                 /* u32 length + bytes */
void bw_blob(bw_t *w, const void *data, size_t len); /* u64 length + bytes */
/* Hand the buffer to the caller (malloc'd); w is reset. */
uint8_t *bw_take(bw_t *w, size_t *len);

void br_init(br_t *r, const void *data, size_t len);
uint32_t br_u32(br_t *r);
uint64_t br_u64(br_t *r);
double br_f64(br_t *r);
/* A string into a malloc'd NUL-terminated copy (NULL on error). */
char *br_str(br_t *r);
/* Step over a string (bw_str's layout) without copying it. */
void br_skip_str(br_t *r);
/* A blob as a pointer into the buffer (borrowed) and its length. */
const uint8_t *br_blob(br_t *r, size_t *len);
/* n doubles into a new malloc'd array (NULL and r->err on a short buffer). */
double *br_f64s(br_t *r, size_t n);
/* Raw bytes into dst. */
void br_get(br_t *r, void *dst, size_t len);
/* 1 if the reader consumed everything without error. */
int br_done(const br_t *r);

#endif
