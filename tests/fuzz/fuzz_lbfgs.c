/* fuzz_lbfgs.c: the L-BFGS solver's saved state (lbfgs.h), which the
 * lbfgs train stage keeps in its journalled blob and reads back after a
 * coordinator restart, on any bytes.
 *
 * Properties checked, beyond "no crash, no leak, no UB": a failing decode
 * leaves no output and a one-line message; what decodes encodes to the
 * same bytes (the state is kept exactly); a decoded running solver takes
 * one more evaluation (the gradient of ½‖x‖² at its point) and answers a
 * status or a one-line error, and its state still encodes and decodes;
 * mlk_lbfgs_peek_x takes exactly the states that decode, and gives their
 * point. */
#include "fuzz.h"

#include <math.h>
#include <string.h>

#include "err.h"
#include "lbfgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    mlk_lbfgs *s = NULL;
    int rc = mlk_lbfgs_decode(data, size, &s, err, sizeof err);
    /* the point alone (the coordinator's read for the tasks): taken
     * exactly when the whole state decodes, and the same point */
    double *px = NULL;
    size_t pn = 0;
    char perr[512] = "";
    int prc = mlk_lbfgs_peek_x(data, size, &px, &pn, perr, sizeof perr);
    FUZZ_CHECK((prc == 0) == (rc == 0));
    FUZZ_CHECK(prc == 0 || (px == NULL && perr[0] != 0 && strchr(perr, '\n') == NULL));
    if (rc == 0) FUZZ_CHECK(pn == mlk_lbfgs_n(s) && memcmp(px, mlk_lbfgs_x(s), pn * sizeof *px) == 0);
    free(px);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && s == NULL && err[0] != 0 && strchr(err, '\n') == NULL);
        return 0;
    }
    uint8_t *e = NULL;
    size_t n = 0;
    FUZZ_CHECK(mlk_lbfgs_encode(s, &e, &n) == 0);
    FUZZ_CHECK(n == size && memcmp(e, data, n) == 0);
    free(e);
    size_t dim = mlk_lbfgs_n(s);
    if (mlk_lbfgs_status_of(s) == MLK_LBFGS_RUNNING && dim <= ((size_t)1 << 20)) {
        const double *x = mlk_lbfgs_x(s);
        double *g = malloc(dim * sizeof *g), f = 0;
        FUZZ_CHECK(g != NULL);
        for (size_t i = 0; i < dim; i++) {
            g[i] = x[i];
            f += 0.5 * x[i] * x[i];
        }
        err[0] = 0;
        rc = mlk_lbfgs_tell(s, f, g, err, sizeof err);
        FUZZ_CHECK(rc >= 0 || (err[0] != 0 && strchr(err, '\n') == NULL));
        free(g);
        FUZZ_CHECK(mlk_lbfgs_encode(s, &e, &n) == 0);
        mlk_lbfgs *t = NULL;
        FUZZ_CHECK(mlk_lbfgs_decode(e, n, &t, err, sizeof err) == 0);
        mlk_lbfgs_destroy(&t);
        free(e);
    }
    mlk_lbfgs_destroy(&s);
    FUZZ_CHECK(s == NULL);
    return 0;
}
