/* fuzz_payload.c: the decoders of the bulk payloads that workers and the
 * coordinator read back from a store or receive from a peer, on any
 * bytes: frames (frame.h), feature shards (fshard.h), sparse matrices
 * (hasher.h), metric partials (metrics.h), models (model.h), quantile
 * job state (quantile.h), scaler moments (scaler.h), and the bounds-
 * checked reader of task arguments and results (bytes.h).
 *
 * Input: byte 0 chooses the decoder (modulo their number), the rest is
 * the payload.
 *
 * Properties checked, beyond "no crash, no leak, no UB": what decodes
 * encodes again, the encoding decodes, and encoding that gives the same
 * bytes (so a value stored and read back is the value stored); a
 * failing decode leaves no output and, where it takes one, a one-line
 * message. A view of a frame's bytes (clean's tasks read them so) is
 * refused exactly when decode refuses them, and its filtered encoding
 * and dropna mask are those of the decoded frame. */
#include "fuzz.h"

#include <string.h>

#include "bytes.h"
#include "clean.h"
#include "err.h"
#include "frame.h"
#include "fshard.h"
#include "hasher.h"
#include "metrics.h"
#include "model.h"
#include "quantile.h"
#include "scaler.h"

/* One codec seen through the same three calls; err/errlen are ignored by
 * the decoders that take no message. */
typedef struct {
    const char *name;
    int (*decode)(const uint8_t *b, size_t n, void **out, char *err, size_t errlen);
    int (*encode)(const void *v, uint8_t **out, size_t *outlen);
    void (*destroy)(void **v);
    int has_msg;
} codec;

#define ADAPT(NAME, T, DEC, ENC, DESTROY)                                                  \
    static int NAME##_dec(const uint8_t *b, size_t n, void **out, char *err, size_t errlen) \
    {                                                                                      \
        T *v = NULL;                                                                       \
        int rc = DEC;                                                                      \
        *out = v;                                                                          \
        return rc;                                                                         \
    }                                                                                      \
    static int NAME##_enc(const void *v, uint8_t **out, size_t *outlen) { return ENC; }   \
    static void NAME##_free(void **v)                                                      \
    {                                                                                      \
        T *t = *v;                                                                         \
        DESTROY(&t);                                                                       \
        *v = t;                                                                            \
    }

#define UNUSED_MSG ((void)err, (void)errlen)
ADAPT(frame, mlk_frame, (UNUSED_MSG, mlk_frame_decode(b, n, &v)), mlk_frame_encode(v, out, outlen),
      mlk_frame_destroy)
ADAPT(features, mlk_features, (UNUSED_MSG, mlk_features_decode(b, n, &v)),
      mlk_features_encode(v, out, outlen), mlk_features_destroy)
ADAPT(csr, mlk_csr, mlk_csr_decode(b, n, &v, err, errlen), mlk_csr_encode(v, out, outlen),
      mlk_csr_destroy)
ADAPT(metrics, mlk_metrics, mlk_metrics_decode(b, n, &v, err, errlen),
      mlk_metrics_encode(v, out, outlen), mlk_metrics_destroy)
ADAPT(model, mlk_model, mlk_model_decode(b, n, &v, err, errlen), mlk_model_encode(v, out, outlen),
      mlk_model_destroy)
ADAPT(qjob, mlk_qjob, (UNUSED_MSG, mlk_qjob_decode(b, n, &v)), mlk_qjob_encode(v, out, outlen),
      mlk_qjob_destroy)

/* Moments are an array and its length, not an object. */
typedef struct {
    mlk_moments *m;
    size_t ncols;
} moments;
static int moments_dec(const uint8_t *b, size_t n, void **out, char *err, size_t errlen)
{
    UNUSED_MSG;
    moments *v = calloc(1, sizeof *v);
    FUZZ_CHECK(v != NULL);
    int rc = mlk_moments_decode(b, n, &v->m, &v->ncols);
    if (rc != 0) {
        FUZZ_CHECK(v->m == NULL);
        free(v);
        v = NULL;
    }
    *out = v;
    return rc;
}
static int moments_enc(const void *v, uint8_t **out, size_t *outlen)
{
    const moments *m = v;
    return mlk_moments_encode(m->m, m->ncols, out, outlen);
}
static void moments_free(void **v)
{
    moments *m = *v;
    if (m)
        free(m->m);
    free(m);
    *v = NULL;
}

static const codec codecs[] = {
    {"frame", frame_dec, frame_enc, frame_free, 0},
    {"features", features_dec, features_enc, features_free, 0},
    {"csr", csr_dec, csr_enc, csr_free, 1},
    {"metrics", metrics_dec, metrics_enc, metrics_free, 1},
    {"model", model_dec, model_enc, model_free, 1},
    {"qjob", qjob_dec, qjob_enc, qjob_free, 0},
    {"moments", moments_dec, moments_enc, moments_free, 0},
};
#define NCODECS (sizeof codecs / sizeof codecs[0])

static void round_trip(const codec *c, const uint8_t *b, size_t n)
{
    char err[512] = "";
    void *v = NULL;
    int rc = c->decode(b, n, &v, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && v == NULL);
        if (c->has_msg)
            FUZZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
        return;
    }
    FUZZ_CHECK(v != NULL);
    uint8_t *e1 = NULL, *e2 = NULL;
    size_t n1 = 0, n2 = 0;
    FUZZ_CHECK(c->encode(v, &e1, &n1) == 0);
    void *v2 = NULL;
    rc = c->decode(e1, n1, &v2, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s: its own encoding does not decode: %s\n", c->name, err);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(c->encode(v2, &e2, &n2) == 0);
    if (n1 != n2 || memcmp(e1, e2, n1) != 0)
        fprintf(stderr, "%s: encoding changes after a decode\n", c->name);
    FUZZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    free(e1);
    free(e2);
    c->destroy(&v2);
    c->destroy(&v);
    FUZZ_CHECK(v == NULL && v2 == NULL);
}

/* The mixing of encoded models (train) reads the same bytes as the model
 * decoder: it must accept exactly what the decoder accepts and give the
 * bytes of the dense average of the decoded models. So must the compact
 * decoder. */
static void model_average_check(const uint8_t *b, size_t n)
{
    char err[512] = "";
    mlk_model *m = NULL;
    int drc = mlk_model_decode(b, n, &m, err, sizeof err);
    const uint8_t *bufs[2] = {b, b};
    size_t lens[2] = {n, n};
    uint64_t cnt[2] = {3, 5};
    uint8_t *avg = NULL, *want = NULL;
    size_t alen = 0, wlen = 0;
    int arc = mlk_model_average_encoded(bufs, lens, cnt, 2, &avg, &alen, err, sizeof err);
    FUZZ_CHECK((drc == 0) == (arc == 0));
    if (arc != 0) FUZZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
    if (drc == 0) {
        const mlk_model *ms[2] = {m, m};
        mlk_model *a = NULL;
        FUZZ_CHECK(mlk_model_average(ms, cnt, 2, &a, err, sizeof err) == 0);
        FUZZ_CHECK(mlk_model_encode(a, &want, &wlen) == 0);
        FUZZ_CHECK(wlen == alen && memcmp(want, avg, alen) == 0);
        mlk_model_destroy(&a);
    }
    free(avg);
    free(want);
    /* the compact decoder (the epoch task's) accepts the same bytes and
     * encodes them back as the dense model does */
    mlk_cmodel *c = NULL;
    int crc = mlk_cmodel_decode(b, n, &c, err, sizeof err);
    FUZZ_CHECK((drc == 0) == (crc == 0));
    if (crc != 0) FUZZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
    if (drc == 0) {
        uint8_t *x = NULL, *y = NULL;
        size_t xl = 0, yl = 0;
        FUZZ_CHECK(mlk_model_encode(m, &x, &xl) == 0 && mlk_cmodel_encode(c, &y, &yl) == 0);
        FUZZ_CHECK(xl == yl && memcmp(x, y, xl) == 0);
        free(x);
        free(y);
    }
    mlk_cmodel_destroy(&c);
    mlk_model_destroy(&m);
}

/* mlk_frame_view against mlk_frame_decode on the same bytes; the rows
 * kept follow the payload's own bytes. */
static void frame_view_check(const uint8_t *b, size_t n)
{
    mlk_frame *f = NULL;
    mlk_frameview *v = NULL;
    int drc = mlk_frame_decode(b, n, &f), vrc = mlk_frame_view(b, n, &v);
    FUZZ_CHECK(drc == vrc && (v == NULL) == (vrc != 0));
    if (drc != 0) return;
    FUZZ_CHECK(f->nrows == v->nrows && f->ncols == v->ncols);
    uint8_t *keep = malloc(f->nrows + 1), *keep2 = malloc(f->nrows + 1);
    FUZZ_CHECK(keep != NULL && keep2 != NULL);
    FUZZ_CHECK(mlk_dropna_mask(f, NULL, 0, keep) == mlk_dropna_mask_view(v, f->ncols, keep2));
    FUZZ_CHECK(f->nrows == 0 || memcmp(keep, keep2, f->nrows) == 0);
    for (size_t r = 0; r < f->nrows; r++) keep[r] = (uint8_t)((b[r % n] >> (r % 8)) & 1);
    uint8_t *got = NULL, *want = NULL;
    size_t gl = 0, wl = 0;
    FUZZ_CHECK(mlk_frame_encode_filtered(v, keep, &got, &gl) == 0);
    mlk_frame_filter(f, keep);
    FUZZ_CHECK(mlk_frame_encode(f, &want, &wl) == 0);
    FUZZ_CHECK(gl == wl && memcmp(got, want, wl) == 0);
    free(got);
    free(want);
    free(keep);
    free(keep2);
    mlk_frame_view_destroy(&v);
    mlk_frame_destroy(&f);
}

/* Task arguments are read field by field: here the payload's own bytes
 * say which reads follow (2 bits each), so every mix of fields meets
 * every truncation. */
static void reader(const uint8_t *b, size_t n)
{
    br_t r;
    br_init(&r, b, n);
    for (size_t step = 0; step < 64 && !r.err && r.at < r.n; step++) {
        uint8_t op = b[step % n];
        switch ((op >> ((step & 3) * 2)) & 3) {
        case 0:
            br_u32(&r);
            break;
        case 1: {
            char *s = br_str(&r);
            FUZZ_CHECK((s == NULL) == (r.err != 0));
            free(s);
            break;
        }
        case 2: {
            size_t len = 0;
            const uint8_t *p = br_blob(&r, &len);
            if (p)
                FUZZ_CHECK(p >= b && p + len <= b + n);
            break;
        }
        default: {
            double *v = br_f64s(&r, op % 5);
            FUZZ_CHECK((v == NULL) == (r.err != 0));
            free(v);
            break;
        }
        }
        FUZZ_CHECK(r.at <= r.n);
    }
    (void)br_done(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t which = data[0] % (NCODECS + 1);
    if (which == NCODECS)
        reader(data + 1, size - 1);
    else
        round_trip(&codecs[which], data + 1, size - 1);
    if (which < NCODECS && !strcmp(codecs[which].name, "model")) model_average_check(data + 1, size - 1);
    if (which < NCODECS && !strcmp(codecs[which].name, "frame")) frame_view_check(data + 1, size - 1);
    return 0;
}
