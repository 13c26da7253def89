/* fuzz_seeds.c: writes the binary seeds of the fuzz corpora (payload, lbfgs,
 * wire, idx, coord, worker) from the project's own encoders, so that the fuzzers start
 * from valid bytes of each format rather than having to find the magic
 * numbers and lengths. Run once by hand when a format changes:
 *   build/fuzz_seeds tests/fuzz/corpus
 * The text seeds (CSV, job files) are plain files written by hand or
 * copied from the tests. Not a test; built with the tools. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "csv.h"
#include "frame.h"
#include "fshard.h"
#include "hasher.h"
#include "lbfgs.h"
#include "metrics.h"
#include "model.h"
#include "fpack.h"
#include "quantile.h"
#include "scaler.h"
#include "tasks.pb-c.h"
#include "wire.h"

static const char *root;

static void put(const char *dir, const char *name, uint8_t sel, int with_sel, const void *b,
                size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (with_sel && fwrite(&sel, 1, 1, f) != 1) || (n && fwrite(b, 1, n, f) != n)) {
        fprintf(stderr, "%s: cannot write\n", path);
        exit(1);
    }
    fclose(f);
}

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_seeds: %s failed\n", what);
        exit(1);
    }
}

static const char csv[] = "price,cat,label\n1.5,a,yes\n,\"b,c\",no\n-2e3,NA,yes\n";

static mlk_frame *small_frame(void)
{
    char **names = NULL;
    size_t n = 0, ds = 0;
    char err[256];
    must(mlk_csv_header(csv, sizeof csv - 1, &names, &n, &ds, err, sizeof err) == 0, "header");
    size_t index[3] = {0, 1, 2};
    mlk_coltype types[3] = {MLK_F64, MLK_STR, MLK_STR};
    mlk_csv_schema s;
    must(mlk_csv_schema_init(&s, (const char *const *)names, n, (const char *const *)names,
                             types, 3, index, err, sizeof err) == 0,
         "schema");
    mlk_frame *f = NULL;
    size_t bad = 0;
    must(mlk_csv_parse(csv + ds, sizeof csv - 1 - ds, &s, 0, 2, "seed.csv", 0, &f, &bad, err,
                       sizeof err) == 0,
         "parse");
    mlk_csv_names_free(&names, n);
    return f;
}

static void payload_seeds(void)
{
    uint8_t *b = NULL;
    size_t n = 0;
    char err[256];
    mlk_frame *f = small_frame();
    must(mlk_frame_encode(f, &b, &n) == 0, "frame encode");
    put("payload", "frame", 0, 1, b, n);
    free(b);

    mlk_hash_opts o = {.n_features = 16, .alternate_sign = 1};
    size_t cols[2] = {0, 1};
    mlk_csr *m = NULL;
    must(mlk_hash_frame(&o, f, cols, 2, &m, err, sizeof err) == 0, "hash");
    must(mlk_csr_encode(m, &b, &n) == 0, "csr encode");
    put("payload", "csr", 2, 1, b, n);
    free(b);

    mlk_features *fs = mlk_features_new(f->nrows);
    must(fs != NULL, "features");
    for (size_t i = 0; i < f->nrows; i++) {
        fs->row_id[i] = f->row_id[i];
        fs->label[i] = (int32_t)(i % 2);
    }
    fs->csr = m;
    must(mlk_features_encode(fs, &b, &n) == 0, "features encode");
    put("payload", "features", 1, 1, b, n);
    free(b);
    /* the packed form (fuzz_fpack: byte 0 = misalignment), with a dense
     * part, test flags and inexact values in a second shard */
    must(mlk_fpack_encode(fs, &b, &n) == 0, "fpack encode");
    put("fpack", "hashed", 0, 1, b, n);
    put("fpack", "hashed_misaligned", 3, 1, b, n);
    free(b);
    fs->n_dense = 2;
    fs->dense64 = calloc(fs->nrows * 2 + 1, sizeof *fs->dense64);
    fs->test = calloc(fs->nrows + 1, 1);
    must(fs->dense64 && fs->test, "fpack dense");
    for (size_t i = 0; i < fs->nrows; i++) {
        fs->dense64[2 * i] = 0.25 * (double)i - 1.0;
        fs->dense64[2 * i + 1] = 1.0 / 3.0;
        fs->test[i] = i == 1;
    }
    must(mlk_fpack_encode(fs, &b, &n) == 0, "fpack encode");
    put("fpack", "dense_test", 0, 1, b, n);
    free(b);
    if (m->indptr[m->nrows] > 0) m->data[0] = 0.1; /* not a float: f64 values */
    must(mlk_fpack_encode(fs, &b, &n) == 0, "fpack encode");
    put("fpack", "f64_values", 0, 1, b, n);
    free(b);
    mlk_csr *keep = fs->csr;
    fs->csr = NULL;
    must(mlk_fpack_encode(fs, &b, &n) == 0, "fpack encode");
    put("fpack", "dense_only", 0, 1, b, n);
    free(b);
    fs->csr = keep;
    mlk_features_destroy(&fs);
    mlk_frame_destroy(&f);

    mlk_metrics *mt = mlk_metrics_new(2, 0);
    int32_t yt[4] = {0, 1, 1, 0}, yp[4] = {0, 1, 0, 0};
    double pr[8] = {.9, .1, .2, .8, .6, .4, .7, .3};
    must(mt && mlk_metrics_add(mt, 4, yt, yp, pr, err, sizeof err) == 0, "metrics");
    must(mlk_metrics_encode(mt, &b, &n) == 0, "metrics encode");
    put("payload", "metrics", 3, 1, b, n);
    free(b);
    mlk_metrics_destroy(&mt);

    for (int ada = 0; ada < 2; ada++) {
        mlk_model *md = mlk_model_new(ada ? 3 : 2, 4, 2, ada);
        must(md != NULL, "model");
        for (uint64_t i = 0; i < md->dim * md->n_vec; i++)
            md->w[i] = (double)i / 8;
        must(mlk_model_encode(md, &b, &n) == 0, "model encode");
        put("payload", ada ? "model_adagrad" : "model", 4, 1, b, n);
        free(b);
        mlk_model_destroy(&md);
    }

    double qs[3] = {0.25, 0.5, 0.75};
    mlk_qjob *q = mlk_qjob_new(2, qs, 3);
    must(q && mlk_qjob_encode(q, &b, &n) == 0, "qjob encode");
    put("payload", "qjob", 5, 1, b, n);
    free(b);
    mlk_qjob_destroy(&q);

    double v[4] = {1, 2, 4, 8};
    mlk_moments mm[2] = {mlk_moments_of(v, 4), mlk_moments_of(v, 2)};
    must(mlk_moments_encode(mm, 2, &b, &n) == 0, "moments encode");
    put("payload", "moments", 6, 1, b, n);
    free(b);

    /* task arguments as bytes.h writes them */
    uint8_t args[] = {4, 0, 0, 0, 'k', 'i', 'n', 'd', 3, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 7, 0, 0, 0};
    put("payload", "args", 7, 1, args, sizeof args);
}

static void wire_seed(const char *name, envelope_t *env)
{
    size_t n = mlops__envelope__get_packed_size(env);
    uint8_t *b = malloc(n + 1);
    must(b != NULL, "malloc");
    mlops__envelope__pack(env, b);
    put("wire", name, 0, 0, b, n);
    free(b);
}

static void wire_seeds(void)
{
    envelope_t env;
    wire_init(&env, 7);
    Mlops__Register reg = MLOPS__REGISTER__INIT;
    char *held[] = {"j1/0/0", "j1/1/3"};
    reg.name = "w1";
    reg.slots = 2;
    reg.store_endpoint = "tcp://127.0.0.1:40000";
    reg.n_held = 2;
    reg.held = held;
    env.body_case = MLOPS__ENVELOPE__BODY_REGISTER;
    env.register_ = &reg;
    wire_seed("register", &env);

    wire_init(&env, 8);
    Mlops__ShardRef ref = MLOPS__SHARD_REF__INIT, *refs[] = {&ref};
    ref.key = "j1/0/0";
    ref.endpoint = "tcp://127.0.0.1:40000";
    ref.worker_id = "w-1";
    Mlops__TaskAssign ta = MLOPS__TASK_ASSIGN__INIT;
    ta.job_id = "j1";
    ta.kind = "clean_hist";
    ta.spec.data = (uint8_t *)"name: x\n";
    ta.spec.len = 8;
    ta.args.data = (uint8_t *)"\1\0\0\0";
    ta.args.len = 4;
    ta.n_inputs = 1;
    ta.inputs = refs;
    ta.output_key = "j1/1/0";
    env.body_case = MLOPS__ENVELOPE__BODY_TASK_ASSIGN;
    env.task_assign = &ta;
    wire_seed("task_assign", &env);

    wire_init(&env, 9);
    Mlops__Metric met = MLOPS__METRIC__INIT, *mets[] = {&met};
    met.name = "rows_bad";
    met.value = 2;
    Mlops__TaskResult tr = MLOPS__TASK_RESULT__INIT;
    char *outs[] = {"j1/1/0"};
    tr.job_id = "j1";
    tr.ok = 1;
    tr.n_outputs = 1;
    tr.outputs = outs;
    tr.n_metrics = 1;
    tr.metrics = mets;
    tr.seconds = 0.5;
    env.body_case = MLOPS__ENVELOPE__BODY_TASK_RESULT;
    env.task_result = &tr;
    wire_seed("task_result", &env);

    wire_init(&env, 10);
    Mlops__InputFile in = MLOPS__INPUT_FILE__INIT, *ins[] = {&in};
    in.role = "input";
    in.name = "data.csv";
    in.size = 100;
    Mlops__SubmitBegin sb = MLOPS__SUBMIT_BEGIN__INIT;
    sb.spec_yaml.data = (uint8_t *)"name: x\n";
    sb.spec_yaml.len = 8;
    sb.spec_name = "job.yaml";
    sb.n_files = 1;
    sb.files = ins;
    env.body_case = MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN;
    env.submit_begin = &sb;
    wire_seed("submit_begin", &env);

    wire_init(&env, 11);
    Mlops__Query q = MLOPS__QUERY__INIT;
    char *qargs[] = {"--stage", "clean"};
    q.verb = "export-plan";
    q.job_id = "j1";
    q.n_args = 2;
    q.args = qargs;
    env.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    env.query = &q;
    wire_seed("query", &env);

    wire_init(&env, 12);
    Mlops__ShardData sd = MLOPS__SHARD_DATA__INIT;
    sd.key = "j1/0/0";
    sd.data.data = (uint8_t *)"MLKF";
    sd.data.len = 4;
    env.body_case = MLOPS__ENVELOPE__BODY_SHARD_DATA;
    env.shard_data = &sd;
    wire_seed("shard_data", &env);

    Mlops__Error e;
    wire_error_body(&env, &e, 13, MLOPS__ERROR_CODE__BAD_FRAME, "frame of 3 bytes is not an Envelope");
    wire_seed("error", &env);

    wire_init(&env, 14);
    Mlops__Heartbeat hb = MLOPS__HEARTBEAT__INIT;
    hb.running = 1;
    env.body_case = MLOPS__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    wire_seed("heartbeat", &env);
}

/* IDX: mode byte (bit 0: the fuzzer gzips the rest), first row, count. */
static void idx_seed(const char *name, uint8_t mode, uint8_t begin, uint8_t count,
                     const uint8_t *file, size_t n, int gzip_here)
{
    uint8_t *b = malloc(n + 64 + 3);
    must(b != NULL, "malloc");
    b[0] = mode;
    b[1] = begin;
    b[2] = count;
    size_t len = n;
    if (gzip_here) {
        z_stream z;
        memset(&z, 0, sizeof z);
        must(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflate");
        z.next_in = (Bytef *)file;
        z.avail_in = (uInt)n;
        z.next_out = b + 3;
        z.avail_out = (uInt)(n + 64);
        must(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
        len = z.total_out;
        deflateEnd(&z);
    } else {
        memcpy(b + 3, file, n);
    }
    put("idx", name, 0, 0, b, len + 3);
    free(b);
}

static void idx_seeds(void)
{
    uint8_t img[4 + 12 + 3 * 2 * 2] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    for (int i = 0; i < 12; i++)
        img[16 + i] = (uint8_t)(i * 20);
    uint8_t lab[4 + 4 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 9};
    idx_seed("images_plain", 0, 0, 255, img, sizeof img, 0);
    idx_seed("images_range", 0, 1, 2, img, sizeof img, 0);
    idx_seed("labels_plain", 0, 0, 255, lab, sizeof lab, 0);
    idx_seed("labels_fuzzer_gzips", 1, 1, 1, lab, sizeof lab, 0);
    idx_seed("images_gz_file", 0, 0, 255, img, sizeof img, 1);
    idx_seed("labels_gz_file", 0, 2, 1, lab, sizeof lab, 1);
    idx_seed("truncated", 0, 0, 255, img, sizeof img - 5, 0);
}

/* Solver states: fresh, in a line search, and stopped (lbfgs.h). */
static void lbfgs_seeds(void)
{
    mlk_lbfgs_opts o;
    mlk_lbfgs_opts_default(&o);
    o.m = 3;
    double x0[3] = {1, -2, 0.5}, g[3];
    mlk_lbfgs *s = mlk_lbfgs_new(3, x0, &o);
    must(s != NULL, "lbfgs new");
    static const char *const names[] = {"fresh", "search", "iterating"};
    for (int k = 0; k < 3; k++) {
        uint8_t *b;
        size_t n;
        must(mlk_lbfgs_encode(s, &b, &n) == 0, "lbfgs encode");
        put("lbfgs", names[k], 0, 0, b, n);
        free(b);
        for (int step = 0; step < 2 * k + 1 && mlk_lbfgs_status_of(s) == MLK_LBFGS_RUNNING; step++) {
            const double *x = mlk_lbfgs_x(s);
            double f = 0;
            for (int i = 0; i < 3; i++) {
                g[i] = (i + 1.0) * x[i];
                f += 0.5 * (i + 1.0) * x[i] * x[i];
            }
            must(mlk_lbfgs_tell(s, f, g, NULL, 0) >= 0, "lbfgs tell");
        }
    }
    mlk_lbfgs_destroy(&s);
}

/* ------------------------------------------------------------------ */
/* coord and worker: inputs in the record formats of fuzz_coord.c and
 * fuzz_worker.c, from envelopes and task arguments packed here */

static uint8_t s_buf[1 << 16];
static size_t s_len;

static void rec(int with_op, uint8_t op, const void *b, size_t n)
{
    must(s_len + n + 3 <= sizeof s_buf, "seed size");
    if (with_op) s_buf[s_len++] = op;
    s_buf[s_len++] = (uint8_t)(n & 0xff);
    s_buf[s_len++] = (uint8_t)(n >> 8);
    memcpy(s_buf + s_len, b, n);
    s_len += n;
}

static void rec_env(uint8_t peer, envelope_t *env)
{
    size_t n = mlops__envelope__get_packed_size(env);
    uint8_t *b = malloc(n + 1);
    must(b != NULL, "malloc");
    mlops__envelope__pack(env, b);
    rec(1, peer, b, n);
    free(b);
}

static void rec_msg(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    must(b != NULL, "malloc");
    protobuf_c_message_pack(m, b);
    rec(0, 0, b, n);
    free(b);
}

static void flush_seed(const char *dir, const char *name)
{
    put(dir, name, 0, 0, s_buf, s_len);
    s_len = 0;
}

static void c_register(uint8_t peer, const char *held)
{
    envelope_t env;
    wire_init(&env, 1);
    Mlops__Register r = MLOPS__REGISTER__INIT;
    char *h[] = {(char *)held};
    r.name = "stranger";
    r.slots = 1;
    r.store_endpoint = "tcp://127.0.0.1:9";
    r.n_held = held ? 1 : 0;
    r.held = h;
    env.body_case = MLOPS__ENVELOPE__BODY_REGISTER;
    env.register_ = &r;
    rec_env(peer, &env);
}

static void c_query(uint8_t peer, const char *verb, const char *job)
{
    envelope_t env;
    wire_init(&env, 3);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = (char *)verb;
    q.job_id = (char *)(job ? job : "");
    env.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    env.query = &q;
    rec_env(peer, &env);
}

static void c_submit(uint8_t peer, const char *yaml, const char *file, size_t size)
{
    envelope_t env;
    wire_init(&env, 2);
    Mlops__InputFile in = MLOPS__INPUT_FILE__INIT, *ins[] = {&in};
    in.role = "input";
    in.name = (char *)file;
    in.size = size;
    Mlops__SubmitBegin sb = MLOPS__SUBMIT_BEGIN__INIT;
    sb.spec_yaml.data = (uint8_t *)yaml;
    sb.spec_yaml.len = strlen(yaml);
    sb.spec_name = "job.yaml";
    sb.n_files = file ? 1 : 0;
    sb.files = ins;
    env.body_case = MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN;
    env.submit_begin = &sb;
    rec_env(peer, &env);
}

static void c_upload(uint8_t peer, const char *job, const char *data, size_t off, int last)
{
    envelope_t env;
    wire_init(&env, 4);
    Mlops__UploadChunk u = MLOPS__UPLOAD_CHUNK__INIT;
    u.job_id = (char *)job;
    u.offset = off;
    u.data.data = (uint8_t *)data;
    u.data.len = strlen(data);
    u.last = last;
    env.body_case = MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK;
    env.upload_chunk = &u;
    rec_env(peer, &env);
}

static void c_answers(int n, const void *b, size_t len)
{
    for (int i = 0; i < n; i++) rec(1, (uint8_t)(0xF0 + (i & 3)), b, len);
}

static const char small_yaml[] = "name: small\ninput: data.csv\ncolumns:\n  numeric: [price]\n"
                                 "  label: label\nclean: {dropna: true, iqr_k: 1.5}\n";

static void coord_seeds(void)
{
    c_register(4, "j000009/ingest/0");
    c_query(5, "workers", NULL);
    c_query(5, "jobs", NULL);
    c_query(4, "status", "j000001");
    flush_seed("coord", "register_query");

    c_submit(4, "name: many\nnoop: {tasks: 6}\n", NULL, 0);
    c_answers(6, "", 0);
    c_query(4, "status", "j000001");
    c_query(4, "logs", "j000001");
    c_query(4, "rm", "j000001");
    flush_seed("coord", "noop_job");

    c_submit(5, "name: many\nnoop: {tasks: 8}\n", NULL, 0);
    rec(1, 0xF4, "boom", 4); /* a failure */
    c_query(5, "cancel", "j000001");
    c_answers(4, "", 0); /* late */
    flush_seed("coord", "noop_fail_cancel");

    size_t n = sizeof csv - 1;
    c_submit(4, small_yaml, "data.csv", n);
    c_upload(4, "j000001", csv, 0, 1);
    c_answers(4, "", 0);
    c_query(4, "status", "j000001");
    c_query(4, "export-plan", "j000001");
    flush_seed("coord", "small_job_upload");

    c_submit(5, small_yaml, "data.csv", n + 10);
    c_upload(5, "j000001", csv, 0, 1); /* short */
    c_upload(5, "j000002", csv, 0, 0); /* no such job */
    flush_seed("coord", "upload_short");

    envelope_t env;
    wire_init(&env, 9);
    env.version = 2;
    Mlops__Heartbeat hb = MLOPS__HEARTBEAT__INIT;
    env.body_case = MLOPS__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    rec_env(4, &env); /* wrong version */
    env.version = MLOPS_WIRE_VERSION;
    rec_env(5, &env); /* heartbeat from a stranger */
    rec(1, 1, "\x0f\x01garbage", 9);
    Mlops__DropJob dj = MLOPS__DROP_JOB__INIT;
    dj.job_id = "j000001";
    env.body_case = MLOPS__ENVELOPE__BODY_DROP_JOB;
    env.drop_job = &dj;
    rec_env(2, &env); /* a body the coordinator never gets */
    Mlops__TaskResult tr = MLOPS__TASK_RESULT__INIT;
    tr.job_id = "j000007";
    tr.ok = 1;
    env.body_case = MLOPS__ENVELOPE__BODY_TASK_RESULT;
    env.task_result = &tr;
    rec_env(0, &env); /* a result for a job that is not there */
    rec_env(5, &env); /* ... from a worker never registered */
    c_query(5, "no-such-verb", NULL);
    flush_seed("coord", "bad_messages");
}

static void w_store(const char *name, Mlops__Envelope__BodyCase body, const char *key)
{
    envelope_t env;
    wire_init(&env, 5);
    Mlops__ShardGet g = MLOPS__SHARD_GET__INIT;
    Mlops__Heartbeat hb = MLOPS__HEARTBEAT__INIT;
    g.key = (char *)key;
    env.body_case = body;
    if (body == MLOPS__ENVELOPE__BODY_SHARD_GET) env.shard_get = &g;
    else env.heartbeat = &hb;
    rec_env(0x80, &env);
    /* the record's length is not part of this format: drop it */
    memmove(s_buf + 1, s_buf + 3, s_len - 3);
    s_len -= 2;
    flush_seed("worker", name);
}

static void w_task(const char *name, uint8_t kind, uint8_t spec, const ProtobufCMessage *args,
                   const void *in, size_t inlen)
{
    s_buf[s_len++] = kind;
    s_buf[s_len++] = spec;
    if (args) rec_msg(args);
    else rec(0, 0, "", 0);
    if (in) rec(0, 0, in, inlen);
    flush_seed("worker", name);
}

static void worker_seeds(void)
{
    w_store("store_get", MLOPS__ENVELOPE__BODY_SHARD_GET, "j0/ingest/0");
    w_store("store_get_empty", MLOPS__ENVELOPE__BODY_SHARD_GET, "j0/empty/0");
    w_store("store_missing", MLOPS__ENVELOPE__BODY_SHARD_GET, "j9/nothing/3");
    w_store("store_heartbeat", MLOPS__ENVELOPE__BODY_HEARTBEAT, NULL);
    put("worker", "store_garbage", 0x80, 1, "\x0a\xff", 2);

    uint8_t *fb = NULL;
    size_t fn = 0;
    mlk_frame *f = small_frame();
    must(mlk_frame_encode(f, &fb, &fn) == 0, "frame encode");
    mlk_frame_destroy(&f);

    w_task("noop", 0, 0, NULL, NULL, 0);
    Mlops__Tasks__IngestColumn c0 = MLOPS__TASKS__INGEST_COLUMN__INIT, c1 = c0, c2 = c0;
    c0.name = "price";
    c1.name = "cat";
    c1.type = 1;
    c2.name = "label";
    c2.type = 1;
    Mlops__Tasks__IngestColumn *cols[] = {&c0, &c1, &c2};
    char *header[] = {"price", "cat", "label"};
    Mlops__Tasks__IngestArgs ia = MLOPS__TASKS__INGEST_ARGS__INIT;
    ia.file_name = "data.csv";
    ia.first_line = 2;
    ia.n_header = 3;
    ia.header = header;
    ia.n_columns = 3;
    ia.columns = cols;
    const char *rows = strchr(csv, '\n') + 1;
    ia.data.data = (uint8_t *)rows;
    ia.data.len = strlen(rows);
    ia.dropna = 1;
    w_task("ingest", 1, 1, &ia.base, NULL, 0);

    double lo[] = {-10}, hi[] = {10};
    Mlops__Tasks__CleanFilterArgs cf = MLOPS__TASKS__CLEAN_FILTER_ARGS__INIT;
    cf.dropna = 1;
    cf.n_lo = cf.n_hi = 1;
    cf.lo = lo;
    cf.hi = hi;
    w_task("clean_filter", 3, 0, &cf.base, fb, fn);
    w_task("scale_moments", 4, 1, NULL, fb, fn);
    double mean[] = {1}, scale[] = {2};
    Mlops__Tasks__ScaleApplyArgs sa = MLOPS__TASKS__SCALE_APPLY_ARGS__INIT;
    sa.n_mean = sa.n_scale = 1;
    sa.mean = mean;
    sa.scale = scale;
    w_task("scale_apply", 5, 1, &sa.base, fb, fn);
    char *classes[] = {"no", "yes"};
    Mlops__Tasks__HashArgs ha = MLOPS__TASKS__HASH_ARGS__INIT;
    ha.n_features = 16;
    ha.alternate_sign = 1;
    ha.n_classes = 2;
    ha.classes = classes;
    w_task("hash", 6, 1, &ha.base, fb, fn);
    Mlops__Tasks__SplitArgs sp = MLOPS__TASKS__SPLIT_ARGS__INIT;
    sp.seed = 42;
    sp.rows = 3;
    sp.rows_test = 1;
    sp.count = 3;
    w_task("split", 7, 1, &sp.base, fb, fn);
    Mlops__Tasks__TrainEpochArgs te = MLOPS__TASKS__TRAIN_EPOCH_ARGS__INIT;
    te.alpha = 0.0001;
    te.eta0 = 0.01;
    te.power_t = 0.5;
    te.batch_size = 1;
    te.seed = 42;
    te.classes = 2;
    te.n_features = 16;
    w_task("train_epoch", 8, 1, &te.base, fb, fn);
    Mlops__Tasks__EvaluateArgs ev = MLOPS__TASKS__EVALUATE_ARGS__INIT;
    ev.classes = 2;
    w_task("evaluate", 10, 1, &ev.base, fb, fn);
    Mlops__Tasks__KnnSearchArgs ks = MLOPS__TASKS__KNN_SEARCH_ARGS__INIT;
    w_task("knn_search", 12, 3, &ks.base, fb, fn);
    Mlops__Tasks__RecKeysArgs rk = MLOPS__TASKS__REC_KEYS_ARGS__INIT;
    w_task("rec_keys", 14, 2, &rk.base, fb, fn);
    free(fb);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    payload_seeds();
    wire_seeds();
    idx_seeds();
    lbfgs_seeds();
    coord_seeds();
    worker_seeds();
    return 0;
}
