/* upload.c: job submission. SubmitBegin parses and checks the job file
 * and creates the job (answered with JobAck); its input files then arrive
 * as UploadChunks, in order, written to DATA_DIR/jobs/<job>/f<n>. When
 * every file is complete the job is queued and started. A job whose
 * upload is cut off stays "uploading" until a restart fails it.
 * With --local-inputs, a file the client offers by path is checked here
 * (common/localin.h) and read in place by the workers: JobAck names it
 * and it is never uploaded. */
#include "coord_internal.h"
#include "decompress.h"
#include "err.h"
#include "localin.h"
#include "log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The job a repeated SubmitBegin names by its idempotency key. A job
 * whose upload was cut off by a restart failed without its inputs and
 * cannot resume: a retry of it makes a new job. */
static job_t *find_by_key(coord_t *c, const char *key)
{
    for (size_t i = c->njobs; i-- > 0;) {
        job_t *j = c->jobs[i];
        if (j->idem_key && !strcmp(j->idem_key, key) && (j->uploaded || j->state == JOB_UPLOADING))
            return j;
    }
    return NULL;
}

static void ack_job(coord_t *c, zframe_t *id, uint64_t seq, job_t *j)
{
    envelope_t rep;
    wire_init(&rep, seq);
    Mlops__JobAck ack = MLOPS__JOB_ACK__INIT;
    ack.job_id = j->id;
    ack.uploaded = j->uploaded;
    uint32_t local[512];
    for (size_t i = 0; i < j->nfiles && ack.n_local_files < 512; i++)
        if (j->files[i].local) local[ack.n_local_files++] = (uint32_t)i;
    ack.local_files = local;
    rep.body_case = MLOPS__ENVELOPE__BODY_JOB_ACK;
    rep.job_ack = &ack;
    coord_outbox_add(c, id, &rep);
}

/* A repeat of a submit already made: its first JobAck may have been lost.
 * An upload in progress starts again from the first byte, which is what
 * the client, holding no ack, is about to send. */
static void resubmit(coord_t *c, zframe_t *id, uint64_t seq, job_t *j)
{
    if (!j->uploaded) {
        for (size_t i = 0; i < j->nfiles; i++) {
            jfile_t *f = &j->files[i];
            if (f->local) continue; /* the user's own file: never truncated */
            f->received = 0;
            if (f->fd < 0) f->fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (f->fd < 0 || ftruncate(f->fd, 0) != 0)
                LOG_W("job %s: cannot restart the upload of %s: %s", j->id, f->path,
                      strerror(errno));
        }
    }
    job_logf(j, "submit repeated with the same idempotency key; answered %s", j->id);
    j->dirty = 1;
    ack_job(c, id, seq, j);
}

/* The files a client offers to be read in place (InputFile.local_path),
 * checked against --local-inputs: canon[i] set (malloc'd) for each file
 * taken, NULL for one to upload. A coordinator without the flag takes
 * none, and the client uploads; with it, a path it refuses fails the
 * submit with the reason, since the user asked for that file. */
static int resolve_local(coord_t *c, const Mlops__SubmitBegin *sb, int sb_format_csv, char **canon,
                         mlops_localin_id_t *ids, char *err, size_t errlen)
{
    if (!c->cfg.local_inputs) return 0;
    char own[4096];
    if (!realpath(c->data_dir, own)) snprintf(own, sizeof own, "%s", c->data_dir);
    size_t ownlen = strlen(own);
    for (size_t i = 0; i < sb->n_files; i++) {
        const Mlops__InputFile *f = sb->files[i];
        /* a plain CSV input only: a compressed one is inflated by the
         * coordinator and a join's table or an IDX file is read by it, so
         * those travel as uploads (the client sends their bytes) */
        if (!f->local_path || !*f->local_path || !f->role || strcmp(f->role, "input") ||
            sb_format_csv == 0 || mlops_decompress_kind(f->local_path) != MLOPS_COMP_NONE)
            continue;
        const char *name = f->name && *f->name ? f->name : f->local_path;
        char real[4096];
        int rc = mlops_localin_resolve(c->cfg.local_inputs, f->local_path, name, real, sizeof real,
                                       &ids[i], err, errlen);
        if (rc) return rc;
        /* the journal and the keys are no one's input */
        if (!strncmp(real, own, ownlen) && (real[ownlen] == '/' || !real[ownlen]))
            return mlops_seterr(err, errlen, MLOPS_EDENIED,
                                "%s: inside the coordinator's data directory", name);
        if (ids[i].size != f->size || ids[i].mtime_ns != f->mtime_ns)
            return mlops_seterr(err, errlen, MLOPS_EINVAL,
                                "%s: the coordinator sees another file at %s (%llu bytes, not "
                                "%llu); submit with --upload",
                                name, f->local_path, (unsigned long long)ids[i].size,
                                (unsigned long long)f->size);
        if (!(canon[i] = strdup(real))) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    }
    return 0;
}

static void free_canon(char **canon, size_t n)
{
    for (size_t i = 0; canon && i < n; i++) free(canon[i]);
    free(canon);
}

void coord_on_submit(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__SubmitBegin *sb = env->submit_begin;
    char err[1024] = "";
    if (sb->idem_key && strlen(sb->idem_key) > 128) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                          "idempotency key longer than 128 bytes");
        return;
    }
    job_t *prev = sb->idem_key && *sb->idem_key ? find_by_key(c, sb->idem_key) : NULL;
    if (prev) {
        resubmit(c, id, env->seq, prev);
        return;
    }
    /* the bound of all clients together: busy, not refused, so mlopsctl
     * sends the same submit again after a pause */
    size_t active = 0;
    for (size_t i = 0; i < c->njobs; i++)
        active += c->jobs[i]->state == JOB_UPLOADING || c->jobs[i]->state == JOB_QUEUED ||
                  c->jobs[i]->state == JOB_RUNNING;
    if (active >= (size_t)c->cfg.max_jobs) {
        if (c->busy++ % 100 == 0)
            LOG_W("coordinator busy: a submit answered busy at %zu jobs (--max-jobs %d); %llu so far",
                  active, c->cfg.max_jobs, (unsigned long long)c->busy);
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BUSY,
                          "coordinator busy: %zu jobs are uploading, queued or running, the limit "
                          "is %d (--max-jobs); retry later",
                          active, c->cfg.max_jobs);
        return;
    }
    const char *fname = sb->spec_name && *sb->spec_name ? sb->spec_name : "job.yaml";
    mlops_jobspec_t *spec = NULL;
    if (mlops_jobspec_parse((const char *)sb->spec_yaml.data, sb->spec_yaml.len, fname, &spec, err,
                            sizeof err) != 0) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_JOB, "%s", err);
        return;
    }
    if (coord_access_limits(c, id, env, c->msg_owner) != 0) {
        mlops_jobspec_destroy(&spec);
        return;
    }
    if (sb->n_files > 512) { /* each is open while it uploads */
        mlops_jobspec_destroy(&spec);
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, "too many input files (%zu)",
                    sb->n_files);
        return;
    }
    char **canon = calloc(sb->n_files ? sb->n_files : 1, sizeof *canon);
    mlops_localin_id_t *ids = calloc(sb->n_files ? sb->n_files : 1, sizeof *ids);
    if (!canon || !ids || resolve_local(c, sb, spec->input.format == MLOPS_INPUT_CSV, canon, ids, err, sizeof err) != 0) {
        mlops_jobspec_destroy(&spec);
        free_canon(canon, sb->n_files);
        free(ids);
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_JOB, "%s",
                          err[0] ? err : "out of memory");
        return;
    }
    job_t *j = calloc(1, sizeof *j);
    if (!j) {
        free_canon(canon, sb->n_files);
        free(ids);
        return;
    }
    snprintf(j->id, sizeof j->id, "j%06llu", (unsigned long long)++c->next_job);
    c->meta_dirty = 1;
    j->spec = spec;
    j->name = strdup(planner_spec_name(spec));
    j->spec_yaml = malloc(sb->spec_yaml.len + 1);
    memcpy(j->spec_yaml, sb->spec_yaml.data, sb->spec_yaml.len);
    j->spec_yaml[sb->spec_yaml.len] = 0;
    j->spec_len = sb->spec_yaml.len;
    j->spec_name = strdup(fname);
    if (sb->idem_key && *sb->idem_key) j->idem_key = strdup(sb->idem_key);
    j->submitted = coord_now_s();
    j->state = JOB_UPLOADING;
    snprintf(j->owner, sizeof j->owner, "%s", c->msg_owner);
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
        if (canon[i]) { /* read in place: nothing arrives, nothing is written */
            f->path = canon[i];
            canon[i] = NULL;
            f->local = 1;
            f->dev = ids[i].dev;
            f->ino = ids[i].ino;
            f->mtime_ns = ids[i].mtime_ns;
            f->received = f->size;
            f->fd = -1;
            continue;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/f%zu", dir, i);
        f->path = strdup(path);
        f->fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        if (f->fd < 0) {
            coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__INTERNAL, "%s: cannot create: %s", path,
                        strerror(errno));
            coord_job_free(&j);
            free_canon(canon, sb->n_files);
            free(ids);
            return;
        }
    }
    free_canon(canon, sb->n_files);
    free(ids);
    coord_job_add(c, j);
    mlops_prom_add(c->obs.submitted, NULL, NULL, 1);
    job_logf(j, "job submitted from %s (%zu input files)", fname, j->nfiles);
    int all_empty = 1; /* nothing to upload: the files are empty or read in place */
    size_t nlocal = 0;
    for (size_t i = 0; i < j->nfiles; i++) {
        if (j->files[i].size && !j->files[i].local) all_empty = 0;
        nlocal += j->files[i].local != 0;
    }
    if (nlocal) job_logf(j, "%zu of %zu input files read in place (--local-inputs)", nlocal, j->nfiles);
    if (all_empty) {
        for (size_t i = 0; i < j->nfiles; i++) {
            if (j->files[i].fd >= 0) close(j->files[i].fd);
            j->files[i].fd = -1;
        }
        j->uploaded = 1;
        j->state = JOB_QUEUED;
        coord_job_start(c, j);
    }
    j->dirty = 1;
    ack_job(c, id, env->seq, j);
}

/* A complete upload, made durable by the journal's committer before the
 * batch that records the job as uploaded (journal_sync_path: the file,
 * then its directory, which holds its name): the loop does not wait for
 * the fsyncs, and the ack that follows goes out after that commit, so an
 * acknowledged upload is on disk. A failed fsync now fails the commit
 * (journal_error names the file); the old fsync on the loop ignored it. */
static int sync_upload(coord_t *c, const jfile_t *f)
{
    char dir[4200];
    const char *slash = strrchr(f->path, '/');
    size_t n = slash ? (size_t)(slash - f->path) : 0;
    if (n >= sizeof dir) n = 0;
    memcpy(dir, f->path, n);
    dir[n] = 0;
    int rc = journal_sync_path(c->journal, f->path);
    if (!rc && n) rc = journal_sync_path(c->journal, dir);
    return rc;
}

void coord_on_upload(coord_t *c, zframe_t *id, envelope_t *env)
{
    Mlops__UploadChunk *u = env->upload_chunk;
    job_t *j = u->job_id ? coord_job_find(c, u->job_id) : NULL;
    if (!j) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__NOT_FOUND, "no job %s", u->job_id ? u->job_id : "");
        return;
    }
    if (strcmp(j->owner, c->msg_owner)) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__DENIED,
                          "job %s was submitted with another key: only that key may upload its "
                          "inputs",
                          j->id);
        return;
    }
    if (j->state != JOB_UPLOADING || u->file_idx >= j->nfiles) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                    "job %s is not accepting uploads for file %u", j->id, u->file_idx);
        return;
    }
    jfile_t *f = &j->files[u->file_idx];
    if (u->offset != f->received || f->received + u->data.len > f->size) {
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                    "upload of %s out of order: offset %llu, expected %llu", f->name,
                    (unsigned long long)u->offset, (unsigned long long)f->received);
        return;
    }
    if (u->last && f->received + u->data.len != f->size) {
        /* the client has finished a file shorter than it declared: left
         * alone, the job would wait in "uploading" for ever */
        char msg[600];
        snprintf(msg, sizeof msg, "upload of %s ended at %llu of %llu bytes", f->name,
                 (unsigned long long)(f->received + u->data.len), (unsigned long long)f->size);
        coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, "%s", msg);
        coord_job_finish(c, j, JOB_FAILED, msg);
        return;
    }
    size_t off = 0;
    while (off < u->data.len) {
        ssize_t n = pwrite(f->fd, u->data.data + off, u->data.len - off, (off_t)(u->offset + off));
        if (n < 0) {
            if (errno == EINTR) continue;
            char msg[600];
            snprintf(msg, sizeof msg, "%s: write failed: %s", f->path, strerror(errno));
            coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__INTERNAL, "%s", msg);
            coord_job_finish(c, j, JOB_FAILED, msg);
            return;
        }
        off += (size_t)n;
    }
    f->received += u->data.len;
    mlops_prom_add(c->obs.uploaded, NULL, NULL, (double)u->data.len);
    if (f->received == f->size && f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
        if (sync_upload(c, f) != 0) {
            coord_reply_error(c, id, env->seq, MLOPS__ERROR_CODE__INTERNAL, "out of memory");
            coord_job_finish(c, j, JOB_FAILED, "out of memory");
            return;
        }
    }
    int done = 1;
    for (size_t i = 0; i < j->nfiles; i++)
        if (j->files[i].received != j->files[i].size) done = 0;
    if (done) {
        j->uploaded = 1;
        j->state = JOB_QUEUED;
        j->dirty = 1;
        job_logf(j, "upload complete");
        coord_job_start(c, j);
    }
    coord_reply_ack(c, id, env->seq);
}

