/* join.c: the hash join of join.h. Keys become canonical byte strings
 * (a tag, then the value: 'N' missing, 'n' + the double's 8 bytes, 's' +
 * the text), so one open-addressing table of byte strings serves both
 * the numeric and the text comparison. Each distinct key holds the
 * first and last of its right rows, chained in table order by next[]. */
#include "join.h"
#include "csv.h"
#include "err.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key of up to INLINE bytes (most ids) sits in its slot, so a probe
 * touches one cache line; a longer one lives in keys[]. */
#define INLINE 24
typedef struct {
    uint64_t hash;
    uint32_t klen, used;
    size_t head, tail; /* right rows with this key, chained by next[] */
    union {
        char inl[INLINE];
        size_t koff; /* klen > INLINE: the canonical key in keys[] */
    } k;
} slot_t;

struct mlk_join_table {
    mlk_frame *right; /* the appended columns of every right row, in order */
    int keys_numeric;
    slot_t *slots;
    size_t nslots;
    size_t *next; /* per right row: the next row with its key, or SIZE_MAX */
    char *keys;
    size_t keys_len, keys_cap;
};

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    /* FNV's low bits cluster for keys that differ in their last bytes
     * (u000123, u000124, ...): mix before the table masks them */
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h;
}

/* the canonical key of row r of column c into buf (at least 9 bytes +
 * the text); *is_num: the value is a present number */
static size_t canon(const mlk_col *c, size_t r, int numeric, char **buf, size_t *cap, int *is_num,
                    int *present)
{
    double v = NAN;
    const char *s = NULL;
    size_t len = 0;
    *is_num = 0;
    *present = 1;
    if (c->type == MLK_F64) {
        v = c->f64[r];
        if (isnan(v)) *present = 0;
        else *is_num = 1;
    } else if (c->missing[r]) {
        *present = 0;
    } else {
        s = mlk_str_at(c, r, &len);
        *is_num = mlk_csv_to_double(s, len, &v) == 0;
    }
    if (*cap < len + 9) {
        size_t nc = (len + 9) * 2;
        char *b = realloc(*buf, nc);
        if (!b) return SIZE_MAX;
        *buf = b;
        *cap = nc;
    }
    if (!*present) {
        (*buf)[0] = 'N';
        return 1;
    }
    if (*is_num && (numeric || c->type == MLK_F64)) {
        if (v == 0) v = 0; /* -0.0 == 0.0 */
        (*buf)[0] = 'n';
        memcpy(*buf + 1, &v, 8);
        return 9;
    }
    (*buf)[0] = 's';
    if (len) memcpy(*buf + 1, s, len);
    return len + 1;
}

int mlk_join_keys_numeric(const mlk_col *c, size_t nrows)
{
    if (c->type == MLK_F64) return 1;
    for (size_t r = 0; r < nrows; r++) {
        if (c->missing[r]) continue;
        size_t len;
        double v;
        const char *s = mlk_str_at(c, r, &len);
        if (mlk_csv_to_double(s, len, &v) != 0) return 0;
    }
    return 1;
}

static slot_t *find(const mlk_join_table *t, const char *k, size_t n, uint64_t h)
{
    size_t mask = t->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        slot_t *s = &t->slots[i];
        if (!s->used) return s;
        if (s->hash == h && s->klen == n &&
            !memcmp(n <= INLINE ? s->k.inl : t->keys + s->k.koff, k, n))
            return s;
    }
}

void mlk_join_table_destroy(mlk_join_table **pt)
{
    if (!pt || !*pt) return;
    mlk_join_table *t = *pt;
    mlk_frame_destroy(&t->right);
    free(t->slots);
    free(t->next);
    free(t->keys);
    free(t);
    *pt = NULL;
}

size_t mlk_join_table_rows(const mlk_join_table *t) { return t && t->right ? t->right->nrows : 0; }

/* copy row r of src's columns [from..) to the end of dst's columns [at..) */
static int copy_row(mlk_frame *dst, size_t at, size_t row, const mlk_frame *src, size_t from,
                    size_t r)
{
    for (size_t c = from; c < src->ncols; c++) {
        const mlk_col *sc = &src->cols[c];
        size_t dc = at + c - from;
        if (sc->type == MLK_F64) {
            dst->cols[dc].f64[row] = r == SIZE_MAX ? NAN : sc->f64[r];
            continue;
        }
        size_t len = 0;
        const char *s = r == SIZE_MAX ? "" : mlk_str_at(sc, r, &len);
        int rc = mlk_frame_str_push(dst, dc, row, s, len, r == SIZE_MAX ? 1 : sc->missing[r]);
        if (rc) return rc;
    }
    return 0;
}

int mlk_join_table_new(const mlk_frame *const *shards, size_t nshards, int keys_numeric,
                       int many_to_one, mlk_join_table **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!nshards || !shards[0] || shards[0]->ncols < 1 || shards[0]->cols[0].type != MLK_STR)
        return mlops_seterr(err, errlen, MLOPS_EPARSE, "join: the right table has no key column");
    const mlk_frame *f0 = shards[0];
    size_t total = 0;
    for (size_t i = 0; i < nshards; i++) {
        const mlk_frame *f = shards[i];
        int same = f && f->ncols == f0->ncols;
        for (size_t c = 0; same && c < f->ncols; c++)
            same = f->cols[c].type == f0->cols[c].type && !strcmp(f->cols[c].name, f0->cols[c].name);
        if (!same)
            return mlops_seterr(err, errlen, MLOPS_EPARSE,
                                "join: shard %zu of the right table has other columns", i);
        total += f->nrows;
    }
    mlk_join_table *t = calloc(1, sizeof *t);
    if (!t) return MLOPS_ENOMEM;
    t->keys_numeric = keys_numeric;
    const char *names[256];
    mlk_coltype types[256];
    size_t na = f0->ncols - 1;
    if (na > 256) {
        free(t);
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "join: more than 256 appended columns");
    }
    for (size_t c = 0; c < na; c++) {
        names[c] = f0->cols[c + 1].name;
        types[c] = f0->cols[c + 1].type;
    }
    t->right = mlk_frame_new(na, names, types, total ? total : 1);
    for (t->nslots = 16; t->nslots < total * 2; t->nslots *= 2) {}
    t->slots = calloc(t->nslots, sizeof *t->slots);
    t->next = malloc((total ? total : 1) * sizeof *t->next);
    char *kb = NULL;
    size_t kcap = 0;
    int rc = t->right && t->slots && t->next ? 0 : MLOPS_ENOMEM;
    size_t row = 0;
    for (size_t i = 0; !rc && i < nshards; i++) {
        const mlk_frame *f = shards[i];
        for (size_t r = 0; !rc && r < f->nrows; r++, row++) {
            int isn, present;
            size_t n = canon(&f->cols[0], r, keys_numeric, &kb, &kcap, &isn, &present);
            if (n == SIZE_MAX) {
                rc = MLOPS_ENOMEM;
                break;
            }
            if ((rc = copy_row(t->right, 0, row, f, 1, r)) != 0) break;
            t->right->row_id[row] = (int64_t)row;
            t->right->nrows = row + 1;
            t->next[row] = SIZE_MAX;
            uint64_t h = fnv(kb, n);
            slot_t *s = find(t, kb, n, h);
            if (s->used) {
                if (many_to_one) {
                    size_t len = 0;
                    const char *k = present ? mlk_str_at(&f->cols[0], r, &len) : "NaN";
                    if (!present) len = 3;
                    rc = mlops_seterr(err, errlen, MLOPS_EINVAL,
                                      "key '%.*s' appears more than once", (int)(len > 200 ? 200 : len), k);
                    break;
                }
                t->next[s->tail] = row;
                s->tail = row;
                continue;
            }
            if (n > UINT32_MAX) {
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "join: a key over 4 GiB");
                break;
            }
            *s = (slot_t){.hash = h, .klen = (uint32_t)n, .used = 1, .head = row, .tail = row};
            if (n <= INLINE) {
                memcpy(s->k.inl, kb, n);
                continue;
            }
            if (t->keys_len + n > t->keys_cap) {
                size_t nc = (t->keys_len + n) * 2 + 256;
                char *k = realloc(t->keys, nc);
                if (!k) {
                    s->used = 0;
                    rc = MLOPS_ENOMEM;
                    break;
                }
                t->keys = k;
                t->keys_cap = nc;
            }
            memcpy(t->keys + t->keys_len, kb, n);
            s->k.koff = t->keys_len;
            t->keys_len += n;
        }
    }
    free(kb);
    if (rc) {
        mlk_join_table_destroy(&t);
        return rc;
    }
    *out = t;
    return 0;
}

int mlk_join_apply(const mlk_frame *left, size_t kc, const mlk_join_table *t, int inner,
                   mlk_frame **out, int *left_numeric)
{
    *out = NULL;
    if (kc >= left->ncols) return MLOPS_EINVAL;
    size_t nl = left->ncols, na = t->right->ncols, nc = nl + na;
    const char **names = calloc(nc ? nc : 1, sizeof *names);
    mlk_coltype *types = calloc(nc ? nc : 1, sizeof *types);
    if (!names || !types) {
        free(names);
        free(types);
        return MLOPS_ENOMEM;
    }
    for (size_t c = 0; c < nl; c++) {
        names[c] = left->cols[c].name;
        types[c] = left->cols[c].type;
    }
    for (size_t c = 0; c < na; c++) {
        names[nl + c] = t->right->cols[c].name;
        types[nl + c] = t->right->cols[c].type;
    }
    mlk_frame *f = mlk_frame_new(nc, names, types, left->nrows ? left->nrows : 1);
    free(names);
    free(types);
    if (!f) return MLOPS_ENOMEM;
    char *kb = NULL;
    size_t kcap = 0, row = 0;
    int rc = 0, all_num = 1;
    for (size_t r = 0; !rc && r < left->nrows; r++) {
        int isn, present;
        size_t n = canon(&left->cols[kc], r, t->keys_numeric, &kb, &kcap, &isn, &present);
        if (n == SIZE_MAX) {
            rc = MLOPS_ENOMEM;
            break;
        }
        if (present && !isn) all_num = 0;
        slot_t *s = find(t, kb, n, fnv(kb, n));
        size_t m = s->used ? s->head : SIZE_MAX;
        if (m == SIZE_MAX && inner) continue;
        do {
            if ((rc = mlk_frame_reserve(f, row + 1)) != 0) break;
            if ((rc = copy_row(f, 0, row, left, 0, r)) != 0) break;
            if ((rc = copy_row(f, nl, row, t->right, 0, m)) != 0) break;
            f->row_id[row] = left->row_id[r];
            f->nrows = ++row;
            m = m == SIZE_MAX ? SIZE_MAX : t->next[m];
        } while (m != SIZE_MAX);
    }
    free(kb);
    if (rc) {
        mlk_frame_destroy(&f);
        return rc;
    }
    *left_numeric = all_num;
    *out = f;
    return 0;
}

int mlk_join_partition(const mlk_frame *f, size_t kc, int keys_numeric, uint32_t nparts,
                       uint32_t part, mlk_frame **out)
{
    *out = NULL;
    if (kc >= f->ncols || nparts == 0 || part >= nparts) return MLOPS_EINVAL;
    const char **names = calloc(f->ncols, sizeof *names);
    mlk_coltype *types = calloc(f->ncols, sizeof *types);
    mlk_frame *g = NULL;
    if (names && types) {
        for (size_t c = 0; c < f->ncols; c++) {
            names[c] = f->cols[c].name;
            types[c] = f->cols[c].type;
        }
        g = mlk_frame_new(f->ncols, names, types, 16);
    }
    free(names);
    free(types);
    if (!g) return MLOPS_ENOMEM;
    char *kb = NULL;
    size_t kcap = 0, row = 0;
    int rc = 0;
    for (size_t r = 0; !rc && r < f->nrows; r++) {
        int isn, present;
        size_t n = canon(&f->cols[kc], r, keys_numeric, &kb, &kcap, &isn, &present);
        if (n == SIZE_MAX) {
            rc = MLOPS_ENOMEM;
            break;
        }
        if (fnv(kb, n) % nparts != part) continue;
        if ((rc = mlk_frame_reserve(g, row + 1)) != 0 || (rc = copy_row(g, 0, row, f, 0, r)) != 0)
            break;
        g->row_id[row] = f->row_id[r];
        g->nrows = ++row;
    }
    free(kb);
    if (rc) {
        mlk_frame_destroy(&g);
        return rc;
    }
    *out = g;
    return 0;
}

int mlk_join_gather(const mlk_frame *const *parts, size_t n, mlk_frame **out)
{
    *out = NULL;
    if (n == 0 || !parts[0]) return MLOPS_EINVAL;
    const mlk_frame *f0 = parts[0];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int same = parts[i] && parts[i]->ncols == f0->ncols;
        for (size_t c = 0; same && c < f0->ncols; c++)
            same = parts[i]->cols[c].type == f0->cols[c].type &&
                   !strcmp(parts[i]->cols[c].name, f0->cols[c].name);
        if (!same) return MLOPS_EPARSE;
        total += parts[i]->nrows;
    }
    const char **names = calloc(f0->ncols ? f0->ncols : 1, sizeof *names);
    mlk_coltype *types = calloc(f0->ncols ? f0->ncols : 1, sizeof *types);
    size_t *at = calloc(n, sizeof *at);
    mlk_frame *g = NULL;
    if (names && types && at) {
        for (size_t c = 0; c < f0->ncols; c++) {
            names[c] = f0->cols[c].name;
            types[c] = f0->cols[c].type;
        }
        g = mlk_frame_new(f0->ncols, names, types, total ? total : 1);
    }
    free(names);
    free(types);
    int rc = g ? 0 : MLOPS_ENOMEM;
    /* n is small (the partitions): a linear pick of the lowest row_id;
     * rows that share one (a multiplied left row) sit in one partition,
     * consecutive, and stay so */
    for (size_t row = 0; !rc && row < total; row++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (at[i] < parts[i]->nrows &&
                (best == SIZE_MAX || parts[i]->row_id[at[i]] < parts[best]->row_id[at[best]]))
                best = i;
        if ((rc = copy_row(g, 0, row, parts[best], 0, at[best])) != 0) break;
        g->row_id[row] = parts[best]->row_id[at[best]];
        g->nrows = row + 1;
        at[best]++;
    }
    free(at);
    if (rc) {
        mlk_frame_destroy(&g);
        return rc;
    }
    *out = g;
    return 0;
}
