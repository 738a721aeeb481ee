"""The journals' part of the simulated cluster: quorum appends and the feed to the
crossbars.

A mixin of ``Cluster`` (``sim/cluster.py``). An append is durable when the quorum-th
fastest replica round trip completes (drawn per journal, in blocks); durability is a
prefix. Each crossbar follows the journal replica nearest it over a feed with a delay
stream of its own, so an append computed late (a caught-up heartbeat) draws what it
would have drawn on time.
"""

from __future__ import annotations



from dsqlbench.components.messages import (
    JournalEntry,
)
from dsqlbench.sim.nodes import (
    AdjudicatorNode,
)


class JournalRuntime:
    """Cluster methods of this role (state lives on ``Cluster``)."""

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
