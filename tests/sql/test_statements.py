"""Each statement kind through the harness: DDL, INSERT, SELECT, UPDATE, DELETE."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlclient import Client


def test_create_insert_select_roundtrip(client):
    client.ok("CREATE TABLE t (a int PRIMARY KEY, b numeric(10,2) NOT NULL DEFAULT 0, c varchar(5), "
              "d char(3), e boolean, f timestamp, g bytea, h bigint, i smallint, j text)")
    result = client.q("INSERT INTO t VALUES (1, 2.555, 'x', 'ab', true, '2025-01-02 03:04:05', "
                      "'\\x0102', 9000000000, 7, 'long text'), (2, DEFAULT, NULL, NULL, NULL, NULL, "
                      "NULL, NULL, NULL, NULL)")
    assert result.kind == "insert" and result.rowcount == 2 and result.attempt_ended == "committed"
    rows = client.ok("SELECT * FROM t ORDER BY a")
    assert rows[0] == (1, Decimal("2.56"), "x", "ab ", True, dt.datetime(2025, 1, 2, 3, 4, 5),
                       b"\x01\x02", 9000000000, 7, "long text")
    assert rows[1] == (2, Decimal("0.00"), None, None, None, None, None, None, None, None)
    assert client.q("SELECT a AS x, b FROM t WHERE a = 1").columns == ["x", "b"]


def test_value_checks_follow_postgres(client):
    client.ok("CREATE TABLE t (a int PRIMARY KEY, s smallint, v varchar(3), n numeric(4,2) NOT NULL)")
    assert client.err("INSERT INTO t VALUES (1, 40000, 'x', 1)").sqlstate == "22003"
    assert client.err("INSERT INTO t VALUES (1, 1, 'xxxx', 1)").sqlstate == "22001"
    assert client.err("INSERT INTO t VALUES (1, 1, 'x', 100)").message == "numeric field overflow"
    assert client.err("INSERT INTO t VALUES (1, 1, 'x', NULL)").sqlstate == "23502"
    assert client.err("INSERT INTO t VALUES (NULL, 1, 'x', 1)").sqlstate == "23502"
    assert client.err("INSERT INTO t VALUES (1, 1, 'x', 1, 5)").sqlstate == "42601"
    assert client.err("INSERT INTO t (zz) VALUES (1)").sqlstate == "42703"
    assert client.err("INSERT INTO t VALUES ('abc', 1, 'x', 1)").sqlstate == "22P02"


def test_duplicate_primary_key_is_23505_checked_by_a_point_read(accounts):
    result = accounts.q("INSERT INTO accounts VALUES (3, 'x', 1, 1)")
    assert result.error.sqlstate == "23505" and result.error.code == "DUPLICATE_KEY"
    assert result.error.detail == "Key (id)=(3) already exists."
    assert result.rows_examined == 1 and result.storage_requests == 1


def test_select_filters_projections_order_limit(accounts):
    assert accounts.ok("SELECT id FROM accounts WHERE balance > 50 AND branch IN (0, 1) ORDER BY id DESC") == \
        [(10,), (9,), (7,), (6,)]
    assert accounts.ok("SELECT id FROM accounts WHERE id BETWEEN 3 AND 5") == [(3,), (4,), (5,)]
    assert accounts.ok("SELECT id FROM accounts WHERE id NOT BETWEEN 2 AND 9 ORDER BY 1") == [(1,), (10,)]
    assert accounts.ok("SELECT id FROM accounts ORDER BY balance DESC LIMIT 2 OFFSET 1") == [(9,), (8,)]
    assert accounts.ok("SELECT owner FROM accounts WHERE id = $1", 4) == [("owner4",)]
    assert accounts.ok("SELECT id FROM accounts WHERE owner LIKE '%1%' ORDER BY id") == [(1,), (10,)]
    assert accounts.ok("SELECT DISTINCT branch FROM accounts ORDER BY branch") == [(0,), (1,), (2,)]
    assert accounts.ok("SELECT id FROM accounts WHERE id IN (2, 99, 4)") == [(2,), (4,)]


def test_expressions_and_functions(accounts):
    row = accounts.ok("SELECT 7 / 2, -7 / 2, 7 % 3, 1.5 * 2, abs(-4), coalesce(NULL, 3), "
                      "lower('AbC'), upper('x'), length('héllo'), 'a' || 1, NULL + 1, "
                      "CASE WHEN 1 > 2 THEN 'no' ELSE 'yes' END, 5::numeric(4,1), CAST('12' AS int), "
                      "greatest(1, 5, 3), round(2.567, 2), NULL IS NULL, 3 IS NOT NULL")[0]
    assert row == (3, -3, 1, Decimal("3.0"), 4, 3, "abc", "X", 5, "a1", None, "yes", Decimal("5.0"),
                   12, 5, Decimal("2.57"), True, True)
    assert accounts.err("SELECT 1 / 0").sqlstate == "22012"
    assert accounts.err("SELECT nosuch(1)").sqlstate == "42883"
    now = accounts.ok("SELECT now(), CURRENT_TIMESTAMP")[0]
    assert now[0] == now[1] and isinstance(now[0], dt.datetime)


def test_null_logic_is_three_valued(client):
    client.ok("CREATE TABLE t (a int PRIMARY KEY, b int)")
    client.ok("INSERT INTO t VALUES (1, NULL), (2, 5)")
    assert client.ok("SELECT a FROM t WHERE b = NULL") == []
    assert client.ok("SELECT a FROM t WHERE NOT (b > 1)") == []
    assert client.ok("SELECT a FROM t WHERE b > 1 OR a = 1 ORDER BY a") == [(1,), (2,)]
    assert client.ok("SELECT a FROM t WHERE b NOT IN (1, NULL)") == []
    assert client.ok("SELECT a FROM t WHERE b IS NULL") == [(1,)]


def test_aggregates_and_group_by(accounts):
    assert accounts.ok("SELECT count(*), sum(balance), min(id), max(owner), avg(id) FROM accounts") == \
        [(10, Decimal("555.00"), 1, "owner9", Decimal("5.5"))]
    assert accounts.ok("SELECT branch, count(*) AS n, sum(id) FROM accounts GROUP BY branch "
                       "HAVING count(*) > 3 ORDER BY branch") == [(1, 4, 22)]
    assert accounts.ok("SELECT count(DISTINCT branch) FROM accounts") == [(3,)]
    assert accounts.ok("SELECT count(*), sum(id) FROM accounts WHERE id > 100") == [(0, None)]
    assert accounts.ok("SELECT branch FROM accounts WHERE id > 100 GROUP BY branch") == []
    assert accounts.err("SELECT owner, count(*) FROM accounts").sqlstate == "42803"
    assert accounts.err("SELECT id FROM accounts WHERE count(*) > 1").sqlstate == "42803"


def test_inner_joins(accounts):
    accounts.ok("CREATE TABLE branches (bid int PRIMARY KEY, name text)")
    accounts.ok("INSERT INTO branches VALUES (0, 'zero'), (1, 'one'), (2, 'two')")
    rows = accounts.ok("SELECT a.id, b.name FROM accounts a JOIN branches b ON b.bid = a.branch "
                       "WHERE a.id <= 3 ORDER BY a.id")
    assert rows == [(1, "one"), (2, "two"), (3, "zero")]
    rows = accounts.ok("SELECT b.name, count(*) FROM branches b, accounts a WHERE a.branch = b.bid "
                       "AND b.name <> 'two' GROUP BY b.name ORDER BY b.name")
    assert rows == [("one", 4), ("zero", 3)]
    assert accounts.err("SELECT id FROM accounts a JOIN branches b ON a.branch = b.bid "
                        "WHERE name = bid AND zz = 1").sqlstate == "42703"


def test_update_and_delete(accounts):
    result = accounts.q("UPDATE accounts SET balance = balance + 1, owner = upper(owner) WHERE branch = 1")
    assert result.kind == "update" and result.rowcount == 4
    assert accounts.ok("SELECT owner, balance FROM accounts WHERE id = 4") == [("OWNER4", Decimal("41.50"))]
    result = accounts.q("DELETE FROM accounts WHERE balance < 30")
    assert result.kind == "delete" and result.rowcount == 2
    assert accounts.ok("SELECT count(*) FROM accounts") == [(8,)]
    assert accounts.q("UPDATE accounts SET id = 100 WHERE id = 3").rowcount == 1
    assert accounts.ok("SELECT id FROM accounts WHERE id IN (3, 100)") == [(100,)]
    assert accounts.err("UPDATE accounts SET id = 4 WHERE id = 100").sqlstate == "23505"


def test_returning(accounts):
    assert accounts.ok("INSERT INTO accounts (id, owner) VALUES (50, 'new') RETURNING id, balance") == \
        [(50, Decimal("0.00"))]
    assert accounts.ok("UPDATE accounts SET balance = 5 WHERE id = 50 RETURNING balance * 2") == \
        [(Decimal("10.00"),)]
    assert accounts.ok("DELETE FROM accounts WHERE id = 50 RETURNING owner") == [("new",)]


def test_secondary_index_is_maintained_and_used(accounts):
    accounts.ok("CREATE INDEX accounts_branch_idx ON accounts (branch, owner)")
    plan = "\n".join(r[0] for r in accounts.ok("EXPLAIN SELECT id FROM accounts WHERE branch = 2"))
    assert "Index Only Scan using accounts_branch_idx" in plan
    assert accounts.ok("SELECT id FROM accounts WHERE branch = 2 ORDER BY id") == [(2,), (5,), (8,)]
    accounts.ok("UPDATE accounts SET branch = 2 WHERE id = 1")
    accounts.ok("DELETE FROM accounts WHERE id = 5")
    accounts.ok("INSERT INTO accounts VALUES (11, 'z', 1, 2)")
    assert accounts.ok("SELECT id FROM accounts WHERE branch = 2 ORDER BY id") == [(1,), (2,), (8,), (11,)]
    assert accounts.ok("SELECT id, balance FROM accounts WHERE branch = 2 AND owner = 'owner8'") == \
        [(8, Decimal("80.50"))]


def test_unique_index_and_unique_constraint(client):
    client.ok("CREATE TABLE u (a int PRIMARY KEY, email text UNIQUE)")
    client.ok("INSERT INTO u VALUES (1, 'x@y'), (2, NULL), (3, NULL)")
    error = client.err("INSERT INTO u VALUES (4, 'x@y')")
    assert error.sqlstate == "23505" and "u_email_key" in error.message
    client.ok("UPDATE u SET email = 'z@y' WHERE a = 1")
    client.ok("INSERT INTO u VALUES (4, 'x@y')")
    assert client.ok("SELECT a FROM u WHERE email = 'x@y'") == [(4,)]


def test_create_index_backfills_existing_rows(accounts):
    accounts.ok("CREATE INDEX ON accounts (owner)")
    assert accounts.ok("SELECT id FROM accounts WHERE owner = 'owner7'") == [(7,)]
    error = accounts.err("CREATE UNIQUE INDEX b_unique ON accounts (branch)")
    assert error.sqlstate == "23505"


def test_tables_without_primary_key_get_a_hidden_key(client):
    client.ok("CREATE TABLE log (msg text, n int)")
    client.ok("INSERT INTO log VALUES ('a', 1), ('a', 1)")
    assert client.ok("SELECT msg, n FROM log") == [("a", 1), ("a", 1)]
    assert client.q("UPDATE log SET n = 2").rowcount == 2
    assert client.ok("SELECT sum(n) FROM log") == [(4,)]


def test_drop_table_and_index(accounts):
    accounts.ok("CREATE INDEX ix ON accounts (owner)")
    accounts.ok("DROP INDEX ix")
    assert "accounts_pkey" in accounts.ok("EXPLAIN SELECT id FROM accounts WHERE id = 1")[0][0]
    accounts.ok("DROP TABLE accounts")
    assert accounts.err("SELECT * FROM accounts").sqlstate == "42P01"
    assert accounts.err("DROP TABLE accounts").sqlstate == "42P01"
    accounts.ok("DROP TABLE IF EXISTS accounts")
    accounts.ok("CREATE TABLE accounts (id int PRIMARY KEY)")
    assert accounts.ok("SELECT count(*) FROM accounts") == [(0,)]  # a new keyspace: old rows gone


def test_ddl_errors(client):
    client.ok("CREATE TABLE t (a int PRIMARY KEY)")
    assert client.err("CREATE TABLE t (a int)").sqlstate == "42P07"
    client.ok("CREATE TABLE IF NOT EXISTS t (a int)")
    assert client.err("CREATE TABLE x (a int, a int)").sqlstate == "42701"
    assert client.err("CREATE TABLE x (a int PRIMARY KEY, b int PRIMARY KEY)").sqlstate == "42P16"
    assert client.err("CREATE TABLE x (a double precision PRIMARY KEY)").sqlstate == "0A000"
    assert client.err("CREATE INDEX ON nosuch (a)").sqlstate == "42P01"


def test_select_without_from_and_statement_kinds(client):
    result = client.q("SELECT 1 + 1 AS two")
    assert (result.kind, result.columns, result.rows) == ("select", ["two"], [(2,)])
    assert client.q("BEGIN").kind == "begin"
    assert client.q("COMMIT").kind == "commit"
    assert client.q("ROLLBACK").kind == "rollback"


def test_two_clients_share_the_catalog(harness):
    a, b = Client(harness, "a"), Client(harness, "b")
    a.ok("CREATE TABLE shared (k int PRIMARY KEY)")
    b.ok("INSERT INTO shared VALUES (1)")
    assert a.ok("SELECT k FROM shared") == [(1,)]
