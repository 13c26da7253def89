/* kind_join.c: the join stage's task kinds (coordinator/stage_join.c).
 * join_load parses one shard of a right table into a frame of its key
 * and appended columns; join reads a left shard and every right shard,
 * builds each join's hash table (common/kernels/join.h) once per
 * executor thread and job (the task cache, as the k-NN kinds keep their
 * matrix), and merges the shard with each table in order. The shuffle
 * join of a large right table adds join_part (one partition of a shard)
 * and join_gather (a left shard's joined partitions, back in order); its
 * per-partition join is the join kind with one table. */
#include "csv.h"
#include "err.h"
#include "join.h"
#include "kinds.h"
#include "task.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wk_kind_join_load(task_ctx_t *ctx)
{
    Mlops__Tasks__JoinLoadArgs *a = wk_task_args(ctx, &mlops__tasks__join_load_args__descriptor);
    if (!a) return -1;
    int rc = -1;
    size_t nwant = a->n_columns;
    char **want = calloc(nwant ? nwant : 1, sizeof *want);
    mlk_coltype *types = calloc(nwant ? nwant : 1, sizeof *types);
    size_t *index = calloc(nwant ? nwant : 1, sizeof *index);
    mlk_frame *f = NULL;
    if (!want || !types || !index) {
        rc = wk_task_fail(ctx, 1, "out of memory");
        goto out;
    }
    if (nwant < 2 || a->n_header > 100000 || nwant > a->n_header) {
        rc = wk_task_fail(ctx, 0, "join_load: damaged task arguments (%zu columns of %zu)", nwant,
                          a->n_header);
        goto out;
    }
    for (size_t i = 0; i < nwant; i++) {
        want[i] = a->columns[i]->name;
        types[i] = i && a->columns[i]->type == MLK_F64 ? MLK_F64 : MLK_STR;
    }
    mlk_csv_schema schema;
    if (mlk_csv_schema_init(&schema, (const char *const *)a->header, a->n_header,
                            (const char *const *)want, types, nwant, index, ctx->err,
                            sizeof ctx->err) != 0)
        goto out;
    size_t bad = 0;
    if (mlk_csv_parse(a->data.data ? (const char *)a->data.data : "", a->data.len, &schema, 0,
                      (long)a->first_line, a->file_name, 0, &f, &bad, ctx->err,
                      sizeof ctx->err) != 0)
        goto out;
    if (wk_task_output_frame(ctx, f) != 0) goto out;
    Mlops__Tasks__JoinLoadResult res = MLOPS__TASKS__JOIN_LOAD_RESULT__INIT;
    res.keys_numeric = mlk_join_keys_numeric(&f->cols[0], f->nrows);
    res.rows = f->nrows;
    if (wk_task_result_pack(ctx, &res.base) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)f->nrows);
    rc = 0;
out:
    mlk_frame_destroy(&f);
    free(want);
    free(types);
    free(index);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

/* every join's table of one job, as the task cache holds it */
typedef struct {
    mlk_join_table *t[16];
    size_t n;
} tables_t;

static void tables_free(void *p)
{
    tables_t *ts = p;
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++) mlk_join_table_destroy(&ts->t[i]);
    free(ts);
}

/* the tables of this job: built from inputs 1.. on the thread's first
 * join task of the job, then reused */
static tables_t *cached_tables(task_ctx_t *ctx, const Mlops__Tasks__JoinArgs *a)
{
    char key[200];
    /* the first right shard tells the tables of a shuffle's partitions apart */
    snprintf(key, sizeof key, "join|%s|%zu|%s", ctx->ta->job_id, ctx->ta->n_inputs,
             ctx->ta->n_inputs > 1 ? ctx->ta->inputs[1]->key : "");
    tables_t *ts = wk_task_cache_get(ctx, key);
    if (ts) return ts;
    ts = calloc(1, sizeof *ts);
    if (!ts) {
        wk_task_fail(ctx, 1, "out of memory");
        return NULL;
    }
    size_t in = 1;
    int rc = 0;
    for (size_t i = 0; !rc && i < a->n_tables; i++) {
        const Mlops__Tasks__JoinTable *jt = a->tables[i];
        size_t ns = jt->shards;
        mlk_frame **fs = calloc(ns ? ns : 1, sizeof *fs);
        if (!fs) {
            rc = wk_task_fail(ctx, 1, "out of memory");
            break;
        }
        for (size_t k = 0; !rc && k < ns; k++) rc = wk_task_input_frame(ctx, in + k, &fs[k]);
        char why[600];
        if (!rc && mlk_join_table_new((const mlk_frame *const *)fs, ns, jt->keys_numeric,
                                      jt->many_to_one, &ts->t[i], why, sizeof why) != 0)
            rc = wk_task_fail(ctx, 0, "join[%zu]: %s: %s%s", i, jt->file_name, why,
                              jt->many_to_one ? " (validate: many_to_one)" : "");
        if (!rc) ts->n = i + 1;
        for (size_t k = 0; k < ns; k++) mlk_frame_destroy(&fs[k]);
        free(fs);
        in += ns;
    }
    if (rc) {
        tables_free(ts);
        return NULL;
    }
    wk_task_cache_put(ctx, key, ts, tables_free);
    return ts;
}

int wk_kind_join(task_ctx_t *ctx)
{
    Mlops__Tasks__JoinArgs *a = wk_task_args(ctx, &mlops__tasks__join_args__descriptor);
    if (!a) return -1;
    int rc = -1;
    mlk_frame *f = NULL;
    uint8_t *ans = NULL;
    size_t anslen = 0, nlabels = 0, need = 1;
    char **labels = NULL;
    protobuf_c_boolean lnum[16];
    for (size_t i = 0; i < a->n_tables; i++) need += a->tables[i]->shards;
    if (a->n_tables == 0 || a->n_tables > 16 || need != ctx->ta->n_inputs) {
        rc = wk_task_fail(ctx, 0, "join: damaged task arguments (%zu tables, %zu inputs)",
                          a->n_tables, ctx->ta->n_inputs);
        goto out;
    }
    tables_t *ts = cached_tables(ctx, a);
    if (!ts) goto out;
    if (wk_task_input_frame(ctx, 0, &f) != 0) goto out;
    for (size_t i = 0; i < a->n_tables; i++) {
        const Mlops__Tasks__JoinTable *jt = a->tables[i];
        int kc = mlk_frame_col(f, jt->on);
        if (kc < 0) {
            rc = wk_task_fail(ctx, 0, "join[%zu]: the left shard has no column '%s'", i, jt->on);
            goto out;
        }
        mlk_frame *g = NULL;
        int num = 1;
        if (mlk_join_apply(f, (size_t)kc, ts->t[i], jt->how == 1, &g, &num) != 0) {
            rc = wk_task_fail(ctx, 1, "join[%zu]: out of memory", i);
            goto out;
        }
        mlk_frame_destroy(&f);
        f = g;
        lnum[i] = num;
    }
    if (wk_task_output_frame(ctx, f) != 0) goto out;
    if (a->quantile_request.len &&
        wk_quantile_answer(ctx, f, a->dropna, a->quantile_request.data, a->quantile_request.len,
                           &ans, &anslen) != 0)
        goto out;
    if (wk_shard_labels(ctx, f, &labels, &nlabels) != 0) goto out;
    Mlops__Tasks__JoinResult res = MLOPS__TASKS__JOIN_RESULT__INIT;
    res.n_labels = nlabels;
    res.labels = labels;
    res.quantile_answer.data = ans;
    res.quantile_answer.len = anslen;
    res.n_left_numeric = a->n_tables;
    res.left_numeric = lnum;
    if (wk_task_result_pack(ctx, &res.base) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)f->nrows);
    rc = 0;
out:
    wk_labels_free(labels, nlabels);
    free(ans);
    mlk_frame_destroy(&f);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

int wk_kind_join_part(task_ctx_t *ctx)
{
    Mlops__Tasks__JoinPartArgs *a = wk_task_args(ctx, &mlops__tasks__join_part_args__descriptor);
    if (!a) return -1;
    int rc = -1;
    mlk_frame *f = NULL, *g = NULL;
    if (a->parts == 0 || a->parts > 4096 || a->part >= a->parts || ctx->ta->n_inputs != 1) {
        rc = wk_task_fail(ctx, 0, "join_part: damaged task arguments (part %u of %u)", a->part,
                          a->parts);
        goto out;
    }
    if (wk_task_input_frame(ctx, 0, &f) != 0) goto out;
    int kc = mlk_frame_col(f, a->on);
    if (kc < 0) {
        rc = wk_task_fail(ctx, 0, "join_part: the shard has no column '%s'", a->on);
        goto out;
    }
    if (mlk_join_partition(f, (size_t)kc, a->keys_numeric, a->parts, a->part, &g) != 0) {
        rc = wk_task_fail(ctx, 1, "join_part: out of memory");
        goto out;
    }
    if (wk_task_output_frame(ctx, g) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)g->nrows);
    rc = 0;
out:
    mlk_frame_destroy(&f);
    mlk_frame_destroy(&g);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}

int wk_kind_join_gather(task_ctx_t *ctx)
{
    Mlops__Tasks__JoinGatherArgs *a =
        wk_task_args(ctx, &mlops__tasks__join_gather_args__descriptor);
    if (!a) return -1;
    int rc = -1;
    size_t n = ctx->ta->n_inputs, nlabels = 0, anslen = 0;
    mlk_frame **parts = calloc(n ? n : 1, sizeof *parts), *g = NULL;
    uint8_t *ans = NULL;
    char **labels = NULL;
    if (!parts || n == 0) {
        rc = wk_task_fail(ctx, n != 0, n ? "out of memory" : "join_gather: no inputs");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (wk_task_input_frame(ctx, i, &parts[i]) != 0) goto out;
    if (mlk_join_gather((const mlk_frame *const *)parts, n, &g) != 0) {
        rc = wk_task_fail(ctx, 0, "join_gather: the partitions have other columns");
        goto out;
    }
    if (wk_task_output_frame(ctx, g) != 0) goto out;
    if (a->final && a->quantile_request.len &&
        wk_quantile_answer(ctx, g, a->dropna, a->quantile_request.data, a->quantile_request.len,
                           &ans, &anslen) != 0)
        goto out;
    if (a->final && wk_shard_labels(ctx, g, &labels, &nlabels) != 0) goto out;
    Mlops__Tasks__JoinResult res = MLOPS__TASKS__JOIN_RESULT__INIT;
    res.n_labels = nlabels;
    res.labels = labels;
    res.quantile_answer.data = ans;
    res.quantile_answer.len = anslen;
    if (wk_task_result_pack(ctx, &res.base) != 0) goto out;
    wk_task_metric(ctx, "rows", (double)g->nrows);
    rc = 0;
out:
    for (size_t i = 0; parts && i < n; i++) mlk_frame_destroy(&parts[i]);
    free(parts);
    mlk_frame_destroy(&g);
    wk_labels_free(labels, nlabels);
    free(ans);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rc;
}
