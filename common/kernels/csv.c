/* csv.c: see csv.h for the dialect and the contract.
 *
 * One record tokenizer (next_record) is shared by the header parser, the
 * slow path of the splitter and the parser, so all three agree on where
 * records end. Fields are recorded as spans into the caller's buffer;
 * only quoted fields are copied (unquoted into a scratch buffer), and
 * only the columns a schema keeps are converted.
 *
 * Both the splitter and the parser first try the common case without the
 * tokenizer, from a bit mask of the structural bytes per 64-byte block:
 * for the splitter a record ends at its first LF outside quotes, the
 * quotes followed bit by bit through the mask of LF and '"'; the
 * parser's fast path indexes a window of structural bytes, cuts plain
 * records into per-column fields from that index, then converts each
 * column in its own typed loop, and hands any other record to the
 * tokenizer from its first byte, so the two paths cannot disagree
 * (test_csv_fast and fuzz_csv compare them on every input).
 *
 * The block masks, the index and the numeric columns each have an
 * AVX-512, an AVX2 and an SSE2 or portable form, chosen per call from the
 * CPU; string columns are copied by one loop for all (str_column). */
#include "csv.h"
#include "err.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s; /* raw bytes of the field (for quoted: from the quote) */
    size_t n;
    int quoted;
} span;

/* Could s start an NA token? (every token starts with one of these) */
#define NA_FIRST(c) ((c) == 'N' || (c) == 'n' || (c) == '#' || (c) == '<' || (c) == '-' || (c) == '1')

/* NA_FIRST as a table, and the lengths of NA tokens as bits (2, 3, 4, 6, 7, 8) */
static const unsigned char na_first[256] = {['N'] = 1, ['n'] = 1, ['#'] = 1,
                                            ['<'] = 1, ['-'] = 1, ['1'] = 1};
#define NA_LENGTHS 0x1DCu

/* AVX-512 paths (the splitter's record skip and the parser's index with
 * AVX-512BW, the numeric columns 8 rows at a time with DQ and CD too) are
 * compiled in for x86-64 whatever the build's -march and taken only where
 * the CPU has those (__builtin_cpu_supports); elsewhere, and in the test
 * builds with MLK_CSV_NO_AVX512 or MLK_CSV_SCALAR, the AVX2, SSE2 or
 * portable code runs: all give the same bytes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(MLK_CSV_SCALAR) &&                      \
    !defined(MLK_CSV_NO_AVX512)
#include <immintrin.h>
#define MLK_CSV_AVX512 1
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,popcnt")))
/* whether this CPU takes the AVX-512BW paths (a load of libgcc's CPU
 * model, read once per call of the splitter, the parser or a column) */
static inline int cpu_avx512(void) { return __builtin_cpu_supports("avx512bw"); }
#endif

/* AVX2 paths, for the x86-64 CPUs without AVX-512BW that have AVX2 (the
 * same three: the splitter's record skip, the parser's index, the
 * numeric columns, here 4 rows at a time), taken where the CPU has AVX2
 * and BMI2 and not AVX-512BW; MLK_CSV_NO_AVX2 (the _sse2 test builds)
 * leaves them out. They give the AVX-512 and SSE2 paths' bytes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(MLK_CSV_SCALAR) &&                      \
    !defined(MLK_CSV_NO_AVX2)
#include <immintrin.h>
#define MLK_CSV_AVX2 1
#define AVX2_TARGET __attribute__((target("avx2,bmi,bmi2,popcnt")))
static inline int cpu_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
}
#endif

/* Bytes a message quotes from a bad field at most. */
#define MSG_FIELD_MAX 40

static size_t count_nl(const char *p, const char *end)
{
    size_t n = 0;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* If p starts a blank line (only spaces/tabs, optional CR, then LF or the
 * end), return the position after it, else NULL. */
static const char *skip_blank(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
    if (q == end) return q;
    if (*q == '\n') return q + 1;
    return NULL;
}

/* Tokenize the record starting at p (not a blank line). Stores at most
 * maxf field spans, returns the number of fields in *nf, the position
 * after the record's terminator in *next, and the LFs consumed in *nl.
 * Returns 0, or 1 if a quote is still open at `end` (then *next = end). */
static int next_record(const char *p, const char *end, span *f, size_t maxf, size_t *nf,
                       const char **next, size_t *nl)
{
    size_t k = 0, lines = 0;
    for (;;) {
        const char *fs = p;
        int quoted = 0;
        if (p < end && *p == '"') {
            quoted = 1;
            p++;
            for (;;) {
                const char *qp = memchr(p, '"', (size_t)(end - p));
                if (!qp) {
                    lines += count_nl(p, end);
                    *nf = k + 1;
                    *next = end;
                    *nl = lines;
                    return 1;
                }
                lines += count_nl(p, qp);
                p = qp + 1;
                if (p < end && *p == '"') {
                    p++;
                    continue;
                }
                break;
            }
        }
        while (p < end && *p != ',' && *p != '\n') p++;
        const char *fe = p;
        int last = p >= end || *p == '\n';
        if (last && fe > fs && fe[-1] == '\r') fe--;
        if (k < maxf) {
            f[k].s = fs;
            f[k].n = (size_t)(fe - fs);
            f[k].quoted = quoted;
        }
        k++;
        if (p >= end) break;
        p++;
        if (last) {
            lines++;
            break;
        }
    }
    *nf = k;
    *next = p;
    *nl = lines;
    return 0;
}

#if defined(__SSE2__) && !defined(MLK_CSV_SCALAR)
#include <emmintrin.h>

/* next_record for the common record that holds no '"': commas and the
 * LF are found 16 bytes at a time. Returns 1 (nothing decided; the
 * caller runs next_record) as soon as it meets a '"'. */
static int next_plain_record(const char *p, const char *end, span *f, size_t maxf, size_t *nf,
                             const char **next, size_t *nl)
{
    const __m128i comma = _mm_set1_epi8(','), lf = _mm_set1_epi8('\n'), quote = _mm_set1_epi8('"');
    const char *fs = p, *q = p;
    size_t k = 0;
    for (;;) {
        unsigned mc = 0, ml = 0, mq = 0, width;
        if (end - q >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
            mc = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, comma));
            ml = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, lf));
            mq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, quote));
            width = 16;
        } else {
            width = (unsigned)(end - q);
            for (unsigned i = 0; i < width; i++) {
                mc |= (unsigned)(q[i] == ',') << i;
                ml |= (unsigned)(q[i] == '\n') << i;
                mq |= (unsigned)(q[i] == '"') << i;
            }
        }
        if (ml) {
            unsigned below = (ml & -ml) - 1;
            mc &= below;
            mq &= below;
        }
        if (mq) return 1;
        while (mc) {
            const char *fe = q + __builtin_ctz(mc);
            if (k < maxf) {
                f[k].s = fs;
                f[k].n = (size_t)(fe - fs);
                f[k].quoted = 0;
            }
            k++;
            fs = fe + 1;
            mc &= mc - 1;
        }
        const char *fe = NULL;
        if (ml) {
            fe = q + __builtin_ctz(ml);
            *next = fe + 1;
            *nl = 1;
        } else if (q + width >= end) {
            fe = end;
            *next = end;
            *nl = 0;
        }
        if (fe) {
            if (fe > fs && fe[-1] == '\r') fe--;
            if (k < maxf) {
                f[k].s = fs;
                f[k].n = (size_t)(fe - fs);
                f[k].quoted = 0;
            }
            *nf = k + 1;
            return 0;
        }
        q += width;
    }
}
#else
static int next_plain_record(const char *p, const char *end, span *f, size_t maxf, size_t *nf,
                             const char **next, size_t *nl)
{
    (void)p, (void)end, (void)f, (void)maxf, (void)nf, (void)next, (void)nl;
    return 1;
}
#endif

/* ------------------------------------------------------------------ */
/* Structural bytes 64 at a time.
 *
 * The splitter and the parser's fast path do not look at every byte:
 * they ask for the next byte that can end a field or a record (',' LF,
 * and the '"' and CR that send a record to the general tokenizer), found
 * by comparing 16 bytes at a time (SSE2, always there on x86-64) into a
 * 64-bit mask per 64-byte block, one bit per structural byte. The
 * portable path (no SSE2, or MLK_CSV_SCALAR, which the unit tests build
 * too) makes the same mask 8 bytes at a time in a 64-bit word. */
#if defined(__SSE2__) && !defined(MLK_CSV_SCALAR)
#include <emmintrin.h>

static inline __attribute__((always_inline)) uint64_t mask16(const char *p, int with_comma)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m =
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\n')), _mm_cmpeq_epi8(x, _mm_set1_epi8('"')));
    if (with_comma)
        m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(',')),
                                         _mm_cmpeq_epi8(x, _mm_set1_epi8('\r'))));
    return (uint64_t)(unsigned)_mm_movemask_epi8(m);
}

static inline __attribute__((always_inline)) uint64_t mask64_full(const char *p, int with_comma)
{
    return mask16(p, with_comma) | mask16(p + 16, with_comma) << 16 |
           mask16(p + 32, with_comma) << 32 | mask16(p + 48, with_comma) << 48;
}
#else
/* 0x80 in each byte of w equal to c, 0 elsewhere (exact: no carry crosses
 * a byte) */
static inline uint64_t eq_bytes(uint64_t w, unsigned char c)
{
    const uint64_t lo7 = UINT64_C(0x7F7F7F7F7F7F7F7F);
    uint64_t x = w ^ (UINT64_C(0x0101010101010101) * c);
    return ~(((x & lo7) + lo7) | x) & ~lo7;
}

/* The same mask a word (8 bytes) at a time: byte i of the word is loaded
 * into bits 8i..8i+7 whatever the host's byte order, and the multiply
 * gathers the 8 flags into bits 0..7. */
static inline __attribute__((always_inline)) uint64_t mask64_full(const char *p, int with_comma)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t m = 0;
    for (unsigned i = 0; i < 8; i++, u += 8) {
        uint64_t w = 0;
        for (unsigned b = 0; b < 8; b++) w |= (uint64_t)u[b] << (8 * b);
        uint64_t h = eq_bytes(w, '\n') | eq_bytes(w, '"');
        if (with_comma) h |= eq_bytes(w, ',') | eq_bytes(w, '\r');
        m |= (((h >> 7) * UINT64_C(0x0102040810204080)) >> 56) << (8 * i);
    }
    return m;
}
#endif

/* The mask of the block at p with `avail` readable bytes: a short tail
 * is copied into a zeroed block (NUL is not structural). */
static __attribute__((noinline)) uint64_t tail_mask(const char *p, size_t avail, int with_comma)
{
    char tail[64] = {0};
    memcpy(tail, p, avail);
    return mask64_full(tail, with_comma);
}

static inline __attribute__((always_inline)) uint64_t block_mask(const char *p, size_t avail,
                                                                 int with_comma)
{
    return avail >= 64 ? mask64_full(p, with_comma) : tail_mask(p, avail, with_comma);
}

/* A cursor over the structural bytes of buf[0..len) from some position:
 * `at` is the offset of the current block, `m` its bits not yet taken. */
typedef struct {
    const char *buf;
    size_t len, at;
    uint64_t m;
    int with_comma;
} sepit;

static inline void sepit_seek(sepit *it, const char *p)
{
    it->at = (size_t)(p - it->buf);
    it->m = it->at < it->len ? block_mask(p, it->len - it->at, it->with_comma) : 0;
}

/* The next structural byte at or after the cursor, or buf + len. */
static inline __attribute__((always_inline)) const char *sepit_next(sepit *it)
{
    while (!it->m) {
        if (it->len - it->at <= 64) {
            it->at = it->len;
            return it->buf + it->len;
        }
        it->at += 64;
        it->m = block_mask(it->buf + it->at, it->len - it->at, it->with_comma);
    }
    const char *r = it->buf + it->at + (size_t)__builtin_ctzll(it->m);
    it->m &= it->m - 1;
    return r;
}

/* Unquote a quoted field's raw bytes into dst (room for n bytes). */
static size_t unquote(const char *s, size_t n, char *dst)
{
    size_t i = 1, w = 0;
    int in = 1;
    while (i < n) {
        char c = s[i++];
        if (in && c == '"') {
            if (i < n && s[i] == '"') {
                dst[w++] = '"';
                i++;
            } else {
                in = 0;
            }
        } else {
            dst[w++] = c;
        }
    }
    return w;
}

int mlk_csv_is_na(const char *s, size_t n)
{
    switch (n) {
    case 0: return 1;
    case 2: return !memcmp(s, "NA", 2);
    case 3:
        return !memcmp(s, "NaN", 3) || !memcmp(s, "nan", 3) || !memcmp(s, "N/A", 3) ||
               !memcmp(s, "n/a", 3) || !memcmp(s, "#NA", 3);
    case 4:
        return !memcmp(s, "null", 4) || !memcmp(s, "NULL", 4) || !memcmp(s, "#N/A", 4) || !memcmp(s, "<NA>", 4) || !memcmp(s, "-NaN", 4) ||
               !memcmp(s, "-nan", 4);
    case 6: return !memcmp(s, "1.#IND", 6);
    case 7: return !memcmp(s, "-1.#IND", 7) || !memcmp(s, "1.#QNAN", 7);
    case 8: return !memcmp(s, "-1.#QNAN", 8) || !memcmp(s, "#N/A N/A", 8);
    default: return 0;
    }
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int lower_eq(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    if (n != wl) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return 0;
    }
    return 1;
}

/* The number parser; static inline so the parse loop gets it inlined. */
/* 10^k as the double nearest to it (k <= 308). */
static double pow10_nearest(int k)
{
    if (k <= 22) return pow10_exact[k];
    char b[16];
    snprintf(b, sizeof b, "1e%d", k);
    return strtod(b, NULL);
}

/* pandas 1.5's default text-to-double conversion of a validated decimal
 * number in [p, end) (sign, digits, optional fraction and exponent). */
static double pandas_slow(const char *p, const char *end)
{
    enum { MAX_DIGITS = 17 };
    int neg = 0;
    if (p < end && (*p == '-' || *p == '+')) neg = *p++ == '-';
    double number = 0;
    int exponent = 0, ndig = 0, ndec = 0;
    /* every digit counts, leading zeros too: pandas reads 0.<16 zeros>5 as 0 */
    for (; p < end && (unsigned)(*p - '0') < 10; p++) {
        if (ndig < MAX_DIGITS) {
            number = number * 10. + (*p - '0');
            ndig++;
        } else {
            exponent++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        for (; p < end && ndig < MAX_DIGITS && (unsigned)(*p - '0') < 10; p++) {
            number = number * 10. + (*p - '0');
            ndig++;
            ndec++;
        }
        while (p < end && (unsigned)(*p - '0') < 10) p++;
        exponent -= ndec;
    }
    if (neg) number = -number;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0, ed = 0;
        if (p < end && (*p == '-' || *p == '+')) eneg = *p++ == '-';
        /* past 10^8 the value is inf or 0 anyway; growing further would
         * overflow the int (found by fuzz_csv) */
        for (; p < end && ed < MAX_DIGITS && (unsigned)(*p - '0') < 10; p++, ed++)
            if (e < 100000000) e = e * 10 + (*p - '0');
        exponent += eneg ? -e : e;
    }
    if (exponent > 308) return neg ? -HUGE_VAL : HUGE_VAL;
    if (exponent > 0) return number * pow10_nearest(exponent);
    if (exponent < -308) {
        if (exponent < -616) return neg ? -0.0 : 0.0;
        number /= pow10_nearest(-308 - exponent);
        return number / pow10_nearest(308);
    }
    return number / pow10_nearest(-exponent);
}

static inline __attribute__((always_inline)) int to_double(const char *s, size_t n,
                                                            double *out)
{
    const char *p = s, *end = s + n;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (p == end) return MLOPS_EPARSE;
    int neg = 0;
    const char *num = p;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    if (p < end && (*p == 'i' || *p == 'I')) {
        if (lower_eq(p, (size_t)(end - p), "inf") || lower_eq(p, (size_t)(end - p), "infinity")) {
            *out = neg ? -INFINITY : INFINITY;
            return 0;
        }
        return MLOPS_EPARSE;
    }
    /* Leading zeros count as digits here: more than 19 digits in all
     * only sends the number to the slow path, which is always right. */
    uint64_t mant = 0;
    int exp10 = 0;
    const char *d0 = p;
    while (p < end && (unsigned)(*p - '0') < 10) mant = mant * 10 + (uint64_t)(*p++ - '0');
    size_t digits = (size_t)(p - d0);
    if (p < end && *p == '.') {
        const char *f0 = ++p;
        while (p < end && (unsigned)(*p - '0') < 10) mant = mant * 10 + (uint64_t)(*p++ - '0');
        digits += (size_t)(p - f0);
        exp10 = -(int)(p - f0 < 400 ? p - f0 : 400);
    }
    /* pandas keeps 17 digits (leading zeros included); up to 17, with the
     * digits below 2^53 and a power of ten it holds exactly, both it and
     * this path round once, so they agree */
    int exact = digits <= 17;
    if (!digits) return MLOPS_EPARSE;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0, ed = 0;
        if (p < end && (*p == '-' || *p == '+')) {
            eneg = *p == '-';
            p++;
        }
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (e < 100000) e = e * 10 + (*p - '0');
            ed++;
            p++;
        }
        if (!ed) return MLOPS_EPARSE;
        exp10 += eneg ? -e : e;
    }
    if (p != end) return MLOPS_EPARSE;
    if (exact && mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (exact && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 >= 0 ? v * pow10_exact[exp10] : v / pow10_exact[-exp10];
        *out = neg ? -v : v;
        return 0;
    }
    /* Slow path: more than 2^53 in the digits or a power of ten beyond
     * 10^22, where a correctly rounded strtod and pandas differ. The
     * numbers must be pandas' (float_precision=None, its default), so
     * this follows its arithmetic: at most 17 significant digits
     * accumulated in a double, then one multiplication or division by
     * the double nearest to the power of ten. */
    *out = pandas_slow(num, end);
    return 0;
}

int mlk_csv_to_double(const char *s, size_t n, double *out)
{
    return to_double(s, n, out);
}

void mlk_csv_names_free(char ***names, size_t ncols)
{
    if (!names || !*names) return;
    for (size_t i = 0; i < ncols; i++) free((*names)[i]);
    free(*names);
    *names = NULL;
}

/* Skip a UTF-8 BOM. */
static size_t bom_len(const char *buf, size_t len)
{
    return len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
                   (unsigned char)buf[2] == 0xBF
               ? 3
               : 0;
}

int mlk_csv_header(const char *buf, size_t len, char ***names, size_t *ncols, size_t *data_start,
                   char *err, size_t errlen)
{
    *names = NULL;
    *ncols = 0;
    const char *p = buf + bom_len(buf, len), *end = buf + len;
    long line = 1;
    const char *q;
    while (p < end && (q = skip_blank(p, end)) != NULL) {
        p = q;
        line++;
    }
    if (p >= end) return mlops_seterr(err, errlen, MLOPS_EPARSE, "empty file: no header row");
    size_t nf, nl, cap = 0;
    const char *next;
    /* First pass counts the fields, second stores them. */
    if (next_record(p, end, NULL, 0, &nf, &next, &nl))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "line %ld: unterminated quote in header",
                            line);
    cap = nf;
    span *f = malloc(cap * sizeof *f);
    char **out = calloc(cap, sizeof *out);
    if (!f || !out) {
        free(f);
        free(out);
        return MLOPS_ENOMEM;
    }
    next_record(p, end, f, cap, &nf, &next, &nl);
    for (size_t i = 0; i < nf; i++) {
        char *s = malloc(f[i].n + 32);
        if (!s) {
            free(f);
            mlk_csv_names_free(&out, nf);
            return MLOPS_ENOMEM;
        }
        size_t n = f[i].quoted ? unquote(f[i].s, f[i].n, s) : f[i].n;
        if (!f[i].quoted) memcpy(s, f[i].s, n);
        s[n] = 0;
        if (n == 0) snprintf(s, 32, "Unnamed: %zu", i); /* as pandas names it */
        out[i] = s;
    }
    free(f);
    *names = out;
    *ncols = nf;
    *data_start = (size_t)(next - buf);
    return 0;
}

int mlk_csv_schema_init(mlk_csv_schema *schema, const char *const *hdr, size_t nhdr,
                        const char *const *want, const mlk_coltype *types, size_t nwant,
                        size_t *index, char *err, size_t errlen)
{
    for (size_t i = 0; i < nwant; i++) {
        size_t j = 0;
        while (j < nhdr && strcmp(hdr[j], want[i]) != 0) j++;
        if (j == nhdr)
            return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "column '%s' not in header",
                                want[i]);
        for (size_t k = 0; k < i; k++)
            if (index[k] == j)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "column '%s' wanted twice",
                                    want[i]);
        if (types[i] != MLK_F64 && types[i] != MLK_STR)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "column '%s': bad type", want[i]);
        index[i] = j;
    }
    schema->nfields = nhdr;
    schema->ncols = nwant;
    schema->index = index;
    schema->names = want;
    schema->types = types;
    schema->general_only = 0;
    return 0;
}

#ifdef MLK_CSV_AVX512
/* From *p, a record's first byte, skip at most `want` whole records that
 * hold no '"' and do not start with a blank byte (' ', TAB, CR, LF: the
 * ones the record walk of mlk_csv_split tests for a blank line), each
 * ended by its LF, in whole 64-byte blocks before `end`; returns the
 * records skipped (each one line) with *p at the next one's first byte.
 * Stops at the first record it cannot vouch for, which the record walk
 * then takes as before: the same shards, lines and counts. */
AVX512_TARGET static size_t skip_records_avx512(const char **pp, const char *end, size_t want)
{
    const char *p = *pp, *after = p; /* after: past the last LF taken */
    size_t got = 0;
    uint64_t prev = 1; /* the byte before the block is an LF (p starts a record) */
    const __m512i nl = _mm512_set1_epi8('\n'), qu = _mm512_set1_epi8('"');
    const __m512i sp = _mm512_set1_epi8(' '), tb = _mm512_set1_epi8('\t');
    const __m512i cr = _mm512_set1_epi8('\r');
    /* the blocks follow each other from p whatever they hold, so their
     * loads do not wait for the count of the one before */
    for (const char *b = p; end - b >= 64; b += 64) {
        __m512i x = _mm512_loadu_si512((const void *)b);
        uint64_t lf = _mm512_cmpeq_epi8_mask(x, nl);
        uint64_t q = _mm512_cmpeq_epi8_mask(x, qu);
        uint64_t bl = lf | _mm512_cmpeq_epi8_mask(x, sp) | _mm512_cmpeq_epi8_mask(x, tb) |
                      _mm512_cmpeq_epi8_mask(x, cr);
        /* a record starts after each LF: the first one that starts
         * blank, or the first '"', ends what is vouched for */
        uint64_t stop = q | (bl & ((lf << 1) | prev));
        uint64_t ok = lf & (stop ? (stop & -stop) - 1 : ~UINT64_C(0)); /* the LFs before it */
        size_t n = (size_t)__builtin_popcountll(ok);
        if (n > want - got) { /* keep the first want - got */
            uint64_t rest = ok;
            for (size_t i = want - got; i; i--) rest &= rest - 1;
            ok &= ~rest;
            n = want - got;
            stop = 1;
        }
        got += n;
        if (ok) after = b + 64 - __builtin_clzll(ok);
        if (stop) break;
        prev = lf >> 63;
    }
    *pp = after;
    return got;
}
#endif

#ifdef MLK_CSV_AVX2
/* The 64-bit mask of the bytes of the block lo:hi (two 32-byte halves)
 * equal to c */
#define AVX2_EQ64(lo, hi, c)                                                                       \
    ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8((lo), (c))) |                     \
     (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8((hi), (c))) << 32)

/* skip_records_avx512 with AVX2: each 64-byte block's masks from two
 * 32-byte loads; the same records vouched for, so the same shards. */
AVX2_TARGET static size_t skip_records_avx2(const char **pp, const char *end, size_t want)
{
    const char *p = *pp, *after = p;
    size_t got = 0;
    uint64_t prev = 1;
    const __m256i nl = _mm256_set1_epi8('\n'), qu = _mm256_set1_epi8('"');
    const __m256i sp = _mm256_set1_epi8(' '), tb = _mm256_set1_epi8('\t');
    const __m256i cr = _mm256_set1_epi8('\r');
    for (const char *b = p; end - b >= 64; b += 64) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)b);
        __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(b + 32));
        uint64_t lf = AVX2_EQ64(lo, hi, nl);
        uint64_t q = AVX2_EQ64(lo, hi, qu);
        __m256i bll = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(lo, sp), _mm256_cmpeq_epi8(lo, tb)),
                                      _mm256_cmpeq_epi8(lo, cr));
        __m256i blh = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(hi, sp), _mm256_cmpeq_epi8(hi, tb)),
                                      _mm256_cmpeq_epi8(hi, cr));
        uint64_t bl = lf | (uint64_t)(uint32_t)_mm256_movemask_epi8(bll) |
                      (uint64_t)(uint32_t)_mm256_movemask_epi8(blh) << 32;
        uint64_t stop = q | (bl & ((lf << 1) | prev));
        uint64_t ok = lf & (stop ? (stop & -stop) - 1 : ~UINT64_C(0));
        size_t n = (size_t)__builtin_popcountll(ok);
        if (n > want - got) {
            uint64_t rest = ok;
            for (size_t i = want - got; i; i--) rest &= rest - 1;
            ok &= ~rest;
            n = want - got;
            stop = 1;
        }
        got += n;
        if (ok) after = b + 64 - __builtin_clzll(ok);
        if (stop) break;
        prev = lf >> 63;
    }
    *pp = after;
    return got;
}
#endif

int mlk_csv_split(const char *buf, size_t len, size_t data_start, size_t shard_rows,
                  uint64_t **offsets, long **first_lines, size_t *nshards, uint64_t *total_rows)
{
    *offsets = NULL;
    *first_lines = NULL;
    *nshards = 0;
    *total_rows = 0;
    if (shard_rows == 0 || data_start > len) return MLOPS_EINVAL;
    const char *p = buf + data_start, *end = buf + len;
    long line = 1 + (long)count_nl(buf, p);
    size_t cap = 0, ns = 0;
    uint64_t *off = NULL;
    long *lines = NULL;
    uint64_t rec = 0;
    size_t left = 0; /* records until the next shard starts */
    /* the next LF or '"' comes from the structural mask (see the record
     * walk below) */
    sepit it = {buf, len, 0, 0, 0};
    sepit_seek(&it, p);
    int wide = 0; /* 2: the AVX-512 record skip, 1: the AVX2 one */
#ifdef MLK_CSV_AVX512
    if (cpu_avx512()) wide = 2;
#endif
#ifdef MLK_CSV_AVX2
    if (!wide && cpu_avx2()) wide = 1;
#endif
    while (p < end) {
        if (wide && left > 0) {
            /* the shard's next plain records, counted 64 bytes at a
             * time; the next shard's first is walked below, where its
             * start is taken */
            size_t k = 0;
#ifdef MLK_CSV_AVX512
            if (wide == 2) k = skip_records_avx512(&p, end, left);
#endif
#ifdef MLK_CSV_AVX2
            if (wide == 1) k = skip_records_avx2(&p, end, left);
#endif
            if (k) {
                rec += k;
                left -= k;
                line += (long)k;
                sepit_seek(&it, p);
                continue;
            }
        }
        const char *start = p;
        long start_line = line;
        const char *q;
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            while (p < end && (q = skip_blank(p, end)) != NULL) {
                if (q[-1] == '\n') line++;
                p = q;
            }
            if (p >= end) break;
            if (p != start) sepit_seek(&it, p);
        }
        if (left == 0) { /* a shard starts here (a countdown: no division per record) */
            left = shard_rows;
            if (ns == cap) {
                size_t nc = cap ? cap * 2 : 64;
                uint64_t *o = realloc(off, nc * sizeof *o);
                if (!o) goto nomem;
                off = o;
                long *l = realloc(lines, nc * sizeof *l);
                if (!l) goto nomem;
                lines = l;
                cap = nc;
            }
            off[ns] = (uint64_t)(start - buf);
            lines[ns] = start_line;
            ns++;
        }
        rec++;
        left--;
        const char *first = p;
        /* the record ends at the first LF outside quotes: a '"' opens a
         * quoted field only as a field's first byte (next_record's rule),
         * which the mask walk follows through "" and line breaks */
        for (;;) {
            const char *e = sepit_next(&it);
            if (e >= end) {
                p = end;
                break;
            }
            if (*e == '\n') {
                line++;
                p = e + 1;
                break;
            }
            if (e != first && e[-1] != ',') continue; /* a '"' inside a field is data */
            for (;;) { /* inside the quotes: to the '"' not followed by another */
                const char *q = sepit_next(&it);
                if (q >= end) break;
                if (*q == '\n') {
                    line++;
                } else if (q + 1 < end && q[1] == '"') {
                    sepit_next(&it); /* "" is one '"' of the data */
                } else {
                    break;
                }
            }
        }
    }
    *offsets = off;
    *first_lines = lines;
    *nshards = ns;
    *total_rows = rec;
    return 0;
nomem:
    free(off);
    free(lines);
    return MLOPS_ENOMEM;
}

/* Append a string value as row `row` of string column col. src_end
 * bounds the readable bytes after s: short values are copied as one
 * fixed 16-byte move (inlined, no libc call) when both sides have room;
 * the bytes past len are scratch, overwritten by the next value. */
static inline int str_put(mlk_col *col, size_t row, const char *s, size_t len, int missing,
                          const char *src_end)
{
    uint64_t at = col->off[row];
    if (at + len + 16 > col->str_cap) {
        size_t ncap = col->str_cap ? col->str_cap : 4096;
        while (ncap < at + len + 16) ncap *= 2;
        char *n = realloc(col->str, ncap);
        if (!n) return MLOPS_ENOMEM;
        col->str = n;
        col->str_cap = ncap;
    }
    if (len <= 16 && src_end - s >= 16) memcpy(col->str + at, s, 16);
    else if (len) memcpy(col->str + at, s, len);
    col->off[row + 1] = at + len;
    col->missing[row] = (uint8_t)missing;
    return 0;
}

/* A field's text for messages, shortened and without control bytes. */
static void field_for_msg(const char *s, size_t n, char *out, size_t outlen)
{
    size_t w = 0;
    for (size_t i = 0; i < n && w + 4 < outlen; i++)
        out[w++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (n && w < n && w + 4 <= outlen) {
        memcpy(out + w, "...", 3);
        w += 3;
    }
    out[w] = 0;
}

/* The offset of the first byte of s[0..n) that is not well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF),
 * or n. pandas refuses such a file (UnicodeDecodeError), and a string
 * that is not text would come back out of export as bytes no CSV reader
 * takes, so it is refused with its line rather than carried along. */
static size_t utf8_bad_at(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c == 0xE0) k = 2, lo = 0xA0;
        else if (c == 0xED) k = 2, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) k = 2;
        else if (c == 0xF0) k = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) k = 3;
        else if (c == 0xF4) k = 3, hi = 0x8F;
        else return i;
        if (i + k >= n) return i; /* truncated sequence */
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t t = 2; t <= k; t++)
            if (s[i + t] < 0x80 || s[i + t] > 0xBF) return i;
        i += k + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* The fast path's conversions. */

/* The exact branch of to_double for a field of sign, digits and at most
 * one '.', at most 17 digits: 1 and *out, or 0 (to_double decides). */
static inline __attribute__((always_inline)) int fast_number(const char *s, const char *e,
                                                             double *out)
{
    const char *p = s;
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    uint64_t mant = 0;
    const char *d0 = p;
    while (p < e && (unsigned)(*p - '0') < 10) mant = mant * 10 + (uint64_t)(*p++ - '0');
    size_t digits = (size_t)(p - d0), frac = 0;
    if (p < e && *p == '.') {
        const char *f0 = ++p;
        while (p < e && (unsigned)(*p - '0') < 10) mant = mant * 10 + (uint64_t)(*p++ - '0');
        frac = (size_t)(p - f0);
        digits += frac;
    }
    if (p != e || digits == 0 || digits > 17) return 0;
    if (mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return 1;
    }
    if (mant > (UINT64_C(1) << 53)) return 0;
    double v = (double)mant;
    if (frac) v /= pow10_exact[frac];
    *out = neg ? -v : v;
    return 1;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&                        \
    !(defined(__SSSE3__) && !defined(MLK_CSV_SCALAR))
/* (with SSSE3 shuf_number below takes its place: the scalar builds,
 * test_csv_scalar and test_csv_fast_scalar, test this one) */
/* fast_number for a field of at most 8 bytes with 8 readable, without a
 * loop or a branch per digit: the '.' is found and squeezed out of the
 * word, the digits are checked and converted 8 at a time (the SWAR
 * method of simdjson and fast_float). The same mantissa and count of
 * decimals as fast_number, so the same double. */
static inline __attribute__((always_inline)) int swar_number(const char *s, size_t n, double *out)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    uint64_t w;
    memcpy(&w, s, 8);
    w &= ~UINT64_C(0) >> (64 - 8 * n); /* 1 <= n <= 8 */
    int neg = 0;
    if ((w & 0xff) == '-' || (w & 0xff) == '+') {
        neg = (w & 0xff) == '-';
        w >>= 8;
        n--;
    }
    uint64_t x = w ^ (ones * '.');
    uint64_t z = (x - ones) & ~x & (ones * 0x80); /* lowest set: the first '.' */
    size_t d = z ? (size_t)__builtin_ctzll(z) / 8 : 8, k = n, frac = 0;
    if (d < n) {
        uint64_t lo = w & ((UINT64_C(1) << (8 * d)) - 1);
        uint64_t hi = d + 1 < 8 ? w >> (8 * (d + 1)) : 0;
        w = lo | hi << (8 * d);
        k = n - 1;
        frac = k - d;
    }
    if (k == 0) return 0;
    /* the k digits at the top, '0's below them: eight digits or not */
    uint64_t v = w << (8 * (8 - k)) | ((ones * '0') & ((UINT64_C(1) << (8 * (8 - k))) - 1));
    if (((v & (ones * 0xF0)) | (((v + ones * 0x06) & (ones * 0xF0)) >> 4)) != ones * 0x33) return 0;
    v -= ones * '0';
    v = v * 10 + (v >> 8);
    v = (((v & UINT64_C(0x000000FF000000FF)) * (100 + (UINT64_C(1000000) << 32))) +
         (((v >> 16) & UINT64_C(0x000000FF000000FF)) * (1 + (UINT64_C(10000) << 32)))) >>
        32;
    if (v == 0) {
        *out = neg ? -0.0 : 0.0;
        return 1;
    }
    double r = (double)v;
    if (frac) r /= pow10_exact[frac];
    *out = neg ? -r : r;
    return 1;
}
#endif

#if defined(__SSSE3__) && !defined(MLK_CSV_SCALAR) && defined(__BYTE_ORDER__) &&                \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <tmmintrin.h>
#define MLK_CSV_SHUF 1

/* swar_number's squeeze and alignment as one byte shuffle: for a field
 * of sign byte s (0 or 1), k digits and the '.' after the first d of
 * them (d = k: none, or a trailing one), byte j of the 8 digits holds
 * field byte SHUF_IDX(s, k, d, j), most significant first, with 0x80
 * (pshufb's "zero") above the k digits. A constant table. */
#define SHUF_T(k, j) ((j) - (8 - (k)))
#define SHUF_IDX(s, k, d, j)                                                                       \
    ((j) < 8 - (k) ? 0x80 : SHUF_T(k, j) + (s) + (SHUF_T(k, j) >= (d)))
#define SHUF_ROW(s, k, d)                                                                          \
    {SHUF_IDX(s, k, d, 0), SHUF_IDX(s, k, d, 1), SHUF_IDX(s, k, d, 2), SHUF_IDX(s, k, d, 3),       \
     SHUF_IDX(s, k, d, 4), SHUF_IDX(s, k, d, 5), SHUF_IDX(s, k, d, 6), SHUF_IDX(s, k, d, 7)}
#define SHUF_D(s, k)                                                                               \
    SHUF_ROW(s, k, 0), SHUF_ROW(s, k, 1), SHUF_ROW(s, k, 2), SHUF_ROW(s, k, 3), SHUF_ROW(s, k, 4), \
        SHUF_ROW(s, k, 5), SHUF_ROW(s, k, 6), SHUF_ROW(s, k, 7), SHUF_ROW(s, k, 8)
#define SHUF_K(s)                                                                                  \
    SHUF_D(s, 0), SHUF_D(s, 1), SHUF_D(s, 2), SHUF_D(s, 3), SHUF_D(s, 4), SHUF_D(s, 5),          \
        SHUF_D(s, 6), SHUF_D(s, 7), SHUF_D(s, 8)
static const uint8_t shuf_tab[2 * 9 * 9][8] = {SHUF_K(0), SHUF_K(1)};

/* swar_number with SSSE3: the '.' found by one compare, the sign skipped,
 * the '.' squeezed out and the digits right-aligned by one pshufb from
 * shuf_tab, checked as bytes <= 9 in one compare; then swar_number's
 * three multiplies. The same mantissa and count of decimals as
 * swar_number and fast_number, so the same double; 0 where either would
 * refuse (a second '.' or a sign after the first byte is shuffled in as
 * a digit and fails the check). */
static inline __attribute__((always_inline)) int shuf_number(const char *s, size_t n, double *out)
{
    __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)s);
    unsigned c0 = (unsigned char)s[0];
    unsigned sg = c0 == '-' || c0 == '+';
    unsigned dm = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.'))) &
                  ((1u << n) - 1);
    unsigned hasdot = dm != 0;
    unsigned dabs = dm ? (unsigned)__builtin_ctz(dm) : (unsigned)n;
    unsigned k = (unsigned)n - sg - hasdot, d = dabs - sg;
    if (k == 0) return 0;
    __m128i ctl = _mm_loadl_epi64((const __m128i *)(const void *)shuf_tab[sg * 81 + k * 9 + d]);
    __m128i z = _mm_shuffle_epi8(_mm_sub_epi8(x, _mm_set1_epi8('0')), ctl);
    if ((_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(z, _mm_set1_epi8(9)), _mm_set1_epi8(9))) &
         0xff) != 0xff)
        return 0;
    uint64_t v = (uint64_t)_mm_cvtsi128_si64(z);
    v = v * 10 + (v >> 8);
    v = (((v & UINT64_C(0x000000FF000000FF)) * (100 + (UINT64_C(1000000) << 32))) +
         (((v >> 16) & UINT64_C(0x000000FF000000FF)) * (1 + (UINT64_C(10000) << 32)))) >>
        32;
    int neg = c0 == '-';
    if (v == 0) {
        *out = neg ? -0.0 : 0.0;
        return 1;
    }
    double r = (double)v;
    if (k != d) r /= pow10_exact[k - d];
    *out = neg ? -r : r;
    return 1;
}
#endif

#if defined(MLK_CSV_AVX512) && defined(MLK_CSV_SHUF)
#define MLK_CSV_VNUM 1
#define VNUM_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512cd,popcnt")))
static inline int cpu_vnum(void)
{
    return cpu_avx512() && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd");
}
/* shuf_number for 8 rows of a column at once, one per 64-bit lane: the
 * fields' offsets gathered from the chunk (fb, fe at `stride`), their 8
 * bytes gathered from the window, then shuf_number's steps lane by lane:
 * the sign, the first '.', the shuffle from shuf_tab (gathered by the
 * same index; +8 in the odd lanes, as pshufb works in 16-byte halves),
 * the check of the digits, the mantissa by two multiply-adds, the
 * conversion and the one division by an exact power of ten. The same
 * mantissa and decimals, so the same doubles. Converts whole groups of
 * 8 rows while every field of the group is one shuf_number takes (1-8
 * bytes, 8 readable); returns the rows done (a multiple of 8), and the
 * scalar loop goes on from there, where it finds the exact row that
 * stops. Measured on the purchases file, one core: split + parse 0.659
 * -> 0.741 GB/s; a first version, with the powers gathered and 64-bit
 * multiplies for the table index, was no faster than the scalar loop. */
VNUM_TARGET static size_t numbers_avx512(const char *base, const uint32_t *fb, const uint32_t *fe,
                                         size_t stride, size_t n, const char *end, double *out)
{
    const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32((int)stride));
    const uint64_t room = (uint64_t)(end - base);
    const __m512i one = _mm512_set1_epi64(1), eight = _mm512_set1_epi64(8);
    const __m512i bytepos = _mm512_set1_epi64(0x0706050403020100);
    const __m512d p10lo = _mm512_loadu_pd(pow10_exact), p10hi = _mm512_loadu_pd(pow10_exact + 8);
    /* pshufb picks within 16-byte halves: byte j of an odd lane is j + 8 */
    const __m512i odd8 = _mm512_setr_epi64(0, 0x0808080808080808, 0, 0x0808080808080808, 0,
                                           0x0808080808080808, 0, 0x0808080808080808);
    const __m512i w10 = _mm512_set1_epi16(0x010a), w100 = _mm512_set1_epi32(0x00010064);
    const __m512i signbit = _mm512_set1_epi64((long long)UINT64_C(0x8000000000000000));
    size_t r = 0;
    for (; r + 8 <= n; r += 8) {
        const uint32_t *b = fb + r * stride, *e = fe + r * stride;
        __m512i off = _mm512_cvtepu32_epi64(_mm256_i32gather_epi32((const int *)(const void *)b, rows, 4));
        __m512i len = _mm512_sub_epi64(
            _mm512_cvtepu32_epi64(_mm256_i32gather_epi32((const int *)(const void *)e, rows, 4)), off);
        /* 1 <= len <= 8, and 8 bytes readable */
        __mmask8 ok = _mm512_cmple_epu64_mask(_mm512_sub_epi64(len, one), _mm512_set1_epi64(7)) &
                      _mm512_cmple_epu64_mask(_mm512_add_epi64(off, eight), _mm512_set1_epi64((long long)room));
        if (ok != 0xff) break;
        __m512i x = _mm512_i64gather_epi64(off, (const void *)base, 1);
        /* the bytes before len, the '.' among them, the sign byte */
        __m512i lenb = _mm512_shuffle_epi8(len, odd8); /* its byte 0 in all 8 */
        __mmask64 valid = _mm512_cmplt_epu8_mask(bytepos, lenb);
        __mmask64 dots = _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('.')) & valid;
        __m512i c0 = _mm512_and_si512(x, _mm512_set1_epi64(0xff));
        __mmask8 neg = _mm512_cmpeq_epi64_mask(c0, _mm512_set1_epi64('-'));
        __mmask8 sgm = neg | _mm512_cmpeq_epi64_mask(c0, _mm512_set1_epi64('+'));
        __m512i sg = _mm512_maskz_mov_epi64(sgm, one);
        /* the first '.': the trailing zeros of the lane's dot bytes */
        __m512i dv = _mm512_movm_epi8(dots);
        __mmask8 hasdot = _mm512_test_epi64_mask(dv, dv);
        __m512i low = _mm512_and_si512(dv, _mm512_sub_epi64(_mm512_setzero_si512(), dv));
        __m512i dabs = _mm512_mask_srli_epi64(len, hasdot,
                                              _mm512_sub_epi64(_mm512_set1_epi64(63), _mm512_lzcnt_epi64(low)), 3);
        __m512i k = _mm512_sub_epi64(_mm512_sub_epi64(len, sg), _mm512_maskz_mov_epi64(hasdot, one));
        __m512i d = _mm512_sub_epi64(dabs, sg);
        if (_mm512_cmpeq_epi64_mask(k, _mm512_setzero_si512())) break;
        __m512i row = _mm512_add_epi64(_mm512_add_epi64(_mm512_maskz_mov_epi64(sgm, _mm512_set1_epi64(81)),
                                                        _mm512_add_epi64(_mm512_slli_epi64(k, 3), k)), d);
        __m512i ctl = _mm512_add_epi64(_mm512_i64gather_epi64(row, (const void *)shuf_tab, 8), odd8);
        __m512i z = _mm512_shuffle_epi8(_mm512_sub_epi8(x, _mm512_set1_epi8('0')), ctl);
        if (_mm512_cmpgt_epu8_mask(z, _mm512_set1_epi8(9))) break;
        /* byte 0 the most significant: pairs, then fours, then eight */
        __m512i v = _mm512_madd_epi16(_mm512_maddubs_epi16(z, w10), w100);
        v = _mm512_add_epi64(_mm512_mul_epu32(v, _mm512_set1_epi64(10000)), _mm512_srli_epi64(v, 32));
        __m512d dbl = _mm512_cvtepu64_pd(v);
        dbl = _mm512_div_pd(dbl, _mm512_permutex2var_pd(p10lo, _mm512_sub_epi64(k, d), p10hi));
        dbl = _mm512_castsi512_pd(_mm512_mask_xor_epi64(_mm512_castpd_si512(dbl), neg,
                                                        _mm512_castpd_si512(dbl), signbit));
        _mm512_storeu_pd(out + r, dbl);
    }
    return r;
}
#endif

#ifdef MLK_CSV_AVX2
/* The same for 4 rows at a time with AVX2, one per 64-bit lane, on CPUs
 * without AVX-512. AVX2 has no byte masks, lzcnt or compress of lanes,
 * so each lane's small counts (length, sign, digits, where the '.' is)
 * are kept as bytes repeated across the lane, and shuf_tab's row is
 * computed in place (byte j: 0x80 below the digits, else the field byte
 * SHUF_IDX names) instead of gathered; the first '.' is the count of
 * bytes below it (a sum of absolute differences); the mantissa, below
 * 10^8, becomes a double exactly through 2^52's bit pattern. The same
 * mantissa, decimals and division, so the same doubles; whole groups of
 * 4 rows while every field is one shuf_number takes, the rest left to
 * the scalar loop. */
AVX2_TARGET static size_t numbers_avx2(const char *base, const uint32_t *fb, const uint32_t *fe,
                                       size_t stride, size_t n, const char *end, double *out)
{
    const uint64_t room = (uint64_t)(end - base);
    const __m256i bytepos = _mm256_set1_epi64x(0x0706050403020100);
    /* pshufb works in 16-byte halves: byte 0 of each 64-bit lane to all its bytes */
    const __m256i bcast = _mm256_setr_epi64x(0, 0x0808080808080808, 0, 0x0808080808080808);
    const __m256i ones8 = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
    const __m256i w10 = _mm256_set1_epi16(0x010a), w100 = _mm256_set1_epi32(0x00010064);
    const __m256i lowbyte = _mm256_set1_epi64x(0xff), nine = _mm256_set1_epi8(9);
    const __m256i magic = _mm256_set1_epi64x(0x4330000000000000);
    const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
    const __m256i signbit = _mm256_set1_epi64x((long long)UINT64_C(0x8000000000000000));
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const uint32_t *b = fb + r * stride, *e = fe + r * stride;
        uint32_t o0 = b[0], o1 = b[stride], o2 = b[2 * stride], o3 = b[3 * stride];
        uint32_t l0 = e[0] - o0, l1 = e[stride] - o1, l2 = e[2 * stride] - o2, l3 = e[3 * stride] - o3;
        /* 1 <= len <= 8, and 8 bytes readable */
        if (((l0 - 1) | (l1 - 1) | (l2 - 1) | (l3 - 1)) > 7) break;
        if ((uint64_t)o0 + 8 > room || (uint64_t)o1 + 8 > room || (uint64_t)o2 + 8 > room ||
            (uint64_t)o3 + 8 > room)
            break;
        uint64_t x0, x1, x2, x3;
        memcpy(&x0, base + o0, 8);
        memcpy(&x1, base + o1, 8);
        memcpy(&x2, base + o2, 8);
        memcpy(&x3, base + o3, 8);
        __m256i x = _mm256_setr_epi64x((long long)x0, (long long)x1, (long long)x2, (long long)x3);
        __m256i lenb = _mm256_shuffle_epi8(
            _mm256_cvtepu32_epi64(_mm_setr_epi32((int)l0, (int)l1, (int)l2, (int)l3)), bcast);
        __m256i valid = _mm256_cmpgt_epi8(lenb, bytepos);
        __m256i dots = _mm256_and_si256(_mm256_cmpeq_epi8(x, _mm256_set1_epi8('.')), valid);
        __m256i c0 = _mm256_shuffle_epi8(x, bcast);
        __m256i negb = _mm256_cmpeq_epi8(c0, _mm256_set1_epi8('-'));
        __m256i sgb = _mm256_or_si256(negb, _mm256_cmpeq_epi8(c0, _mm256_set1_epi8('+'))); /* -1: a sign */
        /* the first '.' at byte j: the 0xff bytes below its lowest bit,
         * counted; 8 with no '.', which min() turns into len */
        __m256i low = _mm256_and_si256(dots, _mm256_sub_epi64(zero, dots));
        __m256i below = _mm256_and_si256(_mm256_sub_epi64(low, _mm256_set1_epi64x(1)), ones8);
        __m256i jb = _mm256_shuffle_epi8(_mm256_sad_epu8(below, zero), bcast);
        __m256i dabs = _mm256_min_epu8(jb, lenb);
        __m256i hasdot = _mm256_cmpgt_epi8(lenb, jb); /* -1: a '.' */
        __m256i kb = _mm256_add_epi8(_mm256_add_epi8(lenb, sgb), hasdot); /* the digits */
        __m256i db = _mm256_add_epi8(dabs, sgb);                          /* before the '.' */
        if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(kb, zero))) break;
        /* shuf_tab's row: t = j - (8 - k); below 0 zero, else t + s + (t >= d) */
        __m256i t = _mm256_sub_epi8(_mm256_add_epi8(bytepos, kb), _mm256_set1_epi8(8));
        __m256i ctl = _mm256_sub_epi8(_mm256_sub_epi8(t, sgb),
                                      _mm256_cmpgt_epi8(t, _mm256_sub_epi8(db, ones8)));
        ctl = _mm256_or_si256(_mm256_add_epi8(ctl, bcast), _mm256_cmpgt_epi8(zero, t));
        __m256i z = _mm256_shuffle_epi8(_mm256_sub_epi8(x, _mm256_set1_epi8('0')), ctl);
        if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(z, nine), nine)) != -1) break;
        __m256i v = _mm256_madd_epi16(_mm256_maddubs_epi16(z, w10), w100);
        v = _mm256_add_epi64(_mm256_mul_epu32(v, _mm256_set1_epi64x(10000)), _mm256_srli_epi64(v, 32));
        __m256d dbl = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, magic)), two52);
        __m256i kd = _mm256_and_si256(_mm256_sub_epi8(kb, db), lowbyte);
        dbl = _mm256_div_pd(dbl, _mm256_i64gather_pd(pow10_exact, kd, 8));
        dbl = _mm256_castsi256_pd(
            _mm256_xor_si256(_mm256_castpd_si256(dbl), _mm256_and_si256(negb, signbit)));
        _mm256_storeu_pd(out + r, dbl);
    }
    return r;
}
#endif

/* 1 if s[0..n) is all ASCII. Short fields (the common case) are tested
 * as two 8-byte words when 16 bytes are readable. */
static inline int ascii_run(const char *s, size_t n, const char *end)
{
    const uint64_t hi = UINT64_C(0x8080808080808080);
    uint64_t acc = 0, a, b;
#if defined(__SSE2__) && !defined(MLK_CSV_SCALAR)
    /* the high bits of 16 bytes are one movemask */
    if (n <= 16 && (size_t)(end - s) >= 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)s));
        return !(m & ((1u << n) - 1));
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n <= 16 && (size_t)(end - s) >= 16) {
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        if (n < 8) {
            a = n ? a & (~UINT64_C(0) >> (64 - 8 * n)) : 0;
            b = 0;
        } else if (n < 16) {
            b = n > 8 ? b & (~UINT64_C(0) >> (128 - 8 * n)) : 0;
        }
        return !((a | b) & hi);
    }
#else
    (void)end;
#endif
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&a, s + i, 8);
        acc |= a;
    }
    for (; i < n; i++) acc |= (unsigned char)s[i];
    (void)b;
    return !(acc & hi);
}

/* ------------------------------------------------------------------ */
/* The fast path: plain records a window at a time, in three passes.
 *
 * 1. index (index_window): the structural bytes (',' LF '"' CR) of up
 *    to WIN bytes, found 64 at a time as a bit mask (mask64_full) and
 *    flattened into an array of offsets eight at a time, with no branch
 *    per byte or per field;
 * 2. tokenize: walking that array, the fields of each plain record
 *    become (start, end) pairs, row by row, up to CHUNK records (a usual
 *    record's copied from the array four at a time); the first record
 *    that is not plain ends the chunk;
 * 3. convert: one typed loop per column over its pairs (numbers through
 *    shuf_number with SSSE3 or swar_number, else fast_number; strings
 *    appended), each stopping at the first field it does not take;
 *    the rows before the earliest stop are committed.
 * A plain record holds no '"' but around a field with no '"' or line
 * break inside, no CR but the one of a CRLF, and numbers of at most 17
 * digits with no exponent. The record where a chunk stopped (any other
 * quote, a stray CR, a wrong field count, a number the fast conversion
 * does not take, an NA token in a numeric column, non-UTF-8 text, a
 * blank line, a record longer than the window) is parsed again from its
 * first byte by the general tokenizer, so both paths give the same
 * values and messages; the window's index serves the records after it,
 * as it does not depend on the quote state. */

enum { WIN = 1 << 14, CHUNK = 128 };

typedef struct {
    const char *base; /* where the window starts */
    uint32_t len;     /* its bytes */
    int at_end;       /* it ends where the buffer does: pos[np - 1] = len is a sentinel LF */
    uint32_t *pos;    /* np offsets from base, ascending; room for WIN + 1 + 16, and
                       * pos[-1] = UINT32_MAX, so that pos[-1] + 1 is offset 0 */
    size_t np;
} csv_index;

/* Append the offsets base + i of the set bits i of m to out, returns the
 * new end. Writes eight at a time whatever the count (out has room):
 * the OR keeps ctz defined once m is spent; those slots are past the end. */
static inline __attribute__((always_inline)) uint32_t *flatten(uint32_t *out, uint32_t base,
                                                               uint64_t m)
{
    const uint64_t top = UINT64_C(1) << 63;
    uint32_t *next = out + __builtin_popcountll(m);
    while (m) {
        for (int k = 0; k < 8; k++) {
            out[k] = base + (uint32_t)__builtin_ctzll(m | top);
            m &= m - 1;
        }
        out += 8;
    }
    return next;
}

/* Index the window of at most WIN bytes at p (avail bytes readable). */
static void index_window(csv_index *ix, const char *p, size_t avail)
{
    size_t n = avail < WIN ? avail : WIN;
    uint32_t *out = ix->pos;
    for (size_t b = 0; b < n; b += 64) out = flatten(out, (uint32_t)b, block_mask(p + b, n - b, 1));
    ix->base = p;
    ix->len = (uint32_t)n;
    ix->at_end = n == avail;
    if (ix->at_end) *out++ = (uint32_t)n;
    ix->np = (size_t)(out - ix->pos);
}

#ifdef MLK_CSV_AVX512
/* index_window with AVX-512BW: a 64-byte block's mask is one load and
 * four compares into mask registers (instead of 16 SSE2 compares and
 * four movemasks), and its offsets are made 16 at a time by compressing
 * the block's lane numbers under the mask (instead of a ctz chain, one
 * step per structural byte: what limited index_window). The same
 * offsets, so the same index; the partial block at a buffer's end still
 * goes through tail_mask, so no byte past the buffer is read. Each store
 * writes 16 offsets whatever the count (pos has room for them). */
AVX512_TARGET static void index_window_avx512(csv_index *ix, const char *p, size_t avail)
{
    size_t n = avail < WIN ? avail : WIN;
    uint32_t *out = ix->pos;
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i nl = _mm512_set1_epi8('\n'), qu = _mm512_set1_epi8('"');
    const __m512i co = _mm512_set1_epi8(','), cr = _mm512_set1_epi8('\r');
    for (size_t b = 0; b < n; b += 64) {
        uint64_t m;
        if (n - b >= 64) {
            __m512i x = _mm512_loadu_si512((const void *)(p + b));
            m = _mm512_cmpeq_epi8_mask(x, nl) | _mm512_cmpeq_epi8_mask(x, qu) |
                _mm512_cmpeq_epi8_mask(x, co) | _mm512_cmpeq_epi8_mask(x, cr);
        } else {
            m = tail_mask(p + b, n - b, 1);
        }
        __m512i at = _mm512_add_epi32(lanes, _mm512_set1_epi32((int)b));
        for (int q = 0; q < 4; q++) {
            __mmask16 k = (__mmask16)(m >> (16 * q));
            _mm512_storeu_si512((void *)out, _mm512_maskz_compress_epi32(k, at));
            out += __builtin_popcount((unsigned)k);
            at = _mm512_add_epi32(at, _mm512_set1_epi32(16));
        }
    }
    ix->base = p;
    ix->len = (uint32_t)n;
    ix->at_end = n == avail;
    if (ix->at_end) *out++ = (uint32_t)n;
    ix->np = (size_t)(out - ix->pos);
}
#endif

#ifdef MLK_CSV_AVX2
/* flat_tab[v]: the places of the set bits of the byte v, lowest first */
static uint8_t flat_tab[256][8];

__attribute__((constructor)) static void flat_tab_init(void)
{
    for (unsigned v = 0; v < 256; v++)
        for (unsigned b = 0, k = 0; b < 8; b++)
            if (v >> b & 1) flat_tab[v][k++] = (uint8_t)b;
}

/* flatten with AVX2, a byte of the mask a step: its places from
 * flat_tab widened to 8 offsets, one store, whatever the count (no
 * chain of one ctz per structural byte). */
AVX2_TARGET static inline uint32_t *flatten_avx2(uint32_t *out, uint32_t base, uint64_t m)
{
    __m256i at = _mm256_set1_epi32((int)base);
    const __m256i eight = _mm256_set1_epi32(8);
    for (int q = 0; q < 8; q++, m >>= 8) {
        unsigned v = (unsigned)(m & 0xff);
        __m256i k = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)flat_tab[v]));
        _mm256_storeu_si256((__m256i *)(void *)out, _mm256_add_epi32(k, at));
        out += __builtin_popcount(v);
        at = _mm256_add_epi32(at, eight);
    }
    return out;
}

/* index_window with AVX2: a 64-byte block's mask from two 32-byte loads
 * (eight compares, two movemasks, instead of SSE2's sixteen and four),
 * flattened by flatten_avx2. The same offsets, so the same index. */
AVX2_TARGET static void index_window_avx2(csv_index *ix, const char *p, size_t avail)
{
    size_t n = avail < WIN ? avail : WIN;
    uint32_t *out = ix->pos;
    const __m256i nl = _mm256_set1_epi8('\n'), qu = _mm256_set1_epi8('"');
    const __m256i co = _mm256_set1_epi8(','), cr = _mm256_set1_epi8('\r');
    for (size_t b = 0; b < n; b += 64) {
        uint64_t m;
        if (n - b >= 64) {
            __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)(p + b));
            __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + b + 32));
            __m256i ml = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(lo, nl), _mm256_cmpeq_epi8(lo, qu)),
                                         _mm256_or_si256(_mm256_cmpeq_epi8(lo, co), _mm256_cmpeq_epi8(lo, cr)));
            __m256i mh = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(hi, nl), _mm256_cmpeq_epi8(hi, qu)),
                                         _mm256_or_si256(_mm256_cmpeq_epi8(hi, co), _mm256_cmpeq_epi8(hi, cr)));
            m = (uint64_t)(uint32_t)_mm256_movemask_epi8(ml) |
                (uint64_t)(uint32_t)_mm256_movemask_epi8(mh) << 32;
        } else {
            m = tail_mask(p + b, n - b, 1);
        }
        out = flatten_avx2(out, (uint32_t)b, m);
    }
    ix->base = p;
    ix->len = (uint32_t)n;
    ix->at_end = n == avail;
    if (ix->at_end) *out++ = (uint32_t)n;
    ix->np = (size_t)(out - ix->pos);
}
#endif

/* A chunk's fields, row by row: field k of row r spans the window's
 * offsets [fb[r * stride + k], fe[r * stride + k]) (stride: the fields
 * per record rounded up to 4, so that a usual record is copied from the
 * index in whole groups of four); row r starts at offset rowstart[r],
 * with pos[rowpos[r]] the first structural byte at or after it (r up to
 * the count of rows, inclusive). */
typedef struct {
    uint32_t *fb, *fe;
    size_t stride;
    uint32_t rowstart[CHUNK + 1];
    size_t rowpos[CHUNK + 1];
} csv_chunk;

enum { TOK_FULL, TOK_NOT_PLAIN, TOK_INCOMPLETE };

/* Tokenize the plain records from offset `at` of the window (a record's
 * start; pos[i] the first structural byte at or after it) into ch.
 * Returns the records taken and
 * in *why what ended them: TOK_FULL (CHUNK records, or the window's data
 * is all taken), TOK_NOT_PLAIN (the next record is not plain, or
 * starts with a blank) or TOK_INCOMPLETE (it runs past the window). */
static __attribute__((noinline)) size_t tokenize(const csv_index *ix, size_t i, uint32_t at,
                                                 size_t nfields, csv_chunk *ch, int *why)
{
    const char *b = ix->base;
    const uint32_t *pos = ix->pos, len = ix->len;
    const size_t np = ix->np, stride = ch->stride;
    size_t r = 0;
    *why = TOK_FULL;
    for (; r < CHUNK; r++) {
        ch->rowstart[r] = at;
        ch->rowpos[r] = i;
        if (at >= len) {
            if (!ix->at_end) *why = TOK_INCOMPLETE;
            return r;
        }
        char c0 = b[at];
        if (c0 == '\n' || c0 == '\r' || c0 == ' ' || c0 == '\t') goto not_plain;
        uint32_t fs = at, e;
        uint32_t *rb = ch->fb + r * stride, *re = ch->fe + r * stride;
        /* The usual record: its next nfields structural bytes are the
         * commas and its LF (none is the sentinel, which is not a byte),
         * and the one before them is the LF just before it (pos[-1] + 1
         * is 0 for the window's first): one test for the whole record,
         * no branch per field, then field k is (pp[k - 1], pp[k]) for
         * every k, copied four at a time */
        if (i + nfields <= np - (size_t)ix->at_end) {
            const uint32_t *pp = pos + i;
            uint32_t odd = ((unsigned char)b[pp[nfields - 1]] ^ '\n') | ((pp[-1] + 1) ^ at);
            for (size_t k = 0; k + 1 < nfields; k++) odd |= (unsigned char)b[pp[k]] ^ ',';
            if (!odd) {
#if defined(__SSE2__) && !defined(MLK_CSV_SCALAR)
                const __m128i one = _mm_set1_epi32(1);
                for (size_t k = 0; k < stride; k += 4) {
                    __m128i e4 = _mm_loadu_si128((const __m128i *)(const void *)(pp + k));
                    __m128i b4 = _mm_loadu_si128((const __m128i *)(const void *)(pp + k - 1));
                    _mm_storeu_si128((__m128i *)(void *)(re + k), e4);
                    _mm_storeu_si128((__m128i *)(void *)(rb + k), _mm_add_epi32(b4, one));
                }
#else
                for (size_t k = 0; k < stride; k++) {
                    re[k] = pp[k];
                    rb[k] = pp[k - 1] + 1;
                }
#endif
                i += nfields;
                at = pp[nfields - 1] + 1;
                continue;
            }
        }
        for (size_t k = 0;; k++) {
            if (i >= np) goto incomplete;
            e = pos[i++];
            uint32_t vs = fs, fe = e;
            char t = e < len ? b[e] : '\n';
            int last = k + 1 == nfields;
            if (t == '"') {
                /* "toys, games": the bytes between the quotes, commas at
                 * most inside, the separator right after */
                if (e != fs) goto not_plain;
                uint32_t q;
                do {
                    if (i >= np) goto incomplete;
                    q = pos[i++];
                } while (q < len && b[q] == ',');
                if (q >= len || b[q] != '"') goto not_plain;
                if (i >= np) goto incomplete;
                e = pos[i++];
                if (e != q + 1) goto not_plain;
                vs = fs + 1;
                fe = q;
                t = e < len ? b[e] : '\n';
            }
            if (t == ',') {
                if (last) goto not_plain;
            } else if (t == '\n') {
                if (!last) goto not_plain;
            } else if (t == '\r' && last) {
                if (i >= np) goto incomplete;
                if (pos[i] != e + 1 || e + 1 >= len || b[e + 1] != '\n') goto not_plain;
                e = pos[i++];
            } else {
                goto not_plain;
            }
            rb[k] = vs;
            re[k] = fe;
            if (last) break;
            fs = e + 1;
        }
        at = e < len ? e + 1 : len;
    }
    ch->rowstart[r] = at;
    ch->rowpos[r] = i;
    return r;
not_plain:
    *why = TOK_NOT_PLAIN;
    return r;
incomplete:
    *why = TOK_INCOMPLETE;
    return r;
}

/* Two values of a string column that str_column found valid UTF-8, not
 * NA and at most 16 bytes (the last two non-ASCII ones), kept across
 * chunks: a categorical column's few non-ASCII values ("家居") then pass
 * str_run by a compare instead of leaving it for utf8_bad_at. */
typedef struct {
    unsigned char v[2][16];
    uint32_t len[2]; /* UINT32_MAX: empty */
    unsigned next;
} str_seen;

/* Whether the field s of l bytes (at most 16, 16 readable) is one of
 * seen's values. */
static inline int seen_has(const str_seen *seen, const char *s, size_t l)
{
#if defined(__SSE2__) && !defined(MLK_CSV_SCALAR)
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    unsigned want = (1u << l) - 1;
    for (int j = 0; j < 2; j++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)seen->v[j]);
        unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, v));
        if (seen->len[j] == l && (eq & want) == want) return 1;
    }
    return 0;
#else
    for (int j = 0; j < 2; j++)
        if (seen->len[j] == l && memcmp(seen->v[j], s, l) == 0) return 1;
    return 0;
#endif
}

/* Keep the field s (valid UTF-8, not NA, at most 16 bytes, 16 readable)
 * in seen, in place of the older value. */
static void seen_put(str_seen *seen, const char *s, size_t l)
{
    memcpy(seen->v[seen->next], s, 16);
    seen->len[seen->next] = (uint32_t)l;
    seen->next ^= 1;
}

/* The usual string fields of a chunk's column from row r on: valid
 * UTF-8 (ASCII, or one of seen's values), at most 16 bytes with 16
 * readable, room for them in str, no NA token possible. Appends them (off, miss and *at as str_put would) and
 * returns the row of the first other field, or n. A leaf of its own, so
 * that its variables stay in registers: the stores through str, off and
 * miss could alias anything in memory, and a loop that also called out
 * for the other fields kept them on the stack. */
static __attribute__((noinline)) size_t str_run(const char *base, const char *end,
                                                const uint32_t *fb, const uint32_t *fe,
                                                size_t stride, size_t r, size_t n, char *str,
                                                size_t cap, uint64_t *off, uint8_t *miss,
                                                uint64_t *atp, const str_seen *seen)
{
    uint64_t at = *atp;
    /* the rows whose fields surely fit in str (each adds at most 16
     * bytes) and have 16 bytes readable (the starts grow row by row):
     * no test of either in the loop */
    size_t room = cap >= at + 32 ? (size_t)(cap - at - 32) / 16 : 0;
    size_t lim = n - r < room ? n : r + room;
    while (lim > r && end - (base + fb[(lim - 1) * stride]) < 16) lim--;
    for (size_t k = r * stride; r < lim; r++, k += stride) {
        const char *s = base + fb[k];
        size_t l = fe[k] - fb[k];
        /* one branch for the usual field: 1 to 16 bytes, ASCII, no NA
         * token possible */
        unsigned odd = (l - 1 > 15) |
                       ((l - 1 < 8) & (NA_LENGTHS >> (l & 15)) & na_first[(unsigned char)s[0]]);
#if defined(__SSE2__) && !defined(MLK_CSV_SCALAR)
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        unsigned high = (unsigned)_mm_movemask_epi8(x) & ((2u << ((l - 1) & 15)) - 1);
        if (odd | high) {
            if (odd || !seen_has(seen, s, l)) break;
        }
        _mm_storeu_si128((__m128i *)(void *)(str + at), x);
#else
        if (odd || (!ascii_run(s, l, end) && !seen_has(seen, s, l))) break;
        memcpy(str + at, s, 16);
#endif
        at += l;
        off[r + 1] = at;
        miss[r] = 0;
    }
    *atp = at;
    return r;
}

/* The string column col's fields of a chunk (window base, offsets fb,
 * fe at `stride`) into its rows r0..r0 + n: str_run's, and the others
 * one at a time with str_put's steps, stopping at the first that is not
 * valid UTF-8; returns the rows done, or MLOPS_ENOMEM. */
static __attribute__((noinline)) long long str_column(const char *base, const uint32_t *fb,
                                                      const uint32_t *fe, size_t stride, size_t n,
                                                      const char *end, mlk_col *col, size_t r0,
                                                      str_seen *seen)
{
    uint64_t *off = col->off + r0, at = off[0];
    uint8_t *miss = col->missing + r0;
    size_t r = 0;
    for (;;) {
        r = str_run(base, end, fb, fe, stride, r, n, col->str, col->str_cap, off, miss, &at, seen);
        if (r == n) break;
        const char *s = base + fb[r * stride];
        size_t l = fe[r * stride] - fb[r * stride];
        int ascii = ascii_run(s, l, end);
        if (!ascii && utf8_bad_at(s, l) < l) break;
        if (at + l + 16 > col->str_cap) {
            if (str_put(col, r0 + r, s, l, 0, end) != 0) return MLOPS_ENOMEM;
        } else {
            memcpy(col->str + at, s, l);
        }
        /* missing: empty or an NA token (2, 3, 4, 6, 7 or 8 bytes,
         * starting with one of NA_FIRST's bytes) */
        int na = l == 0 || (l <= 8 && NA_FIRST(s[0]) && mlk_csv_is_na(s, l));
        if (!ascii && !na && l <= 16 && end - s >= 16) seen_put(seen, s, l);
        at += na ? 0 : l;
        off[r + 1] = at;
        miss[r] = (uint8_t)na;
        r++;
    }
    return (long long)r;
}

/* Convert the chunk's `rows` records into rows f->nrows.. of f (room
 * reserved): the numeric columns first, then the strings, each loop
 * stopping at the first field the fast path does not take. Returns the
 * rows every column took (those are complete), or MLOPS_ENOMEM. */
static __attribute__((noinline)) long long convert(const csv_index *ix, const csv_chunk *ch,
                                                   size_t rows, mlk_frame *f, const size_t *index,
                                                   const char *end, str_seen *seen)
{
    const size_t r0 = f->nrows;
    size_t n = rows;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t c = 0; c < f->ncols && n; c++) {
            mlk_col *col = &f->cols[c];
            const size_t stride = ch->stride;
            const uint32_t *fb = ch->fb + index[c], *fe = ch->fe + index[c];
            size_t r = 0;
            if (pass == 0 && col->type == MLK_F64) {
                double *out = col->f64 + r0;
#ifdef MLK_CSV_VNUM
                if (cpu_vnum()) {
                    r = numbers_avx512(ix->base, fb, fe, stride, n, end, out);
                    fb += r * stride, fe += r * stride;
                } else
#endif
                {
#ifdef MLK_CSV_AVX2
                    if (cpu_avx2()) {
                        r = numbers_avx2(ix->base, fb, fe, stride, n, end, out);
                        fb += r * stride, fe += r * stride;
                    }
#endif
                }
                for (; r < n; r++) {
                    const char *s = ix->base + fb[0];
                    size_t l = fe[0] - fb[0];
                    fb += stride, fe += stride;
                    double v = NAN;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                    if (l && l <= 8 && end - s >= 8) {
#ifdef MLK_CSV_SHUF
                        if (!shuf_number(s, l, &v)) break;
#else
                        if (!swar_number(s, l, &v)) break;
#endif
                    } else
#endif
                        if (l && !fast_number(s, s + l, &v))
                        break;
                    out[r] = v;
                }
            } else if (pass == 1 && col->type == MLK_STR) {
                long long got = str_column(ix->base, fb, fe, stride, n, end, col, r0, &seen[c]);
                if (got < 0) return got;
                r = (size_t)got;
            } else {
                continue;
            }
            n = r;
        }
    }
    return (long long)n;
}

int mlk_csv_parse(const char *buf, size_t len, const mlk_csv_schema *schema, int64_t first_row_id,
                  long first_line, const char *filename, int skip_bad, mlk_frame **out,
                  size_t *rows_bad, char *err, size_t errlen)
{
    *out = NULL;
    if (rows_bad) *rows_bad = 0;
    if (!schema || schema->nfields == 0) return MLOPS_EINVAL;
    for (size_t i = 0; i < schema->ncols; i++)
        if (schema->index[i] >= schema->nfields) return MLOPS_EINVAL;
    if (!filename) filename = "<csv>";
    /* a record takes at least one byte and a line: the ids and line
     * numbers of len bytes must not overflow (they come in a peer's
     * task arguments) */
    if (first_row_id < 0 || (uint64_t)first_row_id > (uint64_t)INT64_MAX - len ||
        first_line < 0 || (unsigned long)first_line > (unsigned long)LONG_MAX - len - 1)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "%s: first row %lld or line %ld out of range for a shard of %zu bytes "
                            "(damaged task arguments)",
                            filename, (long long)first_row_id, first_line, len);
    /* Guess the row count from the first 64 KiB to size the frame. */
    size_t sample = len < 65536 ? len : 65536;
    size_t sample_nl = count_nl(buf, buf + sample);
    size_t guess = sample_nl ? (size_t)((double)len / (double)sample * (double)sample_nl * 1.05) + 16
                             : 16;
    mlk_frame *f = mlk_frame_new(schema->ncols, schema->names, schema->types, guess);
    size_t nf_max = schema->nfields + 1;
    span *fs = malloc(nf_max * sizeof *fs);
    int *slot = malloc(schema->nfields * sizeof *slot);
    csv_index ix = {0};
    csv_chunk *ch = NULL;
    str_seen *seen = NULL;
    int fast = !schema->general_only;
#ifdef MLK_CSV_AVX512
    const int avx512 = cpu_avx512();
#endif
#ifdef MLK_CSV_AVX2
    const int avx2 = cpu_avx2();
#endif
    if (fast) {
        ix.pos = malloc((WIN + 2 + 16) * sizeof *ix.pos);
        if (ix.pos) *ix.pos++ = UINT32_MAX; /* pos[-1]: see tokenize */
        ch = malloc(sizeof *ch);
        if (ch) {
            ch->stride = (schema->nfields + 3) & ~(size_t)3;
            ch->fb = malloc(ch->stride * CHUNK * sizeof *ch->fb);
            ch->fe = malloc(ch->stride * CHUNK * sizeof *ch->fe);
        }
        if ((seen = calloc(schema->ncols, sizeof *seen)) != NULL)
            for (size_t c = 0; c < schema->ncols; c++) seen[c].len[0] = seen[c].len[1] = UINT32_MAX;
    }
    char *scratch = NULL;
    size_t scratch_cap = 0, bad = 0;
    int rc = 0;
    if (!f || !fs || !slot || (fast && (!ix.pos || !ch || !ch->fb || !ch->fe || !seen))) {
        rc = MLOPS_ENOMEM;
        goto out;
    }
    const char *p = buf, *end = buf + len;
    long line = first_line;
    int64_t rid = first_row_id;
    size_t cur = 0; /* ix.pos[cur]: the first structural byte at or after p */
    int indexed = 0;
    for (size_t k = 0; k < schema->nfields; k++) slot[k] = -1;
    for (size_t c = 0; c < schema->ncols; c++) {
        mlk_col *col = &f->cols[c];
        slot[schema->index[c]] = (int)c;
        /* room for the strings up front (twice an even share of the
         * bytes), so that a column seldom grows while it is filled */
        size_t est = len / schema->nfields * 2 + 64;
        if (col->type == MLK_STR && !col->str && (col->str = malloc(est)) != NULL)
            col->str_cap = est;
    }
    while (p < end) {
        if (fast) {
            if (!indexed || p >= ix.base + ix.len) {
#ifdef MLK_CSV_AVX512
                if (avx512)
                    index_window_avx512(&ix, p, (size_t)(end - p));
                else
#endif
#ifdef MLK_CSV_AVX2
                    if (avx2)
                    index_window_avx2(&ix, p, (size_t)(end - p));
                else
#endif
                    index_window(&ix, p, (size_t)(end - p));
                cur = 0;
                indexed = 1;
            }
            uint32_t at = (uint32_t)(p - ix.base);
            while (cur < ix.np && ix.pos[cur] < at) cur++;
            int why;
            size_t rows = tokenize(&ix, cur, at, schema->nfields, ch, &why);
            size_t n = 0;
            if (rows) {
                size_t r0 = f->nrows;
                if ((rc = mlk_frame_reserve(f, r0 + rows)) != 0) goto out;
                long long got = convert(&ix, ch, rows, f, schema->index, end, seen);
                if (got < 0) {
                    rc = (int)got;
                    goto out;
                }
                n = (size_t)got;
                for (size_t r = 0; r < n; r++) f->row_id[r0 + r] = rid++;
                f->nrows = r0 + n;
                p = ix.base + ch->rowstart[n];
                cur = ch->rowpos[n];
                /* each record took its LF, but one that ends the buffer */
                line += (long)n - (p == end && end[-1] != '\n');
                if (n == rows && why == TOK_FULL) continue;
            }
            if (n == rows && why == TOK_INCOMPLETE && p != ix.base) {
                indexed = 0; /* index again from this record */
                continue;
            }
            if (p >= end) break;
            /* not plain, or longer than the window: the general tokenizer */
        }
        const char *q;
        if ((*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t') &&
            (q = skip_blank(p, end)) != NULL) {
            if (q[-1] == '\n') line++;
            p = q;
            continue;
        }
        size_t nf, nl;
        const char *next;
        long rec_line = line;
        if (next_plain_record(p, end, fs, nf_max, &nf, &next, &nl) &&
            next_record(p, end, fs, nf_max, &nf, &next, &nl)) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s:%ld: unterminated quoted field",
                              filename, rec_line);
            goto out;
        }
        p = next;
        line += (long)nl;
        int64_t this_rid = rid++;
        if (nf != schema->nfields) {
            if (skip_bad) {
                bad++;
                continue;
            }
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s:%ld: expected %zu fields, got %zu",
                              filename, rec_line, schema->nfields, nf);
            goto out;
        }
        size_t r = f->nrows;
        if (r == f->cap && (rc = mlk_frame_reserve(f, r + 1)) != 0) goto out;
        int row_bad = 0;
        for (size_t c = 0; c < schema->ncols && !row_bad; c++) {
            const span *sp = &fs[schema->index[c]];
            const char *s = sp->s;
            size_t n = sp->n;
            if (sp->quoted) {
                if (n > scratch_cap) {
                    size_t nc = scratch_cap ? scratch_cap : 256;
                    while (nc < n) nc *= 2;
                    char *ns = realloc(scratch, nc);
                    if (!ns) {
                        rc = MLOPS_ENOMEM;
                        goto out;
                    }
                    scratch = ns;
                    scratch_cap = nc;
                }
                n = unquote(s, n, scratch);
                s = scratch;
            }
            mlk_col *col = &f->cols[c];
            if (col->type == MLK_F64) {
                /* No NA token parses as a number: test NA only on failure. */
                double v;
                if ((rc = to_double(s, n, &v)) != 0) {
                    if (rc == MLOPS_ENOMEM) goto out;
                    rc = 0;
                    if (mlk_csv_is_na(s, n)) {
                        col->f64[r] = NAN;
                        continue;
                    }
                    if (skip_bad) {
                        row_bad = 1;
                        break;
                    }
                    char shown[MSG_FIELD_MAX + 4];
                    field_for_msg(s, n, shown, sizeof shown);
                    rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                      "%s:%ld: column '%s': '%s' is not a number", filename,
                                      rec_line, col->name, shown);
                    goto out;
                }
                col->f64[r] = v;
            } else if (utf8_bad_at(s, n) < n) {
                if (skip_bad) {
                    row_bad = 1;
                    break;
                }
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                  "%s:%ld: column '%s': invalid UTF-8 at byte %zu of the field",
                                  filename, rec_line, col->name, utf8_bad_at(s, n) + 1);
                goto out;
            } else if ((rc = str_put(col, r, s, n, 0, sp->quoted ? scratch + scratch_cap : end)) !=
                       0) {
                goto out;
            } else if (n == 0 || (n <= 8 && NA_FIRST(s[0]) && mlk_csv_is_na(s, n))) {
                col->off[r + 1] = col->off[r]; /* missing: drop the bytes just put */
                col->missing[r] = 1;
            }
        }
        if (row_bad) {
            bad++;
            continue;
        }
        f->row_id[r] = this_rid;
        f->nrows = r + 1;
    }
out:
    free(fs);
    free(slot);
    free(seen);
    free(ix.pos ? ix.pos - 1 : NULL);
    if (ch) {
        free(ch->fb);
        free(ch->fe);
        free(ch);
    }
    free(scratch);
    if (rc != 0) {
        mlk_frame_destroy(&f);
        return rc;
    }
    if (rows_bad) *rows_bad = bad;
    *out = f;
    return 0;
}
