/* metrics.h: classification metrics from mergeable per-shard partials.
 *
 * Each shard adds its rows (true class, predicted class, and optionally
 * the predicted class probabilities) to a partial; partials travel as
 * bytes, merge by adding, and the metrics are computed once from the
 * merged partial, with scikit-learn 1.2's definitions:
 *   accuracy_score; precision/recall/f1_score with average='binary'
 *   (positive class 1) when there are 2 classes, else average='macro'
 *   over the classes present in y_true or y_pred; zero_division gives 0;
 *   confusion_matrix (row = true class, column = predicted class);
 *   log_loss(y_true, proba, labels=range(K)): each row clipped to
 *   [eps, 1 - eps], renormalised by its sum (numpy's pairwise order),
 *   -log of the true class's probability, mean over rows; eps defaults
 *   to sklearn 1.2.1's "auto" = DBL_EPSILON for float64;
 *   roc_auc_score (2 classes, score = probability of class 1).
 *
 * Determinism and accuracy: counts are integers. The log-loss sum is a
 * double-double (compensated) sum, so merging in a fixed (shard) order
 * is deterministic and the result is within about 1 ulp of the exact
 * mean of the per-row losses (numpy's pairwise mean is itself within
 * ~log2(n) ulp). ROC AUC is exact: a partial keeps its distinct scores
 * sorted with the count of positives and negatives at each, merging is
 * a sorted merge, and the AUC is the Mann-Whitney statistic with ties
 * counted one half (equal to scikit-learn's trapezoidal ROC AUC),
 * computed in integers and divided once: correctly rounded while
 * 2·P·N < 2^53, within 2 ulp beyond that. At most 2^32 rows carry
 * probabilities in a partial. */
#ifndef MLK_METRICS_H
#define MLK_METRICS_H
#include <stddef.h>
#include <stdint.h>

typedef struct mlk_metrics mlk_metrics;

#define MLK_METRICS_MAX_CLASSES 65536

/* A new empty partial for `nclasses` classes (2 .. 65536) and log-loss
 * clipping eps (<= 0 means DBL_EPSILON, sklearn 1.2.1's default). NULL
 * on a bad argument or allocation failure. */
mlk_metrics *mlk_metrics_new(uint32_t nclasses, double eps);
/* Free a partial and set *pm to NULL; safe on NULL. */
void mlk_metrics_destroy(mlk_metrics **pm);

/* Number of classes of a partial. */
uint32_t mlk_metrics_nclasses(const mlk_metrics *m);
/* Rows added so far. */
uint64_t mlk_metrics_rows(const mlk_metrics *m);
/* The K x K confusion matrix, row-major, row = true class (borrowed,
 * valid until the partial changes). */
const uint64_t *mlk_metrics_confusion(const mlk_metrics *m);

/* Add n rows. y_true[i] in [0, K). y_pred may be NULL: the predicted
 * class is then the first largest probability of the row (as predict()
 * does). proba may be NULL (then log loss and AUC are not available
 * for the merged result), else n x K row-major finite values. Input is
 * validated first: on error (MLOPS_EINVAL naming the row, MLOPS_ENOMEM)
 * the partial is unchanged. */
int mlk_metrics_add(mlk_metrics *m, size_t n, const int32_t *y_true, const int32_t *y_pred,
                    const double *proba, char *err, size_t errlen);

/* into += from. Both must have the same K and eps (MLOPS_EINVAL).
 * Merge shard partials in a fixed order for bit-identical results. */
int mlk_metrics_merge(mlk_metrics *into, const mlk_metrics *from, char *err, size_t errlen);

/* Encode into a new malloc'd buffer. 0 or MLOPS_ENOMEM. */
int mlk_metrics_encode(const mlk_metrics *m, uint8_t **out, size_t *outlen);
/* Decode a (possibly garbage) buffer; MLOPS_EPARSE with a message. */
int mlk_metrics_decode(const uint8_t *buf, size_t len, mlk_metrics **out, char *err,
                       size_t errlen);

typedef struct {
    uint64_t n;
    double accuracy;
    double precision, recall, f1; /* binary (class 1) for K = 2, else macro */
    int has_log_loss;             /* every row came with probabilities */
    double log_loss;
    int has_auc; /* K = 2, probabilities, and both classes present */
    double roc_auc;
} mlk_metrics_result;

/* Compute the metrics of a (merged) partial. MLOPS_EINVAL when it has
 * no rows. */
int mlk_metrics_compute(const mlk_metrics *m, mlk_metrics_result *r, char *err, size_t errlen);

/* The curves of a 2-class partial with probabilities, for plots (a
 * bounded size whatever the number of rows):
 *   ROC: the points of scikit-learn's roc_curve(drop_intermediate=False)
 *   (one per distinct score, descending, after (0, 0) at threshold
 *   +inf, given here as 2), thinned to at most MLK_ROC_POINTS by keeping
 *   the first, the last and evenly spaced ones between;
 *   calibration: calibration_curve(n_bins=MLK_CALIB_BINS,
 *   strategy='uniform'): per non-empty bin of the score (numpy's
 *   linspace edges, a score on an edge in the lower bin), the mean score
 *   and the fraction of positives, and the rows in it. The mean is
 *   summed over distinct scores, so it may differ from numpy's in the
 *   last bits. */
#define MLK_ROC_POINTS 101
#define MLK_CALIB_BINS 10
typedef struct {
    size_t nroc;
    double fpr[MLK_ROC_POINTS], tpr[MLK_ROC_POINTS], threshold[MLK_ROC_POINTS];
    size_t ncal;
    double prob_pred[MLK_CALIB_BINS], prob_true[MLK_CALIB_BINS];
    uint64_t count[MLK_CALIB_BINS];
} mlk_metrics_curves;

/* MLOPS_EINVAL unless the partial has 2 classes, every row has
 * probabilities and both classes occur. */
int mlk_metrics_curves_of(const mlk_metrics *m, mlk_metrics_curves *c, char *err, size_t errlen);

#endif
