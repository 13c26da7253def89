/* jobschema.c: the job file's key table and what it drives without a
 * YAML parser — defaults, the canonical YAML and the documentation table
 * (see jobschema.h). The parser that checks a file against the table is
 * jobspec.c.
 *
 * A new key is one row here plus its field in mlops_jobspec_t; the
 * parser, the defaults, the canonical YAML and the docs follow from the
 * row (regenerate the docs table with `mlops_jobspec_tool --doc-table`). */
#include "jobschema.h"
#include "err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const BAD_ROW_NAMES[] = {"fail", "skip", NULL};
static const char *const FORMAT_NAMES[] = {"csv", "idx", NULL};
static const char *const SPLIT_NAMES[] = {"hash", "sklearn", NULL};
static const char *const CV_NAMES[] = {"sklearn", "hash", NULL};
static const char *const MODEL_NAMES[] = {"logistic", NULL};
static const char *const LR_NAMES[] = {"optimal", "constant", "invscaling", "adagrad", NULL};
static const char *const SOLVER_NAMES[] = {"sgd", "lbfgs", NULL};
static const char *const METRIC_NAMES[] = {"accuracy",  "logloss", "auc",       "f1",
                                           "precision", "recall",  "confusion", NULL};
/* promote.metric: the index is the MLOPS_METRIC_* bit number */
static const char *const PROMOTE_METRIC_NAMES[] = {"accuracy", "logloss", "auc", "f1",
                                                   "precision", "recall", NULL};
static const char *const KNN_METRIC_NAMES[] = {"euclidean", "cosine", NULL};
static const char *const KNN_MODE_NAMES[] = {"classify", "recommend", NULL};
static const char *const KNN_WEIGHT_NAMES[] = {"uniform", "distance", NULL};
static const char *const JOIN_HOW_NAMES[] = {"left", "inner", NULL};
static const char *const JOIN_VALIDATE_NAMES[] = {"none", "many_to_one", NULL};

/* the parser stores ENUM rows through an int */
_Static_assert(sizeof(mlops_bad_row) == sizeof(int) && sizeof(mlops_split_method) == sizeof(int) &&
                   sizeof(mlops_model) == sizeof(int) &&
                   sizeof(mlops_learning_rate) == sizeof(int) &&
                   sizeof(mlops_solver) == sizeof(int) &&
                   sizeof(mlops_knn_metric) == sizeof(int) &&
                   sizeof(mlops_knn_mode) == sizeof(int) &&
                   sizeof(mlops_knn_weights) == sizeof(int) &&
                   sizeof(mlops_join_how) == sizeof(int) &&
                   sizeof(mlops_join_validate) == sizeof(int) &&
                   sizeof(mlops_cv_method) == sizeof(int),
               "job-file enums must be int-sized");
_Static_assert(MLOPS_METRIC_COUNT == sizeof METRIC_NAMES / sizeof METRIC_NAMES[0] - 1,
               "one metric name per MLOPS_METRIC_* bit");

#define S(f) offsetof(mlops_jobspec_t, f)
#define I(f) offsetof(mlops_jobspec_input_t, f)
#define J(f) offsetof(mlops_jobspec_join_t, f)
#define U32 4294967295.0
#define I32 2147483647.0

/* clang-format off */
const mlops_jobschema_key_t mlops_jobschema[] = {
    {.sect = "", .key = "name", .type = MLOPS_JSK_NAME, .off = S(name), .flags = MLOPS_JSF_REQUIRED,
     .doc_default = "— (required)", .help = ""},
    {.sect = "", .key = "input", .type = MLOPS_JSK_INPUT, .off = S(input),
     .doc_default = "— (required unless `noop`)", .help = "see *Input*"},
    {.sect = "input", .key = "format", .type = MLOPS_JSK_ENUM, .names = FORMAT_NAMES,
     .flags = MLOPS_JSF_BY_CODE, .help = "also the keys of `knn.queries`"},
    {.sect = "input", .key = "path", .type = MLOPS_JSK_STR, .off = I(path), .flags = MLOPS_JSF_REQUIRED,
     .only_key = "format", .only_val = 0, .doc_default = "—", .help = "`csv` only"},
    {.sect = "input", .key = "images", .type = MLOPS_JSK_STR, .off = I(images), .flags = MLOPS_JSF_REQUIRED,
     .only_key = "format", .only_val = 1, .doc_default = "—", .help = "`idx` only: IDX images (gzip or raw)"},
    {.sect = "input", .key = "labels", .type = MLOPS_JSK_STR, .off = I(labels), .flags = MLOPS_JSF_REQUIRED,
     .only_key = "format", .only_val = 1, .doc_default = "—", .help = "`idx` only: IDX labels (gzip or raw)"},
    {.sect = "", .key = "shard_rows", .type = MLOPS_JSK_UINT, .lo = 1, .hi = I32, .dflt = 65536,
     .off = S(shard_rows), .help = "rows per shard at ingest"},
    {.sect = "", .key = "on_bad_row", .type = MLOPS_JSK_ENUM, .names = BAD_ROW_NAMES,
     .dflt = MLOPS_BAD_ROW_FAIL, .off = S(on_bad_row), .help = "a CSV row with the wrong field count"},
    {.sect = "", .key = "keep_stages", .type = MLOPS_JSK_BOOL, .dflt = 0, .off = S(keep_stages),
     .off2 = S(has_keep_stages), .flags = MLOPS_JSF_PRESENCE,
     .help = "keep the outputs of `scale` and `hash` for `export --stage`, and every stage's shards after they are consumed; else a CSV job with scale, hash and split runs the three per row in one task per shard that writes once, and drops the shards of ingest, clean and split once every later stage that reads them is done (the job's last stage keeps its own; an export recomputes them)"},
    {.sect = "", .key = "max_attempts", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 100, .dflt = 3,
     .off = S(max_attempts), .off2 = S(has_max_attempts), .flags = MLOPS_JSF_PRESENCE,
     .help = "dispatches of one task (failures, timeouts, lost workers) before the job fails"},
    {.sect = "", .key = "task_timeout", .type = MLOPS_JSK_NUM, .lo = 0, .hi = 86400, .lo_open = 1,
     .dflt = 600, .off = S(task_timeout), .off2 = S(has_task_timeout), .flags = MLOPS_JSF_PRESENCE,
     .doc_default = "600", .doc_allowed = "(0, 86400]",
     .help = "seconds one dispatch of a task may run before it is re-dispatched"},

    {.sect = "", .key = "join", .type = MLOPS_JSK_JOINS, .off = S(join), .off2 = S(njoin),
     .doc_default = "none", .help = "tables joined to the input before clean (see *Joins*)"},
    {.sect = "join", .key = "input", .type = MLOPS_JSK_STR, .off = J(input), .flags = MLOPS_JSF_REQUIRED,
     .doc_default = "—", .help = "the right table: a CSV path (.gz, .zst too)"},
    {.sect = "join", .key = "on", .type = MLOPS_JSK_STR, .off = J(on), .flags = MLOPS_JSF_REQUIRED,
     .doc_default = "—", .help = "the key column, in both headers"},
    {.sect = "join", .key = "columns", .type = MLOPS_JSK_NAMES, .off = J(columns), .off2 = J(ncolumns),
     .flags = MLOPS_JSF_REQUIRED, .doc_default = "—", .help = "the right table's columns appended to each row"},
    {.sect = "join", .key = "how", .type = MLOPS_JSK_ENUM, .names = JOIN_HOW_NAMES,
     .dflt = MLOPS_JOIN_LEFT, .off = J(how), .help = "pandas `merge(how=...)`"},
    {.sect = "join", .key = "validate", .type = MLOPS_JSK_ENUM, .names = JOIN_VALIDATE_NAMES,
     .dflt = MLOPS_JOIN_ANY, .off = J(validate),
     .help = "`many_to_one`: a key twice in the right table fails the job"},
    {.sect = "", .key = "join_broadcast_limit", .type = MLOPS_JSK_UINT, .lo = 0, .hi = U32,
     .dflt = 67108864, .off = S(join_broadcast_limit),
     .help = "bytes: a right table up to this size is broadcast to the workers"},

    {.sect = "", .key = "columns", .type = MLOPS_JSK_SECTION, .off = S(has_columns), .flags = MLOPS_JSF_BLOCK},
    {.sect = "columns", .key = "label", .type = MLOPS_JSK_STR, .off = S(columns.label),
     .help = "needed by `train` and `knn` classify (CSV)"},
    {.sect = "columns", .key = "numeric", .type = MLOPS_JSK_NAMES, .off = S(columns.numeric),
     .off2 = S(columns.n_numeric), .help = "read as float64, empty/NaN = missing"},
    {.sect = "columns", .key = "categorical", .type = MLOPS_JSK_NAMES, .off = S(columns.categorical),
     .off2 = S(columns.n_categorical), .help = "read as strings"},
    {.sect = "columns", .key = "classes", .type = MLOPS_JSK_NAMES, .off = S(columns.classes),
     .off2 = S(columns.n_classes), .help = "the label's allowed values; another value fails the job (none: every value is a class)"},

    {.sect = "", .key = "clean", .type = MLOPS_JSK_SECTION, .off = S(has_clean)},
    {.sect = "clean", .key = "dropna", .type = MLOPS_JSK_BOOL, .dflt = 1, .off = S(clean.dropna),
     .help = "pandas `dropna` (semantics: the clean stage)"},
    {.sect = "clean", .key = "iqr_k", .type = MLOPS_JSK_NUM, .lo = 0, .hi = HUGE_VAL, .dflt = 1.5,
     .off = S(clean.iqr_k), .off2 = S(clean.has_iqr), .flags = MLOPS_JSF_PRESENCE,
     .doc_default = "absent = no IQR filter",
     .help = "IQR outlier filter with factor k on the numeric columns (semantics: the clean stage)"},

    {.sect = "", .key = "scale", .type = MLOPS_JSK_BOOL, .dflt = 0, .off = S(has_scale),
     .flags = MLOPS_JSF_TRUE_ONLY, .help = "StandardScaler on the numeric columns (or pixels)"},

    {.sect = "", .key = "hash", .type = MLOPS_JSK_SECTION, .off = S(has_hash)},
    {.sect = "hash", .key = "n_features", .type = MLOPS_JSK_UINT, .lo = 1, .hi = I32, .dflt = 1048576,
     .off = S(hash.n_features), .help = "FeatureHasher on the categorical columns"},
    {.sect = "hash", .key = "alternate_sign", .type = MLOPS_JSK_BOOL, .dflt = 1,
     .off = S(hash.alternate_sign), .help = ""},

    {.sect = "", .key = "split", .type = MLOPS_JSK_SECTION, .off = S(has_split)},
    {.sect = "split", .key = "test_size", .type = MLOPS_JSK_NUM, .lo = 0, .hi = 1, .lo_open = 1,
     .hi_open = 1, .dflt = 0.25, .off = S(split.test_size), .help = ""},
    {.sect = "split", .key = "seed", .type = MLOPS_JSK_UINT, .lo = 0, .hi = U32, .dflt = 0,
     .off = S(split.seed), .help = ""},
    {.sect = "split", .key = "method", .type = MLOPS_JSK_ENUM, .names = SPLIT_NAMES,
     .dflt = MLOPS_SPLIT_HASH, .off = S(split.method),
     .help = "`hash`: by global row id, independent of sharding; `sklearn`: meant to match "
             "`train_test_split(random_state=seed)` (semantics: the split stage)"},

    {.sect = "", .key = "train", .type = MLOPS_JSK_SECTION, .off = S(has_train)},
    {.sect = "train", .key = "model", .type = MLOPS_JSK_ENUM, .names = MODEL_NAMES,
     .dflt = MLOPS_MODEL_LOGISTIC, .off = S(train.model), .help = "SGD, log loss"},
    {.sect = "train", .key = "epochs", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 1000, .dflt = 5,
     .off = S(train.epochs), .help = ""},
    {.sect = "train", .key = "learning_rate", .type = MLOPS_JSK_ENUM, .names = LR_NAMES,
     .dflt = MLOPS_LR_OPTIMAL, .off = S(train.learning_rate), .off2 = S(train.has_learning_rate),
     .flags = MLOPS_JSF_PRESENCE, .doc_default = "`adagrad` with C, `optimal` with alpha",
     .help = "'optimal' (1/(alpha t)) takes steps far too long for the small alpha C gives"},
    {.sect = "train", .key = "solver", .type = MLOPS_JSK_ENUM, .names = SOLVER_NAMES,
     .dflt = MLOPS_SOLVER_SGD, .off = S(train.solver),
     .help = "`sgd`: epochs of SGD with parameter mixing; `lbfgs`: full-batch L-BFGS, LogisticRegression's objective"},
    {.sect = "train", .key = "C", .type = MLOPS_JSK_NUM, .lo = 0, .hi = HUGE_VAL, .lo_open = 1, .dflt = 1.0,
     .off = S(train.C), .off2 = S(train.has_C), .flags = MLOPS_JSF_PRESENCE, .doc_default = "1.0",
     .help = "LogisticRegression's C: the summed log loss times C plus ½‖w‖²; SGD then uses alpha = 1/(C·n_train)"},
    {.sect = "train", .key = "alpha", .type = MLOPS_JSK_NUM, .lo = 0, .hi = HUGE_VAL, .dflt = 0.0001,
     .off = S(train.alpha), .off2 = S(train.has_alpha), .flags = MLOPS_JSF_PRESENCE,
     .doc_default = "1/(C·n_train)", .doc_allowed = ">= 0; > 0 with `optimal`",
     .help = "SGDClassifier's L2 penalty on the mean loss; not with `C`"},
    {.sect = "train", .key = "max_iter", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 100000, .dflt = 100,
     .off = S(train.max_iter), .help = "`lbfgs`: iterations at most"},
    {.sect = "train", .key = "tol", .type = MLOPS_JSK_NUM, .lo = 0, .hi = HUGE_VAL, .dflt = 0.0001,
     .off = S(train.tol), .help = "`lbfgs`: stop when the largest gradient entry is at most tol (scipy's gtol)"},
    {.sect = "train", .key = "eta0", .type = MLOPS_JSK_NUM, .lo = 0, .hi = HUGE_VAL, .lo_open = 1,
     .dflt = 0.01, .off = S(train.eta0), .off2 = S(train.has_eta0), .flags = MLOPS_JSF_PRESENCE,
     .doc_default = "0.1 for the default `adagrad`, else 0.01", .help = ""},
    {.sect = "train", .key = "power_t", .type = MLOPS_JSK_NUM, .lo = -HUGE_VAL, .hi = HUGE_VAL,
     .dflt = 0.5, .off = S(train.power_t), .help = ""},
    {.sect = "train", .key = "batch_size", .type = MLOPS_JSK_UINT, .lo = 1, .hi = I32, .dflt = 1,
     .off = S(train.batch_size), .help = ""},
    {.sect = "train", .key = "seed", .type = MLOPS_JSK_UINT, .lo = 0, .hi = U32, .dflt = 0,
     .off = S(train.seed), .help = ""},
    {.sect = "train", .key = "shuffle", .type = MLOPS_JSK_BOOL, .dflt = 1, .off = S(train.shuffle),
     .help = ""},

    {.sect = "", .key = "evaluate", .type = MLOPS_JSK_SET, .names = METRIC_NAMES, .off = S(metrics),
     .off2 = S(has_evaluate), .flags = MLOPS_JSF_PRESENCE, .noun = "metric", .doc_default = "—",
     .help = "needs `train`; canonical order is this order"},

    {.sect = "", .key = "cv", .type = MLOPS_JSK_SECTION, .off = S(has_cv)},
    {.sect = "cv", .key = "folds", .type = MLOPS_JSK_UINT, .lo = 2, .hi = 100, .dflt = 5,
     .off = S(cv.folds), .help = "k-fold cross-validation of `train` on the training rows (needs `train`)"},
    {.sect = "cv", .key = "seed", .type = MLOPS_JSK_UINT, .lo = 0, .hi = U32, .dflt = 0,
     .off = S(cv.seed), .help = ""},
    {.sect = "cv", .key = "method", .type = MLOPS_JSK_ENUM, .names = CV_NAMES,
     .dflt = MLOPS_CV_SKLEARN, .off = S(cv.method),
     .help = "`sklearn`: the folds of `KFold(folds, shuffle=True, random_state=seed)` over the training "
             "rows in order; `hash`: by a hash of the row id, independent of sharding; also the folds of `search`"},
    {.sect = "", .key = "search", .type = MLOPS_JSK_SECTION, .off = S(has_search)},
    {.sect = "search", .key = "grid", .type = MLOPS_JSK_GRID, .off = S(search.params),
     .off2 = S(search.nparams), .doc_default = "— (required)",
     .doc_allowed = "numeric `train.*` keys: a list of values, or (with `random`) `{uniform: [lo, hi]}`, `{loguniform: [lo, hi]}`",
     .help = "every combination is a trial (ParameterGrid order: keys sorted, the last fastest)"},
    {.sect = "search", .key = "random", .type = MLOPS_JSK_SAMPLE, .off = S(search.random),
     .off2 = S(search.has_random), .flags = MLOPS_JSF_PRESENCE, .doc_default = "none (the whole grid)",
     .doc_allowed = "`{n: 1..1000000, seed: 0..4294967295}`", .help = "n trials sampled from the grid's lists and ranges"},
    {.sect = "search", .key = "metric", .type = MLOPS_JSK_ENUM, .names = PROMOTE_METRIC_NAMES,
     .dflt = 0, .off = S(search.metric), .help = "the trials' score (mean over the folds); lower is better for logloss"},
    {.sect = "search", .key = "folds", .type = MLOPS_JSK_UINT, .lo = 2, .hi = 100, .dflt = 5,
     .off = S(search.folds), .help = "folds per trial (assigned as `cv.method`/`cv.seed` say)"},
    {.sect = "search", .key = "max_trials", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 1000000, .dflt = 1000,
     .off = S(search.max_trials), .help = "a search of more trials is refused"},

    {.sect = "", .key = "predict", .type = MLOPS_JSK_SECTION, .off = S(has_predict)},
    {.sect = "predict", .key = "model", .type = MLOPS_JSK_STR, .off = S(predict.model),
     .flags = MLOPS_JSF_REQUIRED, .doc_default = "—", .doc_allowed = "`NAME@VERSION` or `NAME@ALIAS`",
     .help = "score the input with this registered model's pipeline; `columns` may be omitted"},
    {.sect = "predict", .key = "keep", .type = MLOPS_JSK_NAMES, .off = S(predict.keep),
     .off2 = S(predict.n_keep), .help = "input columns written before the predictions"},
    {.sect = "", .key = "drift", .type = MLOPS_JSK_SECTION, .off = S(has_drift)},
    {.sect = "drift", .key = "model", .type = MLOPS_JSK_STR, .off = S(drift.model),
     .flags = MLOPS_JSF_REQUIRED, .doc_default = "—", .doc_allowed = "`NAME@VERSION` or `NAME@ALIAS`",
     .help = "compare the input with this version's reference bins: `psi.<column>` metrics; "
             "`columns` may be omitted"},
    {.sect = "", .key = "promote", .type = MLOPS_JSK_SECTION, .off = S(has_promote)},
    {.sect = "promote", .key = "alias", .type = MLOPS_JSK_NAME, .off = S(promote.alias),
     .doc_default = "`production`",
     .help = "moved to the new version only if it beats the version holding it (the champion)"},
    {.sect = "promote", .key = "metric", .type = MLOPS_JSK_ENUM, .names = PROMOTE_METRIC_NAMES,
     .dflt = 2, .off = S(promote.metric), .help = "one of the `evaluate` metrics; lower is better for logloss"},
    {.sect = "promote", .key = "min_delta", .type = MLOPS_JSK_NUM, .lo = 0, .hi = HUGE_VAL, .dflt = 0,
     .off = S(promote.min_delta), .help = "how much better the challenger must be"},
    {.sect = "", .key = "register", .type = MLOPS_JSK_SECTION, .off = S(has_register)},
    {.sect = "register", .key = "model", .type = MLOPS_JSK_NAME, .off = S(reg.model),
     .doc_default = "the job's `name`", .help = "the registered model a successful `train` adds a version to; a `knn` recommend stage adds a recommender (`NAME-recommender` beside `train`)"},
    {.sect = "register", .key = "tags", .type = MLOPS_JSK_NAMES, .off = S(reg.tags),
     .off2 = S(reg.n_tags), .help = "free-text tags of the version"},

    {.sect = "", .key = "knn", .type = MLOPS_JSK_SECTION, .off = S(has_knn)},
    {.sect = "knn", .key = "k", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 100000, .dflt = 5,
     .off = S(knn.k), .help = ""},
    {.sect = "knn", .key = "metric", .type = MLOPS_JSK_ENUM, .names = KNN_METRIC_NAMES,
     .dflt = MLOPS_KNN_EUCLIDEAN, .off = S(knn.metric), .help = ""},
    {.sect = "knn", .key = "mode", .type = MLOPS_JSK_ENUM, .names = KNN_MODE_NAMES,
     .dflt = MLOPS_KNN_CLASSIFY, .off = S(knn.mode), .help = ""},
    {.sect = "knn", .key = "weights", .type = MLOPS_JSK_ENUM, .names = KNN_WEIGHT_NAMES,
     .dflt = MLOPS_KNN_UNIFORM, .off = S(knn.weights), .help = ""},
    {.sect = "knn", .key = "user", .type = MLOPS_JSK_STR, .off = S(knn.user), .only_key = "mode",
     .only_val = MLOPS_KNN_RECOMMEND, .doc_default = "—",
     .help = "required with `recommend`, refused with `classify`; must differ from `knn.item`"},
    {.sect = "knn", .key = "item", .type = MLOPS_JSK_STR, .off = S(knn.item), .only_key = "mode",
     .only_val = MLOPS_KNN_RECOMMEND, .doc_default = "—",
     .help = "required with `recommend`, refused with `classify`"},
    {.sect = "knn", .key = "top_n", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 100000, .dflt = 10,
     .off = S(knn.top_n), .only_key = "mode", .only_val = MLOPS_KNN_RECOMMEND,
     .help = "`recommend` only"},
    {.sect = "knn", .key = "queries", .type = MLOPS_JSK_INPUT, .off = S(knn.queries),
     .off2 = S(knn.has_queries), .flags = MLOPS_JSF_PRESENCE, .only_key = "mode",
     .only_val = MLOPS_KNN_CLASSIFY, .doc_default = "none (classify the test split)",
     .doc_allowed = "same format as `input`", .help = "`classify` only"},

    {.sect = "", .key = "noop", .type = MLOPS_JSK_SECTION, .off = S(has_noop)},
    {.sect = "noop", .key = "tasks", .type = MLOPS_JSK_UINT, .lo = 1, .hi = 10000000, .dflt = 1,
     .off = S(noop.tasks), .help = "N empty tasks"},
    {.sect = "noop", .key = "task_ms", .type = MLOPS_JSK_UINT, .lo = 0, .hi = 600000, .dflt = 0,
     .off = S(noop.task_ms), .help = "each task waits M ms (simulated work; it stops early when its job is cancelled)"},
};
/* clang-format on */
const size_t mlops_jobschema_count = sizeof mlops_jobschema / sizeof mlops_jobschema[0];

typedef char **strv_t;
#define AT(base, off, T) ((T *)(void *)((char *)(base) + (off)))
#define CAT(base, off, T) ((const T *)(const void *)((const char *)(base) + (off)))

const mlops_jobschema_key_t *mlops_jobschema_find(const char *sect, const char *key)
{
    for (size_t i = 0; i < mlops_jobschema_count; i++)
        if (!strcmp(mlops_jobschema[i].sect, sect) && !strcmp(mlops_jobschema[i].key, key))
            return &mlops_jobschema[i];
    return NULL;
}

void mlops_jobschema_defaults(mlops_jobspec_t *s)
{
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        if (!strcmp(k->sect, "input") || !strcmp(k->sect, "join") || (k->flags & MLOPS_JSF_BY_CODE))
            continue;
        switch (k->type) {
        case MLOPS_JSK_UINT: *AT(s, k->off, uint32_t) = (uint32_t)k->dflt; break;
        case MLOPS_JSK_NUM: *AT(s, k->off, double) = k->dflt; break;
        case MLOPS_JSK_BOOL:
        case MLOPS_JSK_ENUM: *AT(s, k->off, int) = (int)k->dflt; break;
        default: break;
        }
    }
}

/* "%g" that reads back as the same double, at the fewest digits */
static void fmt_num(char *buf, size_t n, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
}

const char *mlops_jobschema_want(const mlops_jobschema_key_t *k, char *buf, size_t n)
{
    char lo[40], hi[40];
    if (k->type == MLOPS_JSK_UINT) {
        if (k->lo == 1 && k->hi == I32)
            snprintf(buf, n, "a positive integer");
        else
            snprintf(buf, n, "an integer in %.0f..%.0f", k->lo, k->hi);
        return buf;
    }
    fmt_num(lo, sizeof lo, k->lo);
    fmt_num(hi, sizeof hi, k->hi);
    if (isinf(k->lo) && isinf(k->hi))
        snprintf(buf, n, "a number");
    else if (isinf(k->hi))
        snprintf(buf, n, "a number %s %s", k->lo_open ? ">" : ">=", lo);
    else if (isinf(k->lo))
        snprintf(buf, n, "a number %s %s", k->hi_open ? "<" : "<=", hi);
    else
        snprintf(buf, n, "a number in %c%s, %s%c", k->lo_open ? '(' : '[', lo, hi,
                 k->hi_open ? ')' : ']');
    return buf;
}

/* ------------------------------------------------------------------------
 * Canonical YAML
 * ------------------------------------------------------------------------ */

static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void put_input(FILE *f, const mlops_jobspec_input_t *in)
{
    int fmt = in->format == MLOPS_INPUT_IDX;
    fprintf(f, "{format: %s", FORMAT_NAMES[fmt]);
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        if (strcmp(k->sect, "input") || k->type != MLOPS_JSK_STR || k->only_val != fmt)
            continue;
        fprintf(f, ", %s: ", k->key);
        if (!strcmp(k->key, "path") && in->npaths > 1) { /* many files: a list */
            fputc('[', f);
            for (size_t p = 0; p < in->npaths; p++) {
                if (p)
                    fputs(", ", f);
                put_str(f, in->paths[p]);
            }
            fputc(']', f);
            continue;
        }
        put_str(f, *CAT(in, k->off, char *));
    }
    fputc('}', f);
}

static void put_value(FILE *f, const mlops_jobschema_key_t *k, const mlops_jobspec_t *s);

/* every key of every join, in table order, as a flow list of mappings */
static void put_joins(FILE *f, const mlops_jobspec_join_t *v, size_t n)
{
    fputc('[', f);
    for (size_t j = 0; j < n; j++) {
        int first = 1;
        fputs(j ? ", {" : "{", f);
        for (size_t i = 0; i < mlops_jobschema_count; i++) {
            const mlops_jobschema_key_t *k = &mlops_jobschema[i];
            if (strcmp(k->sect, "join"))
                continue;
            fprintf(f, "%s%s: ", first ? "" : ", ", k->key);
            /* the join rows' offsets are into the join, which put_value
             * reads as it reads the spec */
            put_value(f, k, (const mlops_jobspec_t *)(const void *)&v[j]);
            first = 0;
        }
        fputc('}', f);
    }
    fputc(']', f);
}

static void put_value(FILE *f, const mlops_jobschema_key_t *k, const mlops_jobspec_t *s)
{
    char b[40];
    switch (k->type) {
    case MLOPS_JSK_NAME:
    case MLOPS_JSK_STR: put_str(f, *CAT(s, k->off, char *)); break;
    case MLOPS_JSK_NAMES: {
        char *const *v = *CAT(s, k->off, strv_t);
        size_t n = *CAT(s, k->off2, size_t);
        fputc('[', f);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputs(", ", f);
            put_str(f, v[i]);
        }
        fputc(']', f);
        break;
    }
    case MLOPS_JSK_UINT: fprintf(f, "%u", *CAT(s, k->off, uint32_t)); break;
    case MLOPS_JSK_NUM:
        fmt_num(b, sizeof b, *CAT(s, k->off, double));
        fputs(b, f);
        break;
    case MLOPS_JSK_BOOL: fputs(*CAT(s, k->off, int) ? "true" : "false", f); break;
    case MLOPS_JSK_ENUM: fputs(k->names[*CAT(s, k->off, int)], f); break;
    case MLOPS_JSK_SET: {
        unsigned bits = *CAT(s, k->off, unsigned);
        int first = 1;
        fputc('[', f);
        for (int i = 0; k->names[i]; i++)
            if (bits & (1u << i)) {
                fprintf(f, "%s%s", first ? "" : ", ", k->names[i]);
                first = 0;
            }
        fputc(']', f);
        break;
    }
    case MLOPS_JSK_INPUT: put_input(f, CAT(s, k->off, mlops_jobspec_input_t)); break;
    case MLOPS_JSK_JOINS:
        put_joins(f, *CAT(s, k->off, mlops_jobspec_join_t *), *CAT(s, k->off2, size_t));
        break;
    case MLOPS_JSK_GRID: {
        const mlops_jobspec_param_t *v = *CAT(s, k->off, mlops_jobspec_param_t *);
        size_t n = *CAT(s, k->off2, size_t);
        static const char *const dist[] = {"", "uniform", "loguniform"};
        /* integer keys must read back as integers: 20, not 2e+01 */
#define GRID_NUM(x) (floor(x) == (x) && fabs(x) < 1e15 ? (void)snprintf(b, sizeof b, "%.0f", (x)) \
                                                       : fmt_num(b, sizeof b, (x)))
        fputc('{', f);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : "", f);
            put_str(f, v[i].key);
            fputs(": ", f);
            if (v[i].dist != MLOPS_PARAM_LIST) {
                GRID_NUM(v[i].lo);
                fprintf(f, "{%s: [%s, ", dist[v[i].dist], b);
                GRID_NUM(v[i].hi);
                fprintf(f, "%s]}", b);
                continue;
            }
            fputc('[', f);
            for (size_t a = 0; a < v[i].nvalues; a++) {
                GRID_NUM(v[i].values[a]);
                fprintf(f, "%s%s", a ? ", " : "", b);
            }
            fputc(']', f);
        }
        fputc('}', f);
#undef GRID_NUM
        break;
    }
    case MLOPS_JSK_SAMPLE: {
        const uint32_t *v = CAT(s, k->off, uint32_t);
        fprintf(f, "{n: %u, seed: %u}", v[0], v[1]);
        break;
    }
    case MLOPS_JSK_SECTION: break;
    }
}

/* Whether the canonical YAML writes key k of a parsed spec. */
static int written(const mlops_jobschema_key_t *k, const mlops_jobspec_t *s)
{
    if (k->only_key) {
        const mlops_jobschema_key_t *o = mlops_jobschema_find(k->sect, k->only_key);
        if (o && *CAT(s, o->off, int) != k->only_val)
            return 0;
    }
    if ((k->flags & MLOPS_JSF_PRESENCE) && !*CAT(s, k->off2, int))
        return 0;
    if ((k->flags & MLOPS_JSF_TRUE_ONLY) && !*CAT(s, k->off, int))
        return 0;
    switch (k->type) {
    case MLOPS_JSK_NAME: /* register.model may be absent */
    case MLOPS_JSK_STR: return *CAT(s, k->off, char *) != NULL;
    case MLOPS_JSK_NAMES:
    case MLOPS_JSK_JOINS:
    case MLOPS_JSK_GRID: return *CAT(s, k->off2, size_t) != 0;
    case MLOPS_JSK_INPUT: return CAT(s, k->off, mlops_jobspec_input_t)->format != MLOPS_INPUT_NONE;
    case MLOPS_JSK_SECTION: return *CAT(s, k->off, int) != 0;
    default: return 1;
    }
}

static void put_section(FILE *f, const mlops_jobschema_key_t *sec, const mlops_jobspec_t *s)
{
    int block = sec->flags & MLOPS_JSF_BLOCK, n = 0;
    fprintf(f, "%s:", sec->key);
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        if (strcmp(k->sect, sec->key) || !written(k, s))
            continue;
        if (block)
            fprintf(f, "\n  %s: ", k->key);
        else
            fprintf(f, "%s%s: ", n ? ", " : " {", k->key);
        put_value(f, k, s);
        n++;
    }
    if (n == 0)
        fputs(" {}", f);
    else if (!block)
        fputc('}', f);
    fputc('\n', f);
}

int mlops_jobspec_to_yaml(const mlops_jobspec_t *s, char **out, size_t *outlen)
{
    if (!s || !out)
        return MLOPS_EINVAL;
    *out = NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return MLOPS_ENOMEM;
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        if (*k->sect || !written(k, s))
            continue;
        if (k->type == MLOPS_JSK_SECTION) {
            put_section(f, k, s);
            continue;
        }
        fprintf(f, "%s: ", k->key);
        put_value(f, k, s);
        fputc('\n', f);
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return MLOPS_ENOMEM;
    }
    *out = buf;
    if (outlen)
        *outlen = size;
    return 0;
}

/* ------------------------------------------------------------------------
 * The documentation table
 * ------------------------------------------------------------------------ */

static const char *type_name(mlops_jsk_type t)
{
    switch (t) {
    case MLOPS_JSK_NAME:
    case MLOPS_JSK_STR: return "string";
    case MLOPS_JSK_NAMES: return "list of strings";
    case MLOPS_JSK_UINT: return "integer";
    case MLOPS_JSK_NUM: return "number";
    case MLOPS_JSK_BOOL: return "bool";
    case MLOPS_JSK_ENUM: return "enum";
    case MLOPS_JSK_SET: return "list";
    case MLOPS_JSK_INPUT: return "path, or mapping";
    case MLOPS_JSK_JOINS: return "list of mappings";
    case MLOPS_JSK_GRID: return "mapping";
    case MLOPS_JSK_SAMPLE: return "mapping";
    default: return "mapping";
    }
}

static void put_names(FILE *f, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        fprintf(f, "%s`%s`", i ? ", " : "", names[i]);
}

static void doc_default(FILE *f, const mlops_jobschema_key_t *k)
{
    char b[40];
    if (k->doc_default) {
        fputs(k->doc_default, f);
        return;
    }
    switch (k->type) {
    case MLOPS_JSK_UINT: fprintf(f, "%.0f", k->dflt); break;
    case MLOPS_JSK_NUM:
        fmt_num(b, sizeof b, k->dflt);
        fputs(b, f);
        break;
    case MLOPS_JSK_BOOL: fputs(k->dflt ? "`true`" : "`false`", f); break;
    case MLOPS_JSK_ENUM: fprintf(f, "`%s`", k->names[(int)k->dflt]); break;
    case MLOPS_JSK_NAMES: fputs("`[]`", f); break;
    default: fputs("none", f); break;
    }
}

static void doc_allowed(FILE *f, const mlops_jobschema_key_t *k)
{
    char lo[40], hi[40];
    if (k->doc_allowed) {
        fputs(k->doc_allowed, f);
        return;
    }
    switch (k->type) {
    case MLOPS_JSK_NAME:
        fprintf(f, "`[A-Za-z0-9_.-]{1,%d}`, not starting with `.`", MLOPS_JOBSCHEMA_MAX_NAME);
        break;
    case MLOPS_JSK_UINT: fprintf(f, "%.0f..%.0f", k->lo, k->hi); break;
    case MLOPS_JSK_NUM:
        fmt_num(lo, sizeof lo, k->lo);
        fmt_num(hi, sizeof hi, k->hi);
        if (isinf(k->lo) && isinf(k->hi))
            fputs("finite", f);
        else if (isinf(k->hi))
            fprintf(f, "%s %s", k->lo_open ? ">" : ">=", lo);
        else if (isinf(k->lo))
            fprintf(f, "%s %s", k->hi_open ? "<" : "<=", hi);
        else
            fprintf(f, "%c%s, %s%c%s", k->lo_open ? '(' : '[', lo, hi, k->hi_open ? ')' : ']',
                    k->lo_open && k->hi_open ? " exclusive" : "");
        break;
    case MLOPS_JSK_ENUM: put_names(f, k->names); break;
    case MLOPS_JSK_SET:
        fputs("non-empty subset of ", f);
        put_names(f, k->names);
        break;
    default: break;
    }
}

int mlops_jobschema_doc_table(char **out, size_t *outlen)
{
    if (!out)
        return MLOPS_EINVAL;
    *out = NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return MLOPS_ENOMEM;
    fputs("| key | type | default | allowed | notes |\n|---|---|---|---|---|\n", f);
    for (size_t i = 0; i < mlops_jobschema_count; i++) {
        const mlops_jobschema_key_t *k = &mlops_jobschema[i];
        if (k->type == MLOPS_JSK_SECTION)
            continue;
        fprintf(f, "| `%s%s%s` | %s | ", k->sect, *k->sect ? "." : "", k->key, type_name(k->type));
        doc_default(f, k);
        fputs(" | ", f);
        doc_allowed(f, k);
        fprintf(f, " | %s |\n", k->help ? k->help : "");
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return MLOPS_ENOMEM;
    }
    *out = buf;
    if (outlen)
        *outlen = size;
    return 0;
}
