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

Invariant of an honest clock (asserted by ``is_honest``): the true error
``|offset|`` never exceeds the reported bound. The clock-skew lab (a later issue) adds
clocks that lie, step and strobe; they subclass this one.
"""

from __future__ import annotations

from dataclasses import dataclass

PPM = 1e-6


@dataclass(frozen=True, slots=True)
class ClockReading:
    earliest_ns: int
    now_ns: int
    latest_ns: int


class NodeClock:
    """The clock of one node. ``read(true_ns)`` is the only way components see time."""

    __slots__ = (
        "name", "offset_ns", "drift_ppm", "error_bound_ns", "drift_bound_ppm",
        "sync_interval_ns", "sync_phase_ns", "_last", "max_abs_offset_ns",
    )

    def __init__(self, name: str, offset_ns: int, drift_ppm: float, error_bound_ns: int,
                 drift_bound_ppm: float, sync_interval_ns: int, sync_phase_ns: int = 0):
        assert sync_interval_ns > 0 and error_bound_ns >= 0 and drift_bound_ppm >= 0
        assert 0 <= sync_phase_ns < sync_interval_ns
        self.name = name
        self.offset_ns = int(offset_ns)
        self.drift_ppm = float(drift_ppm)
        self.error_bound_ns = int(error_bound_ns)
        self.drift_bound_ppm = float(drift_bound_ppm)
        self.sync_interval_ns = int(sync_interval_ns)
        self.sync_phase_ns = int(sync_phase_ns)
        self._last = ClockReading(-(1 << 62), -(1 << 62), -(1 << 62))
        self.max_abs_offset_ns = 0

    def _since_sync_ns(self, true_ns: int) -> int:
        return (true_ns - self.sync_phase_ns) % self.sync_interval_ns

    def offset_at(self, true_ns: int) -> int:
        """True error of this clock at true time ``true_ns`` (positive: clock ahead)."""
        return self.offset_ns + round(self.drift_ppm * PPM * self._since_sync_ns(true_ns))

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
        reading = ClockReading(
            max(now - bound, last.earliest_ns),
            max(now, last.now_ns),
            max(now + bound, last.latest_ns),
        )
        self._last = reading
        if abs(offset) > self.max_abs_offset_ns:
            self.max_abs_offset_ns = abs(offset)
        return reading

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
        for _ in range(64):
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
