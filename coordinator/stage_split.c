/* stage_split.c: marks every row train or test; writes feature shards
 * with the test flag. The decision depends on the row's rank among the
 * rows entering the split (shard offsets from the previous stage's row
 * counts) and the seed, never on the sharding or the workers:
 *   method hash:    a keyed permutation of [0, N); test iff perm(rank) <
 *                   n_test (n_test exactly as scikit-learn sizes it).
 *   method sklearn: train_test_split(test_size, random_state) exactly;
 *                   the test set is computed here (MT19937 permutation)
 *                   and each task gets its slice of the flags.
 * Fused (stage_fused_features: CSV with scale, hash and split) the tasks
 * are "featurize": each reads the frame shard scale and hash would have
 * read, applies the scale statistics, hashes and flags the rows, and
 * writes the split feature shard once, where the three stages wrote three
 * copies (the bytes are the same: the same kernels in the same order).
 * With a profile stage, a featurize task also answers the profile's
 * decile round 0 and counts its categories (stage_profile_featurize_args:
 * its result).
 * Args: SplitArgs, or FeaturizeArgs (proto/tasks.proto).
 * blob: u32 method, u64 seed, u64 N, u64 n_test, u64 ntasks,
 *       u64 first_rank[ntasks], and for sklearn u8 flags[N]. */
#include "bytes.h"
#include "err.h"
#include "split.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <stdlib.h>
#include <string.h>

static int split_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    if (!in) return mlops_seterr(err, errlen, MLOPS_EINVAL, "split: no input stage");
    uint64_t n = stage_total_rows(in), n_test, n_train;
    int rc = mlk_split_sizes(n, j->spec->split.test_size, -1, &n_test, &n_train, err, errlen);
    if (rc) return rc;
    int sk = j->spec->split.method == MLOPS_SPLIT_SKLEARN;
    bw_t w;
    bw_init(&w);
    bw_u32(&w, (uint32_t)sk);
    bw_u64(&w, j->spec->split.seed);
    bw_u64(&w, n);
    bw_u64(&w, n_test);
    bw_u64(&w, in->ntasks);
    uint64_t rank = 0;
    for (size_t t = 0; t < in->ntasks; t++) {
        bw_u64(&w, rank);
        rank += in->tasks[t].rows;
    }
    if (sk) {
        int64_t *train = malloc((n_train ? n_train : 1) * sizeof *train);
        int64_t *test = malloc((n_test ? n_test : 1) * sizeof *test);
        uint8_t *flags = calloc(n ? n : 1, 1);
        if (!train || !test || !flags) rc = MLOPS_ENOMEM;
        else rc = mlk_split_sklearn((int64_t)j->spec->split.seed, n, n_test, train, test, err, errlen);
        for (uint64_t i = 0; !rc && i < n_test; i++) flags[test[i]] = 1;
        if (!rc) bw_put(&w, flags, n);
        free(train);
        free(test);
        free(flags);
        if (rc) {
            bw_free(&w);
            return rc;
        }
    }
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    job_set_metric(j, "rows_train", (double)n_train);
    job_set_metric(j, "rows_test", (double)n_test);
    if ((rc = stage_set_tasks(st, in->ntasks, stage_fused_features(j) ? "featurize" : "split")) != 0) return rc;
    stage_set_output_keys(j, st, "/");
    return 0;
}

static int split_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    stage_t *in = stage_input_of(j, st);
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    uint32_t sk = br_u32(&r);
    uint64_t seed = br_u64(&r), n = br_u64(&r), n_test = br_u64(&r), nt = br_u64(&r);
    if (r.err || !in || t >= nt || nt != in->ntasks ||
        st->blob_len != 36 + nt * 8 + (sk ? n : 0))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "split plan is damaged");
    uint64_t first;
    memcpy(&first, st->blob + 36 + t * 8, 8);
    uint64_t count = in->tasks[t].rows;
    if (first + count > n) return mlops_seterr(err, errlen, MLOPS_EPARSE, "split plan is damaged");
    int rc = args_add_input(out, in->tasks[t].output_key);
    if (rc) return rc;
    Mlops__Tasks__SplitArgs a = MLOPS__TASKS__SPLIT_ARGS__INIT;
    a.sklearn = sk != 0;
    a.seed = seed;
    a.rows = n;
    a.rows_test = n_test;
    a.first_rank = first;
    a.count = count;
    if (sk) {
        a.test_flags.data = st->blob + 36 + nt * 8 + first;
        a.test_flags.len = (size_t)count;
    }
    if (strcmp(st->kind, "featurize")) return args_pack(out, &a.base);
    /* the scale stage's blob: u32 phase, u32 ncols, f64 mean[ncols], f64 scale[ncols] */
    const stage_t *sc = job_stage(j, "scale");
    br_t sr;
    br_init(&sr, sc ? sc->blob : NULL, sc ? sc->blob_len : 0);
    uint32_t phase = br_u32(&sr), ncols = br_u32(&sr);
    double *mean = br_f64s(&sr, ncols), *scale = br_f64s(&sr, ncols);
    Mlops__Tasks__ScaleApplyArgs sa = MLOPS__TASKS__SCALE_APPLY_ARGS__INIT;
    Mlops__Tasks__HashArgs ha = MLOPS__TASKS__HASH_ARGS__INIT;
    Mlops__Tasks__FeaturizeArgs fa = MLOPS__TASKS__FEATURIZE_ARGS__INIT;
    char **cls = NULL;
    if (!sc || !br_done(&sr) || phase != 1) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "scale plan is damaged");
    else if (!(cls = stage_hash_args(j, &ha))) rc = MLOPS_ENOMEM;
    else {
        sa.n_mean = sa.n_scale = ncols;
        sa.mean = mean;
        sa.scale = scale;
        fa.scale = &sa;
        fa.hash = &ha;
        fa.split = &a;
        rc = stage_profile_featurize_args(j, &fa);
        if (!rc) rc = args_pack(out, &fa.base);
        free(fa.profile_request.data);
    }
    free(cls);
    free(mean);
    free(scale);
    return rc;
}

static int split_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    if (!strcmp(st->kind, "featurize")) job_set_metric(j, "hash_nnz", stage_sum_metric(st, "nnz"));
    /* the workers' count must equal the planned size */
    double counted = stage_sum_metric(st, "rows_test");
    if (counted != job_metric(j, "rows_test", -1))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "split: %.0f test rows marked, %.0f planned", counted,
                            job_metric(j, "rows_test", -1));
    return 0;
}

const stage_ops_t stage_split = {"split", split_start, split_args, split_done, 2, NULL, 0, NULL, NULL};
