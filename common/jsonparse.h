/* jsonparse.h: a small, strict JSON (RFC 8259) DOM parser.
 *
 * Why: mlopsctl reads the coordinator's Reply{json} texts; they come
 * from the network, so the parser must reject anything that is not JSON
 * with a one-line message and never crash. Strict means: exactly one
 * value (surrounding whitespace allowed), no trailing commas, no
 * comments, no leading zeros, no control characters or invalid UTF-8 in
 * strings, no lone surrogates in \u escapes, no duplicate object keys,
 * nesting at most JV_MAX_DEPTH deep.
 *
 * The tree owns all its memory; free it with jv_free(). Accessors accept
 * NULL and wrong types and then return the caller's default, so reading
 * an optional field is one call. Prefix jv_ ("JSON value"). */
#ifndef MLOPS_JSONPARSE_H
#define MLOPS_JSONPARSE_H
#include <stddef.h>

#define JV_MAX_DEPTH 64

typedef enum { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT } jv_type;

typedef struct jv jv;
struct jv {
    jv_type type;
    int b;          /* JV_BOOL */
    double num;     /* JV_NUMBER */
    char *str;      /* JV_STRING: UTF-8, NUL-terminated (may hold \0 inside: see len) */
    size_t len;     /* JV_STRING: bytes; JV_ARRAY/JV_OBJECT: number of items */
    jv **items;     /* JV_ARRAY and JV_OBJECT values, in document order */
    char **keys;    /* JV_OBJECT keys, parallel to items */
};

/* Parse `len` bytes of `text`. Returns a tree or NULL with err set to one
 * line such as "json: line 1, column 9: expected ',' or '}' in object". */
jv *jv_parse(const char *text, size_t len, char *err, size_t errlen);

/* Free a tree and set *pv to NULL. Safe on NULL and twice. */
void jv_free(jv **pv);

/* Member `key` of an object, or NULL (also when v is not an object). */
const jv *jv_get(const jv *v, const char *key);

/* Item i of an array, or NULL (out of range or not an array). */
const jv *jv_at(const jv *v, size_t i);

/* Number of items of an array or object; 0 for anything else. */
size_t jv_len(const jv *v);

/* The string of a JV_STRING, else dflt. */
const char *jv_str(const jv *v, const char *dflt);

/* The number of a JV_NUMBER, else dflt. */
double jv_num(const jv *v, double dflt);

/* 1/0 for a JV_BOOL, else dflt. */
int jv_bool(const jv *v, int dflt);

/* 1 if v is present and of type t. */
int jv_is(const jv *v, jv_type t);

/* Shorthands for an object member: jv_str(jv_get(v, key), dflt) etc. */
const char *jv_get_str(const jv *v, const char *key, const char *dflt);
double jv_get_num(const jv *v, const char *key, double dflt);

#endif
