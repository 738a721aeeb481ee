"""YCSB request distributions: which key id the next operation touches.

Role: the load generator asks a *key chooser* for a key id (``next() -> int``) per
operation; the chooser follows the workload's ``ycsb.request_distribution``. The
algorithms are YCSB's (``site.ycsb.generator``), so results can be read against YCSB
numbers: Gray et al.'s zipfian with YCSB's constants, YCSB's scrambled zipfian (zipfian
over 10^10 items, then FNV-1a 64-bit hash modulo the key count), "latest" (a zipfian
built on the newest readable key id and counted back from it), hotspot, plus a hot-key
chooser for contention experiments.

Invariants:
- Every draw comes from the ``numpy.random.Generator`` handed in (a named stream of the
  run seed); nothing here reads a clock or a global random state, and the FNV hash is
  pure arithmetic (never ``hash()``), so the same seed gives the same keys everywhere.
- Draws are made in vectorised blocks (``BufferedDraws``) and handed out as Python
  ints; the sequence does not depend on the block size.
- A key id is an int in ``[0, readable count)``: choosers over a key space larger
  than what is inserted so far redraw ids that are not acknowledged yet, exactly as
  YCSB's ``CoreWorkload.nextKeynum`` does.
- Key ids are not storage keys: ``storage_key`` maps them (identity for
  ``insert_order="ordered"``, YCSB's FNV hash for ``"hashed"``) into non-negative int64,
  so that range scans over storage keys are meaningful either way.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from dsqlbench.seeds import BufferedDraws

FNV_OFFSET_BASIS_64 = 0xCBF29CE484222325
FNV_PRIME_64 = 0x100000001B3
_MASK_64 = (1 << 64) - 1
_MASK_63 = (1 << 63) - 1

# YCSB's ScrambledZipfianGenerator draws a zipfian over this many items (0..10^10
# inclusive) and uses a precomputed zeta for its default constant, 0.99.
SCRAMBLED_ITEM_COUNT = 10_000_000_000 + 1
SCRAMBLED_ZETAN_099 = 26.46902820178302
YCSB_ZIPFIAN_CONSTANT = 0.99

# Zeta sums up to this many terms exactly; longer tails use Euler-Maclaurin, whose
# error at this starting point is far below float64 resolution.
_ZETA_EXACT_TERMS = 1 << 20

INSERT_ORDERS = ("ordered", "hashed")


class KeyChooser(Protocol):
    def next(self) -> int: ...


# --- hashing and storage keys ---------------------------------------------------------


def fnv_hash64(value: int) -> int:
    """YCSB's ``Utils.fnvhash64``: FNV-1a over the 8 little-endian bytes of ``value``,
    returned as a non-negative int64 (Java's ``Math.abs`` of the signed result)."""
    h = FNV_OFFSET_BASIS_64
    for _ in range(8):
        h = ((h ^ (value & 0xFF)) * FNV_PRIME_64) & _MASK_64
        value >>= 8
    signed = h - (1 << 64) if h >> 63 else h
    # abs(INT64_MIN) overflows in Java; mask it to 0 instead of going negative.
    return abs(signed) & _MASK_63


def fnv_hash64_array(values: np.ndarray) -> np.ndarray:
    """``fnv_hash64`` over an array of non-negative integers, as int64."""
    v = np.asarray(values, dtype=np.int64).astype(np.uint64)
    h = np.full(v.shape, FNV_OFFSET_BASIS_64, dtype=np.uint64)
    prime = np.uint64(FNV_PRIME_64)
    for shift in range(0, 64, 8):
        h ^= (v >> np.uint64(shift)) & np.uint64(0xFF)
        h *= prime  # uint64 arithmetic wraps modulo 2^64, as FNV wants
    signed = h.view(np.int64)
    return np.abs(signed) & np.int64(_MASK_63)


def storage_key(key_id: int, insert_order: str) -> int:
    """The storage key (non-negative int64) of YCSB key id ``key_id``."""
    if insert_order == "hashed":
        return fnv_hash64(key_id)
    if insert_order == "ordered":
        return key_id
    raise ValueError(f"insert_order must be one of {INSERT_ORDERS}, got {insert_order!r}")


def storage_keys(key_ids: np.ndarray, insert_order: str) -> np.ndarray:
    """``storage_key`` over an array of key ids, as int64."""
    ids = np.asarray(key_ids, dtype=np.int64)
    if insert_order == "hashed":
        return fnv_hash64_array(ids)
    if insert_order == "ordered":
        return ids.copy()
    raise ValueError(f"insert_order must be one of {INSERT_ORDERS}, got {insert_order!r}")


# --- zeta -----------------------------------------------------------------------------


def zeta_range(lo: int, hi: int, theta: float) -> float:
    """``sum(i ** -theta for i in range(lo + 1, hi + 1))``, fast for any ``hi``."""
    if hi <= lo:
        return 0.0
    split = min(hi, lo + _ZETA_EXACT_TERMS)
    exact = float(np.sum(np.arange(lo + 1, split + 1, dtype=np.float64) ** -theta))
    if split == hi:
        return exact
    return exact + _euler_maclaurin(split + 1, hi, theta)


def zeta(n: int, theta: float) -> float:
    """The generalised harmonic number H(n, theta) of Gray et al.'s zipfian."""
    return zeta_range(0, n, theta)


def _euler_maclaurin(a: int, b: int, theta: float) -> float:
    """``sum(i ** -theta for i in a..b)`` for large ``a``, to float64 precision."""

    def f(x: float) -> float:
        return x**-theta

    def f1(x: float) -> float:
        return -theta * x ** (-theta - 1)

    def f3(x: float) -> float:
        return -theta * (theta + 1) * (theta + 2) * x ** (-theta - 3)

    if theta == 1.0:
        integral = math.log(b) - math.log(a)
    else:
        integral = (b ** (1 - theta) - a ** (1 - theta)) / (1 - theta)
    return integral + (f(a) + f(b)) / 2 + (f1(b) - f1(a)) / 12 - (f3(b) - f3(a)) / 720


# --- the insert counter ---------------------------------------------------------------


class AcknowledgedCounter:
    """YCSB's ``AcknowledgedCounterGenerator``: hands out insert key ids in order and
    tracks which are readable.

    An inserted key becomes readable only when it and every key id before it have been
    acknowledged (the insert finished), so readers never chase a key that is still in
    flight. ``count`` is that readable prefix: key ids ``[0, count)``.
    """

    __slots__ = ("_next_id", "_count", "_acked_ahead")

    def __init__(self, start: int):
        assert start >= 0
        self._next_id = start
        self._count = start
        # Acknowledged ids above the readable prefix; a set is only probed, never
        # iterated, so its order cannot leak into results.
        self._acked_ahead: set[int] = set()

    @property
    def count(self) -> int:
        """How many key ids are readable: ``[0, count)``."""
        return self._count

    @property
    def issued(self) -> int:
        """How many key ids exist or are being inserted: ``[0, issued)``."""
        return self._next_id

    def next_key_id(self) -> int:
        """The key id for the next insert."""
        key_id = self._next_id
        self._next_id += 1
        return key_id

    def acknowledge(self, key_id: int) -> None:
        """The insert of ``key_id`` finished (YCSB acknowledges even a failed one)."""
        assert self._count <= key_id < self._next_id, (key_id, self._count, self._next_id)
        assert key_id not in self._acked_ahead, key_id
        if key_id != self._count:
            self._acked_ahead.add(key_id)
            return
        self._count += 1
        while self._count in self._acked_ahead:
            self._acked_ahead.remove(self._count)
            self._count += 1


# --- generators -----------------------------------------------------------------------


class UniformGenerator:
    """Uniform over ``[0, items)``, or over the readable keys of ``counter`` if given
    (then keys inserted during the run become reachable as they are acknowledged)."""

    __slots__ = ("_items", "_counter", "_draws")

    def __init__(self, items: int, rng: np.random.Generator, counter: AcknowledgedCounter | None = None):
        assert items >= 1
        self._items = items
        self._counter = counter
        if counter is None:
            self._draws = BufferedDraws(lambda n: rng.integers(0, items, n))
        else:
            self._draws = BufferedDraws(rng.random)

    def next(self) -> int:
        if self._counter is None:
            return self._draws.next()
        count = self._counter.count
        key_id = int(self._draws.next() * count)
        return key_id if key_id < count else count - 1  # float rounding guard


class ZipfianGenerator:
    """Gray et al.'s zipfian over items ``[0, items)``, item 0 the most popular
    (YCSB's ``ZipfianGenerator``); P(item i) is proportional to ``(i + 1) ** -theta``."""

    __slots__ = ("items", "theta", "_zetan", "_alpha", "_eta", "_rng", "_draws")

    def __init__(self, items: int, theta: float, rng: np.random.Generator, zetan: float | None = None):
        assert items >= 1 and 0.0 <= theta < 1.0, (items, theta)
        self.items = items
        self.theta = theta
        self._zetan = zeta(items, theta) if zetan is None else zetan
        self._alpha = 1.0 / (1.0 - theta)
        self._eta = _zipf_eta(items, theta, self._zetan)
        self._rng = rng
        self._draws = BufferedDraws(self.draw)

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` ranks as an int64 array (the block behind ``next``)."""
        return _zipf_ranks(self._rng.random(n), self.items, self.theta, self._zetan, self._eta, self._alpha)

    def next(self) -> int:
        return self._draws.next()


class ScrambledZipfianGenerator:
    """YCSB's ``ScrambledZipfianGenerator``: a zipfian over 10^10 + 1 items hashed with
    FNV-1a modulo ``items``, so the popular keys are scattered over the key space
    instead of clustered at key 0. Popularity of a given key does not depend on
    ``items`` being a particular size (and, with a larger key space than inserted keys,
    not on how many were inserted)."""

    __slots__ = ("items", "_zipfian", "_draws")

    def __init__(self, items: int, theta: float, rng: np.random.Generator):
        assert items >= 1
        self.items = items
        zetan = SCRAMBLED_ZETAN_099 if theta == YCSB_ZIPFIAN_CONSTANT else None
        self._zipfian = ZipfianGenerator(SCRAMBLED_ITEM_COUNT, theta, rng, zetan=zetan)
        self._draws = BufferedDraws(self.draw)

    def draw(self, n: int) -> np.ndarray:
        return fnv_hash64_array(self._zipfian.draw(n)) % np.int64(self.items)

    def next(self) -> int:
        return self._draws.next()


class SkewedLatestGenerator:
    """YCSB's ``SkewedLatestGenerator`` ("latest"): a zipfian counted back from the
    newest readable key, so the most recently acknowledged insert is the most popular.

    As in YCSB, the zipfian is built on the counter's last value (the newest readable
    key id, ``count - 1``, YCSB's ``basis.lastValue()``) and each draw is
    ``last - zipfian.nextLong(last)``: a key id in ``[1, last]``. It never names a key
    that is not readable, and never key 0 (only with a single loaded key, where key 0
    is the only choice). It reads the live counter on every draw and extends zeta
    incrementally as the key count grows; like YCSB's ``ZipfianGenerator``, eta keeps
    the item count the generator was built with."""

    __slots__ = ("_counter", "_theta", "_alpha", "_items", "_eta_items", "_zetan", "_eta", "_half_pow", "_uniform")

    def __init__(self, counter: AcknowledgedCounter, theta: float, rng: np.random.Generator):
        assert counter.count >= 1 and 0.0 <= theta < 1.0
        self._counter = counter
        self._theta = theta
        self._alpha = 1.0 / (1.0 - theta)
        self._half_pow = 1.0 + 0.5**theta
        self._items = counter.count - 1  # YCSB: new ZipfianGenerator(basis.lastValue())
        self._eta_items = self._items
        self._zetan = zeta(self._items, theta)
        self._eta = self._eta_now()
        self._uniform = BufferedDraws(rng.random)

    def _eta_now(self) -> float:
        # YCSB's eta keeps the constructor's item count; a generator built on 2 keys or
        # fewer has no usable eta (0/0 in YCSB), so it takes the current count instead.
        items = self._eta_items if self._eta_items > 2 else self._items
        return _zipf_eta(items, self._theta, self._zetan)

    def _grow(self, items: int) -> None:
        self._zetan += zeta_range(self._items, items, self._theta)
        self._items = items
        self._eta = self._eta_now()

    def next(self) -> int:
        last = self._counter.count - 1
        if last == 0:
            return 0  # a single loaded key, nothing inserted yet
        if last != self._items:
            self._grow(last)
        u = self._uniform.next()
        uz = u * self._zetan
        if uz < 1.0:
            rank = 0
        elif uz < self._half_pow:
            rank = 1
        else:
            rank = min(int(last * (self._eta * u - self._eta + 1.0) ** self._alpha), last - 1)
        return last - rank


class HotspotGenerator:
    """YCSB's hotspot: ``hot_op_fraction`` of draws pick uniformly among the first
    ``hot_data_fraction`` of the items (the hot set), the rest among the others."""

    __slots__ = ("items", "hot_items", "_hot_op_fraction", "_rng", "_draws")

    def __init__(
        self, items: int, hot_data_fraction: float, hot_op_fraction: float, rng: np.random.Generator
    ):
        assert items >= 1 and 0.0 <= hot_op_fraction <= 1.0
        self.items = items
        # YCSB truncates; keep at least one hot item and, when possible, one cold one.
        self.hot_items = min(max(1, int(items * hot_data_fraction)), max(1, items - 1))
        self._hot_op_fraction = hot_op_fraction
        self._rng = rng
        self._draws = BufferedDraws(self.draw)

    def draw(self, n: int) -> np.ndarray:
        hot_op = self._rng.random(n) < self._hot_op_fraction
        hot = self._rng.integers(0, self.hot_items, n)
        cold_items = self.items - self.hot_items
        if cold_items == 0:
            return hot
        cold = self.hot_items + self._rng.integers(0, cold_items, n)
        return np.where(hot_op, hot, cold)

    def next(self) -> int:
        return self._draws.next()


class HotKeyGenerator:
    """Uniform over ``hot_key_count`` keys, scattered over ``[0, items)`` by the same
    FNV hash as the scrambled zipfian (the hot keys are the first distinct values of
    ``fnv_hash64(i) % items`` for i = 0, 1, ...). The contention workload."""

    __slots__ = ("hot_keys", "_rng", "_draws")

    def __init__(self, items: int, hot_key_count: int, rng: np.random.Generator):
        assert 1 <= hot_key_count <= items, (hot_key_count, items)
        self.hot_keys = _scattered_keys(items, hot_key_count)
        self._rng = rng
        self._draws = BufferedDraws(self.draw)

    def draw(self, n: int) -> np.ndarray:
        return self.hot_keys[self._rng.integers(0, len(self.hot_keys), n)]

    def next(self) -> int:
        return self._draws.next()


class ReadableOnly:
    """Redraws key ids that are not readable yet (YCSB's ``nextKeynum`` loop): used
    when a chooser's key space was sized for the inserts expected during the run."""

    __slots__ = ("inner", "_counter")

    def __init__(self, inner: KeyChooser, counter: AcknowledgedCounter):
        self.inner = inner
        self._counter = counter

    def next(self) -> int:
        # Terminates: the loaded keys are always readable and the inner chooser
        # reaches them with positive probability.
        while True:
            key_id = self.inner.next()
            if key_id < self._counter.count:
                return key_id


# --- the factory ----------------------------------------------------------------------


def zipfian_key_space(record_count: int, expected_new_keys: int) -> int:
    """How many key ids YCSB's request zipfian covers: ``CoreWorkload`` builds its
    ``ScrambledZipfianGenerator(insertstart, insertstart + insertcount +
    expectednewkeys)``, both bounds inclusive, with ``insertstart = 0`` and
    ``insertcount = record_count``."""
    return record_count + max(0, expected_new_keys) + 1



def make_key_chooser(
    ycsb_cfg: dict,
    record_count: int,
    rng: np.random.Generator,
    insert_counter: AcknowledgedCounter | None = None,
    expected_new_keys: int = 0,
) -> KeyChooser:
    """The key chooser for the resolved ``[ycsb]`` section.

    ``insert_counter`` tracks keys inserted during the run (a fresh one starting at
    ``record_count`` when None). Like YCSB's ``CoreWorkload``, the zipfian key space is
    ``insertstart .. insertstart + insertcount + expectednewkeys`` with both ends
    included, here ``0 .. record_count + expected_new_keys``: ``record_count +
    expected_new_keys + 1`` key ids, sized so that inserts do not shift which keys are
    popular, and ids not readable yet are redrawn (``nextKeynum``). Uniform follows the
    live count; hotspot and hotkey stay on the loaded keys.
    """
    counter = insert_counter if insert_counter is not None else AcknowledgedCounter(record_count)
    distribution = ycsb_cfg["request_distribution"]
    theta = ycsb_cfg["zipfian_constant"]
    if distribution == "uniform":
        return UniformGenerator(record_count, rng, counter=counter)
    if distribution == "zipfian":
        space = zipfian_key_space(record_count, expected_new_keys)
        kind = ScrambledZipfianGenerator if ycsb_cfg["scrambled"] else ZipfianGenerator
        return ReadableOnly(kind(space, theta, rng), counter)
    if distribution == "latest":
        return SkewedLatestGenerator(counter, theta, rng)
    if distribution == "hotspot":
        fractions = ycsb_cfg["hotspot_data_fraction"], ycsb_cfg["hotspot_op_fraction"]
        return HotspotGenerator(record_count, *fractions, rng)
    if distribution == "hotkey":
        return HotKeyGenerator(record_count, ycsb_cfg["hot_key_count"], rng)
    raise ValueError(f"unknown request_distribution {distribution!r}")


# --- helpers --------------------------------------------------------------------------


def _zipf_eta(items: int, theta: float, zetan: float) -> float:
    zeta2 = 1.0 + 0.5**theta
    if items <= 2:
        return 0.0  # only the two special cases of _zipf_ranks are reachable
    return (1.0 - (2.0 / items) ** (1.0 - theta)) / (1.0 - zeta2 / zetan)


def _zipf_ranks(
    u: np.ndarray, items: int, theta: float, zetan: float, eta: float, alpha: float
) -> np.ndarray:
    """YCSB's ``ZipfianGenerator.nextLong`` over a vector of uniforms ``u``."""
    uz = u * zetan
    ranks = (items * (eta * u - eta + 1.0) ** alpha).astype(np.int64)
    ranks = np.where(uz < 1.0 + 0.5**theta, 1, ranks)
    ranks = np.where(uz < 1.0, 0, ranks)
    return np.minimum(ranks, items - 1)


def _scattered_keys(items: int, count: int) -> np.ndarray:
    """The first ``count`` distinct ``fnv_hash64(i) % items``, in order of ``i``."""
    if 2 * count > items:
        # Most keys are hot: ranking every key by hash is cheaper than collecting.
        order = np.argsort(fnv_hash64_array(np.arange(items)), kind="stable")
        return order[:count].astype(np.int64)
    found = np.empty(0, dtype=np.int64)
    start = 0
    while len(found) < count:
        batch = 2 * (count - len(found)) + 16
        candidates = fnv_hash64_array(np.arange(start, start + batch)) % np.int64(items)
        merged = np.concatenate([found, candidates])
        _, first = np.unique(merged, return_index=True)
        found = merged[np.sort(first)]
        start += batch
    return found[:count]
