/* output.h: how mlopsctl prints things for people and for programs.
 *
 * Tables are docker-style: an upper-case header row, columns padded to
 * the widest cell, three spaces apart. JSON output is either the
 * coordinator's text unchanged or a small object built with jansson
 * and printed by ctl_json_print(). Numbers print as integers when they
 * are integral, else with up to 6 significant digits. */
#ifndef MLOPSCTL_OUTPUT_H
#define MLOPSCTL_OUTPUT_H
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

typedef struct ctl_table ctl_table;

/* A table with `ncols` columns and these header cells (copied). */
ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
void ctl_table_destroy(ctl_table **pt);

/* Append one row of ncols cells (copied; NULL prints as "-"). 0 or MLOPS_ENOMEM. */
int ctl_table_add(ctl_table *t, const char *const *cells);

/* Print header and rows. */
void ctl_table_print(const ctl_table *t, FILE *out);

/* Format a number for people: "42", "0.25", "1.5e-07". */
void ctl_fmt_num(double x, char *buf, size_t len);

/* Format a JSON value for a table cell: strings as they are, numbers
 * via ctl_fmt_num, null as "-", arrays/objects as compact JSON. */
void ctl_fmt_value(const json_t *v, char *buf, size_t len);

/* Print doc as one line of compact JSON, members in the order they were
 * set, then a newline. 0, or MLOPS_EINVAL when jansson cannot encode it
 * (a string that is not UTF-8). */
int ctl_json_print(FILE *out, const json_t *doc);

#endif
