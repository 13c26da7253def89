/* registry.c: the model registry: named models, their versions (1, 2,
 * ...), movable aliases (production, staging, ...) and the history of
 * every alias move, persisted in the journal (proto/journal.proto,
 * "reg/" keys) beside the artifacts in DATA_DIR/models/<sha256>.json.
 *
 * Why the alias table is not a record of its own: every move is one
 * RegMove record with a global sequence number, and replaying them in
 * order rebuilds the table. A move therefore lands whole or not at all
 * (one record in one group commit), two racing moves are simply two
 * records in the order the loop handled them, and the history can never
 * disagree with the table.
 *
 * A version is registered when a job with a train stage succeeds
 * (coord_registry_on_success, called by the job state machine): the
 * artifact file is written first (made durable by the journal's
 * committer before the records that name it), then its RegVersion and
 * RegModel records join the same commit as the job's final record. The
 * records live under "reg/", not "job/<id>/", so `mlopsctl rm` of the
 * job keeps its models. `model rm` drops a version's record; its file is
 * collected at the next start, when nothing refers to it any more. */
#include "coord_internal.h"
#include "artifact.h"
#include "err.h"
#include "journal.pb-c.h"
#include "jsondump.h"
#include "log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    uint32_t version;
    char *job;
    char sha[65];
    double created;
    metric_t *metrics;
    size_t nmetrics;
    char **tags;
    size_t ntags;
} regver_t;

typedef struct {
    char alias[65];
    uint32_t version;
} regalias_t;

typedef struct {
    char *name;
    uint32_t next_version;
    regver_t *v; /* ascending version */
    size_t nv;
    regalias_t *a;
    size_t na;
} regmodel_t;

typedef struct {
    uint64_t seq;
    char *model, *alias, *fingerprint, *reason;
    uint32_t from, to;
    double time;
} regmove_t;

/* An artifact written ahead of its job's end (coord_registry_prebuild):
 * the version it was numbered for, its file's digest, its artifact. */
typedef struct prebuilt {
    char job[16];
    char *name;
    uint32_t version;
    char sha[65];
    mlops_artifact_t *a;
    struct prebuilt *next;
} prebuilt_t;

struct coord_registry {
    regmodel_t *m;
    size_t nm;
    regmove_t *h; /* ascending seq */
    size_t nh;
    uint64_t next_seq;
    prebuilt_t *pre;
};

static void prebuilt_free(prebuilt_t *p)
{
    free(p->name);
    mlops_artifact_destroy(&p->a);
    free(p);
}

coord_registry_t *coord_registry_new(void)
{
    if (sodium_init() < 0) return NULL;
    coord_registry_t *r = calloc(1, sizeof *r);
    if (r) r->next_seq = 1;
    return r;
}

static void ver_free(regver_t *v)
{
    free(v->job);
    for (size_t i = 0; i < v->nmetrics; i++) free(v->metrics[i].name);
    free(v->metrics);
    for (size_t i = 0; i < v->ntags; i++) free(v->tags[i]);
    free(v->tags);
}

void coord_registry_destroy(coord_registry_t **pr)
{
    if (!pr || !*pr) return;
    coord_registry_t *r = *pr;
    for (size_t i = 0; i < r->nm; i++) {
        for (size_t k = 0; k < r->m[i].nv; k++) ver_free(&r->m[i].v[k]);
        free(r->m[i].v);
        free(r->m[i].a);
        free(r->m[i].name);
    }
    free(r->m);
    for (size_t i = 0; i < r->nh; i++) {
        free(r->h[i].model);
        free(r->h[i].alias);
        free(r->h[i].fingerprint);
        free(r->h[i].reason);
    }
    free(r->h);
    for (prebuilt_t *p = r->pre, *next; p; p = next) {
        next = p->next;
        prebuilt_free(p);
    }
    free(r);
    *pr = NULL;
}

int coord_registry_valid_name(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return n >= 1 && n <= max;
}

static regmodel_t *model_find(coord_registry_t *r, const char *name)
{
    for (size_t i = 0; i < r->nm; i++)
        if (!strcmp(r->m[i].name, name)) return &r->m[i];
    return NULL;
}

static regmodel_t *model_get(coord_registry_t *r, const char *name)
{
    regmodel_t *m = model_find(r, name);
    if (m) return m;
    regmodel_t *a = realloc(r->m, (r->nm + 1) * sizeof *a);
    if (!a) return NULL;
    r->m = a;
    m = &a[r->nm];
    memset(m, 0, sizeof *m);
    if (!(m->name = strdup(name))) return NULL;
    m->next_version = 1;
    r->nm++;
    return m;
}

static regver_t *ver_find(regmodel_t *m, uint32_t v)
{
    for (size_t i = 0; i < m->nv; i++)
        if (m->v[i].version == v) return &m->v[i];
    return NULL;
}

static regalias_t *alias_find(regmodel_t *m, const char *alias)
{
    for (size_t i = 0; i < m->na; i++)
        if (!strcmp(m->a[i].alias, alias)) return &m->a[i];
    return NULL;
}

/* The alias table after one move (to == 0 removes the alias). */
static int alias_apply(regmodel_t *m, const char *alias, uint32_t to)
{
    regalias_t *a = alias_find(m, alias);
    if (to == 0) {
        if (a) {
            *a = m->a[m->na - 1];
            m->na--;
        }
        return 0;
    }
    if (!a) {
        regalias_t *na = realloc(m->a, (m->na + 1) * sizeof *na);
        if (!na) return MLOPS_ENOMEM;
        m->a = na;
        a = &na[m->na++];
        snprintf(a->alias, sizeof a->alias, "%s", alias);
    }
    a->version = to;
    return 0;
}

/* ---- journal records -------------------------------------------------- */

static void save_model(coord_t *c, const regmodel_t *m)
{
    Mlops__RegModel rec = MLOPS__REG_MODEL__INIT;
    rec.name = m->name;
    rec.next_version = m->next_version;
    size_t n = mlops__reg_model__get_packed_size(&rec);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return;
    mlops__reg_model__pack(&rec, buf);
    char key[200];
    snprintf(key, sizeof key, "reg/m/%s", m->name);
    journal_put(c->journal, key, buf, n);
    free(buf);
}

static void save_version(coord_t *c, const regmodel_t *m, const regver_t *v)
{
    Mlops__RegVersion rec = MLOPS__REG_VERSION__INIT;
    rec.model = m->name;
    rec.version = v->version;
    rec.job = v->job;
    rec.sha256 = (char *)v->sha;
    rec.created = v->created;
    Mlops__JMetric *ms = calloc(v->nmetrics ? v->nmetrics : 1, sizeof *ms);
    Mlops__JMetric **mp = calloc(v->nmetrics ? v->nmetrics : 1, sizeof *mp);
    if (!ms || !mp) goto out;
    for (size_t i = 0; i < v->nmetrics; i++) {
        mlops__jmetric__init(&ms[i]);
        ms[i].name = v->metrics[i].name;
        ms[i].value = v->metrics[i].value;
        mp[i] = &ms[i];
    }
    rec.n_metrics = v->nmetrics;
    rec.metrics = mp;
    rec.n_tags = v->ntags;
    rec.tags = v->tags;
    size_t n = mlops__reg_version__get_packed_size(&rec);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf) {
        mlops__reg_version__pack(&rec, buf);
        char key[220];
        snprintf(key, sizeof key, "reg/v/%s/%010u", m->name, v->version);
        journal_put(c->journal, key, buf, n);
        free(buf);
    }
out:
    free(ms);
    free(mp);
}

static void save_move(coord_t *c, const regmove_t *mv)
{
    Mlops__RegMove rec = MLOPS__REG_MOVE__INIT;
    rec.seq = mv->seq;
    rec.model = mv->model;
    rec.alias = mv->alias;
    rec.from_version = mv->from;
    rec.to_version = mv->to;
    rec.time = mv->time;
    rec.fingerprint = mv->fingerprint;
    rec.reason = mv->reason;
    size_t n = mlops__reg_move__get_packed_size(&rec);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return;
    mlops__reg_move__pack(&rec, buf);
    char key[64];
    snprintf(key, sizeof key, "reg/h/%016llu", (unsigned long long)mv->seq);
    journal_put(c->journal, key, buf, n);
    free(buf);
}

static int push_move(coord_registry_t *r, uint64_t seq, const char *model, const char *alias,
                     uint32_t from, uint32_t to, double time, const char *fp, const char *reason)
{
    regmove_t *h = realloc(r->h, (r->nh + 1) * sizeof *h);
    if (!h) return MLOPS_ENOMEM;
    r->h = h;
    regmove_t *mv = &h[r->nh];
    mv->seq = seq;
    mv->model = strdup(model);
    mv->alias = strdup(alias);
    mv->fingerprint = strdup(fp ? fp : "");
    mv->reason = strdup(reason ? reason : "");
    mv->from = from;
    mv->to = to;
    mv->time = time;
    if (!mv->model || !mv->alias || !mv->fingerprint || !mv->reason) {
        free(mv->model);
        free(mv->alias);
        free(mv->fingerprint);
        free(mv->reason);
        return MLOPS_ENOMEM;
    }
    r->nh++;
    if (seq >= r->next_seq) r->next_seq = seq + 1;
    return 0;
}

static int add_version(regmodel_t *m, uint32_t version, const char *job, const char *sha,
                       double created, const metric_t *metrics, size_t nmetrics, char *const *tags,
                       size_t ntags)
{
    regver_t *a = realloc(m->v, (m->nv + 1) * sizeof *a);
    if (!a) return MLOPS_ENOMEM;
    m->v = a;
    size_t at = m->nv;
    while (at > 0 && a[at - 1].version > version) at--;
    memmove(&a[at + 1], &a[at], (m->nv - at) * sizeof *a);
    regver_t *v = &a[at];
    memset(v, 0, sizeof *v);
    m->nv++;
    v->version = version;
    v->job = strdup(job);
    snprintf(v->sha, sizeof v->sha, "%s", sha);
    v->created = created;
    v->metrics = calloc(nmetrics ? nmetrics : 1, sizeof *v->metrics);
    v->tags = calloc(ntags ? ntags : 1, sizeof *v->tags);
    if (!v->job || !v->metrics || !v->tags) return MLOPS_ENOMEM;
    for (size_t i = 0; i < nmetrics; i++) {
        if (!(v->metrics[i].name = strdup(metrics[i].name))) return MLOPS_ENOMEM;
        v->metrics[i].value = metrics[i].value;
        v->nmetrics = i + 1;
    }
    for (size_t i = 0; i < ntags; i++) {
        if (!(v->tags[i] = strdup(tags[i]))) return MLOPS_ENOMEM;
        v->ntags = i + 1;
    }
    if (version >= m->next_version) m->next_version = version + 1;
    return 0;
}

int coord_registry_replay(coord_t *c, const char *key, const void *data, size_t len)
{
    coord_registry_t *r = c->registry;
    int rc = 0;
    if (!strncmp(key, "reg/m/", 6)) {
        Mlops__RegModel *rec = mlops__reg_model__unpack(NULL, len, data);
        if (!rec) return -1;
        regmodel_t *m = model_get(r, rec->name);
        if (m && rec->next_version > m->next_version) m->next_version = rec->next_version;
        mlops__reg_model__free_unpacked(rec, NULL);
        return m ? 0 : -1;
    }
    if (!strncmp(key, "reg/v/", 6)) {
        Mlops__RegVersion *rec = mlops__reg_version__unpack(NULL, len, data);
        if (!rec) return -1;
        regmodel_t *m = model_get(r, rec->model);
        metric_t *ms = calloc(rec->n_metrics ? rec->n_metrics : 1, sizeof *ms);
        if (!m || !ms) rc = -1;
        else {
            for (size_t i = 0; i < rec->n_metrics; i++) {
                ms[i].name = rec->metrics[i]->name;
                ms[i].value = rec->metrics[i]->value;
            }
            if (add_version(m, rec->version, rec->job, rec->sha256, rec->created, ms,
                            rec->n_metrics, rec->tags, rec->n_tags))
                rc = -1;
        }
        free(ms);
        mlops__reg_version__free_unpacked(rec, NULL);
        return rc;
    }
    if (!strncmp(key, "reg/h/", 6)) {
        Mlops__RegMove *rec = mlops__reg_move__unpack(NULL, len, data);
        if (!rec) return -1;
        regmodel_t *m = model_get(r, rec->model);
        if (!m ||
            push_move(r, rec->seq, rec->model, rec->alias, rec->from_version, rec->to_version,
                      rec->time, rec->fingerprint, rec->reason) ||
            alias_apply(m, rec->alias, rec->to_version))
            rc = -1;
        mlops__reg_move__free_unpacked(rec, NULL);
        return rc;
    }
    return 0;
}

static int sha_referenced(const coord_registry_t *r, const char *sha)
{
    for (size_t i = 0; i < r->nm; i++)
        for (size_t k = 0; k < r->m[i].nv; k++)
            if (!strcmp(r->m[i].v[k].sha, sha)) return 1;
    return 0;
}

void coord_registry_collect(coord_t *c)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/models", c->data_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n != 69 || strcmp(e->d_name + 64, ".json")) continue;
        char sha[65];
        memcpy(sha, e->d_name, 64);
        sha[64] = 0;
        if (sha_referenced(c->registry, sha)) continue;
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) LOG_I("model artifact %s: no version refers to it, removed", sha);
    }
    closedir(d);
}

/* ---- registering a version -------------------------------------------- */

static void sha_hex(const unsigned char *h, char out[65])
{
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Write text as DATA_DIR/models/<sha>.json (tmp, rename), made durable
 * by the journal's committer before the batch that takes the records
 * naming it (journal_sync_path: the file, then the directory), so the
 * journal never names a file that a crash could lose, and the loop does
 * not wait for the two fsyncs. A crash before that commit leaves a file
 * no record names, collected at the next start; a file already there
 * has these bytes (its name is their digest) and is not rewritten. */
static int write_artifact(coord_t *c, const char *text, size_t len, char sha[65], char *err,
                          size_t errlen)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)text, len);
    sha_hex(h, sha);
    char dir[4200], tmp[4400], path[4400];
    snprintf(dir, sizeof dir, "%s/models", c->data_dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/%s.json", dir, sha);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, sha);
    struct stat sb;
    if (stat(path, &sb) == 0 && (size_t)sb.st_size == len) {
        if (journal_sync_path(c->journal, path) != 0 || journal_sync_path(c->journal, dir) != 0)
            return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return 0;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return mlops_seterr(err, errlen, MLOPS_EIO, "%s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int ok = off == len;
    if (close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mlops_seterr(err, errlen, MLOPS_EIO, "%s: %s", path, strerror(e));
    }
    if (journal_sync_path(c->journal, path) != 0 || journal_sync_path(c->journal, dir) != 0)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    return 0;
}

/* The artifact text of a version (malloc'd), or NULL. */
static char *read_artifact(coord_t *c, const regver_t *v, size_t *len)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/models/%s.json", c->data_dir, v->sha);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap + 1);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static int record_move(coord_t *c, regmodel_t *m, const char *alias, uint32_t to, const char *fp,
                       const char *reason)
{
    coord_registry_t *r = c->registry;
    regalias_t *a = alias_find(m, alias);
    uint32_t from = a ? a->version : 0;
    int rc = push_move(r, r->next_seq, m->name, alias, from, to, coord_now_s(), fp, reason);
    if (!rc) rc = alias_apply(m, alias, to);
    if (!rc) save_move(c, &r->h[r->nh - 1]);
    if (!rc) coord_watch_notify(c); /* alias_watch.c: the followers learn at once */
    return rc;
}

/* The artifact text as version `ver` of m: its file, then its records. */
static int add_text(coord_t *c, regmodel_t *m, uint32_t ver, const char *text, const char *job,
                    const metric_t *ms, size_t nm, char **tags, size_t ntags, char *err,
                    size_t errlen)
{
    char sha[65];
    int rc = write_artifact(c, text, strlen(text), sha, err, errlen);
    if (rc) return rc;
    if (add_version(m, ver, job, sha, coord_now_s(), ms, nm, tags, ntags) != 0)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    save_version(c, m, ver_find(m, ver));
    save_model(c, m);
    return 0;
}

/* Version a->version of m, whose file (digest sha) is written: its
 * records. */
static int add_written(coord_t *c, regmodel_t *m, const mlops_artifact_t *a, const char *job,
                       const char *sha, char *err, size_t errlen)
{
    metric_t *ms = calloc(a->nmetrics ? a->nmetrics : 1, sizeof *ms);
    if (!ms) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    size_t nm = 0;
    for (size_t i = 0; i < a->nmetrics; i++)
        if (isfinite(a->metric_values[i])) {
            ms[nm].name = a->metric_names[i];
            ms[nm++].value = a->metric_values[i];
        }
    int rc = add_version(m, a->version, job, sha, coord_now_s(), ms, nm, a->tags, a->ntags);
    free(ms);
    if (rc != 0) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    save_version(c, m, ver_find(m, a->version));
    save_model(c, m);
    return 0;
}

/* The artifact's text as version `ver` of `name`, written to its file:
 * 0 with sha. */
static int write_as(coord_t *c, const char *name, uint32_t ver, mlops_artifact_t *a, char sha[65],
                    char *err, size_t errlen)
{
    free(a->name);
    if (!(a->name = strdup(name))) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    a->version = ver;
    char *text = mlops_artifact_to_json(a, err, errlen);
    if (!text) return MLOPS_EINVAL;
    int rc = write_artifact(c, text, strlen(text), sha, err, errlen);
    free(text);
    return rc;
}

int coord_registry_add(coord_t *c, const char *name, mlops_artifact_t *a, const char *job,
                       uint32_t *version, char *err, size_t errlen)
{
    regmodel_t *m = model_get(c->registry, name);
    if (!m) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    char sha[65];
    int rc = write_as(c, name, m->next_version, a, sha, err, errlen);
    if (!rc) rc = add_written(c, m, a, job, sha, err, errlen);
    if (!rc) *version = a->version;
    return rc;
}

int coord_registry_prebuild(coord_t *c, const char *name, mlops_artifact_t **pa, const char *job,
                            char *err, size_t errlen)
{
    coord_registry_t *r = c->registry;
    const regmodel_t *m = model_find(r, name);
    prebuilt_t *p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(name))) {
        free(p);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    }
    snprintf(p->job, sizeof p->job, "%s", job);
    p->version = m ? m->next_version : 1;
    p->a = *pa;
    *pa = NULL;
    int rc = write_as(c, name, p->version, p->a, p->sha, err, errlen);
    if (rc) {
        prebuilt_free(p);
        return rc;
    }
    p->next = r->pre;
    r->pre = p;
    return 0;
}

int coord_registry_add_prebuilt(coord_t *c, const char *name, const char *job, uint32_t *version,
                                char *err, size_t errlen)
{
    coord_registry_t *r = c->registry;
    prebuilt_t **pp = &r->pre;
    while (*pp && (strcmp((*pp)->job, job) || strcmp((*pp)->name, name))) pp = &(*pp)->next;
    prebuilt_t *p = *pp;
    if (!p) return 0;
    *pp = p->next;
    regmodel_t *m = model_get(r, name);
    int rc = 0;
    if (!m) rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    else if (m->next_version != p->version) rc = 0; /* another job took it: build again */
    else if ((rc = add_written(c, m, p->a, job, p->sha, err, errlen)) == 0) {
        *version = p->version;
        rc = 1;
    }
    prebuilt_free(p);
    return rc;
}

void coord_registry_drop_prebuilt(coord_t *c, const char *job)
{
    coord_registry_t *r = c->registry;
    if (!r) return;
    for (prebuilt_t **pp = &r->pre; *pp;) {
        prebuilt_t *p = *pp;
        if (strcmp(p->job, job)) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        prebuilt_free(p);
    }
}

int coord_registry_add_doc(coord_t *c, const char *name, json_t *doc, const char *job,
                           uint32_t *version, char *err, size_t errlen)
{
    regmodel_t *m = model_get(c->registry, name);
    if (!m) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    uint32_t ver = m->next_version;
    json_object_set_new(doc, "name", json_string(name));
    json_object_set_new(doc, "version", json_integer(ver));
    /* the same dump as artifact.c's, so `model export` gives these bytes back */
    char *text = mlops_json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    char *nl = text ? realloc(text, strlen(text) + 2) : NULL;
    if (nl) strcat(nl, "\n");
    else free(text);
    text = nl;
    const json_t *jm = json_object_get(doc, "metrics"), *jt = json_object_get(doc, "tags");
    size_t nm = 0, nt = 0;
    metric_t *ms = calloc(json_object_size(jm) + 1, sizeof *ms);
    char **tags = calloc(json_array_size(jt) + 1, sizeof *tags);
    int rc = text && ms && tags ? 0 : mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)jm, key, v)
        if (!rc && json_is_number(v) && isfinite(json_number_value(v))) {
            ms[nm].name = (char *)key;
            ms[nm++].value = json_number_value(v);
        }
    for (size_t i = 0; !rc && i < json_array_size(jt); i++)
        if (json_is_string(json_array_get(jt, i)))
            tags[nt++] = (char *)json_string_value(json_array_get(jt, i));
    if (!rc) rc = add_text(c, m, ver, text, job, ms, nm, tags, nt, err, errlen);
    free(text);
    free(ms);
    free(tags);
    if (!rc) *version = ver;
    return rc;
}

/* ---- the Query verbs -------------------------------------------------- */

typedef struct {
    Mlops__ErrorCode *code;
    char *msg;
    size_t msglen;
} rq_t;

static json_t *refuse(rq_t *e, Mlops__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *refuse(rq_t *e, Mlops__ErrorCode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->msglen, fmt, ap);
    va_end(ap);
    *e->code = code;
    return NULL;
}

static json_t *jtime(double t)
{
    char buf[32];
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *aliases_of(const regmodel_t *m, uint32_t version)
{
    json_t *a = json_array();
    for (size_t i = 0; i < m->na; i++)
        if (m->a[i].version == version) json_array_append_new(a, json_string(m->a[i].alias));
    return a;
}

static json_t *metrics_of(const regver_t *v)
{
    json_t *o = json_object();
    for (size_t i = 0; i < v->nmetrics; i++)
        json_object_set_new(o, v->metrics[i].name, json_real(v->metrics[i].value));
    return o;
}

static const char *arg(const Mlops__Query *q, size_t i)
{
    return i < q->n_args && q->args[i] ? q->args[i] : "";
}

static regmodel_t *need_model(coord_t *c, const char *name, rq_t *e)
{
    regmodel_t *m = model_find(c->registry, name);
    if (!m) refuse(e, MLOPS__ERROR_CODE__NOT_FOUND, "no model '%s'", name);
    return m;
}

/* REF: "" (the latest version), a version number, or an alias. */
static regver_t *resolve(regmodel_t *m, const char *ref, rq_t *e)
{
    if (!*ref) {
        if (!m->nv) refuse(e, MLOPS__ERROR_CODE__NOT_FOUND, "model '%s' has no versions", m->name);
        return m->nv ? &m->v[m->nv - 1] : NULL;
    }
    char *end;
    unsigned long v = strtoul(ref, &end, 10);
    if (ref[0] >= '0' && ref[0] <= '9') {
        regver_t *rv = !*end && v <= UINT32_MAX ? ver_find(m, (uint32_t)v) : NULL;
        if (!rv)
            refuse(e, MLOPS__ERROR_CODE__NOT_FOUND, "model '%s' has no version %s", m->name, ref);
        return rv;
    }
    regalias_t *a = alias_find(m, ref);
    regver_t *rv = a ? ver_find(m, a->version) : NULL;
    if (!rv) refuse(e, MLOPS__ERROR_CODE__NOT_FOUND, "model '%s' has no alias '%s'", m->name, ref);
    return rv;
}

static json_t *q_models(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    (void)q, (void)e;
    json_t *a = json_array();
    for (size_t i = 0; i < c->registry->nm; i++) {
        const regmodel_t *m = &c->registry->m[i];
        json_t *al = json_object();
        for (size_t k = 0; k < m->na; k++)
            json_object_set_new(al, m->a[k].alias, json_integer(m->a[k].version));
        json_array_append_new(a,
                              json_pack("{s:s,s:o,s:o,s:I}", "name", m->name, "latest",
                                        m->nv ? json_integer(m->v[m->nv - 1].version) : json_null(),
                                        "aliases", al, "versions", (json_int_t)m->nv));
    }
    return json_pack("{s:o}", "models", a);
}

/* The artifact of the version `q` names (args NAME, REF) as JSON, with
 * its model and version; NULL with the refusal in e. */
static json_t *artifact_of(coord_t *c, const Mlops__Query *q, rq_t *e, regmodel_t **pm, regver_t **pv)
{
    regmodel_t *m = *pm = need_model(c, arg(q, 0), e);
    regver_t *v = *pv = m ? resolve(m, arg(q, 1), e) : NULL;
    if (!v) return NULL;
    size_t len = 0;
    char *text = read_artifact(c, v, &len);
    json_t *doc = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    if (!doc)
        return refuse(e, MLOPS__ERROR_CODE__INTERNAL,
                      "model '%s' version %u: artifact %s.json is missing or damaged", m->name,
                      v->version, v->sha);
    return doc;
}

static json_t *q_show(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    regmodel_t *m;
    regver_t *v;
    json_t *doc = artifact_of(c, q, e, &m, &v);
    if (!doc) return NULL;
    json_t *tags = json_array();
    for (size_t i = 0; i < v->ntags; i++) json_array_append_new(tags, json_string(v->tags[i]));
    /* a recommender has no classes; its kind says what it is */
    json_t *o = json_pack("{s:s,s:I,s:s,s:o,s:o,s:o,s:o,s:O*,s:O*,s:s,s:O*}", "name", m->name,
                          "version", (json_int_t)v->version, "job", v->job, "created",
                          jtime(v->created), "aliases", aliases_of(m, v->version), "tags", tags,
                          "metrics", metrics_of(v), "classes", json_object_get(doc, "classes"),
                          "lineage", json_object_get(doc, "lineage"), "sha256", v->sha, "kind",
                          json_object_get(doc, "kind"));
    json_decref(doc);
    return o;
}

static json_t *q_versions(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    regmodel_t *m = need_model(c, arg(q, 0), e);
    if (!m) return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < m->nv; i++) {
        const regver_t *v = &m->v[i];
        json_t *tags = json_array();
        for (size_t k = 0; k < v->ntags; k++) json_array_append_new(tags, json_string(v->tags[k]));
        /* tags and sha256 too, so a page of every version (the dashboard's
         * /models/NAME) needs no artifact read per version */
        json_array_append_new(a, json_pack("{s:I,s:s,s:o,s:o,s:o,s:o,s:s}", "version",
                                           (json_int_t)v->version, "job", v->job, "aliases",
                                           aliases_of(m, v->version), "metrics", metrics_of(v),
                                           "created", jtime(v->created), "tags", tags, "sha256",
                                           v->sha));
    }
    return json_pack("{s:s,s:o}", "name", m->name, "versions", a);
}

static json_t *move_json(const regmove_t *mv)
{
    return json_pack("{s:I,s:s,s:s,s:o,s:o,s:o,s:s,s:s}", "seq", (json_int_t)mv->seq, "model",
                     mv->model, "alias", mv->alias, "from",
                     mv->from ? json_integer(mv->from) : json_null(), "to",
                     mv->to ? json_integer(mv->to) : json_null(), "time", jtime(mv->time),
                     "fingerprint", mv->fingerprint, "reason", mv->reason);
}

static json_t *q_alias(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    regmodel_t *m = need_model(c, arg(q, 0), e);
    if (!m) return NULL;
    const char *alias = arg(q, 2);
    if (!coord_registry_valid_name(alias, 64))
        return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST,
                      "alias '%s': expected [A-Za-z0-9._-]{1,64}", alias);
    if ((arg(q, 1)[0] < '0' || arg(q, 1)[0] > '9'))
        return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST, "version '%s': expected a number",
                      arg(q, 1));
    regver_t *v = resolve(m, arg(q, 1), e);
    if (!v) return NULL;
    if (record_move(c, m, alias, v->version, c->msg_owner, arg(q, 3)))
        return refuse(e, MLOPS__ERROR_CODE__INTERNAL, "out of memory");
    return move_json(&c->registry->h[c->registry->nh - 1]);
}

static json_t *q_unalias(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    regmodel_t *m = need_model(c, arg(q, 0), e);
    if (!m) return NULL;
    const char *alias = arg(q, 1);
    if (!alias_find(m, alias))
        return refuse(e, MLOPS__ERROR_CODE__NOT_FOUND, "model '%s' has no alias '%s'", m->name,
                      alias);
    if (record_move(c, m, alias, 0, c->msg_owner, arg(q, 2)))
        return refuse(e, MLOPS__ERROR_CODE__INTERNAL, "out of memory");
    return move_json(&c->registry->h[c->registry->nh - 1]);
}

static json_t *q_history(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    regmodel_t *m = need_model(c, arg(q, 0), e);
    if (!m) return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < c->registry->nh; i++)
        if (!strcmp(c->registry->h[i].model, m->name))
            json_array_append_new(a, move_json(&c->registry->h[i]));
    return json_pack("{s:s,s:o}", "name", m->name, "history", a);
}

/* For a server that follows the aliases (issue 11): every move of every
 * model with seq > args[0], oldest first, and the seq to ask from next. */
static json_t *q_moves(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    char *end;
    unsigned long long since = strtoull(arg(q, 0), &end, 10);
    if (*end)
        return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST,
                      "alias-moves: '%s' is not a sequence number", arg(q, 0));
    uint64_t next;
    return coord_registry_moves(c, since, &next);
}

json_t *coord_registry_moves(coord_t *c, uint64_t since, uint64_t *next)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->registry->nh; i++)
        if (c->registry->h[i].seq > since) json_array_append_new(a, move_json(&c->registry->h[i]));
    *next = c->registry->next_seq - 1;
    return json_pack("{s:o,s:I}", "moves", a, "next", (json_int_t)*next);
}

static json_t *q_export(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    regmodel_t *m;
    regver_t *v;
    json_t *doc = artifact_of(c, q, e, &m, &v);
    if (!doc) return NULL;
    return json_pack("{s:s,s:I,s:s,s:o}", "name", m->name, "version", (json_int_t)v->version,
                     "sha256", v->sha, "artifact", doc);
}

static json_t *q_rm(coord_t *c, const Mlops__Query *q, rq_t *e)
{
    regmodel_t *m = need_model(c, arg(q, 0), e);
    if (!m) return NULL;
    if (arg(q, 1)[0] < '0' || arg(q, 1)[0] > '9')
        return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST,
                      "model rm: give a version number (NAME@VERSION), not '%s'", arg(q, 1));
    regver_t *v = resolve(m, arg(q, 1), e);
    if (!v) return NULL;
    for (size_t i = 0; i < m->na; i++)
        if (m->a[i].version == v->version)
            return refuse(e, MLOPS__ERROR_CODE__BAD_REQUEST,
                          "model '%s' version %u holds alias '%s': move or remove the alias first",
                          m->name, v->version, m->a[i].alias);
    uint32_t version = v->version;
    char key[220];
    snprintf(key, sizeof key, "reg/v/%s/%010u", m->name, version);
    journal_del(c->journal, key);
    ver_free(v);
    size_t at = (size_t)(v - m->v);
    memmove(&m->v[at], &m->v[at + 1], (m->nv - at - 1) * sizeof *m->v);
    m->nv--;
    LOG_I("model %s version %u removed", m->name, version);
    return json_pack("{s:s,s:I,s:b}", "name", m->name, "version", (json_int_t)version, "removed",
                     1);
}

static const struct {
    const char *verb;
    json_t *(*fn)(coord_t *c, const Mlops__Query *q, rq_t *e);
} reg_verbs[] = {
    {"models", q_models},       {"model-show", q_show},       {"model-versions", q_versions},
    {"model-alias", q_alias},   {"model-unalias", q_unalias}, {"model-history", q_history},
    {"model-export", q_export}, {"model-rm", q_rm},           {"alias-moves", q_moves},
};

json_t *coord_registry_query(coord_t *c, const Mlops__Query *q, Mlops__ErrorCode *code, char *msg,
                             size_t msglen)
{
    rq_t e = {code, msg, msglen};
    for (size_t i = 0; i < sizeof reg_verbs / sizeof *reg_verbs; i++)
        if (!strcmp(reg_verbs[i].verb, q->verb)) return reg_verbs[i].fn(c, q, &e);
    return refuse(&e, MLOPS__ERROR_CODE__BAD_REQUEST, "unknown query '%s'", q->verb);
}

char *coord_registry_artifact(coord_t *c, const char *name, const char *ref, uint32_t *version,
                              char *err, size_t errlen)
{
    Mlops__ErrorCode code;
    rq_t e = {&code, err, errlen};
    regmodel_t *m = need_model(c, name, &e);
    regver_t *v = m ? resolve(m, ref, &e) : NULL;
    if (!v) return NULL;
    size_t len = 0;
    char *text = read_artifact(c, v, &len);
    if (!text)
        mlops_seterr(err, errlen, MLOPS_EIO, "model '%s' version %u: artifact %s.json is missing",
                     name, v->version, v->sha);
    *version = v->version;
    return text;
}

int coord_registry_gate(coord_t *c, const char *name, const char *alias, uint32_t to,
                        const char *fingerprint, const char *reason)
{
    regmodel_t *m = model_find(c->registry, name);
    if (!m) return MLOPS_ENOTFOUND;
    if (!to) { /* kept: the history says so, the alias stays where it is */
        regalias_t *a = alias_find(m, alias);
        if (!a) return 0;
        to = a->version;
    }
    return record_move(c, m, alias, to, fingerprint, reason);
}
