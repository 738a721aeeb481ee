"""The YCSB operation mix: what each logical transaction of a YCSB workload does.

Role: the load generator asks ``YcsbWorkload.next_operation()`` for the next
operation and turns it into a transaction (a read, an update, an insert, a scan, or a
read-modify-write of one row); ``load_keys()`` gives the rows of the load phase.

Invariants:
- The operation kind, the key and the scan length come from three separate streams of
  the run seed (``workload/ops``, ``workload/keys``, ``workload/scan_length``), so a
  change to the mix does not change the sequence of key draws, and vice versa.
- Keys are storage keys (non-negative int64, see ``distributions.storage_key``); an
  operation touches only keys that were loaded or whose insert was acknowledged.
- An insert takes the next key id from the ``AcknowledgedCounter``; the key becomes
  readable when the caller reports the insert finished (``acknowledge_insert``),
  committed or not, exactly as YCSB acknowledges in a ``finally``.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from dsqlbench.components.storage import BulkLoad
from dsqlbench.seeds import BufferedDraws, stream
from dsqlbench.workload.distributions import (
    AcknowledgedCounter,
    UniformGenerator,
    ZipfianGenerator,
    make_key_chooser,
    storage_key,
    storage_keys,
)

OPERATION_KINDS = ("read", "update", "insert", "scan", "rmw")
_PROPORTION_KEYS = tuple(f"{kind}_proportion" for kind in OPERATION_KINDS)

StreamFactory = Callable[[str], np.random.Generator]


class Operation:
    """One YCSB operation.

    ``key`` is the storage key (the first key of a scan); ``key_id`` the YCSB key id
    behind it; ``scan_length`` the number of rows a scan asks for (0 otherwise);
    ``value_bytes`` the size of a row's value (written by update, insert and rmw).
    """

    __slots__ = ("kind", "key", "key_id", "scan_length", "value_bytes")

    def __init__(self, kind: str, key: int, key_id: int, scan_length: int, value_bytes: int):
        self.kind = kind
        self.key = key
        self.key_id = key_id
        self.scan_length = scan_length
        self.value_bytes = value_bytes

    def as_tuple(self) -> tuple[str, int, int, int, int]:
        return (self.kind, self.key, self.key_id, self.scan_length, self.value_bytes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Operation) and self.as_tuple() == other.as_tuple()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Operation({fields})"


class YcsbWorkload:
    """The operation stream of a resolved config (``config.load_config``).

    ``record_count`` defaults to ``load.record_count``; ``rng_streams`` maps a stream
    name to a generator (default: ``seeds.stream`` of ``run.seed``; an int is taken
    as the seed). ``expected_new_keys`` sizes the zipfian key space for the run's
    inserts (default: YCSB's twice the expected inserts, see ``expected_new_keys``).
    """

    def __init__(
        self,
        cfg: dict,
        record_count: int | None = None,
        rng_streams: StreamFactory | int | None = None,
        expected_new_keys: int | None = None,
    ):
        self.ycsb = cfg["ycsb"]
        self.record_count = cfg["load"]["record_count"] if record_count is None else record_count
        assert self.record_count >= 1
        streams = _stream_factory(cfg, rng_streams)
        self.value_bytes = cfg["load"]["value_bytes"]
        self.insert_order = self.ycsb["insert_order"]
        self.insert_counter = AcknowledgedCounter(self.record_count)
        if expected_new_keys is None:
            expected_new_keys = estimate_new_keys(cfg, self.record_count)
        self._kinds = _kind_draws(self.ycsb, streams("workload/ops"))
        self._keys = make_key_chooser(
            self.ycsb, self.record_count, streams("workload/keys"), self.insert_counter, expected_new_keys
        )
        self._scan_lengths = _scan_length_chooser(self.ycsb, streams("workload/scan_length"))
        # Hashing a key id in pure Python costs ~2 us (64-bit products are big ints);
        # looking up the loaded keys' storage keys, computed once in numpy, ~0.5 us.
        self._loaded_keys = storage_keys(np.arange(self.record_count, dtype=np.int64), self.insert_order)
        self._loaded_keys.setflags(write=False)

    def next_operation(self) -> Operation:
        kind = self._kinds.next()
        if kind == "insert":
            key_id = self.insert_counter.next_key_id()
        else:
            key_id = self._keys.next()
        scan_length = self._scan_lengths.next() + 1 if kind == "scan" else 0
        return Operation(kind, self.storage_key(key_id), key_id, scan_length, self.value_bytes)

    def storage_key(self, key_id: int) -> int:
        """The storage key of YCSB key id ``key_id`` (loaded or inserted)."""
        if key_id < self.record_count:
            return int(self._loaded_keys[key_id])
        return storage_key(key_id, self.insert_order)

    def acknowledge_insert(self, operation: Operation) -> None:
        """The insert ``operation`` finished (committed or given up): its key becomes
        readable once every earlier insert has finished too."""
        assert operation.kind == "insert", operation
        self.insert_counter.acknowledge(operation.key_id)

    def load_keys(self) -> np.ndarray:
        """Storage keys of the load phase, in load order (key ids 0..record_count-1),
        as a read-only int64 array."""
        return self._loaded_keys


def bulk_load(keys: np.ndarray, value_bytes: int) -> BulkLoad:
    """YCSB's load phase as one columnar image: the row of each key is the value the
    driver writes at txn 0 (``Driver.value_for(0, key)``: 8 zero bytes and the key's
    8 little-endian bytes, repeated to ``value_bytes``), built with numpy."""
    keys = np.sort(np.asarray(keys, dtype=np.int64))
    assert not len(keys) or int(keys[0]) >= 0
    stamp = np.zeros((len(keys), 16), np.uint8)
    stamp[:, 8:] = keys.astype("<u8").view(np.uint8).reshape(len(keys), 8)
    repeats = value_bytes // 16 + 1
    values = np.ascontiguousarray(np.tile(stamp, (1, repeats))[:, :value_bytes])
    return BulkLoad([], keys, values)


def estimate_new_keys(cfg: dict, record_count: int) -> int:
    """YCSB sizes the zipfian key space as loaded keys plus twice the expected inserts
    (``operationcount * insertproportion * 2``). A run bounded by duration has no
    operation count, so it assumes as many operations as loaded records."""
    operations = cfg["run"]["transactions"] or record_count
    return int(2 * cfg["ycsb"]["insert_proportion"] * operations)


def _stream_factory(cfg: dict, rng_streams: StreamFactory | int | None) -> StreamFactory:
    if rng_streams is None:
        return functools.partial(stream, cfg["run"]["seed"])
    if isinstance(rng_streams, int):
        return functools.partial(stream, rng_streams)
    return rng_streams


def _kind_draws(ycsb: dict, rng: np.random.Generator) -> BufferedDraws:
    """Operation kinds drawn in blocks: a uniform in [0, 1) against the cumulative
    proportions, each kind owning the interval of its share."""
    proportions = np.array([ycsb[key] for key in _PROPORTION_KEYS], dtype=np.float64)
    assert proportions.sum() > 0, ycsb
    cumulative = np.cumsum(proportions)
    # The last kind with a share takes whatever rounding left above the sum.
    last = int(np.flatnonzero(proportions > 0)[-1])
    cumulative[last:] = np.inf
    kinds = np.array(OPERATION_KINDS, dtype=object)

    def draw_block(n: int) -> np.ndarray:
        return kinds[np.searchsorted(cumulative, rng.random(n), side="right")]

    return BufferedDraws(draw_block)


def _scan_length_chooser(ycsb: dict, rng: np.random.Generator) -> UniformGenerator | ZipfianGenerator:
    """Scan length minus one, in [0, scan_length_max): YCSB's uniform or zipfian
    (then 1 row is the most common length)."""
    longest = ycsb["scan_length_max"]
    if ycsb["scan_length_distribution"] == "zipfian":
        return ZipfianGenerator(longest, ycsb["zipfian_constant"], rng)
    return UniformGenerator(longest, rng)
