/* mlk_psi_tool: the PSI kernel (common/kernels/psi.h) for
 * tests/ref/test_psi_ref.py. Reads cases from stdin, one per line:
 *   psi N r_0 .. r_N-1 c_0 .. c_N-1    -> the PSI, %.17g
 *   bin E e_0 .. e_E-1 x               -> mlk_psi_bin(edges, E, x)
 *   pbin p                             -> mlk_psi_proba_bin(p)
 * and writes one answer line per case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psi.h"

int main(void)
{
    char op[8];
    while (scanf("%7s", op) == 1) {
        if (!strcmp(op, "psi")) {
            size_t n;
            if (scanf("%zu", &n) != 1 || n > 100000) return 2;
            double *r = malloc((n + 1) * sizeof *r), *c = malloc((n + 1) * sizeof *c);
            if (!r || !c) return 2;
            for (size_t i = 0; i < n; i++)
                if (scanf("%lf", &r[i]) != 1) return 2;
            for (size_t i = 0; i < n; i++)
                if (scanf("%lf", &c[i]) != 1) return 2;
            printf("%.17g\n", mlk_psi(r, c, n));
            free(r);
            free(c);
        } else if (!strcmp(op, "bin")) {
            size_t n;
            if (scanf("%zu", &n) != 1 || n > 100000) return 2;
            double *e = malloc((n + 1) * sizeof *e), x;
            if (!e) return 2;
            for (size_t i = 0; i < n; i++)
                if (scanf("%lf", &e[i]) != 1) return 2;
            if (scanf("%lf", &x) != 1) return 2;
            printf("%zu\n", mlk_psi_bin(e, n, x));
            free(e);
        } else if (!strcmp(op, "pbin")) {
            double p;
            if (scanf("%lf", &p) != 1) return 2;
            printf("%zu\n", mlk_psi_proba_bin(p));
        } else {
            return 2;
        }
    }
    return 0;
}
