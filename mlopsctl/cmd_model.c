/* cmd_model.c: the model registry's commands, `models` and `model
 * show|versions|alias|unalias|history|export|rm|recommend`. Each is one Query
 * (coordinator/registry.c); -o json prints the coordinator's JSON
 * unchanged, the table form prints it for people.
 *
 * Names are checked here before anything is sent ([A-Za-z0-9._-], 128
 * for a model, 64 for an alias; exit 2), so a typo never reaches the
 * coordinator. `model export` writes the artifact exactly as the
 * registry stores it (same dump settings as artifact.c: indent 1, 17
 * significant digits), to FILE.tmp first and renamed when complete.
 * `model recommend` fetches a recommender's artifact the way export does
 * and answers for one user here (common/recommender.h), the same answer
 * the model server gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "jsondump.h"
#include "output.h"
#include "recommender.h"

static int valid_name(const char *s, size_t max)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    return n == strlen(s) && n >= 1 && n <= max;
}

static int usage(const char *fmt, const char *what)
{
    ctl_errorf(fmt, what);
    fprintf(stderr, "See 'mlopsctl model --help'.\n");
    return CTL_EXIT_USAGE;
}

/* NAME[@REF] into name and ref ("" = latest), both checked. */
static int split_ref(const char *arg, char *name, size_t nlen, char *ref, size_t rlen)
{
    const char *at = strchr(arg, '@');
    size_t n = at ? (size_t)(at - arg) : strlen(arg);
    if (n >= nlen) n = nlen - 1;
    memcpy(name, arg, n);
    name[n] = 0;
    snprintf(ref, rlen, "%s", at ? at + 1 : "");
    if (!valid_name(name, 128))
        return usage("model: invalid model name '%s' (expected [A-Za-z0-9._-]{1,128})", name);
    if (at && !valid_name(ref, 64))
        return usage(
            "model: invalid version or alias '%s' (expected a number or [A-Za-z0-9._-]{1,64})",
            ref);
    return 0;
}

static void print_raw(const char *raw)
{
    fputs(raw, stdout);
    size_t n = strlen(raw);
    if (!n || raw[n - 1] != '\n') fputc('\n', stdout);
}

static void metrics_cell(const json_t *m, char *buf, size_t len)
{
    const char *k;
    json_t *v;
    size_t o = 0;
    buf[0] = 0;
    json_object_foreach ((json_t *)m, k, v) {
        if (strcmp(k, "auc") && strcmp(k, "accuracy") && strcmp(k, "logloss")) continue;
        char num[32];
        ctl_fmt_num(json_number_value(v), num, sizeof num);
        o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s=%s", o ? " " : "", k, num);
        if (o >= len) break;
    }
}

static void list_cell(const json_t *a, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < json_array_size(a) && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "",
                              json_string_value(json_array_get(a, i)));
    if (!o) snprintf(buf, len, "-");
}

int cmd_models(ctl_ctx *ctx, const ctl_args *a)
{
    (void)a;
    json_t *doc;
    char *raw;
    int code = ctl_query(ctx, "models", NULL, NULL, 0, &doc, &raw);
    if (code) return code;
    if (ctx->json) print_raw(raw);
    else {
        const char *hdr[] = {"NAME", "LATEST", "VERSIONS", "ALIASES"};
        ctl_table *t = ctl_table_new(4, hdr);
        const json_t *ms = json_object_get(doc, "models");
        for (size_t i = 0; t && i < json_array_size(ms); i++) {
            const json_t *m = json_array_get(ms, i);
            char latest[32], nv[32], aliases[512] = "";
            ctl_fmt_value(json_object_get(m, "latest"), latest, sizeof latest);
            ctl_fmt_value(json_object_get(m, "versions"), nv, sizeof nv);
            const char *k;
            json_t *v;
            size_t o = 0;
            json_object_foreach (json_object_get(m, "aliases"), k, v) {
                char num[32];
                ctl_fmt_value(v, num, sizeof num);
                if (o < sizeof aliases)
                    o += (size_t)snprintf(aliases + o, sizeof aliases - o, "%s%s=%s", o ? "," : "",
                                          k, num);
            }
            const char *row[] = {mlops_jsonreply_str(m, "name", "?"), latest, nv,
                                 o ? aliases : "-"};
            ctl_table_add(t, row);
        }
        if (t) ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
    }
    json_decref(doc);
    free(raw);
    return CTL_EXIT_OK;
}

/* From the raw reply: the parsed one reads every number as a double, and
 * integers must stay integers to give the stored bytes back. */
static int write_export(const char *raw, const char *file)
{
    json_t *doc = json_loads(raw, 0, NULL);
    const json_t *art = json_object_get(doc, "artifact");
    char *text =
        art ? mlops_json_dumps(art, JSON_INDENT(1) | JSON_PRESERVE_ORDER)
            : NULL;
    json_decref(doc);
    if (!text) {
        ctl_errorf("model export: the coordinator sent no artifact");
        return CTL_EXIT_FAILED;
    }
    int code = CTL_EXIT_OK;
    if (!file || !strcmp(file, "-")) {
        fputs(text, stdout);
        fputc('\n', stdout);
    } else {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", file);
        FILE *f = fopen(tmp, "wb");
        int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        if (f && fclose(f) != 0) ok = 0;
        if (!ok || rename(tmp, file) != 0) {
            ctl_errorf("model export: cannot write %s", file);
            remove(tmp);
            code = CTL_EXIT_FAILED;
        }
    }
    free(text);
    return code;
}

/* `model recommend NAME@REF USER`: the reply's artifact (parsed again
 * from the raw text, so integers stay integers) as a recommender. */
static int recommend(const ctl_ctx *ctx, const char *raw, const char *user, const char *top)
{
    json_t *doc = json_loads(raw, 0, NULL);
    const json_t *art = json_object_get(doc, "artifact");
    const char *fmt = json_string_value(json_object_get(art, "format"));
    char err[600] = "";
    mlops_recommender_t *r = NULL;
    if (!art) ctl_errorf("model recommend: the coordinator sent no artifact");
    else if (!fmt || strcmp(fmt, MLOPS_RECOMMENDER_FORMAT))
        ctl_errorf("model recommend: %s version %.0f is not a recommender (format %s)",
                   json_string_value(json_object_get(doc, "name")),
                   json_number_value(json_object_get(doc, "version")), fmt ? fmt : "missing");
    else if (!(r = mlops_recommender_from_json(art, err, sizeof err)))
        ctl_errorf("model recommend: %s", err);
    json_decref(doc);
    if (!r) return CTL_EXIT_FAILED;
    long n = (long)mlops_recommender_default_n(r);
    if (top && ctl_parse_int(top, 1, MLOPS_RECOMMENDER_MAX_N, "-n", &n, err, sizeof err) != 0) {
        mlops_recommender_destroy(&r);
        return usage("model recommend: %s", err);
    }
    json_t *ans = mlops_recommender_answer(r, user, (size_t)n, err, sizeof err);
    mlops_recommender_destroy(&r);
    if (!ans) {
        ctl_errorf("model recommend: %s", err);
        return CTL_EXIT_FAILED;
    }
    if (ctx->json) {
        char *text = mlops_json_dumps(ans, JSON_PRESERVE_ORDER);
        if (text) puts(text);
        free(text);
    } else {
        const char *hdr[] = {"RANK", "ITEM", "SCORE"};
        ctl_table *t = ctl_table_new(3, hdr);
        const json_t *items = json_object_get(ans, "items");
        for (size_t i = 0; t && i < json_array_size(items); i++) {
            const json_t *it = json_array_get(items, i);
            char rank[32], score[64];
            snprintf(rank, sizeof rank, "%zu", i + 1);
            ctl_fmt_value(json_object_get(it, "score"), score, sizeof score);
            const char *row[] = {rank, mlops_jsonreply_str(it, "item_id", "?"), score};
            ctl_table_add(t, row);
        }
        if (t) ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
        if (json_is_true(json_object_get(ans, "popular")))
            printf("(user '%s' is unknown to the model: the most popular items)\n", user);
    }
    json_decref(ans);
    return CTL_EXIT_OK;
}

static void print_versions(const json_t *doc)
{
    const char *hdr[] = {"VERSION", "JOB", "ALIASES", "METRICS", "CREATED"};
    ctl_table *t = ctl_table_new(5, hdr);
    const json_t *vs = json_object_get(doc, "versions");
    for (size_t i = 0; t && i < json_array_size(vs); i++) {
        const json_t *v = json_array_get(vs, i);
        char ver[32], al[256], met[256];
        ctl_fmt_value(json_object_get(v, "version"), ver, sizeof ver);
        list_cell(json_object_get(v, "aliases"), al, sizeof al);
        metrics_cell(json_object_get(v, "metrics"), met, sizeof met);
        const char *row[] = {ver, mlops_jsonreply_str(v, "job", "?"), al, met[0] ? met : "-",
                             mlops_jsonreply_str(v, "created", "-")};
        ctl_table_add(t, row);
    }
    if (t) ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
}

static void print_history(const json_t *doc)
{
    const char *hdr[] = {"SEQ", "TIME", "ALIAS", "FROM", "TO", "REASON"};
    ctl_table *t = ctl_table_new(6, hdr);
    const json_t *hs = json_object_get(doc, "history");
    for (size_t i = 0; t && i < json_array_size(hs); i++) {
        const json_t *h = json_array_get(hs, i);
        char seq[32], from[32], to[32];
        ctl_fmt_value(json_object_get(h, "seq"), seq, sizeof seq);
        ctl_fmt_value(json_object_get(h, "from"), from, sizeof from);
        ctl_fmt_value(json_object_get(h, "to"), to, sizeof to);
        const char *reason = mlops_jsonreply_str(h, "reason", "");
        const char *row[] = {seq,
                             mlops_jsonreply_str(h, "time", "-"),
                             mlops_jsonreply_str(h, "alias", "?"),
                             from,
                             to,
                             *reason ? reason : "-"};
        ctl_table_add(t, row);
    }
    if (t) ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
}

static void print_show(const json_t *doc)
{
    char buf[1024];
    printf("NAME        %s\n", mlops_jsonreply_str(doc, "name", "?"));
    ctl_fmt_value(json_object_get(doc, "version"), buf, sizeof buf);
    printf("VERSION     %s\n", buf);
    printf("JOB         %s\n", mlops_jsonreply_str(doc, "job", "?"));
    printf("CREATED     %s\n", mlops_jsonreply_str(doc, "created", "-"));
    list_cell(json_object_get(doc, "aliases"), buf, sizeof buf);
    printf("ALIASES     %s\n", buf);
    list_cell(json_object_get(doc, "tags"), buf, sizeof buf);
    printf("TAGS        %s\n", buf);
    printf("SHA256      %s\n", mlops_jsonreply_str(doc, "sha256", "-"));
    const char *k;
    json_t *v;
    json_t *ins = json_object_get(json_object_get(doc, "lineage"), "inputs");
    for (size_t i = 0; i < json_array_size(ins); i++)
        printf("INPUT       %s %s\n", mlops_jsonreply_str(json_array_get(ins, i), "name", "?"),
               mlops_jsonreply_str(json_array_get(ins, i), "sha256", "?"));
    putchar('\n');
    const char *hdr[] = {"METRIC", "VALUE"};
    ctl_table *t = ctl_table_new(2, hdr);
    json_object_foreach (json_object_get(doc, "metrics"), k, v) {
        ctl_fmt_value(v, buf, sizeof buf);
        const char *row[] = {k, buf};
        if (t) ctl_table_add(t, row);
    }
    if (t) ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
}

int cmd_model(ctl_ctx *ctx, const ctl_args *a)
{
    const char *sub = a->pos[0];
    static const struct {
        const char *sub, *verb;
        size_t npos; /* positional arguments after the subcommand */
    } subs[] = {
        {"show", "model-show", 1},       {"versions", "model-versions", 1},
        {"alias", "model-alias", 3},     {"unalias", "model-unalias", 2},
        {"history", "model-history", 1}, {"export", "model-export", 1},
        {"rm", "model-rm", 1},           {"recommend", "model-export", 2},
    };
    size_t s = 0;
    while (s < sizeof subs / sizeof *subs && strcmp(subs[s].sub, sub)) s++;
    if (s == sizeof subs / sizeof *subs)
        return usage("model: unknown subcommand '%s' (show, versions, alias, unalias, history, "
                     "export, rm, recommend)",
                     sub);
    if (a->npos - 1 != subs[s].npos) {
        ctl_errorf("model %s: expected %zu argument(s), got %zu", sub, subs[s].npos, a->npos - 1);
        fprintf(stderr, "See 'mlopsctl model --help'.\n");
        return CTL_EXIT_USAGE;
    }
    /* -o is a file for export and a format for the others */
    const char *out = ctl_arg(a, "output");
    int export = !strcmp(sub, "export");
    ctx->json = 0;
    if (!export && out) {
        if (!strcmp(out, "json")) ctx->json = 1;
        else if (strcmp(out, "table"))
            return usage("model: -o: expected table or json, got '%s'", out);
    }
    char name[160], ref[80];
    const char *args[4];
    size_t nargs = 0;
    int code;
    if ((code = split_ref(a->pos[1], name, sizeof name, ref, sizeof ref))) return code;
    args[nargs++] = name;
    int rec = !strcmp(sub, "recommend");
    if (ctl_arg(a, "top") && !rec) return usage("model: -n is for '%s'", "recommend");
    if (!strcmp(sub, "show") || export || !strcmp(sub, "rm") || rec) {
        if (!strcmp(sub, "rm") && !*ref)
            return usage("model rm: give the version to remove (%s@VERSION)", name);
        args[nargs++] = ref;
    } else if (*ref) {
        return usage("model: '%s' takes a model name without @", sub);
    }
    if (!strcmp(sub, "alias")) {
        const char *ver = a->pos[2], *alias = a->pos[3];
        if (strspn(ver, "0123456789") != strlen(ver) || !*ver || strlen(ver) > 9)
            return usage("model alias: invalid version '%s' (expected a number)", ver);
        if (!valid_name(alias, 64))
            return usage("model alias: invalid alias '%s' (expected [A-Za-z0-9._-]{1,64})", alias);
        args[nargs++] = ver;
        args[nargs++] = alias;
        const char *reason = ctl_arg(a, "reason");
        args[nargs++] = reason ? reason : "";
    } else if (!strcmp(sub, "unalias")) {
        const char *alias = a->pos[2];
        if (!valid_name(alias, 64))
            return usage("model unalias: invalid alias '%s' (expected [A-Za-z0-9._-]{1,64})",
                         alias);
        args[nargs++] = alias;
        const char *reason = ctl_arg(a, "reason");
        args[nargs++] = reason ? reason : "";
    }
    json_t *doc;
    char *raw;
    code = ctl_query(ctx, subs[s].verb, NULL, args, nargs, &doc, &raw);
    if (code) return code;
    if (export) code = write_export(raw, out);
    else if (rec) code = recommend(ctx, raw, a->pos[2], ctl_arg(a, "top"));
    else if (ctx->json) print_raw(raw);
    else if (!strcmp(sub, "show")) print_show(doc);
    else if (!strcmp(sub, "versions")) print_versions(doc);
    else if (!strcmp(sub, "history")) print_history(doc);
    else if (!strcmp(sub, "rm"))
        printf("%s@%.0f\n", name, json_number_value(json_object_get(doc, "version")));
    else {
        char from[32], to[32];
        ctl_fmt_value(json_object_get(doc, "from"), from, sizeof from);
        ctl_fmt_value(json_object_get(doc, "to"), to, sizeof to);
        printf("%s %s: %s -> %s\n", name, mlops_jsonreply_str(doc, "alias", "?"), from, to);
    }
    json_decref(doc);
    free(raw);
    return code;
}
