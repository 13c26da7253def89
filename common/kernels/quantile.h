/* quantile.h: exact quantiles of columns spread over shards, by rounds of
 * radix histograms, with numpy 1.24's 'linear' interpolation.
 *
 * Why exact and why rounds: the IQR filter must keep exactly the rows
 * pandas keeps, so Q1/Q3 must be bit-identical to numpy's, which needs
 * the true order statistics. No shard holds them all, and shipping every
 * value to the coordinator does not scale; instead each round narrows
 * every wanted rank to a smaller range of 64-bit keys:
 *
 *   key = mlk_qkey(x): an order-preserving map double -> uint64 (sign bit
 *   flipped for x >= 0, all bits flipped for x < 0; -0.0 maps to the key
 *   of +0.0, since numpy orders them as equal). A "prefix" is the top
 *   `bits` bits of a key (bits = 0, 16, 32 or 48, right-aligned).
 *
 * The protocol (coordinator = mlk_qjob, workers = mlk_qjob_answer):
 *   0. mlk_qjob_new(ncols, qs): every column starts unknown.
 *   1. Round: mlk_qjob_request() gives the same request bytes for every
 *      shard (they travel in task args). Each worker runs
 *      mlk_qjob_answer() over its shard's columns (NaN-free: dropna runs
 *      first; NaNs are ignored) and replies with the answer bytes.
 *      A request holds queries (column, kind, prefix, bits):
 *        HIST   -> counts of the shard's values with that prefix, in
 *                  2^16 bins of the next 16 key bits, with each bin's
 *                  min and max key (sent sparse);
 *        GATHER -> the shard's values with that prefix, sorted.
 *   2. The coordinator feeds every shard's answer to mlk_qjob_add()
 *      (counts are summed, gathered values appended), then calls
 *      mlk_qjob_step() once: round 0 (HIST of prefix 0 per column) gives
 *      n and thus the wanted ranks floor((n-1)q) and floor((n-1)q) + 1;
 *      each unresolved rank moves into the bin that holds it (new prefix,
 *      bits += 16, rank within the bin). A rank whose bin holds at most
 *      MLK_QGATHER_MAX values is gathered next round, then resolved; a
 *      rank whose bin holds a single distinct key is resolved at once.
 *   3. Repeat 1-2 until mlk_qjob_done(); then mlk_qjob_result().
 * At most 5 rounds; typically 3. With mlk_qjob_set_window, round 0
 * also asks each shard for the values around its own quantiles
 * (WINDOW): they resolve a rank in round 0 when every shard's window
 * covers it, usually saving the gather round. The job state between
 * rounds encodes to bytes (mlk_qjob_encode/decode) for a journal.
 *
 * Interpolation (numpy 1.24 _quantile, method 'linear'): virtual index
 * v = (n-1)*q; i = floor(v), j = i+1, gamma = v - i; if v >= n-1 then
 * i = j = n-1 and gamma = v + 1 (numpy's index -1); result
 * a + (b-a)*gamma, or b - (b-a)*(1-gamma) where gamma >= 0.5.
 * pandas' Series.quantile(q) calls np.percentile(q*100), which divides
 * by 100 again: pass mlk_q_pandas(q) to get pandas' q. */
#ifndef MLK_QUANTILE_H
#define MLK_QUANTILE_H
#include <stddef.h>
#include <stdint.h>

#define MLK_QBITS 16
#define MLK_QBINS (1u << MLK_QBITS)
/* A bin of up to 2^20 values is gathered at once: after the first 16-bit
 * histogram round this resolves typical columns of tens of millions of
 * rows in two rounds (measured: 4 rounds with 65536 on 1M rows). */
#define MLK_QGATHER_MAX (1u << 20)
/* A histogram: per bin b, hist[3b] = count, hist[3b+1] = smallest and
 * hist[3b+2] = largest key seen (one cache line per update), so a bin
 * of one distinct value resolves its ranks at once (columns of few
 * values take one round). */
#define MLK_QHIST_LEN (3 * MLK_QBINS)

/* Order-preserving key of a double (-0.0 and +0.0 share a key). */
uint64_t mlk_qkey(double x);
/* The double whose key is k (a zero key-value is +0.0). */
double mlk_qkey_value(uint64_t k);

/* Empty a histogram of MLK_QHIST_LEN entries (counts 0, min/max empty). */
void mlk_qhist_init(uint64_t *hist);
/* Add to hist the values of v[0..n) whose key has the top `bits` bits
 * equal to prefix, binned by the next 16 bits. NaN skipped. bits must
 * be 0, 16, 32 or 48. */
void mlk_qhist_add(const double *v, size_t n, uint64_t prefix, unsigned bits, uint64_t *hist);

/* The values of v[0..n) with the given key prefix, sorted ascending,
 * into a new malloc'd array (*out, *nout; NULL when none). NaN skipped.
 * 0 or MLOPS_ENOMEM. */
int mlk_qgather(const double *v, size_t n, uint64_t prefix, unsigned bits, double **out,
                size_t *nout);

/* One wanted order statistic. */
enum { MLK_QT_HIST = 1, MLK_QT_GATHER = 2, MLK_QT_DONE = 3 };
typedef struct {
    uint64_t prefix; /* top `bits` key bits resolved so far */
    uint64_t rank;   /* 0-based rank among the values with that prefix */
    uint64_t count;  /* merged number of values with that prefix */
    uint32_t bits;   /* 0, 16, 32, 48 or 64 */
    uint32_t state;  /* MLK_QT_* */
    double value;    /* when MLK_QT_DONE */
} mlk_qtarget;

/* Narrow a MLK_QT_HIST target with the merged histogram of its prefix:
 * moves it to the bin holding its rank, then to MLK_QT_DONE if the bin
 * holds one distinct key (or at 64 bits), else to MLK_QT_GATHER if the
 * bin holds <= MLK_QGATHER_MAX values.
 * MLOPS_EINVAL if the histogram holds fewer than rank+1 values (shards
 * changed between rounds) or the target is not in MLK_QT_HIST. */
int mlk_qselect(mlk_qtarget *t, const uint64_t *hist);

/* Resolve a MLK_QT_GATHER target from the merged, sorted values with
 * its prefix (all shards). MLOPS_EINVAL if rank >= n. */
int mlk_qresolve(mlk_qtarget *t, const double *sorted, size_t n);

/* numpy's indexes and weight for quantile q of n > 0 values. */
void mlk_qvirtual(uint64_t n, double q, uint64_t *lo, uint64_t *hi, double *gamma);
/* numpy's _lerp(a, b, t). */
double mlk_qlerp(double a, double b, double t);
/* The q numpy sees when pandas' Series.quantile(q) is called. */
double mlk_q_pandas(double q);

/* Exact numpy.quantile(v, qs[i], method='linear') for i < nq into out,
 * by the same rounds as the distributed job run in-process. If v holds
 * a NaN, or n == 0, every result is NaN (as numpy). 0, MLOPS_EINVAL (q
 * outside [0,1]) or MLOPS_ENOMEM. */
int mlk_quantiles_exact(const double *v, size_t n, const double *qs, size_t nq, double *out);

/* --- the distributed job (coordinator side) ------------------------- */
typedef struct mlk_qjob mlk_qjob;

/* A job for the quantiles qs[0..nq) of ncols columns. NULL on bad
 * arguments (ncols or nq == 0, q outside [0,1]) or no memory. */
mlk_qjob *mlk_qjob_new(size_t ncols, const double *qs, size_t nq);
void mlk_qjob_destroy(mlk_qjob **pj);

/* The largest window half width mlk_qjob_set_window takes. */
#define MLK_QWINDOW_MAX 65536

/* Round 0 also asks every shard for a window of its own values around
 * each wanted quantile (w values either side of its local order
 * statistics, at least 2.5 sqrt(n) for a shard of n values, with all
 * ties): when every shard's window covers the
 * global order statistic (shards that are alike, as rows dealt in
 * file order mostly are), the windows prove it exactly and the target
 * is resolved in round 0, so a gather round is saved. The results are
 * the same exact values either way. Call before the first request, on
 * both the side that makes requests and the side that adds answers.
 * 0, or MLOPS_EINVAL (w too large, or not in round 0). */
int mlk_qjob_set_window(mlk_qjob *j, uint32_t w);

/* 1 when every column's quantiles are known. */
int mlk_qjob_done(const mlk_qjob *j);

/* The request of the next round: new malloc'd bytes, the same for every
 * shard. MLOPS_EINVAL if the job is done. */
int mlk_qjob_request(const mlk_qjob *j, uint8_t **req, size_t *reqlen);

/* Worker side: answer a request over one shard whose column c holds
 * cols[c][0..nrows) for c < ncols (ncols must cover every column the
 * request names). Each column is scanned once per round whatever its
 * number of queries. The request may be garbage: MLOPS_EPARSE with a
 * message. On success *ans is new malloc'd bytes. */
int mlk_qjob_answer(const uint8_t *req, size_t reqlen, const double *const *cols, size_t ncols,
                    size_t nrows, uint8_t **ans, size_t *anslen, char *err, size_t errlen);

/* The same, leaving out rows with keep[r] == 0 (keep may be NULL: all
 * rows), so a worker can pass its dropna mask instead of copying. */
int mlk_qjob_answer_masked(const uint8_t *req, size_t reqlen, const double *const *cols,
                           size_t ncols, size_t nrows, const uint8_t *keep, uint8_t **ans,
                           size_t *anslen, char *err, size_t errlen);

/* Merge one shard's answer to the current round's request. A malformed
 * answer, or one to another request, is MLOPS_EPARSE and leaves the
 * job as it was before this call. */
int mlk_qjob_add(mlk_qjob *j, const uint8_t *ans, size_t anslen, char *err, size_t errlen);

/* Close the round after every shard's answer was added. */
int mlk_qjob_step(mlk_qjob *j, char *err, size_t errlen);

/* Column c's quantiles (nq values; NaN for a column with no values) and
 * its value count. MLOPS_EINVAL if not done or c out of range. */
int mlk_qjob_result(const mlk_qjob *j, size_t c, double *out, uint64_t *n);

/* Job state between rounds (targets and counts) to bytes and back;
 * answers added in a round still open are not kept. Decode validates
 * (MLOPS_EPARSE). */
int mlk_qjob_encode(const mlk_qjob *j, uint8_t **buf, size_t *len);
int mlk_qjob_decode(const uint8_t *buf, size_t len, mlk_qjob **out);

#endif
