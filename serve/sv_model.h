/* sv_model.h: the model mlops-serve answers with: a parsed artifact, the
 * columns a request must carry, and the scoring spec over them, shared
 * by the HTTP threads through a reference count.
 *
 * Why a reference count: a hot swap (sv_slot_swap) replaces the current
 * model while requests are being scored with the old one. Each request
 * takes a reference (sv_slot_get) and gives it back when its reply is
 * written (sv_model_release); the old model is freed by whichever
 * release is the last, so no request in flight ever waits or fails. */
#ifndef SV_MODEL_H
#define SV_MODEL_H
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "artifact.h"
#include "frame.h"
#include "recommender.h"
#include "score.h"
#include "sv_drift.h"

typedef struct {
    mlops_artifact_t *art;      /* a classifier; NULL for a recommender */
    mlops_recommender_t *rec;   /* a recommender (POST /recommend); NULL for a classifier */
    char *name;       /* the registered name */
    uint32_t version;
    /* the request's columns: numeric ones first, then the hashed ones */
    size_t ncols;
    char **cols;
    mlk_coltype *types;
    size_t *num_idx, *cat_idx; /* into cols, for mlk_score_spec */
    double *mean, *scale;
    char **class_json; /* each class as a JSON string literal, quoted */
    sv_drift_t *drift;  /* what this version served; NULL: no reference */
    atomic_int refs;
} sv_model_t;

/* Parse the artifact text of NAME version VERSION: a classifier
 * (mlops-model/1) or a recommender (mlops-recommender/1). NULL with err. */
sv_model_t *sv_model_new(const char *text, size_t len, char *err, size_t errlen);
/* Give back a reference; the last one frees the model. NULLs *pm. */
void sv_model_release(sv_model_t **pm);

/* Score the frame (columns in m->cols order): proba n x K, unscored n. */
int sv_model_score(const sv_model_t *m, const mlk_frame *f, double *proba, uint8_t *unscored,
                   char *err, size_t errlen);

/* The current model, swapped atomically. */
typedef struct {
    pthread_mutex_t mu;
    sv_model_t *cur;
} sv_slot_t;

void sv_slot_init(sv_slot_t *s);
/* Release the model held; the slot is empty afterwards. */
void sv_slot_fini(sv_slot_t *s);
/* A reference to the current model (release it), or NULL before one is loaded. */
sv_model_t *sv_slot_get(sv_slot_t *s);
/* Install m (takes the caller's reference); the old one is released. */
void sv_slot_swap(sv_slot_t *s, sv_model_t *m);

#endif
