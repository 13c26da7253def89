/* err.c: error strings. See err.h. */
#include "err.h"
#include <stdarg.h>
#include <stdio.h>

const char *mlops_strerror(int code)
{
    switch (code) {
    case MLOPS_OK: return "ok";
    case MLOPS_EINVAL: return "invalid argument or input";
    case MLOPS_ENOMEM: return "out of memory";
    case MLOPS_EIO: return "input/output error";
    case MLOPS_ENOTFOUND: return "not found";
    case MLOPS_EPARSE: return "malformed input";
    case MLOPS_ESTORE: return "store error";
    case MLOPS_ETIMEOUT: return "timed out";
    case MLOPS_EPROTO: return "protocol error";
    case MLOPS_EFULL: return "capacity reached";
    case MLOPS_ECANCEL: return "cancelled";
    case MLOPS_EDENIED: return "access denied";
    default: return "unknown error";
    }
}

int mlops_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        /* An error is one line, whatever bytes of a file or a peer it
         * quotes (a column name may hold a quoted line break): control
         * bytes become '?'. */
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return code;
}
