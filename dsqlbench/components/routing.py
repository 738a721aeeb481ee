"""Key-range sharding: which adjudicator shard or storage shard owns a key.

Keys are non-negative ints: int64 for the key-value workloads, wider for SQL keys
(table and primary key encoded order-preservingly). A ``KeyRanges`` with boundaries ``b_1 < ... < b_{n-1}``
gives shard ``i`` the keys in ``[b_i, b_{i+1})`` (``b_0 = 0``, ``b_n`` = 2**63). The
boundaries are chosen once per run from the loaded keys (equal-sized shards), as a
real system splits by size; they never change during a run.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

import numpy as np


class KeyRanges:
    __slots__ = ("boundaries", "count")

    def __init__(self, boundaries: Sequence[int]):
        bounds = [int(b) for b in boundaries]
        assert all(a < b for a, b in zip(bounds, bounds[1:])), "boundaries must increase"
        assert not bounds or bounds[0] > 0
        self.boundaries = bounds
        self.count = len(bounds) + 1

    @classmethod
    def split_evenly(cls, keys, shards: int) -> "KeyRanges":
        """Boundaries at the quantiles of ``keys`` so each shard holds about as many."""
        assert shards >= 1
        if shards == 1 or len(keys) == 0:
            return cls([])
        if isinstance(keys, np.ndarray):
            ordered = np.unique(keys).tolist()
        else:  # Python ints, possibly wider than 64 bits (SQL keys)
            ordered = sorted(set(keys))
        picks = [int(ordered[(len(ordered) * i) // shards]) for i in range(1, shards)]
        bounds = sorted({b for b in picks if b > 0})
        return cls(bounds)

    def shard_of(self, key: int) -> int:
        return bisect_right(self.boundaries, key)

    def lower_bound(self, shard: int) -> int:
        return 0 if shard == 0 else self.boundaries[shard - 1]
