"""psycopg 3 against ``dsqlbench serve``: autocommit, transactions, parameters, types,
and a conflict forced by two sessions that surfaces as SerializationFailure at COMMIT."""

import datetime as dt
from decimal import Decimal

import pytest

psycopg = pytest.importorskip("psycopg")


def connect(server, **kwargs):
    return psycopg.connect(server.dsn, **kwargs)


def test_startup_reports_dsql_parameters(server):
    with connect(server) as conn:
        info = conn.info
        assert info.server_version == 160009
        assert info.parameter_status("client_encoding") == "UTF8"
        assert info.parameter_status("TimeZone") == "UTC"
        assert info.parameter_status("integer_datetimes") == "on"
        assert info.parameter_status("standard_conforming_strings") == "on"
        assert info.backend_pid > 0


def test_autocommit_parameters_and_types(server):
    with connect(server, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, n numeric(10,2), s text, b bool, "
                     "ts timestamp, f float8, big bigint)")
        conn.execute("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (1, Decimal("2.50"), "x", True, dt.datetime(2024, 1, 2, 3, 4, 5), 1.5, 2**40))
        row = conn.execute("SELECT * FROM t WHERE id = %s", (1,)).fetchone()
        assert row == (1, Decimal("2.50"), "x", True, dt.datetime(2024, 1, 2, 3, 4, 5), 1.5, 2**40)
        cur = conn.execute("SELECT count(*), sum(id), 'lit' AS l FROM t")
        assert cur.fetchone() == (1, 1, "lit")
        assert [d.type_code for d in cur.description] == [20, 20, 25]
        assert cur.statusmessage == "SELECT 1"
        assert conn.execute("UPDATE t SET s = %s WHERE id = 1", ("y",)).rowcount == 1


def test_transaction_status_and_rollback(server):
    with connect(server) as conn:
        conn.execute("CREATE TABLE kv (k int PRIMARY KEY, v int)")
        conn.commit()
        conn.execute("INSERT INTO kv VALUES (1, 1)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM kv").fetchone() == (0,)
        conn.rollback()
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM missing")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_two_sessions_conflict_at_commit(server):
    with connect(server, autocommit=True) as setup:
        setup.execute("CREATE TABLE acct (id int PRIMARY KEY, balance int)")
        setup.execute("INSERT INTO acct VALUES (1, 100)")
    with connect(server) as a, connect(server) as b:
        a.execute("UPDATE acct SET balance = balance + 1 WHERE id = 1")
        b.execute("UPDATE acct SET balance = balance + 2 WHERE id = 1")  # no lock: no wait
        a.commit()
        with pytest.raises(psycopg.errors.SerializationFailure) as caught:
            b.commit()
        assert "(OC000)" in str(caught.value)
        assert b.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert a.execute("SELECT balance FROM acct").fetchone() == (101,)


def test_simple_query_with_several_statements(server):
    with connect(server, autocommit=True) as conn:
        conn.execute("CREATE TABLE m (id int PRIMARY KEY)")
        cur = conn.execute("INSERT INTO m VALUES (1); INSERT INTO m VALUES (2); SELECT count(*) FROM m")
        statuses = [cur.statusmessage]
        while cur.nextset():
            statuses.append(cur.statusmessage)
        assert statuses == ["INSERT 0 1", "INSERT 0 1", "SELECT 1"]
        assert cur.fetchone() == (2,)


def test_error_carries_position_and_sqlstate(server):
    with connect(server, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.SyntaxError) as caught:
            conn.execute("SELECT FROM WHERE")
        assert caught.value.diag.statement_position is not None
