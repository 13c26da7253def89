/* cmd_submit.c: `submit JOB.yaml [--set k=v]... [--wait] [-o json]`.
 *
 * Everything that can be checked locally is checked before a byte is
 * sent: the job file parses and validates with the --set overrides
 * applied, its input files exist and are regular files, and the CSV
 * header has every column the job uses. Any problem is one line and exit
 * 2. Then SubmitBegin carries the canonical YAML; the coordinator's
 * JobAck names the job, and each input file follows as UploadChunks with
 * a window of UPLOAD_WINDOW chunks in flight (acks matched by seq), so
 * the upload runs at socket speed rather than one round trip per chunk.
 *
 * Every submit carries an idempotency key (--idempotency-key, else 128
 * random bits): the coordinator journals it with the job and answers a
 * repeat with the same job id, so a submit sent again after a lost reply
 * (--retries, or a script running mlopsctl again with the same key)
 * never makes two jobs. An upload that stops answering starts over from
 * SubmitBegin, which resets the job's upload to offset 0.
 *
 * To a coordinator on this host (a loopback endpoint) each plain CSV
 * input is also offered by its absolute path; one started with
 * --local-inputs (as `up` does) takes the files it may read in place,
 * named in JobAck.local_files, and those are not uploaded. Any other
 * coordinator ignores the offer, and --upload sends no offer.
 *
 * Output: the job id; with -o json one JSON document instead, so that a
 * script reads one thing: {"job": ID}, or with --wait the ended job's
 * result (the document `result JOB -o json` prints), which the wait's
 * last reply already holds: no second connection, no second query. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "decompress.h"
#include "err.h"
#include "jobspec.h"
#include "localin.h"

#define MAX_JOBFILE (16u << 20)
#define MAX_HEADER (1u << 20)
#define MAX_SETS 128
#define UPLOAD_CHUNK (1u << 20)
#define UPLOAD_WINDOW 8

/* Read a whole (small) file into a malloc'd NUL-terminated buffer. */
static int read_small_file(const char *path, size_t max, char **out, size_t *len, char *err,
                           size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return mlops_seterr(err, errlen, MLOPS_EINVAL, "cannot read %s: %s", path, strerror(errno));
    char *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "cannot read %s", path);
    }
    if (n > max) {
        free(buf);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: larger than %zu bytes, not a job file",
                            path, max);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The first record of a CSV file (RFC 4180: quoted fields with ""
 * escapes, a quoted field may span lines; a UTF-8 BOM is skipped). */
static int read_csv_header(const char *path, char ***names_out, size_t *n_out, char *err,
                           size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    /* .csv.gz and .csv.zst: the header of the plain text */
    int drc = mlops_decompress_head(path, path, mlops_decompress_kind(path), MAX_HEADER, &buf, &len,
                                    err, errlen);
    if (drc) return drc == MLOPS_ENOMEM ? drc : MLOPS_EINVAL;
    size_t i = 0;
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) i = 3;
    if (i >= len) {
        free(buf);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: empty file, expected a header row", path);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    char *field = malloc(MAX_HEADER + 1);
    int rc = 0, ended = 0;
    if (!field) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        goto out;
    }
    while (!ended) {
        size_t fl = 0;
        if (i < len && buf[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                                      "%s: header: unterminated quoted field", path);
                    goto out;
                }
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') {
                        field[fl++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                field[fl++] = buf[i++];
            }
            if (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                                  "%s: header: text after a closing quote", path);
                goto out;
            }
        } else {
            while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') field[fl++] = buf[i++];
        }
        if (i >= len && len == MAX_HEADER) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: header row longer than %u bytes",
                              path, MAX_HEADER);
            goto out;
        }
        if (i >= len || buf[i] == '\n' || buf[i] == '\r') ended = 1;
        else i++; /* comma */
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
                goto out;
            }
            names = nn;
        }
        field[fl] = 0;
        if (!(names[n] = strdup(field))) {
            rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (len < MAX_HEADER) { /* the whole file is in buf: is there a record after the header? */
        while (i < len && (buf[i] == '\r' || buf[i] == '\n' || buf[i] == ' ' || buf[i] == '\t')) i++;
        if (i >= len) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: header only, no data rows", path);
            goto out;
        }
    }
out:
    free(field);
    free(buf);
    if (rc) {
        free_names(names, n);
        return rc;
    }
    *names_out = names;
    *n_out = n;
    return 0;
}

/* Send every chunk of file `idx` with up to UPLOAD_WINDOW unacknowledged. */
static int upload_file(ctl_client *c, const char *job_id, uint32_t idx, const char *path,
                       uint64_t size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return mlops_seterr(err, errlen, MLOPS_EIO, "cannot read %s: %s", path, strerror(errno));
    uint8_t *buf = malloc(UPLOAD_CHUNK);
    if (!buf) {
        fclose(f);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    }
    uint64_t pending[UPLOAD_WINDOW];
    size_t inflight = 0;
    uint64_t offset = 0;
    int sent_last = 0, rc = 0;
    while (!rc && (!sent_last || inflight)) {
        while (!sent_last && inflight < UPLOAD_WINDOW) {
            size_t want = size - offset < UPLOAD_CHUNK ? (size_t)(size - offset) : UPLOAD_CHUNK;
            size_t got = want ? fread(buf, 1, want, f) : 0;
            if (got != want) {
                rc = mlops_seterr(err, errlen, MLOPS_EIO, "%s: file changed or unreadable during upload",
                                  path);
                break;
            }
            envelope_t req;
            wire_init(&req, 0);
            Mlops__UploadChunk ch = MLOPS__UPLOAD_CHUNK__INIT;
            ch.job_id = (char *)job_id;
            ch.file_idx = idx;
            ch.offset = offset;
            ch.data.data = buf;
            ch.data.len = got;
            ch.last = offset + got == size;
            req.body_case = MLOPS__ENVELOPE__BODY_UPLOAD_CHUNK;
            req.upload_chunk = &ch;
            if ((rc = ctl_client_send(c, &req, err, errlen))) break;
            pending[inflight++] = req.seq;
            offset += got;
            sent_last = ch.last;
        }
        if (rc || !inflight) break;
        envelope_t *rep = NULL;
        if ((rc = ctl_client_recv(c, &rep, err, errlen))) break;
        size_t k = 0;
        while (k < inflight && pending[k] != rep->seq) k++;
        if (k == inflight) { /* not one of ours: a late reply, ignore */
            wire_free(&rep);
            continue;
        }
        if (rep->body_case == MLOPS__ENVELOPE__BODY_ERROR) {
            char why[512];
            rc = ctl_client_error(rep, why, sizeof why);
            mlops_seterr(err, errlen, rc, "upload of %s refused: %s", path, why);
        } else if (rep->body_case != MLOPS__ENVELOPE__BODY_ACK) {
            rc = mlops_seterr(err, errlen, MLOPS_EPROTO, "upload of %s: unexpected %s reply", path,
                              wire_body_name(rep));
        }
        pending[k] = pending[--inflight];
        wire_free(&rep);
    }
    free(buf);
    fclose(f);
    return rc;
}

/* The coordinator runs on this host, so a path here names the same file
 * there: a loopback or IPC endpoint. To any other, a path would say
 * nothing (and tell a remote host the user's file names). */
static int local_endpoint(const char *ep)
{
    if (!ep) return 0;
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) return 1;
    if (strncmp(ep, "tcp://", 6)) return 0;
    ep += 6;
    return !strncmp(ep, "127.", 4) || !strncmp(ep, "localhost:", 10) || !strncmp(ep, "[::1]:", 6);
}

/* Offer input file `fl` to be read in place: its absolute path (made
 * here, where the working directory is known) and mtime into pf. Only a
 * plain CSV input: the coordinator reads compressed files, join tables
 * and IDX files itself, from an upload. */
static void offer_local(const mlops_jobspec_t *spec, const mlops_jobspec_file_t *fl,
                        Mlops__InputFile *pf, char *abs, size_t abslen)
{
    struct stat st;
    if (spec->input.format != MLOPS_INPUT_CSV || strcmp(fl->role, "input") ||
        mlops_decompress_kind(fl->path) != MLOPS_COMP_NONE || stat(fl->path, &st) != 0)
        return;
    char cwd[4096] = "/";
    if (fl->path[0] != '/' && !getcwd(cwd, sizeof cwd)) return;
    if (mlops_localin_absolute(cwd, fl->path, abs, abslen) != 0) return;
    pf->local_path = abs;
    pf->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* File i was taken by the coordinator to be read in place. */
static int taken_local(const Mlops__JobAck *ack, size_t i)
{
    for (size_t k = 0; k < ack->n_local_files; k++)
        if (ack->local_files[k] == i) return 1;
    return 0;
}

/* 32 hex digits from the kernel's random source. */
static int make_key(char out[33], char *err, size_t errlen)
{
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return mlops_seterr(err, errlen, MLOPS_EIO, "cannot make an idempotency key: %s",
                                strerror(errno));
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof b; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* Validate everything locally; on success *spec, *files, *nfiles, *sizes. */

/* A join's right table must hold its key and the columns it appends
 * (the coordinator checks again, and that the table has rows). */
static int check_join_header(const mlops_jobspec_t *s, size_t ji, const char *file,
                             const char *const *names, size_t n, char *err, size_t errlen)
{
    if (ji >= s->njoin) return 0;
    const mlops_jobspec_join_t *jn = &s->join[ji];
    for (size_t c = 0; c <= jn->ncolumns; c++) {
        const char *want = c ? jn->columns[c - 1] : jn->on;
        int hit = 0;
        for (size_t k = 0; k < n && !hit; k++) hit = names[k] && !strcmp(names[k], want);
        if (!hit && !c)
            return mlops_seterr(err, errlen, MLOPS_ENOTFOUND,
                                "%s: join key '%s' (join[%zu].on) is not in the header", file, want, ji);
        if (!hit)
            return mlops_seterr(err, errlen, MLOPS_ENOTFOUND,
                                "%s: column '%s' (join[%zu].columns) is not in the header", file, want,
                                ji);
    }
    return 0;
}
static int validate(const char *path, const char *const *sets, size_t nsets, mlops_jobspec_t **spec,
                    mlops_jobspec_file_t **files, size_t *nfiles, uint64_t **sizes, char *err,
                    size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_small_file(path, MAX_JOBFILE, &text, &len, err, errlen);
    if (rc) return rc;
    rc = mlops_jobspec_parse_with_sets(text, len, path, sets, nsets, spec, err, errlen);
    free(text);
    if (rc) return MLOPS_EINVAL;
    char *dir = mlops_jobspec_dirname(path);
    /* a job file in the current directory: keep its input names as
     * written ("bad.csv:3: ...", not "./bad.csv:3: ...") */
    if (!dir) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    char why[600];
    rc = mlops_jobspec_inputs_err(*spec, strcmp(dir, ".") ? dir : "", files, nfiles, why, sizeof why);
    free(dir);
    if (rc) return mlops_seterr(err, errlen, rc == MLOPS_ENOMEM ? rc : MLOPS_EINVAL, "%s: %s", path, why);
    char **first = NULL; /* the first input's header: every file must agree */
    size_t nfirst = 0;
    const char *first_name = NULL;
    *sizes = calloc(*nfiles ? *nfiles : 1, sizeof **sizes);
    if (!*sizes) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < *nfiles; i++) {
        const mlops_jobspec_file_t *fl = &(*files)[i];
        struct stat st;
        if (stat(fl->path, &st) != 0) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: %s file '%s': %s", path, fl->role,
                              fl->path, strerror(errno));
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: %s file '%s' is not a regular file",
                              path, fl->role, fl->path);
            break;
        }
        if (access(fl->path, R_OK) != 0) {
            rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: %s file '%s': %s", path, fl->role,
                              fl->path, strerror(errno));
            break;
        }
        (*sizes)[i] = (uint64_t)st.st_size;
        if (!strncmp(fl->role, "join.", 5)) { /* a join's right table: its key and columns */
            char **names = NULL;
            size_t n = 0;
            if ((rc = read_csv_header(fl->path, &names, &n, err, errlen))) break;
            rc = check_join_header(*spec, strtoul(fl->role + 5, NULL, 10), fl->path,
                                   (const char *const *)names, n, err, errlen);
            free_names(names, n);
            if (rc) break;
            continue;
        }
        if ((*spec)->input.format != MLOPS_INPUT_CSV || strcmp(fl->role, "input")) continue;
        char **names = NULL;
        size_t n = 0;
        if ((rc = read_csv_header(fl->path, &names, &n, err, errlen))) break;
        rc = mlops_jobspec_check_header(*spec, fl->path, (const char *const *)names, n, err, errlen);
        if (!rc && first) {
            int same = n == nfirst;
            for (size_t c = 0; same && c < n; c++) same = !strcmp(names[c], first[c]);
            if (!same)
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "%s: header differs from %s's", fl->path,
                                  first_name);
        }
        if (!rc && !first) {
            first = names;
            nfirst = n;
            first_name = fl->path;
        } else
            free_names(names, n);
    }
    free_names(first, nfirst);
    return rc ? (rc == MLOPS_ENOMEM ? rc : MLOPS_EINVAL) : 0;
}

int cmd_submit(ctl_ctx *ctx, const ctl_args *a)
{
    char err[1024];
    const char *path = a->pos[0];
    const char *sets[MAX_SETS];
    size_t nsets = ctl_arg_all(a, "set", sets, MAX_SETS);
    mlops_jobspec_t *spec = NULL;
    mlops_jobspec_file_t *files = NULL;
    size_t nfiles = 0;
    uint64_t *sizes = NULL;
    char *yaml = NULL;
    ctl_client *c = NULL;
    envelope_t *rep = NULL;
    Mlops__InputFile *pf = NULL, **ppf = NULL;
    char *abs = NULL; /* nfiles absolute paths of 4096 bytes, for local_path */
    char job_id[128] = "";
    int code = CTL_EXIT_FAILED;

    int rc = validate(path, sets, nsets, &spec, &files, &nfiles, &sizes, err, sizeof err);
    if (rc) {
        ctl_errorf("%s", err);
        code = ctl_exit_code(rc); /* 2 for the job file, 1 for out of memory */
        goto out;
    }
    if (ctl_flag(a, "dry-run")) {
        fprintf(stderr, "%s: ok (%zu input file%s)\n", path, nfiles, nfiles == 1 ? "" : "s");
        code = CTL_EXIT_OK;
        goto out;
    }
    size_t ylen = 0;
    if (mlops_jobspec_to_yaml(spec, &yaml, &ylen) != 0) {
        ctl_errorf("out of memory");
        goto out;
    }
    c = ctl_client_new(ctx->endpoint, "the coordinator", ctx->timeout_ms, err, sizeof err);
    if (!c) {
        ctl_errorf("%s", err);
        code = CTL_EXIT_USAGE;
        goto out;
    }

    pf = calloc(nfiles ? nfiles : 1, sizeof *pf);
    ppf = calloc(nfiles ? nfiles : 1, sizeof *ppf);
    abs = calloc(nfiles ? nfiles : 1, 4096);
    int offer = !ctl_flag(a, "upload") && local_endpoint(ctx->endpoint);
    if (!pf || !ppf || !abs) {
        ctl_errorf("out of memory");
        goto out;
    }
    for (size_t i = 0; i < nfiles; i++) {
        mlops__input_file__init(&pf[i]);
        pf[i].role = (char *)files[i].role;
        pf[i].name = files[i].path;
        pf[i].size = sizes[i];
        if (offer) offer_local(spec, &files[i], &pf[i], abs + i * 4096, 4096);
        ppf[i] = &pf[i];
    }
    envelope_t req;
    wire_init(&req, 0);
    Mlops__SubmitBegin sb = MLOPS__SUBMIT_BEGIN__INIT;
    sb.spec_yaml.data = (uint8_t *)yaml;
    sb.spec_yaml.len = ylen;
    sb.spec_name = (char *)path;
    sb.n_files = nfiles;
    sb.files = ppf;
    char key[140];
    const char *given = ctl_arg(a, "idempotency-key");
    if (given) {
        if (!*given || strlen(given) > 128) {
            ctl_errorf("submit: --idempotency-key: expected 1 to 128 characters");
            code = CTL_EXIT_USAGE;
            goto out;
        }
        snprintf(key, sizeof key, "%s", given);
    } else if ((rc = make_key(key, err, sizeof err))) {
        ctl_errorf("%s", err);
        goto out;
    }
    sb.idem_key = key;
    req.body_case = MLOPS__ENVELOPE__BODY_SUBMIT_BEGIN;
    req.submit_begin = &sb;
    ctl_client_set_retries(c, ctx->retries);
    for (int round = 0;; round++) {
        wire_free(&rep);
        if ((rc = ctl_client_call_retry(c, &req, &rep, err, sizeof err))) {
            ctl_errorf("%s", err);
            code = ctl_exit_code(rc);
            goto out;
        }
        if (rep->body_case != MLOPS__ENVELOPE__BODY_JOB_ACK || !rep->job_ack ||
            !rep->job_ack->job_id || !*rep->job_ack->job_id) {
            ctl_errorf("the coordinator answered %s to SubmitBegin", wire_body_name(rep));
            goto out;
        }
        snprintf(job_id, sizeof job_id, "%s", rep->job_ack->job_id);
        rc = 0;
        for (size_t i = 0; !rc && !rep->job_ack->uploaded && i < nfiles; i++)
            if (!taken_local(rep->job_ack, i))
                rc = upload_file(c, job_id, (uint32_t)i, files[i].path, sizes[i], err, sizeof err);
        if (!rc) break;
        if (rc != MLOPS_ETIMEOUT || round >= ctx->retries) {
            ctl_errorf("job %s: %s", job_id, err);
            code = ctl_exit_code(rc);
            goto out;
        }
    }
    int wait = ctl_flag(a, "wait");
    if (!ctx->json) printf("%s\n", job_id);
    else if (!wait) {
        json_t *o = json_pack("{s:s}", "job", job_id);
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (t) printf("%s\n", t);
        free(t);
        json_decref(o);
    }
    fflush(stdout);
    code = CTL_EXIT_OK;
    if (wait) {
        ctl_client_destroy(&c);
        code = ctl_follow_job(ctx, job_id);
    }
out:
    wire_free(&rep);
    ctl_client_destroy(&c);
    free(pf);
    free(ppf);
    free(abs);
    free(yaml);
    free(sizes);
    if (files) mlops_jobspec_files_free(&files, nfiles);
    mlops_jobspec_destroy(&spec);
    return code;
}
