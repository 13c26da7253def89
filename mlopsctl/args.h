/* args.h: mlopsctl's view of the shared flag tables (common/flags.h).
 *
 * Each command has its own table (in main.c) that drives parsing, its
 * --help text and the checks of typed values; the cmd_*.c files read the
 * parsed values through the names below. */
#ifndef MLOPSCTL_ARGS_H
#define MLOPSCTL_ARGS_H
#include <stddef.h>
#include <stdio.h>

#include "flags.h"

/* One option row; a table ends with a row whose name is NULL. */
typedef mlops_flag_t ctl_optdef;

/* A parsed command line: a->pos[0..a->npos) are the positional arguments. */
typedef mlops_flags_t ctl_args;

/* Parse argv[0..argc) against `defs` (see mlops_flags_parse). */
int ctl_args_parse(ctl_args *a, const ctl_optdef *defs, int argc, char **argv,
                   int stop_at_positional, int *consumed, char *err, size_t errlen);

/* The last value given for option `lng`, or NULL. */
const char *ctl_arg(const ctl_args *a, const char *lng);

/* 1 if the option (flag or valued) was given at least once. */
int ctl_flag(const ctl_args *a, const char *lng);

/* Every value of a repeatable option, in order, into vals (up to max);
 * returns the count. */
size_t ctl_arg_all(const ctl_args *a, const char *lng, const char **vals, size_t max);

/* Parse a decimal integer in [lo, hi] given for option `what`.
 * 0 or MLOPS_EINVAL with err = "--workers: expected an integer in [1, 64], got 'x'". */
int ctl_parse_int(const char *s, long lo, long hi, const char *what, long *out, char *err,
                  size_t errlen);

/* Print the option table as help lines ("  -c, --coordinator ENDPOINT   help"). */
void ctl_args_help(FILE *out, const ctl_optdef *defs);

#endif
