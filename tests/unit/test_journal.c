/* test_journal.c: the coordinator's LMDB journal (coordinator/journal.h):
 * the map grows on MDB_MAP_FULL and the batch is committed whole, a
 * reader slot left by a process killed mid-read is cleared at open, and
 * the written counts behind the journal metrics, and the commit on the
 * committer thread (journal_commit_start) beside a caller that goes on
 * queueing, and the paths a batch makes durable before its records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "journal.h"

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/mlops-journal.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rmtree(const char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

static int count_cb(const char *key, const void *data, size_t len, void *arg)
{
    (void)key;
    const unsigned char *p = data;
    size_t *n = arg;
    /* each value is its index byte repeated: a torn write would show */
    for (size_t i = 1; i < len; i++)
        if (p[i] != p[0]) return -1;
    (*n)++;
    return 0;
}

/* 4 MiB in one batch into a 64 KiB map: the commit grows the map
 * (doubling) and writes every record; a reopen reads them all. */
static void test_map_grows(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[256] = "";
    journal_t *j = journal_open_ex(dir, 64 << 10, err, sizeof err);
    assert_non_null(j);
    size_t before = journal_mapsize(j);
    unsigned char *val = malloc(16 << 10);
    assert_non_null(val);
    for (int i = 0; i < 256; i++) {
        char key[32];
        snprintf(key, sizeof key, "rec/%04d", i);
        memset(val, i, 16 << 10);
        assert_int_equal(journal_put(j, key, val, 16 << 10), 0);
    }
    assert_int_equal(journal_commit(j), 0);
    assert_int_equal(journal_pending(j), 0);
    assert_true(journal_mapsize(j) >= (size_t)4 << 20);
    assert_true(journal_mapsize(j) > before);
    journal_close(&j);
    assert_null(j);
    j = journal_open_ex(dir, 64 << 10, err, sizeof err);
    assert_non_null(j);
    size_t n = 0;
    assert_int_equal(journal_foreach(j, "rec/", count_cb, &n), 0);
    assert_int_equal(n, 256);
    journal_close(&j);
    free(val);
    rmtree(dir);
    free(dir);
}

static int die_cb(const char *key, const void *data, size_t len, void *arg)
{
    (void)key, (void)data, (void)len, (void)arg;
    _exit(0); /* mid-read, as a SIGKILL would: the reader slot stays taken */
}

/* While this process has the journal open, a child opens it too and
 * dies inside a read transaction: its reader slot stays taken until
 * journal_reader_check clears it (once). */
static void test_stale_reader_cleared(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[256] = "";
    journal_t *j = journal_open(dir, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(journal_put(j, "k", "v", 1), 0);
    assert_int_equal(journal_commit(j), 0);
    assert_int_equal(journal_reader_check(j), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child's own environment, opened after the fork */
        journal_t *cj = journal_open(dir, err, sizeof err);
        if (cj) journal_foreach(cj, "", die_cb, NULL);
        _exit(1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(journal_reader_check(j), 1);
    assert_int_equal(journal_reader_check(j), 0);
    size_t n = 0;
    assert_int_equal(journal_foreach(j, "", count_cb, &n), 0);
    assert_int_equal(n, 1);
    journal_close(&j);
    rmtree(dir);
    free(dir);
}

/* journal_written counts what committed batches held, and nothing of a
 * batch still queued: the coordinator's journal metrics. */
static void test_written_counts(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[256] = "";
    journal_t *j = journal_open(dir, err, sizeof err);
    assert_non_null(j);
    uint64_t commits = 9, records = 9, bytes = 9;
    journal_written(j, &commits, &records, &bytes);
    assert_true(commits == 0 && records == 0 && bytes == 0);
    assert_int_equal(journal_put(j, "ab", "12345", 5), 0);
    assert_int_equal(journal_del(j, "xyz"), 0);
    journal_written(j, &commits, &records, &bytes);
    assert_int_equal(records, 0); /* queued, not written */
    assert_int_equal(journal_commit(j), 0);
    assert_int_equal(journal_commit(j), 0); /* an empty batch is no commit */
    journal_written(j, &commits, &records, &bytes);
    assert_int_equal(commits, 1);
    assert_int_equal(records, 2);
    assert_int_equal(bytes, 2 + 5 + 3);
    journal_close(&j);
    rmtree(dir);
    free(dir);
}

static void woke(void *arg)
{
    int *n = arg;
    __atomic_add_fetch(n, 1, __ATOMIC_SEQ_CST);
}

/* A batch handed to the committer thread (4 MiB into a 64 KiB map: the
 * thread grows the map) while the caller queues the next one: a second
 * start is refused while the first is not reaped, the notify callback
 * runs once per batch, the counts are those of what was written, and a
 * reopen sees every record of both batches, whole. */
static void test_commit_on_thread(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[256] = "";
    journal_t *j = journal_open_ex(dir, 64 << 10, err, sizeof err);
    assert_non_null(j);
    int woken = 0, rc = -1;
    double secs = -1;
    journal_set_notify(j, woke, &woken);
    assert_int_equal(journal_commit_poll(j, &rc, &secs), 0); /* none in flight */
    assert_int_equal(journal_commit_start(j), 0);            /* nothing queued */
    unsigned char *val = malloc(16 << 10);
    assert_non_null(val);
    for (int i = 0; i < 256; i++) {
        char key[32];
        snprintf(key, sizeof key, "a/%04d", i);
        memset(val, i, 16 << 10);
        assert_int_equal(journal_put(j, key, val, 16 << 10), 0);
    }
    assert_int_equal(journal_commit_start(j), 1);
    assert_true(journal_commit_busy(j));
    assert_int_equal(journal_pending(j), 0);
    for (int i = 0; i < 10; i++) {
        char key[32];
        snprintf(key, sizeof key, "b/%04d", i);
        memset(val, i, 100);
        assert_int_equal(journal_put(j, key, val, 100), 0);
    }
    assert_int_equal(journal_commit_start(j), MLOPS_EINVAL); /* one at a time */
    assert_int_equal(journal_pending(j), 10);
    assert_int_equal(journal_commit_wait(j, &rc, &secs), 1);
    assert_int_equal(rc, 0);
    assert_true(secs >= 0);
    assert_false(journal_commit_busy(j));
    assert_true(journal_mapsize(j) >= (size_t)(4 << 20));
    uint64_t commits, records, bytes;
    journal_written(j, &commits, &records, &bytes);
    assert_int_equal(commits, 1);
    assert_int_equal(records, 256);
    assert_int_equal(journal_commit_start(j), 1);
    for (int i = 0; i < 1000 && !journal_commit_poll(j, &rc, &secs); i++) usleep(10000);
    assert_int_equal(rc, 0);
    journal_written(j, &commits, &records, &bytes);
    assert_int_equal(commits, 2);
    assert_int_equal(records, 266);
    assert_int_equal(__atomic_load_n(&woken, __ATOMIC_SEQ_CST), 2);
    free(val);
    journal_close(&j);
    j = journal_open(dir, err, sizeof err);
    assert_non_null(j);
    size_t na = 0, nb = 0;
    assert_int_equal(journal_foreach(j, "a/", count_cb, &na), 0);
    assert_int_equal(journal_foreach(j, "b/", count_cb, &nb), 0);
    assert_int_equal(na, 256);
    assert_int_equal(nb, 10);
    journal_close(&j);
    rmtree(dir);
    free(dir);
}

/* What is queued behind a batch in flight when the journal closes is
 * written too: close waits for the thread, then commits the rest. */
static void test_close_writes_all(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[256] = "";
    journal_t *j = journal_open(dir, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(journal_put(j, "k/1", "x", 1), 0);
    assert_int_equal(journal_commit_start(j), 1);
    assert_int_equal(journal_put(j, "k/2", "y", 1), 0);
    journal_close(&j);
    j = journal_open(dir, err, sizeof err);
    assert_non_null(j);
    size_t n = 0;
    assert_int_equal(journal_foreach(j, "k/", count_cb, &n), 0);
    assert_int_equal(n, 2);
    journal_close(&j);
    rmtree(dir);
    free(dir);
}

/* journal_sync_path: a file synced as part of the batch is not a
 * record; a path that cannot be synced fails the batch, which stays
 * queued with the error naming the path, and commits once it can. */
static void test_sync_path(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[256] = "", path[512], jdir[512];
    snprintf(jdir, sizeof jdir, "%s/j", dir);
    snprintf(path, sizeof path, "%s/artifact.json", dir);
    journal_t *j = journal_open(jdir, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(journal_sync_path(j, path), 0); /* not there yet */
    assert_int_equal(journal_put(j, "reg/v", "1", 1), 0);
    assert_int_equal(journal_commit(j), MLOPS_ESTORE);
    assert_non_null(strstr(journal_error(j), path));
    assert_int_equal(journal_pending(j), 2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{}\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(journal_sync_path(j, dir), 0);
    assert_int_equal(journal_commit_start(j), 1);
    int rc = -1;
    assert_int_equal(journal_commit_wait(j, &rc, NULL), 1);
    assert_int_equal(rc, 0);
    uint64_t commits, records, bytes;
    journal_written(j, &commits, &records, &bytes);
    assert_int_equal(commits, 1);
    assert_int_equal(records, 1);
    journal_close(&j);
    rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_grows),
        cmocka_unit_test(test_stale_reader_cleared),
        cmocka_unit_test(test_written_counts),
        cmocka_unit_test(test_commit_on_thread),
        cmocka_unit_test(test_close_writes_all),
        cmocka_unit_test(test_sync_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
