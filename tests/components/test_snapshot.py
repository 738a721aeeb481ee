"""Snapshots to object storage: round trips, atomic commits, corruption caught, S3.

The S3 tests run against moto's S3-compatible server, started here on 127.0.0.1.
"""

import dataclasses
import logging
import tempfile

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.components.journal import Journal
from dsqlbench.components.messages import JournalEntry, StorageBatch
from dsqlbench.components.recovery import model_from_journals, restore_storage
from dsqlbench.components.routing import KeyRanges
from dsqlbench.components.snapshot import (
    MANIFEST,
    SnapshotCorruptError,
    SnapshotError,
    SnapshotStore,
    key_width_bytes,
)
from dsqlbench.components.storage import StorageReplica

# Keys of every width the lab uses: int64 ones and wide SQL keys.
keys_any = st.one_of(st.integers(0, 2**63 - 1), st.integers(2**63, 2**200))
values_any = st.one_of(st.none(), st.binary(max_size=12))


def state(replica):
    """Everything a replica answers reads from, as one comparable value."""
    return (replica.shard, replica.applied_watermark_ns, replica.versions,
            replica.sorted_keys, set(replica.multi_version_keys))


@st.composite
def replicas(draw):
    shard = draw(st.integers(0, 40))
    history = draw(st.dictionaries(
        keys_any, st.lists(st.tuples(st.integers(1, 10**12), values_any), min_size=1,
                           max_size=4, unique_by=lambda v: v[0]), max_size=12))
    records = sorted((ts, key, value) for key, versions in history.items()
                     for ts, value in versions)
    top_ns = max((r[0] for r in records), default=0)
    watermark_ns = draw(st.integers(top_ns, top_ns + 10**6))
    replica = StorageReplica(shard, f"storage-{shard}@0/az{shard % 3}")
    replica.apply(StorageBatch(shard, watermark_ns, tuple(r[1] for r in records),
                               tuple(r[0] for r in records), tuple(r[2] for r in records)))
    return replica


def a_replica(shard=0, watermark_ns=100, salt=b""):
    replica = StorageReplica(shard, f"storage-{shard}")
    replica.load([1, 2, 2**90], [b"a" + salt, b"b" + salt, None], 1)
    replica.apply(StorageBatch(shard, watermark_ns, (1, 5), (50, 60), (b"a50" + salt, None)))
    return replica


def a_journal(index=0, count=6):
    journal = Journal(index, 3)
    for i in range(count):
        ts = 10 * (i + 1)
        key = 100 * index + i  # journals write different keys at equal times
        writes = () if i % 3 == 2 else ((key, f"v{ts}".encode()), (2**70 + key, None))
        journal.append(JournalEntry(ts, -1 if not writes else i, writes, decided_true_ns=ts - 1))
    return journal


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(str(tmp_path / "snapshots"))


# -- round trips -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(replicas())
def test_storage_snapshot_round_trips_exactly(replica):
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(folder)
        info = store.write_storage_snapshot(replica, replica.name)
        assert info.shard == replica.shard
        assert info.applied_watermark_ns == replica.applied_watermark_ns
        assert info.row_count == sum(len(v) for v in replica.versions.values())
        assert store.latest_storage_snapshot(replica.shard) == info
        restored = store.read_storage_snapshot(info, replica.name)
    assert state(restored) == state(replica)
    assert restored.name == replica.name


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 1000), st.one_of(st.just(()), st.lists(
    st.tuples(keys_any, values_any), max_size=4, unique_by=lambda w: w[0]).map(tuple))),
    max_size=20), st.lists(st.integers(0, 20), max_size=4), st.integers(0, 20))
def test_journal_segments_tile_the_log_and_round_trip(gaps, cuts, trim_at):
    journal = Journal(2, 3)
    ts = 0
    for i, (gap, writes) in enumerate(gaps):
        ts += gap
        journal.append(JournalEntry(ts, i if writes else -1, writes, decided_true_ns=ts // 2))
    original = list(journal.entries)
    end = len(original)
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(folder)
        for cut in sorted(min(c, end) for c in cuts):
            info = store.write_journal_snapshot(journal, cut)
            assert store.journal_covered_position(2) == info.upto_position >= cut
        covered = store.journal_covered_position(2)
        journal.trim_before(min(trim_at, covered, end))  # only what is archived
        store.write_journal_snapshot(journal, end)
        segments = [store.read_journal_snapshot(i) for i in store.list_journal_snapshots(2)]
    archived = [entry for segment in segments for entry in segment.entries]
    assert archived == original
    assert [s.first_position for s in segments] == [
        sum(len(s.entries) for s in segments[:i]) for i in range(len(segments))]

def test_journal_segments_store_every_field_of_an_entry():
    """A field added to JournalEntry must be added to the segment schema too."""
    assert [f.name for f in dataclasses.fields(JournalEntry)] == [
        "ts_ns", "txn_id", "writes", "decided_true_ns"]


def test_empty_replica_and_empty_journal_round_trip(store):
    empty = StorageReplica(3, "storage-3")
    info = store.write_storage_snapshot(empty, "empty")
    assert info.row_count == 0
    assert state(store.read_storage_snapshot(info)) == state(empty)
    segment = store.read_journal_snapshot(store.write_journal_snapshot(Journal(1, 3), 0))
    assert segment.entries == () and segment.first_position == 0


def test_keys_wider_than_64_bits_keep_their_order_and_value(store):
    replica = StorageReplica(0, "storage-0")
    keys = [0, 1, 2**63 - 1, 2**63, 2**64, 2**64 + 1, 2**127, 2**200 + 5]
    replica.load(keys, [str(k).encode() for k in keys], 7)
    info = store.write_storage_snapshot(replica, "wide")
    restored = store.read_storage_snapshot(info)
    assert restored.sorted_keys == keys
    assert all(restored.read(k, 7) == (7, str(k).encode()) for k in keys)
    assert key_width_bytes(keys) == 26 and key_width_bytes([5]) == 8


def test_negative_keys_are_refused(store):
    replica = StorageReplica(0, "storage-0")
    replica.load([-1], [b"x"], 1)
    with pytest.raises(SnapshotError, match="non-negative"):
        store.write_storage_snapshot(replica, "bad")
    assert store.latest_storage_snapshot(0) is None


# -- listing, latest, pruning ------------------------------------------------------------


def test_latest_is_the_newest_committed_and_prune_keeps_n(store):
    assert store.latest_storage_snapshot(0) is None
    infos = [store.write_storage_snapshot(a_replica(watermark_ns=100 * i), f"s{i}")
             for i in (1, 2, 3)]
    assert [i.seq for i in store.list_storage_snapshots(0)] == [1, 2, 3]
    assert store.latest_storage_snapshot(0) == infos[-1]
    assert store.latest_storage_snapshot(1) is None  # shards are independent
    dropped = store.prune_storage_snapshots(0, keep=2)
    assert dropped == infos[:1]
    assert store.list_storage_snapshots(0) == infos[1:]
    assert _objects(store, "storage", 0) == sorted([MANIFEST, *(i.object_name for i in infos[1:])])
    assert store.read_storage_snapshot(infos[1]).applied_watermark_ns == 200
    next_info = store.write_storage_snapshot(a_replica(watermark_ns=400), "s4")
    assert next_info.seq == 4
    with pytest.raises(SnapshotError):
        store.prune_storage_snapshots(0, keep=0)


def test_store_opens_a_file_uri_and_a_relative_path(tmp_path, monkeypatch):
    SnapshotStore((tmp_path / "a").as_uri()).write_storage_snapshot(a_replica(), "x")
    assert SnapshotStore(str(tmp_path / "a")).latest_storage_snapshot(0).row_count == 5
    monkeypatch.chdir(tmp_path)
    assert SnapshotStore("a").latest_storage_snapshot(0).row_count == 5


def test_replica_names_with_slashes_become_one_object(store):
    info = store.write_storage_snapshot(a_replica(), "storage-0@1/az2")
    assert info.name == "storage-0@1/az2" and "/" not in info.object_name


def test_journal_snapshot_with_nothing_new_writes_nothing(store):
    journal = a_journal()
    first = store.write_journal_snapshot(journal, 4)
    assert store.write_journal_snapshot(journal, 4) == first
    assert store.write_journal_snapshot(journal, 2) == first
    with pytest.raises(SnapshotError):
        store.write_journal_snapshot(journal, 7)  # past the end


# -- atomicity -------------------------------------------------------------------------


class _FailingStream:
    """Writes half of what it is given, then fails: a crash mid-upload."""

    def __init__(self, stream):
        self._stream = stream

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stream.close()
        return False

    def write(self, data):
        self._stream.write(data[:len(data) // 2])
        raise OSError("injected: connection lost mid-write")


class FailingFileSystem:
    """A ``pyarrow.fs`` stand-in that fails one operation on matching paths."""

    def __init__(self, inner, operation, path_contains, cleanup_fails=False):
        self._inner = inner
        self.operation = operation
        self.path_contains = path_contains
        self.cleanup_fails = cleanup_fails

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _hit(self, operation, path):
        return operation == self.operation and self.path_contains in path

    def open_output_stream(self, path, *args, **kwargs):
        stream = self._inner.open_output_stream(path, *args, **kwargs)
        return _FailingStream(stream) if self._hit("write", path) else stream

    def move(self, src, dest):
        if self._hit("move", dest):
            raise OSError("injected: move failed")
        return self._inner.move(src, dest)

    def delete_file(self, path):
        if self.cleanup_fails:
            raise OSError("injected: crashed before cleanup")
        return self._inner.delete_file(path)


@pytest.mark.parametrize("operation, target, cleanup_fails", [
    ("write", ".parquet", False),   # the snapshot object's upload breaks
    ("write", ".parquet", True),    # ... and the writer dies before cleaning up
    ("move", ".parquet", False),    # the object never reaches its name
    ("write", MANIFEST, False),     # the object is in place, the commit point is not
    ("move", MANIFEST, True),
])
def test_a_failed_write_leaves_the_previous_snapshot(store, operation, target, cleanup_fails):
    before = store.write_storage_snapshot(a_replica(watermark_ns=100), "good")
    healthy = store.fs
    store.fs = FailingFileSystem(healthy, operation, target, cleanup_fails)
    with pytest.raises(OSError, match="injected"):
        store.write_storage_snapshot(a_replica(watermark_ns=200, salt=b"new"), "doomed")
    store.fs = healthy
    assert store.list_storage_snapshots(0) == [before]
    assert state(store.read_storage_snapshot(before)) == state(a_replica(watermark_ns=100))
    # Nothing partial under a snapshot's name; leftovers are hidden, then pruned.
    for name in _objects(store, "storage", 0):
        assert name in (MANIFEST, before.object_name) or name.startswith(".tmp-") or (
            name.endswith("-doomed.parquet") and target == MANIFEST)
    store.prune_storage_snapshots(0, keep=5)
    assert _objects(store, "storage", 0) == sorted([MANIFEST, before.object_name])
    after = store.write_storage_snapshot(a_replica(watermark_ns=300), "next")
    assert store.latest_storage_snapshot(0) == after
    assert store.read_storage_snapshot(after).applied_watermark_ns == 300


def _objects(store, kind, owner):
    selector = pafs.FileSelector(f"{store.root}/{kind}/{owner:05d}", allow_not_found=True)
    return sorted(i.base_name for i in store.fs.get_file_info(selector)
                  if i.type == pafs.FileType.File)


# -- corruption ------------------------------------------------------------------------


def _overwrite(store, path, raw):
    with store.fs.open_output_stream(path) as out:
        out.write(raw)


def _read_object(store, path):
    with store.fs.open_input_stream(path) as stream:
        return stream.read()


def test_every_flipped_byte_is_caught_or_harmless(store):
    """A bit flip anywhere in a snapshot gives an error or the right data, never wrong."""
    original = a_replica()
    info = store.write_storage_snapshot(original, "x")
    path = store.object_path(info)
    raw = _read_object(store, path)
    caught, tried = 0, range(0, len(raw), 3)
    for at in tried:
        _overwrite(store, path, raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1:])
        try:
            restored = store.read_storage_snapshot(info)
        except SnapshotCorruptError:
            caught += 1
            continue
        assert state(restored) == state(original), f"wrong data after a flip at byte {at}"
    assert caught > len(tried) // 2  # most bytes matter; the rest are e.g. created_by


def test_well_formed_parquet_with_other_content_is_refused(store):
    """Valid Parquet whose rows differ from what its checksum says: caught by the checksum."""
    info = store.write_storage_snapshot(a_replica(), "x")
    path = store.object_path(info)
    table = pq.read_table(pa.BufferReader(_read_object(store, path)))
    values = table.column("value").to_pylist()
    values[0] = b"tampered"
    tampered = table.set_column(2, "value", pa.array(values, pa.binary()))
    sink = pa.BufferOutputStream()
    pq.write_table(tampered.replace_schema_metadata(table.schema.metadata), sink)
    raw = sink.getvalue().to_pybytes()
    _overwrite(store, path, raw)
    forged = dataclasses.replace(info, size_bytes=len(raw))  # the size alone is no proof
    with pytest.raises(SnapshotCorruptError, match="checksum"):
        store.read_storage_snapshot(forged)


@pytest.mark.parametrize("kind", ["storage", "journal"])
def test_truncated_snapshots_are_caught(store, kind):
    if kind == "storage":
        info = store.write_storage_snapshot(a_replica(), "x")
        read = store.read_storage_snapshot
    else:
        info = store.write_journal_snapshot(a_journal(), 5)
        read = store.read_journal_snapshot
    path = store.object_path(info)
    raw = _read_object(store, path)
    for keep in (0, 4, len(raw) // 2, len(raw) - 1):
        _overwrite(store, path, raw[:keep])
        with pytest.raises(SnapshotCorruptError, match="truncated"):
            read(info)


def test_flipped_journal_bytes_are_caught_or_harmless(store):
    journal = a_journal()
    info = store.write_journal_snapshot(journal, 6)
    path = store.object_path(info)
    raw = _read_object(store, path)
    for at in range(0, len(raw), 5):
        _overwrite(store, path, raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:])
        try:
            segment = store.read_journal_snapshot(info)
        except SnapshotCorruptError:
            continue
        assert list(segment.entries) == journal.entries, f"wrong data after a flip at {at}"


def test_a_broken_or_unknown_manifest_is_refused(store):
    store.write_storage_snapshot(a_replica(), "x")
    path = f"{store.root}/storage/00000/{MANIFEST}"
    raw = _read_object(store, path)
    _overwrite(store, path, raw[:len(raw) // 2])
    with pytest.raises(SnapshotCorruptError, match="manifest"):
        store.latest_storage_snapshot(0)
    _overwrite(store, path, raw.replace(b'"schema_version": 1', b'"schema_version": 99', 1))
    with pytest.raises(SnapshotCorruptError, match="schema version 99"):
        store.latest_storage_snapshot(0)


def test_a_snapshot_must_match_its_manifest_entry(store):
    first = store.write_storage_snapshot(a_replica(watermark_ns=100), "a")
    second = store.write_storage_snapshot(a_replica(watermark_ns=200), "b")
    # The right bytes under the wrong name (a misplaced copy) are refused too.
    _overwrite(store, store.object_path(second), _read_object(store, store.object_path(first)))
    with pytest.raises(SnapshotCorruptError):
        store.read_storage_snapshot(second)
    with pytest.raises(SnapshotError, match="not a journal"):
        store.read_journal_snapshot(first)
    store.fs.delete_file(store.object_path(first))
    with pytest.raises(SnapshotError, match="missing"):
        store.read_storage_snapshot(first)


# -- S3, against moto's server ---------------------------------------------------------

BUCKET = "dsqlbench-snapshots"


@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3-compatible HTTP server (moto) on a free local port, with one bucket."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip("moto is not installed (pip install 'moto[server]'): S3 path not tested")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log in test output
    with pytest.MonkeyPatch.context() as env:
        # Dummy credentials, for this module only; pyarrow reads them at connect time.
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"{host}:{port}"
            admin = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http",
                                      region="us-east-1", allow_bucket_creation=True)
            admin.create_dir(BUCKET)
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def s3_store(s3_endpoint, request):
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return SnapshotStore(f"s3://{BUCKET}/runs/{prefix}?endpoint_override={s3_endpoint}"
                         "&scheme=http&region=us-east-1")


def test_s3_store_round_trips_lists_and_prunes(s3_store):
    assert isinstance(s3_store.fs, pafs.S3FileSystem)
    assert s3_store.latest_storage_snapshot(0) is None
    replicas_written = [a_replica(watermark_ns=100 * i, salt=bytes([i])) for i in (1, 2, 3)]
    infos = [s3_store.write_storage_snapshot(r, f"storage-0@{i}/az1")
             for i, r in enumerate(replicas_written)]
    assert s3_store.latest_storage_snapshot(0) == infos[-1]
    assert state(s3_store.read_storage_snapshot(infos[-1])) == state(replicas_written[-1])
    assert s3_store.prune_storage_snapshots(0, keep=1) == infos[:2]
    assert _objects(s3_store, "storage", 0) == sorted([MANIFEST, infos[-1].object_name])
    journal = a_journal(index=1)
    s3_store.write_journal_snapshot(journal, 3)
    s3_store.write_journal_snapshot(journal, 6)
    segments = [s3_store.read_journal_snapshot(i) for i in s3_store.list_journal_snapshots(1)]
    assert [e for s in segments for e in s.entries] == journal.entries
    # A second store on the same URI (a restarted node) sees the same snapshots.
    again = SnapshotStore(s3_store.uri)
    assert again.latest_storage_snapshot(0) == infos[-1]


def test_s3_failed_upload_leaves_the_previous_snapshot(s3_store):
    before = s3_store.write_storage_snapshot(a_replica(watermark_ns=100), "good")
    healthy = s3_store.fs
    s3_store.fs = FailingFileSystem(healthy, "write", ".parquet")
    with pytest.raises(OSError, match="injected"):
        s3_store.write_storage_snapshot(a_replica(watermark_ns=200), "doomed")
    s3_store.fs = healthy
    assert s3_store.list_storage_snapshots(0) == [before]
    assert _objects(s3_store, "storage", 0) == sorted([MANIFEST, before.object_name])
    assert s3_store.read_storage_snapshot(before).applied_watermark_ns == 100


def test_s3_corrupted_and_truncated_objects_are_caught(s3_store):
    info = s3_store.write_storage_snapshot(a_replica(), "x")
    path = s3_store.object_path(info)
    raw = _read_object(s3_store, path)
    _overwrite(s3_store, path, raw[:-10])
    with pytest.raises(SnapshotCorruptError, match="truncated"):
        s3_store.read_storage_snapshot(info)
    middle = len(raw) // 3
    _overwrite(s3_store, path, raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1:])
    with pytest.raises(SnapshotCorruptError):
        s3_store.read_storage_snapshot(info)


def test_s3_restore_equals_the_model(s3_store):
    ranges = KeyRanges([2**64])
    journals = [a_journal(index=0), a_journal(index=1, count=4)]
    upto_ns = 40  # both journals passed it
    for shard in range(ranges.count):
        partial = model_from_journals(journals, shard, ranges, 20)
        s3_store.write_storage_snapshot(partial, f"storage-{shard}")
        replay = [(j, e) for j, journal in enumerate(journals) for e in journal.entries]
        restored = restore_storage(s3_store, shard, replay, ranges, upto_ns=upto_ns)
        assert state(restored) == state(model_from_journals(journals, shard, ranges, upto_ns))
