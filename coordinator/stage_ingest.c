/* stage_ingest.c: the ingest stage for CSV input. The uploaded files
 * (one or many, in the job's order; .gz and .zst inflated once, by
 * decompress.h) are mapped once per job and each cut into shards of
 * shard_rows records (fixed by the data and the job file, never by the
 * workers; a shard never spans two files); a task ("ingest",
 * worker/kinds.c) parses its byte range into a frame of the used columns.
 * The first quantile round of clean rides along with each task, and the
 * tasks return their shard's distinct labels (stage_merge_labels).
 * With joins, the join stage answers that round instead (the joined
 * columns are not here yet) and this file also maps the joins' right
 * tables for it (stage_ingest_join_file).
 * A file read in place (--local-inputs, jfile_t.local) is mapped only to
 * be cut; its tasks carry the path, byte range and identity instead of
 * the bytes (IngestArgs.local), and each use checks it is still the file
 * submitted. Compressed files and the joins' tables are uploads.
 * Args: IngestArgs, result: IngestResult (proto/tasks.proto). */
#include "bytes.h"
#include "csv.h"
#include "decompress.h"
#include "err.h"
#include "localin.h"
#include "jobmodel.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef stage_csvfile_t infile_t;

/* per-job planning state: every input file, in the job's order, and
 * the right tables of the joins (mapped when the join stage asks) */
typedef struct {
    infile_t *f;
    const jfile_t **src; /* the job's file behind each f */
    size_t nf;
    int mapped;
    infile_t jf[16];
    int jmapped[16];
    /* clean's first quantile request, the same for every task: made once
     * (a quantile job allocates a histogram per column to make it) */
    uint8_t *req;
    size_t reqlen;
    int req_made;
} plan_t;

static plan_t *plan_of(job_t *j)
{
    if (!j->plan) j->plan = calloc(1, sizeof(plan_t));
    return j->plan;
}

void stage_ingest_job_free(job_t *j)
{
    plan_t *p = j->plan;
    if (!p) return;
    for (size_t i = 0; i < p->nf; i++) {
        if (p->f[i].map) munmap(p->f[i].map, p->f[i].maplen);
        mlk_csv_names_free(&p->f[i].hdr, p->f[i].nhdr);
    }
    free(p->f);
    free(p->src);
    free(p->req);
    for (size_t i = 0; i < 16; i++) {
        if (p->jf[i].map) munmap(p->jf[i].map, p->jf[i].maplen);
        mlk_csv_names_free(&p->jf[i].hdr, p->jf[i].nhdr);
    }
    free(p);
    j->plan = NULL;
}

/* Map one upload; a .gz or .zst one is inflated once, next to it, into
 * PATH.csv (kept, so a re-plan after a restart does not inflate again). */
static int map_one(const jfile_t *jf, infile_t *f, char *err, size_t errlen)
{
    f->name = jf->name;
    const char *path = jf->path;
    char plain[4200];
    mlops_comp_kind kind = jf->local ? MLOPS_COMP_NONE : mlops_decompress_kind(jf->name);
    if (jf->local) { /* read in place: it must still be the file submitted */
        mlops_localin_id_t id = {jf->dev, jf->ino, jf->size, jf->mtime_ns};
        int rc = mlops_localin_verify(jf->path, jf->name, &id, err, errlen);
        if (rc) return rc;
    }
    if (kind != MLOPS_COMP_NONE) {
        snprintf(plain, sizeof plain, "%s.csv", jf->path);
        if (access(plain, R_OK) != 0) {
            int rc = mlops_decompress_file(jf->path, jf->name, kind, plain, err, errlen);
            if (rc) return rc;
        }
        path = plain;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: %s", f->name,
                            jf->local ? strerror(errno) : "the uploaded copy is missing");
    struct stat sb;
    fstat(fd, &sb);
    if (jf->local && (uint64_t)sb.st_size != jf->size) { /* changed between the check and the open */
        close(fd);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: changed since it was submitted", f->name);
    }
    f->maplen = (size_t)sb.st_size;
    if (f->maplen) {
        f->map = mmap(NULL, f->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            f->maplen = 0;
            close(fd);
            return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot map the uploaded copy", f->name);
        }
    }
    close(fd);
    char why[900];
    int rc = mlk_csv_header(f->map ? f->map : "", f->maplen, &f->hdr, &f->nhdr, &f->data_start, why,
                            sizeof why);
    /* the kernel's message does not know the file */
    if (rc) return mlops_seterr(err, errlen, rc, "%s: %s", f->name, why);
    return 0;
}

static int map_input(job_t *j, char *err, size_t errlen)
{
    plan_t *p = plan_of(j);
    if (!p) return MLOPS_ENOMEM;
    if (p->mapped) return 0;
    size_t n = 0;
    for (size_t i = 0; i < j->nfiles; i++) n += !strcmp(j->files[i].role, "input");
    if (!n) return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "job has no input file");
    if (!p->f && !(p->f = calloc(n, sizeof *p->f))) return MLOPS_ENOMEM;
    if (!p->src && !(p->src = calloc(n, sizeof *p->src))) return MLOPS_ENOMEM;
    int rc = 0;
    for (size_t i = 0; !rc && i < j->nfiles; i++)
        if (!strcmp(j->files[i].role, "input")) {
            p->src[p->nf] = &j->files[i];
            rc = map_one(&j->files[i], &p->f[p->nf++], err, errlen);
        }
    if (rc) {
        stage_ingest_job_free(j); /* a later try starts over */
        return rc;
    }
    p->mapped = 1;
    return 0;
}

/* The shard table, one entry per shard, journalled as the stage blob:
 * u64 nshards, u64 total_rows, then per shard u64 file, offset, end,
 * first_line, first_row. Shards never span files, and a shard's rows are
 * numbered on from the records of the files before it, so row ids are
 * those of the files read one after another. */
#define SHARD_WORDS 5

const stage_csvfile_t *stage_ingest_join_file(job_t *j, size_t i, char *err, size_t errlen)
{
    plan_t *p = plan_of(j);
    if (!p) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return NULL;
    }
    if (i >= 16) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "join %zu: at most 16 joins", i);
        return NULL;
    }
    if (p->jmapped[i]) return &p->jf[i];
    char role[16];
    snprintf(role, sizeof role, "join.%zu", i);
    const jfile_t *jf = NULL;
    for (size_t k = 0; k < j->nfiles && !jf; k++)
        if (!strcmp(j->files[k].role, role)) jf = &j->files[k];
    if (!jf) {
        mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "join[%zu]: the right table was not uploaded", i);
        return NULL;
    }
    int rc = map_one(jf, &p->jf[i], err, errlen);
    if (rc) {
        if (p->jf[i].map) munmap(p->jf[i].map, p->jf[i].maplen);
        mlk_csv_names_free(&p->jf[i].hdr, p->jf[i].nhdr);
        memset(&p->jf[i], 0, sizeof p->jf[i]);
        return NULL;
    }
    p->jmapped[i] = 1;
    return &p->jf[i];
}

static int ingest_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    if (s->input.format != MLOPS_INPUT_CSV)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "input format not supported by ingest");
    int rc = map_input(j, err, errlen);
    if (rc) return rc;
    plan_t *p = j->plan;
    rc = mlops_jobspec_check_header(s, p->f[0].name, (const char *const *)p->f[0].hdr, p->f[0].nhdr, err,
                                    errlen);
    if (rc && (s->has_predict || s->has_drift)) { /* the columns came from the model: say which */
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0, "; model %s needs it",
                 s->has_drift ? s->drift.model : s->predict.model);
    }
    if (rc) return rc;
    for (size_t i = 1; i < p->nf; i++) {
        int same = p->f[i].nhdr == p->f[0].nhdr;
        for (size_t c = 0; same && c < p->f[i].nhdr; c++) same = !strcmp(p->f[i].hdr[c], p->f[0].hdr[c]);
        if (!same)
            return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: header differs from %s's", p->f[i].name,
                                p->f[0].name);
    }
    bw_t w;
    bw_init(&w);
    uint64_t total = 0, nshards = 0;
    bw_u64(&w, 0); /* nshards and total, patched below */
    bw_u64(&w, 0);
    for (size_t i = 0; i < p->nf; i++) {
        infile_t *f = &p->f[i];
        uint64_t *offs = NULL, ftotal = 0;
        long *lines = NULL;
        size_t ns = 0;
        rc = mlk_csv_split(f->map ? f->map : "", f->maplen, f->data_start, s->shard_rows, &offs, &lines,
                           &ns, &ftotal);
        if (rc) {
            free(offs);
            free(lines);
            bw_free(&w);
            return mlops_seterr(err, errlen, rc, "%s: cannot split into shards: %s", f->name,
                                mlops_strerror(rc));
        }
        for (size_t k = 0; k < ns; k++) {
            bw_u64(&w, i);
            bw_u64(&w, offs[k]);
            bw_u64(&w, k + 1 < ns ? offs[k + 1] : f->maplen);
            bw_u64(&w, (uint64_t)lines[k]);
            bw_u64(&w, total + (uint64_t)k * s->shard_rows);
        }
        nshards += ns;
        total += ftotal;
        free(offs);
        free(lines);
        /* the workers read a file in place themselves: unmapped now, the
         * user's file changing later cannot fault the coordinator */
        if (p->src[i]->local && f->map) {
            munmap(f->map, f->maplen);
            f->map = NULL;
        }
    }
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    memcpy(st->blob, &nshards, 8);
    memcpy(st->blob + 8, &total, 8);
    job_set_metric(j, "rows_in", (double)total);
    if ((rc = stage_set_tasks(st, nshards, "ingest")) != 0) return rc;
    stage_set_output_keys(j, st, "/");
    return 0;
}

static int ingest_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    int rc = map_input(j, err, errlen);
    if (rc) return rc;
    plan_t *p = j->plan;
    uint64_t n = 0, e[SHARD_WORDS];
    if (st->blob_len >= 16) memcpy(&n, st->blob, 8);
    if (st->blob_len < 16 || t >= n || st->blob_len != 16 + n * SHARD_WORDS * 8)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "ingest plan is damaged");
    memcpy(e, st->blob + 16 + t * SHARD_WORDS * 8, sizeof e);
    if (e[0] >= p->nf || e[1] > e[2] || e[2] > p->f[e[0]].maplen)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "ingest plan is damaged");
    const infile_t *f = &p->f[e[0]];
    const jfile_t *src = p->src[e[0]];
    uint64_t off = e[1], end = e[2], line = e[3];
    if (src->local) { /* gone or changed since submit: the job fails here, naming it */
        mlops_localin_id_t id = {src->dev, src->ino, src->size, src->mtime_ns};
        if ((rc = mlops_localin_verify(src->path, src->name, &id, err, errlen)) != 0) return rc;
    } else if (!f->map && f->maplen)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "ingest plan is damaged");
    mlops_jobspec_col_t *cols = NULL;
    size_t ncols = 0;
    if ((rc = mlops_jobspec_used_columns(j->spec, &cols, &ncols)) != 0) return rc;
    Mlops__Tasks__IngestColumn *cv = calloc(ncols ? ncols : 1, sizeof *cv);
    Mlops__Tasks__IngestColumn **cp = calloc(ncols ? ncols : 1, sizeof *cp);
    /* the first quantile round of clean rides along: the shard is parsed
     * and in memory here, so its first histogram costs no extra pass */
    if (!cv || !cp) rc = MLOPS_ENOMEM;
    else if (!j->spec->njoin && !p->req_made) { /* else join answers */
        rc = stage_clean_first_request(j, &p->req, &p->reqlen);
        p->req_made = rc == 0;
    }
    if (!rc) {
        for (size_t i = 0; i < ncols; i++) {
            mlops__tasks__ingest_column__init(&cv[i]);
            cv[i].name = (char *)cols[i].name;
            cv[i].type = (uint32_t)cols[i].type;
            cp[i] = &cv[i];
        }
        Mlops__Tasks__IngestArgs a = MLOPS__TASKS__INGEST_ARGS__INIT;
        a.file_name = (char *)f->name;
        a.first_row = e[4];
        a.first_line = line;
        a.n_header = f->nhdr;
        a.header = f->hdr;
        a.n_columns = ncols;
        a.columns = cp;
        a.skip_bad_rows = j->spec->on_bad_row == MLOPS_BAD_ROW_SKIP;
        Mlops__Tasks__LocalRange lr = MLOPS__TASKS__LOCAL_RANGE__INIT;
        if (src->local) { /* the worker reads the range in place */
            lr.path = src->path;
            lr.offset = off;
            lr.length = end - off;
            lr.dev = src->dev;
            lr.ino = src->ino;
            lr.size = src->size;
            lr.mtime_ns = src->mtime_ns;
            a.local = &lr;
        } else {
            a.data.data = (uint8_t *)f->map + off;
            a.data.len = (size_t)(end - off);
        }
        a.dropna = j->spec->clean.dropna != 0;
        a.quantile_request.data = p->req;
        a.quantile_request.len = p->reqlen;
        rc = args_pack(out, &a.base);
    }
    free(cv);
    free(cp);
    free(cols);
    return rc;
}

static int ingest_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    job_set_metric(j, "rows_bad", stage_sum_metric(st, "rows_bad"));
    job_set_metric(j, "rows_ingested", stage_sum_metric(st, "rows"));
    return stage_merge_labels(j, st, err, errlen);
}

const stage_ops_t stage_ingest = {"ingest", ingest_start, ingest_args, ingest_done, 2, NULL, 0, NULL, NULL};
