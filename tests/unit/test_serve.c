/* test_serve.c: mlops-serve's pure parts: the request parser in every
 * form and its one-line errors (serve/sv_request.h), the refcounted
 * model slot a hot swap replaces (serve/sv_model.h), and the drift
 * window against a reference (serve/sv_drift.h, common/driftref.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "artifact.h"
#include "psi.h"
#include "sv_drift.h"
#include "sv_model.h"
#include "sv_request.h"

static char *COLS[] = {"price", "qty", "category"};
static const mlk_coltype TYPES[] = {MLK_F64, MLK_F64, MLK_STR};
static const sv_schema_t S = {3, COLS, TYPES};

static mlk_frame *parse_ok(const char *ctype, const char *body)
{
    mlk_frame *f = NULL;
    char err[512] = "";
    int rc = sv_request_parse(&S, ctype, body, strlen(body), &f, err, sizeof err);
    if (rc) fprintf(stderr, "unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(f);
    return f;
}

static void parse_err(const char *ctype, const char *body, int code, const char *msg)
{
    mlk_frame *f = NULL;
    char err[512] = "";
    int rc = sv_request_parse(&S, ctype, body, strlen(body), &f, err, sizeof err);
    if (!strstr(err, msg)) fprintf(stderr, "got '%s', want '%s'\n", err, msg);
    assert_int_equal(rc, code);
    assert_null(f);
    assert_non_null(strstr(err, msg));
    assert_null(strchr(err, '\n'));
}

static void check_rows(mlk_frame *f)
{
    assert_int_equal(f->nrows, 2);
    assert_true(f->cols[0].f64[0] == 1.5 && f->cols[1].f64[0] == 2);
    assert_true(isnan(f->cols[0].f64[1]) && f->cols[1].f64[1] == 3);
    size_t len;
    const char *s = mlk_str_at(&f->cols[2], 0, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(s, "books", 5);
    assert_int_equal(f->cols[2].missing[1], 1);
    mlk_frame_destroy(&f);
}

static void test_formats(void **state)
{
    (void)state;
    /* the same two rows in every form: columns in any order, null and NA missing */
    check_rows(parse_ok("application/json", "{\"dataframe_split\": {\"columns\": [\"category\", "
                        "\"qty\", \"price\"], \"data\": [[\"books\", 2, 1.5], [null, \"3\", \"NA\"]]}}"));
    check_rows(parse_ok("application/json; charset=utf-8",
                        "{\"dataframe_records\": [{\"price\": 1.5, \"qty\": 2, \"category\": "
                        "\"books\"}, {\"price\": null, \"qty\": 3, \"category\": \"\"}]}"));
    check_rows(parse_ok("application/json", "{\"instances\": [{\"price\": \"1.5\", \"qty\": 2, "
                        "\"category\": \"books\"}, {\"price\": \"\", \"qty\": 3, \"category\": null}]}"));
    check_rows(parse_ok("application/json", "{\"instances\": {\"price\": [1.5, null], \"qty\": [2, 3], "
                        "\"category\": [\"books\", null]}, \"params\": {}}"));
    check_rows(parse_ok("text/csv", "qty,category,price\r\n2,books,1.5\r\n3,,\r\n"));
    mlk_frame *f = parse_ok("application/json", "{\"dataframe_records\": []}");
    assert_int_equal(f->nrows, 0);
    mlk_frame_destroy(&f);
    /* an integer in a text column is its decimal text */
    f = parse_ok("application/json", "{\"dataframe_records\": [{\"price\": 1, \"qty\": 2, \"category\": 42}]}");
    size_t len;
    assert_memory_equal(mlk_str_at(&f->cols[2], 0, &len), "42", 2);
    mlk_frame_destroy(&f);
}

static void test_errors(void **state)
{
    (void)state;
    const char *J = "application/json";
    parse_err(J, "{\"dataframe_split\": ", MLOPS_EPARSE, "malformed JSON at line 1");
    parse_err(J, "[1]", MLOPS_EPARSE, "expected an object with dataframe_split");
    parse_err(J, "{}", MLOPS_EPARSE, "no dataframe_split, dataframe_records or instances");
    parse_err(J, "{\"instances\": [], \"dataframe_records\": []}", MLOPS_EPARSE, "send exactly one");
    parse_err(J, "{\"inputs\": []}", MLOPS_EPARSE, "unknown key 'inputs'");
    parse_err(J, "{\"dataframe_split\": {\"columns\": [\"price\", \"qty\"], \"data\": []}}",
              MLOPS_EPARSE, "dataframe_split.columns: missing column 'category'");
    parse_err(J, "{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\", \"zip\"], \"data\": []}}",
              MLOPS_EPARSE, "extra column 'zip' (the model takes exactly: price, qty, category)");
    parse_err(J, "{\"dataframe_split\": {\"columns\": [\"price\", \"price\"], \"data\": []}}",
              MLOPS_EPARSE, "column 'price' given twice");
    parse_err(J, "{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\"], \"data\": [[1, 2]]}}",
              MLOPS_EPARSE, "dataframe_split.data[0]: expected 3 values, got 2");
    parse_err(J, "{\"dataframe_split\": {\"columns\": [\"price\", \"qty\", \"category\"], \"data\": [[1, 2, \"a\"], [1, [2], \"a\"]]}}",
              MLOPS_EPARSE, "dataframe_split.data[1][1] (column 'qty'): expected a number, got an array");
    parse_err(J, "{\"dataframe_records\": [{\"price\": \"cheap\", \"qty\": 2, \"category\": \"a\"}]}",
              MLOPS_EPARSE, "dataframe_records[0].price (column 'price'): 'cheap' is not a number");
    parse_err(J, "{\"dataframe_records\": [{\"price\": 1, \"qty\": 2, \"category\": 1.5}]}",
              MLOPS_EPARSE, "(column 'category'): expected a string, got a number");
    parse_err(J, "{\"dataframe_records\": [{\"price\": 1, \"qty\": 2}]}", MLOPS_EPARSE,
              "dataframe_records[0]: missing column 'category'");
    parse_err(J, "{\"instances\": {\"price\": [1], \"qty\": [1, 2], \"category\": [\"a\"]}}",
              MLOPS_EPARSE, "instances.qty: 2 values, but the columns before have 1");
    parse_err(J, "{\"dataframe_records\": {\"a\": 1}}", MLOPS_EPARSE, "dataframe_records: expected an array, got an object");
    parse_err("text/csv", "price,qty\n1,2\n", MLOPS_EPARSE, "CSV header: column 'category' not in header");
    parse_err("text/csv", "price,qty,category\n1,2\n", MLOPS_EPARSE, "request:2: expected 3 fields, got 2");
    parse_err("text/csv", "price,qty,category\n1,x,a\n", MLOPS_EPARSE, "request:2: column 'qty': 'x' is not a number");
    parse_err("text/plain", "x", MLOPS_EINVAL, "Content-Type 'text/plain' is not read here");
    parse_err("", "x", MLOPS_EINVAL, "send application/json or text/csv");
}

static void test_v2(void **state)
{
    (void)state;
    const char *ok = "{\"id\": \"r1\", \"inputs\": ["
                     "{\"name\": \"category\", \"datatype\": \"BYTES\", \"shape\": [2], \"data\": [\"books\", null]},"
                     "{\"name\": \"price\", \"datatype\": \"FP64\", \"shape\": [2, 1], \"data\": [1.5, null]},"
                     "{\"name\": \"qty\", \"datatype\": \"INT64\", \"shape\": [2], \"data\": [2, 3]}]}";
    mlk_frame *f = NULL;
    char *id = NULL, err[512];
    assert_int_equal(sv_request_parse_v2(&S, ok, strlen(ok), &f, &id, err, sizeof err), 0);
    assert_string_equal(id, "r1");
    free(id);
    check_rows(f);
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"inputs\": 1}", "expected an object with an 'inputs' array"},
        {"{\"inputs\": [{\"name\": \"price\", \"datatype\": \"BYTES\", \"shape\": [1], \"data\": [\"1\"]}]}",
         "inputs[0] (price): datatype BYTES, but the model takes FP64 for this column"},
        {"{\"inputs\": [{\"name\": \"zip\", \"datatype\": \"FP64\", \"shape\": [1], \"data\": [1]}]}",
         "inputs[0]: extra column 'zip'"},
        {"{\"inputs\": [{\"name\": \"price\", \"datatype\": \"FP64\", \"shape\": [1, 2], \"data\": [1]}]}",
         "inputs[0] (price): shape must be [n] or [n, 1]"},
        {"{\"inputs\": [{\"name\": \"price\", \"datatype\": \"FP64\", \"shape\": [1], \"data\": [1]}]}",
         "inputs: missing tensor 'qty'"},
        {"{\"inputs\": [{\"name\": \"price\", \"datatype\": \"FP64\", \"shape\": [1], \"data\": [1]},"
         "{\"name\": \"qty\", \"datatype\": \"FP64\", \"shape\": [2], \"data\": [1, 2]}]}",
         "inputs[1] (qty): 2 rows, but the tensors before have 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f = NULL;
        id = NULL;
        err[0] = 0;
        assert_int_equal(sv_request_parse_v2(&S, bad[i].body, strlen(bad[i].body), &f, &id, err,
                                             sizeof err),
                         MLOPS_EPARSE);
        if (!strstr(err, bad[i].msg)) fprintf(stderr, "got '%s', want '%s'\n", err, bad[i].msg);
        assert_non_null(strstr(err, bad[i].msg));
        assert_null(f);
        assert_null(id);
    }
}

/* A binary artifact: price numeric, category hashed (16 features). */
static char *artifact_text(void)
{
    mlops_artifact_t *a = mlops_artifact_new();
    assert_non_null(a);
    a->name = strdup("m");
    a->version = 3;
    a->created = strdup("2026-12-01T00:00:00Z");
    a->label = strdup("y");
    a->nclasses = 2;
    a->classes = calloc(2, sizeof *a->classes);
    a->classes[0] = strdup("0");
    a->classes[1] = strdup("1");
    a->nnumeric = 1;
    a->numeric = calloc(1, sizeof *a->numeric);
    a->numeric[0].column = strdup("price");
    a->numeric[0].mean = 1;
    a->numeric[0].scale = 2;
    a->nhashed = 1;
    a->hashed = calloc(1, sizeof *a->hashed);
    a->hashed[0] = strdup("category");
    a->n_features = 16;
    a->alternate_sign = 1;
    a->model = mlk_model_new(2, 16, 1, 0);
    assert_non_null(a->model);
    a->model->w[3] = 0.25;
    a->model->w[16] = -1;
    a->model->b[0] = 0.5;
    a->job = strdup("j000001");
    a->job_file = strdup("name: m\n");
    char err[256] = "";
    char *text = mlops_artifact_to_json(a, err, sizeof err);
    if (!text) fprintf(stderr, "to_json: %s\n", err);
    assert_non_null(text);
    mlops_artifact_destroy(&a);
    return text;
}

static void test_slot(void **state)
{
    (void)state;
    char err[512] = "";
    char *ARTIFACT = artifact_text();
    sv_model_t *m = sv_model_new(ARTIFACT, strlen(ARTIFACT), err, sizeof err);
    if (!m) fprintf(stderr, "artifact: %s\n", err);
    assert_non_null(m);
    assert_int_equal(m->version, 3);
    assert_int_equal(m->ncols, 2);
    assert_string_equal(m->cols[0], "price");
    assert_string_equal(m->cols[1], "category");
    sv_slot_t slot;
    sv_slot_init(&slot);
    assert_null(sv_slot_get(&slot));
    sv_slot_swap(&slot, m);
    sv_model_t *held = sv_slot_get(&slot); /* a request in flight */
    assert_ptr_equal(held, m);
    sv_model_t *m2 = sv_model_new(ARTIFACT, strlen(ARTIFACT), err, sizeof err);
    assert_non_null(m2);
    sv_slot_swap(&slot, m2); /* the swap: the held one stays alive */
    assert_int_equal(atomic_load(&held->refs), 1);
    sv_model_t *now = sv_slot_get(&slot);
    assert_ptr_equal(now, m2);
    /* scoring with the held version still works after the swap */
    static char *cols[] = {"price", "category"};
    static const mlk_coltype types[] = {MLK_F64, MLK_STR};
    sv_schema_t s2 = {2, cols, types};
    const char *body = "price,category\n3,books\n,x\n";
    mlk_frame *f = NULL;
    assert_int_equal(sv_request_parse(&s2, "text/csv", body, strlen(body), &f, err, sizeof err), 0);
    double proba[4];
    uint8_t unscored[2];
    assert_int_equal(sv_model_score(held, f, proba, unscored, err, sizeof err), 0);
    assert_int_equal(unscored[0], 0);
    assert_int_equal(unscored[1], 1);
    assert_true(proba[1] > 0 && proba[1] < 1 && fabs(proba[0] + proba[1] - 1) < 1e-15);
    mlk_frame_destroy(&f);
    sv_model_release(&held); /* the last reference: freed (ASan checks) */
    assert_null(held);
    sv_model_release(&now);
    sv_slot_fini(&slot);
    free(ARTIFACT);
    /* not a model: one line naming the field */
    assert_null(sv_model_new("{\"format\": 1}", 13, err, sizeof err));
    assert_null(strchr(err, '\n'));
}

static void test_drift_window(void **state)
{
    (void)state;
    const char *ref = "{\"rows\": 100, \"numeric\": [{\"column\": \"price\", \"edges\": [1, 2, 3], "
                      "\"counts\": [25, 25, 25, 25], \"missing\": 0}],"
                      " \"categorical\": [{\"column\": \"category\", \"distinct\": 3, \"top\": "
                      "[{\"value\": \"a\", \"count\": 50}, {\"value\": \"b\", \"count\": 30}], \"other\": 20, \"missing\": 0}],"
                      " \"proba\": {\"edges\": [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1], \"classes\": "
                      "[{\"class\": \"1\", \"counts\": [10, 10, 10, 10, 10, 10, 10, 10, 10, 10]}]}}";
    json_t *r = json_loads(ref, 0, NULL);
    assert_non_null(r);
    static char *cols[] = {"price", "category"};
    static char *classes[] = {"0", "1"};
    sv_drift_t *d = sv_drift_new(r, cols, 2, classes, 2, 4);
    assert_non_null(d);
    static const mlk_coltype types[] = {MLK_F64, MLK_STR};
    sv_schema_t s2 = {2, cols, types};
    /* 6 rows into a window of 4: the last 4 count (prices 2.5, 3.5, 0.5, 1.5) */
    const char *body = "price,category\n9,a\n9,a\n2.5,a\n3.5,b\n0.5,z\n1.5,\n";
    mlk_frame *f = NULL;
    char err[256];
    assert_int_equal(sv_request_parse(&s2, "text/csv", body, strlen(body), &f, err, sizeof err), 0);
    double proba[12] = {0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.2, 0.8, 0.2, 0.8, 0.9, 0.1};
    uint8_t unscored[6] = {0, 0, 0, 0, 0, 1};
    sv_drift_add(d, f, proba, unscored);
    const char *names[8];
    double psi[8];
    size_t n = 0;
    json_t *doc = sv_drift_json(d, 0.1, 0.25, names, psi, 8, &n);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "rows")), 4);
    assert_int_equal(n, 3);
    double want_num[4] = {1, 1, 1, 1}, ref_num[4] = {25, 25, 25, 25};
    assert_string_equal(names[0], "price");
    assert_true(psi[0] == mlk_psi(ref_num, want_num, 4)); /* one per bin: 0 */
    double want_cat[3] = {1, 1, 1}, ref_cat[3] = {50, 30, 20}; /* a, b, z=other; missing skipped */
    assert_string_equal(names[1], "category");
    assert_true(psi[1] == mlk_psi(ref_cat, want_cat, 3));
    /* p = 0.1, 0.8, 0.8: bins 1, 8, 8; the unscored row is not binned */
    double want_p[10] = {0, 1, 0, 0, 0, 0, 0, 0, 2, 0}, ref_p[10] = {10, 10, 10, 10, 10, 10, 10, 10, 10, 10};
    assert_string_equal(names[2], "proba");
    assert_true(psi[2] == mlk_psi(ref_p, want_p, 10));
    assert_string_equal(sv_drift_status(psi[0], 0.1, 0.25), "stable");
    assert_string_equal(sv_drift_status(0.3, 0.1, 0.25), "shifted");
    assert_string_equal(sv_drift_status(NAN, 0.1, 0.25), "unknown");
    json_decref(doc);
    mlk_frame_destroy(&f);
    sv_drift_destroy(&d);
    assert_null(d);
    assert_null(sv_drift_new(NULL, cols, 2, classes, 2, 4)); /* an artifact without a reference */
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats), cmocka_unit_test(test_errors), cmocka_unit_test(test_v2),
        cmocka_unit_test(test_slot),    cmocka_unit_test(test_drift_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
