"""One client connection of ``dsqlbench serve``: startup, then the message loop.

Role: reads frontend messages (``serve.messages``), answers session commands and
catalog look-ups from ``serve.shims``, runs everything else as statements of the
connection's ``ServedSession`` on the simulated cluster (``serve.backend``, through the
time driver), and writes the answers: RowDescription with built-in type OIDs
(``serve.describe``), DataRow in the format asked for, CommandComplete tags,
ErrorResponse with SQLSTATE, DSQL's text and position, ReadyForQuery with I/T/E.

Protocol rules kept here:
- simple query: statements run in order; the first error ends the query;
- extended query: after an error every message up to Sync is discarded; a portal runs
  when it is first described or executed (so its RowDescription has settled types);
- COPY FROM STDIN: CopyData until CopyDone (or CopyFail); Flush/Sync are ignored then;
- malformed, oversized or out-of-place messages: one FATAL 08P01 and the connection
  closes; the server carries on.

Invariant: the SQL session is driven by one statement at a time; when the connection
ends (for any reason) its open transaction is rolled back in the cluster once the
statement in flight, if any, has finished.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from pglast.parser import ParseError, split

from dsqlbench.serve import compat, copyin, describe, messages as M, shims
from dsqlbench.serve.messages import ProtocolViolation
from dsqlbench.serve.timing import SimulationCrashed
from dsqlbench.sql import ir
from dsqlbench.sql.errors import SqlError

ADMIN_SHUTDOWN = ("57P01", "terminating connection due to administrator command")
IDLE_TIMEOUT = ("57P05", "terminating connection due to idle-session timeout")


class ConnectionClosed(Exception):
    """The connection is over (terminated, timed out or shut down)."""


@dataclass
class Outcome:
    """What one statement produced, ready to be written."""

    tag: str = ""
    fields: list | None = None
    rows: list = field(default_factory=list)
    error: SqlError | None = None
    reports: list = field(default_factory=list)


@dataclass
class Prepared:
    sql: str
    declared_oids: tuple
    param_oids: list | None = None
    fields: list | None = None          # as described (Describe S), if it was


@dataclass
class Portal:
    prepared: Prepared
    params: tuple
    result_formats: tuple
    outcome: Outcome | None = None
    sent: int = 0
    fields: list | None = None


class Connection:
    def __init__(self, server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 number: int, secret: int):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.number = number
        self.secret = secret
        self.out: list[bytes] = []
        self.served = None
        self.settings: shims.Settings | None = None
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.skipping = False           # extended query: discard until Sync after an error
        self.in_flight: asyncio.Future | None = None
        self.closing: tuple | None = None

    # -- I/O ---------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.out.append(data)

    async def flush(self) -> None:
        if self.out:
            self.writer.write(b"".join(self.out))
            self.out.clear()
            await self.writer.drain()

    async def _read(self, n: int) -> bytes:
        timeout_s = self.server.options.idle_timeout_s
        try:
            return await asyncio.wait_for(self.reader.readexactly(n), timeout_s)
        except asyncio.TimeoutError:
            self.closing = IDLE_TIMEOUT
            raise ConnectionClosed() from None

    async def read_message(self) -> tuple[bytes, bytes]:
        header = await self._read(5)
        kind, length = header[:1], int.from_bytes(header[1:], "big", signed=True)
        if length < 4 or length - 4 > self.server.options.message_bytes_max:
            raise ProtocolViolation(f"invalid message length {length}")
        return kind, await self._read(length - 4) if length > 4 else b""

    # -- life cycle --------------------------------------------------------------------
    async def run(self) -> None:
        try:
            if await self._startup():
                await self._loop()
        except ProtocolViolation as error:
            self.send(M.error_msg("08P01", str(error), severity="FATAL"))
        except ConnectionClosed:
            if self.closing:
                self.send(M.error_msg(*self.closing, severity="FATAL"))
        except (asyncio.IncompleteReadError, ConnectionError):
            if self.closing:
                self.send(M.error_msg(*self.closing, severity="FATAL"))
        finally:
            await self._finish()

    async def _finish(self) -> None:
        try:
            await asyncio.wait_for(self.flush(), 1.0)
        except (ConnectionError, asyncio.TimeoutError, RuntimeError):
            pass
        if self.served is not None:
            try:
                if self.in_flight is not None:
                    await asyncio.shield(self.in_flight)  # the session must be idle to close
                await self.server.driver.submit(self.server.backend.close(self.served))
            except SimulationCrashed:
                pass
        self.writer.close()

    def shutdown(self, reason=ADMIN_SHUTDOWN) -> None:
        """Server shutdown: FATAL 57P01 goes out and the connection ends."""
        self.closing = reason
        self.reader.feed_eof()

    async def _startup(self) -> bool:
        while True:
            length = int.from_bytes(await self._read(4), "big", signed=True)
            if length < 8 or length > M.STARTUP_BYTES_MAX:
                raise ProtocolViolation(f"invalid length of startup packet {length}")
            startup = M.decode_startup(await self._read(length - 4))
            if startup.kind in ("ssl", "gssenc"):
                self.writer.write(b"N")
                await self.writer.drain()
                continue
            if startup.kind == "cancel":
                self.server.cancel(startup.pid, startup.secret)
                return False
            return await self._accept(startup.params)

    async def _accept(self, params: dict) -> bool:
        refusal = self.server.refusal(params, self)
        if refusal is not None:
            self.send(M.error_msg(*refusal, severity="FATAL"))
            return False
        if not await self.server.authenticate(self, params):
            return False
        self.settings = shims.Settings(params)
        self.served = self.server.backend.new_session()
        self.send(M.auth_ok_msg())
        for name in shims.REPORTED:
            self.send(M.parameter_status_msg(name, self.settings.values[name]))
        self.send(M.backend_key_msg(self.number, self.secret))
        self.send(M.ready_msg("I"))
        await self.flush()
        return True

    async def _loop(self) -> None:
        while True:
            kind, body = await self.read_message()
            message = M.decode_message(kind, body)
            if isinstance(message, M.Simple) and message.kind == "terminate":
                return
            if self.skipping and not (isinstance(message, M.Simple) and message.kind == "sync"):
                continue
            await self._dispatch(message)

    async def _dispatch(self, message) -> None:
        if isinstance(message, M.Query):
            await self._simple_query(message.sql)
        elif isinstance(message, M.Simple):
            if message.kind == "sync":
                self.skipping = False
                self.send(M.ready_msg(self.served.transaction_status))
                await self.flush()
            elif message.kind == "flush":
                await self.flush()
            else:
                raise ProtocolViolation("unexpected CopyDone outside COPY")
        elif isinstance(message, (M.CopyData, M.CopyFail)):
            raise ProtocolViolation(f"unexpected {type(message).__name__} outside COPY")
        elif isinstance(message, M.Password):
            raise ProtocolViolation("unexpected password message")
        else:
            try:
                await self._extended(message)
            except SqlError as error:
                self._send_error(error)
                self.skipping = True

    # -- statements --------------------------------------------------------------------
    def _catalog(self):
        txn = self.served.sql.txn
        return txn.catalog if txn is not None else self.server.backend.engine.catalog.latest

    async def _execute(self, sql: str, params: tuple = ()) -> Outcome:
        """One statement: a shim's answer, a compatibility rewrite, or the engine's."""
        shim = shims.answer(sql, self.settings, self._catalog(), self.number)
        if shim is not None:
            return Outcome(shim.tag, shim.fields, shim.rows, reports=shim.reports)
        if self.server.options.compat_pgbench:
            rewritten = compat.rewrite(sql, self._catalog())
            if rewritten is not None:
                return await self._compat(rewritten, params)
        return await self._engine(sql, params)

    async def _compat(self, rewritten, params: tuple) -> Outcome:
        kind, payload = rewritten
        if kind == "noop":
            return Outcome(payload)
        if kind == "error":
            return Outcome(error=SqlError("0A000", payload))
        outcome = Outcome("TRUNCATE TABLE" if payload[0].startswith("DELETE") else "")
        for text in payload:
            step = await self._engine(text, params)
            if step.error is not None:
                return step
            outcome = step if not outcome.tag else outcome
        return outcome

    async def _engine(self, sql: str, params: tuple) -> Outcome:
        backend = self.server.backend
        self.in_flight = self.server.driver.submit(backend.statement(self.served, sql, params))
        try:
            result, _latency_ns = await self.in_flight
        except SimulationCrashed as crash:
            return Outcome(error=SqlError("XX000", f"internal error: the simulation crashed "
                                                   f"(SEED={backend.seed}): {crash}"))
        finally:
            self.in_flight = None
        if result.error is not None:
            return Outcome(error=result.error)
        stmt = backend.engine.parse(sql)
        fields = describe.statement_fields(stmt, self._catalog(), result.columns or None)
        if fields is None and result.columns:
            fields = [M.Field(str(n), 0) for n in result.columns]
        if fields is not None:
            fields = describe.finish_fields(fields, result.rows)
        return Outcome(_tag(stmt, result), fields, result.rows)

    def _send_error(self, error: SqlError) -> None:
        self.send(M.error_msg(error.sqlstate, error.message, detail=error.detail,
                              position=error.position))

    def _send_rows(self, fields: list, rows, formats: tuple) -> None:
        if not rows:
            return
        encode = describe_encoders(fields, formats)
        data_row = M.data_row_msg
        for row in rows:
            self.send(data_row([enc(v) for enc, v in zip(encode, row)]))

    def _send_outcome(self, outcome: Outcome, formats: tuple = (), describe_rows: bool = True) -> None:
        for name, value in outcome.reports:
            self.send(M.parameter_status_msg(name, value))
        if outcome.error is not None:
            self._send_error(outcome.error)
            return
        if outcome.fields is not None:
            if describe_rows:
                self.send(M.row_description_msg(outcome.fields, _formats(formats, len(outcome.fields))))
            self._send_rows(outcome.fields, outcome.rows, _formats(formats, len(outcome.fields)))
        self.send(M.command_complete_msg(outcome.tag))

    # -- simple query ------------------------------------------------------------------
    async def _simple_query(self, sql: str) -> None:
        try:
            texts = _split(sql)
        except SqlError as error:
            texts, parse_error = None, error
        if texts is None:
            self._send_error(parse_error)
        elif not texts:
            self.send(M.EMPTY_QUERY)
        for text in texts or ():
            copy = self._copy_spec(text)
            outcome = await (self._copy_in(copy) if copy else self._execute(text))
            self._send_outcome(outcome)
            if outcome.error is not None:
                break
            await self.flush() if len(self.out) > 256 else None
        self.send(M.ready_msg(self.served.transaction_status))
        await self.flush()

    def _copy_spec(self, text: str):
        try:
            return copyin.match_copy(text)
        except SqlError:
            return None  # the engine rejects it with its own error

    # -- COPY FROM STDIN ---------------------------------------------------------------
    async def _copy_in(self, spec) -> Outcome:
        table = self._catalog().table(spec.table)
        if table is None:
            return Outcome(error=SqlError("42P01", f'relation "{spec.table}" does not exist'))
        columns = list(spec.columns) if spec.columns else [c.name for c in table.columns]
        self.send(M.copy_in_response_msg(len(columns)))
        await self.flush()
        chunks = []
        while True:
            kind, body = await self.read_message()
            message = M.decode_message(kind, body)
            if isinstance(message, M.CopyData):
                chunks.append(message.data)
            elif isinstance(message, M.CopyFail):
                return Outcome(error=SqlError("57014", f"COPY from stdin failed: {message.message}"))
            elif isinstance(message, M.Simple) and message.kind == "copy_done":
                break
            elif not (isinstance(message, M.Simple) and message.kind in ("sync", "flush")):
                raise ProtocolViolation(f"unexpected message type 0x{kind[0]:02x} during COPY from stdin")
        try:
            rows = copyin.decode_rows(b"".join(chunks), spec, len(columns))
        except SqlError as error:
            return Outcome(error=error)
        return await self._load(spec, columns, rows)

    async def _load(self, spec, columns: list, rows: list) -> Outcome:
        """Insert the rows: in the client's transaction, or in one of their own when there
        is none; with ``--compat pgbench`` in transactions that fit DSQL's limits."""
        statements = copyin.insert_statements(spec, columns, rows)
        if self.server.options.compat_pgbench:
            return await self._load_chunked(statements)
        own = self.served.sql.txn is None
        if own:
            await self._engine("BEGIN", ())
        for sql, params, _n in statements:
            outcome = await self._engine(sql, params)
            if outcome.error is not None:
                if own:
                    await self._engine("ROLLBACK", ())
                return outcome
        if own:
            outcome = await self._engine("COMMIT", ())
            if outcome.error is not None:
                return outcome
        return Outcome(f"COPY {len(rows)}")

    async def _load_chunked(self, statements) -> Outcome:
        session = self.server.backend.new_session()
        try:
            return await self._load_chunks(session, statements)
        finally:
            await self.server.driver.submit(self.server.backend.close(session))

    async def _load_chunks(self, session, statements) -> Outcome:
        chunk_rows = self.server.backend.limits.max_modified_rows
        loaded = batch_rows = 0
        for sql, params, n in statements:
            if batch_rows + n > chunk_rows:
                if (error := await self._commit_on(session)) is not None:
                    return Outcome(error=error)
                batch_rows = 0
            if batch_rows == 0:
                await self._engine_on(session, "BEGIN", ())
            result = await self._engine_on(session, sql, params)
            if result.error is not None:
                await self._engine_on(session, "ROLLBACK", ())
                return Outcome(error=result.error)
            batch_rows += n
            loaded += n
        if batch_rows and (error := await self._commit_on(session)) is not None:
            return Outcome(error=error)
        return Outcome(f"COPY {loaded}")

    async def _commit_on(self, session):
        return (await self._engine_on(session, "COMMIT", ())).error

    async def _engine_on(self, served, sql: str, params: tuple):
        result, _ = await self.server.driver.submit(self.server.backend.statement(served, sql, params))
        return result

    # -- extended query ----------------------------------------------------------------
    async def _extended(self, message) -> None:
        if isinstance(message, M.Parse):
            self._parse(message)
        elif isinstance(message, M.Bind):
            self._bind(message)
        elif isinstance(message, M.Describe):
            await self._describe(message)
        elif isinstance(message, M.Execute):
            await self._execute_portal(message)
        elif isinstance(message, M.Close):
            (self.statements if message.target == "S" else self.portals).pop(message.name, None)
            self.send(M.CLOSE_COMPLETE)

    def _parse(self, message: M.Parse) -> None:
        if message.name and message.name in self.statements:
            raise SqlError("42P05", f'prepared statement "{message.name}" already exists')
        texts = _split(message.sql)
        if len(texts) > 1:
            raise SqlError("42601", "cannot insert multiple commands into a prepared statement")
        self.statements[message.name] = Prepared(texts[0] if texts else "", message.param_oids)
        self.send(M.PARSE_COMPLETE)

    def _prepared(self, name: str) -> Prepared:
        prepared = self.statements.get(name)
        if prepared is None:
            raise SqlError("26000", f'prepared statement "{name}" does not exist')
        return prepared

    def _param_oids(self, prepared: Prepared, count: int | None = None) -> list:
        if prepared.param_oids is None:
            stmt = self._ir(prepared.sql)
            needed = max(count or 0, len(prepared.declared_oids),
                         _max_param(stmt) if stmt is not None else 0)
            prepared.param_oids = describe.param_oids(stmt, self._catalog(), needed,
                                                      prepared.declared_oids) \
                if stmt is not None else [o or 25 for o in prepared.declared_oids] + [25] * (
                    needed - len(prepared.declared_oids))
        return prepared.param_oids

    def _ir(self, sql: str):
        if not sql or shims.answer(sql, shims.Settings({}), self._catalog(), 0) is not None:
            return None
        try:
            return self.server.backend.engine.parse(sql)
        except SqlError:
            return None

    def _bind(self, message: M.Bind) -> None:
        from dsqlbench.serve.pgtypes import decode_param

        prepared = self._prepared(message.statement)
        oids = self._param_oids(prepared, len(message.params))
        if len(message.params) != len(oids):
            raise SqlError("08P01", f"bind message supplies {len(message.params)} parameters, but "
                                    f"prepared statement requires {len(oids)}")
        formats = _formats(message.param_formats, len(message.params))
        params = tuple(decode_param(data, oid, fmt)
                       for data, oid, fmt in zip(message.params, oids, formats))
        self.portals[message.portal] = Portal(prepared, params, message.result_formats,
                                              fields=prepared.fields)
        self.send(M.BIND_COMPLETE)

    async def _describe(self, message: M.Describe) -> None:
        if message.target == "S":
            prepared = self._prepared(message.name)
            self.send(M.parameter_description_msg(self._param_oids(prepared)))
            fields = self._static_fields(prepared)
            prepared.fields = fields
            self.send(M.row_description_msg(fields, [0] * len(fields)) if fields is not None else M.NO_DATA)
            return
        portal = self.portals.get(message.name)
        if portal is None:
            raise SqlError("34000", f'portal "{message.name}" does not exist')
        outcome = await self._run_portal(portal)
        if outcome.error is not None:
            raise outcome.error
        fields = portal.fields
        self.send(M.row_description_msg(fields, _formats(portal.result_formats, len(fields)))
                  if fields is not None else M.NO_DATA)

    def _static_fields(self, prepared: Prepared):
        """Result columns without running the statement (Describe of a statement)."""
        shim = shims.answer(prepared.sql, shims.Settings({}), self._catalog(), self.number) \
            if prepared.sql else None
        if shim is not None:
            return shim.fields or None
        stmt = self._ir(prepared.sql)
        fields = describe.statement_fields(stmt, self._catalog()) if stmt is not None else None
        return describe.finish_fields(fields, []) if fields is not None else None

    async def _run_portal(self, portal: Portal) -> Outcome:
        if portal.outcome is None:
            sql = portal.prepared.sql
            if not sql:
                portal.outcome = Outcome("")
            else:
                portal.outcome = await self._execute(sql, portal.params)
            if portal.fields is None:
                portal.fields = portal.outcome.fields
        return portal.outcome

    async def _execute_portal(self, message: M.Execute) -> None:
        portal = self.portals.get(message.portal)
        if portal is None:
            raise SqlError("34000", f'portal "{message.portal}" does not exist')
        outcome = await self._run_portal(portal)
        if not portal.prepared.sql:
            self.send(M.EMPTY_QUERY)
            return
        for name, value in outcome.reports:
            self.send(M.parameter_status_msg(name, value))
        outcome.reports = []
        if outcome.error is not None:
            raise outcome.error
        fields = portal.fields
        if fields is not None:
            end = len(outcome.rows) if message.rows_max <= 0 else min(len(outcome.rows),
                                                                     portal.sent + message.rows_max)
            self._send_rows(fields, outcome.rows[portal.sent:end],
                            _formats(portal.result_formats, len(fields)))
            portal.sent = end
            if end < len(outcome.rows):
                self.send(M.PORTAL_SUSPENDED)
                return
        self.send(M.command_complete_msg(outcome.tag))


# --- helpers ------------------------------------------------------------------------------

def describe_encoders(fields: list, formats: tuple) -> list:
    from dsqlbench.serve.pgtypes import encode

    return [(lambda v, oid=f.type_oid, fmt=fmt: encode(v, oid, fmt)) for f, fmt in zip(fields, formats)]


def _formats(formats: tuple, n: int) -> tuple:
    if not formats:
        return (0,) * n
    if len(formats) == 1:
        return tuple(formats) * n
    return tuple(formats)


def _split(sql: str) -> list[str]:
    """The statements of a query string (comments and empty statements dropped)."""
    if not sql.strip():
        return []
    try:
        return [text for text in split(sql) if text.strip()]
    except ParseError:
        head = sql.strip()[:8].lower()
        if head.startswith(("set", "show", "reset", "copy", "vacuum", "truncate")):
            return [s for s in sql.split(";") if s.strip()]
        return [sql]  # the engine reports the syntax error with its position


def _max_param(stmt) -> int:
    from dsqlbench.sql.engine import max_param

    return max_param(stmt)


_DDL_TAGS = {ir.CreateTable: "CREATE TABLE", ir.CreateIndex: "CREATE INDEX",
             ir.DropTable: "DROP TABLE", ir.DropIndex: "DROP INDEX"}


def _tag(stmt, result) -> str:
    if type(stmt) in _DDL_TAGS:
        return _DDL_TAGS[type(stmt)]
    if isinstance(stmt, ir.Explain):
        return "EXPLAIN"
    if isinstance(stmt, ir.Transaction):
        return "ROLLBACK" if result.kind == "rollback" else stmt.action.upper()
    return result.tag
