/* searchtable.c: the search trials table of `mlopsctl result` (see
 * searchtable.h). The reply is the coordinator's, read defensively. */
#include "searchtable.h"
#include "output.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t index;
    double mean; /* NaN: no score */
} trial_t;

static int lower_better;

static int by_score(const void *pa, const void *pb)
{
    const trial_t *a = pa, *b = pb;
    int na = isnan(a->mean), nb = isnan(b->mean);
    if (na != nb) return na - nb;
    if (!na && a->mean != b->mean) return (a->mean < b->mean) == lower_better ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static double num(const json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

void ctl_search_print(const json_t *result, FILE *out)
{
    const json_t *s = json_object_get(result, "search");
    const json_t *trials = json_object_get(s, "trials");
    size_t n = json_array_size(trials);
    if (!n) return;
    const char *metric = json_string_value(json_object_get(s, "metric"));
    lower_better = metric && !strcmp(metric, "logloss");
    double best = num(json_object_get(s, "best"));
    const json_t *params = json_object_get(json_array_get(trials, 0), "params");
    size_t np = json_object_size(params), ncols = np + 5;
    const char **hdr = calloc(ncols, sizeof *hdr);
    trial_t *order = calloc(n, sizeof *order);
    if (!hdr || !order) {
        free(hdr);
        free(order);
        return;
    }
    hdr[0] = "RANK";
    hdr[1] = "TRIAL";
    size_t c = 2;
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)params, key, v) hdr[c++] = key;
    hdr[c++] = "MEAN";
    hdr[c++] = "STD";
    hdr[c++] = "SECONDS";
    for (size_t i = 0; i < n; i++) order[i] = (trial_t){i, num(json_object_get(json_array_get(trials, i), "mean"))};
    qsort(order, n, sizeof *order, by_score);
    ctl_table *t = ctl_table_new(ncols, hdr);
    char (*cells)[64] = calloc(ncols, sizeof *cells);
    const char **row = calloc(ncols, sizeof *row);
    for (size_t r = 0; t && cells && row && r < n; r++) {
        const json_t *tr = json_array_get(trials, order[r].index);
        snprintf(cells[0], 64, "%zu", r + 1);
        snprintf(cells[1], 64, "%zu%s", order[r].index, (double)order[r].index == best ? "*" : "");
        c = 2;
        json_object_foreach ((json_t *)params, key, v)
            ctl_fmt_value(json_object_get(json_object_get(tr, "params"), key), cells[c++], 64);
        ctl_fmt_value(json_object_get(tr, "mean"), cells[c++], 64);
        ctl_fmt_value(json_object_get(tr, "std"), cells[c++], 64);
        ctl_fmt_value(json_object_get(tr, "seconds"), cells[c++], 64);
        for (size_t i = 0; i < ncols; i++) row[i] = cells[i];
        ctl_table_add(t, row);
    }
    fprintf(out, "\nSEARCH      %zu trials, %s (mean over the folds; * = best, refitted)\n", n,
            metric ? metric : "?");
    if (t) ctl_table_print(t, out);
    ctl_table_destroy(&t);
    free(cells);
    free(row);
    free(hdr);
    free(order);
}
