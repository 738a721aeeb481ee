"""The journal core alone: strict order, quorum, durable prefix, trimming."""

import pytest

from dsqlbench.components.journal import Journal, quorum_latency_ns, quorum_size
from dsqlbench.components.messages import JournalEntry


def test_quorum_is_a_majority():
    assert [quorum_size(n) for n in (1, 2, 3, 5)] == [1, 2, 2, 3]


def test_quorum_latency_is_the_quorum_th_fastest_replica():
    assert quorum_latency_ns([900, 100, 400], 2) == 400
    assert quorum_latency_ns([900, 100, 400], 3) == 900


def test_append_requires_strictly_increasing_timestamps():
    journal = Journal(0, replicas=3)
    journal.append(JournalEntry(10, 1))
    with pytest.raises(AssertionError):
        journal.append(JournalEntry(10, 2))
    journal.append(JournalEntry(11, -1))  # heartbeat
    assert journal.appended_commits == 1


def test_durability_is_a_prefix():
    journal = Journal(0, replicas=3)
    slow = journal.durable_after(true_now_ns=0, quorum_write_ns=1000)
    fast = journal.durable_after(true_now_ns=10, quorum_write_ns=5)
    assert fast == slow == 1000  # a later append is never durable before an earlier one


def test_trim_drops_a_consumed_prefix():
    journal = Journal(0, replicas=3)
    for ts in range(1, 6):
        journal.append(JournalEntry(ts, ts))
    assert journal.trim_before(3) == 3
    assert [e.ts_ns for e in journal.read_from(3)] == [4, 5]


def test_losing_undurable_appends_drops_them_and_keeps_the_rest():
    journal = Journal(0, replicas=3)
    for ts in (1, 2, 3):
        journal.append(JournalEntry(ts, ts))
    journal.durable_after(true_now_ns=0, quorum_write_ns=500)
    journal.lose_undurable({2, 3}, true_now_ns=100)
    assert [e.txn_id for e in journal.entries] == [1]
    assert journal.last_durable_true_ns == 100
    journal.append(JournalEntry(4, 4))  # the log goes on above what it had promised


def test_trim_through_drops_every_entry_at_or_below_a_released_watermark():
    journal = Journal(0, 3)
    for ts in (10, 20, 30, 40):
        journal.append(JournalEntry(ts, ts))
    assert journal.trim_through(5) == 0
    assert journal.trim_through(20) == 2
    assert [e.ts_ns for e in journal.read_from(2)] == [30, 40] and journal.base_position == 2
    assert journal.trim_through(20) == 0 and journal.trim_through(99) == 2
    assert journal.append(JournalEntry(50, 50)) == 4  # positions keep counting
