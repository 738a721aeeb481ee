"""The list-append workload: transactions append unique values to lists and read them.

Role: the workload that a black-box checker in the style of Jepsen's Elle can judge
(``dsqlbench.checkers.elle``). Because every appended value is unique and a read returns
the whole list, the order of versions of each list is visible in the reads, and so are
the write-write, write-read and read-write dependencies between transactions.

Invariants:
- each transaction has 1..``ops_max`` micro-operations ``("append", key)`` or
  ``("r", key)``; the runtime fills in each read's result and draws each append's value
  from ``fresh_value`` when the attempt runs, so values are unique per attempt;
- appended values are unique across the run (a counter), keys are drawn uniformly from
  ``list_append.keys`` lists; both from named streams of the run seed;
- a list is stored as consecutive 8-byte little-endian signed integers; the load phase
  stores every list empty.
"""

from __future__ import annotations

import struct

import numpy as np

from dsqlbench.seeds import BufferedDraws, stream
from dsqlbench.workload.distributions import storage_keys
from dsqlbench.workload.ycsb import Operation


class ListAppendOperation(Operation):
    """A list-append transaction: ``micro_ops`` is [(f, storage key, value or None)]."""

    __slots__ = ("micro_ops",)

    def __init__(self, micro_ops: list[tuple[str, int, int | None]]):
        super().__init__("listappend", micro_ops[0][1], 0, 0, 0)
        self.micro_ops = micro_ops


def encode_list(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}q", *values)


def decode_list(value: bytes | None) -> list[int]:
    if not value:
        return []
    assert len(value) % 8 == 0, "a list value is whole 8-byte integers"
    return list(struct.unpack(f"<{len(value) // 8}q", value))


class ListAppendWorkload:
    def __init__(self, cfg: dict):
        seed = cfg["run"]["seed"]
        spec = cfg["list_append"]
        self.keys = spec["keys"]
        self.read_fraction = spec["read_fraction"]
        self.ops_max = spec["ops_max"]
        rng = stream(seed, "workload/list-append")
        self._key_draws = BufferedDraws(lambda n: rng.integers(0, self.keys, n))
        self._op_counts = BufferedDraws(lambda n: rng.integers(1, self.ops_max + 1, n))
        self._is_read = BufferedDraws(lambda n: rng.random(n) < self.read_fraction)
        self._storage_keys = storage_keys(np.arange(self.keys, dtype=np.int64),
                                          cfg["ycsb"]["insert_order"])
        self._next_value = 1

    def load_keys(self) -> np.ndarray:
        return self._storage_keys

    def initial_value(self, key: int) -> bytes:
        return encode_list([])

    def next_operation(self) -> ListAppendOperation:
        ops = []
        for _ in range(self._op_counts.next()):
            key = int(self._storage_keys[self._key_draws.next()])
            ops.append(("r" if self._is_read.next() else "append", key, None))
        return ListAppendOperation(ops)

    def fresh_value(self) -> int:
        """The next unique value to append (per attempt, so a retry appends anew)."""
        value = self._next_value
        self._next_value += 1
        return value

    def acknowledge_insert(self, operation) -> None:  # pragma: no cover - never inserts
        raise AssertionError("the list-append workload does not insert")
