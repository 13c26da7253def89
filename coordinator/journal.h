/* journal.h: the coordinator's durable journal, an LMDB environment in
 * the data directory. Writes are batched: journal_put() queues a record
 * in memory and journal_commit() writes the whole batch in one
 * transaction with one fsync (group commit). The coordinator commits
 * before it sends any acknowledgement that depends on the batch. The map
 * grows on MDB_MAP_FULL and the batch is retried. */
#ifndef MLOPS_JOURNAL_H
#define MLOPS_JOURNAL_H
#include <stddef.h>

typedef struct journal journal_t;

journal_t *journal_open(const char *dir, char *err, size_t errlen);
void journal_close(journal_t **pj);
/* Queue a put (data copied) or a delete of every key with the prefix. */
int journal_put(journal_t *j, const char *key, const void *data, size_t len);
int journal_del_prefix(journal_t *j, const char *prefix);
int journal_del(journal_t *j, const char *key);
/* Write the queued batch durably. 0, or MLOPS_ESTORE (batch kept). */
int journal_commit(journal_t *j);
size_t journal_pending(const journal_t *j);
/* Visit committed records with the prefix in key order. cb returns 0 to go on. */
int journal_foreach(journal_t *j, const char *prefix,
                    int (*cb)(const char *key, const void *data, size_t len, void *arg), void *arg);

#endif
