/* test_localin.c: input files read in place (common/localin.h), in a
 * temp directory holding an allowed dir `in` and a dir `out` beside it.
 * The allow-list itself (relative or missing entries refused); each
 * refusal of mlops_localin_resolve with its one line (relative path,
 * outside the list, a `..` or `//` in the path, a symlink leading out, a directory, a
 * FIFO, a missing file, an unreadable file when not root) and a file
 * taken with its identity; the client's lexical absolute path;
 * mlops_localin_verify on a file grown,
 * rewritten in place (mtime), replaced (new inode) and removed; and
 * mlops_localin_read of a byte range: the bytes, a worker with no list,
 * a path outside its list, a range past the end, a changed file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "err.h"
#include "localin.h"

static char dir[] = "/tmp/test_localin.XXXXXX";
static char in[100], out[100], ok[200], far[200];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    assert_int_equal(mkdir(in, 0755), 0);
    assert_int_equal(mkdir(out, 0755), 0);
    snprintf(ok, sizeof ok, "%s/ok.csv", in);
    snprintf(far, sizeof far, "%s/far.csv", out);
    put(ok, "a,b\n1,2\n3,4\n");
    put(far, "a,b\n5,6\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_list(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(mlops_localin_check_list(in, err, sizeof err), 0);
    char two[700];
    snprintf(two, sizeof two, "%s,%s/", in, out);
    assert_int_equal(mlops_localin_check_list(two, err, sizeof err), 0);
    assert_int_equal(mlops_localin_check_list("data", err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "--local-inputs: 'data' is not an absolute path");
    snprintf(two, sizeof two, "%s,%s/none", in, dir);
    assert_int_equal(mlops_localin_check_list(two, err, sizeof err), MLOPS_EINVAL);
    assert_non_null(strstr(err, "/none: No such file or directory"));
    assert_int_equal(mlops_localin_check_list(ok, err, sizeof err), MLOPS_EINVAL);
    assert_non_null(strstr(err, "ok.csv is not a directory"));
}

static int resolve(const char *list, const char *path, char *canon, mlops_localin_id_t *id,
                   char *err, size_t errlen)
{
    return mlops_localin_resolve(list, path, path, canon, 4096, id, err, errlen);
}

static void test_resolve(void **state)
{
    (void)state;
    char err[1024], canon[4096], p[600], want[2000];
    mlops_localin_id_t id;
    assert_int_equal(resolve(in, ok, canon, &id, err, sizeof err), 0);
    assert_string_equal(canon, ok);
    struct stat st;
    assert_int_equal(stat(ok, &st), 0);
    assert_true(id.size == 12 && id.ino == (uint64_t)st.st_ino && id.dev == (uint64_t)st.st_dev);
    /* "/" takes any file */
    assert_int_equal(resolve("/", far, canon, &id, err, sizeof err), 0);

    assert_int_equal(resolve(in, "in/ok.csv", canon, &id, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "in/ok.csv: not an absolute path (the client resolves it)");
    assert_int_equal(resolve(in, far, canon, &id, err, sizeof err), MLOPS_EDENIED);
    snprintf(want, sizeof want, "%s: outside --local-inputs %s", far, in);
    assert_string_equal(err, want);
    /* a name that only starts like the allowed directory */
    snprintf(p, sizeof p, "%s2/x.csv", in);
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), MLOPS_EDENIED);
    /* lexically inside, really outside: refused before it is looked at */
    snprintf(p, sizeof p, "%s/../out/far.csv", in);
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), MLOPS_EINVAL);
    snprintf(want, sizeof want, "%s: '.', '..' or '//' in the path (the client normalises it)", p);
    assert_string_equal(err, want);
    snprintf(p, sizeof p, "%s//ok.csv", in);
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), MLOPS_EINVAL);
    snprintf(p, sizeof p, "%s/link.csv", in);
    assert_int_equal(symlink(far, p), 0);
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), MLOPS_EDENIED);
    assert_non_null(strstr(err, "link.csv: resolves to "));
    /* a symlink inside the list is followed */
    snprintf(p, sizeof p, "%s/inner.csv", in);
    assert_int_equal(symlink(ok, p), 0);
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), 0);
    assert_string_equal(canon, ok);

    assert_int_equal(resolve(dir, in, canon, &id, err, sizeof err), MLOPS_EINVAL);
    snprintf(want, sizeof want, "%s: is a directory, not a file", in);
    assert_string_equal(err, want);
    snprintf(p, sizeof p, "%s/fifo", in);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), MLOPS_EINVAL);
    assert_non_null(strstr(err, "fifo: is a FIFO, not a regular file"));
    snprintf(p, sizeof p, "%s/none.csv", in);
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), MLOPS_ENOTFOUND);
    assert_non_null(strstr(err, "none.csv: No such file or directory"));
    if (geteuid() != 0) { /* root reads any file */
        snprintf(p, sizeof p, "%s/locked.csv", in);
        put(p, "a\n1\n");
        assert_int_equal(chmod(p, 0), 0);
        assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), MLOPS_EIO);
        assert_non_null(strstr(err, "locked.csv: cannot read: Permission denied"));
    }
}

static void test_absolute(void **state)
{
    (void)state;
    char o[64];
    assert_int_equal(mlops_localin_absolute("/home/u", "data/x.csv", o, sizeof o), 0);
    assert_string_equal(o, "/home/u/data/x.csv");
    assert_int_equal(mlops_localin_absolute("/home/u/job", "./../data//./x.csv", o, sizeof o), 0);
    assert_string_equal(o, "/home/u/data/x.csv");
    assert_int_equal(mlops_localin_absolute("/home/u", "/a/b/../../../c", o, sizeof o), 0);
    assert_string_equal(o, "/c");
    assert_int_equal(mlops_localin_absolute("/", "..", o, sizeof o), 0);
    assert_string_equal(o, "/");
    assert_int_equal(mlops_localin_absolute("/", "abcdefghij/abcdefghij", o, 12), MLOPS_EINVAL);
}

static void test_verify(void **state)
{
    (void)state;
    char err[1024], canon[4096], p[600];
    mlops_localin_id_t id;
    snprintf(p, sizeof p, "%s/v.csv", in);
    put(p, "a\n1\n");
    assert_int_equal(resolve(in, p, canon, &id, err, sizeof err), 0);
    assert_int_equal(mlops_localin_verify(canon, "v.csv", &id, err, sizeof err), 0);
    /* rewritten in place: same inode and size, a later mtime */
    struct timeval tv[2] = {{1000000, 0}, {1000000, 0}};
    assert_int_equal(utimes(p, tv), 0);
    assert_int_equal(mlops_localin_verify(canon, "v.csv", &id, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "v.csv: modified since it was submitted (its mtime changed)");
    put(p, "a\n1\n2\n");
    assert_int_equal(mlops_localin_verify(canon, "v.csv", &id, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "v.csv: changed since it was submitted (size 4 -> 6 bytes)");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/v.tmp", in);
    put(tmp, "a\n1\n");
    assert_int_equal(rename(tmp, p), 0);
    assert_int_equal(mlops_localin_verify(canon, "v.csv", &id, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "v.csv: replaced by another file since it was submitted");
    unlink(p);
    assert_int_equal(mlops_localin_verify(canon, "v.csv", &id, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "v.csv: gone since it was submitted (No such file or directory)");
}

static void test_read(void **state)
{
    (void)state;
    char err[1024], canon[4096];
    mlops_localin_id_t id;
    uint8_t *b = NULL;
    assert_int_equal(resolve(in, ok, canon, &id, err, sizeof err), 0);
    assert_int_equal(mlops_localin_read(in, canon, "ok.csv", &id, 4, 4, &b, err, sizeof err), 0);
    assert_memory_equal(b, "1,2\n", 4);
    free(b);
    assert_int_equal(mlops_localin_read(in, canon, "ok.csv", &id, 0, 0, &b, err, sizeof err), 0);
    free(b);
    assert_int_equal(mlops_localin_read(NULL, canon, "ok.csv", &id, 0, 4, &b, err, sizeof err),
                     MLOPS_EDENIED);
    assert_string_equal(err, "ok.csv: this worker reads no file in place (start it with --local-inputs)");
    assert_null(b);
    assert_int_equal(mlops_localin_read(out, canon, "ok.csv", &id, 0, 4, &b, err, sizeof err),
                     MLOPS_EDENIED);
    assert_non_null(strstr(err, "ok.csv: outside this worker's --local-inputs"));
    assert_int_equal(mlops_localin_read(in, canon, "ok.csv", &id, 10, 4, &b, err, sizeof err),
                     MLOPS_EINVAL);
    assert_string_equal(err, "ok.csv: bytes 10..14 are past its end (12)");
    mlops_localin_id_t other = id;
    other.mtime_ns++;
    assert_int_equal(mlops_localin_read(in, canon, "ok.csv", &other, 0, 4, &b, err, sizeof err),
                     MLOPS_EINVAL);
    assert_string_equal(err, "ok.csv: modified since it was submitted (its mtime changed)");
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_absolute),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_read),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
