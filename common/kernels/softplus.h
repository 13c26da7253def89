/* softplus.h: the binary logistic loss of a block of scores and its
 * derivative per score, with exp and log1p of its own.
 *
 * For score z and label y in {0, 1}:
 *   loss  = log(1 + e^z) - y z            (scikit-learn's HalfBinomialLoss)
 *   deriv = 1 / (1 + e^-z) - y            (the sigmoid minus the label)
 * both from one t = e^-|z|, without overflow or cancellation:
 * log(1 + e^z) = max(z, 0) + log1p(t), the sigmoid 1 / (1 + t) from 0
 * up and t / (1 + t) below.
 *
 * Why not libm's exp and log1p: one call of each per row was most of an
 * L-BFGS evaluation's time (glibc's log1p alone 15% of a fit's samples),
 * and a call cannot be vectorised. These are straight-line polynomials in
 * plain C (no table, no branch: a select per lane), so the compiler runs
 * a block's rows two at a time with SSE2, and they are built from IEEE
 * additions, multiplications and divisions only, so they give the same
 * bits on every x86-64 (glibc picks an FMA variant or not by CPU).
 * Accuracy, checked against glibc by tests/unit/test_softplus.c: exp
 * within 2 ulp on [-700, 0], log1p within 2 ulp on [0, 1]. A score of
 * magnitude over 700 takes e^-700 for t: the loss and derivative then
 * differ from exact ones by less than 1e-300. */
#ifndef MLK_SOFTPLUS_H
#define MLK_SOFTPLUS_H
#include <stddef.h>

/* e^x for x in [-700, 0] (x is clamped to it). */
double mlk_exp_neg(double x);

/* log(1 + t) for t in [0, 1]. */
double mlk_log1p_unit(double t);

/* For rows 0..n-1 with scores z[i] and labels yy[i] (0.0 or 1.0):
 * loss[i] and deriv[i] as above. The same bits as n calls with n = 1. */
void mlk_softplus_block(const double *z, const double *yy, size_t n, double *loss, double *deriv);

#endif
