/* quantile.c: see quantile.h for the rounds and the interpolation.
 *
 * Byte formats (little-endian, the host order on supported platforms):
 *   request: "MLKQ" u32 version=2, u32 nquery, then per query
 *            u32 col, u32 kind (1 HIST, 2 GATHER, 3 WINDOW), u32 bits,
 *            u64 prefix (WINDOW: bits = the window's half width W,
 *            prefix = the double q's bits)
 *   answer:  "MLKA" u32 version=2, u32 nquery, then per query its 20
 *            request bytes echoed, then HIST: u32 nnz, nnz x (u32 bin,
 *            u64 count, u64 min key, u64 max key) with bins ascending;
 *            GATHER: u64 m, m x f64 ascending;
 *            WINDOW: u64 below, u64 m, m x f64 ascending
 *   job:     "MLKJ" u32 version=1, u32 ncols, u32 nq, f64 qs[nq], per
 *            column u64 n, u32 known, then 2*nq targets of u64 prefix,
 *            rank, count, u32 bits, state, f64 value.
 * Version 2 added the per-bin min/max keys; a peer of version 1 is
 * refused with MLOPS_EPARSE rather than misread.
 * The job's queries are a pure function of its targets, so a decoded
 * job asks exactly what the encoded one would have asked. */
#include "quantile.h"
#include "err.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGN_BIT (UINT64_C(1) << 63)
#define QUERY_BYTES 20
#define QFMT_VERSION 2 /* request and answer format */

uint64_t mlk_qkey(double x)
{
    uint64_t u;
    if (x == 0.0) x = 0.0; /* -0.0 -> +0.0 */
    memcpy(&u, &x, sizeof u);
    return (u & SIGN_BIT) ? ~u : (u | SIGN_BIT);
}

double mlk_qkey_value(uint64_t k)
{
    uint64_t u = (k & SIGN_BIT) ? (k & ~SIGN_BIT) : ~k;
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline int has_prefix(uint64_t key, uint64_t prefix, unsigned bits)
{
    return bits == 0 || (key >> (64 - bits)) == prefix;
}

enum { Q_HIST = 1, Q_GATHER = 2, Q_WINDOW = 3 };

/* One query of a round: on a worker, what it counts or collects over its
 * shard; on the coordinator, the merged counts or values of all shards. */
typedef struct {
    uint32_t col, kind, bits;
    uint64_t prefix;
    uint64_t *counts; /* HIST: MLK_QHIST_LEN (counts | min key | max key) */
    /* HIST on a worker, once its scan is done: the non-empty bins in
     * order and their total, so that the windows and the answer walk
     * those, not the 1.5 MB of dense counts again (nz_list) */
    uint32_t *nz, nnz;
    uint64_t total;
    /* round 0's dense HIST on a worker: one bit per bin touched by the
     * scan, which fills a bin's triple when it first meets it, so the
     * 1.5 MB of counts are neither cleared before nor walked after */
    uint64_t *touched;
    double *vals;     /* GATHER: values; WINDOW: every shard's window, in shard order */
    size_t nvals, cap;
    /* WINDOW on the coordinator: per shard answer, the count below its
     * window and where its values start in vals */
    uint64_t *below;
    size_t *wstart, *wcount;
    size_t nshard, shard_cap;
} query;

static int push_val(query *q, double x)
{
    if (q->nvals == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 1024;
        double *nv = realloc(q->vals, nc * sizeof *nv);
        if (!nv) return MLOPS_ENOMEM;
        q->vals = nv;
        q->cap = nc;
    }
    q->vals[q->nvals++] = x;
    return 0;
}

/* The one scan of a shard column: every query of that column served in
 * a single pass (each key computed once). Rows with keep[r] == 0 and NaN
 * values are skipped. */
static int scan_column(const double *v, size_t n, const uint8_t *keep, query *qs, size_t nq)
{
    if (nq == 1 && qs[0].touched) {
        uint64_t *h = qs[0].counts, *t = qs[0].touched, total = 0; /* round 0: the hot case */
        for (size_t i = 0; i < n; i++) {
            if ((keep && !keep[i]) || isnan(v[i])) continue;
            uint64_t k = mlk_qkey(v[i]);
            uint32_t b = (uint32_t)(k >> (64 - MLK_QBITS));
            uint64_t *e = h + 3 * b, bit = UINT64_C(1) << (b & 63);
            total++;
            if (!(t[b >> 6] & bit)) {
                t[b >> 6] |= bit;
                e[0] = 1;
                e[1] = e[2] = k;
                continue;
            }
            e[0]++;
            /* Branches, not selects: a store only when the extreme moves,
             * so values of one bin do not chain through memory. */
            if (k < e[1]) e[1] = k;
            if (k > e[2]) e[2] = k;
        }
        qs[0].total = total;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if ((keep && !keep[i]) || isnan(v[i])) continue;
        uint64_t k = mlk_qkey(v[i]);
        for (size_t j = 0; j < nq; j++) {
            query *q = &qs[j];
            if (!has_prefix(k, q->prefix, q->bits)) continue;
            if (q->counts) {
                uint32_t b = (uint32_t)(k >> (64 - q->bits - MLK_QBITS)) & (MLK_QBINS - 1);
                uint64_t *e = q->counts + 3 * b;
                e[0]++;
                if (k < e[1]) e[1] = k;
                if (k > e[2]) e[2] = k;
            } else if (push_val(q, mlk_qkey_value(k)) != 0)
                return MLOPS_ENOMEM;
        }
    }
    return 0;
}

void mlk_qhist_init(uint64_t *hist)
{
    for (size_t b = 0; b < MLK_QBINS; b++) {
        hist[3 * b] = 0;
        hist[3 * b + 1] = UINT64_MAX;
        hist[3 * b + 2] = 0;
    }
}

/* A new initialised histogram, or NULL. */
static uint64_t *hist_new(void)
{
    uint64_t *h = malloc(MLK_QHIST_LEN * sizeof *h);
    if (h) mlk_qhist_init(h);
    return h;
}

void mlk_qhist_add(const double *v, size_t n, uint64_t prefix, unsigned bits, uint64_t *hist)
{
    query q = {.kind = Q_HIST, .bits = bits, .prefix = prefix, .counts = hist};
    scan_column(v, n, NULL, &q, 1);
}

/* Sort doubles (no NaN) ascending by key, canonical zeros: LSD radix
 * sort on 8-bit digits, skipping digits all keys share; nothing to do
 * when already sorted (one shard's gathered values). */
static int sort_values(double *v, size_t n)
{
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        v[i] = mlk_qkey_value(mlk_qkey(v[i]));
        if (i && mlk_qkey(v[i - 1]) > mlk_qkey(v[i])) sorted = 0;
    }
    if (sorted) return 0;
    uint64_t *k = malloc(2 * n * sizeof *k);
    if (!k) return MLOPS_ENOMEM;
    uint64_t *a = k, *b = k + n;
    for (size_t i = 0; i < n; i++) a[i] = mlk_qkey(v[i]);
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t cnt[257] = {0};
        for (size_t i = 0; i < n; i++) cnt[((a[i] >> shift) & 0xFF) + 1]++;
        if (cnt[((a[0] >> shift) & 0xFF) + 1] == n) continue;
        for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
        for (size_t i = 0; i < n; i++) b[cnt[(a[i] >> shift) & 0xFF]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++) v[i] = mlk_qkey_value(a[i]);
    free(k);
    return 0;
}

int mlk_qgather(const double *v, size_t n, uint64_t prefix, unsigned bits, double **out,
                size_t *nout)
{
    *out = NULL;
    *nout = 0;
    query q = {.kind = Q_GATHER, .bits = bits, .prefix = prefix};
    int rc = scan_column(v, n, NULL, &q, 1);
    if (rc == 0) rc = sort_values(q.vals, q.nvals);
    if (rc != 0) {
        free(q.vals);
        return rc;
    }
    *out = q.vals;
    *nout = q.nvals;
    return 0;
}

int mlk_qselect(mlk_qtarget *t, const uint64_t *hist)
{
#define H_CNT(b) hist[3 * (b)]
#define H_MIN(b) hist[3 * (b) + 1]
#define H_MAX(b) hist[3 * (b) + 2]
    if (t->state != MLK_QT_HIST || t->bits > 48) return MLOPS_EINVAL;
    uint64_t cum = 0;
    for (uint32_t b = 0; b < MLK_QBINS; b++) {
        if (t->rank < cum + H_CNT(b)) {
            t->prefix = (t->bits ? t->prefix << MLK_QBITS : 0) | b;
            t->bits += MLK_QBITS;
            t->rank -= cum;
            t->count = H_CNT(b);
            if (t->bits == 64 || H_MIN(b) == H_MAX(b)) {
                /* One distinct value in the bin: its key is known. */
                t->state = MLK_QT_DONE;
                t->value = mlk_qkey_value(H_MIN(b));
            } else if (t->count <= MLK_QGATHER_MAX) {
                t->state = MLK_QT_GATHER;
            }
            return 0;
        }
        cum += H_CNT(b);
    }
    return MLOPS_EINVAL;
}

#undef H_CNT
#undef H_MIN
#undef H_MAX

int mlk_qresolve(mlk_qtarget *t, const double *sorted, size_t n)
{
    if (t->state != MLK_QT_GATHER || t->rank >= n) return MLOPS_EINVAL;
    t->value = sorted[t->rank];
    t->state = MLK_QT_DONE;
    return 0;
}

void mlk_qvirtual(uint64_t n, double q, uint64_t *lo, uint64_t *hi, double *gamma)
{
    double v = (double)(n - 1) * q;
    if (v >= (double)(n - 1)) {
        *lo = *hi = n - 1;
        *gamma = v - (-1.0); /* numpy's previous index is -1 here */
        return;
    }
    double fl = floor(v);
    *lo = (uint64_t)fl;
    *hi = *lo + 1;
    *gamma = v - fl;
}

double mlk_qlerp(double a, double b, double t)
{
    double diff = b - a;
    if (t >= 0.5) return b - diff * (1.0 - t);
    return a + diff * t;
}

double mlk_q_pandas(double q)
{
    double p = q * 100.0;
    return p / 100.0;
}

/* --- the job --------------------------------------------------------- */


struct mlk_qjob {
    size_t ncols, nq;
    double *qs;
    uint64_t *n;     /* per column */
    uint32_t *known; /* per column: n known */
    mlk_qtarget *t;  /* ncols * 2 * nq */
    query *qry;
    size_t nqry;
    uint32_t window; /* round 0's WINDOW half width, 0: none (mlk_qjob_set_window) */
};

static void queries_free(mlk_qjob *j)
{
    for (size_t i = 0; i < j->nqry; i++) {
        free(j->qry[i].counts);
        free(j->qry[i].vals);
        free(j->qry[i].below);
        free(j->qry[i].wstart);
        free(j->qry[i].wcount);
    }
    free(j->qry);
    j->qry = NULL;
    j->nqry = 0;
}

static query *find_query(mlk_qjob *j, uint32_t col, uint32_t kind, uint32_t bits, uint64_t prefix)
{
    for (size_t i = 0; i < j->nqry; i++) {
        query *q = &j->qry[i];
        if (q->col == col && q->kind == kind && q->bits == bits && q->prefix == prefix) return q;
    }
    return NULL;
}

/* A HIST query's merged counts, made on first use: a job decoded or
 * made only to write its request (once per task on the coordinator)
 * then never allocates and fills the 1.5 MB of a histogram. */
static int lazy_hist(query *q)
{
    if (!q->counts && !(q->counts = hist_new())) return MLOPS_ENOMEM;
    return 0;
}

/* Derive the queries of the next round from the targets. */
static int build_queries(mlk_qjob *j)
{
    queries_free(j);
    size_t max = j->ncols * (3 * j->nq + 1);
    j->qry = calloc(max, sizeof *j->qry);
    if (!j->qry) return MLOPS_ENOMEM;
    for (size_t c = 0; c < j->ncols; c++) {
        if (!j->known[c]) {
            query *q = &j->qry[j->nqry++];
            q->col = (uint32_t)c;
            q->kind = Q_HIST; /* counts made by the first answer merged (lazy_hist) */
            for (size_t k = 0; j->window && k < j->nq; k++) {
                query *w = &j->qry[j->nqry++];
                w->col = (uint32_t)c;
                w->kind = Q_WINDOW;
                w->bits = j->window;
                memcpy(&w->prefix, &j->qs[k], 8);
            }
            continue;
        }
        for (size_t k = 0; k < 2 * j->nq; k++) {
            const mlk_qtarget *t = &j->t[c * 2 * j->nq + k];
            if (t->state == MLK_QT_DONE) continue;
            uint32_t kind = t->state == MLK_QT_HIST ? Q_HIST : Q_GATHER;
            if (find_query(j, (uint32_t)c, kind, t->bits, t->prefix)) continue;
            query *q = &j->qry[j->nqry++];
            q->col = (uint32_t)c;
            q->kind = kind;
            q->bits = t->bits;
            q->prefix = t->prefix;
        }
    }
    return 0;
}

static mlk_qjob *job_alloc(size_t ncols, size_t nq)
{
    mlk_qjob *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->ncols = ncols;
    j->nq = nq;
    j->qs = calloc(nq, sizeof *j->qs);
    j->n = calloc(ncols, sizeof *j->n);
    j->known = calloc(ncols, sizeof *j->known);
    j->t = calloc(ncols * 2 * nq, sizeof *j->t);
    if (!j->qs || !j->n || !j->known || !j->t) mlk_qjob_destroy(&j);
    return j;
}

mlk_qjob *mlk_qjob_new(size_t ncols, const double *qs, size_t nq)
{
    if (ncols == 0 || nq == 0 || ncols > 1u << 20 || nq > 1024) return NULL;
    for (size_t i = 0; i < nq; i++)
        if (!(qs[i] >= 0.0 && qs[i] <= 1.0)) return NULL;
    mlk_qjob *j = job_alloc(ncols, nq);
    if (!j) return NULL;
    memcpy(j->qs, qs, nq * sizeof *qs);
    if (build_queries(j) != 0) mlk_qjob_destroy(&j);
    return j;
}

void mlk_qjob_destroy(mlk_qjob **pj)
{
    if (!pj || !*pj) return;
    mlk_qjob *j = *pj;
    queries_free(j);
    free(j->qs);
    free(j->n);
    free(j->known);
    free(j->t);
    free(j);
    *pj = NULL;
}

int mlk_qjob_done(const mlk_qjob *j)
{
    return j->nqry == 0;
}

int mlk_qjob_set_window(mlk_qjob *j, uint32_t w)
{
    if (w > MLK_QWINDOW_MAX) return MLOPS_EINVAL;
    for (size_t c = 0; c < j->ncols; c++)
        if (j->known[c]) return MLOPS_EINVAL; /* round 0 only */
    j->window = w;
    return build_queries(j);
}

/* Growable little-endian byte writer. */
typedef struct {
    uint8_t *b;
    size_t len, cap;
    int oom;
} wbuf;

static void wput(wbuf *w, const void *p, size_t n)
{
    if (w->oom || n == 0) return;
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap : 256;
        while (nc < w->len + n) nc *= 2;
        uint8_t *b = realloc(w->b, nc);
        if (!b) {
            w->oom = 1;
            return;
        }
        w->b = b;
        w->cap = nc;
    }
    memcpy(w->b + w->len, p, n);
    w->len += n;
}
static void wu32(wbuf *w, uint32_t v) { wput(w, &v, 4); }
static void wu64(wbuf *w, uint64_t v) { wput(w, &v, 8); }
static void wf64(wbuf *w, double v) { wput(w, &v, 8); }

static int wdone(wbuf *w, uint8_t **out, size_t *len)
{
    if (w->oom) {
        free(w->b);
        return MLOPS_ENOMEM;
    }
    *out = w->b;
    *len = w->len;
    return 0;
}

/* Bounds-checked reader. */
typedef struct {
    const uint8_t *p, *end;
    int bad;
} rbuf;

static int rget(rbuf *r, void *out, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        memset(out, 0, n);
        return 0;
    }
    memcpy(out, r->p, n);
    r->p += n;
    return 1;
}
static uint32_t ru32(rbuf *r)
{
    uint32_t v;
    rget(r, &v, 4);
    return v;
}
static uint64_t ru64(rbuf *r)
{
    uint64_t v;
    rget(r, &v, 8);
    return v;
}
static double rf64(rbuf *r)
{
    double v;
    rget(r, &v, 8);
    return v;
}

static void put_query(wbuf *w, uint32_t col, uint32_t kind, uint32_t bits, uint64_t prefix)
{
    wu32(w, col);
    wu32(w, kind);
    wu32(w, bits);
    wu64(w, prefix);
}

int mlk_qjob_request(const mlk_qjob *j, uint8_t **req, size_t *reqlen)
{
    *req = NULL;
    *reqlen = 0;
    if (mlk_qjob_done(j)) return MLOPS_EINVAL;
    wbuf w = {0};
    wput(&w, "MLKQ", 4);
    wu32(&w, QFMT_VERSION);
    wu32(&w, (uint32_t)j->nqry);
    for (size_t i = 0; i < j->nqry; i++)
        put_query(&w, j->qry[i].col, j->qry[i].kind, j->qry[i].bits, j->qry[i].prefix);
    return wdone(&w, req, reqlen);
}

static int check_header(rbuf *r, const char *magic, uint32_t *count, uint32_t want)
{
    char m[4];
    rget(r, m, 4);
    uint32_t ver = ru32(r);
    *count = ru32(r);
    return !r->bad && !memcmp(m, magic, 4) && ver == want;
}

/* Rows below which a worker answers HIST queries from its sorted keys. */
#define SPARSE_ROWS 16384

/* Write the histogram of a HIST query answered from sorted values. */
static void put_sparse_hist(wbuf *w, const query *q)
{
    unsigned sh = 64 - q->bits - MLK_QBITS;
    uint32_t nnz = 0;
    for (size_t i = 0; i < q->nvals; i++)
        if (i == 0 || (mlk_qkey(q->vals[i]) >> sh) != (mlk_qkey(q->vals[i - 1]) >> sh)) nnz++;
    wu32(w, nnz);
    for (size_t i = 0; i < q->nvals;) {
        uint64_t lo = mlk_qkey(q->vals[i]), hi = lo;
        size_t e = i + 1;
        while (e < q->nvals && (mlk_qkey(q->vals[e]) >> sh) == (lo >> sh)) hi = mlk_qkey(q->vals[e++]);
        wu32(w, (uint32_t)((lo >> sh) & (MLK_QBINS - 1)));
        wu64(w, e - i);
        wu64(w, lo);
        wu64(w, hi);
        i = e;
    }
}

/* q->nz, q->nnz and q->total from a scanned dense histogram: one walk
 * over its counts, where the windows and the answer took one each. */
static int nz_list(query *q)
{
    uint32_t nnz = 0, cap = 1024;
    uint64_t total = 0;
    if (!(q->nz = malloc(cap * sizeof *q->nz))) return MLOPS_ENOMEM;
    if (q->touched) { /* the scan counted the total */
        for (uint32_t wi = 0; wi < MLK_QBINS / 64; wi++)
            for (uint64_t m = q->touched[wi]; m; m &= m - 1) {
                if (nnz == cap) {
                    uint32_t *n = realloc(q->nz, 2 * cap * sizeof *n);
                    if (!n) return MLOPS_ENOMEM;
                    q->nz = n;
                    cap *= 2;
                }
                q->nz[nnz++] = wi * 64 + (uint32_t)__builtin_ctzll(m);
            }
        q->nnz = nnz;
        return 0;
    }
    for (uint32_t b = 0; b < MLK_QBINS; b++) {
        uint64_t c = q->counts[3 * b];
        if (!c) continue;
        if (nnz == cap) {
            uint32_t *n = realloc(q->nz, 2 * cap * sizeof *n);
            if (!n) return MLOPS_ENOMEM;
            q->nz = n;
            cap *= 2;
        }
        q->nz[nnz++] = b;
        total += c;
    }
    q->nnz = nnz;
    q->total = total;
    return 0;
}

static int valid_query(uint32_t kind, uint32_t bits, uint64_t prefix)
{
    if (kind == Q_WINDOW) {
        double q;
        memcpy(&q, &prefix, 8);
        return bits >= 1 && bits <= MLK_QWINDOW_MAX && q >= 0.0 && q <= 1.0;
    }
    if (kind != Q_HIST && kind != Q_GATHER) return 0;
    if (bits > 48 || bits % MLK_QBITS) return 0;
    return bits == 0 ? prefix == 0 : (prefix >> bits) == 0;
}

/* A shard's WINDOW answer to quantile q (in q->prefix) of a column: its
 * values of local ranks lo - W .. hi + W around its own q-quantile's
 * ranks lo, hi (W = q->bits, or more for a large shard), widened at both ends to every value equal
 * to the end ones, so that the window holds ALL the shard's values with
 * keys between its first and last; into q->vals (sorted), and the count
 * of the shard's values below it into q->nshard. h is the column's
 * round-0 HIST query, already answered: its dense counts give the bins
 * to collect; a small shard's sorted keys are the values themselves.
 * A column's windows (its quartiles) share one pass over its values
 * (answer_windows): each is planned, the values of all their bins are
 * gathered at once, then each is sorted and cut. */
typedef struct {
    query *q;
    uint64_t from, to, base, w;
    uint32_t b0, b1;
    int gather; /* 1: collect the values of bins b0..b1 into g */
    query g;
} wplan;

/* The window of sorted[0..m), the shard's values of ranks base.. */
static int window_cut(wplan *p, const double *sorted, uint64_t m)
{
    query *q = p->q;
    /* ranks from..to of the column are indexes from-base..to-base here */
    size_t s = (size_t)(p->from - p->base), e = (size_t)(p->to - p->base);
    if (e >= m || s > e) return 0; /* the shard changed under the counts: send none */
    while (s > 0 && mlk_qkey(sorted[s - 1]) == mlk_qkey(sorted[s])) s--;
    while (e + 1 < m && mlk_qkey(sorted[e + 1]) == mlk_qkey(sorted[e])) e++;
    if (e - s + 1 > (size_t)16 * (p->w + 1)) return 0; /* ties made it large: not worth its bytes */
    q->vals = malloc((e - s + 1) * sizeof *q->vals);
    if (!q->vals) return MLOPS_ENOMEM;
    memcpy(q->vals, sorted + s, (e - s + 1) * sizeof *q->vals);
    q->nvals = q->cap = e - s + 1;
    q->nshard = p->base + s;
    return 0;
}

/* The ranks and bins of p->q's window; sets p->gather when its values
 * are to be collected (otherwise it is answered here, maybe empty). */
static int window_plan(wplan *p, query *h)
{
    query *q = p->q;
    q->nvals = 0;
    q->nshard = 0;
    p->gather = 0;
    if (!h) return 0;
    double qv;
    memcpy(&qv, &q->prefix, 8);
    uint64_t cnt = h->counts ? h->total : h->nvals;
    if (cnt == 0) return 0;
    uint64_t lo, hi, w = q->bits;
    /* a larger shard's own quantile strays further from the global one:
     * at least 5 standard deviations of its rank (sqrt(n q (1-q)) <= sqrt(n)/2) */
    uint64_t wmin = (uint64_t)(2.5 * sqrt((double)cnt));
    if (w < wmin) w = wmin;
    double g;
    mlk_qvirtual(cnt, qv, &lo, &hi, &g);
    p->w = w;
    p->from = lo > w ? lo - w : 0;
    p->to = hi + w < cnt ? hi + w : cnt - 1;
    p->base = 0;
    if (!h->counts) {
        if (sort_values(h->vals, h->nvals) != 0) return MLOPS_ENOMEM; /* as its answer will be */
        return window_cut(p, h->vals, cnt);
    }
    /* the bins holding ranks from..to, then the values in them */
    uint64_t cum = 0;
    uint32_t i0 = 0, i1 = 0;
    for (uint32_t i = 0; i < h->nnz; i++) {
        uint64_t c = h->counts[3 * h->nz[i]];
        if (cum <= p->from && p->from < cum + c) {
            i0 = i;
            p->base = cum;
        }
        if (cum <= p->to && p->to < cum + c) {
            i1 = i;
            break;
        }
        cum += c;
    }
    p->b0 = h->nz[i0];
    p->b1 = h->nz[i1];
    /* a window that would take most of a large shard is not worth
     * sending: the rounds find the value */
    uint64_t span = 0;
    int one_each = 1; /* every bin one distinct value: the counts decide alone */
    for (uint32_t i = i0; i <= i1; i++) {
        const uint64_t *e = h->counts + 3 * h->nz[i];
        span += e[0];
        one_each &= e[1] == e[2];
    }
    p->gather = !(one_each || span > (uint64_t)64 * (2 * w + 2));
    return 0;
}

static int answer_windows(wplan *ps, size_t nw, query *h, const double *v, size_t n,
                          const uint8_t *keep)
{
    int rc = 0, any = 0;
    for (size_t k = 0; k < nw; k++) {
        ps[k].g = (query){.col = ps[k].q->col, .kind = Q_GATHER};
        if ((rc = window_plan(&ps[k], h)) != 0) return rc;
        any |= ps[k].gather;
    }
    for (size_t i = 0; any && i < n && rc == 0; i++) {
        if ((keep && !keep[i]) || isnan(v[i])) continue;
        uint32_t b = (uint32_t)(mlk_qkey(v[i]) >> (64 - MLK_QBITS));
        for (size_t k = 0; k < nw && rc == 0; k++)
            if (ps[k].gather && b >= ps[k].b0 && b <= ps[k].b1) rc = push_val(&ps[k].g, v[i]);
    }
    for (size_t k = 0; k < nw; k++) {
        if (rc == 0 && ps[k].gather && (rc = sort_values(ps[k].g.vals, ps[k].g.nvals)) == 0)
            rc = window_cut(&ps[k], ps[k].g.vals, ps[k].g.nvals);
        free(ps[k].g.vals);
    }
    return rc;
}

int mlk_qjob_answer(const uint8_t *req, size_t reqlen, const double *const *cols, size_t ncols,
                    size_t nrows, uint8_t **ans, size_t *anslen, char *err, size_t errlen)
{
    return mlk_qjob_answer_masked(req, reqlen, cols, ncols, nrows, NULL, ans, anslen, err,
                                  errlen);
}

int mlk_qjob_answer_masked(const uint8_t *req, size_t reqlen, const double *const *cols,
                           size_t ncols, size_t nrows, const uint8_t *keep, uint8_t **ans,
                           size_t *anslen, char *err, size_t errlen)
{
    *ans = NULL;
    *anslen = 0;
    rbuf r = {req, req ? req + reqlen : req, 0};
    uint32_t nqry;
    if (!req || !check_header(&r, "MLKQ", &nqry, QFMT_VERSION) ||
        (size_t)(r.end - r.p) != (size_t)nqry * QUERY_BYTES)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "quantile request: malformed header");
    query *qs = calloc(nqry ? nqry : 1, sizeof *qs);
    if (!qs) return MLOPS_ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < nqry; i++) {
        query *q = &qs[i];
        q->col = ru32(&r);
        q->kind = ru32(&r);
        q->bits = ru32(&r);
        q->prefix = ru64(&r);
        if (!valid_query(q->kind, q->bits, q->prefix) || q->col >= ncols) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                       "quantile request: query %u is invalid (column %u of %zu)", i, q->col,
                       ncols);
            goto out;
        }
    }
    /* Queries come grouped by column (mlk_qjob_request's order); scan each
     * run of the same column once. */
    for (uint32_t i = 0; i < nqry;) {
        if (qs[i].kind == Q_WINDOW) { /* answered below, from the counts */
            i++;
            continue;
        }
        uint32_t e = i + 1;
        while (e < nqry && qs[e].col == qs[i].col && qs[e].kind != Q_WINDOW) e++;
        /* A small shard collects its keys instead of filling a dense
         * histogram (MLK_QHIST_LEN words to clear, send and free). */
        for (uint32_t k = i; k < e && nrows >= SPARSE_ROWS; k++) {
            if (qs[k].kind != Q_HIST) continue;
            if (e - i == 1 && qs[k].bits == 0) { /* the hot case: no clearing */
                qs[k].counts = malloc(MLK_QHIST_LEN * sizeof *qs[k].counts);
                qs[k].touched = calloc(MLK_QBINS / 64, sizeof *qs[k].touched);
            } else {
                qs[k].counts = hist_new();
            }
            if (!qs[k].counts || (e - i == 1 && qs[k].bits == 0 && !qs[k].touched)) {
                rc = MLOPS_ENOMEM;
                goto out;
            }
        }
        if ((rc = scan_column(cols[qs[i].col], nrows, keep, qs + i, e - i)) != 0) goto out;
        i = e;
    }
    for (uint32_t i = 0; i < nqry; i++)
        if (qs[i].counts && (rc = nz_list(&qs[i])) != 0) goto out;
    /* each run of one column's windows, answered together */
    for (uint32_t i = 0; i < nqry;) {
        if (qs[i].kind != Q_WINDOW) {
            i++;
            continue;
        }
        uint32_t e = i + 1;
        while (e < nqry && qs[e].col == qs[i].col && qs[e].kind == Q_WINDOW) e++;
        query *h = NULL;
        for (uint32_t k = 0; k < nqry && !h; k++)
            if (qs[k].kind == Q_HIST && qs[k].col == qs[i].col && qs[k].bits == 0) h = &qs[k];
        wplan *ps = calloc(e - i, sizeof *ps);
        if (!ps) {
            rc = MLOPS_ENOMEM;
            goto out;
        }
        for (uint32_t k = i; k < e; k++) ps[k - i].q = &qs[k];
        rc = answer_windows(ps, e - i, h, cols[qs[i].col], nrows, keep);
        free(ps);
        if (rc != 0) goto out;
        i = e;
    }
    wbuf w = {0};
    wput(&w, "MLKA", 4);
    wu32(&w, QFMT_VERSION);
    wu32(&w, nqry);
    for (uint32_t i = 0; i < nqry; i++) {
        query *q = &qs[i];
        put_query(&w, q->col, q->kind, q->bits, q->prefix);
        if (q->kind == Q_HIST && !q->counts) {
            if ((rc = sort_values(q->vals, q->nvals)) != 0) break;
            put_sparse_hist(&w, q);
        } else if (q->kind == Q_HIST) {
            wu32(&w, q->nnz);
            for (uint32_t k = 0; k < q->nnz; k++) {
                wu32(&w, q->nz[k]);
                wput(&w, q->counts + 3 * q->nz[k], 24); /* count, min, max */
            }
        } else if (q->kind == Q_WINDOW) {
            wu64(&w, q->nshard); /* the count below the window (answer_window) */
            wu64(&w, q->nvals);
            wput(&w, q->vals, q->nvals * sizeof *q->vals);
        } else {
            if ((rc = sort_values(q->vals, q->nvals)) != 0) break;
            wu64(&w, q->nvals);
            wput(&w, q->vals, q->nvals * sizeof *q->vals);
        }
    }
    if (rc == 0) rc = wdone(&w, ans, anslen);
    else free(w.b);
out:
    for (uint32_t i = 0; i < nqry; i++) {
        free(qs[i].counts);
        free(qs[i].nz);
        free(qs[i].touched);
        free(qs[i].vals);
    }
    free(qs);
    return rc;
}

/* Room in q->vals for m more values (capacity doubles from 1024). */
static int vals_reserve(query *q, size_t m)
{
    if (q->nvals + m <= q->cap) return 0;
    size_t nc = q->cap ? q->cap : 1024;
    while (nc < q->nvals + m) nc *= 2;
    double *nv = realloc(q->vals, nc * sizeof *nv);
    if (!nv) return MLOPS_ENOMEM;
    q->vals = nv;
    q->cap = nc;
    return 0;
}

/* Keep one shard's window (m values at p) and the count below it. */
static int add_window(query *q, uint64_t below, const uint8_t *p, size_t m)
{
    if (q->nshard == q->shard_cap) {
        size_t nc = q->shard_cap ? q->shard_cap * 2 : 16;
        uint64_t *b = realloc(q->below, nc * sizeof *b);
        if (b) q->below = b;
        size_t *ws = realloc(q->wstart, nc * sizeof *ws);
        if (ws) q->wstart = ws;
        size_t *wc = realloc(q->wcount, nc * sizeof *wc);
        if (wc) q->wcount = wc;
        if (!b || !ws || !wc) return MLOPS_ENOMEM;
        q->shard_cap = nc;
    }
    if (vals_reserve(q, m) != 0) return MLOPS_ENOMEM;
    q->below[q->nshard] = below;
    q->wstart[q->nshard] = q->nvals;
    q->wcount[q->nshard++] = m;
    if (m) memcpy(q->vals + q->nvals, p, m * 8);
    q->nvals += m;
    return 0;
}

/* Resolve global rank R of a column from the shards' windows for its
 * quantile qv, if they prove it: every shard holds all its values with
 * keys in [L, H] (L the largest first key, H the smallest last key), so
 * the values below L are counted exactly and those in [L, H] are all
 * here. 1 and *out when R falls among the latter, 0 when not (the
 * rounds go on), or MLOPS_ENOMEM. */
static int window_resolve(mlk_qjob *j, uint32_t col, double qv, uint64_t R, double *out)
{
    query *q = NULL;
    for (size_t i = 0; i < j->nqry && !q; i++) {
        double x;
        memcpy(&x, &j->qry[i].prefix, 8);
        if (j->qry[i].col == col && j->qry[i].kind == Q_WINDOW && x == qv) q = &j->qry[i];
    }
    if (!q || q->nshard == 0) return 0;
    uint64_t L = 0, H = UINT64_MAX, below = 0;
    for (size_t s = 0; s < q->nshard; s++) {
        if (!q->wcount[s]) return 0;
        uint64_t a = mlk_qkey(q->vals[q->wstart[s]]);
        uint64_t b = mlk_qkey(q->vals[q->wstart[s] + q->wcount[s] - 1]);
        L = a > L ? a : L;
        H = b < H ? b : H;
    }
    if (L > H) return 0;
    size_t nin = 0;
    for (size_t s = 0; s < q->nshard; s++) {
        below += q->below[s];
        for (size_t k = 0; k < q->wcount[s]; k++) {
            uint64_t key = mlk_qkey(q->vals[q->wstart[s] + k]);
            below += key < L;
            nin += key >= L && key <= H;
        }
    }
    if (R < below || R - below >= nin) return 0;
    double *in = malloc(nin * sizeof *in);
    if (!in) return MLOPS_ENOMEM;
    size_t w = 0;
    for (size_t i = 0; i < q->nvals; i++) {
        uint64_t key = mlk_qkey(q->vals[i]);
        if (key >= L && key <= H) in[w++] = q->vals[i];
    }
    int rc = sort_values(in, nin);
    if (rc == 0) {
        *out = in[R - below];
        rc = 1;
    }
    free(in);
    return rc;
}

/* Walk an answer; with apply == 0 only validate it. */
static int walk_answer(mlk_qjob *j, const uint8_t *ans, size_t anslen, int apply, char *err,
                       size_t errlen)
{
    int rc = 0;
    /* a shard that sent no answer has ans NULL: no arithmetic on it */
    rbuf r = {ans, ans ? ans + anslen : ans, 0};
    uint32_t nqry;
    if (!ans || !check_header(&r, "MLKA", &nqry, QFMT_VERSION) || nqry != j->nqry)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "quantile answer: malformed header or not an answer to this round");
    for (uint32_t i = 0; i < nqry; i++) {
        query *q = &j->qry[i];
        uint32_t col = ru32(&r), kind = ru32(&r), bits = ru32(&r);
        uint64_t prefix = ru64(&r);
        if (r.bad || col != q->col || kind != q->kind || bits != q->bits || prefix != q->prefix)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "quantile answer: query %u does not match the request", i);
        if (kind == Q_HIST) {
            uint32_t nnz = ru32(&r);
            if (r.bad || nnz > MLK_QBINS || (size_t)(r.end - r.p) / 28 < nnz)
                return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "quantile answer: query %u: bad histogram size", i);
            int64_t last = -1;
            if (apply && lazy_hist(q) != 0)
                return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
            for (uint32_t k = 0; k < nnz; k++) {
                uint32_t b = ru32(&r);
                uint64_t cnt = ru64(&r), lo = ru64(&r), hi = ru64(&r);
                /* The bin's keys must carry the query's prefix and bin. */
                uint64_t top = q->bits ? (q->prefix << MLK_QBITS | b) : b;
                unsigned sh = 64 - q->bits - MLK_QBITS;
                if ((int64_t)b <= last || b >= MLK_QBINS || cnt == 0 || lo > hi ||
                    lo >> sh != top || hi >> sh != top)
                    return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                 "quantile answer: query %u: bad histogram bin", i);
                last = b;
                if (apply) {
                    uint64_t *e = q->counts + 3 * b;
                    e[0] += cnt;
                    e[1] = lo < e[1] ? lo : e[1];
                    e[2] = hi > e[2] ? hi : e[2];
                }
            }
        } else if (kind == Q_WINDOW) {
            uint64_t below = ru64(&r), m = ru64(&r);
            if (r.bad || m > (uint64_t)(r.end - r.p) / 8)
                return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "quantile answer: query %u: bad window size", i);
            for (uint64_t k = 0; k < m; k++) {
                double a, b;
                memcpy(&b, r.p + k * 8, 8);
                if (k) memcpy(&a, r.p + (k - 1) * 8, 8);
                if (isnan(b) || (k && mlk_qkey(a) > mlk_qkey(b)))
                    return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                        "quantile answer: query %u: window not sorted", i);
            }
            if (apply && (rc = add_window(q, below, r.p, (size_t)m)) != 0)
                return mlops_seterr(err, errlen, rc, "out of memory");
            r.p += m * 8;
        } else {
            uint64_t m = ru64(&r);
            if (r.bad || m > (uint64_t)(r.end - r.p) / 8)
                return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "quantile answer: query %u: bad value count", i);
            if (apply && m) {
                if (vals_reserve(q, m) != 0) return MLOPS_ENOMEM;
                memcpy(q->vals + q->nvals, r.p, m * 8);
                q->nvals += m;
            }
            r.p += m * 8;
        }
    }
    if (r.p != r.end)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "quantile answer: trailing bytes");
    return 0;
}

int mlk_qjob_add(mlk_qjob *j, const uint8_t *ans, size_t anslen, char *err, size_t errlen)
{
    int rc = walk_answer(j, ans, anslen, 0, err, errlen);
    if (rc != 0) return rc;
    return walk_answer(j, ans, anslen, 1, err, errlen);
}

int mlk_qjob_step(mlk_qjob *j, char *err, size_t errlen)
{
    if (mlk_qjob_done(j)) return mlops_seterr(err, errlen, MLOPS_EINVAL, "quantile job is done");
    size_t per = 2 * j->nq;
    for (size_t c = 0; c < j->ncols; c++) {
        mlk_qtarget *t = &j->t[c * per];
        if (!j->known[c]) {
            query *q = find_query(j, (uint32_t)c, Q_HIST, 0, 0);
            if (!q) return mlops_seterr(err, errlen, MLOPS_EINVAL, "quantile column %zu: no count", c);
            if (lazy_hist(q) != 0) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
            uint64_t n = 0;
            for (uint32_t b = 0; b < MLK_QBINS; b++) n += q->counts[3 * b];
            j->n[c] = n;
            j->known[c] = 1;
            for (size_t k = 0; k < j->nq; k++) {
                uint64_t lo = 0, hi = 0;
                double g;
                if (n) mlk_qvirtual(n, j->qs[k], &lo, &hi, &g);
                mlk_qtarget init = {0, 0, n, 0, n ? MLK_QT_HIST : MLK_QT_DONE, NAN};
                t[2 * k] = init;
                t[2 * k].rank = lo;
                t[2 * k + 1] = init;
                t[2 * k + 1].rank = hi;
            }
        }
        for (size_t k = 0; k < per; k++) {
            mlk_qtarget *tk = &t[k];
            if (tk->state == MLK_QT_HIST) {
                uint64_t R = tk->rank;
                int round0 = tk->bits == 0;
                query *q = find_query(j, (uint32_t)c, Q_HIST, tk->bits, tk->prefix);
                if (q && lazy_hist(q) != 0)
                    return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
                if (!q || mlk_qselect(tk, q->counts) != 0)
                    return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                        "quantile column %zu: histogram lost values (shards "
                                        "changed between rounds?)",
                                        c);
                double v = NAN;
                int got = round0 && tk->state != MLK_QT_DONE
                              ? window_resolve(j, (uint32_t)c, j->qs[k / 2], R, &v)
                              : 0;
                if (got < 0) return mlops_seterr(err, errlen, got, "out of memory");
                if (got) { /* proved by the windows: no more rounds for it */
                    tk->state = MLK_QT_DONE;
                    tk->value = v;
                }
            } else if (tk->state == MLK_QT_GATHER) {
                query *q = find_query(j, (uint32_t)c, Q_GATHER, tk->bits, tk->prefix);
                if (!q || q->nvals != tk->count)
                    return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                        "quantile column %zu: gathered %zu values, expected "
                                        "%llu (shards changed between rounds?)",
                                        c, q ? q->nvals : 0, (unsigned long long)tk->count);
                /* Sorted once per query; sorting is idempotent. */
                int rc = sort_values(q->vals, q->nvals);
                if (rc != 0) return rc;
                if (mlk_qresolve(tk, q->vals, q->nvals) != 0)
                    return mlops_seterr(err, errlen, MLOPS_EINVAL, "quantile column %zu: bad rank",
                                        c);
            }
        }
    }
    /* Targets that were HIST before this step may now be GATHER: they are
     * asked next round, never resolved in the round that narrowed them. */
    return build_queries(j);
}

int mlk_qjob_result(const mlk_qjob *j, size_t c, double *out, uint64_t *n)
{
    if (c >= j->ncols || !mlk_qjob_done(j)) return MLOPS_EINVAL;
    uint64_t cnt = j->n[c];
    if (n) *n = cnt;
    for (size_t k = 0; k < j->nq; k++) {
        if (!cnt) {
            out[k] = NAN;
            continue;
        }
        uint64_t lo, hi;
        double g;
        mlk_qvirtual(cnt, j->qs[k], &lo, &hi, &g);
        const mlk_qtarget *t = &j->t[c * 2 * j->nq + 2 * k];
        out[k] = mlk_qlerp(t[0].value, t[1].value, g);
    }
    return 0;
}

int mlk_qjob_encode(const mlk_qjob *j, uint8_t **buf, size_t *len)
{
    wbuf w = {0};
    wput(&w, "MLKJ", 4);
    wu32(&w, 1);
    wu32(&w, (uint32_t)j->ncols);
    wu32(&w, (uint32_t)j->nq);
    for (size_t k = 0; k < j->nq; k++) wf64(&w, j->qs[k]);
    for (size_t c = 0; c < j->ncols; c++) {
        wu64(&w, j->n[c]);
        wu32(&w, j->known[c]);
        for (size_t k = 0; k < 2 * j->nq; k++) {
            const mlk_qtarget *t = &j->t[c * 2 * j->nq + k];
            wu64(&w, t->prefix);
            wu64(&w, t->rank);
            wu64(&w, t->count);
            wu32(&w, t->bits);
            wu32(&w, t->state);
            wf64(&w, t->value);
        }
    }
    return wdone(&w, buf, len);
}

int mlk_qjob_decode(const uint8_t *buf, size_t len, mlk_qjob **out)
{
    *out = NULL;
    rbuf r = {buf, buf + len, 0};
    uint32_t ncols;
    if (!buf || !check_header(&r, "MLKJ", &ncols, 1)) return MLOPS_EPARSE;
    uint32_t nq = ru32(&r);
    if (r.bad || ncols == 0 || nq == 0 || nq > 1024 ||
        (uint64_t)(r.end - r.p) != (uint64_t)nq * 8 + (uint64_t)ncols * (12 + 2 * nq * 40))
        return MLOPS_EPARSE;
    mlk_qjob *j = job_alloc(ncols, nq);
    if (!j) return MLOPS_ENOMEM;
    for (size_t k = 0; k < nq; k++) {
        j->qs[k] = rf64(&r);
        if (!(j->qs[k] >= 0.0 && j->qs[k] <= 1.0)) goto bad;
    }
    for (size_t c = 0; c < ncols; c++) {
        j->n[c] = ru64(&r);
        j->known[c] = ru32(&r);
        if (j->known[c] > 1) goto bad;
        for (size_t k = 0; k < 2 * (size_t)nq; k++) {
            mlk_qtarget *t = &j->t[c * 2 * nq + k];
            t->prefix = ru64(&r);
            t->rank = ru64(&r);
            t->count = ru64(&r);
            t->bits = ru32(&r);
            t->state = ru32(&r);
            t->value = rf64(&r);
            if (!j->known[c]) continue;
            if (t->state < MLK_QT_HIST || t->state > MLK_QT_DONE) goto bad;
            if (t->state != MLK_QT_DONE &&
                (!valid_query(MLK_QT_HIST, t->bits, t->prefix) || t->rank >= t->count ||
                 t->count > j->n[c] || (t->state == MLK_QT_GATHER && t->bits == 0)))
                goto bad;
        }
    }
    if (r.bad || build_queries(j) != 0) goto bad;
    *out = j;
    return 0;
bad:
    mlk_qjob_destroy(&j);
    return MLOPS_EPARSE;
}

int mlk_quantiles_exact(const double *v, size_t n, const double *qs, size_t nq, double *out)
{
    for (size_t i = 0; i < nq; i++)
        if (!(qs[i] >= 0.0 && qs[i] <= 1.0)) return MLOPS_EINVAL;
    if (nq == 0) return 0;
    int has_nan = 0;
    for (size_t i = 0; i < n && !has_nan; i++) has_nan = isnan(v[i]);
    if (has_nan || n == 0) {
        for (size_t i = 0; i < nq; i++) out[i] = NAN;
        return 0;
    }
    mlk_qjob *j = mlk_qjob_new(1, qs, nq);
    if (!j) return MLOPS_ENOMEM;
    int rc = 0;
    while (rc == 0 && !mlk_qjob_done(j)) {
        uint8_t *req = NULL, *ans = NULL;
        size_t reqlen, anslen;
        if ((rc = mlk_qjob_request(j, &req, &reqlen)) == 0 &&
            (rc = mlk_qjob_answer(req, reqlen, &v, 1, n, &ans, &anslen, NULL, 0)) == 0 &&
            (rc = mlk_qjob_add(j, ans, anslen, NULL, 0)) == 0)
            rc = mlk_qjob_step(j, NULL, 0);
        free(req);
        free(ans);
    }
    if (rc == 0) rc = mlk_qjob_result(j, 0, out, NULL);
    mlk_qjob_destroy(&j);
    return rc;
}
