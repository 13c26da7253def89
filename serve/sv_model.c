/* sv_model.c: see sv_model.h. The slot's mutex is held only for a
 * pointer copy and an increment, so a swap never delays a request by
 * more than that. */
#include "sv_model.h"
#include "err.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void model_free(sv_model_t *m)
{
    if (!m) return;
    mlops_artifact_destroy(&m->art);
    mlops_recommender_destroy(&m->rec);
    sv_drift_destroy(&m->drift);
    free(m->name);
    for (size_t i = 0; i < m->ncols; i++) free(m->cols[i]);
    free(m->cols);
    free(m->types);
    free(m->num_idx);
    free(m->cat_idx);
    free(m->mean);
    free(m->scale);
    for (size_t k = 0; m->class_json && m->class_json[k]; k++) free(m->class_json[k]);
    free(m->class_json);
    free(m);
}

/* A recommender version: it answers POST /recommend only. */
static sv_model_t *recommender_new(const json_t *doc, char *err, size_t errlen)
{
    mlops_recommender_t *r = mlops_recommender_from_json(doc, err, errlen);
    if (!r) return NULL;
    sv_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(mlops_recommender_name(r)))) {
        free(m);
        mlops_recommender_destroy(&r);
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return NULL;
    }
    m->rec = r;
    m->version = mlops_recommender_version(r);
    atomic_init(&m->refs, 1);
    return m;
}

sv_model_t *sv_model_new(const char *text, size_t len, char *err, size_t errlen)
{
    /* the format decides which kind of version this is */
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    if (fmt && !strcmp(fmt, MLOPS_RECOMMENDER_FORMAT)) {
        sv_model_t *m = recommender_new(doc, err, errlen);
        json_decref(doc);
        return m;
    }
    json_decref(doc);
    mlops_artifact_t *a = NULL;
    if (mlops_artifact_from_json(text, len, &a, err, errlen) != 0) return NULL;
    if (!a->model || a->nclasses < 2) {
        mlops_seterr(err, errlen, MLOPS_EINVAL,
                     "model %s version %u is not a classifier: mlops-serve serves classifiers and recommenders",
                     a->name ? a->name : "?", a->version);
        mlops_artifact_destroy(&a);
        return NULL;
    }
    sv_model_t *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->art = a;
    m->name = strdup(a->name ? a->name : "");
    m->version = a->version;
    size_t nc = a->nnumeric + a->nhashed;
    m->cols = calloc(nc + 1, sizeof *m->cols);
    m->types = calloc(nc + 1, sizeof *m->types);
    m->num_idx = calloc(a->nnumeric + 1, sizeof *m->num_idx);
    m->cat_idx = calloc(a->nhashed + 1, sizeof *m->cat_idx);
    m->mean = calloc(a->nnumeric + 1, sizeof *m->mean);
    m->scale = calloc(a->nnumeric + 1, sizeof *m->scale);
    m->class_json = calloc(a->nclasses + 1, sizeof *m->class_json);
    if (!m->name || !m->cols || !m->types || !m->num_idx || !m->cat_idx || !m->mean ||
        !m->scale || !m->class_json)
        goto oom;
    for (size_t i = 0; i < a->nnumeric; i++) {
        m->num_idx[i] = m->ncols;
        m->mean[i] = a->numeric[i].mean;
        m->scale[i] = a->numeric[i].scale;
        m->types[m->ncols] = MLK_F64;
        if (!(m->cols[m->ncols++] = strdup(a->numeric[i].column))) goto oom;
    }
    for (size_t i = 0; i < a->nhashed; i++) {
        for (size_t k = 0; k < m->ncols; k++)
            if (!strcmp(m->cols[k], a->hashed[i])) {
                mlops_seterr(err, errlen, MLOPS_EINVAL,
                             "model %s version %u: column '%s' is both numeric and hashed",
                             m->name, m->version, a->hashed[i]);
                model_free(m);
                return NULL;
            }
        m->cat_idx[i] = m->ncols;
        m->types[m->ncols] = MLK_STR;
        if (!(m->cols[m->ncols++] = strdup(a->hashed[i]))) goto oom;
    }
    for (size_t k = 0; k < a->nclasses; k++) {
        json_t *s = json_string(a->classes[k]);
        m->class_json[k] = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        json_decref(s);
        if (!m->class_json[k]) goto oom;
    }
    atomic_init(&m->refs, 1);
    return m;
oom:
    mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    if (m) {
        model_free(m);
    } else {
        mlops_artifact_destroy(&a);
    }
    return NULL;
}

void sv_model_release(sv_model_t **pm)
{
    if (!pm || !*pm) return;
    sv_model_t *m = *pm;
    *pm = NULL;
    if (atomic_fetch_sub(&m->refs, 1) == 1) model_free(m);
}

int sv_model_score(const sv_model_t *m, const mlk_frame *f, double *proba, uint8_t *unscored,
                   char *err, size_t errlen)
{
    const mlops_artifact_t *a = m->art;
    mlk_score_spec sp = {a->model,  a->nnumeric, m->num_idx,    m->mean,           m->scale,
                         a->nhashed, m->cat_idx, a->n_features, a->alternate_sign};
    return mlk_score_frame(&sp, f, proba, unscored, err, errlen);
}

void sv_slot_init(sv_slot_t *s)
{
    pthread_mutex_init(&s->mu, NULL);
    s->cur = NULL;
}

void sv_slot_fini(sv_slot_t *s)
{
    sv_model_release(&s->cur);
    pthread_mutex_destroy(&s->mu);
}

sv_model_t *sv_slot_get(sv_slot_t *s)
{
    pthread_mutex_lock(&s->mu);
    sv_model_t *m = s->cur;
    if (m) atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&s->mu);
    return m;
}

void sv_slot_swap(sv_slot_t *s, sv_model_t *m)
{
    pthread_mutex_lock(&s->mu);
    sv_model_t *old = s->cur;
    s->cur = m;
    pthread_mutex_unlock(&s->mu);
    sv_model_release(&old);
}
