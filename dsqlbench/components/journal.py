"""Journal: the commit point. An ordered, replicated log of committed transactions.

Role in the pipeline: each adjudicator shard appends to its own journal, in strictly
increasing timestamp order, whole committed transactions (post-images) and heartbeats.
A write is durable, and the transaction committed, once a quorum of replicas has it
(2 of 3 AZs in one region; 2 of 3 regions across regions). The crossbar follows the
durable prefix.

Invariants:
- timestamps strictly increase along the log (asserted on every append);
- durability is a prefix: entry ``i`` is durable no earlier than entry ``i - 1``, so
  the crossbar never sees a hole (the runtime computes durable times with
  ``durable_after``);
- trimming only drops a prefix that every subscriber has consumed;
- fencing: once a new adjudicator leader raised ``epoch``, appends from an older
  epoch are refused (the runtime checks before appending).
"""

from __future__ import annotations

from bisect import bisect_right

from dsqlbench.components.messages import JournalEntry


def quorum_size(replicas: int) -> int:
    """Majority: 2 of 3, 3 of 5."""
    assert replicas >= 1
    return replicas // 2 + 1


def quorum_latency_ns(replica_latencies_ns: list[int], quorum: int) -> int:
    """A quorum write completes when the ``quorum``-th fastest replica acknowledges."""
    assert 1 <= quorum <= len(replica_latencies_ns)
    return sorted(replica_latencies_ns)[quorum - 1]


class Journal:
    __slots__ = ("index", "replicas", "quorum", "entries", "base_position",
                 "last_ts_ns", "last_durable_true_ns", "appended_commits", "epoch")

    def __init__(self, index: int, replicas: int):
        self.index = index
        self.replicas = replicas
        self.quorum = quorum_size(replicas)
        self.entries: list[JournalEntry] = []
        self.base_position = 0  # log position of entries[0] (after trimming)
        self.last_ts_ns = 0
        self.last_durable_true_ns = 0
        self.appended_commits = 0
        self.epoch = 1  # the newest leader's epoch; appends from older ones are fenced off

    def append(self, entry: JournalEntry) -> int:
        """Append one entry; returns its log position."""
        assert entry.ts_ns > self.last_ts_ns, (
            f"journal {self.index}: {entry.ts_ns} not above {self.last_ts_ns}")
        self.last_ts_ns = entry.ts_ns
        self.entries.append(entry)
        self.appended_commits += not entry.is_heartbeat
        return self.base_position + len(self.entries) - 1

    def durable_after(self, true_now_ns: int, quorum_write_ns: int) -> int:
        """True time at which an append issued now becomes durable (prefix order)."""
        durable = max(true_now_ns + quorum_write_ns, self.last_durable_true_ns)
        self.last_durable_true_ns = durable
        return durable

    def lose_undurable(self, txn_ids, true_now_ns: int) -> None:
        """The leader died before these appends reached a quorum: they never happened.
        They are the log's suffix (durability is a prefix), so order still holds."""
        self.entries = [e for e in self.entries if e.txn_id not in txn_ids]
        self.last_durable_true_ns = min(self.last_durable_true_ns, true_now_ns)

    def read_from(self, position: int) -> list[JournalEntry]:
        assert position >= self.base_position
        return self.entries[position - self.base_position:]

    def trim_before(self, position: int) -> int:
        """Drop entries below ``position`` (consumed by every subscriber)."""
        drop = position - self.base_position
        assert 0 <= drop <= len(self.entries)
        del self.entries[:drop]
        self.base_position = position
        return drop

    def trim_through(self, ts_ns: int) -> int:
        """Drop every entry at or below ``ts_ns``: the prefix that every subscriber has
        consumed once each has released up to ``ts_ns`` (the log is in timestamp order,
        so it is a prefix). Returns how many entries went."""
        return self.trim_before(self.base_position
                                + bisect_right(self.entries, ts_ns, key=lambda e: e.ts_ns))
