/* lbfgs.c: L-BFGS with a strong-Wolfe line search, driven by reverse
 * communication (see lbfgs.h for the method and its stopping tests).
 *
 * The solver is a small state machine. INIT waits for f and g at x0.
 * BRACKET and ZOOM are the two halves of the line search along d from
 * the accepted iterate x: each tell is one trial point xt = x + a d.
 * FALLBACK re-evaluates the best step found when the search ran out of
 * evaluations (its gradient was not kept), and accepts it. STOPPED
 * answers nothing. Accepting a point stores the pair (s, y), checks the
 * stopping tests and starts the next search from the two-loop
 * direction. */
#include "lbfgs.h"
#include "err.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define C1 1e-3 /* sufficient decrease (dcsrch's ftol in L-BFGS-B) */
#define C2 0.9  /* curvature (dcsrch's gtol) */
#define MAGIC "MLKL"
#define VERSION 1

enum { P_INIT = 0, P_BRACKET, P_ZOOM, P_FALLBACK, P_STOPPED };

struct mlk_lbfgs {
    size_t n;
    mlk_lbfgs_opts o;
    uint32_t phase, status, iter, evals, npairs, head, nls;
    double f, gmax;               /* at x */
    double f0, dg0;               /* the search's start: f(x), g'd */
    double a, a_prev, f_prev, dg_prev; /* bracket: this and the previous step */
    double a_lo, f_lo, dg_lo, a_hi, f_hi, dg_hi; /* zoom interval */
    double *x, *g, *d, *xt; /* n each */
    double *S, *Y;          /* m x n, ring from head */
    double *rho;            /* m: 1 / s'y */
    double *alf;            /* m scratch of the two-loop recursion (not saved) */
};

void mlk_lbfgs_opts_default(mlk_lbfgs_opts *o)
{
    o->m = 10;
    o->gtol = 1e-4;
    o->ftol = 1e7 * DBL_EPSILON; /* scipy's factr default times machine eps */
    o->max_iter = 100;
    o->max_ls = 20;
}

static int opts_ok(const mlk_lbfgs_opts *o)
{
    return o && o->m >= 1 && o->m <= 100 && o->max_iter >= 1 && o->max_ls >= 1 && o->gtol >= 0 &&
           isfinite(o->gtol) && o->ftol >= 0 && isfinite(o->ftol);
}

static mlk_lbfgs *alloc_state(size_t n, const mlk_lbfgs_opts *o)
{
    if (n == 0 || !opts_ok(o) || n > ((size_t)1 << 40) / (2 * o->m + 4)) return NULL;
    mlk_lbfgs *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n = n;
    s->o = *o;
    s->x = calloc(n, sizeof *s->x);
    s->g = calloc(n, sizeof *s->g);
    s->d = calloc(n, sizeof *s->d);
    s->xt = calloc(n, sizeof *s->xt);
    s->S = calloc(n * o->m, sizeof *s->S);
    s->Y = calloc(n * o->m, sizeof *s->Y);
    s->rho = calloc(o->m, sizeof *s->rho);
    s->alf = calloc(o->m, sizeof *s->alf);
    if (!s->x || !s->g || !s->d || !s->xt || !s->S || !s->Y || !s->rho || !s->alf) mlk_lbfgs_destroy(&s);
    return s;
}

mlk_lbfgs *mlk_lbfgs_new(size_t n, const double *x0, const mlk_lbfgs_opts *o)
{
    if (!x0) return NULL;
    mlk_lbfgs *s = alloc_state(n, o);
    if (!s) return NULL;
    memcpy(s->x, x0, n * sizeof *x0);
    memcpy(s->xt, x0, n * sizeof *x0);
    s->f = NAN;
    s->gmax = NAN;
    return s;
}

void mlk_lbfgs_destroy(mlk_lbfgs **ps)
{
    if (!ps || !*ps) return;
    mlk_lbfgs *s = *ps;
    free(s->x);
    free(s->g);
    free(s->d);
    free(s->xt);
    free(s->S);
    free(s->Y);
    free(s->rho);
    free(s->alf);
    free(s);
    *ps = NULL;
}

const double *mlk_lbfgs_x(const mlk_lbfgs *s) { return s->xt; }
size_t mlk_lbfgs_n(const mlk_lbfgs *s) { return s->n; }
unsigned mlk_lbfgs_iter(const mlk_lbfgs *s) { return s->iter; }
unsigned mlk_lbfgs_evals(const mlk_lbfgs *s) { return s->evals; }
mlk_lbfgs_status mlk_lbfgs_status_of(const mlk_lbfgs *s) { return (mlk_lbfgs_status)s->status; }

const double *mlk_lbfgs_best(const mlk_lbfgs *s, double *f, double *gmax)
{
    if (f) *f = s->f;
    if (gmax) *gmax = s->gmax;
    return s->x;
}

const char *mlk_lbfgs_status_name(mlk_lbfgs_status st)
{
    switch (st) {
    case MLK_LBFGS_RUNNING: return "running";
    case MLK_LBFGS_GTOL: return "gtol";
    case MLK_LBFGS_FTOL: return "ftol";
    case MLK_LBFGS_MAXITER: return "max_iter";
    case MLK_LBFGS_LINESEARCH: return "line search";
    }
    return "unknown";
}

/* ---- vectors --------------------------------------------------------- */

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double maxabs(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

/* xt = x + a d */
static void set_trial(mlk_lbfgs *s, double a)
{
    s->a = a;
    for (size_t i = 0; i < s->n; i++) s->xt[i] = s->x[i] + a * s->d[i];
}

/* d = -H g by the two-loop recursion over the stored pairs. */
static void direction(mlk_lbfgs *s)
{
    size_t n = s->n;
    unsigned m = s->o.m;
    double *q = s->d;
    for (size_t i = 0; i < n; i++) q[i] = s->g[i];
    for (unsigned k = s->npairs; k-- > 0;) {
        unsigned p = (s->head + k) % m;
        s->alf[p] = s->rho[p] * dot(s->S + (size_t)p * n, q, n);
        const double *y = s->Y + (size_t)p * n;
        for (size_t i = 0; i < n; i++) q[i] -= s->alf[p] * y[i];
    }
    if (s->npairs) {
        unsigned p = (s->head + s->npairs - 1) % m;
        const double *y = s->Y + (size_t)p * n;
        double gamma = 1.0 / (s->rho[p] * dot(y, y, n)); /* s'y / y'y */
        for (size_t i = 0; i < n; i++) q[i] *= gamma;
    }
    for (unsigned k = 0; k < s->npairs; k++) {
        unsigned p = (s->head + k) % m;
        double beta = s->rho[p] * dot(s->Y + (size_t)p * n, q, n);
        const double *sv = s->S + (size_t)p * n;
        for (size_t i = 0; i < n; i++) q[i] += sv[i] * (s->alf[p] - beta);
    }
    for (size_t i = 0; i < n; i++) q[i] = -q[i];
}

/* Start the line search from x along a new direction. */
static void start_search(mlk_lbfgs *s)
{
    direction(s);
    s->dg0 = dot(s->g, s->d, s->n);
    if (!(s->dg0 < 0.0)) { /* not a descent direction: forget the pairs */
        s->npairs = 0;
        direction(s);
        s->dg0 = dot(s->g, s->d, s->n);
    }
    double a0 = 1.0;
    if (s->npairs == 0) a0 = 1.0 / sqrt(dot(s->d, s->d, s->n)); /* L-BFGS-B's first step */
    s->f0 = s->f;
    s->a_prev = 0.0;
    s->f_prev = s->f;
    s->dg_prev = s->dg0;
    s->nls = 0;
    s->phase = P_BRACKET;
    set_trial(s, a0);
}

static void stop(mlk_lbfgs *s, mlk_lbfgs_status st)
{
    s->status = st;
    s->phase = P_STOPPED;
    memcpy(s->xt, s->x, s->n * sizeof *s->x);
}

/* The trial point (ft, gt) is the next iterate. */
static void accept(mlk_lbfgs *s, double ft, const double *gt)
{
    size_t n = s->n;
    unsigned m = s->o.m;
    unsigned p = s->npairs < m ? (s->head + s->npairs) % m : s->head;
    double *sv = s->S + (size_t)p * n, *yv = s->Y + (size_t)p * n;
    for (size_t i = 0; i < n; i++) {
        sv[i] = s->xt[i] - s->x[i];
        yv[i] = gt[i] - s->g[i];
    }
    double sy = dot(sv, yv, n), yy = dot(yv, yv, n);
    if (sy > DBL_EPSILON * yy) { /* keep the pair; else L-BFGS-B skips it */
        s->rho[p] = 1.0 / sy;
        if (s->npairs < m) s->npairs++;
        else s->head = (s->head + 1) % m;
    }
    double fold = s->f;
    memcpy(s->x, s->xt, n * sizeof *s->x);
    memcpy(s->g, gt, n * sizeof *gt);
    s->f = ft;
    s->gmax = maxabs(gt, n);
    s->iter++;
    if (s->gmax <= s->o.gtol) return stop(s, MLK_LBFGS_GTOL);
    double scale = fmax(fmax(fabs(fold), fabs(ft)), 1.0);
    if ((fold - ft) / scale <= s->o.ftol) return stop(s, MLK_LBFGS_FTOL);
    if (s->iter >= s->o.max_iter) return stop(s, MLK_LBFGS_MAXITER);
    start_search(s);
}

/* A step inside (lo, hi) by cubic interpolation of the two ends, kept
 * at least a tenth of the interval from either end (else bisection). */
static double interpolate(double a1, double f1, double d1, double a2, double f2, double d2)
{
    double lo = fmin(a1, a2), hi = fmax(a1, a2), w = hi - lo;
    double t1 = d1 + d2 - 3.0 * (f1 - f2) / (a1 - a2);
    double disc = t1 * t1 - d1 * d2;
    double a = NAN;
    if (disc >= 0.0) {
        double t2 = copysign(sqrt(disc), a2 - a1);
        double den = d2 - d1 + 2.0 * t2;
        if (den != 0.0) a = a2 - (a2 - a1) * (d2 + t2 - t1) / den;
    }
    if (!isfinite(a) || a < lo + 0.1 * w || a > hi - 0.1 * w) a = lo + 0.5 * w;
    return a;
}

/* Out of evaluations: the best step so far (lo, which met the sufficient
 * decrease) is evaluated once more and accepted; without one, stop. */
static void give_up(mlk_lbfgs *s, double lo)
{
    if (lo > 0.0) {
        s->phase = P_FALLBACK;
        set_trial(s, lo);
        return;
    }
    stop(s, MLK_LBFGS_LINESEARCH);
}

static void zoom_step(mlk_lbfgs *s)
{
    if (s->nls >= s->o.max_ls || fabs(s->a_hi - s->a_lo) <= DBL_EPSILON * fmax(s->a_lo, 1e-300))
        return give_up(s, s->a_lo);
    s->phase = P_ZOOM;
    set_trial(s, interpolate(s->a_lo, s->f_lo, s->dg_lo, s->a_hi, s->f_hi, s->dg_hi));
}

int mlk_lbfgs_tell(mlk_lbfgs *s, double ft, const double *gt, char *err, size_t errlen)
{
    if (!s || !gt) return mlops_seterr(err, errlen, MLOPS_EINVAL, "lbfgs: state or gradient is NULL");
    if (s->phase == P_STOPPED)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "lbfgs: the solver has stopped (%s)",
                            mlk_lbfgs_status_name((mlk_lbfgs_status)s->status));
    if (!isfinite(ft))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "lbfgs: objective is %g at evaluation %u", ft,
                            s->evals + 1);
    for (size_t i = 0; i < s->n; i++)
        if (!isfinite(gt[i]))
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "lbfgs: gradient entry %zu is %g at evaluation %u", i, gt[i],
                                s->evals + 1);
    s->evals++;
    if (s->phase == P_INIT) {
        s->f = ft;
        memcpy(s->g, gt, s->n * sizeof *gt);
        s->gmax = maxabs(gt, s->n);
        if (s->gmax <= s->o.gtol) stop(s, MLK_LBFGS_GTOL);
        else start_search(s);
        return (int)s->status;
    }
    if (s->phase == P_FALLBACK) {
        accept(s, ft, gt);
        return (int)s->status;
    }
    s->nls++;
    double a = s->a, dg = dot(gt, s->d, s->n);
    int armijo = ft <= s->f0 + C1 * a * s->dg0;
    int curv = fabs(dg) <= -C2 * s->dg0;
    if (s->phase == P_BRACKET) {
        if (!armijo || (s->nls > 1 && ft >= s->f_prev)) {
            s->a_lo = s->a_prev, s->f_lo = s->f_prev, s->dg_lo = s->dg_prev;
            s->a_hi = a, s->f_hi = ft, s->dg_hi = dg;
            zoom_step(s);
        } else if (curv) {
            accept(s, ft, gt);
        } else if (dg >= 0.0) {
            s->a_lo = a, s->f_lo = ft, s->dg_lo = dg;
            s->a_hi = s->a_prev, s->f_hi = s->f_prev, s->dg_hi = s->dg_prev;
            zoom_step(s);
        } else if (s->nls >= s->o.max_ls) {
            give_up(s, a);
        } else {
            s->a_prev = a, s->f_prev = ft, s->dg_prev = dg;
            set_trial(s, 2.0 * a);
        }
        return (int)s->status;
    }
    /* zoom */
    if (!armijo || ft >= s->f_lo) {
        s->a_hi = a, s->f_hi = ft, s->dg_hi = dg;
    } else {
        if (curv) {
            accept(s, ft, gt);
            return (int)s->status;
        }
        if (dg * (s->a_hi - s->a_lo) >= 0.0) {
            s->a_hi = s->a_lo, s->f_hi = s->f_lo, s->dg_hi = s->dg_lo;
        }
        s->a_lo = a, s->f_lo = ft, s->dg_lo = dg;
    }
    zoom_step(s);
    return (int)s->status;
}

/* ---- bytes ------------------------------------------------------------ */

#define NU32 8  /* phase, status, iter, evals, npairs, head, nls, reserved */
#define NF64 14 /* f, gmax, f0, dg0, a, a_prev, f_prev, dg_prev, lo x3, hi x3 */

static size_t enc_len(size_t n, unsigned m)
{
    return 4 + 4 + 8 + 4 * 3 + 8 * 3 + NU32 * 4 + NF64 * 8 + 8 * (4 * n + 2 * (size_t)m * n + m);
}

int mlk_lbfgs_encode(const mlk_lbfgs *s, uint8_t **buf, size_t *len)
{
    size_t L = enc_len(s->n, s->o.m);
    uint8_t *b = malloc(L), *p = b;
    if (!b) return MLOPS_ENOMEM;
#define PUT(v) (memcpy(p, &(v), sizeof(v)), p += sizeof(v))
    uint32_t ver = VERSION, u[NU32] = {s->phase, s->status, s->iter, s->evals, s->npairs, s->head, s->nls, 0};
    uint64_t n = s->n;
    double dv[NF64] = {s->f, s->gmax, s->f0, s->dg0, s->a, s->a_prev, s->f_prev, s->dg_prev,
                       s->a_lo, s->f_lo, s->dg_lo, s->a_hi, s->f_hi, s->dg_hi};
    memcpy(p, MAGIC, 4), p += 4;
    PUT(ver);
    PUT(n);
    PUT(s->o.m);
    PUT(s->o.max_iter);
    PUT(s->o.max_ls);
    PUT(s->o.gtol);
    PUT(s->o.ftol);
    double pad = 0.0;
    PUT(pad);
    memcpy(p, u, sizeof u), p += sizeof u;
    memcpy(p, dv, sizeof dv), p += sizeof dv;
#undef PUT
    const double *arr[] = {s->x, s->g, s->d, s->xt};
    for (int i = 0; i < 4; i++) memcpy(p, arr[i], s->n * 8), p += s->n * 8;
    memcpy(p, s->S, s->n * s->o.m * 8), p += s->n * s->o.m * 8;
    memcpy(p, s->Y, s->n * s->o.m * 8), p += s->n * s->o.m * 8;
    memcpy(p, s->rho, s->o.m * 8);
    *buf = b;
    *len = L;
    return 0;
}

/* The header of an encoded state: n, the options, the words and the
 * scalars, and where the arrays start. */
typedef struct {
    uint64_t n;
    mlk_lbfgs_opts o;
    uint32_t u[NU32];
    double dv[NF64];
    const uint8_t *arrays;
} header_t;

/* h from buf, checked. 0, or MLOPS_EPARSE with a message. */
static int read_header(const uint8_t *buf, size_t len, header_t *h, char *err, size_t errlen)
{
    size_t head = 4 + 4 + 8 + 12 + 24;
    if (!buf || len < head + NU32 * 4 + NF64 * 8 || memcmp(buf, MAGIC, 4) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "lbfgs: not a solver state (%zu bytes)", len);
    const uint8_t *p = buf + 4;
    uint32_t ver;
    uint64_t n;
    mlk_lbfgs_opts o;
    double pad;
#define GET(v) (memcpy(&(v), p, sizeof(v)), p += sizeof(v))
    GET(ver);
    GET(n);
    GET(o.m);
    GET(o.max_iter);
    GET(o.max_ls);
    GET(o.gtol);
    GET(o.ftol);
    static const uint8_t zero[sizeof pad];
    int pad_ok = memcmp(p, zero, sizeof pad) == 0; /* written as zeros: a state is kept exactly */
    GET(pad);
#undef GET
    (void)pad;
    if (ver != VERSION || !pad_ok || !opts_ok(&o) || n == 0 || n > ((uint64_t)1 << 32) ||
        len != enc_len((size_t)n, o.m))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "lbfgs: damaged solver state (%zu bytes)", len);
    uint32_t *u = h->u;
    memcpy(u, p, NU32 * 4), p += NU32 * 4;
    memcpy(h->dv, p, NF64 * 8), p += NF64 * 8;
    if (u[0] > P_STOPPED || u[1] > MLK_LBFGS_LINESEARCH || u[4] > o.m || u[5] >= o.m || u[7] != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "lbfgs: damaged solver state (phase %u)", u[0]);
    h->n = n;
    h->o = o;
    h->arrays = p;
    return 0;
}

int mlk_lbfgs_peek_x(const uint8_t *buf, size_t len, double **x, size_t *n, char *err, size_t errlen)
{
    *x = NULL;
    *n = 0;
    header_t h;
    int rc = read_header(buf, len, &h, err, errlen);
    if (rc) return rc;
    size_t nn = (size_t)h.n;
    double *v = malloc(nn * 8);
    if (!v) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "lbfgs: out of memory");
    memcpy(v, h.arrays + 3 * nn * 8, nn * 8); /* after x, g and d: xt, what mlk_lbfgs_x gives */
    *x = v;
    *n = nn;
    return 0;
}

int mlk_lbfgs_decode(const uint8_t *buf, size_t len, mlk_lbfgs **out, char *err, size_t errlen)
{
    *out = NULL;
    header_t h;
    int rc = read_header(buf, len, &h, err, errlen);
    if (rc) return rc;
    const mlk_lbfgs_opts o = h.o;
    const uint32_t *u = h.u;
    const double *dv = h.dv;
    const uint8_t *p = h.arrays;
    mlk_lbfgs *s = alloc_state((size_t)h.n, &o);
    if (!s) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "lbfgs: out of memory");
    s->phase = u[0], s->status = u[1], s->iter = u[2], s->evals = u[3];
    s->npairs = u[4], s->head = u[5], s->nls = u[6];
    s->f = dv[0], s->gmax = dv[1], s->f0 = dv[2], s->dg0 = dv[3], s->a = dv[4];
    s->a_prev = dv[5], s->f_prev = dv[6], s->dg_prev = dv[7];
    s->a_lo = dv[8], s->f_lo = dv[9], s->dg_lo = dv[10];
    s->a_hi = dv[11], s->f_hi = dv[12], s->dg_hi = dv[13];
    double *arr[] = {s->x, s->g, s->d, s->xt};
    for (int i = 0; i < 4; i++) memcpy(arr[i], p, s->n * 8), p += s->n * 8;
    memcpy(s->S, p, s->n * o.m * 8), p += s->n * o.m * 8;
    memcpy(s->Y, p, s->n * o.m * 8), p += s->n * o.m * 8;
    memcpy(s->rho, p, o.m * 8);
    *out = s;
    return 0;
}
