/* fuzz_coord.c: the coordinator's handling of every message a worker or
 * a client sends (coord_handle in coordinator/coord.c, the one path of
 * the loop's receive), on any sequence of messages from a few peers.
 *
 * One coordinator per process (coord_new on tcp://127.0.0.1:*, a data
 * directory under /dev/shm), so that an input costs a few handler calls
 * and journal commits rather than a start-up. Each input starts from the
 * same state: the four fake workers A..D registered (slots 2), no jobs,
 * job and attempt numbers from 1; at its end every job is cancelled and
 * removed and the strangers' registrations are dropped, through the
 * coordinator's own lifecycle calls.
 *
 * An input is a list of records:
 *   op < 0xF0:  [op][len lo][len hi][len bytes]: a frame from peer
 *               op % 6 (0..3 the workers, 4..5 strangers that may
 *               register, submit, upload or query), decoded by
 *               wire_decode as wire_recv would and handed to coord_handle
 *   op >= 0xF0: [op][len lo][len hi][len bytes]: worker op & 3 answers
 *               the oldest assignment the coordinator gave it with a
 *               TaskResult (ok unless op & 4; the bytes are the result
 *               payload, the stage reducers' input); the job, stage, task
 *               and attempt are the assignment's, which the input cannot
 *               know, so the fuzzer reaches every phase of a job
 * After each record the loop turns once (dispatch, commit, send).
 *
 * Properties checked, beyond "no crash, no leak, no UB": everything the
 * coordinator sends decodes as an Envelope; its Error messages are one
 * line; after each input it still answers a ping; and its model holds
 * together: no stage has more tasks done than it has, a running task is
 * on a live worker, a worker's in-flight count is its running tasks, and
 * an ended job has nothing running. */
#include "fuzz.h"

#include <ftw.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "coord_internal.h"
#include "log.h"
#include "wire.h"

#define NPEERS 6
#define NWORKERS 4
#define MAXPEND 256

typedef struct {
    char job[16];
    uint32_t stage, task, attempt;
    char *output_key;
} assignment_t;

static coord_t *s_coord;
static char s_dir[128];
static zframe_t *s_peer[NPEERS + 1]; /* the last is the checker's */
static assignment_t s_pend[NWORKERS][MAXPEND];
static size_t s_npend[NWORKERS], s_head[NWORKERS];
static uint64_t s_seq;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void clear_pending(void)
{
    for (int w = 0; w < NWORKERS; w++) {
        for (size_t i = s_head[w]; i < s_npend[w]; i++) free(s_pend[w][i].output_key);
        s_npend[w] = s_head[w] = 0;
    }
}

static void cleanup(void)
{
    coord_destroy(&s_coord);
    clear_pending();
    for (int p = 0; p <= NPEERS; p++) zframe_destroy(&s_peer[p]);
    if (s_dir[0]) nftw(s_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void start(void)
{
    char err[512] = "", data[200];
    snprintf(data, sizeof data, "%s/data", s_dir);
    /* heartbeats an hour apart: no worker expires while an input runs,
     * so an input does the same whatever the machine's speed */
    coord_config_t cfg = {.bind = "tcp://127.0.0.1:*", .data_dir = data, .heartbeat_ms = 3600000};
    s_coord = coord_new(&cfg, err, sizeof err);
    if (!s_coord) {
        fprintf(stderr, "fuzz_coord: coord_new: %s\n", err);
        abort();
    }
}

static void init_once(void)
{
    if (s_coord) return;
    mlog_init("fuzz", MLOG_ERROR);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s_dir, sizeof s_dir, "%s/mlops_fuzz_coord_XXXXXX", base);
    if (!mkdtemp(s_dir)) {
        perror("fuzz_coord: mkdtemp");
        abort();
    }
    for (int p = 0; p <= NPEERS; p++) {
        char id[8] = {'p', 'e', 'e', 'r', (char)('A' + p)};
        s_peer[p] = zframe_new(id, 5);
    }
    start();
    atexit(cleanup);
}

/* Hand envelope bytes to the coordinator as the receive path does. */
static void deliver(int peer, const uint8_t *b, size_t n)
{
    char err[512] = "";
    envelope_t *env = wire_decode(b, n, err, sizeof err);
    if (!env) FUZZ_CHECK(err[0] != 0);
    /* a plain loopback connection: no key, so any role */
    wire_peer_t who = {.user_id = "", .address = "127.0.0.1:fuzz"};
    coord_handle(s_coord, s_peer[peer], &who, env, err);
}

static void deliver_env(int peer, envelope_t *env)
{
    size_t n = mlops__envelope__get_packed_size(env);
    uint8_t *b = malloc(n ? n : 1);
    FUZZ_CHECK(b != NULL);
    mlops__envelope__pack(env, b);
    deliver(peer, b, n);
    free(b);
}

static int peer_of(zframe_t *id)
{
    for (int p = 0; p <= NPEERS; p++)
        if (zframe_eq(id, s_peer[p])) return p;
    return -1;
}

/* Check what the coordinator is about to send; note the assignments. */
static void scan_outbox(void)
{
    coord_t *c = s_coord;
    for (size_t i = 0; i < c->nout; i++) {
        char err[512] = "";
        zframe_t *f = c->out[i].frame;
        envelope_t *env = wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
        if (!env) fprintf(stderr, "the coordinator sends a bad frame: %s\n", err);
        FUZZ_CHECK(env != NULL);
        if (env->body_case == MLOPS__ENVELOPE__BODY_ERROR) {
            const char *m = env->error->message;
            FUZZ_CHECK(m && m[0]);
            if (strchr(m, '\n')) fprintf(stderr, "error of more than one line: %s\n", m);
            FUZZ_CHECK(strchr(m, '\n') == NULL);
        }
        int p = peer_of(c->out[i].identity);
        if (env->body_case == MLOPS__ENVELOPE__BODY_TASK_ASSIGN && p >= 0 && p < NWORKERS &&
            s_npend[p] < MAXPEND) {
            Mlops__TaskAssign *ta = env->task_assign;
            assignment_t *a = &s_pend[p][s_npend[p]++];
            snprintf(a->job, sizeof a->job, "%s", ta->job_id ? ta->job_id : "");
            a->stage = ta->stage_idx;
            a->task = ta->task_idx;
            a->attempt = ta->attempt;
            a->output_key = ta->output_key && *ta->output_key ? strdup(ta->output_key) : NULL;
        }
        wire_free(&env);
    }
}

/* One turn of the loop after a message: dispatch, look, commit, send. */
static void turn(void)
{
    coord_dispatch(s_coord);
    scan_outbox();
    FUZZ_CHECK(coord_poll(s_coord, 0) == 0);
    scan_outbox(); /* what dispatch or the heartbeat queued after the commit */
    FUZZ_CHECK(s_coord->nout == 0 || coord_poll(s_coord, 0) == 0);
}

static void answer(int w, int ok, const uint8_t *b, size_t n)
{
    if (s_head[w] == s_npend[w]) return;
    assignment_t *a = &s_pend[w][s_head[w]++];
    envelope_t env;
    wire_init(&env, ++s_seq);
    Mlops__TaskResult r = MLOPS__TASK_RESULT__INIT;
    Mlops__Metric rows = MLOPS__METRIC__INIT, *mets[] = {&rows};
    rows.name = "rows";
    rows.value = (double)n;
    r.job_id = a->job;
    r.stage_idx = a->stage;
    r.task_idx = a->task;
    r.attempt = a->attempt;
    r.ok = ok;
    r.error = ok ? "" : "fuzzed failure";
    r.retry = n & 1;
    r.result.data = (uint8_t *)b;
    r.result.len = n;
    if (ok && a->output_key) {
        r.n_outputs = 1;
        r.outputs = &a->output_key;
        r.n_metrics = 1;
        r.metrics = mets;
    }
    env.body_case = MLOPS__ENVELOPE__BODY_TASK_RESULT;
    env.task_result = &r;
    deliver_env(w, &env);
    free(a->output_key);
    a->output_key = NULL;
}

static void register_worker(int p)
{
    envelope_t env;
    wire_init(&env, ++s_seq);
    Mlops__Register r = MLOPS__REGISTER__INIT;
    char name[8] = {'w', (char)('A' + p), 0};
    r.name = name;
    r.slots = 2;
    r.store_endpoint = "tcp://127.0.0.1:9";
    env.body_case = MLOPS__ENVELOPE__BODY_REGISTER;
    env.register_ = &r;
    deliver_env(p, &env);
}

/* The checker asks for a ping: the answer must be the last message out. */
static void check_ping(void)
{
    envelope_t env;
    uint64_t seq = ++s_seq;
    wire_init(&env, seq);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = "ping";
    q.job_id = "";
    env.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    env.query = &q;
    deliver_env(NPEERS, &env);
    coord_t *c = s_coord;
    FUZZ_CHECK(c->nout > 0);
    zframe_t *f = c->out[c->nout - 1].frame;
    char err[256];
    envelope_t *rep = wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    FUZZ_CHECK(rep != NULL && rep->seq == seq && rep->body_case == MLOPS__ENVELOPE__BODY_REPLY);
    json_error_t je;
    json_t *doc = json_loads(rep->reply->json, 0, &je);
    FUZZ_CHECK(doc != NULL);
    json_decref(doc);
    wire_free(&rep);
}

static void check_model(void)
{
    coord_t *c = s_coord;
    uint32_t *running = calloc(c->nworkers + 1, sizeof *running);
    FUZZ_CHECK(running != NULL);
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        FUZZ_CHECK(j->cur <= j->nstages);
        for (size_t s = 0; s < j->nstages; s++) {
            stage_t *st = &j->stages[s];
            size_t done = 0;
            FUZZ_CHECK(st->ndone <= st->ntasks);
            for (size_t t = 0; t < st->ntasks; t++) {
                task_t *tk = &st->tasks[t];
                done += tk->state == T_DONE;
                if (tk->state != T_RUNNING) continue;
                FUZZ_CHECK(j->state == JOB_RUNNING);
                FUZZ_CHECK(tk->worker >= 0 && (size_t)tk->worker < c->nworkers);
                FUZZ_CHECK(c->workers[tk->worker].alive);
                running[tk->worker]++;
            }
            FUZZ_CHECK(st->ndone <= done);
        }
    }
    for (size_t w = 0; w < c->nworkers; w++)
        if (c->workers[w].alive) {
            if (c->workers[w].inflight != running[w])
                fprintf(stderr, "worker %s: %u in flight, %u tasks running on it\n",
                        c->workers[w].id, c->workers[w].inflight, running[w]);
            FUZZ_CHECK(c->workers[w].inflight == running[w]);
        }
    free(running);
}

/* Back to the state every input starts from. */
static void reset(void)
{
    coord_t *c = s_coord;
    while (c->njobs) {
        job_t *j = c->jobs[c->njobs - 1];
        coord_job_finish(c, j, JOB_CANCELLED, "fuzz input ended");
        coord_job_remove(c, j);
    }
    for (int p = NWORKERS; p < NPEERS; p++) {
        int w = coord_worker_find(c, s_peer[p]);
        if (w >= 0) coord_worker_lost(c, w, "fuzz input ended");
    }
    c->next_job = 0;
    c->next_attempt = 0;
    c->meta_dirty = 1;
    FUZZ_CHECK(coord_poll(c, 0) == 0);
    clear_pending();
    /* a stranger that registered left a dead entry: start afresh now
     * and then, so that the registry stays small */
    if (c->nworkers > 32) {
        coord_destroy(&s_coord);
        start();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    for (int p = 0; p < NWORKERS; p++) register_worker(p);
    turn();
    size_t i = 0;
    while (i + 3 <= size) {
        uint8_t op = data[i];
        size_t n = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
        i += 3;
        if (n > size - i) n = size - i;
        if (op >= 0xF0) answer(op & 3, !(op & 4), data + i, n);
        else deliver(op % NPEERS, data + i, n);
        i += n;
        turn();
        check_model();
    }
    check_ping();
    turn();
    check_model();
    reset();
    return 0;
}
