/* cmd_cluster.c: `up` and `down`, a local cluster for one machine.
 *
 * `up` starts the coordinator and N workers as daemons (double fork +
 * setsid, so they outlive mlopsctl and are never its zombies; stdin from
 * /dev/null, stdout+stderr to DIR/logs/NAME.log, no other inherited fd,
 * so `$(mlopsctl up)` returns). Their pids go to DIR/pids ("NAME PID"
 * per line) as each one starts, so `down` can stop a half-started
 * cluster too. `up` returns only when the coordinator lists N alive
 * workers, within a bounded wait; otherwise it stops what it started and
 * exits 3. `down` only signals pids whose /proc cmdline is an mlops
 * program, so a stale pid file can never kill an unrelated process. */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "localin.h"
#include "keyring.h"
#include "output.h"

#define MAX_PROCS 257
#define PATH_LEN 4096

typedef struct {
    char name[64];
    pid_t pid;
} proc_entry;

/* snprintf for paths. The data dir is at most PATH_LEN - 128 bytes and
 * every suffix added to it is shorter than 128, so a truncated result
 * cannot happen for paths built from it; for others (PATH entries) a
 * truncated name simply fails access()/open(). */
static void pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    (void)n;
}

/* The data directory: --data-dir, else $MLOPS_HOME, else $HOME/.mlops. */
static int data_dir(const ctl_args *a, char *out, size_t len)
{
    const char *d = ctl_arg(a, "data-dir");
    const char *home = getenv("HOME");
    if (!d || !*d) d = getenv("MLOPS_HOME");
    int n;
    if (d && *d) n = snprintf(out, len, "%s", d);
    else if (home && *home) n = snprintf(out, len, "%s/.mlops", home);
    else {
        ctl_errorf("no data directory: give --data-dir or set MLOPS_HOME");
        return MLOPS_EINVAL;
    }
    if (n < 0 || (size_t)n >= len) {
        ctl_errorf("data directory path is too long");
        return MLOPS_EINVAL;
    }
    while (n > 1 && out[n - 1] == '/') out[--n] = 0;
    return 0;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* 1 if pid runs an mlops program (mlops-coordinator / mlops-worker) and
 * is not a zombie. */
static int is_mlops_process(pid_t pid)
{
    if (pid <= 1) return 0;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')'); /* state follows "(comm) " */
    if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X') return 0;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    f = fopen(path, "r");
    if (!f) return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0; /* argv[0] ends at the first NUL */
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    return !strncmp(base, "mlops-", 6);
}

static int read_pids(const char *file, proc_entry *out, size_t max, size_t *n)
{
    *n = 0;
    FILE *f = fopen(file, "r");
    if (!f) return errno == ENOENT ? MLOPS_ENOTFOUND : MLOPS_EIO;
    char line[256];
    while (fgets(line, sizeof line, f) && *n < max) {
        char name[64];
        int pid;
        if (sscanf(line, "%63s %d", name, &pid) == 2 && pid > 1) {
            snprintf(out[*n].name, sizeof out[*n].name, "%s", name);
            out[*n].pid = (pid_t)pid;
            (*n)++;
        }
    }
    fclose(f);
    return 0;
}

static int append_pid(const char *file, const char *name, pid_t pid)
{
    FILE *f = fopen(file, "a");
    if (!f) return MLOPS_EIO;
    fprintf(f, "%s %d\n", name, (int)pid);
    return fclose(f) == 0 ? 0 : MLOPS_EIO;
}

/* SIGTERM every live mlops pid, wait up to grace_ms, then SIGKILL.
 * Returns how many were running. */
/* 1 while pid exists and is not a zombie. A process that is exiting
 * has an empty cmdline before it becomes a zombie (slow under ASan), so
 * once signalled, a pid is watched through /proc/PID/stat. */
static int still_running(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ') return 0;
    return rp[2] != 'Z' && rp[2] != 'X';
}

/* `spawned`: pids this mlopsctl just started (they may not have exec'ed
 * yet); otherwise pids from a pid file, signalled only if they run an
 * mlops program. */
static int stop_procs(const proc_entry *p, size_t n, int grace_ms, int spawned)
{
    int running = 0;
    int signalled[MAX_PROCS] = {0};
    for (size_t i = 0; i < n && i < MAX_PROCS; i++)
        if (spawned ? still_running(p[i].pid) : is_mlops_process(p[i].pid)) {
            kill(p[i].pid, SIGTERM);
            signalled[i] = 1;
            running++;
        }
    int64_t deadline = zclock_mono() + grace_ms;
    for (int killed = 0;;) {
        int left = 0;
        for (size_t i = 0; i < n && i < MAX_PROCS; i++) left += signalled[i] && still_running(p[i].pid);
        if (!left) break;
        if (zclock_mono() >= deadline) {
            if (killed) break;
            for (size_t i = 0; i < n && i < MAX_PROCS; i++)
                if (signalled[i] && still_running(p[i].pid)) kill(p[i].pid, SIGKILL);
            killed = 1;
            deadline = zclock_mono() + 2000;
        }
        zclock_sleep(20);
    }
    return running;
}

/* Full path of program `name`: next to mlopsctl itself, else on PATH. */
static int find_program(const char *name, char *out, size_t len)
{
    char self[PATH_LEN];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            pathf(out, len, "%s/%s", self, name);
            if (access(out, X_OK) == 0) return 0;
        }
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t dl = colon ? (size_t)(colon - path) : strlen(path);
        pathf(out, len, "%.*s/%s", (int)dl, dl ? path : ".", name);
        if (access(out, X_OK) == 0) return 0;
        path = colon ? colon + 1 : NULL;
    }
    return MLOPS_ENOTFOUND;
}

/* Start argv[0] (a full path) as a daemon with output to `logpath`.
 * The grandchild's pid comes back over a close-on-exec pipe, followed by
 * an errno only if exec failed: EOF after the pid means it is running. */
static int spawn(char *const argv[], const char *logpath, pid_t *pid, char *err, size_t errlen)
{
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return mlops_seterr(err, errlen, MLOPS_EIO, "cannot open %s: %s", logpath, strerror(errno));
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        close(logfd);
        return mlops_seterr(err, errlen, MLOPS_EIO, "pipe: %s", strerror(errno));
    }
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        close(logfd);
        close(pfd[0]);
        close(pfd[1]);
        return mlops_seterr(err, errlen, MLOPS_EIO, "fork: %s", strerror(errno));
    }
    if (child == 0) {
        /* intermediate child: only async-signal-safe calls from here */
        setsid();
        pid_t g = fork();
        if (g < 0) _exit(1);
        if (g > 0) {
            int32_t v = (int32_t)g;
            ssize_t w = write(pfd[1], &v, sizeof v);
            _exit(w == (ssize_t)sizeof v ? 0 : 1);
        }
        int nullfd = open("/dev/null", O_RDONLY);
        if (nullfd >= 0) dup2(nullfd, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
            for (int fd = 3; fd < 1024; fd++)
                if (fd != pfd[1]) fcntl(fd, F_SETFD, FD_CLOEXEC);
        execv(argv[0], argv);
        int32_t e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(logfd);
    close(pfd[1]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    int32_t v[2];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(pfd[0], (char *)v + got, sizeof v - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof v) break;
    }
    close(pfd[0]);
    if (got < sizeof v[0])
        return mlops_seterr(err, errlen, MLOPS_EIO, "cannot start %s", argv[0]);
    *pid = (pid_t)v[0];
    if (got == sizeof v)
        return mlops_seterr(err, errlen, MLOPS_EIO, "cannot run %s: %s", argv[0], strerror(v[1]));
    return 0;
}

/* The last non-empty line of a log file, for error messages. */
static void last_log_line(const char *logpath, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen(logpath, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n) snprintf(out, len, "%s", line);
    }
    fclose(f);
}

/* Read the coordinator's endpoint file (written once it is bound). */
static int read_endpoint(const char *file, char *out, size_t len)
{
    FILE *f = fopen(file, "r");
    if (!f) return MLOPS_ENOTFOUND;
    char *r = fgets(out, (int)len, f);
    fclose(f);
    if (!r) return MLOPS_ENOTFOUND;
    size_t n = strlen(out);
    if (!n || out[n - 1] != '\n') return MLOPS_ENOTFOUND; /* partly written */
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) out[--n] = 0;
    return n ? 0 : MLOPS_ENOTFOUND;
}

/* Count workers in state "alive" in a `workers` reply. */
static size_t alive_workers(const json_t *doc)
{
    const json_t *ws = json_object_get(doc, "workers");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(ws); i++)
        n += !strcmp(mlops_jsonreply_str(json_array_get(ws, i), "state", ""), "alive");
    return n;
}

/* Names the first started process that is no longer running, or NULL. */
/* The first process that has exited. Judged by /proc/PID/stat, not by
 * the cmdline: a process we just forked is still a copy of mlopsctl until
 * it execs, and a worker re-execs itself once to pick its OpenBLAS
 * kernel, so its cmdline is briefly not an mlops program. */
static const proc_entry *first_dead(const proc_entry *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!still_running(p[i].pid)) return &p[i];
    return NULL;
}

static int up_failed(const char *dir, const char *pidfile, const proc_entry *procs, size_t n,
                     int code)
{
    stop_procs(procs, n, 5000, 1);
    unlink(pidfile);
    fprintf(stderr, "mlopsctl: stopped what was started; logs in %s/logs\n", dir);
    return code;
}

int cmd_up(ctl_ctx *ctx, const ctl_args *a)
{
    char err[1024];
    long nworkers = 2, port = 5555, slots = 0, wait_s = 30;
    const char *v;
    if (((v = ctl_arg(a, "workers")) &&
         ctl_parse_int(v, 0, MAX_PROCS - 1, "--workers", &nworkers, err, sizeof err)) ||
        ((v = ctl_arg(a, "port")) && ctl_parse_int(v, 0, 65535, "--port", &port, err, sizeof err)) ||
        ((v = ctl_arg(a, "slots")) && ctl_parse_int(v, 1, 1024, "--slots", &slots, err, sizeof err)) ||
        ((v = ctl_arg(a, "wait-timeout")) &&
         ctl_parse_int(v, 1, 3600, "--wait-timeout", &wait_s, err, sizeof err))) {
        ctl_errorf("up: %s", err);
        return CTL_EXIT_USAGE;
    }
    char dir[PATH_LEN - 128];
    if (data_dir(a, dir, sizeof dir)) return CTL_EXIT_USAGE;
    char pidfile[PATH_LEN], logdir[PATH_LEN], coorddir[PATH_LEN], epfile[PATH_LEN];
    pathf(pidfile, sizeof pidfile, "%s/pids", dir);
    pathf(logdir, sizeof logdir, "%s/logs", dir);
    pathf(coorddir, sizeof coorddir, "%s/coordinator", dir);
    pathf(epfile, sizeof epfile, "%s/coordinator/endpoint", dir);
    if (mkdir_p(logdir) != 0 || mkdir_p(coorddir) != 0) {
        ctl_errorf("cannot create %s: %s", dir, strerror(errno));
        return CTL_EXIT_FAILED;
    }

    /* secure by default: the cluster's keys live in DIR/keys, made once
     * and kept, so a cluster restarted on the same data dir keeps them */
    char keydir[PATH_LEN], ccert[PATH_LEN], wcert[PATH_LEN], wkeys[PATH_LEN], ckeys[PATH_LEN],
        srvkey[PATH_LEN];
    pathf(keydir, sizeof keydir, "%s/keys", dir);
    pathf(ccert, sizeof ccert, "%s/keys/coordinator.key", dir);
    pathf(srvkey, sizeof srvkey, "%s/keys/coordinator.key", dir);
    pathf(wcert, sizeof wcert, "%s/keys/worker.key", dir);
    pathf(wkeys, sizeof wkeys, "%s/keys/workers", dir);
    pathf(ckeys, sizeof ckeys, "%s/keys/clients", dir);
    int insecure = ctl_flag(a, "insecure");
    /* a local cluster reads the user's files in place: it runs as the
     * user, binds loopback only and admits only the keys `up` made, so
     * "/" lets it read what the user could upload (docs/security.md) */
    const char *local_inputs = ctl_flag(a, "no-local-inputs") ? NULL : ctl_arg(a, "local-inputs");
    if (!local_inputs && !ctl_flag(a, "no-local-inputs")) local_inputs = "/";
    char local_abs[PATH_LEN] = ""; /* relative entries made absolute here, where cwd is known */
    if (local_inputs) {
        char cwd[PATH_LEN] = "/", one[PATH_LEN], absd[PATH_LEN];
        if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, "/");
        for (const char *p = local_inputs; *p;) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n && n < sizeof one) {
                memcpy(one, p, n);
                one[n] = 0;
                size_t used = strlen(local_abs);
                if (mlops_localin_absolute(cwd, one, absd, sizeof absd) != 0 ||
                    (size_t)snprintf(local_abs + used, sizeof local_abs - used, "%s%s",
                                     used ? "," : "", absd) >= sizeof local_abs - used) {
                    ctl_errorf("up: --local-inputs: path too long");
                    return CTL_EXIT_USAGE;
                }
            }
            p += n + (e ? 1 : 0);
        }
        local_inputs = local_abs;
    }
    if (!insecure && ctl_cluster_keys(keydir, err, sizeof err) != 0) {
        ctl_errorf("up: %s", err);
        return CTL_EXIT_FAILED;
    }
    if (insecure) mlops_keyring_use_dir(NULL);
    else mlops_keyring_use_dir(keydir);

    proc_entry procs[MAX_PROCS];
    size_t nprocs = 0;
    if (read_pids(pidfile, procs, MAX_PROCS, &nprocs) == 0) {
        for (size_t i = 0; i < nprocs; i++)
            if (is_mlops_process(procs[i].pid)) {
                ctl_errorf("a cluster is already running with data dir %s (%s is pid %d); "
                           "stop it with 'mlopsctl down --data-dir %s'",
                           dir, procs[i].name, (int)procs[i].pid, dir);
                return CTL_EXIT_FAILED;
            }
        unlink(pidfile); /* stale */
    }
    nprocs = 0;

    char coord_bin[PATH_LEN], worker_bin[PATH_LEN];
    if (find_program("mlops-coordinator", coord_bin, sizeof coord_bin) ||
        find_program("mlops-worker", worker_bin, sizeof worker_bin)) {
        ctl_errorf("cannot find mlops-coordinator and mlops-worker next to mlopsctl or on PATH");
        return CTL_EXIT_FAILED;
    }

    int64_t deadline = zclock_mono() + wait_s * 1000;
    char bind[64], logpath[PATH_LEN];
    if (port) snprintf(bind, sizeof bind, "tcp://127.0.0.1:%ld", port);
    else snprintf(bind, sizeof bind, "tcp://127.0.0.1:*");
    unlink(epfile);
    pathf(logpath, sizeof logpath, "%s/coordinator.log", logdir);
    {
        char *argv[24];
        int n = 0;
        argv[n++] = coord_bin, argv[n++] = "--bind", argv[n++] = bind;
        argv[n++] = "--data-dir", argv[n++] = coorddir;
        argv[n++] = "--metrics-listen", argv[n++] = "127.0.0.1:0";
        argv[n++] = "--http", argv[n++] = "127.0.0.1:0";
        if (insecure) {
            argv[n++] = "--insecure";
        } else {
            argv[n++] = "--cert", argv[n++] = ccert;
            argv[n++] = "--worker-keys", argv[n++] = wkeys;
            argv[n++] = "--client-keys", argv[n++] = ckeys;
        }
        if (local_inputs) argv[n++] = "--local-inputs", argv[n++] = (char *)local_inputs;
        argv[n] = NULL;
        pid_t pid;
        if (spawn(argv, logpath, &pid, err, sizeof err)) {
            ctl_errorf("%s", err);
            return CTL_EXIT_FAILED;
        }
        snprintf(procs[nprocs].name, sizeof procs[nprocs].name, "coordinator");
        procs[nprocs++].pid = pid;
        append_pid(pidfile, "coordinator", pid);
    }

    /* The coordinator writes its bound endpoint once bound. */
    char endpoint[512];
    for (;;) {
        if (read_endpoint(epfile, endpoint, sizeof endpoint) == 0) break;
        if (!still_running(procs[0].pid)) {
            char last[1024];
            last_log_line(logpath, last, sizeof last);
            ctl_errorf("the coordinator exited during start-up%s%s", *last ? ": " : "", last);
            return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
        }
        if (zclock_mono() >= deadline) {
            ctl_errorf("the coordinator did not write %s within %ld s", epfile, wait_s);
            return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_UNREACHABLE);
        }
        zclock_sleep(20);
    }

    for (long i = 1; i <= nworkers; i++) {
        char name[64], wdir[PATH_LEN], slots_s[32];
        snprintf(name, sizeof name, "worker-%ld", i);
        pathf(wdir, sizeof wdir, "%s/%s", dir, name);
        pathf(logpath, sizeof logpath, "%s/%s.log", logdir, name);
        snprintf(slots_s, sizeof slots_s, "%ld", slots);
        char *argv[] = {worker_bin, "--coordinator", endpoint, "--data-dir", wdir, "--name", name,
                        "--metrics-listen", "127.0.0.1:0", NULL, NULL, NULL, NULL, NULL, NULL,
                        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        int n = 9;
        if (!insecure) {
            argv[n++] = "--cert", argv[n++] = wcert;
            argv[n++] = "--server-key", argv[n++] = srvkey;
            argv[n++] = "--worker-keys", argv[n++] = wkeys;
            argv[n++] = "--client-keys", argv[n++] = ckeys;
        }
        if (slots) argv[n++] = "--slots", argv[n++] = slots_s;
        if (local_inputs) argv[n++] = "--local-inputs", argv[n++] = (char *)local_inputs;
        argv[n] = NULL;
        pid_t pid;
        if (spawn(argv, logpath, &pid, err, sizeof err)) {
            ctl_errorf("%s", err);
            return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
        }
        snprintf(procs[nprocs].name, sizeof procs[nprocs].name, "%s", name);
        procs[nprocs++].pid = pid;
        append_pid(pidfile, name, pid);
    }

    /* Wait until the coordinator lists every worker alive. */
    ctl_client *c = NULL;
    size_t alive = 0;
    char last_err[1024] = "";
    for (;;) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) break;
        const proc_entry *dead = first_dead(procs, nprocs);
        if (dead) {
            char last[1024];
            pathf(logpath, sizeof logpath, "%s/%s.log", logdir, dead->name);
            last_log_line(logpath, last, sizeof last);
            ctl_errorf("%s exited during start-up%s%s", dead->name, *last ? ": " : "", last);
            ctl_client_destroy(&c);
            return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
        }
        if (!c) {
            int t = left < ctx->timeout_ms ? (int)left : ctx->timeout_ms;
            c = ctl_client_new(endpoint, "the coordinator", t < 1000 ? t : 1000, err, sizeof err);
            if (!c) {
                ctl_errorf("%s", err);
                return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
            }
        }
        json_t *doc = NULL;
        int rc = ctl_client_query(c, "workers", NULL, NULL, 0, &doc, NULL, last_err, sizeof last_err);
        if (rc == 0) {
            alive = alive_workers(doc);
            json_decref(doc);
            if (alive >= (size_t)nworkers) break;
        } else if (rc != MLOPS_ETIMEOUT) {
            ctl_errorf("%s", last_err);
            ctl_client_destroy(&c);
            return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
        }
        zclock_sleep(50);
    }
    ctl_client_destroy(&c);
    if (alive < (size_t)nworkers) {
        if (*last_err) ctl_errorf("%s", last_err);
        ctl_errorf("only %zu of %ld workers registered with the coordinator at %s within %ld s",
                   alive, nworkers, endpoint, wait_s);
        return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_UNREACHABLE);
    }

    /* --serve: mlops-serve beside the cluster, with the client key; it
     * loads the model itself (and waits for it if it is not there yet) */
    char serve_url[160] = "";
    const char *serve_model = ctl_arg(a, "serve");
    if (serve_model) {
        char serve_bin[PATH_LEN], sdir[PATH_LEN], addrfile[PATH_LEN], ckey[PATH_LEN];
        const char *listen = ctl_arg(a, "serve-listen");
        pathf(sdir, sizeof sdir, "%s/serve", dir);
        pathf(addrfile, sizeof addrfile, "%s/serve/serve.addr", dir);
        pathf(ckey, sizeof ckey, "%s/keys/client.key", dir);
        pathf(logpath, sizeof logpath, "%s/serve.log", logdir);
        if (find_program("mlops-serve", serve_bin, sizeof serve_bin)) {
            ctl_errorf("up --serve: cannot find mlops-serve next to mlopsctl or on PATH");
            return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
        }
        mkdir_p(sdir);
        unlink(addrfile);
        char *argv[16];
        int n = 0;
        argv[n++] = serve_bin, argv[n++] = "--coordinator", argv[n++] = endpoint;
        argv[n++] = "--model", argv[n++] = (char *)serve_model;
        argv[n++] = "--listen", argv[n++] = (char *)(listen ? listen : "127.0.0.1:8080");
        argv[n++] = "--addr-file", argv[n++] = addrfile;
        if (insecure) argv[n++] = "--insecure";
        else argv[n++] = "--key", argv[n++] = ckey, argv[n++] = "--server-key", argv[n++] = srvkey;
        argv[n] = NULL;
        pid_t pid;
        if (spawn(argv, logpath, &pid, err, sizeof err)) {
            ctl_errorf("%s", err);
            return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
        }
        snprintf(procs[nprocs].name, sizeof procs[nprocs].name, "serve");
        procs[nprocs++].pid = pid;
        append_pid(pidfile, "serve", pid);
        char addr[128];
        while (read_endpoint(addrfile, addr, sizeof addr) != 0) {
            if (!still_running(pid) || zclock_mono() >= deadline) {
                char last[1024];
                last_log_line(logpath, last, sizeof last);
                ctl_errorf("mlops-serve did not start%s%s", *last ? ": " : "", last);
                return up_failed(dir, pidfile, procs, nprocs, CTL_EXIT_FAILED);
            }
            zclock_sleep(20);
        }
        snprintf(serve_url, sizeof serve_url, "http://%s/", addr);
    }

    /* each daemon wrote the address its metrics listener bound before it
     * registered, so the files are there now */
    json_t *metrics = json_object();
    char mfile[PATH_LEN], addr[128];
    pathf(mfile, sizeof mfile, "%s/metrics.addr", coorddir);
    if (read_endpoint(mfile, addr, sizeof addr) == 0)
        json_object_set_new(metrics, "coordinator", json_sprintf("http://%s/metrics", addr));
    for (long i = 1; i <= nworkers; i++) {
        char name[64];
        snprintf(name, sizeof name, "worker-%ld", i);
        pathf(mfile, sizeof mfile, "%s/%s/metrics.addr", dir, name);
        if (read_endpoint(mfile, addr, sizeof addr) == 0)
            json_object_set_new(metrics, name, json_sprintf("http://%s/metrics", addr));
    }
    char dashboard[160] = "";
    pathf(mfile, sizeof mfile, "%s/http.addr", coorddir);
    if (read_endpoint(mfile, addr, sizeof addr) == 0)
        snprintf(dashboard, sizeof dashboard, "http://%s/", addr);
    if (ctx->json) {
        /* the cluster is up either way; only the report can fail, on a
         * data dir that is not UTF-8 (JSON strings must be) */
        json_t *doc = json_pack("{s:s, s:I, s:s, s:O, s:s}", "endpoint", endpoint, "workers",
                                (json_int_t)nworkers, "data_dir", dir, "metrics", metrics,
                                "dashboard", dashboard);
        if (doc && *serve_url) json_object_set_new(doc, "serve", json_string(serve_url));
        int rc = doc ? ctl_json_print(stdout, doc) : MLOPS_EINVAL;
        json_decref(doc);
        if (rc) {
            ctl_errorf("up: the cluster is up, but data dir %s is not valid UTF-8 for -o json",
                       dir);
            json_decref(metrics);
            return CTL_EXIT_FAILED;
        }
    } else if (isatty(STDOUT_FILENO)) {
        printf("mlops cluster up: coordinator %s, %ld workers, data in %s\n", endpoint, nworkers, dir);
        printf("export MLOPS_COORDINATOR=%s\n", endpoint);
        const char *k;
        json_t *u;
        json_object_foreach(metrics, k, u) printf("metrics: %-12s %s\n", k, json_string_value(u));
        if (*dashboard) printf("dashboard: %s\n", dashboard);
        if (*serve_url) printf("serving: %s (%s)\n", serve_url, serve_model);
        if (!insecure)
            printf("export MLOPS_KEY=%s/client.key MLOPS_SERVER_KEY=%s\n", keydir, srvkey);
    } else {
        printf("%s\n", endpoint);
        /* stdout stays the endpoint alone, for $(mlopsctl up) */
        const char *k;
        json_t *u;
        json_object_foreach(metrics, k, u)
            fprintf(stderr, "mlopsctl: metrics of %s at %s\n", k, json_string_value(u));
        if (*dashboard) fprintf(stderr, "mlopsctl: dashboard at %s\n", dashboard);
        if (*serve_url) fprintf(stderr, "mlopsctl: serving %s at %s\n", serve_model, serve_url);
    }
    json_decref(metrics);
    return CTL_EXIT_OK;
}

int cmd_down(ctl_ctx *ctx, const ctl_args *a)
{
    (void)ctx;
    char dir[PATH_LEN - 128];
    if (data_dir(a, dir, sizeof dir)) return CTL_EXIT_USAGE;
    char pidfile[PATH_LEN], epfile[PATH_LEN];
    pathf(pidfile, sizeof pidfile, "%s/pids", dir);
    pathf(epfile, sizeof epfile, "%s/coordinator/endpoint", dir);
    proc_entry procs[MAX_PROCS];
    size_t n = 0;
    int rc = read_pids(pidfile, procs, MAX_PROCS, &n);
    if (rc == MLOPS_ENOTFOUND) {
        fprintf(stderr, "mlopsctl: no cluster running with data dir %s\n", dir);
        return CTL_EXIT_OK;
    }
    if (rc) {
        ctl_errorf("cannot read %s: %s", pidfile, strerror(errno));
        return CTL_EXIT_FAILED;
    }
    int stopped = stop_procs(procs, n, 10000, 0);
    unlink(pidfile);
    unlink(epfile);
    fprintf(stderr, "mlopsctl: stopped %d process%s (data dir %s)\n", stopped,
            stopped == 1 ? "" : "es", dir);
    return CTL_EXIT_OK;
}
