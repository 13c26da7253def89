/* jobrecord.c: the coordinator's journal records, written and read back
 * side by side: each coord_save_* encoder sits next to the load_*
 * decoder of the same record, so a field added to one is seen in the
 * other. The records are messages of proto/journal.proto under these
 * keys (key order is replay order):
 *   meta                         next job number, reserved attempt numbers
 *   job/<id>                     the job: spec, files, metrics, classes
 *   job/<id>/log/<n>             one log line each, appended
 *   job/<id>/s/<stage>           a stage: state, phase, planner blob
 *                                (rewritten on a change of those, not
 *                                on a task's result: see load_task)
 *   job/<id>/t/<stage>/<task>    a task of the stage's current phase
 * Saving only queues into the journal's open batch; the loop commits it
 * before it sends anything that depends on it. */
#include "coord_internal.h"
#include "journal.pb-c.h"
#include "log.h"
#include "stages.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void coord_save_meta(coord_t *c)
{
    Mlops__Meta m = MLOPS__META__INIT;
    m.next_job = c->next_job;
    /* the high-water mark, not the counter: attempts up to it may be out
     * before the commit that would journal their tasks */
    m.next_attempt = c->attempt_reserved > c->next_attempt ? c->attempt_reserved : c->next_attempt;
    c->attempt_saved = m.next_attempt;
    uint8_t buf[64];
    size_t n = mlops__meta__pack(&m, buf);
    journal_put(c->journal, "meta", buf, n);
}

/* The counters a restart continues from. */
static int load_meta(coord_t *c, const void *data, size_t len)
{
    Mlops__Meta *m = mlops__meta__unpack(NULL, len, data);
    if (!m) return -1;
    c->next_job = m->next_job;
    /* every attempt handed out so far is at most the journalled mark
     * (coord_save_meta): new ones start above it, so a result of an
     * assignment sent before a crash never matches a new attempt */
    c->next_attempt = m->next_attempt;
    c->attempt_reserved = c->attempt_saved = c->attempt_durable = m->next_attempt;
    mlops__meta__free_unpacked(m, NULL);
    return 0;
}

void coord_save_log(coord_t *c, job_t *j)
{
    for (; j->nlog_saved < j->nlog; j->nlog_saved++) {
        char key[96];
        snprintf(key, sizeof key, "job/%s/log/%08zu", j->id, j->nlog_saved);
        journal_put(c->journal, key, j->log[j->nlog_saved], strlen(j->log[j->nlog_saved]));
    }
}

void coord_save_job(coord_t *c, job_t *j)
{
    Mlops__JobRecord r = MLOPS__JOB_RECORD__INIT;
    r.id = j->id;
    r.name = j->name ? j->name : "";
    r.state = (uint32_t)j->state;
    r.error = j->error ? j->error : "";
    r.spec_yaml.data = (uint8_t *)j->spec_yaml;
    r.spec_yaml.len = j->spec_len;
    r.spec_name = j->spec_name ? j->spec_name : "";
    r.idem_key = j->idem_key ? j->idem_key : "";
    r.submitted = j->submitted;
    r.finished = j->finished;
    r.cur_stage = (uint32_t)j->cur;
    r.uploaded = j->uploaded;
    r.model = j->model ? j->model : "";
    r.registered = j->registered ? j->registered : "";
    r.owner = j->owner;
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
        /* read in place: a re-plan after a restart checks it is the same file */
        files[i].local = j->files[i].local != 0;
        files[i].dev = j->files[i].dev;
        files[i].ino = j->files[i].ino;
        files[i].mtime_ns = j->files[i].mtime_ns;
        fp[i] = &files[i];
    }
    r.n_files = j->nfiles;
    r.files = fp;
    for (size_t i = 0; i < j->nmetrics; i++) {
        mlops__jmetric__init(&ms[i]);
        ms[i].name = j->metrics[i].name;
        ms[i].value = j->metrics[i].value;
        ms[i].stage_rank = j->metrics[i].rank;
        mp[i] = &ms[i];
    }
    r.n_metrics = j->nmetrics;
    r.metrics = mp;
    r.n_classes = j->nclasses;
    r.classes = j->classes;
    r.n_train_loss = j->ntrain_loss;
    r.train_loss = j->train_loss;
    coord_save_log(c, j);
    r.nlog = (uint32_t)j->nlog; /* informative: replay counts the lines */
    size_t n = mlops__job_record__get_packed_size(&r);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf) {
        mlops__job_record__pack(&r, buf);
        char key[64];
        snprintf(key, sizeof key, "job/%s", j->id);
        journal_put_take(c->journal, key, buf, n);
    }
out:
    free(files);
    free(fp);
    free(ms);
    free(mp);
    j->dirty = 0;
}

/* A job record; the job is rebuilt from its spec, its stages from the
 * records that follow it in key order. -1 if unreadable. */
static int load_job(coord_t *c, const char *key, const void *data, size_t len)
{
    Mlops__JobRecord *r = mlops__job_record__unpack(NULL, len, data);
    if (!r) {
        LOG_E("journal record %s is unreadable; skipping that job", key);
        return -1;
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
    j->idem_key = *r->idem_key ? strdup(r->idem_key) : NULL;
    j->submitted = r->submitted;
    j->finished = r->finished;
    j->cur = r->cur_stage;
    j->uploaded = r->uploaded;
    j->model = *r->model ? strdup(r->model) : NULL;
    j->registered = r->registered && *r->registered ? strdup(r->registered) : NULL;
    snprintf(j->owner, sizeof j->owner, "%s", r->owner ? r->owner : "");
    j->files = calloc(r->n_files ? r->n_files : 1, sizeof *j->files);
    j->nfiles = r->n_files;
    for (size_t i = 0; i < r->n_files; i++) {
        j->files[i].role = strdup(r->files[i]->role);
        j->files[i].name = strdup(r->files[i]->name);
        j->files[i].path = strdup(r->files[i]->path);
        j->files[i].size = j->files[i].received = r->files[i]->size;
        j->files[i].fd = -1;
        j->files[i].local = r->files[i]->local;
        j->files[i].dev = r->files[i]->dev;
        j->files[i].ino = r->files[i]->ino;
        j->files[i].mtime_ns = r->files[i]->mtime_ns;
    }
    for (size_t i = 0; i < r->n_metrics; i++) {
        j->metric_rank = r->metrics[i]->stage_rank;
        job_set_metric(j, r->metrics[i]->name, r->metrics[i]->value);
    }
    j->metric_rank = 0;
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
    coord_job_add(c, j);
    return 0;
}

void coord_save_stage(coord_t *c, job_t *j, size_t s)
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
    /* the current phase's done tasks are counted from their records at
     * replay, so a result need not rewrite this record */
    r.tasks_done_total = st->done_total >= st->ndone ? st->done_total - (uint32_t)st->ndone : 0;
    r.progress_in_tasks = 1;
    r.tasks_total_all = st->total_all;
    r.outkeys = st->outsfx;
    size_t n = mlops__stage_record__get_packed_size(&r);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return;
    mlops__stage_record__pack(&r, buf);
    char key[64];
    snprintf(key, sizeof key, "job/%s/s/%03zu", j->id, s);
    journal_put_take(c->journal, key, buf, n);
    st->dirty = 0;
}

typedef struct {
    coord_t *c;
    int bad;
    /* stages whose record predates progress_in_tasks: their count is whole */
    const stage_t **whole;
    size_t nwhole;
} replay_t;

static int load_stage(replay_t *rp, job_t *j, size_t s, const void *data, size_t len)
{
    Mlops__StageRecord *r = mlops__stage_record__unpack(NULL, len, data);
    if (!r) return -1;
    stage_t *st = &j->stages[s];
    st->state = (int)r->state;
    st->phase = r->phase;
    st->started = r->started;
    st->seconds = r->seconds;
    uint32_t total_all = r->tasks_total_all;
    stage_set_tasks(st, r->ntasks, r->kind);
    st->total_all = total_all;
    st->done_total = r->tasks_done_total;
    if (!r->progress_in_tasks) {
        const stage_t **w = realloc(rp->whole, (rp->nwhole + 1) * sizeof *w);
        if (w) {
            rp->whole = w;
            w[rp->nwhole++] = st;
        }
    }
    if (r->outkeys && *r->outkeys) stage_set_output_keys(j, st, r->outkeys);
    stage_rt_drop(st);
    free(st->blob);
    st->blob = NULL;
    st->blob_len = r->state_blob.len;
    if (r->state_blob.len) {
        st->blob = malloc(r->state_blob.len);
        memcpy(st->blob, r->state_blob.data, r->state_blob.len);
    }
    st->dirty = 0;
    mlops__stage_record__free_unpacked(r, NULL);
    if (st->ops == &stage_cv) stage_cv_replayed(j, st); /* the search's best values into the spec */
    if (st->ops == &stage_profile) stage_profile_replayed(j, st); /* an older layout: re-planned */
    return 0;
}

void coord_save_task(coord_t *c, job_t *j, size_t s, size_t t)
{
    task_t *tk = &j->stages[s].tasks[t];
    Mlops__TaskRecord r = MLOPS__TASK_RECORD__INIT;
    r.state = (uint32_t)tk->state;
    r.attempt = tk->attempt;
    r.tries = tk->tries;
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
    if (buf != stackbuf) journal_put_take(c->journal, key, buf, n); /* a result: no second copy */
    else journal_put(c->journal, key, buf, n);
}

static int count_whole(const replay_t *rp, const stage_t *st)
{
    for (size_t i = 0; i < rp->nwhole; i++)
        if (rp->whole[i] == st) return 1;
    return 0;
}

static int load_task(replay_t *rp, job_t *j, size_t s, size_t t, const void *data, size_t len)
{
    stage_t *st = &j->stages[s];
    Mlops__TaskRecord *r = mlops__task_record__unpack(NULL, len, data);
    if (!r) return -1;
    if (r->phase == st->phase) {
        task_t *tk = &st->tasks[t];
        tk->state = r->state == T_DONE ? T_DONE : (r->state == T_FAILED ? T_FAILED : T_PENDING);
        if (tk->state == T_DONE && !count_whole(rp, st)) st->done_total++;
        tk->attempt = r->attempt;
        tk->tries = r->tries;
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
static int replay_cb(const char *key, const void *data, size_t len, void *arg)
{
    replay_t *rp = arg;
    coord_t *c = rp->c;
    if (!strcmp(key, "meta")) {
        if (load_meta(c, data, len) != 0) rp->bad++;
        return 0;
    }
    if (!strncmp(key, "reg/", 4)) {
        if (coord_registry_replay(c, key, data, len) != 0) {
            LOG_E("journal record %s is unreadable; skipping it", key);
            rp->bad++;
        }
        return 0;
    }
    if (strncmp(key, "job/", 4)) return 0;
    const char *rest = key + 4;
    const char *slash = strchr(rest, '/');
    if (!slash) {
        if (load_job(c, key, data, len) != 0) rp->bad++;
        return 0;
    }
    char jid[16];
    size_t jl = (size_t)(slash - rest);
    if (jl >= sizeof jid) return 0;
    memcpy(jid, rest, jl);
    jid[jl] = 0;
    job_t *j = coord_job_find(c, jid);
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
        if (load_stage(rp, j, s, data, len) != 0) rp->bad++;
        return 0;
    }
    if (!strncmp(slash, "/t/", 3)) {
        char *end;
        size_t s = strtoul(slash + 3, &end, 10);
        if (*end != '/' || s >= j->nstages) return 0;
        size_t t = strtoul(end + 1, NULL, 10);
        stage_t *st = &j->stages[s];
        if (t >= st->ntasks) return 0;
        if (load_task(rp, j, s, t, data, len) != 0) rp->bad++;
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
                else if (j->state == JOB_RUNNING && st->state == ST_RUNNING && tk->state == T_PENDING) {
                    /* a phase that waits for a stage stays held until it
                     * is done (coord_job_advance below) */
                    st->held = !planner_phase_ready(j, st);
                    if (!st->held) coord_stage_enqueue(st, (uint32_t)t);
                } else if ((j->state == JOB_RUNNING || j->state == JOB_SUCCEEDED) && st->state == ST_DONE &&
                           tk->state == T_PENDING) {
                    /* a finished stage's task re-running for a lost shard
                     * (coord_recompute): queued again too, else its
                     * consumer, told the producer is pending, waits for
                     * it for ever */
                    coord_stage_enqueue(st, (uint32_t)t);
                }
            }
        }
        if (j->state == JOB_QUEUED) {
            coord_job_start(c, j);
        } else if (j->state == JOB_RUNNING) {
            char err[1024] = "";
            if ((j->spec && (j->spec->has_predict || j->spec->has_drift) && coord_registry_pin(c, j, 0, err, sizeof err) != 0) ||
                (j->spec && j->spec->has_promote &&
                 coord_registry_pin_champion(c, j, 0, err, sizeof err) != 0)) {
                coord_job_finish(c, j, JOB_FAILED, err);
                continue;
            }
            /* every stage's state is journalled: several may have been
             * running; complete those whose tasks are all done, then start
             * every pending stage that is ready (cur_stage is only kept) */
            char where[256] = "";
            for (size_t s = 0, o = 0; s < j->nstages && o < sizeof where; s++)
                if (j->stages[s].state == ST_RUNNING)
                    o += (size_t)snprintf(where + o, sizeof where - o, "%s%s", o ? ", " : "", j->stages[s].name);
            job_logf(j, "coordinator restarted: resuming at stage %s", where[0] ? where : "(next ready)");
            for (size_t s = 0; s < j->nstages && j->state == JOB_RUNNING; s++) {
                stage_t *st = &j->stages[s];
                if (st->state == ST_RUNNING && st->ndone == st->ntasks) coord_stage_complete(c, j, s);
            }
            coord_job_advance(c, j);
        }
    }
}


int coord_replay(coord_t *c)
{
    replay_t rp = {c, 0, NULL, 0};
    journal_foreach(c->journal, "", replay_cb, &rp);
    free(rp.whole);
    coord_registry_collect(c);
    replay_finish(c);
    return rp.bad;
}
