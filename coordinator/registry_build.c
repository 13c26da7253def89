/* registry_build.c: the artifact of a succeeded job, the whole fitted
 * pipeline (artifact.h), gathered from what its stages left behind: the
 * spec's column roles and hasher settings, the scale stage's mean and
 * scale (its journalled blob), the classes, the train stage's final
 * model, the metrics, and the lineage (job id, canonical job file, a
 * SHA-256 of each uploaded input). coord_registry_on_success hands it to
 * the registry as the next version of `register.model` (default: the
 * job's name).
 *
 * Why at the end of the job and not at the end of train: the version's
 * metrics are evaluate's, which runs after train. A job whose later
 * stages fail registers nothing. But the artifact is built and its file
 * written as soon as only knn stages (which add nothing to it) are left
 * to run (coord_registry_prepare), beside them: then the job's end only
 * journals the version's records, unless another job registered the
 * same model meanwhile and the version number moved (built again).
 *
 * A knn stage in recommend mode with register: adds a recommender
 * version (mlops-recommender/1) the same way: the stage's training data
 * and settings (stage_knn_recommender), its metrics, the lineage. Its
 * name is register.model (default: the job's name), or that name with
 * "-recommender" when the same job also trains a classifier.
 *
 * The inputs' SHA-256 were computed beside the job (input_digest.c), so
 * the end of the job does not read its inputs again. */
#include "coord_internal.h"
#include "artifact.h"
#include "err.h"
#include "jsondump.h"
#include "tasks.pb-c.h"
#include "log.h"
#include "stages.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const uint8_t *train_model(const stage_t *st, size_t *len);
static int pack_pinned(const mlops_artifact_t *a, const char *ref, int with_ref, uint8_t **out,
                       size_t *outlen);

/* The scale stage's statistics (blob: u32 phase, u32 ncols, f64 mean[],
 * f64 scale[]), or mean 0 and scale 1 without one. */
static int numeric_stats(job_t *j, mlops_artifact_t *a, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    size_t n = s->columns.n_numeric;
    a->numeric = calloc(n ? n : 1, sizeof *a->numeric);
    if (!a->numeric) return MLOPS_ENOMEM;
    const stage_t *sc = job_stage(j, "scale");
    uint32_t nc = 0;
    if (sc) {
        if (sc->blob_len >= 8) memcpy(&nc, sc->blob + 4, 4);
        if (nc != n || sc->blob_len != 8 + (size_t)nc * 16)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "the scale stage holds %u columns for %zu numeric columns", nc, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (!(a->numeric[i].column = strdup(s->columns.numeric[i]))) return MLOPS_ENOMEM;
        a->nnumeric = i + 1;
        a->numeric[i].mean = 0;
        a->numeric[i].scale = 1;
        if (sc) {
            memcpy(&a->numeric[i].mean, sc->blob + 8 + i * 8, 8);
            memcpy(&a->numeric[i].scale, sc->blob + 8 + (size_t)nc * 8 + i * 8, 8);
        }
    }
    return 0;
}

static int build(coord_t *c, job_t *j, mlops_artifact_t *a, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    size_t len = 0;
    const uint8_t *mb = train_model(job_stage(j, "train"), &len);
    if (!mb) return mlops_seterr(err, errlen, MLOPS_EINVAL, "the train stage holds no model");
    int rc = mlk_model_decode(mb, len, &a->model, err, errlen);
    if (rc) return rc;
    if (!(a->label = strdup(s->columns.label))) return MLOPS_ENOMEM;
    a->classes = calloc(j->nclasses ? j->nclasses : 1, sizeof *a->classes);
    if (!a->classes) return MLOPS_ENOMEM;
    for (size_t i = 0; i < j->nclasses; i++) {
        if (!(a->classes[i] = strdup(j->classes[i]))) return MLOPS_ENOMEM;
        a->nclasses = i + 1;
    }
    if ((rc = numeric_stats(j, a, err, errlen))) return rc;
    a->n_features = s->has_hash ? s->hash.n_features : 0;
    a->alternate_sign = s->hash.alternate_sign;
    if (a->n_features) {
        a->hashed =
            calloc(s->columns.n_categorical ? s->columns.n_categorical : 1, sizeof *a->hashed);
        if (!a->hashed) return MLOPS_ENOMEM;
        for (size_t i = 0; i < s->columns.n_categorical; i++) {
            if (!(a->hashed[i] = strdup(s->columns.categorical[i]))) return MLOPS_ENOMEM;
            a->nhashed = i + 1;
        }
    }
    static const char *const kept[] = {"accuracy",  "logloss", "auc",       "f1",
                                       "precision", "recall",  "test_rows", "rows_train"};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        double v = job_metric(j, kept[i], NAN);
        if (!isnan(v) && (rc = mlops_artifact_add_metric(a, kept[i], v))) return rc;
    }
    if (j->ntrain_loss) {
        a->train_loss = malloc(j->ntrain_loss * sizeof *a->train_loss);
        if (!a->train_loss) return MLOPS_ENOMEM;
        memcpy(a->train_loss, j->train_loss, j->ntrain_loss * sizeof *a->train_loss);
        a->ntrain_loss = j->ntrain_loss;
    }
    for (size_t i = 0; i < s->reg.n_tags; i++)
        if ((rc = mlops_artifact_add_tag(a, s->reg.tags[i]))) return rc;
    if (!(a->job = strdup(j->id)) || !(a->job_file = strndup(j->spec_yaml, j->spec_len)))
        return MLOPS_ENOMEM;
    a->inputs = calloc(j->nfiles ? j->nfiles : 1, sizeof *a->inputs);
    if (!a->inputs) return MLOPS_ENOMEM;
    for (size_t i = 0; i < j->nfiles; i++) {
        mlops_art_input_t *in = &a->inputs[i];
        in->role = strdup(j->files[i].role);
        in->name = strdup(j->files[i].name);
        a->ninputs = i + 1;
        if (!in->role || !in->name) return MLOPS_ENOMEM;
        in->size = j->files[i].size;
        if (coord_digest_get(c, j, i, in->sha256) != 0)
            return mlops_seterr(err, errlen, MLOPS_EIO, "cannot read the uploaded input %s (%s)",
                                j->files[i].name, j->files[i].path);
    }
    char *ref = stage_profile_reference(j);
    if (ref) {
        json_error_t je;
        a->reference = json_loads(ref, 0, &je);
        free(ref);
        if (!a->reference)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "the profile stage's result is damaged");
    }
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return (a->created = strdup(ts)) ? 0 : MLOPS_ENOMEM;
}

/* The promotion gate: the challenger (the new version, scored by
 * evaluate) against the champion (scored by the promote stage on the
 * same test rows); lower is better for logloss. */
static void gate(coord_t *c, job_t *j, const char *name, uint32_t version)
{
    const mlops_jobspec_t *s = j->spec;
    const char *metric = stage_promote_metric_name(j);
    double ch = job_metric(j, metric, NAN);
    uint32_t cv = (uint32_t)job_metric(j, "promotion.champion_version", 0);
    double cm = job_metric(j, "promotion.champion_metric", NAN);
    int lower = !strcmp(metric, "logloss");
    double gain = lower ? cm - ch : ch - cm;
    int promoted = !cv || (isfinite(ch) && (!isfinite(cm) || gain >= s->promote.min_delta));
    char reason[512];
    if (!cv)
        snprintf(reason, sizeof reason,
                 "promotion gate (job %s): no champion; challenger v%u %s %.6g", j->id, version,
                 metric, ch);
    else
        snprintf(
            reason, sizeof reason,
            "promotion gate (job %s): %s: challenger v%u %s %.6g, champion v%u %.6g, min_delta %g",
            j->id, promoted ? "promoted" : "kept", version, metric, ch, cv, cm,
            s->promote.min_delta);
    if (coord_registry_gate(c, name, s->promote.alias, promoted ? version : 0, j->owner,
                            reason) != 0) {
        job_logf(j, "promote: the alias move failed");
        return;
    }
    job_set_metric(j, "promotion.promoted", promoted);
    job_set_metric(j, "promotion.challenger_version", version);
    job_logf(j, "promote: %s", reason);
}

int coord_registry_pin_champion(coord_t *c, job_t *j, int at_start, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    const char *name = s->reg.model ? s->reg.model : s->name;
    uint32_t version = 0;
    char why[512] = "", ref[32];
    char *text;
    if (at_start) {
        text = coord_registry_artifact(c, name, s->promote.alias, &version, why, sizeof why);
        if (!text) { /* no model or no alias yet: the first version is promoted */
            job_set_metric(j, "promotion.champion_version", 0);
            return 0;
        }
    } else {
        uint32_t v = (uint32_t)job_metric(j, "promotion.champion_version", 0);
        if (!v) return 0;
        snprintf(ref, sizeof ref, "%u", v);
        text = coord_registry_artifact(c, name, ref, &version, why, sizeof why);
        if (!text)
            return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "promote: the champion is gone: %s",
                                why);
    }
    mlops_artifact_t *a = NULL;
    int rc = mlops_artifact_from_json(text, strlen(text), &a, err, errlen);
    free(text);
    if (rc) return rc;
    char full[300];
    snprintf(full, sizeof full, "%s@%u", name, version);
    free(j->pinned);
    j->pinned = NULL;
    rc = pack_pinned(a, full, 0, &j->pinned, &j->pinned_len);
    mlops_artifact_destroy(&a);
    if (rc) return rc;
    job_set_metric(j, "promotion.champion_version", version);
    if (at_start) job_logf(j, "promote: champion is %s (holds '%s')", full, s->promote.alias);
    return 0;
}

static const char *const rec_metrics[] = {
    "hit_rate_at_n", "precision_at_n", "recall_at_n", "ndcg_at_n", "popular_hit_rate_at_n",
    "popular_ndcg_at_n", "knn_users", "knn_items", "knn_interactions", "knn_users_evaluated"};

/* The recommender's version: the stage's part, then what every artifact
 * carries. 0 with *version, or an error in err. */
static int register_recommender(coord_t *c, job_t *j, const char *name, uint32_t *version,
                                char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    json_t *body = stage_knn_recommender(j, err, errlen);
    if (!body) return MLOPS_EINVAL;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *doc = json_pack("{s:s,s:s,s:I,s:s}", "format", "mlops-recommender/1", "name", name,
                            "version", (json_int_t)0, "created", ts);
    json_t *metrics = json_object(), *tags = json_array(), *inputs = json_array();
    int rc = doc && metrics && tags && inputs ? 0 : MLOPS_ENOMEM;
    if (!rc) rc = json_object_update(doc, body) ? MLOPS_ENOMEM : 0;
    for (size_t i = 0; !rc && i < sizeof rec_metrics / sizeof *rec_metrics; i++) {
        double v = job_metric(j, rec_metrics[i], NAN);
        if (!isnan(v)) json_object_set_new(metrics, rec_metrics[i], json_real(v));
    }
    for (size_t i = 0; !rc && i < s->reg.n_tags; i++)
        json_array_append_new(tags, json_string(s->reg.tags[i]));
    for (size_t i = 0; !rc && i < j->nfiles; i++) {
        char sha[65];
        if (coord_digest_get(c, j, i, sha) != 0) {
            rc = mlops_seterr(err, errlen, MLOPS_EIO, "cannot read the uploaded input %s (%s)",
                              j->files[i].name, j->files[i].path);
            break;
        }
        json_array_append_new(inputs, json_pack("{s:s,s:s,s:I,s:s}", "role", j->files[i].role,
                                                "name", j->files[i].name, "size",
                                                (json_int_t)j->files[i].size, "sha256", sha));
    }
    if (!rc) {
        json_object_set(doc, "metrics", metrics);
        json_object_set(doc, "tags", tags);
        json_t *lin = json_pack("{s:s,s:s%,s:O}", "job", j->id, "job_file", j->spec_yaml,
                                j->spec_len, "inputs", inputs);
        rc = lin ? json_object_set_new(doc, "lineage", lin) : MLOPS_ENOMEM;
    }
    if (!rc) rc = coord_registry_add_doc(c, name, doc, j->id, version, err, errlen);
    else if (!err[0]) mlops_seterr(err, errlen, rc, "out of memory");
    json_decref(body);
    json_decref(doc);
    json_decref(metrics);
    json_decref(tags);
    json_decref(inputs);
    return rc;
}

int coord_registry_registers(const job_t *j)
{
    const mlops_jobspec_t *s = j->spec;
    return s && ((s->has_register && s->has_knn && s->knn.mode == MLOPS_KNN_RECOMMEND) ||
                 s->has_train);
}

void coord_registry_on_success(coord_t *c, job_t *j)
{
    const mlops_jobspec_t *s = j->spec;
    if (s && s->has_register && s->has_knn && s->knn.mode == MLOPS_KNN_RECOMMEND) {
        char name[300], err[1024] = "";
        snprintf(name, sizeof name, "%s%s", s->reg.model ? s->reg.model : s->name,
                 s->has_train ? "-recommender" : "");
        uint32_t version = 0;
        if (!coord_registry_valid_name(name, 128))
            snprintf(err, sizeof err, "'%s' is not a valid model name (over 128 characters?)",
                     name);
        if (err[0] || register_recommender(c, j, name, &version, err, sizeof err) != 0) {
            LOG_E("job %s: the recommender was not registered: %s", j->id, err);
            job_logf(j, "registry: the recommender was not registered: %s", err);
        } else {
            job_logf(j, "registry: recommender %s version %u", name, version);
            if (!s->has_train) {
                char ref[330];
                snprintf(ref, sizeof ref, "%s@%u", name, version);
                free(j->registered);
                j->registered = strdup(ref);
                j->dirty = 1;
            }
        }
    }
    if (!s || !s->has_train) return;
    if (s->input.format != MLOPS_INPUT_CSV) {
        job_logf(j, "registry: only CSV pipelines are registered; this model stays with the job");
        return;
    }
    const char *name = s->reg.model ? s->reg.model : s->name;
    char err[1024] = "";
    uint32_t version = 0;
    int rc = coord_registry_add_prebuilt(c, name, j->id, &version, err, sizeof err);
    if (rc == 0) {
        mlops_artifact_t *a = mlops_artifact_new();
        rc = a ? build(c, j, a, err, sizeof err) : MLOPS_ENOMEM;
        if (!rc) rc = coord_registry_add(c, name, a, j->id, &version, err, sizeof err);
        mlops_artifact_destroy(&a);
    } else if (rc == 1) {
        rc = 0;
    }
    if (rc) {
        LOG_E("job %s: the model was not registered: %s", j->id, err[0] ? err : mlops_strerror(rc));
        job_logf(j, "registry: the model was not registered: %s",
                 err[0] ? err : mlops_strerror(rc));
        return;
    }
    job_logf(j, "registry: model %s version %u", name, version);
    if (s->has_promote) gate(c, j, name, version);
    char ref[300];
    snprintf(ref, sizeof ref, "%s@%u", name, version);
    free(j->registered);
    j->registered = strdup(ref);
    j->dirty = 1;
}

void coord_registry_prepare(coord_t *c, job_t *j)
{
    const mlops_jobspec_t *s = j->spec;
    if (j->state != JOB_RUNNING || j->prepared || !s || !s->has_train || s->has_promote ||
        s->input.format != MLOPS_INPUT_CSV)
        return;
    size_t left = 0;
    for (size_t i = 0; i < j->nstages; i++) {
        const stage_t *st = &j->stages[i];
        if (st->state == ST_DONE) continue;
        if (strcmp(st->name, "knn")) return; /* the artifact may still read it */
        left++;
    }
    if (!left) return; /* the job ends now: built there */
    j->prepared = 1;
    const char *name = s->reg.model ? s->reg.model : s->name;
    char err[1024] = "";
    mlops_artifact_t *a = mlops_artifact_new();
    int rc = a ? build(c, j, a, err, sizeof err) : MLOPS_ENOMEM;
    if (!rc) rc = coord_registry_prebuild(c, name, &a, j->id, err, sizeof err);
    mlops_artifact_destroy(&a);
    /* the job's end builds it again, and says what went wrong */
    if (rc) LOG_D("job %s: the artifact was not built ahead: %s", j->id, err[0] ? err : mlops_strerror(rc));
}

/* The model's PredictModel message, packed (malloc'd); with_ref: with
 * its reference distributions (a drift job). */
static int pack_pinned(const mlops_artifact_t *a, const char *ref, int with_ref, uint8_t **out,
                       size_t *outlen)
{
    char *reference = with_ref && a->reference ? mlops_json_dumps(a->reference, JSON_COMPACT) : NULL;
    Mlops__Tasks__PredictModel pm = MLOPS__TASKS__PREDICT_MODEL__INIT;
    uint8_t *mb = NULL;
    size_t mlen = 0;
    int rc = mlk_model_encode(a->model, &mb, &mlen);
    if (rc) return rc;
    size_t nn = a->nnumeric;
    char **names = calloc(nn + 1, sizeof *names);
    double *mean = calloc(nn + 1, sizeof *mean), *scale = calloc(nn + 1, sizeof *scale);
    if (!names || !mean || !scale) rc = MLOPS_ENOMEM;
    for (size_t i = 0; !rc && i < nn; i++) {
        names[i] = a->numeric[i].column;
        mean[i] = a->numeric[i].mean;
        scale[i] = a->numeric[i].scale;
    }
    if (!rc) {
        pm.ref = (char *)ref;
        pm.model.data = mb;
        pm.model.len = mlen;
        pm.n_numeric = pm.n_mean = pm.n_scale = nn;
        pm.numeric = names;
        pm.mean = mean;
        pm.scale = scale;
        pm.n_hashed = a->nhashed;
        pm.hashed = a->hashed;
        pm.n_features = a->n_features;
        pm.alternate_sign = a->alternate_sign != 0;
        pm.n_classes = a->nclasses;
        pm.classes = a->classes;
        if (reference) pm.reference_json = reference;
        *outlen = mlops__tasks__predict_model__get_packed_size(&pm);
        *out = malloc(*outlen ? *outlen : 1);
        if (!*out) rc = MLOPS_ENOMEM;
        else mlops__tasks__predict_model__pack(&pm, *out);
    }
    free(mb);
    free(reference);
    free(names);
    free(mean);
    free(scale);
    return rc;
}

static int listed(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s)) return 1;
    return 0;
}

/* The job's spec with the model's columns (plus the kept ones, read as
 * text) and the pinned reference, as canonical YAML parsed again. */
static int rewrite_spec(job_t *j, const mlops_artifact_t *a, const char *ref, char *err,
                        size_t errlen)
{
    mlops_jobspec_t *s = j->spec;
    char **num = calloc(a->nnumeric + 1, sizeof *num);
    char **cat = calloc(a->nhashed + s->predict.n_keep + 1, sizeof *cat);
    if (!num || !cat) {
        free(num);
        free(cat);
        return MLOPS_ENOMEM;
    }
    size_t nn = 0, nc = 0;
    for (size_t i = 0; i < a->nnumeric; i++) num[nn++] = a->numeric[i].column;
    for (size_t i = 0; i < a->nhashed; i++) cat[nc++] = a->hashed[i];
    for (size_t i = 0; i < s->predict.n_keep; i++)
        if (!listed(num, nn, s->predict.keep[i]) && !listed(cat, nc, s->predict.keep[i]))
            cat[nc++] = s->predict.keep[i];
    /* borrow the lists for the YAML, then give the spec its own back */
    mlops_jobspec_t saved = *s;
    s->has_columns = 1;
    s->columns.label = NULL;
    s->columns.numeric = num;
    s->columns.n_numeric = nn;
    s->columns.categorical = cat;
    s->columns.n_categorical = nc;
    char *saved_drift = s->drift.model;
    if (s->has_drift) s->drift.model = (char *)ref;
    else s->predict.model = (char *)ref;
    char *yaml = NULL;
    size_t ylen = 0;
    int rc = mlops_jobspec_to_yaml(s, &yaml, &ylen);
    s->has_columns = saved.has_columns;
    s->columns = saved.columns;
    s->predict.model = saved.predict.model;
    s->drift.model = saved_drift;
    free(num);
    free(cat);
    if (rc) return rc;
    mlops_jobspec_t *ns = NULL;
    rc = mlops_jobspec_parse(yaml, ylen, j->spec_name, &ns, err, errlen);
    if (rc) {
        free(yaml);
        return rc;
    }
    mlops_jobspec_destroy(&j->spec);
    j->spec = ns;
    free(j->spec_yaml);
    j->spec_yaml = yaml;
    j->spec_len = ylen;
    j->dirty = 1;
    return 0;
}

int coord_registry_pin(coord_t *c, job_t *j, int rewrite, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    char name[200];
    const char *what = s->has_drift ? "drift" : "predict";
    const char *model = s->has_drift ? s->drift.model : s->predict.model;
    const char *at = strchr(model, '@');
    size_t nlen = at ? (size_t)(at - model) : strlen(model);
    if (!at || nlen >= sizeof name)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s.model: expected NAME@REF, got '%s'",
                            what, model);
    memcpy(name, model, nlen);
    name[nlen] = 0;
    uint32_t version = 0;
    char why[512] = "";
    char *text = coord_registry_artifact(c, name, at + 1, &version, why, sizeof why);
    if (!text) return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "%s.model: %s", what, why);
    mlops_artifact_t *a = NULL;
    int rc = mlops_artifact_from_json(text, strlen(text), &a, err, errlen);
    free(text);
    if (rc) return rc;
    char ref[300];
    snprintf(ref, sizeof ref, "%s@%u", name, version);
    if (s->has_columns && rewrite) {
        for (size_t i = 0; !rc && i < a->nnumeric; i++)
            if (!listed(s->columns.numeric, s->columns.n_numeric, a->numeric[i].column))
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                                  "columns.numeric: lacks '%s', which model %s needs",
                                  a->numeric[i].column, ref);
        for (size_t i = 0; !rc && i < a->nhashed; i++)
            if (!listed(s->columns.categorical, s->columns.n_categorical, a->hashed[i]))
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                                  "columns.categorical: lacks '%s', which model %s needs",
                                  a->hashed[i], ref);
    }
    /* rewrite_spec replaces j->spec: s is not to be read after it */
    int drift = s->has_drift;
    if (!rc && drift && !a->reference)
        rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                          "drift.model: %s has no reference distributions to compare with (an "
                          "artifact from before they were stored)",
                          ref);
    if (!rc && rewrite) rc = rewrite_spec(j, a, ref, err, errlen);
    free(j->pinned);
    j->pinned = NULL;
    if (!rc) rc = pack_pinned(a, ref, drift, &j->pinned, &j->pinned_len);
    if (!rc && rewrite)
        job_logf(j, "%s: %s with model %s", what, drift ? "comparing" : "scoring", ref);
    mlops_artifact_destroy(&a);
    return rc;
}
