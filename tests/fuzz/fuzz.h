/* fuzz.h: what every fuzz target shares. Each tests/fuzz/fuzz_NAME.c
 * defines LLVMFuzzerTestOneInput; the fuzz build (MLOPS_FUZZ, clang)
 * links it with libFuzzer, the normal and ASan builds link it with
 * replay.c to run the committed corpus and crash reproducers as a test.
 *
 * FUZZ_CHECK is for properties the code promises (a round trip gives
 * the same bytes): it aborts, which libFuzzer and the replay test both
 * report as a failure with the input that caused it. */
#ifndef MLOPS_FUZZ_H
#define MLOPS_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#endif
