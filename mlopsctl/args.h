/* args.h: a table-driven command-line parser for mlopsctl.
 *
 * Why not getopt_long: each command has its own option table that also
 * produces its --help text, options may come before or after positional
 * arguments (like docker), an option may repeat (--set), and every
 * mistake must give one line naming the option, never exit() from
 * inside the parser. Accepted forms: --name value, --name=value, -x
 * value, -xvalue, -x (flag), and "--" to end options. */
#ifndef MLOPSCTL_ARGS_H
#define MLOPSCTL_ARGS_H
#include <stddef.h>
#include <stdio.h>

/* One option. A table ends with an entry whose lng is NULL. */
typedef struct {
    const char *lng;  /* long name without "--" */
    char shrt;        /* short letter, or 0 */
    const char *meta; /* value name ("N", "DIR"), or NULL for a flag */
    const char *help; /* one line */
} ctl_optdef;

#define CTL_MAX_OCC 256

typedef struct {
    const ctl_optdef *defs;
    struct {
        int def;           /* index into defs */
        const char *value; /* NULL for flags */
    } occ[CTL_MAX_OCC];
    size_t nocc;
    const char *pos[CTL_MAX_OCC]; /* positional arguments */
    size_t npos;
} ctl_args;

/* Parse argv[0..argc) against `defs`. If stop_at_positional, parsing
 * stops at the first positional argument and *consumed says how many
 * entries were used (for global options before the command name).
 * 0, or MLOPS_EINVAL with err = "unknown option '--foo'" etc. */
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
