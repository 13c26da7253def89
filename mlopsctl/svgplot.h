/* svgplot.h: small line and point charts as inline SVG text, for
 * `mlopsctl report` (one self-contained HTML file: no scripts, no
 * fonts or images to fetch). A chart is axes with ticks, optional
 * dashed reference diagonal, and one series; every point carries a
 * <title> with its exact values, so a reader hovering sees the number. */
#ifndef MLOPSCTL_SVGPLOT_H
#define MLOPSCTL_SVGPLOT_H
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *label; /* aria-label of the <svg> */
    const char *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* ymin == ymax: from the data */
    int diagonal;                  /* dashed y = x line (ROC, calibration) */
    int dots;                      /* a circle on each point */
    int integer_x;                 /* x ticks are whole numbers (epochs) */
} ctl_svgplot;

/* Write the chart of the n points (x[i], y[i]) to f. */
void ctl_svgplot_write(FILE *f, const ctl_svgplot *p, const double *x, const double *y, size_t n);

#endif
