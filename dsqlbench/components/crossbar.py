"""Crossbar: merges every journal into one ``t_commit`` order per storage shard.

Role in the pipeline: the crossbar follows each journal's durable prefix, keeps per
journal the last timestamp it has seen (entry or heartbeat), and releases to storage
every entry at or below the watermark, the minimum of those, merged by ``(t_commit,
journal index)`` with the merge kernel. It routes each post-image to the storage shard
owning its key and ships each shard's batch erasure-coded: k data fragments plus m
parity fragments over k + m paths; the replica rebuilds from the first k to arrive.

It does not decide order (journals are already ordered) and is not on the commit path.

Invariants:
- per journal, received timestamps strictly increase;
- the watermark never decreases, and nothing above it is ever released;
- released records are in non-decreasing ``t_commit`` order, ties by journal index;
- a batch rebuilt from any k fragments is byte-identical to the batch encoded.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from dsqlbench.components.messages import JournalEntry, StorageBatch
from dsqlbench.components.routing import KeyRanges

# -- the crossbar core ---------------------------------------------------------------


class Crossbar:
    def __init__(self, journal_count: int, storage_ranges: KeyRanges, merge_until):
        assert journal_count >= 1
        self.journal_count = journal_count
        self.ranges = storage_ranges
        self._merge_until = merge_until
        self.pending: list[list[JournalEntry]] = [[] for _ in range(journal_count)]
        self.last_seen_ns = [0] * journal_count
        self.released_watermark_ns = 0
        self.released_entries = 0

    def receive(self, journal: int, entries: list[JournalEntry]) -> None:
        """Entries of one journal's durable prefix, in log order."""
        last = self.last_seen_ns[journal]
        queue = self.pending[journal]
        for entry in entries:
            assert entry.ts_ns > last, f"journal {journal} out of order at {entry.ts_ns}"
            last = entry.ts_ns
            if not entry.is_heartbeat:
                queue.append(entry)
        self.last_seen_ns[journal] = last

    def watermark(self) -> int:
        return min(self.last_seen_ns)

    def release(self) -> tuple[int, list[StorageBatch]]:
        """Everything at or below the watermark, as one batch per storage shard."""
        watermark = self.watermark()
        assert watermark >= self.released_watermark_ns
        self.released_watermark_ns = watermark
        ordered = self._merge(watermark)
        return watermark, self._route(ordered, watermark)

    def _merge(self, watermark: int) -> list[JournalEntry]:
        segments = self.pending
        sizes = [len(s) for s in segments]
        total = sum(sizes)
        if total == 0:
            return []
        offsets = np.zeros(len(segments) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        flat_entries = [e for s in segments for e in s]
        ts_flat = np.fromiter((e.ts_ns for e in flat_entries), dtype=np.int64, count=total)
        out_pos = np.empty(total, dtype=np.int64)
        n = self._merge_until(ts_flat, offsets, watermark, out_pos)
        if n == 0:
            return []
        released = [flat_entries[p] for p in out_pos[:n].tolist()]
        # Each journal releases a prefix; keep the rest for the next tick.
        for j, segment in enumerate(segments):
            taken = int(np.searchsorted(ts_flat[offsets[j]:offsets[j + 1]], watermark, "right"))
            del segment[:taken]
        self.released_entries += n
        return released

    def _route(self, ordered: list[JournalEntry], watermark: int) -> list[StorageBatch]:
        per_shard: list[tuple[list, list, list, list]] = [
            ([], [], [], []) for _ in range(self.ranges.count)]
        shard_of = self.ranges.shard_of
        previous_ts = -1
        for entry in ordered:
            assert previous_ts <= entry.ts_ns <= watermark
            previous_ts = entry.ts_ns
            for key, value in entry.writes:
                keys, ts, values, decided = per_shard[shard_of(key)]
                keys.append(key)
                ts.append(entry.ts_ns)
                values.append(value)
                decided.append(entry.decided_true_ns)
        return [StorageBatch(shard, watermark, tuple(k), tuple(t), tuple(v), tuple(d))
                for shard, (k, t, v, d) in enumerate(per_shard)]


# -- the wire format of a storage batch, and its erasure coding --------------------------

_HEADER = struct.Struct("<4q")  # shard, watermark, record count, key width (0: int64)
_INT63 = (1 << 63) - 1


def batch_to_bytes(batch: StorageBatch) -> bytes:
    """Header, keys, timestamps, decision times, value lengths (-1 = delete), values.

    Little-endian int64 throughout, packed with one ``struct.pack`` call since batches
    are small. Keys wider than int64 (SQL keys) go as fixed-width unsigned big-endian
    integers of the batch's widest key, so every key round-trips exactly.
    """
    n = len(batch.keys)
    lengths = [-1 if v is None else len(v) for v in batch.values]
    decided = batch.decided_true_ns or (0,) * n
    width = _key_width(batch.keys)
    if width == 0:
        head = struct.pack(f"<{4 + 4 * n}q", batch.shard, batch.watermark_ns, n, 0,
                           *batch.keys, *batch.ts, *decided, *lengths)
        keys_blob = b""
    else:
        head = struct.pack(f"<{4 + 3 * n}q", batch.shard, batch.watermark_ns, n, width,
                           *batch.ts, *decided, *lengths)
        keys_blob = b"".join(k.to_bytes(width, "big") for k in batch.keys)
    return head + keys_blob + b"".join([v for v in batch.values if v is not None])


def _key_width(keys) -> int:
    widest = max(keys, default=0)
    return 0 if widest <= _INT63 else (widest.bit_length() + 7) // 8


def batch_from_bytes(payload: bytes) -> StorageBatch:
    shard, watermark, n, width = _HEADER.unpack_from(payload, 0)
    at = _HEADER.size
    if width == 0:
        columns = struct.unpack_from(f"<{4 * n}q", payload, at)
        keys, ts, decided, lengths = (columns[i * n:(i + 1) * n] for i in range(4))
        at += 32 * n
    else:
        columns = struct.unpack_from(f"<{3 * n}q", payload, at)
        ts, decided, lengths = (columns[i * n:(i + 1) * n] for i in range(3))
        at += 24 * n
        keys = tuple(int.from_bytes(payload[at + i * width:at + (i + 1) * width], "big")
                     for i in range(n))
        at += width * n
    values: list[bytes | None] = []
    for length in lengths:
        if length < 0:
            values.append(None)
        else:
            values.append(payload[at:at + length])
            at += length
    assert at == len(payload), "storage batch payload has trailing bytes"
    return StorageBatch(shard, watermark, keys, ts, tuple(values), decided)


class FragmentedBatch:
    """A batch's wire bytes cut into k data + m parity fragments, as they travel.

    Each fragment carries a CRC32 of its bytes: a fragment that fails it (a flipped
    bit on the way) is treated as lost, never decoded into wrong bytes.
    """

    __slots__ = ("payload", "fragments", "checksums")

    def __init__(self, payload: bytes, fragments: np.ndarray):
        self.payload = payload
        self.fragments = fragments  # (k + m, fragment_length) uint8
        self.checksums = [zlib.crc32(row.tobytes()) for row in fragments]

    def intact(self, index: int, fragment: np.ndarray) -> bool:
        return zlib.crc32(fragment.tobytes()) == self.checksums[index]


def encode_batch(batch: StorageBatch, code, split_payload) -> FragmentedBatch:
    payload = batch_to_bytes(batch)
    data = split_payload(payload, code.k)
    parity = code.encode(data)
    return FragmentedBatch(payload, np.concatenate([data, parity]) if code.m else data)


def rebuild_from(fragments: np.ndarray, indices: list[int], code, join_payload,
                 payload_length: int) -> bytes:
    """The wire bytes from exactly k received fragments (``fragments[i]`` is fragment
    ``indices[i]``), decoding from parity unless they are the k data fragments."""
    order = sorted(range(len(indices)), key=indices.__getitem__)
    indices = [indices[i] for i in order]
    rows = fragments[order]
    if indices == list(range(code.k)):
        return join_payload(rows, payload_length)
    return join_payload(code.decode(indices, rows), payload_length)


def rebuild_batch(fragmented: FragmentedBatch, arrived: list[int], code, join_payload
                  ) -> tuple[StorageBatch, bool]:
    """The batch rebuilt from the first k fragment indices to arrive, and whether
    parity was needed (the runtime uses ``rebuild_from`` with its own fragment faults)."""
    first = list(arrived[:code.k])
    assert len(set(first)) == code.k, "need k distinct fragments"
    payload = rebuild_from(fragmented.fragments[first], first, code, join_payload,
                           len(fragmented.payload))
    decoded = sorted(first) != list(range(code.k))
    return batch_from_bytes(payload), decoded
