/* recommend.c: leave-one-out split, sparse cosine user neighbours over
 * an index shard, item scoring, popularity baseline, metrics. See
 * recommend.h. Neighbour search builds an inverted index (item -> shard
 * users) once per call (or once per loaded recommender, mlk_rec_index)
 * and accumulates dot products for one query at a
 * time in a dense per-shard array, then offers every shard user to the
 * query's top-k (one compare each against the k-th similarity). */
#include "recommend.h"
#include "err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mlk_rec_data_destroy(mlk_rec_data **d)
{
    if (!d || !*d)
        return;
    free((*d)->indptr);
    free((*d)->items);
    free((*d)->values);
    free((*d)->norm);
    free((*d)->heldout);
    free((*d)->item_count);
    free(*d);
    *d = NULL;
}

/* The L2 norm of one user's vector: the squares added in item order, so
 * the split and a reloaded artifact (mlk_rec_data_from_csr) give the
 * same bits. */
static double user_norm(const double *v, size_t n)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += v[i] * v[i];
    return sqrt(ss);
}

mlk_rec_data *mlk_rec_split(const int32_t *user, const int32_t *item, size_t n, size_t nusers,
                            size_t nitems, mlk_rec_values values, char *err, size_t errlen)
{
    if ((n && (!user || !item)) || nusers > INT32_MAX || nitems > INT32_MAX ||
        (values != MLK_REC_BINARY && values != MLK_REC_COUNT)) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "recommend: bad arguments");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (user[i] < 0 || (size_t)user[i] >= nusers || item[i] < 0 ||
            (size_t)item[i] >= nitems) {
            mlops_seterr(err, errlen, MLOPS_EINVAL,
                   "recommend: interaction %zu has user %d item %d outside [0, %zu) x [0, %zu)",
                   i, user[i], item[i], nusers, nitems);
            return NULL;
        }
    mlk_rec_data *d = calloc(1, sizeof *d);
    int64_t *last = malloc((nusers ? nusers : 1) * sizeof *last);
    int64_t *fill = NULL;
    int32_t *raw = NULL, *byitem = NULL;
    if (!d || !last)
        goto oom;
    d->nusers = nusers;
    d->nitems = nitems;
    d->indptr = calloc(nusers + 1, sizeof *d->indptr);
    d->norm = calloc(nusers ? nusers : 1, sizeof *d->norm);
    d->heldout = malloc((nusers ? nusers : 1) * sizeof *d->heldout);
    d->item_count = calloc(nitems ? nitems : 1, sizeof *d->item_count);
    if (!d->indptr || !d->norm || !d->heldout || !d->item_count)
        goto oom;
    /* the last interaction of each user, and how many each has */
    for (size_t u = 0; u < nusers; u++) {
        last[u] = -1;
        d->heldout[u] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        last[user[i]] = (int64_t)i;
        d->indptr[user[i] + 1]++;
    }
    for (size_t u = 0; u < nusers; u++)
        if (d->indptr[u + 1] >= 2) {
            d->heldout[u] = item[last[u]];
            d->indptr[u + 1]--;
        } else {
            last[u] = -1; /* nothing held out */
        }
    for (size_t u = 0; u < nusers; u++)
        d->indptr[u + 1] += d->indptr[u];
    /* training items per user (with repeats) in item order, by a
     * counting sort on the dense ids: bucket the pairs by item, then
     * deal each item's users out to their rows in item order. O(n +
     * users + items), where a comparison sort per user was the larger
     * part of the recommend stage's time. */
    size_t ntrain = (size_t)d->indptr[nusers];
    raw = malloc((ntrain ? ntrain : 1) * sizeof *raw);
    fill = malloc(((nusers > nitems ? nusers : nitems) + 1) * sizeof *fill);
    byitem = malloc((ntrain ? ntrain : 1) * sizeof *byitem);
    if (!raw || !fill || !byitem)
        goto oom;
    for (size_t i = 0; i < n; i++)
        if ((int64_t)i != last[user[i]])
            d->item_count[item[i]]++;
    fill[0] = 0;
    for (size_t it = 0; it < nitems; it++)
        fill[it + 1] = fill[it] + d->item_count[it];
    for (size_t i = 0; i < n; i++)
        if ((int64_t)i != last[user[i]])
            byitem[fill[item[i]]++] = user[i];
    memcpy(fill, d->indptr, nusers * sizeof *fill);
    for (size_t it = 0, p = 0; it < nitems; it++)
        for (int64_t c = 0; c < (int64_t)d->item_count[it]; c++, p++)
            raw[fill[byitem[p]]++] = (int32_t)it;
    free(byitem);
    byitem = NULL;
    d->items = malloc((ntrain ? ntrain : 1) * sizeof *d->items);
    d->values = malloc((ntrain ? ntrain : 1) * sizeof *d->values);
    if (!d->items || !d->values)
        goto oom;
    int64_t out = 0;
    for (size_t u = 0; u < nusers; u++) {
        int64_t b = d->indptr[u], e = d->indptr[u + 1];
        d->indptr[u] = out;
        for (int64_t i = b; i < e;) {
            int64_t j = i;
            while (j < e && raw[j] == raw[i])
                j++;
            double v = values == MLK_REC_COUNT ? (double)(j - i) : 1.0;
            d->items[out] = raw[i];
            d->values[out] = v;
            out++;
            i = j;
        }
        d->norm[u] = user_norm(d->values + d->indptr[u], (size_t)(out - d->indptr[u]));
    }
    d->indptr[nusers] = out;
    free(raw);
    free(fill);
    free(last);
    return d;
oom:
    free(byitem);
    free(raw);
    free(fill);
    free(last);
    mlk_rec_data_destroy(&d);
    mlops_seterr(err, errlen, MLOPS_ENOMEM, "recommend: out of memory for %zu interactions", n);
    return NULL;
}

mlk_rec_data *mlk_rec_data_from_csr(size_t nusers, size_t nitems, const int64_t *indptr,
                                    const int32_t *items, const int64_t *item_count, char *err,
                                    size_t errlen)
{
    if (nusers > INT32_MAX || nitems > INT32_MAX || !indptr || indptr[0] != 0 ||
        (nitems && !item_count)) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "recommend: bad arguments");
        return NULL;
    }
    /* items holds indptr[nusers] entries: a range past it (a later
     * offset that goes down) would read beyond them */
    for (size_t u = 0; u < nusers; u++) {
        if (indptr[u + 1] < indptr[u] || indptr[u + 1] > indptr[nusers] ||
            (uint64_t)(indptr[u + 1] - indptr[u]) > nitems) {
            mlops_seterr(err, errlen, MLOPS_EINVAL,
                         "recommend: user %zu's item range [%lld, %lld) is not an increasing "
                         "range within the %lld entries",
                         u, (long long)indptr[u], (long long)indptr[u + 1],
                         (long long)indptr[nusers]);
            return NULL;
        }
        for (int64_t p = indptr[u]; p < indptr[u + 1]; p++)
            if (items[p] < 0 || (size_t)items[p] >= nitems ||
                (p > indptr[u] && items[p] <= items[p - 1])) {
                mlops_seterr(err, errlen, MLOPS_EINVAL,
                             "recommend: user %zu's item %d is out of [0, %zu) or not after the "
                             "one before",
                             u, items[p], nitems);
                return NULL;
            }
    }
    for (size_t i = 0; i < nitems; i++)
        if (item_count[i] < 0) {
            mlops_seterr(err, errlen, MLOPS_EINVAL, "recommend: item %zu has count %lld", i,
                         (long long)item_count[i]);
            return NULL;
        }
    size_t nnz = (size_t)indptr[nusers];
    mlk_rec_data *d = calloc(1, sizeof *d);
    if (!d)
        goto oom;
    d->nusers = nusers;
    d->nitems = nitems;
    d->indptr = malloc((nusers + 1) * sizeof *d->indptr);
    d->items = malloc((nnz ? nnz : 1) * sizeof *d->items);
    d->values = malloc((nnz ? nnz : 1) * sizeof *d->values);
    d->norm = calloc(nusers ? nusers : 1, sizeof *d->norm);
    d->heldout = malloc((nusers ? nusers : 1) * sizeof *d->heldout);
    d->item_count = calloc(nitems ? nitems : 1, sizeof *d->item_count);
    if (!d->indptr || !d->items || !d->values || !d->norm || !d->heldout || !d->item_count)
        goto oom;
    memcpy(d->indptr, indptr, (nusers + 1) * sizeof *d->indptr);
    if (nnz)
        memcpy(d->items, items, nnz * sizeof *d->items);
    if (nitems)
        memcpy(d->item_count, item_count, nitems * sizeof *d->item_count);
    for (size_t p = 0; p < nnz; p++)
        d->values[p] = 1.0;
    for (size_t u = 0; u < nusers; u++) {
        d->heldout[u] = -1;
        d->norm[u] = user_norm(d->values + indptr[u], (size_t)(indptr[u + 1] - indptr[u]));
    }
    return d;
oom:
    mlk_rec_data_destroy(&d);
    mlops_seterr(err, errlen, MLOPS_ENOMEM, "recommend: out of memory for %zu users", nusers);
    return NULL;
}

#define SCAN_GROUP 16 /* shard users tested together against the k-th similarity */

/* The scan's group test in single precision, four users a vector: a
 * count under fb * |v| (fb a float bound 1e-5 relative under the
 * double one) is certainly under the double bound too (the float
 * roundings add up to under 1e-6), so a group it rejects is one the
 * double test rejects; the others take the double path as before,
 * and the lists keep their bits. */
#define FLOAT_MARGIN (1.0f - 1e-5f)
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

struct mlk_rec_index {
    size_t u_begin, u_end;
    int64_t *iptr; /* nitems + 1: item i's shard users are [iptr[i], iptr[i+1]) */
    int32_t *iuser; /* shard-local user */
    /* the same users in 16 bits when the shard has at most 65536: the
     * scan walks this copy, half the bytes (a 2,500-user shard's lists
     * fit in a core's L2, where the 32-bit ones did not) */
    uint16_t *iuser16;
    double *ival;
    int binary; /* every ival is 1: dot products are counts */
};

void mlk_rec_index_destroy(mlk_rec_index **ix)
{
    if (!ix || !*ix)
        return;
    free((*ix)->iptr);
    free((*ix)->iuser);
    free((*ix)->iuser16);
    free((*ix)->ival);
    free(*ix);
    *ix = NULL;
}

mlk_rec_index *mlk_rec_index_new(const mlk_rec_data *d, size_t u_begin, size_t u_end, char *err,
                                 size_t errlen)
{
    if (!d || u_begin > u_end || u_end > d->nusers) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "recommend: bad shard [%zu, %zu) of %zu users",
                     u_begin, u_end, d ? d->nusers : 0);
        return NULL;
    }
    mlk_rec_index *ix = calloc(1, sizeof *ix);
    int64_t sb = d->indptr[u_begin], se = d->indptr[u_end];
    size_t nnz = (size_t)(se - sb);
    int64_t *pos = malloc((d->nitems ? d->nitems : 1) * sizeof *pos);
    if (ix) {
        ix->u_begin = u_begin;
        ix->u_end = u_end;
        ix->iptr = calloc(d->nitems + 1, sizeof *ix->iptr);
        ix->iuser = malloc((nnz ? nnz : 1) * sizeof *ix->iuser);
        ix->ival = malloc((nnz ? nnz : 1) * sizeof *ix->ival);
    }
    if (!ix || !pos || !ix->iptr || !ix->iuser || !ix->ival) {
        free(pos);
        mlk_rec_index_destroy(&ix);
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "recommend: out of memory for a %zu-user shard",
                     u_end - u_begin);
        return NULL;
    }
    for (int64_t p = sb; p < se; p++)
        ix->iptr[d->items[p] + 1]++;
    for (size_t i = 0; i < d->nitems; i++)
        ix->iptr[i + 1] += ix->iptr[i];
    memcpy(pos, ix->iptr, d->nitems * sizeof *pos);
    for (size_t u = u_begin; u < u_end; u++)
        for (int64_t p = d->indptr[u]; p < d->indptr[u + 1]; p++) {
            int64_t at = pos[d->items[p]]++;
            ix->iuser[at] = (int32_t)(u - u_begin);
            ix->ival[at] = d->values[p];
        }
    free(pos);
    ix->binary = 1;
    for (size_t p = 0; p < nnz && ix->binary; p++)
        ix->binary = ix->ival[p] == 1.0;
    if (u_end - u_begin <= 65536 && (ix->iuser16 = malloc((nnz ? nnz : 1) * sizeof *ix->iuser16)))
        for (size_t p = 0; p < nnz; p++)
            ix->iuser16[p] = (uint16_t)ix->iuser[p];
    return ix;
}

/* The neighbour search over ix's shard; with back (disjoint ranges),
 * each query user is also offered to the list of every shard user. */
static int neighbors(const mlk_rec_data *d, const mlk_rec_index *ix, size_t q_begin,
                     size_t q_count, mlk_topk *out, mlk_topk *back, char *err, size_t errlen)
{
    size_t u_begin = ix->u_begin, ns = ix->u_end - ix->u_begin;
    if (ns == 0 || q_count == 0)
        return 0;
    /* a range against itself: each pair once, at its lower user, and
     * offered both ways (the lists are their own back lists), where
     * the one-way scan computed every similarity twice. The similarities
     * are symmetric to the bit and a list's top k does not depend on
     * the order its candidates come in, so the lists are the same. cur:
     * per item, the first of its shard users above the query (the
     * queries go up, so the cursors only move forward) */
    int tri = !back && q_begin == u_begin && q_count == ns;
    int64_t *cur = tri ? malloc((d->nitems ? d->nitems : 1) * sizeof *cur) : NULL;
    if (tri && !cur)
        return mlops_seterr(err, errlen, MLOPS_ENOMEM,
                            "recommend: out of memory for a %zu-user shard", ns);
    if (tri) {
        back = out;
        memcpy(cur, ix->iptr, d->nitems * sizeof *cur);
    }
    double *acc = calloc(ns, sizeof *acc);
    int32_t *cnt = calloc(ns, sizeof *cnt);
    /* back's k-th similarities and their bounds, as thr and below; bfn
     * is bbelow * |v| in float (FLOAT_MARGIN), nf |v| in float */
    double *bthr = back ? malloc(ns * sizeof *bthr) : NULL;
    double *bbelow = back ? malloc(ns * sizeof *bbelow) : NULL;
    float *bfn = back ? malloc(ns * sizeof *bfn) : NULL;
    float *nf = malloc(ns * sizeof *nf);
    if (!acc || !cnt || !nf || (back && (!bthr || !bbelow || !bfn))) {
        free(acc);
        free(cnt);
        free(bthr);
        free(bbelow);
        free(bfn);
        free(nf);
        free(cur);
        return mlops_seterr(err, errlen, MLOPS_ENOMEM,
                            "recommend: out of memory for a %zu-user shard", ns);
    }
    const size_t k = out->k;
    for (size_t s = 0; s < ns; s++)
        nf[s] = (float)d->norm[u_begin + s];
    for (size_t s = 0; back && s < ns; s++) {
        bthr[s] = back->id[s * k + k - 1] >= 0 ? back->sim[s * k + k - 1] : -INFINITY;
        bbelow[s] = bthr[s] > 0 ? bthr[s] * (1.0 - 1e-12) : -INFINITY;
        bfn[s] = bthr[s] > 0 ? (float)(bbelow[s] * d->norm[u_begin + s]) * FLOAT_MARGIN
                             : -INFINITY;
    }
    for (size_t j = 0; j < q_count; j++) {
        size_t u = q_begin + j;
        /* binary vectors (the recommend stage's): the dot products are
         * counts of shared items, added as integers; the double sum of
         * 1 * 1 products is the same integer, so the same bits */
        int counts = ix->binary;
        for (int64_t p = d->indptr[u]; p < d->indptr[u + 1] && counts; p++)
            counts = d->values[p] == 1.0;
        const uint16_t *i16 = counts ? ix->iuser16 : NULL;
        for (int64_t p = d->indptr[u]; p < d->indptr[u + 1]; p++) {
            int32_t it = d->items[p];
            if (i16) {
                /* the next item's list is a jump in memory the hardware
                 * prefetcher does not foresee */
                if (p + 2 < d->indptr[u + 1])
                    __builtin_prefetch(i16 + ix->iptr[d->items[p + 2]]);
                int64_t c = tri ? cur[it] : ix->iptr[it], e = ix->iptr[it + 1];
                if (tri) {
                    while (c < e && (size_t)i16[c] <= j)
                        c++;
                    cur[it] = c;
                }
                const uint16_t *a = i16 + c, *ae = i16 + e;
                for (; a + 4 <= ae; a += 4) {
                    cnt[a[0]]++;
                    cnt[a[1]]++;
                    cnt[a[2]]++;
                    cnt[a[3]]++;
                }
                for (; a < ae; a++)
                    cnt[*a]++;
                continue;
            }
            const int32_t *iu = ix->iuser + ix->iptr[it], *ie = ix->iuser + ix->iptr[it + 1];
            if (tri) {
                int64_t c = cur[it];
                while (c < ix->iptr[it + 1] && ix->iuser[c] <= (int32_t)j)
                    c++;
                cur[it] = c;
                iu = ix->iuser + c;
            }
            if (counts) {
                /* unrolled: the users of one item are distinct, so the
                 * four increments are independent */
                for (; iu + 4 <= ie; iu += 4) {
                    int32_t a = iu[0], b = iu[1], c = iu[2], e = iu[3];
                    cnt[a]++;
                    cnt[b]++;
                    cnt[c]++;
                    cnt[e]++;
                }
                for (; iu < ie; iu++)
                    cnt[*iu]++;
            } else {
                double vu = d->values[p];
                const double *iv = ix->ival + (iu - ix->iuser);
                for (; iu < ie; iu++, iv++)
                    acc[*iu] += vu * *iv;
            }
        }
        double nu = d->norm[u];
        const double *norm = d->norm + u_begin;
        double *lsim = out->sim + j * k;
        int64_t *lid = out->id + j * k;
        /* thr: the k-th similarity once the list is full; below is a
         * bound a hair under it, tested with a multiply: a dot product
         * under below * |u||v| is certainly under thr once divided (the
         * margin, 1e-12 relative, exceeds the roundings), so only the
         * candidates near or above thr pay the division */
        double thr = lid[k - 1] >= 0 ? lsim[k - 1] : -INFINITY;
        double below = thr > 0 ? thr * (1.0 - 1e-12) : -INFINITY;
        float fb = thr > 0 ? (float)(below * nu) * FLOAT_MARGIN : -INFINITY, nuf = (float)nu;
        for (size_t s0 = tri ? j + 1 : 0; s0 < ns; s0 += SCAN_GROUP) {
            size_t s1 = s0 + SCAN_GROUP < ns ? s0 + SCAN_GROUP : ns;
            /* a group none of whose users passes the bound costs a few
             * vector compares (a zero dot product passes only while the
             * bound is -inf, as its similarity 0 may still enter) */
            int any = below == -INFINITY; /* (then -inf * 0 would be NaN) */
            if (!any && counts && s1 - s0 < SCAN_GROUP) {
                any = 1; /* the last, partial group: the exact loop decides */
            } else if (!any && counts) {
                /* the float test of forward and back bounds at once */
                v4i m = {0, 0, 0, 0};
                const v4f fbv = {fb, fb, fb, fb}, nuv = {nuf, nuf, nuf, nuf};
                const v4f ninf = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
                for (size_t g = 0; g < SCAN_GROUP; g += 4) {
                    v4i c;
                    v4f n, b;
                    memcpy(&c, cnt + s0 + g, sizeof c);
                    memcpy(&n, nf + s0 + g, sizeof n);
                    v4f cf = __builtin_convertvector(c, v4f);
                    m |= cf >= fbv * n;
                    if (back) {
                        memcpy(&b, bfn + s0 + g, sizeof b);
                        m |= (b == ninf) | (cf >= b * nuv);
                    }
                }
                if (!(m[0] | m[1] | m[2] | m[3]))
                    continue;
                any = 1;
            } else if (!any) {
                for (size_t s = s0; s < s1; s++)
                    any |= acc[s] >= below * (nu * norm[s]);
            }
            if (back && !any)
                for (size_t s = s0; s < s1; s++) {
                    double a = counts ? (double)cnt[s] : acc[s];
                    any |= bbelow[s] == -INFINITY || a >= bbelow[s] * (nu * norm[s]);
                }
            if (!any)
                continue;
            for (size_t s = s0; s < s1; s++) {
                double a = counts ? (double)cnt[s] : acc[s], sim = 0.0;
                if (a != 0.0) {
                    double pn = nu * norm[s];
                    if (a < below * pn && (!back || a < bbelow[s] * pn))
                        continue;
                    sim = a / pn;
                }
                size_t v = u_begin + s;
                /* a tie with a full list's k-th goes to the lower id:
                 * tested here, as mlk_topk_push would first (similarities
                 * of binary vectors tie often, and the call costs) */
                if (back && sim >= bthr[s] &&
                    !(sim == bthr[s] && (int64_t)u > back->id[s * k + k - 1]) &&
                    mlk_topk_push(back, s, sim, (int64_t)u) && back->id[s * k + k - 1] >= 0) {
                    bthr[s] = back->sim[s * k + k - 1];
                    bbelow[s] = bthr[s] > 0 ? bthr[s] * (1.0 - 1e-12) : -INFINITY;
                    bfn[s] = bthr[s] > 0 ? (float)(bbelow[s] * norm[s]) * FLOAT_MARGIN
                                         : -INFINITY;
                }
                if (v == u || sim < thr || (sim == thr && (int64_t)v > lid[k - 1]))
                    continue;
                if (mlk_topk_push(out, j, sim, (int64_t)v) && lid[k - 1] >= 0) {
                    thr = lsim[k - 1];
                    below = thr > 0 ? thr * (1.0 - 1e-12) : -INFINITY;
                    fb = thr > 0 ? (float)(below * nu) * FLOAT_MARGIN : -INFINITY;
                }
            }
        }
        if (counts)
            memset(cnt, 0, ns * sizeof *cnt);
        else
            memset(acc, 0, ns * sizeof *acc);
    }
    free(acc);
    free(cnt);
    free(bthr);
    free(bbelow);
    free(bfn);
    free(nf);
    free(cur);
    return 0;
}

int mlk_rec_neighbors_in(const mlk_rec_data *d, const mlk_rec_index *ix, size_t q_begin,
                         size_t q_count, mlk_topk *out, char *err, size_t errlen)
{
    if (!d || !ix || !out || out->nq != q_count || q_begin > d->nusers ||
        q_count > d->nusers - q_begin || ix->u_end > d->nusers)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "recommend: bad ranges (queries %zu+%zu, %zu users)", q_begin, q_count,
                            d ? d->nusers : 0);
    return neighbors(d, ix, q_begin, q_count, out, NULL, err, errlen);
}

/* The search of checked ranges: an index of users [u_begin, u_end), the
 * queries' neighbours in it (and, with back, theirs among the queries). */
static int search_range(const mlk_rec_data *d, size_t q_begin, size_t q_count, size_t u_begin,
                        size_t u_end, mlk_topk *out, mlk_topk *back, char *err, size_t errlen)
{
    if (u_end == u_begin || q_count == 0)
        return 0;
    mlk_rec_index *ix = mlk_rec_index_new(d, u_begin, u_end, err, errlen);
    if (!ix)
        return MLOPS_ENOMEM;
    int rc = neighbors(d, ix, q_begin, q_count, out, back, err, errlen);
    mlk_rec_index_destroy(&ix);
    return rc;
}

int mlk_rec_neighbors_both(const mlk_rec_data *d, size_t q_begin, size_t q_count, size_t u_begin,
                           size_t u_end, mlk_topk *out, mlk_topk *back, char *err, size_t errlen)
{
    if (!d || !out || !back || out->nq != q_count || q_begin > d->nusers ||
        q_count > d->nusers - q_begin || u_begin > u_end || u_end > d->nusers ||
        back->nq != u_end - u_begin || back->k != out->k ||
        (q_count && u_end > u_begin && q_begin < u_end && u_begin < q_begin + q_count))
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                            "recommend: bad ranges (queries %zu+%zu, shard [%zu, %zu), %zu users; "
                            "they must not overlap)",
                            q_begin, q_count, u_begin, u_end, d ? d->nusers : 0);
    return search_range(d, q_begin, q_count, u_begin, u_end, out, back, err, errlen);
}

int mlk_rec_neighbors(const mlk_rec_data *d, size_t q_begin, size_t q_count, size_t u_begin,
                      size_t u_end, mlk_topk *out, char *err, size_t errlen)
{
    if (!d || !out || out->nq != q_count || q_begin > d->nusers ||
        q_count > d->nusers - q_begin || u_begin > u_end || u_end > d->nusers)
        return mlops_seterr(err, errlen, MLOPS_EINVAL,
                      "recommend: bad ranges (queries %zu+%zu, shard [%zu, %zu), %zu users)",
                      q_begin, q_count, u_begin, u_end, d ? d->nusers : 0);
    return search_range(d, q_begin, q_count, u_begin, u_end, out, NULL, err, errlen);
}

int mlk_rec_recommend(const mlk_rec_data *d, const mlk_topk *nbrs, size_t q_begin, size_t topn,
                      int32_t *recs, char *err, size_t errlen)
{
    return mlk_rec_recommend_scored(d, nbrs, q_begin, topn, recs, NULL, err, errlen);
}

int mlk_rec_recommend_scored(const mlk_rec_data *d, const mlk_topk *nbrs, size_t q_begin,
                             size_t topn, int32_t *recs, double *scores, char *err, size_t errlen)
{
    if (!d || !nbrs || !recs || topn == 0 || q_begin > d->nusers ||
        nbrs->nq > d->nusers - q_begin)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "recommend: bad arguments");
    double *score = calloc(d->nitems ? d->nitems : 1, sizeof *score);
    /* cand: 1 for a candidate item, 2 for one the user saw (marked per
     * user, then cleared: a lookup where a search of the user's items
     * cost a log) */
    unsigned char *cand = calloc(d->nitems ? d->nitems : 1, 1);
    int32_t *touched = malloc((d->nitems ? d->nitems : 1) * sizeof *touched);
    mlk_topk *best = mlk_topk_new(1, topn);
    int rc = 0;
    if (!score || !cand || !touched || !best) {
        rc = mlops_seterr(err, errlen, MLOPS_ENOMEM, "recommend: out of memory");
        goto done;
    }
    for (size_t j = 0; j < nbrs->nq; j++) {
        size_t u = q_begin + j, nt = 0;
        for (int64_t p = d->indptr[u]; p < d->indptr[u + 1]; p++)
            cand[d->items[p]] = 2;
        for (size_t r = 0; r < nbrs->k; r++) {
            int64_t v = nbrs->id[j * nbrs->k + r];
            if (v < 0)
                break;
            if ((uint64_t)v >= d->nusers) {
                rc = mlops_seterr(err, errlen, MLOPS_EINVAL, "recommend: neighbour %lld is no user",
                            (long long)v);
                goto done;
            }
            double s = nbrs->sim[j * nbrs->k + r];
            for (int64_t p = d->indptr[v]; p < d->indptr[v + 1]; p++) {
                int32_t it = d->items[p];
                if (!cand[it]) {
                    cand[it] = 1;
                    touched[nt++] = it;
                }
                score[it] += s;
            }
        }
        mlk_topk_clear(best);
        /* the full list's last entry, tested here as mlk_topk_push would
         * first: most of the ~700 candidates a user has fall under it */
        const double *bs = best->sim + topn - 1;
        const int64_t *bi = best->id + topn - 1;
        for (size_t t = 0; t < nt; t++) {
            int32_t it = touched[t];
            double sc = score[it];
            if (*bi < 0 || sc > *bs || (sc == *bs && it < *bi))
                mlk_topk_push(best, 0, sc, it);
            score[it] = 0.0;
            cand[it] = 0;
        }
        for (int64_t p = d->indptr[u]; p < d->indptr[u + 1]; p++) {
            score[d->items[p]] = 0.0;
            cand[d->items[p]] = 0;
        }
        for (size_t r = 0; r < topn; r++) {
            recs[j * topn + r] = (int32_t)best->id[r];
            if (scores)
                scores[j * topn + r] = best->id[r] >= 0 ? best->sim[r] : 0.0;
        }
    }
done:
    free(score);
    free(cand);
    free(touched);
    mlk_topk_destroy(&best);
    return rc;
}

int mlk_rec_popular(const mlk_rec_data *d, size_t q_begin, size_t q_count, size_t topn,
                    int32_t *recs, char *err, size_t errlen)
{
    if (!d || !recs || topn == 0 || q_begin > d->nusers || q_count > d->nusers - q_begin)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "recommend: bad arguments");
    /* all items with a count, ranked once */
    int32_t *rank = malloc((d->nitems ? d->nitems : 1) * sizeof *rank);
    unsigned char *mine = calloc(d->nitems ? d->nitems : 1, 1); /* the user's, marked */
    size_t nr = 0;
    int rc = rank && mine ? mlk_rec_popular_rank(d, rank, &nr) : MLOPS_ENOMEM;
    if (rc) {
        free(rank);
        free(mine);
        return mlops_seterr(err, errlen, rc, "recommend: out of memory");
    }
    for (size_t j = 0; j < q_count; j++) {
        size_t u = q_begin + j, got = 0;
        for (int64_t p = d->indptr[u]; p < d->indptr[u + 1]; p++)
            mine[d->items[p]] = 1;
        for (size_t r = 0; r < nr && got < topn; r++) {
            int32_t it = rank[r];
            if (!mine[it])
                recs[j * topn + got++] = it;
        }
        while (got < topn)
            recs[j * topn + got++] = -1;
        for (int64_t p = d->indptr[u]; p < d->indptr[u + 1]; p++)
            mine[d->items[p]] = 0;
    }
    free(rank);
    free(mine);
    return 0;
}

/* (count desc, id asc): the top-k order of knn.h, a total order */
static int popular_cmp(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0] ? -1 : 1) : (x[1] > y[1]) - (x[1] < y[1]);
}

int mlk_rec_popular_rank(const mlk_rec_data *d, int32_t *ids, size_t *n)
{
    *n = 0;
    if (!d || !ids)
        return MLOPS_EINVAL;
    /* a sort of the (count, id) pairs, where pushing every item into one
     * top-k list of all of them took quadratic time */
    int64_t *pair = malloc((d->nitems ? d->nitems : 1) * 2 * sizeof *pair);
    if (!pair)
        return MLOPS_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < d->nitems; i++)
        if (d->item_count[i] > 0) {
            pair[2 * m] = d->item_count[i];
            pair[2 * m + 1] = (int64_t)i;
            m++;
        }
    qsort(pair, m, 2 * sizeof *pair, popular_cmp);
    for (size_t r = 0; r < m; r++)
        ids[r] = (int32_t)pair[2 * r + 1];
    *n = m;
    free(pair);
    return 0;
}

int mlk_rec_evaluate(const int32_t *recs, size_t q_count, size_t topn, const int32_t *heldout,
                     mlk_rec_metrics *m)
{
    if (!m || topn == 0 || (q_count && (!recs || !heldout)))
        return MLOPS_EINVAL;
    memset(m, 0, sizeof *m);
    for (size_t j = 0; j < q_count; j++) {
        if (heldout[j] < 0)
            continue;
        m->nusers++;
        for (size_t r = 0; r < topn; r++)
            if (recs[j * topn + r] == heldout[j]) {
                m->hit += 1.0;
                m->ndcg += 1.0 / log2((double)r + 2.0);
                break;
            }
    }
    if (m->nusers) {
        m->hit /= (double)m->nusers;
        m->ndcg /= (double)m->nusers;
    }
    m->recall = m->hit;
    m->precision = m->hit / (double)topn;
    return 0;
}
