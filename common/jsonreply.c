/* jsonreply.c: see jsonreply.h. */
#include "jsonreply.h"
#include <stdio.h>

json_t *mlops_jsonreply_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc =
        text ? json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je) : NULL;
    if (doc) return doc;
    if (!err || !errlen) return NULL;
    if (!text) {
        snprintf(err, errlen, "no text");
        return NULL;
    }
    /* jansson quotes the offending token, which may hold a newline */
    for (char *p = je.text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    if (je.line > 0) snprintf(err, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
    else snprintf(err, errlen, "%s", je.text);
    return NULL;
}

const char *mlops_jsonreply_str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : dflt;
}

double mlops_jsonreply_num(const json_t *obj, const char *key, double dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}
