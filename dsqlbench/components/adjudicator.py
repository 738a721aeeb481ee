"""Adjudicator: the commit-time conflict check for snapshot isolation.

Role in the pipeline: a QP sends ``(t_start, write set)`` at COMMIT to the adjudicator
shard that owns the written keys. The shard rejects the transaction when any of its
keys was committed after ``t_start`` (first committer wins, OC000); otherwise it picks
``t_commit`` and the runtime appends the whole transaction to this shard's journal.

This class is the role's algorithmic core (no time, no transport); the conflict
structure itself is a kernel (``dsqlbench.kernels.ConflictTable``) behind a narrow API,
as FoundationDB keeps its resolver apart from its ConflictSet.

Invariants:
- ``floor_ns`` is the largest timestamp this shard ever handed out (commit or
  heartbeat); every new one is strictly above it, so the shard's journal is strictly
  ordered and a heartbeat is a promise that no later entry is at or below it;
- ``t_commit > max(t_start, last_commit(keys), floor)`` for every commit;
- state is bounded by the transaction-age window: a transaction whose ``t_start`` is
  older than ``window_ns`` is rejected (TOO_OLD), so older entries can be reclaimed;
- multi-shard: a participant's yes-vote marks its keys pending (any later conflicting
  check fails) until ``resolve`` tells it the outcome; the final adjudicator commits at
  ``max(lows, floor + 1)`` only if that lies in every voter's ``[low, high]``;
- schema changes (DDL) are voted on by every shard; while one is pending at a shard,
  and for every transaction that started before the last one committed, the shard
  refuses with OC001, so no transaction commits across a schema change it did not see.
"""

from __future__ import annotations

import numpy as np

from dsqlbench.components.messages import (
    DECISION_COMMIT,
    DECISION_REASON,
    AbortReason,
    CommitRequest,
    Decision,
    Vote,
)


INT63 = (1 << 63) - 1


def conflict_key(key: int) -> int:
    """The int64 the conflict kernel tracks for ``key``.

    Keys that fit are their own conflict key. Wider keys (SQL's encoded primary keys)
    fold into 63 bits with a multiplicative hash: two keys that fold together only
    conflict more often than they should, never less, so first committer wins holds.
    """
    if key <= INT63:
        return key
    folded = 0
    while key:
        folded = ((folded ^ (key & INT63)) * 0x9E3779B97F4A7C15) & INT63
        key >>= 63
    return folded


def pack_keys(requests: list[CommitRequest]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten a batch's write sets into ``(key_flat, key_offsets, t_start_ns)``."""
    offsets = np.zeros(len(requests) + 1, dtype=np.int64)
    flat: list[int] = []
    for i, request in enumerate(requests):
        flat.extend(dict.fromkeys(conflict_key(k) for k in request.keys))
        offsets[i + 1] = len(flat)
    t_start = np.fromiter((r.t_start_ns for r in requests), dtype=np.int64, count=len(requests))
    return np.asarray(flat, dtype=np.int64), offsets, t_start


class Adjudicator:
    """One adjudicator shard's state: last commit per key, floor, pending votes."""

    def __init__(self, shard: int, conflict_table, promise_ns: int):
        assert promise_ns > 0
        self.shard = shard
        self.table = conflict_table
        self.promise_ns = promise_ns
        self.floor_ns = 0
        self.pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.schema_pending: dict[int, None] = {}  # DDL votes not yet resolved
        self.schema_changed_ns = 0  # t_commit of the newest schema change
        self.commits = 0
        self.conflicts = 0

    # -- single-shard commits -------------------------------------------------------
    def adjudicate(self, requests: list[CommitRequest], t_propose_ns: int) -> list[Decision]:
        """Decide a batch in order; later requests see earlier commits of the batch."""
        if not requests:
            return []
        assert not any(r.vote for r in requests)
        refused, checked = self._schema_filter(requests)
        if not checked:
            return [refused[r.txn_id] for r in requests]
        key_flat, offsets, t_start = pack_keys(checked)
        codes, t_commit, new_floor = self.table.check_commit(
            key_flat, offsets, t_start, int(t_propose_ns), self.floor_ns)
        assert new_floor >= self.floor_ns
        self.floor_ns = int(new_floor)
        decisions = {}
        for request, code, ts in zip(checked, codes.tolist(), t_commit.tolist()):
            decisions[request.txn_id] = self._decision(request, code, ts)
        decisions.update(refused)
        return [decisions[r.txn_id] for r in requests]

    def _decision(self, request: CommitRequest, code: int, ts: int) -> Decision:
        if code == DECISION_COMMIT:
            assert ts > request.t_start_ns
            self.commits += 1
            return Decision(request.txn_id, True, ts)
        self.conflicts += code == 1
        return Decision(request.txn_id, False, reason=DECISION_REASON[code])

    def _schema_filter(self, requests: list[CommitRequest]
                       ) -> tuple[dict[int, Decision], list[CommitRequest]]:
        """OC001 for whatever a pending or newer schema change makes stale."""
        refused: dict[int, Decision] = {}
        checked = []
        for request in requests:
            if self.schema_pending or request.t_start_ns < self.schema_changed_ns:
                refused[request.txn_id] = Decision(request.txn_id, False,
                                                   reason=AbortReason.SCHEMA_CHANGED)
            else:
                checked.append(request)
        return refused, checked

    # -- multi-shard commits --------------------------------------------------------
    def vote(self, requests: list[CommitRequest], t_propose_ns: int) -> list[Vote]:
        """Participant phase: check this shard's keys, vote a range, promise it."""
        if not requests:
            return []
        assert all(r.vote for r in requests)
        refused, checked = self._schema_filter(requests)
        votes = {txn_id: Vote(txn_id, self.shard, False, reason=d.reason)
                 for txn_id, d in refused.items()}
        if checked:
            key_flat, offsets, t_start = pack_keys(checked)
            codes, t_low, prev = self.table.check_vote(key_flat, offsets, t_start, int(t_propose_ns))
            for i, request in enumerate(checked):
                bounds = (int(offsets[i]), int(offsets[i + 1]))
                votes[request.txn_id] = self._ballot(request, int(codes[i]), int(t_low[i]),
                                                     key_flat, prev, bounds)
        return [votes[r.txn_id] for r in requests]

    def _ballot(self, request: CommitRequest, code: int, low: int, key_flat, prev, bounds) -> Vote:
        if code != DECISION_COMMIT:
            self.conflicts += code == 1
            return Vote(request.txn_id, self.shard, False, reason=DECISION_REASON[code])
        lo, hi = bounds
        assert request.txn_id not in self.pending
        self.pending[request.txn_id] = (key_flat[lo:hi].copy(), prev[lo:hi].copy())
        if request.schema_change:
            self.schema_pending[request.txn_id] = None
        return Vote(request.txn_id, self.shard, True, low, low + self.promise_ns)

    def finalize(self, txn_id: int, votes: list[Vote]) -> Decision:
        """Final adjudicator: pick ``t_commit`` from the votes, or abort."""
        assert votes and all(v.txn_id == txn_id for v in votes)
        refused = [v for v in votes if not v.yes]
        if refused:
            return Decision(txn_id, False, reason=refused[0].reason)
        t_commit = max(max(v.t_low_ns for v in votes), self.floor_ns + 1)
        if any(t_commit > v.t_high_ns for v in votes):
            return Decision(txn_id, False, reason=AbortReason.PROMISE_EXPIRED)
        self.floor_ns = t_commit
        self.commits += 1
        return Decision(txn_id, True, t_commit)

    def resolve(self, txn_id: int, t_commit_ns: int | None) -> None:
        """A participant learns the outcome and releases its promise."""
        keys, prev = self.pending.pop(txn_id)
        if self.schema_pending.pop(txn_id, 0) is None and t_commit_ns is not None:
            self.schema_changed_ns = max(self.schema_changed_ns, t_commit_ns)
        if t_commit_ns is None:
            self.table.assign(keys, prev)
        else:
            self.table.assign(keys, np.full(len(keys), t_commit_ns, dtype=np.int64))

    def expire(self, txn_id: int, t_high_ns: int) -> None:
        """A promise ran out with no outcome heard (the final adjudicator died). The
        transaction may still have committed at any time up to ``t_high_ns``, so its
        keys are treated as written then: safe, at the price of some false conflicts."""
        keys, _ = self.pending.pop(txn_id)
        self.schema_pending.pop(txn_id, None)
        self.table.assign(keys, np.full(len(keys), t_high_ns, dtype=np.int64))

    @classmethod
    def rebuilt(cls, shard: int, conflict_table, promise_ns: int, entries, floor_ns: int,
                horizon_ns: int) -> "Adjudicator":
        """A new leader's state, rebuilt from committed transactions (journal entries
        newer than ``horizon_ns``) and above ``floor_ns``: it keeps no durable state."""
        core = cls(shard, conflict_table, promise_ns)
        core.floor_ns = floor_ns
        for entry in entries:
            if entry.is_heartbeat or entry.ts_ns < horizon_ns:
                continue
            keys = np.fromiter((conflict_key(k) for k, _ in entry.writes), np.int64)
            core.table.assign(keys, np.full(len(keys), entry.ts_ns, dtype=np.int64))
        return core

    # -- time -----------------------------------------------------------------------
    def heartbeat(self, t_ns: int) -> int | None:
        """Promise that nothing at or below ``t_ns`` will be handed out; None if stale."""
        if t_ns <= self.floor_ns:
            return None
        self.floor_ns = t_ns
        return t_ns

    def reclaim(self, t_now_ns: int, window_ns: int) -> int:
        return self.table.reclaim(t_now_ns - window_ns)
