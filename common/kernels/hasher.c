/* hasher.c: see hasher.h.
 *
 * Speed: the frame entry hashes one column at a time in a tight loop.
 * The token "name=value" is never built: MurmurHash3 is computed as a
 * stream, so the state after the bytes "name=" is computed once per
 * column and every value continues from it. Results go straight into
 * the CSR arrays at slot row*ncols + col (a missing value leaves a -1
 * index); one pass per row then compacts, sorts (stable insertion sort,
 * rows are short) and sums duplicates in place. No allocation per token.
 *
 * CSR encoding: "MLKC", u32 version = 1, u64 nrows, u64 ncols, u64 nnz,
 * i64 indptr[nrows + 1], i32 indices[nnz], f64 data[nnz], little-endian
 * (the host order on every supported platform, as in frame.c). */
#include "hasher.h"
#include "err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- MurmurHash3_x86_32, as a stream ------------------------------- */

#define MM_C1 0xcc9e2d51u
#define MM_C2 0x1b873593u

static inline uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t mm_block(uint32_t h1, uint32_t k1)
{
    k1 *= MM_C1;
    k1 = rotl32(k1, 15);
    k1 *= MM_C2;
    h1 ^= k1;
    h1 = rotl32(h1, 13);
    return h1 * 5 + 0xe6546b64u;
}

/* The state after absorbing some bytes: h1 over the whole blocks seen
 * so far, up to 3 pending bytes, and the byte count. */
typedef struct {
    uint32_t h1;
    unsigned char pend[4];
    size_t npend;
    size_t len;
} mm_state;

static inline uint32_t mm_body(uint32_t h1, const unsigned char *p, size_t nblocks)
{
    for (size_t i = 0; i < nblocks; i++) h1 = mm_block(h1, load_le32(p + 4 * i));
    return h1;
}

static inline int32_t mm_final(uint32_t h1, const unsigned char *tail, size_t ntail, size_t len)
{
    uint32_t k1 = 0;
    switch (ntail) {
    case 3: k1 ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: k1 ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1:
        k1 ^= tail[0];
        k1 *= MM_C1;
        k1 = rotl32(k1, 15);
        k1 *= MM_C2;
        h1 ^= k1;
    }
    h1 ^= (uint32_t)len;
    h1 ^= h1 >> 16;
    h1 *= 0x85ebca6bu;
    h1 ^= h1 >> 13;
    h1 *= 0xc2b2ae35u;
    h1 ^= h1 >> 16;
    return (int32_t)h1;
}

static void mm_absorb(mm_state *s, const unsigned char *p, size_t n)
{
    s->len += n;
    while (s->npend && n) { /* complete the pending block first */
        s->pend[s->npend++] = *p++;
        n--;
        if (s->npend == 4) {
            s->h1 = mm_block(s->h1, load_le32(s->pend));
            s->npend = 0;
        }
    }
    s->h1 = mm_body(s->h1, p, n / 4);
    p += n & ~(size_t)3;
    for (size_t i = 0; i < (n & 3); i++) s->pend[s->npend++] = p[i];
}

/* Hash of (bytes absorbed into s) followed by v[0..n), s unchanged. */
static inline int32_t mm_finish_with(const mm_state *s, const unsigned char *v, size_t n)
{
    uint32_t h1 = s->h1;
    size_t total = s->len + n;
    if (s->npend == 0) {
        h1 = mm_body(h1, v, n / 4);
        return mm_final(h1, v + (n & ~(size_t)3), n & 3, total);
    }
    unsigned char blk[4];
    memcpy(blk, s->pend, s->npend);
    size_t need = 4 - s->npend;
    if (n < need) {
        memcpy(blk + s->npend, v, n);
        return mm_final(h1, blk, s->npend + n, total);
    }
    memcpy(blk + s->npend, v, need);
    h1 = mm_block(h1, load_le32(blk));
    v += need;
    n -= need;
    h1 = mm_body(h1, v, n / 4);
    return mm_final(h1, v + (n & ~(size_t)3), n & 3, total);
}

int32_t mlk_murmur3_32(const void *key, size_t len, uint32_t seed)
{
    mm_state s = {.h1 = seed};
    if (!key) key = ""; /* only valid with len == 0 */
    return mm_finish_with(&s, key, len);
}

void mlk_hash_opts_default(mlk_hash_opts *o)
{
    o->n_features = MLK_HASH_DEFAULT_FEATURES;
    o->alternate_sign = 1;
}

/* --- CSR life cycle ------------------------------------------------- */

mlk_csr *mlk_csr_new(size_t nrows, size_t ncols, size_t nnz_cap)
{
    if (nrows >= SIZE_MAX / sizeof(int64_t) - 1) return NULL;
    if (nnz_cap > SIZE_MAX / sizeof(double)) return NULL;
    mlk_csr *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nrows = nrows;
    m->ncols = ncols;
    m->nnz_cap = nnz_cap;
    m->indptr = calloc(nrows + 1, sizeof *m->indptr);
    m->indices = malloc((nnz_cap ? nnz_cap : 1) * sizeof *m->indices);
    m->data = malloc((nnz_cap ? nnz_cap : 1) * sizeof *m->data);
    if (!m->indptr || !m->indices || !m->data) mlk_csr_destroy(&m);
    return m;
}

void mlk_csr_destroy(mlk_csr **pm)
{
    if (!pm || !*pm) return;
    free((*pm)->indptr);
    free((*pm)->indices);
    free((*pm)->data);
    free(*pm);
    *pm = NULL;
}

/* --- rows ----------------------------------------------------------- */

/* Sort the n entries of a row by index (stable, so equal indexes keep
 * token order) and sum equal indexes in that order. Returns the new
 * length. Rows of hashed categoricals are short; insertion sort is the
 * fast choice there and stays correct (if slower) on long rows. */
static size_t row_canon(int32_t *idx, double *val, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int32_t ki = idx[i];
        double vi = val[i];
        size_t j = i;
        while (j > 0 && idx[j - 1] > ki) {
            idx[j] = idx[j - 1];
            val[j] = val[j - 1];
            j--;
        }
        idx[j] = ki;
        val[j] = vi;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && idx[w - 1] == idx[i]) {
            val[w - 1] += val[i];
        } else {
            idx[w] = idx[i];
            val[w] = val[i];
            w++;
        }
    }
    return w;
}

/* Long rows (many tokens) through the low-level entry: a stable merge
 * sort by index with a scratch buffer, then the same summing pass. */
static void merge_sort_row(int32_t *idx, double *val, int32_t *si, double *sv, size_t n)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi) {
                if (idx[b] < idx[a]) { si[k] = idx[b]; sv[k++] = val[b++]; }
                else { si[k] = idx[a]; sv[k++] = val[a++]; }
            }
            while (a < mid) { si[k] = idx[a]; sv[k++] = val[a++]; }
            while (b < hi) { si[k] = idx[b]; sv[k++] = val[b++]; }
        }
        memcpy(idx, si, n * sizeof *idx);
        memcpy(val, sv, n * sizeof *val);
    }
}

#define SHORT_ROW 32

static int check_opts(const mlk_hash_opts *o, char *err, size_t errlen)
{
    if (!o || o->n_features < 1)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: n_features must be in [1, %d], got %ld",
                            INT32_MAX, o ? (long)o->n_features : 0L);
    return 0;
}

/* Shrink the entry arrays when most of the capacity went unused. */
static void csr_trim(mlk_csr *m)
{
    size_t nnz = (size_t)m->indptr[m->nrows];
    if (nnz >= m->nnz_cap / 2 || nnz == 0) return;
    int32_t *i = realloc(m->indices, nnz * sizeof *i);
    if (i) m->indices = i;
    double *d = realloc(m->data, nnz * sizeof *d);
    if (d) m->data = d;
    if (i && d) m->nnz_cap = nnz;
}

int mlk_hash_tokens(const mlk_hash_opts *o, size_t nrows, const size_t *row_ptr,
                    const mlk_hash_token *tok, mlk_csr **out, char *err, size_t errlen)
{
    int rc;
    if ((rc = check_opts(o, err, errlen)) != 0) return rc;
    if (!out || !row_ptr || (row_ptr[nrows] > 0 && !tok))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: NULL argument");
    *out = NULL;
    if (row_ptr[0] != 0)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: row_ptr[0] must be 0");
    size_t longest = 0;
    for (size_t r = 0; r < nrows; r++) {
        if (row_ptr[r + 1] < row_ptr[r])
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: row_ptr decreases at row %zu", r);
        if (row_ptr[r + 1] - row_ptr[r] > longest) longest = row_ptr[r + 1] - row_ptr[r];
    }
    mlk_csr *m = mlk_csr_new(nrows, (size_t)o->n_features, row_ptr[nrows]);
    int32_t *si = NULL;
    double *sv = NULL;
    if (m && longest > SHORT_ROW) {
        si = malloc(longest * sizeof *si);
        sv = malloc(longest * sizeof *sv);
    }
    if (!m || (longest > SHORT_ROW && (!si || !sv))) {
        free(si);
        free(sv);
        mlk_csr_destroy(&m);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "hasher: out of memory for %zu tokens",
                            row_ptr[nrows]);
    }
    size_t w = 0;
    for (size_t r = 0; r < nrows; r++) {
        size_t start = w;
        for (size_t t = row_ptr[r]; t < row_ptr[r + 1]; t++) {
            if (tok[t].value == 0) continue; /* scikit-learn skips zero values */
            int32_t h = mlk_murmur3_32(tok[t].bytes, tok[t].len, 0);
            m->indices[w] = mlk_hash_index(h, o->n_features);
            m->data[w] = mlk_hash_sign(h, o->alternate_sign) * tok[t].value;
            w++;
        }
        size_t n = w - start;
        if (n > SHORT_ROW) merge_sort_row(m->indices + start, m->data + start, si, sv, n);
        w = start + row_canon(m->indices + start, m->data + start, n);
        m->indptr[r + 1] = (int64_t)w;
    }
    free(si);
    free(sv);
    csr_trim(m);
    *out = m;
    return 0;
}

/* Hash one frame column into slots r*stride + at of idx/val. */
static void hash_column(const mlk_hash_opts *o, const mlk_frame *f, const mlk_col *c, size_t stride,
                        size_t at, int32_t *idx, double *val)
{
    const int32_t nf = o->n_features;
    const int alt = o->alternate_sign;
    const size_t nrows = f->nrows;
    mm_state pre = {.h1 = 0};
    mm_absorb(&pre, (const unsigned char *)c->name, strlen(c->name));
    if (c->type == MLK_STR) {
        static const unsigned char eq = '=';
        mm_absorb(&pre, &eq, 1);
        const unsigned char *str = (const unsigned char *)c->str;
        for (size_t r = 0; r < nrows; r++) {
            size_t slot = r * stride + at;
            if (c->missing[r]) {
                idx[slot] = -1;
                continue;
            }
            int32_t h = mm_finish_with(&pre, str + c->off[r], (size_t)(c->off[r + 1] - c->off[r]));
            idx[slot] = mlk_hash_index(h, nf);
            val[slot] = mlk_hash_sign(h, alt);
        }
    } else {
        int32_t h = mm_finish_with(&pre, (const unsigned char *)"", 0);
        int32_t j = mlk_hash_index(h, nf);
        double s = mlk_hash_sign(h, alt);
        for (size_t r = 0; r < nrows; r++) {
            size_t slot = r * stride + at;
            double v = c->f64[r];
            if (isnan(v) || v == 0) {
                idx[slot] = -1;
                continue;
            }
            idx[slot] = j;
            val[slot] = s * v;
        }
    }
}

int mlk_hash_frame(const mlk_hash_opts *o, const mlk_frame *f, const size_t *cols, size_t ncols,
                   mlk_csr **out, char *err, size_t errlen)
{
    int rc;
    if ((rc = check_opts(o, err, errlen)) != 0) return rc;
    if (!f || !out || (ncols && !cols))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: NULL argument");
    *out = NULL;
    for (size_t k = 0; k < ncols; k++) {
        if (cols[k] >= f->ncols)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "hasher: column index %zu out of range (frame has %zu columns)",
                                cols[k], f->ncols);
        mlk_coltype t = f->cols[cols[k]].type;
        if (t != MLK_STR && t != MLK_F64)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: column '%s' has unknown type %d",
                                f->cols[cols[k]].name, (int)t);
    }
    if (ncols && f->nrows > SIZE_MAX / ncols)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: %zu rows x %zu columns overflow",
                            f->nrows, ncols);
    mlk_csr *m = mlk_csr_new(f->nrows, (size_t)o->n_features, f->nrows * ncols);
    if (!m)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "hasher: out of memory for %zu rows", f->nrows);
    for (size_t k = 0; k < ncols; k++)
        hash_column(o, f, &f->cols[cols[k]], ncols, k, m->indices, m->data);
    /* Compact in place: the write position never passes the read one. */
    int32_t *si = NULL;
    double *sv = NULL;
    if (ncols > SHORT_ROW) {
        si = malloc(ncols * sizeof *si);
        sv = malloc(ncols * sizeof *sv);
        if (!si || !sv) {
            free(si);
            free(sv);
            mlk_csr_destroy(&m);
            return mlops_seterr(err, errlen, MLOPS_ENOMEM, "hasher: out of memory");
        }
    }
    size_t w = 0;
    for (size_t r = 0; r < f->nrows; r++) {
        size_t start = w, base = r * ncols;
        for (size_t k = 0; k < ncols; k++) {
            int32_t j = m->indices[base + k];
            if (j < 0) continue;
            m->indices[w] = j;
            m->data[w] = m->data[base + k];
            w++;
        }
        size_t n = w - start;
        if (n > SHORT_ROW) merge_sort_row(m->indices + start, m->data + start, si, sv, n);
        w = start + row_canon(m->indices + start, m->data + start, n);
        m->indptr[r + 1] = (int64_t)w;
    }
    free(si);
    free(sv);
    csr_trim(m);
    *out = m;
    return 0;
}

/* --- encoding ------------------------------------------------------- */

#define CSR_MAGIC "MLKC"
#define CSR_VERSION 1u
#define CSR_HDR (4 + 4 + 8 + 8 + 8)

int mlk_csr_encode(const mlk_csr *m, uint8_t **out, size_t *outlen)
{
    if (!m || !out || !outlen || !m->indptr) return MLOPS_EINVAL;
    uint64_t nnz = (uint64_t)m->indptr[m->nrows];
    if (m->indptr[m->nrows] < 0 || (nnz && (!m->indices || !m->data))) return MLOPS_EINVAL;
    size_t len = CSR_HDR + (m->nrows + 1) * 8 + (size_t)nnz * 12;
    uint8_t *b = malloc(len);
    if (!b) return MLOPS_ENOMEM;
    uint32_t ver = CSR_VERSION;
    uint64_t nr = m->nrows, nc = m->ncols;
    uint8_t *p = b;
    memcpy(p, CSR_MAGIC, 4); p += 4;
    memcpy(p, &ver, 4); p += 4;
    memcpy(p, &nr, 8); p += 8;
    memcpy(p, &nc, 8); p += 8;
    memcpy(p, &nnz, 8); p += 8;
    memcpy(p, m->indptr, (m->nrows + 1) * 8); p += (m->nrows + 1) * 8;
    if (nnz) {
        memcpy(p, m->indices, (size_t)nnz * 4); p += nnz * 4;
        memcpy(p, m->data, (size_t)nnz * 8);
    }
    *out = b;
    *outlen = len;
    return 0;
}

int mlk_csr_decode(const uint8_t *buf, size_t len, mlk_csr **out, char *err, size_t errlen)
{
    if (!out) return mlops_seterr(err, errlen, MLOPS_EINVAL, "csr decode: NULL argument");
    *out = NULL;
    if (!buf || len < CSR_HDR)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: buffer of %zu bytes is too short", len);
    if (memcmp(buf, CSR_MAGIC, 4) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: bad magic");
    uint32_t ver;
    uint64_t nr, nc, nnz;
    memcpy(&ver, buf + 4, 4);
    memcpy(&nr, buf + 8, 8);
    memcpy(&nc, buf + 16, 8);
    memcpy(&nnz, buf + 24, 8);
    if (ver != CSR_VERSION)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: unsupported version %u", ver);
    if (nc > (uint64_t)INT32_MAX)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: %llu columns exceed int32",
                            (unsigned long long)nc);
    size_t body = len - CSR_HDR;
    /* Compare without overflow: each part must fit what is left. */
    if (nr >= body / 8)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: %llu rows do not fit %zu bytes",
                            (unsigned long long)nr, len);
    size_t rest = body - (size_t)(nr + 1) * 8;
    if (nnz > rest / 12 || (size_t)nnz * 12 != rest)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "csr decode: %llu entries do not match the %zu bytes left",
                            (unsigned long long)nnz, rest);
    mlk_csr *m = mlk_csr_new((size_t)nr, (size_t)nc, (size_t)nnz);
    if (!m) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "csr decode: out of memory");
    const uint8_t *p = buf + CSR_HDR;
    memcpy(m->indptr, p, (size_t)(nr + 1) * 8);
    p += (nr + 1) * 8;
    if (nnz) {
        memcpy(m->indices, p, (size_t)nnz * 4);
        memcpy(m->data, p + nnz * 4, (size_t)nnz * 8);
    }
    int rc = 0;
    if (m->indptr[0] != 0) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: indptr[0] = %lld, not 0",
                          (long long)m->indptr[0]);
        goto done;
    }
    for (size_t r = 0; r < m->nrows; r++) {
        int64_t a = m->indptr[r], b = m->indptr[r + 1];
        if (b < a || (uint64_t)b > nnz) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: indptr[%zu] = %lld is out of order",
                              r + 1, (long long)b);
            goto done;
        }
        for (int64_t k = a; k < b; k++) {
            int32_t j = m->indices[k];
            if (j < 0 || (uint64_t)j >= nc || (k > a && j <= m->indices[k - 1])) {
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                  "csr decode: row %zu has a bad or unsorted index %d", r, (int)j);
                goto done;
            }
        }
    }
    if ((uint64_t)m->indptr[m->nrows] != nnz)
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "csr decode: indptr ends at %lld, nnz is %llu",
                          (long long)m->indptr[m->nrows], (unsigned long long)nnz);
done:
    if (rc) mlk_csr_destroy(&m);
    *out = m;
    return rc;
}
