"""The YCSB operation mix: proportions, keys, inserts, scans and stream independence."""

from __future__ import annotations

import collections
import functools

import numpy as np
import pytest

from dsqlbench.config import load_config
from dsqlbench.seeds import stream
from dsqlbench.workload.distributions import fnv_hash64, storage_key
from dsqlbench.workload.ycsb import OPERATION_KINDS, Operation, YcsbWorkload, estimate_new_keys

OPS = 20_000


def workload(name: str = "ycsb-a", *overrides: str, seed: int = 1, record_count: int | None = None) -> YcsbWorkload:
    cfg = load_config(name, overrides=list(overrides), seed=seed)
    return YcsbWorkload(cfg, record_count)


def run(w: YcsbWorkload, n: int = OPS, acknowledge: bool = True) -> list[Operation]:
    ops = []
    for _ in range(n):
        op = w.next_operation()
        if acknowledge and op.kind == "insert":
            w.acknowledge_insert(op)
        ops.append(op)
    return ops


@pytest.mark.parametrize("name", ["ycsb-a", "ycsb-b", "ycsb-c", "ycsb-d", "ycsb-e", "ycsb-f", "read-mostly", "hot-key"])
def test_mix_follows_the_proportions(name):
    w = workload(name)
    counts = collections.Counter(op.kind for op in run(w))
    for kind in OPERATION_KINDS:
        share = w.ycsb[f"{kind}_proportion"]
        assert counts[kind] / OPS == pytest.approx(share, abs=0.015), kind
        if share == 0:
            assert counts[kind] == 0


def test_operation_fields():
    w = workload("ycsb-e")
    for op in run(w, 5000):
        assert op.key == storage_key(op.key_id, "hashed") and op.key >= 0
        assert op.value_bytes == 100
        if op.kind == "scan":
            assert 1 <= op.scan_length <= 100
        else:
            assert op.kind == "insert" and op.scan_length == 0
    lengths = [op.scan_length for op in run(w, 5000) if op.kind == "scan"]
    assert min(lengths) == 1 and max(lengths) == 100
    assert np.mean(lengths) == pytest.approx(50.5, abs=3)


def test_zipfian_scan_lengths_favour_short_scans():
    w = workload("ycsb-e", "ycsb.scan_length_distribution=zipfian")
    lengths = collections.Counter(op.scan_length for op in run(w, 5000) if op.kind == "scan")
    assert lengths.most_common(1)[0][0] == 1 and max(lengths) <= 100


def test_same_seed_same_operations_other_seed_different():
    a = [op.as_tuple() for op in run(workload("ycsb-d"), 3000)]
    assert a == [op.as_tuple() for op in run(workload("ycsb-d"), 3000)]
    assert a != [op.as_tuple() for op in run(workload("ycsb-d", seed=2), 3000)]


def test_changing_the_mix_does_not_change_key_draws():
    # A and B differ only in the mix: the n-th operation touches the same key.
    a = [op.key for op in run(workload("ycsb-a"), 3000)]
    b = [op.key for op in run(workload("ycsb-b"), 3000)]
    assert a == b
    kinds_a = [op.kind for op in run(workload("ycsb-a"), 3000)]
    kinds_b = [op.kind for op in run(workload("ycsb-a", "ycsb.request_distribution=uniform"), 3000)]
    assert kinds_a == kinds_b


def test_streams_can_be_given_as_seed_or_factory():
    cfg = load_config("ycsb-a", seed=5)
    default = [op.as_tuple() for op in run(YcsbWorkload(cfg), 500)]
    assert default == [op.as_tuple() for op in run(YcsbWorkload(cfg, None, 5), 500)]
    assert default == [op.as_tuple() for op in run(YcsbWorkload(cfg, None, functools.partial(stream, 5)), 500)]


def test_inserts_take_new_key_ids_and_become_readable_when_acknowledged():
    w = workload("ycsb-d", record_count=1000)
    held = []
    for op in run(w, 4000, acknowledge=False):
        if op.kind == "insert":
            held.append(op)
        else:
            assert op.key_id < 1000  # nothing inserted is acknowledged yet
    assert [op.key_id for op in held] == list(range(1000, 1000 + len(held)))
    for op in reversed(held):
        w.acknowledge_insert(op)
    assert w.insert_counter.count == 1000 + len(held)
    reads = [op.key_id for op in run(w, 4000) if op.kind == "read"]
    # "latest": reads now concentrate on the newest keys.
    assert max(reads) >= 1000 + len(held) - 1
    assert collections.Counter(reads).most_common(1)[0][0] >= 1000 + len(held) - 5


def test_zipfian_with_inserts_reaches_inserted_keys():
    # YCSB sizes the key space for twice the expected inserts: 2 * 0.05 * 1000.
    assert estimate_new_keys(load_config("ycsb-e"), 1000) == 100
    assert estimate_new_keys(load_config("ycsb-e", transactions=400), 1000) == 40
    w = workload("ycsb-e", record_count=1000)
    ops = run(w, 20_000)
    scans = [op.key_id for op in ops if op.kind == "scan"]
    assert max(scans) >= 1000 and max(scans) < w.insert_counter.count


def test_hot_key_workload_hits_one_key():
    ops = run(workload("hot-key"), 2000)
    assert {op.kind for op in ops} == {"update"}
    assert {op.key_id for op in ops} == {fnv_hash64(0) % 100_000}
    assert len({op.key for op in ops}) == 1


def test_load_keys():
    hashed = workload("ycsb-a", record_count=5000).load_keys()
    assert hashed.dtype == np.int64 and len(hashed) == 5000 and (hashed >= 0).all()
    assert len(np.unique(hashed)) == 5000
    assert hashed[:3].tolist() == [storage_key(i, "hashed") for i in range(3)]
    ordered = workload("ycsb-a", "ycsb.insert_order=ordered", record_count=5000).load_keys()
    assert ordered.tolist() == list(range(5000))
    assert not hashed.flags.writeable


def test_operation_keys_are_loaded_keys_in_ordered_mode():
    w = workload("ycsb-c", "ycsb.insert_order=ordered", record_count=300)
    assert all(op.key == op.key_id < 300 for op in run(w, 2000))


def test_operation_value_semantics():
    op = Operation("read", 7, 3, 0, 100)
    assert op == Operation("read", 7, 3, 0, 100) and op != Operation("read", 8, 3, 0, 100)
    assert "kind='read'" in repr(op)
    with pytest.raises(AttributeError):
        op.extra = 1


def test_ycsb_e_scans_up_to_100_rows_as_workloade_sets():
    # YCSB's workloads/workloade: maxscanlength=100, scanlengthdistribution=uniform.
    e = load_config("ycsb-e")["ycsb"]
    assert e["scan_length_max"] == 100 and e["scan_length_distribution"] == "uniform"


def test_default_scan_length_max_is_coreworkload_maxscanlength():
    # CoreWorkload's MAX_SCAN_LENGTH_PROPERTY_DEFAULT is "1000"; only workloade sets 100.
    assert load_config("ycsb-a")["ycsb"]["scan_length_max"] == 1000
    w = workload("ycsb-a", "ycsb.scan_proportion=1", "ycsb.read_proportion=0", "ycsb.update_proportion=0")
    assert max(op.scan_length for op in run(w, 5000)) > 900
