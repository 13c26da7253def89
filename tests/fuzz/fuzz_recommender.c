/* fuzz_recommender.c: loading a recommender artifact (mlops-recommender/1,
 * common/recommender.c) from any bytes, as `mlopsctl model recommend`
 * and the model server do with what the coordinator or a file gives
 * them, then answering for the users it names and for an unknown one.
 *
 * Properties checked, beyond "no crash, no leak, no UB": a refused
 * artifact gets a one-line message; a loaded one answers every listed
 * user (up to 8) and an unknown user with at most n items, the unknown
 * one flagged popular with non-increasing scores, a listed one not. */
#include "fuzz.h"

#include <string.h>

#include "recommender.h"

static void check_answer(const mlops_recommender_t *r, const char *user, size_t n, int known)
{
    char err[512] = "";
    json_t *a = mlops_recommender_answer(r, user, n, err, sizeof err);
    FUZZ_CHECK(a != NULL);
    const json_t *items = json_object_get(a, "items");
    FUZZ_CHECK(json_array_size(items) <= n);
    FUZZ_CHECK(json_is_boolean(json_object_get(a, "popular")));
    FUZZ_CHECK(json_is_true(json_object_get(a, "popular")) == !known);
    double last = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        const json_t *it = json_array_get(items, i);
        FUZZ_CHECK(json_is_string(json_object_get(it, "item_id")));
        double s = json_real_value(json_object_get(it, "score"));
        if (!known) FUZZ_CHECK(i == 0 || s <= last);
        last = s;
    }
    json_decref(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    mlops_recommender_t *r = mlops_recommender_load((const char *)data, size, err, sizeof err);
    if (!r) {
        FUZZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
        return 0;
    }
    size_t n = mlops_recommender_default_n(r);
    if (n > 64) n = 64;
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    const json_t *users = json_object_get(doc, "users");
    for (size_t i = 0; i < json_array_size(users) && i < 8; i++)
        check_answer(r, json_string_value(json_array_get(users, i)), n, 1);
    /* an id no listed user has: longer than any of them */
    size_t longest = 0;
    for (size_t i = 0; i < json_array_size(users); i++) {
        size_t l = strlen(json_string_value(json_array_get(users, i)));
        if (l > longest) longest = l;
    }
    char *unknown = malloc(longest + 2);
    memset(unknown, 'x', longest + 1);
    unknown[longest + 1] = 0;
    check_answer(r, unknown, n, 0);
    free(unknown);
    json_decref(doc);
    mlops_recommender_destroy(&r);
    return 0;
}
