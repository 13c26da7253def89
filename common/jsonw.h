/* jsonw.h: a small JSON writer into a growing buffer. Commas are placed
 * automatically; strings are escaped; doubles print with %.17g (NaN and
 * infinities become null, which JSON lacks). */
#ifndef MLOPS_JSONW_H
#define MLOPS_JSONW_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int need_comma[64];
    int depth;
    int after_key;
    int err;
} jsonw_t;

void jw_init(jsonw_t *w);
void jw_free(jsonw_t *w);
void jw_obj(jsonw_t *w);     /* { */
void jw_obj_end(jsonw_t *w); /* } */
void jw_arr(jsonw_t *w);     /* [ */
void jw_arr_end(jsonw_t *w); /* ] */
void jw_key(jsonw_t *w, const char *k);
void jw_str(jsonw_t *w, const char *s);
void jw_strn(jsonw_t *w, const char *s, size_t n);
void jw_num(jsonw_t *w, double v);
void jw_int(jsonw_t *w, int64_t v);
void jw_bool(jsonw_t *w, int v);
void jw_null(jsonw_t *w);
/* Insert already-encoded JSON text as a value. */
void jw_raw(jsonw_t *w, const char *json);
/* key + value shorthands */
/* key + string, or null when v is NULL */
void jw_kstr(jsonw_t *w, const char *k, const char *v);
#define jw_knum(w, k, v) (jw_key(w, k), jw_num(w, v))
#define jw_kint(w, k, v) (jw_key(w, k), jw_int(w, v))
#define jw_kbool(w, k, v) (jw_key(w, k), jw_bool(w, v))
/* NUL-terminated result (owned by w), or NULL after an allocation error. */
const char *jw_text(jsonw_t *w);

#endif
