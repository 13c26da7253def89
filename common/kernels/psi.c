/* psi.c: see psi.h. Sums run in bin order, so a batch stage summing
 * counts per shard in shard order gets the same bits as one pass. */
#include "psi.h"
#include <math.h>

double mlk_psi(const double *ref, const double *cur, size_t nbins)
{
    double sr = 0, sc = 0;
    for (size_t b = 0; b < nbins; b++) {
        sr += ref[b];
        sc += cur[b];
    }
    if (!(sr > 0) || !(sc > 0)) return NAN;
    double psi = 0;
    for (size_t b = 0; b < nbins; b++) {
        double p = ref[b] / sr, q = cur[b] / sc;
        if (p < MLK_PSI_EPS) p = MLK_PSI_EPS;
        if (q < MLK_PSI_EPS) q = MLK_PSI_EPS;
        psi += (q - p) * log(q / p);
    }
    return psi;
}

size_t mlk_psi_bin(const double *edges, size_t nedges, double x)
{
    size_t lo = 0, hi = nedges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (edges[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

size_t mlk_psi_proba_bin(double p)
{
    if (!(p > 0)) return 0;
    double b = floor(p * 10);
    return b >= 9 ? 9 : (size_t)b;
}
