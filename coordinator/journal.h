/* journal.h: the coordinator's durable journal, an LMDB environment in
 * the data directory. Writes are batched: journal_put() queues a record
 * in memory and journal_commit() writes the whole batch in one
 * transaction with one fsync (group commit). The coordinator commits
 * before it sends any acknowledgement that depends on the batch. The map
 * grows on MDB_MAP_FULL and the batch is retried. */
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
/* Write the queued batch durably. 0, or (the batch kept queued, the file
 * as of the last commit) MLOPS_EFULL when the disk or the map is full
 * (ENOSPC, EDQUOT, a map that cannot grow), else MLOPS_ESTORE;
 * journal_error() then says why in one line. */
int journal_commit(journal_t *j);
const char *journal_error(const journal_t *j);
size_t journal_pending(const journal_t *j);
/* What the committed batches held since the journal was opened: commits,
 * records (puts and deletes) and bytes (keys plus values), for the
 * metrics: what the journal costs per job. */
void journal_written(const journal_t *j, uint64_t *commits, uint64_t *records, uint64_t *bytes);
/* Visit committed records with the prefix in key order. cb returns 0 to go on. */
int journal_foreach(journal_t *j, const char *prefix,
                    int (*cb)(const char *key, const void *data, size_t len, void *arg), void *arg);

#endif
