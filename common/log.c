/* log.c: see log.h. The role and level are the process's only logger
 * state, set once at start. */
#include "log.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char s_role[32] = "mlops";
static int s_level = MLOG_INFO;

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
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %c ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), s_role, (int)getpid(), tag[level & 3]);
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
