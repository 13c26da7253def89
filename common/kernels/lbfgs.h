/* lbfgs.h: limited-memory BFGS minimisation by reverse communication.
 *
 * The caller owns the objective: the solver names a point (mlk_lbfgs_x),
 * the caller evaluates f and its gradient there however it likes (the
 * coordinator sums them over the cluster's shards) and hands them back
 * (mlk_lbfgs_tell), which names the next point or stops. So the whole
 * state lives in one object that is saved to bytes between evaluations
 * (mlk_lbfgs_encode/decode) and a restarted process resumes it exactly.
 *
 * The method is scipy's L-BFGS-B without bounds as scikit-learn's
 * LogisticRegression(solver='lbfgs') calls it: m = 10 correction pairs,
 * the two-loop recursion with the initial scaling s'y / y'y, a first
 * step of 1/||g|| along -g and of 1 afterwards, and the same stopping
 * tests: max |g_i| <= gtol (pgtol), or a relative decrease
 * (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol (scipy's factr * eps,
 * 2.2e-9), or max_iter iterations. The line search is a strong-Wolfe
 * search (Nocedal & Wright, algorithms 3.5 and 3.6: bracket, then zoom
 * by safeguarded cubic interpolation) with c1 = 1e-3 and c2 = 0.9, the
 * constants of MINPACK-2's dcsrch that L-BFGS-B uses, not dcsrch itself:
 * the accepted points satisfy the same conditions, the trial steps may
 * differ. A pair with s'y <= eps y'y is skipped, as L-BFGS-B does.
 *
 * Pure C over buffers, no global state; every operation is a fixed
 * sequence of double operations, so equal inputs give equal bytes. */
#ifndef MLK_LBFGS_H
#define MLK_LBFGS_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned m;        /* correction pairs kept, 1..100 (10) */
    double gtol;       /* stop when max |g_i| <= gtol (1e-4) */
    double ftol;       /* stop on a relative decrease <= ftol (2.220446049250313e-09) */
    unsigned max_iter; /* iterations at most, >= 1 (100) */
    unsigned max_ls;   /* evaluations per line search (20; scipy's maxls) */
} mlk_lbfgs_opts;

/* Why the solver stopped. */
typedef enum {
    MLK_LBFGS_RUNNING = 0,  /* not stopped: evaluate mlk_lbfgs_x */
    MLK_LBFGS_GTOL = 1,     /* max |g| <= gtol */
    MLK_LBFGS_FTOL = 2,     /* relative decrease <= ftol */
    MLK_LBFGS_MAXITER = 3,  /* max_iter iterations */
    MLK_LBFGS_LINESEARCH = 4 /* no step met the Wolfe conditions in max_ls evaluations */
} mlk_lbfgs_status;

typedef struct mlk_lbfgs mlk_lbfgs;

void mlk_lbfgs_opts_default(mlk_lbfgs_opts *o);

/* A solver over n variables starting at x0 (n values, copied); the first
 * point to evaluate is x0. NULL on bad options (m, max_iter, max_ls 0,
 * a negative or non-finite tolerance), n == 0, or out of memory. */
mlk_lbfgs *mlk_lbfgs_new(size_t n, const double *x0, const mlk_lbfgs_opts *o);

void mlk_lbfgs_destroy(mlk_lbfgs **ps);

/* The point to evaluate next (n values, valid until the next tell). */
const double *mlk_lbfgs_x(const mlk_lbfgs *s);

/* f and the gradient g (n values) at mlk_lbfgs_x. Returns the status:
 * MLK_LBFGS_RUNNING, evaluate mlk_lbfgs_x again; otherwise the solver has
 * stopped and mlk_lbfgs_best holds the last accepted iterate. A
 * non-finite f or g is MLOPS_EINVAL (negative) with a message; telling a
 * stopped solver is MLOPS_EINVAL too. */
int mlk_lbfgs_tell(mlk_lbfgs *s, double f, const double *g, char *err, size_t errlen);

/* The last accepted iterate (x0 before the first tell), its f, and its
 * gradient's max |g_i|; f is NaN before the first tell. */
const double *mlk_lbfgs_best(const mlk_lbfgs *s, double *f, double *gmax);

size_t mlk_lbfgs_n(const mlk_lbfgs *s);
unsigned mlk_lbfgs_iter(const mlk_lbfgs *s);   /* iterations accepted */
unsigned mlk_lbfgs_evals(const mlk_lbfgs *s);  /* tells received */
mlk_lbfgs_status mlk_lbfgs_status_of(const mlk_lbfgs *s);
const char *mlk_lbfgs_status_name(mlk_lbfgs_status st); /* "gtol", "ftol", ... */

/* The whole state as bytes (malloc'd into *buf); 0 or MLOPS_ENOMEM. */
int mlk_lbfgs_encode(const mlk_lbfgs *s, uint8_t **buf, size_t *len);
/* The state back; MLOPS_EPARSE with a message for bytes that are not one,
 * MLOPS_ENOMEM. */
int mlk_lbfgs_decode(const uint8_t *buf, size_t len, mlk_lbfgs **out, char *err, size_t errlen);

/* The point to evaluate next of an encoded state, what mlk_lbfgs_x of its
 * decode gives, copied into *x (malloc'd, *n values) without decoding
 * the rest (the history is most of a state's bytes): the header is
 * checked as mlk_lbfgs_decode checks it. MLOPS_EPARSE with a message,
 * MLOPS_ENOMEM. */
int mlk_lbfgs_peek_x(const uint8_t *buf, size_t len, double **x, size_t *n, char *err, size_t errlen);

#endif
