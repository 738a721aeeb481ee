"""Adjudicator conflict checks: reference twin (the specification).

The adjudicator keeps, per key it owns, the time of the last commit that wrote it
(``key -> last_commit_ns``). Under snapshot isolation a transaction that started at
``t_start`` conflicts when any key it writes was committed after ``t_start``.

Requests arrive in batches; the kernel decides them in batch order, so a commit early
in the batch is seen by every later transaction in the same batch. Layout: the write
set of transaction i is ``key_flat[key_offsets[i]:key_offsets[i+1]]`` (distinct keys,
possibly none).

Decisions (int8): ``COMMIT`` 0, ``CONFLICT`` 1, ``TOO_OLD`` 2. TOO_OLD is checked
first: a transaction that started before ``t_propose - window`` is rejected whatever
its keys, which is what makes reclamation safe (see ``reclaim``).

Times are integer nanoseconds in [0, 2^62]; an absent key counts as last_commit 0.

Invariants:
- commit times are strictly increasing in batch order and above the floor, above the
  transaction's ``t_start`` and above every last commit of its keys;
- a key whose multi-shard vote is outstanding is PENDING (``last_commit = INT64_MAX``)
  and makes every later check of it conflict until ``assign`` resolves it;
- ``reclaim(h)`` with ``h <= t_propose - window`` of every later batch changes no
  decision and no commit time: a transaction that is not TOO_OLD has
  ``t_start >= h > last_commit`` for every dropped entry.

The compiled twin is ``dsqlbench.kernels.conflicts_numba.ConflictTable``, same API.
"""

from __future__ import annotations

import numpy as np

COMMIT = 0
CONFLICT = 1
TOO_OLD = 2
PENDING_NS = np.iinfo(np.int64).max  # last_commit of a key with an outstanding vote
# Times are ns >= 0; the cap keeps t + window and t + 1 far from int64 overflow.
TIME_NS_MAX = 1 << 62


def check_batch_layout(key_flat: np.ndarray, key_offsets: np.ndarray, t_start_ns: np.ndarray) -> int:
    """Assert the flat/offsets layout (both twins); return the number of transactions."""
    assert key_flat.dtype == np.int64 and key_flat.ndim == 1, "key_flat must be 1-D int64"
    assert key_offsets.dtype == np.int64 and key_offsets.ndim == 1, "key_offsets must be 1-D int64"
    assert t_start_ns.dtype == np.int64 and t_start_ns.ndim == 1, "t_start_ns must be 1-D int64"
    n = len(t_start_ns)
    assert len(key_offsets) == n + 1, "key_offsets needs n+1 entries"
    assert key_offsets[0] == 0 and key_offsets[-1] == len(key_flat), "offsets must span key_flat"
    assert np.all(np.diff(key_offsets) >= 0), "key_offsets must be non-decreasing"
    assert n == 0 or (t_start_ns.min() >= 0 and t_start_ns.max() <= TIME_NS_MAX), "t_start_ns out of range"
    return n


def check_time(t_ns: int) -> int:
    """A simulated time as a Python int, asserted in [0, TIME_NS_MAX]."""
    t_ns = int(t_ns)
    assert 0 <= t_ns <= TIME_NS_MAX, f"time {t_ns} ns out of range"
    return t_ns


class ConflictTable:
    """``key -> last_commit_ns`` for one adjudicator shard, as a Python dict."""

    def __init__(self, window_ns: int, capacity: int = 1024):
        assert window_ns > 0, "window_ns must be positive"
        assert capacity >= 1
        self.window_ns = int(window_ns)
        self._last_commit_ns: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._last_commit_ns)

    def _latest_ns(self, keys: np.ndarray) -> int:
        """Max last_commit over keys, an absent key counting as 0 (so 0 for no keys)."""
        table = self._last_commit_ns
        return max([0, *(table.get(key, 0) for key in keys.tolist())])

    def check_commit(self, key_flat, key_offsets, t_start_ns, t_propose_ns: int, floor_ns: int):
        """Decide a batch of single-shard commits; returns (decisions, t_commit_ns, new_floor_ns)."""
        n = check_batch_layout(key_flat, key_offsets, t_start_ns)
        decisions = np.zeros(n, dtype=np.int8)
        t_commit_ns = np.full(n, -1, dtype=np.int64)
        t_propose_ns = check_time(t_propose_ns)
        too_old_below_ns = t_propose_ns - self.window_ns
        floor_ns = int(floor_ns)
        assert -1 <= floor_ns <= TIME_NS_MAX, "floor_ns out of range"
        for i in range(n):
            keys = key_flat[key_offsets[i]:key_offsets[i + 1]]
            t_start = int(t_start_ns[i])
            if t_start < too_old_below_ns:
                decisions[i] = TOO_OLD
                continue
            latest_ns = self._latest_ns(keys)
            if latest_ns > t_start:
                decisions[i] = CONFLICT
                continue
            t_commit = max(t_propose_ns, floor_ns + 1, t_start + 1, latest_ns + 1)
            floor_ns = t_commit
            t_commit_ns[i] = t_commit
            for key in keys.tolist():
                self._last_commit_ns[key] = t_commit
        return decisions, t_commit_ns, floor_ns

    def check_vote(self, key_flat, key_offsets, t_start_ns, t_propose_ns: int):
        """Participant votes for multi-shard commits; returns (decisions, t_low_ns, prev_flat).

        A yes vote marks its keys PENDING and writes their previous last_commit (0 when
        absent) to prev_flat; entries of prev_flat and t_low_ns for other votes are -1.
        """
        n = check_batch_layout(key_flat, key_offsets, t_start_ns)
        decisions = np.zeros(n, dtype=np.int8)
        t_low_ns = np.full(n, -1, dtype=np.int64)
        prev_flat = np.full(len(key_flat), -1, dtype=np.int64)
        t_propose_ns = check_time(t_propose_ns)
        too_old_below_ns = t_propose_ns - self.window_ns
        for i in range(n):
            lo, hi = int(key_offsets[i]), int(key_offsets[i + 1])
            keys = key_flat[lo:hi]
            t_start = int(t_start_ns[i])
            if t_start < too_old_below_ns:
                decisions[i] = TOO_OLD
                continue
            latest_ns = self._latest_ns(keys)
            if latest_ns > t_start:
                decisions[i] = CONFLICT
                continue
            t_low_ns[i] = max(t_propose_ns, t_start + 1, latest_ns + 1)
            for offset, key in enumerate(keys.tolist()):
                prev_flat[lo + offset] = self._last_commit_ns.get(key, 0)
                self._last_commit_ns[key] = int(PENDING_NS)
        return decisions, t_low_ns, prev_flat

    def assign(self, keys, values_ns) -> None:
        """Set last_commit per key (resolves votes); a value of 0 deletes the key."""
        keys = np.asarray(keys, dtype=np.int64)
        values_ns = np.asarray(values_ns, dtype=np.int64)
        assert keys.shape == values_ns.shape and keys.ndim == 1
        assert np.all(values_ns >= 0), "last_commit values are non-negative"
        assert np.all((values_ns <= TIME_NS_MAX) | (values_ns == PENDING_NS)), "value out of range"
        for key, value in zip(keys.tolist(), values_ns.tolist()):
            if value == 0:
                self._last_commit_ns.pop(key, None)
            else:
                self._last_commit_ns[key] = value

    def lookup(self, keys) -> np.ndarray:
        """last_commit per key, 0 when absent (PENDING_NS when a vote is outstanding)."""
        keys = np.asarray(keys, dtype=np.int64)
        table = self._last_commit_ns
        return np.array([table.get(key, 0) for key in keys.tolist()], dtype=np.int64)

    def reclaim(self, horizon_ns: int) -> int:
        """Drop entries with last_commit < horizon_ns that are not PENDING; return how many.

        Call with ``horizon_ns = t_propose_ns - window_ns`` (or lower): it then keeps the
        table bounded by the keys written within the window, and changes no decision.
        """
        horizon_ns = int(horizon_ns)
        stale = [key for key, t in self._last_commit_ns.items() if t < horizon_ns]
        for key in stale:
            del self._last_commit_ns[key]
        return len(stale)
