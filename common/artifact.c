/* artifact.c: the fitted pipeline <-> its portable JSON "mlops-model/1"
 * (see artifact.h and docs/model-format.md), built and read with jansson.
 *
 * The reader trusts nothing: a file a user exported and edited comes back
 * through here, so every field is checked for type, range and agreement
 * with the others (weights per class, indexes inside the feature space,
 * strictly increasing, finite values) before a model is built. */
#include "artifact.h"
#include "err.h"
#include "jsondump.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mlops_artifact_t *mlops_artifact_new(void) { return calloc(1, sizeof(mlops_artifact_t)); }

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

void mlops_artifact_destroy(mlops_artifact_t **pa)
{
    if (!pa || !*pa) return;
    mlops_artifact_t *a = *pa;
    free(a->name);
    free(a->created);
    free(a->label);
    free_strv(a->classes, a->nclasses);
    for (size_t i = 0; i < a->nnumeric; i++) free(a->numeric[i].column);
    free(a->numeric);
    free_strv(a->hashed, a->nhashed);
    mlk_model_destroy(&a->model);
    free_strv(a->metric_names, a->nmetrics);
    free(a->metric_values);
    free(a->train_loss);
    free_strv(a->tags, a->ntags);
    free(a->job);
    free(a->job_file);
    for (size_t i = 0; i < a->ninputs; i++) {
        free(a->inputs[i].role);
        free(a->inputs[i].name);
    }
    free(a->inputs);
    json_decref(a->reference);
    free(a);
    *pa = NULL;
}

static int push_str(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) return MLOPS_ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(s))) return MLOPS_ENOMEM;
    (*n)++;
    return 0;
}

int mlops_artifact_add_metric(mlops_artifact_t *a, const char *name, double v)
{
    double *nv = realloc(a->metric_values, (a->nmetrics + 1) * sizeof *nv);
    if (!nv) return MLOPS_ENOMEM;
    a->metric_values = nv;
    nv[a->nmetrics] = v;
    return push_str(&a->metric_names, &a->nmetrics, name);
}

int mlops_artifact_add_tag(mlops_artifact_t *a, const char *tag)
{
    return push_str(&a->tags, &a->ntags, tag);
}

double mlops_artifact_metric(const mlops_artifact_t *a, const char *name)
{
    for (size_t i = 0; i < a->nmetrics; i++)
        if (!strcmp(a->metric_names[i], name)) return a->metric_values[i];
    return NAN;
}

/* ---- writing ---------------------------------------------------------- */

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *strv(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

/* One weight vector k as {"class", "intercept", "coef": {indices, values}}:
 * only the weights whose bits are not all zero (so -0.0 survives). */
static json_t *weight_entry(const mlops_artifact_t *a, uint32_t k)
{
    const mlk_model *m = a->model;
    json_t *idx = json_array(), *val = json_array();
    for (uint64_t j = 0; j < m->dim; j++) {
        double w = m->w[j * m->n_vec + k];
        uint64_t bits;
        memcpy(&bits, &w, 8);
        if (!bits) continue;
        json_array_append_new(idx, json_integer((json_int_t)j));
        json_array_append_new(val, json_real(w));
    }
    const char *cls = m->n_vec == 1 ? a->classes[1] : a->classes[k];
    return json_pack("{s:s,s:o,s:{s:o,s:o}}", "class", cls, "intercept", json_real(m->b[k]), "coef",
                     "indices", idx, "values", val);
}

char *mlops_artifact_to_json(const mlops_artifact_t *a, char *err, size_t errlen)
{
    const mlk_model *m = a->model;
    if (!m || a->nclasses != m->n_classes || a->nclasses < 2 || m->n_features != a->n_features ||
        m->n_dense != a->nnumeric) {
        mlops_seterr(err, errlen, MLOPS_EINVAL,
                     "artifact: the model's shape does not match its pipeline (%zu classes, %u "
                     "hashed features, %zu numeric columns)",
                     a->nclasses, a->n_features, a->nnumeric);
        return NULL;
    }
    json_t *numeric = json_array();
    for (size_t i = 0; i < a->nnumeric; i++)
        json_array_append_new(numeric, json_pack("{s:s,s:o,s:o}", "column", a->numeric[i].column,
                                                 "mean", num(a->numeric[i].mean), "scale",
                                                 num(a->numeric[i].scale)));
    json_t *weights = json_array();
    for (uint32_t k = 0; k < m->n_vec; k++) json_array_append_new(weights, weight_entry(a, k));
    json_t *metrics = json_object();
    for (size_t i = 0; i < a->nmetrics; i++)
        json_object_set_new(metrics, a->metric_names[i], num(a->metric_values[i]));
    json_t *loss = json_array();
    for (size_t i = 0; i < a->ntrain_loss; i++) json_array_append_new(loss, num(a->train_loss[i]));
    json_t *inputs = json_array();
    for (size_t i = 0; i < a->ninputs; i++)
        json_array_append_new(inputs,
                              json_pack("{s:s,s:s,s:I,s:s}", "role", a->inputs[i].role, "name",
                                        a->inputs[i].name, "size", (json_int_t)a->inputs[i].size,
                                        "sha256", a->inputs[i].sha256));
    json_t *categorical = strv(a->hashed, a->nhashed);
    json_t *doc = json_pack(
        "{s:s,s:s?,s:I,s:s?,s:s,s:o,s:{s:s?,s:o,s:o},s:{s:o,s:{s:o,s:I,s:b}},s:o,s:o,s:o,s:o,"
        "s:{s:s?,s:s?,s:o}}",
        "format", MLOPS_ARTIFACT_FORMAT, "name", a->name, "version", (json_int_t)a->version,
        "created", a->created, "kind", "logistic", "classes", strv(a->classes, a->nclasses),
        "columns", "label", a->label, "numeric", json_deep_copy(numeric), "categorical",
        json_deep_copy(categorical), "features", "numeric", numeric, "hashed", "columns",
        categorical, "n_features", (json_int_t)a->n_features, "alternate_sign",
        a->alternate_sign != 0, "weights", weights, "metrics", metrics, "train_loss", loss, "tags",
        strv(a->tags, a->ntags), "lineage", "job", a->job, "job_file", a->job_file, "inputs",
        inputs);
    if (!doc) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "artifact: cannot build the JSON");
        return NULL;
    }
    if (a->reference) json_object_set(doc, "reference", a->reference);
    /* columns.numeric holds the names only: the copy above kept the
     * statistics, which belong to features.numeric */
    json_t *cn = json_object_get(json_object_get(doc, "columns"), "numeric");
    for (size_t i = 0; i < json_array_size(cn); i++)
        json_array_set(cn, i, json_object_get(json_array_get(cn, i), "column"));
    char *text = mlops_json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "artifact: a name is not valid UTF-8");
        return NULL;
    }
    size_t n = strlen(text);
    char *t = realloc(text, n + 2);
    if (!t) {
        free(text);
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = 0;
    return t;
}

/* ---- reading ---------------------------------------------------------- */

typedef struct {
    char *err;
    size_t errlen;
} rd_t;

static int bad(rd_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(rd_t *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mlops_seterr(r->err, r->errlen, MLOPS_EPARSE, "model file: %s", msg);
}

static const char *get_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A finite number (null is refused: weights and statistics must exist). */
static int get_num(rd_t *r, json_t *o, const char *key, const char *where, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return bad(r, "%s.%s: expected a finite number", where, key);
    *out = json_number_value(v);
    return 0;
}

static int get_strv(rd_t *r, json_t *o, const char *key, const char *where, char ***v, size_t *n)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a)) return bad(r, "%s%s: expected a list of strings", where, key);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s) || !*json_string_value(s))
            return bad(r, "%s%s[%zu]: expected a non-empty string", where, key, i);
        if (push_str(v, n, json_string_value(s))) return MLOPS_ENOMEM;
    }
    return 0;
}

static int read_weights(rd_t *r, json_t *doc, mlops_artifact_t *a)
{
    json_t *ws = json_object_get(doc, "weights");
    uint32_t n_vec = a->nclasses == 2 ? 1 : (uint32_t)a->nclasses;
    if (!json_is_array(ws) || json_array_size(ws) != n_vec)
        return bad(r, "weights: expected a list of %u entr%s for %zu classes", n_vec,
                   n_vec == 1 ? "y" : "ies", a->nclasses);
    a->model = mlk_model_new((uint32_t)a->nclasses, a->n_features, a->nnumeric, 0);
    if (!a->model)
        return bad(r, "features: %u hashed + %zu numeric inputs are too many for %zu classes",
                   a->n_features, a->nnumeric, a->nclasses);
    mlk_model *m = a->model;
    for (uint32_t k = 0; k < n_vec; k++) {
        json_t *e = json_array_get(ws, k);
        char where[32];
        snprintf(where, sizeof where, "weights[%u]", k);
        const char *cls = get_str(e, "class");
        const char *want = n_vec == 1 ? a->classes[1] : a->classes[k];
        if (!cls || strcmp(cls, want)) return bad(r, "%s.class: expected \"%s\"", where, want);
        if (get_num(r, e, "intercept", where, &m->b[k])) return MLOPS_EPARSE;
        json_t *coef = json_object_get(e, "coef");
        json_t *idx = json_object_get(coef, "indices"), *val = json_object_get(coef, "values");
        if (!json_is_array(idx) || !json_is_array(val) ||
            json_array_size(idx) != json_array_size(val))
            return bad(r, "%s.coef: expected lists indices and values of the same length", where);
        json_int_t last = -1;
        for (size_t i = 0; i < json_array_size(idx); i++) {
            json_t *ix = json_array_get(idx, i), *vx = json_array_get(val, i);
            json_int_t j = json_is_integer(ix) ? json_integer_value(ix) : -1;
            if (j <= last || (uint64_t)j >= m->dim)
                return bad(r, "%s.coef.indices[%zu]: expected an integer in %lld..%llu, increasing",
                           where, i, (long long)last + 1, (unsigned long long)m->dim - 1);
            if (!json_is_number(vx) || !isfinite(json_number_value(vx)))
                return bad(r, "%s.coef.values[%zu]: expected a finite number", where, i);
            m->w[(uint64_t)j * n_vec + k] = json_number_value(vx);
            last = j;
        }
    }
    return 0;
}

static int read_doc(rd_t *r, json_t *doc, mlops_artifact_t *a)
{
    int rc;
    if (!json_is_object(doc)) return bad(r, "expected a JSON object");
    const char *fmt = get_str(doc, "format");
    if (!fmt || strcmp(fmt, MLOPS_ARTIFACT_FORMAT))
        return bad(r, "format: expected \"%s\"", MLOPS_ARTIFACT_FORMAT);
    const char *kind = get_str(doc, "kind");
    if (!kind || strcmp(kind, "logistic")) return bad(r, "kind: expected \"logistic\"");
    const char *s;
    if ((s = get_str(doc, "name")) && !(a->name = strdup(s))) return MLOPS_ENOMEM;
    if ((s = get_str(doc, "created")) && !(a->created = strdup(s))) return MLOPS_ENOMEM;
    json_t *v = json_object_get(doc, "version");
    if (v &&
        (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX))
        return bad(r, "version: expected a non-negative integer");
    a->version = v ? (uint32_t)json_integer_value(v) : 0;
    if ((rc = get_strv(r, doc, "classes", "", &a->classes, &a->nclasses))) return rc;
    if (a->nclasses < 2) return bad(r, "classes: expected at least 2 classes");
    json_t *cols = json_object_get(doc, "columns");
    if ((s = get_str(cols, "label")) && !(a->label = strdup(s))) return MLOPS_ENOMEM;
    json_t *feat = json_object_get(doc, "features");
    if (!json_is_object(feat)) return bad(r, "features: expected an object");
    json_t *numeric = json_object_get(feat, "numeric");
    if (!json_is_array(numeric)) return bad(r, "features.numeric: expected a list");
    size_t nn = json_array_size(numeric);
    a->numeric = calloc(nn ? nn : 1, sizeof *a->numeric);
    if (!a->numeric) return MLOPS_ENOMEM;
    for (size_t i = 0; i < nn; i++) {
        json_t *e = json_array_get(numeric, i);
        char where[48];
        snprintf(where, sizeof where, "features.numeric[%zu]", i);
        const char *col = get_str(e, "column");
        if (!col || !*col) return bad(r, "%s.column: expected a column name", where);
        if (!(a->numeric[i].column = strdup(col))) return MLOPS_ENOMEM;
        a->nnumeric = i + 1;
        if (get_num(r, e, "mean", where, &a->numeric[i].mean) ||
            get_num(r, e, "scale", where, &a->numeric[i].scale))
            return MLOPS_EPARSE;
        if (a->numeric[i].scale == 0) return bad(r, "%s.scale: must not be 0", where);
    }
    json_t *h = json_object_get(feat, "hashed");
    if (!json_is_object(h)) return bad(r, "features.hashed: expected an object");
    if ((rc = get_strv(r, h, "columns", "features.hashed.", &a->hashed, &a->nhashed))) return rc;
    json_t *nf = json_object_get(h, "n_features");
    if (!json_is_integer(nf) || json_integer_value(nf) < 0 || json_integer_value(nf) > INT32_MAX)
        return bad(r, "features.hashed.n_features: expected an integer in 0..2147483647");
    a->n_features = (uint32_t)json_integer_value(nf);
    if (a->nhashed && !a->n_features)
        return bad(r, "features.hashed.n_features: must be > 0 with hashed columns");
    json_t *alt = json_object_get(h, "alternate_sign");
    if (!json_is_boolean(alt))
        return bad(r, "features.hashed.alternate_sign: expected true or false");
    a->alternate_sign = json_is_true(alt);
    if (a->n_features == 0 && a->nnumeric == 0) return bad(r, "features: the model has no inputs");
    if ((rc = read_weights(r, doc, a))) return rc;
    json_t *metrics = json_object_get(doc, "metrics");
    const char *key;
    json_t *mv;
    json_object_foreach (metrics, key, mv) {
        double x = json_is_number(mv) ? json_number_value(mv) : NAN;
        if ((rc = mlops_artifact_add_metric(a, key, x))) return rc;
    }
    json_t *tl = json_object_get(doc, "train_loss");
    if (json_array_size(tl)) {
        a->train_loss = malloc(json_array_size(tl) * sizeof *a->train_loss);
        if (!a->train_loss) return MLOPS_ENOMEM;
        for (size_t i = 0; i < json_array_size(tl); i++) {
            json_t *x = json_array_get(tl, i);
            a->train_loss[i] = json_is_number(x) ? json_number_value(x) : NAN;
        }
        a->ntrain_loss = json_array_size(tl);
    }
    if (json_object_get(doc, "tags") && (rc = get_strv(r, doc, "tags", "", &a->tags, &a->ntags)))
        return rc;
    json_t *ref = json_object_get(doc, "reference");
    if (ref && !json_is_object(ref)) return bad(r, "reference: expected an object");
    if (ref) a->reference = json_incref(ref);
    json_t *lin = json_object_get(doc, "lineage");
    if ((s = get_str(lin, "job")) && !(a->job = strdup(s))) return MLOPS_ENOMEM;
    if ((s = get_str(lin, "job_file")) && !(a->job_file = strdup(s))) return MLOPS_ENOMEM;
    json_t *ins = json_object_get(lin, "inputs");
    size_t ni = json_array_size(ins);
    if (ni) {
        a->inputs = calloc(ni, sizeof *a->inputs);
        if (!a->inputs) return MLOPS_ENOMEM;
        for (size_t i = 0; i < ni; i++) {
            json_t *e = json_array_get(ins, i);
            const char *role = get_str(e, "role"), *name = get_str(e, "name"),
                       *sha = get_str(e, "sha256");
            json_t *size = json_object_get(e, "size");
            if (!role || !name || !sha || strlen(sha) != 64 || !json_is_integer(size))
                return bad(r, "lineage.inputs[%zu]: expected role, name, size and sha256", i);
            a->inputs[i].role = strdup(role);
            a->inputs[i].name = strdup(name);
            a->ninputs = i + 1;
            if (!a->inputs[i].role || !a->inputs[i].name) return MLOPS_ENOMEM;
            a->inputs[i].size = (uint64_t)json_integer_value(size);
            memcpy(a->inputs[i].sha256, sha, 65);
        }
    }
    return 0;
}

int mlops_artifact_from_json(const char *text, size_t len, mlops_artifact_t **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    rd_t r = {err, errlen};
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) return bad(&r, "line %d column %d: %s", je.line, je.column, je.text);
    mlops_artifact_t *a = mlops_artifact_new();
    int rc = a ? read_doc(&r, doc, a) : MLOPS_ENOMEM;
    json_decref(doc);
    if (rc) {
        if (rc == MLOPS_ENOMEM) mlops_seterr(err, errlen, rc, "out of memory");
        mlops_artifact_destroy(&a);
        return rc;
    }
    *out = a;
    return 0;
}
