/* args.c: see args.h; the parser itself is common/flags.c. */
#include "args.h"
#include "err.h"

int ctl_args_parse(ctl_args *a, const ctl_optdef *defs, int argc, char **argv,
                   int stop_at_positional, int *consumed, char *err, size_t errlen)
{
    return mlops_flags_parse(a, defs, argc, argv, stop_at_positional, consumed, err, errlen);
}

const char *ctl_arg(const ctl_args *a, const char *lng) { return mlops_flags_get(a, lng); }

int ctl_flag(const ctl_args *a, const char *lng) { return mlops_flags_has(a, lng); }

size_t ctl_arg_all(const ctl_args *a, const char *lng, const char **vals, size_t max)
{
    return mlops_flags_all(a, lng, vals, max);
}

int ctl_parse_int(const char *s, long lo, long hi, const char *what, long *out, char *err,
                  size_t errlen)
{
    /* what is "--name": the row gets the name without the dashes */
    ctl_optdef d = {.name = what + (what[0] == '-' && what[1] == '-' ? 2 : 0),
                    .type = MLOPS_FLAG_INT, .lo = lo, .hi = hi};
    return mlops_flags_check(&d, s, out, err, errlen);
}

void ctl_args_help(FILE *out, const ctl_optdef *defs) { mlops_flags_help(out, defs); }
