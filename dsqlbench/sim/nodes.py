"""The simulated cluster's nodes: the runtime state of each node role around its core.

``AdjudicatorNode`` (a shard leader: inbox, batching, busy time, epoch, lease state),
``StorageNode`` (a replica: its delivery queue and the reads waiting on it),
``CrossbarNode`` (what each journal has delivered to it), the result a QP learns from
the commit protocol, and the units every runtime module shares. The component cores in
``dsqlbench.components`` hold the state and make the decisions; these hold what the
runtime needs around them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections import deque
from dataclasses import dataclass

import simpy

from dsqlbench.clock import NodeClock
from dsqlbench.components.adjudicator import Adjudicator
from dsqlbench.components.crossbar import Crossbar
from dsqlbench.components.journal import Journal
from dsqlbench.components.messages import (
    CommitRequest,
    JournalEntry,
    StorageBatch,
)
from dsqlbench.components.qp import Transaction
from dsqlbench.components.storage import StorageReplica
from dsqlbench.components.workers import WorkerPool
from dsqlbench.sim.network import Place
from dsqlbench.seeds import BufferedDraws

if TYPE_CHECKING:  # the cluster holds the nodes; the nodes only point back
    from dsqlbench.sim.cluster import Cluster

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

    def __init__(self, core: StorageReplica, place: Place, workers: int = 1):
        self.core = core
        self.place = place
        self.inbound: deque[tuple[int, StorageBatch]] = deque()
        self.last_arrival_ns = 0
        self.waiters: list[tuple[int, int, simpy.Event]] = []  # (t_ns, seq, event) heap
        self.down_until_ns = 0  # crashed until then (faults)
        self.pool = WorkerPool(core.name, workers)  # its reads queue for these

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


@dataclass(slots=True)
class MultiCommit:
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


def nearest(places: tuple[Place, ...], target: Place) -> Place:
    """The replica a reader at ``target`` follows: same AZ, else same region, else first."""
    for place in places:
        if place == target:
            return place
    for place in places:
        if place[0] == target[0]:
            return place
    return places[0]
