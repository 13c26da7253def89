/* coord_stream.c: what the dashboard's /workers page draws over time,
 * Dask's task stream and worker memory: the last STREAM_TASKS finished
 * tasks (worker, job, stage, start, end, ok) and, per worker, the last
 * STREAM_SAMPLES heartbeats (store bytes, resident memory, tasks
 * running), at most one every SAMPLE_MS. Both are rings in memory,
 * written by the loop thread only, read by the `stream` Query verb; they
 * are not journalled: a restarted coordinator draws from its own start.
 *
 * Why rings of fixed size: a 50,000-task job must cost the loop one
 * struct copy per result, and the reply must stay small whatever ran. */
#include "coord_internal.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_TASKS 1000
#define STREAM_SAMPLES 150
#define SAMPLE_MS 2000

typedef struct {
    int worker;
    char job[16];
    char stage[32];
    uint32_t task;
    double start, end; /* epoch seconds, as coord_now_s */
    int ok;
} stream_task_t;

typedef struct {
    double t;
    uint64_t store_bytes, rss_bytes;
    uint32_t running;
} sample_t;

typedef struct {
    sample_t s[STREAM_SAMPLES];
    size_t n, head; /* head: the next slot written */
    int64_t last;   /* zclock_mono ms of the last sample */
} wring_t;

struct coord_stream {
    stream_task_t t[STREAM_TASKS];
    size_t nt, head;
    wring_t *w; /* by worker index */
    size_t nw;
};

coord_stream_t *coord_stream_new(void) { return calloc(1, sizeof(coord_stream_t)); }

void coord_stream_destroy(coord_stream_t **ps)
{
    if (!ps || !*ps) return;
    free((*ps)->w);
    free(*ps);
    *ps = NULL;
}

void coord_stream_task(coord_t *c, int w, const job_t *j, const stage_t *st, uint32_t t,
                       double seconds, int ok)
{
    coord_stream_t *s = c->stream;
    if (!s) return;
    stream_task_t *e = &s->t[s->head];
    e->worker = w;
    snprintf(e->job, sizeof e->job, "%s", j->id);
    snprintf(e->stage, sizeof e->stage, "%s", st->name);
    e->task = t;
    e->end = coord_now_s();
    /* the worker's own seconds: the dispatch's queueing on the worker is
     * not the task's time */
    e->start = seconds > 0 && seconds < e->end ? e->end - seconds : e->end;
    e->ok = ok;
    s->head = (s->head + 1) % STREAM_TASKS;
    if (s->nt < STREAM_TASKS) s->nt++;
}

void coord_stream_sample(coord_t *c, int w)
{
    coord_stream_t *s = c->stream;
    if (!s || w < 0) return;
    if ((size_t)w >= s->nw) {
        size_t n = (size_t)w + 8;
        wring_t *nr = realloc(s->w, n * sizeof *nr);
        if (!nr) return;
        memset(nr + s->nw, 0, (n - s->nw) * sizeof *nr);
        s->w = nr;
        s->nw = n;
    }
    wring_t *r = &s->w[w];
    int64_t now = zclock_mono();
    if (r->n && now - r->last < SAMPLE_MS) return;
    r->last = now;
    const coord_worker_t *wk = &c->workers[w];
    r->s[r->head] = (sample_t){coord_now_s(), wk->store_bytes, wk->rss_bytes, wk->executing};
    r->head = (r->head + 1) % STREAM_SAMPLES;
    if (r->n < STREAM_SAMPLES) r->n++;
}

static const char *wname(const coord_t *c, int w)
{
    if (w < 0 || (size_t)w >= c->nworkers) return "?";
    return c->workers[w].name ? c->workers[w].name : c->workers[w].id;
}

json_t *coord_stream_json(coord_t *c)
{
    coord_stream_t *s = c->stream;
    json_t *tasks = json_array(), *workers = json_array();
    for (size_t i = 0; s && i < s->nt; i++) { /* oldest first */
        const stream_task_t *e = &s->t[(s->head + STREAM_TASKS - s->nt + i) % STREAM_TASKS];
        json_array_append_new(tasks, json_pack("{s:s,s:s,s:s,s:I,s:f,s:f,s:b}", "worker",
                                               wname(c, e->worker), "job", e->job, "stage",
                                               e->stage, "task", (json_int_t)e->task, "start",
                                               e->start, "end", e->end, "ok", e->ok));
    }
    for (size_t w = 0; w < c->nworkers; w++) {
        json_t *samples = json_array();
        const wring_t *r = s && w < s->nw ? &s->w[w] : NULL;
        for (size_t i = 0; r && i < r->n; i++) {
            const sample_t *x = &r->s[(r->head + STREAM_SAMPLES - r->n + i) % STREAM_SAMPLES];
            json_array_append_new(samples, json_pack("{s:f,s:I,s:I,s:I}", "time", x->t,
                                                     "store_bytes", (json_int_t)x->store_bytes,
                                                     "rss_bytes", (json_int_t)x->rss_bytes,
                                                     "running", (json_int_t)x->running));
        }
        json_array_append_new(workers, json_pack("{s:s,s:s,s:o}", "id", c->workers[w].id, "name",
                                                 wname(c, (int)w), "samples", samples));
    }
    return json_pack("{s:o,s:o}", "tasks", tasks, "workers", workers);
}
