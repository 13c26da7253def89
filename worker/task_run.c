/* task_run.c: one TaskAssign run to its TaskResult, apart from any
 * socket: find the kind, run it (unless its job was dropped while it
 * waited), and pack the result envelope the coordinator gets, ok or
 * failed. The executor threads (worker.c) run every assignment through
 * it, and so does the fuzz target tests/fuzz/fuzz_worker.c, on bytes
 * alone. */
#include "task.h"
#include "cancel.h"
#include "err.h"
#include "log.h"
#include "wire.h"
#include "wk_obs.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int wk_task_run(const Mlops__TaskAssign *ta, mlops_store_t *store, void *thread,
                struct wk_cancel *cancel, const struct wk_obs *obs, uint8_t **out, size_t *outlen)
{
    task_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.ta = ta;
    ctx.store = store;
    ctx.thread = thread;
    ctx.cancel = cancel;
    ctx.obs = obs;
    *out = NULL;
    *outlen = 0;
    char tname[64];
    snprintf(tname, sizeof tname, "%u/%u", ta->stage_idx, ta->task_idx);
    mlog_context(ta->job_id, tname);
    double t0 = mono_s();
    task_kind_fn fn = ta->kind ? wk_task_kind_find(ta->kind) : NULL;
    int rc;
    if (!fn) rc = wk_task_fail(&ctx, 0, "unknown task kind '%s'", ta->kind ? ta->kind : "");
    else if (wk_task_check_cancel(&ctx)) rc = -1; /* queued before the drop: never started */
    else rc = fn(&ctx);
    if (rc != 0 && !ctx.err[0]) wk_task_fail(&ctx, 0, "task %s failed", ta->kind);
    /* the coordinator shows it as one line: it may quote the peer's bytes */
    for (char *p = ctx.err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    double secs = mono_s() - t0;
    if (ctx.cancelled)
        LOG_I("task %s/%u/%u (%s) stopped after %.3f s: its job was cancelled", ta->job_id,
              ta->stage_idx, ta->task_idx, ta->kind, secs);
    if (obs)
        wk_obs_task(obs, ta->kind ? ta->kind : "", rc == 0 ? "ok" : ctx.retry ? "retry" : "error",
                    secs);
    if (rc != 0) LOG_W("task %s failed: %s", ta->kind ? ta->kind : "", ctx.err);
    LOG_D("task %s/%u/%u %s attempt %u: %s in %.3f s", ta->job_id, ta->stage_idx, ta->task_idx,
          ta->kind, ta->attempt, rc == 0 ? "ok" : ctx.err, secs);
    mlog_context(NULL, NULL);
    envelope_t env;
    wire_init(&env, 0);
    Mlops__TaskResult r = MLOPS__TASK_RESULT__INIT;
    r.job_id = ta->job_id;
    r.stage_idx = ta->stage_idx;
    r.task_idx = ta->task_idx;
    r.attempt = ta->attempt;
    r.ok = rc == 0;
    r.error = rc == 0 ? "" : ctx.err;
    r.retry = rc != 0 && ctx.retry;
    r.seconds = secs;
    if (rc == 0) {
        r.n_outputs = ctx.noutputs;
        r.outputs = ctx.outputs;
        r.result.data = ctx.result;
        r.result.len = ctx.result_len;
    }
    Mlops__Metric ms[TASK_MAX_METRICS], *mp[TASK_MAX_METRICS];
    for (size_t i = 0; i < ctx.nmetrics; i++) {
        mlops__metric__init(&ms[i]);
        ms[i].name = ctx.mnames[i];
        ms[i].value = ctx.mvals[i];
        mp[i] = &ms[i];
    }
    r.n_metrics = rc == 0 ? ctx.nmetrics : 0;
    r.metrics = mp;
    env.body_case = MLOPS__ENVELOPE__BODY_TASK_RESULT;
    env.task_result = &r;
    size_t len = mlops__envelope__get_packed_size(&env);
    uint8_t *b = malloc(len ? len : 1);
    if (b) {
        mlops__envelope__pack(&env, b);
        *out = b;
        *outlen = len;
    }
    free(ctx.result);
    for (size_t i = 0; i < ctx.noutputs; i++) free(ctx.outputs[i]);
    free(ctx.outputs);
    for (size_t i = 0; i < ctx.nmetrics; i++) free(ctx.mnames[i]);
    return b ? 0 : MLOPS_ENOMEM;
}
