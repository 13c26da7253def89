/* psi.h: the population stability index of a distribution against a
 * reference one, over the same bins, and the bin of a value.
 *
 * PSI = sum_b (q_b - p_b) * ln(q_b / p_b), with p the reference's and q
 * the current proportions. A bin empty on one side would make it
 * infinite, so each proportion is floored at MLK_PSI_EPS (the usual
 * convention, and what the numpy reference in tests/unit/test_psi.c
 * computes). Common reading: < 0.1 stable, < 0.25 moderate, else shifted.
 *
 * Bins are the model's reference bins (docs/model-format.md, reference):
 * for numbers, deciles as edges with numpy's searchsorted(side="left");
 * for the probability, 10 equal bins of [0, 1]. The server (serve/) and
 * the batch drift stage both call these. */
#ifndef MLK_PSI_H
#define MLK_PSI_H
#include <stddef.h>

#define MLK_PSI_EPS 1e-4

/* PSI of counts cur[0..nbins) against ref[0..nbins). NaN when either side
 * has no counts at all. */
double mlk_psi(const double *ref, const double *cur, size_t nbins);

/* np.searchsorted(edges, x, side="left"): the number of edges < x. */
size_t mlk_psi_bin(const double *edges, size_t nedges, double x);

/* The probability bin of p: min(floor(10 p), 9), 0 for p < 0. */
size_t mlk_psi_proba_bin(double p);

#endif
