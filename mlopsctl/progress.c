/* progress.c: see progress.h. Plain mode remembers the last state seen
 * for the job and each stage (by position) and prints only changes; tty
 * mode remembers how many lines it drew so it can move back up over
 * them. */
#include "progress.h"
#include <stdlib.h>
#include <string.h>

#define MAX_STAGES 64
#define BAR_WIDTH 30

struct ctl_progress {
    FILE *out;
    int tty;
    int drawn; /* lines drawn last time (tty) */
    char job_state[32];
    char stage_state[MAX_STAGES][32];
    size_t nstages;
};

ctl_progress *ctl_progress_new(FILE *out, int tty)
{
    ctl_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->out = out;
    p->tty = tty;
    return p;
}

void ctl_progress_destroy(ctl_progress **pp)
{
    if (!pp || !*pp) return;
    free(*pp);
    *pp = NULL;
}

static void copy_state(char dst[32], const char *src) { snprintf(dst, 32, "%s", src); }

static void draw_tty(ctl_progress *p, const json_t *st)
{
    const json_t *stages = json_object_get(st, "stages");
    size_t n = json_array_size(stages), namew = 5;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(mlops_jsonreply_str(json_array_get(stages, i), "name", ""));
        if (k > namew) namew = k;
    }
    if (namew > 24) namew = 24;
    if (p->drawn) fprintf(p->out, "\033[%dA", p->drawn); /* back to our first line */
    int lines = 0;
    const json_t *secs = json_object_get(st, "seconds");
    fprintf(p->out, "\r\033[K%s %s  %s", mlops_jsonreply_str(st, "job", "?"),
            mlops_jsonreply_str(st, "name", ""), mlops_jsonreply_str(st, "state", "?"));
    if (json_is_number(secs)) fprintf(p->out, "  %.1fs", json_number_value(secs));
    fputc('\n', p->out);
    lines++;
    for (size_t i = 0; i < n && i < MAX_STAGES; i++) {
        const json_t *s = json_array_get(stages, i);
        double total = mlops_jsonreply_num(s, "tasks_total", 0),
               done = mlops_jsonreply_num(s, "tasks_done", 0);
        int fill = total > 0 ? (int)(BAR_WIDTH * (done / total)) : 0;
        if (fill < 0) fill = 0;
        if (fill > BAR_WIDTH) fill = BAR_WIDTH;
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '-', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = 0;
        fprintf(p->out, "\r\033[K  %-*.*s [%s] %5.0f/%-5.0f %7.2fs  %s\n", (int)namew, (int)namew,
                mlops_jsonreply_str(s, "name", "?"), bar, done, total,
                mlops_jsonreply_num(s, "seconds", 0), mlops_jsonreply_str(s, "state", "?"));
        lines++;
    }
    /* if the document has fewer lines than last time, clear the rest */
    for (int extra = lines; extra < p->drawn; extra++) fputs("\r\033[K\n", p->out);
    if (p->drawn > lines) fprintf(p->out, "\033[%dA", p->drawn - lines);
    p->drawn = lines;
    fflush(p->out);
}

static int job_terminal(const char *state)
{
    return strcmp(state, "queued") && strcmp(state, "running");
}

static void plain_job_line(ctl_progress *p, const json_t *st)
{
    const char *job = mlops_jsonreply_str(st, "job", "?"),
               *state = mlops_jsonreply_str(st, "state", "?");
    if (!strcmp(p->job_state, state)) return;
    const json_t *secs = json_object_get(st, "seconds");
    if (json_is_number(secs) && job_terminal(state))
        fprintf(p->out, "%s %s in %.2fs\n", job, state, json_number_value(secs));
    else
        fprintf(p->out, "%s %s\n", job, state);
    copy_state(p->job_state, state);
}

static void draw_plain(ctl_progress *p, const json_t *st)
{
    const char *job = mlops_jsonreply_str(st, "job", "?");
    const json_t *stages = json_object_get(st, "stages");
    size_t n = json_array_size(stages);
    if (n > MAX_STAGES) n = MAX_STAGES;
    /* job line first while it runs, last once it has ended, so the
     * output reads in time order */
    if (!job_terminal(mlops_jsonreply_str(st, "state", "?"))) plain_job_line(p, st);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(stages, i);
        const char *ss = mlops_jsonreply_str(s, "state", "?");
        if (i < p->nstages && !strcmp(p->stage_state[i], ss)) continue;
        if (i >= p->nstages && !strcmp(ss, "pending")) {
            copy_state(p->stage_state[i], ss); /* nothing worth a line yet */
            continue;
        }
        fprintf(p->out, "%s stage %s %s %.0f/%.0f tasks %.2fs\n", job,
                mlops_jsonreply_str(s, "name", "?"), ss, mlops_jsonreply_num(s, "tasks_done", 0),
                mlops_jsonreply_num(s, "tasks_total", 0), mlops_jsonreply_num(s, "seconds", 0));
        copy_state(p->stage_state[i], ss);
    }
    if (n > p->nstages) p->nstages = n;
    plain_job_line(p, st);
    fflush(p->out);
}

void ctl_progress_update(ctl_progress *p, const json_t *status)
{
    if (p->tty) draw_tty(p, status);
    else draw_plain(p, status);
}
