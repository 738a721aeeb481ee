"""A timeless harness: SQL sessions against the real component cores, no SimPy.

Role: tests (and anyone exploring the engine) drive sessions' generators here. Each
request is served at once against the cores the simulator uses: one ``StorageReplica``
(MVCC reads as of ``t_start``, commits applied immediately), one ``Adjudicator`` with
the real ``ConflictTable`` (first committer wins), and a schema-change rule (a commit
whose ``t_start`` predates the last committed schema change fails with OC001, as the
runtime's adjudicator does for ``schema_change`` commits).

Time is a logical clock that ticks ``ns_per_tick`` per request, so every run is
deterministic; two sessions' statements (or single requests, ``Pending.step``) can be
interleaved in any chosen order, Hermitage-style.

Invariants:
- every read of an attempt is at its ``t_start``; the replica's watermark follows the
  clock, so a read never waits;
- a commit's ``t_commit`` comes from the adjudicator and exceeds every earlier commit;
  its writes are applied at that time, all or none;
- a read-only commit (no writes, no FOR UPDATE keys, no DDL) is a local no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsqlbench.components.adjudicator import Adjudicator
from dsqlbench.components.messages import CommitRequest, StorageBatch
from dsqlbench.components.qp import Limits
from dsqlbench.components.storage import StorageReplica
from dsqlbench.kernels import ConflictTable
from dsqlbench.sql.engine import SqlEngine
from dsqlbench.sql.protocol import (
    Begin,
    BeginReply,
    Commit,
    CommitReply,
    PointRead,
    ReadReply,
    Rollback,
    Scan,
    evaluate_scan,
)
from dsqlbench.sql.session import SqlSession, StatementResult

EPOCH_US = 1_735_689_600_000_000   # 2025-01-01T00:00:00Z: what CURRENT_TIMESTAMP starts at
WINDOW_NS = 1 << 60                # the harness never rejects a transaction as too old


@dataclass
class HarnessCounts:
    requests: int = 0
    commits: int = 0
    read_only_commits: int = 0
    aborts: dict = field(default_factory=dict)  # reason -> count


class Harness:
    """Serves protocol requests from sessions against storage and an adjudicator."""

    def __init__(self, engine: SqlEngine | None = None, ns_per_tick: int = 1000):
        assert ns_per_tick > 0
        self.engine = engine or SqlEngine()
        self.ns_per_tick = ns_per_tick
        self.replica = StorageReplica(0, "harness")
        self.adjudicator = Adjudicator(0, ConflictTable(WINDOW_NS), promise_ns=1)
        self.now_ns = 0
        self.counts = HarnessCounts()
        self._t_start: dict[int, int] = {}  # id(session) -> t_start of its open attempt
        self._txn_ids = 0

    # -- setup --------------------------------------------------------------------------
    def bootstrap(self, schema_sql: str) -> None:
        """Create a schema at catalog version 0 and store its catalog rows."""
        self.load(self.engine.bootstrap(schema_sql))

    def load(self, pairs) -> None:
        """Put ``(key, value)`` pairs into storage at once, outside any transaction."""
        t_ns = self._tick()
        pairs = list(pairs)
        replica = self.replica
        if not replica.versions:
            replica.load([k for k, _ in pairs], [v for _, v in pairs], t_ns)
            return
        # Bulk merge (the replica's apply() inserts keys one by one, too slow for loads).
        for key, value in pairs:
            history = replica.versions.get(key)
            if history is None:
                replica.versions[key] = [(t_ns, value)]
            else:
                history.append((t_ns, value))
                replica.multi_version_keys[key] = None
        replica.sorted_keys = sorted(replica.versions)

    def session(self, limits: Limits = Limits(), name: str = "session") -> SqlSession:
        return self.engine.session(limits, name)

    # -- driving ------------------------------------------------------------------------
    def run(self, session: SqlSession, sql: str, params: tuple = ()) -> StatementResult:
        """Execute one statement to completion."""
        return self.drive(session, session.execute(sql, params))

    def drive(self, session: SqlSession, generator):
        """Run any generator that yields requests on behalf of ``session`` (a statement,
        or a workload's transaction program) and return its value."""
        pending = Pending(self, session, generator)
        while not pending.done:
            pending.step()
        return pending.result

    def interleave(self, tasks: list) -> list:
        """Drive several ``(session, generator)`` tasks one request at a time, in turn
        (round robin, deterministic); returns their values in task order. A task is any
        generator of requests, e.g. a client loop running many transactions."""
        pending = [Pending(self, session, generator) for session, generator in tasks]
        while not all(p.done for p in pending):
            for p in pending:
                if not p.done:
                    p.step()
        return [p.result for p in pending]

    def start(self, session: SqlSession, sql: str, params: tuple = ()) -> "Pending":
        """Begin a statement; advance it request by request with ``Pending.step``."""
        return Pending(self, session, session.execute(sql, params))

    # -- serving ------------------------------------------------------------------------
    def serve(self, session: SqlSession, request):
        self.counts.requests += 1
        if isinstance(request, Begin):
            t_ns = self._tick()
            assert id(session) not in self._t_start, "Begin inside an open attempt"
            self._t_start[id(session)] = t_ns
            return BeginReply(t_ns, EPOCH_US + t_ns // 1000)
        t_start = self._t_start.get(id(session))
        assert t_start is not None, f"{type(request).__name__} outside an attempt"
        if isinstance(request, PointRead):
            self._tick()
            version = self.replica.read(request.key, t_start)
            if version is None:
                return ReadReply(0, None)
            return ReadReply(version[0], version[1])
        if isinstance(request, Scan):
            self._tick()
            rows = self._live_rows(request.low_key, request.high_key, t_start, request.descending)
            return evaluate_scan(request, rows)
        if isinstance(request, Commit):
            del self._t_start[id(session)]
            return self._commit(request, t_start)
        if isinstance(request, Rollback):
            del self._t_start[id(session)]
            return None
        raise AssertionError(f"unknown request {request!r}")

    def _live_rows(self, low: int, high: int, t_ns: int, descending: bool):
        for key, (_, value) in self.replica.versions_in_range(low, high, t_ns, descending):
            if value is not None:
                yield key, value

    def _commit(self, request: Commit, t_start: int) -> CommitReply:
        if not request.writes and not request.lock_keys and not request.schema_change:
            self.counts.read_only_commits += 1
            return CommitReply(True)
        keys = sorted(set(request.writes) | set(request.lock_keys))  # the adjudicator folds wide keys
        self._txn_ids += 1
        decision = self._decide(CommitRequest(self._txn_ids, t_start, keys, vote=request.schema_change,
                                              schema_change=request.schema_change))
        if not decision.committed:
            return self._abort(decision.reason)
        t_commit = decision.t_commit_ns
        self.now_ns = max(self.now_ns, t_commit)
        written = sorted(request.writes)
        self.replica.apply(StorageBatch(0, t_commit, tuple(written), (t_commit,) * len(written),
                                        tuple(request.writes[k] for k in written)))
        self.counts.commits += 1
        return CommitReply(True, t_commit)

    def _decide(self, request: CommitRequest):
        """The real adjudicator core decides: a plain check, or for DDL the schema-change
        vote (one shard: vote, finalize, resolve), which makes it refuse, with OC001,
        every transaction that started before the change and commits after it."""
        if not request.schema_change:
            return self.adjudicator.adjudicate([request], self._tick())[0]
        vote, = self.adjudicator.vote([request], self._tick())
        decision = self.adjudicator.finalize(request.txn_id, [vote])
        if vote.yes:
            self.adjudicator.resolve(request.txn_id, decision.t_commit_ns if decision.committed else None)
        return decision

    def _abort(self, reason: str) -> CommitReply:
        self.counts.aborts[reason] = self.counts.aborts.get(reason, 0) + 1
        return CommitReply(False, reason=reason)

    def _tick(self) -> int:
        self.now_ns += self.ns_per_tick
        self.replica.apply(StorageBatch(0, self.now_ns, (), (), ()))
        return self.now_ns


class Pending:
    """A generator being driven one request at a time (for interleavings)."""

    def __init__(self, harness: Harness, session: SqlSession, generator):
        self.harness = harness
        self.session = session
        self.generator = generator
        self.done = False
        self.result = None
        self._advance(None, first=True)

    def _advance(self, reply, first: bool = False) -> None:
        try:
            self.request = next(self.generator) if first else self.generator.send(reply)
        except StopIteration as stop:
            self.done, self.result, self.request = True, stop.value, None

    def step(self) -> None:
        """Serve the pending request and advance to the next one."""
        assert not self.done
        self._advance(self.harness.serve(self.session, self.request))

    def finish(self):
        while not self.done:
            self.step()
        return self.result
