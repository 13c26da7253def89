/* jobspec.h: the job file (YAML) — parse, validate, canonicalise.
 *
 * A job file names a job, its input and the pipeline stages to run; the
 * format is documented in docs/jobfile.md; its keys are the rows of
 * jobschema.h, which also hold the defaults. mlopsctl parses the file,
 * applies --set overrides, validates, and sends the canonical YAML text
 * (mlops_jobspec_to_yaml) to the coordinator, which parses it again.
 *
 * Every error is one line naming the file, line and key, e.g.
 *   job.yaml:12: train: unknown key 'epoks'
 *   job.yaml:3: shard_rows: expected a positive integer, got 'abc'
 *   job.yaml: missing required key 'columns'
 *   --set train.epochs=0: train.epochs: expected an integer in 1..1000, got '0'
 * Input is never trusted: garbage, binary bytes, aliases, deep nesting
 * give an error, never a crash.
 *
 * Stages present run in the fixed order ingest -> clean -> scale -> hash
 * -> split -> train -> evaluate -> knn; noop stands alone. */
#ifndef MLOPS_JOBSPEC_H
#define MLOPS_JOBSPEC_H
#include <stddef.h>
#include <stdint.h>

#include "frame.h" /* mlk_coltype */

typedef enum { MLOPS_INPUT_NONE = 0, MLOPS_INPUT_CSV = 1, MLOPS_INPUT_IDX = 2 } mlops_input_format;
typedef enum { MLOPS_BAD_ROW_FAIL = 0, MLOPS_BAD_ROW_SKIP = 1 } mlops_bad_row;
typedef enum { MLOPS_SPLIT_HASH = 0, MLOPS_SPLIT_SKLEARN = 1 } mlops_split_method;
typedef enum { MLOPS_CV_SKLEARN = 0, MLOPS_CV_HASH = 1 } mlops_cv_method;
typedef enum { MLOPS_MODEL_LOGISTIC = 0 } mlops_model;
typedef enum {
    MLOPS_LR_OPTIMAL = 0,
    MLOPS_LR_CONSTANT = 1,
    MLOPS_LR_INVSCALING = 2,
    MLOPS_LR_ADAGRAD = 3
} mlops_learning_rate;
typedef enum { MLOPS_SOLVER_SGD = 0, MLOPS_SOLVER_LBFGS = 1 } mlops_solver;
typedef enum { MLOPS_KNN_EUCLIDEAN = 0, MLOPS_KNN_COSINE = 1 } mlops_knn_metric;
typedef enum { MLOPS_KNN_CLASSIFY = 0, MLOPS_KNN_RECOMMEND = 1 } mlops_knn_mode;
typedef enum { MLOPS_KNN_UNIFORM = 0, MLOPS_KNN_DISTANCE = 1 } mlops_knn_weights;

/* evaluate: a set of metrics, one bit each (canonical order = bit order) */
enum {
    MLOPS_METRIC_ACCURACY = 1u << 0,
    MLOPS_METRIC_LOGLOSS = 1u << 1,
    MLOPS_METRIC_AUC = 1u << 2,
    MLOPS_METRIC_F1 = 1u << 3,
    MLOPS_METRIC_PRECISION = 1u << 4,
    MLOPS_METRIC_RECALL = 1u << 5,
    MLOPS_METRIC_CONFUSION = 1u << 6,
};
#define MLOPS_METRIC_COUNT 7

/* An input: CSV files (paths: one path, a list, or globs such as
 * data/events-*.csv, each read in sorted name order; .gz and .zst are
 * decompressed) or an IDX image/label pair. Paths are as written in the
 * job file (relative ones are relative to its directory; see
 * mlops_jobspec_inputs). */
typedef struct {
    mlops_input_format format; /* NONE only for noop jobs without input */
    char *path;                /* CSV: paths[0], borrowed from paths */
    char **paths;              /* CSV: every path or glob as written */
    size_t npaths;             /* >= 1 for CSV */
    char *images, *labels;     /* IDX (gzip or raw) */
} mlops_jobspec_input_t;

/* One join: the rows of a right table (a CSV file) matched to the
 * input's rows on a key column, as pandas' merge(left, right, on=on,
 * how=how, validate=validate) with only `columns` of the right table
 * kept. */
typedef enum { MLOPS_JOIN_LEFT = 0, MLOPS_JOIN_INNER = 1 } mlops_join_how;
typedef enum { MLOPS_JOIN_ANY = 0, MLOPS_JOIN_MANY_TO_ONE = 1 } mlops_join_validate;
typedef struct {
    char *input;                  /* the right table's path (CSV, .gz, .zst) */
    char *on;                     /* the key column, in both tables */
    char **columns;               /* the right table's columns to append */
    size_t ncolumns;
    mlops_join_how how;           /* default left */
    mlops_join_validate validate; /* default none (duplicates multiply rows) */
} mlops_jobspec_join_t;

/* One dimension of a search space: a numeric train.* key of the schema
 * and the values to try (a list) or, for random search, a range. */
typedef enum { MLOPS_PARAM_LIST = 0, MLOPS_PARAM_UNIFORM = 1, MLOPS_PARAM_LOGUNIFORM = 2 } mlops_param_dist;
typedef struct {
    char *key;             /* "train.alpha" */
    mlops_param_dist dist;
    double *values;        /* LIST: within the key's bounds */
    size_t nvalues;
    double lo, hi;         /* UNIFORM, LOGUNIFORM: the closed range */
} mlops_jobspec_param_t;

/* A validated job. All strings are owned by the spec. has_* say which
 * stages are present; the fields of an absent stage hold its defaults. */
typedef struct {
    char *name;                  /* [A-Za-z0-9_.-]{1,128} */
    mlops_jobspec_input_t input; /* required unless noop */
    uint32_t shard_rows;         /* default 65536 */
    mlops_bad_row on_bad_row;    /* default fail */
    int keep_stages;             /* keep scale's and hash's outputs (unfused), default false */
    int has_keep_stages;
    uint32_t max_attempts;       /* dispatches of a task before the job fails, default 3 */
    int has_max_attempts;
    double task_timeout; /* seconds a dispatch may run, default 600 */
    int has_task_timeout;

    mlops_jobspec_join_t *join;     /* the joins, in file order (the join stage) */
    size_t njoin;
    uint32_t join_broadcast_limit;  /* bytes; a larger right table is shuffled */

    int has_columns;
    struct {
        char *label; /* NULL if none */
        char **numeric;
        size_t n_numeric;
        char **classes; /* columns.classes: allowed label values, none = any */
        size_t n_classes;
        char **categorical;
        size_t n_categorical;
    } columns;

    int has_clean;
    struct {
        int dropna;   /* default true */
        int has_iqr;  /* iqr_k given */
        double iqr_k; /* >= 0, default 1.5 (used only if has_iqr) */
    } clean;

    int has_scale; /* scale: true (scale: false = absent) */

    int has_hash;
    struct {
        uint32_t n_features; /* 1..2^31-1, default 1048576 */
        int alternate_sign;  /* default true */
    } hash;

    int has_split;
    struct {
        double test_size; /* (0,1), default 0.25 */
        uint32_t seed;    /* default 0 */
        mlops_split_method method; /* default hash */
    } split;

    int has_train;
    struct {
        mlops_model model;                 /* logistic */
        uint32_t epochs;                   /* 1..1000, default 5 */
        int has_learning_rate, has_eta0;   /* given (the defaults follow C or alpha) */
        mlops_learning_rate learning_rate; /* default adagrad with C, optimal with alpha */
        mlops_solver solver;               /* default sgd */
        int has_C;                         /* C given */
        double C;                          /* > 0, default 1 */
        int has_alpha;                     /* alpha given: SGDClassifier's meaning */
        double alpha;                      /* >= 0; absent: 1/(C n_train) */
        uint32_t max_iter;                 /* lbfgs: 1..100000, default 100 */
        double tol;                        /* lbfgs: >= 0, default 1e-4 */
        double eta0;                       /* > 0, default 0.01 (0.1: the C default's adagrad) */
        double power_t;                    /* finite, default 0.5 */
        uint32_t batch_size;               /* >= 1, default 1 */
        uint32_t seed;                     /* default 0 */
        int shuffle;                       /* default true */
    } train;

    int has_evaluate;
    unsigned metrics; /* MLOPS_METRIC_* bits, non-empty if has_evaluate */

    int has_cv; /* k-fold cross-validation of the train parameters (stage_search.c) */
    struct {
        uint32_t folds;         /* 2..100, default 5 */
        uint32_t seed;          /* default 0 */
        mlops_cv_method method; /* default sklearn (KFold(shuffle=True)) */
    } cv;

    int has_search; /* hyperparameter search: trials of train.* values, each cross-validated */
    struct {
        mlops_jobspec_param_t *params; /* search.grid, keys in sorted order (jobsearch.h) */
        size_t nparams;
        int has_random;       /* random: {n, seed}: sample n trials instead of the grid */
        struct {
            uint32_t n, seed; /* n 1..1000000, seed default 0 */
        } random;
        int metric;           /* the MLOPS_METRIC_* bit number (accuracy .. recall) */
        uint32_t folds;       /* 2..100, default 5 */
        uint32_t max_trials;  /* more trials are refused, default 1000 */
    } search;

    int has_predict; /* batch scoring with a registered model */
    struct {
        char *model; /* NAME@VERSION or NAME@ALIAS (the coordinator pins the version) */
        char **keep; /* input columns copied to the predictions */
        size_t n_keep;
    } predict;

    int has_drift; /* the input's drift against a registered version's reference bins */
    struct {
        char *model; /* NAME@VERSION or NAME@ALIAS (pinned like predict.model) */
    } drift;

    int has_promote; /* the promotion gate, after evaluate */
    struct {
        char *alias;     /* moved to the new version if it beats the holder */
        int metric;      /* the MLOPS_METRIC_* bit number (accuracy .. recall) */
        double min_delta;
    } promote;

    int has_register; /* the model registry (docs/model-format.md) */
    struct {
        char *model;  /* registered model name, NULL = the job's name */
        char **tags;  /* free text tags of every version it registers */
        size_t n_tags;
    } reg;

    int has_knn;
    struct {
        uint32_t k;                /* >= 1, default 5 */
        mlops_knn_metric metric;   /* default euclidean */
        mlops_knn_mode mode;       /* default classify */
        mlops_knn_weights weights; /* default uniform */
        char *user, *item;         /* recommend: required column names */
        uint32_t top_n;            /* recommend: default 10 */
        int has_queries;           /* classify: separate query set */
        mlops_jobspec_input_t queries;
    } knn;

    int has_noop;
    struct {
        uint32_t tasks; /* 1..10000000, default 1 */
        uint32_t task_ms; /* 0..600000, default 0 */
    } noop;
} mlops_jobspec_t;

/* Parse and validate a job file's text (len bytes, need not be
 * NUL-terminated). filename is used in messages only (NULL: "<job>").
 * 0 and a new spec in *out, or MLOPS_EPARSE / MLOPS_EINVAL /
 * MLOPS_ENOMEM with one line in err. */
int mlops_jobspec_parse(const char *text, size_t len, const char *filename,
                        mlops_jobspec_t **out, char *err, size_t errlen);

/* As mlops_jobspec_parse, first applying overrides "dotted.key=value"
 * (train.epochs=3, input=foo.csv, clean.iqr_k=2, evaluate=[auc,f1]); the
 * value is YAML (a scalar, or a flow list/map). Missing sections are
 * created. Errors in an override name it: "--set train.epoks=3: train:
 * unknown key 'epoks'". */
int mlops_jobspec_parse_with_sets(const char *text, size_t len, const char *filename,
                                  const char *const *sets, size_t nsets,
                                  mlops_jobspec_t **out, char *err, size_t errlen);

/* Free a spec and set *ps to NULL (safe with NULL). */
void mlops_jobspec_destroy(mlops_jobspec_t **ps);

/* The canonical YAML text of a spec (every field, defaults filled, fixed
 * order, strings quoted) in a malloc'd NUL-terminated buffer; parsing it
 * yields an equal spec and the same text. 0 or MLOPS_ENOMEM. */
int mlops_jobspec_to_yaml(const mlops_jobspec_t *s, char **out, size_t *outlen);

/* 1 if the job has class labels (columns.label, or IDX input). */
int mlops_jobspec_has_label(const mlops_jobspec_t *s);

/* The columns a job reads from a CSV, in a fixed order: numeric...,
 * categorical..., label, then knn user/item if not already listed.
 * Types: numeric -> MLK_F64; categorical, user, item -> MLK_STR; the
 * label is always MLK_STR (class labels may be any text: "yes"/"no",
 * "0"/"1"; the train/knn stages map distinct values to classes, sorted as
 * scikit-learn does). Names are borrowed from the spec. */
typedef enum {
    MLOPS_COL_NUMERIC = 1,
    MLOPS_COL_CATEGORICAL = 2,
    MLOPS_COL_LABEL = 3,
    MLOPS_COL_KEY = 4,     /* knn user/item */
    MLOPS_COL_JOIN_KEY = 5 /* a join's `on` column, read as a string */
} mlops_col_role;

typedef struct {
    const char *name;
    mlk_coltype type;
    mlops_col_role role;
} mlops_jobspec_col_t;

/* With joins, the columns a join appends are not read from the input
 * (they come from the right tables) and each join's key is read as a
 * string unless it is already a listed column. */
/* The used columns in a malloc'd array (free() it), count in *n; empty
 * (NULL, 0) for IDX or noop jobs. 0 or MLOPS_ENOMEM. */
int mlops_jobspec_used_columns(const mlops_jobspec_t *s, mlops_jobspec_col_t **cols, size_t *n);

/* Check the used columns against a CSV header of n names: 0, or
 * MLOPS_ENOTFOUND with "data.csv: column 'price' (columns.numeric) is
 * not in the header", or MLOPS_EINVAL when a used column appears twice
 * in the header. */
int mlops_jobspec_check_header(const mlops_jobspec_t *s, const char *csvname,
                               const char *const *names, size_t n, char *err, size_t errlen);

/* The input files to upload. role: "input" (CSV), "images", "labels",
 * "queries.input" (CSV queries), "queries.images", "queries.labels".
 * path: relative paths joined to jobdir (the job file's directory; NULL
 * or "" = as written). */
typedef struct {
    const char *role; /* static string */
    char *path;       /* malloc'd */
} mlops_jobspec_file_t;

/* Fill *files (malloc'd, free with mlops_jobspec_files_free) and *n.
 * A CSV path with a glob character (*?[) is expanded here, its matches
 * in sorted name order (strcmp), each a file of role "input", in the
 * order the paths are written. 0, MLOPS_ENOMEM, or MLOPS_ENOTFOUND for
 * a glob that matches nothing. */
int mlops_jobspec_inputs(const mlops_jobspec_t *s, const char *jobdir, mlops_jobspec_file_t **files,
                         size_t *n);
/* The same with a message: "input: 'data/events-*.csv' matches no file". */
int mlops_jobspec_inputs_err(const mlops_jobspec_t *s, const char *jobdir,
                             mlops_jobspec_file_t **files, size_t *n, char *err, size_t errlen);
void mlops_jobspec_files_free(mlops_jobspec_file_t **files, size_t n);

/* 1 if column `name` is appended by one of the joins (its index in *which). */
int mlops_jobspec_joined_column(const mlops_jobspec_t *s, const char *name, size_t *which);

/* The directory part of a job file name, malloc'd ("." if none). */
char *mlops_jobspec_dirname(const char *filename);

#endif
