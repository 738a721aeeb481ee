"""The load generator: clients that turn workload operations into transactions.

Closed loop: ``clients.count`` clients, each running one transaction at a time with
``think_time_ms`` between them. Open loop: Poisson arrivals at ``rate_per_s`` served by
a pool of ``clients.count`` sessions; an arrival that finds every session busy queues,
and its latency counts from when it was due (its arrival), so queueing is not hidden
(no coordinated omission).

Every operation is an autocommit transaction (as YCSB runs over JDBC), except
read-modify-write, which is ``BEGIN; SELECT; UPDATE; COMMIT`` in two client round trips.
An UPDATE reads the row first (DSQL does), an INSERT checks the primary key by a read.
Retryable aborts (OC000, OC001) are retried as new attempts with a fresh ``t_start``,
after a capped, jittered exponential backoff drawn from the run seed.

Clients are spread over QPs round-robin; a client's reads go to the storage replicas in
its QP's AZ.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import simpy

from dsqlbench.components.messages import AbortReason
from dsqlbench.components.qp import RetryPolicy, Transaction
from dsqlbench.sim.cluster import CommitResult, Cluster, MS
from dsqlbench.seeds import BufferedDraws, stream
from dsqlbench.sim.sql_client import SqlAttempt, TimedSession, finish_commit_statement
from dsqlbench.sim.sql_client import outcome_result as sql_outcome_result
from dsqlbench.sim.sql_client import serve as serve_sql
from dsqlbench.workload.bank import decode_balance, encode_balance
from dsqlbench.workload.listappend import decode_list, encode_list

ATTEMPTS_PER_TXN_MAX = 1024  # value stamps are txn_id * this; retries stay below it


class Driver:
    def __init__(self, env: simpy.Environment, cluster: Cluster, workload, cfg: dict,
                 recorder, oracle, stop: simpy.Event):
        self.env = env
        self.cluster = cluster
        self.workload = workload
        self.recorder = recorder
        self.oracle = oracle
        self.stop = stop
        clients = cfg["clients"]
        self.mode = clients["mode"]
        self.client_count = clients["count"]
        self.think_ns = int(clients["think_time_ms"] * MS)
        self.rate_per_s = clients.get("rate_per_s")
        retry = cfg["retry"]
        self.retry = RetryPolicy(retry["max_attempts"], retry["backoff_ms"],
                                 retry["backoff_max_ms"], retry["jitter"])
        assert self.retry.max_attempts < ATTEMPTS_PER_TXN_MAX
        seed = cfg["run"]["seed"]
        backoff_rng = stream(seed, "driver/backoff")
        self._uniform = BufferedDraws(backoff_rng.random)
        self.value_bytes = cfg["load"]["value_bytes"]
        self.warmup_end_ns = int(cfg["run"]["warmup_s"] * 1e9)
        self.transactions_max = cfg["run"]["transactions"]
        self.measured_done = 0
        self.attempts_total = 0  # warm-up included: the lab's work, for host rates
        self.history: list[dict] = []  # list-append transactions, for the Elle checker
        self.unknown_outcomes: list[int] = []  # uids whose commit reply never came
        self.next_txn_id = 1
        self.qp_count = len(cluster.qps)
        # Each QP's (name, region, AZ) labels, made once: one string object per QP
        # rather than per recorded attempt.
        self._qp_labels = [(f"qp-{i}", cluster.placement.region_names[region], f"az{az}")
                           for i, (region, az) in enumerate(cluster.qp_places)]
        self._arrival_rng = stream(seed, "driver/arrivals")

    def value_for(self, txn_id: int, key: int) -> bytes:
        """A post-image of ``value_bytes`` bytes that names the transaction that wrote it."""
        stamp = (txn_id * ATTEMPTS_PER_TXN_MAX).to_bytes(8, "little") + key.to_bytes(8, "little")
        return (stamp * (self.value_bytes // 16 + 1))[:self.value_bytes]

    def start(self) -> None:
        if self.mode == "closed":
            for client in range(self.client_count):
                self.env.process(self._closed_client(client))
        else:
            self.env.process(self._open_arrivals())

    # -- loops -------------------------------------------------------------------------
    def _closed_client(self, client: int):
        qp = client % self.qp_count
        while True:
            op = self.workload.next_operation()
            qp = self.cluster.live_qp(qp)  # a client whose QP died reconnects elsewhere
            yield from self._transaction(client, qp, op, self.env.now)
            if self.think_ns:
                yield self.env.timeout(self.think_ns)

    def _open_arrivals(self):
        mean_gap_ns = 1e9 / self.rate_per_s
        gaps = BufferedDraws(lambda n: np.maximum(
            self._arrival_rng.exponential(mean_gap_ns, n), 1).astype(np.int64))
        free = list(range(self.client_count - 1, -1, -1))
        backlog: deque = deque()
        while True:
            yield self.env.timeout(gaps.next())
            op = self.workload.next_operation()
            if free:
                self.env.process(self._session(free.pop(), op, self.env.now, free, backlog))
            else:
                backlog.append((op, self.env.now))

    def _session(self, session: int, op, intended_ns: int, free: list, backlog: deque):
        qp = session % self.qp_count
        while True:
            yield from self._transaction(session, qp, op, intended_ns)
            if not backlog:
                free.append(session)
                return
            op, intended_ns = backlog.popleft()

    # -- one logical transaction, with retries -------------------------------------------------
    def _transaction(self, client: int, qp: int, op, intended_ns: int):
        txn_id = self.next_txn_id
        self.next_txn_id += 1
        attempt = 1
        while True:
            start_ns = self.env.now
            qp = self.cluster.live_qp(qp)
            txn, result, times = yield from self._attempt(qp, op, txn_id, attempt)
            reason = result.reason if not result.committed else ""
            final = result.committed or not self.retry.should_retry(reason, attempt)
            self._record(client, qp, op, txn, result, times, intended_ns, start_ns, final)
            if final:
                break
            backoff_ns = self.retry.backoff_ns(attempt, self._uniform.next())
            if backoff_ns:
                yield self.env.timeout(backoff_ns)
            attempt += 1
        if op.kind == "insert":
            self.workload.acknowledge_insert(op)
        if intended_ns >= self.warmup_end_ns:
            self.measured_done += 1
            if self.transactions_max and self.measured_done >= self.transactions_max \
                    and not self.stop.triggered:
                self.stop.succeed()

    def _attempt(self, qp: int, op, txn_id: int, attempt: int):
        """Generator: one attempt; returns (txn, CommitResult, phase times)."""
        cluster, env = self.cluster, self.env
        to_qp = cluster.network.client_delay_ns()
        yield env.timeout(to_qp)
        txn = cluster.begin(qp, txn_id, attempt)
        times = {"read_ns": 0, "read_wait_ns": 0, "commit_ns": 0, "client_rtt_ns": to_qp}
        if txn.abort_reason:  # the QP could not even begin (no trustworthy clock)
            result = CommitResult(False, reason=txn.abort_reason)
        else:
            result = yield from _OPERATIONS[op.kind](self, qp, txn, op, times)
        back = cluster.network.client_delay_ns()
        times["client_rtt_ns"] += back
        finish_commit_statement(self, times, back)  # a SQL program's last COMMIT
        yield env.timeout(back)
        return times.pop("txn", txn), result, times

    # -- operations: each a generator returning a CommitResult ------------------------------
    def _read_row(self, qp: int, txn: Transaction, key: int, times: dict):
        started = self.env.now
        version, wait_ns = yield from self.cluster.read(qp, txn, key, self.cluster.qp_statement_ns(qp))
        times["read_ns"] += self.env.now - started
        times["read_wait_ns"] += wait_ns
        return None if version is None or version[1] is None else version  # deleted: absent

    def _op_read(self, qp, txn, op, times):
        yield from self._read_row(qp, txn, op.key, times)
        return self._commit_read_only(qp)

    def _op_scan(self, qp, txn, op, times):
        started = self.env.now
        yield self.env.timeout(self.cluster.qp_statement_ns(qp))
        _rows, wait_ns = yield from self.cluster.scan(qp, txn, op.key, op.scan_length)
        times["read_ns"] += self.env.now - started
        times["read_wait_ns"] += wait_ns
        return self._commit_read_only(qp)

    def _op_update(self, qp, txn, op, times):
        version = yield from self._read_row(qp, txn, op.key, times)
        if version is None:  # UPDATE of a row that does not exist: 0 rows, read-only
            return self._commit_read_only(qp)
        return (yield from self._write_and_commit(qp, txn, op.key, times))

    def _op_insert(self, qp, txn, op, times):
        version = yield from self._read_row(qp, txn, op.key, times)
        if version is not None:
            return CommitResult(False, reason=AbortReason.DUPLICATE_KEY)
        return (yield from self._write_and_commit(qp, txn, op.key, times))

    def _op_rmw(self, qp, txn, op, times):
        yield from self._read_row(qp, txn, op.key, times)
        # The SELECT's result goes back to the client, which then sends the UPDATE.
        rtt = self.cluster.network.client_delay_ns() + self.cluster.network.client_delay_ns()
        yield self.env.timeout(rtt)
        version = yield from self._read_row(qp, txn, op.key, times)
        if version is None:
            return self._commit_read_only(qp)
        return (yield from self._write_and_commit(qp, txn, op.key, times))

    def _op_transfer(self, qp, txn, op, times):
        """Bank: move ``op.amount`` from ``op.key`` to ``op.key2`` (both read first)."""
        source = yield from self._read_row(qp, txn, op.key, times)
        target = yield from self._read_row(qp, txn, op.key2, times)
        if source is None or target is None:
            return self._commit_read_only(qp)
        writes = {
            op.key: encode_balance(decode_balance(source[1]) - op.amount, op.value_bytes),
            op.key2: encode_balance(decode_balance(target[1]) + op.amount, op.value_bytes),
        }
        return (yield from self._write_and_commit(qp, txn, writes, times))

    def _op_listappend(self, qp, txn, op, times):
        """List-append: each micro-op reads its list (own writes first), appends if asked."""
        results = []
        txn.micro_results = results
        for f, key, _ in op.micro_ops:
            found, own = txn.own_write(key)
            if found:
                current = decode_list(own)
            else:
                version = yield from self._read_row(qp, txn, key, times)
                current = decode_list(version[1]) if version else []
            if f == "r":
                results.append(["r", key, current])
            else:
                value = self.workload.fresh_value()  # unique per attempt, retries included
                reason = self.cluster.qps[qp].write(txn, key, encode_list(current + [value]))
                if reason:
                    return CommitResult(False, reason=reason)
                results.append(["append", key, value])
        if not txn.writes:
            return self._commit_read_only(qp)
        return (yield from self._write_and_commit(qp, txn, dict(txn.writes), times))

    def _op_sql(self, qp, txn, op, times):
        """A SQL program on a fresh session: serve each request it yields in time."""
        attempt = SqlAttempt(txn)
        program = op.program(TimedSession(self.workload.engine.session(self.cluster.limits)))
        try:
            request = program.send(None)
            while True:
                reply = yield from serve_sql(self, qp, attempt, request, times)
                request = program.send(reply)
        except StopIteration as stop:
            outcome = stop.value
        times["txn"] = attempt.txn  # a program may run several transactions: the last counts
        self.recorder.count("sql.rows_examined", attempt.rows_examined)
        self.recorder.count("sql.rows_returned", attempt.rows_returned)
        return sql_outcome_result(outcome, attempt)

    def _write_and_commit(self, qp: int, txn: Transaction, writes: int | dict, times: dict):
        """Spool the post-images (a key alone: this transaction's stamp) and commit."""
        cluster = self.cluster
        if not isinstance(writes, dict):
            writes = {writes: self.value_for(txn.txn_id, writes)}
        reason = ""
        for key, value in writes.items():
            reason = reason or cluster.qps[qp].write(txn, key, value)
        reason = reason or cluster.qps[qp].check_duration(txn, self.env.now)
        if reason:
            return CommitResult(False, reason=reason)
        started = self.env.now
        result = yield from cluster.commit(qp, txn, cluster.qp_statement_ns(qp))
        times["commit_ns"] = self.env.now - started
        if result.committed and result.t_commit_ns > cluster.qps[qp].clock.read(self.env.now).latest_ns:
            # The commit happened before its ack arrived, yet its timestamp is beyond
            # this QP's latest reading: one of the two clocks is off by more than its bound.
            self.recorder.count("clock.skew_detections")
        return result

    def _commit_read_only(self, qp: int) -> CommitResult:
        """A read-only COMMIT is local to the QP and never aborts."""
        self.cluster.qps[qp].read_only_commits += 1
        return CommitResult(True, shards=0)

    # -- recording ----------------------------------------------------------------------
    def _record(self, client, qp, op, txn: Transaction, result: CommitResult, times: dict,
                intended_ns: int, start_ns: int, final: bool) -> None:
        uid = txn.uid
        self.cluster.end(txn)
        self.attempts_total += 1
        if result.reason == AbortReason.COMMIT_TIMEOUT:
            self.unknown_outcomes.append(uid)
        read_write = bool(txn.writes) and result.t_commit_ns >= 0
        if not txn.abort_reason:
            self.oracle.attempt(uid, txn.t_start_ns, start_ns, txn.reads,
                                self.env.now if read_write else None)
        if times["commit_ns"] and op.kind != "sql":  # SQL programs record each COMMIT
            # What a client issuing COMMIT as its own statement would see: the commit
            # protocol plus the QP's statement work and one client round trip.
            commit_statement_ns = (times["commit_ns"] + times["client_rtt_ns"])
            self.recorder.statement("commit", commit_statement_ns, self.env.now)
        if op.kind == "listappend" and not txn.abort_reason:
            self.history.append({
                "id": uid, "process": client, "type": "ok" if result.committed else "fail",
                # An aborted attempt's appends never happened; its reads say nothing.
                "ops": [m for m in txn.micro_results or [] if result.committed or m[0] == "append"],
                "invoke_ns": start_ns, "complete_ns": self.env.now})
        qp_label, region, az = self._qp_labels[qp]
        self.recorder.attempt(
            txn_id=txn.txn_id, attempt=txn.attempt, txn_type=getattr(op, "txn_type", op.kind),
            client=client, qp=qp_label, region=region, az=az,
            intended_start_ns=intended_ns, start_ns=start_ns, end_ns=self.env.now,
            t_start_ns=txn.t_start_ns, t_commit_ns=result.t_commit_ns if read_write else -1,
            outcome="committed" if result.committed else "aborted",
            abort_reason="" if result.committed else result.reason, final=final,
            read_wait_ns=times["read_wait_ns"], read_ns=times["read_ns"],
            commit_ns=times["commit_ns"], adjudicate_ns=result.adjudicate_ns,
            journal_ns=result.journal_ns, commit_wait_ns=result.commit_wait_ns,
            qp_clock_offset_ns=self.cluster.qps[qp].clock.offset_at(start_ns),
            keys_written=len(txn.writes), shards=result.shards)


_OPERATIONS = {
    "read": Driver._op_read,
    "update": Driver._op_update,
    "insert": Driver._op_insert,
    "scan": Driver._op_scan,
    "rmw": Driver._op_rmw,
    "transfer": Driver._op_transfer,
    "listappend": Driver._op_listappend,
    "sql": Driver._op_sql,
}
