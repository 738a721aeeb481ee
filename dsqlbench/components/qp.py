"""Query processor (QP): runs a client's transactions; picks snapshots; spools writes.

Role in the pipeline: at BEGIN the QP takes ``t_start`` from its own clock (``latest``
by default, see DESIGN.md); every read is served by storage "as of ``t_start``"; writes
are spooled here as post-images until COMMIT, so a transaction reads its own writes
and nothing is visible to others before commit. A read-only COMMIT is a local no-op
that never aborts; a read-write COMMIT groups the write set by adjudicator shard and
runs the commit protocol (one shard: a single request; several: votes then a final
adjudicator). The QP caches no data, talks to no other QP and makes nothing durable.

Invariants:
- ``t_start`` is fixed for the whole attempt; a retry is a new attempt with a new one;
- DSQL's limits hold for every transaction: at most ``max_modified_rows`` rows and
  ``max_modified_bytes`` bytes modified, at most ``max_txn_duration_ns`` open;
  exceeding one aborts the attempt with a named reason (not retryable).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsqlbench.clock import NodeClock, t_start_from
from dsqlbench.components.messages import AbortReason, CommitRequest
from dsqlbench.components.routing import KeyRanges


@dataclass(frozen=True, slots=True)
class Limits:
    max_modified_rows: int = 3000
    max_modified_bytes: int = 10 * 1024 * 1024
    max_txn_duration_ns: int = 300 * 10**9


@dataclass(slots=True)
class Transaction:
    """One attempt of a transaction, as the QP holds it."""

    txn_id: int
    attempt: int
    t_start_ns: int
    began_true_ns: int
    writes: dict[int, bytes | None] = field(default_factory=dict)
    modified_bytes: int = 0
    # (key, t_commit of the version returned or 0 if absent) for the consistency oracle
    reads: list[tuple[int, int]] = field(default_factory=list)
    abort_reason: str = ""
    micro_results: list | None = None  # list-append: the micro-ops as executed
    lock_keys: tuple[int, ...] = ()  # read FOR UPDATE: conflict-checked, not written
    uid: int = 0  # unique per transaction run-wide: what adjudicators and checkers see
    schema_change: bool = False  # DDL: every adjudicator shard takes part

    @property
    def read_only(self) -> bool:
        return not self.writes and not self.lock_keys and not self.schema_change

    def own_write(self, key: int) -> tuple[bool, bytes | None]:
        """Read-your-own-writes: (True, post-image) if this attempt wrote ``key``."""
        if key in self.writes:
            return True, self.writes[key]
        return False, None


class QueryProcessor:
    __slots__ = ("index", "clock", "t_start_policy", "limits", "adjudicator_ranges",
                 "refuse_invalid_clock", "began", "read_only_commits")

    def __init__(self, index: int, clock: NodeClock, t_start_policy: str, limits: Limits,
                 adjudicator_ranges: KeyRanges, refuse_invalid_clock: bool = True):
        self.index = index
        self.clock = clock
        self.t_start_policy = t_start_policy
        self.limits = limits
        self.adjudicator_ranges = adjudicator_ranges
        self.refuse_invalid_clock = refuse_invalid_clock
        self.began = 0
        self.read_only_commits = 0

    def begin(self, txn_id: int, attempt: int, true_now_ns: int) -> Transaction:
        """Start an attempt; ``abort_reason`` is set when the clock cannot be trusted."""
        reading = self.clock.read(true_now_ns)
        self.began += 1
        txn = Transaction(txn_id, attempt, t_start_from(reading, self.t_start_policy),
                          true_now_ns)
        if not reading.valid and self.refuse_invalid_clock:
            txn.abort_reason = AbortReason.CLOCK_UNAVAILABLE
        return txn

    def write(self, txn: Transaction, key: int, value: bytes | None) -> str:
        """Spool a post-image; returns an abort reason if a DSQL limit is exceeded."""
        previous = txn.writes.get(key)
        txn.modified_bytes += (len(value) if value else 0) - (len(previous) if previous else 0)
        txn.writes[key] = value
        if len(txn.writes) > self.limits.max_modified_rows:
            return AbortReason.LIMIT_ROWS
        if txn.modified_bytes > self.limits.max_modified_bytes:
            return AbortReason.LIMIT_BYTES
        return ""

    def check_duration(self, txn: Transaction, true_now_ns: int) -> str:
        if true_now_ns - txn.began_true_ns > self.limits.max_txn_duration_ns:
            return AbortReason.LIMIT_DURATION
        return ""

    def commit_requests(self, txn: Transaction) -> dict[int, CommitRequest]:
        """The write set grouped by adjudicator shard, one request per shard.

        One shard: a plain commit. Several: every request is a vote, and the lowest
        shard is the final adjudicator that journals the whole transaction.
        """
        assert not txn.read_only
        by_shard: dict[int, list[int]] = {}
        if txn.schema_change:  # a schema change is voted on by every shard
            by_shard = {shard: [] for shard in range(self.adjudicator_ranges.count)}
        shard_of = self.adjudicator_ranges.shard_of
        for key in dict.fromkeys([*txn.writes, *txn.lock_keys]):
            by_shard.setdefault(shard_of(key), []).append(key)
        vote = len(by_shard) > 1 or txn.schema_change
        return {
            shard: CommitRequest(txn.uid, txn.t_start_ns, keys, txn.writes, vote,
                                 txn.schema_change)
            for shard, keys in sorted(by_shard.items())
        }


class RetryPolicy:
    """Retries of retryable aborts as new attempts, with capped exponential backoff.

    ``backoff_ns(attempt, u)`` takes a uniform draw ``u`` in [0, 1) from the caller's
    seeded stream (full jitter when enabled), so the policy itself holds no randomness.
    """

    __slots__ = ("max_attempts", "backoff_ns_initial", "backoff_ns_max", "jitter")

    def __init__(self, max_attempts: int, backoff_ms: float, backoff_max_ms: float,
                 jitter: bool):
        assert max_attempts >= 1
        self.max_attempts = max_attempts
        self.backoff_ns_initial = int(backoff_ms * 1e6)
        self.backoff_ns_max = int(backoff_max_ms * 1e6)
        self.jitter = jitter

    def should_retry(self, reason: str, attempt: int) -> bool:
        return reason in AbortReason.RETRYABLE and attempt < self.max_attempts

    def backoff_ns(self, attempt: int, uniform: float) -> int:
        ceiling = min(self.backoff_ns_max, self.backoff_ns_initial << min(attempt - 1, 30))
        return int(ceiling * uniform) if self.jitter else ceiling
