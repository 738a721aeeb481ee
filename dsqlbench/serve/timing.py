"""Time driving for ``dsqlbench serve``: SimPy's simulated time under asyncio.

Role: connections submit statement processes (``submit``) and await their results; one
driver task steps the SimPy environment. Two modes:

- ``fast``: simulated time advances only while some statement is in flight, and as fast
  as the host can step events; between statements no simulated time passes. Sessions
  whose statements are in flight together share the simulated timeline, so they
  interleave (and conflict) exactly as in a simulated run. For test suites.
- ``real``: simulated time follows the wall clock (like ``simpy.rt.RealtimeEnvironment``
  with one simulated nanosecond per wall nanosecond, but cooperative with asyncio instead
  of sleeping in ``step``), so a client sees the modelled latency of its reads and
  commits. When the host falls behind, events run late rather than being skipped.

Invariants: the environment is stepped by this task only; every submitted process
completes its future exactly once (its value, or its exception); the driver yields to
the event loop at least every ``STEP_BATCH`` events so sockets keep being served.
"""

from __future__ import annotations

import asyncio

import simpy

STEP_BATCH = 2000
REAL_SLEEP_S_MAX = 0.05
SPIN_S_BELOW = 0.002
MODES = ("fast", "real")


class SimulationCrashed(Exception):
    """The simulation raised (a bug in the lab): statements get XX000 from now on."""


class TimeDriver:
    def __init__(self, env: simpy.Environment, mode: str):
        if mode not in MODES:
            raise ValueError(f"time mode must be one of {MODES}, got {mode!r}")
        self.env = env
        self.mode = mode
        self.inflight = 0
        self.events_stepped = 0
        self.crashed: BaseException | None = None   # a bug in the simulation: time stops
        self._pending: set[asyncio.Future] = set()
        self._wake = asyncio.Event()
        self._stopped = False
        self._loop = asyncio.get_running_loop()
        self._wall0_s = self._loop.time()
        self._sim0_ns = env.now

    def submit(self, body) -> asyncio.Future:
        """Start SimPy process ``body`` now; the future gets its return value."""
        future = self._loop.create_future()
        if self.crashed is not None:
            future.set_exception(SimulationCrashed(self.crashed))
            return future
        if self.mode == "real":
            self._catch_up_clock()
        process = self.env.process(body)
        self.inflight += 1

        self._pending.add(future)

        def finished(event):
            self.inflight -= 1
            self._pending.discard(future)
            if future.cancelled():
                event.defused = True
            elif event.ok:
                future.set_result(event.value)
            else:
                event.defused = True
                future.set_exception(event.value)

        process.callbacks.append(finished)
        self._wake.set()
        return future

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    @property
    def simulated_ns(self) -> int:
        return self.env.now

    async def run(self) -> None:
        try:
            while not self._stopped:
                if self.mode == "fast":
                    await self._fast_round()
                else:
                    await self._real_round()
        except Exception as error:  # a bug: every waiting statement fails with it, loudly
            import traceback

            traceback.print_exc()
            self.crashed = error
            for future in list(self._pending):
                if not future.done():
                    future.set_exception(SimulationCrashed(error))
            self._pending.clear()

    async def _fast_round(self) -> None:
        if self.inflight == 0:
            self._wake.clear()
            await self._wake.wait()
            return
        env, steps = self.env, 0
        while self.inflight and steps < STEP_BATCH:
            env.step()
            steps += 1
        self.events_stepped += steps
        await asyncio.sleep(0)

    def _target_ns(self) -> int:
        return self._sim0_ns + int((self._loop.time() - self._wall0_s) * 1e9)

    def _catch_up_clock(self) -> None:
        """Move ``now`` to the wall clock's simulated time when no event lies between,
        so a statement arriving after a quiet spell starts at its true time. (SimPy has
        no public setter; moving ``_now`` forward up to the next event is what
        ``RealtimeEnvironment.step`` does implicitly by sleeping.)"""
        env = self.env
        target = min(self._target_ns(), env.peek())
        if target > env.now:
            env._now = target

    async def _real_round(self) -> None:
        env, steps = self.env, 0
        target = self._target_ns()
        while env.peek() <= target and steps < STEP_BATCH:
            env.step()
            steps += 1
        self.events_stepped += steps
        if steps == STEP_BATCH:
            await asyncio.sleep(0)
            return
        delay_s = min(REAL_SLEEP_S_MAX, max(0.0, (env.peek() - self._target_ns()) / 1e9))
        if self.inflight and delay_s < SPIN_S_BELOW:
            # The event loop's timers are about 1 ms coarse; a statement's path is a chain
            # of sub-millisecond hops, so while one is in flight the driver spins instead.
            await asyncio.sleep(0)
            return
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), delay_s)
        except asyncio.TimeoutError:
            pass
