"""Where sweep runs execute: one interface, ``concurrent.futures.Executor``, three backends.

Place in the pipeline: ``dsqlbench sweep`` opens a ``Pool`` with ``open_pool`` and the
sweep driver (``dsqlbench.sweep.execute``) submits ``run_point(payload)`` calls to
``pool.executor``; nothing else about the backend leaks into the sweep.

| kind    | executor                                   | workers                          |
|---------|--------------------------------------------|----------------------------------|
| inline  | ``InlineExecutor`` (``--jobs 1``)          | this process, one run at a time  |
| local   | ``LocalProcessExecutor`` (a process pool)  | ``--jobs`` processes (all cores) |
| dask    | ``distributed.Client.get_executor()``      | a ``LocalCluster`` this command  |
|         |                                            | starts and closes, or an         |
|         |                                            | existing scheduler (``--cluster``)|

Invariants:

- Workers only compute: they take plain data and return plain data (see
  ``run_point``); the driver writes every file, so remote workers need no shared file
  system, and where a run executed never changes a simulated figure.
- Ctrl-C belongs to the driver: local worker processes ignore SIGINT, so an interrupt
  cannot kill a worker half-way through returning a result; the driver cancels what
  is queued and stops the workers itself (``Pool.cancel``).
- Whatever the way out (normal, error, interrupt), ``open_pool`` closes what it opened:
  worker processes, the Dask client, and a local Dask cluster.
- Dask is optional (``pip install 'dsqlbench[cluster]'``); without it only
  ``--executor dask`` fails, with a one-line ``UserError`` saying what to install.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dsqlbench.errors import UserError

KINDS = ("local", "dask")
DASK_CONNECT_TIMEOUT_S = 10
DASK_WORKER_WAIT_S = 60


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity, not just the machine's total)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class InlineExecutor(Executor):
    """Runs each call in this process, at submit time. ``--jobs 1``: no pickling, no
    worker start-up, and a debugger or profiler sees the simulation directly."""

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - delivered through the future
            future.set_exception(error)
        return future  # KeyboardInterrupt and SystemExit propagate, as they should

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalProcessExecutor(ProcessPoolExecutor):
    """A process pool whose workers ignore Ctrl-C, and that can be stopped at once."""

    def __init__(self, jobs: int) -> None:
        super().__init__(max_workers=jobs, initializer=_ignore_sigint)

    def terminate(self) -> None:
        """Cancel what is queued and kill the workers (they ignore SIGINT, so a
        shutdown that waited would sit through every run in flight)."""
        # CPython keeps its worker processes in ``_processes``; without it (another
        # implementation) shutting down still works, only more slowly.
        processes = list((getattr(self, "_processes", None) or {}).values())
        self.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


@dataclass
class Pool:
    """An executor, how many runs to keep in flight, and what it is (for the log)."""

    executor: Executor
    window: int
    description: str
    _cancel: Callable[[], None] = field(default=lambda: None, repr=False)

    def cancel(self) -> None:
        """Drop queued runs and stop running ones, as fast as the backend allows."""
        self._cancel()


@contextlib.contextmanager
def open_pool(kind: str = "local", jobs: int | None = None,
              cluster: str | None = None) -> Iterator[Pool]:
    """A ``Pool`` of the given kind, closed on the way out; on an exception (Ctrl-C
    included) queued work is cancelled rather than waited for.

    ``kind``: ``local`` (``jobs`` processes, default all cores; ``jobs=1`` runs in
    this process) or ``dask`` (a local cluster of ``jobs`` worker processes, or the
    scheduler at ``cluster``, e.g. ``tcp://10.0.0.5:8786``).
    """
    if kind not in KINDS:
        raise UserError(f"--executor {kind}: expected one of {', '.join(KINDS)}")
    if cluster is not None and kind != "dask":
        raise UserError("--cluster needs --executor dask")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: must be >= 1")
    opener = _dask_pool if kind == "dask" else _local_pool
    with opener(jobs, cluster) as pool:
        try:
            yield pool
        except BaseException:
            pool.cancel()
            raise


@contextlib.contextmanager
def _local_pool(jobs: int | None, _cluster: None) -> Iterator[Pool]:
    jobs = jobs or cpu_count()
    if jobs == 1:
        yield Pool(InlineExecutor(), 1, "in-process (1 job)")
        return
    executor = LocalProcessExecutor(jobs)
    try:
        # Two per worker: the next run is queued while the last result is written.
        yield Pool(executor, 2 * jobs, f"local processes ({jobs} jobs)", executor.terminate)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _dask_pool(jobs: int | None, address: str | None) -> Iterator[Pool]:
    distributed = _import_distributed()
    with contextlib.ExitStack() as stack:
        if address is None:
            jobs = jobs or cpu_count()
            local = stack.enter_context(_local_cluster(distributed, jobs))
            client = stack.enter_context(distributed.Client(local))
            where = f"dask LocalCluster ({jobs} worker processes)"
        else:
            client = stack.enter_context(_connect(distributed, address))
            where = f"dask cluster {address}"
        threads = _wait_for_threads(client, jobs if address is None else 1, where)
        # On a shared cluster --jobs caps how many runs this sweep has in flight.
        window = jobs if address is not None and jobs else 2 * threads
        # pure=False: two runs with equal payloads are still two runs (never merged).
        executor = client.get_executor(pure=False)
        stack.callback(executor.shutdown, wait=False)
        yield Pool(executor, window, f"{where}, {threads} threads",
                   lambda: executor.shutdown(wait=False))


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise UserError("--executor dask needs Dask: pip install 'dsqlbench[cluster]'") from None
    return distributed


def _local_cluster(distributed, jobs: int):
    # One thread per worker process: the simulation is pure Python under the GIL.
    # The worker processes start with SIGINT ignored (an ignored signal stays ignored
    # across exec, and Python then installs no KeyboardInterrupt handler), so Ctrl-C
    # reaches the driver only, which closes the cluster in order.
    with _sigint_ignored():
        return distributed.LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _connect(distributed, address: str):
    try:
        return distributed.Client(address, timeout=f"{DASK_CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as error:
        reason = " ".join(str(error).split())
        raise UserError(f"--cluster {address}: cannot reach the Dask scheduler: {reason}") from None


def _wait_for_threads(client, workers: int, where: str) -> int:
    """Worker threads the scheduler has, once ``workers`` workers have joined."""
    try:
        client.wait_for_workers(workers, timeout=DASK_WORKER_WAIT_S)
    except TimeoutError:
        raise UserError(f"{where}: no {workers} worker(s) joined within "
                        f"{DASK_WORKER_WAIT_S} s") from None
    return max(1, sum(client.nthreads().values()))
