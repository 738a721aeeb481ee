"""The crossbars' part of the simulated cluster: ticks, merge, erasure-coded delivery.

A mixin of ``Cluster`` (``sim/cluster.py``). Every tick a crossbar takes what its
journals delivered, releases everything at or below the watermark as one batch per
storage shard, and ships each to every replica in its region as k + m fragments over
their own paths; a replica has the batch once the k-th good fragment arrives (decoded
from parity when a data fragment is late or lost). Watermark-only batches take a lean
path.

Invariants: a replica receives its shard's batches in release order; a batch rebuilt
from any k intact fragments is byte-identical to the one encoded (a fragment failing
its CRC counts as lost).
"""

from __future__ import annotations

import struct


from dsqlbench import kernels
from dsqlbench.components.crossbar import batch_from_bytes, encode_batch, rebuild_from
from dsqlbench.components.messages import (
    StorageBatch,
)
from dsqlbench.sim.nodes import (
    INBOUND_APPLY_AT,
    CrossbarNode,
    StorageNode,
)


class CrossbarRuntime:
    """Cluster methods of this role (state lives on ``Cluster``)."""

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
