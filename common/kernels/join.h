/* join.h: pandas' merge of a shard of rows with a right table on one
 * key column, as a hash join: the right table is built once into a
 * table of key -> its rows in table order, and each left shard is probed
 * against it.
 *
 * Semantics are those of pandas.merge(left, right, on=key, how=how,
 * validate=...): the left rows keep their order; a left row with k
 * matching right rows becomes k rows, in the right table's order; one
 * with none is kept with missing right values (how left) or dropped
 * (how inner). Keys are compared as pandas compares the columns it read:
 * by value when both sides are numbers ("7" matches "7.0"), as text
 * otherwise; a missing key (NaN) matches a missing key, as in pandas.
 * Whether both sides are numeric is the caller's to check (pandas
 * refuses to merge a number column with a text one): see
 * mlk_join_keys_numeric and the left_numeric answer of mlk_join_apply.
 *
 * Output rows keep their left row's row_id, so a row multiplied by
 * duplicate right keys gives rows that share it. */
#ifndef MLK_JOIN_H
#define MLK_JOIN_H
#include <stddef.h>
#include <stdint.h>
#include "frame.h"

typedef struct mlk_join_table mlk_join_table;

/* 1 if every present value of column c (string or number) parses as a
 * number, as pandas would read the column as numbers. */
int mlk_join_keys_numeric(const mlk_col *c, size_t nrows);

/* Build the table from the right table's shards, in order: column 0 of
 * each is the key (a string column), the rest are appended to every
 * matching left row (all shards have the same columns). keys_numeric:
 * compare keys by value. many_to_one: a key present twice is an error,
 * MLOPS_EINVAL with "key 'K' appears more than once". 0, MLOPS_EINVAL,
 * MLOPS_EPARSE (shards that disagree) or MLOPS_ENOMEM. */
int mlk_join_table_new(const mlk_frame *const *shards, size_t nshards, int keys_numeric,
                       int many_to_one, mlk_join_table **out, char *err, size_t errlen);
void mlk_join_table_destroy(mlk_join_table **pt);
/* Rows of the right table. */
size_t mlk_join_table_rows(const mlk_join_table *t);

/* Merge left (key in its column kc) with t into a new frame: left's
 * columns, then t's appended ones. inner: drop unmatched left rows.
 * *left_numeric: every present left key parses as a number. 0 or
 * MLOPS_ENOMEM / MLOPS_EINVAL (kc out of range). */
int mlk_join_apply(const mlk_frame *left, size_t kc, const mlk_join_table *t, int inner,
                   mlk_frame **out, int *left_numeric);

/* The shuffle join of a right table too large to broadcast: both sides
 * are cut into nparts partitions by the hash of the canonical key (so
 * keys that match land in the same partition), each partition is joined
 * alone, and the joined partitions of a left shard are gathered back
 * into its order by row_id. */

/* The rows of f (key in column kc) whose key falls in partition `part`
 * of `nparts`, in order, as a new frame. 0, MLOPS_EINVAL or MLOPS_ENOMEM. */
int mlk_join_partition(const mlk_frame *f, size_t kc, int keys_numeric, uint32_t nparts,
                       uint32_t part, mlk_frame **out);

/* Merge frames of the same columns, each in row_id order and no row_id
 * in two of them, into one in row_id order. 0, MLOPS_EPARSE (columns
 * differ) or MLOPS_ENOMEM. */
int mlk_join_gather(const mlk_frame *const *parts, size_t n, mlk_frame **out);

#endif
