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

Layout: this module builds the cluster (nodes, clocks, streams, the load), starts it
and does its housekeeping (storage GC, journal trimming); each node role's runtime is
a module of its own, mixed into ``Cluster``: ``qp_runtime`` (begin, read, scan, send
commits), ``adjudicator_runtime`` (batches, decisions, votes, heartbeats, failover),
``journal_runtime`` (quorum appends, the feeds to the crossbars), ``crossbar_runtime``
(ticks, merge, erasure-coded delivery) and ``storage_runtime`` (arrivals, waiting
readers, crashes and rebuilds); ``nodes`` holds the nodes' runtime state.
"""

from __future__ import annotations

import itertools

import numpy as np
import simpy

from dsqlbench import kernels
from dsqlbench.clock import ClockFaults, NodeClock
from dsqlbench.components.adjudicator import Adjudicator
from dsqlbench.components.crossbar import Crossbar
from dsqlbench.components.journal import Journal
from dsqlbench.components.qp import Limits, QueryProcessor
from dsqlbench.components.routing import KeyRanges
from dsqlbench.components.storage import BulkLoad, StorageReplica
from dsqlbench.components.workers import WorkerPool
from dsqlbench.sim.faults import FaultSchedule
from dsqlbench.sim.network import Network, Place
from dsqlbench.seeds import BufferedDraws, stream
from dsqlbench.sim.topology import Placement, build_placement
from dsqlbench.sim.nodes import (
    MS,
    S,
    US,
    AdjudicatorNode,
    CommitResult,
    CrossbarNode,
    StorageNode,
    nearest,
)
from dsqlbench.sim.adjudicator_runtime import AdjudicatorRuntime
from dsqlbench.sim.crossbar_runtime import CrossbarRuntime
from dsqlbench.sim.journal_runtime import JournalRuntime
from dsqlbench.sim.qp_runtime import QueryProcessorRuntime
from dsqlbench.sim.storage_runtime import StorageRuntime

__all__ = ["Cluster", "CommitResult", "MS", "S", "US"]


class Cluster(QueryProcessorRuntime, AdjudicatorRuntime, JournalRuntime, CrossbarRuntime,
              StorageRuntime):
    """The whole simulated cluster: construction, the load, start-up and housekeeping
    here; each node role's runtime in its own module (the bases above)."""

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
        self.heartbeat_ahead_ns = int(adj["heartbeat_ahead_us"] * US)
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
            nodes = [StorageNode(StorageReplica(shard, f"storage-{shard}@{r}/{az}"), (r, az),
                                 topo["storage"]["workers"])
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
                source = nearest(replicas, crossbar.place)
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
        self.qp_pools = [WorkerPool(f"qp-{i}", topo["qp"]["workers"])
                         for i in range(len(self.placement.qps))]
        for index, place in enumerate(self.placement.qps):
            clock = self._new_clock(f"qp-{index}", "qp")
            self.qps.append(QueryProcessor(index, clock, self.t_start_policy, limits,
                                           self.adjudicator_ranges, self.refuse_invalid_clock))
            self.qp_places.append(place)

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

    def qp_statement_ns(self, qp: int, at_ns: int | None = None) -> int:
        """The QP's work on one statement arriving at ``at_ns`` (default now): its wait
        for a free worker plus the statement service."""
        return self.qp_pools[qp].admit(self.env.now if at_ns is None else at_ns, self.qp_service_ns)

    def node_load(self, from_ns: int, end_ns: int) -> dict:
        """Each QP's and storage replica's load over ``[from_ns, end_ns)`` (utilisation,
        queue length and wait), by node name."""
        pools = self.qp_pools + [node.pool for nodes in self.replicas for node in nodes]
        return {pool.name: pool.summary(from_ns, end_ns) for pool in sorted(pools, key=lambda p: p.name)}

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
