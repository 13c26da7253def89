/* recommender.h: a registered recommender (mlops-recommender/1,
 * docs/model-format.md) loaded in memory, and its answer for one user.
 *
 * The artifact holds what the batch knn stage in recommend mode used:
 * the leave-last-out training data (per user the sorted item indexes it
 * interacted with), the user and item ids by index, k, n and the
 * most-popular ranking. A lookup runs the same kernel code as the stage
 * (common/kernels/recommend.h: the neighbours of the user among all
 * users, then the top-n unseen items with their scores), so a known user
 * gets the items, the order and the scores of the batch export, bit for
 * bit. An unknown user gets the most-popular items (score: the item's
 * training interactions), marked as such.
 *
 * Used by `mlopsctl model recommend` and by the model server: no HTTP,
 * no sockets. A loaded recommender is read-only, so several threads may
 * call the lookups at once. */
#ifndef MLOPS_RECOMMENDER_H
#define MLOPS_RECOMMENDER_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define MLOPS_RECOMMENDER_FORMAT "mlops-recommender/1"
#define MLOPS_RECOMMENDER_MAX_N 100000 /* items one answer may ask for, as the batch stage */

typedef struct mlops_recommender mlops_recommender_t;

/* One recommended item: its id (borrowed from the recommender, valid
 * until it is destroyed) and its score. */
typedef struct {
    const char *item_id;
    double score;
} mlops_rec_item_t;

/* Loads the artifact's JSON text (len bytes). NULL with a one-line
 * message in err naming the field (or the line and column of a JSON
 * syntax error) when it is not a valid recommender. */
mlops_recommender_t *mlops_recommender_load(const char *text, size_t len, char *err,
                                            size_t errlen);

/* The same from a parsed artifact (borrowed). */
mlops_recommender_t *mlops_recommender_from_json(const json_t *doc, char *err, size_t errlen);

/* Frees and nulls *r; safe on NULL and twice. */
void mlops_recommender_destroy(mlops_recommender_t **r);

/* The registered name and version, and the n the batch stage used
 * (knn.top_n), the default for a lookup. */
const char *mlops_recommender_name(const mlops_recommender_t *r);
uint32_t mlops_recommender_version(const mlops_recommender_t *r);
size_t mlops_recommender_default_n(const mlops_recommender_t *r);

/* The top n (1 .. MLOPS_RECOMMENDER_MAX_N) items for user_id into out
 * (room for n), their number in *nout (fewer than n when the user's
 * neighbours have fewer unseen items, as in the batch stage), *popular =
 * 1 when user_id is unknown and the items are the most popular ones.
 * 0, or MLOPS_EINVAL (bad n) / MLOPS_ENOMEM with err. */
int mlops_recommender_lookup(const mlops_recommender_t *r, const char *user_id, size_t n,
                             mlops_rec_item_t *out, size_t *nout, int *popular, char *err,
                             size_t errlen);

/* The answer as JSON, what `mlopsctl model recommend -o json` prints and
 * POST /recommend returns: {"items": [{"item_id", "score"}, ...],
 * "popular": bool, "model": {"name", "version"}}. A new reference, or
 * NULL with err (as mlops_recommender_lookup). */
json_t *mlops_recommender_answer(const mlops_recommender_t *r, const char *user_id, size_t n,
                                 char *err, size_t errlen);

#endif
