"""Adjudicator conflict checks: every implementation against the reference, driven by
random sequences of commit batches, votes and their resolutions, and reclamation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.kernels.conflicts import COMMIT, CONFLICT, PENDING_NS, TOO_OLD
from kernel_twins import REF

WINDOW_NS = 50


def batch(write_sets: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    key_flat = np.array([k for keys in write_sets for k in keys], dtype=np.int64)
    key_offsets = np.zeros(len(write_sets) + 1, dtype=np.int64)
    key_offsets[1:] = np.cumsum([len(keys) for keys in write_sets])
    return key_flat, key_offsets


class Pair:
    """The implementation under test and the reference, fed the same operations."""

    def __init__(self, impl, capacity: int):
        self.table = impl.conflicts.ConflictTable(WINDOW_NS, capacity=capacity)
        self.ref = REF.conflicts.ConflictTable(WINDOW_NS, capacity=capacity)
        self.floor_ns = 0

    def same(self, got, expected):
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
        return expected

    def commit(self, write_sets, t_start_ns, t_propose_ns):
        args = (*batch(write_sets), np.array(t_start_ns, dtype=np.int64), t_propose_ns, self.floor_ns)
        decisions, t_commit_ns, floor_ns = self.same(self.table.check_commit(*args), self.ref.check_commit(*args))
        assert floor_ns >= self.floor_ns
        committed = t_commit_ns[decisions == COMMIT]
        assert (np.diff(committed) > 0).all(), "commit times strictly increase in batch order"
        self.floor_ns = floor_ns
        return decisions, t_commit_ns

    def vote(self, write_sets, t_start_ns, t_propose_ns):
        args = (*batch(write_sets), np.array(t_start_ns, dtype=np.int64), t_propose_ns)
        return self.same(self.table.check_vote(*args), self.ref.check_vote(*args))

    def assign(self, keys, values_ns):
        self.table.assign(np.array(keys, dtype=np.int64), np.array(values_ns, dtype=np.int64))
        self.ref.assign(np.array(keys, dtype=np.int64), np.array(values_ns, dtype=np.int64))

    def reclaim(self, horizon_ns):
        assert self.table.reclaim(horizon_ns) == self.ref.reclaim(horizon_ns)

    def check(self, keys):
        assert len(self.table) == len(self.ref)
        probe = np.array(keys, dtype=np.int64)
        np.testing.assert_array_equal(self.table.lookup(probe), self.ref.lookup(probe))
        if hasattr(self.table, "check_invariants"):
            self.table.check_invariants()


KEYS = st.one_of(st.integers(0, 6), st.integers(-2**63, 2**63 - 1))
write_set_st = st.lists(KEYS, max_size=5, unique=True)
operation_st = st.tuples(
    st.sampled_from(["commit", "commit", "vote", "reclaim"]),
    st.lists(st.tuples(write_set_st, st.integers(0, 2 * WINDOW_NS)), max_size=8),
    st.integers(0, 30),       # time step
    st.booleans(),            # vote outcome: commit or abort
)


@settings(max_examples=150, deadline=None)
@given(operations=st.lists(operation_st, max_size=12), capacity=st.integers(1, 40))
def test_random_operation_sequences_match_reference(impl, operations, capacity):
    pair = Pair(impl, capacity)
    now_ns, seen = 100, set()
    for kind, txns, step_ns, commit_vote in operations:
        now_ns += step_ns
        write_sets = [keys for keys, _ in txns]
        t_start_ns = [max(0, now_ns - lag) for _, lag in txns]
        seen.update(k for keys in write_sets for k in keys)
        if kind == "commit":
            pair.commit(write_sets, t_start_ns, now_ns)
        elif kind == "vote":
            decisions, t_low_ns, prev_flat = pair.vote(write_sets, t_start_ns, now_ns)
            key_flat, key_offsets = batch(write_sets)
            for i in np.flatnonzero(decisions == COMMIT):
                keys = key_flat[key_offsets[i]:key_offsets[i + 1]]
                assert (pair.ref.lookup(keys) == PENDING_NS).all()
                if commit_vote:
                    pair.assign(keys, np.full(len(keys), t_low_ns[i]))
                else:
                    pair.assign(keys, prev_flat[key_offsets[i]:key_offsets[i + 1]])
        else:
            pair.reclaim(now_ns - WINDOW_NS)
        pair.check(sorted(seen) + [7, -1])


def test_every_txn_hits_the_same_key(impl):
    pair = Pair(impl, 16)
    decisions, t_commit_ns = pair.commit([[42]] * 5, [10, 10, 10, 10, 10], 20)
    assert decisions.tolist() == [COMMIT, CONFLICT, CONFLICT, CONFLICT, CONFLICT]
    assert t_commit_ns.tolist() == [20, -1, -1, -1, -1]
    # All started after the first batch's commit: the first commits, the rest conflict.
    decisions, t_commit_ns = pair.commit([[42]] * 3, [25, 25, 25], 25)
    assert decisions.tolist() == [COMMIT, CONFLICT, CONFLICT]
    assert t_commit_ns[0] == 26  # above t_start and above the floor (20)
    pair.check([42])


def test_commit_time_rules_and_too_old(impl):
    pair = Pair(impl, 16)
    pair.floor_ns = 500
    decisions, t_commit_ns = pair.commit([[1], [2, 3], [], [4]], [90, 600, 60, 49], 100)
    assert decisions.tolist() == [COMMIT, COMMIT, COMMIT, TOO_OLD]
    assert t_commit_ns.tolist() == [501, 601, 602, -1]  # floor + 1, t_start + 1, floor + 1
    assert pair.floor_ns == 602
    pair.check([1, 2, 3, 4])


def test_empty_batch(impl):
    pair = Pair(impl, 16)
    decisions, t_commit_ns = pair.commit([], [], 100)
    assert len(decisions) == 0 and decisions.dtype == np.int8 and t_commit_ns.dtype == np.int64
    pair.vote([], [], 100)


def test_pending_keys_conflict_until_resolved_and_survive_reclaim(impl):
    pair = Pair(impl, 16)
    pair.commit([[5]], [0], 10)
    decisions, t_low_ns, prev_flat = pair.vote([[5, 6]], [10], 30)
    assert decisions.tolist() == [COMMIT] and t_low_ns.tolist() == [30] and prev_flat.tolist() == [10, 0]
    assert pair.commit([[6]], [1000], 1000)[0].tolist() == [CONFLICT]
    pair.reclaim(10**9)  # PENDING is never reclaimed
    pair.check([5, 6])
    pair.assign([5, 6], [10, 0])  # abort: restore 5, delete 6
    pair.check([5, 6])
    assert pair.commit([[6]], [1000], 1000)[0].tolist() == [COMMIT]


def test_growth_deletion_and_reclaim_at_scale(impl):
    rng = np.random.default_rng(3)
    pair = Pair(impl, 1)
    keys = rng.choice(2**40, 5000, replace=False).astype(np.int64)
    pair.assign(keys, rng.integers(1, 1000, len(keys)))
    pair.check(keys)
    pair.assign(keys[::3], np.zeros(len(keys[::3]), dtype=np.int64))  # deletes
    pair.check(keys)
    pair.reclaim(500)
    pair.check(keys)
    assert len(pair.ref) < 5000 * 2 // 3


@pytest.mark.parametrize("window_ns", [0, -1])
def test_window_must_be_positive(impl, window_ns):
    with pytest.raises(AssertionError):
        impl.conflicts.ConflictTable(window_ns)
