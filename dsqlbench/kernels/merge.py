"""Crossbar merge: reference twin (the specification).

The crossbar follows k journals. Each journal hands it a segment of entries sorted by
``t_commit`` (non-decreasing; heartbeats are not entries). The crossbar may release to
storage only the entries at or below the watermark (the minimum over journals of the
last timestamp seen), in one total order: by ``t_commit``, ties broken by journal index,
then by position within the journal's segment.

Layout: the k segments are concatenated in ``ts_flat``; segment ``j`` is
``ts_flat[offsets[j]:offsets[j+1]]``. The merge writes *flat positions* (indices into
``ts_flat``) into a preallocated ``out_pos``, so the caller can gather any record
columns it keeps beside the timestamps without the kernel knowing about them.

Invariants:
- only a prefix of each segment qualifies (segments are sorted), so the output is the
  union of k prefixes;
- nothing above the watermark is ever output;
- because flat position increases with (journal index, position in segment), the
  order (ts, j, position) is the order (ts, flat position).

The compiled twin is ``dsqlbench._native.merge.merge_until``, same signature.
"""

from __future__ import annotations

import numpy as np


def _check_inputs(ts_flat: np.ndarray, offsets: np.ndarray, out_pos: np.ndarray) -> None:
    assert ts_flat.dtype == np.int64 and ts_flat.ndim == 1, "ts_flat must be 1-D int64"
    assert offsets.dtype == np.int64 and offsets.ndim == 1, "offsets must be 1-D int64"
    assert len(offsets) >= 1, "offsets needs k+1 entries"
    assert offsets[0] == 0 and offsets[-1] == len(ts_flat), "offsets must span ts_flat"
    assert np.all(np.diff(offsets) >= 0), "offsets must be non-decreasing"
    assert out_pos.dtype == np.int64 and len(out_pos) >= len(ts_flat), "out_pos too small"


def qualifying_prefix_ends(ts_flat: np.ndarray, offsets: np.ndarray, watermark_ns: int) -> np.ndarray:
    """Per segment, the flat index one past its last entry with ts <= watermark_ns."""
    ends = np.empty(len(offsets) - 1, dtype=np.int64)
    for j in range(len(offsets) - 1):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        segment = ts_flat[lo:hi]
        assert np.all(segment[1:] >= segment[:-1]), f"segment {j} is not sorted"
        ends[j] = lo + int(np.searchsorted(segment, watermark_ns, side="right"))
    return ends


def merge_until(ts_flat: np.ndarray, offsets: np.ndarray, watermark_ns: int, out_pos: np.ndarray) -> int:
    """Write the flat positions of all entries with ts <= watermark_ns into out_pos[:n],
    in merged order (ts, journal index, position in segment); return n."""
    _check_inputs(ts_flat, offsets, out_pos)
    ends = qualifying_prefix_ends(ts_flat, offsets, watermark_ns)
    parts = [np.arange(offsets[j], ends[j], dtype=np.int64) for j in range(len(ends))]
    positions = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    # A stable sort keeps ascending flat position among equal ts: exactly the tie rule.
    order = np.argsort(ts_flat[positions], kind="stable")
    n = len(positions)
    out_pos[:n] = positions[order]
    return n
