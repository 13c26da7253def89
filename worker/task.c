/* task.c: the task context helpers of task.h, and the per-executor
 * thread state behind them: a cache of DEALER sockets to peer stores
 * (ZeroMQ sockets belong to one thread), of the last parsed job spec and
 * of one built object (the last decoded model, wk_task_model). */
#include "task.h"
#include "fshard.h"
#include "cancel.h"
#include "wk_obs.h"
#include "err.h"
#include "localin.h"
#include "log.h"
#include "task_thread.h"
#include "transport.h"
#include "wire.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* a peer that accepted the connection answers a shard request within
 * this; a dead one is noticed by the send (transport_peer_connect) */
#define PEER_TIMEOUT_MS 10000
#define PEER_CONNECT_MS 1500

task_thread_t *wk_task_thread_new(zcert_t *cert)
{
    task_thread_t *t = calloc(1, sizeof *t);
    if (t) t->cert = cert;
    if (!t) return NULL;
    t->peers = zhashx_new();
    return t;
}

void wk_task_thread_destroy(task_thread_t **pt)
{
    if (!pt || !*pt) return;
    task_thread_t *t = *pt;
    for (zsock_t *s = zhashx_first(t->peers); s; s = zhashx_next(t->peers)) zsock_destroy(&s);
    zhashx_destroy(&t->peers);
    mlops_jobspec_destroy(&t->spec);
    free(t->spec_job);
    if (t->cache && t->cache_free) t->cache_free(t->cache);
    free(t->cache_key);
    free(t);
    *pt = NULL;
}

void *wk_task_cache_get(task_ctx_t *ctx, const char *key)
{
    task_thread_t *t = ctx->thread;
    return t->cache_key && !strcmp(t->cache_key, key) ? t->cache : NULL;
}

void wk_task_cache_put(task_ctx_t *ctx, const char *key, void *obj, void (*destroy)(void *))
{
    task_thread_t *t = ctx->thread;
    if (t->cache && t->cache_free) t->cache_free(t->cache);
    free(t->cache_key);
    t->cache_key = strdup(key);
    t->cache = t->cache_key ? obj : NULL;
    t->cache_free = destroy;
    if (!t->cache_key && obj && destroy) destroy(obj);
}

int wk_task_read_local(task_ctx_t *ctx, const Mlops__Tasks__LocalRange *r, const char *name,
                       uint8_t **out)
{
    task_thread_t *t = ctx->thread;
    mlops_localin_id_t id = {r->dev, r->ino, r->size, r->mtime_ns};
    char why[sizeof ctx->err];
    int rc = mlops_localin_read(t ? t->local_inputs : NULL, r->path, name && *name ? name : r->path,
                                &id, r->offset, r->length, out, why, sizeof why);
    /* another worker may have the file in its list; a changed file is
     * the same everywhere */
    if (rc) return wk_task_fail(ctx, rc == MLOPS_EDENIED || rc == MLOPS_ENOMEM, "%s", why);
    return 0;
}

static void model_free(void *m)
{
    mlk_model *p = m;
    mlk_model_destroy(&p);
}

const mlk_model *wk_task_model(task_ctx_t *ctx, const uint8_t *data, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the bytes: equal args, equal model */
    for (size_t i = 0; i < len; i++) h = (h ^ data[i]) * 1099511628211ull;
    char key[128];
    snprintf(key, sizeof key, "model %s %zu %016llx", ctx->ta->job_id ? ctx->ta->job_id : "", len,
             (unsigned long long)h);
    mlk_model *m = wk_task_cache_get(ctx, key);
    if (m) return m;
    if (mlk_model_decode(data, len, &m, ctx->err, sizeof ctx->err) != 0) {
        ctx->retry = 0;
        return NULL;
    }
    wk_task_cache_put(ctx, key, m, model_free);
    return wk_task_cache_get(ctx, key);
}

int wk_task_spec(task_ctx_t *ctx, const mlops_jobspec_t **out)
{
    task_thread_t *t = ctx->thread;
    const char *job = ctx->ta->job_id;
    if (!t->spec || !t->spec_job || strcmp(t->spec_job, job)) {
        mlops_jobspec_destroy(&t->spec);
        free(t->spec_job);
        t->spec_job = NULL;
        char err[1024];
        if (mlops_jobspec_parse((const char *)ctx->ta->spec.data, ctx->ta->spec.len, job, &t->spec,
                                err, sizeof err) != 0)
            return wk_task_fail(ctx, 0, "job spec: %s", err);
        t->spec_job = strdup(job);
    }
    *out = t->spec;
    return 0;
}

/* Peers are cached by endpoint and key: a holder restarted on the same
 * port with another key gets a socket that checks the new one. */
static void peer_name(const Mlops__ShardRef *ref, char *out, size_t n)
{
    snprintf(out, n, "%s %s", ref->endpoint, ref->server_key ? ref->server_key : "");
}

static void drop_peer(task_thread_t *t, const Mlops__ShardRef *ref)
{
    char name[600];
    peer_name(ref, name, sizeof name);
    zsock_t *s = zhashx_lookup(t->peers, name);
    if (s) {
        zhashx_delete(t->peers, name);
        zsock_destroy(&s);
    }
}

static int fetch(task_ctx_t *ctx, const Mlops__ShardRef *ref, void **data, size_t *len)
{
    task_thread_t *t = ctx->thread;
    char name[600];
    peer_name(ref, name, sizeof name);
    zsock_t *s = zhashx_lookup(t->peers, name);
    char err[512];
    if (!s) {
        transport_sec_t sec = {.cert = t->cert, .server_key = ref->server_key};
        if (t->cert && (!ref->server_key || !*ref->server_key))
            return wk_task_fail(ctx, 1, "shard %s: holder %s at %s has no CURVE key", ref->key,
                                ref->worker_id, ref->endpoint);
        s = transport_peer_connect(ref->endpoint, PEER_CONNECT_MS, &sec, err, sizeof err);
        if (!s) return wk_task_fail(ctx, 1, "shard %s: %s", ref->key, err);
        zhashx_insert(t->peers, name, s);
    }
    envelope_t req;
    wire_init(&req, ++t->seq);
    Mlops__ShardGet g = MLOPS__SHARD_GET__INIT;
    g.key = ref->key;
    req.body_case = MLOPS__ENVELOPE__BODY_SHARD_GET;
    req.shard_get = &g;
    double t0 = zclock_usecs() / 1e6;
    envelope_t *rep = wire_request(s, &req, PEER_TIMEOUT_MS, err, sizeof err);
    double waited = zclock_usecs() / 1e6 - t0;
    if (!rep) {
        wk_obs_fetch(ctx->obs, 0, 0, waited);
        drop_peer(t, ref); /* a half-dead socket would keep stale replies */
        return wk_task_fail(ctx, 1, "fetching shard %s from %s (%s): %s", ref->key, ref->worker_id,
                         ref->endpoint, err);
    }
    int rc = 0;
    if (rep->body_case == MLOPS__ENVELOPE__BODY_SHARD_DATA && rep->shard_data->key &&
        !strcmp(rep->shard_data->key, ref->key)) {
        *len = rep->shard_data->data.len;
        *data = malloc(*len ? *len : 1);
        if (!*data) rc = wk_task_fail(ctx, 1, "out of memory fetching %s", ref->key);
        else memcpy(*data, rep->shard_data->data.data, *len);
    } else if (rep->body_case == MLOPS__ENVELOPE__BODY_ERROR) {
        rc = wk_task_fail(ctx, 1, "shard %s from %s: %s", ref->key, ref->worker_id,
                       rep->error->message ? rep->error->message : "error");
    } else {
        rc = wk_task_fail(ctx, 1, "shard %s from %s: unexpected %s", ref->key, ref->worker_id,
                       wire_body_name(rep));
    }
    wk_obs_fetch(ctx->obs, rc == 0, rc == 0 ? *len : 0, waited);
    wire_free(&rep);
    return rc;
}

int wk_task_check_cancel(task_ctx_t *ctx)
{
    if (!ctx->cancel || !ctx->ta->job_id || !wk_cancel_has(ctx->cancel, ctx->ta->job_id)) return 0;
    ctx->cancelled = 1;
    return wk_task_fail(ctx, 0, "job %s was cancelled", ctx->ta->job_id);
}

int wk_task_input(task_ctx_t *ctx, size_t i, void **data, size_t *len)
{
    if (wk_task_check_cancel(ctx)) return -1;
    if (i >= ctx->ta->n_inputs) return wk_task_fail(ctx, 0, "task has no input %zu", i);
    const Mlops__ShardRef *ref = ctx->ta->inputs[i];
    int rc = mlops_store_get(ctx->store, ref->key, data, len);
    if (rc == 0) return 0;
    if (rc != MLOPS_ENOTFOUND) return wk_task_fail(ctx, 1, "store: reading %s failed", ref->key);
    if ((rc = fetch(ctx, ref, data, len)) != 0) return rc;
    /* the coordinator sends later reads of a chain shard to its holder:
     * writing a copy would only cost fresh pages */
    if (ref->no_cache) return 0;
    /* cache it: a later task (or a re-run) may read it again; not for a
     * job dropped meanwhile (checked under the drop's lock, as outputs) */
    if (ctx->cancel) wk_cancel_lock(ctx->cancel);
    int dropped = ctx->cancel && ctx->ta->job_id && wk_cancel_has_locked(ctx->cancel, ctx->ta->job_id);
    if (!dropped && mlops_store_put(ctx->store, ref->key, *data, *len) != 0)
        LOG_W("could not cache fetched shard %s", ref->key);
    if (ctx->cancel) wk_cancel_unlock(ctx->cancel);
    return 0;
}

typedef struct {
    const char *key;
    int (*fn)(const void *data, size_t len, uint64_t snap, void *arg);
    void *arg;
    int rc, found;
} with_arg_t;

static int with_cb(const char *key, const void *data, size_t len, uint64_t snap, void *arg)
{
    with_arg_t *a = arg;
    if (strcmp(key, a->key)) return 1; /* past the exact key: stop */
    a->found = 1;
    a->rc = a->fn(data, len, snap, a->arg);
    return 1;
}

int wk_task_input_with_snap(task_ctx_t *ctx, size_t i,
                            int (*fn)(const void *data, size_t len, uint64_t snap, void *arg), void *arg)
{
    if (i >= ctx->ta->n_inputs) return wk_task_fail(ctx, 0, "task has no input %zu", i);
    with_arg_t a = {ctx->ta->inputs[i]->key, fn, arg, 0, 0};
    mlops_store_foreach_snap(ctx->store, a.key, with_cb, &a);
    if (!a.found) {
        void *data;
        size_t len;
        int rc = wk_task_input(ctx, i, &data, &len);
        if (rc) return rc;
        a.rc = fn(data, len, 0, arg); /* a fetched copy: no snapshot */
        free(data);
    }
    return a.rc;
}

typedef struct {
    int (*fn)(const void *data, size_t len, void *arg);
    void *arg;
} plain_fn_t;

static int plain_fn(const void *data, size_t len, uint64_t snap, void *arg)
{
    (void)snap;
    plain_fn_t *p = arg;
    return p->fn(data, len, p->arg);
}

int wk_task_input_with(task_ctx_t *ctx, size_t i, int (*fn)(const void *data, size_t len, void *arg),
                       void *arg)
{
    plain_fn_t p = {fn, arg};
    return wk_task_input_with_snap(ctx, i, plain_fn, &p);
}

typedef struct {
    mlk_frame **frame; /* decode as a frame, or */
    mlk_features **fs; /* as a feature shard */
} decode_arg_t;

static int decode_fn(const void *data, size_t len, void *arg)
{
    decode_arg_t *a = arg;
    return a->frame ? mlk_frame_decode(data, len, a->frame) : mlk_features_decode(data, len, a->fs);
}

/* Held locally: decode straight from the store's map, one copy; else
 * fetched (wk_task_input) and decoded from the copy. */
static int input_decoded(task_ctx_t *ctx, size_t i, decode_arg_t *a, const char *what)
{
    if (i >= ctx->ta->n_inputs) return wk_task_fail(ctx, 0, "task has no input %zu", i);
    int rc = wk_task_input_with(ctx, i, decode_fn, a);
    /* a failed fetch already set the message (the first one is kept) */
    if (rc) return wk_task_fail(ctx, 0, "shard %s is not a valid %s", ctx->ta->inputs[i]->key, what);
    return 0;
}

int wk_task_input_frame(task_ctx_t *ctx, size_t i, mlk_frame **out)
{
    decode_arg_t a = {out, NULL};
    return input_decoded(ctx, i, &a, "frame");
}

int wk_task_input_features(task_ctx_t *ctx, size_t i, mlk_features **out)
{
    decode_arg_t a = {NULL, out};
    return input_decoded(ctx, i, &a, "feature shard");
}

int wk_task_numeric_cols(task_ctx_t *ctx, const mlk_frame *f, size_t **idx, size_t *n)
{
    const mlops_jobspec_t *s;
    if (wk_task_spec(ctx, &s) != 0) return -1;
    *n = s->columns.n_numeric;
    *idx = calloc(*n ? *n : 1, sizeof **idx);
    if (!*idx) return wk_task_fail(ctx, 1, "out of memory");
    for (size_t c = 0; c < *n; c++) {
        int ci = mlk_frame_col(f, s->columns.numeric[c]);
        if (ci < 0 || f->cols[ci].type != MLK_F64)
            return wk_task_fail(ctx, 0, "column '%s' is not a numeric column of the shard",
                             s->columns.numeric[c]);
        (*idx)[c] = (size_t)ci;
    }
    return 0;
}

/* How an output is written: a copy of data, by fill into the store's own
 * space (wk_task_output_frame: the frame is encoded there once), or
 * derived from a stored input in the same transaction (src). */
typedef struct {
    const void *data;
    size_t len;
    int (*fill)(void *, size_t, void *);
    const char *src;
    int (*plan)(const void *, size_t, size_t *, void *);
    int (*derive)(void *, size_t, const void *, size_t, void *);
    void *arg;
} put_how;

static int output_put(task_ctx_t *ctx, const char *key, const put_how *h)
{
    if (!key) key = ctx->ta->output_key;
    if (!key || !*key) return wk_task_fail(ctx, 0, "task has no output key");
    /* the check and the write under the lock DropJob deletes under: no
     * shard of a dropped job is written after its others were deleted */
    if (ctx->cancel) wk_cancel_lock(ctx->cancel);
    int dropped = ctx->cancel && ctx->ta->job_id && wk_cancel_has_locked(ctx->cancel, ctx->ta->job_id);
    int rc = dropped  ? 0
             : h->src ? mlops_store_put_derived(ctx->store, key, h->src, h->plan, h->derive, h->arg)
             : h->fill ? mlops_store_put_fill(ctx->store, key, h->len, h->fill, h->arg)
                       : mlops_store_put(ctx->store, key, h->data, h->len);
    if (ctx->cancel) wk_cancel_unlock(ctx->cancel);
    if (dropped) {
        ctx->cancelled = 1;
        return wk_task_fail(ctx, 0, "job %s was cancelled", ctx->ta->job_id);
    }
    if (h->src && rc == MLOPS_ENOTFOUND) return 1; /* the input is not held here */
    if (rc > 0) return -1; /* plan's or derive's own failure: the task's message is set */
    /* a derived value's size is known only inside the store's write */
    char size[48] = "";
    if (!h->src) snprintf(size, sizeof size, " (%zu bytes)", h->len);
    if (rc == MLOPS_EFULL) /* another worker may have room: retryable */
        return wk_task_fail(ctx, 1, "store: no space left on the device writing %s%s", key, size);
    if (rc != 0) return wk_task_fail(ctx, 1, "store: writing %s%s failed", key, size);
    char **o = realloc(ctx->outputs, (ctx->noutputs + 1) * sizeof *o);
    if (!o) return wk_task_fail(ctx, 1, "out of memory");
    ctx->outputs = o;
    o[ctx->noutputs] = strdup(key);
    if (o[ctx->noutputs]) ctx->noutputs++;
    return 0;
}

int wk_task_output(task_ctx_t *ctx, const char *key, const void *data, size_t len)
{
    put_how h = {.data = data, .len = len};
    return output_put(ctx, key, &h);
}

static int fill_frame(void *dst, size_t len, void *arg)
{
    (void)len;
    mlk_frame_encode_to(arg, dst);
    return 0;
}

int wk_task_output_frame(task_ctx_t *ctx, const mlk_frame *f)
{
    put_how h = {.len = mlk_frame_encoded_size(f), .fill = fill_frame, .arg = (void *)f};
    return output_put(ctx, NULL, &h);
}

int wk_task_output_derived(task_ctx_t *ctx, size_t i,
                           int (*plan)(const void *src, size_t srclen, size_t *len, void *arg),
                           int (*derive)(void *dst, size_t len, const void *src, size_t srclen,
                                         void *arg),
                           void *arg)
{
    if (i >= ctx->ta->n_inputs) return wk_task_fail(ctx, 0, "task has no input %zu", i);
    if (wk_task_check_cancel(ctx)) return -1;
    put_how h = {.src = ctx->ta->inputs[i]->key, .plan = plan, .derive = derive, .arg = arg};
    return output_put(ctx, NULL, &h);
}

void wk_task_metric(task_ctx_t *ctx, const char *name, double v)
{
    for (size_t i = 0; i < ctx->nmetrics; i++)
        if (!strcmp(ctx->mnames[i], name)) {
            ctx->mvals[i] = v;
            return;
        }
    if (ctx->nmetrics == TASK_MAX_METRICS) return;
    ctx->mnames[ctx->nmetrics] = strdup(name);
    if (!ctx->mnames[ctx->nmetrics]) return;
    ctx->mvals[ctx->nmetrics++] = v;
}

void wk_task_result(task_ctx_t *ctx, uint8_t *data, size_t len)
{
    free(ctx->result);
    ctx->result = data;
    ctx->result_len = len;
}

void *wk_task_args(task_ctx_t *ctx, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, ctx->ta->args.len, ctx->ta->args.data);
    if (!m)
        wk_task_fail(ctx, 0, "%s: damaged task arguments (%zu bytes are not a %s)", ctx->ta->kind,
                     ctx->ta->args.len, d->name);
    return m;
}

int wk_task_result_pack(task_ctx_t *ctx, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return wk_task_fail(ctx, 1, "out of memory");
    protobuf_c_message_pack(m, b);
    wk_task_result(ctx, b, n);
    return 0;
}

int wk_task_fail(task_ctx_t *ctx, int retry, const char *fmt, ...)
{
    if (!ctx->err[0]) { /* keep the first, most specific message */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
        va_end(ap);
        ctx->retry = retry;
    }
    return -1;
}
