/* profile_counts.h: one shard's part of the reference distributions'
 * categories (stage_profile.c): a text column's distinct values over the
 * training rows, in byte order, and their counts, which the coordinator
 * merges k ways into exact global counts. Counted where the column is
 * held: by the profile kinds from a viewed frame (kind_profile.c), by
 * the featurize task from its decoded one (kind_model.c). */
#ifndef MLOPS_WK_PROFILE_COUNTS_H
#define MLOPS_WK_PROFILE_COUNTS_H
#include "tasks.pb-c.h"
#include <stddef.h>
#include <stdint.h>

/* Row r's string of a text column (len bytes, not NUL-terminated). */
typedef const char *(*wk_strcol_at)(const void *col, size_t r, size_t *len);

/* The distinct values of rows 0..n-1 of col (read by at; missing[r] set:
 * counted in cat->missing) where train[r] is 1, into cat (initialised by
 * the caller; values malloc'd copies). 0 or MLOPS_ENOMEM. */
int wk_profile_count_category(const void *col, wk_strcol_at at, const uint8_t *missing, const uint8_t *train,
                              size_t n, Mlops__Tasks__ProfileCategory *cat);

/* Free what wk_profile_count_category put into cats[0..n-1], and cats. */
void wk_profile_categories_free(Mlops__Tasks__ProfileCategory *cats, size_t n);

#endif
