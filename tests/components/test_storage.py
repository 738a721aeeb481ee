"""The storage replica alone: MVCC reads as of a time, scans, watermark, trimming."""

import pytest

from dsqlbench.components.messages import StorageBatch
from dsqlbench.components.storage import StorageReplica


def batch(watermark, *records, shard=0):
    keys = tuple(r[0] for r in records)
    ts = tuple(r[1] for r in records)
    values = tuple(r[2] for r in records)
    return StorageBatch(shard, watermark, keys, ts, values)


@pytest.fixture
def replica():
    r = StorageReplica(0, "storage-0")
    r.load([1, 2, 3], [b"a1", b"b1", b"c1"], 1)
    r.apply(batch(100, (1, 50, b"a50"), (2, 60, None), (4, 70, b"d70")))
    return r


def test_read_returns_newest_version_at_or_before_t(replica):
    assert replica.read(1, 49) == (1, b"a1")
    assert replica.read(1, 50) == (50, b"a50")
    assert replica.read(2, 60) == (60, None)  # deleted at 60
    assert replica.read(4, 69) is None  # not yet inserted
    assert replica.read(9, 100) is None


def test_read_above_the_watermark_is_refused(replica):
    with pytest.raises(AssertionError):
        replica.read(1, 101)


def test_watermark_never_goes_back(replica):
    with pytest.raises(AssertionError):
        replica.apply(batch(99))


def test_versions_must_arrive_in_commit_order(replica):
    with pytest.raises(AssertionError):
        replica.apply(batch(200, (1, 40, b"old")))


def test_scan_skips_deleted_and_future_rows(replica):
    assert replica.scan(1, 10, 65) == [(1, 50, b"a50"), (3, 1, b"c1")]
    assert replica.scan(1, 10, 100) == [(1, 50, b"a50"), (3, 1, b"c1"), (4, 70, b"d70")]
    assert replica.scan(2, 1, 100) == [(3, 1, b"c1")]


def test_trim_keeps_the_newest_version_of_a_live_row(replica):
    replica.apply(batch(300, (1, 200, b"a200"), (1, 250, b"a250")))
    dropped = replica.trim(horizon_ns=220)
    assert replica.versions[1] == [(200, b"a200"), (250, b"a250")]
    assert replica.read(1, 220) == (200, b"a200")  # reads at the horizon stay right
    replica.trim(horizon_ns=1000)
    assert replica.versions[1] == [(250, b"a250")]  # newest kept, however old
    assert 2 not in replica.versions  # a delete older than the horizon goes entirely
    assert dropped >= 2


def test_versions_in_range_walk_keys_in_order_as_of_a_time(replica):
    assert list(replica.versions_in_range(1, 4, 65)) == [(1, (50, b"a50")), (2, (60, None)),
                                                        (3, (1, b"c1"))]
    assert [k for k, _ in replica.versions_in_range(0, 10, 100, descending=True)] == [4, 3, 2, 1]
    assert list(replica.versions_in_range(4, 5, 69)) == []  # key 4 not yet written at 69


# -- the bulk load's columnar base image ----------------------------------------------

import numpy as np  # noqa: E402

from dsqlbench.components.routing import KeyRanges  # noqa: E402
from dsqlbench.components.storage import BaseImage, BulkLoad  # noqa: E402


def _image_replica(keys, pairs=()):
    """A replica loaded with ``pairs`` in its lists and ``keys`` (value b"v<key>",
    padded to 4 bytes) as its image, at t 1; and a twin loaded the classic way."""
    values = np.array([list(f"v{k:03d}".encode()[:4]) for k in keys], np.uint8).reshape(len(keys), 4)
    image = BaseImage(np.array(keys, np.int64), values, 1)
    r = StorageReplica(0, "image")
    r.load([k for k, _ in pairs], [v for _, v in pairs], 1)
    r.load_image(image)
    twin = StorageReplica(0, "lists")
    items = sorted(list(pairs) + [(k, values[i].tobytes()) for i, k in enumerate(keys)])
    twin.load([k for k, _ in items], [v for _, v in items], 1)
    return r, twin


def _same_everywhere(a, b, t, keys):
    for key in keys:
        assert a.read(key, t) == b.read(key, t), key
    for low, high in ((-10, 2**80), (0, 5), (3, 9), (7, 7), (2**70, 2**80)):
        for descending in (False, True):
            assert (list(a.versions_in_range(low, high, t, descending))
                    == list(b.versions_in_range(low, high, t, descending))), (low, high, descending)
    for start in (-5, 0, 3, 6, 11, 2**70):
        for limit in (0, 1, 3, 100):
            assert a.scan(start, limit, t) == b.scan(start, limit, t)


def test_base_image_reads_scans_apply_and_trim_equal_version_lists():
    keys = [1, 2, 3, 5, 8, 9]
    pairs = [(-3, b"neg"), (4, b"four"), (2**75, b"wide")]
    a, b = _image_replica(keys, pairs)
    probe = [-3, 0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 2**75]
    _same_everywhere(a, b, 1, probe)
    updates = batch(100, (2, 50, b"new2"), (3, 60, None), (6, 70, b"six"), (4, 80, None))
    for r in (a, b):
        r.apply(updates)
    assert a.versions[2] == [(1, b"v002"), (50, b"new2")]  # the loaded version copied in
    for t in (1, 49, 50, 60, 100):
        _same_everywhere(a, b, t, probe)
    for horizon in (55, 100):
        assert a.trim(horizon) == b.trim(horizon)
        _same_everywhere(a, b, 100, probe)
    assert 3 not in a.versions and a.read(3, 100) is None  # a loaded key deleted stays gone
    a.apply(batch(200, (3, 150, b"back")))
    b.apply(batch(200, (3, 150, b"back")))
    _same_everywhere(a, b, 200, probe)
    a.materialize()
    assert a.versions == b.versions and a.sorted_keys == b.sorted_keys and a.base is None


def test_bulk_load_splits_like_split_evenly_and_per_shard_covers_every_key():
    rng = np.random.default_rng(5)
    for _ in range(50):
        keys = np.unique(rng.integers(1, 10_000, rng.integers(0, 40)))
        pairs = [(int(k), b"p") for k in rng.integers(20_000, 30_000, 3)] + [(2**70, b"w"), (-1, b"n")]
        load = BulkLoad(pairs, keys.astype(np.int64), np.zeros((len(keys), 2), np.uint8))
        every = keys.tolist() + [k for k, _ in pairs]
        for shards in (1, 2, 3, 7):
            ranges = KeyRanges(load.split(shards))
            assert ranges.boundaries == KeyRanges.split_evenly(every, shards).boundaries
            seen = []
            for shard, (pair_keys, _, image) in enumerate(load.per_shard(ranges)):
                mine = pair_keys + image.keys.tolist()
                assert all(ranges.shard_of(k) == shard for k in mine)
                seen += mine
            assert sorted(seen) == sorted(every)
