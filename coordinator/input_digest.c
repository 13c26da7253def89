/* input_digest.c: the SHA-256 of a job's input files, the lineage of the
 * versions it registers (registry_build.c). Reading a 1M-row CSV took
 * about 0.1 s per pass, once per registered version (a model and a
 * recommender: two), on the loop, after the last stage: the job's tail.
 * So the digests are computed once, on a thread of their own started
 * with the job (coord_digest_start), and read when the job succeeds;
 * the inputs are complete and never written once a job has started
 * (uploads end before it, local inputs are read in place, unchanged).
 *
 * The thread owns its entry's paths and results until it is joined; the
 * loop reads them only after pthread_join. A job that ends otherwise, or
 * is removed, stops its thread at the next 64 KiB (coord_digest_forget).
 * Nothing here is journalled: after a restart, a job's digests are
 * computed again from the same files, so the bytes are the same. */
#include "coord_internal.h"
#include "err.h"
#include "log.h"
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct digest {
    char job[16];
    size_t nfiles;
    char **paths;
    char (*hex)[65];
    int *ok;
    pthread_t thread;
    int joined;
    atomic_int stop;
    struct digest *next;
} digest_t;

struct coord_digests {
    digest_t *head;
};

/* 0 with out, MLOPS_EIO if the file cannot be read, MLOPS_ECANCEL if
 * *stop was set meanwhile. */
static int sha256_file(const char *path, char out[65], atomic_int *stop)
{
    FILE *f = fopen(path, "rb");
    if (!f) return MLOPS_EIO;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char *buf = malloc(1 << 16);
    if (!buf) {
        fclose(f);
        return MLOPS_ENOMEM;
    }
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, 1 << 16, f)) > 0) {
        if (stop && atomic_load(stop)) {
            rc = MLOPS_ECANCEL;
            break;
        }
        crypto_hash_sha256_update(&st, buf, n);
    }
    if (!rc && ferror(f)) rc = MLOPS_EIO;
    free(buf);
    fclose(f);
    if (rc) return rc;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", h[i]);
    return 0;
}

static void *digest_run(void *arg)
{
    digest_t *d = arg;
    for (size_t i = 0; i < d->nfiles && !atomic_load(&d->stop); i++)
        d->ok[i] = sha256_file(d->paths[i], d->hex[i], &d->stop) == 0;
    return NULL;
}

static void digest_free(digest_t *d)
{
    if (!d->joined) {
        atomic_store(&d->stop, 1);
        pthread_join(d->thread, NULL);
    }
    for (size_t i = 0; i < d->nfiles; i++) free(d->paths[i]);
    free(d->paths);
    free(d->hex);
    free(d->ok);
    free(d);
}

coord_digests_t *coord_digests_new(void) { return calloc(1, sizeof(coord_digests_t)); }

void coord_digests_destroy(coord_digests_t **pd)
{
    if (!pd || !*pd) return;
    for (digest_t *d = (*pd)->head, *next; d; d = next) {
        next = d->next;
        digest_free(d);
    }
    free(*pd);
    *pd = NULL;
}

static digest_t **find(coord_digests_t *ds, const char *job)
{
    digest_t **p = &ds->head;
    while (*p && strcmp((*p)->job, job)) p = &(*p)->next;
    return p;
}

void coord_digest_start(coord_t *c, const job_t *j)
{
    coord_digests_t *ds = c->digests;
    if (!ds || !j->nfiles || *find(ds, j->id)) return;
    digest_t *d = calloc(1, sizeof *d);
    if (!d) return; /* coord_digest_get reads the files itself */
    snprintf(d->job, sizeof d->job, "%s", j->id);
    d->paths = calloc(j->nfiles, sizeof *d->paths);
    d->hex = calloc(j->nfiles, sizeof *d->hex);
    d->ok = calloc(j->nfiles, sizeof *d->ok);
    int bad = !d->paths || !d->hex || !d->ok;
    for (size_t i = 0; !bad && i < j->nfiles; i++) {
        bad = !(d->paths[i] = strdup(j->files[i].path ? j->files[i].path : ""));
        if (!bad) d->nfiles = i + 1;
    }
    if (bad || pthread_create(&d->thread, NULL, digest_run, d) != 0) {
        d->joined = 1;
        digest_free(d);
        return;
    }
    d->next = ds->head;
    ds->head = d;
}

int coord_digest_get(coord_t *c, const job_t *j, size_t i, char out[65])
{
    digest_t *d = c->digests ? *find(c->digests, j->id) : NULL;
    if (d && !d->joined) {
        pthread_join(d->thread, NULL);
        d->joined = 1;
    }
    if (d && i < d->nfiles && d->ok[i] && !strcmp(d->paths[i], j->files[i].path)) {
        memcpy(out, d->hex[i], 65);
        return 0;
    }
    /* not started (a job resumed mid-way has one too), or unreadable */
    return sha256_file(j->files[i].path, out, NULL);
}

void coord_digest_forget(coord_t *c, const char *job_id)
{
    if (!c->digests) return;
    digest_t **p = find(c->digests, job_id);
    if (!*p) return;
    digest_t *d = *p;
    *p = d->next;
    digest_free(d);
}
