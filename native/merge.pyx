# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Crossbar k-way merge cut at a watermark: the compiled twin (Cython over C).

Same name and signature as the reference ``dsqlbench.kernels.merge.merge_until``, which
is the specification. The algorithm (a branch-free loser tree, several interleaved
chains for random input, galloping for bursts) lives in ``merge_core.h``; this module checks
shapes and owns the O(k) scratch. The input must satisfy the reference's preconditions
(each segment sorted); sortedness is not re-checked here because that would cost a
full extra pass over the input.
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free


cdef extern from "merge_core.h":
    ctypedef struct merge_u128:
        pass
    int64_t merge_scratch_int64(int64_t k)
    int64_t merge_scratch_keys(int64_t k)
    int64_t merge_until_core(const int64_t *ts, const int64_t *offsets, int64_t k, int64_t watermark,
                             int64_t *out, int64_t *scratch, merge_u128 *keys) nogil


def merge_until(const int64_t[::1] ts_flat, const int64_t[::1] offsets, int64_t watermark_ns,
                int64_t[::1] out_pos):
    """Write the flat positions of all entries with ts <= watermark_ns into out_pos[:n],
    in merged order (ts, journal index, position in segment); return n."""
    cdef int64_t k = offsets.shape[0] - 1
    cdef int64_t j
    assert k >= 0, "offsets needs k+1 entries"
    assert offsets[0] == 0 and offsets[k] == ts_flat.shape[0], "offsets must span ts_flat"
    for j in range(k):
        assert offsets[j] <= offsets[j + 1], "offsets must be non-decreasing"
    assert out_pos.shape[0] >= ts_flat.shape[0], "out_pos too small"
    if ts_flat.shape[0] == 0:
        return 0
    cdef int64_t *scratch = <int64_t *>malloc(merge_scratch_int64(k) * sizeof(int64_t))
    cdef merge_u128 *keys = <merge_u128 *>malloc(merge_scratch_keys(k) * sizeof(merge_u128))
    cdef int64_t n
    if scratch == NULL or keys == NULL:
        free(scratch)
        free(keys)
        raise MemoryError()
    with nogil:
        n = merge_until_core(&ts_flat[0], &offsets[0], k, watermark_ns, &out_pos[0], scratch, keys)
    free(scratch)
    free(keys)
    return n
