"""Reference list-append histories, for testing and benchmarking the checkers.

A tiny, deterministic model of a snapshot-isolation database with no network, no
clocks and no failures, separate from the simulator on purpose: what it produces is
known to be valid (or known to be broken in one chosen way), so it checks the checker.

Each client runs one transaction at a time. A transaction is invoked, takes its
snapshot a little later, runs its reads and appends against that snapshot (its own
appends included), commits at a later instant and is acknowledged a little after that.
Commits are applied in commit-time order; first committer wins: a transaction that
appends to a key some other transaction committed after its snapshot aborts ("fail").
With ``snapshot_lag_ns = 0`` the snapshot is never older than the invocation, so the
history is strong snapshot isolation; write skew happens, and is allowed.

Knobs that break it, each a control the checker must catch:
``first_committer_wins=False`` (lost updates, G-single-item); ``snapshot_lag_ns > 0`` (the
snapshot is taken that long before the invocation: stale reads).
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass
class _Plan:
    id: int
    process: int
    invoke_ns: int
    snapshot_ns: int
    commit_ns: int
    complete_ns: int
    ops: list = field(default_factory=list)  # [("append", key) | ("r", key)]


def snapshot_history(n_txns: int, *, seed: int = 0, clients: int = 8, keys: int = 20,
                     ops_max: int = 4, read_fraction: float = 0.5,
                     info_fraction: float = 0.0, first_committer_wins: bool = True,
                     snapshot_lag_ns: int = 0) -> list[dict]:
    """``n_txns`` transactions in the format of ``history.py``."""
    rng = random.Random(seed)
    plans = _plans(rng, n_txns, clients, keys, ops_max, read_fraction, snapshot_lag_ns)
    store = _Store()
    history = [_execute(plan, store, first_committer_wins)
               for plan in sorted(plans, key=lambda p: (p.commit_ns, p.id))]
    for entry in history:
        if rng.random() < info_fraction:
            entry["type"] = "info"  # the client lost the reply; the outcome stands
    return sorted(history, key=lambda e: e["id"])


def _plans(rng, n_txns, clients, keys, ops_max, read_fraction, lag_ns) -> list[_Plan]:
    ready = [(rng.randrange(1_000), c) for c in range(clients)]  # (free at, client)
    heapq.heapify(ready)
    plans = []
    for txn_id in range(n_txns):
        free_ns, client = heapq.heappop(ready)
        invoke = free_ns + rng.randrange(1, 2_000)
        snapshot = invoke + rng.randrange(0, 100) - lag_ns
        commit = invoke + rng.randrange(100, 5_000)
        complete = commit + rng.randrange(1, 100)
        plan = _Plan(txn_id, client, invoke, snapshot, commit, complete)
        for _ in range(rng.randrange(1, ops_max + 1)):
            f = "r" if rng.random() < read_fraction else "append"
            plan.ops.append((f, rng.randrange(keys)))
        plans.append(plan)
        heapq.heappush(ready, (complete, client))
    return plans


class _Store:
    """Committed versions per key: ``[(commit_ns, list)]`` in commit order."""

    def __init__(self):
        self.versions: dict[int, list[tuple[int, tuple]]] = {}
        self.next_value = 1

    def read(self, key: int, at_ns: int) -> tuple:
        versions = self.versions.get(key, [])
        i = bisect_right(versions, at_ns, key=lambda v: v[0])
        return versions[i - 1][1] if i else ()

    def last_commit_ns(self, key: int) -> int:
        versions = self.versions.get(key)
        return versions[-1][0] if versions else -1

    def value(self) -> int:
        self.next_value += 1
        return self.next_value - 1


def _execute(plan: _Plan, store: _Store, first_committer_wins: bool) -> dict:
    view: dict[int, tuple] = {}
    ops = []
    for f, key in plan.ops:
        state = view.get(key, store.read(key, plan.snapshot_ns))
        if f == "r":
            ops.append(["r", key, list(state)])
            continue
        value = store.value()
        view[key] = state + (value,)
        ops.append(["append", key, value])
    written = sorted(view)
    conflict = any(store.last_commit_ns(k) > plan.snapshot_ns for k in written)
    committed = not (first_committer_wins and conflict)
    if committed:
        for key in written:
            # The writer's whole list replaces the key: without first committer wins
            # this silently drops concurrent appends, as a lost update does.
            store.versions.setdefault(key, []).append((plan.commit_ns, view[key]))
    return {"id": plan.id, "process": plan.process, "type": "ok" if committed else "fail",
            "ops": ops, "invoke_ns": plan.invoke_ns, "complete_ns": plan.complete_ns}
