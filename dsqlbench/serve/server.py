"""``dsqlbench serve``'s server: listening, admission, shutdown, the results folder.

Role: owns the asyncio server, the ``ClusterBackend`` and the ``TimeDriver``; admits
connections (loopback trust or a password, DSQL's ``admin``/``postgres``, the
connection limit), keeps the set of live connections, and on stop (SIGINT/SIGTERM or
``stop()``) ends every session with 57P01, lets their open transactions roll back,
stops simulated time and writes the run folder through ``dsqlbench.results.folder``
(summary.json, transactions.parquet, timeseries.parquet), which is atomic.

Invariants: a connection is in ``connections`` from accept until its task ends, and
``tasks`` holds exactly the live connection tasks, so after ``stop()`` none remain;
one connection's failure (any exception) closes that connection only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets as _secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from dsqlbench.serve import auth
from dsqlbench.serve.backend import ClusterBackend
from dsqlbench.serve.connection import Connection
from dsqlbench.serve.messages import MESSAGE_BYTES_MAX
from dsqlbench.serve.timing import TimeDriver

DSQL_USER = "admin"
DSQL_DATABASE = "postgres"


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 5432
    time_mode: str = "fast"
    password: str | None = None
    connections_max: int = 10_000          # DSQL's default connection limit
    idle_timeout_s: float = 3600.0          # DSQL closes idle sessions after 1 h
    message_bytes_max: int = MESSAGE_BYTES_MAX
    compat_pgbench: bool = False
    out_dir: Path | None = None


class Server:
    def __init__(self, backend: ClusterBackend, options: ServeOptions):
        self.backend = backend
        self.options = options
        self.driver: TimeDriver | None = None
        self.connections: dict[int, Connection] = {}
        self.tasks: set[asyncio.Task] = set()
        self.accepted = 0
        self.refused = 0
        self.connection_bugs = 0  # connections that ended on an unexpected exception
        self._server: asyncio.AbstractServer | None = None
        self._driver_task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._wall_start_s = time.perf_counter()
        self._numbers = 0

    # -- life cycle --------------------------------------------------------------------
    async def start(self) -> int:
        """Listen; returns the bound port."""
        self.driver = TimeDriver(self.backend.env, self.options.time_mode)
        self._driver_task = asyncio.create_task(self.driver.run())
        self._server = await asyncio.start_server(self._accept, self.options.host, self.options.port)
        return self._server.sockets[0].getsockname()[1]

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM stop the server (plain handlers that wake the loop, so they
        hold whatever the event loop is doing)."""
        loop = asyncio.get_running_loop()

        def stop(_signum, _frame) -> None:
            loop.call_soon_threadsafe(self._stopping.set)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        """57P01 to every session, let them finish, stop time."""
        self._server.close()
        for connection in list(self.connections.values()):
            connection.shutdown()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10.0)
        await self._server.wait_closed()
        self.driver.stop()
        await self._driver_task

    # -- admission ---------------------------------------------------------------------
    async def _accept(self, reader, writer) -> None:
        self._numbers += 1
        number = self._numbers
        connection = Connection(self, reader, writer, number, _secrets.randbits(31))
        self.connections[number] = connection
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await connection.run()
        except Exception:  # a bug in one connection must not take the server down
            import traceback

            traceback.print_exc()
            self.connection_bugs += 1
            writer.close()
        finally:
            self.connections.pop(number, None)
            self.tasks.discard(task)

    def refusal(self, params: dict, connection: Connection) -> tuple | None:
        """Why a startup is refused (SQLSTATE, message), or None."""
        user = params.get("user")
        if not user:
            return "28000", "no PostgreSQL user name specified in startup packet"
        if user != DSQL_USER:
            return "28000", f'role "{user}" does not exist (Aurora DSQL connects as "{DSQL_USER}")'
        database = params.get("database", user)
        if database != DSQL_DATABASE:
            return "3D000", f'database "{database}" does not exist (Aurora DSQL has "{DSQL_DATABASE}")'
        live = sum(1 for c in self.connections.values() if c.served is not None)
        if live >= self.options.connections_max:
            self.refused += 1
            return "53300", "sorry, too many clients already"
        self.accepted += 1
        return None

    async def authenticate(self, connection: Connection, params: dict) -> bool:
        if self.options.password is None:
            return True
        return await auth.scram_exchange(connection, params["user"], self.options.password)

    def cancel(self, pid: int, secret: int) -> None:
        """CancelRequest: statements run to completion in simulated time (a statement
        is never interrupted mid-commit), so a matching cancel is acknowledged only by
        closing the cancel connection, as PostgreSQL does."""

    # -- results -----------------------------------------------------------------------
    def results(self) -> tuple[dict, dict]:
        """The summary and tables of this serve session, as a run writes them."""
        from dsqlbench import __version__, kernels
        from dsqlbench.results.folder import build_summary
        from dsqlbench.runner import cwd_revision

        backend = self.backend
        end_ns = backend.env.now
        simulated = backend.recorder.summarize(max(end_ns, 1), end_ns)
        simulated["serve"] = dict(backend.counts, accepted_connections=self.accepted,
                                  refused_connections=self.refused,
                                  time_mode=self.options.time_mode)
        wall_s = time.perf_counter() - self._wall_start_s
        host = {"wall_s": wall_s, "statements_per_wall_s": backend.counts["statements"] / wall_s,
                "events_stepped": self.driver.events_stepped}
        summary = build_summary(backend.cfg, None, backend.seed, kernels.implementations(),
                                simulated, host, __version__, cwd_revision())
        tables = {"transactions": backend.recorder.transactions_table(),
                  "timeseries": backend.recorder.timeseries_table(end_ns)}
        return summary, tables

    def write_results(self, out_dir: Path) -> None:
        from dsqlbench.results.folder import write_run

        summary, tables = self.results()
        write_run(out_dir, summary, tables)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
