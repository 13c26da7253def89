/* sv_request.c: see sv_request.h. JSON is read first by the tree-less
 * reader (sv_reader.h), which takes the common shapes; whatever it does
 * not take, a malformed body included, is read with jansson (duplicate
 * keys refused), which gives the frame or names the position. CSV is
 * read with the batch reader itself (common/kernels/csv.h), so a CSV
 * body is parsed exactly as a predict job's input is. */
#include "sv_request.h"
#include "csv.h"
#include "err.h"
#include "sv_reader.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static mlk_frame *new_frame(const sv_schema_t *s, size_t n)
{
    mlk_frame *f = mlk_frame_new(s->ncols, (const char *const *)s->cols, s->types, n ? n : 1);
    if (f && mlk_frame_reserve(f, n ? n : 1)) mlk_frame_destroy(&f);
    return f;
}

static const char *kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* Row `row` of column c from JSON value v; `where` names the position. */
static int put(mlk_frame *f, size_t c, size_t row, const json_t *v, const char *where, char *err,
               size_t errlen)
{
    mlk_col *col = &f->cols[c];
    if (col->type == MLK_F64) {
        double x = NAN;
        if (json_is_number(v)) x = json_number_value(v);
        else if (json_is_string(v)) {
            const char *t = json_string_value(v);
            size_t n = json_string_length(v);
            if (!mlk_csv_is_na(t, n) && mlk_csv_to_double(t, n, &x) != 0)
                return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s (column '%s'): '%.40s' is not a number",
                                    where, col->name, t);
        } else if (!json_is_null(v))
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "%s (column '%s'): expected a number, got %s", where, col->name,
                                kind_of(v));
        col->f64[row] = x;
        return 0;
    }
    char num[32];
    const char *t = "";
    size_t n = 0;
    int missing = 0;
    if (json_is_string(v)) {
        t = json_string_value(v);
        n = json_string_length(v);
        missing = mlk_csv_is_na(t, n);
    } else if (json_is_integer(v)) {
        n = (size_t)snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        t = num;
    } else if (json_is_null(v)) {
        missing = 1;
    } else {
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s (column '%s'): expected a string, got %s",
                            where, col->name, kind_of(v));
    }
    if (missing) n = 0;
    if (mlk_frame_str_push(f, c, row, t, n, missing))
        return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    return 0;
}

static int col_index(const sv_schema_t *s, const char *name)
{
    for (size_t i = 0; i < s->ncols; i++)
        if (!strcmp(s->cols[i], name)) return (int)i;
    return -1;
}

static int extra_col(const sv_schema_t *s, const char *where, const char *name, char *err,
                     size_t errlen)
{
    char list[512];
    size_t o = 0;
    list[0] = 0;
    for (size_t i = 0; i < s->ncols && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", s->cols[i]);
    return mlops_seterr(err, errlen, MLOPS_EPARSE,
                        "%s: extra column '%.100s' (the model takes exactly: %s)", where, name, list);
}

/* {"columns": [...], "data": [[...], ...]} */
static int parse_split(const sv_schema_t *s, const json_t *v, mlk_frame **out, char *err,
                       size_t errlen)
{
    if (!json_is_object(v))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "dataframe_split: expected an object, got %s",
                            kind_of(v));
    const char *k;
    json_t *x;
    json_object_foreach ((json_t *)v, k, x)
        if (strcmp(k, "columns") && strcmp(k, "data") && strcmp(k, "index"))
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "dataframe_split: unknown key '%.100s' (expected columns, data, "
                                "index)",
                                k);
    const json_t *cols = json_object_get(v, "columns"), *data = json_object_get(v, "data");
    if (!json_is_array(cols))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "dataframe_split.columns: expected an array");
    if (!json_is_array(data))
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "dataframe_split.data: expected an array");
    size_t nc = json_array_size(cols), n = json_array_size(data);
    int *map = calloc(nc + 1, sizeof *map); /* request column -> schema column */
    char *seen = calloc(s->ncols + 1, 1);
    mlk_frame *f = NULL;
    int rc = 0;
    if (!map || !seen) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nc; i++) {
        const json_t *name = json_array_get(cols, i);
        if (!json_is_string(name)) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "dataframe_split.columns[%zu]: expected a string, got %s", i,
                              kind_of(name));
            goto out;
        }
        int c = col_index(s, json_string_value(name));
        if (c < 0) {
            rc = extra_col(s, "dataframe_split.columns", json_string_value(name), err, errlen);
            goto out;
        }
        if (seen[c]) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "dataframe_split.columns[%zu]: column '%s' given twice", i,
                              s->cols[c]);
            goto out;
        }
        seen[c] = 1;
        map[i] = c;
    }
    for (size_t c = 0; c < s->ncols; c++)
        if (!seen[c]) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "dataframe_split.columns: missing column '%s'", s->cols[c]);
            goto out;
        }
    if (!(f = new_frame(s, n))) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t r = 0; r < n; r++) {
        const json_t *row = json_array_get(data, r);
        if (!json_is_array(row) || json_array_size(row) != nc) {
            rc = json_is_array(row)
                     ? mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "dataframe_split.data[%zu]: expected %zu values, got %zu", r,
                                    nc, json_array_size(row))
                     : mlops_seterr(err, errlen, MLOPS_EPARSE,
                                    "dataframe_split.data[%zu]: expected an array, got %s", r,
                                    kind_of(row));
            goto out;
        }
        /* text columns must be pushed in row order: walk schema order */
        for (size_t c = 0; c < s->ncols; c++) {
            size_t i = 0;
            while ((size_t)map[i] != c) i++;
            char where[96];
            snprintf(where, sizeof where, "dataframe_split.data[%zu][%zu]", r, i);
            if ((rc = put(f, c, r, json_array_get(row, i), where, err, errlen)) != 0) goto out;
        }
        f->row_id[r] = (int64_t)r;
    }
    f->nrows = n;
out:
    free(map);
    free(seen);
    if (rc) mlk_frame_destroy(&f);
    *out = f;
    return rc;
}

/* [{"col": value, ...}, ...]; `what` is the key it came under */
static int parse_records(const sv_schema_t *s, const char *what, const json_t *v, mlk_frame **out,
                         char *err, size_t errlen)
{
    size_t n = json_array_size(v);
    mlk_frame *f = new_frame(s, n);
    if (!f) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t r = 0; r < n && !rc; r++) {
        const json_t *o = json_array_get(v, r);
        char where[160];
        snprintf(where, sizeof where, "%s[%zu]", what, r);
        if (!json_is_object(o)) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: expected an object, got %s", where,
                              kind_of(o));
            break;
        }
        const char *k;
        json_t *x;
        json_object_foreach ((json_t *)o, k, x)
            if (col_index(s, k) < 0) {
                rc = extra_col(s, where, k, err, errlen);
                break;
            }
        for (size_t c = 0; !rc && c < s->ncols; c++) {
            const json_t *x2 = json_object_get(o, s->cols[c]);
            if (!x2) {
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: missing column '%s'", where,
                                  s->cols[c]);
                break;
            }
            char w2[260];
            snprintf(w2, sizeof w2, "%s.%.60s", where, s->cols[c]);
            rc = put(f, c, r, x2, w2, err, errlen);
        }
        f->row_id[r] = (int64_t)r;
    }
    if (rc) mlk_frame_destroy(&f);
    else f->nrows = n;
    *out = f;
    return rc;
}

/* {"col": [values], ...}: instances in columns (TensorFlow Serving's form) */
static int parse_columns(const sv_schema_t *s, const char *what, const json_t *v, mlk_frame **out,
                         char *err, size_t errlen)
{
    const char *k;
    json_t *x;
    size_t n = 0;
    int first = 1;
    json_object_foreach ((json_t *)v, k, x) {
        char where[160];
        snprintf(where, sizeof where, "%s.%.60s", what, k);
        if (col_index(s, k) < 0) return extra_col(s, what, k, err, errlen);
        if (!json_is_array(x))
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: expected an array, got %s", where,
                                kind_of(x));
        if (!first && json_array_size(x) != n)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "%s: %zu values, but the columns before have %zu", where,
                                json_array_size(x), n);
        n = json_array_size(x);
        first = 0;
    }
    for (size_t c = 0; c < s->ncols; c++)
        if (!json_object_get(v, s->cols[c]))
            return mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: missing column '%s'", what,
                                s->cols[c]);
    mlk_frame *f = new_frame(s, n);
    if (!f) return mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t c = 0; c < s->ncols && !rc; c++) {
        const json_t *a = json_object_get(v, s->cols[c]);
        for (size_t r = 0; r < n && !rc; r++) {
            char where[160];
            snprintf(where, sizeof where, "%s.%.60s[%zu]", what, s->cols[c], r);
            rc = put(f, c, r, json_array_get(a, r), where, err, errlen);
        }
    }
    for (size_t r = 0; r < n; r++) f->row_id[r] = (int64_t)r;
    if (rc) mlk_frame_destroy(&f);
    else f->nrows = n;
    *out = f;
    return rc;
}

static json_t *load(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        mlops_seterr(err, errlen, MLOPS_EPARSE, "malformed JSON at line %d, column %d: %s", je.line,
                     je.column, je.text);
    return doc;
}

int sv_request_parse_tree(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    json_t *doc = load(body, len, err, errlen);
    if (!doc) return MLOPS_EPARSE;
    int rc = 0;
    if (!json_is_object(doc)) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                          "expected an object with dataframe_split, dataframe_records or "
                          "instances, got %s",
                          kind_of(doc));
        goto out;
    }
    const char *k, *which = NULL;
    json_t *x, *val = NULL;
    json_object_foreach (doc, k, x) {
        if (!strcmp(k, "params")) continue; /* MLflow's inference parameters: none apply */
        if (strcmp(k, "dataframe_split") && strcmp(k, "dataframe_records") &&
            strcmp(k, "instances")) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "unknown key '%.100s' (expected one of dataframe_split, "
                              "dataframe_records, instances)",
                              k);
            goto out;
        }
        if (which) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "both '%s' and '%s' given: send exactly one", which, k);
            goto out;
        }
        which = k;
        val = x;
    }
    if (!which) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                          "no dataframe_split, dataframe_records or instances in the request");
        goto out;
    }
    if (!strcmp(which, "dataframe_split")) rc = parse_split(s, val, out, err, errlen);
    else if (json_is_array(val)) rc = parse_records(s, which, val, out, err, errlen);
    else if (json_is_object(val) && !strcmp(which, "instances"))
        rc = parse_columns(s, which, val, out, err, errlen);
    else
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s: expected an array%s, got %s", which,
                          strcmp(which, "instances") ? "" : " or an object of columns",
                          kind_of(val));
out:
    json_decref(doc);
    return rc;
}

static int parse_csv(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out,
                     char *err, size_t errlen)
{
    char **hdr = NULL;
    size_t nh = 0, ds = 0;
    char e2[512];
    if (mlk_csv_header(body, len, &hdr, &nh, &ds, e2, sizeof e2) != 0)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "CSV header: %s", e2);
    int rc = 0;
    for (size_t i = 0; i < nh && !rc; i++) {
        if (col_index(s, hdr[i]) < 0) rc = extra_col(s, "CSV header", hdr[i], err, errlen);
        for (size_t k = 0; k < i && !rc; k++)
            if (!strcmp(hdr[k], hdr[i]))
                rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "CSV header: column '%s' given twice",
                                  hdr[i]);
    }
    size_t *index = calloc(s->ncols + 1, sizeof *index);
    mlk_csv_schema cs;
    if (!rc && !index) rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
    if (!rc && mlk_csv_schema_init(&cs, (const char *const *)hdr, nh,
                                   (const char *const *)s->cols, s->types, s->ncols, index, e2,
                                   sizeof e2) != 0)
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "CSV header: %s", e2);
    if (!rc) {
        long line = 1;
        for (size_t i = 0; i < ds; i++) line += body[i] == '\n';
        size_t bad = 0;
        if (mlk_csv_parse(body + ds, len - ds, &cs, 0, line, "request", 0, out, &bad, e2,
                          sizeof e2) != 0)
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "%s", e2);
    }
    free(index);
    mlk_csv_names_free(&hdr, nh);
    return rc;
}

static int ctype_is(const char *ctype, const char *want)
{
    size_t n = strlen(want);
    while (*ctype == ' ') ctype++;
    return !strncasecmp(ctype, want, n) && (!ctype[n] || ctype[n] == ';' || ctype[n] == ' ');
}

int sv_request_parse(const sv_schema_t *s, const char *ctype, const char *body, size_t len,
                     mlk_frame **out, char *err, size_t errlen)
{
    *out = NULL;
    if (ctype_is(ctype, "application/json")) {
        int rc = sv_reader_mlflow(s, body, len, out);
        if (rc == MLOPS_ENOMEM) return mlops_seterr(err, errlen, rc, "out of memory");
        return rc == SV_READER_PUNT ? sv_request_parse_tree(s, body, len, out, err, errlen) : 0;
    }
    if (ctype_is(ctype, "text/csv")) return parse_csv(s, body, len, out, err, errlen);
    return mlops_seterr(err, errlen, MLOPS_EINVAL,
                        "Content-Type '%.100s' is not read here: send application/json or text/csv",
                        ctype);
}

/* The datatype of tensor ti against schema column c. */
static int check_dtype(const sv_schema_t *s, size_t c, const json_t *t, size_t ti, char *err,
                       size_t errlen)
{
    const char *dt = json_string_value(json_object_get(t, "datatype"));
    const char *name = s->cols[c];
    int numeric = s->types[c] == MLK_F64;
    if (!dt)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "inputs[%zu] (%s): no datatype", ti, name);
    int dnum = !strcmp(dt, "FP64") || !strcmp(dt, "FP32") || !strcmp(dt, "INT64") ||
               !strcmp(dt, "INT32");
    if (numeric ? !dnum : strcmp(dt, "BYTES"))
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "inputs[%zu] (%s): datatype %.20s, but the model takes %s for this "
                            "column",
                            ti, name, dt, numeric ? "FP64" : "BYTES");
    return 0;
}

/* One V2 tensor into column c; n rows. */
static int put_tensor(mlk_frame *f, size_t c, size_t n, const json_t *t, size_t ti, char *err,
                      size_t errlen)
{
    const char *name = f->cols[c].name;
    const json_t *data = json_object_get(t, "data");
    if (!json_is_array(data) || json_array_size(data) != n)
        return mlops_seterr(err, errlen, MLOPS_EPARSE,
                            "inputs[%zu] (%s): data must be an array of %zu values", ti, name, n);
    for (size_t r = 0; r < n; r++) {
        char where[160];
        snprintf(where, sizeof where, "inputs[%zu].data[%zu]", ti, r);
        int rc = put(f, c, r, json_array_get(data, r), where, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

int sv_request_parse_v2(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out,
                        char **id, char *err, size_t errlen)
{
    int rc = sv_reader_v2(s, body, len, out, id);
    if (rc == MLOPS_ENOMEM) return mlops_seterr(err, errlen, rc, "out of memory");
    return rc == SV_READER_PUNT ? sv_request_parse_v2_tree(s, body, len, out, id, err, errlen) : 0;
}

int sv_request_parse_v2_tree(const sv_schema_t *s, const char *body, size_t len, mlk_frame **out,
                             char **id, char *err, size_t errlen)
{
    *out = NULL;
    *id = NULL;
    json_t *doc = load(body, len, err, errlen);
    if (!doc) return MLOPS_EPARSE;
    int rc = 0;
    const json_t *inputs = json_object_get(doc, "inputs");
    size_t ni = json_array_size(inputs), n = 0;
    const json_t **by_col = calloc(s->ncols + 1, sizeof *by_col);
    size_t *tidx = calloc(s->ncols + 1, sizeof *tidx);
    mlk_frame *f = NULL;
    if (!by_col || !tidx) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        goto out;
    }
    if (!json_is_object(doc) || !json_is_array(inputs)) {
        rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "expected an object with an 'inputs' array");
        goto out;
    }
    if (json_is_string(json_object_get(doc, "id")))
        *id = strdup(json_string_value(json_object_get(doc, "id")));
    for (size_t i = 0; i < ni; i++) {
        const json_t *t = json_array_get(inputs, i);
        const char *name = json_string_value(json_object_get(t, "name"));
        const json_t *shape = json_object_get(t, "shape");
        if (!json_is_object(t) || !name) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "inputs[%zu]: expected an object with a name",
                              i);
            goto out;
        }
        int c = col_index(s, name);
        if (c < 0) {
            char where[64];
            snprintf(where, sizeof where, "inputs[%zu]", i);
            rc = extra_col(s, where, name, err, errlen);
            goto out;
        }
        if (by_col[c]) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "inputs[%zu]: tensor '%s' given twice", i,
                              name);
            goto out;
        }
        if ((rc = check_dtype(s, (size_t)c, t, i, err, errlen)) != 0) goto out;
        json_int_t d0 = json_integer_value(json_array_get(shape, 0));
        size_t rank = json_array_size(shape);
        if (!json_is_array(shape) || rank < 1 || rank > 2 ||
            !json_is_integer(json_array_get(shape, 0)) || d0 < 0 ||
            (rank == 2 && json_integer_value(json_array_get(shape, 1)) != 1)) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "inputs[%zu] (%s): shape must be [n] or [n, 1]", i, name);
            goto out;
        }
        if (i && (size_t)d0 != n) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE,
                              "inputs[%zu] (%s): %lld rows, but the tensors before have %zu", i,
                              name, (long long)d0, n);
            goto out;
        }
        n = (size_t)d0;
        by_col[c] = t;
        tidx[c] = i;
    }
    for (size_t c = 0; c < s->ncols; c++)
        if (!by_col[c]) {
            rc = mlops_seterr(err, errlen, MLOPS_EPARSE, "inputs: missing tensor '%s'", s->cols[c]);
            goto out;
        }
    if (!(f = new_frame(s, n))) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < s->ncols && !rc; c++)
        rc = put_tensor(f, c, n, by_col[c], tidx[c], err, errlen);
    for (size_t r = 0; !rc && r < n; r++) f->row_id[r] = (int64_t)r;
    if (!rc) f->nrows = n;
out:
    free(by_col);
    free(tidx);
    json_decref(doc);
    if (rc) {
        mlk_frame_destroy(&f);
        free(*id);
        *id = NULL;
    }
    *out = f;
    return rc;
}
