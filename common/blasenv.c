/* blasenv.c: OpenBLAS kernel selection by environment + re-exec.
 * See blasenv.h for why a re-exec is needed: the variables are read by
 * the library's constructor, before main(). */
#include "blasenv.h"
#include "err.h"

#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

int mlops_blas_cpu_has_avx512f(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* GCC's cpu model also checks that the OS saves the AVX-512 state. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

int mlops_blas_ensure(int argc, char **argv)
{
    const char *nt = getenv("OPENBLAS_NUM_THREADS");
    if (!nt || !*nt) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        openblas_set_num_threads(1);
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (ct && *ct)
        return 0; /* respect a value chosen by the environment */
    if (!mlops_blas_cpu_has_avx512f())
        return 0;
    const char *mark = getenv(MLOPS_BLAS_REEXEC_ENV);
    if (mark && *mark)
        return 0; /* already re-executed once: never loop */
    if (argc < 1 || !argv || !argv[0])
        return MLOPS_EINVAL;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv(MLOPS_BLAS_REEXEC_ENV, "1", 1);
    /* exec the resolved path: exec'ing "/proc/self/exe" itself would
     * rename the process "exe" in ps and top */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        execv(self, argv);
    }
    execv("/proc/self/exe", argv);
    /* exec failed: undo so children do not inherit a half-made choice */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(MLOPS_BLAS_REEXEC_ENV);
    return MLOPS_EIO;
}

const char *mlops_blas_corename(void)
{
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}
