"""Snapshots to object storage: storage shards and journal segments, as Parquet.

Role in the pipeline: a storage replica writes its MVCC contents now and then, so a
restarted replica rebuilds from the latest snapshot plus a replay of the journals
(``dsqlbench.components.recovery``) instead of from the start; a journal archives the
entries below a position, so it may trim them (``recovery.trim_point``) while the whole
history stays readable. The store goes through ``pyarrow.fs``: a local folder (a path
or ``file://`` URI) by default, any S3-compatible store given
``s3://bucket/prefix?endpoint_override=host:port&scheme=http``. Like every core it has
no notion of simulated time; the runtime decides when to snapshot and charges the time.

Layout under the store's root, one folder per owner (storage shard or journal)::

    storage/<shard:05d>/MANIFEST.json              the committed snapshots, oldest first
    storage/<shard:05d>/<seq:010d>-<name>.parquet  one snapshot
    journal/<index:05d>/...                        the same for journal segments

Storage snapshot: one row per version kept, in (key, t_commit) order: ``key`` as
big-endian fixed-width binary (at least 8 bytes, wider when a key needs it, so keys past
64 bits round-trip exactly and byte order is key order), ``t_commit_ns`` (int64),
``value`` (binary, null for a delete). Journal segment: one row per entry at positions
``[first_position, upto_position)``, heartbeats included, with ``writes`` as a list of
(key, value) structs. Both carry key-value metadata (``dsqlbench.*``: kind, schema
version, owner, watermark or positions, row count, key width, content checksum).

Invariants:
- a snapshot is visible only once complete: its bytes go to a hidden temporary object
  (``.tmp-...``), which is moved into place (a rename locally; on S3 a server-side copy,
  itself atomic), and only then is the manifest, written the same way, updated to name
  it. S3 needs the temporary name too: pyarrow's S3 output stream completes its upload
  when closed after an exception, so a write that fails part-way would otherwise
  publish a partial object under the final name. The manifest is the commit point: a
  crash before it leaves the previous snapshot the latest, and at worst an orphan
  object that pruning deletes;
- reading never returns wrong data: the object's size, the row count and a SHA-256 of
  the decoded content must match the manifest and the file's own metadata, and the
  Parquet pages carry CRCs; any mismatch raises ``SnapshotCorruptError``;
- an unknown schema version is refused, never misread;
- one writer per owner (the replica or journal leader that owns it); readers may run
  at any time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from dsqlbench.components.journal import Journal
from dsqlbench.components.messages import JournalEntry
from dsqlbench.components.storage import StorageReplica

SCHEMA_VERSION = 1
STORAGE = "storage"
JOURNAL = "journal"
MANIFEST = "MANIFEST.json"
_TMP_PREFIX = ".tmp-"
_KEY_WIDTH_MIN_BYTES = 8
_META = "dsqlbench."


class SnapshotError(Exception):
    """A snapshot cannot be written or read as asked (bad argument, missing object)."""


class SnapshotCorruptError(SnapshotError):
    """A snapshot or manifest is truncated, corrupted or of an unknown schema version."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One committed snapshot, as its manifest records it.

    ``owner`` is the storage shard or the journal index. Storage snapshots hold every
    version at or below ``applied_watermark_ns`` and none above. Journal segments hold
    the entries at positions ``[first_position, upto_position)``; ``last_ts_ns`` is the
    timestamp of the entry at ``upto_position - 1`` (0 when none was ever archived).
    """

    kind: str
    owner: int
    seq: int  # 1, 2, ... per owner, in write order
    name: str
    object_name: str  # inside the owner's folder, so a store can be moved whole
    row_count: int
    checksum: str  # "sha256:<hex>" of the decoded content
    size_bytes: int
    applied_watermark_ns: int = 0
    first_position: int = 0
    upto_position: int = 0
    last_ts_ns: int = 0
    schema_version: int = SCHEMA_VERSION

    @property
    def label(self) -> str:
        """A short name for messages: ``storage/00003/0000000002-x.parquet``."""
        return f"{self.kind}/{self.owner:05d}/{self.object_name}"

    @property
    def shard(self) -> int:
        assert self.kind == STORAGE
        return self.owner

    @property
    def journal(self) -> int:
        assert self.kind == JOURNAL
        return self.owner


@dataclass(frozen=True, slots=True)
class JournalSegment:
    """Entries of journal ``journal`` at positions ``first_position, first_position+1, ...``."""

    journal: int
    first_position: int
    entries: tuple[JournalEntry, ...]

    @property
    def upto_position(self) -> int:
        return self.first_position + len(self.entries)

    def positioned(self):
        """``(position, entry)`` pairs, in log order."""
        return zip(range(self.first_position, self.upto_position), self.entries)


# -- the store -------------------------------------------------------------------------


class SnapshotStore:
    """Snapshots of storage shards and journals under one root of a ``pyarrow.fs``."""

    def __init__(self, uri: str):
        self.uri = uri
        self.fs, self.root = _open_filesystem(uri)
        self._made_dirs: dict[str, None] = {}

    # -- storage shards ----------------------------------------------------------------
    def write_storage_snapshot(self, replica: StorageReplica, name: str) -> SnapshotInfo:
        """Write every version ``replica`` holds; returns the committed snapshot."""
        payload, fields = _encode_storage(replica)
        return self._commit(STORAGE, replica.shard, name, payload, fields)

    def latest_storage_snapshot(self, shard: int) -> SnapshotInfo | None:
        return self._latest(STORAGE, shard)

    def list_storage_snapshots(self, shard: int) -> list[SnapshotInfo]:
        return self._manifest(STORAGE, shard)

    def read_storage_snapshot(self, info: SnapshotInfo, replica_name: str | None = None
                              ) -> StorageReplica:
        """The replica ``info`` describes, verified; raises ``SnapshotCorruptError``."""
        _expect_kind(info, STORAGE)
        metadata, table = self._read_table(info)
        name = replica_name if replica_name is not None else f"storage-{info.owner}"
        return _decode_storage(info, metadata, table, name)

    def prune_storage_snapshots(self, shard: int, keep: int) -> list[SnapshotInfo]:
        return self._prune(STORAGE, shard, keep)

    # -- journals ----------------------------------------------------------------------
    def write_journal_snapshot(self, journal: Journal, upto_position: int,
                               name: str = "segment") -> SnapshotInfo:
        """Archive the journal's entries below ``upto_position`` not yet archived.

        The segment starts where the latest one ended (or at the journal's base, if the
        journal was trimmed past that), so consecutive segments tile the log. When
        nothing new lies below ``upto_position``, nothing is written and the latest
        segment is returned.
        """
        end = journal.base_position + len(journal.entries)
        if not journal.base_position <= upto_position <= end:
            raise SnapshotError(f"journal {journal.index}: position {upto_position} outside "
                                f"[{journal.base_position}, {end}]")
        latest = self._latest(JOURNAL, journal.index)
        first = journal.base_position if latest is None else max(
            journal.base_position, latest.upto_position)
        if latest is not None and first >= upto_position:
            return latest
        base = journal.base_position
        entries = journal.entries[first - base:upto_position - base]
        last_ts_ns = entries[-1].ts_ns if entries else (latest.last_ts_ns if latest else 0)
        payload, fields = _encode_journal(journal.index, first, entries, last_ts_ns)
        return self._commit(JOURNAL, journal.index, name, payload, fields)

    def latest_journal_snapshot(self, journal_index: int) -> SnapshotInfo | None:
        return self._latest(JOURNAL, journal_index)

    def list_journal_snapshots(self, journal_index: int) -> list[SnapshotInfo]:
        return self._manifest(JOURNAL, journal_index)

    def read_journal_snapshot(self, info: SnapshotInfo) -> JournalSegment:
        _expect_kind(info, JOURNAL)
        metadata, table = self._read_table(info)
        return _decode_journal(info, metadata, table)

    def journal_covered_position(self, journal_index: int) -> int:
        """Entries below this position are archived (0 when nothing is)."""
        latest = self._latest(JOURNAL, journal_index)
        return 0 if latest is None else latest.upto_position

    def prune_journal_snapshots(self, journal_index: int, keep: int) -> list[SnapshotInfo]:
        """Drop all but the newest ``keep`` segments: history then starts later."""
        return self._prune(JOURNAL, journal_index, keep)

    # -- commit protocol: object, then manifest ---------------------------------------
    def _commit(self, kind: str, owner: int, name: str, payload: bytes,
                fields: dict) -> SnapshotInfo:
        committed = self._manifest(kind, owner)
        seq = committed[-1].seq + 1 if committed else 1
        info = SnapshotInfo(kind=kind, owner=owner, seq=seq, name=name,
                            object_name=f"{seq:010d}-{_safe_name(name)}.parquet",
                            size_bytes=len(payload), **fields)
        self._put_atomically(self.object_path(info), payload)
        # The commit point: until the manifest names it, the object is an orphan.
        self._write_manifest(kind, owner, [*committed, info])
        return info

    def _put_atomically(self, path: str, payload: bytes) -> None:
        """Whole object at ``path`` or nothing there: a temporary name, then a move."""
        folder, _, base = path.rpartition("/")
        self._ensure_dir(folder)
        temporary = f"{folder}/{_TMP_PREFIX}{base}"
        try:
            with self.fs.open_output_stream(temporary) as out:
                out.write(payload)
            self.fs.move(temporary, path)
        except BaseException:
            _delete_quietly(self.fs, temporary)
            raise

    def _ensure_dir(self, folder: str) -> None:
        # Object stores need no folders, local ones do; creating once per store is enough.
        if folder not in self._made_dirs:
            self.fs.create_dir(folder, recursive=True)
            self._made_dirs[folder] = None

    # -- manifests ---------------------------------------------------------------------
    def object_path(self, info: SnapshotInfo) -> str:
        """Where the snapshot's object lives in ``self.fs``."""
        return f"{self._folder(info.kind, info.owner)}/{info.object_name}"

    def _folder(self, kind: str, owner: int) -> str:
        assert kind in (STORAGE, JOURNAL) and owner >= 0
        return f"{self.root}/{kind}/{owner:05d}"

    def _latest(self, kind: str, owner: int) -> SnapshotInfo | None:
        committed = self._manifest(kind, owner)
        return committed[-1] if committed else None

    def _manifest(self, kind: str, owner: int) -> list[SnapshotInfo]:
        path = f"{self._folder(kind, owner)}/{MANIFEST}"
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return []
        with self.fs.open_input_stream(path) as stream:
            raw = stream.read()
        return _parse_manifest(path, raw, kind, owner)

    def _write_manifest(self, kind: str, owner: int, snapshots: list[SnapshotInfo]) -> None:
        document = {"schema_version": SCHEMA_VERSION, "kind": kind, "owner": owner,
                    "snapshots": [dataclasses.asdict(s) for s in snapshots]}
        raw = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()
        self._put_atomically(f"{self._folder(kind, owner)}/{MANIFEST}", raw)

    def _prune(self, kind: str, owner: int, keep: int) -> list[SnapshotInfo]:
        """Keep the newest ``keep``; delete the rest, and orphans and leftovers."""
        if keep < 1:
            raise SnapshotError(f"keep must be at least 1, not {keep}")
        committed = self._manifest(kind, owner)
        kept, dropped = committed[-keep:], committed[:-keep]
        if dropped:
            self._write_manifest(kind, owner, kept)  # unlist first, then delete
        folder = self._folder(kind, owner)
        referenced = {self.object_path(s) for s in kept} | {f"{folder}/{MANIFEST}"}
        selector = pafs.FileSelector(folder, allow_not_found=True)
        for item in sorted(self.fs.get_file_info(selector), key=lambda i: i.path):
            if item.type == pafs.FileType.File and item.path not in referenced:
                self.fs.delete_file(item.path)
        return dropped

    # -- reading -----------------------------------------------------------------------
    def _read_table(self, info: SnapshotInfo) -> tuple[dict[str, str], pa.Table]:
        try:
            with self.fs.open_input_stream(self.object_path(info)) as stream:
                raw = stream.read()
        except FileNotFoundError as missing:
            raise SnapshotError(f"{info.label}: snapshot object is missing") from missing
        if len(raw) != info.size_bytes:
            raise SnapshotCorruptError(
                f"{info.label}: {len(raw)} bytes, the manifest says {info.size_bytes} (truncated?)")
        try:
            parquet = pq.ParquetFile(pa.BufferReader(raw), page_checksum_verification=True)
            table = parquet.read()
        except (pa.ArrowException, OSError, ValueError) as broken:
            raise SnapshotCorruptError(f"{info.label}: not a readable Parquet file: {broken}"
                                       ) from broken
        raw_metadata = parquet.metadata.metadata or {}
        metadata = {k.decode(errors="replace"): v.decode(errors="replace")
                    for k, v in raw_metadata.items()
                    if k.startswith(_META.encode())}
        _check_metadata(info, metadata, table.num_rows)
        return metadata, table


def _open_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A local path (relative or absolute) or any URI ``pyarrow.fs`` understands."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), _absolute(uri)
    filesystem, root = pafs.FileSystem.from_uri(uri)
    return filesystem, root.rstrip("/")


def _absolute(path: str) -> str:
    return os.path.abspath(path).rstrip("/") or "/"


def _delete_quietly(filesystem: pafs.FileSystem, path: str) -> None:
    # Cleanup after a failed write must not hide the failure that caused it.
    try:
        filesystem.delete_file(path)
    except Exception:  # noqa: BLE001 - the original exception is re-raised by the caller
        pass


def _safe_name(name: str) -> str:
    """Replica names such as ``storage-0@0/az1`` become one safe object-name part."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "snapshot"


def _expect_kind(info: SnapshotInfo, kind: str) -> None:
    if info.kind != kind:
        raise SnapshotError(f"{info.label}: a {info.kind} snapshot, not a {kind} snapshot")


def _parse_manifest(path: str, raw: bytes, kind: str, owner: int) -> list[SnapshotInfo]:
    try:
        document = json.loads(raw)
        if document.get("schema_version") != SCHEMA_VERSION:
            raise SnapshotCorruptError(
                f"{path}: schema version {document.get('schema_version')!r}, "
                f"this build reads {SCHEMA_VERSION}")
        snapshots = [SnapshotInfo(**item) for item in document["snapshots"]]
    except SnapshotCorruptError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as broken:
        raise SnapshotCorruptError(f"{path}: unreadable manifest: {broken}") from broken
    if document.get("kind") != kind or document.get("owner") != owner or any(
            s.kind != kind or s.owner != owner for s in snapshots):
        raise SnapshotCorruptError(f"{path}: manifest is not for {kind} {owner}")
    return snapshots


def _check_metadata(info: SnapshotInfo, metadata: dict[str, str], rows: int) -> None:
    """The file says what the manifest says; a known schema; the row count holds."""
    version = metadata.get(_META + "schema_version")
    if version != str(SCHEMA_VERSION):
        raise SnapshotCorruptError(f"{info.label}: schema version {version!r}, "
                                   f"this build reads {SCHEMA_VERSION}")
    expected = _metadata_fields(info)
    for key, value in expected.items():
        if metadata.get(_META + key) != value:
            raise SnapshotCorruptError(f"{info.label}: metadata {key} is "
                                       f"{metadata.get(_META + key)!r}, expected {value!r}")
    if rows != info.row_count:
        raise SnapshotCorruptError(f"{info.label}: {rows} rows, expected {info.row_count}")


def _metadata_fields(info: SnapshotInfo) -> dict[str, str]:
    fields = {"kind": info.kind, "owner": str(info.owner), "row_count": str(info.row_count),
              "checksum": info.checksum}
    if info.kind == STORAGE:
        fields["applied_watermark_ns"] = str(info.applied_watermark_ns)
    else:
        fields.update(first_position=str(info.first_position),
                      upto_position=str(info.upto_position), last_ts_ns=str(info.last_ts_ns))
    return fields


# -- encoding: keys, checksums, Parquet ------------------------------------------------


def key_width_bytes(keys) -> int:
    """Bytes per key for big-endian fixed-width encoding: at least 8, enough for all."""
    widest = max(keys, default=0)
    return max(_KEY_WIDTH_MIN_BYTES, (widest.bit_length() + 7) // 8)


def _encode_keys(keys: list[int], width: int) -> list[bytes]:
    if keys and min(keys) < 0:
        raise SnapshotError(f"keys must be non-negative, got {min(keys)}")
    return [key.to_bytes(width, "big") for key in keys]


def _content_checksum(*sections: bytes) -> str:
    """SHA-256 over length-prefixed sections, so no two contents share a byte stream."""
    digest = hashlib.sha256()
    for section in sections:
        digest.update(len(section).to_bytes(8, "little"))
        digest.update(section)
    return "sha256:" + digest.hexdigest()


def _int64s(values) -> bytes:
    return np.asarray(values, dtype=np.int64).tobytes()


def _value_sections(values: list[bytes | None]) -> tuple[bytes, bytes]:
    """Value lengths (-1 for a delete) and the values joined."""
    lengths = [-1 if v is None else len(v) for v in values]
    return _int64s(lengths), b"".join(v for v in values if v is not None)


def _storage_checksum(key_bytes: list[bytes], ts: list[int], values: list[bytes | None]) -> str:
    lengths, joined = _value_sections(values)
    return _content_checksum(b"".join(key_bytes), _int64s(ts), lengths, joined)


def _to_parquet(table: pa.Table, metadata: dict[str, str]) -> bytes:
    table = table.replace_schema_metadata({_META + k: v for k, v in metadata.items()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_page_checksum=True)
    return sink.getvalue().to_pybytes()


def _storage_schema(width: int) -> pa.Schema:
    return pa.schema([("key", pa.binary(width)), ("t_commit_ns", pa.int64()),
                      ("value", pa.binary())])


def _encode_storage(replica: StorageReplica) -> tuple[bytes, dict]:
    assert len(replica.sorted_keys) == len(replica.versions), "sorted_keys out of step"
    keys, ts, values = [], [], []
    for key in replica.sorted_keys:
        for t_commit_ns, value in replica.versions[key]:
            keys.append(key)
            ts.append(t_commit_ns)
            values.append(value)
    width = key_width_bytes(keys)
    key_bytes = _encode_keys(keys, width)
    checksum = _storage_checksum(key_bytes, ts, values)
    table = pa.table([pa.array(key_bytes, pa.binary(width)), pa.array(ts, pa.int64()),
                      pa.array(values, pa.binary())], schema=_storage_schema(width))
    fields = {"row_count": len(keys), "checksum": checksum,
              "applied_watermark_ns": replica.applied_watermark_ns}
    metadata = {"kind": STORAGE, "schema_version": str(SCHEMA_VERSION),
                "owner": str(replica.shard), "row_count": str(len(keys)),
                "checksum": checksum, "key_width_bytes": str(width),
                "applied_watermark_ns": str(replica.applied_watermark_ns)}
    return _to_parquet(table, metadata), fields


def _key_width_of(info: SnapshotInfo, metadata: dict[str, str]) -> int:
    try:
        width = int(metadata[_META + "key_width_bytes"])
    except (KeyError, ValueError) as broken:
        raise SnapshotCorruptError(f"{info.label}: no valid key width in metadata") from broken
    if width < _KEY_WIDTH_MIN_BYTES:
        raise SnapshotCorruptError(f"{info.label}: key width {width} below the minimum")
    return width


def _decode_storage(info: SnapshotInfo, metadata: dict[str, str], table: pa.Table,
                    name: str) -> StorageReplica:
    width = _key_width_of(info, metadata)
    if not table.schema.remove_metadata().equals(_storage_schema(width)):
        raise SnapshotCorruptError(f"{info.label}: unexpected columns {table.schema}")
    key_bytes = table.column("key").to_pylist()
    ts = table.column("t_commit_ns").to_pylist()
    values = table.column("value").to_pylist()
    if _storage_checksum(key_bytes, ts, values) != info.checksum:
        raise SnapshotCorruptError(f"{info.label}: content checksum mismatch")
    replica = StorageReplica(info.owner, name)
    _fill_replica(replica, info, [int.from_bytes(k, "big") for k in key_bytes], ts, values)
    return replica


def _fill_replica(replica: StorageReplica, info: SnapshotInfo, keys: list[int],
                  ts: list[int], values: list) -> None:
    """Versions in (key, t_commit) order, all at or below the watermark, as written."""
    watermark = info.applied_watermark_ns
    previous_key, previous_ts = -1, -1
    for key, t_commit_ns, value in zip(keys, ts, values):
        in_order = key > previous_key or (key == previous_key and t_commit_ns > previous_ts)
        if not in_order or t_commit_ns > watermark:
            raise SnapshotCorruptError(f"{info.label}: version ({key}, {t_commit_ns}) out of "
                                       f"order or above the watermark {watermark}")
        if key != previous_key:
            replica.versions[key] = [(t_commit_ns, value)]
            replica.sorted_keys.append(key)
        else:
            replica.versions[key].append((t_commit_ns, value))
            replica.multi_version_keys[key] = None
        previous_key, previous_ts = key, t_commit_ns
    replica.applied_watermark_ns = watermark


def _journal_schema(width: int) -> pa.Schema:
    write = pa.struct([("key", pa.binary(width)), ("value", pa.binary())])
    return pa.schema([("position", pa.int64()), ("ts_ns", pa.int64()), ("txn_id", pa.int64()),
                      ("decided_true_ns", pa.int64()), ("writes", pa.list_(write))])


def _journal_checksum(columns: dict[str, list], counts: list[int], key_bytes: list[bytes],
                      values: list) -> str:
    lengths, joined = _value_sections(values)
    return _content_checksum(*(_int64s(columns[c]) for c in ("position", "ts_ns", "txn_id",
                                                              "decided_true_ns")),
                             _int64s(counts), b"".join(key_bytes), lengths, joined)


def _encode_journal(index: int, first: int, entries: list[JournalEntry],
                    last_ts_ns: int) -> tuple[bytes, dict]:
    columns = {"position": list(range(first, first + len(entries))),
               "ts_ns": [e.ts_ns for e in entries], "txn_id": [e.txn_id for e in entries],
               "decided_true_ns": [e.decided_true_ns for e in entries]}
    counts = [len(e.writes) for e in entries]
    keys = [key for e in entries for key, _ in e.writes]
    values = [value for e in entries for _, value in e.writes]
    width = key_width_bytes(keys)
    key_bytes = _encode_keys(keys, width)
    checksum = _journal_checksum(columns, counts, key_bytes, values)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int32))
    writes = pa.StructArray.from_arrays(
        [pa.array(key_bytes, pa.binary(width)), pa.array(values, pa.binary())], ["key", "value"])
    schema = _journal_schema(width)
    arrays = [pa.array(columns[c], pa.int64()) for c in columns]
    arrays.append(pa.ListArray.from_arrays(offsets, writes, type=schema.field("writes").type))
    table = pa.table(arrays, schema=schema)
    upto = first + len(entries)
    fields = {"row_count": len(entries), "checksum": checksum, "first_position": first,
              "upto_position": upto, "last_ts_ns": last_ts_ns}
    metadata = {"kind": JOURNAL, "schema_version": str(SCHEMA_VERSION), "owner": str(index),
                "row_count": str(len(entries)), "checksum": checksum,
                "key_width_bytes": str(width), "first_position": str(first),
                "upto_position": str(upto), "last_ts_ns": str(last_ts_ns)}
    return _to_parquet(table, metadata), fields


def _decode_journal(info: SnapshotInfo, metadata: dict[str, str], table: pa.Table
                    ) -> JournalSegment:
    width = _key_width_of(info, metadata)
    if not table.schema.remove_metadata().equals(_journal_schema(width)):
        raise SnapshotCorruptError(f"{info.label}: unexpected columns {table.schema}")
    columns = {c: table.column(c).to_pylist()
               for c in ("position", "ts_ns", "txn_id", "decided_true_ns")}
    writes = table.column("writes").combine_chunks()
    if writes.null_count:
        raise SnapshotCorruptError(f"{info.label}: null write lists")
    offsets = writes.offsets.to_pylist()
    flat = writes.flatten()
    key_bytes = flat.field("key").to_pylist()
    values = flat.field("value").to_pylist()
    counts = [b - a for a, b in zip(offsets, offsets[1:])]
    if _journal_checksum(columns, counts, key_bytes, values) != info.checksum:
        raise SnapshotCorruptError(f"{info.label}: content checksum mismatch")
    return JournalSegment(info.owner, info.first_position,
                          _entries(info, columns, counts, key_bytes, values))


def _entries(info: SnapshotInfo, columns: dict[str, list], counts: list[int],
             key_bytes: list[bytes], values: list) -> tuple[JournalEntry, ...]:
    """Rebuild entries; positions must tile the segment and timestamps increase."""
    if columns["position"] != list(range(info.first_position, info.upto_position)):
        raise SnapshotCorruptError(f"{info.label}: positions do not tile "
                                   f"[{info.first_position}, {info.upto_position})")
    ts = columns["ts_ns"]
    if any(a >= b for a, b in zip(ts, ts[1:])) or (ts and ts[-1] != info.last_ts_ns):
        raise SnapshotCorruptError(f"{info.label}: timestamps out of order")
    entries = []
    at = 0
    for ts_ns, txn_id, decided, count in zip(ts, columns["txn_id"],
                                             columns["decided_true_ns"], counts):
        writes = tuple((int.from_bytes(key_bytes[i], "big"), values[i])
                       for i in range(at, at + count))
        entries.append(JournalEntry(ts_ns, txn_id, writes, decided))
        at += count
    return tuple(entries)
