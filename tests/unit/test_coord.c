/* test_coord.c: the coordinator in-process (coord_new on
 * tcp://127.0.0.1:*, a fresh temporary data directory), driven from the
 * same thread by scripted DEALER sockets that speak the real protocol
 * (common/wire.h envelopes): one plays a worker, one plays mlopsctl.
 * coord_poll() turns the coordinator's loop, so nothing waits on a sleep
 * and every wait is bounded.
 *
 * Covered: registration and the workers list; heartbeats sent to a quiet
 * worker and its expiry after three intervals; messages from a peer that
 * has not registered; a noop job whose results arrive twice, late, or
 * with a stale attempt; task_timeout re-dispatching a stuck task (its
 * late result ignored) and max_attempts failing the job with a message
 * naming task, worker and cause; progress and attempt numbers restored
 * from a disk image taken between turns (what a SIGKILL leaves); an
 * upload whose last chunk comes short; garbage
 * frames and unexpected bodies, after which the coordinator still
 * answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coord.h"
#include "coord_internal.h"
#include "err.h"
#include "journal.h"
#include "journal.pb-c.h"
#include "transport.h"
#include "wire.h"

#define HB_MS 100

typedef struct {
    char dir[64];
    coord_t *c;
    zsock_t *ctl; /* plays mlopsctl */
} fix_t;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static zsock_t *dealer(fix_t *f)
{
    char err[256] = "";
    zsock_t *d = transport_dealer_connect(coord_endpoint(f->c), NULL, err, sizeof err);
    if (!d) print_error("dealer: %s\n", err);
    assert_non_null(d);
    return d;
}

static coord_config_t limits; /* setup_limits: the limits to start with */

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/mlops_test_coord_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char data[128], err[512] = "";
    snprintf(data, sizeof data, "%s/data", f->dir);
    coord_config_t cfg = {.bind = "tcp://127.0.0.1:*", .data_dir = data, .heartbeat_ms = HB_MS};
    cfg.max_job_bytes = limits.max_job_bytes;
    cfg.max_input_mib = limits.max_input_mib;
    cfg.max_running = limits.max_running;
    f->c = coord_new(&cfg, err, sizeof err);
    if (!f->c) {
        print_error("coord_new: %s\n", err);
        return -1;
    }
    f->ctl = dealer(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    zsock_destroy(&f->ctl);
    coord_destroy(&f->c);
    assert_null(f->c);
    coord_destroy(&f->c); /* twice is safe */
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void send_heartbeat(zsock_t *d);

/* Turn the coordinator's loop until `d` receives a body of kind `want`
 * (others, such as heartbeats, are dropped) or about 3 s pass; with
 * `beat`, d sends heartbeats meanwhile, so only a task's own timeout
 * can end its dispatch. */
static envelope_t *await_beating(fix_t *f, zsock_t *d, Mlops__Envelope__BodyCase want, int beat)
{
    for (int i = 0; i < 300; i++) {
        if (beat && i % 5 == 0) send_heartbeat(d);
        assert_int_equal(coord_poll(f->c, 10), 0);
        while (zsock_events(d) & ZMQ_POLLIN) {
            char err[256] = "";
            envelope_t *env = wire_recv(d, NULL, err, sizeof err);
            if (!env) fail_msg("bad frame from the coordinator: %s", err);
            if (env->body_case == want) return env;
            wire_free(&env);
        }
    }
    fail_msg("no %d from the coordinator within 3 s", (int)want);
    return NULL;
}

static envelope_t *await(fix_t *f, zsock_t *d, Mlops__Envelope__BodyCase want)
{
    return await_beating(f, d, want, 0);
}

/* Turn the loop for `ms` milliseconds, answering nothing. */
static void idle(fix_t *f, int ms)
{
    int64_t end = zclock_mono() + ms;
    while (zclock_mono() < end) coord_poll(f->c, 10);
}

static void send_env(zsock_t *d, envelope_t *env) { assert_int_equal(wire_send(d, NULL, env), 0); }

static void send_register(zsock_t *d, const char *name, uint32_t slots)
{
    envelope_t env;
    wire_init(&env, 7);
    Mlops__Register r = MLOPS__REGISTER__INIT;
    r.name = (char *)name;
    r.slots = slots;
    r.store_endpoint = "tcp://127.0.0.1:9";
    r.pid = 4242;
    env.body_case = MLOPS__ENVELOPE__BODY_REGISTER;
    env.register_ = &r;
    send_env(d, &env);
}

static void send_heartbeat(zsock_t *d)
{
    envelope_t env;
    wire_init(&env, 0);
    Mlops__Heartbeat hb = MLOPS__HEARTBEAT__INIT;
    env.body_case = MLOPS__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(d, &env);
}

/* A TaskResult for assignment a: ok, or a failure (retryable, or busy:
 * the worker's queue was full) with its error. */
static void send_outcome(zsock_t *d, const Mlops__TaskAssign *a, uint32_t attempt, int ok, int retry,
                         int busy, const char *error)
{
    envelope_t env;
    wire_init(&env, 0);
    Mlops__TaskResult r = MLOPS__TASK_RESULT__INIT;
    r.job_id = a->job_id;
    r.stage_idx = a->stage_idx;
    r.task_idx = a->task_idx;
    r.attempt = attempt;
    r.ok = ok;
    r.retry = retry;
    r.busy = busy;
    r.error = (char *)(error ? error : "");
    env.body_case = MLOPS__ENVELOPE__BODY_TASK_RESULT;
    env.task_result = &r;
    send_env(d, &env);
}

static void send_result(zsock_t *d, const Mlops__TaskAssign *a, uint32_t attempt)
{
    send_outcome(d, a, attempt, 1, 0, 0, NULL);
}

/* A worker socket registered as `name` with one slot. */
static zsock_t *worker_up(fix_t *f, const char *name)
{
    zsock_t *w = dealer(f);
    send_register(w, name, 1);
    wire_free((envelope_t *[]){await(f, w, MLOPS__ENVELOPE__BODY_REGISTER_OK)});
    return w;
}

/* Query `verb` [job] from the ctl socket; the parsed reply, or fail. */
static json_t *query(fix_t *f, const char *verb, const char *job)
{
    envelope_t env;
    wire_init(&env, 11);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = (char *)verb;
    q.job_id = (char *)(job ? job : "");
    env.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    env.query = &q;
    send_env(f->ctl, &env);
    envelope_t *rep = await(f, f->ctl, MLOPS__ENVELOPE__BODY_REPLY);
    assert_int_equal(rep->seq, 11);
    json_error_t je;
    json_t *doc = json_loads(rep->reply->json, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        fail_msg("reply is not JSON (%d:%d %s): %s", je.line, je.column, je.text, rep->reply->json);
    wire_free(&rep);
    return doc;
}

/* The state ("alive"/"dead") of the first listed worker. */
static const char *worker0(json_t *doc, const char *key)
{
    json_t *w = json_array_get(json_object_get(doc, "workers"), 0);
    assert_non_null(w);
    return json_string_value(json_object_get(w, key));
}

static void assert_error(envelope_t *e, Mlops__ErrorCode code, const char *part)
{
    assert_int_equal(e->error->code, code);
    if (!strstr(e->error->message, part))
        fail_msg("error '%s' lacks '%s'", e->error->message, part);
}

static void test_register(void **state)
{
    fix_t *f = *state;
    json_t *doc = query(f, "workers", NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "workers")), 0);
    json_decref(doc);

    zsock_t *w = dealer(f);
    send_register(w, "alpha", 3);
    envelope_t *ok = await(f, w, MLOPS__ENVELOPE__BODY_REGISTER_OK);
    assert_int_equal(ok->seq, 7);
    assert_string_equal(ok->register_ok->worker_id, "w1");
    assert_int_equal(ok->register_ok->heartbeat_ms, HB_MS);
    wire_free(&ok);

    doc = query(f, "workers", NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "workers")), 1);
    assert_string_equal(worker0(doc, "state"), "alive");
    assert_string_equal(worker0(doc, "name"), "alpha");
    json_t *w0 = json_array_get(json_object_get(doc, "workers"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "slots")), 3);
    assert_int_equal(json_integer_value(json_object_get(w0, "pid")), 4242);
    json_decref(doc);

    /* the same connection registering again keeps its id */
    send_register(w, "alpha", 1);
    ok = await(f, w, MLOPS__ENVELOPE__BODY_REGISTER_OK);
    assert_string_equal(ok->register_ok->worker_id, "w1");
    wire_free(&ok);
    doc = query(f, "workers", NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "workers")), 1);
    json_decref(doc);
    zsock_destroy(&w);
}

static void test_heartbeat_expiry(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "quiet");

    /* a worker that answers stays alive past three intervals */
    for (int i = 0; i < 6; i++) {
        envelope_t *hb = await(f, w, MLOPS__ENVELOPE__BODY_HEARTBEAT);
        wire_free(&hb);
        send_heartbeat(w);
    }
    json_t *doc = query(f, "workers", NULL);
    assert_string_equal(worker0(doc, "state"), "alive");
    json_decref(doc);

    /* silent for more than 3 x HB_MS: dead */
    int64_t t0 = zclock_mono();
    const char *st = "alive";
    while (zclock_mono() - t0 < 3000) {
        idle(f, HB_MS);
        doc = query(f, "workers", NULL);
        st = strcmp(worker0(doc, "state"), "dead") ? "alive" : "dead";
        json_decref(doc);
        if (!strcmp(st, "dead")) break;
    }
    assert_string_equal(st, "dead");
    assert_true(zclock_mono() - t0 >= 2 * HB_MS); /* not at once: after the silence */

    /* a heartbeat from the dead worker is refused until it registers */
    send_heartbeat(w);
    envelope_t *e = await(f, w, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(e, MLOPS__ERROR_CODE__NOT_REGISTERED, "register first");
    wire_free(&e);
    zsock_destroy(&w);
}

static void test_before_register(void **state)
{
    fix_t *f = *state;
    zsock_t *w = dealer(f);
    send_heartbeat(w);
    envelope_t *e = await(f, w, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(e, MLOPS__ERROR_CODE__NOT_REGISTERED, "register first");
    wire_free(&e);

    Mlops__TaskAssign fake = MLOPS__TASK_ASSIGN__INIT;
    fake.job_id = "j000001";
    send_result(w, &fake, 1);
    e = await(f, w, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(e, MLOPS__ERROR_CODE__NOT_REGISTERED, "register first");
    wire_free(&e);

    json_t *doc = query(f, "workers", NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "workers")), 0);
    json_decref(doc);
    zsock_destroy(&w);
}

/* tasks_done of the job's first stage, and its state */
static json_int_t stage_done(fix_t *f, const char *job, const char **state)
{
    json_t *doc = query(f, "status", job);
    json_t *st = json_array_get(json_object_get(doc, "stages"), 0);
    assert_non_null(st);
    json_int_t n = json_integer_value(json_object_get(st, "tasks_done"));
    static char job_state[32];
    snprintf(job_state, sizeof job_state, "%s", json_string_value(json_object_get(doc, "state")));
    *state = job_state;
    json_decref(doc);
    return n;
}

/* The job's state once it is no longer running (at most 100 turns). */
static const char *await_end(fix_t *f, const char *job)
{
    const char *js = "running";
    for (int i = 0; i < 100 && !strcmp(js, "running"); i++) stage_done(f, job, &js);
    return js;
}

/* The job's logs hold `text`. */
static void assert_logs_have(fix_t *f, const char *job, const char *text)
{
    json_t *doc = query(f, "logs", job);
    char *dump = json_dumps(doc, 0);
    if (!strstr(dump, text)) fail_msg("logs of %s lack \"%s\": %s", job, text, dump);
    free(dump);
    json_decref(doc);
}

/* A result for a superseded try (late) is ignored: the job still runs;
 * the current try's result then ends it. */
static void late_then_good(fix_t *f, const char *job, zsock_t *wl, envelope_t *late, zsock_t *wg,
                           envelope_t *good)
{
    const char *js;
    send_result(wl, late->task_assign, late->task_assign->attempt);
    assert_int_equal(stage_done(f, job, &js), 0);
    assert_string_equal(js, "running");
    send_result(wg, good->task_assign, good->task_assign->attempt);
    assert_int_equal(stage_done(f, job, &js), 1);
    assert_string_equal(js, "succeeded");
}

static void test_duplicate_and_late_results(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "busy");

    envelope_t env;
    wire_init(&env, 21);
    Mlops__SubmitBegin sb = MLOPS__SUBMIT_BEGIN__INIT;
    static const char spec[] = "name: twice\nnoop: {tasks: 2}\n";
    sb.spec_yaml.data = (uint8_t *)spec;
    sb.spec_yaml.len = sizeof spec - 1;
    sb.spec_name = "twice.yaml";
    env.body_case = MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN;
    env.submit_begin = &sb;
    send_env(f->ctl, &env);
    envelope_t *ack = await(f, f->ctl, MLOPS__ENVELOPE__BODY_JOB_ACK);
    char job[16];
    snprintf(job, sizeof job, "%s", ack->job_ack->job_id);
    wire_free(&ack);

    /* noop's prefetch lets both tasks come to the one slot */
    envelope_t *a[2];
    for (int i = 0; i < 2; i++) {
        a[i] = await(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
        assert_string_equal(a[i]->task_assign->job_id, job);
        assert_string_equal(a[i]->task_assign->kind, "noop");
    }
    assert_int_not_equal(a[0]->task_assign->task_idx, a[1]->task_assign->task_idx);

    const char *js;
    send_result(w, a[0]->task_assign, a[0]->task_assign->attempt);
    send_result(w, a[0]->task_assign, a[0]->task_assign->attempt);     /* duplicate */
    send_result(w, a[1]->task_assign, a[1]->task_assign->attempt + 1); /* stale attempt */
    assert_int_equal(stage_done(f, job, &js), 1);
    assert_string_equal(js, "running");

    send_result(w, a[1]->task_assign, a[1]->task_assign->attempt);
    assert_int_equal(stage_done(f, job, &js), 2);
    assert_string_equal(js, "succeeded");

    /* late, after the job ended: changes nothing */
    send_result(w, a[1]->task_assign, a[1]->task_assign->attempt);
    assert_int_equal(stage_done(f, job, &js), 2);
    assert_string_equal(js, "succeeded");

    json_t *doc = query(f, "result", job);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "metrics"), "tasks")),
                     2);
    json_decref(doc);
    doc = query(f, "workers", NULL);
    json_t *w0 = json_array_get(json_object_get(doc, "workers"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "tasks_done")), 2);
    assert_int_equal(json_integer_value(json_object_get(w0, "running")), 0);
    json_decref(doc);
    wire_free(&a[0]);
    wire_free(&a[1]);
    zsock_destroy(&w);
}

/* Submit a job file's text from the ctl socket; its id into job. */
static void submit(fix_t *f, const char *spec, char job[16])
{
    envelope_t env;
    wire_init(&env, 31);
    Mlops__SubmitBegin sb = MLOPS__SUBMIT_BEGIN__INIT;
    sb.spec_yaml.data = (uint8_t *)spec;
    sb.spec_yaml.len = strlen(spec);
    sb.spec_name = "retry.yaml";
    env.body_case = MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN;
    env.submit_begin = &sb;
    send_env(f->ctl, &env);
    envelope_t *ack = await(f, f->ctl, MLOPS__ENVELOPE__BODY_JOB_ACK);
    snprintf(job, 16, "%s", ack->job_ack->job_id);
    wire_free(&ack);
}

static envelope_t *await_alive(fix_t *f, zsock_t *d, Mlops__Envelope__BodyCase want)
{
    return await_beating(f, d, want, 1);
}

/* Send `wait JOB HOLD` from the ctl socket with sequence seq. */
static void send_wait(fix_t *f, const char *job, const char *hold, uint64_t seq)
{
    envelope_t env;
    wire_init(&env, seq);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = "wait";
    q.job_id = (char *)job;
    char *args[] = {(char *)hold};
    q.n_args = 1;
    q.args = args;
    env.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    env.query = &q;
    send_env(f->ctl, &env);
}

/* The next Reply on the ctl socket within max_ms while worker w keeps
 * sending heartbeats, or NULL. */
static envelope_t *reply_alive(fix_t *f, zsock_t *w, int max_ms)
{
    int64_t end = zclock_mono() + max_ms;
    for (int i = 0; zclock_mono() < end; i++) {
        if (i % 3 == 0) send_heartbeat(w);
        assert_int_equal(coord_poll(f->c, 10), 0);
        while (zsock_events(w) & ZMQ_POLLIN) {
            envelope_t *env = wire_recv(w, NULL, NULL, 0);
            wire_free(&env);
        }
        while (zsock_events(f->ctl) & ZMQ_POLLIN) {
            envelope_t *env = wire_recv(f->ctl, NULL, NULL, 0);
            if (env && env->body_case == MLOPS__ENVELOPE__BODY_REPLY) return env;
            wire_free(&env);
        }
    }
    return NULL;
}

/* A held wait is answered when the job ends (not before), or when its
 * hold runs out with the job still running; one on a finished job at once. */
static void test_wait_held(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "one");
    char job[16];
    submit(f, "name: held\nnoop: {tasks: 1}\n", job);
    envelope_t *a = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);

    /* a short hold ends with the job still running */
    send_wait(f, job, "100", 41);
    int64_t t0 = zclock_mono();
    envelope_t *rep = reply_alive(f, w, 3000);
    assert_non_null(rep);
    assert_true(zclock_mono() - t0 >= 90);
    assert_int_equal(rep->seq, 41);
    assert_non_null(strstr(rep->reply->json, "\"running\""));
    wire_free(&rep);

    /* a long one is held while the job runs ... */
    send_wait(f, job, "10000", 42);
    assert_null(reply_alive(f, w, 300));
    /* ... and answered with the end */
    send_result(w, a->task_assign, a->task_assign->attempt);
    t0 = zclock_mono();
    rep = reply_alive(f, w, 3000);
    assert_non_null(rep);
    assert_true(zclock_mono() - t0 < 2000);
    assert_int_equal(rep->seq, 42);
    assert_non_null(strstr(rep->reply->json, "\"succeeded\""));
    wire_free(&rep);

    /* the job has ended: answered at once */
    send_wait(f, job, "10000", 43);
    rep = reply_alive(f, w, 3000);
    assert_non_null(rep);
    assert_int_equal(rep->seq, 43);
    assert_non_null(strstr(rep->reply->json, "\"succeeded\""));
    wire_free(&rep);
    wire_free(&a);
    zsock_destroy(&w);
}

static void test_task_timeout(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "slow");
    char job[16];
    int64_t t0 = zclock_mono(); /* before the dispatch, whenever a1 arrives */
    submit(f, "name: stuck\nmax_attempts: 3\ntask_timeout: 0.2\nnoop: {tasks: 1}\n", job);
    envelope_t *a1 = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
    /* never answered: after 0.2 s it comes again, with a new attempt */
    envelope_t *a2 = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
    assert_true(zclock_mono() - t0 >= 200);
    assert_int_equal(a2->task_assign->task_idx, a1->task_assign->task_idx);
    assert_int_not_equal(a2->task_assign->attempt, a1->task_assign->attempt);
    late_then_good(f, job, w, a1, w, a2);
    assert_logs_have(f, job, "noop task 0 attempt 1 of 3 on worker w1 (slow): timed out");
    wire_free(&a1);
    wire_free(&a2);
    zsock_destroy(&w);
}

/* max_attempts reached: the job fails, and its error names the task, the
 * worker and the cause of the last try. */
static void test_max_attempts(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "flaky");
    char job[16];
    submit(f, "name: flaky\nmax_attempts: 2\nnoop: {tasks: 1}\n", job);
    for (int i = 0; i < 2; i++) {
        envelope_t *a = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
        send_outcome(w, a->task_assign, a->task_assign->attempt, 0, 1, 0,
                     "cannot reach the worker store at tcp://127.0.0.1:9");
        wire_free(&a);
    }
    assert_string_equal(await_end(f, job), "failed");
    json_t *doc = query(f, "status", job);
    const char *e = json_string_value(json_object_get(doc, "error"));
    assert_non_null(e);
    assert_string_equal(e, "noop task 0 failed 2 of 2 attempts; the last on worker w1 (flaky): "
                           "cannot reach the worker store at tcp://127.0.0.1:9");
    json_decref(doc);
    zsock_destroy(&w);
}

/* Stop the coordinator and start it again on the same data directory
 * (the journal replays); the client socket follows it. */
static void restart(fix_t *f)
{
    zsock_destroy(&f->ctl);
    coord_destroy(&f->c);
    char data[128], err[512] = "";
    snprintf(data, sizeof data, "%s/data", f->dir);
    coord_config_t cfg = {.bind = "tcp://127.0.0.1:*", .data_dir = data, .heartbeat_ms = HB_MS};
    f->c = coord_new(&cfg, err, sizeof err);
    if (!f->c) fail_msg("coord_new after a restart: %s", err);
    f->ctl = dealer(f);
}

/* Tries are journalled: a task that fails retryably once before each of
 * two coordinator restarts fails the job at its third try, as it would
 * without the restarts, and the message counts all three. */
static void test_tries_survive_restart(void **state)
{
    fix_t *f = *state;
    char job[16];
    submit(f, "name: flaky\nmax_attempts: 3\nnoop: {tasks: 1}\n", job);
    for (int i = 0; i < 3; i++) {
        zsock_t *w = worker_up(f, "flaky");
        envelope_t *a = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
        send_outcome(w, a->task_assign, a->task_assign->attempt, 0, 1, 0,
                     "transient");
        wire_free(&a);
        idle(f, 50); /* handled and committed */
        zsock_destroy(&w);
        if (i < 2) restart(f);
    }
    assert_string_equal(await_end(f, job), "failed");
    json_t *doc = query(f, "status", job);
    const char *e = json_string_value(json_object_get(doc, "error"));
    assert_non_null(e);
    assert_non_null(strstr(e, "noop task 0 failed 3 of 3 attempts"));
    json_decref(doc);
}

/* What a SIGKILL would leave on disk now: a copy of the journal's data
 * file into DIR/journal (once no commit is in flight on the committer
 * thread, no transaction is open, and each commit is whole). */
static void crash_image(fix_t *f, const char *dir)
{
    coord_journal_idle(f->c);
    char from[160], to[160];
    snprintf(from, sizeof from, "%s/data/journal/data.mdb", f->dir);
    mkdir(dir, 0755);
    snprintf(to, sizeof to, "%s/journal", dir);
    mkdir(to, 0755);
    snprintf(to, sizeof to, "%s/journal/data.mdb", dir);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static int stage_record_cb(const char *key, const void *data, size_t len, void *arg)
{
    (void)key;
    *(Mlops__StageRecord **)arg = mlops__stage_record__unpack(NULL, len, data);
    return 1; /* the first one is the stage's */
}

/* A coordinator started on a crash image, in fixture g. */
static void start_on(fix_t *g, const char *dir)
{
    char err[512] = "";
    coord_config_t cfg = {.bind = "tcp://127.0.0.1:*", .data_dir = dir, .heartbeat_ms = HB_MS};
    g->c = coord_new(&cfg, err, sizeof err);
    if (!g->c) fail_msg("coord_new on the crash image %s: %s", dir, err);
    g->ctl = dealer(g);
}

/* Progress lives in the task records (a result does not rewrite its
 * stage's record): a coordinator started on the disk image taken after
 * two of four results shows those two done, runs the other two again
 * (they were running), and counts four at the end, not more; an image
 * whose stage record is in the older form also shows two. */
static void test_progress_after_crash(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "one");
    char job[16];
    submit(f, "name: prog\nnoop: {tasks: 4}\n", job);
    envelope_t *a[2];
    for (int i = 0; i < 2; i++) a[i] = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
    for (int i = 0; i < 2; i++) send_result(w, a[i]->task_assign, a[i]->task_assign->attempt);
    const char *js;
    for (int i = 0; i < 100 && stage_done(f, job, &js) < 2; i++) send_heartbeat(w);
    assert_int_equal(stage_done(f, job, &js), 2);
    char img[128], old[128];
    snprintf(img, sizeof img, "%s/image", f->dir);
    crash_image(f, img);
    snprintf(old, sizeof old, "%s/image-old", f->dir);
    crash_image(f, old);
    for (int i = 0; i < 2; i++) wire_free(&a[i]);
    zsock_destroy(&w);

    /* the stage record as an older coordinator wrote it (rewritten on
     * every result, the whole count, no progress_in_tasks): the count is
     * taken as it is, not added to */
    char jdir[160], key[64], err[256] = "";
    snprintf(jdir, sizeof jdir, "%s/journal", old);
    snprintf(key, sizeof key, "job/%s/s/000", job);
    journal_t *jn = journal_open(jdir, err, sizeof err);
    if (!jn) fail_msg("%s", err);
    Mlops__StageRecord *sr = NULL;
    assert_int_equal(journal_foreach(jn, key, stage_record_cb, &sr), 1);
    assert_non_null(sr);
    assert_true(sr->progress_in_tasks);
    sr->progress_in_tasks = 0;
    sr->tasks_done_total = 2;
    uint8_t buf[4096];
    size_t n = mlops__stage_record__get_packed_size(sr);
    assert_true(n <= sizeof buf);
    mlops__stage_record__pack(sr, buf);
    mlops__stage_record__free_unpacked(sr, NULL);
    assert_int_equal(journal_put(jn, key, buf, n), 0);
    assert_int_equal(journal_commit(jn), 0);
    journal_close(&jn);
    fix_t h = {.c = NULL};
    snprintf(h.dir, sizeof h.dir, "%s", f->dir);
    start_on(&h, old);
    assert_int_equal(stage_done(&h, job, &js), 2);
    zsock_destroy(&h.ctl);
    coord_destroy(&h.c);

    fix_t g = {.c = NULL};
    snprintf(g.dir, sizeof g.dir, "%s", f->dir);
    start_on(&g, img);
    assert_int_equal(stage_done(&g, job, &js), 2);
    assert_string_equal(js, "running");
    zsock_t *w2 = worker_up(&g, "two");
    for (int i = 0; i < 2; i++) {
        envelope_t *b = await_alive(&g, w2, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
        send_result(w2, b->task_assign, b->task_assign->attempt);
        wire_free(&b);
    }
    assert_string_equal(await_end(&g, job), "succeeded");
    assert_int_equal(stage_done(&g, job, &js), 4);
    zsock_destroy(&w2);
    zsock_destroy(&g.ctl);
    coord_destroy(&g.c);
}

/* Receive every TaskAssign waiting on w (none is left unread); returns
 * how many, their highest attempt into *max. */
static int take_assigns(zsock_t *w, uint32_t *max, envelope_t **keep, int nkeep)
{
    int n = 0;
    while (zsock_events(w) & ZMQ_POLLIN) {
        envelope_t *e = wire_recv(w, NULL, NULL, 0);
        if (e && e->body_case == MLOPS__ENVELOPE__BODY_TASK_ASSIGN) {
            if (e->task_assign->attempt > *max) *max = e->task_assign->attempt;
            if (n < nkeep) {
                keep[n++] = e;
                continue;
            }
            n++;
        }
        wire_free(&e);
    }
    return n;
}

/* Assignments go out before the commit of their batch, under attempt
 * numbers the journal reserved earlier. A disk image taken before each
 * turn is what a SIGKILL between those sends and their commit leaves: a
 * coordinator started on the image taken before the turn that sent the
 * second burst of assignments hands out only attempts above every one
 * sent, and the job still succeeds there. */
static void test_attempts_never_reused(void **state)
{
    fix_t *f = *state;
    zsock_destroy(&f->ctl);
    coord_destroy(&f->c);
    char data[128], err[512] = "";
    snprintf(data, sizeof data, "%s/data", f->dir);
    coord_config_t cfg = {.bind = "tcp://127.0.0.1:*", .data_dir = data, .heartbeat_ms = HB_MS,
                          .commit_delay_ms = 200};
    f->c = coord_new(&cfg, err, sizeof err);
    if (!f->c) fail_msg("coord_new: %s", err);
    f->ctl = dealer(f);
    /* noop keeps 256 assignments in flight per slot: one slot takes 256
     * of the 300 tasks at once, and the rest as results come back */
    enum { CAP = 256, TASKS = 300, NEXT = TASKS - CAP };
    zsock_t *w = dealer(f);
    send_register(w, "one", 1);
    wire_free((envelope_t *[]){await(f, w, MLOPS__ENVELOPE__BODY_REGISTER_OK)});
    char job[16];
    submit(f, "name: burst\nnoop: {tasks: 300}\n", job);
    envelope_t *a[CAP];
    uint32_t max = 0;
    int got = 0;
    for (int i = 0; i < 300 && got < CAP; i++) {
        assert_int_equal(coord_poll(f->c, 10), 0);
        got += take_assigns(w, &max, a + got, CAP - got);
    }
    assert_int_equal(got, CAP);
    for (int i = 0; i < CAP; i++) {
        if (i < NEXT) send_result(w, a[i]->task_assign, a[i]->task_assign->attempt);
        wire_free(&a[i]);
    }
    /* the next burst: their attempts are under the journalled mark */
    char img[2][128];
    int kept = -1;
    got = 0;
    for (int i = 0; i < 300 && got < NEXT; i++) {
        if (kept < 0) {
            snprintf(img[i % 2], sizeof img[0], "%s/image%d", f->dir, i % 2);
            crash_image(f, img[i % 2]);
        }
        assert_int_equal(coord_poll(f->c, 10), 0);
        int n = take_assigns(w, &max, a + got, NEXT - got);
        if (n && kept < 0) kept = i % 2;
        got += n;
    }
    assert_int_equal(got, NEXT);
    for (int i = 0; i < NEXT; i++) wire_free(&a[i]);
    zsock_destroy(&w);

    fix_t g = {.c = NULL};
    snprintf(g.dir, sizeof g.dir, "%s", f->dir);
    start_on(&g, img[kept]);
    zsock_t *w2 = dealer(&g);
    send_register(w2, "after", 2);
    wire_free((envelope_t *[]){await(&g, w2, MLOPS__ENVELOPE__BODY_REGISTER_OK)});
    const char *js = "running";
    for (int i = 0; i < 300 && !strcmp(js, "running"); i++) {
        assert_int_equal(coord_poll(g.c, 10), 0);
        while (zsock_events(w2) & ZMQ_POLLIN) {
            envelope_t *e = wire_recv(w2, NULL, NULL, 0);
            if (e && e->body_case == MLOPS__ENVELOPE__BODY_TASK_ASSIGN) {
                if (e->task_assign->attempt <= max)
                    fail_msg("attempt %u handed out again after the restart (sent before it: up to %u)",
                             e->task_assign->attempt, max);
                send_result(w2, e->task_assign, e->task_assign->attempt);
            }
            wire_free(&e);
        }
        if (i % 10 == 9) stage_done(&g, job, &js);
    }
    assert_string_equal(js, "succeeded");
    assert_int_equal(stage_done(&g, job, &js), TASKS);
    zsock_destroy(&w2);
    zsock_destroy(&g.ctl);
    coord_destroy(&g.c);
}

/* A worker whose FIFO is full answers busy: the task goes back to the
 * queue without counting a try, so with max_attempts 1 three busy
 * answers and then a good result make a succeeded job. */
static void test_busy_not_a_try(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "full");
    char job[16];
    submit(f, "name: busy\nmax_attempts: 1\nnoop: {tasks: 1}\n", job);
    uint32_t last = 0;
    for (int i = 0; i < 4; i++) {
        envelope_t *a = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
        assert_true(a->task_assign->attempt != last); /* a new dispatch each time */
        last = a->task_assign->attempt;
        send_outcome(w, a->task_assign, a->task_assign->attempt, i == 3, i < 3, i < 3,
                     i < 3 ? "worker full: task queue full (1 waiting, --queue-max)" : "");
        wire_free(&a);
    }
    assert_string_equal(await_end(f, job), "succeeded");
    zsock_destroy(&w);
}

/* args_repeat.c: arguments of 4 KiB and more go once per worker while
 * they repeat, under the attempt that carried them; anything that may
 * have kept them from the worker (an undelivered assignment, the worker
 * lost or registering again, an args_missing answer) makes the next one
 * carry its bytes again. */
static void test_args_repeat(void **state)
{
    fix_t *f = *state;
    zsock_t *w = worker_up(f, "rep");
    coord_t *c = f->c;
    assert_int_equal(c->nworkers, 1);
    uint8_t a[5000], b[5000];
    memset(a, 7, sizeof a);
    memset(b, 7, sizeof b);
    b[4999] = 8;
    uint64_t id = 99;
    assert_int_equal(coord_args_repeat(c, 0, a, 100, 10, &id), 0); /* short: as they are */
    assert_int_equal(id, 0);
    assert_int_equal(coord_args_repeat(c, 0, a, sizeof a, 11, &id), 0); /* first: its bytes */
    assert_int_equal(id, 11);
    assert_int_equal(coord_args_repeat(c, 0, a, sizeof a, 12, &id), 1); /* a repeat of 11 */
    assert_int_equal(id, 11);
    assert_int_equal(coord_args_repeat(c, 0, a, sizeof a - 1, 13, &id), 0); /* other length */
    assert_int_equal(id, 13);
    assert_int_equal(coord_args_repeat(c, 0, b, sizeof b - 1, 14, &id), 1); /* same bytes as 13 */
    assert_int_equal(id, 13);
    assert_int_equal(coord_args_repeat(c, 0, b, sizeof b, 15, &id), 0); /* the last byte differs */
    assert_int_equal(id, 15);
    assert_int_equal(coord_args_repeat(c, -1, b, sizeof b, 16, &id), 0); /* no such worker */
    assert_int_equal(id, 0);
    assert_int_equal(coord_args_repeat(c, 1, b, sizeof b, 16, &id), 0);
    coord_args_forget(c, 0);
    assert_int_equal(coord_args_repeat(c, 0, b, sizeof b, 17, &id), 0); /* forgotten: bytes again */
    assert_int_equal(id, 17);
    /* registering again forgets */
    send_register(w, "rep", 1);
    wire_free((envelope_t *[]){await(f, w, MLOPS__ENVELOPE__BODY_REGISTER_OK)});
    assert_int_equal(coord_args_repeat(c, 0, b, sizeof b, 18, &id), 0);
    assert_int_equal(id, 18);
    assert_int_equal(coord_args_repeat(c, 0, b, sizeof b, 19, &id), 1);

    /* args_missing for a running task: queued again, no try counted, and
     * the worker's kept arguments forgotten */
    char job[16];
    submit(f, "name: miss\nmax_attempts: 1\nnoop: {tasks: 1}\n", job);
    uint32_t last = 0;
    for (int i = 0; i < 3; i++) {
        envelope_t *e = await_alive(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
        Mlops__TaskAssign *ta = e->task_assign;
        assert_true(ta->attempt != last);
        last = ta->attempt;
        assert_int_equal(coord_args_repeat(c, 0, b, sizeof b, 20 + i, &id), i > 0 ? 0 : 1);
        if (i < 2) {
            envelope_t env;
            wire_init(&env, 0);
            Mlops__TaskResult r = MLOPS__TASK_RESULT__INIT;
            r.job_id = ta->job_id;
            r.stage_idx = ta->stage_idx;
            r.task_idx = ta->task_idx;
            r.attempt = ta->attempt;
            r.retry = 1;
            r.args_missing = 1;
            r.error = "task arguments not held by this worker";
            env.body_case = MLOPS__ENVELOPE__BODY_TASK_RESULT;
            env.task_result = &r;
            send_env(w, &env);
        } else {
            send_result(w, ta, ta->attempt);
        }
        wire_free(&e);
        idle(f, 20);
    }
    assert_string_equal(await_end(f, job), "succeeded"); /* max_attempts 1: no try was counted */
    zsock_destroy(&w);
}

/* A worker that takes the task and dies each time: lost workers count
 * against max_attempts too, so a task that kills its worker cannot loop
 * for ever. */
static void test_lost_worker_attempts(void **state)
{
    fix_t *f = *state;
    char job[16];
    submit(f, "name: poison\nmax_attempts: 2\nnoop: {tasks: 1}\n", job);
    for (int i = 0; i < 2; i++) {
        zsock_t *w = worker_up(f, i ? "second" : "first");
        envelope_t *a = await(f, w, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
        wire_free(&a);
        zsock_destroy(&w);
        idle(f, 4 * HB_MS); /* silent for more than 3 intervals: lost */
    }
    json_t *doc = query(f, "status", job);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "failed");
    const char *e = json_string_value(json_object_get(doc, "error"));
    assert_non_null(strstr(e, "noop task 0 failed 2 of 2 attempts; the last on worker w2 (second): "
                              "worker lost (expired (no heartbeat))"));
    json_decref(doc);
}

/* A worker that drains (Leave) hands its task back: the next worker gets
 * it, no try is counted (max_attempts 1 would fail the job otherwise),
 * and the drained worker is listed "left", not "dead". */
static void test_leave_hands_back(void **state)
{
    fix_t *f = *state;
    char job[16];
    submit(f, "name: drained\nmax_attempts: 1\nnoop: {tasks: 1}\n", job);
    zsock_t *w1 = worker_up(f, "leaving");
    envelope_t *a1 = await(f, w1, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
    envelope_t env;
    wire_init(&env, 0);
    Mlops__Leave lv = MLOPS__LEAVE__INIT;
    lv.reason = "SIGTERM";
    env.body_case = MLOPS__ENVELOPE__BODY_LEAVE;
    env.leave = &lv;
    send_env(w1, &env);
    zsock_t *w2 = worker_up(f, "staying");
    envelope_t *a2 = await_alive(f, w2, MLOPS__ENVELOPE__BODY_TASK_ASSIGN);
    assert_int_equal(a2->task_assign->task_idx, a1->task_assign->task_idx);
    assert_int_not_equal(a2->task_assign->attempt, a1->task_assign->attempt);
    late_then_good(f, job, w1, a1, w2, a2);
    json_t *doc = query(f, "workers", NULL);
    json_t *ws = json_object_get(doc, "workers");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ws, 0), "state")), "left");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ws, 1), "state")), "alive");
    json_decref(doc);
    assert_logs_have(f, job, "noop task 0 handed back by worker w1 (leaving), which left (SIGTERM); "
                                 "re-queued, no try counted");
    wire_free(&a1);
    wire_free(&a2);
    zsock_destroy(&w1);
    zsock_destroy(&w2);
}

/* A chunk marked last that leaves its file short: refused, and the job
 * fails instead of waiting in "uploading" for ever. */
static void test_upload_short_last(void **state)
{
    fix_t *f = *state;
    envelope_t env;
    wire_init(&env, 31);
    Mlops__SubmitBegin sb = MLOPS__SUBMIT_BEGIN__INIT;
    static const char spec[] = "name: short\nnoop: {tasks: 1}\n";
    sb.spec_yaml.data = (uint8_t *)spec;
    sb.spec_yaml.len = sizeof spec - 1;
    sb.spec_name = "short.yaml";
    Mlops__InputFile in = MLOPS__INPUT_FILE__INIT, *files[] = {&in};
    in.role = "input";
    in.name = "data.csv";
    in.size = 10;
    sb.n_files = 1;
    sb.files = files;
    env.body_case = MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN;
    env.submit_begin = &sb;
    send_env(f->ctl, &env);
    envelope_t *ack = await(f, f->ctl, MLOPS__ENVELOPE__BODY_JOB_ACK);
    char job[16];
    snprintf(job, sizeof job, "%s", ack->job_ack->job_id);
    wire_free(&ack);
    json_t *doc = query(f, "status", job);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "uploading");
    json_decref(doc);

    wire_init(&env, 32);
    Mlops__UploadChunk ch = MLOPS__UPLOAD_CHUNK__INIT;
    ch.job_id = job;
    ch.data.data = (uint8_t *)"a,b\n";
    ch.data.len = 4;
    ch.last = 1;
    env.body_case = MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK;
    env.upload_chunk = &ch;
    send_env(f->ctl, &env);
    envelope_t *e = await(f, f->ctl, MLOPS__ENVELOPE__BODY_ERROR);
    assert_int_equal(e->seq, 32);
    assert_error(e, MLOPS__ERROR_CODE__BAD_REQUEST, "upload of data.csv ended at 4 of 10 bytes");
    wire_free(&e);
    doc = query(f, "status", job);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(doc, "error")),
                        "upload of data.csv ended at 4 of 10 bytes");
    json_decref(doc);
}

/* SubmitBegin of `spec` with one input of `size` bytes; the reply. */
static envelope_t *submit_sized(fix_t *f, const char *spec, uint64_t size, uint64_t seq)
{
    envelope_t env;
    wire_init(&env, seq);
    Mlops__SubmitBegin sb = MLOPS__SUBMIT_BEGIN__INIT;
    sb.spec_yaml.data = (uint8_t *)spec;
    sb.spec_yaml.len = strlen(spec);
    sb.spec_name = "limits.yaml";
    Mlops__InputFile in = MLOPS__INPUT_FILE__INIT, *files[] = {&in};
    in.role = "input";
    in.name = "data.csv";
    in.size = size;
    sb.n_files = 1;
    sb.files = files;
    env.body_case = MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN;
    env.submit_begin = &sb;
    send_env(f->ctl, &env);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(coord_poll(f->c, 10), 0);
        while (zsock_events(f->ctl) & ZMQ_POLLIN) {
            char err[256] = "";
            envelope_t *rep = wire_recv(f->ctl, NULL, err, sizeof err);
            assert_non_null(rep);
            if (rep->seq == seq) return rep;
            wire_free(&rep);
        }
    }
    fail_msg("no answer to SubmitBegin %llu", (unsigned long long)seq);
    return NULL;
}

static int setup_limits(void **state)
{
    limits = (coord_config_t){.max_job_bytes = 64, .max_input_mib = 1, .max_running = 1};
    int rc = setup(state);
    limits = (coord_config_t){0};
    return rc;
}

static void test_limits(void **state)
{
    fix_t *f = *state;
    static const char small[] = "name: a\nnoop: {tasks: 1}\n";
    char big[200];
    snprintf(big, sizeof big, "name: %0120d\nnoop: {tasks: 1}\n", 0);
    envelope_t *r = submit_sized(f, big, 10, 41);
    assert_int_equal(r->body_case, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(r, MLOPS__ERROR_CODE__DENIED, "over this coordinator's limit of 64 bytes");
    wire_free(&r);
    r = submit_sized(f, small, (2u << 20), 42);
    assert_int_equal(r->body_case, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(r, MLOPS__ERROR_CODE__DENIED, "inputs of 2097152 bytes are over");
    wire_free(&r);
    /* the first job waits for its upload, so it counts as running */
    r = submit_sized(f, small, 10, 43);
    assert_int_equal(r->body_case, MLOPS__ENVELOPE__BODY_JOB_ACK);
    wire_free(&r);
    r = submit_sized(f, small, 10, 44);
    assert_int_equal(r->body_case, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(r, MLOPS__ERROR_CODE__BUSY, "the limit is 1 (--max-running)");
    wire_free(&r);
    json_t *doc = query(f, "jobs", NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "jobs")), 1);
    json_decref(doc);
}

static void test_garbage(void **state)
{
    fix_t *f = *state;
    zsock_t *g = dealer(f);
    static const char junk[] = "\x0a\xff\xff\xffnot an envelope";
    zframe_t *fr = zframe_new(junk, sizeof junk - 1);
    assert_int_equal(zframe_send(&fr, g, 0), 0);
    envelope_t *e = await(f, g, MLOPS__ENVELOPE__BODY_ERROR);
    assert_int_equal(e->error->code, MLOPS__ERROR_CODE__BAD_FRAME);
    assert_true(strlen(e->error->message) > 0);
    wire_free(&e);

    /* two frames where one is expected */
    assert_int_equal(zstr_sendm(g, "one"), 0);
    assert_int_equal(zstr_send(g, "two"), 0);
    e = await(f, g, MLOPS__ENVELOPE__BODY_ERROR);
    assert_int_equal(e->error->code, MLOPS__ERROR_CODE__BAD_FRAME);
    wire_free(&e);

    /* a well-formed body the coordinator never receives */
    envelope_t env;
    wire_init(&env, 5);
    Mlops__RegisterOk ok = MLOPS__REGISTER_OK__INIT;
    env.body_case = MLOPS__ENVELOPE__BODY_REGISTER_OK;
    env.register_ok = &ok;
    send_env(g, &env);
    e = await(f, g, MLOPS__ENVELOPE__BODY_ERROR);
    assert_int_equal(e->seq, 5);
    assert_error(e, MLOPS__ERROR_CODE__BAD_REQUEST, "unexpected");
    wire_free(&e);

    /* an unknown verb and a missing job are errors, not replies */
    envelope_t qenv;
    wire_init(&qenv, 6);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = "frobnicate";
    qenv.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    qenv.query = &q;
    send_env(g, &qenv);
    e = await(f, g, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(e, MLOPS__ERROR_CODE__BAD_REQUEST, "unknown query 'frobnicate'");
    wire_free(&e);
    q.verb = "status";
    q.job_id = "j999999";
    send_env(g, &qenv);
    e = await(f, g, MLOPS__ENVELOPE__BODY_ERROR);
    assert_error(e, MLOPS__ERROR_CODE__NOT_FOUND, "no job 'j999999'");
    wire_free(&e);

    /* still serving */
    json_t *doc = query(f, "ping", NULL);
    assert_true(json_is_true(json_object_get(doc, "ok")));
    json_decref(doc);
    zsock_destroy(&g);
}

int main(void)
{
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_before_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_late_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_worker_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tries_survive_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_never_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_not_a_try, setup, teardown),
        cmocka_unit_test_setup_teardown(test_args_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_hands_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_short_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup_limits, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
