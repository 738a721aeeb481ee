"""The QP's part of the simulated cluster: transactions begin, read and ask to commit.

A mixin of ``Cluster`` (``sim/cluster.py``), which holds the state every role shares:
the SimPy environment, network, placement and nodes. Paths, as named phases:

- read: QP -> local storage replica (same AZ) -> wait for the replica's watermark to
  reach ``t_start`` -> read -> back; scans shard after shard, filters and aggregates
  pushed down to storage;
- commit: the QP sends its write set to the adjudicator owning each key (one shard, or
  every participant of a multi-shard commit) and waits for the reply
  (``sim/adjudicator_runtime.py``).

Invariants: every read of an attempt is at its ``t_start`` and waits until the replica
has applied everything at or below it; ``open_snapshots`` holds every attempt that may
still read (storage GC keeps what they can see).
"""

from __future__ import annotations

import heapq


from dsqlbench.components.messages import (
    AbortReason,
)
from dsqlbench.components.qp import Transaction
from dsqlbench.sim.nodes import (
    CommitResult,
    StorageNode,
    MultiCommit,
)


class QueryProcessorRuntime:
    """Cluster methods of this role (state lives on ``Cluster``)."""

    def begin(self, qp: int, txn_id: int, attempt: int) -> Transaction:
        """A transaction starts on ``qp`` now, with a run-wide unique uid."""
        txn = self.qps[qp].begin(txn_id, attempt, self.env.now)
        txn.uid = next(self._uids)
        self.open_snapshots[txn.uid] = txn.t_start_ns
        return txn

    def end(self, txn: Transaction) -> None:
        """The attempt reads no more (it committed, aborted or was replaced)."""
        self.open_snapshots.pop(txn.uid, None)

    def oldest_readable_ns(self) -> int:
        """No read from now on is at a time below this: every open attempt reads at its
        t_start, and every later one at a t_start at or above its QP clock's floor."""
        now = self.env.now
        floors = [qp.clock.floor_at(now) for qp in self.qps]
        return min(min(self.open_snapshots.values(), default=floors[0]), *floors)

    def local_replica(self, qp: int, shard: int) -> StorageNode:
        """The replica of ``shard`` in the QP's AZ; while it is down, the next live one
        (another AZ: reads pay the cross-AZ trip)."""
        nodes = self.replicas[shard]
        node = nodes[self._replica_index[self.qp_places[qp]]]
        if not self.faults or self.env.now >= node.down_until_ns:
            return node
        self.recorder.count("faults.reads_rerouted")
        live = [n for n in nodes if self.env.now >= n.down_until_ns]
        same_region = [n for n in live if n.place[0] == node.place[0]]
        return (same_region or live or [node])[0]

    def live_qp(self, qp: int) -> int:
        """``qp`` if it is up, else the next QP that is (clients reconnect there)."""
        if not self.faults:
            return qp
        for step in range(len(self.qps)):
            candidate = (qp + step) % len(self.qps)
            if self.faults.down_until("crash", f"qp:{candidate}", self.env.now) is None:
                if step:
                    self.recorder.count("faults.qp_reconnects")
                return candidate
        return qp

    def read(self, qp: int, txn: Transaction, key: int, service_before_ns: int = 0):
        """Generator: a point read at ``txn.t_start_ns``; returns (version, wait_ns), the
        version being ``(t_commit, value)`` (value None: deleted) or None (never written).

        ``service_before_ns`` is QP work done before the request leaves (folded into
        the first hop's timeout).
        """
        node = self.local_replica(qp, self.storage_ranges.shard_of(key))
        sent_ns = self.env.now
        yield self.env.timeout(service_before_ns + self.network.delay_ns(self.qp_places[qp], node.place))
        wait_ns = yield from self._wait_until_safe(node, txn.t_start_ns)
        version = node.core.read(key, txn.t_start_ns)
        txn.reads.append((key, version[0] if version else 0))
        served_ns = node.pool.admit(self.env.now, self.read_service_ns)
        yield self.env.timeout(served_ns + self.network.delay_ns(node.place, self.qp_places[qp]))
        self.recorder.statement("read", self.env.now - sent_ns - service_before_ns, self.env.now)
        self.recorder.read_wait(wait_ns, self.env.now)
        return version, wait_ns

    def scan(self, qp: int, txn: Transaction, start_key: int, limit: int):
        """Generator: up to ``limit`` rows from ``start_key`` on, shard after shard."""
        rows: list[tuple[int, int, bytes]] = []
        wait_total_ns = 0
        shard = self.storage_ranges.shard_of(start_key)
        sent_ns = self.env.now
        while len(rows) < limit and shard < self.storage_ranges.count:
            node = self.local_replica(qp, shard)
            yield self.env.timeout(self.network.delay_ns(self.qp_places[qp], node.place))
            wait_total_ns += yield from self._wait_until_safe(node, txn.t_start_ns)
            found = node.core.scan(max(start_key, self.storage_ranges.lower_bound(shard)),
                                   limit - len(rows), txn.t_start_ns)
            for key, version_ts, _value in found:
                txn.reads.append((key, version_ts))
            rows.extend(found)
            service = node.pool.admit(self.env.now, self.read_service_ns + self.scan_row_ns * len(found))
            yield self.env.timeout(service + self.network.delay_ns(node.place, self.qp_places[qp]))
            shard += 1
        self.recorder.statement("scan", self.env.now - sent_ns, self.env.now)
        self.recorder.read_wait(wait_total_ns, self.env.now)
        return rows, wait_total_ns

    def shards_of_range(self, low_key: int, high_key: int, descending: bool = False) -> range:
        """The storage shards holding ``[low_key, high_key)``, in scan order."""
        if high_key <= low_key:
            return range(0)
        first = self.storage_ranges.shard_of(low_key)
        last = self.storage_ranges.shard_of(high_key - 1)
        return range(last, first - 1, -1) if descending else range(first, last + 1)

    def scan_range(self, qp: int, txn: Transaction, scan):
        """Generator: a SQL ``Scan`` with pushdown, shard after shard from the QP's AZ;
        returns ``(ScanReply, wait_ns)``. Filters, projections and the limit are applied
        at storage, so only matching rows cross the network; an aggregate folds there
        too (one partial result per shard, combined at the QP)."""
        from dsqlbench.sql.protocol import Scan, ScanReply, evaluate_scan

        rows: list = []
        examined = returned = size = wait_total_ns = 0
        for shard in self.shards_of_range(scan.low_key, scan.high_key, scan.descending):
            node = self.local_replica(qp, shard)
            yield self.env.timeout(self.network.delay_ns(self.qp_places[qp], node.place))
            wait_total_ns += yield from self._wait_until_safe(node, txn.t_start_ns)
            live = self._live_rows(node, txn, scan)
            remaining = None if scan.limit is None else scan.limit - len(rows)
            reply = evaluate_scan(Scan(scan.low_key, scan.high_key, remaining, scan.row_filter,
                                       scan.projection, None, scan.descending), live)
            rows.extend(reply.rows)
            examined += reply.rows_examined
            returned += 1 if scan.aggregate else reply.rows_returned
            size += reply.bytes_returned
            service = node.pool.admit(self.env.now,
                                      self.read_service_ns + self.scan_row_ns * reply.rows_examined)
            yield self.env.timeout(service + self.network.delay_ns(node.place, self.qp_places[qp]))
            if scan.limit is not None and len(rows) >= scan.limit:
                break
        self.recorder.count("storage.rows_examined", examined)
        self.recorder.count("storage.rows_returned", returned)
        self.recorder.count("storage.bytes_returned", size)
        self.recorder.read_wait(wait_total_ns, self.env.now)
        if scan.aggregate is not None:
            return ScanReply([], scan.aggregate([v for _, v in rows]), examined, returned, size), wait_total_ns
        return ScanReply(rows, None, examined, returned, size), wait_total_ns

    @staticmethod
    def _live_rows(node: StorageNode, txn: Transaction, scan):
        """Live ``(key, value)`` pairs of the scan's range at ``t_start``, in scan order,
        consumed lazily (a limit stops the walk); every version read is recorded."""
        for key, version in node.core.versions_in_range(scan.low_key, scan.high_key,
                                                         txn.t_start_ns, scan.descending):
            txn.reads.append((key, version[0]))
            if version[1] is not None:
                yield key, version[1]

    def _wait_until_safe(self, node: StorageNode, t_ns: int):
        """Generator: wait until the replica's applied watermark reaches ``t_ns``."""
        now = self.env.now
        node.catch_up(now)
        if node.core.applied_watermark_ns >= t_ns:
            return 0
        event = self.env.event()
        for arrival_ns, batch in node.inbound:
            if batch.watermark_ns >= t_ns:
                self._schedule(arrival_ns - now, event.succeed)
                break
        else:
            heapq.heappush(node.waiters, (t_ns, next(self._waiter_seq), event))
        yield event
        node.catch_up(self.env.now)
        assert node.core.applied_watermark_ns >= t_ns
        return self.env.now - now

    def commit(self, qp: int, txn: Transaction, service_before_ns: int = 0):
        """Generator: run the commit protocol for a read-write attempt; a CommitResult."""
        requests = self.qps[qp].commit_requests(txn)
        uid = txn.uid
        reply = self.env.event()
        sent_ns = self.env.now + service_before_ns
        origin = self.qp_places[qp]
        # A vote (a multi-shard commit, or any schema change, even on a one-shard
        # cluster) goes through the final adjudicator; a plain one-shard commit does not.
        if len(requests) == 1 and not next(iter(requests.values())).vote:
            (shard, request), = requests.items()
            node = self.adjudicators[shard]
            delay = service_before_ns + self.network.delay_ns(origin, node.place)
            self._schedule(delay, self._submit, node, request, (origin, reply, sent_ns))
        else:
            state = MultiCommit(uid, txn, origin, reply, sent_ns, len(requests))
            final = self.adjudicators[min(requests)]
            for shard, request in requests.items():
                node = self.adjudicators[shard]
                delay = service_before_ns + self.network.delay_ns(origin, node.place)
                self._schedule(delay, self._submit, node, request, (final, state))
        if not self.commit_can_be_lost:
            result: CommitResult = yield reply
            return result
        fired = yield reply | self.env.timeout(self.commit_timeout_ns)
        if reply in fired:
            return fired[reply]
        # No reply: the commit may or may not have happened; the client cannot tell.
        return CommitResult(False, reason=AbortReason.COMMIT_TIMEOUT)
