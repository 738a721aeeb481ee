"""The request/reply vocabulary that the component cores exchange.

Each request pairs with its reply, as in FoundationDB's role interfaces:

- QP -> adjudicator: ``CommitRequest`` -> ``Decision`` (single shard), or
  ``CommitRequest(vote=True)`` -> ``Vote`` then ``Outcome`` (several shards);
- adjudicator -> journal: ``JournalEntry`` (a whole committed transaction, or a
  heartbeat with no writes);
- crossbar -> storage: ``StorageBatch`` (records of one shard in ``t_commit`` order,
  plus the watermark up to which the batch is complete).

Expected failures are values, never exceptions: ``AbortReason`` names them with the
codes a DSQL client sees. Every timestamp is integer nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class AbortReason:
    """Why an attempt did not commit. The strings are what results count."""

    CONFLICT = "OC000"             # SQLSTATE 40001: a written key committed after t_start
    SCHEMA_CHANGED = "OC001"       # SQLSTATE 40001: the catalog changed since t_start
    TOO_OLD = "TOO_OLD"            # t_start older than the 300 s transaction window
    PROMISE_EXPIRED = "PROMISE_EXPIRED"  # multi-shard votes' ranges did not overlap
    LIMIT_ROWS = "LIMIT_ROWS"      # over 3,000 modified rows (SQLSTATE 54000)
    LIMIT_BYTES = "LIMIT_BYTES"    # over 10 MiB of modified data (SQLSTATE 54000)
    LIMIT_DURATION = "LIMIT_DURATION"  # open for longer than 300 s
    DUPLICATE_KEY = "DUPLICATE_KEY"  # INSERT of a key that exists at t_start (23505)
    CLOCK_UNAVAILABLE = "CLOCK_UNAVAILABLE"  # a clock with no valid bound: no timestamps
    USER_ROLLBACK = "USER_ROLLBACK"  # the program rolled back by design (TPC-C's 1%)
    COMMIT_TIMEOUT = "COMMIT_TIMEOUT"  # no reply: the outcome is unknown to the client
    FENCED = "FENCED"  # the leader's epoch was superseded: its journal refused the append
    QP_UNAVAILABLE = "QP_UNAVAILABLE"  # the client's QP is down

    RETRYABLE = frozenset({CONFLICT, SCHEMA_CHANGED, PROMISE_EXPIRED, CLOCK_UNAVAILABLE,
                           COMMIT_TIMEOUT, FENCED, QP_UNAVAILABLE})


# Decisions of the conflict kernel (dsqlbench.kernels.conflicts), as int8 codes.
DECISION_COMMIT = 0
DECISION_CONFLICT = 1
DECISION_TOO_OLD = 2

DECISION_REASON = {DECISION_CONFLICT: AbortReason.CONFLICT, DECISION_TOO_OLD: AbortReason.TOO_OLD}


@dataclass(slots=True)
class CommitRequest:
    """A read-write transaction's commit, as one adjudicator shard receives it.

    ``keys`` are the keys this shard owns in the write set, plus keys read FOR UPDATE
    (distinct); ``writes`` holds the post-images of the whole transaction (only the
    final adjudicator journals them).
    """

    txn_id: int
    t_start_ns: int
    keys: list[int]
    writes: dict[int, bytes | None] = field(default_factory=dict)
    vote: bool = False
    schema_change: bool = False  # DDL: every shard votes, and later DML must see it


@dataclass(frozen=True, slots=True)
class Decision:
    """A single-shard adjudicator's answer: commit at ``t_commit_ns`` or abort."""

    txn_id: int
    committed: bool
    t_commit_ns: int = -1
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Vote:
    """A participant's vote in a multi-shard commit: yes with ``[low, high]`` or no."""

    txn_id: int
    shard: int
    yes: bool
    t_low_ns: int = -1
    t_high_ns: int = -1
    reason: str = ""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One entry of a journal: a committed transaction, or a heartbeat (no writes).

    A heartbeat at ``ts_ns`` promises that no later entry of this journal has a
    timestamp at or below ``ts_ns``.
    """

    ts_ns: int
    txn_id: int  # -1 for a heartbeat
    writes: tuple[tuple[int, bytes | None], ...] = ()
    decided_true_ns: int = 0  # simulated true time of the decision (for lag metrics)

    @property
    def is_heartbeat(self) -> bool:
        return self.txn_id < 0


@dataclass(frozen=True, slots=True)
class StorageBatch:
    """Records for one storage shard, complete up to ``watermark_ns``.

    ``keys``, ``ts`` and ``values`` are parallel; ts is non-decreasing. The storage
    replica may serve reads at any time ``<= watermark_ns`` once it has applied this.
    """

    shard: int
    watermark_ns: int
    keys: tuple[int, ...]
    ts: tuple[int, ...]
    values: tuple[bytes | None, ...]
    decided_true_ns: tuple[int, ...] = ()
