/* sgd_multi.h: one SGD epoch of several models over one packed shard
 * (fpack.h) in a single pass, for cross-validation and search, where a
 * shard's (trial, fold) instances each train on their own rows of it.
 *
 * One model's epoch is a chain: each row's update waits on the last
 * one's (the dense weights are in every row), so a single model leaves
 * the core mostly waiting on latency. The chains of different models
 * are independent: the pass interleaves the models' steps (step s of
 * every model of a group, then step s + 1), so that the out-of-order
 * core can overlap them (on the loaded 2-CPU box it measured about even
 * with one model at a time: sgd_multi.c), and models that visit the
 * same rows in the same order (the trials of one fold) share one
 * shuffled order and one read of each record. Each model's own arithmetic is the sequence
 * mlk_sgd_train_packed performs, so each model, its t, n_seen and loss
 * are the bits training it alone gives.
 *
 * Interleaved: binary models with one row per step and one epoch per
 * call (plain SGD with any schedule, and adagrad); any other model
 * (multiclass, several epochs) is trained alone by
 * mlk_sgd_train_packed, in order, with the same result. */
#ifndef MLK_SGD_MULTI_H
#define MLK_SGD_MULTI_H
#include "fpack.h"
#include "model.h"
#include "sgd.h"
#include <stddef.h>

/* One model of a pass: trained in place over the records at
 * off[0..n-1] of the shard, in that order before any shuffle, with
 * options o (as mlk_sgd_train_packed(m, p, off, n, &o, loss, ...)). */
typedef struct {
    mlk_cmodel *m;
    const size_t *off;
    size_t n;
    mlk_sgd_opts o;
    double *loss; /* NULL, or o.epochs values: each epoch's mean loss */
} mlk_sgd_inst;

/* Train every instance of in[0..ninst-1] over p (see the top). 0, or
 * mlk_sgd_train_packed's error for the first instance it fails for,
 * with *bad (if non-NULL) set to that instance's index and err holding
 * the message training it alone gives; the other models may be partly
 * trained then. */
int mlk_sgd_multi_train_packed(mlk_sgd_inst *in, size_t ninst, const mlk_fpack *p, size_t *bad,
                               char *err, size_t errlen);

#endif
