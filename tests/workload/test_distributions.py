"""YCSB request distributions: range, determinism, and the shape of each distribution."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from dsqlbench.seeds import stream
from dsqlbench.workload import distributions as d

DRAWS = 100_000


def rng(name: str = "test", seed: int = 1) -> np.random.Generator:
    return stream(seed, name)


def take(chooser, n: int = DRAWS) -> np.ndarray:
    return np.array([chooser.next() for _ in range(n)], dtype=np.int64)


def ycsb_cfg(**changes) -> dict:
    cfg = {
        "request_distribution": "zipfian",
        "zipfian_constant": 0.99,
        "scrambled": True,
        "hotspot_data_fraction": 0.2,
        "hotspot_op_fraction": 0.8,
        "hot_key_count": 1,
    }
    cfg.update(changes)
    return cfg


# --- hashing and storage keys ---------------------------------------------------------


def test_fnv_hash_matches_ycsb():
    # YCSB's first loaded key with hashed inserts is "user6284781860667377211".
    assert d.fnv_hash64(0) == 6284781860667377211
    values = np.concatenate([np.arange(1000), stream(1, "fnv").integers(0, 2**63 - 1, 1000)])
    assert d.fnv_hash64_array(values).tolist() == [d.fnv_hash64(int(v)) for v in values]


def test_storage_keys_are_non_negative_int64():
    ids = np.arange(100_000)
    hashed = d.storage_keys(ids, "hashed")
    assert hashed.dtype == np.int64 and (hashed >= 0).all()
    assert len(np.unique(hashed)) == len(ids)
    assert [d.storage_key(i, "hashed") for i in range(50)] == hashed[:50].tolist()
    assert d.storage_keys(ids, "ordered").tolist() == ids.tolist()
    assert d.storage_key(17, "ordered") == 17
    with pytest.raises(ValueError):
        d.storage_key(1, "sorted")


# --- zeta -----------------------------------------------------------------------------


def test_zeta_exact_and_large():
    assert d.zeta(10, 0.5) == pytest.approx(sum(i**-0.5 for i in range(1, 11)), rel=1e-15)
    assert d.zeta(1, 0.99) == 1.0
    # YCSB's precomputed zeta of its 10^10-item scrambled zipfian.
    assert d.zeta(d.SCRAMBLED_ITEM_COUNT, 0.99) == pytest.approx(d.SCRAMBLED_ZETAN_099, rel=1e-10)
    n = (1 << 20) + 5000  # crosses from the exact sum into Euler-Maclaurin
    exact = float(np.sum(np.arange(1, n + 1, dtype=np.float64) ** -0.7))
    assert d.zeta(n, 0.7) == pytest.approx(exact, rel=1e-12)
    assert d.zeta_range(0, 500, 0.8) + d.zeta_range(500, 900, 0.8) == pytest.approx(d.zeta(900, 0.8), rel=1e-14)


# --- acknowledged counter -------------------------------------------------------------


def test_acknowledged_counter_exposes_only_a_contiguous_prefix():
    counter = d.AcknowledgedCounter(10)
    ids = [counter.next_key_id() for _ in range(4)]
    assert ids == [10, 11, 12, 13] and counter.count == 10 and counter.issued == 14
    counter.acknowledge(12)
    counter.acknowledge(11)
    assert counter.count == 10  # 10 still in flight
    counter.acknowledge(10)
    assert counter.count == 13
    counter.acknowledge(13)
    assert counter.count == 14


# --- generators -----------------------------------------------------------------------


def test_uniform_in_range_deterministic_and_flat():
    keys = take(d.UniformGenerator(50, rng()))
    assert keys.min() == 0 and keys.max() == 49
    assert take(d.UniformGenerator(50, rng()), 1000).tolist() == keys[:1000].tolist()
    assert take(d.UniformGenerator(50, rng(seed=2)), 1000).tolist() != keys[:1000].tolist()
    counts = np.bincount(keys, minlength=50)
    assert counts.min() > 0.85 * DRAWS / 50 and counts.max() < 1.15 * DRAWS / 50


def test_uniform_follows_the_live_count():
    counter = d.AcknowledgedCounter(10)
    chooser = d.UniformGenerator(10, rng(), counter=counter)
    assert take(chooser, 2000).max() == 9
    for _ in range(10):
        counter.acknowledge(counter.next_key_id())
    keys = take(chooser, 5000)
    assert keys.max() == 19 and (keys >= 10).mean() == pytest.approx(0.5, abs=0.05)


def test_zipfian_popularity_follows_the_power_law():
    theta = 0.99
    keys = take(d.ZipfianGenerator(1000, theta, rng()))
    assert keys.min() >= 0 and keys.max() < 1000
    counts = np.bincount(keys, minlength=1000)
    assert counts.argmax() == 0
    assert counts[0] / counts[1] == pytest.approx(2**theta, rel=0.05)
    assert counts[0] / DRAWS == pytest.approx(1 / d.zeta(1000, theta), rel=0.03)
    assert counts[0] > counts[1] > counts[2] > counts[5] > counts[50] > counts[500]


def test_zipfian_theta_changes_the_skew():
    flat = np.bincount(take(d.ZipfianGenerator(1000, 0.5, rng())), minlength=1000)
    assert flat[0] / flat[1] == pytest.approx(2**0.5, rel=0.05)


def test_zipfian_is_deterministic_and_independent_of_block_size():
    whole = d.ZipfianGenerator(10_000, 0.99, rng()).draw(1000)
    generator = d.ZipfianGenerator(10_000, 0.99, rng())
    parts = np.concatenate([generator.draw(300), generator.draw(700)])
    assert whole.tolist() == parts.tolist()
    assert take(d.ZipfianGenerator(10_000, 0.99, rng()), 1000).tolist() == whole.tolist()


def test_zipfian_tiny_item_counts():
    assert set(take(d.ZipfianGenerator(1, 0.99, rng()), 1000).tolist()) == {0}
    assert set(take(d.ZipfianGenerator(2, 0.99, rng()), 1000).tolist()) == {0, 1}


def test_scrambled_zipfian_spreads_hot_keys():
    n = 100_000
    keys = take(d.ScrambledZipfianGenerator(n, 0.99, rng()))
    assert keys.min() >= 0 and keys.max() < n
    counts = collections.Counter(keys.tolist())
    hottest = [key for key, _ in counts.most_common(10)]
    # The hottest key is the hash of rank 0, as in YCSB, and it is as popular as rank 0.
    assert hottest[0] == d.fnv_hash64(0) % n
    assert counts[hottest[0]] / DRAWS == pytest.approx(1 / d.SCRAMBLED_ZETAN_099, rel=0.05)
    # Spread over the key space, not clustered at its start.
    assert max(hottest) - min(hottest) > n / 2
    assert np.mean(keys < n / 10) == pytest.approx(0.1, abs=0.03)


def test_latest_prefers_the_newest_keys():
    counter = d.AcknowledgedCounter(1000)
    chooser = d.SkewedLatestGenerator(counter, 0.99, rng())
    keys = take(chooser, 20_000)
    assert keys.max() == 999 and keys.min() >= 0
    counts = np.bincount(keys, minlength=1000)
    assert counts.argmax() == 999
    assert counts[999] / counts[998] == pytest.approx(2**0.99, rel=0.1)
    for _ in range(500):
        counter.acknowledge(counter.next_key_id())
    keys = take(chooser, 20_000)
    assert keys.max() == 1499 and np.bincount(keys).argmax() == 1499
    assert np.median(keys) > 1300


def test_latest_never_returns_an_unacknowledged_key():
    counter = d.AcknowledgedCounter(100)
    chooser = d.SkewedLatestGenerator(counter, 0.99, rng())
    pending = [counter.next_key_id() for _ in range(5)]
    assert take(chooser, 2000).max() == 99
    counter.acknowledge(pending[1])
    assert take(chooser, 2000).max() == 99
    counter.acknowledge(pending[0])
    assert take(chooser, 2000).max() == 101


def test_hotspot_fractions():
    generator = d.HotspotGenerator(10_000, 0.2, 0.8, rng())
    assert generator.hot_items == 2000
    keys = take(generator)
    assert keys.min() >= 0 and keys.max() < 10_000
    hot = keys < 2000
    assert hot.mean() == pytest.approx(0.8, abs=0.01)
    hot_counts = np.bincount(keys[hot], minlength=2000)
    assert hot_counts.max() < 3 * hot.sum() / 2000
    assert np.mean(keys[~hot] >= 2000) == 1.0


def test_hotspot_edge_cases():
    assert set(take(d.HotspotGenerator(1, 0.2, 0.8, rng()), 100).tolist()) == {0}
    all_hot = take(d.HotspotGenerator(100, 0.5, 1.0, rng()), 5000)
    assert all_hot.max() < 50


def test_hot_key_picks_among_scattered_keys():
    single = take(d.HotKeyGenerator(100_000, 1, rng()), 1000)
    assert set(single.tolist()) == {d.fnv_hash64(0) % 100_000}
    generator = d.HotKeyGenerator(100_000, 8, rng())
    assert len(set(generator.hot_keys.tolist())) == 8
    assert generator.hot_keys.max() - generator.hot_keys.min() > 50_000
    counts = collections.Counter(take(generator, 8000).tolist())
    assert set(counts) == set(generator.hot_keys.tolist())
    assert min(counts.values()) > 800
    # Most of the keys hot (the ranking path), then all of them.
    assert len(set(d.HotKeyGenerator(10, 7, rng()).hot_keys.tolist())) == 7
    assert sorted(d.HotKeyGenerator(10, 10, rng()).hot_keys.tolist()) == list(range(10))


def test_readable_only_redraws_unacknowledged_keys():
    counter = d.AcknowledgedCounter(1000)
    chooser = d.ReadableOnly(d.ScrambledZipfianGenerator(1200, 0.99, rng()), counter)
    assert take(chooser, 10_000).max() < 1000
    for _ in range(200):
        counter.acknowledge(counter.next_key_id())
    assert take(chooser, 20_000).max() >= 1000


# --- the factory ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, kind",
    [
        ({"request_distribution": "uniform"}, d.UniformGenerator),
        ({}, d.ScrambledZipfianGenerator),
        ({"scrambled": False}, d.ZipfianGenerator),
        ({"request_distribution": "latest"}, d.SkewedLatestGenerator),
        ({"request_distribution": "hotspot"}, d.HotspotGenerator),
        ({"request_distribution": "hotkey", "hot_key_count": 3}, d.HotKeyGenerator),
    ],
)
def test_make_key_chooser(changes, kind):
    chooser = d.make_key_chooser(ycsb_cfg(**changes), 5000, rng())
    assert isinstance(chooser, kind)
    keys = take(chooser, 2000)
    assert keys.min() >= 0 and keys.max() < 5000
    again = take(d.make_key_chooser(ycsb_cfg(**changes), 5000, rng()), 2000)
    assert again.tolist() == keys.tolist()


def test_make_key_chooser_sizes_zipfian_for_expected_inserts():
    counter = d.AcknowledgedCounter(1000)
    chooser = d.make_key_chooser(ycsb_cfg(), 1000, rng(), counter, expected_new_keys=100)
    assert isinstance(chooser, d.ReadableOnly)
    assert take(chooser, 5000).max() < 1000
    with pytest.raises(ValueError):
        d.make_key_chooser(ycsb_cfg(request_distribution="pareto"), 10, rng())

