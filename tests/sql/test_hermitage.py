"""Hermitage's isolation tests (github.com/ept/hermitage; DSQL's page by Marc Brooker),
run through the SQL engine on the real adjudicator and storage cores.

Snapshot isolation as DSQL implements it: G0, G1a, G1b, G1c, lost update (P4) and
read skew (G-single) are prevented; write skew (G2-item) is allowed; SELECT ... FOR
UPDATE puts the rows read into the conflict check, which prevents it.
Each test sets up ``test (id, value)`` with rows (1, 10) and (2, 20), as Hermitage does.
"""

import pytest

from dsqlbench.sql.harness import Harness
from tests.sql.sqlclient import Client


@pytest.fixture
def t():
    harness = Harness()
    setup = Client(harness, "setup")
    setup.ok("CREATE TABLE test (id int PRIMARY KEY, value int)")
    setup.ok("INSERT INTO test (id, value) VALUES (1, 10), (2, 20)")
    return Client(harness, "T1"), Client(harness, "T2"), Client(harness, "T3")


def values(client):
    return client.ok("SELECT id, value FROM test ORDER BY id")


def test_g0_write_cycles_are_prevented(t):
    t1, t2, t3 = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    t1.ok("UPDATE test SET value = 11 WHERE id = 1")
    t2.ok("UPDATE test SET value = 12 WHERE id = 1")
    t1.ok("UPDATE test SET value = 21 WHERE id = 2")
    t1.ok("COMMIT")
    t2.ok("UPDATE test SET value = 22 WHERE id = 2")
    assert t2.q("COMMIT").error.code == "OC000"  # first committer wins
    assert values(t3) == [(1, 11), (2, 21)]


def test_g1a_aborted_reads_are_prevented(t):
    t1, t2, _ = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    t1.ok("UPDATE test SET value = 101 WHERE id = 1")
    assert values(t2) == [(1, 10), (2, 20)]
    t1.ok("ROLLBACK")
    assert values(t2) == [(1, 10), (2, 20)]
    t2.ok("COMMIT")


def test_g1b_intermediate_reads_are_prevented(t):
    t1, t2, _ = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    t1.ok("UPDATE test SET value = 101 WHERE id = 1")
    assert values(t2) == [(1, 10), (2, 20)]
    t1.ok("UPDATE test SET value = 11 WHERE id = 1")
    t1.ok("COMMIT")
    assert values(t2) == [(1, 10), (2, 20)]  # its snapshot, never 101
    t2.ok("COMMIT")


def test_g1c_circular_information_flow_is_prevented(t):
    t1, t2, _ = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    t1.ok("UPDATE test SET value = 11 WHERE id = 1")
    t2.ok("UPDATE test SET value = 22 WHERE id = 2")
    assert t1.ok("SELECT value FROM test WHERE id = 2") == [(20,)]
    assert t2.ok("SELECT value FROM test WHERE id = 1") == [(10,)]
    t1.ok("COMMIT"), t2.ok("COMMIT")


def test_p4_lost_update_is_prevented(t):
    t1, t2, t3 = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    assert t1.ok("SELECT value FROM test WHERE id = 1") == [(10,)]
    assert t2.ok("SELECT value FROM test WHERE id = 1") == [(10,)]
    t1.ok("UPDATE test SET value = 11 WHERE id = 1")
    t2.ok("UPDATE test SET value = 11 WHERE id = 1")
    t1.ok("COMMIT")
    assert t2.q("COMMIT").error.code == "OC000"
    assert values(t3)[0] == (1, 11)


def test_g_single_read_skew_is_prevented(t):
    t1, t2, _ = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    assert t1.ok("SELECT value FROM test WHERE id = 1") == [(10,)]
    assert t2.ok("SELECT value FROM test WHERE id = 1") == [(10,)]
    assert t2.ok("SELECT value FROM test WHERE id = 2") == [(20,)]
    t2.ok("UPDATE test SET value = 12 WHERE id = 1")
    t2.ok("UPDATE test SET value = 18 WHERE id = 2")
    t2.ok("COMMIT")
    assert t1.ok("SELECT value FROM test WHERE id = 2") == [(20,)]  # not 18: one snapshot
    t1.ok("COMMIT")


def test_g2_item_write_skew_is_allowed(t):
    t1, t2, t3 = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    assert t1.ok("SELECT value FROM test WHERE id IN (1, 2) ORDER BY id") == [(10,), (20,)]
    assert t2.ok("SELECT value FROM test WHERE id IN (1, 2) ORDER BY id") == [(10,), (20,)]
    t1.ok("UPDATE test SET value = 11 WHERE id = 1")
    t2.ok("UPDATE test SET value = 21 WHERE id = 2")
    t1.ok("COMMIT")
    t2.ok("COMMIT")  # disjoint write sets: snapshot isolation lets both commit
    assert values(t3) == [(1, 11), (2, 21)]


def test_select_for_update_prevents_write_skew(t):
    t1, t2, _ = t
    t1.ok("BEGIN"), t2.ok("BEGIN")
    t1.ok("SELECT value FROM test WHERE id IN (1, 2) FOR UPDATE")
    t2.ok("SELECT value FROM test WHERE id IN (1, 2) FOR UPDATE")
    t1.ok("UPDATE test SET value = 11 WHERE id = 1")
    t2.ok("UPDATE test SET value = 21 WHERE id = 2")
    t1.ok("COMMIT")
    assert t2.q("COMMIT").error.code == "OC000"  # the rows it read were written since
