/* log.h: the one logger. Lines go to stderr as
 *   2026-11-26T23:40:01.123Z coordinator[1234] I message
 * The role is set once per process; verbosity from -v (debug) or
 * MLOPS_LOG=debug|info|warn|error.
 *
 * With --log-format json (mlog_set_json), each line is one JSON object
 * for log shippers instead:
 *   {"time":"2026-11-26T23:40:01.123Z","level":"info","role":"worker",
 *    "pid":1234,"job":"j000001","task":"clean/3","message":"..."}
 * job and task are those set by mlog_context on the calling thread
 * (a worker's executor sets them for the task it runs), else null. */
#ifndef MLOPS_LOG_H
#define MLOPS_LOG_H

enum { MLOG_DEBUG = 0, MLOG_INFO = 1, MLOG_WARN = 2, MLOG_ERROR = 3 };

void mlog_init(const char *role, int level);
int mlog_level(void);
/* 1: one JSON object per line; 0: the human format (the default). */
void mlog_set_json(int on);
/* The job and task this thread works on, shown in JSON lines; NULL to
 * clear. Copied into thread-local storage. */
void mlog_context(const char *job, const char *task);
void mlog_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_D(...) do { if (mlog_level() <= MLOG_DEBUG) mlog_write(MLOG_DEBUG, __VA_ARGS__); } while (0)
#define LOG_I(...) mlog_write(MLOG_INFO, __VA_ARGS__)
#define LOG_W(...) mlog_write(MLOG_WARN, __VA_ARGS__)
#define LOG_E(...) mlog_write(MLOG_ERROR, __VA_ARGS__)

#endif
