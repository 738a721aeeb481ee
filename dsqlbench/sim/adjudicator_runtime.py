"""The adjudicators' part of the simulated cluster: batching, decisions, heartbeats,
leases and failover.

A mixin of ``Cluster`` (``sim/cluster.py``). Commit, one shard: QP -> adjudicator
(batched over ``batch_window_us``) -> decide -> journal quorum append -> commit-wait ->
ack -> QP. Several shards: QP -> every participant (vote) -> the final adjudicator ->
decide -> journal -> ack, and the outcome to every participant (release).

Heartbeats run on a grid of ``heartbeat_interval_us``; in runs without node faults they
are caught up when something can observe them (``_heartbeats_through``), which gives
the same figures as one event each (tests/sim/test_heartbeats.py).

Invariants: a leader hands out no timestamp without a valid clock bound (when
``invalid_clock = refuse``); a superseded leader's appends are fenced off; a commit is
acknowledged only once durable (unless a control says otherwise).
"""

from __future__ import annotations



from dsqlbench import kernels
from dsqlbench.components.adjudicator import Adjudicator
from dsqlbench.components.messages import (
    AbortReason,
    CommitRequest,
    Decision,
    JournalEntry,
    Vote,
)
from dsqlbench.sim.network import Place
from dsqlbench.sim.nodes import (
    S,
    US,
    AdjudicatorNode,
    CommitResult,
    MultiCommit,
)


class AdjudicatorRuntime:
    """Cluster methods of this role (state lives on ``Cluster``)."""

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

    def _voters_current(self, state: "MultiCommit") -> bool:
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

    def _collect_vote(self, final: AdjudicatorNode, state: "MultiCommit", ballot: Vote,
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
            # Promise ahead of the clock (heartbeat_ahead_us): later commits of this shard
            # take timestamps above it, so replicas far away already know the time up to
            # it when readers there take their t_start; the commits wait it out instead.
            ts = node.core.heartbeat(reading.earliest_ns + self.heartbeat_ahead_ns)
            if ts is not None:
                self._append(node, [JournalEntry(ts, -1, (), at_ns)], at_ns, now_ns=at_ns)

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
