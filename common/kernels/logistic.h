/* logistic.h: the summed log loss of a logistic-regression model over a
 * shard, and its gradient: the per-shard part of a full-batch objective
 * (the L-BFGS solver, lbfgs.h, sums the shards' parts).
 *
 * The model and the rows are those of model.h and sgd.h (binary: one
 * vector scoring class 1; K > 2: softmax over K vectors). The loss is
 * scikit-learn's, with no shortcuts: binary log(1 + e^z) - y z
 * (HalfBinomialLoss; softplus.h, with its own exp and log1p, each
 * within 2 ulp), multinomial logsumexp(z) - z_y (HalfMultinomialLoss,
 * libm's exp and log); no penalty (the caller adds ½‖w‖²/C). A hashed
 * input no row holds gets no gradient, so the caller can keep and send
 * only the inputs the rows touch. */
#ifndef MLK_LOGISTIC_H
#define MLK_LOGISTIC_H
#include "fpack.h"
#include "model.h"
#include "sgd.h"
#include <stdint.h>

/* Add each row's loss to *loss and its gradient to gw (m->dim * n_vec
 * values laid out like m->w) and gb (n_vec), all summed over the rows in
 * storage order. touched: NULL, or m->n_features flags set to 1 for each
 * hashed input some row holds. MLOPS_EINVAL with a message for a data
 * shape that does not match the model, an index or label out of range. */
int mlk_logistic_loss_grad(const mlk_model *m, const mlk_sgd_data *d, double *loss, double *gw,
                           double *gb, uint8_t *touched, char *err, size_t errlen);

/* The same over the training rows (test flag 0) of a packed shard p
 * (fpack.h; off its record offsets, as mlk_fpack_open gives them, so
 * every local column and label is checked; each training row's label
 * must be a class, as wk_packed_check_labels checks), in record order,
 * with the weights in the shard's column space: wl[c * kv + k] the
 * weight of its column c (global column p->cols[c]), wd (n_dense * kv)
 * and b (kv) laid out as in mlk_model. Adds into gl (ncols * kv), gd
 * (n_dense * kv) and gb (kv), and sets tl[c] = 1 for each column some
 * training row holds: the sums, bit for bit, that mlk_logistic_loss_grad
 * gives over the shard's training rows decoded (mlk_fpack_to_features),
 * with no array of n_features entries. MLOPS_EINVAL for kv out of
 * 1..65536; MLOPS_ENOMEM. */
int mlk_logistic_loss_grad_packed(const mlk_fpack *p, const size_t *off, size_t kv, const double *wl,
                                  const double *wd, const double *b, double *loss, double *gl, double *gd,
                                  double *gb, uint8_t *tl, char *err, size_t errlen);

#endif
