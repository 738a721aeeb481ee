/* One width of the merge, included twice by merge_core.h ("a template in C").
 *
 * Before including, define:
 *   MK_T             the key type (uint64_t or unsigned __int128)
 *   MK_NAME(name)    a prefix for this width's functions
 *   MK_KEY(m, ts, tiebreak)   the key of a live entry (m: the mtree, for base/shift)
 *   MK_SENTINEL(m, tiebreak)  the key of an exhausted leaf: above every live key
 *   MK_TS(m, key)    the ts of a live key
 * A key orders by (ts, tiebreak); tiebreak is the leaf (journal) j for a live head and
 * K + j for an exhausted one, so the leaf is always key & (K - 1).
 */

/* The key of leaf's entry at flat index p, or the leaf's sentinel past its end. */
static inline MK_T MK_NAME(key_at)(const mtree *m, const int64_t *ts, int64_t p, uint64_t leaf)
{
    return p < m->end[leaf] ? MK_KEY(m, ts[p], leaf) : MK_SENTINEL(m, m->K + leaf);
}

/* Replay leaf's new key from its leaf to the root; returns the new winner. The
 * compare-and-swap is branch free because on random input it is a coin toss. */
static inline MK_T MK_NAME(replay)(MK_T *tree, uint64_t leaf, uint64_t K, MK_T key)
{
    for (uint64_t node = (leaf + K) >> 1; node; node >>= 1) {
        MK_T other = tree[node];
        int swap = other < key;
        MK_T low = swap ? other : key;
        tree[node] = swap ? key : other;
        key = low;
    }
    return key;
}

/* The best loser on leaf's path: the runner-up to the current winner. */
static inline MK_T MK_NAME(runner_up)(const MK_T *tree, uint64_t leaf, uint64_t K)
{
    MK_T best = tree[(leaf + K) >> 1];
    for (uint64_t node = (leaf + K) >> 2; node; node >>= 1) best = tree[node] < best ? tree[node] : best;
    return best;
}

/* Emit leaf's whole run of entries that beat the runner-up; leaf is the winner. */
static inline void MK_NAME(gallop_run)(mtree *m, const int64_t *ts, const MK_T *tree, uint64_t leaf)
{
    MK_T rival = MK_NAME(runner_up)(tree, leaf, m->K);
    uint64_t rival_tiebreak = (uint64_t)rival & (2 * m->K - 1);
    int64_t from = m->pos[leaf], stop;
    if (rival_tiebreak >= m->K) {
        stop = m->end[leaf];  /* every other leaf is exhausted */
    } else {
        /* leaf beats the rival while ts < rival_ts, or ts == rival_ts when leaf has
         * the lower journal index. */
        int64_t rival_ts = MK_TS(m, rival);
        if (leaf < rival_tiebreak) {
            stop = merge_gallop(ts, from, m->end[leaf], rival_ts);
        } else {
            stop = rival_ts == INT64_MIN ? from : merge_gallop(ts, from, m->end[leaf], rival_ts - 1);
        }
    }
    m->pos[leaf] = stop;
    m->n = merge_fill(m->out, m->n, from, stop);
}

/* Build the loser tree; returns the first winner. wins is scratch of 2K keys. */
static inline MK_T MK_NAME(build)(mtree *m, const int64_t *ts, MK_T *tree, MK_T *next, MK_T *wins)
{
    uint64_t K = m->K;
    for (uint64_t leaf = 0; leaf < K; leaf++) {
        wins[K + leaf] = MK_NAME(key_at)(m, ts, m->pos[leaf], leaf);
        next[leaf] = MK_NAME(key_at)(m, ts, m->pos[leaf] + 1, leaf);
    }
    for (uint64_t node = K - 1; node >= 1; node--) {
        MK_T a = wins[2 * node], b = wins[2 * node + 1];
        wins[node] = a < b ? a : b;
        tree[node] = a < b ? b : a;
    }
    return wins[1];
}

/* One output step: the winner's head, or its whole run once it keeps winning. next[]
 * holds the key of the entry after each head, computed a step ahead, so the
 * loop-carried chain is winner -> one load -> replay. */
static inline MK_T MK_NAME(step)(mtree *m, const int64_t *ts, MK_T *tree, MK_T *next, MK_T winner)
{
    uint64_t leaf = (uint64_t)winner & (m->K - 1);
    MK_T key;
    /* Branch-free streak count: reset whenever the winning leaf changes. */
    m->streak = (m->streak + 1) & -(uint64_t)(leaf == m->last_leaf);
    m->last_leaf = leaf;
    if (__builtin_expect(m->streak >= MERGE_GALLOP_AFTER, 0)) {
        MK_NAME(gallop_run)(m, ts, tree, leaf);
        m->streak = 0;
        key = MK_NAME(key_at)(m, ts, m->pos[leaf], leaf);
        next[leaf] = MK_NAME(key_at)(m, ts, m->pos[leaf] + 1, leaf);
    } else {
        int64_t p = m->pos[leaf];
        key = next[leaf];
        m->out[m->n++] = p;
        m->pos[leaf] = p + 1;
        next[leaf] = MK_NAME(key_at)(m, ts, p + 2, leaf);
    }
    return MK_NAME(replay)(tree, leaf, m->K, key);
}

/* Run the independent merges of the value ranges interleaved, one step of each in
 * turn, so that the CPU overlaps their dependency chains. The two chains are spelled
 * out (not an array of winners) so that their winners stay in registers. (Four
 * chains measured no faster than two here: the loop then runs out of registers.)
 * scratch: 2K keys per chain (tree, next) and 2K more shared by the builds. */
static void MK_NAME(run_chains)(mtree *m, int count, const int64_t *ts, MK_T *scratch)
{
    uint64_t K = m[0].K;
    MK_T *wins = scratch + 2 * K * MERGE_CHAINS;
    MK_T *tree[MERGE_CHAINS], *next[MERGE_CHAINS], win[MERGE_CHAINS];
    for (int c = 0; c < MERGE_CHAINS; c++) {
        tree[c] = scratch + 2 * K * c;
        next[c] = tree[c] + K;
        win[c] = c < count && m[c].total ? MK_NAME(build)(&m[c], ts, tree[c], next[c], wins) : 0;
    }
    if (count >= 2) {
        MK_T w0 = win[0], w1 = win[1];
        while (m[0].n < m[0].total && m[1].n < m[1].total) {
            w0 = MK_NAME(step)(&m[0], ts, tree[0], next[0], w0);
            w1 = MK_NAME(step)(&m[1], ts, tree[1], next[1], w1);
        }
        win[0] = w0; win[1] = w1;
    }
    for (int c = 0; c < count; c++)
        while (m[c].n < m[c].total) win[c] = MK_NAME(step)(&m[c], ts, tree[c], next[c], win[c]);
}

#undef MK_T
#undef MK_NAME
#undef MK_KEY
#undef MK_SENTINEL
#undef MK_TS
