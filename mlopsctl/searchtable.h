/* searchtable.h: the trials of a job's hyperparameter search as a table
 * for people (`mlopsctl result`), sorted by the search's metric. */
#ifndef MLOPSCTL_SEARCHTABLE_H
#define MLOPSCTL_SEARCHTABLE_H
#include <jansson.h>
#include <stdio.h>

/* Print the "search" object of a result reply, if it has one: a table of
 * RANK, TRIAL, one column per parameter, MEAN, STD and SECONDS, the best
 * first (lowest mean for logloss, else highest; ties in trial order, the
 * best trial marked *). */
void ctl_search_print(const json_t *result, FILE *out);

#endif
