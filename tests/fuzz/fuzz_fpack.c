/* fuzz_fpack.c: the packed feature shard (fpack.h) that the featurize
 * task writes and the epoch, cv and evaluate tasks read in place from
 * the store's map, on any bytes. Byte 0: bits 0-2 place the shard that
 * many bytes past an 8-aligned address (LMDB promises no alignment);
 * the rest is the shard.
 *
 * Properties checked, beyond "no crash, no leak, no UB": a misaligned
 * buffer is refused by mlk_fpack_open (never read in place) and decoded
 * by mlk_features_decode through a copy, with the same outcome as the
 * aligned bytes; a refusal is a one-line message; what opens converts
 * to arrays that encode back (mlk_fpack_encode) into a shard that opens
 * and converts to the same arrays, and re-encodes to the same bytes;
 * one epoch trains from the records in place (every visited label made
 * valid), the bytes it gives being those of the array path, and with
 * the offsets given over (mlk_sgd_train_packed_own) the same bytes;
 * mlk_fpack_open_copy answers as mlk_fpack_open (code, message, fields,
 * offsets), its copy holding the records' bytes. */
#include "fuzz.h"

#include <string.h>

#include "err.h"
#include "fpack.h"
#include "model.h"
#include "sgd.h"

static int same_features(const mlk_features *a, const mlk_features *b)
{
    uint8_t *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    FUZZ_CHECK(mlk_features_encode(a, &x, &xl) == 0 && mlk_features_encode(b, &y, &yl) == 0);
    int same = xl == yl && memcmp(x, y, xl) == 0;
    free(x);
    free(y);
    return same;
}

static void train_both(const mlk_fpack *p, const size_t *off, const mlk_features *f)
{
    if (p->nrows == 0 || p->nrows > 4096 || p->ncols > 4096 || p->n_dense > 64 || p->n_features > (1u << 16))
        return;
    size_t n = 0, *keep = malloc(p->nrows * sizeof *keep);
    int32_t *lab = malloc(p->nrows * sizeof *lab);
    FUZZ_CHECK(keep && lab);
    for (size_t i = 0; i < p->nrows; i++) {
        lab[i] = f->label[i] == 1 ? 1 : 0;
        if (!(p->test && p->test[i])) keep[n++] = off[i];
    }
    /* labels 0/1 in the records of a copy, so both paths train the same rows */
    uint8_t *recs = malloc(p->rec_bytes + 8);
    FUZZ_CHECK(recs != NULL);
    memcpy(recs, p->recs, p->rec_bytes);
    for (size_t i = 0; i < p->nrows; i++) memcpy(recs + off[i], &lab[i], 4);
    mlk_fpack q = *p;
    q.recs = recs;
    q.label_min = 0;
    q.label_max = p->nrows ? 1 : -1;
    mlk_sgd_opts o;
    mlk_sgd_opts_default(&o);
    o.epochs = 1;
    o.seed = 7;
    mlk_cmodel *a = mlk_cmodel_new(2, p->hashed ? p->n_features : 0, p->n_dense, 0);
    mlk_cmodel *b = mlk_cmodel_new(2, p->hashed ? p->n_features : 0, p->n_dense, 0);
    if (a && b) {
        char err[256] = "";
        mlk_sgd_data d = {f->nrows, f->csr, f->dense64, f->n_dense, lab};
        int ra = mlk_sgd_train_compact(a, &d, NULL, f->test, &o, NULL, err, sizeof err);
        int rb = mlk_sgd_train_packed(b, &q, keep, n, &o, NULL, err, sizeof err);
        FUZZ_CHECK(ra == rb);
        mlk_cmodel *c = mlk_cmodel_new(2, p->hashed ? p->n_features : 0, p->n_dense, 0);
        if (c) {
            int rc = mlk_sgd_train_packed_own(c, &q, keep, n, &o, NULL, err, sizeof err);
            FUZZ_CHECK(rc == rb);
            uint8_t *x = NULL, *y = NULL;
            size_t xl = 0, yl = 0;
            if (rc == 0) {
                FUZZ_CHECK(mlk_cmodel_encode(b, &x, &xl) == 0 && mlk_cmodel_encode(c, &y, &yl) == 0);
                FUZZ_CHECK(xl == yl && memcmp(x, y, xl) == 0);
            }
            free(x);
            free(y);
            mlk_cmodel_destroy(&c);
        }
        if (ra == 0) {
            uint8_t *x = NULL, *y = NULL;
            size_t xl = 0, yl = 0;
            FUZZ_CHECK(mlk_cmodel_encode(a, &x, &xl) == 0 && mlk_cmodel_encode(b, &y, &yl) == 0);
            FUZZ_CHECK(xl == yl && memcmp(x, y, xl) == 0);
            free(x);
            free(y);
        }
    }
    mlk_cmodel_destroy(&a);
    mlk_cmodel_destroy(&b);
    free(recs);
    free(keep);
    free(lab);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t shift = data[0] & 7, len = size - 1;
    uint8_t *room = aligned_alloc(8, (len + 8 + 7) & ~(size_t)7);
    FUZZ_CHECK(room != NULL);
    uint8_t *buf = room + shift;
    memcpy(buf, data + 1, len);
    mlk_fpack p;
    char err[256] = "";
    size_t *off = malloc((len / 8 + 1) * sizeof *off);
    FUZZ_CHECK(off != NULL);
    mlk_features *viadec = NULL;
    int drc = mlk_features_decode(buf, len, &viadec);
    int rc = mlk_fpack_open(buf, len, &p, off, err, sizeof err);
    if (shift) {
        FUZZ_CHECK(rc == MLOPS_EINVAL && strchr(err, '\n') == NULL);
        memmove(room, buf, len); /* the aligned bytes: what a reader copies to */
        buf = room;
        err[0] = 0;
        rc = mlk_fpack_open(buf, len, &p, off, err, sizeof err);
    }
    {
        mlk_fpack pc;
        char errc[256] = "";
        size_t *offc = malloc((len / 8 + 1) * sizeof *offc);
        uint8_t *dst = aligned_alloc(8, (len + 8) & ~(size_t)7);
        FUZZ_CHECK(offc && dst);
        FUZZ_CHECK(mlk_fpack_rec_bytes(buf, len) <= len);
        int rcc = mlk_fpack_open_copy(buf, len, &pc, offc, dst, errc, sizeof errc);
        FUZZ_CHECK(rcc == rc && strcmp(err, errc) == 0);
        if (rc == 0) {
            FUZZ_CHECK(pc.recs == dst && pc.rec_bytes == mlk_fpack_rec_bytes(buf, len));
            FUZZ_CHECK(pc.rec_bytes == 0 || memcmp(pc.recs, p.recs, pc.rec_bytes) == 0);
            pc.recs = p.recs;
            FUZZ_CHECK(memcmp(&pc, &p, sizeof p) == 0 && memcmp(offc, off, p.nrows * sizeof *off) == 0);
        }
        free(offc);
        free(dst);
    }
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && err[0] != 0 && strchr(err, '\n') == NULL);
        if (mlk_fpack_is(buf, len)) FUZZ_CHECK(drc != 0 && viadec == NULL);
    } else {
        FUZZ_CHECK(drc == 0 && viadec != NULL);
        mlk_features *f = mlk_fpack_to_features(&p, off);
        FUZZ_CHECK(f != NULL && same_features(f, viadec));
        uint8_t *e1 = NULL, *e2 = NULL;
        size_t l1 = 0, l2 = 0;
        FUZZ_CHECK(mlk_fpack_encode(f, &e1, &l1) == 0);
        mlk_fpack p2;
        size_t *off2 = malloc((l1 / 8 + 1) * sizeof *off2);
        FUZZ_CHECK(off2 && mlk_fpack_open(e1, l1, &p2, off2, err, sizeof err) == 0);
        mlk_features *f2 = mlk_fpack_to_features(&p2, off2);
        FUZZ_CHECK(f2 != NULL && same_features(f, f2));
        FUZZ_CHECK(mlk_fpack_encode(f2, &e2, &l2) == 0 && l1 == l2 && memcmp(e1, e2, l1) == 0);
        train_both(&p, off, f);
        mlk_features_destroy(&f2);
        mlk_features_destroy(&f);
        free(off2);
        free(e1);
        free(e2);
    }
    mlk_features_destroy(&viadec);
    free(off);
    free(room);
    return 0;
}
