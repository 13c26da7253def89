/* test_jobspec.c: the job file parser/validator (common/jobspec.h).
 * Each bad job gives exactly the expected one-line message with the
 * right line number; defaults are filled; --set overrides work and name
 * themselves in errors; the canonical YAML round-trips; helpers (used
 * columns, header check, input files) answer as documented; garbage of
 * every kind gives an error, never a crash (run this under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "jobspec.h"

/* 6 lines: a valid ingest-only CSV job */
#define BASE                                                                                       \
    "name: j\n"                                                                                    \
    "input: d.csv\n"                                                                               \
    "columns:\n"                                                                                   \
    "  label: y\n"                                                                                 \
    "  numeric: [a, b]\n"                                                                          \
    "  categorical: [c]\n"

static const char FULL[] =
    "name: purchases                 # required\n"
    "input: data/purchases.csv\n"
    "shard_rows: 1000\n"
    "on_bad_row: skip\n"
    "columns:\n"
    "  label: clicked\n"
    "  numeric: [price, quantity, age, income]\n"
    "  categorical: [category, item_id, user_id]\n"
    "clean: {dropna: true, iqr_k: 1.5}\n"
    "scale: true\n"
    "hash: {n_features: 1048576, alternate_sign: false}\n"
    "split: {test_size: 0.2, seed: 42, method: sklearn}\n"
    "train: {model: logistic, epochs: 7, learning_rate: invscaling, alpha: 0.0001, eta0: 0.01,\n"
    "        power_t: 0.25, batch_size: 32, seed: 42, shuffle: false}\n"
    "evaluate: [f1, accuracy, logloss, auc]\n"
    "knn: {k: 10, metric: cosine, mode: recommend, weights: distance, user: user_id,\n"
    "      item: item_id, top_n: 20}\n";

static mlops_jobspec_t *parse_ok(const char *text, const char *const *sets, size_t nsets)
{
    char err[512] = "";
    mlops_jobspec_t *s = NULL;
    int rc = mlops_jobspec_parse_with_sets(text, strlen(text), "job.yaml", sets, nsets, &s, err,
                                           sizeof err);
    if (rc != 0)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

/* --- errors: exact messages ------------------------------------------- */

typedef struct {
    const char *text;
    const char *set; /* one --set, or NULL */
    const char *want;
} err_case;

static const err_case ERRORS[] = {
    /* from the brief */
    {"name: m\ninput: []\ncolumns: {numeric: [x]}\n", NULL, "job.yaml:2: input: expected at least one file"},
    {BASE "train:\n  epochs: 3\n  epoks: 5\n", NULL, "job.yaml:9: train: unknown key 'epoks'"},
    {"name: j\nshard_rows: abc\ninput: d.csv\n", NULL,
     "job.yaml:2: shard_rows: expected a positive integer, got 'abc'"},
    {"name: j\ninput: d.csv\n", NULL, "job.yaml: missing required key 'columns'"},
    /* required keys */
    {"input: d.csv\ncolumns: {numeric: [a]}\n", NULL, "job.yaml: missing required key 'name'"},
    {"name: j\ncolumns: {numeric: [a]}\n", NULL, "job.yaml: missing required key 'input'"},
    {"name: j\ninput: {format: idx, images: i.gz}\n", NULL,
     "job.yaml:2: input: missing required key 'labels'"},
    {"name: j\ninput: {format: csv}\ncolumns: {numeric: [a]}\n", NULL,
     "job.yaml:2: input: missing required key 'path'"},
    {"name: j\ninput: {format: csv, path: d.csv, images: x}\n", NULL,
     "job.yaml:2: input: key 'images' is not used with format csv"},
    {"name: j\ninput: {format: parquet, path: d}\n", NULL,
     "job.yaml:2: input.format: expected csv or idx, got 'parquet'"},
    /* unknown and duplicate keys */
    {BASE "epochs: 3\n", NULL, "job.yaml:7: unknown key 'epochs'"},
    {BASE "name: k\n", NULL, "job.yaml:7: duplicate key 'name' (first at line 1)"},
    {BASE "train: {epochs: 2,\n  epochs: 3}\n", NULL,
     "job.yaml:8: train: duplicate key 'epochs' (first at line 7)"},
    {BASE "knn: {queries: {format: idx, bogus: 1}}\n", NULL,
     "job.yaml:7: knn.queries: unknown key 'bogus'"},
    {BASE "? [x]\n: 1\n", NULL, "job.yaml:7: expected a plain key, got a list"},
    /* types and ranges */
    {"name: j\ninput: d.csv\ncolumns: 5\n", NULL,
     "job.yaml:3: columns: expected a mapping, got '5'"},
    {"name: j\ninput: d.csv\ncolumns:\n  numeric: a\n", NULL,
     "job.yaml:4: columns.numeric: expected a list of names, got 'a'"},
    {"name: j\ninput: d.csv\ncolumns:\n  numeric: [a, '']\n", NULL,
     "job.yaml:4: columns.numeric: expected a non-empty string, got ''"},
    {"name: 'a b'\ninput: d.csv\n", NULL,
     "job.yaml:1: name: expected 1..128 characters from [A-Za-z0-9_.-], not starting with '.', "
     "got 'a b'"},
    {"name: ../../etc/cron.d/x\ninput: d.csv\n", NULL,
     "job.yaml:1: name: expected 1..128 characters from [A-Za-z0-9_.-], not starting with '.', "
     "got '../../etc/cron.d/x'"},
    {"name: '..'\ninput: d.csv\n", NULL,
     "job.yaml:1: name: expected 1..128 characters from [A-Za-z0-9_.-], not starting with '.', "
     "got '..'"},
    {"name:\ninput: d.csv\n", NULL, "job.yaml:1: name: expected a non-empty string, got nothing"},
    {BASE "on_bad_row: maybe\n", NULL,
     "job.yaml:7: on_bad_row: expected fail or skip, got 'maybe'"},
    {BASE "shard_rows: 0\n", NULL, "job.yaml:7: shard_rows: expected a positive integer, got '0'"},
    {BASE "shard_rows: 2147483648\n", NULL,
     "job.yaml:7: shard_rows: expected a positive integer, got '2147483648'"},
    {BASE "shard_rows: 1.5\n", NULL,
     "job.yaml:7: shard_rows: expected a positive integer, got '1.5'"},
    {BASE "shard_rows: [1]\n", NULL, "job.yaml:7: shard_rows: expected a positive integer, got a list"},
    {BASE "scale: maybe\n", NULL, "job.yaml:7: scale: expected true or false, got 'maybe'"},
    {BASE "clean: {iqr_k: -1}\n", NULL, "job.yaml:7: clean.iqr_k: expected a number >= 0, got '-1'"},
    {BASE "clean: {iqr_k: nan}\n", NULL,
     "job.yaml:7: clean.iqr_k: expected a number >= 0, got 'nan'"},
    {BASE "clean: {iqr_k: 0x10}\n", NULL,
     "job.yaml:7: clean.iqr_k: expected a number >= 0, got '0x10'"},
    {BASE "clean: {dropna: 1}\n", NULL, "job.yaml:7: clean.dropna: expected true or false, got '1'"},
    {BASE "hash: {n_features: 0}\n", NULL,
     "job.yaml:7: hash.n_features: expected a positive integer, got '0'"},
    {BASE "split: {test_size: 1}\n", NULL,
     "job.yaml:7: split.test_size: expected a number in (0, 1), got '1'"},
    {BASE "split: {test_size: 0}\n", NULL,
     "job.yaml:7: split.test_size: expected a number in (0, 1), got '0'"},
    {BASE "split: {seed: -1}\n", NULL,
     "job.yaml:7: split.seed: expected an integer in 0..4294967295, got '-1'"},
    {BASE "split: {method: random}\n", NULL,
     "job.yaml:7: split.method: expected hash or sklearn, got 'random'"},
    {BASE "train: {epochs: 1001}\n", NULL,
     "job.yaml:7: train.epochs: expected an integer in 1..1000, got '1001'"},
    {BASE "train: {learning_rate: fast}\n", NULL,
     "job.yaml:7: train.learning_rate: expected optimal, constant, invscaling or adagrad, got "
     "'fast'"},
    {BASE "train: {model: svm}\n", NULL, "job.yaml:7: train.model: expected logistic, got 'svm'"},
    {BASE "train: {eta0: 0}\n", NULL, "job.yaml:7: train.eta0: expected a number > 0, got '0'"},
    {BASE "train:\n  alpha: 0\n", NULL,
     "job.yaml:8: train.alpha: learning_rate optimal needs alpha > 0"},
    {BASE "train: {C: 0.5,\n  alpha: 0.001}\n", NULL,
     "job.yaml:8: train.alpha: cannot be combined with train.C (give C, LogisticRegression's "
     "penalty, or alpha, SGDClassifier's)"},
    {BASE "train: {C: 0}\n", NULL, "job.yaml:7: train.C: expected a number > 0, got '0'"},
    {BASE "train: {solver: newton}\n", NULL,
     "job.yaml:7: train.solver: expected sgd or lbfgs, got 'newton'"},
    {BASE "train: {max_iter: 0}\n", NULL,
     "job.yaml:7: train.max_iter: expected an integer in 1..100000, got '0'"},
    {BASE "train: {batch_size: 0}\n", NULL,
     "job.yaml:7: train.batch_size: expected a positive integer, got '0'"},
    {BASE "knn: {k: 0}\n", NULL, "job.yaml:7: knn.k: expected an integer in 1..100000, got '0'"},
    {BASE "knn: {weights: heavy}\n", NULL,
     "job.yaml:7: knn.weights: expected uniform or distance, got 'heavy'"},
    {BASE "noop: {tasks: 0}\n", NULL,
     "job.yaml:7: noop.tasks: expected an integer in 1..10000000, got '0'"},
    /* columns */
    {"name: j\ninput: d.csv\ncolumns:\n  numeric: [a, b]\n  categorical: [c,\n    a]\n", NULL,
     "job.yaml:6: columns.categorical: column 'a' listed twice (also in columns.numeric)"},
    {"name: j\ninput: d.csv\ncolumns:\n  numeric: [a, b, a]\n", NULL,
     "job.yaml:4: columns.numeric: column 'a' listed twice"},
    {"name: j\ninput: d.csv\ncolumns:\n  label: c\n  numeric: [a]\n  categorical: [c]\n", NULL,
     "job.yaml:4: columns.label: 'c' is also listed as a feature (columns.categorical)"},
    /* stage rules */
    {"name: j\ninput: d.csv\ncolumns: {numeric: [a]}\ntrain: {}\n", NULL,
     "job.yaml:4: train: needs a label column (columns.label)"},
    {BASE "evaluate: [auc]\n", NULL, "job.yaml:7: evaluate: needs a train stage"},
    {BASE "train: {solver: lbfgs}\ncv: {folds: 3}\n", NULL,
     "job.yaml:8: cv: not with train.solver lbfgs (the folds train by SGD)"},
    {BASE "knn: {k: 3}\nregister: {model: m}\n", NULL,
     "job.yaml:8: register: needs a train stage or a knn stage in recommend mode"},
    {BASE "train: {}\nevaluate: [auc, accuracy, auc]\n", NULL,
     "job.yaml:8: evaluate: metric 'auc' listed twice"},
    {BASE "train: {}\nevaluate: []\n", NULL, "job.yaml:8: evaluate: expected at least one metric"},
    {BASE "train: {}\nevaluate: [auc, mse]\n", NULL,
     "job.yaml:8: evaluate: unknown metric 'mse' (expected accuracy, logloss, auc, f1, precision, "
     "recall or confusion)"},
    {BASE "knn: {mode: recommend, user: c}\n", NULL,
     "job.yaml:7: knn: mode recommend needs 'user' and 'item' columns"},
    {BASE "knn: {mode: recommend, user: c, item: c}\n", NULL,
     "job.yaml:7: knn.item: same column as knn.user ('c')"},
    {BASE "knn: {k: 3,\n  user: c}\n", NULL, "job.yaml:8: knn.user: only used with mode recommend"},
    {BASE "knn: {mode: recommend, user: c, item: d,\n  queries: q.csv}\n", NULL,
     "job.yaml:8: knn.queries: only used with mode classify"},
    {"name: j\ninput: d.csv\ncolumns: {numeric: [a]}\nknn: {}\n", NULL,
     "job.yaml:4: knn: mode classify needs a label column (columns.label)"},
    {BASE "knn: {queries: {format: idx, images: a, labels: b}}\n", NULL,
     "job.yaml:7: knn.queries: format must match the input's (csv)"},
    {"name: j\ninput: d.csv\ncolumns: {categorical: [c]}\nscale: true\n", NULL,
     "job.yaml:4: scale: no numeric columns to scale (columns.numeric)"},
    {"name: j\ninput: d.csv\ncolumns: {numeric: [a]}\nhash: {}\n", NULL,
     "job.yaml:4: hash: no categorical columns to hash (columns.categorical)"},
    {"name: j\ninput: d.csv\ncolumns: {categorical: [c]}\nclean:\n  iqr_k: 1.5\n", NULL,
     "job.yaml:5: clean.iqr_k: no numeric columns to filter (columns.numeric)"},
    {"name: j\ninput: {format: idx, images: i, labels: l}\ncolumns: {numeric: [a]}\n", NULL,
     "job.yaml:3: columns.numeric: not used with idx input (features are the pixels)"},
    {"name: j\ninput: {format: idx, images: i, labels: l}\nhash: {}\n", NULL,
     "job.yaml:3: hash: not used with idx input (no categorical columns)"},
    {"name: j\nnoop: {tasks: 5}\ntrain: {}\n", NULL,
     "job.yaml:3: train: cannot be combined with noop (noop stands alone)"},
    /* document shape */
    {"", NULL, "job.yaml: empty job file"},
    {"# only a comment\n\n", NULL, "job.yaml: empty job file"},
    {"---\n", NULL, "job.yaml: empty job file"},
    {"- a\n- b\n", NULL, "job.yaml:1: expected a mapping of keys at the top level, got a list"},
    {"just text\n", NULL,
     "job.yaml:1: expected a mapping of keys at the top level, got 'just text'"},
    {"name: j\n---\nname: k\n", NULL, "job.yaml:2: more than one YAML document"},
    {"name: &n j\ninput: *n\n", NULL, "job.yaml:2: YAML aliases are not supported"},
    /* --set */
    {BASE "train: {}\n", "train.epoks=3", "--set train.epoks=3: train: unknown key 'epoks'"},
    {BASE "train: {}\n", "train.epochs=abc",
     "--set train.epochs=abc: train.epochs: expected an integer in 1..1000, got 'abc'"},
    {BASE, "shard_rows=", "--set shard_rows=: shard_rows: expected a positive integer, got nothing"},
    {BASE, "epochs=3", "--set epochs=3: unknown key 'epochs'"},
    {BASE, "nokey", "--set nokey: expected key=value with a dotted key (train.epochs=3)"},
    {BASE, "=3", "--set =3: expected key=value with a dotted key (train.epochs=3)"},
    {BASE, "a..b=3", "--set a..b=3: expected key=value with a dotted key (train.epochs=3)"},
    {BASE, "train.=3", "--set train.=3: expected key=value with a dotted key (train.epochs=3)"},
    {BASE "scale: true\n", "scale.x=1", "--set scale.x=1: 'scale' is not a mapping"},
    {BASE, "clean.iqr_k=-2", "--set clean.iqr_k=-2: clean.iqr_k: expected a number >= 0, got '-2'"},
    {BASE, "columns.numeric=[a, c]",
     /* the clash is reported where the second listing is: the file */
     "job.yaml:6: columns.categorical: column 'c' listed twice (also in columns.numeric)"},
};

static void test_errors(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof ERRORS / sizeof *ERRORS; i++) {
        const err_case *e = &ERRORS[i];
        char err[512] = "";
        mlops_jobspec_t *s = NULL;
        const char *sets[1] = {e->set};
        int rc = mlops_jobspec_parse_with_sets(e->text, strlen(e->text), "job.yaml", sets,
                                               e->set ? 1 : 0, &s, err, sizeof err);
        if (rc == 0 || s != NULL || strcmp(err, e->want) != 0) {
            print_error("case %zu: rc=%d\n  want: %s\n  got:  %s\n", i, rc, e->want, err);
            failed++;
        }
        mlops_jobspec_destroy(&s);
    }
    assert_int_equal(failed, 0);
}

/* register: without train is a recommender (a knn stage in recommend mode) */
static void test_register_recommender(void **state)
{
    (void)state;
    const char *text = BASE "knn: {k: 5, metric: cosine, mode: recommend, user: a, item: c}\n"
                            "register: {model: shop-rec}\n";
    char err[512] = "";
    mlops_jobspec_t *s = NULL;
    assert_int_equal(mlops_jobspec_parse(text, strlen(text), "job.yaml", &s, err, sizeof err), 0);
    assert_true(s->has_register);
    assert_string_equal(s->reg.model, "shop-rec");
    mlops_jobspec_destroy(&s);
}

static void test_syntax_error(void **state)
{
    (void)state;
    const char *text = "name: j\ninput: d.csv\ncolumns: {numeric: [a\n";
    char err[512] = "";
    mlops_jobspec_t *s = NULL;
    assert_int_equal(mlops_jobspec_parse(text, strlen(text), "job.yaml", &s, err, sizeof err),
                     MLOPS_EPARSE);
    assert_null(s);
    assert_non_null(strstr(err, "YAML syntax error"));
    assert_int_equal(strncmp(err, "job.yaml:", 9), 0);
    assert_null(strchr(err, '\n'));
    /* a --set value that is not YAML */
    const char *sets[] = {"evaluate=[auc"};
    assert_int_equal(mlops_jobspec_parse_with_sets(BASE, strlen(BASE), "job.yaml", sets, 1, &s,
                                                   err, sizeof err),
                     MLOPS_EPARSE);
    assert_int_equal(strncmp(err, "--set evaluate=[auc: YAML syntax error", 38), 0);
    /* NULL filename and a tiny error buffer */
    char tiny[8];
    assert_int_not_equal(mlops_jobspec_parse("x", 1, NULL, &s, tiny, sizeof tiny), 0);
    assert_int_equal(strlen(tiny), 7);
    assert_int_not_equal(mlops_jobspec_parse("", 0, NULL, NULL, NULL, 0), 0);
}

/* --- defaults ----------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    mlops_jobspec_t *s = parse_ok(BASE, NULL, 0);
    assert_string_equal(s->name, "j");
    assert_int_equal(s->input.format, MLOPS_INPUT_CSV);
    assert_string_equal(s->input.path, "d.csv");
    assert_int_equal(s->shard_rows, 65536);
    assert_int_equal(s->on_bad_row, MLOPS_BAD_ROW_FAIL);
    assert_true(s->has_columns);
    assert_string_equal(s->columns.label, "y");
    assert_int_equal(s->columns.n_numeric, 2);
    assert_string_equal(s->columns.numeric[1], "b");
    assert_int_equal(s->columns.n_categorical, 1);
    assert_false(s->has_clean || s->has_scale || s->has_hash || s->has_split || s->has_train ||
                 s->has_evaluate || s->has_knn || s->has_noop);
    mlops_jobspec_destroy(&s);
    assert_null(s);

    s = parse_ok(BASE "clean: {}\nscale: false\nhash: {}\nsplit: {}\ntrain: {}\nknn: {}\n", NULL,
                 0);
    assert_true(s->has_clean);
    assert_true(s->clean.dropna);
    assert_false(s->clean.has_iqr);
    assert_false(s->has_scale);
    assert_true(s->has_hash);
    assert_int_equal(s->hash.n_features, 1048576);
    assert_true(s->hash.alternate_sign);
    assert_true(s->has_split);
    assert_true(s->split.test_size == 0.25);
    assert_int_equal(s->split.seed, 0);
    assert_int_equal(s->split.method, MLOPS_SPLIT_HASH);
    assert_true(s->has_train);
    assert_int_equal(s->train.model, MLOPS_MODEL_LOGISTIC);
    assert_int_equal(s->train.epochs, 5);
    assert_int_equal(s->train.learning_rate, MLOPS_LR_OPTIMAL);
    assert_true(s->train.alpha == 0.0001);
    assert_true(s->train.eta0 == 0.01);
    assert_true(s->train.power_t == 0.5);
    assert_int_equal(s->train.batch_size, 1);
    assert_true(s->train.shuffle);
    assert_true(s->has_knn);
    assert_int_equal(s->knn.k, 5);
    assert_int_equal(s->knn.metric, MLOPS_KNN_EUCLIDEAN);
    assert_int_equal(s->knn.mode, MLOPS_KNN_CLASSIFY);
    assert_int_equal(s->knn.weights, MLOPS_KNN_UNIFORM);
    assert_false(s->knn.has_queries);
    mlops_jobspec_destroy(&s);

    /* noop alone: no input, no columns */
    s = parse_ok("name: bench.noop-1\nnoop: {tasks: 1000}\n", NULL, 0);
    assert_true(s->has_noop);
    assert_int_equal(s->noop.tasks, 1000);
    assert_int_equal(s->input.format, MLOPS_INPUT_NONE);
    mlops_jobspec_destroy(&s);

    /* idx input: label implicit, columns optional */
    s = parse_ok("name: mnist\ninput: {format: idx, images: tr-i.gz, labels: tr-l.gz}\nscale: true\n"
                 "knn: {k: 3, queries: {format: idx, images: te-i.gz, labels: te-l.gz}}\n",
                 NULL, 0);
    assert_int_equal(s->input.format, MLOPS_INPUT_IDX);
    assert_string_equal(s->input.images, "tr-i.gz");
    assert_true(mlops_jobspec_has_label(s));
    assert_true(s->knn.has_queries);
    assert_string_equal(s->knn.queries.labels, "te-l.gz");
    mlops_jobspec_destroy(&s);
}

static void test_full(void **state)
{
    (void)state;
    mlops_jobspec_t *s = parse_ok(FULL, NULL, 0);
    assert_int_equal(s->shard_rows, 1000);
    assert_int_equal(s->on_bad_row, MLOPS_BAD_ROW_SKIP);
    assert_true(s->clean.has_iqr);
    assert_true(s->clean.iqr_k == 1.5);
    assert_true(s->has_scale);
    assert_false(s->hash.alternate_sign);
    assert_true(s->split.test_size == 0.2);
    assert_int_equal(s->split.seed, 42);
    assert_int_equal(s->split.method, MLOPS_SPLIT_SKLEARN);
    assert_int_equal(s->train.epochs, 7);
    assert_int_equal(s->train.learning_rate, MLOPS_LR_INVSCALING);
    assert_true(s->train.power_t == 0.25);
    assert_int_equal(s->train.batch_size, 32);
    assert_false(s->train.shuffle);
    assert_int_equal(s->metrics, MLOPS_METRIC_F1 | MLOPS_METRIC_ACCURACY | MLOPS_METRIC_LOGLOSS |
                                     MLOPS_METRIC_AUC);
    assert_int_equal(s->knn.mode, MLOPS_KNN_RECOMMEND);
    assert_int_equal(s->knn.metric, MLOPS_KNN_COSINE);
    assert_int_equal(s->knn.weights, MLOPS_KNN_DISTANCE);
    assert_string_equal(s->knn.user, "user_id");
    assert_string_equal(s->knn.item, "item_id");
    assert_int_equal(s->knn.top_n, 20);
    mlops_jobspec_destroy(&s);
}

/* --- --set ---------------------------------------------------------------- */

static void test_sets(void **state)
{
    (void)state;
    const char *sets[] = {"train.epochs=3", "input=other.csv", "clean.iqr_k=2",
                          "evaluate=[auc, f1]", "split={test_size: 0.3}", "shard_rows=10",
                          "train.epochs=4"};
    mlops_jobspec_t *s = parse_ok(BASE, sets, sizeof sets / sizeof *sets);
    assert_true(s->has_train);
    assert_int_equal(s->train.epochs, 4); /* later --set wins */
    assert_string_equal(s->input.path, "other.csv");
    assert_true(s->has_clean);
    assert_true(s->clean.has_iqr);
    assert_true(s->clean.iqr_k == 2);
    assert_int_equal(s->metrics, MLOPS_METRIC_AUC | MLOPS_METRIC_F1);
    assert_true(s->split.test_size == 0.3);
    assert_int_equal(s->shard_rows, 10);
    mlops_jobspec_destroy(&s);

    /* overriding inside an existing section keeps its other keys */
    const char *one[] = {"train.seed=9"};
    s = parse_ok(FULL, one, 1);
    assert_int_equal(s->train.seed, 9);
    assert_int_equal(s->train.epochs, 7);
    mlops_jobspec_destroy(&s);
}

/* --- canonical YAML ------------------------------------------------------------ */

static void round_trip(const char *text)
{
    mlops_jobspec_t *a = parse_ok(text, NULL, 0);
    char *y1 = NULL, *y2 = NULL;
    size_t n1 = 0, n2 = 0;
    assert_int_equal(mlops_jobspec_to_yaml(a, &y1, &n1), 0);
    assert_int_equal(strlen(y1), n1);
    mlops_jobspec_t *b = parse_ok(y1, NULL, 0);
    assert_int_equal(mlops_jobspec_to_yaml(b, &y2, &n2), 0);
    assert_string_equal(y1, y2);
    /* spot checks that the fields, not just the text, survived */
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->input.format, b->input.format);
    assert_int_equal(a->shard_rows, b->shard_rows);
    assert_int_equal(a->has_train, b->has_train);
    assert_true(a->train.alpha == b->train.alpha);
    assert_true(a->train.eta0 == b->train.eta0);
    assert_true(a->split.test_size == b->split.test_size);
    assert_true(a->clean.iqr_k == b->clean.iqr_k);
    assert_int_equal(a->metrics, b->metrics);
    assert_int_equal(a->columns.n_categorical, b->columns.n_categorical);
    for (size_t i = 0; i < a->columns.n_categorical; i++)
        assert_string_equal(a->columns.categorical[i], b->columns.categorical[i]);
    free(y1);
    free(y2);
    mlops_jobspec_destroy(&a);
    mlops_jobspec_destroy(&b);
}

static void test_to_yaml(void **state)
{
    (void)state;
    round_trip(FULL);
    round_trip(BASE);
    round_trip("name: n\nnoop: {tasks: 7}\n");
    round_trip("name: mnist\ninput: {format: idx, images: a, labels: b}\nscale: true\n"
               "split: {test_size: 0.1234567890123}\n"
               "knn: {queries: {format: idx, images: c, labels: d}}\n");
    /* awkward strings: quotes, backslash, YAML words, unicode, '#' */
    round_trip("name: j\ninput: \"dir with space/d \\\"q\\\".csv\"\ncolumns:\n"
               "  label: 'true'\n  numeric: ['null', \"a\\\\b\", 'x #y']\n"
               "  categorical: [\"\\u00e9t\\u00e9\", \"tab\\there\", '1.5']\n"
               "train: {alpha: 1e-7, eta0: 0.1, power_t: -0.5}\n");

    mlops_jobspec_t *s = parse_ok(BASE "train: {epochs: 3}\nevaluate: [recall, accuracy]\n", NULL,
                                  0);
    char *y = NULL;
    assert_int_equal(mlops_jobspec_to_yaml(s, &y, NULL), 0);
    /* canonical order of metrics, defaults written out */
    assert_non_null(strstr(y, "evaluate: [accuracy, recall]\n"));
    assert_non_null(strstr(y, "shard_rows: 65536\n"));
    /* the penalty is C's unless alpha is given: neither is written */
    assert_non_null(strstr(y, "epochs: 3, solver: sgd, max_iter: 100, tol: 0.0001, power_t: 0.5"));
    assert_null(strstr(y, "alpha"));
    free(y);
    mlops_jobspec_destroy(&s);
    assert_int_equal(mlops_jobspec_to_yaml(NULL, &y, NULL), MLOPS_EINVAL);
}

/* --- helpers -------------------------------------------------------------------- */

static void test_columns_header_inputs(void **state)
{
    (void)state;
    mlops_jobspec_t *s = parse_ok(FULL, NULL, 0);
    mlops_jobspec_col_t *cols;
    size_t n;
    assert_int_equal(mlops_jobspec_used_columns(s, &cols, &n), 0);
    assert_int_equal(n, 8); /* user/item already categorical: not repeated */
    assert_string_equal(cols[0].name, "price");
    assert_int_equal(cols[0].type, MLK_F64);
    assert_int_equal(cols[0].role, MLOPS_COL_NUMERIC);
    assert_string_equal(cols[4].name, "category");
    assert_int_equal(cols[4].type, MLK_STR);
    assert_string_equal(cols[7].name, "clicked");
    assert_int_equal(cols[7].type, MLK_STR);
    assert_int_equal(cols[7].role, MLOPS_COL_LABEL);
    free(cols);

    const char *hdr[] = {"clicked", "user_id", "item_id", "category", "income",
                         "age",     "quantity", "price", "extra"};
    char err[256] = "";
    assert_int_equal(mlops_jobspec_check_header(s, "data.csv", hdr, 9, err, sizeof err), 0);
    assert_int_equal(mlops_jobspec_check_header(s, "data.csv", hdr + 1, 8, err, sizeof err),
                     MLOPS_ENOTFOUND);
    assert_string_equal(err, "data.csv: column 'clicked' (columns.label) is not in the header");
    const char *hdr2[] = {"clicked", "user_id", "item_id", "category", "income", "age", "quantity"};
    assert_int_equal(mlops_jobspec_check_header(s, "data.csv", hdr2, 7, err, sizeof err),
                     MLOPS_ENOTFOUND);
    assert_string_equal(err, "data.csv: column 'price' (columns.numeric) is not in the header");
    const char *hdr3[] = {"clicked", "user_id", "item_id", "category", "income",
                          "age",     "quantity", "price", "age"};
    assert_int_equal(mlops_jobspec_check_header(s, "data.csv", hdr3, 9, err, sizeof err),
                     MLOPS_EINVAL);
    assert_string_equal(err, "data.csv: column 'age' (columns.numeric) appears 2 times in the header");

    mlops_jobspec_file_t *files;
    assert_int_equal(mlops_jobspec_inputs(s, "/jobs/p", &files, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(files[0].role, "input");
    assert_string_equal(files[0].path, "/jobs/p/data/purchases.csv");
    mlops_jobspec_files_free(&files, n);
    assert_null(files);
    mlops_jobspec_destroy(&s);

    /* user/item not among the features: added as keys */
    s = parse_ok("name: r\ninput: /abs/r.csv\ncolumns: {numeric: [x]}\n"
                 "knn: {mode: recommend, user: u, item: i}\n",
                 NULL, 0);
    assert_int_equal(mlops_jobspec_used_columns(s, &cols, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(cols[1].name, "u");
    assert_int_equal(cols[1].role, MLOPS_COL_KEY);
    free(cols);
    const char *hdr4[] = {"x", "u"};
    assert_int_equal(mlops_jobspec_check_header(s, "r.csv", hdr4, 2, err, sizeof err),
                     MLOPS_ENOTFOUND);
    assert_string_equal(err, "r.csv: column 'i' (knn.item) is not in the header");
    assert_int_equal(mlops_jobspec_inputs(s, "/jobs", &files, &n), 0);
    assert_string_equal(files[0].path, "/abs/r.csv"); /* absolute: as written */
    mlops_jobspec_files_free(&files, n);
    mlops_jobspec_destroy(&s);

    /* many files: a list and a glob, expanded in strcmp order; the
     * canonical form keeps the list as written */
    char gdir[] = "/tmp/test_jobspec.XXXXXX";
    assert_non_null(mkdtemp(gdir));
    const char *names[] = {"ev-b.csv", "ev-B.csv.gz", "ev-a.csv.zst"};
    for (int i = 0; i < 3; i++) {
        char fp[256];
        snprintf(fp, sizeof fp, "%s/%s", gdir, names[i]);
        FILE *f = fopen(fp, "w");
        assert_non_null(f);
        fclose(f);
    }
    s = parse_ok("name: m\ninput: [one.csv, \"ev-*\"]\ncolumns: {numeric: [x]}\n", NULL, 0);
    assert_int_equal(s->input.npaths, 2);
    assert_string_equal(s->input.path, "one.csv");
    char *y = NULL;
    size_t yl = 0;
    assert_int_equal(mlops_jobspec_to_yaml(s, &y, &yl), 0);
    assert_non_null(strstr(y, "input: {format: csv, path: [\"one.csv\", \"ev-*\"]}\n"));
    free(y);
    assert_int_equal(mlops_jobspec_inputs(s, gdir, &files, &n), 0);
    assert_int_equal(n, 4);
    const char *order[] = {"one.csv", "ev-B.csv.gz", "ev-a.csv.zst", "ev-b.csv"};
    for (int i = 0; i < 4; i++) {
        char fp[256];
        snprintf(fp, sizeof fp, "%s/%s", gdir, order[i]);
        assert_string_equal(files[i].path, fp);
        assert_string_equal(files[i].role, "input");
    }
    mlops_jobspec_files_free(&files, n);
    mlops_jobspec_destroy(&s);
    s = parse_ok("name: m\ninput: {path: \"none-*.csv\"}\ncolumns: {numeric: [x]}\n", NULL, 0);
    assert_int_equal(mlops_jobspec_inputs_err(s, gdir, &files, &n, err, sizeof err), MLOPS_ENOTFOUND);
    assert_string_equal(err, "input: 'none-*.csv' matches no file");
    mlops_jobspec_destroy(&s);
    for (int i = 0; i < 3; i++) {
        char fp[256];
        snprintf(fp, sizeof fp, "%s/%s", gdir, names[i]);
        unlink(fp);
    }
    rmdir(gdir);

    s = parse_ok("name: mnist\ninput: {format: idx, images: a.gz, labels: b.gz}\n"
                 "knn: {queries: {format: idx, images: c.gz, labels: d.gz}}\n",
                 NULL, 0);
    assert_int_equal(mlops_jobspec_used_columns(s, &cols, &n), 0);
    assert_int_equal(n, 0);
    assert_null(cols);
    assert_int_equal(mlops_jobspec_inputs(s, NULL, &files, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(files[0].role, "images");
    assert_string_equal(files[1].role, "labels");
    assert_string_equal(files[2].role, "queries.images");
    assert_string_equal(files[3].role, "queries.labels");
    assert_string_equal(files[3].path, "d.gz");
    mlops_jobspec_files_free(&files, n);
    mlops_jobspec_destroy(&s);

    char *d = mlops_jobspec_dirname("jobs/x/job.yaml");
    assert_string_equal(d, "jobs/x");
    free(d);
    d = mlops_jobspec_dirname("job.yaml");
    assert_string_equal(d, ".");
    free(d);
    d = mlops_jobspec_dirname("/job.yaml");
    assert_string_equal(d, "/");
    free(d);
}

/* --- garbage -------------------------------------------------------------------- */

/* Parse must either succeed or give one non-empty line; never crash. */
static void must_not_crash(const char *text, size_t len)
{
    char err[512];
    err[0] = '\0';
    mlops_jobspec_t *s = NULL;
    int rc = mlops_jobspec_parse(text, len, "g.yaml", &s, err, sizeof err);
    if (rc == 0) {
        assert_non_null(s);
        char *y = NULL;
        assert_int_equal(mlops_jobspec_to_yaml(s, &y, NULL), 0);
        free(y);
    } else {
        assert_null(s);
        assert_true(err[0] != '\0');
        assert_null(strchr(err, '\n'));
    }
    mlops_jobspec_destroy(&s);
}

static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void test_garbage(void **state)
{
    (void)state;
    uint32_t x = 12345;
    char buf[4096];
    /* random binary */
    for (int it = 0; it < 50; it++) {
        size_t n = rnd(&x) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)rnd(&x);
        must_not_crash(buf, n);
    }
    must_not_crash("\0\0\0\0", 4);
    must_not_crash("name: j\0x\n", 10);
    must_not_crash("name: \"a\\0b\"\ninput: d.csv\ncolumns: {numeric: [a]}\n", 49);
    must_not_crash("\xff\xfe\x00n\x00", 5);

    /* deep nesting of every kind */
    size_t depth = 20000;
    char *deep = malloc(depth * 4 + 16);
    assert_non_null(deep);
    memset(deep, '[', depth);
    must_not_crash(deep, depth);
    memset(deep, '{', depth);
    must_not_crash(deep, depth);
    size_t o = 0;
    for (size_t i = 0; i < 100; i++)
        o += (size_t)sprintf(deep + o, "a: {");
    must_not_crash(deep, o);
    o = 0;
    for (size_t i = 0; i < 2000 && o + 4 < depth * 4; i++)
        o += (size_t)sprintf(deep + o, "- ");
    deep[o++] = 'x';
    must_not_crash(deep, o);
    free(deep);

    /* alias bombs */
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
    must_not_crash(bomb, strlen(bomb));
    must_not_crash("&a [*a]", 7);
    /* huge flat list of keys/values */
    size_t big = 300000;
    char *flat = malloc(big);
    assert_non_null(flat);
    o = 0;
    o += (size_t)sprintf(flat, "name: j\ninput: d.csv\ncolumns: {numeric: [");
    while (o + 16 < big)
        o += (size_t)sprintf(flat + o, "c%zu, ", o);
    flat[o++] = 'z';
    flat[o++] = ']';
    flat[o++] = '}';
    must_not_crash(flat, o);

    /* many columns with one duplicate far down: found, named, quickly */
    o = (size_t)sprintf(flat, "name: j\ninput: d.csv\ncolumns:\n  numeric: [");
    for (int i = 0; i < 20000; i++)
        o += (size_t)sprintf(flat + o, "c%d, ", i);
    o += (size_t)sprintf(flat + o, "c17, c3]\n  categorical: [c2]\n");
    char err[256] = "";
    mlops_jobspec_t *s = NULL;
    assert_int_equal(mlops_jobspec_parse(flat, o, "job.yaml", &s, err, sizeof err), MLOPS_EINVAL);
    assert_string_equal(err, "job.yaml:4: columns.numeric: column 'c17' listed twice");
    free(flat);

    /* mutations of a valid file: flip, insert, delete bytes */
    size_t flen = strlen(FULL);
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, FULL, flen);
        size_t n = flen;
        int edits = 1 + (int)(rnd(&x) % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = rnd(&x) % n;
            switch (rnd(&x) % 3) {
            case 0: buf[pos] = (char)rnd(&x); break;
            case 1:
                if (n + 1 < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = "{}[]:,-&*!|>'\"#\n\t 0"[rnd(&x) % 19];
                    n++;
                }
                break;
            default:
                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                n--;
            }
        }
        must_not_crash(buf, n);
    }
}

/* join: the list, its defaults, the canonical YAML round trip, the
 * columns it takes away from the input and the key it adds, the upload
 * roles of the right tables, and the errors naming the join */
static void test_join(void **state)
{
    (void)state;
    const char *text = "name: j\ninput: ev.csv\n"
                       "join: [{input: items.csv, on: item_id, columns: [cat], validate: many_to_one},\n"
                       "       {input: users.csv, on: uid, columns: [age], how: inner}]\n"
                       "columns: {label: y, numeric: [price, age], categorical: [cat, item_id]}\n";
    mlops_jobspec_t *s = parse_ok(text, NULL, 0);
    assert_int_equal(s->njoin, 2);
    assert_int_equal(s->join[0].how, MLOPS_JOIN_LEFT);
    assert_int_equal(s->join[0].validate, MLOPS_JOIN_MANY_TO_ONE);
    assert_int_equal(s->join[1].how, MLOPS_JOIN_INNER);
    assert_int_equal(s->join_broadcast_limit, 64u << 20);
    char *y = NULL, *y2 = NULL;
    assert_int_equal(mlops_jobspec_to_yaml(s, &y, NULL), 0);
    mlops_jobspec_t *s2 = parse_ok(y, NULL, 0);
    assert_int_equal(mlops_jobspec_to_yaml(s2, &y2, NULL), 0);
    assert_string_equal(y, y2);
    mlops_jobspec_col_t *cols;
    size_t n;
    assert_int_equal(mlops_jobspec_used_columns(s, &cols, &n), 0);
    assert_int_equal(n, 4); /* price, item_id, y, then the key uid */
    assert_string_equal(cols[0].name, "price");
    assert_string_equal(cols[1].name, "item_id");
    assert_string_equal(cols[2].name, "y");
    assert_string_equal(cols[3].name, "uid");
    assert_int_equal(cols[3].role, MLOPS_COL_JOIN_KEY);
    free(cols);
    mlops_jobspec_file_t *files;
    assert_int_equal(mlops_jobspec_inputs(s, "/d", &files, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(files[1].role, "join.0");
    assert_string_equal(files[1].path, "/d/items.csv");
    assert_string_equal(files[2].role, "join.1");
    mlops_jobspec_files_free(&files, n);
    const char *hdr[] = {"price", "item_id", "y"};
    char err[256];
    assert_int_equal(mlops_jobspec_check_header(s, "ev.csv", hdr, 3, err, sizeof err), MLOPS_ENOTFOUND);
    assert_string_equal(err, "ev.csv: column 'uid' (join.on) is not in the header");
    free(y);
    free(y2);
    mlops_jobspec_destroy(&s);
    mlops_jobspec_destroy(&s2);
    static const err_case bad[] = {
        {BASE "join: {input: i.csv, on: k}\n", NULL, "job.yaml:7: join[0]: missing required key 'columns'"},
        {BASE "join: [{input: i.csv, on: k, columns: [k]}]\n", NULL,
         "job.yaml:7: join[0].columns: 'k' is the key (on), which every row already has"},
        {BASE "join: [{input: i.csv, on: k, columns: [c], how: outer}]\n", NULL,
         "job.yaml:7: join[0].how: expected left or inner, got 'outer'"},
        {BASE "join: []\n", NULL, "job.yaml:7: join: expected at least one join"},
        {BASE "join: [{input: i.csv, on: k, columns: [c]}, {input: u.csv, on: c, columns: [d]}]\n", NULL,
         "job.yaml:7: join[1].on: 'c' is a column that join[0] appends"},
        {BASE "join: [{input: i.csv, on: k, columns: [c], colums: [d]}]\n", NULL,
         "job.yaml:7: join[0]: unknown key 'colums'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mlops_jobspec_t *b = NULL;
        int rc = mlops_jobspec_parse(bad[i].text, strlen(bad[i].text), "job.yaml", &b, err, sizeof err);
        if (rc == 0 || strcmp(err, bad[i].want))
            print_error("case %zu: got '%s'\n", i, err);
        assert_int_not_equal(rc, 0);
        assert_string_equal(err, bad[i].want);
        mlops_jobspec_destroy(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_register_recommender),
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_full),
        cmocka_unit_test(test_sets),         cmocka_unit_test(test_to_yaml),
        cmocka_unit_test(test_columns_header_inputs), cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
