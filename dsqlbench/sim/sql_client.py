"""SQL sessions inside the simulation: the runtime side of ``dsqlbench.sql.protocol``.

Role: the SQL engine is sans-I/O; a session's ``execute`` yields requests. Here each
request is carried out against the simulated cluster with its costs in virtual time:

- ``Begin``: the QP takes ``t_start`` from its clock (the attempt's first Begin reuses
  the transaction the driver began when the client's first statement reached the QP);
- ``PointRead`` / ``Scan``: reads at ``t_start`` from the storage replicas of the QP's
  AZ, with pushdown (``Cluster.scan_range``);
- ``Commit``: a local no-op when nothing was written or locked; else the commit
  protocol, with FOR UPDATE keys in the conflict check and DDL voted by every shard;
- ``Rollback``: local;
- each statement after the first costs one more client round trip and the QP's
  statement work (``TimedSession`` marks statement boundaries for this).

``serve_offline`` runs a session program with no time at all against caught-up
replicas, for end-of-run audits (TPC-C consistency, pgbench balances).
"""

from __future__ import annotations

from dsqlbench.components.messages import AbortReason
from dsqlbench.sql.protocol import (
    Begin,
    BeginReply,
    Commit,
    CommitReply,
    PointRead,
    ReadReply,
    Rollback,
    Scan,
    ScanReply,
    evaluate_scan,
)
from dsqlbench.sql.columnar import fold_image, foldable_columns

EPOCH_US = 1_700_000_000_000_000  # what CURRENT_TIMESTAMP shows at clock reading 0


class StatementStart:
    """Marker a ``TimedSession`` yields before each statement (not a protocol request)."""


STATEMENT_START = StatementStart()


class TimedSession:
    """A session whose every ``execute`` first yields ``STATEMENT_START``."""

    def __init__(self, session):
        self._session = session

    def execute(self, sql: str, params: tuple = ()):
        yield STATEMENT_START
        return (yield from self._session.execute(sql, params))

    def __getattr__(self, name):
        return getattr(self._session, name)


class SqlAttempt:
    """The runtime's state for one attempt of a SQL program."""

    __slots__ = ("txn", "begun", "statements", "commit_result", "rows_examined",
                 "rows_returned", "bytes_returned", "sent_ns")

    def __init__(self, txn):
        self.txn = txn
        self.begun = False
        self.statements = 0
        self.commit_result = None
        self.rows_examined = 0
        self.rows_returned = 0
        self.bytes_returned = 0
        self.sent_ns = 0  # when the client sent the current statement


def serve(driver, qp: int, attempt: SqlAttempt, request, times: dict):
    """Generator: carry out one request in simulated time; returns its reply."""
    cluster, env = driver.cluster, driver.env
    if request is STATEMENT_START:
        attempt.statements += 1
        delay = 0
        if attempt.statements > 1:  # the previous statement's reply, then this one
            reply_ns = cluster.network.client_delay_ns()
            delay = reply_ns + cluster.network.client_delay_ns()
            finish_commit_statement(driver, times, reply_ns)
            attempt.sent_ns = env.now + reply_ns  # the client sends it on that reply
        else:
            attempt.sent_ns = env.now - times["client_rtt_ns"]  # the attempt's first trip
        delay += cluster.qp_statement_ns(qp, env.now + delay)  # queued where it arrives
        yield env.timeout(delay)
        return None
    if isinstance(request, Begin):
        if attempt.begun:  # a later transaction of the same program
            cluster.end(attempt.txn)
            attempt.txn = cluster.begin(qp, attempt.txn.txn_id, attempt.txn.attempt)
        attempt.begun = True
        reading_us = max(0, attempt.txn.t_start_ns) // 1000
        return BeginReply(attempt.txn.t_start_ns, EPOCH_US + reading_us)
    if isinstance(request, PointRead):
        started = env.now
        version, wait_ns = yield from cluster.read(qp, attempt.txn, request.key)
        times["read_ns"] += env.now - started
        times["read_wait_ns"] += wait_ns
        if version is None:
            return ReadReply(0, None)
        return ReadReply(version[0], version[1])
    if isinstance(request, Scan):
        started = env.now
        reply, wait_ns = yield from cluster.scan_range(qp, attempt.txn, request)
        times["read_ns"] += env.now - started
        times["read_wait_ns"] += wait_ns
        attempt.rows_examined += reply.rows_examined
        attempt.rows_returned += reply.rows_returned
        attempt.bytes_returned += reply.bytes_returned
        return reply
    if isinstance(request, Commit):
        return (yield from _commit(driver, qp, attempt, request, times))
    assert isinstance(request, Rollback), f"unknown request {request!r}"
    return None


def _commit(driver, qp: int, attempt: SqlAttempt, request: Commit, times: dict):
    cluster, txn = driver.cluster, attempt.txn
    if not request.writes and not request.lock_keys and not request.schema_change:
        return CommitReply(True)  # read-only: local to the QP, never aborts
    txn.lock_keys = tuple(request.lock_keys)
    txn.schema_change = request.schema_change
    reason = ""
    for key, value in request.writes.items():
        reason = reason or cluster.qps[qp].write(txn, key, value)
    reason = reason or cluster.qps[qp].check_duration(txn, driver.env.now)
    if reason:
        return CommitReply(False, reason=reason)
    started = driver.env.now
    result = yield from cluster.commit(qp, txn)
    times["commit_ns"] += driver.env.now - started  # the attempt's commit phase: all its commits
    times["commit_statement"] = attempt.sent_ns  # its latency is known once the reply lands
    attempt.commit_result = result
    return CommitReply(result.committed, result.t_commit_ns, result.reason)


def finish_commit_statement(driver, times: dict, reply_ns: int) -> None:
    """Record the latency of the COMMIT whose reply is on its way (``reply_ns`` from
    now): each COMMIT of a program is its own statement, from the client sending it
    to the reply arriving."""
    sent_ns = times.pop("commit_statement", None)
    if sent_ns is not None:
        arrived_ns = driver.env.now + reply_ns
        driver.recorder.statement("commit", arrived_ns - sent_ns, arrived_ns)


def serve_offline(cluster, program):
    """Run a session program with no simulated time against one caught-up replica per
    shard, at the newest snapshot every shard can serve; returns its result."""
    replicas = cluster.audit_replicas()
    snapshot_ns = min(r.applied_watermark_ns for r in replicas)
    reply = None
    try:
        request = program.send(None)
        while True:
            reply = _serve_now(cluster, replicas, snapshot_ns, request)
            request = program.send(reply)
    except StopIteration as stop:
        return stop.value


def _serve_now(cluster, replicas, snapshot_ns: int, request):
    if request is STATEMENT_START or isinstance(request, Rollback):
        return None
    if isinstance(request, Begin):
        return BeginReply(snapshot_ns, EPOCH_US + snapshot_ns // 1000)
    if isinstance(request, PointRead):
        version = replicas[cluster.storage_ranges.shard_of(request.key)].read(request.key, snapshot_ns)
        return ReadReply(version[0], version[1]) if version else ReadReply(0, None)
    if isinstance(request, Scan):
        folded = _fold_columnar(cluster, replicas, snapshot_ns, request)
        if folded is not None:
            return folded
        rows = ((key, version[1])
                for shard in cluster.shards_of_range(request.low_key, request.high_key,
                                                     request.descending)
                for key, version in replicas[shard].versions_in_range(
                    request.low_key, request.high_key, snapshot_ns, request.descending)
                if version[1] is not None)
        return evaluate_scan(request, rows)
    assert isinstance(request, Commit)
    assert not request.writes and not request.lock_keys, "audits only read"
    return CommitReply(True)


def _fold_columnar(cluster, replicas, snapshot_ns: int, request: Scan) -> ScanReply | None:
    """An unfiltered aggregate over every row of the range, with the bulk-loaded
    images' rows folded by columns (``sql.columnar``); None when it cannot be."""
    columns = foldable_columns(request.aggregate)
    if columns is None or request.row_filter is not None or request.limit is not None:
        return None
    shards = cluster.shards_of_range(request.low_key, request.high_key)
    images = [replicas[s].image_rows(request.low_key, request.high_key, snapshot_ns) for s in shards]
    if not any(live.any() for _, live in images):
        return None  # nothing loaded here: the rows' fold is the whole answer
    if any(c is not None and c not in image.columns for image, _ in images for c in columns):
        return None  # a column the loader did not decode
    listed = ((key, version[1]) for s in shards
              for key, version in replicas[s].listed_versions_in_range(
                  request.low_key, request.high_key, snapshot_ns)
              if version[1] is not None)
    reply = evaluate_scan(request, listed)
    partial, examined = reply.aggregate, reply.rows_examined
    for image, live in images:
        rows = int(live.sum())
        values = [None if c is None else image.columns[c][live] for c in columns]
        partial = fold_image(request.aggregate, partial, values, rows)
        examined += rows
    return ScanReply([], partial, examined, 1, len(partial))


def outcome_result(outcome, attempt: SqlAttempt):
    """The attempt's CommitResult from how the program ended."""
    from dsqlbench.sim.cluster import CommitResult

    if outcome.committed:
        if attempt.commit_result is not None and attempt.commit_result.committed:
            return attempt.commit_result
        return CommitResult(True, shards=0)
    if outcome.rolled_back:
        return CommitResult(False, reason=AbortReason.USER_ROLLBACK)
    error = outcome.error
    code = getattr(error, "code", "") or ""
    if code in AbortReason.RETRYABLE:
        return CommitResult(False, reason=code)
    if attempt.commit_result is not None and not attempt.commit_result.committed:
        return attempt.commit_result
    return CommitResult(False, reason=f"SQL_{getattr(error, 'sqlstate', 'XX000')}")
