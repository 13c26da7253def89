/* coord.c: the coordinator server loop. See coord.h and model.h.
 *
 * One thread, one ROUTER socket. Each loop iteration: receive and handle
 * every waiting message, dispatch ready tasks, send heartbeats and expire
 * silent workers, then commit the journal batch (one fsync) and only then
 * send the replies and assignments queued in the outbox — so nothing is
 * acknowledged before it is durable. */
#include "coord.h"
#include "err.h"
#include "journal.h"
#include "journal.pb-c.h"
#include "jsonw.h"
#include "log.h"
#include "jobmodel.h"
#include "stages.h"
#include "transport.h"
#include "wire.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRIES 4
#define MAX_HOLDERS 8

typedef struct {
    char id[16];
    char *name;
    zframe_t *identity;
    char *endpoint;
    uint32_t slots;
    uint32_t inflight;
    uint64_t tasks_done;
    uint64_t shards;
    int alive;
    int64_t last_seen, last_sent;
    uint32_t pid;
} worker_t;

typedef struct {
    int n;
    int w[MAX_HOLDERS];
} holders_t;

typedef struct {
    zframe_t *identity;
    zframe_t *frame;
} outmsg_t;

struct coord {
    coord_config_t cfg;
    char *data_dir;
    zsock_t *router;
    char *endpoint;
    journal_t *journal;
    worker_t *workers;
    size_t nworkers, wcap;
    zhashx_t *by_identity; /* identity hex -> worker index + 1 */
    zhashx_t *shards;      /* shard key -> holders_t */
    job_t **jobs;
    size_t njobs, jcap;
    uint64_t next_job, next_attempt;
    int meta_dirty;
    outmsg_t *out;
    size_t nout, outcap;
    int64_t hb_ms;
    uint64_t bad_frames;
    int stop;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void iso_time(double t, char *buf, size_t n)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *job_state_name(int s)
{
    static const char *n[] = {"uploading", "queued", "running", "succeeded", "failed", "cancelled"};
    return s >= 0 && s <= JOB_CANCELLED ? n[s] : "?";
}

const char *stage_state_name(int s)
{
    static const char *n[] = {"pending", "running", "done", "failed", "cancelled"};
    return s >= 0 && s <= ST_CANCELLED ? n[s] : "?";
}

/* ------------------------------------------------------------------ */
/* outbox: messages are sent after the journal commit                  */

static void outbox_add(coord_t *c, zframe_t *identity, envelope_t *env)
{
    if (c->nout == c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 256;
        outmsg_t *o = realloc(c->out, cap * sizeof *o);
        if (!o) return;
        c->out = o;
        c->outcap = cap;
    }
    size_t len = mlops__envelope__get_packed_size(env);
    zframe_t *f = zframe_new(NULL, len);
    if (!f) return;
    mlops__envelope__pack(env, zframe_data(f));
    c->out[c->nout].identity = zframe_dup(identity);
    c->out[c->nout].frame = f;
    c->nout++;
}

static void outbox_flush(coord_t *c)
{
    for (size_t i = 0; i < c->nout; i++) {
        outmsg_t *m = &c->out[i];
        /* a ROUTER drops messages to peers that are gone: never blocks */
        if (zframe_send(&m->identity, c->router, ZFRAME_MORE) == 0) zframe_send(&m->frame, c->router, 0);
        zframe_destroy(&m->identity);
        zframe_destroy(&m->frame);
    }
    c->nout = 0;
}

static void reply_error(coord_t *c, zframe_t *identity, uint64_t seq, Mlops__ErrorCode code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void reply_error(coord_t *c, zframe_t *identity, uint64_t seq, Mlops__ErrorCode code,
                        const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    envelope_t env;
    Mlops__Error e;
    wire_error_body(&env, &e, seq, code, text);
    outbox_add(c, identity, &env);
}

static void reply_json(coord_t *c, zframe_t *identity, uint64_t seq, const char *json)
{
    envelope_t env;
    wire_init(&env, seq);
    Mlops__Reply r = MLOPS__REPLY__INIT;
    r.json = (char *)json;
    env.body_case = MLOPS__ENVELOPE__BODY_REPLY;
    env.reply = &r;
    outbox_add(c, identity, &env);
}

static void reply_ack(coord_t *c, zframe_t *identity, uint64_t seq)
{
    envelope_t env;
    wire_init(&env, seq);
    Mlops__Ack a = MLOPS__ACK__INIT;
    env.body_case = MLOPS__ENVELOPE__BODY_ACK;
    env.ack = &a;
    outbox_add(c, identity, &env);
}

/* ------------------------------------------------------------------ */
/* journal records                                                     */

static void save_meta(coord_t *c)
{
    Mlops__Meta m = MLOPS__META__INIT;
    m.next_job = c->next_job;
    m.next_attempt = c->next_attempt;
    uint8_t buf[64];
    size_t n = mlops__meta__pack(&m, buf);
    journal_put(c->journal, "meta", buf, n);
}

static void save_job(coord_t *c, job_t *j)
{
    Mlops__JobRecord r = MLOPS__JOB_RECORD__INIT;
    r.id = j->id;
    r.name = j->name ? j->name : "";
    r.state = (uint32_t)j->state;
    r.error = j->error ? j->error : "";
    r.spec_yaml.data = (uint8_t *)j->spec_yaml;
    r.spec_yaml.len = j->spec_len;
    r.spec_name = j->spec_name ? j->spec_name : "";
    r.submitted = j->submitted;
    r.finished = j->finished;
    r.cur_stage = (uint32_t)j->cur;
    r.uploaded = j->uploaded;
    r.model = j->model ? j->model : "";
    Mlops__JFile *files = calloc(j->nfiles ? j->nfiles : 1, sizeof *files);
    Mlops__JFile **fp = calloc(j->nfiles ? j->nfiles : 1, sizeof *fp);
    Mlops__JMetric *ms = calloc(j->nmetrics ? j->nmetrics : 1, sizeof *ms);
    Mlops__JMetric **mp = calloc(j->nmetrics ? j->nmetrics : 1, sizeof *mp);
    if (!files || !fp || !ms || !mp) goto out;
    for (size_t i = 0; i < j->nfiles; i++) {
        mlops__jfile__init(&files[i]);
        files[i].role = j->files[i].role;
        files[i].name = j->files[i].name;
        files[i].size = j->files[i].size;
        files[i].path = j->files[i].path;
        fp[i] = &files[i];
    }
    r.n_files = j->nfiles;
    r.files = fp;
    for (size_t i = 0; i < j->nmetrics; i++) {
        mlops__jmetric__init(&ms[i]);
        ms[i].name = j->metrics[i].name;
        ms[i].value = j->metrics[i].value;
        mp[i] = &ms[i];
    }
    r.n_metrics = j->nmetrics;
    r.metrics = mp;
    r.n_classes = j->nclasses;
    r.classes = j->classes;
    r.n_train_loss = j->ntrain_loss;
    r.train_loss = j->train_loss;
    /* log lines not yet journalled */
    for (; j->nlog_saved < j->nlog; j->nlog_saved++) {
        char key[96];
        snprintf(key, sizeof key, "job/%s/log/%08zu", j->id, j->nlog_saved);
        journal_put(c->journal, key, j->log[j->nlog_saved], strlen(j->log[j->nlog_saved]));
    }
    r.nlog = (uint32_t)j->nlog;
    size_t n = mlops__job_record__get_packed_size(&r);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf) {
        mlops__job_record__pack(&r, buf);
        char key[64];
        snprintf(key, sizeof key, "job/%s", j->id);
        journal_put(c->journal, key, buf, n);
        free(buf);
    }
out:
    free(files);
    free(fp);
    free(ms);
    free(mp);
    j->dirty = 0;
}

static void save_stage(coord_t *c, job_t *j, size_t s)
{
    stage_t *st = &j->stages[s];
    Mlops__StageRecord r = MLOPS__STAGE_RECORD__INIT;
    r.state = (uint32_t)st->state;
    r.phase = st->phase;
    r.ntasks = (uint32_t)st->ntasks;
    r.kind = st->kind;
    r.state_blob.data = st->blob;
    r.state_blob.len = st->blob_len;
    r.started = st->started;
    r.seconds = st->seconds;
    r.tasks_done_total = st->done_total;
    r.tasks_total_all = st->total_all;
    r.outkeys = st->outsfx;
    size_t n = mlops__stage_record__get_packed_size(&r);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return;
    mlops__stage_record__pack(&r, buf);
    char key[64];
    snprintf(key, sizeof key, "job/%s/s/%03zu", j->id, s);
    journal_put(c->journal, key, buf, n);
    free(buf);
    st->dirty = 0;
}

static void save_task(coord_t *c, job_t *j, size_t s, size_t t)
{
    task_t *tk = &j->stages[s].tasks[t];
    Mlops__TaskRecord r = MLOPS__TASK_RECORD__INIT;
    r.state = (uint32_t)tk->state;
    r.attempt = tk->attempt;
    r.phase = j->stages[s].phase;
    r.output_key = tk->output_key ? tk->output_key : "";
    r.rows = tk->rows;
    r.result.data = tk->result;
    r.result.len = tk->result_len;
    r.worker = (tk->worker >= 0 && (size_t)tk->worker < c->nworkers) ? c->workers[tk->worker].id : "";
    Mlops__JMetric ms[16], *mp[16];
    size_t nm = tk->nmetrics < 16 ? tk->nmetrics : 16;
    for (size_t i = 0; i < nm; i++) {
        mlops__jmetric__init(&ms[i]);
        ms[i].name = tk->metrics[i].name;
        ms[i].value = tk->metrics[i].value;
        mp[i] = &ms[i];
    }
    r.n_metrics = nm;
    r.metrics = mp;
    size_t n = mlops__task_record__get_packed_size(&r);
    uint8_t stackbuf[512];
    uint8_t *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return;
    mlops__task_record__pack(&r, buf);
    char key[80];
    snprintf(key, sizeof key, "job/%s/t/%03zu/%08zu", j->id, s, t);
    journal_put(c->journal, key, buf, n);
    if (buf != stackbuf) free(buf);
}

/* ------------------------------------------------------------------ */
/* model helpers used by the planner                                   */

static void task_clear(task_t *t)
{
    free(t->output_key);
    free(t->result);
    for (size_t i = 0; i < t->nmetrics; i++) free(t->metrics[i].name);
    free(t->metrics);
    memset(t, 0, sizeof *t);
    t->worker = -1;
}

static void queue_push(stage_t *st, uint32_t t)
{
    if (st->tasks[t].queued) return;
    if (st->qtail == st->qcap) {
        if (st->qhead > 0) {
            memmove(st->queue, st->queue + st->qhead, (st->qtail - st->qhead) * sizeof *st->queue);
            st->qtail -= st->qhead;
            st->qhead = 0;
        }
        if (st->qtail == st->qcap) {
            size_t cap = st->qcap ? st->qcap * 2 : 64;
            uint32_t *q = realloc(st->queue, cap * sizeof *q);
            if (!q) return;
            st->queue = q;
            st->qcap = cap;
        }
    }
    st->queue[st->qtail++] = t;
    st->tasks[t].queued = 1;
}

int stage_set_tasks(stage_t *st, size_t ntasks, const char *kind)
{
    for (size_t i = 0; i < st->ntasks; i++) task_clear(&st->tasks[i]);
    free(st->tasks);
    st->tasks = calloc(ntasks ? ntasks : 1, sizeof *st->tasks);
    if (!st->tasks) return MLOPS_ENOMEM;
    st->ntasks = ntasks;
    for (size_t i = 0; i < ntasks; i++) st->tasks[i].worker = -1;
    st->ndone = 0;
    st->qhead = st->qtail = 0;
    st->total_all += (uint32_t)ntasks;
    snprintf(st->kind, sizeof st->kind, "%s", kind);
    st->outsfx[0] = 0;
    st->dirty = 1;
    return 0;
}

void stage_set_output_keys(job_t *j, stage_t *st, const char *suffix)
{
    snprintf(st->outsfx, sizeof st->outsfx, "%s", suffix ? suffix : "");
    for (size_t t = 0; t < st->ntasks; t++) {
        free(st->tasks[t].output_key);
        st->tasks[t].output_key = NULL;
        if (!suffix) continue;
        char key[160];
        snprintf(key, sizeof key, "%s/%s%s%zu", j->id, st->name, suffix, t);
        st->tasks[t].output_key = strdup(key);
    }
}

void job_set_metric(job_t *j, const char *name, double v)
{
    for (size_t i = 0; i < j->nmetrics; i++)
        if (!strcmp(j->metrics[i].name, name)) {
            j->metrics[i].value = v;
            j->dirty = 1;
            return;
        }
    metric_t *m = realloc(j->metrics, (j->nmetrics + 1) * sizeof *m);
    if (!m) return;
    j->metrics = m;
    m[j->nmetrics].name = strdup(name);
    m[j->nmetrics].value = v;
    if (m[j->nmetrics].name) j->nmetrics++;
    j->dirty = 1;
}

double job_metric(const job_t *j, const char *name, double dflt)
{
    for (size_t i = 0; i < j->nmetrics; i++)
        if (!strcmp(j->metrics[i].name, name)) return j->metrics[i].value;
    return dflt;
}

void job_logf(job_t *j, const char *fmt, ...)
{
    char text[900], line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000), text);
    char **l = realloc(j->log, (j->nlog + 1) * sizeof *l);
    if (!l) return;
    j->log = l;
    l[j->nlog] = strdup(line);
    if (l[j->nlog]) j->nlog++;
    j->dirty = 1;
    LOG_I("job %s: %s", j->id, text);
}

void job_set_classes(job_t *j, char **labels, size_t n)
{
    for (size_t i = 0; i < j->nclasses; i++) free(j->classes[i]);
    free(j->classes);
    j->classes = labels;
    j->nclasses = n;
    j->dirty = 1;
}

size_t job_nclasses(const job_t *j) { return j->nclasses; }
const char *job_class(const job_t *j, size_t i) { return i < j->nclasses ? j->classes[i] : NULL; }

const char *job_file_path(const job_t *j, const char *role)
{
    for (size_t i = 0; i < j->nfiles; i++)
        if (!strcmp(j->files[i].role, role)) return j->files[i].path;
    return NULL;
}

const char *job_file_name(const job_t *j, const char *role)
{
    for (size_t i = 0; i < j->nfiles; i++)
        if (!strcmp(j->files[i].role, role)) return j->files[i].name;
    return NULL;
}

stage_t *job_stage(job_t *j, const char *name)
{
    for (size_t i = 0; i < j->nstages; i++)
        if (!strcmp(j->stages[i].name, name)) return &j->stages[i];
    return NULL;
}

const char *task_metric(const task_t *t, const char *name, double *v)
{
    for (size_t i = 0; i < t->nmetrics; i++)
        if (!strcmp(t->metrics[i].name, name)) {
            *v = t->metrics[i].value;
            return t->metrics[i].name;
        }
    return NULL;
}

static void job_free(job_t *j)
{
    if (!j) return;
    for (size_t s = 0; s < j->nstages; s++) {
        stage_t *st = &j->stages[s];
        for (size_t t = 0; t < st->ntasks; t++) task_clear(&st->tasks[t]);
        free(st->tasks);
        free(st->queue);
        free(st->blob);
    }
    free(j->stages);
    for (size_t i = 0; i < j->nfiles; i++) {
        if (j->files[i].fd >= 0) close(j->files[i].fd);
        free(j->files[i].role);
        free(j->files[i].name);
        free(j->files[i].path);
    }
    free(j->files);
    for (size_t i = 0; i < j->nmetrics; i++) free(j->metrics[i].name);
    free(j->metrics);
    for (size_t i = 0; i < j->nlog; i++) free(j->log[i]);
    free(j->log);
    free(j->train_loss);
    for (size_t i = 0; i < j->nclasses; i++) free(j->classes[i]);
    free(j->classes);
    free(j->name);
    free(j->error);
    free(j->spec_yaml);
    free(j->spec_name);
    free(j->model);
    planner_job_free(j);
    mlops_jobspec_destroy(&j->spec);
    free(j);
}

static job_t *find_job(coord_t *c, const char *id)
{
    for (size_t i = 0; i < c->njobs; i++)
        if (!strcmp(c->jobs[i]->id, id)) return c->jobs[i];
    return NULL;
}

static int add_job(coord_t *c, job_t *j)
{
    if (c->njobs == c->jcap) {
        size_t cap = c->jcap ? c->jcap * 2 : 16;
        job_t **a = realloc(c->jobs, cap * sizeof *a);
        if (!a) return MLOPS_ENOMEM;
        c->jobs = a;
        c->jcap = cap;
    }
    c->jobs[c->njobs++] = j;
    return 0;
}

/* ------------------------------------------------------------------ */
/* shard directory                                                     */

static void holders_free(void **item)
{
    free(*item);
    *item = NULL;
}

static void shard_add(coord_t *c, const char *key, int w)
{
    holders_t *h = zhashx_lookup(c->shards, key);
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h) return;
        zhashx_insert(c->shards, key, h);
    }
    for (int i = 0; i < h->n; i++)
        if (h->w[i] == w) return;
    if (h->n < MAX_HOLDERS) {
        h->w[h->n++] = w;
        c->workers[w].shards++;
    }
}

static int shard_holder(coord_t *c, const char *key)
{
    holders_t *h = zhashx_lookup(c->shards, key);
    if (!h) return -1;
    for (int i = 0; i < h->n; i++)
        if (c->workers[h->w[i]].alive) return h->w[i];
    return -1;
}

static void shard_forget_worker(coord_t *c, int w)
{
    for (holders_t *h = zhashx_first(c->shards); h; h = zhashx_next(c->shards)) {
        for (int i = 0; i < h->n; i++)
            if (h->w[i] == w) {
                h->w[i] = h->w[--h->n];
                break;
            }
    }
    c->workers[w].shards = 0;
}

/* ------------------------------------------------------------------ */
/* job life cycle                                                      */

static void stage_start(coord_t *c, job_t *j, size_t s);

static void job_finish(coord_t *c, job_t *j, int state, const char *error)
{
    if (j->state >= JOB_SUCCEEDED) return;
    j->state = state;
    j->finished = now_s();
    free(j->error);
    j->error = error ? strdup(error) : NULL;
    for (size_t s = 0; s < j->nstages; s++) {
        stage_t *st = &j->stages[s];
        if (st->state == ST_RUNNING || st->state == ST_PENDING) {
            st->state = state == JOB_CANCELLED ? ST_CANCELLED : (st->state == ST_RUNNING ? ST_FAILED : ST_PENDING);
            if (st->started > 0) st->seconds = now_s() - st->started;
            st->dirty = 1;
        }
        for (size_t t = 0; t < st->ntasks; t++) {
            task_t *tk = &st->tasks[t];
            if (tk->state == T_RUNNING && tk->worker >= 0) {
                if (c->workers[tk->worker].inflight) c->workers[tk->worker].inflight--;
                tk->worker = -1;
                tk->attempt = 0; /* late results are ignored */
            }
            if (tk->state == T_PENDING || tk->state == T_RUNNING) tk->state = T_FAILED;
            tk->queued = 0;
        }
        st->qhead = st->qtail = 0;
    }
    if (error) job_logf(j, "job %s: %s", job_state_name(state), error);
    else job_logf(j, "job %s in %.3f s", job_state_name(state), j->finished - j->submitted);
    j->dirty = 1;
}

static void stage_complete(coord_t *c, job_t *j, size_t s)
{
    stage_t *st = &j->stages[s];
    for (;;) {
        char err[1024] = "";
        int rc = st->ops->phase_done(j, st, err, sizeof err);
        if (rc < 0) {
            st->state = ST_FAILED;
            st->seconds = now_s() - st->started;
            st->dirty = 1;
            job_finish(c, j, JOB_FAILED, err[0] ? err : mlops_strerror(rc));
            return;
        }
        if (rc == 1) {
            LOG_D("job %s stage %s phase %u: %zu %s tasks", j->id, st->name, st->phase, st->ntasks,
                  st->kind);
            st->dirty = 1;
            if (st->ntasks == 0) continue;
            for (size_t t = 0; t < st->ntasks; t++) queue_push(st, (uint32_t)t);
            return;
        }
        break;
    }
    st->state = ST_DONE;
    st->seconds = now_s() - st->started;
    st->dirty = 1;
    job_logf(j, "stage %s done in %.3f s", st->name, st->seconds);
    if (s + 1 < j->nstages) {
        j->cur = s + 1;
        j->dirty = 1;
        stage_start(c, j, s + 1);
    } else {
        job_finish(c, j, JOB_SUCCEEDED, NULL);
    }
}

static void stage_start(coord_t *c, job_t *j, size_t s)
{
    stage_t *st = &j->stages[s];
    st->state = ST_RUNNING;
    st->phase = 0;
    st->started = now_s();
    st->dirty = 1;
    char err[1024] = "";
    int rc = st->ops->start(j, st, err, sizeof err);
    if (rc < 0) {
        st->state = ST_FAILED;
        st->dirty = 1;
        job_finish(c, j, JOB_FAILED, err[0] ? err : mlops_strerror(rc));
        return;
    }
    job_logf(j, "stage %s started: %zu %s tasks", st->name, st->ntasks, st->kind);
    if (st->ntasks == 0) {
        stage_complete(c, j, s);
        return;
    }
    for (size_t t = 0; t < st->ntasks; t++) queue_push(st, (uint32_t)t);
}

static void job_start(coord_t *c, job_t *j)
{
    char err[1024] = "";
    if (planner_build(j, err, sizeof err) != 0) {
        job_finish(c, j, JOB_FAILED, err);
        return;
    }
    j->state = JOB_RUNNING;
    j->cur = 0;
    j->dirty = 1;
    job_logf(j, "job started: %zu stages", j->nstages);
    if (j->nstages == 0) {
        job_finish(c, j, JOB_SUCCEEDED, NULL);
        return;
    }
    stage_start(c, j, 0);
}

/* Reset the task that produced `key` so it runs again. 0 if a producer is
 * (or already was) queued, -1 if the key cannot be recomputed. */
static int recompute(coord_t *c, const char *key)
{
    char jid[16], sname[40];
    size_t t;
    const char *p1 = strchr(key, '/');
    if (!p1 || p1 - key >= (long)sizeof jid) return -1;
    memcpy(jid, key, (size_t)(p1 - key));
    jid[p1 - key] = 0;
    const char *p2 = strrchr(key, '/');
    if (p2 == p1) return -1;
    size_t sl = (size_t)(p2 - p1 - 1);
    if (sl >= sizeof sname) return -1;
    memcpy(sname, p1 + 1, sl);
    sname[sl] = 0;
    char *end;
    t = strtoul(p2 + 1, &end, 10);
    if (*end) return -1;
    job_t *j = find_job(c, jid);
    if (!j || j->state == JOB_FAILED || j->state == JOB_CANCELLED) return -1;
    char *dot = strchr(sname, '.');
    if (dot) *dot = 0;
    stage_t *st = job_stage(j, sname);
    if (!st || t >= st->ntasks || !st->tasks[t].output_key || strcmp(st->tasks[t].output_key, key))
        return -1;
    task_t *tk = &st->tasks[t];
    if (tk->state == T_PENDING || tk->state == T_RUNNING) return 0;
    if (tk->state != T_DONE) return -1;
    tk->state = T_PENDING;
    if (st->state == ST_RUNNING && st->ndone) st->ndone--;
    queue_push(st, (uint32_t)t);
    job_logf(j, "shard %s lost: re-running %s task %zu", key, st->name, t);
    save_task(c, j, (size_t)(st - j->stages), t);
    return 0;
}

/* ------------------------------------------------------------------ */
/* workers                                                             */

static void identity_key(zframe_t *id, char *out, size_t n)
{
    size_t len = zframe_size(id);
    const uint8_t *d = zframe_data(id);
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < n; i++) o += (size_t)snprintf(out + o, n - o, "%02x", d[i]);
    out[o] = 0;
}

static int worker_by_identity(coord_t *c, zframe_t *id)
{
    char key[600];
    identity_key(id, key, sizeof key);
    void *v = zhashx_lookup(c->by_identity, key);
    return v ? (int)((intptr_t)v - 1) : -1;
}

static void worker_lost(coord_t *c, int w, const char *why)
{
    worker_t *wk = &c->workers[w];
    if (!wk->alive) return;
    wk->alive = 0;
    LOG_W("worker %s (%s) %s: re-queueing its tasks", wk->id, wk->name, why);
    char key[600];
    identity_key(wk->identity, key, sizeof key);
    zhashx_delete(c->by_identity, key);
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        for (size_t s = 0; s < j->nstages; s++) {
            stage_t *st = &j->stages[s];
            for (size_t t = 0; t < st->ntasks; t++) {
                task_t *tk = &st->tasks[t];
                if (tk->state == T_RUNNING && tk->worker == w) {
                    tk->state = T_PENDING;
                    tk->worker = -1;
                    tk->tries++;
                    queue_push(st, (uint32_t)t);
                    job_logf(j, "worker %s %s: %s task %zu re-queued", wk->id, why, st->name, t);
                }
            }
        }
    }
    wk->inflight = 0;
    shard_forget_worker(c, w);
}

static void on_register(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__Register *r = env->register_;
    int w = worker_by_identity(c, id);
    if (w < 0) {
        if (c->nworkers == c->wcap) {
            size_t cap = c->wcap ? c->wcap * 2 : 16;
            worker_t *a = realloc(c->workers, cap * sizeof *a);
            if (!a) return;
            c->workers = a;
            c->wcap = cap;
        }
        w = (int)c->nworkers++;
        worker_t *wk = &c->workers[w];
        memset(wk, 0, sizeof *wk);
        snprintf(wk->id, sizeof wk->id, "w%d", w + 1);
        wk->identity = zframe_dup(id);
        char key[600];
        identity_key(id, key, sizeof key);
        zhashx_insert(c->by_identity, key, (void *)(intptr_t)(w + 1));
    } else {
        /* the same connection registering again: forget its old state */
        worker_t *wk = &c->workers[w];
        if (wk->alive) {
            worker_lost(c, w, "re-registered");
            char key[600];
            identity_key(id, key, sizeof key);
            zhashx_insert(c->by_identity, key, (void *)(intptr_t)(w + 1));
        }
    }
    worker_t *wk = &c->workers[w];
    free(wk->name);
    free(wk->endpoint);
    wk->name = strdup(r->name && *r->name ? r->name : wk->id);
    wk->endpoint = strdup(r->store_endpoint ? r->store_endpoint : "");
    wk->slots = r->slots ? (r->slots > 256 ? 256 : r->slots) : 1;
    wk->pid = r->pid;
    wk->alive = 1;
    wk->inflight = 0;
    wk->last_seen = zclock_mono();
    for (size_t i = 0; i < r->n_held; i++) shard_add(c, r->held[i], w);
    LOG_I("worker %s registered: name=%s slots=%u store=%s shards=%zu", wk->id, wk->name, wk->slots,
          wk->endpoint, r->n_held);
    envelope_t rep;
    wire_init(&rep, env->seq);
    Mlops__RegisterOk ok = MLOPS__REGISTER_OK__INIT;
    ok.worker_id = wk->id;
    ok.heartbeat_ms = (uint32_t)c->hb_ms;
    rep.body_case = MLOPS__ENVELOPE__BODY_REGISTER_OK;
    rep.register_ok = &ok;
    outbox_add(c, id, &rep);
    wk->last_sent = zclock_mono();
}

static void on_result(coord_t *c, int w, envelope_t *env)
{
    Mlops__TaskResult *r = env->task_result;
    worker_t *wk = &c->workers[w];
    job_t *j = r->job_id ? find_job(c, r->job_id) : NULL;
    if (!j || r->stage_idx >= j->nstages) {
        LOG_W("result for unknown job/stage %s/%u from %s ignored", r->job_id ? r->job_id : "?",
              r->stage_idx, wk->id);
        return;
    }
    stage_t *st = &j->stages[r->stage_idx];
    if (r->task_idx >= st->ntasks) return;
    task_t *tk = &st->tasks[r->task_idx];
    if (tk->state != T_RUNNING || tk->attempt != r->attempt || tk->worker != w) {
        LOG_D("late or duplicate result %s/%s/%u attempt %u ignored", j->id, st->name, r->task_idx,
              r->attempt);
        return;
    }
    if (wk->inflight) wk->inflight--;
    tk->worker = -1;
    if (!r->ok) {
        if (r->retry && ++tk->tries < MAX_TRIES) {
            LOG_W("job %s %s task %u failed (%s), retrying", j->id, st->name, r->task_idx,
                  r->error ? r->error : "");
            tk->state = T_PENDING;
            queue_push(st, r->task_idx);
            return;
        }
        tk->state = T_FAILED;
        save_task(c, j, r->stage_idx, r->task_idx);
        if (st->state == ST_RUNNING) st->state = ST_FAILED;
        st->seconds = now_s() - st->started;
        st->dirty = 1;
        job_finish(c, j, JOB_FAILED, r->error && *r->error ? r->error : "task failed");
        return;
    }
    wk->tasks_done++;
    tk->state = T_DONE;
    tk->seconds = r->seconds;
    free(tk->result);
    tk->result = NULL;
    tk->result_len = 0;
    if (r->result.len) {
        tk->result = malloc(r->result.len);
        if (tk->result) {
            memcpy(tk->result, r->result.data, r->result.len);
            tk->result_len = r->result.len;
        }
    }
    for (size_t i = 0; i < tk->nmetrics; i++) free(tk->metrics[i].name);
    free(tk->metrics);
    tk->metrics = NULL;
    tk->nmetrics = 0;
    if (r->n_metrics) {
        tk->metrics = calloc(r->n_metrics, sizeof *tk->metrics);
        for (size_t i = 0; tk->metrics && i < r->n_metrics; i++) {
            tk->metrics[i].name = strdup(r->metrics[i]->name ? r->metrics[i]->name : "");
            tk->metrics[i].value = r->metrics[i]->value;
            tk->nmetrics++;
            if (!strcmp(tk->metrics[i].name, "rows")) tk->rows = (uint64_t)r->metrics[i]->value;
        }
    }
    for (size_t i = 0; i < r->n_outputs; i++) shard_add(c, r->outputs[i], w);
    save_task(c, j, r->stage_idx, r->task_idx);
    if (j->state != JOB_RUNNING) return;
    if (st->state != ST_RUNNING) return; /* a recomputed shard of a finished stage */
    st->ndone++;
    st->done_total++;
    st->dirty = 1;
    if (st->ndone == st->ntasks) stage_complete(c, j, r->stage_idx);
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

static int pick_worker(coord_t *c, const stage_ops_t *ops, char **inputs, size_t ninputs)
{
    int best = -1;
    int best_local = -1;
    uint32_t best_load = UINT32_MAX;
    for (size_t w = 0; w < c->nworkers; w++) {
        worker_t *wk = &c->workers[w];
        uint32_t cap = wk->slots * (uint32_t)(ops->prefetch > 0 ? ops->prefetch : 1);
        if (!wk->alive || wk->inflight >= cap) continue;
        int local = 0;
        for (size_t i = 0; i < ninputs; i++) {
            holders_t *h = zhashx_lookup(c->shards, inputs[i]);
            for (int k = 0; h && k < h->n; k++)
                if (h->w[k] == (int)w) local++;
        }
        /* load as a fraction of capacity, so bigger workers get more */
        uint32_t load = (uint32_t)((uint64_t)wk->inflight * 1024 / wk->slots);
        if (local > best_local || (local == best_local && load < best_load)) {
            best = (int)w;
            best_local = local;
            best_load = load;
        }
    }
    return best;
}

static int any_capacity(coord_t *c)
{
    for (size_t w = 0; w < c->nworkers; w++)
        if (c->workers[w].alive && c->workers[w].inflight < c->workers[w].slots * 512) return 1;
    return 0;
}

static void free_args(task_args_t *a)
{
    free(a->args);
    for (size_t i = 0; i < a->ninputs; i++) free(a->inputs[i]);
    free(a->inputs);
    memset(a, 0, sizeof *a);
}

/* Forget the stage's running tasks, releasing their workers' slots. */
static void stage_abandon_running(coord_t *c, stage_t *st)
{
    for (size_t t = 0; t < st->ntasks; t++) {
        task_t *tk = &st->tasks[t];
        if (tk->state != T_RUNNING) continue;
        if (tk->worker >= 0 && (size_t)tk->worker < c->nworkers && c->workers[tk->worker].inflight)
            c->workers[tk->worker].inflight--;
        tk->worker = -1;
        tk->state = T_PENDING;
        tk->attempt = 0;
    }
}

/* Dispatch what can run from one stage. Returns 0 when no worker has
 * room for this stage's tasks. */
static int dispatch_stage(coord_t *c, job_t *j, size_t s)
{
    stage_t *st = &j->stages[s];
    size_t blocked = 0;
    while (st->qhead < st->qtail) {
        uint32_t t = st->queue[st->qhead];
        task_t *tk = &st->tasks[t];
        if (tk->state != T_PENDING) {
            st->qhead++;
            tk->queued = 0;
            continue;
        }
        task_args_t a = {0};
        char err[1024] = "";
        int rc = st->ops->task_args(j, st, t, &a, err, sizeof err);
        if (rc != 0) {
            free_args(&a);
            job_finish(c, j, JOB_FAILED, err[0] ? err : mlops_strerror(rc));
            return 1;
        }
        /* every input must have a live holder */
        int missing = 0;
        Mlops__ShardRef *refs = calloc(a.ninputs ? a.ninputs : 1, sizeof *refs);
        Mlops__ShardRef **rp = calloc(a.ninputs ? a.ninputs : 1, sizeof *rp);
        for (size_t i = 0; refs && rp && i < a.ninputs; i++) {
            int h = shard_holder(c, a.inputs[i]);
            if (h < 0) {
                missing++;
                if (recompute(c, a.inputs[i]) != 0) {
                    char msg[1024] = "";
                    int rrc = -1;
                    if (st->ops->restart && st->state == ST_RUNNING) {
                        /* an earlier phase's output: re-arm the stage. Its
                         * running tasks are dropped: give their workers'
                         * slots back (their late results are ignored). */
                        stage_abandon_running(c, st);
                        rrc = st->ops->restart(j, st, msg, sizeof msg);
                        if (rrc == 0) {
                            st->dirty = 1;
                            for (size_t k = 0; k < st->ntasks; k++) queue_push(st, (uint32_t)k);
                        }
                    }
                    if (rrc != 0) {
                        if (!msg[0]) snprintf(msg, sizeof msg, "shard %s is lost and cannot be recomputed", a.inputs[i]);
                        job_finish(c, j, JOB_FAILED, msg);
                    }
                    free(refs);
                    free(rp);
                    free_args(&a);
                    return 1;
                }
                continue;
            }
            mlops__shard_ref__init(&refs[i]);
            refs[i].key = a.inputs[i];
            refs[i].endpoint = c->workers[h].endpoint;
            refs[i].worker_id = c->workers[h].id;
            rp[i] = &refs[i];
        }
        if (missing) {
            /* wait for the producer: move to the back of the queue */
            free(refs);
            free(rp);
            free_args(&a);
            st->qhead++;
            tk->queued = 0;
            queue_push(st, t);
            if (++blocked >= st->qtail - st->qhead) return 1;
            continue;
        }
        int w = pick_worker(c, st->ops, a.inputs, a.ninputs);
        if (w < 0) {
            free(refs);
            free(rp);
            free_args(&a);
            return 0;
        }
        worker_t *wk = &c->workers[w];
        tk->attempt = (uint32_t)(++c->next_attempt);
        c->meta_dirty = 1;
        tk->state = T_RUNNING;
        tk->worker = w;
        wk->inflight++;
        st->qhead++;
        tk->queued = 0;
        envelope_t env;
        wire_init(&env, 0);
        Mlops__TaskAssign ta = MLOPS__TASK_ASSIGN__INIT;
        ta.job_id = j->id;
        ta.stage_idx = (uint32_t)s;
        ta.task_idx = t;
        ta.attempt = tk->attempt;
        ta.kind = st->kind;
        ta.spec.data = (uint8_t *)j->spec_yaml;
        ta.spec.len = j->spec_len;
        ta.args.data = a.args;
        ta.args.len = a.args_len;
        ta.n_inputs = a.ninputs;
        ta.inputs = rp;
        ta.output_key = tk->output_key ? tk->output_key : "";
        env.body_case = MLOPS__ENVELOPE__BODY_TASK_ASSIGN;
        env.task_assign = &ta;
        outbox_add(c, wk->identity, &env);
        wk->last_sent = zclock_mono();
        save_task(c, j, s, t);
        LOG_D("assign %s/%s/%u (%s) attempt %u -> %s", j->id, st->name, t, st->kind, tk->attempt,
              wk->id);
        free(refs);
        free(rp);
        free_args(&a);
    }
    return 1;
}

static void dispatch(coord_t *c)
{
    if (!any_capacity(c)) return;
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        if (j->state != JOB_RUNNING && j->state != JOB_SUCCEEDED) continue;
        for (size_t s = 0; s < j->nstages; s++) {
            if (j->stages[s].qhead == j->stages[s].qtail) continue;
            dispatch_stage(c, j, s);
            if (j->state != JOB_RUNNING && j->state != JOB_SUCCEEDED) break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* submit and upload                                                   */

static void on_submit(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__SubmitBegin *sb = env->submit_begin;
    char err[1024] = "";
    const char *fname = sb->spec_name && *sb->spec_name ? sb->spec_name : "job.yaml";
    mlops_jobspec_t *spec = NULL;
    if (mlops_jobspec_parse((const char *)sb->spec_yaml.data, sb->spec_yaml.len, fname, &spec, err,
                            sizeof err) != 0) {
        reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_JOB, "%s", err);
        return;
    }
    if (sb->n_files > 16) {
        mlops_jobspec_destroy(&spec);
        reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, "too many input files (%zu)",
                    sb->n_files);
        return;
    }
    job_t *j = calloc(1, sizeof *j);
    if (!j) return;
    snprintf(j->id, sizeof j->id, "j%06llu", (unsigned long long)++c->next_job);
    c->meta_dirty = 1;
    j->spec = spec;
    j->name = strdup(planner_spec_name(spec));
    j->spec_yaml = malloc(sb->spec_yaml.len + 1);
    memcpy(j->spec_yaml, sb->spec_yaml.data, sb->spec_yaml.len);
    j->spec_yaml[sb->spec_yaml.len] = 0;
    j->spec_len = sb->spec_yaml.len;
    j->spec_name = strdup(fname);
    j->submitted = now_s();
    j->state = JOB_UPLOADING;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jobs", c->data_dir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/jobs/%s", c->data_dir, j->id);
    mkdir(dir, 0755);
    j->files = calloc(sb->n_files ? sb->n_files : 1, sizeof *j->files);
    j->nfiles = sb->n_files;
    for (size_t i = 0; i < sb->n_files; i++) {
        jfile_t *f = &j->files[i];
        f->role = strdup(sb->files[i]->role ? sb->files[i]->role : "input");
        f->name = strdup(sb->files[i]->name ? sb->files[i]->name : "input");
        f->size = sb->files[i]->size;
        char path[4200];
        snprintf(path, sizeof path, "%s/f%zu", dir, i);
        f->path = strdup(path);
        f->fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        if (f->fd < 0) {
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__INTERNAL, "%s: cannot create: %s", path,
                        strerror(errno));
            job_free(j);
            return;
        }
    }
    add_job(c, j);
    job_logf(j, "job submitted from %s (%zu input files)", fname, j->nfiles);
    int all_empty = 1;
    for (size_t i = 0; i < j->nfiles; i++)
        if (j->files[i].size) all_empty = 0;
    if (all_empty) {
        for (size_t i = 0; i < j->nfiles; i++) {
            close(j->files[i].fd);
            j->files[i].fd = -1;
        }
        j->uploaded = 1;
        j->state = JOB_QUEUED;
        job_start(c, j);
    }
    j->dirty = 1;
    envelope_t rep;
    wire_init(&rep, env->seq);
    Mlops__JobAck ack = MLOPS__JOB_ACK__INIT;
    ack.job_id = j->id;
    rep.body_case = MLOPS__ENVELOPE__BODY_JOB_ACK;
    rep.job_ack = &ack;
    outbox_add(c, id, &rep);
}

static void on_upload(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__UploadChunk *u = env->upload_chunk;
    job_t *j = u->job_id ? find_job(c, u->job_id) : NULL;
    if (!j) {
        reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_FOUND, "no job %s", u->job_id ? u->job_id : "");
        return;
    }
    if (j->state != JOB_UPLOADING || u->file_idx >= j->nfiles) {
        reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                    "job %s is not accepting uploads for file %u", j->id, u->file_idx);
        return;
    }
    jfile_t *f = &j->files[u->file_idx];
    if (u->offset != f->received || f->received + u->data.len > f->size) {
        reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                    "upload of %s out of order: offset %llu, expected %llu", f->name,
                    (unsigned long long)u->offset, (unsigned long long)f->received);
        return;
    }
    size_t off = 0;
    while (off < u->data.len) {
        ssize_t n = pwrite(f->fd, u->data.data + off, u->data.len - off, (off_t)(u->offset + off));
        if (n < 0) {
            if (errno == EINTR) continue;
            char msg[600];
            snprintf(msg, sizeof msg, "%s: write failed: %s", f->path, strerror(errno));
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__INTERNAL, "%s", msg);
            job_finish(c, j, JOB_FAILED, msg);
            return;
        }
        off += (size_t)n;
    }
    f->received += u->data.len;
    if (f->received == f->size && f->fd >= 0) {
        fsync(f->fd);
        close(f->fd);
        f->fd = -1;
    }
    int done = 1;
    for (size_t i = 0; i < j->nfiles; i++)
        if (j->files[i].received != j->files[i].size) done = 0;
    if (done) {
        j->uploaded = 1;
        j->state = JOB_QUEUED;
        j->dirty = 1;
        job_logf(j, "upload complete");
        job_start(c, j);
    }
    reply_ack(c, id, env->seq);
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

static void json_job_summary(jsonw_t *w, job_t *j)
{
    char ts[32];
    jw_obj(w);
    jw_kstr(w, "job", j->id);
    jw_kstr(w, "name", j->name);
    jw_kstr(w, "state", job_state_name(j->state));
    iso_time(j->submitted, ts, sizeof ts);
    jw_kstr(w, "submitted", ts);
    size_t done = 0;
    for (size_t s = 0; s < j->nstages; s++)
        if (j->stages[s].state == ST_DONE) done++;
    jw_kint(w, "stages_done", (int64_t)done);
    jw_kint(w, "stages_total", (int64_t)j->nstages);
    jw_obj_end(w);
}

static void json_job_full(jsonw_t *w, job_t *j)
{
    char ts[32];
    jw_obj(w);
    jw_kstr(w, "job", j->id);
    jw_kstr(w, "name", j->name);
    jw_kstr(w, "state", job_state_name(j->state));
    jw_kstr(w, "error", j->error);
    iso_time(j->submitted, ts, sizeof ts);
    jw_kstr(w, "submitted", ts);
    if (j->finished > 0) {
        iso_time(j->finished, ts, sizeof ts);
        jw_kstr(w, "finished", ts);
    } else {
        jw_key(w, "finished");
        jw_null(w);
    }
    jw_knum(w, "seconds", (j->finished > 0 ? j->finished : now_s()) - j->submitted);
    jw_key(w, "stages");
    jw_arr(w);
    for (size_t s = 0; s < j->nstages; s++) {
        stage_t *st = &j->stages[s];
        jw_obj(w);
        jw_kstr(w, "name", st->name);
        jw_kstr(w, "state", stage_state_name(st->state));
        /* progress across phases: done over all tasks planned so far */
        jw_kint(w, "tasks_total", (int64_t)st->total_all);
        jw_kint(w, "tasks_done", (int64_t)st->done_total);
        jw_kint(w, "phase", (int64_t)st->phase);
        double secs = st->state == ST_RUNNING ? now_s() - st->started : st->seconds;
        jw_knum(w, "seconds", secs);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    jw_key(w, "metrics");
    jw_obj(w);
    for (size_t i = 0; i < j->nmetrics; i++) {
        jw_key(w, j->metrics[i].name);
        double v = j->metrics[i].value;
        if (v == floor(v) && fabs(v) < 9e15) jw_int(w, (int64_t)v);
        else jw_num(w, v);
    }
    if (j->ntrain_loss) {
        jw_key(w, "train_loss");
        jw_arr(w);
        for (size_t i = 0; i < j->ntrain_loss; i++) jw_num(w, j->train_loss[i]);
        jw_arr_end(w);
    }
    if (j->model) jw_kstr(w, "model", j->model);
    jw_obj_end(w);
    jw_kstr(w, "model", j->model);
    jw_obj_end(w);
}

/* Remove a finished job for good: its journal records, its uploaded
 * inputs, its entries in the shard directory, and (DropJob) the shards in
 * every worker's store. */
static void job_remove(coord_t *c, job_t *j)
{
    char key[64], prefix[64];
    snprintf(key, sizeof key, "job/%s", j->id);
    snprintf(prefix, sizeof prefix, "job/%s/", j->id);
    journal_del(c->journal, key);
    journal_del_prefix(c->journal, prefix);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/jobs/%s", c->data_dir, j->id);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char path[4500];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
        rmdir(dir);
    }
    /* the shard directory: keys "<job>/..." */
    snprintf(prefix, sizeof prefix, "%s/", j->id);
    size_t pl = strlen(prefix);
    zlistx_t *gone = zlistx_new();
    for (holders_t *h = zhashx_first(c->shards); h; h = zhashx_next(c->shards)) {
        const char *k = zhashx_cursor(c->shards);
        if (strncmp(k, prefix, pl)) continue;
        for (int i = 0; i < h->n; i++)
            if (c->workers[h->w[i]].shards) c->workers[h->w[i]].shards--;
        zlistx_add_end(gone, (void *)k);
    }
    for (const char *k = zlistx_first(gone); k; k = zlistx_next(gone)) zhashx_delete(c->shards, k);
    zlistx_destroy(&gone);
    for (size_t w = 0; w < c->nworkers; w++) {
        if (!c->workers[w].alive) continue;
        envelope_t env;
        wire_init(&env, 0);
        Mlops__DropJob dj = MLOPS__DROP_JOB__INIT;
        dj.job_id = j->id;
        env.body_case = MLOPS__ENVELOPE__BODY_DROP_JOB;
        env.drop_job = &dj;
        outbox_add(c, c->workers[w].identity, &env);
    }
    LOG_I("job %s removed", j->id);
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i] == j) {
            memmove(&c->jobs[i], &c->jobs[i + 1], (c->njobs - i - 1) * sizeof *c->jobs);
            c->njobs--;
            break;
        }
    job_free(j);
}

static void on_query(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__Query *q = env->query;
    const char *verb = q->verb ? q->verb : "";
    jsonw_t w;
    jw_init(&w);
    job_t *j = NULL;
    int needs_job = !strcmp(verb, "status") || !strcmp(verb, "result") || !strcmp(verb, "logs") ||
                    !strcmp(verb, "cancel") || !strcmp(verb, "export-plan") || !strcmp(verb, "rm");
    if (needs_job) {
        j = q->job_id ? find_job(c, q->job_id) : NULL;
        if (!j) {
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_FOUND, "no job '%s'",
                        q->job_id ? q->job_id : "");
            return;
        }
    }
    if (!strcmp(verb, "ping")) {
        jw_obj(&w);
        jw_kbool(&w, "ok", 1);
        jw_obj_end(&w);
    } else if (!strcmp(verb, "jobs")) {
        jw_obj(&w);
        jw_key(&w, "jobs");
        jw_arr(&w);
        for (size_t i = 0; i < c->njobs; i++) json_job_summary(&w, c->jobs[i]);
        jw_arr_end(&w);
        jw_obj_end(&w);
    } else if (!strcmp(verb, "status") || !strcmp(verb, "result")) {
        json_job_full(&w, j);
    } else if (!strcmp(verb, "workers")) {
        int64_t now = zclock_mono();
        jw_obj(&w);
        jw_key(&w, "workers");
        jw_arr(&w);
        for (size_t i = 0; i < c->nworkers; i++) {
            worker_t *wk = &c->workers[i];
            jw_obj(&w);
            jw_kstr(&w, "id", wk->id);
            jw_kstr(&w, "name", wk->name);
            jw_kstr(&w, "endpoint", wk->endpoint);
            jw_kstr(&w, "state", wk->alive ? "alive" : "dead");
            jw_kint(&w, "slots", wk->slots);
            jw_kint(&w, "running", wk->inflight);
            jw_kint(&w, "tasks_done", (int64_t)wk->tasks_done);
            jw_kint(&w, "shards", (int64_t)wk->shards);
            jw_kint(&w, "pid", wk->pid);
            jw_kint(&w, "last_seen_ms", now - wk->last_seen);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_obj_end(&w);
    } else if (!strcmp(verb, "logs")) {
        jw_obj(&w);
        jw_kstr(&w, "job", j->id);
        jw_key(&w, "lines");
        jw_arr(&w);
        for (size_t i = 0; i < j->nlog; i++) jw_str(&w, j->log[i]);
        jw_arr_end(&w);
        jw_obj_end(&w);
    } else if (!strcmp(verb, "cancel")) {
        if (j->state < JOB_SUCCEEDED) job_finish(c, j, JOB_CANCELLED, "cancelled by user");
        jw_obj(&w);
        jw_kstr(&w, "job", j->id);
        jw_kstr(&w, "state", job_state_name(j->state));
        jw_obj_end(&w);
    } else if (!strcmp(verb, "rm")) {
        if (j->state < JOB_SUCCEEDED) {
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                        "job %s is %s: cancel it first (mlopsctl cancel %s)", j->id, job_state_name(j->state),
                        j->id);
            jw_free(&w);
            return;
        }
        char jid[16];
        snprintf(jid, sizeof jid, "%s", j->id);
        job_remove(c, j);
        jw_obj(&w);
        jw_kstr(&w, "job", jid);
        jw_kbool(&w, "removed", 1);
        jw_obj_end(&w);
    } else if (!strcmp(verb, "export-plan")) {
        const char *sname = q->n_args ? q->args[0] : "";
        stage_t *st = job_stage(j, sname);
        if (!st) {
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_FOUND, "job %s has no stage '%s'",
                        j->id, sname);
            jw_free(&w);
            return;
        }
        if (st->state != ST_DONE || strcmp(st->outsfx, "/")) {
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                        "stage '%s' of job %s has no output to export (state %s)", sname, j->id,
                        stage_state_name(st->state));
            jw_free(&w);
            return;
        }
        jw_obj(&w);
        jw_kstr(&w, "job", j->id);
        jw_kstr(&w, "stage", st->name);
        jw_kstr(&w, "kind", planner_output_kind(j, st));
        jw_key(&w, "classes");
        jw_arr(&w);
        for (size_t i = 0; i < j->nclasses; i++) jw_str(&w, j->classes[i]);
        jw_arr_end(&w);
        jw_key(&w, "shards");
        jw_arr(&w);
        int lost = 0;
        for (size_t t = 0; t < st->ntasks; t++) {
            task_t *tk = &st->tasks[t];
            int h = tk->output_key ? shard_holder(c, tk->output_key) : -1;
            if (h < 0 && tk->output_key) {
                lost++;
                recompute(c, tk->output_key);
            }
            jw_obj(&w);
            jw_kint(&w, "index", (int64_t)t);
            jw_kstr(&w, "key", tk->output_key);
            jw_kstr(&w, "endpoint", h >= 0 ? c->workers[h].endpoint : NULL);
            jw_kint(&w, "rows", (int64_t)tk->rows);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_obj_end(&w);
        if (lost) {
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_FOUND,
                        "%d shard(s) of stage '%s' were lost with their worker and are being "
                        "recomputed; try again shortly",
                        lost, sname);
            jw_free(&w);
            return;
        }
    } else {
        reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, "unknown query '%s'", verb);
        jw_free(&w);
        return;
    }
    const char *text = jw_text(&w);
    if (text) reply_json(c, id, env->seq, text);
    else reply_error(c, id, env->seq, MLOPS__ERROR_CODE__INTERNAL, "out of memory");
    jw_free(&w);
}

/* ------------------------------------------------------------------ */
/* the loop                                                            */

static void handle(coord_t *c)
{
    char err[512];
    zframe_t *id = NULL;
    envelope_t *env = wire_recv(c->router, &id, err, sizeof err);
    if (!env) {
        c->bad_frames++;
        LOG_W("bad frame from a peer (%s); %llu so far", err, (unsigned long long)c->bad_frames);
        if (id) reply_error(c, id, 0, MLOPS__ERROR_CODE__BAD_FRAME, "%s", err);
        zframe_destroy(&id);
        return;
    }
    int w = worker_by_identity(c, id);
    if (w >= 0) c->workers[w].last_seen = zclock_mono();
    switch (env->body_case) {
    case MLOPS__ENVELOPE__BODY_REGISTER: on_register(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_HEARTBEAT:
    case MLOPS__ENVELOPE__BODY_TASK_RESULT:
        if (w < 0 || !c->workers[w].alive) {
            reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_REGISTERED, "register first");
            break;
        }
        if (env->body_case == MLOPS__ENVELOPE__BODY_TASK_RESULT) on_result(c, w, env);
        break;
    case MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN: on_submit(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK: on_upload(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_QUERY: on_query(c, id, env); break;
    case MLOPS__ENVELOPE__BODY_ERROR:
        LOG_W("peer error: %s", env->error->message ? env->error->message : "");
        break;
    default:
        c->bad_frames++;
        reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, "unexpected %s",
                    wire_body_name(env));
    }
    wire_free(&env);
    zframe_destroy(&id);
}

static void heartbeat(coord_t *c)
{
    int64_t now = zclock_mono();
    for (size_t w = 0; w < c->nworkers; w++) {
        worker_t *wk = &c->workers[w];
        if (!wk->alive) continue;
        if (now - wk->last_seen > 3 * c->hb_ms) {
            worker_lost(c, (int)w, "expired (no heartbeat)");
            continue;
        }
        if (now - wk->last_sent >= c->hb_ms) {
            envelope_t env;
            wire_init(&env, 0);
            Mlops__Heartbeat hb = MLOPS__HEARTBEAT__INIT;
            env.body_case = MLOPS__ENVELOPE__BODY_HEARTBEAT;
            env.heartbeat = &hb;
            outbox_add(c, wk->identity, &env);
            wk->last_sent = now;
        }
    }
}

static void persist(coord_t *c)
{
    if (c->meta_dirty) {
        save_meta(c);
        c->meta_dirty = 0;
    }
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        for (size_t s = 0; s < j->nstages; s++)
            if (j->stages[s].dirty) save_stage(c, j, s);
        if (j->dirty || j->nlog_saved < j->nlog) save_job(c, j);
    }
    if (journal_commit(c->journal) != 0) {
        /* keep running: the batch stays queued and is retried */
        LOG_E("journal commit failed; holding %zu replies", c->nout);
        return;
    }
    outbox_flush(c);
}

int coord_run(coord_t *c)
{
    zpoller_t *poller = zpoller_new(c->router, NULL);
    if (!poller) return MLOPS_ENOMEM;
    LOG_I("coordinator serving on %s (heartbeat %lld ms)", c->endpoint, (long long)c->hb_ms);
    while (!c->stop && !zsys_interrupted) {
        void *which = zpoller_wait(poller, (int)(c->hb_ms / 2 > 0 ? c->hb_ms / 2 : 1));
        /* zpoller_terminated() is also true after a harmless EINTR: only
         * a real SIGINT/SIGTERM (zsys_interrupted) stops the coordinator */
        if (!which && zsys_interrupted) break;
        if (which == c->router) {
            /* drain everything waiting, bounded so heartbeats still go out */
            for (int n = 0; n < 10000; n++) {
                handle(c);
                if (!(zsock_events(c->router) & ZMQ_POLLIN)) break;
            }
        }
        heartbeat(c);
        dispatch(c);
        persist(c);
    }
    persist(c);
    zpoller_destroy(&poller);
    LOG_I("coordinator stopping");
    return 0;
}

void coord_stop(coord_t *c) { c->stop = 1; }
const char *coord_endpoint(const coord_t *c) { return c->endpoint; }

/* ------------------------------------------------------------------ */
/* replay                                                              */

typedef struct {
    coord_t *c;
    int bad;
} replay_t;

static int replay_cb(const char *key, const void *data, size_t len, void *arg)
{
    replay_t *rp = arg;
    coord_t *c = rp->c;
    if (!strcmp(key, "meta")) {
        Mlops__Meta *m = mlops__meta__unpack(NULL, len, data);
        if (!m) { rp->bad++; return 0; }
        c->next_job = m->next_job;
        /* leave a gap: results of attempts handed out before a crash but
         * never journalled must not match new attempts */
        c->next_attempt = m->next_attempt + 1000000;
        mlops__meta__free_unpacked(m, NULL);
        return 0;
    }
    if (strncmp(key, "job/", 4)) return 0;
    const char *rest = key + 4;
    const char *slash = strchr(rest, '/');
    if (!slash) {
        Mlops__JobRecord *r = mlops__job_record__unpack(NULL, len, data);
        if (!r) {
            LOG_E("journal record %s is unreadable; skipping that job", key);
            rp->bad++;
            return 0;
        }
        job_t *j = calloc(1, sizeof *j);
        snprintf(j->id, sizeof j->id, "%s", r->id);
        j->name = strdup(r->name);
        j->state = (int)r->state;
        j->error = *r->error ? strdup(r->error) : NULL;
        j->spec_yaml = malloc(r->spec_yaml.len + 1);
        memcpy(j->spec_yaml, r->spec_yaml.data, r->spec_yaml.len);
        j->spec_yaml[r->spec_yaml.len] = 0;
        j->spec_len = r->spec_yaml.len;
        j->spec_name = strdup(r->spec_name);
        j->submitted = r->submitted;
        j->finished = r->finished;
        j->cur = r->cur_stage;
        j->uploaded = r->uploaded;
        j->model = *r->model ? strdup(r->model) : NULL;
        j->files = calloc(r->n_files ? r->n_files : 1, sizeof *j->files);
        j->nfiles = r->n_files;
        for (size_t i = 0; i < r->n_files; i++) {
            j->files[i].role = strdup(r->files[i]->role);
            j->files[i].name = strdup(r->files[i]->name);
            j->files[i].path = strdup(r->files[i]->path);
            j->files[i].size = j->files[i].received = r->files[i]->size;
            j->files[i].fd = -1;
        }
        for (size_t i = 0; i < r->n_metrics; i++) job_set_metric(j, r->metrics[i]->name, r->metrics[i]->value);
        for (size_t i = 0; i < r->n_classes; i++) {
            char **a = realloc(j->classes, (j->nclasses + 1) * sizeof *a);
            if (!a) break;
            j->classes = a;
            a[j->nclasses++] = strdup(r->classes[i]);
        }
        if (r->n_train_loss) {
            j->train_loss = malloc(r->n_train_loss * sizeof(double));
            memcpy(j->train_loss, r->train_loss, r->n_train_loss * sizeof(double));
            j->ntrain_loss = r->n_train_loss;
        }
        mlops__job_record__free_unpacked(r, NULL);
        char err[1024] = "";
        if (mlops_jobspec_parse(j->spec_yaml, j->spec_len, j->spec_name, &j->spec, err, sizeof err) != 0 ||
            planner_build(j, err, sizeof err) != 0) {
            if (j->state < JOB_SUCCEEDED) {
                j->state = JOB_FAILED;
                j->error = strdup(err);
            }
        }
        if (j->state == JOB_UPLOADING) {
            j->state = JOB_FAILED;
            free(j->error);
            j->error = strdup("the coordinator restarted during the upload; submit again");
            j->dirty = 1;
        }
        add_job(c, j);
        return 0;
    }
    char jid[16];
    size_t jl = (size_t)(slash - rest);
    if (jl >= sizeof jid) return 0;
    memcpy(jid, rest, jl);
    jid[jl] = 0;
    job_t *j = find_job(c, jid);
    if (!j) return 0;
    if (!strncmp(slash, "/log/", 5)) {
        char **l = realloc(j->log, (j->nlog + 1) * sizeof *l);
        if (!l) return 0;
        j->log = l;
        l[j->nlog] = strndup(data, len);
        j->nlog++;
        j->nlog_saved = j->nlog;
        return 0;
    }
    if (!strncmp(slash, "/s/", 3)) {
        size_t s = strtoul(slash + 3, NULL, 10);
        if (s >= j->nstages) return 0;
        Mlops__StageRecord *r = mlops__stage_record__unpack(NULL, len, data);
        if (!r) { rp->bad++; return 0; }
        stage_t *st = &j->stages[s];
        st->state = (int)r->state;
        st->phase = r->phase;
        st->started = r->started;
        st->seconds = r->seconds;
        uint32_t total_all = r->tasks_total_all;
        stage_set_tasks(st, r->ntasks, r->kind);
        st->total_all = total_all;
        st->done_total = r->tasks_done_total;
        if (r->outkeys && *r->outkeys) stage_set_output_keys(j, st, r->outkeys);
        free(st->blob);
        st->blob = NULL;
        st->blob_len = r->state_blob.len;
        if (r->state_blob.len) {
            st->blob = malloc(r->state_blob.len);
            memcpy(st->blob, r->state_blob.data, r->state_blob.len);
        }
        st->dirty = 0;
        mlops__stage_record__free_unpacked(r, NULL);
        return 0;
    }
    if (!strncmp(slash, "/t/", 3)) {
        char *end;
        size_t s = strtoul(slash + 3, &end, 10);
        if (*end != '/' || s >= j->nstages) return 0;
        size_t t = strtoul(end + 1, NULL, 10);
        stage_t *st = &j->stages[s];
        if (t >= st->ntasks) return 0;
        Mlops__TaskRecord *r = mlops__task_record__unpack(NULL, len, data);
        if (!r) { rp->bad++; return 0; }
        if (r->phase == st->phase) {
            task_t *tk = &st->tasks[t];
            tk->state = r->state == T_DONE ? T_DONE : (r->state == T_FAILED ? T_FAILED : T_PENDING);
            tk->attempt = r->attempt;
            tk->rows = r->rows;
            if (*r->output_key) {
                free(tk->output_key);
                tk->output_key = strdup(r->output_key);
            }
            if (r->result.len) {
                tk->result = malloc(r->result.len);
                memcpy(tk->result, r->result.data, r->result.len);
                tk->result_len = r->result.len;
            }
            tk->metrics = calloc(r->n_metrics ? r->n_metrics : 1, sizeof *tk->metrics);
            for (size_t i = 0; i < r->n_metrics; i++) {
                tk->metrics[i].name = strdup(r->metrics[i]->name);
                tk->metrics[i].value = r->metrics[i]->value;
            }
            tk->nmetrics = r->n_metrics;
        }
        mlops__task_record__free_unpacked(r, NULL);
        return 0;
    }
    return 0;
}

static void replay_finish(coord_t *c)
{
    for (size_t i = 0; i < c->njobs; i++) {
        job_t *j = c->jobs[i];
        for (size_t s = 0; s < j->nstages; s++) {
            stage_t *st = &j->stages[s];
            st->ndone = 0;
            for (size_t t = 0; t < st->ntasks; t++) {
                task_t *tk = &st->tasks[t];
                if (tk->state == T_DONE) st->ndone++;
                else if (j->state == JOB_RUNNING && st->state == ST_RUNNING && tk->state == T_PENDING)
                    queue_push(st, (uint32_t)t);
            }
        }
        if (j->state == JOB_QUEUED) {
            job_start(c, j);
        } else if (j->state == JOB_RUNNING) {
            job_logf(j, "coordinator restarted: resuming at stage %s",
                     j->cur < j->nstages ? j->stages[j->cur].name : "?");
            if (j->cur < j->nstages) {
                stage_t *st = &j->stages[j->cur];
                if (st->state == ST_PENDING) stage_start(c, j, j->cur);
                else if (st->state == ST_RUNNING && st->ndone == st->ntasks) stage_complete(c, j, j->cur);
            }
        }
    }
}

static void on_interrupt(int sig)
{
    (void)sig;
    zsys_interrupted = 1;
    zctx_interrupted = 1;
}

coord_t *coord_new(const coord_config_t *cfg, char *err, size_t errlen)
{
    coord_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cfg = *cfg;
    c->hb_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    c->data_dir = strdup(cfg->data_dir);
    if (mkdir(c->data_dir, 0755) != 0 && errno != EEXIST) {
        mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot create data directory: %s", c->data_dir,
                     strerror(errno));
        coord_destroy(&c);
        return NULL;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/journal", c->data_dir);
    c->journal = journal_open(path, err, errlen);
    if (!c->journal) {
        coord_destroy(&c);
        return NULL;
    }
    c->by_identity = zhashx_new();
    c->shards = zhashx_new();
    zhashx_set_destructor(c->shards, holders_free);
    replay_t rp = {c, 0};
    journal_foreach(c->journal, "", replay_cb, &rp);
    if (rp.bad) LOG_W("journal: %d unreadable records skipped", rp.bad);
    if (c->njobs) LOG_I("journal replayed: %zu jobs", c->njobs);
    replay_finish(c);
    c->router = transport_router_bind(cfg->bind, cfg->advertise, &c->endpoint, err, errlen);
    if (!c->router) {
        coord_destroy(&c);
        return NULL;
    }
    /* the endpoint file lets `mlopsctl up --port 0` find an ephemeral port */
    snprintf(path, sizeof path, "%s/endpoint", c->data_dir);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%s\n", c->endpoint);
        fclose(f);
        rename(tmp, path);
    }
    zsys_handler_set(on_interrupt);
    persist(c);
    return c;
}

void coord_destroy(coord_t **pc)
{
    if (!pc || !*pc) return;
    coord_t *c = *pc;
    for (size_t i = 0; i < c->njobs; i++) job_free(c->jobs[i]);
    free(c->jobs);
    for (size_t w = 0; w < c->nworkers; w++) {
        zframe_destroy(&c->workers[w].identity);
        free(c->workers[w].name);
        free(c->workers[w].endpoint);
    }
    free(c->workers);
    for (size_t i = 0; i < c->nout; i++) {
        zframe_destroy(&c->out[i].identity);
        zframe_destroy(&c->out[i].frame);
    }
    free(c->out);
    zhashx_destroy(&c->by_identity);
    zhashx_destroy(&c->shards);
    zsock_destroy(&c->router);
    journal_close(&c->journal);
    free(c->endpoint);
    free(c->data_dir);
    free(c);
    *pc = NULL;
}
