"""The simulated cluster: component cores wired together over virtual time.

This is the runtime half of the two layers (DESIGN.md section 2). It owns the SimPy
environment (integer nanoseconds of true time), the network, node clocks, queues and
batching; the component cores in ``dsqlbench.components`` hold the state and make the
decisions. Components exchange messages only through here.

Event economy: simulating many transactions per wall-clock second means spending few
SimPy events per transaction, so message hops that nothing can observe in between are
folded into one timeout, and pipeline stages that run on their own cadence (crossbar
ticks, heartbeats, storage apply) are callbacks, not processes. Storage replicas apply
their delivered batches lazily, on the next read or tick at or after the batch's
arrival time, which is observationally the same as applying on arrival.

Paths, as named phases:
- read: QP -> local storage replica (same AZ) -> wait for the replica's watermark to
  reach ``t_start`` -> read -> back;
- commit, one shard: QP -> adjudicator (batched) -> decide -> journal quorum append ->
  commit-wait -> ack -> QP;
- commit, several shards: QP -> every participant (vote) -> final adjudicator ->
  decide -> journal -> ack, and the outcome to every participant (release);
- apply: journal durable -> crossbar (tick: merge, cut at watermark) -> erasure-coded
  delivery to each replica (rebuilt from the first k fragments).
"""

from __future__ import annotations

import heapq
import tempfile
import struct
import itertools
from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from dsqlbench import kernels
from dsqlbench.clock import ClockFaults, NodeClock
from dsqlbench.components.adjudicator import Adjudicator
from dsqlbench.components.crossbar import (
    Crossbar,
    batch_from_bytes,
    encode_batch,
    rebuild_from,
)
from dsqlbench.components.journal import Journal
from dsqlbench.components.messages import (
    AbortReason,
    CommitRequest,
    Decision,
    JournalEntry,
    StorageBatch,
    Vote,
)
from dsqlbench.components.qp import Limits, QueryProcessor, Transaction
from dsqlbench.components.recovery import model_from_journals, restore_storage
from dsqlbench.components.routing import KeyRanges
from dsqlbench.components.snapshot import SnapshotStore
from dsqlbench.components.storage import BulkLoad, StorageReplica
from dsqlbench.sim.faults import FaultSchedule
from dsqlbench.sim.network import Network, Place
from dsqlbench.seeds import BufferedDraws, stream
from dsqlbench.sim.topology import Placement, build_placement

US = 1_000
MS = 1_000_000
S = 1_000_000_000
INBOUND_APPLY_AT = 64  # deliveries a replica may hold unapplied before it catches up


@dataclass(slots=True)
class CommitResult:
    """What the QP learns from the commit protocol, with the phase times it took."""

    committed: bool
    t_commit_ns: int = -1
    reason: str = ""
    adjudicate_ns: int = 0  # QP sends commit -> decision made (network, batching, check)
    journal_ns: int = 0  # decision -> durable in a quorum
    commit_wait_ns: int = 0  # durable -> the adjudicator's earliest passed t_commit
    shards: int = 1


# -- nodes ---------------------------------------------------------------------------------


class AdjudicatorNode:
    """An adjudicator shard leader: batches requests, appends to its journal."""

    def __init__(self, cluster: "Cluster", shard: int, place: Place, clock: NodeClock,
                 core: Adjudicator, journal: Journal):
        self.cluster = cluster
        self.shard = shard
        self.place = place
        self.clock = clock
        self.core = core
        self.journal = journal
        self.inbox: list[tuple[CommitRequest, object]] = []
        self.flush_scheduled = False
        self.busy_until_ns = 0
        self.last_append_ns = 0
        self.quorum_write: BufferedDraws | None = None
        self.epoch = 1  # leadership epoch: journals refuse appends from older epochs
        self.crashed = False
        self.paused_until_ns = 0
        self.next_heartbeat_ns = 0  # catch-up heartbeats: the next grid time not yet run


class StorageNode:
    """A storage replica with its delivery queue and the reads waiting on it."""

    def __init__(self, core: StorageReplica, place: Place):
        self.core = core
        self.place = place
        self.inbound: deque[tuple[int, StorageBatch]] = deque()
        self.last_arrival_ns = 0
        self.waiters: list[tuple[int, int, simpy.Event]] = []  # (t_ns, seq, event) heap
        self.down_until_ns = 0  # crashed until then (faults)

    def catch_up(self, now_ns: int) -> None:
        inbound = self.inbound
        while inbound and inbound[0][0] <= now_ns:
            self.core.apply(inbound.popleft()[1])


class CrossbarNode:
    def __init__(self, core: Crossbar, place: Place, journal_count: int):
        self.core = core
        self.place = place
        # per journal: (arrival true ns, entries) in arrival order
        self.inbound: list[deque[tuple[int, list[JournalEntry]]]] = [
            deque() for _ in range(journal_count)]
        self.last_arrival_ns = [0] * journal_count


# -- the cluster -----------------------------------------------------------------------------


class Cluster:
    # Guarantees that only a test control (dsqlbench.sim.controls) may switch off.
    FENCING = True  # journals refuse appends from a superseded leader epoch
    FRAGMENT_CHECKSUMS = True  # a fragment failing its CRC counts as lost
    ACK_AFTER_QUORUM = True  # a commit is acknowledged only once durable
    # An economy, not a guarantee: run heartbeats when observed rather than as events
    # (tests switch it off to hold both ways to byte-identical figures).
    CATCH_UP_HEARTBEATS = True

    def __init__(self, env: simpy.Environment, cfg: dict, recorder, oracle, load_keys: np.ndarray):
        self.env = env
        self.cfg = cfg
        self.recorder = recorder
        self.oracle = oracle
        topo = cfg["topology"]
        seed = cfg["run"]["seed"]
        self.topo = topo
        self.placement: Placement = build_placement(topo)
        self.network = Network(topo["network"], seed, tuple(r["name"] for r in topo["regions"]))
        self.t_start_policy = topo["clock"]["t_start_from"]
        self.commit_wait = topo["clock"]["commit_wait"]
        self.faults = FaultSchedule.from_config(cfg)
        self.commit_can_be_lost = bool(self.faults.of_kind("crash", "pause", "partition"))
        self.failovers: list[dict] = []
        self.network.install_faults(self.faults.of_kind("partition", "slow_link"), lambda: self.env.now)
        self._fault_rng = stream(seed, "faults/fragments")
        self.refuse_invalid_clock = topo["clock"]["invalid_clock"] == "refuse"
        self._init_services(topo, seed)
        self._clock_rng = stream(seed, "clocks")
        self.clocks: list[NodeClock] = []
        if isinstance(load_keys, BulkLoad):  # the same boundaries, without a list of keys
            self.adjudicator_ranges = KeyRanges(load_keys.split(topo["adjudicator"]["shards"]))
            self.storage_ranges = KeyRanges(load_keys.split(topo["storage"]["shards"]))
        else:
            self.adjudicator_ranges = KeyRanges.split_evenly(load_keys, topo["adjudicator"]["shards"])
            self.storage_ranges = KeyRanges.split_evenly(load_keys, topo["storage"]["shards"])
        self.code = kernels.ErasureCode(topo["crossbar"]["erasure_k"], topo["crossbar"]["erasure_m"])
        self._fragment_paths = self.network.fragment_paths(
            "same_az", self.code.k, self.code.m, seed)
        self._build_adjudicators(topo)
        self._build_storage(topo)
        self._build_crossbars(topo)
        self._build_journal_feeds(seed)
        self._build_qps(topo)
        self._uids = itertools.count(1)  # transaction uids, run-wide
        self.open_snapshots: dict[int, int] = {}  # uid -> t_start of every open attempt
        self._waiter_seq = itertools.count()  # ties between reads waiting on one replica

    # -- construction ------------------------------------------------------------------
    def _init_services(self, topo: dict, seed: int) -> None:
        self.read_service_ns = int(topo["storage"]["read_service_us"] * US)
        self.scan_row_ns = int(topo["storage"]["scan_row_service_us"] * US)
        self.apply_ns = int(topo["storage"]["apply_service_us"] * US)
        self.qp_service_ns = int(topo["qp"]["statement_service_us"] * US)
        adj = topo["adjudicator"]
        self.batch_window_ns = int(adj["batch_window_us"] * US)
        self.batch_service_ns = int(adj["batch_service_us"] * US)
        self.per_txn_service_ns = int(adj["per_txn_service_us"] * US)
        self.heartbeat_ns = max(1, int(adj["heartbeat_interval_us"] * US))
        self.promise_ns = int(adj["promise_ms"] * MS)
        self.lease_ns = int(adj["lease_ms"] * MS)
        self.commit_timeout_ns = int(adj["commit_timeout_ms"] * MS)
        self.tick_ns = max(1, int(topo["crossbar"]["tick_us"] * US))
        self.window_ns = int(topo["limits"]["max_txn_duration_s"] * S)
        self.trim_horizon_ns = int(topo["storage"]["trim_horizon_s"] * S)

    def _new_clock(self, name: str, role: str) -> NodeClock:
        """A node clock: a random offset and drift within the configured ranges, a
        random sync phase, and the faults configured for its role."""
        c = self.topo["clock"]
        offset_ns = int(self._clock_rng.uniform(-1, 1) * c["offset_us"] * US)
        drift_ppm = float(self._clock_rng.uniform(-1, 1) * c["drift_ppm"])
        sync_ns = max(1, int(c["sync_interval_ms"] * MS))
        phase_ns = int(self._clock_rng.integers(0, sync_ns))
        clock = NodeClock(name, offset_ns, drift_ppm, int(c["error_bound_us"] * US),
                          c["drift_bound_ppm"], sync_ns, phase_ns, _role_faults(c[role]))
        self.clocks.append(clock)
        return clock

    def _build_adjudicators(self, topo: dict) -> None:
        promise_ns = int(topo["adjudicator"]["promise_ms"] * MS)
        self.adjudicators: list[AdjudicatorNode] = []
        for shard, place in enumerate(self.placement.adjudicators):
            clock = self._new_clock(f"adjudicator-{shard}", "adjudicator")
            core = Adjudicator(shard, kernels.ConflictTable(self.window_ns), promise_ns)
            journal = Journal(shard, len(self.placement.journal_replicas[shard]))
            node = AdjudicatorNode(self, shard, place, clock, core, journal)
            node.quorum_write = self._quorum_write_draws(node, topo["journal"])
            self.adjudicators.append(node)

    def _quorum_write_draws(self, node: AdjudicatorNode, journal_cfg: dict,
                            suffix: str = "") -> BufferedDraws:
        """Durability latency of one append: the quorum-th fastest replica round trip
        (adjudicator -> replica, persist, replica -> adjudicator), drawn in blocks
        from the journal's own stream. Each draw is a row ``[quorum latency, trip of
        replica 0, trip of replica 1, ...]``."""
        rng = stream(self.cfg["run"]["seed"], f"journal/{node.shard}/quorum{suffix}")
        replicas = self.placement.journal_replicas[node.shard]
        links = [self.network.link(node.place, r) for r in replicas]
        median_ns = journal_cfg["write_median_us"] * US
        sigma = journal_cfg["write_sigma"]
        quorum = node.journal.quorum

        def block(n: int) -> np.ndarray:
            trips = np.empty((n, len(links) + 1), dtype=np.int64)
            for column, link in enumerate(links):
                persist = np.maximum(median_ns * np.exp(sigma * rng.standard_normal(n)), 1)
                trips[:, column + 1] = (link.draw_block(n, rng) + persist.astype(np.int64)
                                        + link.draw_block(n, rng))
            # Column 0: the quorum latency when nothing is wrong; the rest: each replica's
            # round trip, for when a fault makes some replicas slow or absent.
            trips[:, 0] = np.sort(trips[:, 1:], axis=1)[:, quorum - 1]
            return trips

        return BufferedDraws(block)

    def _build_storage(self, topo: dict) -> None:
        # replicas[shard] -> list of StorageNode, one per storage AZ; replica_for[(shard, place)]
        self.replicas: list[list[StorageNode]] = []
        for shard in range(self.storage_ranges.count):
            nodes = [StorageNode(StorageReplica(shard, f"storage-{shard}@{r}/{az}"), (r, az))
                     for r, az in self.placement.storage_azs]
            self.replicas.append(nodes)
        self._replica_index = {place: i for i, place in enumerate(self.placement.storage_azs)}
        # region -> shard -> that region's replicas (each region's crossbar feeds its own)
        self._region_replicas = {
            region: [[n for n in nodes if n.place[0] == region] for nodes in self.replicas]
            for region in self.placement.full_regions}

    def _build_crossbars(self, topo: dict) -> None:
        journals = len(self.adjudicators)
        self.crossbars = [
            CrossbarNode(Crossbar(journals, self.storage_ranges, kernels.merge_until), place, journals)
            for place in self.placement.crossbars]

    def _build_journal_feeds(self, seed: int) -> None:
        """How each journal reaches each crossbar: from the journal replica nearest the
        crossbar, with delays of the feed's own stream (so a heartbeat computed late
        draws what it would have drawn on time)."""
        self._journal_feeds: list[list[tuple[CrossbarNode, Place, object]]] = []
        for shard, replicas in enumerate(self.placement.journal_replicas):
            feeds = []
            for index, crossbar in enumerate(self.crossbars):
                source = _nearest(replicas, crossbar.place)
                name = f"journal/{shard}/crossbar/{index}"
                feeds.append((crossbar, source, self.network.dedicated(source, crossbar.place, name, seed)))
            self._journal_feeds.append(feeds)

    def _build_qps(self, topo: dict) -> None:
        lim = topo["limits"]
        limits = Limits(lim["max_modified_rows"], lim["max_modified_bytes"],
                        int(lim["max_txn_duration_s"] * S))
        self.limits = limits
        self.qps: list[QueryProcessor] = []
        self.qp_places: list[Place] = []
        for index, place in enumerate(self.placement.qps):
            clock = self._new_clock(f"qp-{index}", "qp")
            self.qps.append(QueryProcessor(index, clock, self.t_start_policy, limits,
                                           self.adjudicator_ranges, self.refuse_invalid_clock))
            self.qp_places.append(place)

    # -- start-up ----------------------------------------------------------------------
    def load(self, keys, value_for) -> None:
        """Bulk-load every replica at timestamp 1, before any transaction starts."""
        keys = keys.tolist() if isinstance(keys, np.ndarray) else list(keys)
        self.load_items([(key, value_for(0, key)) for key in keys])

    def load_bulk(self, load: BulkLoad) -> None:
        """Bulk-load at timestamp 1: the pairs into every replica's version lists, the
        columnar image shared by every replica of its shard and kept by the oracle as
        one key array. Fault runs fold the image into the lists (snapshots and the
        replay-model audit read those)."""
        if self.faults:
            self.load_items(load.items())
            return
        per_shard = load.per_shard(self.storage_ranges)
        for shard, (shard_keys, shard_values, image) in enumerate(per_shard):
            image = image.at(1)
            for node in self.replicas[shard]:
                node.core.load(shard_keys, shard_values, 1)
                node.core.load_image(image)
        self._loaded = load
        self.oracle.load([key for key, _ in load.pairs], 1, load.keys)

    def load_items(self, items: list[tuple[int, bytes]]) -> None:
        """Bulk-load ``(key, value)`` pairs into every replica at timestamp 1."""
        if isinstance(items, BulkLoad):
            self.load_bulk(items)
            return
        shard_of = self.storage_ranges.shard_of
        per_shard: list[tuple[list, list]] = [([], []) for _ in range(self.storage_ranges.count)]
        for key, value in items:
            shard_keys, shard_values = per_shard[shard_of(key)]
            shard_keys.append(key)
            shard_values.append(value)
        for shard, (shard_keys, shard_values) in enumerate(per_shard):
            for node in self.replicas[shard]:
                node.core.load(shard_keys, shard_values, 1)
        self._loaded = per_shard
        if self.faults:
            self._snapshot_after_load()
        self.oracle.load([key for key, _ in items], 1)

    def start(self) -> None:
        # Heartbeats run on a grid of heartbeat_ns. In runs without node faults they are
        # caught up when something can observe them (a flush, a vote, a crossbar tick,
        # the end of the run) instead of being one event each: the same grid times, the
        # same clock readings and draws in the same order, so the same figures, for
        # none of the events. Fault runs keep one event each (pauses, crashes and
        # failovers change a leader between grid times).
        self.lazy_heartbeats = self.CATCH_UP_HEARTBEATS and not self.faults
        for node in self.adjudicators:
            node.next_heartbeat_ns = self.heartbeat_ns
            if not self.lazy_heartbeats:
                self._schedule(self.heartbeat_ns, self._heartbeat, node)
        for fault in self.faults.of_kind("crash", "pause"):
            if fault.target.startswith("adjudicator:"):
                self._schedule(fault.start_ns, self._adjudicator_fault, fault)
            elif fault.target.startswith("storage:"):
                self._schedule(fault.start_ns, self._storage_fault, fault)
        for crossbar in self.crossbars:
            self._schedule(self.tick_ns, self._crossbar_tick, crossbar)

    def _schedule(self, delay_ns: int, callback, *args) -> None:
        """Run ``callback(*args)`` after ``delay_ns`` of simulated time."""
        event = self.env.timeout(delay_ns)
        event.callbacks.append(lambda _event: callback(*args))

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

    # -- read path ---------------------------------------------------------------------
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
        yield self.env.timeout(self.read_service_ns + self.network.delay_ns(node.place, self.qp_places[qp]))
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
            service = self.read_service_ns + self.scan_row_ns * len(found)
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
            service = self.read_service_ns + self.scan_row_ns * reply.rows_examined
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

    # -- commit path -------------------------------------------------------------------
    def commit(self, qp: int, txn: Transaction, service_before_ns: int = 0):
        """Generator: run the commit protocol for a read-write attempt; a CommitResult."""
        requests = self.qps[qp].commit_requests(txn)
        uid = txn.uid
        reply = self.env.event()
        sent_ns = self.env.now + service_before_ns
        origin = self.qp_places[qp]
        if len(requests) == 1:
            (shard, request), = requests.items()
            node = self.adjudicators[shard]
            delay = service_before_ns + self.network.delay_ns(origin, node.place)
            self._schedule(delay, self._submit, node, request, (origin, reply, sent_ns))
        else:
            state = _MultiCommit(uid, txn, origin, reply, sent_ns, len(requests))
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

    def _submit(self, node: AdjudicatorNode, request: CommitRequest, route) -> None:
        if node.crashed:
            return  # lost with the dead leader: the QP times out (outcome unknown)
        node.inbox.append((request, route))
        if not node.flush_scheduled:
            node.flush_scheduled = True
            self._schedule(self.batch_window_ns, self._flush, node)

    def _flush(self, node: AdjudicatorNode) -> None:
        """Adjudicate one batch: single-shard decisions and participant votes."""
        if node.crashed:
            node.inbox = []
            return
        if self.env.now < node.paused_until_ns:  # frozen: the batch waits for it to wake
            self._schedule(node.paused_until_ns - self.env.now, self._flush, node)
            return
        node.flush_scheduled = False
        inbox, node.inbox = node.inbox, []
        now = self.env.now
        self._heartbeats_through(node, now)
        reading = node.clock.read(now)
        t_propose = reading.earliest_ns
        singles = [(r, route) for r, route in inbox if not r.vote]
        votes = [(r, route) for r, route in inbox if r.vote]
        self._detect_skew(reading, inbox)
        if not reading.valid and self.refuse_invalid_clock:
            # No valid bound: hand out no timestamps rather than risk anomalies.
            decisions = [Decision(r.txn_id, False, reason=AbortReason.CLOCK_UNAVAILABLE)
                         for r, _ in singles]
            ballots = [Vote(r.txn_id, node.shard, False, reason=AbortReason.CLOCK_UNAVAILABLE)
                       for r, _ in votes]
        else:
            decisions = node.core.adjudicate([r for r, _ in singles], t_propose)
            ballots = node.core.vote([r for r, _ in votes], t_propose)
        done_ns = max(now, node.busy_until_ns) + self.batch_service_ns + self.per_txn_service_ns * len(inbox)
        node.busy_until_ns = done_ns
        committed = [(r, d) for (r, _), d in zip(singles, decisions) if d.committed]
        if committed and not self._journal_accepts(node):
            decisions = [Decision(d.txn_id, False, reason=AbortReason.FENCED) for d in decisions]
            committed = []
        durable_ns = self._append(node, [
            JournalEntry(d.t_commit_ns, r.txn_id, tuple(r.writes.items()), now) for r, d in committed
        ], done_ns, [r.t_start_ns for r, _ in committed]) if committed else done_ns
        for (request, (origin, reply, sent_ns)), decision in zip(singles, decisions):
            self._reply(node, decision, origin, reply, sent_ns, done_ns, durable_ns)
        for (request, (final, state)), ballot in zip(votes, ballots):
            delay = done_ns - now + self.network.delay_ns(node.place, final.place)
            self._schedule(delay, self._collect_vote, final, state, ballot, request, node)
            if ballot.yes and self.faults:
                # If the outcome never comes (the final died), the promise runs out.
                self._schedule(self.promise_ns * 2, self._expire_promise, node, ballot)

    def _voters_current(self, state: "_MultiCommit") -> bool:
        """Every yes-vote came from its shard's current, live leader (a replaced
        leader's promise binds nobody)."""
        return all(voter is self.adjudicators[voter.shard] and not voter.crashed
                   for vote, voter in zip(state.votes, state.voters) if vote.yes)

    def _expire_promise(self, node: AdjudicatorNode, ballot: Vote) -> None:
        if ballot.txn_id in node.core.pending:
            node.core.expire(ballot.txn_id, ballot.t_high_ns)
            self.recorder.count("faults.promises_expired")

    def _journal_accepts(self, node: AdjudicatorNode) -> bool:
        """Fencing: a journal refuses appends from a leader whose epoch was superseded."""
        if node.epoch >= node.journal.epoch or not self.FENCING:
            return True
        self.recorder.count("faults.fenced_appends")
        return False

    def _detect_skew(self, reading, inbox) -> None:
        """A t_start beyond the adjudicator's latest reading means the QP's clock, or
        this one, is off by more than both bounds allow: count it (it is not fatal:
        t_commit is raised above t_start either way)."""
        latest = reading.latest_ns
        detected = sum(1 for request, _ in inbox if request.t_start_ns > latest)
        if detected:
            self.recorder.count("clock.skew_detections", detected)

    def _reply(self, node: AdjudicatorNode, decision: Decision, origin: Place, reply,
               sent_ns: int, decided_ns: int, durable_ns: int, shards: int = 1) -> None:
        """Acknowledge to the QP: after durability and commit-wait, or at once on abort."""
        if not decision.committed:
            result = CommitResult(False, reason=decision.reason,
                                  adjudicate_ns=decided_ns - sent_ns, shards=shards)
            ack_ns = decided_ns
        else:
            ack_ns = durable_ns if self.ACK_AFTER_QUORUM else decided_ns
            if self.commit_wait:
                ack_ns = max(ack_ns, node.clock.true_time_when_earliest_passes(
                    decision.t_commit_ns, decided_ns))
            result = CommitResult(True, decision.t_commit_ns, "", decided_ns - sent_ns,
                                  durable_ns - decided_ns, ack_ns - durable_ns, shards)
        if self.faults and self._dies_before(node, ack_ns):
            return  # the leader dies before it can answer: the QP times out
        delay = ack_ns - self.env.now + self.network.delay_ns(node.place, origin)
        self._schedule(delay, reply.succeed, result)

    def _dies_before(self, node: AdjudicatorNode, t_ns: int) -> bool:
        """Whether a scheduled crash of this leader falls in (now, t_ns]."""
        target = f"adjudicator:{node.shard}"
        return any(f.target == target and self.env.now < f.start_ns <= t_ns
                   for f in self.faults.of_kind("crash"))

    def _collect_vote(self, final: AdjudicatorNode, state: "_MultiCommit", ballot: Vote,
                      request: CommitRequest, voter: AdjudicatorNode) -> None:
        state.votes.append(ballot)
        state.voters.append(voter)
        if ballot.yes:
            state.writes = request.writes
        if len(state.votes) < state.expected:
            return
        now = self.env.now
        self._heartbeats_through(final, now)
        if final.crashed:
            return  # the final adjudicator died: the client times out, participants expire
        decision = final.core.finalize(state.uid, state.votes)
        if decision.committed and not self._voters_current(state):
            decision = Decision(state.uid, False, reason=AbortReason.FENCED)
        if decision.committed and not self._journal_accepts(final):
            decision = Decision(state.uid, False, reason=AbortReason.FENCED)
        done_ns = max(now, final.busy_until_ns) + self.per_txn_service_ns
        final.busy_until_ns = done_ns
        durable_ns = done_ns
        if decision.committed:
            entry = JournalEntry(decision.t_commit_ns, state.uid, tuple(state.writes.items()), now)
            durable_ns = self._append(final, [entry], done_ns, [state.txn.t_start_ns])
        outcome = decision.t_commit_ns if decision.committed else None
        for vote, voter in zip(state.votes, state.voters):
            if vote.yes:  # release the promise once the outcome reaches the participant
                delay = durable_ns - now + self.network.delay_ns(final.place, voter.place)
                self._schedule(delay, voter.core.resolve, state.uid, outcome)
        self._reply(final, decision, state.origin, state.reply, state.sent_ns, done_ns,
                    durable_ns, shards=state.expected)

    # -- journal and heartbeats ----------------------------------------------------------
    def _append(self, node: AdjudicatorNode, entries: list[JournalEntry], issued_ns: int,
                t_starts: list[int] = (), now_ns: int | None = None) -> int:
        """Append to the node's journal; returns the true time the append is durable.

        ``t_starts`` (one per commit entry) let the oracle register each commit at its
        commit point, whether or not a client ever hears of it. ``now_ns``: when the
        append happens, if not now (a caught-up heartbeat).
        """
        journal = node.journal
        for entry in entries:
            journal.append(entry)
        durable_ns = journal.durable_after(issued_ns, self._quorum_latency(node, issued_ns))
        for entry, t_start in zip(entries, t_starts):
            self.oracle.durable(entry.txn_id, t_start, entry.ts_ns, [k for k, _ in entry.writes])
        now_ns = self.env.now if now_ns is None else now_ns
        node.last_append_ns = now_ns
        link_faults = self.network.has_link_faults
        for crossbar, source, feed_delay_ns in self._journal_feeds[node.shard]:
            delay_ns = feed_delay_ns()
            if link_faults:
                delay_ns = self.network.fault_delay(source, crossbar.place, delay_ns, durable_ns)
            arrival = max(durable_ns + delay_ns, crossbar.last_arrival_ns[node.shard])
            crossbar.last_arrival_ns[node.shard] = arrival
            crossbar.inbound[node.shard].append((arrival, entries, durable_ns))
        return durable_ns

    def _quorum_latency(self, node: AdjudicatorNode, issued_ns: int) -> int:
        """The quorum-th fastest replica round trip of one append; with faults, a
        crashed replica acks only after it restarts and a partitioned one after the
        partition heals."""
        row = node.quorum_write.next()
        if not self.faults:
            return row[0]
        trips = row[1:]
        for index, replica in enumerate(self.placement.journal_replicas[node.shard]):
            down_until = self.faults.down_until("crash", f"journal:{node.shard}:{index}", issued_ns)
            if down_until is not None:
                trips[index] += down_until - issued_ns
            trips[index] = self.network.fault_delay(node.place, replica, trips[index], issued_ns)
        return sorted(trips)[node.journal.quorum - 1]

    def _heartbeat(self, node: AdjudicatorNode) -> None:
        """One heartbeat event (fault runs): run the grid time that is due now."""
        now = self.env.now
        if node.crashed or node is not self.adjudicators[node.shard]:
            return  # a dead or replaced leader's heartbeats stop
        if now < node.paused_until_ns:
            self._schedule(node.paused_until_ns - now, self._heartbeat, node)
            return
        self._beat(node, now)
        node.next_heartbeat_ns = now + self.heartbeat_ns
        self._schedule(self.heartbeat_ns, self._heartbeat, node)

    def _heartbeats_through(self, node: AdjudicatorNode, t_ns: int) -> None:
        """Catch-up heartbeats: run every grid time up to ``t_ns`` not yet run."""
        if not self.lazy_heartbeats:
            return
        step = self.heartbeat_ns
        at = node.next_heartbeat_ns
        while at <= t_ns:
            self._beat(node, at)
            at += step
        node.next_heartbeat_ns = at

    def finish(self) -> None:
        """At the end of the run: run the grid times due by now, as events would have."""
        for node in self.adjudicators:
            self._heartbeats_through(node, self.env.now)

    def _beat(self, node: AdjudicatorNode, at_ns: int) -> None:
        """An idle journal still moves forward: promise nothing at or below now."""
        reading = node.clock.read(at_ns)
        if at_ns - node.last_append_ns >= self.heartbeat_ns and (
                reading.valid or not self.refuse_invalid_clock):
            ts = node.core.heartbeat(reading.earliest_ns)
            if ts is not None:
                self._append(node, [JournalEntry(ts, -1, (), at_ns)], at_ns, now_ns=at_ns)

    # -- adjudicator failover ------------------------------------------------------------
    def _adjudicator_fault(self, fault) -> None:
        """The leader dies or freezes. A new leader takes over once the old lease has
        surely expired (lease plus both clocks' error), unless a pause ends first."""
        shard = int(fault.target.split(":")[1])
        node = self.adjudicators[shard]
        if fault.kind == "crash":
            node.crashed = True
            node.inbox = []
            self._lose_undurable_appends(node)
        else:
            node.paused_until_ns = fault.end_ns
        bound_ns = 2 * int(self.topo["clock"]["error_bound_us"] * US)
        takeover_ns = self.lease_ns + bound_ns
        if fault.kind == "crash" or fault.end_ns - fault.start_ns > takeover_ns:
            self._schedule(takeover_ns, self._failover, shard)

    def _lose_undurable_appends(self, node: AdjudicatorNode) -> None:
        """A leader that dies takes with it whatever had not reached a journal quorum:
        those transactions did not commit (their clients were not acknowledged, unless
        a control acknowledged before the quorum)."""
        now = self.env.now
        lost_uids = set()
        for crossbar in self.crossbars:
            inbound = crossbar.inbound[node.shard]
            kept = [item for item in inbound if item[2] <= now]
            for _, entries, _ in (item for item in inbound if item[2] > now):
                lost_uids.update(e.txn_id for e in entries if not e.is_heartbeat)
            inbound.clear()
            inbound.extend(kept)
        if lost_uids:
            node.journal.lose_undurable(lost_uids, now)
            for uid in lost_uids:
                self.oracle.forget(uid)
            self.recorder.count("faults.undurable_commits_lost", len(lost_uids))

    def _failover(self, shard: int) -> None:
        """A new leader, one epoch up, rebuilt from committed transactions of every
        journal and starting above anything the old leader may have handed out."""
        old = self.adjudicators[shard]
        now = self.env.now
        epoch = old.epoch + 1
        clock = self._new_clock(f"adjudicator-{shard}", "adjudicator")
        entries = [e for node in self.adjudicators for e in node.journal.entries]
        floor = max(old.journal.last_ts_ns, clock.read(now).latest_ns)
        core = Adjudicator.rebuilt(shard, kernels.ConflictTable(self.window_ns), self.promise_ns,
                                   entries, floor, now - self.window_ns)
        node = AdjudicatorNode(self, shard, old.place, clock, core, old.journal)
        node.epoch = epoch
        node.quorum_write = self._quorum_write_draws(node, self.topo["journal"], f"/epoch{epoch}")
        old.journal.epoch = epoch  # fencing: the old leader's appends are refused from now
        self.adjudicators[shard] = node
        self.failovers.append({"shard": shard, "at_s": now / S, "epoch": epoch})
        self._schedule(self.heartbeat_ns, self._heartbeat, node)

    # -- storage crash and rebuild ---------------------------------------------------------
    def _storage_fault(self, fault) -> None:
        """A storage replica crashes: what it had not applied is gone, deliveries to it
        are dropped until it restarts, and then it is rebuilt (``_restart_storage``)."""
        _, shard, index = fault.target.split(":")
        node = self.replicas[int(shard)][int(index)]
        node.down_until_ns = fault.end_ns
        node.inbound.clear()
        self._schedule(fault.end_ns - self.env.now, self._restart_storage, node)

    def _restart_storage(self, node: StorageNode) -> None:
        """Rebuild from the shard's latest snapshot plus a replay of every journal,
        up to what the region's crossbar has released; replay is idempotent."""
        crossbar = self.crossbars[self.placement.crossbar_of_region(node.place[0])].core
        node.core = self._restore_from_snapshot(node.core.shard, node.core.name,
                                                crossbar.released_watermark_ns)
        node.last_arrival_ns = self.env.now
        self.recorder.count("faults.storage_rebuilds")
        self._wake_waiters(node, self.env.now, node.core.applied_watermark_ns)

    def _snapshot_after_load(self) -> None:
        """Storage faults need snapshots: one of every shard right after the bulk load
        (the load is in no journal), to a folder of the run's own."""
        if not any(f.target.startswith("storage:") for f in self.faults.of_kind("crash")):
            return
        self._snapshot_dir = tempfile.TemporaryDirectory(prefix="dsqlbench-snapshots-")
        self.snapshots = SnapshotStore(self._snapshot_dir.name)
        for nodes in self.replicas:
            self.snapshots.write_storage_snapshot(nodes[0].core, "load")

    def _journal_entries(self) -> list:
        """``(journal index, entry)`` of every journal, for replays."""
        return [(j, e) for j, node in enumerate(self.adjudicators) for e in node.journal.entries]

    def _restore_from_snapshot(self, shard: int, name: str, upto_ns: int) -> StorageReplica:
        """The shard's latest snapshot plus an idempotent replay of the journals up to
        ``upto_ns`` (what the crossbar has released; its later batches follow)."""
        return restore_storage(self.snapshots, shard, self._journal_entries(), self.storage_ranges,
                               upto_ns=upto_ns, replica_name=name)

    def replay_model(self, shard: int, upto_ns: int) -> StorageReplica:
        """The specification a replica must equal: the load, then every journal
        replayed from the start up to ``upto_ns``."""
        if isinstance(self._loaded, BulkLoad):  # the load's pairs and image, as lists
            keys, values, image = self._loaded.per_shard(self.storage_ranges)[shard]
            keys = keys + image.keys.tolist()
            values = values + [image.value(i) for i in range(len(image))]
        else:
            keys, values = self._loaded[shard]
        journals = [node.journal for node in self.adjudicators]
        return model_from_journals(journals, shard, self.storage_ranges, upto_ns,
                                   load=(keys, values, 1), replica_name="model")

    # -- crossbar and storage apply ------------------------------------------------------
    def _crossbar_tick(self, crossbar: CrossbarNode) -> None:
        now = self.env.now
        core = crossbar.core
        for node in self.adjudicators:
            self._heartbeats_through(node, now)
        for journal, inbound in enumerate(crossbar.inbound):
            while inbound and inbound[0][0] <= now:
                core.receive(journal, inbound.popleft()[1])
        if core.watermark() > core.released_watermark_ns:
            _, batches = core.release()
            for batch in batches:
                self._deliver(crossbar, batch)
        self._schedule(self.tick_ns, self._crossbar_tick, crossbar)

    def _deliver(self, crossbar: CrossbarNode, batch: StorageBatch) -> None:
        """Ship one shard's batch to each replica in the region, erasure-coded.

        Every AZ runs a crossbar instance that follows its AZ-local journal replica;
        they see the same entries, so one core per region computes the merge for all,
        and each replica's k + m fragments travel over paths inside its own AZ. The
        replica has the batch once the k-th fragment arrives; when a data fragment is
        among the late ones, the bytes are really decoded from parity and checked.
        """
        if not batch.keys and not self.faults:
            self._deliver_watermark(crossbar, batch)
            return
        code = self.code
        fragmented = encode_batch(batch, code, kernels.split_payload) if batch.keys else None
        for node in self.replicas[batch.shard]:
            if node.place[0] != crossbar.place[0]:
                continue
            if self.faults and self.env.now < node.down_until_ns:
                self.recorder.count("faults.deliveries_to_down_replicas_dropped")
                continue
            row = self._fragment_paths.next()  # [k-th delay, arrival order, their delays]
            received = (row[0], batch)
            if fragmented is not None:
                received = self._receive(node, batch, fragmented, row, self.env.now)
                retries = 0
                while received is None:  # more than m fragments lost: the crossbar sends
                    retries += 1          # it again a tick later; later batches queue behind
                    self.recorder.count("faults.retransmissions")
                    at_ns = self.env.now + retries * self.tick_ns
                    received = self._receive(node, batch, fragmented,
                                             self._fragment_paths.next(), at_ns)
                    if received is not None:
                        received = (received[0] + retries * self.tick_ns, received[1])
            self._enqueue(node, received[1], received[0])

    def _deliver_watermark(self, crossbar: CrossbarNode, batch: StorageBatch) -> None:
        """The common case, kept lean: a batch with no records only moves each
        replica's watermark (its one small message still takes the k-th fastest path)."""
        now = self.env.now
        next_row = self._fragment_paths.next
        watermark = batch.watermark_ns
        for node in self._region_replicas[crossbar.place[0]][batch.shard]:
            arrival = now + next_row()[0]
            if arrival < node.last_arrival_ns:
                arrival = node.last_arrival_ns
            node.last_arrival_ns = arrival
            inbound = node.inbound
            inbound.append((arrival, batch))
            if len(inbound) > INBOUND_APPLY_AT:
                node.catch_up(now)
            if node.waiters and node.waiters[0][0] <= watermark:
                self._wake_waiters(node, arrival, watermark)

    def _receive(self, node: StorageNode, batch: StorageBatch, fragmented, row,
                 at_ns: int) -> tuple[int, StorageBatch] | None:
        """Rebuild the batch at a replica from the first k good fragments of a delivery
        sent at ``at_ns``: the delay until it has them and the batch it rebuilt, or
        None if fewer than k arrive intact."""
        code, k, paths = self.code, self.code.k, self.code.k + self.code.m
        order, delays = row[1:1 + paths], row[1 + paths:]
        lost, corrupt = self._fragment_faults(batch.shard, paths, at_ns)
        fragments = fragmented.fragments
        if corrupt:
            fragments = fragments.copy()
            fragments[corrupt, 0] ^= 0x01  # one bit flipped on the way
        usable = []
        for index, delay in zip(order, delays):
            if index in lost:
                continue
            if self.FRAGMENT_CHECKSUMS and not fragmented.intact(index, fragments[index]):
                self.recorder.count("faults.checksum_mismatches")
                continue
            usable.append((index, delay))
            if len(usable) == k:
                break
        if len(usable) < k:
            self.recorder.count("faults.unrecoverable_deliveries")
            return None
        indices = [i for i, _ in usable]
        payload = rebuild_from(fragments[indices], indices, code, kernels.join_payload,
                               len(fragmented.payload))
        rebuilt = batch
        if payload != fragmented.payload:  # only possible without checksums (a control)
            self.recorder.count("faults.wrong_data_returned")
            rebuilt = _parse_or_keep(payload, batch)  # the replica applies what it decoded
        decoded = sorted(indices) != list(range(k))
        self.recorder.count("crossbar.fragments_decoded_from_parity" if decoded
                            else "crossbar.batches_rebuilt_from_data")
        if lost or corrupt:
            self.recorder.count("faults.deliveries_hit")
        return usable[-1][1], rebuilt

    def _fragment_faults(self, shard: int, paths: int, now: int) -> tuple[set, list]:
        """Fragments lost, and fragments corrupted, for one delivery to ``shard``."""
        if not self.faults:
            return set(), []
        lost: set = set()
        corrupt: list = []
        for fault in self.faults.of_kind("lose_fragments", "corrupt_fragments"):
            if not fault.active(now) or fault.target not in ("storage", f"storage:{shard}"):
                continue
            if self._fault_rng.random() >= fault.probability:
                continue
            if fault.kind == "lose_fragments":
                count = min(fault.fragments, paths)
                lost.update(int(i) for i in self._fault_rng.choice(paths, count, replace=False))
            else:
                corrupt.append(int(self._fault_rng.integers(0, paths)))
        return lost, corrupt

    def _enqueue(self, node: StorageNode, batch: StorageBatch, delay_ns: int) -> None:
        """The batch reaches the replica after ``delay_ns`` (plus its apply cost), in
        order behind everything before it."""
        arrival = max(self.env.now + delay_ns + self.apply_ns * len(batch.keys), node.last_arrival_ns)
        node.last_arrival_ns = arrival
        if batch.keys and node is self.replicas[batch.shard][0]:
            for decided in batch.decided_true_ns:
                self.recorder.visibility(arrival - decided, arrival)
        node.inbound.append((arrival, batch))
        if len(node.inbound) > INBOUND_APPLY_AT:
            node.catch_up(self.env.now)  # replicas nobody reads still apply, in bulk
        self._wake_waiters(node, arrival, batch.watermark_ns)

    def _wake_waiters(self, node: StorageNode, arrival_ns: int, watermark_ns: int) -> None:
        waiters = node.waiters
        while waiters and waiters[0][0] <= watermark_ns:
            _, _, event = heapq.heappop(waiters)
            self._schedule(arrival_ns - self.env.now, event.succeed)

    def audit_replicas(self) -> list[StorageReplica]:
        """One caught-up replica per shard (the first AZ's), for end-of-run audits."""
        now = self.env.now
        for shard_nodes in self.replicas:
            shard_nodes[0].catch_up(now)
        return [shard_nodes[0].core for shard_nodes in self.replicas]

    # -- housekeeping ------------------------------------------------------------------
    def trim(self) -> None:
        """Drop storage versions no read can need (older than the trim horizon, or, in
        runs without faults, than every snapshot still or yet to be read); reclaim
        adjudicator state and the journals' consumed prefix."""
        now = self.env.now
        horizon = now - self.trim_horizon_ns
        if not self.faults:
            # Versions no snapshot can read any more go now rather than at the trim
            # horizon: reads are the same, memory stays flat in run length. (Fault
            # runs keep the horizon: recovery replays and audits read older state.)
            horizon = max(horizon, self.oldest_readable_ns())
        if horizon > 0:
            for shard_nodes in self.replicas:
                for node in shard_nodes:
                    self.recorder.count("storage.versions_trimmed", node.core.trim(horizon))
        for node in self.adjudicators:
            self._heartbeats_through(node, now)  # their clock reads come first
            node.core.reclaim(node.clock.read(now).earliest_ns, self.window_ns)
        if not self.faults:  # fault runs replay journals from the start: they keep them
            # Every crossbar (the journals' only readers here) has merged and released
            # every entry at or below the lowest released watermark: drop that prefix.
            released = min(crossbar.core.released_watermark_ns for crossbar in self.crossbars)
            for node in self.adjudicators:
                node.journal.trim_through(released)


@dataclass(slots=True)
class _MultiCommit:
    """The final adjudicator's state for one multi-shard commit."""

    uid: int
    txn: Transaction
    origin: Place
    reply: simpy.Event
    sent_ns: int
    expected: int
    votes: list = None
    voters: list = None
    writes: dict = None

    def __post_init__(self):
        self.votes = []
        self.voters = []
        self.writes = {}


def _parse_or_keep(payload: bytes, batch: StorageBatch) -> StorageBatch:
    """The batch a replica applies from wrongly decoded bytes (only a control without
    checksums gets here): garbage in the values goes straight into storage; garbage
    in keys, timestamps or the header would not even parse into a batch the replica
    could apply, so that delivery keeps the true batch (its wrong bytes are counted
    either way)."""
    try:
        parsed = batch_from_bytes(payload)
    except (AssertionError, struct.error, ValueError, OverflowError):
        return batch
    same_frame = (parsed.shard, parsed.watermark_ns, parsed.keys, parsed.ts) == \
        (batch.shard, batch.watermark_ns, batch.keys, batch.ts)
    return parsed if same_frame else batch


def _role_faults(role_cfg: dict) -> ClockFaults:
    start_ns = int(role_cfg["disrupted_from_s"] * S)
    return ClockFaults(
        offset_ns=int(role_cfg["offset_us"] * US),
        strobe_ns=int(role_cfg["strobe_us"] * US),
        strobe_period_ns=max(2, int(role_cfg["strobe_period_ms"] * MS)),
        step_ns=int(role_cfg["step_us"] * US),
        step_at_ns=int(role_cfg["step_at_s"] * S),
        disrupted_from_ns=start_ns,
        disrupted_until_ns=start_ns + int(role_cfg["disrupted_for_s"] * S),
    )


def _nearest(places: tuple[Place, ...], target: Place) -> Place:
    """The replica a reader at ``target`` follows: same AZ, else same region, else first."""
    for place in places:
        if place == target:
            return place
    for place in places:
        if place[0] == target[0]:
            return place
    return places[0]
