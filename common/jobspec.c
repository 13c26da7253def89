/* jobspec.c: the job file parser/validator (see jobspec.h and
 * docs/jobfile.md).
 *
 * Why it looks like this:
 *  - libyaml's event API builds a small tree of our own (ynode), not its
 *    document API: events let us refuse aliases (no "billion laughs"),
 *    bound nesting depth and node count, and keep a line number on every
 *    key and value for the one-line errors.
 *  - --set overrides are applied to that tree before validation, with the
 *    new nodes marked as coming from the override, so one validator
 *    checks both and an error names whichever the bad value came from.
 *  - Validation walks the key table of jobschema.h: a section allows the
 *    keys that have a row (an unknown or duplicate key is an error), the
 *    typed getter of a row's type checks its value against the row's
 *    bounds and stores it where the row says; rules that span keys are
 *    a few functions per section, then cross-section rules run on the
 *    filled spec. The canonical YAML is printed from the same table
 *    (jobschema.c). */
#include "jobspec.h"
#include "err.h"
#include "jobschema.h"
#include "jobsearch.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 32
#define MAX_NODES 100000
#define AT(base, off, T) ((T *)(void *)((char *)(base) + (off)))

/* ------------------------------------------------------------------------
 * The tree
 * ------------------------------------------------------------------------ */

enum { YN_SCALAR = 1, YN_MAP = 2, YN_SEQ = 3 };

typedef struct ynode ynode;
struct ynode {
    int kind;
    int line;           /* 1-based line in the file; 0 if from --set */
    const char *origin; /* the --set text this node came from, or NULL */
    int plain;          /* scalar written without quotes */
    char *str;          /* scalar bytes, NUL-terminated */
    size_t len;
    ynode **kids; /* map: key, value, key, value...; seq: items */
    size_t n, cap;
};

static void ynode_free(ynode *y)
{
    if (!y)
        return;
    for (size_t i = 0; i < y->n; i++)
        ynode_free(y->kids[i]);
    free(y->kids);
    free(y->str);
    free(y);
}

static ynode *ynode_new(int kind, int line, const char *origin)
{
    ynode *y = calloc(1, sizeof *y);
    if (y) {
        y->kind = kind;
        y->line = line;
        y->origin = origin;
    }
    return y;
}

static ynode *ynode_scalar(const char *s, size_t len, int plain, int line, const char *origin)
{
    ynode *y = ynode_new(YN_SCALAR, line, origin);
    if (!y)
        return NULL;
    y->str = malloc(len + 1);
    if (!y->str) {
        free(y);
        return NULL;
    }
    if (len)
        memcpy(y->str, s, len);
    y->str[len] = '\0';
    y->len = len;
    y->plain = plain;
    return y;
}

static int ynode_add(ynode *parent, ynode *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        ynode **k = realloc(parent->kids, cap * sizeof *k);
        if (!k)
            return MLOPS_ENOMEM;
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

/* Build a tree from YAML text. `name` prefixes errors ("job.yaml" or
 * "--set k=v"); nodes get `origin` (NULL for the file). *out = NULL for
 * an empty stream. 0, MLOPS_EPARSE or MLOPS_ENOMEM. */
static int yaml_load(const char *text, size_t len, const char *name, const char *origin,
                     ynode **out, char *err, size_t errlen)
{
    *out = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);

    ynode *stack[MAX_DEPTH];
    int depth = 0, docs = 0, done = 0, rc = 0;
    size_t count = 0;
    ynode *root = NULL;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            if (p.error == YAML_MEMORY_ERROR)
                rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
            else if (p.error == YAML_READER_ERROR)
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                  "%s: not valid YAML text at byte %zu: %s", name,
                                  p.problem_offset, p.problem ? p.problem : "unreadable");
            else if (origin)
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: YAML syntax error: %s%s%s",
                                  name, p.problem ? p.problem : "malformed",
                                  p.context ? " " : "", p.context ? p.context : "");
            else
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s:%zu: YAML syntax error: %s%s%s",
                                  name, p.problem_mark.line + 1,
                                  p.problem ? p.problem : "malformed", p.context ? " " : "",
                                  p.context ? p.context : "");
            break;
        }
        int line = origin ? 0 : (int)(ev.start_mark.line + 1 > INT32_MAX ? INT32_MAX
                                                                          : ev.start_mark.line + 1);
        ynode *node = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                if (origin)
                    rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: more than one YAML document",
                                      name);
                else
                    rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                      "%s:%d: more than one YAML document", name, line);
            }
            break;
        case YAML_ALIAS_EVENT:
            if (origin)
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: YAML aliases are not supported",
                                  name);
            else
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                  "%s:%d: YAML aliases are not supported", name, line);
            break;
        case YAML_SCALAR_EVENT:
            node = ynode_scalar((const char *)ev.data.scalar.value, ev.data.scalar.length,
                                ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE, line, origin);
            if (!node)
                rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            node = ynode_new(ev.type == YAML_MAPPING_START_EVENT ? YN_MAP : YN_SEQ, line, origin);
            if (!node)
                rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        if (node) {
            /* attach first, so that on any later error the tree frees it */
            if (depth == 0) {
                root = node; /* the one document's root */
            } else if (ynode_add(stack[depth - 1], node) != 0) {
                ynode_free(node);
                node = NULL;
                rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", name);
            }
            if (rc == 0 && ++count > MAX_NODES)
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: too many YAML nodes (over %d)",
                                  name, MAX_NODES);
            if (rc == 0 && node->kind != YN_SCALAR) {
                if (depth == MAX_DEPTH) {
                    if (origin)
                        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: nesting deeper than %d",
                                          name, MAX_DEPTH);
                    else
                        rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                                          "%s:%d: nesting deeper than %d", name, line, MAX_DEPTH);
                } else {
                    stack[depth++] = node;
                }
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc != 0) {
        ynode_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ------------------------------------------------------------------------
 * Validation context, messages, getters
 * ------------------------------------------------------------------------ */

typedef struct {
    const char *file;
    char *err;
    size_t errlen;
} vctx;

/* One-line error at node `at` (NULL: the file as a whole). */
__attribute__((format(printf, 3, 4))) static int verr(vctx *c, const ynode *at, const char *fmt,
                                                      ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!at)
        return mlops_seterr(c->err, c->errlen, MLOPS_EINVAL, "%s: %s", c->file, msg);
    if (at->origin)
        return mlops_seterr(c->err, c->errlen, MLOPS_EINVAL, "--set %s: %s", at->origin, msg);
    return mlops_seterr(c->err, c->errlen, MLOPS_EINVAL, "%s:%d: %s", c->file, at->line, msg);
}

static int is_null(const ynode *y)
{
    return y->kind == YN_SCALAR && y->plain &&
           (y->len == 0 || !strcmp(y->str, "~") || !strcmp(y->str, "null") ||
            !strcmp(y->str, "Null") || !strcmp(y->str, "NULL"));
}

/* What a value was, for "got ...": 'text' (escaped, truncated), nothing,
 * a mapping, a list. */
static const char *shown(const ynode *y, char *buf, size_t n)
{
    if (y->kind == YN_MAP)
        return "a mapping";
    if (y->kind == YN_SEQ)
        return "a list";
    if (is_null(y))
        return "nothing";
    size_t o = 0;
    buf[o++] = '\'';
    for (size_t i = 0; i < y->len && o + 8 < n; i++) {
        unsigned char ch = (unsigned char)y->str[i];
        if (i >= 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '\\' || ch == '\'')
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

/* "sect.key" or "key" */
static const char *fpath(char *buf, size_t n, const char *sect, const char *key)
{
    /* names come from the table and the file's own keys: a path longer
     * than buf is cut in the message, never overrun */
    int w = sect && *sect ? snprintf(buf, n, "%s.%s", sect, key) : snprintf(buf, n, "%s", key);
    (void)w;
    return buf;
}

/* The value at `key` in a map (first occurrence), and its key node. */
static ynode *mget(const ynode *map, const char *key, ynode **keynode)
{
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const ynode *k = map->kids[i];
        if (k->kind == YN_SCALAR && strlen(k->str) == k->len && !strcmp(k->str, key)) {
            if (keynode)
                *keynode = map->kids[i];
            return map->kids[i + 1];
        }
    }
    return NULL;
}

/* `y` must be a mapping; sect names it. */
static int want_map(vctx *c, const ynode *y, const char *sect)
{
    char b[64];
    if (y->kind != YN_MAP)
        return verr(c, y, "%s: expected a mapping, got %s", sect, shown(y, b, sizeof b));
    return 0;
}

/* The table rows of section `sect`, in table order: k = first, then next. */
static const mlops_jobschema_key_t *row_next(const mlops_jobschema_key_t *k, const char *sect)
{
    const mlops_jobschema_key_t *end = mlops_jobschema + mlops_jobschema_count;
    for (k = k ? k + 1 : mlops_jobschema; k < end; k++)
        if (!strcmp(k->sect, sect))
            return k;
    return NULL;
}

#define FOR_ROWS(k, sect) for (const mlops_jobschema_key_t *k = row_next(NULL, sect); k; k = row_next(k, sect))

/* Every key of map must be a scalar naming a row of section `sect` and
 * appear once. `name` is the section as messages call it. */
static int check_keys(vctx *c, const ynode *map, const char *name, const char *sect)
{
    char b[64];
    const char *sep = *name ? ": " : "";
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const ynode *k = map->kids[i];
        if (k->kind != YN_SCALAR || strlen(k->str) != k->len)
            return verr(c, k, "%s%sexpected a plain key, got %s", name, sep, shown(k, b, sizeof b));
        if (!mlops_jobschema_find(sect, k->str))
            return verr(c, k, "%s%sunknown key %s", name, sep, shown(k, b, sizeof b));
        for (size_t j = 0; j < i; j += 2) {
            if (!strcmp(map->kids[j]->str, k->str)) {
                if (map->kids[j]->origin)
                    return verr(c, k, "%s%sduplicate key %s (also set by --set %s)", name, sep,
                                shown(k, b, sizeof b), map->kids[j]->origin);
                return verr(c, k, "%s%sduplicate key %s (first at line %d)", name, sep,
                            shown(k, b, sizeof b), map->kids[j]->line);
            }
        }
    }
    return 0;
}

/* An unsigned integer within the row's bounds. */
static int get_uint(vctx *c, const ynode *y, const char *path, const mlops_jobschema_key_t *k,
                    uint32_t *out)
{
    char b[64], want[64];
    int ok = y->kind == YN_SCALAR && y->len > 0 && y->len < 24;
    uint64_t v = 0;
    if (ok) {
        const char *s = y->str;
        if (*s == '+')
            s++;
        ok = *s != '\0';
        for (; *s && ok; s++) {
            if (!isdigit((unsigned char)*s) || v > (UINT64_MAX - 9) / 10)
                ok = 0;
            else
                v = v * 10 + (uint64_t)(*s - '0');
        }
    }
    if (!ok || (double)v < k->lo || (double)v > k->hi)
        return verr(c, y, "%s: expected %s, got %s", path, mlops_jobschema_want(k, want, sizeof want),
                    shown(y, b, sizeof b));
    *out = (uint32_t)v;
    return 0;
}

/* A finite decimal number within the row's bounds (open or closed). */
static int get_num(vctx *c, const ynode *y, const char *path, const mlops_jobschema_key_t *k,
                   double *out)
{
    char b[64], want[64];
    int ok = y->kind == YN_SCALAR && y->len > 0 && strlen(y->str) == y->len &&
             !isspace((unsigned char)y->str[0]);
    double v = 0;
    if (ok) {
        char *end;
        errno = 0;
        v = strtod(y->str, &end);
        ok = *end == '\0' && errno != ERANGE && isfinite(v);
        /* strtod also takes hex floats and "infinity"; YAML numbers are decimal */
        for (const char *s = y->str; *s && ok; s++)
            if (!strchr("0123456789+-.eE", *s))
                ok = 0;
    }
    if (ok)
        ok = (k->lo_open ? v > k->lo : v >= k->lo) && (k->hi_open ? v < k->hi : v <= k->hi);
    if (!ok)
        return verr(c, y, "%s: expected %s, got %s", path, mlops_jobschema_want(k, want, sizeof want),
                    shown(y, b, sizeof b));
    *out = v;
    return 0;
}

static int parse_bool(const ynode *y, int *v)
{
    if (y->kind != YN_SCALAR)
        return 0;
    if (!strcmp(y->str, "true") || !strcmp(y->str, "True") || !strcmp(y->str, "TRUE")) {
        *v = 1;
        return 1;
    }
    if (!strcmp(y->str, "false") || !strcmp(y->str, "False") || !strcmp(y->str, "FALSE")) {
        *v = 0;
        return 1;
    }
    return 0;
}

static int get_bool(vctx *c, const ynode *y, const char *path, int *out)
{
    char b[64];
    if (!parse_bool(y, out))
        return verr(c, y, "%s: expected true or false, got %s", path, shown(y, b, sizeof b));
    return 0;
}

/* "a, b or c" */
static const char *name_list(const char *const *names, char *want, size_t n)
{
    size_t o = 0;
    want[0] = '\0';
    for (int i = 0; names[i] && o < n; i++)
        o += (size_t)snprintf(want + o, n - o, "%s%s", i ? (names[i + 1] ? ", " : " or ") : "",
                              names[i]);
    return want;
}

/* The index of y in names[] (NULL-terminated), or -1. */
static int name_index(const ynode *y, const char *const *names)
{
    if (y->kind == YN_SCALAR)
        for (int i = 0; names[i]; i++)
            if (!strcmp(names[i], y->str) && strlen(y->str) == y->len)
                return i;
    return -1;
}

static int get_enum(vctx *c, const ynode *y, const char *path, const char *const *names, int *out)
{
    int i = name_index(y, names);
    if (i >= 0) {
        *out = i;
        return 0;
    }
    char b[64], want[160];
    return verr(c, y, "%s: expected %s, got %s", path, name_list(names, want, sizeof want),
                shown(y, b, sizeof b));
}

/* A non-empty string without NUL bytes from node y; *out malloc'd. */
static int node_str(vctx *c, const ynode *y, const char *what, char **out)
{
    char b[64];
    if (y->kind != YN_SCALAR || is_null(y) || y->len == 0)
        return verr(c, y, "%s: expected a non-empty string, got %s", what, shown(y, b, sizeof b));
    if (strlen(y->str) != y->len)
        return verr(c, y, "%s: NUL byte in string", what);
    char *s = strdup(y->str);
    if (!s)
        return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
    free(*out);
    *out = s;
    return 0;
}

/* A list of strings. */
static int get_str_list(vctx *c, const ynode *y, const char *path, char ***out, size_t *n)
{
    char b[64];
    if (y->kind != YN_SEQ)
        return verr(c, y, "%s: expected a list of names, got %s", path, shown(y, b, sizeof b));
    char **v = y->n ? calloc(y->n, sizeof *v) : NULL;
    if (y->n && !v)
        return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
    *out = v;
    *n = 0;
    for (size_t i = 0; i < y->n; i++) {
        int rc = node_str(c, y->kids[i], path, &v[i]);
        if (rc != 0)
            return rc;
        *n = i + 1;
    }
    return 0;
}

/* A non-empty list of distinct names[], as bits. */
static int get_set(vctx *c, const ynode *y, const char *path, const mlops_jobschema_key_t *k,
                   unsigned *out)
{
    char b[64], want[160];
    if (y->kind != YN_SEQ)
        return verr(c, y, "%s: expected a list of %ss, got %s", path, k->noun,
                    shown(y, b, sizeof b));
    if (y->n == 0)
        return verr(c, y, "%s: expected at least one %s", path, k->noun);
    for (size_t i = 0; i < y->n; i++) {
        const ynode *m = y->kids[i];
        int idx = name_index(m, k->names);
        if (idx < 0)
            return verr(c, m, "%s: unknown %s %s (expected %s)", path, k->noun,
                        shown(m, b, sizeof b), name_list(k->names, want, sizeof want));
        if (*out & (1u << idx))
            return verr(c, m, "%s: %s '%s' listed twice", path, k->noun, k->names[idx]);
        *out |= 1u << idx;
    }
    return 0;
}

static int get_name(vctx *c, const ynode *y, const char *path, char **out)
{
    int rc = node_str(c, y, path, out);
    if (rc != 0)
        return rc;
    size_t nl = strlen(*out);
    /* no leading '.': a name must never read as "." or ".." (or hide)
     * should it ever become a path component */
    if (nl > MLOPS_JOBSCHEMA_MAX_NAME || (*out)[0] == '.' ||
        strspn(*out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != nl) {
        char b[64];
        return verr(c, y, "%s: expected 1..%d characters from [A-Za-z0-9_.-], not starting with "
                    "'.', got %s", path, MLOPS_JOBSCHEMA_MAX_NAME, shown(y, b, sizeof b));
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Sections
 * ------------------------------------------------------------------------ */

static int parse_section(vctx *c, const ynode *y, const char *name, const mlops_jobschema_key_t *sec,
                         mlops_jobspec_t *s);

/* A CSV input's paths: one string or a non-empty list of strings (only
 * for the job's input: knn.queries names one file). */
static int get_paths(vctx *c, const ynode *y, const char *name, mlops_jobspec_input_t *in)
{
    int rc;
    if (y->kind == YN_SEQ) {
        if (strcmp(name, "input") && strcmp(name, "input.path"))
            return verr(c, y, "%s: expected one file, got a list", name);
        if (y->n == 0)
            return verr(c, y, "%s: expected at least one file", name);
        rc = get_str_list(c, y, name, &in->paths, &in->npaths);
    } else {
        in->paths = calloc(1, sizeof *in->paths);
        if (!in->paths)
            return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
        rc = node_str(c, y, name, &in->paths[0]);
        if (rc == 0)
            in->npaths = 1;
    }
    in->path = in->npaths ? in->paths[0] : NULL;
    return rc;
}

/* input: a CSV path, or a mapping of the "input" rows: format picks
 * which of the others are required and which refused. */
static int parse_input(vctx *c, const ynode *y, const char *name, mlops_jobspec_input_t *in)
{
    int rc;
    if (y->kind == YN_SCALAR || y->kind == YN_SEQ) {
        in->format = MLOPS_INPUT_CSV;
        return get_paths(c, y, name, in);
    }
    if ((rc = want_map(c, y, name)) != 0 || (rc = check_keys(c, y, name, "input")) != 0)
        return rc;
    const mlops_jobschema_key_t *fk = mlops_jobschema_find("input", "format");
    int fmt = (int)fk->dflt;
    char p[128]; /* name (< 96) and a key of the input rows */
    ynode *v, *kn;
    if ((v = mget(y, "format", NULL)) &&
        (rc = get_enum(c, v, fpath(p, sizeof p, name, "format"), fk->names, &fmt)) != 0)
        return rc;
    in->format = fmt == 1 ? MLOPS_INPUT_IDX : MLOPS_INPUT_CSV;
    /* the keys of the other format and the missing ones of this format,
     * checked in turns, so the first of each is reported in that order */
    const mlops_jobschema_key_t *bad[4], *need[4];
    size_t nbad = 0, nneed = 0;
    FOR_ROWS(k, "input") {
        if (k->only_key && k->only_val != fmt && nbad < 4)
            bad[nbad++] = k;
        else if (k->only_key && (k->flags & MLOPS_JSF_REQUIRED) && nneed < 4)
            need[nneed++] = k;
    }
    for (size_t i = 0; i < nbad || i < nneed; i++) {
        if (i < nbad && mget(y, bad[i]->key, &kn))
            return verr(c, kn, "%s: key '%s' is not used with format %s", name, bad[i]->key,
                        fk->names[fmt]);
        if (i < nneed && !mget(y, need[i]->key, NULL))
            return verr(c, y, "%s: missing required key '%s'", name, need[i]->key);
    }
    if (fmt == 0 && (v = mget(y, "path", NULL)) &&
        (rc = get_paths(c, v, fpath(p, sizeof p, name, "path"), in)) != 0)
        return rc;
    FOR_ROWS(k, "input")
        if (k->type == MLOPS_JSK_STR && strcmp(k->key, "path") && (v = mget(y, k->key, NULL)) &&
            (rc = node_str(c, v, fpath(p, sizeof p, name, k->key), AT(in, k->off, char *))) != 0)
            return rc;
    return 0;
}

/* join: a non-empty list of mappings of the "join" rows (one mapping
 * alone is taken as a list of one). */
static int parse_joins(vctx *c, const ynode *y, const char *name, mlops_jobspec_t *s)
{
    char b[64], p[160];
    size_t n = y->kind == YN_SEQ ? y->n : 1;
    if (y->kind != YN_SEQ && y->kind != YN_MAP)
        return verr(c, y, "%s: expected a list of mappings, got %s", name, shown(y, b, sizeof b));
    if (n == 0)
        return verr(c, y, "%s: expected at least one join", name);
    if (n > 16)
        return verr(c, y, "%s: at most 16 joins, got %zu", name, n);
    s->join = calloc(n, sizeof *s->join);
    if (!s->join)
        return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
    for (size_t i = 0; i < n; i++) {
        const ynode *m = y->kind == YN_SEQ ? y->kids[i] : y;
        mlops_jobspec_join_t *jn = &s->join[i];
        char jname[48];
        snprintf(jname, sizeof jname, "%.24s[%zu]", name, i);
        s->njoin = i + 1;
        int rc;
        if ((rc = want_map(c, m, jname)) != 0 || (rc = check_keys(c, m, jname, "join")) != 0)
            return rc;
        jn->how = MLOPS_JOIN_LEFT;
        jn->validate = MLOPS_JOIN_ANY;
        FOR_ROWS(k, "join") {
            ynode *v = mget(m, k->key, NULL);
            const char *kp = fpath(p, sizeof p, jname, k->key);
            if (!v) {
                if (k->flags & MLOPS_JSF_REQUIRED)
                    return verr(c, m, "%s: missing required key '%s'", jname, k->key);
                continue;
            }
            if (k->type == MLOPS_JSK_STR)
                rc = node_str(c, v, kp, AT(jn, k->off, char *));
            else if (k->type == MLOPS_JSK_NAMES)
                rc = get_str_list(c, v, kp, AT(jn, k->off, char **), AT(jn, k->off2, size_t));
            else
                rc = get_enum(c, v, kp, k->names, AT(jn, k->off, int));
            if (rc != 0)
                return rc;
        }
        if (jn->ncolumns == 0)
            return verr(c, mget(m, "columns", NULL), "%s.columns: expected at least one column",
                        jname);
        for (size_t a = 0; a < jn->ncolumns; a++) {
            if (!strcmp(jn->columns[a], jn->on))
                return verr(c, mget(m, "columns", NULL),
                            "%s.columns: '%s' is the key (on), which every row already has", jname,
                            jn->on);
            for (size_t b2 = 0; b2 < a; b2++)
                if (!strcmp(jn->columns[a], jn->columns[b2]))
                    return verr(c, mget(m, "columns", NULL), "%s.columns: column '%s' listed twice",
                                jname, jn->columns[a]);
            for (size_t e = 0; e < i; e++)
                for (size_t b2 = 0; b2 < s->join[e].ncolumns; b2++)
                    if (!strcmp(jn->columns[a], s->join[e].columns[b2]))
                        return verr(c, mget(m, "columns", NULL),
                                    "%s.columns: column '%s' is also appended by %s[%zu]", jname,
                                    jn->columns[a], name, e);
        }
    }
    return 0;
}

static int param_cmp(const void *a, const void *b)
{
    return strcmp(((const mlops_jobspec_param_t *)a)->key, ((const mlops_jobspec_param_t *)b)->key);
}

/* A value of a grid key, within the key's own bounds. */
static int grid_value(vctx *c, const ynode *y, const char *path, const mlops_jobschema_key_t *row,
                      double *out)
{
    if (row->type == MLOPS_JSK_NUM)
        return get_num(c, y, path, row, out);
    uint32_t u;
    int rc = get_uint(c, y, path, row, &u);
    *out = u;
    return rc;
}

/* search.grid: a mapping of numeric train.* keys (as the schema names
 * them) to a non-empty list of values, or to {uniform|loguniform: [lo,
 * hi]}; kept sorted by key, as ParameterGrid orders them. */
static int parse_grid(vctx *c, const ynode *y, const char *name, const mlops_jobschema_key_t *k,
                      mlops_jobspec_t *s)
{
    char b[64], p[160];
    if (y->kind != YN_MAP)
        return verr(c, y, "%s: expected a mapping of train keys to lists, got %s", name,
                    shown(y, b, sizeof b));
    size_t n = y->n / 2;
    if (n == 0)
        return verr(c, y, "%s: expected at least one key", name);
    mlops_jobspec_param_t *v = calloc(n, sizeof *v);
    if (!v)
        return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
    *AT(s, k->off, mlops_jobspec_param_t *) = v;
    for (size_t i = 0; i < n; i++) {
        const ynode *kn = y->kids[2 * i], *vn = y->kids[2 * i + 1];
        if (kn->kind != YN_SCALAR || strlen(kn->str) != kn->len)
            return verr(c, kn, "%s: expected a plain key, got %s", name, shown(kn, b, sizeof b));
        const mlops_jobschema_key_t *row = mlops_search_row(kn->str);
        if (!row)
            return verr(c, kn, "%s: %s is not a numeric train key of the job file (train.alpha, train.epochs, ...)",
                        name, shown(kn, b, sizeof b));
        for (size_t j = 0; j < i; j++)
            if (!strcmp(v[j].key, kn->str))
                return verr(c, kn, "%s: duplicate key %s", name, shown(kn, b, sizeof b));
        const char *kp = fpath(p, sizeof p, name, kn->str);
        if (!(v[i].key = strdup(kn->str)))
            return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
        *AT(s, k->off2, size_t) = i + 1;
        int rc;
        if (vn->kind == YN_SEQ) {
            if (vn->n == 0)
                return verr(c, vn, "%s: expected at least one value", kp);
            if (!(v[i].values = calloc(vn->n, sizeof *v[i].values)))
                return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
            for (size_t a = 0; a < vn->n; a++, v[i].nvalues++)
                if ((rc = grid_value(c, vn->kids[a], kp, row, &v[i].values[a])) != 0)
                    return rc;
            v[i].lo = v[i].hi = v[i].values[0];
            for (size_t a = 1; a < vn->n; a++) {
                if (v[i].values[a] < v[i].lo) v[i].lo = v[i].values[a];
                if (v[i].values[a] > v[i].hi) v[i].hi = v[i].values[a];
            }
            continue;
        }
        const ynode *dk = vn->kind == YN_MAP && vn->n == 2 ? vn->kids[0] : NULL;
        const ynode *r = dk ? vn->kids[1] : NULL;
        if (!dk || dk->kind != YN_SCALAR || (strcmp(dk->str, "uniform") && strcmp(dk->str, "loguniform")))
            return verr(c, vn, "%s: expected a list of values, {uniform: [lo, hi]} or {loguniform: [lo, hi]}, got %s",
                        kp, shown(vn, b, sizeof b));
        v[i].dist = strcmp(dk->str, "uniform") ? MLOPS_PARAM_LOGUNIFORM : MLOPS_PARAM_UNIFORM;
        if (r->kind != YN_SEQ || r->n != 2)
            return verr(c, r, "%s: expected [lo, hi], got %s", kp, shown(r, b, sizeof b));
        if ((rc = grid_value(c, r->kids[0], kp, row, &v[i].lo)) != 0 ||
            (rc = grid_value(c, r->kids[1], kp, row, &v[i].hi)) != 0)
            return rc;
        if (v[i].lo > v[i].hi)
            return verr(c, r, "%s: the range's low end is above its high end", kp);
        if (v[i].dist == MLOPS_PARAM_LOGUNIFORM && v[i].lo <= 0)
            return verr(c, r, "%s: loguniform needs lo > 0", kp);
    }
    qsort(v, n, sizeof *v, param_cmp);
    return 0;
}

/* search.random: {n, seed} */
static int parse_sample(vctx *c, const ynode *y, const char *name, const mlops_jobschema_key_t *k,
                        mlops_jobspec_t *s)
{
    static const mlops_jobschema_key_t N = {.key = "n", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 1000000};
    static const mlops_jobschema_key_t SEED = {.key = "seed", .type = MLOPS_JSK_UINT, .lo = 0,
                                               .hi = 4294967295.0};
    char b[64], p[160];
    uint32_t *v = AT(s, k->off, uint32_t);
    if (y->kind != YN_MAP)
        return verr(c, y, "%s: expected {n: N, seed: S}, got %s", name, shown(y, b, sizeof b));
    v[0] = 0;
    v[1] = 0;
    int rc, seen[2] = {0, 0};
    for (size_t i = 0; i + 1 < y->n; i += 2) {
        const ynode *kn = y->kids[i];
        int isn = kn->kind == YN_SCALAR && !strcmp(kn->str, "n");
        if (!isn && (kn->kind != YN_SCALAR || strcmp(kn->str, "seed")))
            return verr(c, kn, "%s: unknown key %s", name, shown(kn, b, sizeof b));
        if (seen[isn]++)
            return verr(c, kn, "%s: duplicate key %s", name, shown(kn, b, sizeof b));
        if ((rc = get_uint(c, y->kids[i + 1], fpath(p, sizeof p, name, kn->str), isn ? &N : &SEED,
                           &v[isn ? 0 : 1])) != 0)
            return rc;
    }
    if (v[0] == 0)
        return verr(c, y, "%s: missing required key 'n'", name);
    return 0;
}

/* Read one row's value y into s (or into the input at k->off). */
static int get_value(vctx *c, const ynode *y, const char *path, const mlops_jobschema_key_t *k,
                     mlops_jobspec_t *s)
{
    if (k->flags & MLOPS_JSF_PRESENCE)
        *AT(s, k->off2, int) = 1;
    switch (k->type) {
    case MLOPS_JSK_SECTION: return parse_section(c, y, path, k, s);
    case MLOPS_JSK_NAME: return get_name(c, y, path, AT(s, k->off, char *));
    case MLOPS_JSK_STR: return node_str(c, y, path, AT(s, k->off, char *));
    case MLOPS_JSK_NAMES:
        return get_str_list(c, y, path, AT(s, k->off, char **), AT(s, k->off2, size_t));
    case MLOPS_JSK_UINT: return get_uint(c, y, path, k, AT(s, k->off, uint32_t));
    case MLOPS_JSK_NUM: return get_num(c, y, path, k, AT(s, k->off, double));
    case MLOPS_JSK_BOOL: return get_bool(c, y, path, AT(s, k->off, int));
    case MLOPS_JSK_ENUM: return get_enum(c, y, path, k->names, AT(s, k->off, int));
    case MLOPS_JSK_SET: return get_set(c, y, path, k, AT(s, k->off, unsigned));
    case MLOPS_JSK_INPUT: return parse_input(c, y, path, AT(s, k->off, mlops_jobspec_input_t));
    case MLOPS_JSK_JOINS: return parse_joins(c, y, path, s);
    case MLOPS_JSK_GRID: return parse_grid(c, y, path, k, s);
    case MLOPS_JSK_SAMPLE: return parse_sample(c, y, path, k, s);
    }
    return 0;
}

/* Read every row of section `sect` present in map, in table order, then
 * refuse the keys whose only_key does not hold their only_val. */
static int parse_keys(vctx *c, const ynode *map, const char *name, const char *sect,
                      mlops_jobspec_t *s)
{
    int rc;
    char p[96];
    ynode *y;
    FOR_ROWS(k, sect) {
        if ((y = mget(map, k->key, NULL))) {
            if ((rc = get_value(c, y, fpath(p, sizeof p, name, k->key), k, s)) != 0)
                return rc;
        } else if (k->flags & MLOPS_JSF_REQUIRED) {
            if (*name)
                return verr(c, map, "%s: missing required key '%s'", name, k->key);
            return verr(c, NULL, "missing required key '%s'", k->key);
        }
    }
    FOR_ROWS(k, sect) {
        ynode *kn;
        if (!k->only_key || !mget(map, k->key, &kn))
            continue;
        const mlops_jobschema_key_t *o = mlops_jobschema_find(sect, k->only_key);
        if (*AT(s, o->off, int) != k->only_val)
            return verr(c, kn, "%s: only used with %s %s", fpath(p, sizeof p, name, k->key),
                        o->key, o->names[k->only_val]);
    }
    return 0;
}

typedef struct {
    const char *name;
    size_t pos; /* numeric 0.., then categorical */
} col_ref;

static int col_ref_cmp(const void *pa, const void *pb)
{
    const col_ref *a = pa, *b = pb;
    int r = strcmp(a->name, b->name);
    return r ? r : (a->pos > b->pos) - (a->pos < b->pos);
}

/* columns: no column listed twice, the label is not a feature */
static int columns_rule(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    /* a column listed twice: sort (name, position) pairs, O(n log n), and
     * report the earliest second listing in file order */
    const ynode *lists[2] = {mget(y, "numeric", NULL), mget(y, "categorical", NULL)};
    char *const *names[2] = {s->columns.numeric, s->columns.categorical};
    size_t counts[2] = {s->columns.n_numeric, s->columns.n_categorical};
    const char *lname[2] = {"columns.numeric", "columns.categorical"};
    size_t total = counts[0] + counts[1];
    if (total > 1) {
        col_ref *refs = malloc(total * sizeof *refs);
        if (!refs)
            return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
        size_t k = 0;
        for (int a = 0; a < 2; a++)
            for (size_t i = 0; i < counts[a]; i++, k++)
                refs[k] = (col_ref){names[a][i], k};
        qsort(refs, total, sizeof *refs, col_ref_cmp);
        size_t dup = SIZE_MAX, first = 0;
        for (size_t i = 1; i < total; i++)
            if (!strcmp(refs[i].name, refs[i - 1].name)) {
                /* refs[i - 1] is the first listing only at the start of a run */
                size_t j = i - 1;
                while (j > 0 && !strcmp(refs[j - 1].name, refs[i].name))
                    j--;
                if (j == i - 1 && refs[i].pos < dup) {
                    dup = refs[i].pos;
                    first = refs[j].pos;
                }
            }
        free(refs);
        if (dup != SIZE_MAX) {
            int a = dup >= counts[0], b = first >= counts[0];
            size_t i = a ? dup - counts[0] : dup;
            if (a == b)
                return verr(c, lists[a]->kids[i], "%s: column '%s' listed twice", lname[a],
                            names[a][i]);
            return verr(c, lists[a]->kids[i], "%s: column '%s' listed twice (also in %s)",
                        lname[a], names[a][i], lname[b]);
        }
    }
    if (s->columns.label)
        for (int a = 0; a < 2; a++)
            for (size_t i = 0; i < counts[a]; i++)
                if (!strcmp(s->columns.label, names[a][i]))
                    return verr(c, mget(y, "label", NULL),
                                "columns.label: '%s' is also listed as a feature (%s)",
                                s->columns.label, lname[a]);
    return 0;
}

/* train: C and alpha are two spellings of one penalty (LogisticRegression's
 * and SGDClassifier's), so at most one is given; the optimal schedule
 * divides by alpha */
static int train_rule(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    if (s->train.has_C && s->train.has_alpha)
        return verr(c, mget(y, "alpha", NULL),
                    "train.alpha: cannot be combined with train.C (give C, LogisticRegression's "
                    "penalty, or alpha, SGDClassifier's)");
    if (s->train.has_alpha && s->train.learning_rate == MLOPS_LR_OPTIMAL && s->train.alpha <= 0)
        return verr(c, mget(y, "alpha", NULL) ? mget(y, "alpha", NULL) : y,
                    "train.alpha: learning_rate optimal needs alpha > 0");
    return 0;
}

/* knn: recommend needs two distinct key columns */
static int knn_rule(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    if (s->knn.mode != MLOPS_KNN_RECOMMEND)
        return 0;
    if (!s->knn.user || !s->knn.item)
        return verr(c, y, "knn: mode recommend needs 'user' and 'item' columns");
    if (!strcmp(s->knn.user, s->knn.item))
        return verr(c, mget(y, "item", NULL), "knn.item: same column as knn.user ('%s')",
                    s->knn.item);
    return 0;
}

/* search: ranges only for random search; no more trials than max_trials;
 * an alpha the optimal schedule cannot divide by */
static int search_rule(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    const ynode *g = mget(y, "grid", NULL);
    if (!g) /* checked here, after the other keys' bounds */
        return verr(c, y, "search: missing required key 'grid'");
    for (size_t i = 0; i < s->search.nparams; i++) {
        const mlops_jobspec_param_t *p = &s->search.params[i];
        if (p->dist != MLOPS_PARAM_LIST && !s->search.has_random)
            return verr(c, mget(g, p->key, NULL), "search.grid.%s: a range needs search.random", p->key);
        if (!strcmp(p->key, "train.alpha") && s->train.learning_rate == MLOPS_LR_OPTIMAL && p->lo <= 0)
            return verr(c, mget(g, p->key, NULL),
                        "search.grid.train.alpha: learning_rate optimal needs alpha > 0");
        /* a trial's C would be ignored beside an alpha (and an alpha would
         * override C): the two spellings of the penalty exclude each
         * other in a grid as in train */
        int is_c = !strcmp(p->key, "train.C"), is_alpha = !strcmp(p->key, "train.alpha");
        if ((is_c && s->train.has_alpha) || (is_alpha && s->train.has_C))
            return verr(c, mget(g, p->key, NULL),
                        "search.grid.%s: cannot be combined with %s (the job's penalty: search one of "
                        "C and alpha, and give the other nowhere)",
                        p->key, is_c ? "train.alpha" : "train.C");
        for (size_t k = 0; is_c && k < s->search.nparams; k++)
            if (!strcmp(s->search.params[k].key, "train.alpha"))
                return verr(c, mget(g, p->key, NULL),
                            "search.grid.train.C: cannot be combined with search.grid.train.alpha");
    }
    uint64_t n = mlops_search_count(s);
    if (n > s->search.max_trials)
        return verr(c, y, "search: %llu trials exceed search.max_trials (%u)", (unsigned long long)n,
                    s->search.max_trials);
    return 0;
}

/* Rules within one section that no single row can state. */
static const struct {
    const char *sect;
    int (*rule)(vctx *, const ynode *, mlops_jobspec_t *);
} SECTION_RULES[] = {{"columns", columns_rule}, {"train", train_rule}, {"knn", knn_rule},
                     {"search", search_rule}};

static int parse_section(vctx *c, const ynode *y, const char *name, const mlops_jobschema_key_t *sec,
                         mlops_jobspec_t *s)
{
    int rc;
    if ((rc = want_map(c, y, name)) != 0 || (rc = check_keys(c, y, name, sec->key)) != 0)
        return rc;
    *AT(s, sec->off, int) = 1;
    if ((rc = parse_keys(c, y, name, sec->key, s)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof SECTION_RULES / sizeof SECTION_RULES[0]; i++)
        if (!strcmp(SECTION_RULES[i].sect, sec->key) && (rc = SECTION_RULES[i].rule(c, y, s)) != 0)
            return rc;
    return 0;
}

/* Rules across sections, once every section is parsed. */
static int cross_check(vctx *c, const ynode *root, mlops_jobspec_t *s)
{
    ynode *k;
    if (s->has_noop) {
        static const char *const stages[] = {"clean", "scale", "hash",     "split",
                                             "train", "evaluate", "knn", NULL};
        for (int i = 0; stages[i]; i++)
            if (mget(root, stages[i], &k) && (strcmp(stages[i], "scale") || s->has_scale))
                return verr(c, k, "%s: cannot be combined with noop (noop stands alone)",
                            stages[i]);
        return 0;
    }
    if (s->input.format == MLOPS_INPUT_NONE)
        return verr(c, NULL, "missing required key 'input'");
    if (s->has_drift && s->has_predict)
        return verr(c, mget(root, "drift", NULL),
                    "drift: cannot be combined with predict (run them as two jobs)");
    if (s->has_predict || s->has_drift) {
        /* drift is a predict job that reports drift instead of predictions */
        const char *what = s->has_drift ? "drift" : "predict";
        const char *model = s->has_drift ? s->drift.model : s->predict.model;
        static const char *const stages[] = {"clean", "scale", "hash", "split", "train",
                                             "evaluate", "knn", "register", NULL};
        for (int i = 0; stages[i]; i++)
            if (mget(root, stages[i], &k) && (strcmp(stages[i], "scale") || s->has_scale))
                return verr(c, k, "%s: cannot be combined with %s (the model brings its own pipeline)",
                            stages[i], what);
        if (s->input.format != MLOPS_INPUT_CSV)
            return verr(c, mget(root, what, NULL), "%s: needs CSV input", what);
        const char *at = strchr(model, '@');
        if (!at || at == model || !at[1])
            return verr(c, mget(mget(root, what, NULL), "model", NULL),
                        "%s.model: expected NAME@VERSION or NAME@ALIAS, got '%s'", what, model);
        return 0;
    }
    int idx = s->input.format == MLOPS_INPUT_IDX;
    size_t nfeat = s->columns.n_numeric + s->columns.n_categorical;
    if (!idx && !s->has_columns)
        return verr(c, NULL, "missing required key 'columns'");
    if (idx && s->has_columns) {
        ynode *cols = mget(root, "columns", NULL);
        if (mget(cols, "numeric", &k) || mget(cols, "categorical", &k))
            return verr(c, k, "columns.%s: not used with idx input (features are the pixels)",
                        k->str);
    }
    if (idx) {
        if (s->has_clean && mget(root, "clean", &k))
            return verr(c, k, "clean: not used with idx input (images have no missing values)");
        if (s->has_hash && mget(root, "hash", &k))
            return verr(c, k, "hash: not used with idx input (no categorical columns)");
    } else {
        if (s->has_clean && s->clean.has_iqr && s->columns.n_numeric == 0)
            return verr(c, mget(mget(root, "clean", NULL), "iqr_k", NULL),
                        "clean.iqr_k: no numeric columns to filter (columns.numeric)");
        if (s->has_scale && s->columns.n_numeric == 0 && mget(root, "scale", &k))
            return verr(c, k, "scale: no numeric columns to scale (columns.numeric)");
        if (s->has_hash && s->columns.n_categorical == 0 && mget(root, "hash", &k))
            return verr(c, k, "hash: no categorical columns to hash (columns.categorical)");
    }
    if (s->njoin && s->input.format != MLOPS_INPUT_CSV && mget(root, "join", &k))
        return verr(c, k, "join: needs CSV input");
    for (size_t i = 0; i < s->njoin; i++)
        for (size_t e = 0; e < s->njoin; e++)
            for (size_t a = 0; a < s->join[e].ncolumns; a++)
                if (!strcmp(s->join[i].on, s->join[e].columns[a]) && mget(root, "join", &k))
                    return verr(c, k, "join[%zu].on: '%s' is a column that join[%zu] appends", i,
                                s->join[i].on, e);
    if (s->has_train && mget(root, "train", &k)) {
        if (!mlops_jobspec_has_label(s))
            return verr(c, k, "train: needs a label column (columns.label)");
        if (!idx && nfeat == 0)
            return verr(c, k, "train: no feature columns (columns.numeric, columns.categorical)");
    }
    if (s->has_cv && !s->has_train && mget(root, "cv", &k))
        return verr(c, k, "cv: needs a train stage");
    if (s->has_search && !s->has_train && mget(root, "search", &k))
        return verr(c, k, "search: needs a train stage");
    /* the folds and trials train by SGD's epochs (stage_cv.c): a refit by
     * L-BFGS would not be the model the search chose */
    if ((s->has_cv || s->has_search) && s->has_train && s->train.solver == MLOPS_SOLVER_LBFGS &&
        mget(root, s->has_search ? "search" : "cv", &k))
        return verr(c, k, "%s: not with train.solver lbfgs (the folds train by SGD)",
                    s->has_search ? "search" : "cv");
    if (s->has_evaluate && !s->has_train && mget(root, "evaluate", &k))
        return verr(c, k, "evaluate: needs a train stage");
    if (s->has_register && !s->has_train && !(s->has_knn && s->knn.mode == MLOPS_KNN_RECOMMEND) &&
        mget(root, "register", &k))
        return verr(c, k, "register: needs a train stage or a knn stage in recommend mode");
    if (s->has_promote && !s->promote.alias && !(s->promote.alias = strdup("production")))
        return MLOPS_ENOMEM;
    if (s->has_promote && mget(root, "promote", &k)) {
        if (!s->has_evaluate)
            return verr(c, k, "promote: needs an evaluate stage");
        if (!s->has_split)
            return verr(c, k, "promote: needs a split (champion and challenger are scored on its test rows)");
        if (!(s->metrics & (1u << s->promote.metric)))
            return verr(c, mget(k, "metric", NULL) ? mget(k, "metric", NULL) : k,
                        "promote.metric: '%s' is not among the evaluate metrics",
                        mlops_jobschema_find("promote", "metric")->names[s->promote.metric]);
        if (strlen(s->promote.alias) > 64)
            return verr(c, mget(k, "alias", NULL), "promote.alias: at most 64 characters");
    }
    if (s->has_knn && mget(root, "knn", &k)) {
        if (s->knn.mode == MLOPS_KNN_CLASSIFY) {
            if (!mlops_jobspec_has_label(s))
                return verr(c, k, "knn: mode classify needs a label column (columns.label)");
            if (!idx && nfeat == 0)
                return verr(c, k,
                            "knn: no feature columns (columns.numeric, columns.categorical)");
            if (s->knn.has_queries && s->knn.queries.format != s->input.format)
                return verr(c, mget(mget(root, "knn", NULL), "queries", NULL),
                            "knn.queries: format must match the input's (%s)",
                            idx ? "idx" : "csv");
        } else if (idx) {
            return verr(c, k, "knn: mode recommend needs CSV input");
        }
    }
    return 0;
}

/* Fill a spec from the tree: the top-level rows, then the rules across
 * sections. */
static int build_spec(vctx *c, const ynode *root, mlops_jobspec_t *s)
{
    int rc;
    if ((rc = check_keys(c, root, "", "")) != 0 || (rc = parse_keys(c, root, "", "", s)) != 0)
        return rc;
    return cross_check(c, root, s);
}

/* ------------------------------------------------------------------------
 * --set overrides
 * ------------------------------------------------------------------------ */

/* Apply "a.b.c=value" to the tree: create missing maps, replace or add
 * the last key. Nodes it adds carry origin = set. */
static int apply_set(ynode *root, const char *set, char *err, size_t errlen)
{
    const char *eq = strchr(set, '=');
    size_t klen = eq ? (size_t)(eq - set) : 0;
    int ok = eq && klen > 0 && set[0] != '.' && set[klen - 1] != '.';
    for (size_t i = 0; ok && i < klen; i++) {
        char ch = set[i];
        ok = isalnum((unsigned char)ch) || ch == '_' || (ch == '.' && set[i + 1] != '.');
    }
    if (!ok)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "--set %s: expected key=value with a dotted key (train.epochs=3)", set);
    char name[300];
    snprintf(name, sizeof name, "--set %s", set);
    ynode *val;
    int rc = yaml_load(eq + 1, strlen(eq + 1), name, set, &val, err, errlen);
    if (rc != 0)
        return rc;
    if (!val && !(val = ynode_scalar("", 0, 1, 0, set)))
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "--set %s: out of memory", set);

    ynode *cur = root;
    const char *seg = set;
    for (;;) {
        const char *dot = memchr(seg, '.', (size_t)(eq - seg));
        size_t sl = dot ? (size_t)(dot - seg) : (size_t)(eq - seg);
        ynode *knode = NULL, *v = NULL;
        for (size_t i = 0; i + 1 < cur->n; i += 2) {
            ynode *k = cur->kids[i];
            if (k->kind == YN_SCALAR && k->len == sl && !memcmp(k->str, seg, sl)) {
                knode = k;
                v = cur->kids[i + 1];
                if (!dot) {
                    ynode_free(v);
                    cur->kids[i + 1] = val;
                    return 0;
                }
                break;
            }
        }
        if (!knode) {
            ynode *k = ynode_scalar(seg, sl, 1, 0, set);
            v = dot ? ynode_new(YN_MAP, 0, set) : val;
            if (!k || !v || ynode_add(cur, k) != 0) {
                ynode_free(k);
                if (v != val)
                    ynode_free(v);
                ynode_free(val);
                return mlops_seterr(err, errlen, MLOPS_ENOMEM, "--set %s: out of memory", set);
            }
            if (ynode_add(cur, v) != 0) {
                cur->n--;
                ynode_free(k);
                if (v != val)
                    ynode_free(v);
                ynode_free(val);
                return mlops_seterr(err, errlen, MLOPS_ENOMEM, "--set %s: out of memory", set);
            }
            if (!dot)
                return 0;
        } else if (v->kind != YN_MAP) {
            ynode_free(val);
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "--set %s: '%.*s' is not a mapping",
                                set, (int)(dot - set), set);
        }
        cur = v;
        seg = dot + 1;
    }
}

/* ------------------------------------------------------------------------
 * Public: parse, destroy
 * ------------------------------------------------------------------------ */

static void free_input(mlops_jobspec_input_t *in)
{
    for (size_t i = 0; i < in->npaths; i++)
        free(in->paths[i]);
    if (in->paths && !in->npaths)
        free(in->paths[0]);
    free(in->paths);
    free(in->images);
    free(in->labels);
}

static void free_list(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void mlops_jobspec_destroy(mlops_jobspec_t **ps)
{
    if (!ps || !*ps)
        return;
    mlops_jobspec_t *s = *ps;
    free(s->name);
    free_input(&s->input);
    free(s->columns.label);
    free_list(s->columns.numeric, s->columns.n_numeric);
    free_list(s->columns.categorical, s->columns.n_categorical);
    free_list(s->columns.classes, s->columns.n_classes);
    free(s->knn.user);
    free(s->knn.item);
    free(s->reg.model);
    free(s->predict.model);
    free(s->drift.model);
    free(s->promote.alias);
    free_list(s->predict.keep, s->predict.n_keep);
    free_list(s->reg.tags, s->reg.n_tags);
    free_input(&s->knn.queries);
    for (size_t i = 0; i < s->njoin; i++) {
        free(s->join[i].input);
        free(s->join[i].on);
        free_list(s->join[i].columns, s->join[i].ncolumns);
    }
    free(s->join);
    for (size_t i = 0; i < s->search.nparams; i++) {
        free(s->search.params[i].key);
        free(s->search.params[i].values);
    }
    free(s->search.params);
    free(s);
    *ps = NULL;
}

int mlops_jobspec_parse_with_sets(const char *text, size_t len, const char *filename,
                                  const char *const *sets, size_t nsets,
                                  mlops_jobspec_t **out, char *err, size_t errlen)
{
    const char *file = filename && *filename ? filename : "<job>";
    if (err && errlen)
        err[0] = '\0';
    if (!out || (!text && len) || (nsets && !sets))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: bad arguments", file);
    *out = NULL;
    ynode *root;
    int rc = yaml_load(text ? text : "", len, file, NULL, &root, err, errlen);
    if (rc != 0)
        return rc;
    vctx c = {.file = file, .err = err, .errlen = errlen};
    if (!root || is_null(root)) {
        ynode_free(root);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: empty job file", file);
    }
    if (root->kind != YN_MAP) {
        char b[64];
        rc = verr(&c, root, "expected a mapping of keys at the top level, got %s",
                  shown(root, b, sizeof b));
        ynode_free(root);
        return rc;
    }
    for (size_t i = 0; i < nsets; i++) {
        if (!sets[i]) {
            ynode_free(root);
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "--set: empty override");
        }
        /* Messages quote the override: a line break in it would split
         * the one-line error (found by fuzz_jobspec). */
        if (strpbrk(sets[i], "\r\n")) {
            ynode_free(root);
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "--set: override %zu holds a line break; give one key=value each",
                                i + 1);
        }
        if ((rc = apply_set(root, sets[i], err, errlen)) != 0) {
            ynode_free(root);
            return rc;
        }
    }
    mlops_jobspec_t *s = calloc(1, sizeof *s);
    if (!s) {
        ynode_free(root);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "%s: out of memory", file);
    }
    mlops_jobschema_defaults(s);
    rc = build_spec(&c, root, s);
    ynode_free(root);
    if (rc != 0) {
        mlops_jobspec_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

int mlops_jobspec_parse(const char *text, size_t len, const char *filename,
                        mlops_jobspec_t **out, char *err, size_t errlen)
{
    return mlops_jobspec_parse_with_sets(text, len, filename, NULL, 0, out, err, errlen);
}

/* ------------------------------------------------------------------------
 * Columns, header check, input files
 * ------------------------------------------------------------------------ */

int mlops_jobspec_has_label(const mlops_jobspec_t *s)
{
    return s && (s->input.format == MLOPS_INPUT_IDX || s->columns.label != NULL);
}

int mlops_jobspec_used_columns(const mlops_jobspec_t *s, mlops_jobspec_col_t **cols, size_t *n)
{
    if (!s || !cols || !n)
        return MLOPS_EINVAL;
    *cols = NULL;
    *n = 0;
    if (s->input.format != MLOPS_INPUT_CSV || !s->has_columns)
        return 0;
    size_t cap = s->columns.n_numeric + s->columns.n_categorical + 3 + s->njoin;
    mlops_jobspec_col_t *v = calloc(cap, sizeof *v);
    if (!v)
        return MLOPS_ENOMEM;
    size_t k = 0, w;
    for (size_t i = 0; i < s->columns.n_numeric; i++)
        if (!mlops_jobspec_joined_column(s, s->columns.numeric[i], &w))
            v[k++] = (mlops_jobspec_col_t){s->columns.numeric[i], MLK_F64, MLOPS_COL_NUMERIC};
    for (size_t i = 0; i < s->columns.n_categorical; i++)
        if (!mlops_jobspec_joined_column(s, s->columns.categorical[i], &w))
            v[k++] =
                (mlops_jobspec_col_t){s->columns.categorical[i], MLK_STR, MLOPS_COL_CATEGORICAL};
    if (s->columns.label && !mlops_jobspec_joined_column(s, s->columns.label, &w))
        v[k++] = (mlops_jobspec_col_t){s->columns.label, MLK_STR, MLOPS_COL_LABEL};
    for (size_t j = 0; j < s->njoin; j++) {
        int seen = 0;
        for (size_t i = 0; i < k && !seen; i++)
            seen = !strcmp(v[i].name, s->join[j].on);
        if (!seen)
            v[k++] = (mlops_jobspec_col_t){s->join[j].on, MLK_STR, MLOPS_COL_JOIN_KEY};
    }
    if (s->has_knn && s->knn.mode == MLOPS_KNN_RECOMMEND) {
        const char *keys[2] = {s->knn.user, s->knn.item};
        for (int j = 0; j < 2; j++) {
            int seen = 0;
            for (size_t i = 0; i < k && !seen; i++)
                seen = !strcmp(v[i].name, keys[j]);
            if (!seen && keys[j] && !mlops_jobspec_joined_column(s, keys[j], &w) && k < cap)
                v[k++] = (mlops_jobspec_col_t){keys[j], MLK_STR, MLOPS_COL_KEY};
        }
    }
    *cols = v;
    *n = k;
    return 0;
}

int mlops_jobspec_joined_column(const mlops_jobspec_t *s, const char *name, size_t *which)
{
    for (size_t j = 0; s && name && j < s->njoin; j++)
        for (size_t i = 0; i < s->join[j].ncolumns; i++)
            if (!strcmp(s->join[j].columns[i], name)) {
                if (which)
                    *which = j;
                return 1;
            }
    return 0;
}

static const char *role_name(const mlops_jobspec_t *s, const mlops_jobspec_col_t *c)
{
    switch (c->role) {
    case MLOPS_COL_JOIN_KEY: return "join.on";
    case MLOPS_COL_NUMERIC: return "columns.numeric";
    case MLOPS_COL_CATEGORICAL: return "columns.categorical";
    case MLOPS_COL_LABEL: return "columns.label";
    default: return s->knn.user && !strcmp(c->name, s->knn.user) ? "knn.user" : "knn.item";
    }
}

int mlops_jobspec_check_header(const mlops_jobspec_t *s, const char *csvname,
                               const char *const *names, size_t n, char *err, size_t errlen)
{
    const char *file = csvname ? csvname : "<csv>";
    if (!s || (n && !names))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: bad arguments", file);
    mlops_jobspec_col_t *cols;
    size_t nc;
    int rc = mlops_jobspec_used_columns(s, &cols, &nc);
    if (rc != 0)
        return mlops_seterr(err, errlen, rc, "%s: out of memory", file);
    for (size_t i = 0; i < nc && rc == 0; i++) {
        size_t hits = 0;
        for (size_t j = 0; j < n; j++)
            if (names[j] && !strcmp(names[j], cols[i].name))
                hits++;
        if (hits == 0)
            rc = mlops_seterr(err, errlen, MLOPS_ENOTFOUND,
                              "%s: column '%s' (%s) is not in the header", file, cols[i].name,
                              role_name(s, &cols[i]));
        else if (hits > 1)
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                              "%s: column '%s' (%s) appears %zu times in the header", file,
                              cols[i].name, role_name(s, &cols[i]), hits);
    }
    free(cols);
    return rc;
}

char *mlops_jobspec_dirname(const char *filename)
{
    const char *slash = filename ? strrchr(filename, '/') : NULL;
    if (!slash)
        return strdup(".");
    if (slash == filename)
        return strdup("/");
    return strndup(filename, (size_t)(slash - filename));
}

static int add_file(mlops_jobspec_file_t *v, size_t *k, const char *role, const char *jobdir,
                    const char *path)
{
    char *p;
    if (path[0] == '/' || !jobdir || !*jobdir) {
        p = strdup(path);
    } else {
        size_t a = strlen(jobdir), b = strlen(path);
        p = malloc(a + b + 2);
        if (p) {
            memcpy(p, jobdir, a);
            size_t o = a;
            if (a && jobdir[a - 1] != '/')
                p[o++] = '/';
            memcpy(p + o, path, b + 1);
        }
    }
    if (!p)
        return MLOPS_ENOMEM;
    v[*k].role = role;
    v[*k].path = p;
    (*k)++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A CSV path: as written, or its glob's matches in strcmp order (glob(3)
 * sorts by the locale, which would make the order depend on it). */
static int add_csv(mlops_jobspec_file_t **v, size_t *k, size_t *cap, const char *jobdir,
                   const char *path, char *err, size_t errlen)
{
    mlops_jobspec_file_t one[1];
    size_t n1 = 0;
    int rc = add_file(one, &n1, "input", jobdir, path);
    if (rc != 0)
        return mlops_seterr(err, errlen, rc, "out of memory");
    char *full = one[0].path;
    glob_t g;
    size_t nm = 1;
    int is_glob = strpbrk(path, "*?[") != NULL;
    if (is_glob) {
        int gr = glob(full, 0, NULL, &g);
        if (gr == GLOB_NOMATCH || (gr == 0 && g.gl_pathc == 0)) {
            if (gr == 0)
                globfree(&g);
            free(full);
            return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "input: '%s' matches no file", path);
        }
        if (gr != 0) {
            free(full);
            return mlops_seterr(err, errlen, MLOPS_EIO, "input: cannot expand '%s'", path);
        }
        nm = g.gl_pathc;
        qsort(g.gl_pathv, nm, sizeof *g.gl_pathv, by_name);
    }
    if (*k + nm > *cap) {
        size_t nc = (*k + nm) * 2;
        mlops_jobspec_file_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            rc = MLOPS_ENOMEM;
        else {
            *v = nv;
            *cap = nc;
        }
    }
    for (size_t i = 0; rc == 0 && i < nm; i++) {
        char *p = is_glob ? strdup(g.gl_pathv[i]) : full;
        if (!p) {
            rc = MLOPS_ENOMEM;
            break;
        }
        (*v)[*k].role = "input";
        (*v)[*k].path = p;
        (*k)++;
    }
    if (is_glob) {
        globfree(&g);
        free(full);
    } else if (rc != 0)
        free(full);
    return rc ? mlops_seterr(err, errlen, rc, "out of memory") : 0;
}

/* the upload role of join i's right table (roles are static strings) */
static const char *const JOIN_ROLES[16] = {"join.0",  "join.1",  "join.2",  "join.3",
                                           "join.4",  "join.5",  "join.6",  "join.7",
                                           "join.8",  "join.9",  "join.10", "join.11",
                                           "join.12", "join.13", "join.14", "join.15"};

int mlops_jobspec_inputs_err(const mlops_jobspec_t *s, const char *jobdir,
                             mlops_jobspec_file_t **files, size_t *n, char *err, size_t errlen)
{
    if (!s || !files || !n)
        return MLOPS_EINVAL;
    *files = NULL;
    *n = 0;
    size_t cap = 4 + s->njoin + (s->input.format == MLOPS_INPUT_CSV ? s->input.npaths : 0);
    mlops_jobspec_file_t *v = calloc(cap, sizeof *v);
    if (!v)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    size_t k = 0;
    int rc = 0;
    if (s->input.format == MLOPS_INPUT_CSV) {
        for (size_t i = 0; rc == 0 && i < s->input.npaths; i++)
            rc = add_csv(&v, &k, &cap, jobdir, s->input.paths[i], err, errlen);
    } else if (s->input.format == MLOPS_INPUT_IDX) {
        if ((rc = add_file(v, &k, "images", jobdir, s->input.images)) == 0)
            rc = add_file(v, &k, "labels", jobdir, s->input.labels);
    }
    /* the join tables after the inputs: add_csv may have grown v, so
     * make room first */
    if (rc == 0 && s->njoin && k + s->njoin + 2 > cap) {
        mlops_jobspec_file_t *nv = realloc(v, (k + s->njoin + 2) * sizeof *nv);
        if (!nv)
            rc = MLOPS_ENOMEM;
        else {
            v = nv;
            cap = k + s->njoin + 2;
        }
    }
    for (size_t i = 0; rc == 0 && i < s->njoin && i < 16; i++)
        rc = add_file(v, &k, JOIN_ROLES[i], jobdir, s->join[i].input);
    if (rc == 0 && s->has_knn && s->knn.has_queries) {
        if (k + 2 > cap) {
            mlops_jobspec_file_t *nv = realloc(v, (k + 2) * sizeof *nv);
            if (!nv)
                rc = MLOPS_ENOMEM;
            else
                v = nv;
        }
        if (rc != 0)
            ;
        else if (s->knn.queries.format == MLOPS_INPUT_CSV)
            rc = add_file(v, &k, "queries.input", jobdir, s->knn.queries.path);
        else if ((rc = add_file(v, &k, "queries.images", jobdir, s->knn.queries.images)) == 0)
            rc = add_file(v, &k, "queries.labels", jobdir, s->knn.queries.labels);
        if (rc == MLOPS_ENOMEM)
            mlops_seterr(err, errlen, rc, "out of memory");
    }
    if (rc != 0) {
        mlops_jobspec_files_free(&v, k);
        return rc;
    }
    if (k == 0) {
        free(v);
        v = NULL;
    }
    *files = v;
    *n = k;
    return 0;
}

int mlops_jobspec_inputs(const mlops_jobspec_t *s, const char *jobdir, mlops_jobspec_file_t **files,
                         size_t *n)
{
    char err[8];
    return mlops_jobspec_inputs_err(s, jobdir, files, n, err, sizeof err);
}

void mlops_jobspec_files_free(mlops_jobspec_file_t **files, size_t n)
{
    if (!files || !*files)
        return;
    for (size_t i = 0; i < n; i++)
        free((*files)[i].path);
    free(*files);
    *files = NULL;
}
