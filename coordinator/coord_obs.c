/* coord_obs.c: see coord_obs.h. Labels are bounded: task kinds come from the
 * planner's fixed set, job states from jobmodel.h; job and worker ids
 * never become labels (the dashboard shows those). */
#include "coord_internal.h"
#include "err.h"
#include "log.h"
#include "token.h"
#include <stdio.h>
#include <string.h>

#define REFRESH_MS 250

static const double COMMIT_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,   1,     2.5};

static void h_metrics(void *arg, const char *path, const char *query, mlops_http_reply_t *rep)
{
    (void)path;
    (void)query;
    coord_t *c = arg;
    mlops_http_metrics(rep, c->obs.reg);
}

static const mlops_http_route_t ROUTES[] = {{.path = "/metrics", .fn = h_metrics}, {.path = NULL}};

static void write_addr(const char *dir, const char *file, const char *addr)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%s\n", addr);
    fclose(f);
    rename(tmp, path);
}

int coord_obs_start(coord_t *c, char *err, size_t errlen)
{
    coord_obs_t *o = &c->obs;
    o->reg = mlops_prom_new();
    if (!o->reg) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "metrics: out of memory");
    mlops_prom_t *r = o->reg;
    const double *sec = MLOPS_PROM_SECONDS;
    size_t nsec = MLOPS_PROM_NSECONDS;
    mlops_prom_build_info(r, "coordinator");
    o->jobs = mlops_prom_gauge(r, "mlops_coordinator_jobs", "Jobs in the job table by state.",
                               "state");
    o->submitted = mlops_prom_counter(r, "mlops_coordinator_jobs_submitted_total",
                                      "Jobs accepted by SubmitBegin.", NULL);
    o->dispatched = mlops_prom_counter(r, "mlops_coordinator_tasks_dispatched_total",
                                       "TaskAssign messages sent, by task kind.", "kind");
    o->done = mlops_prom_counter(r, "mlops_coordinator_tasks_done_total",
                                 "Task results accepted as done, by task kind.", "kind");
    o->retried = mlops_prom_counter(
        r, "mlops_coordinator_tasks_retried_total",
        "Tasks queued again after a retryable failure or a lost worker, by task kind.", "kind");
    o->handed_back = mlops_prom_counter(
        r, "mlops_coordinator_tasks_handed_back_total",
        "Tasks queued again, no try counted: their worker left (a drain), or an input went with a worker that left, by task kind.",
        "kind");
    o->failed = mlops_prom_counter(r, "mlops_coordinator_tasks_failed_total",
                                   "Tasks that failed for good (failing their job), by task kind.",
                                   "kind");
    o->duration = mlops_prom_histogram(r, "mlops_coordinator_task_duration_seconds",
                                       "Run time of done tasks as the worker measured it, by kind.",
                                       "kind", sec, nsec);
    o->workers_alive =
        mlops_prom_gauge(r, "mlops_coordinator_workers_alive", "Registered workers alive.", NULL);
    o->workers_known = mlops_prom_gauge(r, "mlops_coordinator_workers_known",
                                        "Workers ever registered, alive or not.", NULL);
    o->commit = mlops_prom_histogram(r, "mlops_coordinator_journal_commit_duration_seconds",
                                     "Time of one journal group commit (one fsync).", NULL,
                                     COMMIT_BUCKETS,
                                     sizeof COMMIT_BUCKETS / sizeof COMMIT_BUCKETS[0]);
    o->jrecords = mlops_prom_counter(r, "mlops_coordinator_journal_records_total",
                                     "Records (puts and deletes) in committed journal batches.", NULL);
    o->jbytes = mlops_prom_counter(r, "mlops_coordinator_journal_written_bytes_total",
                                   "Bytes (keys plus values) of the committed journal records.", NULL);
    o->jblocked = mlops_prom_counter(
        r, "mlops_coordinator_journal_blocked_seconds_total",
        "Time the loop waited for journal commits (the committer thread writes the rest beside it).",
        NULL);
    o->bad_frames = mlops_prom_counter(r, "mlops_coordinator_bad_frames_total",
                                       "Frames from peers that did not decode or were unexpected.",
                                       NULL);
    o->uploaded = mlops_prom_counter(r, "mlops_coordinator_uploaded_bytes_total",
                                     "Input bytes received in UploadChunk messages.", NULL);
    o->loop = mlops_prom_counter(r, "mlops_coordinator_loop_iterations_total",
                                 "Turns of the coordinator loop.", NULL);
    if (!c->cfg.metrics_listen) return 0;
    char token[256] = "";
    if (c->cfg.http_token_file &&
        mlops_token_load(c->cfg.http_token_file, token, sizeof token, err, errlen) != 0)
        return MLOPS_EINVAL;
    char e[512];
    o->http = mlops_httpd_new(c->cfg.metrics_listen, ROUTES, c, token, e, sizeof e);
    if (!o->http) return mlops_seterr(err, errlen, MLOPS_EIO, "--metrics-listen %s", e);
    write_addr(c->data_dir, "metrics.addr", mlops_httpd_addr(o->http));
    LOG_I("metrics on http://%s/metrics", mlops_httpd_addr(o->http));
    return 0;
}

void coord_obs_tick(coord_t *c)
{
    coord_obs_t *o = &c->obs;
    if (!o->reg) return;
    mlops_prom_add(o->loop, NULL, NULL, 1);
    uint64_t commits, records, bytes;
    journal_written(c->journal, &commits, &records, &bytes);
    if (records != o->jrecords_seen) {
        mlops_prom_add(o->jrecords, NULL, NULL, (double)(records - o->jrecords_seen));
        mlops_prom_add(o->jbytes, NULL, NULL, (double)(bytes - o->jbytes_seen));
        o->jrecords_seen = records;
        o->jbytes_seen = bytes;
    }
    if (c->jblocked_s > o->jblocked_seen) {
        mlops_prom_add(o->jblocked, NULL, NULL, c->jblocked_s - o->jblocked_seen);
        o->jblocked_seen = c->jblocked_s;
    }
    int64_t now = zclock_mono();
    if (now < o->next_refresh) return;
    o->next_refresh = now + REFRESH_MS;
    size_t by_state[8] = {0};
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i]->state >= 0 && c->jobs[i]->state < 8) by_state[c->jobs[i]->state]++;
    for (int s = 0; s < 8; s++) {
        const char *name = job_state_name(s);
        if (name && strcmp(name, "?")) mlops_prom_set(o->jobs, name, NULL, (double)by_state[s]);
    }
    size_t alive = 0;
    for (size_t w = 0; w < c->nworkers; w++) alive += c->workers[w].alive != 0;
    mlops_prom_set(o->workers_alive, NULL, NULL, (double)alive);
    mlops_prom_set(o->workers_known, NULL, NULL, (double)c->nworkers);
}

void coord_obs_stop(coord_t *c)
{
    mlops_httpd_destroy(&c->obs.http);
    mlops_prom_destroy(&c->obs.reg);
}
