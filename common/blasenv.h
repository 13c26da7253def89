/* blasenv.h: choose OpenBLAS's kernel and thread count before it loads.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise recent
 * AVX-512 CPUs (e.g. AMD Zen 4) and falls back to its SSE3 "Prescott"
 * kernels, 5-7x slower at sgemm. It reads OPENBLAS_CORETYPE only in its
 * load-time constructor, which has already run when main() starts, so the
 * fix is to set the variable and re-execute the program once.
 *
 * Call mlops_blas_ensure(argc, argv) first thing in main() of any program
 * that does heavy BLAS work (worker, tools, benchmarks). */
#ifndef MLOPS_BLASENV_H
#define MLOPS_BLASENV_H

/* Name of the environment marker set before the re-exec (loop guard). */
#define MLOPS_BLAS_REEXEC_ENV "MLOPS_BLAS_REEXEC"

/* Makes OpenBLAS use a suitable kernel and one thread:
 *  - OPENBLAS_NUM_THREADS: if unset, set to 1 (for children) and the
 *    running library is told openblas_set_num_threads(1);
 *  - OPENBLAS_CORETYPE: an existing value is respected. If unset and the
 *    CPU (and OS) support AVX-512F, sets it to "SkylakeX" and re-executes
 *    /proc/self/exe with the same argv; the marker MLOPS_BLAS_REEXEC_ENV
 *    prevents a second re-exec.
 * Returns 0 when nothing more is needed (the program continues), or a
 * negative MLOPS_E* code if the re-exec failed (the program may continue
 * with the slower kernel; the caller should log it). Does not return on a
 * successful re-exec. argv may be NULL (then no re-exec is attempted and
 * MLOPS_EINVAL is returned if one was needed). */
int mlops_blas_ensure(int argc, char **argv);

/* The kernel OpenBLAS selected, e.g. "SkylakeX", "Haswell", "Prescott",
 * for a log line. Never NULL. */
const char *mlops_blas_corename(void);

/* 1 if this CPU and OS can run AVX-512F code, else 0. */
int mlops_blas_cpu_has_avx512f(void);

#endif
