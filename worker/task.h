/* task.h: what a task kind sees while it runs on a worker.
 *
 * A kind is one function `int run(task_ctx_t *ctx)` in the kind table
 * (kinds.c). It reads its arguments (ctx->ta->args, a <Kind>Args message
 * of proto/tasks.proto: wk_task_args) and inputs (shards
 * from the local store, fetched from a peer's store when not held),
 * calls a pure kernel, writes its output shard to the local store, and
 * sets a small result and metrics for the coordinator's reducer. It runs
 * on an executor thread; it never touches the coordinator socket. */
#ifndef MLOPS_WORKER_TASK_H
#define MLOPS_WORKER_TASK_H
#include <stddef.h>
#include <stdint.h>
#include "frame.h"
#include "fshard.h"
#include "model.h"
#include "jobspec.h"
#include "mlops.pb-c.h"
#include "tasks.pb-c.h"
#include "store.h"

#define TASK_MAX_METRICS 32

typedef struct task_ctx {
    const Mlops__TaskAssign *ta;
    mlops_store_t *store;
    void *thread;            /* executor thread state (peer sockets, spec cache) */
    uint8_t *result;         /* owned */
    size_t result_len;
    char *mnames[TASK_MAX_METRICS];
    double mvals[TASK_MAX_METRICS];
    size_t nmetrics;
    char **outputs;
    size_t noutputs;
    char err[1024];
    int retry;               /* failure is transient */
    struct wk_cancel *cancel; /* the worker's dropped jobs (cancel.h); NULL in tests */
    int cancelled;           /* the task stopped because its job was dropped */
    const struct wk_obs *obs; /* the worker's metrics (worker/wk_obs.h), or NULL */
} task_ctx_t;

/* "job JOB was cancelled" as the task's failure, if it was: -1 then, else 0.
 * Called at every shard boundary (wk_task_input, wk_task_output). */
int wk_task_check_cancel(task_ctx_t *ctx);

/* The job's parsed spec (cached per thread). */
int wk_task_spec(task_ctx_t *ctx, const mlops_jobspec_t **out);
/* The bytes of an input read in place (IngestArgs.local), checked
 * against this worker's --local-inputs and the file's identity at submit,
 * into a malloc'd *out; -1 with the task failed (naming the file) when
 * the file is outside the list, gone or changed. */
int wk_task_read_local(task_ctx_t *ctx, const Mlops__Tasks__LocalRange *r, const char *name,
                       uint8_t **out);
/* Input i's bytes (malloc'd copy): local store first, else the holder's
 * store over ZeroMQ, cached locally. */
int wk_task_input(task_ctx_t *ctx, size_t i, void **data, size_t *len);
int wk_task_input_frame(task_ctx_t *ctx, size_t i, mlk_frame **out);
/* Call fn(data, len, arg) once on input i's bytes without copying them
 * when they are held locally (then data lies in the store's map and is
 * valid only during the call), else on a fetched copy. Returns fn's
 * value, or -1 with the task failed if the input cannot be read. */
int wk_task_input_with(task_ctx_t *ctx, size_t i, int (*fn)(const void *data, size_t len, void *arg),
                       void *arg);
/* The same, fn also given the store snapshot the bytes were read in
 * (mlops_store_foreach_snap), or 0 for a fetched copy. */
int wk_task_input_with_snap(task_ctx_t *ctx, size_t i,
                            int (*fn)(const void *data, size_t len, uint64_t snap, void *arg), void *arg);
/* Input i decoded as a feature shard (fshard.h), from the store's map
 * when held locally (one copy instead of two). */
int wk_task_input_features(task_ctx_t *ctx, size_t i, mlk_features **out);
/* The spec's numeric columns, in spec order, as column indexes of f
 * (malloc'd in *idx, count in *n). A missing or non-numeric column fails
 * the task naming it. */
int wk_task_numeric_cols(task_ctx_t *ctx, const mlk_frame *f, size_t **idx, size_t *n);
/* Write the task's output shard (to ta->output_key, or key if given). */
int wk_task_output(task_ctx_t *ctx, const char *key, const void *data, size_t len);
int wk_task_output_frame(task_ctx_t *ctx, const mlk_frame *f);
/* The task's output shard derived from input i when the local store
 * holds it: read and written in one store transaction
 * (mlops_store_put_derived, whose plan and derive are these), so neither
 * is copied first. 1 when input i is not held here (nothing written:
 * read it with wk_task_input_with and write with wk_task_output); -1
 * with the task failed; 0. plan and derive return 0, or a positive value
 * after failing the task themselves. */
int wk_task_output_derived(task_ctx_t *ctx, size_t i,
                           int (*plan)(const void *src, size_t srclen, size_t *len, void *arg),
                           int (*derive)(void *dst, size_t len, const void *src, size_t srclen,
                                         void *arg),
                           void *arg);
void wk_task_metric(task_ctx_t *ctx, const char *name, double v);
/* Take ownership of a result buffer. */
void wk_task_result(task_ctx_t *ctx, uint8_t *data, size_t len);
/* The task's arguments unpacked as a message of type d (a <Kind>Args of
 * proto/tasks.proto); free it with protobuf_c_message_free_unpacked.
 * NULL if they do not unpack: they came from the network, so the task
 * has then failed (not retryable) with a message naming the type. */
void *wk_task_args(task_ctx_t *ctx, const ProtobufCMessageDescriptor *d);
/* Pack m (a <Kind>Result) as the task's result. */
int wk_task_result_pack(task_ctx_t *ctx, const ProtobufCMessage *m);
/* Record a failure message; returns -1 for `return wk_task_fail(...)`. */
int wk_task_fail(task_ctx_t *ctx, int retry, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One object per executor thread that several tasks of a job would
 * otherwise rebuild from the same inputs (e.g. the recommendation
 * matrix). get returns it (still owned by the cache) if `key` matches;
 * put hands a new one to the cache, freeing the previous one. */
void *wk_task_cache_get(task_ctx_t *ctx, const char *key);
void wk_task_cache_put(task_ctx_t *ctx, const char *key, void *obj, void (*destroy)(void *));
/* The model a task's arguments carry, decoded once per executor thread
 * for all the tasks of a phase that carry the same bytes (evaluate,
 * profile_count): decoding fills a dense 2^20-weight array, fresh pages
 * each time. Borrowed from the thread's cache (valid for this task, not
 * to be changed); NULL with the task failed if the bytes do not decode. */
const mlk_model *wk_task_model(task_ctx_t *ctx, const uint8_t *data, size_t len);

/* Run one assignment (borrowed) on this executor thread (a
 * task_thread_t) and pack the TaskResult envelope the coordinator gets,
 * ok or failed, into *out (malloc'd, *outlen bytes) (task_run.c). The one
 * path of every assignment: the executor threads, and
 * tests/fuzz/fuzz_worker.c without sockets. cancel and obs may be NULL.
 * 0, or MLOPS_ENOMEM. */
struct wk_cancel;
struct wk_obs;
int wk_task_run(const Mlops__TaskAssign *ta, mlops_store_t *store, void *thread,
                struct wk_cancel *cancel, const struct wk_obs *obs, uint8_t **out, size_t *outlen);

typedef int (*task_kind_fn)(task_ctx_t *ctx);
/* The kind table (kinds.c): NULL for an unknown kind. */
task_kind_fn wk_task_kind_find(const char *kind);

#endif
