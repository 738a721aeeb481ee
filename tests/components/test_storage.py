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
