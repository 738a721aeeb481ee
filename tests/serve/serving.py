"""A ``dsqlbench serve`` server in a background thread, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from dsqlbench import config as config_mod
from dsqlbench.serve.backend import ClusterBackend
from dsqlbench.serve.server import Server, ServeOptions


class ServerThread:
    """Starts a server on a free loopback port; ``stop()`` shuts it down like SIGTERM."""

    def __init__(self, seed: int = 1, inject_conflicts_rate: float = 0.0, workload: str = "tpcb",
                 overrides=(), **options):
        self.cfg = config_mod.load_config(workload, seed=seed, overrides=list(overrides))
        self.inject_rate = inject_conflicts_rate
        self.options = ServeOptions(port=0, **options)
        self.loop = asyncio.new_event_loop()
        self.server: Server | None = None
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._error: BaseException | None = None

    def start(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("server did not start")
        if self._error:
            raise self._error
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as error:  # surfaced by start()/stop()
            self._error = error
            self._ready.set()

    async def _serve(self) -> None:
        backend = ClusterBackend(self.cfg, self.inject_rate)
        self.server = Server(backend, self.options)
        self.port = await self.server.start()
        self._ready.set()
        await self.server.wait_stopped()
        await self.server.stop()

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=admin dbname=postgres"

    def call(self, fn):
        """Run ``fn()`` on the server's loop and return its result (for inspection)."""
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self, out_dir: Path | None = None) -> None:
        self.loop.call_soon_threadsafe(self.server.request_stop)
        self._thread.join(30)
        assert not self._thread.is_alive(), "server did not stop"
        if self._error:
            raise self._error
        if out_dir is not None:
            self.server.write_results(out_dir)
