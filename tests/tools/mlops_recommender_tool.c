/* mlops_recommender_tool: time a registered recommender's answers
 * in-process, for bench/bench_recommender.py.
 *
 *   mlops_recommender_tool ARTIFACT.json USERS.txt [--n N] [--out FILE]
 *
 * Loads the artifact (a `mlopsctl model export` of a mlops-recommender/1
 * version) with common/recommender.c, then answers each user of
 * USERS.txt (one id a line) once with mlops_recommender_lookup and once
 * with mlops_recommender_answer (the JSON the server sends, dumped as
 * text), each timed alone. Prints key=value lines: load_seconds, users,
 * lookup_median_us, lookup_p99_us, answer_median_us, answer_p99_us.
 * --out writes one JSON answer a line, for checking against the batch
 * export. Exit 0, 1 on a bad artifact, 2 on usage or I/O errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsondump.h"
#include "recommender.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap + 1);
            if (!b) break;
            buf = b;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv)
{
    const char *out_path = NULL;
    size_t n = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: %s ARTIFACT.json USERS.txt [--n N] [--out FILE]\n", argv[0]);
        return 2;
    }
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--out")) out_path = argv[i + 1];
        else {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[i]);
            return 2;
        }
    }
    size_t alen = 0, ulen = 0;
    char *art = slurp(argv[1], &alen), *users = slurp(argv[2], &ulen);
    if (!art || !users) {
        fprintf(stderr, "%s: cannot read %s\n", argv[0], art ? argv[2] : argv[1]);
        return 2;
    }
    char err[600] = "";
    double t0 = now();
    mlops_recommender_t *r = mlops_recommender_load(art, alen, err, sizeof err);
    double load = now() - t0;
    free(art);
    if (!r) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 1;
    }
    if (!n) n = mlops_recommender_default_n(r);
    size_t nu = 0, cap = 1024;
    char **ids = malloc(cap * sizeof *ids);
    for (char *line = strtok(users, "\n"); line && ids; line = strtok(NULL, "\n")) {
        if (nu == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
        if (ids) ids[nu++] = line;
    }
    double *tl = malloc((nu ? nu : 1) * sizeof *tl), *ta = malloc((nu ? nu : 1) * sizeof *ta);
    mlops_rec_item_t *items = malloc(n * sizeof *items);
    FILE *out = out_path ? fopen(out_path, "w") : NULL;
    if (!ids || !tl || !ta || !items || (out_path && !out)) {
        fprintf(stderr, "%s: out of memory or cannot write %s\n", argv[0], out_path ? out_path : "");
        return 2;
    }
    int rc = 0;
    for (size_t i = 0; i < nu && !rc; i++) {
        size_t got = 0;
        int popular = 0;
        t0 = now();
        rc = mlops_recommender_lookup(r, ids[i], n, items, &got, &popular, err, sizeof err);
        tl[i] = now() - t0;
        t0 = now();
        json_t *a = rc ? NULL : mlops_recommender_answer(r, ids[i], n, err, sizeof err);
        char *text = a ? mlops_json_dumps(a, JSON_PRESERVE_ORDER) : NULL;
        ta[i] = now() - t0;
        if (!text) rc = 1;
        else if (out) fprintf(out, "%s\n", text);
        free(text);
        json_decref(a);
    }
    if (rc) {
        fprintf(stderr, "%s: %s\n", argv[0], err);
        return 1;
    }
    if (out) fclose(out);
    printf("load_seconds=%.6f\nusers=%zu\n", load, nu);
    if (nu) {
        printf("lookup_median_us=%.3f\nlookup_p99_us=%.3f\n", pct(tl, nu, 0.5) * 1e6,
               pct(tl, nu, 0.99) * 1e6);
        printf("answer_median_us=%.3f\nanswer_p99_us=%.3f\n", pct(ta, nu, 0.5) * 1e6,
               pct(ta, nu, 0.99) * 1e6);
    }
    free(tl);
    free(ta);
    free(items);
    free(ids);
    free(users);
    mlops_recommender_destroy(&r);
    return 0;
}
