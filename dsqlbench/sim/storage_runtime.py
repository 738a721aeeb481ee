"""Storage replicas' part of the simulated cluster: arrivals, waiting readers, crashes
and rebuilds.

A mixin of ``Cluster`` (``sim/cluster.py``). A replica applies its delivered batches
lazily, on the next read or tick at or after their arrival, which is observationally
the same as applying on arrival; readers waiting for a watermark wake when the batch
that carries it arrives. A crashed replica loses what it had not applied and is rebuilt
from its shard's latest snapshot plus an idempotent replay of every journal.
"""

from __future__ import annotations

import heapq
import tempfile


from dsqlbench.components.messages import (
    StorageBatch,
)
from dsqlbench.components.recovery import model_from_journals, restore_storage
from dsqlbench.components.snapshot import SnapshotStore
from dsqlbench.components.storage import BulkLoad, StorageReplica
from dsqlbench.sim.nodes import (
    INBOUND_APPLY_AT,
    StorageNode,
)


class StorageRuntime:
    """Cluster methods of this role (state lives on ``Cluster``)."""

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
