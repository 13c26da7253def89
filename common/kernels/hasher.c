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
#include <sys/mman.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HASH_AVX2 1 /* compiled for x86-64-v2; used only where the CPU has it */
#endif

/* --- MurmurHash3_x86_32, as a stream ------------------------------- */

#define MM_C1 0xcc9e2d51u
#define MM_C2 0x1b873593u
#define HOT static inline __attribute__((always_inline))

HOT uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

HOT uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

HOT uint32_t mm_mixk(uint32_t k1)
{
    k1 *= MM_C1;
    k1 = rotl32(k1, 15);
    return k1 * MM_C2;
}

HOT uint32_t mm_block(uint32_t h1, uint32_t k1)
{
    h1 ^= mm_mixk(k1);
    h1 = rotl32(h1, 13);
    return h1 * 5 + 0xe6546b64u;
}

/* The state after a prefix: h1 over its whole blocks, its last
 * len % 4 bytes packed little-endian in `carry` (sh = 8 * their count),
 * and its length. */
typedef struct {
    uint32_t h1;
    uint32_t carry;
    unsigned sh;
    size_t len;
} mm_prefix;

static void mm_absorb(mm_prefix *s, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->carry |= (uint32_t)p[i] << s->sh;
        s->sh += 8;
        if (s->sh == 32) {
            s->h1 = mm_block(s->h1, s->carry);
            s->carry = 0;
            s->sh = 0;
        }
    }
    s->len += n;
}

/* Hash of (the prefix in s) followed by v[0..n). `readable` >= n bytes
 * may be read from v: when the last partial block has 4 readable bytes
 * it is loaded whole and masked instead of byte by byte. The value's
 * 4-byte words are shifted into the blocks after the prefix's pending
 * bytes. The tail is mixed unconditionally: an empty tail is 0, and
 * MurmurHash's tail mix of 0 is 0, so h1 ^= 0 changes nothing. */
HOT int32_t mm_continue(const mm_prefix *s, const unsigned char *v, size_t n, size_t readable)
{
    uint32_t h1 = s->h1;
    const unsigned sh = s->sh;
    uint64_t carry = s->carry;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint64_t w = load_le32(v + i);
        h1 = mm_block(h1, (uint32_t)(carry | (w << sh)));
        carry = w >> (32 - sh);
    }
    size_t r = n - i;
    uint64_t w;
    if (i + 4 <= readable) {
        w = load_le32(v + i) & ((1ull << (8 * r)) - 1);
    } else {
        w = 0;
        for (size_t j = 0; j < r; j++) w |= (uint64_t)v[i + j] << (8 * j);
    }
    uint64_t t = carry | (w << sh);
    size_t tl = sh / 8 + r;
    uint32_t hb = mm_block(h1, (uint32_t)t);
    int full = tl >= 4;
    h1 = full ? hb : h1;
    t = full ? t >> 32 : t;
    h1 ^= mm_mixk((uint32_t)t);
    h1 ^= (uint32_t)(s->len + n);
    h1 ^= h1 >> 16;
    h1 *= 0x85ebca6bu;
    h1 ^= h1 >> 13;
    h1 *= 0xc2b2ae35u;
    h1 ^= h1 >> 16;
    return (int32_t)h1;
}

/* mm_continue for a value of at most 12 bytes with 16 readable bytes:
 * the same blocks, but computed for a fixed 3 + 1 and selected without
 * branches, so that varying lengths cost no mispredictions. The value's
 * words are masked to its n bytes; block i of the stream (prefix's
 * pending bytes, then the value) is taken from words i-1 and i. */
HOT int32_t mm_continue_short(const mm_prefix *s, const unsigned char *v, size_t n)
{
    const unsigned sh = s->sh;
    uint64_t w[3];
    for (int i = 0; i < 3; i++) {
        size_t left = n > 4 * (size_t)i ? n - 4 * (size_t)i : 0;
        size_t vb = left < 4 ? left : 4;
        w[i] = load_le32(v + 4 * i) & ((1ull << (8 * vb)) - 1);
    }
    uint32_t b0 = (uint32_t)(s->carry | (w[0] << sh));
    uint32_t b1 = (uint32_t)((w[0] >> (32 - sh)) | (w[1] << sh));
    uint32_t b2 = (uint32_t)((w[1] >> (32 - sh)) | (w[2] << sh));
    uint32_t b3 = (uint32_t)(w[2] >> (32 - sh));
    uint32_t nbt = (uint32_t)((sh / 8 + n) / 4);
    /* all-ones when block i is a full block; masks, not branches */
    uint32_t m0 = 0u - (uint32_t)(nbt > 0), m1 = 0u - (uint32_t)(nbt > 1);
    uint32_t m2 = 0u - (uint32_t)(nbt > 2);
    uint32_t h1 = s->h1;
    h1 = (mm_block(h1, b0) & m0) | (h1 & ~m0);
    h1 = (mm_block(h1, b1) & m1) | (h1 & ~m1);
    h1 = (mm_block(h1, b2) & m2) | (h1 & ~m2);
    /* the tail is block nbt */
    uint32_t tail = (b0 & ~m0) | (b1 & m0 & ~m1) | (b2 & m1 & ~m2) | (b3 & m2);
    h1 ^= mm_mixk(tail);
    h1 ^= (uint32_t)(s->len + n);
    h1 ^= h1 >> 16;
    h1 *= 0x85ebca6bu;
    h1 ^= h1 >> 13;
    h1 *= 0xc2b2ae35u;
    h1 ^= h1 >> 16;
    return (int32_t)h1;
}

int32_t mlk_murmur3_32(const void *key, size_t len, uint32_t seed)
{
    mm_prefix s = {.h1 = seed};
    if (!key) key = ""; /* only valid with len == 0 */
    return mm_continue(&s, key, len, len);
}

/* --- |h| mod n_features without a division ------------------------- */

/* Lemire's fastmod (exact for every 32-bit a and d >= 1). Taking |h| as
 * an unsigned 32-bit value makes h == INT32_MIN give 2^31 mod d, which
 * is what scikit-learn computes for that case. */
__extension__ typedef unsigned __int128 u128;

typedef struct {
    uint64_t m;
    uint32_t d;
    uint32_t pow2mask; /* d - 1 when d is a power of two (the default), else 0 */
} fastmod;

static fastmod fastmod_make(uint32_t d)
{
    fastmod f = {UINT64_MAX / d + 1, d, (d & (d - 1)) == 0 ? d - 1 : 0};
    return f;
}

HOT int32_t fast_index(int32_t h, fastmod f)
{
    uint32_t a = h < 0 ? 0u - (uint32_t)h : (uint32_t)h;
    if (f.pow2mask || f.d == 1) return (int32_t)(a & f.pow2mask);
    uint64_t low = f.m * a;
    return (int32_t)(uint32_t)(((u128)low * f.d) >> 64);
}

void mlk_hash_opts_default(mlk_hash_opts *o)
{
    o->n_features = MLK_HASH_DEFAULT_FEATURES;
    o->alternate_sign = 1;
}

/* --- CSR life cycle ------------------------------------------------- */

/* The entry arrays of a large CSR: 2 MiB aligned and, on Linux, marked
 * for transparent huge pages, so that writing them once faults 512
 * times less often (a fault per 4 KiB page was a third of the hashing
 * time on a busy VM). Small ones stay with malloc; free() frees both. */
#define HUGE_PAGE ((size_t)2 << 20)
static void *csr_alloc(size_t n, int zero)
{
    if (n < 2 * HUGE_PAGE) return zero ? calloc(1, n ? n : 1) : malloc(n ? n : 1);
    size_t len = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, len);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* a hint; failure is harmless */
#endif
    if (zero) memset(p, 0, n);
    return p;
}

mlk_csr *mlk_csr_new(size_t nrows, size_t ncols, size_t nnz_cap)
{
    if (nrows >= SIZE_MAX / sizeof(int64_t) - 1) return NULL;
    if (nnz_cap > SIZE_MAX / sizeof(double)) return NULL;
    mlk_csr *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nrows = nrows;
    m->ncols = ncols;
    m->nnz_cap = nnz_cap;
    m->indptr = csr_alloc((nrows + 1) * sizeof *m->indptr, 1);
    m->indices = csr_alloc((nnz_cap ? nnz_cap : 1) * sizeof *m->indices, 0);
    m->data = csr_alloc((nnz_cap ? nnz_cap : 1) * sizeof *m->data, 0);
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

/* Compare-exchange of entries a < b by index, without branches; swaps
 * only when idx[a] > idx[b], so equal indexes keep their order. */
HOT void cswap(int32_t *idx, double *val, size_t a, size_t b)
{
    uint32_t x = (uint32_t)idx[a], y = (uint32_t)idx[b];
    uint64_t u, v;
    memcpy(&u, &val[a], 8);
    memcpy(&v, &val[b], 8);
    /* masked xor-swap: an unpredictable comparison costs no branch */
    uint32_t m32 = 0u - (uint32_t)(idx[a] > idx[b]);
    uint64_t m64 = 0u - (uint64_t)(idx[a] > idx[b]);
    uint32_t dx = (x ^ y) & m32;
    uint64_t du = (u ^ v) & m64;
    x ^= dx;
    y ^= dx;
    u ^= du;
    v ^= du;
    idx[a] = (int32_t)x;
    idx[b] = (int32_t)y;
    memcpy(&val[a], &u, 8);
    memcpy(&val[b], &v, 8);
}

#define NETWORK_ROW 8
#define SHORT_ROW 32

/* Sort the n entries of a row by index, stably (equal indexes keep
 * token order, which is the order they are summed in), then sum equal
 * indexes. Returns the new length. Rows of hashed categoricals are
 * short: up to 8 entries an odd-even transposition network (adjacent
 * compare-exchanges: stable and branch-free), up to 32 insertion sort;
 * longer rows are merge-sorted by the caller first. */
HOT size_t row_canon(int32_t *idx, double *val, size_t n)
{
    if (n == 3) { /* the common case: three categorical columns */
        cswap(idx, val, 0, 1);
        cswap(idx, val, 1, 2);
        cswap(idx, val, 0, 1);
    } else if (n == 2) {
        cswap(idx, val, 0, 1);
    } else if (n <= NETWORK_ROW) {
        for (size_t round = 0; round < n; round++)
            for (size_t i = round & 1; i + 1 < n; i += 2) cswap(idx, val, i, i + 1);
    } else {
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
    }
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        if (idx[w - 1] == idx[i]) {
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
 * sort by index with a scratch buffer; row_canon then only sums. */
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

/* Finish row r whose entries are [start, w): sort, sum, set indptr. */
HOT size_t row_finish(mlk_csr *m, size_t r, size_t start, size_t w, int32_t *si, double *sv)
{
    size_t n = w - start;
    if (n > SHORT_ROW) merge_sort_row(m->indices + start, m->data + start, si, sv, n);
    w = start + row_canon(m->indices + start, m->data + start, n);
    m->indptr[r + 1] = (int64_t)w;
    return w;
}

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

/* Scratch for rows longer than SHORT_ROW; 0 or MLOPS_ENOMEM. */
static int scratch_alloc(size_t longest, int32_t **si, double **sv)
{
    *si = NULL;
    *sv = NULL;
    if (longest <= SHORT_ROW) return 0;
    *si = malloc(longest * sizeof **si);
    *sv = malloc(longest * sizeof **sv);
    if (*si && *sv) return 0;
    free(*si);
    free(*sv);
    return MLOPS_ENOMEM;
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
    int32_t *si;
    double *sv;
    mlk_csr *m = mlk_csr_new(nrows, (size_t)o->n_features, row_ptr[nrows]);
    if (!m || scratch_alloc(longest, &si, &sv) != 0) {
        mlk_csr_destroy(&m);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "hasher: out of memory for %zu tokens",
                            row_ptr[nrows]);
    }
    const fastmod fm = fastmod_make((uint32_t)o->n_features);
    size_t w = 0;
    for (size_t r = 0; r < nrows; r++) {
        size_t start = w;
        for (size_t t = row_ptr[r]; t < row_ptr[r + 1]; t++) {
            if (tok[t].value == 0) continue; /* scikit-learn skips zero values */
            int32_t h = mlk_murmur3_32(tok[t].bytes, tok[t].len, 0);
            m->indices[w] = fast_index(h, fm);
            m->data[w] = mlk_hash_sign(h, o->alternate_sign) * tok[t].value;
            w++;
        }
        w = row_finish(m, r, start, w, si, sv);
    }
    free(si);
    free(sv);
    csr_trim(m);
    *out = m;
    return 0;
}

/* One selected frame column, ready for the loops. */
typedef struct {
    const mlk_col *c;
    mm_prefix pre;   /* the state after "name=" (STR) or "name" (F64) */
    size_t readable; /* STR: bytes of c->str that may be read */
    int32_t h;       /* F64: the hash of "name" */
} hcol;

#define HASH_BLOCK 2048 /* rows per block: the block's hashes stay in L1/L2 */
#define SHORT_VALUE 12  /* bytes: values up to this length take the branch-free paths */

#ifdef HASH_AVX2
/* mm_continue_short for 8 rows at once, one per 32-bit lane: the same
 * blocks, masks and tail as the scalar version, so the same bits. The
 * caller has checked that every value is at most SHORT_VALUE bytes, that
 * the 8 values lie within 96 bytes from base (offsets fit a lane) and
 * that 16 bytes from the last one may be read. */
#define V_ROTL(x, r) _mm256_or_si256(_mm256_slli_epi32((x), (r)), _mm256_srli_epi32((x), 32 - (r)))
__attribute__((target("avx2"))) static inline __m256i v_mixk(__m256i k)
{
    k = _mm256_mullo_epi32(k, _mm256_set1_epi32((int)MM_C1));
    k = V_ROTL(k, 15);
    return _mm256_mullo_epi32(k, _mm256_set1_epi32((int)MM_C2));
}

__attribute__((target("avx2"))) static inline __m256i v_block(__m256i h, __m256i k)
{
    h = _mm256_xor_si256(h, v_mixk(k));
    h = V_ROTL(h, 13);
    h = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(h, 2), h),
                         _mm256_set1_epi32((int)0xe6546b64u));
    return h;
}

/* Offsets r .. r+7 (uint64, relative to off[r]) as 8 int32 lanes. */
__attribute__((target("avx2"))) static inline __m256i v_rel(const uint64_t *off, __m256i base)
{
    const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i lo = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)off), base);
    __m256i hi = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(off + 4)), base);
    __m128i a = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(lo, perm));
    __m128i b = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(hi, perm));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
}

/* Rows [r, r1) of a STR column, 8 at a time while the values are short;
 * returns the first row not done (a long value, or fewer than 8 left). */
__attribute__((target("avx2"))) static size_t hash_str_avx2(const hcol *hc, size_t r, size_t r0,
                                                            size_t r1, int32_t *hv)
{
    const unsigned char *str = (const unsigned char *)hc->c->str;
    const uint64_t *off = hc->c->off;
    const mm_prefix pre = hc->pre;
    const __m128i sh = _mm_cvtsi32_si128((int)pre.sh);
    const __m128i rsh = _mm_cvtsi32_si128(32 - (int)pre.sh); /* 32 shifts to 0 */
    const __m256i carry = _mm256_set1_epi32((int)pre.carry);
    const __m256i h0 = _mm256_set1_epi32((int)pre.h1);
    const __m256i plen = _mm256_set1_epi32((int)(uint32_t)pre.len);
    const __m256i pend = _mm256_set1_epi32((int)(pre.sh / 8));
    const __m256i ones = _mm256_set1_epi32(-1), zero = _mm256_setzero_si256();
    const __m256i four = _mm256_set1_epi32(4), thirty2 = _mm256_set1_epi32(32);
    const __m256i maxlen = _mm256_set1_epi32(SHORT_VALUE);
    for (; r + 8 <= r1; r += 8) {
        uint64_t o = off[r];
        if (off[r + 8] - o > 8 * SHORT_VALUE || off[r + 7] + 16 > hc->readable) break;
        __m256i base = _mm256_set1_epi64x((long long)o);
        __m256i rel = v_rel(off + r, base);
        __m256i n = _mm256_sub_epi32(v_rel(off + r + 1, base), rel);
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(n, maxlen))) break;
        /* the 3 words of each value: 16-byte loads, transposed (a
         * gather of the same words costs several times more here) */
        __m256i y[4];
        for (int i = 0; i < 4; i++)
            y[i] = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(str + off[r + i]))),
                _mm_loadu_si128((const __m128i *)(const void *)(str + off[r + 4 + i])), 1);
        __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpacklo_epi32(y[2], y[3]);
        __m256i t2 = _mm256_unpackhi_epi32(y[0], y[1]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
        __m256i w[3] = {_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1),
                        _mm256_unpacklo_epi64(t2, t3)};
        for (int i = 0; i < 3; i++) {
            __m256i left = _mm256_sub_epi32(n, _mm256_set1_epi32(4 * i));
            left = _mm256_min_epi32(_mm256_max_epi32(left, zero), four);
            /* (1 << 8 * left) - 1: all ones for 4 bytes, 0 for none */
            __m256i mask = _mm256_srlv_epi32(ones, _mm256_sub_epi32(thirty2, _mm256_slli_epi32(left, 3)));
            w[i] = _mm256_and_si256(w[i], mask);
        }
        __m256i b0 = _mm256_or_si256(carry, _mm256_sll_epi32(w[0], sh));
        __m256i b1 = _mm256_or_si256(_mm256_srl_epi32(w[0], rsh), _mm256_sll_epi32(w[1], sh));
        __m256i b2 = _mm256_or_si256(_mm256_srl_epi32(w[1], rsh), _mm256_sll_epi32(w[2], sh));
        __m256i b3 = _mm256_srl_epi32(w[2], rsh);
        __m256i nbt = _mm256_srli_epi32(_mm256_add_epi32(n, pend), 2);
        __m256i m0 = _mm256_cmpgt_epi32(nbt, zero);
        __m256i m1 = _mm256_cmpgt_epi32(nbt, _mm256_set1_epi32(1));
        __m256i m2 = _mm256_cmpgt_epi32(nbt, _mm256_set1_epi32(2));
        __m256i h = h0;
        h = _mm256_blendv_epi8(h, v_block(h, b0), m0);
        h = _mm256_blendv_epi8(h, v_block(h, b1), m1);
        h = _mm256_blendv_epi8(h, v_block(h, b2), m2);
        __m256i tail = _mm256_andnot_si256(m0, b0);
        tail = _mm256_or_si256(tail, _mm256_and_si256(_mm256_andnot_si256(m1, m0), b1));
        tail = _mm256_or_si256(tail, _mm256_and_si256(_mm256_andnot_si256(m2, m1), b2));
        tail = _mm256_or_si256(tail, _mm256_and_si256(m2, b3));
        h = _mm256_xor_si256(h, v_mixk(tail));
        h = _mm256_xor_si256(h, _mm256_add_epi32(plen, n));
        h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
        h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
        h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
        h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
        h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
        _mm256_storeu_si256((__m256i *)(void *)(hv + (r - r0)), h);
    }
    return r;
}
#endif

/* Column pass over rows [r0, r1): the CSR column of k's value of row r
 * into ix[r - r0], its signed value (0 = no token) into dv[r - r0]. The
 * loops have no data-dependent branch for short values: a missing value
 * is hashed too (its bytes exist) and given value 0. */
HOT void hash_block_column(const hcol *hc, size_t r0, size_t r1, int avx2, const fastmod fm,
                           const int alt, int32_t *ix, double *dv)
{
    const mlk_col *c = hc->c;
    const size_t n = r1 - r0;
    if (c->type == MLK_STR) {
        const unsigned char *str = (const unsigned char *)c->str;
        const uint64_t *off = c->off;
        const uint8_t *miss = c->missing + r0;
        const mm_prefix pre = hc->pre;
        const size_t readable = hc->readable;
        for (size_t r = r0; r < r1;) {
#ifdef HASH_AVX2
            if (avx2) {
                size_t e = hash_str_avx2(hc, r, r0, r1, ix);
                if (e > r) {
                    r = e;
                    continue;
                }
            }
#else
            (void)avx2;
#endif
            size_t o = (size_t)off[r], len = (size_t)off[r + 1] - o;
            ix[r - r0] = len <= SHORT_VALUE && readable - o >= 16
                             ? mm_continue_short(&pre, str + o, len)
                             : mm_continue(&pre, str + o, len, readable - o);
            r++;
        }
        /* hashes -> (column, value): separate loops, so each vectorises */
        /* the sign (-1 for a negative hash with alt) times "present",
         * in integers, so the loop has no branch and vectorises */
        const int32_t altmask = alt ? -1 : 0;
        for (size_t i = 0; i < n; i++) {
            int32_t sign = 1 + 2 * ((ix[i] >> 31) & altmask);
            dv[i] = (double)(sign * (int32_t)(miss[i] == 0));
        }
        if (fm.pow2mask || fm.d == 1)
            for (size_t i = 0; i < n; i++) {
                uint32_t a = ix[i] < 0 ? 0u - (uint32_t)ix[i] : (uint32_t)ix[i];
                ix[i] = (int32_t)(a & fm.pow2mask);
            }
        else
            for (size_t i = 0; i < n; i++) ix[i] = fast_index(ix[i], fm);
    } else {
        const double *f = c->f64 + r0;
        const int32_t j = fast_index(hc->h, fm);
        const double sg = mlk_hash_sign(hc->h, alt);
        for (size_t i = 0; i < n; i++) {
            double v = f[i];
            ix[i] = j;
            dv[i] = isnan(v) ? 0.0 : sg * v; /* a zero value gives no token either */
        }
    }
}

/* Rows [r0, r1) of the frame into the CSR from entry w on; returns
 * the new w. A tight loop per column (its prefix state in registers)
 * into the block arrays (column k's at k * HASH_BLOCK), then one pass
 * over the block's rows that drops the missing entries, sorts and sums
 * each row, and writes the CSR front to back. */
HOT size_t hash_block(const hcol *hc, size_t r0, size_t r1, const size_t ncols, const fastmod fm,
                      const int alt, int avx2, int32_t *ix, double *dv, mlk_csr *m, size_t w,
                      int32_t *si, double *sv)
{
    for (size_t k = 0; k < ncols; k++)
        hash_block_column(&hc[k], r0, r1, avx2, fm, alt, ix + k * HASH_BLOCK, dv + k * HASH_BLOCK);
    int32_t *ind = m->indices;
    double *dat = m->data;
    int64_t *indptr = m->indptr;
    for (size_t r = r0, i = 0; r < r1; r++, i++) {
        if (ncols == 3) {
            /* the usual row: three tokens on three different columns.
             * Sorted as (column << 2 | token) keys, so equal columns
             * keep token order, as the stable sort keeps it. */
            double v[3] = {dv[i], dv[HASH_BLOCK + i], dv[2 * HASH_BLOCK + i]};
            if (v[0] != 0 && v[1] != 0 && v[2] != 0) {
                uint64_t a = (uint64_t)(uint32_t)ix[i] << 2;
                uint64_t b = (uint64_t)(uint32_t)ix[HASH_BLOCK + i] << 2 | 1;
                uint64_t c = (uint64_t)(uint32_t)ix[2 * HASH_BLOCK + i] << 2 | 2;
                uint64_t t = a < b ? a : b;
                b = a < b ? b : a;
                a = t;
                t = b < c ? b : c;
                c = b < c ? c : b;
                b = t;
                t = a < b ? a : b;
                b = a < b ? b : a;
                a = t;
                if ((a >> 2) != (b >> 2) && (b >> 2) != (c >> 2)) {
                    ind[w] = (int32_t)(a >> 2);
                    ind[w + 1] = (int32_t)(b >> 2);
                    ind[w + 2] = (int32_t)(c >> 2);
                    dat[w] = v[a & 3];
                    dat[w + 1] = v[b & 3];
                    dat[w + 2] = v[c & 3];
                    w += 3;
                    indptr[r + 1] = (int64_t)w;
                    continue;
                }
            }
        }
        size_t start = w;
        for (size_t k = 0; k < ncols; k++) {
            double v = dv[k * HASH_BLOCK + i];
            if (v == 0) continue; /* no token: missing, or a zero value */
            ind[w] = ix[k * HASH_BLOCK + i];
            dat[w] = v;
            w++;
        }
        w = row_finish(m, r, start, w, si, sv);
    }
    return w;
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
    if (ncols && f->nrows > SIZE_MAX / ncols / HASH_BLOCK)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "hasher: %zu rows x %zu columns overflow",
                            f->nrows, ncols);
    const fastmod fm = fastmod_make((uint32_t)o->n_features);
    const int alt = o->alternate_sign;
#ifdef HASH_AVX2
    const int avx2 = __builtin_cpu_supports("avx2");
#else
    const int avx2 = 0;
#endif
    size_t nb = ncols ? ncols : 1;
    hcol *hc = calloc(nb, sizeof *hc);
    int32_t *hv = malloc(HASH_BLOCK * nb * sizeof *hv);
    double *dv = malloc(HASH_BLOCK * nb * sizeof *dv);
    int32_t *si = NULL;
    double *sv = NULL;
    mlk_csr *m = mlk_csr_new(f->nrows, (size_t)o->n_features, f->nrows * ncols);
    if (!hc || !hv || !dv || !m || scratch_alloc(ncols, &si, &sv) != 0) {
        free(hc);
        free(hv);
        free(dv);
        mlk_csr_destroy(&m);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "hasher: out of memory for %zu rows", f->nrows);
    }
    for (size_t k = 0; k < ncols; k++) {
        const mlk_col *c = &f->cols[cols[k]];
        hc[k].c = c;
        mm_absorb(&hc[k].pre, (const unsigned char *)c->name, strlen(c->name));
        if (c->type == MLK_STR) {
            static const unsigned char eq = '=';
            mm_absorb(&hc[k].pre, &eq, 1);
            /* Only the bytes in use are known to exist. */
            hc[k].readable = f->nrows ? (size_t)c->off[f->nrows] : 0;
        } else {
            hc[k].h = mm_continue(&hc[k].pre, (const unsigned char *)"", 0, 0);
        }
    }
    /* Blocks of rows: a tight loop per column (its prefix state in
     * registers) into small arrays, then one pass over the block's rows
     * that turns hashes into (index, signed value), sorts and sums each
     * row, and writes the CSR front to back. */
    size_t w = 0;
    for (size_t r0 = 0; r0 < f->nrows; r0 += HASH_BLOCK) {
        size_t r1 = r0 + HASH_BLOCK < f->nrows ? r0 + HASH_BLOCK : f->nrows;
        /* the usual width gets a copy of the loops with a constant width */
        if (ncols == 3) w = hash_block(hc, r0, r1, 3, fm, alt, avx2, hv, dv, m, w, si, sv);
        else w = hash_block(hc, r0, r1, ncols, fm, alt, avx2, hv, dv, m, w, si, sv);
    }
    free(hc);
    free(hv);
    free(dv);
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
