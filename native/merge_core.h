/* Crossbar k-way merge, cut at a watermark: the C core of native/merge.pyx.
 *
 * Specification: dsqlbench/kernels/merge.py (merge_until). Output is the flat position
 * of every entry with ts <= watermark, ordered by (ts, journal index, position).
 *
 * Method: a loser tree (tournament) over the k segment heads, padded to K, a power of
 * two. A head is one unsigned key ordering by (ts, tiebreak), so "less" is a single
 * branch-free compare and the journal-index tie rule is part of the key. The key is
 * 64 bits, (ts - base) << shift | tiebreak, when the span of timestamps allows (it
 * always does for simulated nanoseconds), else 128 bits with the full ts.
 *
 * - Random interleaving: each output replays one leaf-to-root path, log2 K branch-free
 *   compare-and-swaps. That chain is latency bound, so large inputs are split at a
 *   timestamp into MERGE_CHAINS value ranges merged *interleaved* in one loop:
 *   independent chains the CPU overlaps. (Every entry below a split precedes every
 *   entry at or above it, so the outputs simply sit one after the other.)
 * - Bursty interleaving: once one leaf has won MERGE_GALLOP_AFTER times in a row, the
 *   runner-up (the best loser on the winner's path) bounds its run; an exponential
 *   search finds the run's end and the positions, being consecutive, are written as an
 *   iota with no per-entry comparison.
 *
 * No allocation (scratch comes from the caller), no global state, no clock.
 */
#ifndef DSQLBENCH_MERGE_CORE_H
#define DSQLBENCH_MERGE_CORE_H

#include <stdint.h>

#define MERGE_GALLOP_AFTER 6
#define MERGE_CHAINS 2          /* independent merges interleaved in one loop */
#define MERGE_SPLIT_MIN 8192    /* below this, one chain: the split search would not pay */
#define MERGE_SPLIT_PER_LEAF 512 /* ... nor below this many entries per journal */

typedef unsigned __int128 merge_u128;

/* One merge over a sub-range [pos[j], end[j]) of every segment. */
typedef struct {
    uint64_t K;         /* leaves, a power of two >= k */
    int64_t *pos;       /* K: next entry to emit per leaf */
    int64_t *end;       /* K: one past the last entry of this merge per leaf */
    int64_t base;       /* 64-bit keys: smallest ts of this merge */
    unsigned shift;     /* 64-bit keys: bits of tiebreak, log2(2K) */
    int64_t *out;       /* where this merge writes */
    int64_t n, total;   /* written so far, to write */
    uint64_t last_leaf, streak;
} mtree;

/* One past the last index in ts[lo:hi] with ts <= limit (ts[lo:hi] sorted). */
static inline int64_t merge_upper_bound(const int64_t *ts, int64_t lo, int64_t hi, int64_t limit)
{
    while (lo < hi) {
        int64_t mid = lo + ((hi - lo) >> 1);
        if (ts[mid] <= limit) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* First index in ts[lo:hi] with ts >= limit (ts[lo:hi] sorted). */
static inline int64_t merge_lower_bound(const int64_t *ts, int64_t lo, int64_t hi, int64_t limit)
{
    while (lo < hi) {
        int64_t mid = lo + ((hi - lo) >> 1);
        if (ts[mid] < limit) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* First index in [lo, hi) with ts > limit, galloping from lo: O(log run). */
static inline int64_t merge_gallop(const int64_t *ts, int64_t lo, int64_t hi, int64_t limit)
{
    int64_t step = 1, base = lo;
    while (base + step < hi && ts[base + step] <= limit) {
        base += step;
        step <<= 1;
    }
    int64_t top = base + step < hi ? base + step : hi;
    return merge_upper_bound(ts, base, top, limit);
}

static inline int64_t merge_fill(int64_t *out, int64_t n, int64_t from, int64_t to)
{
    for (int64_t p = from; p < to; p++) out[n++] = p;
    return n;
}

/* ---- the two key widths ---- */
#define MK_T uint64_t
#define MK_NAME(name) merge64_##name
#define MK_KEY(m, ts, tb) ((((uint64_t)(ts) - (uint64_t)(m)->base) << (m)->shift) | (uint64_t)(tb))
#define MK_SENTINEL(m, tb) ((~(uint64_t)0 << (m)->shift) | (uint64_t)(tb))
#define MK_TS(m, key) ((int64_t)(((key) >> (m)->shift) + (uint64_t)(m)->base))
#include "merge_impl.h"

/* Flipping the sign bit maps int64 order onto unsigned order. */
#define MK_T merge_u128
#define MK_NAME(name) merge128_##name
#define MK_KEY(m, ts, tb) (((merge_u128)((uint64_t)(ts) ^ 0x8000000000000000ULL) << 64) | (merge_u128)(tb))
#define MK_SENTINEL(m, tb) (((merge_u128)~(uint64_t)0 << 64) | (merge_u128)(tb))
#define MK_TS(m, key) ((int64_t)((uint64_t)((key) >> 64) ^ 0x8000000000000000ULL))
#include "merge_impl.h"

/* Count of entries with ts < v over the sub-ranges [lo[j], hi[j]). */
static int64_t merge_count_below(const int64_t *ts, const int64_t *lo, const int64_t *hi, int64_t k, int64_t v)
{
    int64_t count = 0;
    for (int64_t j = 0; j < k; j++) count += merge_lower_bound(ts, lo[j], hi[j], v) - lo[j];
    return count;
}

/* A split timestamp with about target of the n entries below it (bisection on value,
 * stopping within n / 16 of the target). Any split is correct; balanced ones overlap
 * the chains best. */
static int64_t merge_split_ts(const int64_t *ts, const int64_t *lo, const int64_t *hi, int64_t k,
                              int64_t n, int64_t target)
{
    int64_t low = INT64_MAX, high = INT64_MIN;
    for (int64_t j = 0; j < k; j++) {
        if (hi[j] > lo[j]) {
            low = ts[lo[j]] < low ? ts[lo[j]] : low;
            high = ts[hi[j] - 1] > high ? ts[hi[j] - 1] : high;
        }
    }
    while (low < high) {  /* invariant: the best split lies in [low, high] */
        int64_t mid = low + (int64_t)(((uint64_t)high - (uint64_t)low) >> 1) + 1;
        int64_t below = merge_count_below(ts, lo, hi, k, mid);
        if ((below > target ? below - target : target - below) * 16 <= n) return mid;
        if (below < target) low = mid; else high = mid - 1;
    }
    return low;
}

/* Set up one merge over [lo[j], hi[j]); returns whether 64-bit keys can hold it. */
static int merge_setup(mtree *m, const int64_t *ts, const int64_t *lo, const int64_t *hi, int64_t k,
                       uint64_t K, int64_t *pos, int64_t *end, int64_t *out)
{
    int64_t low = INT64_MAX, high = INT64_MIN, total = 0;
    m->K = K; m->pos = pos; m->end = end; m->out = out;
    m->n = 0; m->last_leaf = K; m->streak = 0;
    m->shift = 1;
    while ((1ULL << m->shift) < 2 * K) m->shift++;
    for (uint64_t j = 0; j < K; j++) {
        pos[j] = (int64_t)j < k ? lo[j] : 0;
        end[j] = (int64_t)j < k ? hi[j] : 0;  /* padding leaves are empty */
        total += end[j] - pos[j];
        if (end[j] > pos[j]) {
            low = ts[pos[j]] < low ? ts[pos[j]] : low;
            high = ts[end[j] - 1] > high ? ts[end[j] - 1] : high;
        }
    }
    m->total = total;
    m->base = total ? low : 0;
    if (!total) return 1;
    uint64_t span = (uint64_t)high - (uint64_t)low;
    /* The top value of the ts field is reserved for the sentinel. */
    return span < (~(uint64_t)0 >> m->shift);
}

/* Scratch the merge needs: int64 entries and 128-bit keys, for k journals. */
static inline uint64_t merge_leaves(int64_t k)
{
    uint64_t K = 1;
    while (K < (uint64_t)k) K <<= 1;
    return K;
}
static inline int64_t merge_scratch_int64(int64_t k) { return k * MERGE_CHAINS + 2 * (int64_t)merge_leaves(k) * MERGE_CHAINS; }
static inline int64_t merge_scratch_keys(int64_t k) { return 2 * (int64_t)merge_leaves(k) * (MERGE_CHAINS + 1); }

/* The merge; returns n written to out. scratch sizes: merge_scratch_int64 and
 * merge_scratch_keys (16-byte aligned). */
static int64_t merge_until_core(const int64_t *ts, const int64_t *offsets, int64_t k, int64_t watermark,
                                int64_t *out, int64_t *scratch, merge_u128 *keys)
{
    uint64_t K = merge_leaves(k);
    int64_t *ends = scratch, total = 0, live = 0, only = -1;
    for (int64_t j = 0; j < k; j++) {
        ends[j] = merge_upper_bound(ts, offsets[j], offsets[j + 1], watermark);
        total += ends[j] - offsets[j];
        if (ends[j] > offsets[j]) { live++; only = j; }
    }
    if (live == 0) return 0;
    if (live == 1) return merge_fill(out, 0, offsets[only], ends[only]);

    /* Chain c merges [bounds[c][j], bounds[c+1][j]) of every journal: the entries
     * between split c-1 and split c. Small inputs get one chain. */
    int count = total >= MERGE_SPLIT_MIN && total >= MERGE_SPLIT_PER_LEAF * k ? MERGE_CHAINS : 1;
    const int64_t *bounds[MERGE_CHAINS + 1];
    bounds[0] = offsets;
    bounds[count] = ends;
    for (int c = 1; c < count; c++) {
        const int64_t *from = bounds[c - 1];
        int64_t before = 0;  /* entries of the earlier chains */
        for (int64_t j = 0; j < k; j++) before += from[j] - offsets[j];
        int64_t split = merge_split_ts(ts, from, ends, k, total - before, total * c / count - before);
        int64_t *cut = scratch + k * c;
        for (int64_t j = 0; j < k; j++) cut[j] = merge_lower_bound(ts, from[j], ends[j], split);
        bounds[c] = cut;
    }
    mtree chains[MERGE_CHAINS];
    int64_t *pos_end = scratch + k * MERGE_CHAINS, written = 0;
    int fits = 1;
    for (int c = 0; c < count; c++) {
        fits &= merge_setup(&chains[c], ts, bounds[c], bounds[c + 1], k, K, pos_end + 2 * K * c,
                            pos_end + 2 * K * c + K, out + written);
        written += chains[c].total;
    }
    if (fits) merge64_run_chains(chains, count, ts, (uint64_t *)keys);
    else merge128_run_chains(chains, count, ts, keys);
    int64_t n = 0;
    for (int c = 0; c < count; c++) n += chains[c].n;
    return n;
}

#endif
