"""The simulated cluster behind ``dsqlbench serve``: statements in simulated time.

Role: one ``ClusterBackend`` per server holds the SimPy environment, the cluster (built
exactly as a run builds it: ``dsqlbench.sim.cluster.Cluster`` from the resolved config)
and the shared SQL engine. Each client connection owns a ``ServedSession``: an engine
``SqlSession`` pinned to one QP. ``statement(...)`` is a SimPy process body that
carries one statement through the cluster with the same request server the SQL
workloads and the shell use (``dsqlbench.sim.sql_client.serve``), adding the client
round trip and the QP's statement work; the time driver (``serve.timing``) runs it.

Invariants:
- every attempt is recorded once, when it ends, in the run's ``Recorder`` (the same
  columns a simulated run writes), so a serve session leaves a results folder that
  ``report`` and ``compare`` read;
- injected conflicts are drawn from the seeded stream ``serve/inject-conflicts`` and only
  for read-write commits of data (not DDL); an injected conflict never reaches the adjudicator, and is
  counted apart from the real ones (``counts["injected"]``);
- a session's open transaction is rolled back through the same path when it closes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import simpy

from dsqlbench.checkers.oracle import Oracle
from dsqlbench.components.messages import AbortReason
from dsqlbench.metrics import Recorder
from dsqlbench.seeds import stream
from dsqlbench.sim.cluster import Cluster, S
from dsqlbench.sim.sql_client import SqlAttempt, serve
from dsqlbench.sql.engine import SqlEngine
from dsqlbench.sql.protocol import Begin, Commit, CommitReply
from dsqlbench.sql.session import ABORTED, COMMITTED, ROLLED_BACK

TRIM_INTERVAL_NS = 10 * S
# An empty cluster still gets one key range per configured shard: tables keyed by
# integers (keys below 2**300) share the first range, the catalog's wide text keys the
# others. (With a single range a schema change would be a one-shard vote, which the
# cluster's adjudicator batch does not route.)
RANGE_HINT_KEYS = [1 << bits for bits in range(40, 1100)]
CONFLICT_HINT = re.compile(r"/\*\s*dsqlbench:\s*conflict\s*\*/|--\s*dsqlbench:\s*conflict", re.I)


@dataclass
class ServedSession:
    """One connection's state in the cluster."""

    number: int
    qp: int
    sql: object                      # SqlSession
    attempt: SqlAttempt = field(default_factory=lambda: SqlAttempt(None))
    attempt_started_ns: int = 0
    txn_ids: int = 0
    force_conflict: bool = False     # a hint asked this attempt's commit to fail

    @property
    def transaction_status(self) -> str:
        """ReadyForQuery's status: I idle, T in a transaction block, E in a failed one."""
        txn = self.sql.txn
        if txn is None or not txn.explicit:
            return "I"
        return "E" if txn.failed is not None else "T"


class ClusterBackend:
    """The cluster, its engine and its recorder, shared by every connection."""

    def __init__(self, cfg: dict, inject_conflicts_rate: float = 0.0, engine: SqlEngine | None = None,
                 items=()):
        assert 0.0 <= inject_conflicts_rate <= 1.0, inject_conflicts_rate
        self.cfg = cfg
        self.seed = cfg["run"]["seed"]
        self.env = simpy.Environment()
        self.recorder = Recorder(0, int(cfg["run"]["timeseries_interval_s"] * S))
        self.engine = engine or SqlEngine()
        items = list(items)
        self.cluster = Cluster(self.env, cfg, self.recorder, Oracle(),
                               [k for k, _ in items] or RANGE_HINT_KEYS)
        self.cluster.load_items(items)
        self.cluster.start()
        self._every(TRIM_INTERVAL_NS, self.cluster.trim)
        self.inject_rate = inject_conflicts_rate
        self._inject = stream(self.seed, "serve/inject-conflicts")
        self.counts = {"statements": 0, "committed": 0, "aborted": 0, "rolled_back": 0,
                       "injected": 0, "aborts": {}}
        self.limits = self.cluster.limits
        self._sessions = 0
        self.open_sessions: dict[int, ServedSession] = {}  # number -> session, until closed

    def _every(self, interval_ns: int, action) -> None:
        def tick(_event):
            action()
            self.env.timeout(interval_ns).callbacks.append(tick)

        self.env.timeout(interval_ns).callbacks.append(tick)

    def new_session(self, limits=None) -> ServedSession:
        self._sessions += 1
        number = self._sessions
        qp = (number - 1) % len(self.cluster.qps)
        sql = self.engine.session(limits or self.limits, f"serve-{number}")
        served = ServedSession(number, qp, sql)
        self.open_sessions[number] = served
        return served

    # -- one statement, as a SimPy process body ----------------------------------------
    def statement(self, served: ServedSession, sql: str, params: tuple = ()):
        """Generator (SimPy): run one statement; returns ``(StatementResult, latency_ns)``."""
        env, network = self.env, self.cluster.network
        started = env.now
        self.counts["statements"] += 1
        if CONFLICT_HINT.search(sql):
            served.force_conflict = True
        to_qp_ns = network.client_delay_ns()  # then it queues for one of the QP's workers
        yield env.timeout(to_qp_ns + self.cluster.qp_statement_ns(served.qp, env.now + to_qp_ns))
        result = yield from self._drive(served, served.sql.execute(sql, params))
        yield env.timeout(network.client_delay_ns())
        return result, env.now - started

    def close(self, served: ServedSession):
        """Generator (SimPy): roll back what the connection left open; the session ends."""
        yield from self._drive(served, served.sql.close())
        self.open_sessions.pop(served.number, None)

    def _drive(self, served: ServedSession, program):
        times = {"read_ns": 0, "read_wait_ns": 0, "commit_ns": 0}
        reply = None
        try:
            request = program.send(None)
            while True:
                if isinstance(request, Begin):
                    self._begin(served)
                    times = {"read_ns": 0, "read_wait_ns": 0, "commit_ns": 0}
                if isinstance(request, Commit) and self._inject_now(served, request):
                    reply = CommitReply(False, reason=AbortReason.CONFLICT)
                else:
                    reply = yield from serve(self, served.qp, served.attempt, request, times)
                request = program.send(reply)
        except StopIteration as stop:
            result = stop.value
        if result is not None and result.attempt_ended:
            self._record(served, result, times)
        return result

    def _begin(self, served: ServedSession) -> None:
        served.txn_ids += 1
        txn_id = served.number << 32 | served.txn_ids
        served.attempt = SqlAttempt(self.cluster.begin(served.qp, txn_id, 1))
        served.attempt_started_ns = self.env.now

    def _inject_now(self, served: ServedSession, request: Commit) -> bool:
        """Whether this read-write commit fails with an injected OC000 (seeded)."""
        if request.schema_change or not (request.writes or request.lock_keys):
            return False  # read-only commits never abort; DDL is not a data conflict
        forced, served.force_conflict = served.force_conflict, False
        drawn = self.inject_rate > 0 and self._inject.random() < self.inject_rate
        if forced or drawn:
            self.counts["injected"] += 1
            return True
        return False

    def _record(self, served: ServedSession, result, times: dict) -> None:
        served.force_conflict = False
        ended = result.attempt_ended
        self.counts[ended] += 1
        reason = ""
        if ended == ABORTED:
            reason = result.abort_reason or AbortReason.CONFLICT
            self.counts["aborts"][reason] = self.counts["aborts"].get(reason, 0) + 1
        elif ended == ROLLED_BACK:
            reason = AbortReason.USER_ROLLBACK
        txn = served.attempt.txn
        commit = served.attempt.commit_result
        place = self.cluster.qp_places[served.qp]
        now = self.env.now
        self.recorder.attempt(
            txn_id=txn.txn_id, attempt=1, txn_type="serve", client=served.number,
            qp=f"qp-{served.qp}", region=self.cluster.placement.region_names[place[0]],
            az=f"az{place[1]}", intended_start_ns=served.attempt_started_ns,
            start_ns=served.attempt_started_ns, end_ns=now, t_start_ns=txn.t_start_ns,
            t_commit_ns=result.t_commit_ns if ended == COMMITTED else -1,
            outcome="committed" if ended == COMMITTED else "aborted", abort_reason=reason,
            final=True, read_wait_ns=times["read_wait_ns"], read_ns=times["read_ns"],
            commit_ns=times["commit_ns"],
            adjudicate_ns=commit.adjudicate_ns if commit else 0,
            journal_ns=commit.journal_ns if commit else 0,
            commit_wait_ns=commit.commit_wait_ns if commit else 0,
            qp_clock_offset_ns=self.cluster.qps[served.qp].clock.offset_at(served.attempt_started_ns),
            keys_written=len(txn.writes), shards=commit.shards if commit else 0)
