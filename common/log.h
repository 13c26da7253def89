/* log.h: the one logger. Lines go to stderr as
 *   2026-11-26T23:40:01.123Z coordinator[1234] I message
 * The role is set once per process; verbosity from -v (debug) or
 * MLOPS_LOG=debug|info|warn|error. */
#ifndef MLOPS_LOG_H
#define MLOPS_LOG_H

enum { MLOG_DEBUG = 0, MLOG_INFO = 1, MLOG_WARN = 2, MLOG_ERROR = 3 };

void mlog_init(const char *role, int level);
int mlog_level(void);
void mlog_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_D(...) do { if (mlog_level() <= MLOG_DEBUG) mlog_write(MLOG_DEBUG, __VA_ARGS__); } while (0)
#define LOG_I(...) mlog_write(MLOG_INFO, __VA_ARGS__)
#define LOG_W(...) mlog_write(MLOG_WARN, __VA_ARGS__)
#define LOG_E(...) mlog_write(MLOG_ERROR, __VA_ARGS__)

#endif
