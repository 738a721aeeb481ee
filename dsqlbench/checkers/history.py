"""The list-append history: what the black-box checker (``elle.py``) is given.

A run's list-append workload records one entry per completed transaction attempt. The
checker sees nothing else: no timestamps chosen by the database, no commit order, only
what a client could observe plus the true simulated time it sent and heard back.

Format (a JSON-friendly list of dicts, loaded with ``from_dicts``)::

    {"id": 17,                      # unique across the history
     "process": 3,                  # the client; one transaction at a time per client
     "type": "ok",                  # "ok" committed, "fail" surely aborted,
                                    # "info" outcome unknown (it may or may not have committed)
     "ops": [["append", 5, 42],     # append value 42 to the list at key 5
             ["r", 5, [7, 42]]],    # read key 5: the whole list as this transaction saw it,
                                    # its own earlier appends included; None = never written
     "invoke_ns": 1000,             # true simulated time the client sent BEGIN
                                    # (or the first statement)
     "complete_ns": 5000}           # true simulated time the client saw the outcome

Invariants the loader enforces (a violation is a ``HistoryError``, not an anomaly,
because the history itself is malformed and nothing can be inferred from it):

- ids are unique; ``type`` is one of ok, fail, info; ``invoke_ns <= complete_ns``;
- every op is ``["append", int, int]`` or ``["r", int, list of ints or None]``;
- an appended value is unique per key across the whole history (whatever the type of
  the transaction that appended it), so a value read names the one append that made it.

What the checker assumes of the types: reads of ``fail`` and ``info`` transactions are
ignored (a failed transaction promised nothing; an unknown one may have read from a
snapshot that was then thrown away); appends of ``fail`` transactions never happened,
so observing one is an aborted read (G1a); appends of ``info`` transactions may have
happened, and count as committed once some read observes them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from dsqlbench.errors import ResultError

TYPES = ("ok", "fail", "info")
APPEND = "append"
READ = "r"


class HistoryError(ResultError):
    """A list-append history that does not follow the format above."""


class Op(NamedTuple):
    """One micro-operation: ``("append", key, value)`` or ``("r", key, values)``.

    ``values`` of a read is a tuple (empty when the key was never written), or None for
    a read whose result is unknown (only allowed outside ok transactions).
    """

    f: str
    key: int
    value: object


@dataclass(frozen=True, slots=True)
class Txn:
    id: int
    process: int
    type: str
    ops: tuple[Op, ...]
    invoke_ns: int
    complete_ns: int

    def to_dict(self) -> dict:
        ops = [[op.f, op.key, list(op.value) if isinstance(op.value, tuple) else op.value]
               for op in self.ops]
        return {"id": self.id, "process": self.process, "type": self.type, "ops": ops,
                "invoke_ns": self.invoke_ns, "complete_ns": self.complete_ns}


def from_dicts(entries: Iterable[dict]) -> list[Txn]:
    """Validate and load a history; returns the transactions sorted by id."""
    return validate([_load_txn(i, entry) for i, entry in enumerate(entries)])


def validate(txns: Iterable[Txn]) -> list[Txn]:
    """The invariants across transactions; returns them sorted by id."""
    txns = sorted(txns, key=lambda t: t.id)
    for a, b in zip(txns, txns[1:]):
        if a.id == b.id:
            raise HistoryError(f"history: transaction id {a.id} appears more than once")
    _check_unique_appends(txns)
    return txns


def to_dicts(txns: Iterable[Txn]) -> list[dict]:
    return [t.to_dict() for t in txns]


def _load_txn(position: int, entry: dict) -> Txn:
    where = f"history[{position}]"
    if not isinstance(entry, dict):
        raise HistoryError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [name for name in ("id", "process", "type", "ops", "invoke_ns", "complete_ns")
               if name not in entry]
    if missing:
        raise HistoryError(f"{where}: missing {', '.join(missing)}")
    for name in ("id", "process", "invoke_ns", "complete_ns"):
        if not _is_int(entry[name]):
            raise HistoryError(f"{where}: {name} = {entry[name]!r}: must be an integer")
    if entry["type"] not in TYPES:
        raise HistoryError(f"{where}: type = {entry['type']!r}: must be one of {', '.join(TYPES)}")
    if entry["invoke_ns"] > entry["complete_ns"]:
        raise HistoryError(f"{where}: invoke_ns {entry['invoke_ns']} is after "
                           f"complete_ns {entry['complete_ns']}")
    if not isinstance(entry["ops"], (list, tuple)):
        raise HistoryError(f"{where}: ops must be a list")
    ops = tuple(_load_op(f"{where}.ops[{i}]", op, entry["type"])
                for i, op in enumerate(entry["ops"]))
    return Txn(int(entry["id"]), int(entry["process"]), entry["type"], ops,
               int(entry["invoke_ns"]), int(entry["complete_ns"]))


def _load_op(where: str, op, txn_type: str) -> Op:
    if not isinstance(op, (list, tuple)) or len(op) != 3:
        raise HistoryError(f"{where}: expected [f, key, value], got {op!r}")
    f, key, value = op
    if not _is_int(key):
        raise HistoryError(f"{where}: key {key!r} must be an integer")
    if f == APPEND:
        if not _is_int(value):
            raise HistoryError(f"{where}: appended value {value!r} must be an integer")
        return Op(APPEND, int(key), int(value))
    if f != READ:
        raise HistoryError(f"{where}: unknown op {f!r}: expected 'append' or 'r'")
    if value is None:
        # An ok read of None is a read of a key nobody wrote: the empty list.
        return Op(READ, int(key), () if txn_type == "ok" else None)
    if not isinstance(value, (list, tuple)):
        raise HistoryError(f"{where}: read value {value!r} must be a list of integers or null")
    # map(type) keeps the common case at C speed: reads are whole lists, the bulk of a
    # history. Other integer types (numpy's, from Parquet) are converted.
    if set(map(type, value)) <= {int}:
        return Op(READ, int(key), tuple(value))
    if not all(_is_int(v) for v in value):
        raise HistoryError(f"{where}: read value {value!r} must be a list of integers or null")
    return Op(READ, int(key), tuple(int(v) for v in value))


def _check_unique_appends(txns: list[Txn]) -> None:
    writer: dict[tuple[int, int], int] = {}
    for t in txns:
        for op in t.ops:
            if op.f != APPEND:
                continue
            first = writer.get((op.key, op.value))
            if first is not None:
                raise HistoryError(f"history: value {op.value} appended to key {op.key} more "
                                   f"than once (T{first} and T{t.id}); appends must be unique")
            writer[(op.key, op.value)] = t.id


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)
