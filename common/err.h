/* err.h: the one error convention of mlops.
 * Functions return 0 on success or a negative MLOPS_E* code; pointers
 * are NULL on failure. mlops_strerror() describes a code. Where a caller
 * needs a message for a person (file, line, field), functions take a
 * char *err, size_t errlen buffer and write one line into it. */
#ifndef MLOPS_ERR_H
#define MLOPS_ERR_H
#include <stddef.h>

enum {
    MLOPS_OK = 0,
    MLOPS_EINVAL = -1,    /* bad argument or bad input */
    MLOPS_ENOMEM = -2,    /* allocation failed */
    MLOPS_EIO = -3,       /* file or socket I/O failed */
    MLOPS_ENOTFOUND = -4, /* key, file, column or job missing */
    MLOPS_EPARSE = -5,    /* malformed input: CSV, YAML, frame, shard */
    MLOPS_ESTORE = -6,    /* LMDB failure */
    MLOPS_ETIMEOUT = -7,  /* peer did not answer in time */
    MLOPS_EPROTO = -8,    /* protocol violation by a peer */
    MLOPS_EFULL = -9,     /* capacity reached */
    MLOPS_ECANCEL = -10,  /* operation cancelled */
    MLOPS_EDENIED = -11,  /* authentication failed */
};

const char *mlops_strerror(int code);

/* snprintf into err (if non-NULL) and return code. The message is one
 * line: control bytes in it (from a quoted field or a peer) become '?'. */
int mlops_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
