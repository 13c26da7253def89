/* shards.c: the shard directory, shard key -> the workers that hold a
 * copy. Dispatch reads it to send a task where its inputs are and to tell
 * a worker where to fetch the rest; a lost worker's entries go, and a
 * shard with no live holder is recomputed by its producer.
 *
 * The directory is not journalled: workers report the shards they hold
 * when they register, so a restarted coordinator learns it again. */
#include "coord_internal.h"
#include "log.h"
#include <stdlib.h>
#include <string.h>

/* A shard is written by one task; more holders only appear when a
 * recomputed copy lands elsewhere, so a small fixed set is enough. */
#define MAX_HOLDERS 8

typedef struct {
    int n;
    int w[MAX_HOLDERS];
} holders_t;

static void holders_free(void **item)
{
    free(*item);
    *item = NULL;
}

zhashx_t *coord_shards_new(void)
{
    zhashx_t *h = zhashx_new();
    if (h) zhashx_set_destructor(h, holders_free);
    return h;
}

void coord_shard_add(coord_t *c, const char *key, int w)
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

int coord_shard_holder(coord_t *c, const char *key)
{
    holders_t *h = zhashx_lookup(c->shards, key);
    if (!h) return -1;
    for (int i = 0; i < h->n; i++)
        if (c->workers[h->w[i]].alive) return h->w[i];
    return -1;
}

void coord_shard_forget_worker(coord_t *c, int w)
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


int coord_shard_held_by(coord_t *c, const char *key, int w)
{
    holders_t *h = zhashx_lookup(c->shards, key);
    for (int k = 0; h && k < h->n; k++)
        if (h->w[k] == w) return 1;
    return 0;
}

void coord_shards_drop_job(coord_t *c, const char *job_id)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s/", job_id);
    coord_shards_drop_prefix(c, prefix);
}

size_t coord_shards_drop_prefix(coord_t *c, const char *prefix)
{
    size_t pl = strlen(prefix), n = 0;
    zlistx_t *gone = zlistx_new();
    for (holders_t *h = zhashx_first(c->shards); h; h = zhashx_next(c->shards)) {
        const char *k = zhashx_cursor(c->shards);
        if (strncmp(k, prefix, pl)) continue;
        for (int i = 0; i < h->n; i++)
            if (c->workers[h->w[i]].shards) c->workers[h->w[i]].shards--;
        zlistx_add_end(gone, (void *)k);
        n++;
    }
    for (const char *k = zlistx_first(gone); k; k = zlistx_next(gone)) zhashx_delete(c->shards, k);
    zlistx_destroy(&gone);
    return n;
}

void coord_shards_tell_drop(coord_t *c, int w, const char *prefix)
{
    char *pp[] = {(char *)prefix};
    envelope_t env;
    wire_init(&env, 0);
    Mlops__DropJob dj = MLOPS__DROP_JOB__INIT;
    dj.job_id = ""; /* a worker without field 360 then drops nothing */
    dj.n_prefixes = 1;
    dj.prefixes = pp;
    env.body_case = MLOPS__ENVELOPE__BODY_DROP_JOB;
    env.drop_job = &dj;
    coord_outbox_add(c, c->workers[w].identity, &env);
}

/* A shard of a stage dropped once consumed (lifecycle.c) that a worker
 * away at the time still holds: the worker is told to delete the stage's
 * shards instead of the directory adopting them. 1 if so. */
static int drop_if_consumed(coord_t *c, int w, job_t *j, const char *key, char last[64])
{
    const char *s = strchr(key, '/') + 1, *e = strchr(s, '/');
    char name[40];
    if (!e || (size_t)(e - s) >= sizeof name) return 0;
    memcpy(name, s, (size_t)(e - s));
    name[e - s] = 0;
    stage_t *st = job_stage(j, name);
    if (!st || !st->dropped) return 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s/%s/", j->id, name);
    if (!strcmp(prefix, last)) return 1; /* the keys come sorted: told already */
    memcpy(last, prefix, sizeof prefix);
    coord_shards_tell_drop(c, w, prefix);
    return 1;
}

void coord_shards_adopt(coord_t *c, int w, const char *const *keys, size_t n)
{
    char dropped[64][16]; /* more dead jobs than this: the rest at the next registration */
    size_t ndropped = 0;
    char last[64] = "";
    for (size_t i = 0; i < n; i++) {
        const char *slash = strchr(keys[i], '/');
        char job[16];
        size_t len = slash ? (size_t)(slash - keys[i]) : 0;
        if (len && len < sizeof job) {
            memcpy(job, keys[i], len);
            job[len] = 0;
            job_t *j = coord_job_find(c, job);
            if (j && j->state != JOB_CANCELLED) {
                if (!drop_if_consumed(c, w, j, keys[i], last)) coord_shard_add(c, keys[i], w);
                continue;
            }
        } else {
            continue; /* not a shard key of ours: ignore it */
        }
        size_t k = 0;
        while (k < ndropped && strcmp(dropped[k], job)) k++;
        if (k < ndropped || ndropped == sizeof dropped / sizeof dropped[0]) continue;
        memcpy(dropped[ndropped++], job, len + 1);
        LOG_I("worker %s holds shards of job %s, which is cancelled or removed: dropping them",
              c->workers[w].id, job);
        envelope_t env;
        wire_init(&env, 0);
        Mlops__DropJob dj = MLOPS__DROP_JOB__INIT;
        dj.job_id = job;
        env.body_case = MLOPS__ENVELOPE__BODY_DROP_JOB;
        env.drop_job = &dj;
        coord_outbox_add(c, c->workers[w].identity, &env);
    }
}
