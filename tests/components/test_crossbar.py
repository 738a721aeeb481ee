"""The crossbar core alone: watermark, merge order, routing, erasure-coded delivery."""

import numpy as np
import pytest

from dsqlbench import kernels
from dsqlbench.components.crossbar import (
    Crossbar,
    batch_from_bytes,
    batch_to_bytes,
    encode_batch,
    rebuild_batch,
)
from dsqlbench.components.messages import JournalEntry, StorageBatch
from dsqlbench.components.routing import KeyRanges


def entry(ts, *keys):
    return JournalEntry(ts, ts, tuple((k, f"v{ts}".encode()) for k in keys), decided_true_ns=ts)


def heartbeat(ts):
    return JournalEntry(ts, -1)


@pytest.fixture
def crossbar():
    return Crossbar(3, KeyRanges([100]), kernels.merge_until)


def test_nothing_is_released_above_the_watermark(crossbar):
    crossbar.receive(0, [entry(10, 1), entry(30, 2)])
    crossbar.receive(1, [entry(20, 150)])
    watermark, batches = crossbar.release()
    assert watermark == 0  # journal 2 has said nothing yet
    assert all(not b.keys for b in batches)
    crossbar.receive(2, [heartbeat(25)])
    watermark, batches = crossbar.release()
    assert watermark == 20
    assert batches[0].ts == (10,) and batches[1].ts == (20,)
    crossbar.receive(1, [heartbeat(40)])
    crossbar.receive(2, [heartbeat(40)])
    watermark, batches = crossbar.release()
    assert watermark == 30 and batches[0].keys == (2,)


def test_merge_orders_by_commit_time_then_journal(crossbar):
    crossbar.receive(0, [entry(5, 1), entry(9, 2)])
    crossbar.receive(1, [entry(5, 3), entry(7, 4), heartbeat(10)])
    crossbar.receive(2, [heartbeat(100)])
    _, batches = crossbar.release()
    assert batches[0].keys == (1, 3, 4, 2)
    assert batches[0].ts == (5, 5, 7, 9)


def test_routing_sends_each_key_to_its_shard(crossbar):
    crossbar.receive(0, [entry(5, 1, 150, 99)])
    crossbar.receive(1, [heartbeat(9)])
    crossbar.receive(2, [heartbeat(9)])
    _, (low, high) = crossbar.release()
    assert low.keys == (1, 99) and high.keys == (150,)
    assert low.watermark_ns == high.watermark_ns == 5


def test_a_journal_going_backwards_is_a_bug(crossbar):
    crossbar.receive(0, [entry(5, 1)])
    with pytest.raises(AssertionError):
        crossbar.receive(0, [entry(5, 2)])


def sample_batch():
    return StorageBatch(3, 900, (1, 2, 7), (100, 200, 300), (b"abc", None, b"x" * 500), (1, 2, 3))


def test_batch_wire_format_round_trips():
    batch = sample_batch()
    assert batch_from_bytes(batch_to_bytes(batch)) == batch


@pytest.mark.parametrize("k,m", [(2, 1), (4, 2), (6, 3)])
def test_every_arrival_order_rebuilds_the_same_batch(k, m):
    code = kernels.ErasureCode(k, m)
    batch = sample_batch()
    fragmented = encode_batch(batch, code, kernels.split_payload)
    rng = np.random.default_rng(k)
    decoded_any = False
    for _ in range(30):
        arrival = [int(i) for i in rng.permutation(k + m)]
        rebuilt, decoded = rebuild_batch(fragmented, arrival, code, kernels.join_payload)
        assert rebuilt == batch
        decoded_any |= decoded
        assert decoded == (sorted(arrival[:k]) != list(range(k)))
    assert decoded_any  # some orders really needed parity


def test_a_late_data_fragment_is_decoded_from_parity_bytes():
    code = kernels.ErasureCode(4, 2)
    batch = sample_batch()
    fragmented = encode_batch(batch, code, kernels.split_payload)
    fragmented.fragments[1] ^= 0xFF  # data fragment 1 is corrupt: it must not be used
    rebuilt, decoded = rebuild_batch(fragmented, [0, 2, 3, 4, 1, 5], code, kernels.join_payload)
    assert decoded and rebuilt == batch


def test_keys_wider_than_int64_round_trip_on_the_wire():
    wide = (7 << 120) | 12345
    batch = StorageBatch(1, 50, (3, wide), (10, 20), (b"a", b"b"), (1, 2))
    assert batch_from_bytes(batch_to_bytes(batch)) == batch
