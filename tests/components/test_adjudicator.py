"""The adjudicator core alone: first committer wins, commit times, votes, heartbeats."""

import numpy as np
import pytest

from dsqlbench import kernels
from dsqlbench.components.adjudicator import Adjudicator
from dsqlbench.components.messages import AbortReason, CommitRequest, Vote

WINDOW_NS = 300 * 10**9


@pytest.fixture
def adjudicator():
    return Adjudicator(0, kernels.ConflictTable(WINDOW_NS), promise_ns=1_000_000)


def req(txn_id, t_start, keys, vote=False):
    return CommitRequest(txn_id, t_start, list(keys), {k: b"v" for k in keys}, vote)


def test_commit_times_rise_above_start_floor_and_last_commit(adjudicator):
    first, = adjudicator.adjudicate([req(1, 100, [7])], t_propose_ns=50)
    assert first.committed and first.t_commit_ns == 101  # above t_start, though clock said 50
    second, = adjudicator.adjudicate([req(2, 200, [8])], t_propose_ns=150)
    assert second.committed and second.t_commit_ns == 201
    third, = adjudicator.adjudicate([req(3, 150, [9])], t_propose_ns=160)
    assert third.t_commit_ns == 202  # above the floor: strictly increasing per shard
    assert adjudicator.floor_ns == 202


def test_write_write_conflict_after_t_start_aborts_oc000(adjudicator):
    adjudicator.adjudicate([req(1, 100, [7])], t_propose_ns=1000)  # commits at 1000
    late, = adjudicator.adjudicate([req(2, 999, [7])], t_propose_ns=2000)
    assert not late.committed and late.reason == AbortReason.CONFLICT
    fresh, = adjudicator.adjudicate([req(3, 1000, [7])], t_propose_ns=2000)
    assert fresh.committed  # started at the commit: it saw it


def test_in_batch_conflicts_resolve_in_batch_order(adjudicator):
    decisions = adjudicator.adjudicate(
        [req(1, 100, [1, 2]), req(2, 100, [2, 3]), req(3, 100, [3])], t_propose_ns=500)
    assert [d.committed for d in decisions] == [True, False, True]
    assert decisions[0].t_commit_ns < decisions[2].t_commit_ns


def test_too_old_transactions_are_refused(adjudicator):
    old, = adjudicator.adjudicate([req(1, 5, [1])], t_propose_ns=WINDOW_NS + 10)
    assert not old.committed and old.reason == AbortReason.TOO_OLD


def test_vote_marks_keys_pending_until_resolved(adjudicator):
    yes, = adjudicator.vote([req(1, 100, [5], vote=True)], t_propose_ns=300)
    assert yes.yes and yes.t_low_ns == 300 and yes.t_high_ns == 300 + 1_000_000
    blocked, = adjudicator.adjudicate([req(2, 10**6, [5])], t_propose_ns=10**6)
    assert not blocked.committed  # pending key: a conflicting commit cannot slip under
    adjudicator.resolve(1, None)  # the multi-shard commit aborted: promise released
    again, = adjudicator.adjudicate([req(3, 10**6, [5])], t_propose_ns=10**6)
    assert again.committed


def test_resolve_with_commit_time_sets_last_commit(adjudicator):
    adjudicator.vote([req(1, 100, [5], vote=True)], t_propose_ns=300)
    adjudicator.resolve(1, 5000)
    before, = adjudicator.adjudicate([req(2, 4999, [5])], t_propose_ns=6000)
    assert not before.committed
    after, = adjudicator.adjudicate([req(3, 5000, [5])], t_propose_ns=6000)
    assert after.committed


def test_finalize_picks_max_low_within_every_range(adjudicator):
    votes = [Vote(9, 0, True, 100, 200), Vote(9, 1, True, 150, 400)]
    decision = adjudicator.finalize(9, votes)
    assert decision.committed and decision.t_commit_ns == 150
    assert adjudicator.floor_ns == 150


def test_finalize_aborts_when_ranges_do_not_meet(adjudicator):
    decision = adjudicator.finalize(9, [Vote(9, 0, True, 100, 120), Vote(9, 1, True, 150, 400)])
    assert not decision.committed and decision.reason == AbortReason.PROMISE_EXPIRED


def test_finalize_aborts_on_any_no_vote(adjudicator):
    decision = adjudicator.finalize(
        9, [Vote(9, 0, True, 100, 200), Vote(9, 1, False, reason=AbortReason.CONFLICT)])
    assert not decision.committed and decision.reason == AbortReason.CONFLICT


def test_heartbeat_raises_the_floor_and_never_goes_back(adjudicator):
    assert adjudicator.heartbeat(500) == 500
    assert adjudicator.heartbeat(400) is None
    decision, = adjudicator.adjudicate([req(1, 10, [1])], t_propose_ns=100)
    assert decision.t_commit_ns == 501


def test_reclaim_bounds_state_by_the_window(adjudicator):
    adjudicator.adjudicate([req(i, 10, [i]) for i in range(1, 50)], t_propose_ns=100)
    assert len(adjudicator.table) == 49
    assert adjudicator.reclaim(t_now_ns=WINDOW_NS + 10**6, window_ns=WINDOW_NS) == 49
    assert len(adjudicator.table) == 0


def test_wide_keys_fold_into_the_conflict_table_and_still_conflict(adjudicator):
    from dsqlbench.components.adjudicator import INT63, conflict_key

    wide = (3 << 100) | 99
    assert 0 <= conflict_key(wide) <= INT63 and conflict_key(wide) == conflict_key(wide)
    assert conflict_key(12) == 12
    adjudicator.adjudicate([req(1, 100, [wide])], t_propose_ns=1000)
    late, = adjudicator.adjudicate([req(2, 999, [wide])], t_propose_ns=2000)
    assert not late.committed


def test_a_schema_change_refuses_older_transactions_with_oc001(adjudicator):
    ddl = CommitRequest(50, 100, [], {}, vote=True, schema_change=True)
    yes, = adjudicator.vote([ddl], t_propose_ns=200)
    assert yes.yes
    during, = adjudicator.adjudicate([req(51, 150, [1])], t_propose_ns=210)
    assert not during.committed and during.reason == AbortReason.SCHEMA_CHANGED
    adjudicator.resolve(50, 300)
    before, = adjudicator.adjudicate([req(52, 299, [2])], t_propose_ns=400)
    after, = adjudicator.adjudicate([req(53, 300, [3])], t_propose_ns=400)
    assert before.reason == AbortReason.SCHEMA_CHANGED and after.committed


def test_an_aborted_schema_change_releases_the_shard(adjudicator):
    adjudicator.vote([CommitRequest(50, 100, [], {}, vote=True, schema_change=True)], 200)
    adjudicator.resolve(50, None)
    fine, = adjudicator.adjudicate([req(51, 150, [1])], t_propose_ns=210)
    assert fine.committed
