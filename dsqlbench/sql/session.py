"""A SQL session: one client connection's statements, transactions and results.

Role: ``SqlSession.execute(sql, params)`` is a generator that yields protocol requests
(``Begin``, ``PointRead``, ``Scan``, ``Commit``, ``Rollback``) and returns a
``StatementResult``. The runtime (or the harness) sends each reply back in. A session
holds the open transaction: its snapshot time, the catalog as of that time, and the
spool of post-images that COMMIT sends.

Transactions, as in PostgreSQL on DSQL:
- outside BEGIN every statement is its own transaction (autocommit: Begin ... Commit);
- inside BEGIN a failed statement changes nothing (its writes, locks and DDL are undone)
  and puts the transaction in the aborted state: later statements fail with 25P02 until
  ROLLBACK (or COMMIT, which then rolls back, as PostgreSQL's does);
- reads see the snapshot at ``t_start`` merged with the transaction's own spooled writes
  (point reads, scans and aggregates alike);
- COMMIT sends the spool, the keys read FOR UPDATE (``lock_keys``) and, for DDL,
  ``schema_change``; a refused commit is SQLSTATE 40001 with DSQL's OC000/OC001 message;
- DSQL's limits: at most ``Limits.max_modified_rows`` rows and
  ``Limits.max_modified_bytes`` bytes modified per transaction (54000, DSQL's wording);
  one DDL statement per transaction, and never with INSERT/UPDATE/DELETE (0A000).

Attempt accounting for the runtime: every attempt starts with exactly one ``Begin`` and
ends with exactly one ``Commit`` or ``Rollback``; the result of the statement that ends
it says so (``attempt_ended``: committed / aborted / rolled_back, and ``abort_reason``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsqlbench.components.messages import AbortReason
from dsqlbench.components.qp import Limits
from dsqlbench.sql import ddl, ir
from dsqlbench.sql.catalog import catalog_key, catalog_value
from dsqlbench.sql.codec import key_bytes
from dsqlbench.sql.errors import (
    SqlError,
    conflict_error,
    ddl_dml_mix_error,
    failed_transaction_error,
    multiple_ddl_error,
    row_limit_error,
    size_limit_error,
)
from dsqlbench.sql.executor import ErrorBox, run_insert, run_modify, run_select
from dsqlbench.sql.explain import plan_lines
from dsqlbench.sql.expr import EvalContext
from dsqlbench.sql.protocol import Begin, Commit, PointRead, Rollback, Scan
from dsqlbench.sql.types import timestamp_from_us

COMMITTED, ABORTED, ROLLED_BACK = "committed", "aborted", "rolled_back"


@dataclass
class StatementResult:
    """What one ``execute`` returns. Storage counters are what crossed the network."""

    kind: str                                  # select insert update delete begin commit rollback ddl explain
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    rowcount: int = 0
    error: SqlError | None = None
    rows_examined: int = 0                     # rows storage looked at
    rows_returned: int = 0                     # rows that crossed to the QP
    bytes_returned: int = 0
    storage_requests: int = 0                  # PointRead + Scan requests
    in_transaction: bool = False               # inside BEGIN ... after this statement
    attempt_ended: str | None = None           # committed | aborted | rolled_back | None
    abort_reason: str = ""                     # AbortReason code, else the SQLSTATE
    t_start_ns: int = -1                       # of the attempt this statement ran in
    t_commit_ns: int = -1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def sqlstate(self) -> str:
        return self.error.sqlstate if self.error is not None else "00000"

    @property
    def tag(self) -> str:
        """PostgreSQL's command tag: ``SELECT 3``, ``INSERT 0 1``, ``UPDATE 2``, ``COMMIT``."""
        if self.error is not None:
            return "ERROR"
        if self.kind == "insert":
            return f"INSERT 0 {self.rowcount}"
        if self.kind in ("select", "update", "delete"):
            return f"{self.kind.upper()} {self.rowcount}"
        return self.kind.upper()


class _Undo:
    """What a statement changed in its transaction, to put back if it fails."""

    __slots__ = ("spool", "lock_keys", "mode", "ddl_changes", "catalog")

    def __init__(self, txn: "Transaction"):
        self.spool: dict = {}  # key -> (was in spool, old value, old size, was a row)
        self.lock_keys: list = []
        self.mode = txn.mode
        self.ddl_changes = list(txn.ddl_changes)
        self.catalog = txn.catalog


class Transaction:
    """One attempt's state in the QP; also the executor's ``Access``."""

    def __init__(self, session: "SqlSession", t_start_ns: int, wall_time_us: int, explicit: bool):
        self.session = session
        self.engine = session.engine
        self.limits = session.limits
        self.t_start_ns = t_start_ns
        self.now = timestamp_from_us(wall_time_us)
        self.explicit = explicit
        self.base_catalog = self.engine.catalog.as_of(t_start_ns)
        self.catalog = self.base_catalog
        self.failed: SqlError | None = None
        self.spool: dict[int, bytes | None] = {}
        self.sizes: dict[int, int] = {}
        self.size_bytes = 0
        self.row_keys: dict[int, None] = {}
        self.lock_keys: dict[int, None] = {}
        self.mode: str | None = None           # None | "dml" | "ddl"
        self.ddl_changes: list = []
        self.undo: _Undo | None = None
        self.errors = ErrorBox()
        self.ctx = EvalContext((), self.now)
        self.result: StatementResult | None = None

    # -- statement scope ---------------------------------------------------------------
    def begin_statement(self, params: tuple, result: StatementResult) -> None:
        self.undo = _Undo(self)
        self.ctx = EvalContext(tuple(params), self.now)
        self.result = result
        self.errors = ErrorBox()

    def undo_statement(self) -> None:
        undo = self.undo
        if undo is None:
            return
        for key, (present, old, old_size, was_row) in undo.spool.items():
            self.size_bytes -= self.sizes.get(key, 0)
            if present:
                self.spool[key] = old
                self.sizes[key] = old_size
                self.size_bytes += old_size
            else:
                self.spool.pop(key, None)
                self.sizes.pop(key, None)
            if not was_row:
                self.row_keys.pop(key, None)
        for key in undo.lock_keys:
            self.lock_keys.pop(key, None)
        self.mode, self.ddl_changes, self.catalog = undo.mode, undo.ddl_changes, undo.catalog
        self.undo = None

    # -- Access: reads -----------------------------------------------------------------
    def read(self, key: int):
        if key in self.spool:
            return self.spool[key]
        reply = yield PointRead(key)
        result = self.result
        result.storage_requests += 1
        result.rows_examined += 1
        if reply.value is not None:
            result.rows_returned += 1
            result.bytes_returned += key_bytes(key) + len(reply.value)
        return reply.value

    def scan(self, low: int, high: int, row_filter, projection, limit, descending: bool,
             aggregate=None):
        """Rows ``[(key, value or projection)]`` in range, own writes merged; with
        ``aggregate``: ``([], [partial, ...])`` from storage and from own writes."""
        if high == low + 1 and low in self.spool:
            return (yield from self._scan_own_write(low, row_filter, projection, aggregate))
        local = sorted((k, v) for k, v in self.spool.items() if low <= k < high) if self.spool else []
        storage_filter = row_filter
        if local:
            excluded = frozenset(k for k, _ in local)
            if row_filter is None:
                storage_filter = lambda k, v: k not in excluded  # noqa: E731
            else:
                storage_filter = lambda k, v: k not in excluded and row_filter(k, v)  # noqa: E731
        reply = yield Scan(low, high, limit, storage_filter, projection, aggregate, descending)
        result = self.result
        result.storage_requests += 1
        result.rows_examined += reply.rows_examined
        result.rows_returned += reply.rows_returned
        result.bytes_returned += reply.bytes_returned
        live = [(k, v) for k, v in local if v is not None and (row_filter is None or row_filter(k, v))]
        if projection is not None:
            live = [(k, projection(k, v)) for k, v in live]
        if aggregate is not None:
            partials = [reply.aggregate] if reply.aggregate is not None else []
            if live:
                partials.append(aggregate([v for _, v in live]))
            return [], partials
        rows = reply.rows
        if live:
            rows = sorted(rows + live, key=lambda item: item[0], reverse=descending)
            if limit is not None:
                rows = rows[:limit]
        return rows, []

    def _scan_own_write(self, key: int, row_filter, projection, aggregate):
        """A one-key scan of a key this attempt wrote: served from the spool, no request."""
        value = self.spool[key]
        rows = []
        if value is not None and (row_filter is None or row_filter(key, value)):
            rows = [(key, projection(key, value) if projection is not None else value)]
        if aggregate is not None:
            return [], [aggregate([v for _, v in rows])]
        return rows, []
        yield  # a generator, like every Access method

    # -- Access: writes ----------------------------------------------------------------
    def write(self, key: int, value: bytes | None, row: bool) -> None:
        undo = self.undo
        if key not in undo.spool:
            undo.spool[key] = (key in self.spool, self.spool.get(key), self.sizes.get(key, 0),
                               key in self.row_keys)
        size = key_bytes(key) + (len(value) if value is not None else 0)
        self.size_bytes += size - self.sizes.get(key, 0)
        self.sizes[key] = size
        self.spool[key] = value
        if row:
            self.row_keys[key] = None
        if len(self.row_keys) > self.limits.max_modified_rows:
            raise row_limit_error()
        if self.size_bytes > self.limits.max_modified_bytes:
            raise size_limit_error(self.size_bytes)

    def lock(self, key: int) -> None:
        if key not in self.lock_keys:
            self.lock_keys[key] = None
            self.undo.lock_keys.append(key)

    def next_rowid(self) -> int:
        return self.engine.next_rowid()

    @property
    def read_only(self) -> bool:
        return not self.spool and not self.lock_keys and not self.ddl_changes


class SqlSession:
    """One client connection. Drive ``execute`` with the runtime's replies."""

    def __init__(self, engine, limits: Limits = Limits(), name: str = "session"):
        self.engine = engine
        self.limits = limits
        self.name = name
        self.txn: Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        return self.txn is not None and self.txn.explicit

    def execute(self, sql: str, params: tuple = ()):
        """Run one statement. Generator: yields Requests, returns a StatementResult."""
        result = StatementResult(kind="unknown")
        try:
            stmt = self.engine.parse(sql, len(params))
        except SqlError as error:
            return (yield from self._fail(result, error))
        result.kind = statement_kind(stmt)
        if isinstance(stmt, ir.Transaction):
            return (yield from self._transaction(stmt, result))
        txn = self.txn
        if txn is not None and txn.failed is not None:
            result.error = failed_transaction_error()
            result.in_transaction = True
            result.t_start_ns = txn.t_start_ns
            return result
        if txn is None:
            yield from self._begin(result, explicit=False)
            txn = self.txn
        result.t_start_ns = txn.t_start_ns
        txn.begin_statement(params, result)
        try:
            yield from self._run(sql, stmt, txn, result)
        except SqlError as error:
            return (yield from self._fail(result, error))
        txn.undo = None
        if not txn.explicit:
            yield from self._commit(result)
        result.in_transaction = self.in_transaction
        return result

    def close(self):
        """Generator: end the connection; an open transaction is rolled back (a Rollback
        request, so the runtime closes the attempt). Returns the result, or None."""
        if self.txn is None:
            return None
        result = StatementResult(kind="rollback", t_start_ns=self.txn.t_start_ns)
        failed = self.txn.failed
        yield from self._rollback(result, ABORTED if failed else ROLLED_BACK, _reason(failed))
        return result

    # -- transaction control ------------------------------------------------------------
    def _transaction(self, stmt: ir.Transaction, result: StatementResult):
        txn = self.txn
        if stmt.action == "begin":
            if txn is None:  # else PostgreSQL warns "already a transaction in progress"
                yield from self._begin(result, explicit=True)
            elif txn.failed is not None:
                result.error = failed_transaction_error()
        elif txn is None:
            pass  # PostgreSQL warns "there is no transaction in progress"
        elif stmt.action == "commit":
            result.t_start_ns = txn.t_start_ns
            if txn.failed is not None:
                result.kind = "rollback"
                yield from self._rollback(result, ABORTED, _reason(txn.failed))
            else:
                yield from self._commit(result)
        else:
            result.t_start_ns = txn.t_start_ns
            failed = txn.failed
            yield from self._rollback(result, ABORTED if failed else ROLLED_BACK,
                                      _reason(failed) if failed else "")
        result.in_transaction = self.in_transaction
        return result

    def _begin(self, result: StatementResult, explicit: bool):
        reply = yield Begin()
        self.txn = Transaction(self, reply.t_start_ns, reply.wall_time_us, explicit)
        result.t_start_ns = reply.t_start_ns

    def _commit(self, result: StatementResult):
        txn = self.txn
        if not txn.read_only and self.engine.catalog.as_of(txn.t_start_ns) is not txn.base_catalog:
            # A schema change committed at or before t_start arrived after this attempt
            # began: its catalog view is stale, so it must not commit (as OC001 would).
            yield from self._rollback(result, ABORTED, AbortReason.SCHEMA_CHANGED)
            result.error = conflict_error(AbortReason.SCHEMA_CHANGED)
            return
        lock_keys = tuple(k for k in txn.lock_keys if k not in txn.spool)
        reply = yield Commit(writes=dict(txn.spool), lock_keys=lock_keys,
                             schema_change=bool(txn.ddl_changes))
        self.txn = None
        if reply.committed:
            if txn.ddl_changes:
                self.engine.catalog.install(reply.t_commit_ns, txn.ddl_changes)
            result.attempt_ended = COMMITTED
            result.t_commit_ns = reply.t_commit_ns
        else:
            result.error = conflict_error(reply.reason)
            result.attempt_ended = ABORTED
            result.abort_reason = result.error.code

    def _rollback(self, result: StatementResult, outcome: str, reason: str):
        yield Rollback()
        self.txn = None
        result.attempt_ended = outcome
        result.abort_reason = reason

    def _fail(self, result: StatementResult, error: SqlError):
        """A failed statement leaves no trace; the transaction is aborted or marked."""
        result.error = error
        txn = self.txn
        if txn is None:
            return result
        result.t_start_ns = txn.t_start_ns
        txn.undo_statement()
        if txn.explicit:
            if txn.failed is None:
                txn.failed = error
            result.in_transaction = True
            return result
        yield from self._rollback(result, ABORTED, _reason(error))
        return result

    # -- statements ---------------------------------------------------------------------
    def _run(self, sql: str, stmt, txn: Transaction, result: StatementResult):
        if isinstance(stmt, ir.Explain):
            lines = yield from self._explain(sql, stmt, txn, result)
            result.columns, result.rows = ["QUERY PLAN"], [(line,) for line in lines]
            return
        if stmt.kind == "ddl":
            yield from self._ddl(stmt, txn)
            return
        if stmt.kind != "select":
            if txn.mode == "ddl":
                raise ddl_dml_mix_error()
            txn.mode = "dml"
        plan = self.engine.plan(sql, stmt, txn.catalog)
        yield from execute_plan(stmt, plan, txn, result)

    def _explain(self, sql: str, stmt: ir.Explain, txn: Transaction, result: StatementResult):
        """Generator: the plan's lines; ANALYZE runs the inner statement first and adds
        what actually crossed the network."""
        inner = stmt.statement
        inner_sql = f"{sql}\x00explain"  # its own plan-cache entry, keyed by the EXPLAIN text
        plan = self.engine.plan(inner_sql, inner, txn.catalog)
        lines = plan_lines(plan)
        if not stmt.analyze:
            return lines
        if inner.kind != "select":
            if txn.mode == "ddl":
                raise ddl_dml_mix_error()
            txn.mode = "dml"
        inner_result = StatementResult(kind=inner.kind)
        txn.result = inner_result
        yield from execute_plan(inner, plan, txn, inner_result)
        txn.result = result
        for name in ("rows_examined", "rows_returned", "bytes_returned", "storage_requests"):
            setattr(result, name, getattr(result, name) + getattr(inner_result, name))
        lines.append(f"Actual: rows={inner_result.rowcount} storage_requests={inner_result.storage_requests} "
                     f"rows_examined={inner_result.rows_examined} rows_returned={inner_result.rows_returned} "
                     f"bytes_returned={inner_result.bytes_returned}")
        return lines

    def _ddl(self, stmt, txn: Transaction):
        if txn.mode == "dml":
            raise ddl_dml_mix_error()
        if txn.ddl_changes:
            raise multiple_ddl_error()
        allocate = self.engine.catalog.allocate_oid
        index = table = None
        if isinstance(stmt, ir.CreateTable):
            changes = ddl.create_table(txn.catalog, stmt, allocate)
        elif isinstance(stmt, ir.CreateIndex):
            changes, table, index = ddl.create_index(txn.catalog, stmt, allocate)
        elif isinstance(stmt, ir.DropTable):
            changes = ddl.drop_table(txn.catalog, stmt)
        else:
            changes = ddl.drop_index(txn.catalog, stmt)
        if not changes:
            return  # IF [NOT] EXISTS found nothing to do
        txn.mode = "ddl"
        for name, new_table in changes:
            txn.write(catalog_key(name), catalog_value(new_table), row=False)
        txn.ddl_changes = list(changes)
        txn.catalog = ddl.apply_changes(txn.catalog, changes)
        if index is not None:
            yield from backfill_index(table, index, txn)


def execute_plan(stmt, plan, txn: Transaction, result: StatementResult):
    if stmt.kind == "select":
        rows = yield from run_select(plan, txn)
        result.columns, result.rows, result.rowcount = list(plan.names), rows, len(rows)
    elif stmt.kind == "insert":
        result.rowcount, returned = yield from run_insert(plan, txn)
        _returning(result, plan, returned)
    else:
        result.rowcount, returned = yield from run_modify(plan, txn)
        _returning(result, plan, returned)


def _returning(result: StatementResult, plan, returned: list) -> None:
    if plan.names:
        result.columns, result.rows = list(plan.names), returned


def backfill_index(table, index, txn: Transaction):
    """Write an entry for every row visible at ``t_start`` into the DDL's commit. The
    rows read join the conflict check (``lock_keys``), so a concurrent change to one of
    them conflicts with the index build instead of escaping it. (A row *inserted* by a
    transaction that commits while the DDL is in flight can still escape: DSQL builds
    indexes on live tables asynchronously; create indexes before loading.)"""
    low, high = table.keyspace.full_range()
    rows, _ = yield from txn.scan(low, high, None, None, None, False)
    seen: dict = {}
    for key, value in rows:
        row = table.codec.decode(value)
        entry_key, entry_value = table.index_entry(index, row, key)
        if entry_key in seen:
            values = ", ".join(str(row[i]) for i in index.columns)
            names = ", ".join(table.columns[i].name for i in index.columns)
            raise SqlError("23505", f'could not create unique index "{index.name}"',
                           detail=f"Key ({names})=({values}) is duplicated.")
        seen[entry_key] = None
        txn.write(entry_key, entry_value, row=False)
        txn.lock(key)


def statement_kind(stmt) -> str:
    if isinstance(stmt, ir.Transaction):
        return stmt.action
    return stmt.kind


def _reason(error: SqlError | None) -> str:
    if error is None:
        return ""
    return error.code or error.sqlstate
