/* alias_watch.c: the coordinator pushes alias moves to the servers that
 * follow an alias (mlops-serve, docs/serving.md).
 *
 * Why a held reply rather than a PUB socket: a follower sends
 * Query{alias-watch, [SINCE]} over its ordinary DEALER, with the same
 * CURVE key and role checks as every other request, and the coordinator
 * keeps the request unanswered until a move with seq > SINCE exists. The
 * move is journalled first and the reply leaves through the outbox after
 * that commit (as every reply does), so a follower never sees a move a
 * restarted coordinator would forget. A watch is answered with no moves
 * after WATCH_HOLD_MS so a follower can tell a live coordinator from a
 * silent one; it then watches again from the `next` it was given.
 *
 * SINCE "" answers at once with no moves and the current `next`: the
 * follower asks that before it fetches the version, so a move between
 * the two is not missed. A follower holds at most one watch (a new one
 * from the same identity replaces it), and at most WATCH_MAX are held. */
#include "coord_internal.h"
#include "jsondump.h"
#include "log.h"
#include <stdlib.h>
#include <string.h>

#define WATCH_HOLD_MS 20000
#define WATCH_MAX 1024

typedef struct {
    zframe_t *id;
    uint64_t seq;  /* of the request: the reply's */
    uint64_t since;
    int64_t deadline; /* mono ms */
} watch_t;

struct coord_watch {
    watch_t w[WATCH_MAX];
    size_t n;
};

static void answer(coord_t *c, watch_t *w, int empty)
{
    uint64_t next = 0;
    json_t *doc = coord_registry_moves(c, empty ? UINT64_MAX : w->since, &next);
    char *text = doc ? mlops_json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text) coord_reply_json(c, w->id, w->seq, text);
    else coord_reply_error(c, w->id, w->seq, MLOPS__ERROR_CODE__INTERNAL, "out of memory");
    free(text);
    json_decref(doc);
}

static void drop(struct coord_watch *cw, size_t i)
{
    zframe_destroy(&cw->w[i].id);
    cw->w[i] = cw->w[--cw->n];
}

void coord_watch_add(coord_t *c, zframe_t *id, uint64_t seq, const Mlops__Query *q)
{
    const char *a = q->n_args && q->args[0] ? q->args[0] : "";
    char *end = NULL;
    unsigned long long since = strtoull(a, &end, 10);
    watch_t now = {id, seq, *a ? since : UINT64_MAX, 0};
    if (*a && *end) {
        coord_reply_error(c, id, seq, MLOPS__ERROR_CODE__BAD_REQUEST,
                          "alias-watch: '%s' is not a sequence number", a);
        return;
    }
    uint64_t next = 0;
    json_decref(coord_registry_moves(c, UINT64_MAX, &next));
    if (!*a || since < next) { /* nothing to wait for, or moves already there */
        answer(c, &now, !*a);
        return;
    }
    if (!c->watch && !(c->watch = calloc(1, sizeof *c->watch))) {
        coord_reply_error(c, id, seq, MLOPS__ERROR_CODE__INTERNAL, "out of memory");
        return;
    }
    struct coord_watch *cw = c->watch;
    for (size_t i = 0; i < cw->n; i++)
        if (zframe_eq(cw->w[i].id, id)) {
            drop(cw, i);
            break;
        }
    if (cw->n == WATCH_MAX) {
        coord_reply_error(c, id, seq, MLOPS__ERROR_CODE__DENIED,
                          "alias-watch: %d followers are waiting already", WATCH_MAX);
        return;
    }
    watch_t *w = &cw->w[cw->n];
    *w = now;
    w->id = zframe_dup(id);
    w->deadline = zclock_mono() + WATCH_HOLD_MS;
    if (w->id) cw->n++;
}

void coord_watch_notify(coord_t *c)
{
    struct coord_watch *cw = c->watch;
    for (size_t i = 0; cw && i < cw->n;) {
        answer(c, &cw->w[i], 0);
        drop(cw, i);
    }
}

void coord_watch_tick(coord_t *c)
{
    struct coord_watch *cw = c->watch;
    int64_t now = zclock_mono();
    for (size_t i = 0; cw && i < cw->n;) {
        if (cw->w[i].deadline > now) {
            i++;
            continue;
        }
        answer(c, &cw->w[i], 1);
        drop(cw, i);
    }
}

void coord_watch_destroy(coord_t *c)
{
    struct coord_watch *cw = c->watch;
    while (cw && cw->n) drop(cw, 0);
    free(cw);
    c->watch = NULL;
}
