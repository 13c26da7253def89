/* profile_round0.c: the profile stage's round 0 answered by the featurize
 * task (see profile_round0.h). */
#include "profile_round0.h"
#include "err.h"
#include "profile_counts.h"
#include "quantile.h"
#include <stdlib.h>
#include <string.h>

struct wk_profile_round0 {
    size_t nrows, nn;
    double **num; /* the raw numeric columns, in the request's order */
};

void wk_profile_round0_destroy(wk_profile_round0 **pr)
{
    wk_profile_round0 *r = *pr;
    if (!r) return;
    for (size_t c = 0; r->num && c < r->nn; c++) free(r->num[c]);
    free(r->num);
    free(r);
    *pr = NULL;
}

int wk_profile_round0_begin(task_ctx_t *ctx, const Mlops__Tasks__FeaturizeArgs *a, const mlk_frame *f,
                            wk_profile_round0 **out)
{
    *out = NULL;
    if (!a->profile_request.len) return 0;
    wk_profile_round0 *r = calloc(1, sizeof *r);
    if (!r || !(r->num = calloc(a->n_profile_numeric + 1, sizeof *r->num))) {
        free(r);
        return wk_task_fail(ctx, 1, "out of memory");
    }
    r->nrows = f->nrows;
    for (size_t c = 0; c < a->n_profile_numeric; c++) {
        int k = mlk_frame_col(f, a->profile_numeric[c]);
        if (k < 0 || f->cols[k].type != MLK_F64) {
            wk_profile_round0_destroy(&r);
            return wk_task_fail(ctx, 0, "profile: the frame has no numeric column '%s'", a->profile_numeric[c]);
        }
        r->nn = c + 1;
        if (!(r->num[c] = malloc((f->nrows + 1) * sizeof **r->num))) {
            wk_profile_round0_destroy(&r);
            return wk_task_fail(ctx, 1, "out of memory");
        }
        memcpy(r->num[c], f->cols[k].f64, f->nrows * sizeof **r->num);
    }
    *out = r;
    return 0;
}

static const char *frame_str_at(const void *col, size_t row, size_t *len)
{
    return mlk_str_at(col, row, len);
}

int wk_profile_round0_finish(task_ctx_t *ctx, wk_profile_round0 *r, const Mlops__Tasks__FeaturizeArgs *a,
                             const mlk_frame *f, const uint8_t *test)
{
    size_t n = r->nrows, ncat = a->n_profile_categorical;
    uint8_t *train = malloc(n ? n : 1), *ans = NULL;
    Mlops__Tasks__ProfileCategory *cats = calloc(ncat + 1, sizeof *cats);
    Mlops__Tasks__ProfileCategory **catp = calloc(ncat + 1, sizeof *catp);
    size_t anslen = 0;
    int rc = train && cats && catp ? 0 : wk_task_fail(ctx, 1, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) train[i] = !test || !test[i];
    for (size_t c = 0; c < ncat && cats; c++) {
        mlops__tasks__profile_category__init(&cats[c]);
        catp[c] = &cats[c];
    }
    for (size_t c = 0; !rc && c < ncat; c++) {
        int k = mlk_frame_col(f, a->profile_categorical[c]);
        if (k < 0 || f->cols[k].type != MLK_STR)
            rc = wk_task_fail(ctx, 0, "profile: the frame has no text column '%s'", a->profile_categorical[c]);
        else if (wk_profile_count_category(&f->cols[k], frame_str_at, f->cols[k].missing, train, n, &cats[c]) != 0)
            rc = wk_task_fail(ctx, 1, "out of memory");
    }
    if (!rc && mlk_qjob_answer_masked(a->profile_request.data, a->profile_request.len, (const double *const *)r->num,
                                      r->nn, n, train, &ans, &anslen, ctx->err, sizeof ctx->err) != 0)
        rc = -1;
    if (!rc) {
        Mlops__Tasks__ProfileQroundResult res = MLOPS__TASKS__PROFILE_QROUND_RESULT__INIT;
        res.quantile_answer.data = ans;
        res.quantile_answer.len = anslen;
        res.n_categorical = ncat;
        res.categorical = catp;
        rc = wk_task_result_pack(ctx, &res.base);
    }
    wk_profile_categories_free(cats, ncat);
    free(catp);
    free(ans);
    free(train);
    return rc ? -1 : 0;
}
