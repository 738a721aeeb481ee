"""The SQL engine: what a cluster's query processors share.

Role: one ``SqlEngine`` per simulated cluster holds the versioned catalog, the parse
cache (one parse per distinct statement text), the plan cache (one plan per text and
catalog version), the hidden row-id counter, and the codecs behind them. Sessions
(``SqlSession``) are per client connection and do all I/O through protocol requests;
the engine itself does none.

Before a run, a loader uses ``bootstrap(schema_sql)`` (DDL applied at catalog version 0,
returning the catalog rows to store) and ``load_rows(table, rows)`` (encoded rows and
index entries), then puts every returned ``(key, value)`` into storage directly, with no
transactions.

Invariants: caches never change results (a plan is keyed by the catalog snapshot
object it was planned against); row ids are unique per engine and handed out in call
order, so a deterministic driver gives deterministic keys.
"""

from __future__ import annotations

from dataclasses import fields

from pglast.parser import split

from dsqlbench.components.qp import Limits
from dsqlbench.sql import ddl, ir
from dsqlbench.sql.catalog import Catalog, CatalogSnapshot, Table, catalog_key, catalog_value
from dsqlbench.sql.errors import SqlError
from dsqlbench.sql.executor import check_row
from dsqlbench.sql.parser import parse
from dsqlbench.sql.planner import SelectPlanner, plan_insert, plan_modify
from dsqlbench.sql.session import SqlSession

PARSE_CACHE_MAX = 4096
PLAN_CACHE_MAX = 4096


class SqlEngine:
    """Shared per cluster: catalog, statement and plan caches, row ids."""

    def __init__(self):
        self.catalog = Catalog()
        self._parsed: dict[str, tuple] = {}
        self._plans: dict[tuple, object] = {}
        self._next_rowid = 1
        self.parses = 0  # grammar runs (cache misses), for tests and metrics

    # -- statements ---------------------------------------------------------------------
    def parse(self, sql: str, n_params: int | None = None):
        """The IR of ``sql`` (cached per text); with ``n_params``, also checks that the
        statement's ``$n`` references are satisfied (08P01 as PostgreSQL's bind error)."""
        entry = self._parsed.get(sql)
        if entry is None:
            self.parses += 1
            try:
                stmt = parse(sql)
                entry = (stmt, max_param(stmt), None)
            except SqlError as error:
                entry = (None, 0, error)
            if len(self._parsed) >= PARSE_CACHE_MAX:
                self._parsed.clear()
            self._parsed[sql] = entry
        stmt, needed, error = entry
        if error is not None:
            raise SqlError(error.sqlstate, error.message, position=error.position, detail=error.detail)
        if n_params is not None and n_params < needed:
            raise SqlError("08P01", f"bind message supplies {n_params} parameters, but prepared "
                                    f"statement requires {needed}")
        return stmt

    def plan(self, sql: str, stmt, catalog: CatalogSnapshot):
        """The plan of a DML or SELECT statement under one catalog version (cached)."""
        cache_key = (sql, catalog)
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = build_plan(stmt, catalog)
            if len(self._plans) >= PLAN_CACHE_MAX:
                self._plans.clear()
            self._plans[cache_key] = plan
        return plan

    def session(self, limits: Limits = Limits(), name: str = "session") -> SqlSession:
        return SqlSession(self, limits, name)

    def next_rowid(self) -> int:
        rowid = self._next_rowid
        self._next_rowid += 1
        return rowid

    def table(self, name: str) -> Table:
        table = self.catalog.latest.table(name)
        if table is None:
            raise KeyError(f"no table {name!r}")
        return table

    # -- loading ------------------------------------------------------------------------
    def bootstrap(self, script: str) -> list[tuple[int, bytes]]:
        """Apply a schema script's DDL at catalog version 0 (before any transaction);
        returns the catalog rows ``(key, value)`` to put into storage."""
        rows: dict[int, bytes | None] = {}
        for text in split(script):
            stmt = self.parse(text)
            if stmt.kind != "ddl":
                raise SqlError("0A000", f"bootstrap runs DDL only, not: {text.strip()[:60]}")
            for name, table in self._ddl_changes(stmt):
                self.catalog.bootstrap((name, table))
                rows[catalog_key(name)] = catalog_value(table)
        return [(key, value) for key, value in rows.items() if value is not None]

    def _ddl_changes(self, stmt) -> list:
        snapshot = self.catalog.latest
        allocate = self.catalog.allocate_oid
        if isinstance(stmt, ir.CreateTable):
            return ddl.create_table(snapshot, stmt, allocate)
        if isinstance(stmt, ir.CreateIndex):
            return ddl.create_index(snapshot, stmt, allocate)[0]
        if isinstance(stmt, ir.DropTable):
            return ddl.drop_table(snapshot, stmt)
        return ddl.drop_index(snapshot, stmt)

    def load_rows(self, table_name: str, rows, coerce_values: bool = True) -> list[tuple[int, bytes]]:
        """Encoded ``(key, value)`` pairs for ``rows`` (tuples in column order) and their
        index entries, for a bulk load straight into storage. Values are coerced to the
        column types (``coerce_values=False`` skips that for rows already typed)."""
        table = self.table(table_name)
        encode = table.codec.encode
        hidden = table.hidden_pk
        pairs = []
        for values in rows:
            row = check_row(table, list(values)) if coerce_values else tuple(values)
            key = table.keyspace.key((self.next_rowid(),) if hidden else table.pk_values(row))
            pairs.append((key, encode(row)))
            for index in table.indexes:
                pairs.append(table.index_entry(index, row, key))
        return pairs


def build_plan(stmt, catalog: CatalogSnapshot):
    if isinstance(stmt, ir.Select):
        return SelectPlanner(catalog, stmt).plan()
    if isinstance(stmt, ir.Insert):
        return plan_insert(catalog, stmt)
    if isinstance(stmt, (ir.Update, ir.Delete)):
        return plan_modify(catalog, stmt)
    raise AssertionError(f"no plan for {type(stmt).__name__}")


def max_param(node) -> int:
    """The largest ``$n`` a statement references (0 when none)."""
    if isinstance(node, ir.Param):
        return node.number
    if isinstance(node, (tuple, list)):
        return max((max_param(item) for item in node), default=0)
    if hasattr(node, "__dataclass_fields__") and not isinstance(node, ir.Const):
        return max((max_param(getattr(node, f.name)) for f in fields(node)), default=0)
    return 0
