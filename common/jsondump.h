/* jsondump.h: jansson's json_dumps, with each real printed in its short
 * round-trip form.
 *
 * Why: jansson formats every real of a dump with one precision. 17 digits
 * read back bit for bit but print 0.1 as 0.10000000000000001; 15 digits
 * look right but lose bits of computed values (a logloss, a scaler mean).
 * People read these replies and scripts compare them, so each real gets
 * the %.15g form when that reads back to the same double, else %.17g —
 * what the project printed before it used jansson. A whole number stays
 * a real ("3.0", and "-0.0" keeps its sign). */
#ifndef MLOPS_JSONDUMP_H
#define MLOPS_JSONDUMP_H
#include <jansson.h>

/* Like json_dumps(v, flags) (JSON_REAL_PRECISION in flags is ignored):
 * a malloc'd NUL-terminated text, or NULL on allocation failure. */
char *mlops_json_dumps(const json_t *v, size_t flags);

#endif
