/* knn.h: exact cosine k-nearest-neighbour search, shard merge, and
 * k-NN classification as scikit-learn's KNeighborsClassifier does it.
 *
 * Vectors are float32 rows. Cosine similarity is the dot product of
 * L2-normalised rows; mlk_knn_normalize() maps a zero row to itself, so a
 * zero vector has similarity 0 to every vector (cosine distance 1), as
 * scikit-learn's normalize()/cosine_distances() define it.
 *
 * The search multiplies tiles of queries by tiles of index rows with
 * cblas_sgemm and feeds each tile's similarities into a per-query top-k.
 * Each query keeps its current k-th best similarity as a threshold, so
 * almost every candidate is rejected by one vector compare and the cost is
 * the sgemm's.
 *
 * Order and ties: a top-k list is sorted by similarity descending; equal
 * similarities are ordered by id ascending, and at the k-th place the
 * lower id wins. The rule is the same whatever order candidates arrive in,
 * so searching index shards separately (ids are global: each shard passes
 * its first row's global id) and merging the lists with mlk_topk_merge()
 * gives exactly the single-search result. */
#ifndef MLK_KNN_H
#define MLK_KNN_H
#include <stddef.h>
#include <stdint.h>

/* Top-k lists of nq queries. Slot j of query q is sim[q*k+j], id[q*k+j];
 * unused slots have id -1 and sim -INFINITY and come last. */
typedef struct {
    size_t nq;
    size_t k;
    double *sim;
    int64_t *id;
} mlk_topk;

/* New empty lists (k >= 1). NULL on bad size or allocation failure. */
mlk_topk *mlk_topk_new(size_t nq, size_t k);

/* Frees and nulls *t; safe on NULL and twice. */
void mlk_topk_destroy(mlk_topk **t);

/* Empties all lists. */
void mlk_topk_clear(mlk_topk *t);

/* Offers candidate (sim, id) to query q's list; returns 1 if it entered.
 * A NaN similarity never enters. No check that id is not already there. */
int mlk_topk_push(mlk_topk *t, size_t q, double sim, int64_t id);

/* Number of filled slots of query q. */
size_t mlk_topk_count(const mlk_topk *t, size_t q);

/* Merges src into dst (same nq and k): dst becomes the top-k of the
 * union, by the rule above. 0 or MLOPS_EINVAL on shape mismatch. */
int mlk_topk_merge(mlk_topk *dst, const mlk_topk *src);

/* L2-normalises each of the n rows of x (n x d, row-major) in place.
 * The norm is accumulated in double; a row of norm 0 is left as zeros. */
void mlk_knn_normalize(float *x, size_t n, size_t d);

/* Tile sizes of the search; 0 picks the default. */
typedef struct {
    size_t tile_q; /* queries per sgemm tile */
    size_t tile_x; /* index rows per sgemm tile */
} mlk_knn_opts;

/* Adds the index rows x (nx x d, normalised), whose global ids are
 * id_base .. id_base+nx-1, as candidates to the top-k of each query row
 * of q (nq x d, normalised; out->nq must equal nq). If exclude is not
 * NULL, exclude[i] is an id never accepted for query i (-1: none; e.g. the query
 * itself). opts may be NULL. Returns 0, MLOPS_EINVAL or MLOPS_ENOMEM,
 * with a message in err. */
int mlk_knn_search(const float *q, size_t nq, const float *x, size_t nx, size_t d,
                   int64_t id_base, const int64_t *exclude, mlk_topk *out,
                   const mlk_knn_opts *opts, char *err, size_t errlen);

typedef enum {
    MLK_KNN_UNIFORM = 0,  /* majority vote */
    MLK_KNN_DISTANCE = 1, /* votes weighted by 1 / cosine distance */
} mlk_knn_weights;

/* Predicts a label per query from its neighbours as scikit-learn's
 * KNeighborsClassifier(metric='cosine', algorithm='brute'):
 *  - uniform: the most frequent label among the neighbours;
 *  - distance: weight 1/d with d = 1 - sim computed in float32 and
 *    clipped to [0, 2]; if any neighbour of a query has d == 0, those
 *    neighbours get weight 1 and the others 0 (scikit-learn's rule);
 *  - a tie in the vote goes to the smallest label.
 * labels[id] is the label of index row id (0 <= id < nlabels). pred gets
 * nq labels. Returns 0, or MLOPS_EINVAL (query without neighbours, id out
 * of range) with a message. */
int mlk_knn_classify(const mlk_topk *t, const int32_t *labels, size_t nlabels,
                     mlk_knn_weights weights, int32_t *pred, char *err, size_t errlen);

/* Fraction of i with pred[i] == truth[i]; 0 when n == 0. */
double mlk_accuracy(const int32_t *pred, const int32_t *truth, size_t n);

#endif
