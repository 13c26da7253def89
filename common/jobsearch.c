/* jobsearch.c: grid enumeration, random sampling and applying a trial's
 * values to a spec (see jobsearch.h). */
#include "jobsearch.h"
#include "err.h"
#include "jobschema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const mlops_jobschema_key_t *mlops_search_row(const char *key)
{
    if (!key || strncmp(key, "train.", 6) != 0) return NULL;
    const mlops_jobschema_key_t *k = mlops_jobschema_find("train", key + 6);
    return k && (k->type == MLOPS_JSK_UINT || k->type == MLOPS_JSK_NUM) ? k : NULL;
}

uint64_t mlops_search_count(const mlops_jobspec_t *s)
{
    if (!s->has_search) return 1;
    if (s->search.has_random) return s->search.random.n;
    uint64_t n = 1;
    for (size_t i = 0; i < s->search.nparams; i++) {
        uint64_t m = s->search.params[i].nvalues;
        if (m && n > UINT64_MAX / m) return UINT64_MAX;
        n *= m;
    }
    return n;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1] with 53 bits */
static double unit(uint64_t *x) { return (double)(splitmix(x) >> 11) / 9007199254740991.0; }

static double draw(const mlops_jobspec_param_t *p, uint64_t *x)
{
    double v;
    if (p->dist == MLOPS_PARAM_LIST) v = p->values[splitmix(x) % p->nvalues];
    else if (p->dist == MLOPS_PARAM_UNIFORM) v = p->lo + unit(x) * (p->hi - p->lo);
    else v = exp(log(p->lo) + unit(x) * (log(p->hi) - log(p->lo)));
    if (v < p->lo && p->dist != MLOPS_PARAM_LIST) v = p->lo; /* rounding at the ends */
    if (v > p->hi && p->dist != MLOPS_PARAM_LIST) v = p->hi;
    const mlops_jobschema_key_t *k = mlops_search_row(p->key);
    if (k && k->type == MLOPS_JSK_UINT) {
        v = floor(v + 0.5);
        if (v < k->lo) v = k->lo;
        if (v > k->hi) v = k->hi;
    }
    return v;
}

int mlops_search_trials(const mlops_jobspec_t *s, double **vals, size_t *ntrials)
{
    *vals = NULL;
    *ntrials = 0;
    uint64_t n = mlops_search_count(s);
    if (s->has_search && (n > s->search.max_trials || n == 0)) return MLOPS_EINVAL;
    size_t np = s->has_search ? s->search.nparams : 0;
    double *v = malloc((size_t)n * (np ? np : 1) * sizeof *v);
    if (!v) return MLOPS_ENOMEM;
    const mlops_jobspec_param_t *ps = s->search.params;
    uint64_t x = s->search.random.seed;
    for (size_t t = 0; t < n; t++) {
        if (s->has_search && s->search.has_random) {
            for (size_t i = 0; i < np; i++) v[t * np + i] = draw(&ps[i], &x);
            continue;
        }
        /* ParameterGrid: the last key varies fastest */
        size_t rest = t;
        for (size_t i = np; i-- > 0;) {
            v[t * np + i] = ps[i].values[rest % ps[i].nvalues];
            rest /= ps[i].nvalues;
        }
    }
    *vals = v;
    *ntrials = (size_t)n;
    return 0;
}

void mlops_search_apply(mlops_jobspec_t *s, const double *vals)
{
    for (size_t i = 0; s->has_search && i < s->search.nparams; i++) {
        const mlops_jobschema_key_t *k = mlops_search_row(s->search.params[i].key);
        if (!k) continue;
        char *at = (char *)s + k->off;
        if (k->type == MLOPS_JSK_UINT) {
            uint32_t u = (uint32_t)vals[i];
            memcpy(at, &u, sizeof u);
        } else {
            memcpy(at, &vals[i], sizeof vals[i]);
        }
        /* a searched value counts as given: train.alpha then has
         * SGDClassifier's meaning, as in the trial that chose it */
        if (k->flags & MLOPS_JSF_PRESENCE) {
            int one = 1;
            memcpy((char *)s + k->off2, &one, sizeof one);
        }
    }
}
