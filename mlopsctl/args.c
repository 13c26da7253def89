/* args.c: see args.h. The parser records occurrences in order and
 * borrows the strings from argv (they live as long as the process). */
#include "args.h"
#include "err.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int find_long(const ctl_optdef *defs, const char *name, size_t n)
{
    for (int i = 0; defs[i].lng; i++)
        if (strlen(defs[i].lng) == n && !strncmp(defs[i].lng, name, n)) return i;
    return -1;
}

static int find_short(const ctl_optdef *defs, char c)
{
    for (int i = 0; defs[i].lng; i++)
        if (defs[i].shrt && defs[i].shrt == c) return i;
    return -1;
}

static int record(ctl_args *a, int def, const char *value, char *err, size_t errlen)
{
    if (a->nocc >= CTL_MAX_OCC)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "too many options (at most %d)", CTL_MAX_OCC);
    a->occ[a->nocc].def = def;
    a->occ[a->nocc].value = value;
    a->nocc++;
    return 0;
}

int ctl_args_parse(ctl_args *a, const ctl_optdef *defs, int argc, char **argv,
                   int stop_at_positional, int *consumed, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->defs = defs;
    int i = 0, only_pos = 0;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == 0) { /* "-" alone is positional (stdin) */
            if (stop_at_positional) break;
            if (a->npos >= CTL_MAX_OCC)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "too many arguments");
            a->pos[a->npos++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            only_pos = 1;
            continue;
        }
        int def;
        const char *value = NULL;
        if (s[1] == '-') {
            const char *name = s + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            def = find_long(defs, name, n);
            if (def < 0)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "unknown option '--%.*s'", (int)n,
                                    name);
            if (eq) {
                if (!defs[def].meta)
                    return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                        "option '--%s' takes no value", defs[def].lng);
                value = eq + 1;
            }
        } else {
            def = find_short(defs, s[1]);
            if (def < 0)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "unknown option '-%c'", s[1]);
            if (s[2]) {
                if (!defs[def].meta)
                    return mlops_seterr(err, errlen, MLOPS_EINVAL, "option '-%c' takes no value",
                                        s[1]);
                value = s + 2;
            }
        }
        if (defs[def].meta && !value) {
            if (i + 1 >= argc)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "option '--%s' needs a value (%s)",
                                    defs[def].lng, defs[def].meta);
            value = argv[++i];
        }
        int rc = record(a, def, value, err, errlen);
        if (rc) return rc;
    }
    if (consumed) *consumed = i;
    return 0;
}

const char *ctl_arg(const ctl_args *a, const char *lng)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->nocc; i++)
        if (!strcmp(a->defs[a->occ[i].def].lng, lng)) v = a->occ[i].value;
    return v;
}

int ctl_flag(const ctl_args *a, const char *lng)
{
    for (size_t i = 0; i < a->nocc; i++)
        if (!strcmp(a->defs[a->occ[i].def].lng, lng)) return 1;
    return 0;
}

size_t ctl_arg_all(const ctl_args *a, const char *lng, const char **vals, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nocc && n < max; i++)
        if (!strcmp(a->defs[a->occ[i].def].lng, lng)) vals[n++] = a->occ[i].value;
    return n;
}

int ctl_parse_int(const char *s, long lo, long hi, const char *what, long *out, char *err,
                  size_t errlen)
{
    char *end = NULL;
    errno = 0;
    long v = s && *s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || errno || *end || v < lo || v > hi)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: expected an integer in [%ld, %ld], got '%s'",
                            what, lo, hi, s ? s : "");
    *out = v;
    return 0;
}

void ctl_args_help(FILE *out, const ctl_optdef *defs)
{
    size_t w = 0;
    char buf[128];
    for (int i = 0; defs[i].lng; i++) {
        int n = snprintf(buf, sizeof buf, "%s--%s%s%s", defs[i].shrt ? "-x, " : "    ", defs[i].lng,
                         defs[i].meta ? " " : "", defs[i].meta ? defs[i].meta : "");
        if (n > 0 && (size_t)n > w) w = (size_t)n;
    }
    for (int i = 0; defs[i].lng; i++) {
        if (defs[i].shrt)
            snprintf(buf, sizeof buf, "-%c, --%s%s%s", defs[i].shrt, defs[i].lng,
                     defs[i].meta ? " " : "", defs[i].meta ? defs[i].meta : "");
        else
            snprintf(buf, sizeof buf, "    --%s%s%s", defs[i].lng, defs[i].meta ? " " : "",
                     defs[i].meta ? defs[i].meta : "");
        fprintf(out, "  %-*s   %s\n", (int)w, buf, defs[i].help);
    }
}
