/* jobschema.h: the job file's keys as one table.
 *
 * Every key of a job file is one row: its section, name, type, bounds,
 * default, allowed values, where the parsed value is stored and one line
 * of help. The table drives the parser in jobspec.c (which keys a section
 * allows, the typed getters and their bounds errors), the defaults of a
 * new spec, the canonical YAML (mlops_jobspec_to_yaml) and the key table
 * in docs/jobfile.md (mlops_jobschema_doc_table; a unit test fails when
 * the document and the table differ). What the table cannot say — rules
 * across keys and sections — stays as code in jobspec.c.
 *
 * Rows are in canonical order: the order of the YAML that
 * mlops_jobspec_to_yaml writes and of the checks the parser makes. */
#ifndef MLOPS_JOBSCHEMA_H
#define MLOPS_JOBSCHEMA_H
#include <stddef.h>

#include "jobspec.h"

typedef enum {
    MLOPS_JSK_SECTION = 1, /* a mapping whose keys are the rows with sect = key; int flag at off */
    MLOPS_JSK_NAME,        /* a job name, [A-Za-z0-9_.-]{1,MLOPS_JOBSCHEMA_MAX_NAME}; char * */
    MLOPS_JSK_STR,         /* a non-empty string; char *, NULL if absent */
    MLOPS_JSK_NAMES,       /* a list of non-empty strings; char **, size_t count at off2 */
    MLOPS_JSK_UINT,        /* an integer in lo..hi; uint32_t */
    MLOPS_JSK_NUM,         /* a finite decimal number within lo, hi; double */
    MLOPS_JSK_BOOL,        /* true or false; int */
    MLOPS_JSK_ENUM,        /* one of names[]; an int-sized enum holding the index */
    MLOPS_JSK_SET,         /* a non-empty list of distinct names[]; unsigned, bit i = names[i] */
    MLOPS_JSK_INPUT,       /* a CSV path, or a mapping of the "input" rows; mlops_jobspec_input_t */
    MLOPS_JSK_JOINS,       /* a list of mappings of the "join" rows; mlops_jobspec_join_t *, count at off2 */
    MLOPS_JSK_GRID,        /* numeric train.* keys -> a list of values or a range; mlops_jobspec_param_t *,
                            * count at off2 (jobsearch.h) */
    MLOPS_JSK_SAMPLE,      /* {n, seed}: two uint32_t at off (n 1..1000000) */
} mlops_jsk_type;

enum {
    MLOPS_JSF_REQUIRED = 1 << 0, /* absent is an error ("missing required key") */
    MLOPS_JSF_PRESENCE = 1 << 1, /* off2 is an int set to 1 when the key is given; the
                                  * canonical YAML writes the key only then */
    MLOPS_JSF_TRUE_ONLY = 1 << 2, /* BOOL: written only when true (scale) */
    MLOPS_JSF_BLOCK = 1 << 3,     /* SECTION: written in block style, not {flow} */
    MLOPS_JSF_BY_CODE = 1 << 4,   /* checked by the table, stored by jobspec.c (input.format) */
};

#define MLOPS_JOBSCHEMA_MAX_NAME 128

typedef struct mlops_jobschema_key {
    const char *sect; /* "" at the top level; "input" = the keys of any input mapping */
    const char *key;
    mlops_jsk_type type;
    double lo, hi;        /* UINT, NUM: bounds (NUM: +-HUGE_VAL for none) */
    int lo_open, hi_open; /* NUM: the bound itself is excluded */
    double dflt;          /* UINT, NUM, BOOL, ENUM (an index into names) */
    const char *const *names; /* ENUM, SET: allowed values, NULL-terminated */
    size_t off;  /* where it is stored: offset into mlops_jobspec_t, or into
                  * mlops_jobspec_input_t for the "input" rows, or into
                  * mlops_jobspec_join_t for the "join" rows */
    size_t off2; /* NAMES: the count; PRESENCE: the flag; INPUT: the presence flag or 0 */
    int flags;   /* MLOPS_JSF_* */
    const char *only_key; /* used only when this ENUM key of the section... */
    int only_val;         /* ...holds this index; refused otherwise */
    const char *noun;     /* SET: what one element is called in messages ("metric") */
    const char *doc_default; /* docs: the default column when the value alone says too little */
    const char *doc_allowed; /* docs: the allowed column, likewise */
    const char *help;        /* docs: one line */
} mlops_jobschema_key_t;

/* The rows, in canonical order, and their number. */
extern const mlops_jobschema_key_t mlops_jobschema[];
extern const size_t mlops_jobschema_count;

/* The row of sect.key, or NULL. */
const mlops_jobschema_key_t *mlops_jobschema_find(const char *sect, const char *key);

/* Set every defaulted field of s from the table (strings and lists are
 * left alone). */
void mlops_jobschema_defaults(mlops_jobspec_t *s);

/* The bounds of a UINT or NUM row as the parser's errors word them:
 * "a positive integer", "an integer in 1..1000", "a number >= 0",
 * "a number in (0, 1)". Writes into buf and returns it. */
const char *mlops_jobschema_want(const mlops_jobschema_key_t *k, char *buf, size_t n);

/* The Markdown key table of docs/jobfile.md (header row included, one
 * line per key, each ending in "\n"), malloc'd and NUL-terminated.
 * 0 or MLOPS_ENOMEM. */
int mlops_jobschema_doc_table(char **out, size_t *outlen);

/* The markers around the generated table in docs/jobfile.md. */
#define MLOPS_JOBSCHEMA_DOC_BEGIN "<!-- BEGIN generated: mlops_jobspec_tool --doc-table -->\n"
#define MLOPS_JOBSCHEMA_DOC_END "<!-- END generated -->\n"

#endif
