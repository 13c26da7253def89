/* logistic.h: the summed log loss of a logistic-regression model over a
 * shard, and its gradient: the per-shard part of a full-batch objective
 * (the L-BFGS solver, lbfgs.h, sums the shards' parts).
 *
 * The model and the rows are those of model.h and sgd.h (binary: one
 * vector scoring class 1; K > 2: softmax over K vectors). The loss is
 * scikit-learn's exactly, with no shortcuts: binary log(1 + e^z) - y z
 * (HalfBinomialLoss), multinomial logsumexp(z) - z_y
 * (HalfMultinomialLoss); no penalty (the caller adds ½‖w‖²/C). A hashed
 * input no row holds gets no gradient, so the caller can keep and send
 * only the inputs the rows touch. */
#ifndef MLK_LOGISTIC_H
#define MLK_LOGISTIC_H
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

#endif
