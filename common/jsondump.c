/* jsondump.c: see jsondump.h. Dumps at 17 digits, then rewrites each real
 * token outside strings (a number with '.', 'e' or 'E': jansson writes
 * every real with one of them, integers with none) in its short form.
 * The rewritten text is never longer, so it is done in place. */
#include "jsondump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t short_real(const char *tok, size_t n, char *out, size_t cap)
{
    char buf[64];
    if (n >= sizeof buf) return 0;
    memcpy(buf, tok, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    int k = snprintf(out, cap, "%.15g", v);
    if (k < 0 || (size_t)k >= cap) return 0;
    if (strtod(out, NULL) != v) {
        k = snprintf(out, cap, "%.17g", v);
        if (k < 0 || (size_t)k >= cap) return 0;
    }
    /* a whole number stays a real, as jansson writes it: "3.0", and
     * "-0.0" keeps its sign (an integer token would read back as 0) */
    if (!strpbrk(out, ".eEn") && (size_t)k + 2 < cap) {
        memcpy(out + k, ".0", 3);
        k += 2;
    }
    return (size_t)k <= n ? (size_t)k : 0;
}

char *mlops_json_dumps(const json_t *v, size_t flags)
{
    flags &= ~(size_t)JSON_REAL_PRECISION(31);
    char *s = json_dumps(v, flags | JSON_REAL_PRECISION(17));
    if (!s) return NULL;
    size_t r = 0, w = 0;
    int in_str = 0;
    while (s[r]) {
        char c = s[r];
        if (in_str) {
            s[w++] = s[r++];
            if (c == '\\' && s[r]) s[w++] = s[r++];
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            s[w++] = s[r++];
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t b = r, real = 0;
            while (s[r] && strchr("+-0123456789.eE", s[r])) {
                if (s[r] == '.' || s[r] == 'e' || s[r] == 'E') real = 1;
                r++;
            }
            char out[64];
            size_t k = real ? short_real(s + b, r - b, out, sizeof out) : 0;
            if (k) {
                memcpy(s + w, out, k);
                w += k;
            } else {
                memmove(s + w, s + b, r - b);
                w += r - b;
            }
            continue;
        }
        s[w++] = s[r++];
    }
    s[w] = '\0';
    return s;
}
