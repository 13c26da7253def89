/* stage_ingest.c: the ingest stage for CSV input. The uploaded file is
 * mapped once per job and cut into shards of shard_rows records (fixed by
 * the data and the job file, never by the workers); a task ("ingest",
 * worker/kinds.c) parses its byte range into a frame of the used columns.
 * The first quantile round of clean rides along with each task, and the
 * tasks return their shard's distinct labels (stage_merge_labels).
 * Args: IngestArgs, result: IngestResult (proto/tasks.proto). */
#include "bytes.h"
#include "csv.h"
#include "err.h"
#include "jobmodel.h"
#include "stages.h"
#include "tasks.pb-c.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* per-job planning state: the mapped input and its header */
typedef struct {
    void *map;
    size_t maplen;
    char **hdr;
    size_t nhdr;
    size_t data_start; /* offset of the first record after the header */
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
    if (p->map) munmap(p->map, p->maplen);
    mlk_csv_names_free(&p->hdr, p->nhdr);
    free(p);
    j->plan = NULL;
}

static int map_input(job_t *j, char *err, size_t errlen)
{
    plan_t *p = plan_of(j);
    if (!p) return MLOPS_ENOMEM;
    if (p->map || p->maplen) return 0;
    const char *path = job_file_path(j, "input");
    const char *name = job_file_name(j, "input");
    if (!path) return mlops_seterr(err, errlen, MLOPS_ENOTFOUND, "job has no input file");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mlops_seterr(err, errlen, MLOPS_EIO, "%s: the uploaded copy is missing", name);
    struct stat sb;
    fstat(fd, &sb);
    p->maplen = (size_t)sb.st_size;
    if (p->maplen) {
        p->map = mmap(NULL, p->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p->map == MAP_FAILED) {
            p->map = NULL;
            p->maplen = 0;
            close(fd);
            return mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot map the uploaded copy", name);
        }
    }
    close(fd);
    return mlk_csv_header(p->map ? p->map : "", p->maplen, &p->hdr, &p->nhdr, &p->data_start, err, errlen);
}

/* blob: u64 data_start, u64 nshards, u64 total_rows, then per shard
 * u64 offset, u64 first_line; a final u64 offset = end of data */
static int ingest_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    if (s->input.format != MLOPS_INPUT_CSV)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "input format not supported by ingest");
    int rc = map_input(j, err, errlen);
    if (rc) return rc;
    plan_t *p = j->plan;
    const char *name = job_file_name(j, "input");
    rc = mlops_jobspec_check_header(s, name, (const char *const *)p->hdr, p->nhdr, err, errlen);
    if (rc && s->has_predict) { /* the columns came from the model: say which */
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0, "; model %s needs it", s->predict.model);
    }
    if (rc) return rc;
    size_t data_start = p->data_start;
    uint64_t *offs = NULL, total = 0;
    long *lines = NULL;
    size_t nshards = 0;
    rc = mlk_csv_split(p->map ? p->map : "", p->maplen, data_start, s->shard_rows, &offs, &lines,
                       &nshards, &total);
    if (rc) {
        free(offs);
        free(lines);
        return mlops_seterr(err, errlen, rc, "%s: cannot split into shards: %s", name, mlops_strerror(rc));
    }
    bw_t w;
    bw_init(&w);
    bw_u64(&w, data_start);
    bw_u64(&w, nshards);
    bw_u64(&w, total);
    for (size_t i = 0; i < nshards; i++) {
        bw_u64(&w, offs[i]);
        bw_u64(&w, (uint64_t)lines[i]);
    }
    bw_u64(&w, p->maplen);
    free(offs);
    free(lines);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
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
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    br_u64(&r);
    uint64_t n = br_u64(&r);
    if (r.err || t >= n || st->blob_len != 24 + n * 16 + 8)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "ingest plan is damaged");
    uint64_t off, line, end;
    memcpy(&off, st->blob + 24 + t * 16, 8);
    memcpy(&line, st->blob + 24 + t * 16 + 8, 8);
    memcpy(&end, st->blob + 24 + (t + 1) * 16, 8); /* next shard's offset, or the end */
    if (off > end || end > p->maplen)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "ingest plan is damaged");
    mlops_jobspec_col_t *cols = NULL;
    size_t ncols = 0;
    if ((rc = mlops_jobspec_used_columns(j->spec, &cols, &ncols)) != 0) return rc;
    Mlops__Tasks__IngestColumn *cv = calloc(ncols ? ncols : 1, sizeof *cv);
    Mlops__Tasks__IngestColumn **cp = calloc(ncols ? ncols : 1, sizeof *cp);
    /* the first quantile round of clean rides along: the shard is parsed
     * and in memory here, so its first histogram costs no extra pass */
    uint8_t *req = NULL;
    size_t reql = 0;
    if (!cv || !cp) rc = MLOPS_ENOMEM;
    else rc = stage_clean_first_request(j, &req, &reql);
    if (!rc) {
        for (size_t i = 0; i < ncols; i++) {
            mlops__tasks__ingest_column__init(&cv[i]);
            cv[i].name = (char *)cols[i].name;
            cv[i].type = (uint32_t)cols[i].type;
            cp[i] = &cv[i];
        }
        Mlops__Tasks__IngestArgs a = MLOPS__TASKS__INGEST_ARGS__INIT;
        a.file_name = (char *)job_file_name(j, "input");
        a.first_row = (uint64_t)t * j->spec->shard_rows;
        a.first_line = line;
        a.n_header = p->nhdr;
        a.header = p->hdr;
        a.n_columns = ncols;
        a.columns = cp;
        a.skip_bad_rows = j->spec->on_bad_row == MLOPS_BAD_ROW_SKIP;
        a.data.data = (uint8_t *)p->map + off;
        a.data.len = (size_t)(end - off);
        a.dropna = j->spec->clean.dropna != 0;
        a.quantile_request.data = req;
        a.quantile_request.len = reql;
        rc = args_pack(out, &a.base);
    }
    free(req);
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

const stage_ops_t stage_ingest = {"ingest", ingest_start, ingest_args, ingest_done, 2, NULL};
