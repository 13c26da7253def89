/* svgplot.c: see svgplot.h. Coordinates are printed with one decimal:
 * the picture needs no more, and the exact values are in the titles. */
#include "svgplot.h"
#include <math.h>

#define W 460
#define H 300
#define L 62
#define R 16
#define T 14
#define B 44

static double px(const ctl_svgplot *p, double x)
{
    return L + (W - L - R) * (p->xmax > p->xmin ? (x - p->xmin) / (p->xmax - p->xmin) : 0.5);
}

static double py(double ymin, double ymax, double y)
{
    return T + (H - T - B) * (1 - (ymax > ymin ? (y - ymin) / (ymax - ymin) : 0.5));
}

void ctl_svgplot_write(FILE *f, const ctl_svgplot *p, const double *x, const double *y, size_t n)
{
    double ymin = p->ymin, ymax = p->ymax;
    if (ymin == ymax) {
        ymin = INFINITY;
        ymax = -INFINITY;
        for (size_t i = 0; i < n; i++)
            if (isfinite(y[i])) {
                ymin = fmin(ymin, y[i]);
                ymax = fmax(ymax, y[i]);
            }
        if (!(ymax > ymin)) {
            ymin = isfinite(ymin) ? ymin - 0.5 : 0;
            ymax = ymin + 1;
        }
    }
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\" aria-label=\"%s\">\n", W, H,
            p->label);
    for (int k = 0; k <= 4; k++) { /* y grid and ticks */
        double v = ymin + (ymax - ymin) * k / 4, yy = py(ymin, ymax, v);
        fprintf(f,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eef0f4\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                L, W - R, yy, yy, L - 6, yy + 4, v);
    }
    int nx = 5;
    if (p->integer_x) {
        double span = p->xmax - p->xmin;
        nx = span < 1 ? 1 : span < 10 ? (int)span : 10;
    }
    for (int k = 0; k <= nx; k++) {
        double v = p->xmin + (p->xmax - p->xmin) * k / nx;
        if (p->integer_x) v = round(v);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.4g</text>\n", px(p, v),
                H - B + 16, v);
    }
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#9aa1ae\"/>"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#9aa1ae\"/>\n",
            L, H - B, W - R, H - B, L, T, L, H - B);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", (L + W - R) / 2, H - 6,
            p->xlabel);
    fprintf(f,
            "<text transform=\"translate(14 %d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
            (T + H - B) / 2, p->ylabel);
    if (p->diagonal)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c5cad4\" "
                "stroke-dasharray=\"5 4\"/>\n",
                px(p, p->xmin), py(ymin, ymax, p->xmin), px(p, p->xmax), py(ymin, ymax, p->xmax));
    fprintf(f, "<polyline fill=\"none\" stroke=\"#2f6fdf\" stroke-width=\"2\" points=\"");
    for (size_t i = 0; i < n; i++)
        if (isfinite(y[i])) fprintf(f, "%.1f,%.1f ", px(p, x[i]), py(ymin, ymax, y[i]));
    fprintf(f, "\"/>\n");
    for (size_t i = 0; p->dots && i < n; i++)
        if (isfinite(y[i]))
            fprintf(f,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#2f6fdf\"><title>%s %.17g, "
                    "%s %.17g</title></circle>\n",
                    px(p, x[i]), py(ymin, ymax, y[i]), p->xlabel, x[i], p->ylabel, y[i]);
    fprintf(f, "</svg>\n");
}
