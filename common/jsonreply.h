/* jsonreply.h: reading the JSON text of a coordinator Reply{json}.
 *
 * Why: the text comes from the network, so it is parsed strictly by
 * jansson (one object or array, duplicate keys rejected) and a failure
 * becomes one line naming the line and column, never a crash. Every
 * number is read as a double (JSON has one number type; an integer too
 * big for int64 must not fail the parse), which is also how the readers
 * below hand them out.
 *
 * The getters accept NULL and values of the wrong type and then return
 * the caller's default, so reading an optional field is one call. */
#ifndef MLOPS_JSONREPLY_H
#define MLOPS_JSONREPLY_H
#include <jansson.h>
#include <stddef.h>

/* Parse `len` bytes of `text`. Returns a new reference (json_decref it)
 * or NULL with err set to one line such as "line 1, column 9: '}'
 * expected near '\"b\"'". Control characters in jansson's text are
 * replaced so the message stays on one line. */
json_t *mlops_jsonreply_parse(const char *text, size_t len, char *err, size_t errlen);

/* The string member `key` of object `obj`, else dflt. Borrowed from obj. */
const char *mlops_jsonreply_str(const json_t *obj, const char *key, const char *dflt);

/* The number member `key` of object `obj`, else dflt. */
double mlops_jsonreply_num(const json_t *obj, const char *key, double dflt);

#endif
