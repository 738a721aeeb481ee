"""Node clocks: every node reads its own clock, never true time.

A reading is ``(earliest, now, latest)`` around true time, as AWS ClockBound gives it:
true time lies in ``[earliest, latest]`` as long as the clock is honest. The model, per
node, in integer nanoseconds of simulated true time ``t``:

- offset: ``offset_ns + drift_ppm * 1e-6 * (t - last_sync)``, where a sync (every
  ``sync_interval_ns``, at a per-node phase) pulls the accumulated drift back to the
  fixed residual offset ``offset_ns``;
- error bound: ``error_bound_ns + drift_bound_ppm * 1e-6 * (t - last_sync)``: it grows
  with the worst-case drift between syncs, as ClockBound's ``bound + drift * elapsed``;
- readings never run backwards for the component that reads them: each of
  ``earliest``, ``now`` and ``latest`` is clamped to at least the previous value.

Faults, per node (``ClockFaults``), for the skew lab: an extra fixed true error that the
bound does not know of (a clock that lies once it exceeds the bound), strobing (the
offset jumping between ``+strobe`` and ``-strobe`` every half period), a step at a
given time, and a disruption window during which the clock has no valid bound
(ClockBound's status "disrupted"; its readings carry ``valid=False``).

An honest clock's true error ``|offset|`` never exceeds the reported bound
(``is_honest``); the lab knows true time, so it counts every reading that violates its
bound instead of trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

PPM = 1e-6


class ClockReading(NamedTuple):
    """One reading of a node clock (a tuple: read on every transaction, so cheap)."""

    earliest_ns: int
    now_ns: int
    latest_ns: int
    valid: bool = True  # False: the clock has no valid bound (disrupted)


@dataclass(frozen=True, slots=True)
class ClockFaults:
    """Injected clock faults, all in nanoseconds of true time."""

    offset_ns: int = 0  # extra true error the reported bound does not cover
    strobe_ns: int = 0  # offset jumps between +strobe and -strobe ...
    strobe_period_ns: int = 10**7  # ... every half of this period
    step_ns: int = 0  # the offset steps by this much ...
    step_at_ns: int = 0  # ... from this time on
    disrupted_from_ns: int = 0  # no valid bound in [from, until)
    disrupted_until_ns: int = 0

    def offset_at(self, true_ns: int) -> int:
        offset = self.offset_ns
        if self.strobe_ns:
            half = max(1, self.strobe_period_ns // 2)
            offset += self.strobe_ns if (true_ns // half) % 2 == 0 else -self.strobe_ns
        if self.step_ns and true_ns >= self.step_at_ns:
            offset += self.step_ns
        return offset

    def disrupted(self, true_ns: int) -> bool:
        return self.disrupted_from_ns <= true_ns < self.disrupted_until_ns


NO_FAULTS = ClockFaults()


class NodeClock:
    """The clock of one node. ``read(true_ns)`` is the only way components see time."""

    __slots__ = (
        "name", "offset_ns", "drift_ppm", "error_bound_ns", "drift_bound_ppm",
        "sync_interval_ns", "sync_phase_ns", "faults", "_last", "max_abs_offset_ns",
        "readings", "bound_violations", "invalid_readings",
    )

    def __init__(self, name: str, offset_ns: int, drift_ppm: float, error_bound_ns: int,
                 drift_bound_ppm: float, sync_interval_ns: int, sync_phase_ns: int = 0,
                 faults: ClockFaults = NO_FAULTS):
        assert sync_interval_ns > 0 and error_bound_ns >= 0 and drift_bound_ppm >= 0
        assert 0 <= sync_phase_ns < sync_interval_ns
        self.name = name
        self.offset_ns = int(offset_ns)
        self.drift_ppm = float(drift_ppm)
        self.error_bound_ns = int(error_bound_ns)
        self.drift_bound_ppm = float(drift_bound_ppm)
        self.sync_interval_ns = int(sync_interval_ns)
        self.sync_phase_ns = int(sync_phase_ns)
        self.faults = faults
        # Readings start at 1: a clock cannot read before its epoch, however far behind
        # it is (the load phase's versions are at timestamp 1, before everything).
        self._last = ClockReading(1, 1, 1)
        self.max_abs_offset_ns = 0
        self.readings = 0
        self.bound_violations = 0  # readings whose true error exceeded their bound
        self.invalid_readings = 0  # readings taken while the clock had no valid bound

    def _since_sync_ns(self, true_ns: int) -> int:
        return (true_ns - self.sync_phase_ns) % self.sync_interval_ns

    def offset_at(self, true_ns: int) -> int:
        """True error of this clock at true time ``true_ns`` (positive: clock ahead)."""
        drift = round(self.drift_ppm * PPM * self._since_sync_ns(true_ns))
        return self.offset_ns + drift + self.faults.offset_at(true_ns)

    def bound_at(self, true_ns: int) -> int:
        """The error bound this clock reports at true time ``true_ns``."""
        return self.error_bound_ns + round(self.drift_bound_ppm * PPM * self._since_sync_ns(true_ns))

    def read(self, true_ns: int) -> ClockReading:
        offset = self.offset_at(true_ns)
        bound = self.bound_at(true_ns)
        now = true_ns + offset
        last = self._last
        # Never backwards for the reader: a sync can pull `now` back by the drift it
        # had accumulated, and a reader must not see time run in reverse.
        valid = not self.faults.disrupted(true_ns)
        reading = ClockReading(
            max(now - bound, last.earliest_ns),
            max(now, last.now_ns),
            max(now + bound, last.latest_ns),
            valid,
        )
        self._last = reading
        self.readings += 1
        if abs(offset) > self.max_abs_offset_ns:
            self.max_abs_offset_ns = abs(offset)
        if abs(offset) > bound:
            self.bound_violations += 1
        if not valid:
            self.invalid_readings += 1
        return reading

    def max_lag_ns(self) -> int:
        """The most a reading's ``earliest`` can lag true time, at any time: the
        largest bound plus the largest error behind (offset, drift over one sync
        interval, and every injected fault at once)."""
        interval = self.sync_interval_ns
        bound = self.error_bound_ns + round(self.drift_bound_ppm * PPM * interval)
        faults = self.faults
        behind = (abs(self.offset_ns) + abs(round(self.drift_ppm * PPM * interval))
                  + abs(faults.offset_ns) + abs(faults.strobe_ns) + abs(faults.step_ns))
        return bound + behind + 1

    def floor_at(self, true_ns: int) -> int:
        """No reading at or after true time ``true_ns`` has an ``earliest`` below this
        (readings never go back, and none lags more than ``max_lag_ns``). Computing
        it is not a reading: nothing about the clock changes."""
        return max(self._last.earliest_ns, true_ns - self.max_lag_ns())

    def is_honest(self, true_ns: int) -> bool:
        return abs(self.offset_at(true_ns)) <= self.bound_at(true_ns)

    def true_time_when_earliest_passes(self, t_ns: int, true_now_ns: int) -> int:
        """The first true time, not before ``true_now_ns``, at which ``earliest > t_ns``.

        Commit-wait uses it: an adjudicator acknowledges ``t_commit`` only once its
        clock's earliest reading has passed it, so that ``t_commit`` is surely in the
        past in true time. ``earliest`` rises at nearly unit slope between syncs, so a
        few Newton-like steps converge; a sync can only move ``earliest`` up or down by
        the drift of one interval, which the loop absorbs.
        """
        true_ns = true_now_ns
        for _ in range(100_000):
            earliest = true_ns + self.offset_at(true_ns) - self.bound_at(true_ns)
            if earliest > t_ns:
                return true_ns
            true_ns += (t_ns - earliest) + 1
        raise AssertionError(f"{self.name}: earliest never passes {t_ns}")


def t_start_from(reading: ClockReading, policy: str) -> int:
    """The snapshot time a QP takes from its clock under policy earliest|now|latest."""
    if policy == "latest":
        return reading.latest_ns
    if policy == "now":
        return reading.now_ns
    if policy == "earliest":
        return reading.earliest_ns
    raise ValueError(f"unknown t_start policy {policy!r}")
