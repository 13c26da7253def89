/* stage_idx.c: the ingest stage for IDX input (MNIST / Fashion-MNIST
 * image and label files), named "ingest" like the CSV one.
 *
 * Why here and not on the workers: the files were uploaded to the
 * coordinator, which must hand each worker its rows. Debian ships them
 * gzip-compressed, and gzip cannot be entered in the middle, so start()
 * inflates them once into raw copies beside the uploads; then each task's
 * pixels and labels are one pread each, like CSV ingest's byte range.
 *
 * Phases:
 *   with knn.queries (an IDX pair): phase 0 ingests the query set into
 *           "<job>/ingest.q/<t>" (the knn stage, and evaluate, read them),
 *           then the last phase ingests the input into the chain's
 *           shards "<job>/ingest/<t>" (final output, recomputable);
 *   without: the one phase ingests the input.
 * A task ingests rows [t*shard_rows, ...) of its file pair ("ingest_idx",
 * worker/kind_idx.c) into a feature shard: pixels / 255 as f32, the label
 * as its class index. The classes are the distinct label values of the
 * input, sorted numerically; query labels outside them become -1.
 *
 * blob: u32 phase (0 queries, 1 input), u32 ncls, u8 cls[ncls], then
 *       for the input and the queries: u64 nrows, u64 row_len,
 *       u64 image data offset, u64 label data offset (nrows 0: none).
 *
 * Task args (kind "ingest_idx"): IngestIdxArgs (proto/tasks.proto). */
#include "bytes.h"
#include "err.h"
#include "idx.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { SET_INPUT = 0, SET_QUERIES = 1 };

typedef struct {
    uint64_t nrows, row_len, img_off, lbl_off;
} idxset_t;

typedef struct {
    uint32_t phase;
    uint32_t ncls;
    uint8_t cls[256];
    idxset_t set[2];
} idxplan_t;

static const char *s_roles[2][2] = {{"images", "labels"}, {"queries.images", "queries.labels"}};

/* Path of the raw (inflated) copy of an uploaded file into out: the
 * upload itself when it is not gzip, else "<upload>.raw", written (via a
 * temporary file and rename, so a crash leaves no half copy) if absent. */
static int raw_path(const job_t *j, const char *role, char *out, size_t outlen, char *err,
                    size_t errlen)
{
    const char *path = job_file_path(j, role), *name = job_file_name(j, role);
    if (!path) return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "job has no '%s' file", role);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mlops_seterr(err, errlen, MLOPS_EIO, "%s: the uploaded copy is missing", name);
    unsigned char magic[2] = {0, 0};
    ssize_t got = read(fd, magic, 2);
    close(fd);
    if (got != 2 || magic[0] != 0x1f || magic[1] != 0x8b) {
        snprintf(out, outlen, "%s", path);
        return 0;
    }
    snprintf(out, outlen, "%s.raw", path);
    struct stat sb;
    if (stat(out, &sb) == 0) return 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    gzFile gz = gzopen(path, "rb");
    if (!gz) return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot open the uploaded copy", name);
    FILE *w = fopen(tmp, "wb");
    if (!w) {
        gzclose(gz);
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot write %s: %s", name, tmp, strerror(errno));
    }
    unsigned char *buf = malloc(1 << 16);
    int rc = buf ? 0 : MLOPS_ENOMEM;
    while (!rc) {
        int n = gzread(gz, buf, 1 << 16);
        if (n < 0) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: corrupt gzip data: %s", name, msg ? msg : "zlib error");
            break;
        }
        if (n == 0) break;
        if (fwrite(buf, 1, (size_t)n, w) != (size_t)n) {
            rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: writing %s: %s", name, tmp, strerror(errno));
            break;
        }
    }
    free(buf);
    gzclose(gz);
    if (fclose(w) != 0 && !rc) rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: writing %s failed", name, tmp);
    if (!rc && rename(tmp, out) != 0)
        rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: rename to %s: %s", name, out, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

/* Read and check the header of an image/label pair: same number of rows,
 * labels one-dimensional, no bytes missing or left over. */
static int read_set(const job_t *j, int set, idxset_t *out, char *err, size_t errlen)
{
    char img[4200], lbl[4200], msg[1024];
    const char *iname = job_file_name(j, s_roles[set][0]), *lname = job_file_name(j, s_roles[set][1]);
    int rc = raw_path(j, s_roles[set][0], img, sizeof img, err, errlen);
    if (!rc) rc = raw_path(j, s_roles[set][1], lbl, sizeof lbl, err, errlen);
    if (rc) return rc;
    mlk_idx_header hi, hl;
    if ((rc = mlk_idx_read_header(img, &hi, msg, sizeof msg)) != 0)
        return mlops_seterr(err, errlen, rc, "%s (%s): %s", iname, s_roles[set][0], msg);
    if ((rc = mlk_idx_read_header(lbl, &hl, msg, sizeof msg)) != 0)
        return mlops_seterr(err, errlen, rc, "%s (%s): %s", lname, s_roles[set][1], msg);
    if (hi.ndim < 2)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: an image file has at least 2 dimensions, this one %d",
                            iname, hi.ndim);
    if (hl.ndim != 1)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: a label file has 1 dimension, this one %d", lname,
                            hl.ndim);
    if (hi.nrows != hl.nrows)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s has %zu images but %s has %zu labels", iname, hi.nrows,
                            lname, hl.nrows);
    if (hi.nrows == 0) return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s has no images", iname);
    if (hi.row_len > (1u << 24))
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: images of %zu values are too large", iname, hi.row_len);
    out->nrows = hi.nrows;
    out->row_len = hi.row_len;
    out->img_off = 4 + 4 * (uint64_t)hi.ndim;
    out->lbl_off = 4 + 4 * (uint64_t)hl.ndim;
    struct stat si, sl;
    if (stat(img, &si) != 0 || stat(lbl, &sl) != 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: the inflated copy is missing", iname);
    if ((uint64_t)si.st_size != out->img_off + out->nrows * out->row_len)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: %lld bytes of data, the header says %llu", iname,
                            (long long)(si.st_size - (off_t)out->img_off),
                            (unsigned long long)(out->nrows * out->row_len));
    if ((uint64_t)sl.st_size != out->lbl_off + out->nrows)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: %lld bytes of data, the header says %llu", lname,
                            (long long)(sl.st_size - (off_t)out->lbl_off), (unsigned long long)out->nrows);
    return 0;
}

/* pread exactly n bytes at off of the raw copy of role into dst. */
static int read_range(const job_t *j, const char *role, uint64_t off, uint8_t *dst, size_t n, char *err,
                      size_t errlen)
{
    char path[4200];
    int rc = raw_path(j, role, path, sizeof path, err, errlen);
    if (rc) return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot open %s", job_file_name(j, role), path);
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, dst + done, n - done, (off_t)(off + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            close(fd);
            return mlops_seterr(err, errlen, MLOPS_EIO, "%s: short read at byte %llu", job_file_name(j, role),
                                (unsigned long long)(off + done));
        }
        done += (size_t)got;
    }
    close(fd);
    return 0;
}

static int plan_encode(stage_t *st, const idxplan_t *p)
{
    bw_t w;
    bw_init(&w);
    bw_u32(&w, p->phase);
    bw_u32(&w, p->ncls);
    bw_put(&w, p->cls, p->ncls);
    for (int s = 0; s < 2; s++) {
        bw_u64(&w, p->set[s].nrows);
        bw_u64(&w, p->set[s].row_len);
        bw_u64(&w, p->set[s].img_off);
        bw_u64(&w, p->set[s].lbl_off);
    }
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    return st->blob ? 0 : MLOPS_ENOMEM;
}

static int plan_decode(const stage_t *st, idxplan_t *p, char *err, size_t errlen)
{
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    memset(p, 0, sizeof *p);
    p->phase = br_u32(&r);
    p->ncls = br_u32(&r);
    if (r.err || p->ncls > 256 || p->phase > 1) return mlops_seterr(err, errlen, MLOPS_EPARSE, "ingest plan is damaged");
    br_get(&r, p->cls, p->ncls);
    for (int s = 0; s < 2; s++) {
        p->set[s].nrows = br_u64(&r);
        p->set[s].row_len = br_u64(&r);
        p->set[s].img_off = br_u64(&r);
        p->set[s].lbl_off = br_u64(&r);
    }
    if (!br_done(&r)) return mlops_seterr(err, errlen, MLOPS_EPARSE, "ingest plan is damaged");
    return 0;
}

static size_t nshards(const job_t *j, uint64_t nrows)
{
    uint64_t sr = j->spec->shard_rows ? j->spec->shard_rows : 1;
    return (size_t)((nrows + sr - 1) / sr);
}

static int has_idx_queries(const job_t *j)
{
    const mlops_jobspec_t *s = j->spec;
    return s->has_knn && s->knn.has_queries && s->knn.queries.format == MLOPS_INPUT_IDX;
}

/* Set up the tasks of the plan's phase. */
static int set_phase(job_t *j, stage_t *st, const idxplan_t *p)
{
    int set = p->phase == 0 ? SET_QUERIES : SET_INPUT;
    int rc = stage_set_tasks(st, nshards(j, p->set[set].nrows), "ingest_idx");
    if (rc) return rc;
    stage_set_output_keys(j, st, set == SET_QUERIES ? ".q/" : "/");
    return 0;
}

static int idx_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    if (s->input.format != MLOPS_INPUT_IDX)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "ingest: the input is not IDX");
    idxplan_t p;
    memset(&p, 0, sizeof p);
    int rc = read_set(j, SET_INPUT, &p.set[SET_INPUT], err, errlen);
    if (rc) return rc;
    if (has_idx_queries(j)) {
        if ((rc = read_set(j, SET_QUERIES, &p.set[SET_QUERIES], err, errlen)) != 0) return rc;
        if (p.set[SET_QUERIES].row_len != p.set[SET_INPUT].row_len)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: query images have %llu values, the input's %llu",
                                job_file_name(j, "queries.images"),
                                (unsigned long long)p.set[SET_QUERIES].row_len,
                                (unsigned long long)p.set[SET_INPUT].row_len);
    }
    /* the classes: distinct label values of the input, in numeric order */
    size_t n = (size_t)p.set[SET_INPUT].nrows;
    uint8_t *lab = malloc(n);
    if (!lab) return MLOPS_ENOMEM;
    rc = read_range(j, "labels", p.set[SET_INPUT].lbl_off, lab, n, err, errlen);
    if (rc) {
        free(lab);
        return rc;
    }
    uint8_t seen[256] = {0};
    for (size_t i = 0; i < n; i++) seen[lab[i]] = 1;
    free(lab);
    for (int v = 0; v < 256; v++)
        if (seen[v]) p.cls[p.ncls++] = (uint8_t)v;
    p.phase = p.set[SET_QUERIES].nrows ? 0 : 1;
    job_set_metric(j, "rows_in", (double)p.set[SET_INPUT].nrows);
    if (p.set[SET_QUERIES].nrows) job_set_metric(j, "rows_queries", (double)p.set[SET_QUERIES].nrows);
    if ((rc = plan_encode(st, &p)) != 0) return rc;
    return set_phase(j, st, &p);
}

static int idx_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    idxplan_t p;
    int rc = plan_decode(st, &p, err, errlen);
    if (rc) return rc;
    int set = p.phase == 0 ? SET_QUERIES : SET_INPUT;
    const idxset_t *x = &p.set[set];
    uint64_t sr = j->spec->shard_rows, first = (uint64_t)t * sr;
    if (t >= nshards(j, x->nrows)) return mlops_seterr(err, errlen, MLOPS_EINVAL, "ingest plan is damaged");
    uint64_t rows = x->nrows - first < sr ? x->nrows - first : sr;
    size_t npx = (size_t)(rows * x->row_len);
    uint8_t *buf = malloc(npx + rows + 1);
    if (!buf) return MLOPS_ENOMEM;
    rc = read_range(j, s_roles[set][0], x->img_off + first * x->row_len, buf, npx, err, errlen);
    if (!rc) rc = read_range(j, s_roles[set][1], x->lbl_off + first, buf + npx, (size_t)rows, err, errlen);
    if (rc) {
        free(buf);
        return rc;
    }
    Mlops__Tasks__IngestIdxArgs a = MLOPS__TASKS__INGEST_IDX_ARGS__INIT;
    a.first_row = first;
    a.rows = rows;
    a.row_len = x->row_len;
    a.classes.data = p.cls;
    a.classes.len = p.ncls;
    a.pixels.data = buf;
    a.pixels.len = npx;
    a.labels.data = buf + npx;
    a.labels.len = (size_t)rows;
    rc = args_pack(out, &a.base);
    free(buf);
    return rc;
}

static int idx_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    idxplan_t p;
    int rc = plan_decode(st, &p, err, errlen);
    if (rc) return rc;
    if (p.phase == 0) {
        job_set_metric(j, "rows_queries_ingested", stage_sum_metric(st, "rows"));
        p.phase = 1;
        st->phase++;
        if ((rc = plan_encode(st, &p)) != 0) return rc;
        if ((rc = set_phase(j, st, &p)) != 0) return rc;
        return 1;
    }
    job_set_metric(j, "rows_ingested", stage_sum_metric(st, "rows"));
    char **labels = calloc(p.ncls ? p.ncls : 1, sizeof *labels);
    if (!labels) return MLOPS_ENOMEM;
    for (uint32_t c = 0; c < p.ncls; c++) {
        char v[8];
        snprintf(v, sizeof v, "%u", p.cls[c]);
        if (!(labels[c] = strdup(v))) {
            for (uint32_t k = 0; k < c; k++) free(labels[k]);
            free(labels);
            return MLOPS_ENOMEM;
        }
    }
    job_set_classes(j, labels, p.ncls);
    return 0;
}

const stage_ops_t stage_ingest_idx = {"ingest", idx_start, idx_args, idx_done, 2, NULL, 0, NULL, NULL};
