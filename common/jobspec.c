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
 *  - Validation walks a fixed schema: each section lists its keys (an
 *    unknown or duplicate key is an error), typed getters check one value
 *    each, then cross-section rules run on the filled spec.
 *  - The canonical YAML quotes every string and prints every field, so
 *    parse(to_yaml(s)) gives the same spec and the same text. */
#include "jobspec.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 32
#define MAX_NODES 100000
#define MAX_NAME 128

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
    if (sect && *sect)
        snprintf(buf, n, "%s.%s", sect, key);
    else
        snprintf(buf, n, "%s", key);
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

/* Every key of map must be a scalar in `allowed` and appear once. */
static int check_keys(vctx *c, const ynode *map, const char *sect, const char *const *allowed)
{
    char b[64];
    const char *pre = sect && *sect ? sect : "";
    const char *sep = sect && *sect ? ": " : "";
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const ynode *k = map->kids[i];
        if (k->kind != YN_SCALAR || strlen(k->str) != k->len)
            return verr(c, k, "%s%sexpected a plain key, got %s", pre, sep, shown(k, b, sizeof b));
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, k->str);
        if (!ok)
            return verr(c, k, "%s%sunknown key %s", pre, sep, shown(k, b, sizeof b));
        for (size_t j = 0; j < i; j += 2) {
            if (!strcmp(map->kids[j]->str, k->str)) {
                if (map->kids[j]->origin)
                    return verr(c, k, "%s%sduplicate key %s (also set by --set %s)", pre, sep,
                                shown(k, b, sizeof b), map->kids[j]->origin);
                return verr(c, k, "%s%sduplicate key %s (first at line %d)", pre, sep,
                            shown(k, b, sizeof b), map->kids[j]->line);
            }
        }
    }
    return 0;
}

/* Unsigned integer at map[key] in [lo, hi]; absent = keep *out. */
static int get_uint(vctx *c, const ynode *map, const char *sect, const char *key, uint64_t lo,
                    uint64_t hi, uint32_t *out)
{
    ynode *y = mget(map, key, NULL);
    if (!y)
        return 0;
    char p[96], b[64], want[64];
    if (lo == 1 && hi == INT32_MAX)
        snprintf(want, sizeof want, "a positive integer");
    else
        snprintf(want, sizeof want, "an integer in %llu..%llu", (unsigned long long)lo,
                 (unsigned long long)hi);
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
    if (!ok || v < lo || v > hi)
        return verr(c, y, "%s: expected %s, got %s", fpath(p, sizeof p, sect, key), want,
                    shown(y, b, sizeof b));
    *out = (uint32_t)v;
    return 0;
}

/* Finite number at map[key] within bounds (open or closed); absent =
 * keep *out. `want` describes the range for the message. */
static int get_num(vctx *c, const ynode *map, const char *sect, const char *key, double lo,
                   int lo_open, double hi, int hi_open, const char *want, double *out,
                   int *present)
{
    ynode *y = mget(map, key, NULL);
    if (!y)
        return 0;
    char p[96], b[64];
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
        ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok)
        return verr(c, y, "%s: expected %s, got %s", fpath(p, sizeof p, sect, key), want,
                    shown(y, b, sizeof b));
    *out = v;
    if (present)
        *present = 1;
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

static int get_bool(vctx *c, const ynode *map, const char *sect, const char *key, int *out)
{
    ynode *y = mget(map, key, NULL);
    if (!y)
        return 0;
    char p[96], b[64];
    if (!parse_bool(y, out))
        return verr(c, y, "%s: expected true or false, got %s", fpath(p, sizeof p, sect, key),
                    shown(y, b, sizeof b));
    return 0;
}

/* One of names[] (NULL-terminated); *out = its index. */
static int get_enum(vctx *c, const ynode *map, const char *sect, const char *key,
                    const char *const *names, int *out)
{
    ynode *y = mget(map, key, NULL);
    if (!y)
        return 0;
    if (y->kind == YN_SCALAR)
        for (int i = 0; names[i]; i++)
            if (!strcmp(names[i], y->str) && strlen(y->str) == y->len) {
                *out = i;
                return 0;
            }
    char p[96], b[64], want[160] = "";
    size_t o = 0;
    for (int i = 0; names[i] && o < sizeof want; i++)
        o += (size_t)snprintf(want + o, sizeof want - o, "%s%s", i ? (names[i + 1] ? ", " : " or ")
                                                                   : "",
                              names[i]);
    return verr(c, y, "%s: expected %s, got %s", fpath(p, sizeof p, sect, key), want,
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

static int get_str(vctx *c, const ynode *map, const char *sect, const char *key, char **out)
{
    ynode *y = mget(map, key, NULL);
    if (!y)
        return 0;
    char p[96];
    return node_str(c, y, fpath(p, sizeof p, sect, key), out);
}

/* A list of strings at map[key]. */
static int get_str_list(vctx *c, const ynode *map, const char *sect, const char *key,
                        char ***out, size_t *n)
{
    ynode *y = mget(map, key, NULL);
    if (!y)
        return 0;
    char p[96], b[64];
    fpath(p, sizeof p, sect, key);
    if (y->kind != YN_SEQ)
        return verr(c, y, "%s: expected a list of names, got %s", p, shown(y, b, sizeof b));
    char **v = y->n ? calloc(y->n, sizeof *v) : NULL;
    if (y->n && !v)
        return mlops_seterr(c->err, c->errlen, MLOPS_ENOMEM, "%s: out of memory", c->file);
    *out = v;
    *n = 0;
    for (size_t i = 0; i < y->n; i++) {
        int rc = node_str(c, y->kids[i], p, &v[i]);
        if (rc != 0)
            return rc;
        *n = i + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Sections
 * ------------------------------------------------------------------------ */

static const char *const TOP_KEYS[] = {"name",  "input", "shard_rows", "on_bad_row", "columns",
                                       "clean", "scale", "hash",       "split",      "train",
                                       "evaluate", "knn", "noop", NULL};
static const char *const BAD_ROW_NAMES[] = {"fail", "skip", NULL};
static const char *const FORMAT_NAMES[] = {"csv", "idx", NULL};
static const char *const SPLIT_NAMES[] = {"hash", "sklearn", NULL};
static const char *const MODEL_NAMES[] = {"logistic", NULL};
static const char *const LR_NAMES[] = {"optimal", "constant", "invscaling", "adagrad", NULL};
static const char *const METRIC_NAMES[] = {"accuracy", "logloss",   "auc",       "f1",
                                           "precision", "recall", "confusion", NULL};
static const char *const KNN_METRIC_NAMES[] = {"euclidean", "cosine", NULL};
static const char *const KNN_MODE_NAMES[] = {"classify", "recommend", NULL};
static const char *const KNN_WEIGHT_NAMES[] = {"uniform", "distance", NULL};

/* input: a CSV path, or {format: csv, path} / {format: idx, images, labels} */
static int parse_input(vctx *c, const ynode *y, const char *sect, mlops_jobspec_input_t *in)
{
    if (y->kind == YN_SCALAR) {
        in->format = MLOPS_INPUT_CSV;
        return node_str(c, y, sect, &in->path);
    }
    int rc;
    static const char *const keys[] = {"format", "path", "images", "labels", NULL};
    if ((rc = want_map(c, y, sect)) != 0 || (rc = check_keys(c, y, sect, keys)) != 0)
        return rc;
    int fmt = 0;
    if ((rc = get_enum(c, y, sect, "format", FORMAT_NAMES, &fmt)) != 0)
        return rc;
    in->format = fmt == 1 ? MLOPS_INPUT_IDX : MLOPS_INPUT_CSV;
    const char *need[2] = {"path", NULL};
    const char *bad[2] = {"images", "labels"};
    if (in->format == MLOPS_INPUT_IDX) {
        need[0] = "images";
        need[1] = "labels";
        bad[0] = "path";
        bad[1] = NULL;
    }
    for (int i = 0; i < 2; i++) {
        ynode *k;
        if (bad[i] && mget(y, bad[i], &k))
            return verr(c, k, "%s: key '%s' is not used with format %s", sect, bad[i],
                        FORMAT_NAMES[fmt]);
        if (need[i] && !mget(y, need[i], NULL))
            return verr(c, y, "%s: missing required key '%s'", sect, need[i]);
    }
    if ((rc = get_str(c, y, sect, "path", &in->path)) != 0 ||
        (rc = get_str(c, y, sect, "images", &in->images)) != 0 ||
        (rc = get_str(c, y, sect, "labels", &in->labels)) != 0)
        return rc;
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

static int parse_columns(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    static const char *const keys[] = {"label", "numeric", "categorical", NULL};
    int rc;
    if ((rc = want_map(c, y, "columns")) != 0 || (rc = check_keys(c, y, "columns", keys)) != 0)
        return rc;
    s->has_columns = 1;
    if ((rc = get_str(c, y, "columns", "label", &s->columns.label)) != 0 ||
        (rc = get_str_list(c, y, "columns", "numeric", &s->columns.numeric,
                           &s->columns.n_numeric)) != 0 ||
        (rc = get_str_list(c, y, "columns", "categorical", &s->columns.categorical,
                           &s->columns.n_categorical)) != 0)
        return rc;
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

static int parse_clean(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    static const char *const keys[] = {"dropna", "iqr_k", NULL};
    int rc;
    if ((rc = want_map(c, y, "clean")) != 0 || (rc = check_keys(c, y, "clean", keys)) != 0)
        return rc;
    s->has_clean = 1;
    if ((rc = get_bool(c, y, "clean", "dropna", &s->clean.dropna)) != 0 ||
        (rc = get_num(c, y, "clean", "iqr_k", 0, 0, HUGE_VAL, 0, "a number >= 0",
                      &s->clean.iqr_k, &s->clean.has_iqr)) != 0)
        return rc;
    return 0;
}

static int parse_hash(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    static const char *const keys[] = {"n_features", "alternate_sign", NULL};
    int rc;
    if ((rc = want_map(c, y, "hash")) != 0 || (rc = check_keys(c, y, "hash", keys)) != 0)
        return rc;
    s->has_hash = 1;
    if ((rc = get_uint(c, y, "hash", "n_features", 1, INT32_MAX, &s->hash.n_features)) != 0 ||
        (rc = get_bool(c, y, "hash", "alternate_sign", &s->hash.alternate_sign)) != 0)
        return rc;
    return 0;
}

static int parse_split(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    static const char *const keys[] = {"test_size", "seed", "method", NULL};
    int rc, m = (int)s->split.method;
    if ((rc = want_map(c, y, "split")) != 0 || (rc = check_keys(c, y, "split", keys)) != 0)
        return rc;
    s->has_split = 1;
    if ((rc = get_num(c, y, "split", "test_size", 0, 1, 1, 1, "a number in (0, 1)",
                      &s->split.test_size, NULL)) != 0 ||
        (rc = get_uint(c, y, "split", "seed", 0, UINT32_MAX, &s->split.seed)) != 0 ||
        (rc = get_enum(c, y, "split", "method", SPLIT_NAMES, &m)) != 0)
        return rc;
    s->split.method = (mlops_split_method)m;
    return 0;
}

static int parse_train(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    static const char *const keys[] = {"model", "epochs",     "learning_rate", "alpha", "eta0",
                                        "power_t", "batch_size", "seed", "shuffle", NULL};
    int rc, model = 0, lr = (int)s->train.learning_rate;
    if ((rc = want_map(c, y, "train")) != 0 || (rc = check_keys(c, y, "train", keys)) != 0)
        return rc;
    s->has_train = 1;
    if ((rc = get_enum(c, y, "train", "model", MODEL_NAMES, &model)) != 0 ||
        (rc = get_uint(c, y, "train", "epochs", 1, 1000, &s->train.epochs)) != 0 ||
        (rc = get_enum(c, y, "train", "learning_rate", LR_NAMES, &lr)) != 0 ||
        (rc = get_num(c, y, "train", "alpha", 0, 0, HUGE_VAL, 0, "a number >= 0",
                      &s->train.alpha, NULL)) != 0 ||
        (rc = get_num(c, y, "train", "eta0", 0, 1, HUGE_VAL, 0, "a number > 0", &s->train.eta0,
                      NULL)) != 0 ||
        (rc = get_num(c, y, "train", "power_t", -HUGE_VAL, 0, HUGE_VAL, 0, "a number",
                      &s->train.power_t, NULL)) != 0 ||
        (rc = get_uint(c, y, "train", "batch_size", 1, INT32_MAX, &s->train.batch_size)) != 0 ||
        (rc = get_uint(c, y, "train", "seed", 0, UINT32_MAX, &s->train.seed)) != 0 ||
        (rc = get_bool(c, y, "train", "shuffle", &s->train.shuffle)) != 0)
        return rc;
    s->train.model = (mlops_model)model;
    s->train.learning_rate = (mlops_learning_rate)lr;
    if (s->train.learning_rate == MLOPS_LR_OPTIMAL && s->train.alpha <= 0)
        return verr(c, mget(y, "alpha", NULL) ? mget(y, "alpha", NULL) : y,
                    "train.alpha: learning_rate optimal needs alpha > 0");
    return 0;
}

static int parse_evaluate(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    char b[64];
    if (y->kind != YN_SEQ)
        return verr(c, y, "evaluate: expected a list of metrics, got %s", shown(y, b, sizeof b));
    if (y->n == 0)
        return verr(c, y, "evaluate: expected at least one metric");
    s->has_evaluate = 1;
    for (size_t i = 0; i < y->n; i++) {
        const ynode *m = y->kids[i];
        int idx = -1;
        if (m->kind == YN_SCALAR)
            for (int j = 0; METRIC_NAMES[j]; j++)
                if (!strcmp(METRIC_NAMES[j], m->str) && strlen(m->str) == m->len)
                    idx = j;
        if (idx < 0)
            return verr(c, m,
                        "evaluate: unknown metric %s (expected accuracy, logloss, auc, f1, "
                        "precision, recall or confusion)",
                        shown(m, b, sizeof b));
        if (s->metrics & (1u << idx))
            return verr(c, m, "evaluate: metric '%s' listed twice", METRIC_NAMES[idx]);
        s->metrics |= 1u << idx;
    }
    return 0;
}

static int parse_knn(vctx *c, const ynode *y, mlops_jobspec_t *s)
{
    static const char *const keys[] = {"k",    "metric", "mode",  "weights", "user",
                                       "item", "top_n",  "queries", NULL};
    int rc, metric = (int)s->knn.metric, mode = (int)s->knn.mode, w = (int)s->knn.weights;
    if ((rc = want_map(c, y, "knn")) != 0 || (rc = check_keys(c, y, "knn", keys)) != 0)
        return rc;
    s->has_knn = 1;
    if ((rc = get_uint(c, y, "knn", "k", 1, 100000, &s->knn.k)) != 0 ||
        (rc = get_enum(c, y, "knn", "metric", KNN_METRIC_NAMES, &metric)) != 0 ||
        (rc = get_enum(c, y, "knn", "mode", KNN_MODE_NAMES, &mode)) != 0 ||
        (rc = get_enum(c, y, "knn", "weights", KNN_WEIGHT_NAMES, &w)) != 0 ||
        (rc = get_str(c, y, "knn", "user", &s->knn.user)) != 0 ||
        (rc = get_str(c, y, "knn", "item", &s->knn.item)) != 0 ||
        (rc = get_uint(c, y, "knn", "top_n", 1, 100000, &s->knn.top_n)) != 0)
        return rc;
    s->knn.metric = (mlops_knn_metric)metric;
    s->knn.mode = (mlops_knn_mode)mode;
    s->knn.weights = (mlops_knn_weights)w;
    ynode *q = mget(y, "queries", NULL);
    if (q) {
        s->knn.has_queries = 1;
        if ((rc = parse_input(c, q, "knn.queries", &s->knn.queries)) != 0)
            return rc;
    }
    ynode *k;
    if (s->knn.mode == MLOPS_KNN_CLASSIFY) {
        static const char *const only[] = {"user", "item", "top_n"};
        for (int i = 0; i < 3; i++)
            if (mget(y, only[i], &k))
                return verr(c, k, "knn.%s: only used with mode recommend", only[i]);
    } else {
        if (mget(y, "queries", &k))
            return verr(c, k, "knn.queries: only used with mode classify");
        if (!s->knn.user || !s->knn.item)
            return verr(c, y, "knn: mode recommend needs 'user' and 'item' columns");
        if (!strcmp(s->knn.user, s->knn.item))
            return verr(c, mget(y, "item", NULL), "knn.item: same column as knn.user ('%s')",
                        s->knn.item);
    }
    return 0;
}

static void set_defaults(mlops_jobspec_t *s)
{
    s->shard_rows = 65536;
    s->on_bad_row = MLOPS_BAD_ROW_FAIL;
    s->clean.dropna = 1;
    s->clean.iqr_k = 1.5;
    s->hash.n_features = 1048576;
    s->hash.alternate_sign = 1;
    s->split.test_size = 0.25;
    s->split.seed = 0;
    s->split.method = MLOPS_SPLIT_HASH;
    s->train.model = MLOPS_MODEL_LOGISTIC;
    s->train.epochs = 5;
    s->train.learning_rate = MLOPS_LR_OPTIMAL;
    s->train.alpha = 0.0001;
    s->train.eta0 = 0.01;
    s->train.power_t = 0.5;
    s->train.batch_size = 1;
    s->train.seed = 0;
    s->train.shuffle = 1;
    s->knn.k = 5;
    s->knn.metric = MLOPS_KNN_EUCLIDEAN;
    s->knn.mode = MLOPS_KNN_CLASSIFY;
    s->knn.weights = MLOPS_KNN_UNIFORM;
    s->knn.top_n = 10;
    s->noop.tasks = 1;
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
    if (s->has_train && mget(root, "train", &k)) {
        if (!mlops_jobspec_has_label(s))
            return verr(c, k, "train: needs a label column (columns.label)");
        if (!idx && nfeat == 0)
            return verr(c, k, "train: no feature columns (columns.numeric, columns.categorical)");
    }
    if (s->has_evaluate && !s->has_train && mget(root, "evaluate", &k))
        return verr(c, k, "evaluate: needs a train stage");
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

/* Fill a spec from a validated-shape tree. */
static int build_spec(vctx *c, const ynode *root, mlops_jobspec_t *s)
{
    int rc;
    if ((rc = check_keys(c, root, "", TOP_KEYS)) != 0)
        return rc;
    ynode *y = mget(root, "name", NULL);
    if (!y)
        return verr(c, NULL, "missing required key 'name'");
    if ((rc = node_str(c, y, "name", &s->name)) != 0)
        return rc;
    size_t nl = strlen(s->name);
    if (nl > MAX_NAME || strspn(s->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789_.-") != nl) {
        char b[64];
        return verr(c, y, "name: expected 1..%d characters from [A-Za-z0-9_.-], got %s",
                    MAX_NAME, shown(y, b, sizeof b));
    }
    if ((y = mget(root, "input", NULL)) && (rc = parse_input(c, y, "input", &s->input)) != 0)
        return rc;
    int br = (int)s->on_bad_row;
    if ((rc = get_uint(c, root, "", "shard_rows", 1, INT32_MAX, &s->shard_rows)) != 0 ||
        (rc = get_enum(c, root, "", "on_bad_row", BAD_ROW_NAMES, &br)) != 0)
        return rc;
    s->on_bad_row = (mlops_bad_row)br;
    if ((y = mget(root, "columns", NULL)) && (rc = parse_columns(c, y, s)) != 0)
        return rc;
    if ((y = mget(root, "clean", NULL)) && (rc = parse_clean(c, y, s)) != 0)
        return rc;
    if ((rc = get_bool(c, root, "", "scale", &s->has_scale)) != 0)
        return rc;
    if ((y = mget(root, "hash", NULL)) && (rc = parse_hash(c, y, s)) != 0)
        return rc;
    if ((y = mget(root, "split", NULL)) && (rc = parse_split(c, y, s)) != 0)
        return rc;
    if ((y = mget(root, "train", NULL)) && (rc = parse_train(c, y, s)) != 0)
        return rc;
    if ((y = mget(root, "evaluate", NULL)) && (rc = parse_evaluate(c, y, s)) != 0)
        return rc;
    if ((y = mget(root, "knn", NULL)) && (rc = parse_knn(c, y, s)) != 0)
        return rc;
    if ((y = mget(root, "noop", NULL))) {
        static const char *const keys[] = {"tasks", NULL};
        if ((rc = want_map(c, y, "noop")) != 0 || (rc = check_keys(c, y, "noop", keys)) != 0 ||
            (rc = get_uint(c, y, "noop", "tasks", 1, 10000000, &s->noop.tasks)) != 0)
            return rc;
        s->has_noop = 1;
    }
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
    free(in->path);
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
    free(s->knn.user);
    free(s->knn.item);
    free_input(&s->knn.queries);
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
    set_defaults(s);
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
 * Canonical YAML
 * ------------------------------------------------------------------------ */

static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Shortest decimal text that reads back as the same double. */
static void put_num(FILE *f, double v)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

static void put_list(FILE *f, char *const *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        put_str(f, v[i]);
    }
    fputc(']', f);
}

static void put_input(FILE *f, const mlops_jobspec_input_t *in)
{
    if (in->format == MLOPS_INPUT_IDX) {
        fputs("{format: idx, images: ", f);
        put_str(f, in->images);
        fputs(", labels: ", f);
        put_str(f, in->labels);
    } else {
        fputs("{format: csv, path: ", f);
        put_str(f, in->path);
    }
    fputc('}', f);
}

static const char *tf(int b) { return b ? "true" : "false"; }

int mlops_jobspec_to_yaml(const mlops_jobspec_t *s, char **out, size_t *outlen)
{
    if (!s || !out)
        return MLOPS_EINVAL;
    *out = NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return MLOPS_ENOMEM;
    fputs("name: ", f);
    put_str(f, s->name);
    fputc('\n', f);
    if (s->input.format != MLOPS_INPUT_NONE) {
        fputs("input: ", f);
        put_input(f, &s->input);
        fputc('\n', f);
    }
    fprintf(f, "shard_rows: %u\non_bad_row: %s\n", s->shard_rows, BAD_ROW_NAMES[s->on_bad_row]);
    if (s->has_columns) {
        if (!s->columns.label && !s->columns.n_numeric && !s->columns.n_categorical)
            fputs("columns: {}\n", f);
        else
            fputs("columns:\n", f);
        if (s->columns.label) {
            fputs("  label: ", f);
            put_str(f, s->columns.label);
            fputc('\n', f);
        }
        if (s->columns.n_numeric) {
            fputs("  numeric: ", f);
            put_list(f, s->columns.numeric, s->columns.n_numeric);
            fputc('\n', f);
        }
        if (s->columns.n_categorical) {
            fputs("  categorical: ", f);
            put_list(f, s->columns.categorical, s->columns.n_categorical);
            fputc('\n', f);
        }
    }
    if (s->has_clean) {
        fprintf(f, "clean: {dropna: %s", tf(s->clean.dropna));
        if (s->clean.has_iqr) {
            fputs(", iqr_k: ", f);
            put_num(f, s->clean.iqr_k);
        }
        fputs("}\n", f);
    }
    if (s->has_scale)
        fputs("scale: true\n", f);
    if (s->has_hash)
        fprintf(f, "hash: {n_features: %u, alternate_sign: %s}\n", s->hash.n_features,
                tf(s->hash.alternate_sign));
    if (s->has_split) {
        fputs("split: {test_size: ", f);
        put_num(f, s->split.test_size);
        fprintf(f, ", seed: %u, method: %s}\n", s->split.seed, SPLIT_NAMES[s->split.method]);
    }
    if (s->has_train) {
        fprintf(f, "train: {model: %s, epochs: %u, learning_rate: %s, alpha: ",
                MODEL_NAMES[s->train.model], s->train.epochs, LR_NAMES[s->train.learning_rate]);
        put_num(f, s->train.alpha);
        fputs(", eta0: ", f);
        put_num(f, s->train.eta0);
        fputs(", power_t: ", f);
        put_num(f, s->train.power_t);
        fprintf(f, ", batch_size: %u, seed: %u, shuffle: %s}\n", s->train.batch_size,
                s->train.seed, tf(s->train.shuffle));
    }
    if (s->has_evaluate) {
        fputs("evaluate: [", f);
        int first = 1;
        for (int i = 0; i < MLOPS_METRIC_COUNT; i++)
            if (s->metrics & (1u << i)) {
                fprintf(f, "%s%s", first ? "" : ", ", METRIC_NAMES[i]);
                first = 0;
            }
        fputs("]\n", f);
    }
    if (s->has_knn) {
        fprintf(f, "knn: {k: %u, metric: %s, mode: %s, weights: %s", s->knn.k,
                KNN_METRIC_NAMES[s->knn.metric], KNN_MODE_NAMES[s->knn.mode],
                KNN_WEIGHT_NAMES[s->knn.weights]);
        if (s->knn.mode == MLOPS_KNN_RECOMMEND) {
            fputs(", user: ", f);
            put_str(f, s->knn.user);
            fputs(", item: ", f);
            put_str(f, s->knn.item);
            fprintf(f, ", top_n: %u", s->knn.top_n);
        } else if (s->knn.has_queries) {
            fputs(", queries: ", f);
            put_input(f, &s->knn.queries);
        }
        fputs("}\n", f);
    }
    if (s->has_noop)
        fprintf(f, "noop: {tasks: %u}\n", s->noop.tasks);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return MLOPS_ENOMEM;
    }
    *out = buf;
    if (outlen)
        *outlen = size;
    return 0;
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
    size_t cap = s->columns.n_numeric + s->columns.n_categorical + 3;
    mlops_jobspec_col_t *v = calloc(cap, sizeof *v);
    if (!v)
        return MLOPS_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < s->columns.n_numeric; i++)
        v[k++] = (mlops_jobspec_col_t){s->columns.numeric[i], MLK_F64, MLOPS_COL_NUMERIC};
    for (size_t i = 0; i < s->columns.n_categorical; i++)
        v[k++] = (mlops_jobspec_col_t){s->columns.categorical[i], MLK_STR, MLOPS_COL_CATEGORICAL};
    if (s->columns.label)
        v[k++] = (mlops_jobspec_col_t){s->columns.label, MLK_STR, MLOPS_COL_LABEL};
    if (s->has_knn && s->knn.mode == MLOPS_KNN_RECOMMEND) {
        const char *keys[2] = {s->knn.user, s->knn.item};
        for (int j = 0; j < 2; j++) {
            int seen = 0;
            for (size_t i = 0; i < k && !seen; i++)
                seen = !strcmp(v[i].name, keys[j]);
            if (!seen && keys[j])
                v[k++] = (mlops_jobspec_col_t){keys[j], MLK_STR, MLOPS_COL_KEY};
        }
    }
    *cols = v;
    *n = k;
    return 0;
}

static const char *role_name(const mlops_jobspec_t *s, const mlops_jobspec_col_t *c)
{
    switch (c->role) {
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

int mlops_jobspec_inputs(const mlops_jobspec_t *s, const char *jobdir, mlops_jobspec_file_t **files,
                         size_t *n)
{
    if (!s || !files || !n)
        return MLOPS_EINVAL;
    *files = NULL;
    *n = 0;
    mlops_jobspec_file_t *v = calloc(4, sizeof *v);
    if (!v)
        return MLOPS_ENOMEM;
    size_t k = 0;
    int rc = 0;
    if (s->input.format == MLOPS_INPUT_CSV) {
        rc = add_file(v, &k, "input", jobdir, s->input.path);
    } else if (s->input.format == MLOPS_INPUT_IDX) {
        if ((rc = add_file(v, &k, "images", jobdir, s->input.images)) == 0)
            rc = add_file(v, &k, "labels", jobdir, s->input.labels);
    }
    if (rc == 0 && s->has_knn && s->knn.has_queries) {
        if (s->knn.queries.format == MLOPS_INPUT_CSV)
            rc = add_file(v, &k, "queries.input", jobdir, s->knn.queries.path);
        else if ((rc = add_file(v, &k, "queries.images", jobdir, s->knn.queries.images)) == 0)
            rc = add_file(v, &k, "queries.labels", jobdir, s->knn.queries.labels);
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

void mlops_jobspec_files_free(mlops_jobspec_file_t **files, size_t n)
{
    if (!files || !*files)
        return;
    for (size_t i = 0; i < n; i++)
        free((*files)[i].path);
    free(*files);
    *files = NULL;
}
