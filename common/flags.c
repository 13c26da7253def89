/* flags.c: see flags.h. The parser records occurrences in order and
 * borrows the strings from argv (they live as long as the process). */
#include "flags.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find_long(const mlops_flag_t *defs, const char *name, size_t n)
{
    for (int i = 0; defs[i].name; i++)
        if (strlen(defs[i].name) == n && !strncmp(defs[i].name, name, n))
            return i;
    return -1;
}

static int find_short(const mlops_flag_t *defs, char c)
{
    for (int i = 0; defs[i].name; i++)
        if (defs[i].shrt && defs[i].shrt == c)
            return i;
    return -1;
}

int mlops_flags_check(const mlops_flag_t *d, const char *s, long *out, char *err, size_t errlen)
{
    long v = 0;
    switch (d->type) {
    case MLOPS_FLAG_BOOL: v = 1; break;
    case MLOPS_FLAG_STR:
        if (!s || !*s)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "--%s: expected %s, got nothing",
                                d->name, d->meta ? d->meta : "a value");
        break;
    case MLOPS_FLAG_INT: {
        char *end = NULL;
        errno = 0;
        v = s && *s ? strtol(s, &end, 10) : 0;
        if (!s || !*s || errno || *end || v < d->lo || v > d->hi)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "--%s: expected an integer in [%ld, %ld], got '%s'", d->name, d->lo,
                                d->hi, s ? s : "");
        break;
    }
    case MLOPS_FLAG_CHOICE: {
        v = -1;
        for (int i = 0; s && d->choices[i] && v < 0; i++)
            if (!strcmp(d->choices[i], s))
                v = i;
        if (v < 0) {
            char want[256];
            size_t o = 0;
            want[0] = '\0';
            for (int i = 0; d->choices[i] && o < sizeof want; i++)
                o += (size_t)snprintf(want + o, sizeof want - o, "%s'%s'",
                                      i ? (d->choices[i + 1] ? ", " : " or ") : "", d->choices[i]);
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "--%s: expected %s, got '%s'", d->name,
                                want, s ? s : "");
        }
        break;
    }
    }
    if (out)
        *out = v;
    return 0;
}

static int record(mlops_flags_t *f, int def, const char *value, char *err, size_t errlen)
{
    if (f->nocc >= MLOPS_FLAGS_MAX)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "too many options (at most %d)",
                            MLOPS_FLAGS_MAX);
    int rc = mlops_flags_check(&f->defs[def], value, NULL, err, errlen);
    if (rc)
        return rc;
    f->occ[f->nocc].def = def;
    f->occ[f->nocc].value = value;
    f->nocc++;
    return 0;
}

int mlops_flags_parse(mlops_flags_t *f, const mlops_flag_t *defs, int argc, char **argv,
                      int stop_at_positional, int *consumed, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->defs = defs;
    int i = 0, only_pos = 0, rc;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == 0) { /* "-" alone is positional (stdin) */
            if (stop_at_positional)
                break;
            if (f->npos >= MLOPS_FLAGS_MAX)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "too many arguments");
            f->pos[f->npos++] = s;
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
                if (defs[def].type == MLOPS_FLAG_BOOL)
                    return mlops_seterr(err, errlen, MLOPS_EINVAL, "option '--%s' takes no value",
                                        defs[def].name);
                value = eq + 1;
            }
        } else {
            const char *p = s + 1;
            def = find_short(defs, *p);
            /* -vh: a run of flags, each without a value */
            while (def >= 0 && defs[def].type == MLOPS_FLAG_BOOL && p[1] &&
                   find_short(defs, p[1]) >= 0 && defs[find_short(defs, p[1])].type ==
                                                      MLOPS_FLAG_BOOL) {
                if ((rc = record(f, def, NULL, err, errlen)) != 0)
                    return rc;
                def = find_short(defs, *++p);
            }
            if (def < 0)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "unknown option '-%c'", *p);
            if (p[1]) {
                if (defs[def].type == MLOPS_FLAG_BOOL)
                    return mlops_seterr(err, errlen, MLOPS_EINVAL, "option '-%c' takes no value",
                                        *p);
                value = p + 1;
            }
        }
        if (defs[def].type != MLOPS_FLAG_BOOL && !value) {
            if (i + 1 >= argc)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "option '--%s' needs a value (%s)",
                                    defs[def].name, defs[def].meta ? defs[def].meta : "VALUE");
            value = argv[++i];
        }
        if ((rc = record(f, def, value, err, errlen)) != 0)
            return rc;
    }
    if (consumed)
        *consumed = i;
    return 0;
}

const char *mlops_flags_get(const mlops_flags_t *f, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < f->nocc; i++)
        if (!strcmp(f->defs[f->occ[i].def].name, name))
            v = f->occ[i].value;
    return v;
}

int mlops_flags_has(const mlops_flags_t *f, const char *name)
{
    for (size_t i = 0; i < f->nocc; i++)
        if (!strcmp(f->defs[f->occ[i].def].name, name))
            return 1;
    return 0;
}

size_t mlops_flags_all(const mlops_flags_t *f, const char *name, const char **vals, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nocc && n < max; i++)
        if (!strcmp(f->defs[f->occ[i].def].name, name))
            vals[n++] = f->occ[i].value;
    return n;
}

int mlops_flags_store(const mlops_flags_t *f, void *cfg, char *err, size_t errlen)
{
    if (f->npos)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "unexpected argument '%s'", f->pos[0]);
    for (int i = 0; f->defs[i].name; i++) {
        const mlops_flag_t *d = &f->defs[i];
        if (d->off == MLOPS_FLAG_NOSTORE)
            continue;
        int given = mlops_flags_has(f, d->name);
        const char *v = given ? mlops_flags_get(f, d->name) : NULL;
        if (!given && d->env) {
            const char *e = getenv(d->env);
            if (e && *e)
                v = e;
        }
        if (!given && !v)
            v = d->dflt;
        if (!given && !v) {
            if (d->required)
                return mlops_seterr(err, errlen, MLOPS_EINVAL, "--%s is required", d->name);
            continue;
        }
        long n = 0;
        int rc = mlops_flags_check(d, v, &n, err, errlen);
        if (rc) /* only a bad environment value or default can get here */
            return rc;
        char *at = (char *)cfg + d->off;
        if (d->type == MLOPS_FLAG_STR)
            memcpy(at, &v, sizeof v);
        else {
            int iv = (int)n;
            memcpy(at, &iv, sizeof iv);
        }
    }
    return 0;
}

/* " (required, env X, 1..256, default 1)", or "" when there is nothing to add */
static void extras(const mlops_flag_t *d, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    if (d->required)
        o += (size_t)snprintf(buf + o, n - o, " (required");
    if (d->env && o < n)
        o += (size_t)snprintf(buf + o, n - o, "%senv %s", o ? ", " : " (", d->env);
    if (d->type == MLOPS_FLAG_INT && o < n)
        o += (size_t)snprintf(buf + o, n - o, "%s%ld..%ld", o ? ", " : " (", d->lo, d->hi);
    if (d->type == MLOPS_FLAG_CHOICE && o < n)
        for (int i = 0; d->choices[i] && o < n; i++)
            o += (size_t)snprintf(buf + o, n - o, "%s%s",
                                  i ? (d->choices[i + 1] ? ", " : " or ") : (o ? ", " : " ("),
                                  d->choices[i]);
    if (d->dflt && o < n)
        o += (size_t)snprintf(buf + o, n - o, "%sdefault %s", o ? ", " : " (", d->dflt);
    if (o && o < n)
        snprintf(buf + o, n - o, ")");
}

void mlops_flags_help(FILE *out, const mlops_flag_t *defs)
{
    size_t w = 0;
    char buf[128], more[256];
    for (int i = 0; defs[i].name; i++) {
        int n = snprintf(buf, sizeof buf, "-x, --%s%s%s", defs[i].name, defs[i].meta ? " " : "",
                         defs[i].meta ? defs[i].meta : "");
        if (n > 0 && (size_t)n > w)
            w = (size_t)n;
    }
    for (int i = 0; defs[i].name; i++) {
        const mlops_flag_t *d = &defs[i];
        if (d->shrt)
            snprintf(buf, sizeof buf, "-%c, --%s%s%s", d->shrt, d->name, d->meta ? " " : "",
                     d->meta ? d->meta : "");
        else
            snprintf(buf, sizeof buf, "    --%s%s%s", d->name, d->meta ? " " : "",
                     d->meta ? d->meta : "");
        extras(d, more, sizeof more);
        fprintf(out, "  %-*s   %s%s\n", (int)w, buf, d->help, more);
    }
}

const char *const mlops_flag_log_formats[] = {"human", "json", NULL};

static void daemon_usage(FILE *f, const char *prog, const char *synopsis, const mlops_flag_t *defs)
{
    fprintf(f, "Usage: %s %s\n\nOptions:\n", prog, synopsis);
    mlops_flags_help(f, defs);
}

int mlops_flags_daemon(const char *prog, const char *synopsis, const mlops_flag_t *defs, int argc,
                       char **argv, mlops_flags_t *flags, void *cfg)
{
    char err[1024] = "";
    if (mlops_flags_parse(flags, defs, argc - 1, argv + 1, 0, NULL, err, sizeof err) == 0 &&
        mlops_flags_has(flags, "help")) {
        daemon_usage(stdout, prog, synopsis, defs);
        return 0;
    }
    if (err[0] || mlops_flags_store(flags, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        daemon_usage(stderr, prog, synopsis, defs);
        return 2;
    }
    return -1;
}

int mlops_flags_log_json(const mlops_flags_t *flags)
{
    const char *lf = mlops_flags_get(flags, "log-format");
    return lf && !strcmp(lf, "json");
}
