/* test_registry.c: the model registry in-process (registry.c): versions
 * added with coord_registry_add, alias moves and their history through
 * the real Query verbs from a DEALER socket, the `alias-moves` feed a
 * model server follows, `model-rm` refused while an alias holds the
 * version, and everything back after the coordinator is destroyed and
 * made again on the same data directory (the journal replayed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "err.h"
#include "transport.h"
#include "wire.h"

typedef struct {
    char dir[64], data[128];
    coord_t *c;
    zsock_t *ctl;
} fix_t;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void start(fix_t *f)
{
    char err[512] = "";
    coord_config_t cfg = {.bind = "tcp://127.0.0.1:*", .data_dir = f->data, .heartbeat_ms = 100};
    f->c = coord_new(&cfg, err, sizeof err);
    if (!f->c) fail_msg("coord_new: %s", err);
    f->ctl = transport_dealer_connect(coord_endpoint(f->c), NULL, err, sizeof err);
    assert_non_null(f->ctl);
}

static void stop(fix_t *f)
{
    zsock_destroy(&f->ctl);
    coord_destroy(&f->c);
}

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mlops_test_registry_XXXXXX");
    if (!f || !mkdtemp(f->dir)) return -1;
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    stop(f);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Query verb(args...) and wait (bounded) for its Reply or Error. */
static envelope_t *ask(fix_t *f, const char *verb, size_t nargs, char **args)
{
    envelope_t env;
    wire_init(&env, 21);
    Mlops__Query q = MLOPS__QUERY__INIT;
    q.verb = (char *)verb;
    q.job_id = "";
    q.n_args = nargs;
    q.args = args;
    env.body_case = MLOPS__ENVELOPE__BODY_QUERY;
    env.query = &q;
    assert_int_equal(wire_send(f->ctl, NULL, &env), 0);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(coord_poll(f->c, 10), 0);
        while (zsock_events(f->ctl) & ZMQ_POLLIN) {
            char err[256] = "";
            envelope_t *e = wire_recv(f->ctl, NULL, err, sizeof err);
            if (!e) fail_msg("bad frame: %s", err);
            if (e->body_case == MLOPS__ENVELOPE__BODY_REPLY ||
                e->body_case == MLOPS__ENVELOPE__BODY_ERROR)
                return e;
            wire_free(&e);
        }
    }
    fail_msg("no reply to %s", verb);
    return NULL;
}

static json_t *reply(fix_t *f, const char *verb, size_t nargs, char **args)
{
    envelope_t *e = ask(f, verb, nargs, args);
    if (e->body_case != MLOPS__ENVELOPE__BODY_REPLY)
        fail_msg("%s: error %s", verb, e->error->message);
    json_t *doc = json_loads(e->reply->json, 0, NULL);
    assert_non_null(doc);
    wire_free(&e);
    return doc;
}

static void refused(fix_t *f, const char *verb, size_t nargs, char **args, const char *part)
{
    envelope_t *e = ask(f, verb, nargs, args);
    assert_int_equal(e->body_case, MLOPS__ENVELOPE__BODY_ERROR);
    if (!strstr(e->error->message, part)) fail_msg("'%s' lacks '%s'", e->error->message, part);
    wire_free(&e);
}

static void add_version(fix_t *f, uint32_t want)
{
    mlops_artifact_t *a = mlops_artifact_new();
    a->nclasses = 2;
    a->classes = calloc(2, sizeof *a->classes);
    a->classes[0] = strdup("no");
    a->classes[1] = strdup("yes");
    a->numeric = calloc(1, sizeof *a->numeric);
    a->numeric[0] = (mlops_art_numeric_t){strdup("x"), 1.5, 2.0};
    a->nnumeric = 1;
    a->model = mlk_model_new(2, 0, 1, 0);
    a->model->w[0] = 0.25 * want;
    mlops_artifact_add_metric(a, "auc", 0.5 + 0.1 * want);
    char err[512] = "";
    uint32_t v = 0;
    assert_int_equal(coord_registry_add(f->c, "m", a, "j000001", &v, err, sizeof err), 0);
    assert_int_equal(v, want);
    mlops_artifact_destroy(&a);
}

static json_int_t num(json_t *o, const char *path0, const char *path1)
{
    json_t *v = json_object_get(o, path0);
    if (path1) v = json_object_get(v, path1);
    return (json_int_t)json_number_value(v);
}

static void test_aliases_history_restart(void **state)
{
    fix_t *f = *state;
    add_version(f, 1);
    add_version(f, 2);
    char *a1[] = {"m", "1", "prod", "first"}, *a2[] = {"m", "2", "prod", "better"};
    json_decref(reply(f, "model-alias", 4, a1));
    char *since0[] = {"0"};
    json_t *mv = reply(f, "alias-moves", 1, since0);
    assert_int_equal(json_array_size(json_object_get(mv, "moves")), 1);
    assert_int_equal(num(mv, "next", NULL), 1);
    json_decref(mv);
    json_decref(reply(f, "model-alias", 4, a2));
    char *since1[] = {"1"};
    mv = reply(f, "alias-moves", 1, since1);
    json_t *m0 = json_array_get(json_object_get(mv, "moves"), 0);
    assert_int_equal(json_array_size(json_object_get(mv, "moves")), 1);
    assert_int_equal(num(m0, "from", NULL), 1);
    assert_int_equal(num(m0, "to", NULL), 2);
    assert_string_equal(json_string_value(json_object_get(m0, "reason")), "better");
    json_decref(mv);
    /* refusals, each naming what is wrong */
    char *rm2[] = {"m", "2"}, *nov[] = {"m", "9"}, *bad[] = {"m", "1", "no way", ""},
         *nom[] = {"zz", ""};
    refused(f, "model-rm", 2, rm2, "holds alias 'prod'");
    refused(f, "model-show", 2, nov, "no version 9");
    refused(f, "model-alias", 4, bad, "alias 'no way'");
    refused(f, "model-show", 2, nom, "no model 'zz'");
    char *since_bad[] = {"x"};
    refused(f, "alias-moves", 1, since_bad, "not a sequence number");
    /* the export carries the artifact with its weights */
    char *ex[] = {"m", "prod"};
    json_t *e = reply(f, "model-export", 2, ex);
    assert_int_equal(num(e, "version", NULL), 2);
    json_t *w = json_array_get(json_object_get(json_object_get(e, "artifact"), "weights"), 0);
    assert_true(json_number_value(json_array_get(
                    json_object_get(json_object_get(w, "coef"), "values"), 0)) == 0.5);
    json_decref(e);
    /* the journal brings it all back */
    stop(f);
    start(f);
    json_t *ms = reply(f, "models", 0, NULL);
    json_t *m = json_array_get(json_object_get(ms, "models"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "name")), "m");
    assert_int_equal(num(m, "latest", NULL), 2);
    assert_int_equal(num(m, "aliases", "prod"), 2);
    json_decref(ms);
    char *hn[] = {"m"};
    json_t *h = reply(f, "model-history", 1, hn);
    assert_int_equal(json_array_size(json_object_get(h, "history")), 2);
    json_decref(h);
    /* numbering goes on after a removed version */
    char *rm1[] = {"m", "1"};
    json_decref(reply(f, "model-rm", 2, rm1));
    add_version(f, 3);
    json_t *vs = reply(f, "model-versions", 1, hn);
    assert_int_equal(json_array_size(json_object_get(vs, "versions")), 2);
    json_decref(vs);
}

int main(void)
{
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aliases_history_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
