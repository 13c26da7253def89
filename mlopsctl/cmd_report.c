/* cmd_report.c: `mlopsctl report JOB -o report.html`: one self-contained
 * HTML file about a job, made from the same `result` reply that `result
 * -o json` prints: the headline metrics, the training loss per epoch,
 * the ROC and calibration curves and the confusion matrix of the
 * evaluate stage, the k-NN hit rate against the most-popular baseline,
 * the stages and every metric. Plots are inline SVG (svgplot.h); no
 * script, font or image is fetched, so the file can be mailed or
 * archived and still reads the same.
 *
 * Every number shown also sits, exact (%.17g), in a data-value
 * attribute, so a test can check the page against the JSON. */
#include "ctl.h"
#include "svgplot.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char CSS[] =
    "body{margin:0;background:#f6f7f9;color:#1d2330;font:14px/1.45 system-ui,'DejaVu Sans',"
    "sans-serif}main{max-width:1000px;margin:0 auto;padding:24px 28px 48px}"
    "h1{font-size:22px;margin:0 0 6px}h2{font-size:15px;margin:0 0 10px}"
    ".sub{color:#6b7385;margin-bottom:18px}.card{background:#fff;border:1px solid #e3e6ec;"
    "border-radius:8px;padding:16px 18px;margin-bottom:16px}.grid{display:grid;"
    "grid-template-columns:1fr 1fr;gap:16px}.cards{display:flex;flex-wrap:wrap;gap:12px;"
    "margin-bottom:16px}.metric{background:#fff;border:1px solid #e3e6ec;border-radius:8px;"
    "padding:10px 16px;min-width:120px}.metric small{display:block;color:#6b7385;font-size:11.5px;"
    "text-transform:uppercase;letter-spacing:.4px}.metric b{font-size:20px;font-weight:650}"
    "table{border-collapse:collapse;width:100%}th{text-align:left;color:#6b7385;font-size:12px;"
    "text-transform:uppercase;letter-spacing:.4px;padding:5px 10px;border-bottom:1px solid #e3e6ec}"
    "td{padding:6px 10px;border-bottom:1px solid #eef0f4}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums;font-family:'DejaVu Sans Mono',monospace;font-size:12.5px}"
    "table.cm{width:auto}table.cm td{text-align:center;min-width:70px;font-weight:600}"
    ".muted{color:#6b7385}.error{color:#d64545}svg text{font:11px system-ui,'DejaVu Sans',"
    "sans-serif;fill:#4a5264}.bars td.bar{width:55%}.bars td.bar span{display:block;height:12px;"
    "background:#2f6fdf;border-radius:3px}.bars tr.base td.bar span{background:#9aa1ae}"
    "th.num{text-align:right}.grid{margin-bottom:16px}.grid .card{margin:0}"
    ".card p:first-child{margin-top:0}@media "
    "print{body{background:#fff}.card,.metric{break-inside:avoid}}";

static const json_t *get(const json_t *o, const char *k) { return json_object_get(o, k); }

/* A number as a person reads it, with its exact value in data-value. */
static void value(FILE *f, const char *name, const json_t *v)
{
    double d = json_number_value(v);
    fprintf(f, "<span data-metric=\"");
    esc(f, name);
    /* replies decode every number as a double: whole ones print whole */
    if (json_is_number(v) && d == floor(d) && fabs(d) < 1e15)
        fprintf(f, "\" data-value=\"%.0f\">%.0f</span>", d, d);
    else if (json_is_number(v)) fprintf(f, "\" data-value=\"%.17g\">%.6g</span>", d, d);
    else fprintf(f, "\" data-value=\"\">&ndash;</span>");
}

/* n numbers of a JSON array into a malloc'd buffer (NaN for null). */
static double *numbers(const json_t *a, size_t *n)
{
    *n = json_array_size(a);
    double *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; v && i < *n; i++) {
        const json_t *x = json_array_get(a, i);
        v[i] = json_is_number(x) ? json_number_value(x) : NAN;
    }
    return v;
}

static void headline(FILE *f, const json_t *m)
{
    static const char *const KEYS[] = {"accuracy",      "auc",       "logloss",   "f1",
                                       "precision",     "recall",    "test_rows", "knn_accuracy",
                                       "hit_rate_at_n", "ndcg_at_n", NULL};
    fprintf(f, "<div class=\"cards\">\n");
    for (size_t i = 0; KEYS[i]; i++) {
        const json_t *v = get(m, KEYS[i]);
        if (!json_is_number(v)) continue;
        fprintf(f, "<div class=\"metric\"><small>%s</small><b>", KEYS[i]);
        value(f, KEYS[i], v);
        fprintf(f, "</b></div>\n");
    }
    fprintf(f, "</div>\n");
}

static void loss_card(FILE *f, const json_t *m)
{
    fprintf(f, "<div class=\"card\" id=\"loss\"><h2>Training loss per epoch</h2>\n");
    size_t n;
    double *y = numbers(get(m, "train_loss"), &n);
    if (!y || !n) {
        fprintf(f, "<p class=\"muted\">No train stage ran in this job.</p></div>\n");
        free(y);
        return;
    }
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) x[i] = (double)(i + 1);
    ctl_svgplot p = {.label = "training loss per epoch",
                     .xlabel = "epoch",
                     .ylabel = "loss",
                     .xmin = 1,
                     .xmax = n > 1 ? (double)n : 2,
                     .dots = 1,
                     .integer_x = 1};
    if (x) ctl_svgplot_write(f, &p, x, y, n);
    fprintf(f, "<p class=\"muted\">Final loss ");
    value(f, "train_loss.last", json_array_get(get(m, "train_loss"), n - 1));
    fprintf(f, " after %zu epochs.</p></div>\n", n);
    free(x);
    free(y);
}

static void curve_card(FILE *f, const char *id, const char *title, const json_t *xs,
                       const json_t *ys, const char *xl, const char *yl, const char *why)
{
    fprintf(f, "<div class=\"card\" id=\"%s\"><h2>%s</h2>\n", id, title);
    size_t n, n2;
    double *x = numbers(xs, &n), *y = numbers(ys, &n2);
    if (x && y && n && n == n2) {
        ctl_svgplot p = {.label = title,
                         .xlabel = xl,
                         .ylabel = yl,
                         .xmin = 0,
                         .xmax = 1,
                         .ymin = 0,
                         .ymax = 1,
                         .diagonal = 1,
                         .dots = !strcmp(id, "calibration")};
        ctl_svgplot_write(f, &p, x, y, n);
    } else {
        fprintf(f, "<p class=\"muted\">%s</p>\n", why);
    }
    fprintf(f, "</div>\n");
    free(x);
    free(y);
}

static void confusion_card(FILE *f, const json_t *ev)
{
    const json_t *cm = get(ev, "confusion_matrix"), *classes = get(ev, "classes");
    size_t k = json_array_size(cm);
    fprintf(f, "<div class=\"card\" id=\"confusion\"><h2>Confusion matrix</h2>\n");
    if (!k) {
        fprintf(f, "<p class=\"muted\">No evaluate stage ran, or it has more than 64 "
                   "classes.</p></div>\n");
        return;
    }
    double max = 1;
    for (size_t r = 0; r < k; r++)
        for (size_t c = 0; c < k; c++)
            max = fmax(max, json_number_value(json_array_get(json_array_get(cm, r), c)));
    fprintf(f, "<table class=\"cm\"><tr><th>true \\ predicted</th>");
    for (size_t c = 0; c < k; c++) {
        fprintf(f, "<th>");
        esc(f, json_string_value(json_array_get(classes, c)));
        fprintf(f, "</th>");
    }
    fprintf(f, "</tr>\n");
    for (size_t r = 0; r < k; r++) {
        fprintf(f, "<tr><th>");
        esc(f, json_string_value(json_array_get(classes, r)));
        fprintf(f, "</th>");
        for (size_t c = 0; c < k; c++) {
            const json_t *v = json_array_get(json_array_get(cm, r), c);
            double a = json_number_value(v) / max;
            /* the diagonal in blue, mistakes in red, darker with more rows */
            fprintf(f,
                    "<td style=\"background:rgba(%s,%.2f);color:%s\" data-cm=\"%zu,%zu\">%lld</td>",
                    r == c ? "47,111,223" : "214,69,69", 0.08 + 0.8 * a,
                    a > 0.55 ? "#fff" : "#1d2330", r, c, (long long)json_number_value(v));
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table><p class=\"muted\">Rows are the true class, columns the predicted class "
               "(scikit-learn's confusion_matrix).</p></div>\n");
}

static void knn_card(FILE *f, const json_t *m)
{
    const json_t *hit = get(m, "hit_rate_at_n"), *pop = get(m, "popular_hit_rate_at_n");
    if (!json_is_number(hit) || !json_is_number(pop)) return; /* no recommend stage */
    fprintf(f, "<div class=\"card\" id=\"knn\"><h2>k-NN recommendations against the most-popular "
               "baseline</h2><table class=\"bars\"><tr><th>measure</th><th>recommender</th>"
               "<th></th></tr>\n");
    static const char *const ROWS[][3] = {
        {"hit rate at n", "hit_rate_at_n", "popular_hit_rate_at_n"},
        {"NDCG at n", "ndcg_at_n", "popular_ndcg_at_n"}};
    for (size_t i = 0; i < 2; i++) {
        const json_t *a = get(m, ROWS[i][1]), *b = get(m, ROWS[i][2]);
        if (!json_is_number(a) || !json_is_number(b)) continue;
        double va = json_number_value(a), vb = json_number_value(b),
               top = fmax(fmax(va, vb), 1e-12);
        fprintf(f, "<tr><td>%s</td><td class=\"num\">k-NN ", ROWS[i][0]);
        value(f, ROWS[i][1], a);
        fprintf(f, "</td><td class=\"bar\"><span style=\"width:%.1f%%\"></span></td></tr>\n",
                100 * va / top);
        fprintf(f, "<tr class=\"base\"><td></td><td class=\"num\">most popular ");
        value(f, ROWS[i][2], b);
        fprintf(f, "</td><td class=\"bar\"><span style=\"width:%.1f%%\"></span></td></tr>\n",
                100 * vb / top);
    }
    double vh = json_number_value(hit), vp = json_number_value(pop);
    fprintf(
        f,
        "</table><p>The recommender's hit rate is <b>%.2f&times;</b> the baseline's.</p></div>\n",
        vp > 0 ? vh / vp : INFINITY);
}

static void stages_card(FILE *f, const json_t *doc)
{
    const json_t *st = get(doc, "stages");
    fprintf(f, "<div class=\"card\" id=\"stages\"><h2>Stages</h2><table><tr><th>stage</th>"
               "<th>state</th><th class=\"num\">tasks</th><th class=\"num\">seconds</th></tr>\n");
    for (size_t i = 0; i < json_array_size(st); i++) {
        const json_t *s = json_array_get(st, i);
        fprintf(f, "<tr><td>");
        esc(f, mlops_jsonreply_str(s, "name", "?"));
        fprintf(f, "</td><td>");
        esc(f, mlops_jsonreply_str(s, "state", "?"));
        fprintf(f, "</td><td class=\"num\">%.0f/%.0f</td><td class=\"num\">%.3f</td></tr>\n",
                mlops_jsonreply_num(s, "tasks_done", 0), mlops_jsonreply_num(s, "tasks_total", 0),
                mlops_jsonreply_num(s, "seconds", 0));
    }
    fprintf(f, "</table></div>\n");
}

static void metrics_card(FILE *f, const json_t *m)
{
    fprintf(f, "<div class=\"card\" id=\"metrics\"><h2>All metrics</h2><table>\n");
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)m, k, v) {
        if (!json_is_number(v)) continue;
        fprintf(f, "<tr><td>");
        esc(f, k);
        fprintf(f, "</td><td class=\"num\">");
        value(f, k, v);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table></div>\n");
}

static void page(FILE *f, const json_t *doc)
{
    const json_t *m = get(doc, "metrics"), *ev = get(doc, "evaluation");
    const char *id = mlops_jsonreply_str(doc, "job", "?");
    fprintf(f, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    esc(f, id);
    fprintf(f, " report - mlops</title><style>%s</style></head><body><main>\n<h1>", CSS);
    esc(f, id);
    fprintf(f, " &middot; ");
    esc(f, mlops_jsonreply_str(doc, "name", ""));
    fprintf(f, "</h1><div class=\"sub\">state <b data-field=\"state\">");
    esc(f, mlops_jsonreply_str(doc, "state", "?"));
    fprintf(f, "</b> &middot; submitted ");
    esc(f, mlops_jsonreply_str(doc, "submitted", "?"));
    fprintf(f, " &middot; %.2f s", mlops_jsonreply_num(doc, "seconds", 0));
    const char *model = mlops_jsonreply_str(doc, "model", NULL);
    if (model) {
        fprintf(f, " &middot; model ");
        esc(f, model);
    }
    fprintf(f, "</div>\n");
    const char *error = mlops_jsonreply_str(doc, "error", NULL);
    if (error) {
        fprintf(f, "<div class=\"card\"><h2>Failure reason</h2><div class=\"error\">");
        esc(f, error);
        fprintf(f, "</div></div>\n");
    }
    headline(f, m);
    if (!json_array_size(get(m, "train_loss")) && !ev) {
        fprintf(f, "<div class=\"card\"><p class=\"muted\">No train or evaluate stage ran in this "
                   "job: no loss, ROC or calibration curve and no confusion matrix.</p></div>\n");
        goto rest;
    }
    fprintf(f, "<div class=\"grid\">\n");
    loss_card(f, m);
    const json_t *roc = get(ev, "roc"), *cal = get(ev, "calibration");
    char title[96] = "ROC curve";
    if (json_is_number(get(m, "auc")))
        snprintf(title, sizeof title, "ROC curve (AUC %.4f)", json_number_value(get(m, "auc")));
    curve_card(f, "roc", title, get(roc, "fpr"), get(roc, "tpr"), "false positive rate",
               "true positive rate",
               "No ROC curve: it needs an evaluate stage with two classes and probabilities.");
    curve_card(
        f, "calibration", "Calibration curve", get(cal, "prob_pred"), get(cal, "prob_true"),
        "mean predicted probability", "fraction of positives",
        "No calibration curve: it needs an evaluate stage with two classes and probabilities.");
    confusion_card(f, ev);
    fprintf(f, "</div>\n");
rest:
    knn_card(f, m);
    stages_card(f, doc);
    metrics_card(f, m);
    fprintf(f, "<p class=\"muted\">Made by <code>mlopsctl report</code> from the job's "
               "<code>result -o json</code>.</p></main></body></html>\n");
}

int cmd_report(ctl_ctx *ctx, const ctl_args *a)
{
    const char *outpath = ctl_arg(a, "output");
    json_t *doc;
    int code = ctl_query(ctx, "result", a->pos[0], NULL, 0, &doc, NULL);
    if (code) return code;
    char tmp[4200];
    FILE *f = stdout;
    if (outpath) {
        snprintf(tmp, sizeof tmp, "%s.tmp%d", outpath, (int)getpid());
        f = fopen(tmp, "w");
        if (!f) {
            ctl_errorf("cannot write %s: %s", tmp, strerror(errno));
            json_decref(doc);
            return CTL_EXIT_FAILED;
        }
    }
    page(f, doc);
    json_decref(doc);
    int bad = ferror(f);
    if (outpath) {
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, outpath) != 0) {
            ctl_errorf("cannot write %s: %s", outpath, strerror(errno));
            unlink(tmp);
            return CTL_EXIT_FAILED;
        }
    } else if (bad || fflush(stdout) != 0) {
        ctl_errorf("cannot write standard output");
        return CTL_EXIT_FAILED;
    }
    return CTL_EXIT_OK;
}
