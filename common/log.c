/* log.c: see log.h. The role and level are the process's only logger
 * state, set once at start. */
#include "log.h"
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char s_role[32] = "mlops";
static int s_level = MLOG_INFO;
static int s_json;
static _Thread_local char t_job[64], t_task[96];

void mlog_set_json(int on) { s_json = on; }

void mlog_context(const char *job, const char *task)
{
    snprintf(t_job, sizeof t_job, "%s", job ? job : "");
    snprintf(t_task, sizeof t_task, "%s", task ? task : "");
}

/* One JSON line; jansson escapes the message (which may hold any byte a
 * peer sent: invalid UTF-8 is replaced rather than dropped). */
static void write_json(int level, const char *stamp, const char *msg)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    json_t *o = json_object();
    if (!o) return;
    json_object_set_new(o, "time", json_string(stamp));
    json_object_set_new(o, "level", json_string(names[level & 3]));
    json_object_set_new(o, "role", json_string(s_role));
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(o, "job", t_job[0] ? json_string(t_job) : json_null());
    json_object_set_new(o, "task", t_task[0] ? json_string(t_task) : json_null());
    json_t *m = json_string(msg);
    if (!m) {
        char clean[2048];
        size_t k = 0;
        for (const unsigned char *p = (const unsigned char *)msg; *p && k + 1 < sizeof clean; p++)
            clean[k++] = *p < 0x80 ? (char)*p : '?';
        clean[k] = 0;
        m = json_string(clean);
    }
    json_object_set_new(o, "message", m ? m : json_string(""));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) return;
    size_t n = strlen(s);
    s[n] = '\n'; /* the NUL's byte becomes the newline: one write per line */
    ssize_t w = write(STDERR_FILENO, s, n + 1);
    (void)w;
    free(s);
}

void mlog_init(const char *role, int level)
{
    snprintf(s_role, sizeof s_role, "%s", role ? role : "mlops");
    const char *env = getenv("MLOPS_LOG");
    if (env) {
        if (!strcmp(env, "debug")) level = MLOG_DEBUG;
        else if (!strcmp(env, "info")) level = MLOG_INFO;
        else if (!strcmp(env, "warn")) level = MLOG_WARN;
        else if (!strcmp(env, "error")) level = MLOG_ERROR;
    }
    s_level = level;
}

int mlog_level(void) { return s_level; }

void mlog_write(int level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    static const char tag[] = "DIWE";
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2048];
    char stamp[96];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
    if (s_json) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        write_json(level, stamp, msg);
        return;
    }
    int n = snprintf(line, sizeof line, "%s %s[%d] %c ", stamp, s_role, (int)getpid(),
                     tag[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
