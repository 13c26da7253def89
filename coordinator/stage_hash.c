/* stage_hash.c: the categorical columns through the scikit-learn
 * identical FeatureHasher; each shard becomes a feature shard (fshard.h):
 * hashed CSR + the (scaled) numeric columns as the dense part + class
 * indexes of the label. One phase, a task per shard.
 * Args: u32 n_features, u32 alternate_sign, u32 nclasses, class strings. */
#include "bytes.h"
#include "err.h"
#include "stages.h"
#include <stdlib.h>

static int hash_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "hash: no input stage");
    int rc = stage_set_tasks(st, in->ntasks, "hash");
    if (!rc) stage_set_output_keys(j, st, "/");
    return rc;
}

static int hash_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in || t >= in->ntasks) return mlops_seterr(err, errlen, MLOPS_EINVAL, "hash: bad task");
    int rc = args_add_input(out, in->tasks[t].output_key);
    if (rc) return rc;
    bw_t w;
    bw_init(&w);
    /* no hash section: no sparse part (numeric columns only) */
    bw_u32(&w, j->spec->has_hash ? j->spec->hash.n_features : 0);
    bw_u32(&w, (uint32_t)j->spec->hash.alternate_sign);
    bw_u32(&w, (uint32_t)job_nclasses(j));
    for (size_t i = 0; i < job_nclasses(j); i++) bw_str(&w, job_class(j, i));
    out->args = bw_take(&w, &out->args_len);
    return out->args ? 0 : MLOPS_ENOMEM;
}

static int hash_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    job_set_metric(j, "hash_nnz", stage_sum_metric(st, "nnz"));
    return 0;
}

const stage_ops_t stage_hash = {"hash", hash_start, hash_args, hash_done, 2, NULL};
