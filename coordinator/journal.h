/* journal.h: the coordinator's durable journal, an LMDB environment in
 * the data directory. Writes are batched: journal_put() queues a record
 * in memory and journal_commit() writes the whole batch in one
 * transaction with one fsync (group commit). The coordinator commits
 * before it sends any acknowledgement that depends on the batch. The map
 * grows on MDB_MAP_FULL and the batch is retried.
 *
 * A commit can also run on the journal's committer thread
 * (journal_commit_start), so the caller goes on queueing the next batch
 * while LMDB's fsyncs run; journal_commit_poll/_wait then say how it
 * went. One batch is in flight at a time. All functions are called from
 * one thread, the caller's; only the notify callback runs on the
 * committer's. */
#ifndef MLOPS_JOURNAL_H
#define MLOPS_JOURNAL_H
#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;

journal_t *journal_open(const char *dir, char *err, size_t errlen);
/* journal_open with a first map size (rounded up to a page by LMDB;
 * larger if the file already is): tests start small to see it grow. */
journal_t *journal_open_ex(const char *dir, size_t mapsize, char *err, size_t errlen);
/* Clear the reader slots of dead processes (mdb_reader_check); returns
 * how many. journal_open runs it. (LMDB resets the whole table when the
 * first process opens the environment, so a slot outlives its process
 * only while another process has the journal open.) */
int journal_reader_check(journal_t *j);
/* The current map size in bytes. */
size_t journal_mapsize(const journal_t *j);
void journal_close(journal_t **pj);
/* Queue a put (data copied) or a delete of every key with the prefix. */
int journal_put(journal_t *j, const char *key, const void *data, size_t len);
/* journal_put of a malloc'd buffer, which the journal takes (and frees,
 * on failure too): a packed record is not copied again. */
int journal_put_take(journal_t *j, const char *key, void *data, size_t len);
int journal_del_prefix(journal_t *j, const char *prefix);
int journal_del(journal_t *j, const char *key);
/* Make the file or directory at path durable (fsync) as part of the
 * batch: before its records commit, so a record may name a file written
 * without an fsync of its own. A path that cannot be synced fails the
 * batch (MLOPS_ESTORE, kept queued, journal_error naming the path). */
int journal_sync_path(journal_t *j, const char *path);
/* Write the queued batch durably (after the one in flight, waited for).
 * 0, or (the batch kept queued, the file
 * as of the last commit) MLOPS_EFULL when the disk or the map is full
 * (ENOSPC, EDQUOT, a map that cannot grow), else MLOPS_ESTORE;
 * journal_error() then says why in one line. */
int journal_commit(journal_t *j);
const char *journal_error(const journal_t *j);
/* Hand the queued batch to the committer thread (started on first use)
 * and return at once: 1 started, 0 nothing queued, MLOPS_EINVAL when one
 * is still in flight (not reaped), MLOPS_ESTORE when the thread cannot
 * start. Puts and deletes queued meanwhile go into the next batch. */
int journal_commit_start(journal_t *j);
/* 1 while a started batch has not been reaped by _poll or _wait. */
int journal_commit_busy(const journal_t *j);
/* Whether the batch in flight is written: 1 with *rc as journal_commit
 * would say (a failed batch goes back in front of the queued one, which
 * the next commit writes with it) and *secs its commit time (may be
 * NULL); 0 while it runs or when none was started. _wait blocks until it
 * is written (0 at once when none is in flight). */
int journal_commit_poll(journal_t *j, int *rc, double *secs);
int journal_commit_wait(journal_t *j, int *rc, double *secs);
/* fn(arg) on the committer thread after each batch is written (to wake a
 * poller: it must be safe to call from another thread). */
void journal_set_notify(journal_t *j, void (*fn)(void *), void *arg);
size_t journal_pending(const journal_t *j);
/* What the committed batches held since the journal was opened: commits,
 * records (puts and deletes) and bytes (keys plus values), for the
 * metrics: what the journal costs per job. */
void journal_written(const journal_t *j, uint64_t *commits, uint64_t *records, uint64_t *bytes);
/* Visit committed records with the prefix in key order. cb returns 0 to
 * go on. Waits first for a batch in flight (none is read meanwhile). */
int journal_foreach(journal_t *j, const char *prefix,
                    int (*cb)(const char *key, const void *data, size_t len, void *arg), void *arg);

#endif
