/* flags.h: command-line flags as one table per program.
 *
 * Each flag is one row — name, short letter, type, bounds or choices,
 * default, environment fallback, help — and the same row drives parsing,
 * the errors (which always name the flag: "--timeout: expected an integer
 * in [1, 3600000], got 'x'"), the --help text and, for the daemons,
 * storing the values into a config struct. mlopsctl, mlops-coordinator
 * and mlops-worker all parse with it.
 *
 * Why not getopt_long: options may come before or after positional
 * arguments and may repeat (--set), parsing can stop at the first
 * positional (mlopsctl's global options before the command name), and a
 * mistake must give one line, never exit() from inside the parser.
 * Accepted forms: --name value, --name=value, -x value, -xvalue, -x,
 * bundled flags -vh, and "--" to end options. Long names are matched
 * whole, never by prefix. */
#ifndef MLOPS_FLAGS_H
#define MLOPS_FLAGS_H
#include <stddef.h>
#include <stdio.h>

typedef enum {
    MLOPS_FLAG_BOOL = 0, /* no value; stored as int 1 */
    MLOPS_FLAG_STR,      /* any non-empty text; stored as const char * (borrowed from argv) */
    MLOPS_FLAG_INT,      /* a decimal integer in lo..hi; stored as int */
    MLOPS_FLAG_CHOICE,   /* one of choices[]; stored as int, the index */
} mlops_flag_type;

/* Where mlops_flags_store puts nothing. */
#define MLOPS_FLAG_NOSTORE ((size_t)-1)

/* One flag. A table ends with a row whose name is NULL. */
typedef struct {
    const char *name; /* long name without "--" */
    char shrt;        /* short letter, or 0 */
    mlops_flag_type type;
    const char *meta; /* value name in help ("N", "DIR"); NULL for BOOL */
    const char *help; /* one line; the default, environment and bounds are appended */
    long lo, hi;      /* INT: bounds */
    const char *const *choices; /* CHOICE: allowed values, NULL-terminated */
    const char *dflt; /* the value when the flag is absent (and env unset), or NULL */
    const char *env;  /* environment variable read when the flag is absent, or NULL */
    int required;     /* mlops_flags_store: absent (and no env) is an error */
    size_t off;       /* mlops_flags_store: offset into the config, or MLOPS_FLAG_NOSTORE
                       * (the table must then set it explicitly: 0 is a valid offset) */
} mlops_flag_t;

#define MLOPS_FLAGS_MAX 256

/* A parsed command line: the flags in the order given, and the
 * positional arguments. Strings are borrowed from argv. */
typedef struct {
    const mlops_flag_t *defs;
    struct {
        int def;           /* index into defs */
        const char *value; /* NULL for BOOL */
    } occ[MLOPS_FLAGS_MAX];
    size_t nocc;
    const char *pos[MLOPS_FLAGS_MAX];
    size_t npos;
} mlops_flags_t;

/* Parse argv[0..argc) against defs, checking each INT and CHOICE value
 * as it is read. If stop_at_positional, parsing stops at the first
 * positional argument and *consumed says how many entries were used.
 * 0, or MLOPS_EINVAL with one line in err: "unknown option '--foo'",
 * "option '--slots' needs a value (N)", "--slots: expected an integer in
 * [1, 256], got 'x'", "--output: expected 'table' or 'json', got 'yaml'". */
int mlops_flags_parse(mlops_flags_t *f, const mlops_flag_t *defs, int argc, char **argv,
                      int stop_at_positional, int *consumed, char *err, size_t errlen);

/* The last value given for flag `name`, or NULL. */
const char *mlops_flags_get(const mlops_flags_t *f, const char *name);

/* 1 if the flag was given at least once. */
int mlops_flags_has(const mlops_flags_t *f, const char *name);

/* Every value of a repeatable flag, in order, into vals (up to max);
 * returns the count. */
size_t mlops_flags_all(const mlops_flags_t *f, const char *name, const char **vals, size_t max);

/* Check value s against row d (INT bounds, CHOICE values, STR
 * non-empty): 0 and the INT value or CHOICE index in *out (if not NULL),
 * or MLOPS_EINVAL with "--NAME: expected ..., got 's'". */
int mlops_flags_check(const mlops_flag_t *d, const char *s, long *out, char *err, size_t errlen);

/* Store every row with an offset into cfg: the value given last, else
 * the environment variable, else the default; a required row with none
 * of them is an error ("--data-dir is required"). Positional arguments
 * are refused ("unexpected argument 'x'"). 0 or MLOPS_EINVAL. */
int mlops_flags_store(const mlops_flags_t *f, void *cfg, char *err, size_t errlen);

/* Print the table as help lines:
 *   "  -s, --slots N          tasks run at once (1..256, default 1)" */
void mlops_flags_help(FILE *out, const mlops_flag_t *defs);

/* Rows every daemon shares (coordinator, worker, serve): put them at
 * the end of its table, before the NULL row. OFF is the config field's
 * offset; LOG_FORMAT and HELP are not stored (mlops_flags_daemon and
 * mlops_flags_log_json read them). */
extern const char *const mlops_flag_log_formats[];
#define MLOPS_FLAG_ROW_METRICS_LISTEN(OFF)                                                          \
    {.name = "metrics-listen", .type = MLOPS_FLAG_STR, .meta = "HOST:PORT", .off = (OFF),          \
     .help = "serve Prometheus metrics on http://HOST:PORT/metrics (port 0 picks one, written to " \
             "DIR/metrics.addr)"}
#define MLOPS_FLAG_ROW_HTTP_TOKEN_FILE(OFF, HELP)                                                    \
    {.name = "http-token-file", .type = MLOPS_FLAG_STR, .meta = "FILE", .off = (OFF), .help = (HELP)}
#define MLOPS_FLAG_ROW_LOG_FORMAT(HELP)                                                             \
    {.name = "log-format", .type = MLOPS_FLAG_CHOICE, .meta = "FORMAT",                           \
     .choices = mlops_flag_log_formats, .dflt = "human", .off = MLOPS_FLAG_NOSTORE, .help = (HELP)}
#define MLOPS_FLAG_ROW_HELP                                                                         \
    {.name = "help", .shrt = 'h', .type = MLOPS_FLAG_BOOL, .off = MLOPS_FLAG_NOSTORE,              \
     .help = "print this help"}

/* A daemon's command line, the same for each: parse argv[1..argc)
 * against defs and store into cfg. Returns -1 to go on, else the exit
 * status: 0 after printing the help for --help, 2 after an error, which
 * is printed as "PROG: message" followed by the help on stderr. The help
 * is "Usage: PROG SYNOPSIS", then the flags. */
int mlops_flags_daemon(const char *prog, const char *synopsis, const mlops_flag_t *defs, int argc,
                       char **argv, mlops_flags_t *flags, void *cfg);
/* 1 if --log-format json was given. */
int mlops_flags_log_json(const mlops_flags_t *flags);

#endif
