/* strid.c: see strid.h. The strings' copies live in one growing byte
 * arena (offsets, not pointers, so growing it moves nothing that the
 * table holds); the table's slots hold id + 1 (0 = empty) and the
 * string's hash, so a probe compares bytes only when the hashes match. */
#include "strid.h"
#include "hasher.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t id1; /* id + 1; 0: empty */
    uint32_t h;
} slot_t;

struct mlk_strid {
    slot_t *slot;
    size_t mask; /* slots - 1 (a power of two) */
    char *arena;
    size_t used, cap; /* bytes of arena */
    uint64_t *off;    /* count + 1 offsets into arena (each copy ends in NUL) */
    size_t count, ocap;
};

void mlk_strid_destroy(mlk_strid **pm)
{
    if (!pm || !*pm) return;
    free((*pm)->slot);
    free((*pm)->arena);
    free((*pm)->off);
    free(*pm);
    *pm = NULL;
}

mlk_strid *mlk_strid_new(size_t hint)
{
    if (hint > ((size_t)1 << 30)) hint = (size_t)1 << 30;
    size_t n = 16;
    while (n < 2 * hint) n *= 2;
    mlk_strid *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->slot = calloc(n, sizeof *m->slot);
    m->mask = n - 1;
    m->cap = 16 * (hint ? hint : 1);
    m->arena = malloc(m->cap);
    m->ocap = hint + 1;
    m->off = malloc(m->ocap * sizeof *m->off);
    if (!m->slot || !m->arena || !m->off) mlk_strid_destroy(&m);
    else m->off[0] = 0;
    return m;
}

static uint32_t hash_of(const char *s, size_t len) { return (uint32_t)mlk_murmur3_32(s, len, 0); }

/* The slot of s: its own, or the empty one where it would go. */
static size_t probe(const mlk_strid *m, const char *s, size_t len, uint32_t h)
{
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const slot_t *sl = &m->slot[i];
        if (!sl->id1) return i;
        if (sl->h != h) continue;
        size_t id = sl->id1 - 1, n = (size_t)(m->off[id + 1] - m->off[id]) - 1;
        if (n == len && !memcmp(m->arena + m->off[id], s, len)) return i;
    }
}

int64_t mlk_strid_find(const mlk_strid *m, const char *s, size_t len)
{
    if (!m || (len && !s)) return -1;
    size_t i = probe(m, s, len, hash_of(s, len));
    return m->slot[i].id1 ? (int64_t)m->slot[i].id1 - 1 : -1;
}

/* Double the table; 0 or -1 (out of memory, nothing changed). */
static int grow_table(mlk_strid *m)
{
    size_t n = 2 * (m->mask + 1);
    slot_t *t = calloc(n, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (!m->slot[i].id1) continue;
        size_t j = m->slot[i].h & (n - 1);
        while (t[j].id1) j = (j + 1) & (n - 1);
        t[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = t;
    m->mask = n - 1;
    return 0;
}

int64_t mlk_strid_add(mlk_strid *m, const char *s, size_t len)
{
    if (!m || (len && !s) || m->count >= UINT32_MAX - 1) return -1;
    uint32_t h = hash_of(s, len);
    size_t i = probe(m, s, len, h);
    if (m->slot[i].id1) return (int64_t)m->slot[i].id1 - 1;
    if (m->used + len + 1 > m->cap) {
        size_t c = 2 * m->cap + len + 1;
        char *a = realloc(m->arena, c);
        if (!a) return -1;
        m->arena = a;
        m->cap = c;
    }
    if (m->count + 2 > m->ocap) {
        size_t c = 2 * m->ocap;
        uint64_t *o = realloc(m->off, c * sizeof *o);
        if (!o) return -1;
        m->off = o;
        m->ocap = c;
    }
    if (2 * (m->count + 1) > m->mask + 1) {
        if (grow_table(m) != 0) return -1;
        i = probe(m, s, len, h);
    }
    if (len) memcpy(m->arena + m->used, s, len);
    m->arena[m->used + len] = 0;
    m->used += len + 1;
    m->off[m->count + 1] = m->used;
    m->slot[i].id1 = (uint32_t)(m->count + 1);
    m->slot[i].h = h;
    return (int64_t)m->count++;
}

size_t mlk_strid_count(const mlk_strid *m) { return m ? m->count : 0; }

const char *mlk_strid_key(const mlk_strid *m, size_t id)
{
    return m && id < m->count ? m->arena + m->off[id] : NULL;
}

static int is_number(const char *s)
{
    char *end;
    if (!*s) return 0;
    double v = strtod(s, &end);
    return *end == 0 && isfinite(v);
}

static int num_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    double u = strtod(x, NULL), v = strtod(y, NULL);
    return u < v ? -1 : u > v ? 1 : strcmp(x, y);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void mlk_strid_sort_keys(const char **keys, size_t n)
{
    int numeric = 1;
    for (size_t i = 0; i < n && numeric; i++) numeric = is_number(keys[i]);
    if (n > 1) qsort(keys, n, sizeof *keys, numeric ? num_cmp : str_cmp);
}
