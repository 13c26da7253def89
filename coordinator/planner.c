/* planner.c: one entry per stage kind — how the stage splits into tasks,
 * what each task gets as arguments, and how the coordinator reduces the
 * small per-task results between phases. The matching task kinds run on
 * workers (worker/kinds.c); both sides share the argument layouts below.
 *
 *   ingest  1 phase, a task per shard of shard_rows records (fixed by the
 *           data and the job file). Args: file name, first row id, first
 *           line, header names, the used columns, the raw bytes.
 *   clean   with iqr_k: quantile rounds ("clean_qround": every shard
 *           answers the round's request with histogram counts or values,
 *           merged here in shard order) until Q1 and Q3 of every numeric
 *           column are exact, then "clean_filter" (dropna + bounds).
 *   noop    N empty tasks, for measuring the scheduler.
 */
#include "bytes.h"
#include <czmq.h>
#include "clean.h"
#include "csv.h"
#include "err.h"
#include "log.h"
#include "jobmodel.h"
#include "quantile.h"
#include "stages.h"
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *planner_spec_name(const mlops_jobspec_t *spec) { return spec && spec->name ? spec->name : "job"; }

const char *planner_output_kind(const job_t *j, const stage_t *st)
{
    if (!strcmp(st->name, "hash") || !strcmp(st->name, "split")) return "features";
    if (j->spec && j->spec->input.format == MLOPS_INPUT_IDX &&
        (!strcmp(st->name, "ingest") || !strcmp(st->name, "scale")))
        return "features";
    return "frame";
}

/* ------------------------------------------------------------------ */
/* per-job planning state: the mapped input and its header             */

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

void planner_job_free(job_t *j)
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

/* ------------------------------------------------------------------ */
/* ingest                                                              */

static const double s_quartiles[2] = {0.25, 0.75};

static int wants_iqr(const job_t *j)
{
    const mlops_jobspec_t *s = j->spec;
    return s->has_clean && s->clean.has_iqr && s->columns.n_numeric > 0;
}

/* The request of the first quantile round (none: NULL, 0). */
static int first_qrequest(const job_t *j, uint8_t **req, size_t *len)
{
    *req = NULL;
    *len = 0;
    if (!wants_iqr(j)) return 0;
    mlk_qjob *q = mlk_qjob_new(j->spec->columns.n_numeric, s_quartiles, 2);
    if (!q) return MLOPS_ENOMEM;
    int rc = mlk_qjob_request(q, req, len);
    mlk_qjob_destroy(&q);
    return rc;
}

/* An ingest task's result: u32 n, n label strings, blob quantile answer. */
static const uint8_t *ingest_qanswer(const task_t *t, size_t *len)
{
    br_t r;
    br_init(&r, t->result, t->result_len);
    uint32_t n = br_u32(&r);
    for (uint32_t i = 0; i < n && !r.err; i++) {
        uint32_t l = br_u32(&r);
        if (l > r.n - r.at) r.err = 1;
        else r.at += l;
    }
    const uint8_t *a = br_blob(&r, len);
    return r.err ? NULL : a;
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
    bw_t w;
    bw_init(&w);
    bw_str(&w, job_file_name(j, "input"));
    bw_u64(&w, (uint64_t)t * j->spec->shard_rows);
    bw_u64(&w, line);
    bw_u32(&w, (uint32_t)p->nhdr);
    for (size_t i = 0; i < p->nhdr; i++) bw_str(&w, p->hdr[i]);
    bw_u32(&w, (uint32_t)ncols);
    for (size_t i = 0; i < ncols; i++) {
        bw_str(&w, cols[i].name);
        bw_u32(&w, (uint32_t)cols[i].type);
    }
    bw_u32(&w, j->spec->on_bad_row == MLOPS_BAD_ROW_SKIP);
    bw_blob(&w, (const uint8_t *)p->map + off, (size_t)(end - off));
    /* the first quantile round of clean rides along: the shard is parsed
     * and in memory here, so its first histogram costs no extra pass */
    uint8_t *req = NULL;
    size_t reql = 0;
    if ((rc = first_qrequest(j, &req, &reql)) != 0) {
        bw_free(&w);
        free(cols);
        return rc;
    }
    bw_u32(&w, j->spec->clean.dropna);
    bw_blob(&w, req, reql);
    free(req);
    free(cols);
    out->args = bw_take(&w, &out->args_len);
    return out->args ? 0 : MLOPS_ENOMEM;
}

double stage_sum_metric(const stage_t *st, const char *name)
{
    double sum = 0, v;
    for (size_t t = 0; t < st->ntasks; t++)
        if (task_metric(&st->tasks[t], name, &v)) sum += v;
    return sum;
}

uint64_t stage_total_rows(const stage_t *st)
{
    uint64_t n = 0;
    for (size_t t = 0; t < st->ntasks; t++) n += st->tasks[t].rows;
    return n;
}

stage_t *stage_input_of(job_t *j, const stage_t *st)
{
    static const char *chain[] = {"ingest", "clean", "scale", "hash", "split"};
    for (size_t s = (size_t)(st - j->stages); s-- > 0;) {
        for (size_t k = 0; k < sizeof chain / sizeof *chain; k++)
            if (!strcmp(j->stages[s].name, chain[k])) return &j->stages[s];
    }
    return NULL;
}

int args_add_input(task_args_t *a, const char *key)
{
    char **in = realloc(a->inputs, (a->ninputs + 1) * sizeof *in);
    if (!in) return MLOPS_ENOMEM;
    a->inputs = in;
    in[a->ninputs] = strdup(key ? key : "");
    if (!in[a->ninputs]) return MLOPS_ENOMEM;
    a->ninputs++;
    return 0;
}

/* label sets: tasks return "u32 n, n strings" of the distinct labels of
 * their shard; the union is sorted as numpy.unique sorts the label array
 * pandas reads: numerically when every value is a number, else by code
 * point (UTF-8 byte order). */
static int num_cmp(const void *a, const void *b)
{
    double x = strtod(*(char *const *)a, NULL), y = strtod(*(char *const *)b, NULL);
    return x < y ? -1 : x > y;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_number(const char *s)
{
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return *end == 0;
}

static int merge_labels(job_t *j, const stage_t *st, char *err, size_t errlen)
{
    if (!mlops_jobspec_has_label(j->spec) || j->spec->input.format != MLOPS_INPUT_CSV) return 0;
    zhashx_t *seen = zhashx_new();
    char **labels = NULL;
    size_t n = 0;
    int rc = 0;
    for (size_t t = 0; t < st->ntasks && !rc; t++) {
        br_t r;
        br_init(&r, st->tasks[t].result, st->tasks[t].result_len);
        uint32_t k = br_u32(&r);
        for (uint32_t i = 0; i < k && !r.err; i++) {
            char *l = br_str(&r);
            if (!l) break;
            if (zhashx_lookup(seen, l)) { free(l); continue; }
            if (n >= 10000) {
                free(l);
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "label column '%s' has more than 10000 distinct values",
                                  j->spec->columns.label);
                break;
            }
            zhashx_insert(seen, l, (void *)1);
            char **a = realloc(labels, (n + 1) * sizeof *a);
            if (!a) { free(l); rc = MLOPS_ENOMEM; break; }
            labels = a;
            labels[n++] = l;
        }
        if (r.err) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "damaged label set from %s task %zu", st->name, t);
    }
    zhashx_destroy(&seen);
    if (rc) {
        for (size_t i = 0; i < n; i++) free(labels[i]);
        free(labels);
        return rc;
    }
    int numeric = 1;
    for (size_t i = 0; i < n; i++) numeric &= is_number(labels[i]);
    qsort(labels, n, sizeof *labels, numeric ? num_cmp : str_cmp);
    job_set_classes(j, labels, n);
    return 0;
}

static int ingest_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    job_set_metric(j, "rows_bad", stage_sum_metric(st, "rows_bad"));
    job_set_metric(j, "rows_ingested", stage_sum_metric(st, "rows"));
    return merge_labels(j, st, err, errlen);
}

/* ------------------------------------------------------------------ */
/* clean                                                               */

/* blob: u32 mode (0 = quantile rounds, 1 = filter), u32 ncols,
 *       mode 0: qjob bytes; mode 1: per column f64 lo, f64 hi, f64 q1, f64 q3 */
enum { CLEAN_ROUNDS = 0, CLEAN_FILTER = 1 };

static int clean_set_filter(job_t *j, stage_t *st, const double *lohi, size_t ncols)
{
    bw_t w;
    bw_init(&w);
    bw_u32(&w, CLEAN_FILTER);
    bw_u32(&w, (uint32_t)ncols);
    for (size_t c = 0; c < ncols * 4; c++) bw_f64(&w, lohi[c]);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    int rc = stage_set_tasks(st, job_stage(j, "ingest")->ntasks, "clean_filter");
    if (rc) return rc;
    stage_set_output_keys(j, st, "/");
    return 0;
}

/* The quartiles are known: record them, set the IQR bounds and plan
 * the filter phase. */
static int clean_bounds_and_filter(job_t *j, stage_t *st, const mlk_qjob *q, uint32_t ncols)
{
    double *lohi = calloc((size_t)ncols * 4, sizeof *lohi);
    if (!lohi) return MLOPS_ENOMEM;
    double k = j->spec->clean.iqr_k;
    for (uint32_t c = 0; c < ncols; c++) {
        double qv[2];
        uint64_t n;
        mlk_qjob_result(q, c, qv, &n);
        mlk_iqr_bounds(qv[0], qv[1], k, &lohi[c * 4], &lohi[c * 4 + 1]);
        lohi[c * 4 + 2] = qv[0];
        lohi[c * 4 + 3] = qv[1];
        char name[300];
        snprintf(name, sizeof name, "q1.%s", j->spec->columns.numeric[c]);
        job_set_metric(j, name, qv[0]);
        snprintf(name, sizeof name, "q3.%s", j->spec->columns.numeric[c]);
        job_set_metric(j, name, qv[1]);
    }
    job_logf(j, "clean: quartiles exact after %u rounds", st->phase);
    int rc = clean_set_filter(j, st, lohi, ncols);
    free(lohi);
    return rc;
}

static int clean_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    size_t nnum = s->columns.n_numeric;
    if (!s->clean.has_iqr || nnum == 0) return clean_set_filter(j, st, NULL, 0);
    mlk_qjob *q = mlk_qjob_new(nnum, s_quartiles, 2);
    if (!q) return MLOPS_ENOMEM;
    /* round 1 was answered by the ingest tasks: merge in shard order */
    stage_t *in = job_stage(j, "ingest");
    int rc = 0;
    for (size_t t = 0; t < in->ntasks && !rc; t++) {
        size_t al;
        const uint8_t *a = ingest_qanswer(&in->tasks[t], &al);
        if (!a) rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "clean: ingest task %zu sent no quantile answer", t);
        else rc = mlk_qjob_add(q, a, al, err, errlen);
    }
    if (!rc) rc = mlk_qjob_step(q, err, errlen);
    if (rc) {
        mlk_qjob_destroy(&q);
        return rc;
    }
    st->phase = 1;
    if (mlk_qjob_done(q)) { /* few distinct values: one round was enough */
        rc = clean_bounds_and_filter(j, st, q, (uint32_t)nnum);
        mlk_qjob_destroy(&q);
        return rc;
    }
    uint8_t *qb;
    size_t ql;
    rc = mlk_qjob_encode(q, &qb, &ql);
    mlk_qjob_destroy(&q);
    if (rc) return rc;
    bw_t w;
    bw_init(&w);
    bw_u32(&w, CLEAN_ROUNDS);
    bw_u32(&w, (uint32_t)nnum);
    bw_put(&w, qb, ql);
    free(qb);
    free(st->blob);
    st->blob = bw_take(&w, &st->blob_len);
    if (!st->blob) return MLOPS_ENOMEM;
    if ((rc = stage_set_tasks(st, job_stage(j, "ingest")->ntasks, "clean_qround")) != 0) return rc;
    stage_set_output_keys(j, st, NULL);
    return 0;
}

static int clean_decode(const stage_t *st, uint32_t *mode, uint32_t *ncols, mlk_qjob **q,
                        const uint8_t **lohi)
{
    br_t r;
    br_init(&r, st->blob, st->blob_len);
    *mode = br_u32(&r);
    *ncols = br_u32(&r);
    if (r.err) return MLOPS_EPARSE;
    if (*mode == CLEAN_ROUNDS) {
        if (!q) return 0;
        return mlk_qjob_decode(st->blob + 8, st->blob_len - 8, q);
    }
    if (st->blob_len != 8 + (size_t)*ncols * 32) return MLOPS_EPARSE;
    if (lohi) *lohi = st->blob + 8;
    return 0;
}

static int clean_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    uint32_t mode, ncols;
    const uint8_t *lohi = NULL;
    if (clean_decode(st, &mode, &ncols, NULL, &lohi) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "clean plan is damaged");
    stage_t *in = job_stage(j, "ingest");
    out->inputs = malloc(sizeof(char *));
    out->inputs[0] = strdup(in->tasks[t].output_key);
    out->ninputs = 1;
    bw_t w;
    bw_init(&w);
    bw_u32(&w, mode);
    bw_u32(&w, j->spec->clean.dropna);
    if (mode == CLEAN_ROUNDS) {
        mlk_qjob *q = NULL;
        if (mlk_qjob_decode(st->blob + 8, st->blob_len - 8, &q) != 0)
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "clean plan is damaged");
        uint8_t *req;
        size_t rl;
        int rc = mlk_qjob_request(q, &req, &rl);
        mlk_qjob_destroy(&q);
        if (rc) return mlops_seterr(err, errlen, rc, "quantile request: %s", mlops_strerror(rc));
        bw_blob(&w, req, rl);
        free(req);
    } else {
        bw_u32(&w, ncols);
        for (uint32_t c = 0; c < ncols; c++) {
            double lo, hi;
            memcpy(&lo, lohi + c * 32, 8);
            memcpy(&hi, lohi + c * 32 + 8, 8);
            bw_f64(&w, lo);
            bw_f64(&w, hi);
        }
    }
    out->args = bw_take(&w, &out->args_len);
    return out->args ? 0 : MLOPS_ENOMEM;
}

static int clean_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    uint32_t mode, ncols;
    mlk_qjob *q = NULL;
    int rc = clean_decode(st, &mode, &ncols, &q, NULL);
    if (rc) return mlops_seterr(err, errlen, MLOPS_EPARSE, "clean plan is damaged");
    if (mode == CLEAN_FILTER) {
        job_set_metric(j, "rows_after_dropna", stage_sum_metric(st, "rows_after_dropna"));
        job_set_metric(j, "rows_after_clean", stage_sum_metric(st, "rows"));
        return merge_labels(j, st, err, errlen);
    }
    /* merge every shard's answer in shard order, then close the round */
    for (size_t t = 0; t < st->ntasks; t++) {
        rc = mlk_qjob_add(q, st->tasks[t].result, st->tasks[t].result_len, err, errlen);
        if (rc) {
            mlk_qjob_destroy(&q);
            return rc;
        }
    }
    if ((rc = mlk_qjob_step(q, err, errlen)) != 0) {
        mlk_qjob_destroy(&q);
        return rc;
    }
    st->phase++;
    if (!mlk_qjob_done(q)) {
        uint8_t *qb;
        size_t ql;
        rc = mlk_qjob_encode(q, &qb, &ql);
        mlk_qjob_destroy(&q);
        if (rc) return rc;
        bw_t w;
        bw_init(&w);
        bw_u32(&w, CLEAN_ROUNDS);
        bw_u32(&w, ncols);
        bw_put(&w, qb, ql);
        free(qb);
        free(st->blob);
        st->blob = bw_take(&w, &st->blob_len);
        if (!st->blob) return MLOPS_ENOMEM;
        size_t n = st->ntasks;
        if ((rc = stage_set_tasks(st, n, "clean_qround")) != 0) return rc;
        return 1;
    }
    rc = clean_bounds_and_filter(j, st, q, ncols);
    mlk_qjob_destroy(&q);
    return rc ? rc : 1;
}

/* ------------------------------------------------------------------ */
/* noop                                                                */

static int noop_start(job_t *j, stage_t *st, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return stage_set_tasks(st, j->spec->noop.tasks, "noop");
}

static int noop_args(job_t *j, stage_t *st, size_t t, task_args_t *out, char *err, size_t errlen)
{
    (void)j;
    (void)st;
    (void)t;
    (void)out;
    (void)err;
    (void)errlen;
    return 0;
}

static int noop_done(job_t *j, stage_t *st, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    job_set_metric(j, "tasks", (double)st->ntasks);
    return 0;
}

/* ------------------------------------------------------------------ */

const stage_ops_t stage_ingest = {"ingest", ingest_start, ingest_args, ingest_done, 2, NULL};
const stage_ops_t stage_clean = {"clean", clean_start, clean_args, clean_done, 2, NULL};
const stage_ops_t stage_noop = {"noop", noop_start, noop_args, noop_done, 256, NULL};

static int add_stage(job_t *j, const stage_ops_t *ops)
{
    stage_t *a = realloc(j->stages, (j->nstages + 1) * sizeof *a);
    if (!a) return MLOPS_ENOMEM;
    j->stages = a;
    stage_t *st = &a[j->nstages++];
    memset(st, 0, sizeof *st);
    st->ops = ops;
    snprintf(st->name, sizeof st->name, "%s", ops->name);
    return 0;
}

int planner_build(job_t *j, char *err, size_t errlen)
{
    const mlops_jobspec_t *s = j->spec;
    if (!s) return mlops_seterr(err, errlen, MLOPS_EINVAL, "job has no spec");
    if (j->nstages) return 0;
    if (s->has_noop) return add_stage(j, &stage_noop);
    int rc;
    if (s->input.format == MLOPS_INPUT_CSV) rc = add_stage(j, &stage_ingest);
    else if (s->input.format == MLOPS_INPUT_IDX) rc = add_stage(j, &stage_ingest_idx);
    else return mlops_seterr(err, errlen, MLOPS_EINVAL, "job has no input");
    if (!rc && s->has_clean) rc = add_stage(j, &stage_clean);
    if (!rc && s->has_scale) rc = add_stage(j, &stage_scale);
    /* model stages read feature shards: a CSV job without a hash section
     * still gets the stage that builds them (numeric columns only) */
    int needs_features = s->has_split || s->has_train || (s->has_knn && s->knn.mode == MLOPS_KNN_CLASSIFY);
    if (!rc && (s->has_hash || (needs_features && s->input.format == MLOPS_INPUT_CSV)))
        rc = add_stage(j, &stage_hash);
    if (!rc && s->has_split) rc = add_stage(j, &stage_split);
    if (!rc && s->has_train) rc = add_stage(j, &stage_train);
    if (!rc && s->has_evaluate) rc = add_stage(j, &stage_evaluate);
    if (!rc && s->has_knn) rc = add_stage(j, &stage_knn);
    return rc;
}
