/* mlk_hash_tool: drives the hasher, split and metrics kernels for the
 * reference tests (tests/ref/test_{hasher,split,metrics}_ref.py) and the
 * benchmark (bench/bench_hash.py). Text in, text out; numbers as %.17g.
 *
 *   murmur [--n-features N] [--no-alternate-sign]
 *       stdin: one token per line, hex-encoded bytes (empty line = "").
 *       stdout: per token "h index sign".
 *   rows [--n-features N] [--no-alternate-sign]
 *       stdin: one row per line, items separated by spaces, each item
 *       HEX (value 1) or HEX:VALUE. stdout: the CSR (see print_csr).
 *   csv FILE --cols a,b [--numeric x,y] [--n-features N]
 *       [--no-alternate-sign] [--roundtrip] [--bench REPS]
 *       FILE: a plain CSV (header, no quoting; empty field = missing).
 *       Hashes the listed columns (string columns, then --numeric ones
 *       in the order given by --cols) of the frame built from it. With
 *       --roundtrip the CSR goes through encode/decode. With --bench,
 *       prints "seconds MEDIAN nnz NNZ cpu MEDIAN" for hashing only
 *       (wall and process CPU time).
 *   split-hash --n N (--test-size T | --test-count C) --seed S --shards K
 *       stdout: "n_test X", then the 0/1 test mask of all rows, computed
 *       shard by shard (K uneven shards).
 *   split-sklearn --n N (--test-size T | --test-count C) --seed S
 *       stdout: "train i i ..." and "test i i ..." lines.
 *   mt --seed S --count C
 *       stdout: the first C 32-bit MT19937 outputs.
 *   metrics --k K [--shards S] [--eps E] [--no-proba] [--no-pred]
 *           (with 2 classes also the ROC and calibration curves:
 *           roc_fpr/roc_tpr/roc_thr/cal_pred/cal_true/cal_count lines)
 *       stdin: "y_true y_pred p_0 .. p_{K-1}" per line. Rows are split
 *       into S shards; each shard's partial is encoded, decoded and
 *       merged in shard order. stdout: "name value" lines. */
#include "err.h"
#include "frame.h"
#include "hasher.h"
#include "metrics.h"
#include "split.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int die(const char *msg)
{
    fprintf(stderr, "mlk_hash_tool: %s\n", msg);
    return 2;
}

/* A kernel's error: its message and the code's description. */
static int kdie(int code, const char *msg)
{
    fprintf(stderr, "mlk_hash_tool: %s (%s)\n", msg, mlops_strerror(code));
    return 2;
}

/* --- options -------------------------------------------------------- */

typedef struct {
    const char *file, *cols, *numeric;
    long long n_features;
    int alternate_sign, roundtrip, bench, no_proba, no_pred;
    long long n, test_count, seed, shards, count, k;
    double test_size, eps;
} opts;

static int parse_opts(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_features = MLK_HASH_DEFAULT_FEATURES;
    o->alternate_sign = 1;
    o->test_count = -1;
    o->test_size = -1;
    o->shards = 1;
    o->k = 2;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(flag, field)                                      \
    if (!strcmp(a, flag)) {                                   \
        if (!v) return -1;                                    \
        char *end;                                            \
        errno = 0;                                            \
        o->field = strtoll(v, &end, 10);                      \
        if (errno || *end) return -1;                         \
        i++;                                                  \
        continue;                                             \
    }
        NUM("--n-features", n_features)
        NUM("--bench", bench)
        NUM("--n", n)
        NUM("--test-count", test_count)
        NUM("--seed", seed)
        NUM("--shards", shards)
        NUM("--count", count)
        NUM("--k", k)
#undef NUM
        if (!strcmp(a, "--test-size") || !strcmp(a, "--eps")) {
            if (!v) return -1;
            char *end;
            double d = strtod(v, &end);
            if (*end) return -1;
            if (a[2] == 't') o->test_size = d;
            else o->eps = d;
            i++;
        } else if (!strcmp(a, "--cols") && v) {
            o->cols = argv[++i];
        } else if (!strcmp(a, "--numeric") && v) {
            o->numeric = argv[++i];
        } else if (!strcmp(a, "--no-alternate-sign")) {
            o->alternate_sign = 0;
        } else if (!strcmp(a, "--roundtrip")) {
            o->roundtrip = 1;
        } else if (!strcmp(a, "--no-proba")) {
            o->no_proba = 1;
        } else if (!strcmp(a, "--no-pred")) {
            o->no_pred = 1;
        } else if (a[0] != '-' && !o->file) {
            o->file = a;
        } else {
            return -1;
        }
    }
    return 0;
}

static int hash_opts(const opts *o, mlk_hash_opts *h)
{
    if (o->n_features < 1 || o->n_features > INT32_MAX) return -1;
    h->n_features = (int32_t)o->n_features;
    h->alternate_sign = o->alternate_sign;
    return 0;
}

/* --- small input helpers ------------------------------------------- */

/* Whole stream into a NUL-terminated buffer. */
static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); return NULL; }
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    b[n] = 0;
    if (len) *len = n;
    return b;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode hex s[0..n) in place into s; returns the byte count or -1. */
static long unhex(char *s, size_t n)
{
    if (n % 2) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexval((unsigned char)s[2 * i]), b = hexval((unsigned char)s[2 * i + 1]);
        if (a < 0 || b < 0) return -1;
        s[i] = (char)(a * 16 + b);
    }
    return (long)(n / 2);
}

static void print_csr(const mlk_csr *m)
{
    size_t nnz = (size_t)m->indptr[m->nrows];
    printf("shape %zu %zu %zu\nindptr", m->nrows, m->ncols, nnz);
    for (size_t r = 0; r <= m->nrows; r++) printf(" %lld", (long long)m->indptr[r]);
    printf("\nindices");
    for (size_t i = 0; i < nnz; i++) printf(" %d", (int)m->indices[i]);
    printf("\ndata");
    for (size_t i = 0; i < nnz; i++) printf(" %.17g", m->data[i]);
    printf("\n");
}

/* Replace m by decode(encode(m)). */
static int roundtrip(mlk_csr **m)
{
    uint8_t *buf;
    size_t len;
    char err[256];
    if (mlk_csr_encode(*m, &buf, &len) != 0) return -1;
    mlk_csr *back = NULL;
    int rc = mlk_csr_decode(buf, len, &back, err, sizeof err);
    free(buf);
    if (rc) return kdie(rc, err), -1;
    mlk_csr_destroy(m);
    *m = back;
    return 0;
}

/* --- murmur / rows --------------------------------------------------- */

static int cmd_murmur(const opts *o)
{
    mlk_hash_opts h;
    if (hash_opts(o, &h)) return die("bad --n-features");
    char *buf = slurp(stdin, NULL);
    if (!buf) return die("out of memory");
    char *save = NULL;
    for (char *line = buf; line; line = save) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (!nl && !*line) break;
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        long len = unhex(line, n);
        if (len < 0) { free(buf); return die("bad hex token"); }
        int32_t v = mlk_murmur3_32(line, (size_t)len, 0);
        printf("%d %d %d\n", (int)v, (int)mlk_hash_index(v, h.n_features),
               (int)mlk_hash_sign(v, h.alternate_sign));
    }
    free(buf);
    return 0;
}

static int cmd_rows(const opts *o)
{
    mlk_hash_opts h;
    if (hash_opts(o, &h)) return die("bad --n-features");
    size_t len;
    char *buf = slurp(stdin, &len);
    if (!buf) return die("out of memory");
    size_t nrows = 0, ntok = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n') nrows++;
        if (buf[i] == ' ' || buf[i] == '\n') ntok++;
    }
    if (len && buf[len - 1] != '\n') { nrows++; ntok++; }
    size_t *row_ptr = calloc(nrows + 1, sizeof *row_ptr);
    mlk_hash_token *tok = malloc((ntok + 1) * sizeof *tok);
    int rc = 0;
    if (!row_ptr || !tok) { rc = die("out of memory"); goto out; }
    size_t r = 0, t = 0;
    char *p = buf, *end = buf + len;
    while (p < end && r < nrows) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        *eol = 0;
        for (char *item = p; item < eol;) {
            char *sp = strchr(item, ' ');
            if (!sp) sp = eol;
            *sp = 0;
            if (*item) {
                char *colon = strchr(item, ':');
                double value = 1.0;
                if (colon) {
                    *colon = 0;
                    char *e;
                    value = strtod(colon + 1, &e);
                    if (*e) { rc = die("bad value"); goto out; }
                }
                long bl = unhex(item, strlen(item));
                if (bl < 0) { rc = die("bad hex token"); goto out; }
                tok[t].bytes = item;
                tok[t].len = (size_t)bl;
                tok[t].value = value;
                t++;
            }
            item = sp + 1;
        }
        row_ptr[++r] = t;
        p = eol + 1;
    }
    mlk_csr *m = NULL;
    char err[256];
    int krc = mlk_hash_tokens(&h, nrows, row_ptr, tok, &m, err, sizeof err);
    if (krc != 0) { rc = kdie(krc, err); goto out; }
    if (roundtrip(&m) != 0) { mlk_csr_destroy(&m); rc = die("roundtrip failed"); goto out; }
    print_csr(m);
    mlk_csr_destroy(&m);
out:
    free(row_ptr);
    free(tok);
    free(buf);
    return rc;
}

/* --- csv -------------------------------------------------------------- */

/* Is name in the comma-separated list? */
static int in_list(const char *list, const char *name, size_t n)
{
    if (!list) return 0;
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && !strncmp(p, name, n)) return 1;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_csv(const opts *o)
{
    mlk_hash_opts h;
    if (hash_opts(o, &h)) return die("bad --n-features");
    if (!o->file || !o->cols) return die("csv needs FILE and --cols");
    FILE *f = fopen(o->file, "rb");
    if (!f) return die("cannot open the CSV file");
    size_t len;
    char *buf = slurp(f, &len);
    fclose(f);
    if (!buf) return die("out of memory");
    int rc = 0;
    mlk_frame *fr = NULL;
    mlk_csr *m = NULL;
    char **names = NULL;
    mlk_coltype *types = NULL;
    size_t *sel = NULL;
    /* header */
    char *eol = strchr(buf, '\n');
    if (!eol) { rc = die("CSV has no header line"); goto out; }
    *eol = 0;
    if (eol > buf && eol[-1] == '\r') eol[-1] = 0;
    size_t ncols = 1;
    for (char *p = buf; *p; p++) ncols += *p == ',';
    names = calloc(ncols, sizeof *names);
    types = calloc(ncols, sizeof *types);
    sel = calloc(ncols, sizeof *sel);
    if (!names || !types || !sel) { rc = die("out of memory"); goto out; }
    {
        char *p = buf;
        for (size_t c = 0; c < ncols; c++) {
            char *comma = strchr(p, ',');
            if (comma) *comma = 0;
            names[c] = p;
            types[c] = in_list(o->numeric, p, strlen(p)) ? MLK_F64 : MLK_STR;
            p = comma ? comma + 1 : p + strlen(p);
        }
    }
    size_t nrows_guess = 0;
    for (char *p = eol + 1; p < buf + len; p++) nrows_guess += *p == '\n';
    fr = mlk_frame_new(ncols, (const char *const *)names, types, nrows_guess + 1);
    if (!fr) { rc = die("out of memory"); goto out; }
    for (char *p = eol + 1; p < buf + len;) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        if (!e) e = buf + len;
        char *lend = e;
        if (lend > p && lend[-1] == '\r') lend--;
        if (lend == p) { p = e + 1; continue; } /* blank line */
        size_t r = fr->nrows;
        if (mlk_frame_reserve(fr, r + 1) != 0) { rc = die("out of memory"); goto out; }
        char *q = p;
        for (size_t c = 0; c < ncols; c++) {
            char *fend = memchr(q, ',', (size_t)(lend - q));
            if (!fend || c == ncols - 1) fend = lend;
            size_t fl = (size_t)(fend - q);
            if (types[c] == MLK_F64) {
                double v = NAN;
                if (fl) {
                    char tmp[64], *te;
                    if (fl >= sizeof tmp) { rc = die("numeric field too long"); goto out; }
                    memcpy(tmp, q, fl);
                    tmp[fl] = 0;
                    v = strtod(tmp, &te);
                    if (*te) { rc = die("bad numeric field"); goto out; }
                }
                fr->cols[c].f64[r] = v;
            } else if (mlk_frame_str_push(fr, c, r, q, fl, fl == 0) != 0) {
                rc = die("out of memory");
                goto out;
            }
            q = fend < lend ? fend + 1 : lend;
        }
        fr->row_id[r] = (int64_t)r;
        fr->nrows = r + 1;
        p = e + 1;
    }
    /* selected columns, in --cols order */
    size_t nsel = 0;
    for (const char *p = o->cols; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        char name[256];
        if (l >= sizeof name) { rc = die("column name too long"); goto out; }
        memcpy(name, p, l);
        name[l] = 0;
        int ci = mlk_frame_col(fr, name);
        if (ci < 0 || nsel >= ncols) { rc = die("unknown or repeated column in --cols"); goto out; }
        sel[nsel++] = (size_t)ci;
        if (!c) break;
        p = c + 1;
    }
    char err[256];
    if (o->bench > 0) {
        double *t = calloc(2 * (size_t)o->bench, sizeof *t), *cpu = t + o->bench;
        if (!t) { rc = die("out of memory"); goto out; }
        size_t nnz = 0;
        for (long long i = 0; i < o->bench; i++) {
            double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
            int krc = mlk_hash_frame(&h, fr, sel, nsel, &m, err, sizeof err);
            if (krc != 0) {
                free(t);
                rc = kdie(krc, err);
                goto out;
            }
            t[i] = now_s(CLOCK_MONOTONIC) - t0;
            cpu[i] = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            nnz = (size_t)m->indptr[m->nrows];
            mlk_csr_destroy(&m);
        }
        qsort(t, (size_t)o->bench, sizeof *t, cmp_double);
        qsort(cpu, (size_t)o->bench, sizeof *cpu, cmp_double);
        printf("seconds %.6f nnz %zu cpu %.6f\n", t[o->bench / 2], nnz, cpu[o->bench / 2]);
        free(t);
        goto out;
    }
    int krc = mlk_hash_frame(&h, fr, sel, nsel, &m, err, sizeof err);
    if (krc != 0) { rc = kdie(krc, err); goto out; }
    if (o->roundtrip && roundtrip(&m) != 0) { rc = die("roundtrip failed"); goto out; }
    print_csr(m);
out:
    mlk_csr_destroy(&m);
    mlk_frame_destroy(&fr);
    free(names);
    free(types);
    free(sel);
    free(buf);
    return rc;
}

/* --- split ------------------------------------------------------------ */

static int sizes(const opts *o, uint64_t *nt, uint64_t *ntr)
{
    char err[256];
    if (o->n < 0) return die("bad --n");
    if (mlk_split_sizes((uint64_t)o->n, o->test_size, o->test_count, nt, ntr, err, sizeof err)) {
        fprintf(stderr, "mlk_hash_tool: %s\n", err);
        return 3;
    }
    return 0;
}

static int cmd_split_hash(const opts *o)
{
    uint64_t nt, ntr;
    int rc = sizes(o, &nt, &ntr);
    if (rc) return rc;
    if (o->shards < 1) return die("bad --shards");
    size_t n = (size_t)o->n, k = (size_t)o->shards;
    uint8_t *mask = malloc(n ? n : 1);
    char *line = malloc(n + 2);
    if (!mask || !line) { free(mask); free(line); return die("out of memory"); }
    /* uneven shards: shard s gets a share weighted by s + 1 */
    size_t first = 0, wsum = k * (k + 1) / 2;
    int64_t total = 0;
    char err[256];
    for (size_t s = 0; s < k; s++) {
        size_t cnt = s + 1 == k ? n - first : n * (s + 1) / wsum;
        int64_t got = mlk_split_hash_mask((uint64_t)o->seed, n, nt, first, cnt, mask + first, err, sizeof err);
        if (got < 0) { free(mask); free(line); return kdie((int)got, err); }
        total += got;
        first += cnt;
    }
    for (size_t i = 0; i < n; i++) line[i] = (char)('0' + mask[i]);
    line[n] = 0;
    printf("n_test %llu\ncounted %lld\nmask %s\n", (unsigned long long)nt, (long long)total, line);
    free(mask);
    free(line);
    return 0;
}

static int cmd_split_sklearn(const opts *o)
{
    uint64_t nt, ntr;
    int rc = sizes(o, &nt, &ntr);
    if (rc) return rc;
    int64_t *train = malloc((ntr + 1) * sizeof *train), *test = malloc((nt + 1) * sizeof *test);
    char err[256];
    if (!train || !test) rc = die("out of memory");
    else if ((rc = mlk_split_sklearn(o->seed, (size_t)o->n, (size_t)nt, train, test, err, sizeof err)))
        rc = kdie(rc, err);
    if (!rc) {
        printf("train");
        for (uint64_t i = 0; i < ntr; i++) printf(" %lld", (long long)train[i]);
        printf("\ntest");
        for (uint64_t i = 0; i < nt; i++) printf(" %lld", (long long)test[i]);
        printf("\n");
    }
    free(train);
    free(test);
    return rc;
}

static int cmd_mt(const opts *o)
{
    if (o->seed < 0 || o->seed > 0xffffffffll) return die("bad --seed");
    mlk_mt19937 mt;
    mlk_mt19937_seed(&mt, (uint32_t)o->seed);
    for (long long i = 0; i < o->count; i++) printf("%u\n", mlk_mt19937_next32(&mt));
    return 0;
}

/* --- metrics ----------------------------------------------------------- */

static int cmd_metrics(const opts *o)
{
    if (o->k < 2 || o->k > MLK_METRICS_MAX_CLASSES) return die("bad --k");
    if (o->shards < 1) return die("bad --shards");
    size_t k = (size_t)o->k;
    size_t len;
    char *buf = slurp(stdin, &len);
    if (!buf) return die("out of memory");
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += buf[i] == '\n';
    int32_t *yt = malloc(cap * sizeof *yt), *yp = malloc(cap * sizeof *yp);
    double *pr = malloc(cap * k * sizeof *pr);
    mlk_metrics *acc = NULL;
    int rc = 0;
    if (!yt || !yp || !pr) { rc = die("out of memory"); goto out; }
    size_t n = 0;
    char *p = buf;
    for (;;) {
        char *e;
        long t = strtol(p, &e, 10);
        if (e == p) break;
        p = e;
        yt[n] = (int32_t)t;
        yp[n] = (int32_t)strtol(p, &e, 10);
        if (e == p) { rc = die("bad metrics line"); goto out; }
        p = e;
        for (size_t c = 0; c < k; c++) {
            pr[n * k + c] = strtod(p, &e);
            if (e == p) { rc = die("bad metrics line"); goto out; }
            p = e;
        }
        n++;
    }
    char err[256];
    acc = mlk_metrics_new((uint32_t)k, o->eps);
    if (!acc) { rc = die("cannot create metrics partial"); goto out; }
    size_t shards = (size_t)o->shards, first = 0;
    for (size_t s = 0; s < shards; s++) {
        size_t cnt = s + 1 == shards ? n - first : n / shards;
        mlk_metrics *part = mlk_metrics_new((uint32_t)k, o->eps), *back = NULL;
        if (!part) { rc = die("out of memory"); goto out; }
        uint8_t *b = NULL;
        size_t bl = 0;
        int r = mlk_metrics_add(part, cnt, yt + first, o->no_pred ? NULL : yp + first,
                                o->no_proba ? NULL : pr + first * k, err, sizeof err);
        if (!r) r = mlk_metrics_encode(part, &b, &bl);
        if (!r) r = mlk_metrics_decode(b, bl, &back, err, sizeof err);
        if (!r) r = mlk_metrics_merge(acc, back, err, sizeof err);
        free(b);
        mlk_metrics_destroy(&part);
        mlk_metrics_destroy(&back);
        if (r) { rc = kdie(r, err); goto out; }
        first += cnt;
    }
    mlk_metrics_result res;
    int krc = mlk_metrics_compute(acc, &res, err, sizeof err);
    if (krc != 0) { rc = kdie(krc, err); goto out; }
    printf("n %llu\naccuracy %.17g\nprecision %.17g\nrecall %.17g\nf1 %.17g\n",
           (unsigned long long)res.n, res.accuracy, res.precision, res.recall, res.f1);
    if (res.has_log_loss) printf("log_loss %.17g\n", res.log_loss);
    if (res.has_auc) printf("roc_auc %.17g\n", res.roc_auc);
    printf("confusion");
    const uint64_t *cm = mlk_metrics_confusion(acc);
    for (size_t i = 0; i < k * k; i++) printf(" %llu", (unsigned long long)cm[i]);
    printf("\n");
    mlk_metrics_curves cv;
    if (mlk_metrics_curves_of(acc, &cv, err, sizeof err) == 0) {
        const struct {
            const char *name;
            const double *v;
            size_t n;
        } rows[] = {{"roc_fpr", cv.fpr, cv.nroc},          {"roc_tpr", cv.tpr, cv.nroc},
                    {"roc_thr", cv.threshold, cv.nroc},    {"cal_pred", cv.prob_pred, cv.ncal},
                    {"cal_true", cv.prob_true, cv.ncal}};
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
            printf("%s", rows[r].name);
            for (size_t i = 0; i < rows[r].n; i++) printf(" %.17g", rows[r].v[i]);
            printf("\n");
        }
        printf("cal_count");
        for (size_t i = 0; i < cv.ncal; i++) printf(" %llu", (unsigned long long)cv.count[i]);
        printf("\n");
    }
out:
    mlk_metrics_destroy(&acc);
    free(yt);
    free(yp);
    free(pr);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    if (argc < 2 || parse_opts(argc, argv, &o) != 0)
        return die("usage: mlk_hash_tool murmur|rows|csv|split-hash|split-sklearn|mt|metrics [options]"
                   " (see the comment at the top of mlk_hash_tool.c)");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "murmur")) return cmd_murmur(&o);
    if (!strcmp(cmd, "rows")) return cmd_rows(&o);
    if (!strcmp(cmd, "csv")) return cmd_csv(&o);
    if (!strcmp(cmd, "split-hash")) return cmd_split_hash(&o);
    if (!strcmp(cmd, "split-sklearn")) return cmd_split_sklearn(&o);
    if (!strcmp(cmd, "mt")) return cmd_mt(&o);
    if (!strcmp(cmd, "metrics")) return cmd_metrics(&o);
    return die("unknown command");
}
