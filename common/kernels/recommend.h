/* recommend.h: user-based k-NN recommendation and its leave-one-out
 * evaluation (RecBole's metric definitions), plus the most-popular
 * baseline.
 *
 * Pipeline: mlk_rec_split() takes (user, item) interactions in time order
 * and holds out each user's last interaction (users with >= 2); the rest
 * forms a sparse user x item matrix (per user: sorted unique items with
 * their interaction counts). mlk_rec_neighbors() finds, for a range of
 * query users, the k most cosine-similar users within an index range of
 * users (one shard) -- ids are global user ids, the query user is
 * excluded, ties go to the lower user id -- into an mlk_topk, so shards
 * searched on several workers merge with mlk_topk_merge() exactly as in
 * knn.h. mlk_rec_recommend() scores items from the merged neighbours and
 * mlk_rec_evaluate() computes the metrics.
 *
 * Cosine here is computed from sparse dot products: sim(u, v) =
 * dot(u, v) / (|u| * |v|), where dot and |.|^2 are exact sums of integers
 * in double; a user with no training items has similarity 0 to everyone
 * (as a zero vector in knn.h). With ~10k users x ~2000 items and tens of
 * interactions per user, the inverted-index dot products cost far less
 * than a dense 10k x 10k x 2000 product would. */
#ifndef MLK_RECOMMEND_H
#define MLK_RECOMMEND_H
#include <stddef.h>
#include <stdint.h>

#include "knn.h"

typedef enum {
    MLK_REC_BINARY = 0, /* user vector: 1 for each item interacted with */
    MLK_REC_COUNT = 1,  /* user vector: number of interactions per item */
} mlk_rec_values;

typedef struct {
    size_t nusers, nitems;
    int64_t *indptr;      /* nusers + 1: user u's training items are [indptr[u], indptr[u+1]) */
    int32_t *items;       /* sorted unique item ids per user */
    double *values;       /* vector value per (user, item): 1 or the count */
    double *norm;         /* nusers: L2 norm of each user's vector (0 if none) */
    int32_t *heldout;     /* nusers: the held-out item, or -1 (fewer than 2 interactions) */
    int64_t *item_count;  /* nitems: training interactions per item (popularity) */
} mlk_rec_data;

/* Splits n interactions (user[i], item[i]), in time order, with ids in
 * [0, nusers) and [0, nitems). NULL on failure with a message in err
 * naming the offending interaction. */
mlk_rec_data *mlk_rec_split(const int32_t *user, const int32_t *item, size_t n, size_t nusers,
                            size_t nitems, mlk_rec_values values, char *err, size_t errlen);

/* Frees and nulls *d; safe on NULL and twice. */
void mlk_rec_data_destroy(mlk_rec_data **d);

/* Adds to out (out->nq == q_count; query j is user q_begin + j) the users
 * of the index shard [u_begin, u_end) as neighbour candidates, with their
 * cosine similarity; the query user itself is never a candidate. Every
 * shard user is offered (similarity 0 if nothing shared), so the result
 * equals a single search over all users. 0 or MLOPS_EINVAL/ENOMEM. */
int mlk_rec_neighbors(const mlk_rec_data *d, size_t q_begin, size_t q_count, size_t u_begin,
                      size_t u_end, mlk_topk *out, char *err, size_t errlen);

/* mlk_rec_neighbors() both ways between two disjoint user ranges, from
 * one pass over their dot products: out (q_count lists) gets the users
 * of [u_begin, u_end) as candidates of the queries q_begin.., and back
 * (u_end - u_begin lists, same k) the queries as candidates of those
 * users. Similarities are symmetric to the bit (the products commute
 * and both sides add the shared items in item order), so each list
 * equals the one-way search's. MLOPS_EINVAL on overlapping ranges. */
int mlk_rec_neighbors_both(const mlk_rec_data *d, size_t q_begin, size_t q_count, size_t u_begin,
                           size_t u_end, mlk_topk *out, mlk_topk *back, char *err, size_t errlen);

/* The inverted index (item -> users of [u_begin, u_end) with their
 * values) mlk_rec_neighbors() builds for one call, kept: a registered
 * recommender (common/recommender.h) builds it once over all users and
 * answers each lookup with mlk_rec_neighbors_in(). Read-only once built,
 * so several threads may search it. */
typedef struct mlk_rec_index mlk_rec_index;

/* NULL with a message on a bad range or allocation failure. d must
 * outlive the index. */
mlk_rec_index *mlk_rec_index_new(const mlk_rec_data *d, size_t u_begin, size_t u_end, char *err,
                                 size_t errlen);

/* Frees and nulls *ix; safe on NULL and twice. */
void mlk_rec_index_destroy(mlk_rec_index **ix);

/* mlk_rec_neighbors() over the index's shard: the same candidates, the
 * same similarities bit for bit, the same lists. */
int mlk_rec_neighbors_in(const mlk_rec_data *d, const mlk_rec_index *ix, size_t q_begin,
                         size_t q_count, mlk_topk *out, char *err, size_t errlen);

/* Top-n items for each query user q_begin + j from its neighbours nbrs
 * (row j): score(item) = sum of the similarities of the neighbours who
 * interacted with it (in training); candidates are those items minus the
 * ones the user saw in training; order by score descending, then item id
 * ascending. recs gets q_count x topn item ids, -1 padding when there are
 * fewer candidates. 0 or a negative code. */
int mlk_rec_recommend(const mlk_rec_data *d, const mlk_topk *nbrs, size_t q_begin, size_t topn,
                      int32_t *recs, char *err, size_t errlen);

/* mlk_rec_recommend(), and also the score of each recommended item
 * (scores gets q_count x topn; 0 in the padding). The score is the sum
 * of the similarities of the neighbours who have the item, added in
 * neighbour order: the batch stage's frame and a registered recommender
 * (common/recommender.h) both print it. */
int mlk_rec_recommend_scored(const mlk_rec_data *d, const mlk_topk *nbrs, size_t q_begin,
                             size_t topn, int32_t *recs, double *scores, char *err, size_t errlen);

/* Training data given as it was split: per user u the sorted unique item
 * ids items[indptr[u] .. indptr[u+1]) (binary values; items holds
 * indptr[nusers] entries, and every offset is checked against that), and the training
 * interactions per item (item_count, nitems). No user has a held-out
 * item. The norms are computed as mlk_rec_split() computes them, so
 * neighbours and scores are bit-identical to the split data's. NULL with
 * a message naming the user or item when the arrays are inconsistent. */
mlk_rec_data *mlk_rec_data_from_csr(size_t nusers, size_t nitems, const int64_t *indptr,
                                    const int32_t *items, const int64_t *item_count, char *err,
                                    size_t errlen);

/* The items with at least one training interaction, most popular first:
 * interaction count descending, then item id ascending. ids holds
 * d->nitems; *n gets how many were written. 0 or a negative code. */
int mlk_rec_popular_rank(const mlk_rec_data *d, int32_t *ids, size_t *n);

/* The most-popular baseline for users q_begin .. q_begin+q_count-1: items
 * with at least one training interaction ordered by interaction count
 * descending, then item id ascending, skipping the user's seen items;
 * same output layout as mlk_rec_recommend(). */
int mlk_rec_popular(const mlk_rec_data *d, size_t q_begin, size_t q_count, size_t topn,
                    int32_t *recs, char *err, size_t errlen);

/* Leave-one-out metrics (RecBole definitions with one relevant item):
 * hit@N = 1 if the held-out item is in the list; precision@N = hits / N;
 * recall@N = hits / 1; NDCG@N = 1 / log2(rank + 1) for its 1-based rank
 * (IDCG = 1). Means over users with a held-out item; nusers counts them
 * (for combining shards: weight the means by nusers). */
typedef struct {
    double hit, precision, recall, ndcg;
    size_t nusers;
} mlk_rec_metrics;

/* Evaluates recs (q_count x topn, as above) against heldout[0..q_count)
 * (-1 = user not evaluated). 0 or MLOPS_EINVAL. */
int mlk_rec_evaluate(const int32_t *recs, size_t q_count, size_t topn, const int32_t *heldout,
                     mlk_rec_metrics *m);

#endif
