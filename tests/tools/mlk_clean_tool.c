/* mlk_clean_tool: drives the CSV, cleaning, quantile and scaler kernels
 * over a file the way a coordinator and its workers would, all in one
 * process, for the reference tests and the benchmark.
 *
 *   mlk_clean_tool clean FILE --numeric a,b [--categorical c,d]
 *                  [--iqr-k K] [--shard-rows N] [--skip-bad]
 *       parse in shards, dropna over the used columns, exact quartiles
 *       by the distributed rounds (every message goes through its byte
 *       encoding), IQR filter; prints
 *         rows TOTAL bad B dropna N kept K rounds R
 *         quartile COL Q1 Q3 LO HI        (%.17g)
 *         ids
 *         ROW_ID ...                      (one per line, ascending)
 *   mlk_clean_tool scale FILE --numeric a,b [same options]
 *       as clean (the IQR filter only with --iqr-k), then the scaler
 *       moments per shard, merged from bytes; prints
 *         scale COL N MEAN VAR SCALE
 *   mlk_clean_tool bench FILE --numeric ... [--categorical ...]
 *                  [--iqr-k K] [--shard-rows N] [--reps R]
 *       times read + parse + dropna + IQR R times, prints "seconds S"
 *       for each run and "median S", with the worker's malloc settings
 *       (so repetitions after the first reuse the heap, as tasks do).
 * Exit status 0 on success, 1 with a message on stderr otherwise. */
#include "clean.h"
#include "csv.h"
#include "err.h"
#include "frame.h"
#include "quantile.h"
#include "scaler.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *mode, *file;
    char *names[64];
    mlk_coltype types[64];
    size_t nnum, ncols;
    double iqr_k;
    int have_k, skip_bad, reps;
    size_t shard_rows;
} opts;

typedef struct {
    mlk_frame **shards;
    uint8_t **keep; /* per shard: the rows dropna (then IQR) keeps */
    size_t nshards;
    uint64_t total, bad, after_dropna, kept;
    int rounds;
    double t_split, t_parse, t_quant, t_filter; /* seconds per phase */
    double c_split, c_parse; /* CPU seconds of this thread: the rate on a loaded box */
    double q1[64], q3[64], lo[64], hi[64];
} result;

static double now(void);
static double cpu_now(void);

static int die(const char *msg)
{
    fprintf(stderr, "mlk_clean_tool: %s\n", msg);
    return 1;
}

static int add_list(opts *o, char *list, mlk_coltype type)
{
    for (char *s = strtok(list, ","); s; s = strtok(NULL, ",")) {
        if (o->ncols == 64) return -1;
        o->names[o->ncols] = s;
        o->types[o->ncols++] = type;
    }
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 3;
    if (argc < 3) return -1;
    o->mode = argv[1];
    o->file = argv[2];
    char *num = NULL, *cat = NULL;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--skip-bad")) {
            o->skip_bad = 1;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "--numeric")) num = argv[i];
        else if (!strcmp(a, "--categorical")) cat = argv[i];
        else if (!strcmp(a, "--iqr-k")) o->iqr_k = strtod(v, NULL), o->have_k = 1;
        else if (!strcmp(a, "--shard-rows")) o->shard_rows = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else return -1;
    }
    if (!num) return -1;
    if (add_list(o, num, MLK_F64)) return -1;
    o->nnum = o->ncols;
    if (cat && add_list(o, cat, MLK_STR)) return -1;
    if (o->reps < 1) o->reps = 1;
    return 0;
}

/* Map the file read-only (the coordinator maps uploads the same way);
 * unmap with unmap_file. NULL on failure; an empty file maps to "". */
static char *map_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    char *b = NULL;
    if (fstat(fd, &st) == 0) {
        *len = (size_t)st.st_size;
        if (*len == 0) {
            b = (char *)"";
        } else {
            void *m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
            b = m == MAP_FAILED ? NULL : m;
        }
    }
    close(fd);
    return b;
}

static void unmap_file(char *b, size_t len)
{
    if (b && len) munmap(b, len);
}

static void result_free(result *r)
{
    for (size_t i = 0; i < r->nshards; i++) {
        mlk_frame_destroy(&r->shards[i]);
        if (r->keep) free(r->keep[i]);
    }
    free(r->shards);
    free(r->keep);
    r->shards = NULL;
    r->keep = NULL;
}

/* The exact quartiles of the numeric columns over all shards, as a
 * coordinator drives them: one request per round, one answer per shard,
 * every message through its bytes; the job state itself also goes
 * through its bytes between rounds. */
static int quartiles(const opts *o, result *r, char *err, size_t errlen)
{
    double qs[2] = {mlk_q_pandas(0.25), mlk_q_pandas(0.75)};
    mlk_qjob *j = mlk_qjob_new(o->nnum, qs, 2);
    if (!j) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "qjob_new failed");
    int rc = 0;
    r->rounds = 0;
    while (rc == 0 && !mlk_qjob_done(j)) {
        uint8_t *req = NULL, *st = NULL;
        size_t reqlen, stlen;
        if ((rc = mlk_qjob_request(j, &req, &reqlen)) != 0) break;
        for (size_t s = 0; s < r->nshards && rc == 0; s++) {
            const double *cols[64];
            for (size_t c = 0; c < o->nnum; c++) cols[c] = r->shards[s]->cols[c].f64;
            uint8_t *ans = NULL;
            size_t anslen;
            rc = mlk_qjob_answer_masked(req, reqlen, cols, o->nnum, r->shards[s]->nrows,
                                        r->keep[s], &ans, &anslen, err, errlen);
            if (rc == 0) rc = mlk_qjob_add(j, ans, anslen, err, errlen);
            free(ans);
        }
        free(req);
        if (rc == 0) rc = mlk_qjob_step(j, err, errlen);
        if (rc == 0 && (rc = mlk_qjob_encode(j, &st, &stlen)) == 0) {
            mlk_qjob_destroy(&j);
            rc = mlk_qjob_decode(st, stlen, &j);
            free(st);
        }
        r->rounds++;
    }
    for (size_t c = 0; rc == 0 && c < o->nnum; c++) {
        double q[2];
        if ((rc = mlk_qjob_result(j, c, q, NULL)) != 0) break;
        r->q1[c] = q[0];
        r->q3[c] = q[1];
        mlk_iqr_bounds(q[0], q[1], o->iqr_k, &r->lo[c], &r->hi[c]);
    }
    mlk_qjob_destroy(&j);
    return rc;
}

/* Parse + dropna (+ IQR when with_iqr) over the file's shards. */
static int run_clean(const opts *o, const char *buf, size_t len, int with_iqr, result *r,
                     char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    char **hdr = NULL;
    size_t nhdr, data_start, index[64];
    uint64_t *off = NULL;
    long *lines = NULL;
    int rc = mlk_csv_header(buf, len, &hdr, &nhdr, &data_start, err, errlen);
    if (rc != 0) return rc;
    mlk_csv_schema sch;
    rc = mlk_csv_schema_init(&sch, (const char *const *)hdr, nhdr, (const char *const *)o->names,
                             o->types, o->ncols, index, err, errlen);
    if (rc != 0) goto out;
    size_t shard_rows = o->shard_rows ? o->shard_rows : (size_t)-1;
    double t0 = now(), c0 = cpu_now();
    rc = mlk_csv_split(buf, len, data_start, shard_rows, &off, &lines, &r->nshards, &r->total);
    if (rc != 0) goto out;
    r->shards = calloc(r->nshards ? r->nshards : 1, sizeof *r->shards);
    r->keep = calloc(r->nshards ? r->nshards : 1, sizeof *r->keep);
    if (!r->shards || !r->keep) {
        rc = MLOPS_ENOMEM;
        goto out;
    }
    size_t numcols[64];
    for (size_t c = 0; c < o->nnum; c++) numcols[c] = c;
    r->t_split = now() - t0;
    r->c_split = cpu_now() - c0;
    t0 = now();
    c0 = cpu_now();
    /* Workers: parse, then the dropna mask (rows are not moved yet). */
    for (size_t s = 0; s < r->nshards; s++) {
        size_t end = s + 1 < r->nshards ? (size_t)off[s + 1] : len;
        size_t bad = 0;
        rc = mlk_csv_parse(buf + off[s], end - off[s], &sch, (int64_t)(s * shard_rows), lines[s],
                           o->file, o->skip_bad, &r->shards[s], &bad, err, errlen);
        if (rc != 0) goto out;
        r->bad += bad;
        mlk_frame *f = r->shards[s];
        if (!(r->keep[s] = malloc(f->nrows ? f->nrows : 1))) {
            rc = MLOPS_ENOMEM;
            goto out;
        }
        r->after_dropna += mlk_dropna_mask(f, NULL, 0, r->keep[s]);
    }
    r->t_parse = now() - t0;
    r->c_parse = cpu_now() - c0;
    t0 = now();
    /* Coordinator: quartiles over the kept rows; workers: IQR mask. */
    if (with_iqr && o->nnum) {
        if ((rc = quartiles(o, r, err, errlen)) != 0) goto out;
        for (size_t s = 0; s < r->nshards; s++) {
            long long k = mlk_iqr_mask(r->shards[s], numcols, o->nnum, r->lo, r->hi, r->keep[s]);
            if (k < 0) {
                rc = (int)k;
                goto out;
            }
            r->kept += (uint64_t)k;
        }
    } else {
        r->kept = r->after_dropna;
    }
    r->t_quant = now() - t0;
    t0 = now();
    /* Workers: one filter of each shard with the final mask. */
    for (size_t s = 0; s < r->nshards; s++) mlk_frame_filter(r->shards[s], r->keep[s]);
    r->t_filter = now() - t0;
out:
    free(off);
    free(lines);
    mlk_csv_names_free(&hdr, nhdr);
    if (rc != 0) result_free(r);
    return rc;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    opts o;
    char err[512] = "";
    if (parse_args(argc, argv, &o) != 0)
        return die("usage: mlk_clean_tool clean|scale|bench FILE --numeric a,b "
                   "[--categorical c,d] [--iqr-k K] [--shard-rows N] [--skip-bad] [--reps R]");
    if (!strcmp(o.mode, "bench")) {
        /* the worker's malloc settings (worker/main.c): a task's frames
         * reuse the heap of the one before instead of fresh zeroed pages,
         * so from the second repetition on the rate is a warm worker's
         * (the first pays the page faults, and is printed too) */
        mallopt(M_MMAP_THRESHOLD, 512 << 20);
        mallopt(M_TRIM_THRESHOLD, 1024 << 20);
        double t[64];
        int reps = o.reps > 64 ? 64 : o.reps;
        for (int i = 0; i < reps; i++) {
            double t0 = now();
            size_t len;
            char *buf = map_file(o.file, &len);
            if (!buf) return die("cannot read file");
            result r;
            int rc = run_clean(&o, buf, len, o.have_k, &r, err, sizeof err);
            t[i] = now() - t0;
            unmap_file(buf, len);
            if (rc != 0) return die(err[0] ? err : mlops_strerror(rc));
            printf("seconds %.6f kept %llu split %.4f parse+dropna %.4f quartiles+iqr %.4f "
                   "filter %.4f cpu_split %.4f cpu_parse+dropna %.4f\n",
                   t[i], (unsigned long long)r.kept, r.t_split, r.t_parse, r.t_quant, r.t_filter,
                   r.c_split, r.c_parse);
            result_free(&r);
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_d);
        printf("median %.6f\n", t[reps / 2]);
        return 0;
    }
    size_t len;
    char *buf = map_file(o.file, &len);
    if (!buf) return die("cannot read file");
    result r;
    int is_clean = !strcmp(o.mode, "clean");
    if (!is_clean && strcmp(o.mode, "scale") != 0) {
        unmap_file(buf, len);
        return die("mode must be clean, scale or bench");
    }
    int rc = run_clean(&o, buf, len, is_clean || o.have_k, &r, err, sizeof err);
    unmap_file(buf, len);
    if (rc != 0) return die(err[0] ? err : mlops_strerror(rc));
    if (is_clean) {
        printf("rows %llu bad %llu dropna %llu kept %llu rounds %d\n",
               (unsigned long long)r.total, (unsigned long long)r.bad,
               (unsigned long long)r.after_dropna, (unsigned long long)r.kept, r.rounds);
        for (size_t c = 0; c < o.nnum; c++)
            printf("quartile %s %.17g %.17g %.17g %.17g\n", o.names[c], r.q1[c], r.q3[c], r.lo[c],
                   r.hi[c]);
        printf("ids\n");
        for (size_t s = 0; s < r.nshards; s++)
            for (size_t i = 0; i < r.shards[s]->nrows; i++)
                printf("%lld\n", (long long)r.shards[s]->row_id[i]);
    } else {
        /* Each shard's moments travel as bytes and are merged in order. */
        for (size_t c = 0; c < o.nnum && rc == 0; c++) {
            mlk_moments tot = {0, 0.0, 0.0};
            for (size_t s = 0; s < r.nshards && rc == 0; s++) {
                mlk_moments m = mlk_moments_of(r.shards[s]->cols[c].f64, r.shards[s]->nrows);
                uint8_t *b;
                size_t bl, nc;
                mlk_moments *back;
                if ((rc = mlk_moments_encode(&m, 1, &b, &bl)) != 0) break;
                rc = mlk_moments_decode(b, bl, &back, &nc);
                free(b);
                if (rc != 0) break;
                mlk_moments_merge(&tot, &back[0]);
                free(back);
            }
            double mean, var, scale;
            if (rc == 0 && (rc = mlk_scaler_finalize(&tot, &mean, &var, &scale)) != 0)
                snprintf(err, sizeof err, "column '%s': no values to scale", o.names[c]);
            if (rc == 0)
                printf("scale %s %llu %.17g %.17g %.17g\n", o.names[c], (unsigned long long)tot.n,
                       mean, var, scale);
        }
    }
    result_free(&r);
    if (rc != 0) return die(err[0] ? err : mlops_strerror(rc));
    return 0;
}
