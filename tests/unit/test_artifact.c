/* test_artifact.c: unit tests of artifact.h: the portable JSON round
 * trip (binary and multinomial, weights and statistics bit for bit, the
 * same text twice, -0.0 kept) and the reader's refusals of damaged files,
 * each with a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "err.h"

static mlops_artifact_t *make(uint32_t K)
{
    mlops_artifact_t *a = mlops_artifact_new();
    assert_non_null(a);
    a->name = strdup("clicks");
    a->version = 3;
    a->label = strdup("y");
    a->nclasses = K;
    a->classes = calloc(K, sizeof *a->classes);
    for (uint32_t k = 0; k < K; k++) {
        char b[16];
        snprintf(b, sizeof b, "c%u", k);
        a->classes[k] = strdup(b);
    }
    a->nnumeric = 2;
    a->numeric = calloc(2, sizeof *a->numeric);
    a->numeric[0] = (mlops_art_numeric_t){strdup("price"), 41.123456789012345, 3.0000000000000004};
    a->numeric[1] = (mlops_art_numeric_t){strdup("age"), 0.1, 1e-300};
    a->nhashed = 1;
    a->hashed = calloc(1, sizeof *a->hashed);
    a->hashed[0] = strdup("cat");
    a->n_features = 16;
    a->alternate_sign = 1;
    a->model = mlk_model_new(K, 16, 2, 0);
    for (uint64_t i = 0; i < a->model->dim * a->model->n_vec; i += 3)
        a->model->w[i] = 1.0 / (double)(i + 7);
    a->model->w[1] = -0.0;
    for (uint32_t k = 0; k < a->model->n_vec; k++) a->model->b[k] = -0.3 * (k + 1);
    mlops_artifact_add_metric(a, "auc", 0.7512345678901234);
    mlops_artifact_add_tag(a, "day1");
    a->job = strdup("j000001");
    a->job_file = strdup("name: x\n");
    a->reference = json_pack("{s:I,s:[{s:s,s:[f,f],s:[I,I,I],s:I}]}", "rows", (json_int_t)5,
                             "numeric", "column", "price", "edges", 0.1, 2.0 / 3.0, "counts",
                             (json_int_t)2, (json_int_t)2, (json_int_t)1, "missing",
                             (json_int_t)0);
    return a;
}

static void roundtrip(uint32_t K)
{
    char err[512];
    mlops_artifact_t *a = make(K);
    char *text = mlops_artifact_to_json(a, err, sizeof err);
    assert_non_null(text);
    mlops_artifact_t *b = NULL;
    assert_int_equal(mlops_artifact_from_json(text, strlen(text), &b, err, sizeof err), 0);
    assert_int_equal(b->version, 3);
    assert_string_equal(b->name, "clicks");
    assert_int_equal(b->nclasses, K);
    assert_int_equal(b->model->n_vec, K == 2 ? 1 : K);
    assert_memory_equal(a->model->w, b->model->w, a->model->dim * a->model->n_vec * sizeof(double));
    assert_memory_equal(a->model->b, b->model->b, a->model->n_vec * sizeof(double));
    assert_true(signbit(b->model->w[1]));
    for (size_t i = 0; i < 2; i++) {
        assert_memory_equal(&a->numeric[i].mean, &b->numeric[i].mean, 8);
        assert_memory_equal(&a->numeric[i].scale, &b->numeric[i].scale, 8);
    }
    assert_true(mlops_artifact_metric(b, "auc") == 0.7512345678901234);
    assert_string_equal(b->tags[0], "day1");
    assert_true(json_equal(a->reference, b->reference));
    char *again = mlops_artifact_to_json(b, err, sizeof err);
    assert_string_equal(text, again);
    free(again);
    free(text);
    mlops_artifact_destroy(&a);
    mlops_artifact_destroy(&b);
    assert_null(b);
    mlops_artifact_destroy(&b);
}

static void test_roundtrip_binary(void **state)
{
    (void)state;
    roundtrip(2);
}

static void test_roundtrip_multinomial(void **state)
{
    (void)state;
    roundtrip(3);
}

/* Replace the first `from` in text by `to`, parse, expect a refusal
 * whose message contains `want`. */
static void refused(const char *text, const char *from, const char *to, const char *want)
{
    const char *at = strstr(text, from);
    if (!at) fail_msg("'%s' is not in the artifact text", from);
    size_t n = strlen(text) - strlen(from) + strlen(to);
    char *t = malloc(n + 1);
    size_t pre = (size_t)(at - text);
    memcpy(t, text, pre);
    strcpy(t + pre, to);
    strcat(t, at + strlen(from));
    char err[512] = "";
    mlops_artifact_t *a = NULL;
    int rc = mlops_artifact_from_json(t, strlen(t), &a, err, sizeof err);
    if (rc != MLOPS_EPARSE || !strstr(err, want))
        fail_msg("replacing '%s' by '%s': rc %d, message '%s', wanted '%s'", from, to, rc, err,
                 want);
    assert_null(a);
    free(t);
}

static void test_refusals(void **state)
{
    (void)state;
    char err[512];
    mlops_artifact_t *a = make(2);
    char *text = mlops_artifact_to_json(a, err, sizeof err);
    assert_non_null(text);
    refused(text, "mlops-model/1", "mlops-model/9", "format: expected");
    refused(text, "\"logistic\"", "\"tree\"", "kind: expected");
    refused(text, "\"class\": \"c1\"", "\"class\": \"c0\"", "weights[0].class: expected \"c1\"");
    refused(text, "\"indices\": [\n     0", "\"indices\": [\n     99",
            "weights[0].coef.indices[0]");
    refused(text, "\"n_features\": 16", "\"n_features\": -1", "features.hashed.n_features");
    refused(text, "\"scale\": 3.0000000000000004", "\"scale\": 0",
            "features.numeric[0].scale: must not be 0");
    refused(text, "\"mean\": 41.123456789012344", "\"mean\": \"x\"",
            "features.numeric[0].mean: expected a finite number");
    refused(text, "\"alternate_sign\": true", "\"alternate_sign\": 1",
            "alternate_sign: expected true or false");
    refused(text, "\"reference\": {", "\"reference\": 7, \"x\": {",
            "reference: expected an object");
    mlops_artifact_t *b = NULL;
    assert_int_equal(mlops_artifact_from_json("[1]", 3, &b, err, sizeof err), MLOPS_EPARSE);
    assert_string_equal(err, "model file: expected a JSON object");
    assert_null(b);
    refused(text, "\"format\"", "\"format", "line 2 column");
    free(text);
    mlops_artifact_destroy(&a);
}

static void test_shape_mismatch(void **state)
{
    (void)state;
    char err[512] = "";
    mlops_artifact_t *a = make(2);
    a->n_features = 32;
    assert_null(mlops_artifact_to_json(a, err, sizeof err));
    assert_non_null(strstr(err, "does not match its pipeline"));
    mlops_artifact_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_binary),
        cmocka_unit_test(test_roundtrip_multinomial),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_shape_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
