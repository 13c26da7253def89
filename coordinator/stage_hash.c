/* stage_hash.c: the categorical columns through the scikit-learn
 * identical FeatureHasher; each shard becomes a feature shard (fshard.h):
 * hashed CSR + the (scaled) numeric columns as the dense part + class
 * indexes of the label. One phase, a task per shard.
 * Args: HashArgs (proto/tasks.proto). */
#include "err.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdlib.h>

static int hash_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "hash: no input stage");
    if (stage_fused_features(j)) return stage_set_tasks(st, 0, "hash"); /* split's featurize hashes */
    int rc = stage_set_tasks(st, in->ntasks, "hash");
    if (!rc) stage_set_output_keys(j, st, "/");
    return rc;
}

char **stage_hash_args(const job_t *j, Mlops__Tasks__HashArgs *a)
{
    size_t ncls = job_nclasses(j);
    char **cls = calloc(ncls ? ncls : 1, sizeof *cls);
    if (!cls) return NULL;
    for (size_t i = 0; i < ncls; i++) cls[i] = (char *)job_class(j, i);
    /* no hash section: no sparse part (numeric columns only) */
    a->n_features = j->spec->has_hash ? j->spec->hash.n_features : 0;
    a->alternate_sign = j->spec->hash.alternate_sign != 0;
    a->n_classes = ncls;
    a->classes = cls;
    return cls;
}

static int hash_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in || t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EINVAL, "hash: bad task");
    int rc = args_add_input(out, in->tasks[t].output_key);
    if (rc) return rc;
    Mlops__Tasks__HashArgs a = MLOPS__TASKS__HASH_ARGS__INIT;
    char **cls = stage_hash_args(j, &a);
    if (!cls) return MLOPS_ENOMEM;
    rc = args_pack(out, &a.base);
    free(cls);
    return rc;
}

static int hash_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    if (!stage_fused_features(j)) job_set_metric(j, "hash_nnz", stage_sum_metric(st, "nnz")); /* else split's */
    return 0;
}

const stage_ops_t stage_hash = {"hash", hash_start, hash_args, hash_done, 2, NULL, 0, NULL, NULL};
