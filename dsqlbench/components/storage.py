"""Storage: a multiversion (MVCC) replica of one key-range shard.

Role in the pipeline: the crossbar delivers batches of post-images in ``t_commit``
order with a watermark; the replica applies them and may then serve any read "as of"
a time at or below its applied watermark. QPs read straight from it; it never accepts
writes from QPs, coordinates with other replicas or runs concurrency control.

Invariants:
- the applied watermark never decreases; a read at ``t`` is served only when
  ``t <= applied_watermark_ns`` (the runtime makes the reader wait otherwise);
- each key's versions are in strictly increasing ``t_commit`` order;
- a read at ``t`` returns the newest version with ``t_commit <= t`` (a delete is a
  version with value ``None``: the key is absent at that time);
- trimming drops versions older than the horizon but always keeps the newest version
  at or below the horizon, so every read at ``t >= horizon`` is still answered right;
  a key whose newest version is a delete older than the horizon goes entirely.

Bulk-loaded base image: a replica may hold, besides its per-key version lists, one
columnar *base image* written by the load phase (``load_image``): sorted int64 keys and
their fixed-width values in one numpy array, all at the load timestamp, shared read-only
by every replica of the shard. A key with no version list falls back to the image
(``numpy.searchsorted``); the first new version of an image key copies the loaded
version into the key's list, so the MVCC rules above hold unchanged; a loaded key that
trimming removes entirely is marked dead in the image. ``materialize`` folds the image
into the version lists (snapshots and fault audits work on those).
"""

from __future__ import annotations

from bisect import bisect_left, insort

import numpy as np

from dsqlbench.components.messages import StorageBatch

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_CHUNK = 4096  # image keys converted to Python ints at a time, for lazy scans


class BaseImage:
    """Loaded rows of one shard as columns: ``keys`` (sorted, unique int64) and
    ``values`` (a ``(n, width)`` uint8 array: row ``i`` is the value of ``keys[i]``),
    all at ``t_ns``. Read-only; a slice shares the arrays."""

    __slots__ = ("keys", "values", "t_ns", "columns")

    def __init__(self, keys: np.ndarray, values: np.ndarray, t_ns: int,
                 columns: dict[int, np.ndarray] | None = None):
        assert keys.dtype == np.int64 and values.dtype == np.uint8 and values.ndim == 2
        assert len(keys) == len(values)
        self.keys = keys
        self.values = values
        self.t_ns = t_ns
        # Decoded columns, when the loader knows them: {table column index: values of
        # every row, in key order} (views into ``values`` where the codec allows), so
        # aggregates can fold the image without decoding a row (``sql.columnar``).
        self.columns = columns or {}
        assert all(len(c) == len(keys) for c in self.columns.values())

    def __len__(self) -> int:
        return len(self.keys)

    def index(self, key: int) -> int:
        """Position of ``key`` in the image, -1 when absent."""
        if not INT64_MIN <= key <= INT64_MAX:
            return -1
        keys = self.keys
        i = int(keys.searchsorted(key))
        return i if i < len(keys) and keys[i] == key else -1

    def value(self, i: int) -> bytes:
        return self.values[i].tobytes()

    def bounds(self, low_key: int, high_key: int) -> tuple[int, int]:
        """``[first, end)`` positions of the image keys in ``[low_key, high_key)``."""
        def position(key: int) -> int:
            if key <= INT64_MIN:
                return 0
            if key > INT64_MAX:
                return len(self.keys)
            return int(self.keys.searchsorted(key))
        return position(low_key), max(position(low_key), position(high_key))

    def slice(self, first: int, end: int) -> "BaseImage":
        return BaseImage(self.keys[first:end], self.values[first:end], self.t_ns,
                         {c: v[first:end] for c, v in self.columns.items()})

    def at(self, t_ns: int) -> "BaseImage":
        """The same rows, loaded at ``t_ns``."""
        return BaseImage(self.keys, self.values, t_ns, self.columns)

    def equals(self, other: "BaseImage") -> bool:
        return (self.t_ns == other.t_ns and np.array_equal(self.keys, other.keys)
                and np.array_equal(self.values, other.values))

# A version is (t_commit_ns, value); value None means deleted.
Version = tuple[int, "bytes | None"]


class StorageReplica:
    __slots__ = ("shard", "name", "versions", "sorted_keys", "applied_watermark_ns",
                 "multi_version_keys", "applied_records", "trimmed_versions", "base", "base_dead")

    def __init__(self, shard: int, name: str):
        self.shard = shard
        self.name = name
        self.versions: dict[int, list[Version]] = {}
        self.sorted_keys: list[int] = []  # every key with at least one version, for scans
        self.applied_watermark_ns = 0
        # Keys holding more than one version: the only ones trimming must visit. A dict
        # (insertion-ordered), never a set, so iteration order is deterministic.
        self.multi_version_keys: dict[int, None] = {}
        self.applied_records = 0
        self.trimmed_versions = 0
        self.base: BaseImage | None = None  # the bulk load's columnar rows, if any
        self.base_dead: dict[int, None] = {}  # image keys trimming removed entirely

    # -- writes (from the crossbar only) -----------------------------------------------
    def load(self, keys, values, t_ns: int) -> None:
        """Bulk load before the run: one version per key at ``t_ns``."""
        assert not self.versions, "load only into an empty replica"
        self.versions = {key: [(t_ns, value)] for key, value in zip(keys, values)}
        self.sorted_keys = sorted(self.versions)
        self.applied_watermark_ns = t_ns

    def load_image(self, image: BaseImage) -> None:
        """Bulk load of columnar rows (after ``load`` of any others, none of the same
        keys): the image is shared, never copied or changed."""
        assert self.base is None and not self.applied_records, "load only before the run"
        assert not any(image.index(key) >= 0 for key in self.versions), "image overlaps"
        self.base = image
        self.applied_watermark_ns = max(self.applied_watermark_ns, image.t_ns)

    def _base_version(self, key: int) -> Version | None:
        base = self.base
        i = base.index(key)
        if i < 0 or key in self.base_dead:
            return None
        return (base.t_ns, base.value(i))

    def materialize(self) -> None:
        """Fold the base image into the version lists (the replica then holds every
        version as a Python list, as snapshots and fault audits read it)."""
        base = self.base
        if base is None:
            return
        versions, dead = self.versions, self.base_dead
        for i, key in enumerate(base.keys.tolist()):
            if key not in versions and key not in dead:
                versions[key] = [(base.t_ns, base.value(i))]
        self.sorted_keys = sorted(versions)
        self.base = None
        self.base_dead = {}

    def apply(self, batch: StorageBatch) -> None:
        assert batch.shard == self.shard
        assert batch.watermark_ns >= self.applied_watermark_ns, "watermark went back"
        versions = self.versions
        for key, ts, value in zip(batch.keys, batch.ts, batch.values):
            assert ts <= batch.watermark_ns
            history = versions.get(key)
            if history is None:
                loaded = None if self.base is None else self._base_version(key)
                if loaded is None:
                    versions[key] = [(ts, value)]
                else:
                    assert ts > loaded[0], f"{self.name}: key {key} version out of order"
                    versions[key] = [loaded, (ts, value)]
                    self.multi_version_keys[key] = None
                insort(self.sorted_keys, key)
            else:
                assert ts > history[-1][0], f"{self.name}: key {key} version out of order"
                history.append((ts, value))
                self.multi_version_keys[key] = None
        self.applied_records += len(batch.keys)
        self.applied_watermark_ns = batch.watermark_ns

    # -- reads -----------------------------------------------------------------------
    def read(self, key: int, t_ns: int) -> Version | None:
        """The newest version of ``key`` at or below ``t_ns``; None if there is none."""
        assert t_ns <= self.applied_watermark_ns, f"{self.name}: read at {t_ns} not yet safe"
        history = self.versions.get(key)
        if history is None:
            if self.base is None:
                return None
            loaded = self._base_version(key)
            return loaded if loaded is not None and loaded[0] <= t_ns else None
        for i in range(len(history) - 1, -1, -1):
            if history[i][0] <= t_ns:
                return history[i]
        return None

    def scan(self, start_key: int, limit: int, t_ns: int) -> list[tuple[int, int, bytes]]:
        """Up to ``limit`` live rows with key >= start_key as of ``t_ns``, in key order."""
        assert limit >= 0
        rows: list[tuple[int, int, bytes]] = []
        if limit == 0:
            return rows
        high = max(start_key, self.sorted_keys[-1] if self.sorted_keys else start_key,
                   INT64_MAX) + 1
        for key, version in self.versions_in_range(start_key, high, t_ns):
            if version[1] is not None:
                rows.append((key, version[0], version[1]))
                if len(rows) >= limit:
                    break
        return rows

    def versions_in_range(self, low_key: int, high_key: int, t_ns: int,
                          descending: bool = False):
        """``(key, version)`` for every key in ``[low_key, high_key)`` that has a version
        at ``t_ns`` (deletes included), in key order or its reverse, lazily: a caller
        that stops early (a LIMIT) reads no further."""
        keys = self.sorted_keys
        first, end = bisect_left(keys, low_key), bisect_left(keys, high_key)
        if self.base is None:
            for i in (range(end - 1, first - 1, -1) if descending else range(first, end)):
                version = self.read(keys[i], t_ns)
                if version is not None:
                    yield keys[i], version
            return
        yield from self._merged_range(first, end, low_key, high_key, t_ns, descending)

    def listed_versions_in_range(self, low_key: int, high_key: int, t_ns: int):
        """``versions_in_range`` of the keys with version lists only (not the image's
        other rows), in key order; with ``image_rows`` they make up the whole range."""
        keys = self.sorted_keys
        for i in range(bisect_left(keys, low_key), bisect_left(keys, high_key)):
            version = self.read(keys[i], t_ns)
            if version is not None:
                yield keys[i], version

    def image_rows(self, low_key: int, high_key: int, t_ns: int) -> tuple[BaseImage, np.ndarray]:
        """The image rows in ``[low_key, high_key)`` that a read at ``t_ns`` sees from
        the image itself: ``(image slice, boolean mask of the live ones)``; a row whose
        key has a version list (it was written since) or that trimming removed is not
        live here (``listed_versions_in_range`` has the former)."""
        assert t_ns <= self.applied_watermark_ns, f"{self.name}: read at {t_ns} not yet safe"
        base = self.base
        if base is None:
            return BaseImage(np.empty(0, np.int64), np.empty((0, 0), np.uint8), 0), np.empty(0, bool)
        first, end = base.bounds(low_key, high_key)
        image = base.slice(first, end)
        live = np.full(len(image), base.t_ns <= t_ns)
        keys = self.sorted_keys
        shadowed = [k for k in keys[bisect_left(keys, low_key):bisect_left(keys, high_key)]
                    if INT64_MIN <= k <= INT64_MAX]
        shadowed += [k for k in self.base_dead if low_key <= k < high_key]
        if shadowed and len(image):
            probe = np.asarray(shadowed, dtype=np.int64)
            at = np.minimum(image.keys.searchsorted(probe), len(image) - 1)
            live[at[image.keys[at] == probe]] = False
        return image, live

    def _merged_range(self, first: int, end: int, low_key: int, high_key: int, t_ns: int,
                      descending: bool):
        """``versions_in_range`` over the version lists and the base image together."""
        assert t_ns <= self.applied_watermark_ns, f"{self.name}: read at {t_ns} not yet safe"
        keys, versions, base, dead = self.sorted_keys, self.versions, self.base, self.base_dead
        listed = iter(keys[i] for i in (range(end - 1, first - 1, -1) if descending
                                        else range(first, end)))
        b_first, b_end = base.bounds(low_key, high_key)
        loaded_visible = base.t_ns <= t_ns

        def image_keys():
            step = -_CHUNK if descending else _CHUNK
            starts = range(b_end, b_first, step) if descending else range(b_first, b_end, step)
            for start in starts:
                lo, hi = (max(b_first, start + step), start) if descending else (start, min(b_end, start + step))
                chunk = base.keys[lo:hi].tolist()
                positions = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
                yield from zip(reversed(chunk) if descending else chunk, positions)

        image = image_keys()
        before = (lambda a, b: a > b) if descending else (lambda a, b: a < b)
        key = next(listed, None)
        loaded = next(image, None)
        while key is not None or loaded is not None:
            if loaded is None or (key is not None and not before(loaded[0], key)):
                if loaded is not None and loaded[0] == key:
                    loaded = next(image, None)  # the version list shadows the image
                version = self.read(key, t_ns)
                if version is not None:
                    yield key, version
                key = next(listed, None)
            else:
                image_key, i = loaded
                if loaded_visible and image_key not in dead and image_key not in versions:
                    yield image_key, (base.t_ns, base.value(i))
                loaded = next(image, None)

    # -- garbage collection ----------------------------------------------------------
    def trim(self, horizon_ns: int) -> int:
        """Drop versions no read at or above ``horizon_ns`` can need; returns how many."""
        dropped = 0
        for key in list(self.multi_version_keys):
            history = self.versions[key]
            keep_from = 0
            for i, (ts, _) in enumerate(history):
                if ts <= horizon_ns:
                    keep_from = i  # the newest version at or below the horizon stays
            dropped += keep_from
            del history[:keep_from]
            if len(history) == 1:
                del self.multi_version_keys[key]
                if history[0][1] is None and history[0][0] <= horizon_ns:
                    del self.versions[key]
                    self.sorted_keys.pop(bisect_left(self.sorted_keys, key))
                    dropped += 1
                    if self.base is not None and self.base.index(key) >= 0:
                        self.base_dead[key] = None  # gone: the image must not show it again
        self.trimmed_versions += dropped
        return dropped


class BulkLoad:
    """What a load phase puts into storage before the run, as ``pgbench -i`` and YCSB's
    load phase do in bulk: a few ``(key, value)`` pairs (catalog rows, small tables,
    keys wider than 64 bits) and one columnar image of fixed-width rows (``keys``
    int64, ``values`` an ``(n, width)`` uint8 array), with no key in both."""

    __slots__ = ("pairs", "keys", "values", "columns")

    def __init__(self, pairs: list[tuple[int, bytes]], keys: np.ndarray | None = None,
                 values: np.ndarray | None = None, columns: dict[int, np.ndarray] | None = None):
        if keys is None:
            keys, values = np.empty(0, np.int64), np.empty((0, 0), np.uint8)
        columns = columns or {}
        order = np.argsort(keys, kind="stable")
        if not np.all(order[1:] > order[:-1]):
            keys, values = keys[order], values[order]
            columns = {c: v[order] for c, v in columns.items()}
        assert keys.dtype == np.int64 and len(keys) == len(values)
        self.columns = columns  # the image's decoded columns (BaseImage.columns)
        assert len(keys) < 2 or bool(np.all(keys[1:] > keys[:-1])), "duplicate image keys"
        self.pairs = sorted(pairs, key=lambda pair: pair[0])
        self.keys = keys
        self.values = values
        image = BaseImage(keys, values, 0)
        assert not any(image.index(k) >= 0 for k, _ in self.pairs), "key in pairs and image"

    def __len__(self) -> int:
        return len(self.pairs) + len(self.keys)

    def __iter__(self):
        return iter(self.items())

    def items(self) -> list[tuple[int, bytes]]:
        """Every pair, in key order (slow for big loads: for small ones and audits)."""
        merged = self.pairs + [(k, self.values[i].tobytes()) for i, k in enumerate(self.keys.tolist())]
        merged.sort(key=lambda pair: pair[0])
        return merged

    def key_at(self, rank: int) -> int:
        """The ``rank``-th smallest key of the whole load (pairs and image merged)."""
        lo, hi = 0, len(self.pairs)  # how many pairs rank below: binary search
        keys = self.keys
        while lo < hi:
            mid = (lo + hi) // 2
            pair_key = self.pairs[mid][0]
            below = mid + (len(keys) if pair_key > INT64_MAX else 0 if pair_key < INT64_MIN
                           else int(keys.searchsorted(pair_key)))
            if below < rank:
                lo = mid + 1
            elif below == rank:
                return pair_key
            else:
                hi = mid
        return int(keys[rank - lo])

    def split(self, shards: int) -> list[int]:
        """The boundaries ``KeyRanges.split_evenly`` picks for these keys."""
        if shards == 1 or len(self) == 0:
            return []
        picks = [self.key_at((len(self) * i) // shards) for i in range(1, shards)]
        return sorted({b for b in picks if b > 0})

    def per_shard(self, ranges) -> list[tuple[list[int], list[bytes], BaseImage]]:
        """``(pair keys, pair values, image slice at t 0)`` of each shard of ``ranges``."""
        per_shard = [([], [], None) for _ in range(ranges.count)]
        for key, value in self.pairs:
            shard_keys, shard_values, _ = per_shard[ranges.shard_of(key)]
            shard_keys.append(key)
            shard_values.append(value)
        image = BaseImage(self.keys, self.values, 0, self.columns)
        edges = [0] + [image.bounds(b, b)[0] for b in ranges.boundaries] + [len(self.keys)]
        return [(k, v, image.slice(edges[s], edges[s + 1])) for s, (k, v, _) in enumerate(per_shard)]
