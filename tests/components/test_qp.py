"""The QP core alone: snapshots from its clock, spooled writes, limits, retries."""

import pytest

from dsqlbench.clock import NodeClock
from dsqlbench.components.messages import AbortReason
from dsqlbench.components.qp import Limits, QueryProcessor, RetryPolicy
from dsqlbench.components.routing import KeyRanges


def make_qp(policy="latest", limits=Limits()):
    clock = NodeClock("qp", offset_ns=500, drift_ppm=0, error_bound_ns=100,
                      drift_bound_ppm=0, sync_interval_ns=10**9)
    return QueryProcessor(0, clock, policy, limits, KeyRanges([1000, 2000]))


@pytest.mark.parametrize("policy,expected", [("earliest", 10_400), ("now", 10_500), ("latest", 10_600)])
def test_t_start_comes_from_the_qp_clock(policy, expected):
    txn = make_qp(policy).begin(1, 1, true_now_ns=10_000)
    assert txn.t_start_ns == expected


def test_writes_are_spooled_and_read_back_by_their_own_transaction():
    qp = make_qp()
    txn = qp.begin(1, 1, 0)
    assert txn.read_only
    qp.write(txn, 5, b"new")
    assert txn.own_write(5) == (True, b"new")
    assert txn.own_write(6) == (False, None)
    assert not txn.read_only


def test_commit_requests_group_keys_by_adjudicator_shard():
    qp = make_qp()
    txn = qp.begin(1, 1, 0)
    for key in (5, 1500, 7):
        qp.write(txn, key, b"x")
    requests = qp.commit_requests(txn)
    assert sorted(requests) == [0, 1]
    assert requests[0].keys == [5, 7] and requests[1].keys == [1500]
    assert all(r.vote for r in requests.values())
    single = qp.begin(2, 1, 0)
    qp.write(single, 5, b"x")
    assert not qp.commit_requests(single)[0].vote


def test_dsql_limits_abort_with_their_reasons():
    qp = make_qp(limits=Limits(max_modified_rows=2, max_modified_bytes=10, max_txn_duration_ns=100))
    txn = qp.begin(1, 1, 0)
    assert qp.write(txn, 1, b"12345") == ""
    assert qp.write(txn, 2, b"123456") == AbortReason.LIMIT_BYTES
    txn = qp.begin(2, 1, 0)
    qp.write(txn, 1, b"1")
    qp.write(txn, 2, b"1")
    assert qp.write(txn, 3, b"1") == AbortReason.LIMIT_ROWS
    assert qp.check_duration(txn, 101) == AbortReason.LIMIT_DURATION
    assert qp.check_duration(txn, 100) == ""


def test_retry_policy_retries_only_retryable_reasons_within_max_attempts():
    policy = RetryPolicy(3, backoff_ms=1, backoff_max_ms=3, jitter=False)
    assert policy.should_retry(AbortReason.CONFLICT, 2)
    assert not policy.should_retry(AbortReason.CONFLICT, 3)
    assert not policy.should_retry(AbortReason.LIMIT_ROWS, 1)
    assert [policy.backoff_ns(a, 0.5) for a in (1, 2, 3)] == [1_000_000, 2_000_000, 3_000_000]
    jittered = RetryPolicy(3, 1, 3, jitter=True)
    assert jittered.backoff_ns(2, 0.25) == 500_000


def test_lock_keys_join_the_conflict_check_and_ddl_goes_to_every_shard():
    qp = make_qp()
    txn = qp.begin(1, 1, 0)
    txn.lock_keys = (1500,)
    assert not txn.read_only
    qp.write(txn, 5, b"x")
    requests = qp.commit_requests(txn)
    assert requests[1].keys == [1500] and 1500 not in requests[1].writes
    ddl = qp.begin(2, 1, 0)
    ddl.schema_change = True
    ddl.writes[7] = b"catalog row"
    requests = qp.commit_requests(ddl)
    assert sorted(requests) == [0, 1, 2] and all(r.vote and r.schema_change for r in requests.values())
