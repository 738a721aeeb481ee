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
"""

from __future__ import annotations

from bisect import bisect_left, insort

from dsqlbench.components.messages import StorageBatch

# A version is (t_commit_ns, value); value None means deleted.
Version = tuple[int, "bytes | None"]


class StorageReplica:
    __slots__ = ("shard", "name", "versions", "sorted_keys", "applied_watermark_ns",
                 "multi_version_keys", "applied_records", "trimmed_versions")

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

    # -- writes (from the crossbar only) -----------------------------------------------
    def load(self, keys, values, t_ns: int) -> None:
        """Bulk load before the run: one version per key at ``t_ns``."""
        assert not self.versions, "load only into an empty replica"
        self.versions = {key: [(t_ns, value)] for key, value in zip(keys, values)}
        self.sorted_keys = sorted(self.versions)
        self.applied_watermark_ns = t_ns

    def apply(self, batch: StorageBatch) -> None:
        assert batch.shard == self.shard
        assert batch.watermark_ns >= self.applied_watermark_ns, "watermark went back"
        versions = self.versions
        for key, ts, value in zip(batch.keys, batch.ts, batch.values):
            assert ts <= batch.watermark_ns
            history = versions.get(key)
            if history is None:
                versions[key] = [(ts, value)]
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
            return None
        for i in range(len(history) - 1, -1, -1):
            if history[i][0] <= t_ns:
                return history[i]
        return None

    def scan(self, start_key: int, limit: int, t_ns: int) -> list[tuple[int, int, bytes]]:
        """Up to ``limit`` live rows with key >= start_key as of ``t_ns``, in key order."""
        assert limit >= 0
        rows: list[tuple[int, int, bytes]] = []
        keys = self.sorted_keys
        i = bisect_left(keys, start_key)
        while i < len(keys) and len(rows) < limit:
            version = self.read(keys[i], t_ns)
            if version is not None and version[1] is not None:
                rows.append((keys[i], version[0], version[1]))
            i += 1
        return rows

    def versions_in_range(self, low_key: int, high_key: int, t_ns: int,
                          descending: bool = False):
        """``(key, version)`` for every key in ``[low_key, high_key)`` that has a version
        at ``t_ns`` (deletes included), in key order or its reverse, lazily: a caller
        that stops early (a LIMIT) reads no further."""
        keys = self.sorted_keys
        first, end = bisect_left(keys, low_key), bisect_left(keys, high_key)
        for i in (range(end - 1, first - 1, -1) if descending else range(first, end)):
            version = self.read(keys[i], t_ns)
            if version is not None:
                yield keys[i], version

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
        self.trimmed_versions += dropped
        return dropped
