/* fuzz_worker.c: the two things a worker does with bytes from the
 * network, through the functions its sockets call:
 *   - a TaskAssign of any kind (wk_task_run in worker/task.c, what every
 *     executor thread runs): the kind's <Kind>Args, its input shards and
 *     its checks, with a job file from a small table;
 *   - a request on the store endpoint (wk_store_answer in
 *     worker/store_answer.c, what the ROUTER that peers and `mlopsctl export`
 *     fetch from answers): a fetch for a held key, a missing or bad key,
 *     another body, garbage.
 *
 * One LMDB store per process, under /dev/shm; each input gets a fresh
 * executor thread state (spec and object caches, peer sockets), and what
 * it wrote to the store is deleted after it, so inputs do not depend on
 * each other.
 *
 * Input: byte 0 >= 0x80: the rest is one frame sent to the store
 * endpoint, which holds the keys "j0/ingest/0" (a frame) and
 * "j0/empty/0" (no bytes). Otherwise byte 0 picks the kind, byte 1 the
 * job file, and then come records [len lo][len hi][len bytes]: the
 * arguments, then up to four input shards, held in the local store as
 * "j<n>/in/<i>", so no task goes to the network.
 *
 * Properties checked, beyond "no crash, no leak, no UB": the result is a
 * TaskResult for the same job, stage, task and attempt; a failed task
 * says why in one line and lists no outputs; a task that succeeded wrote
 * the outputs it lists. The store endpoint answers every frame with one
 * Envelope: the shard's exact bytes under the key asked for, or an Error
 * of one line. */
#include "fuzz.h"

#include <ftw.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "task.h"
#include "task_thread.h"
#include "wire.h"
#include "store_answer.h"

#define MAX_INPUTS 4

static const char *s_kinds[] = {
    "noop",         "ingest",       "clean_qround", "clean_filter", "scale_moments",
    "scale_apply",  "hash",         "split",        "train_epoch",  "train_reduce",
    "evaluate",     "ingest_idx",   "knn_search",   "knn_classify", "rec_keys",
    "rec_export",   "rec_search",   "rec_recommend", "join_load",   "join",
    "join_part",    "join_gather",  "predict",      "promote_score", "profile_qround",
    "profile_count", "no_such_kind"};
#define NKINDS (sizeof s_kinds / sizeof *s_kinds)

/* The job files the kinds read their columns and settings from, over
 * the columns of the seeds' frame (price, cat, label). */
static const char *s_specs[] = {
    "name: small\ninput: data.csv\ncolumns:\n  numeric: [price]\n  label: label\n"
    "clean: {dropna: true, iqr_k: 1.5}\n",
    "name: p\ninput: data.csv\ncolumns:\n  label: label\n  numeric: [price]\n"
    "  categorical: [cat]\nclean: {dropna: true, iqr_k: 1.5}\nscale: true\n"
    "hash: {n_features: 16, alternate_sign: true}\nsplit: {test_size: 0.25, seed: 42}\n"
    "train: {model: logistic, epochs: 2, seed: 42}\nevaluate: [accuracy, logloss, auc, f1]\n",
    "name: r\ninput: data.csv\ncolumns:\n  numeric: [price]\n  categorical: [cat, label]\n"
    "knn: {k: 3, metric: cosine, mode: recommend, user: cat, item: label, top_n: 2}\n",
    "name: k\ninput: data.csv\ncolumns:\n  numeric: [price]\n  label: label\n"
    "knn: {k: 3, metric: euclidean, mode: classify}\n",
};
#define NSPECS (sizeof s_specs / sizeof *s_specs)

static mlops_store_t *s_store;
static char s_dir[128];
static const uint8_t s_frame[] = "MLKF-not-really-a-frame";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    mlops_store_close(&s_store);
    if (s_dir[0]) nftw(s_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void init_once(void)
{
    if (s_store) return;
    mlog_init("fuzz", MLOG_ERROR);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s_dir, sizeof s_dir, "%s/mlops_fuzz_worker_XXXXXX", base);
    char err[512] = "";
    if (!mkdtemp(s_dir) || !(s_store = mlops_store_open(s_dir, 0, err, sizeof err))) {
        fprintf(stderr, "fuzz_worker: cannot open a store in %s: %s\n", s_dir, err);
        abort();
    }
    FUZZ_CHECK(mlops_store_put(s_store, "j0/ingest/0", s_frame, sizeof s_frame) == 0);
    FUZZ_CHECK(mlops_store_put(s_store, "j0/empty/0", "", 0) == 0);
    atexit(cleanup);
}

static void one_line(const char *m)
{
    FUZZ_CHECK(m && m[0]);
    if (strchr(m, '\n')) fprintf(stderr, "message of more than one line: %s\n", m);
    FUZZ_CHECK(strchr(m, '\n') == NULL);
}

static void fuzz_store(const uint8_t *data, size_t size)
{
    char err[512] = "";
    envelope_t *req = wire_decode(data, size, err, sizeof err);
    zframe_t *f = wk_store_answer(s_store, "wF", req, err, NULL);
    FUZZ_CHECK(f != NULL);
    envelope_t *rep = wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    FUZZ_CHECK(rep != NULL);
    FUZZ_CHECK(rep->seq == (req ? req->seq : 0));
    if (rep->body_case == MLOPS__ENVELOPE__BODY_SHARD_DATA) {
        /* only a ShardGet for a held key gets its bytes, exactly */
        FUZZ_CHECK(req && req->body_case == MLOPS__ENVELOPE__BODY_SHARD_GET);
        FUZZ_CHECK(rep->shard_data->key && !strcmp(rep->shard_data->key, req->shard_get->key));
        void *want = NULL;
        size_t n = 0;
        FUZZ_CHECK(mlops_store_get(s_store, req->shard_get->key, &want, &n) == 0);
        FUZZ_CHECK(n == rep->shard_data->data.len &&
                   (n == 0 || memcmp(want, rep->shard_data->data.data, n) == 0));
        free(want);
    } else {
        FUZZ_CHECK(rep->body_case == MLOPS__ENVELOPE__BODY_ERROR);
        one_line(rep->error->message);
    }
    wire_free(&rep);
    wire_free(&req);
    zframe_destroy(&f);
}

/* The next [len lo][len hi][bytes] record, or 0 at the end. */
static int next_record(const uint8_t *data, size_t size, size_t *at, const uint8_t **p, size_t *n)
{
    if (*at + 2 > size) return 0;
    size_t len = (size_t)data[*at] | (size_t)data[*at + 1] << 8;
    *at += 2;
    if (len > size - *at) len = size - *at;
    *p = data + *at;
    *n = len;
    *at += len;
    return 1;
}

static void fuzz_task(const uint8_t *data, size_t size)
{
    if (size < 2) return;
    const char *kind = s_kinds[data[0] % NKINDS];
    unsigned spec = data[1] % NSPECS;
    char job[8], prefix[12], keys[MAX_INPUTS][32], out_key[32];
    snprintf(job, sizeof job, "j%u", spec + 1);
    snprintf(prefix, sizeof prefix, "%s/", job);
    snprintf(out_key, sizeof out_key, "%s/out/0", job);

    Mlops__TaskAssign ta = MLOPS__TASK_ASSIGN__INIT;
    Mlops__ShardRef refs[MAX_INPUTS], *refp[MAX_INPUTS];
    ta.job_id = job;
    ta.stage_idx = 2;
    ta.task_idx = 5;
    ta.attempt = 7;
    ta.kind = (char *)kind;
    ta.spec.data = (uint8_t *)s_specs[spec];
    ta.spec.len = strlen(s_specs[spec]);
    ta.output_key = out_key;
    size_t at = 2, n;
    const uint8_t *p;
    if (next_record(data, size, &at, &p, &n)) {
        ta.args.data = (uint8_t *)p;
        ta.args.len = n;
    }
    while (ta.n_inputs < MAX_INPUTS && next_record(data, size, &at, &p, &n)) {
        size_t i = ta.n_inputs++;
        snprintf(keys[i], sizeof keys[i], "%s/in/%zu", job, i);
        FUZZ_CHECK(mlops_store_put(s_store, keys[i], p, n) == 0);
        mlops__shard_ref__init(&refs[i]);
        refs[i].key = keys[i];
        refs[i].endpoint = ""; /* never used: every input is held here */
        refs[i].worker_id = "wF";
        refp[i] = &refs[i];
    }
    ta.inputs = refp;

    task_thread_t *th = wk_task_thread_new(NULL);
    FUZZ_CHECK(th != NULL);
    uint8_t *res = NULL;
    size_t len = 0;
    FUZZ_CHECK(wk_task_run(&ta, s_store, th, NULL, NULL, &res, &len) == 0);
    wk_task_thread_destroy(&th);

    char err[512] = "";
    envelope_t *env = wire_decode(res, len, err, sizeof err);
    FUZZ_CHECK(env != NULL && env->body_case == MLOPS__ENVELOPE__BODY_TASK_RESULT);
    Mlops__TaskResult *r = env->task_result;
    FUZZ_CHECK(r->job_id && !strcmp(r->job_id, job));
    FUZZ_CHECK(r->stage_idx == 2 && r->task_idx == 5 && r->attempt == 7);
    if (!r->ok) {
        one_line(r->error);
        FUZZ_CHECK(r->n_outputs == 0);
    } else {
        for (size_t i = 0; i < r->n_outputs; i++) {
            void *b = NULL;
            size_t bl = 0;
            FUZZ_CHECK(mlops_store_get(s_store, r->outputs[i], &b, &bl) == 0);
            free(b);
        }
    }
    wire_free(&env);
    free(res);
    FUZZ_CHECK(mlops_store_del_prefix(s_store, prefix) >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size == 0) return 0;
    if (data[0] >= 0x80) fuzz_store(data + 1, size - 1);
    else fuzz_task(data, size);
    return 0;
}
