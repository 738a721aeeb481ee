"""Fault injection: a schedule of faults in simulated time, and what each one does.

A workload file lists faults as ``[[faults]]`` tables: a ``kind``, a ``target``, a start
``at_s`` and a ``duration_s``; with ``count`` > 1 (or ``spread_s`` > 0) the starts are
drawn uniformly in ``[at_s, at_s + spread_s]`` from the run seed (stream ``faults``).
Every fault is a window ``[start, end)`` of true time; the schedule answers the
runtime's questions about a moment ("is this journal replica down now?", "when does
this link heal?") and keeps the timeline that results report.

Kinds and targets:

| kind | target | effect |
|---|---|---|
| ``crash`` | ``journal:J:R`` | replica R of journal J acks nothing until it restarts |
| ``crash`` | ``storage:S:R`` | replica R of storage shard S is down; reads go to another replica; it is rebuilt on restart |
| ``crash`` | ``adjudicator:N`` | the leader of shard N dies; a new one takes over once its lease surely expired |
| ``crash`` | ``qp:N`` | QP N refuses new transactions; its clients move to another QP |
| ``pause`` | ``adjudicator:N`` | the leader freezes (longer than its lease: it is replaced, and fenced when it wakes) |
| ``partition`` | ``A|B`` | messages between places A and B wait until the partition heals |
| ``slow_link`` | ``A|B`` | messages between A and B take ``multiplier`` times longer |
| ``lose_fragments`` | ``storage`` or ``storage:S`` | ``fragments`` of each delivery's k + m are lost (with ``probability``) |
| ``corrupt_fragments`` | ``storage`` or ``storage:S`` | one fragment of a delivery has a bit flipped (with ``probability``) |

A place is ``rR`` (region R) or ``rR.azA`` (AZ A of region R), or ``*`` (anywhere
else). Bad targets are refused before the run with one line naming the fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsqlbench.errors import ConfigError
from dsqlbench.seeds import stream

S = 1_000_000_000

KINDS = ("crash", "pause", "partition", "slow_link", "lose_fragments", "corrupt_fragments")
CRASH_TARGETS = ("journal", "storage", "adjudicator", "qp")


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str
    start_ns: int
    end_ns: int
    fragments: int = 1
    probability: float = 1.0
    multiplier: float = 10.0

    def active(self, now_ns: int) -> bool:
        return self.start_ns <= now_ns < self.end_ns


@dataclass
class FaultSchedule:
    faults: list[Fault] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: dict, source: str = "faults") -> "FaultSchedule":
        rng = stream(cfg["run"]["seed"], "faults")
        faults: list[Fault] = []
        for index, spec in enumerate(cfg.get("faults", [])):
            where = f"faults.{index}"
            _check_target(spec["kind"], spec["target"], source, where)
            for start_s in _starts(spec, rng):
                start_ns = int(start_s * S)
                faults.append(Fault(spec["kind"], spec["target"], start_ns,
                                    start_ns + int(spec["duration_s"] * S), spec["fragments"],
                                    spec["probability"], spec["multiplier"]))
        faults.sort(key=lambda f: (f.start_ns, f.kind, f.target))
        return cls(faults)

    def __bool__(self) -> bool:
        return bool(self.faults)

    def of_kind(self, *kinds: str) -> list[Fault]:
        return [f for f in self.faults if f.kind in kinds]

    def down_until(self, kind: str, target: str, now_ns: int) -> int | None:
        """End of the active fault of ``kind`` on ``target`` at ``now_ns``, if any."""
        ends = [f.end_ns for f in self.faults
                if f.kind == kind and f.target == target and f.active(now_ns)]
        return max(ends) if ends else None

    def timeline(self) -> list[dict]:
        """What results report: every fault, when it began and ended (seconds)."""
        return [{"kind": f.kind, "target": f.target, "start_s": f.start_ns / S,
                 "end_s": f.end_ns / S} for f in self.faults]

    def injected_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.faults:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        return dict(sorted(counts.items()))


def _starts(spec: dict, rng) -> list[float]:
    if spec["count"] == 1 and spec["spread_s"] == 0:
        return [spec["at_s"]]
    draws = rng.uniform(0, spec["spread_s"], spec["count"]) if spec["spread_s"] else [0.0] * spec["count"]
    return sorted(spec["at_s"] + float(d) for d in draws)


# -- targets --------------------------------------------------------------------------------


def parse_place(text: str) -> tuple[int, int | None] | None:
    """``rR`` -> (R, None); ``rR.azA`` -> (R, A); ``*`` -> None (anywhere)."""
    if text == "*":
        return None
    region, _, az = text.partition(".")
    if not region.startswith("r") or not region[1:].isdigit():
        raise ValueError(text)
    if not az:
        return int(region[1:]), None
    if not az.startswith("az") or not az[2:].isdigit():
        raise ValueError(text)
    return int(region[1:]), int(az[2:])


def place_matches(pattern: tuple[int, int | None] | None, place: tuple[int, int]) -> bool:
    if pattern is None:
        return True
    region, az = pattern
    return place[0] == region and (az is None or place[1] == az)


def link_sides(target: str) -> tuple:
    left, _, right = target.partition("|")
    return parse_place(left), parse_place(right)


def _check_target(kind: str, target: str, source: str, where: str) -> None:
    try:
        _parse_target(kind, target)
    except (ValueError, IndexError):
        raise ConfigError(source, f"{where}.target = {target!r}",
                          f"not a target for {kind!r}; see dsqlbench/sim/faults.py: "
                          "journal:J:R, storage:S:R, adjudicator:N, qp:N, 'rR.azA|rR.azB', storage[:S]"
                          ) from None


def _parse_target(kind: str, target: str) -> None:
    if kind in ("partition", "slow_link"):
        if "|" not in target:
            raise ValueError(target)
        link_sides(target)
        return
    parts = target.split(":")
    if kind in ("lose_fragments", "corrupt_fragments"):
        if parts[0] != "storage" or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(target)
        return
    expected = {"journal": 3, "storage": 3, "adjudicator": 2, "qp": 2}
    if parts[0] not in expected or len(parts) != expected[parts[0]]:
        raise ValueError(target)
    if not all(p.isdigit() for p in parts[1:]):
        raise ValueError(target)
    if kind == "pause" and parts[0] != "adjudicator":
        raise ValueError(target)
