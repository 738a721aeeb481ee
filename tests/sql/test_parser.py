"""Parsing: PostgreSQL's grammar, errors with positions, unsupported features by name."""

from __future__ import annotations

import pytest

from dsqlbench.sql import ir
from dsqlbench.sql.engine import SqlEngine
from dsqlbench.sql.errors import SqlError
from dsqlbench.sql.parser import parse


def error_of(sql: str) -> SqlError:
    with pytest.raises(SqlError) as raised:
        parse(sql)
    return raised.value


@pytest.mark.parametrize("sql, message, position", [
    ("SELEC 1", 'syntax error at or near "SELEC"', 1),
    ("SELECT a FROM t WHERE", "syntax error at end of input", 22),
    ("SELECT a, FROM t", 'syntax error at or near "FROM"', 11),
    ("SELECT 'é', (1 2", 'syntax error at or near "2"', 16),  # characters, not bytes
])
def test_syntax_errors_carry_postgres_message_and_position(sql, message, position):
    error = error_of(sql)
    assert error.sqlstate == "42601"
    assert error.message == message
    assert error.position == position


@pytest.mark.parametrize("sql, feature", [
    ("SELECT row_number() OVER () FROM t", "window functions"),
    ("SELECT a FROM t UNION SELECT b FROM u", "UNION/INTERSECT/EXCEPT"),
    ("SELECT * FROM (SELECT 1) AS x", "subqueries in FROM"),
    ("SELECT a FROM t WHERE a IN (SELECT b FROM u)", "subqueries"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH (common table expressions)"),
    ("SELECT * FROM t LEFT JOIN u ON t.a = u.a", "outer joins"),
    ("INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", "INSERT ... ON CONFLICT DO UPDATE"),
    ("CREATE TABLE t (a serial PRIMARY KEY)", "serial types (use an explicit key)"),
    ("CREATE TABLE t (a int REFERENCES u (a))", "foreign keys"),
    ("CREATE TABLE t (a int[])", "arrays"),
    ("CREATE TABLE t (a uuid)", "type uuid"),
    ("SAVEPOINT s", "savepoints"),
    ("CREATE VIEW v AS SELECT 1", "statement View"),
])
def test_unsupported_features_are_named(sql, feature):
    error = error_of(sql)
    assert error.sqlstate == "0A000"
    assert error.message == f"unsupported: {feature}"


def test_dsql_specific_refusals_use_dsql_wording():
    assert error_of("TRUNCATE t").message == "unsupported statement: Truncate"
    assert error_of("SELECT * FROM t FOR SHARE").message == \
        "locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported"
    assert "REPEATABLE READ" in error_of("BEGIN ISOLATION LEVEL SERIALIZABLE").message
    assert error_of("CREATE INDEX i ON t (a) WHERE a > 1").message == "WHERE not supported for CREATE INDEX"


def test_statements_translate_to_the_ir():
    select = parse("SELECT a, count(*) AS n FROM t JOIN u ON t.x = u.y WHERE a = $1 "
                   "GROUP BY a ORDER BY a DESC LIMIT 10 FOR UPDATE")
    assert isinstance(select, ir.Select) and select.for_update
    assert [ref.name for ref in select.tables] == ["t", "u"]
    assert select.targets[1] == (ir.Func("count", star=True), "n")
    assert select.order_by[0].descending and select.limit == ir.Const(10)
    insert = parse("INSERT INTO t (a, b) VALUES (1, $2), (DEFAULT, NULL)")
    assert insert.columns == ("a", "b") and insert.rows[1] == (ir.Default(), ir.Const(None))
    assert parse("END") == ir.Transaction("commit")
    assert parse("START TRANSACTION") == ir.Transaction("begin")
    assert parse("ABORT") == ir.Transaction("rollback")
    assert parse("CREATE INDEX ASYNC ix ON t (a, b)") == ir.CreateIndex("ix", "t", ("a", "b"))
    assert parse("SELECT CURRENT_TIMESTAMP").targets[0][0] == ir.Func("now")


def test_one_statement_per_call():
    assert error_of("SELECT 1; SELECT 2").sqlstate == "42601"


def test_engine_parses_each_text_once_and_checks_parameters():
    engine = SqlEngine()
    for _ in range(3):
        engine.parse("SELECT $1 + $2", 2)
    assert engine.parses == 1
    with pytest.raises(SqlError) as raised:
        engine.parse("SELECT $1 + $2", 1)
    assert raised.value.sqlstate == "08P01"
    for _ in range(2):
        with pytest.raises(SqlError):
            engine.parse("SELEC 1")
    assert engine.parses == 2  # failures are cached too
