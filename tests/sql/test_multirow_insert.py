"""Multi-row INSERTs check their primary keys with one range scan, not a read per row,
and still find every duplicate: in storage, in the transaction's own writes, and
within the statement itself."""

from __future__ import annotations

from dsqlbench.sql.executor import INSERT_RANGE_CHECK_ROWS


def _values(ids) -> str:
    return ", ".join(f"({i}, {i * 2})" for i in ids)


def test_many_rows_cost_one_storage_request(client):
    client.ok("CREATE TABLE t (id int PRIMARY KEY, v int)")
    ids = range(1, INSERT_RANGE_CHECK_ROWS * 10)
    result = client.q(f"INSERT INTO t VALUES {_values(ids)}")
    assert result.error is None and result.rowcount == len(ids)
    assert result.storage_requests == 1
    assert client.ok("SELECT count(*) FROM t") == [(len(ids),)]


def test_duplicates_found_in_storage_own_writes_and_statement(client):
    client.ok("CREATE TABLE t (id int PRIMARY KEY, v int)")
    client.ok("INSERT INTO t VALUES (5, 0)")
    many = list(range(1, INSERT_RANGE_CHECK_ROWS + 4))
    error = client.err(f"INSERT INTO t VALUES {_values(many)}")
    assert error.sqlstate == "23505" and "(id)=(5)" in error.detail
    client.ok("BEGIN")
    client.ok("INSERT INTO t VALUES (100, 0)")
    error = client.err(f"INSERT INTO t VALUES {_values(range(95, 95 + INSERT_RANGE_CHECK_ROWS))}")
    assert "(id)=(100)" in error.detail
    client.ok("ROLLBACK")
    repeated = [20] + list(range(21, 21 + INSERT_RANGE_CHECK_ROWS)) + [20]
    error = client.err(f"INSERT INTO t VALUES {_values(repeated)}")
    assert "(id)=(20)" in error.detail
    assert client.ok("SELECT count(*) FROM t") == [(1,)]


def test_deleted_key_can_be_inserted_again(client):
    client.ok("CREATE TABLE t (id int PRIMARY KEY, v int)")
    client.ok(f"INSERT INTO t VALUES {_values(range(1, 11))}")
    client.ok("BEGIN")
    client.ok("DELETE FROM t WHERE id = 3")
    assert client.q(f"INSERT INTO t VALUES {_values(range(3, 4))}, {_values(range(50, 60))}").error is None
    client.ok("COMMIT")
    assert client.ok("SELECT count(*) FROM t") == [(20,)]


def test_on_conflict_do_nothing_skips_existing_keys(client):
    client.ok("CREATE TABLE t (id int PRIMARY KEY, v int)")
    client.ok("INSERT INTO t VALUES (1, 1)")
    result = client.q("INSERT INTO t VALUES (1, 9), (2, 2) ON CONFLICT DO NOTHING")
    assert result.error is None and result.rowcount == 1
    many = client.q(f"INSERT INTO t VALUES {_values(range(1, 20))} ON CONFLICT (id) DO NOTHING")
    assert many.rowcount == 17
    assert client.ok("SELECT v FROM t WHERE id = 1") == [(1,)]
    assert client.err("INSERT INTO t VALUES (1, 1) ON CONFLICT (v) DO NOTHING").sqlstate == "42P10"
    assert client.err("INSERT INTO t VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET v = 5").sqlstate == "0A000"
