/* softplus.c: the binary logistic loss and its derivative for a block of
 * scores (softplus.h), with exp and log1p written here as polynomials.
 *
 * exp(x): x = k ln2 + r with k the nearest integer to x / ln2 (by adding
 * 1.5 * 2^52, which also leaves k in the low bits), |r| <= ln2 / 2 from
 * a two-part ln2 (k ln2_hi exact), e^r by its Taylor series to degree 13
 * (the first term left out is below 2^-56 of the value; Estrin's
 * scheme), times 2^k built
 * from k's bits (k >= -1010: always a normal number).
 *
 * log1p(t), t in [0, 1]: t below 1/2 is f = t itself, exact; from 1/2 up
 * 1 + t = 2 (1 + f) with f = (t - 1) / 2, exact too (Sterbenz). Then
 * log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f), the
 * identity fdlibm's log1p uses, with R the series of 2 atanh(s) / s - 2
 * to z^12 (|s| <= 1/5: the first term left out is below 2^-60), plus
 * ln2 (two parts) for the upper half. */
#include "softplus.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LN2_HI 6.93147180369123816490e-01 /* 0x3fe62e42fee00000: 32 bits */
#define LN2_LO 1.90821492927058770002e-10
#define INV_LN2 1.44269504088896338700e+00
#define ROUND_MAGIC 0x1.8p52

static inline double exp_neg(double x)
{
    x = x < -700.0 ? -700.0 : x;
    x = x > 0.0 ? 0.0 : x;
    double t = x * INV_LN2 + ROUND_MAGIC;
    double kd = t - ROUND_MAGIC;
    double r = (x - kd * LN2_HI) - kd * LN2_LO;
    /* Estrin's scheme: chains of 5 steps where Horner's had 14 (the
     * loop was bound by their latency) */
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double a1 = 0.5 + r * (1.0 / 6.0), a2 = 1.0 / 24.0 + r * (1.0 / 120.0);
    double a3 = 1.0 / 720.0 + r * (1.0 / 5040.0), a4 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
    double a5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0), a6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
    double b1 = a2 + r2 * a3, b2 = a4 + r2 * a5;
    /* e^r - 1 first, then the 1: one rounding at 1's scale */
    double q = (r + r2 * a1) + r4 * b1 + r8 * (b2 + r4 * a6);
    double p = 1.0 + q;
    uint64_t tb, sb;
    memcpy(&tb, &t, 8);
    /* t's bits less ROUND_MAGIC's are k (two's complement) */
    sb = (tb - (uint64_t)0x4338000000000000ULL + 1023) << 52;
    double scale;
    memcpy(&scale, &sb, 8);
    return p * scale;
}

static inline double log1p_unit(double t)
{
    /* both computed, then selected: a select of values is what the
     * vectoriser takes (an operation under a condition it may not run
     * early, as it could raise a floating-point flag) */
    double upper = (t - 1.0) * 0.5;
    double hi = t >= 0.5 ? 1.0 : 0.0;
    double f = t >= 0.5 ? upper : t;
    double s = f / (2.0 + f), z = s * s;
    double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
    double a0 = 2.0 / 3.0 + z * (2.0 / 5.0), a1 = 2.0 / 7.0 + z * (2.0 / 9.0);
    double a2 = 2.0 / 11.0 + z * (2.0 / 13.0), a3 = 2.0 / 15.0 + z * (2.0 / 17.0);
    double a4 = 2.0 / 19.0 + z * (2.0 / 21.0), a5 = 2.0 / 23.0 + z * (2.0 / 25.0);
    double R = z * ((a0 + z2 * a1) + z4 * (a2 + z2 * a3) + z8 * (a4 + z2 * a5));
    double hfsq = 0.5 * f * f;
    double lf = f - (hfsq - s * (hfsq + R));
    return hi * LN2_HI + (lf + hi * LN2_LO);
}

double mlk_exp_neg(double x) { return exp_neg(x); }

double mlk_log1p_unit(double t) { return log1p_unit(t); }

/* Built for AVX2 too, chosen at load time where the CPU has it (4 rows
 * per instruction where SSE2 has 2: 5 ns a row against 13 and libm's
 * 15). Without FMA (-mavx2 does not enable it, and this file is built
 * with -ffp-contract=off), each lane does the scalar code's operations in
 * its order, so both builds give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void mlk_softplus_block(const double *restrict z, const double *restrict yy, size_t n, double *restrict loss,
                        double *restrict deriv)
{
    for (size_t i = 0; i < n; i++) {
        double v = z[i], t = exp_neg(-fabs(v)), l = log1p_unit(t), vl = v + l;
        loss[i] = (v > 0 ? vl : l) - yy[i] * v;
        deriv[i] = (v >= 0 ? 1.0 : t) / (1.0 + t) - yy[i];
    }
}
