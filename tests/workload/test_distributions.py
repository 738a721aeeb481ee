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


def ycsb_zipfian_shares(ranks: int, itemcount: int, theta: float, zetan: float, eta: float) -> np.ndarray:
    """P(rank = k), k < ``ranks``, of YCSB's ``ZipfianGenerator.nextLong(itemcount)``,
    from its formulas rather than by sampling: u < 1/zetan gives rank 0, u < (1 +
    0.5^theta)/zetan rank 1, any other u rank floor(itemcount * (eta*u - eta + 1)^alpha),
    which is below k exactly when u < 1 - (1 - (k/itemcount)^(1-theta)) / eta."""
    first, second = 1.0 / zetan, (1.0 + 0.5**theta) / zetan
    k = np.arange(ranks + 1, dtype=np.float64)
    below = np.clip(1.0 - (1.0 - (k / itemcount) ** (1.0 - theta)) / eta, second, 1.0)
    shares = np.diff(below)
    shares[0] += first
    shares[1] += second - first
    return shares


def ycsb_eta(items: int, theta: float, zetan: float) -> float:
    """YCSB's eta: (1 - (2/items)^(1-theta)) / (1 - zeta(2)/zetan)."""
    return (1.0 - (2.0 / items) ** (1.0 - theta)) / (1.0 - (1.0 + 0.5**theta) / zetan)


def assert_shares(keys: np.ndarray, expected: dict[int, float]) -> None:
    """Each key's share of ``keys`` within 4.5 standard errors of its expected share."""
    for key, share in expected.items():
        seen = float(np.mean(keys == key))
        sigma = (share * (1 - share) / len(keys)) ** 0.5
        assert abs(seen - share) < 4.5 * sigma + 1e-12, (key, seen, share)


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


def test_latest_top_shares_match_ycsb_formulas():
    # YCSB builds the zipfian on basis.lastValue() (999 here, not 1000) and draws
    # last - nextLong(last): key 999 with 1/zeta(999), 998 with 0.5^theta/zeta(999), ...
    theta, last = 0.99, 999
    keys = take(d.SkewedLatestGenerator(d.AcknowledgedCounter(last + 1), theta, rng()), 200_000)
    zetan = d.zeta(last, theta)
    shares = ycsb_zipfian_shares(6, last, theta, zetan, ycsb_eta(last, theta, zetan))
    assert shares[0] == pytest.approx(1 / zetan) and shares[1] == pytest.approx(0.5**theta / zetan)
    assert_shares(keys, {last - rank: float(share) for rank, share in enumerate(shares)})


def test_latest_never_draws_key_0():
    # Four loaded keys: YCSB's zipfian covers last = 3 items, so keys 3, 2, 1 only.
    theta = 0.99
    keys = take(d.SkewedLatestGenerator(d.AcknowledgedCounter(4), theta, rng()), 50_000)
    assert set(keys.tolist()) == {1, 2, 3}
    zetan = d.zeta(3, theta)
    shares = ycsb_zipfian_shares(3, 3, theta, zetan, ycsb_eta(3, theta, zetan))
    assert_shares(keys, {3 - rank: float(share) for rank, share in enumerate(shares)})
    # Nor with many keys: 1000 loaded, key 0 would take about 1 draw in 7,000.
    many = take(d.SkewedLatestGenerator(d.AcknowledgedCounter(1000), theta, rng()), 100_000)
    assert many.min() >= 1
    # A single loaded key has nothing else to offer.
    assert set(take(d.SkewedLatestGenerator(d.AcknowledgedCounter(1), theta, rng()), 100).tolist()) == {0}


def test_latest_keeps_ycsb_eta_as_keys_are_inserted():
    # YCSB's ZipfianGenerator extends zeta as the count grows but computes eta with
    # the item count it was built with: after growing from 999 to 1499 items no draw
    # lands on rank 2 (the formula's smallest rank is 3), where eta(1499) would give it 5%.
    theta = 0.99
    counter = d.AcknowledgedCounter(1000)
    chooser = d.SkewedLatestGenerator(counter, theta, rng())
    take(chooser, 10)
    for _ in range(500):
        counter.acknowledge(counter.next_key_id())
    last = 1499
    keys = take(chooser, 200_000)
    zetan = d.zeta(last, theta)
    shares = ycsb_zipfian_shares(8, last, theta, zetan, ycsb_eta(999, theta, zetan))
    assert shares[2] == 0.0
    assert_shares(keys, {last - rank: float(share) for rank, share in enumerate(shares)})


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
        ({}, d.ReadableOnly),
        ({"scrambled": False}, d.ReadableOnly),
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
    # CoreWorkload: ScrambledZipfianGenerator(insertstart, insertstart + insertcount +
    # expectednewkeys), both bounds inclusive: 0..1100 is 1101 key ids.
    counter = d.AcknowledgedCounter(1000)
    chooser = d.make_key_chooser(ycsb_cfg(), 1000, rng(), counter, expected_new_keys=100)
    assert isinstance(chooser, d.ReadableOnly)
    assert isinstance(chooser.inner, d.ScrambledZipfianGenerator) and chooser.inner.items == 1101
    assert take(chooser, 5000).max() < 1000
    plain = d.make_key_chooser(ycsb_cfg(scrambled=False), 1000, rng(), counter, expected_new_keys=100)
    assert isinstance(plain.inner, d.ZipfianGenerator) and plain.inner.items == 1101
    assert d.zipfian_key_space(1000, 0) == 1001
    with pytest.raises(ValueError):
        d.make_key_chooser(ycsb_cfg(request_distribution="pareto"), 10, rng())



def test_zipfian_top_shares_match_ycsb_formulas():
    # 1000 loaded keys and no inserts expected: YCSB's scrambled zipfian still covers
    # 0..1000 (1001 ids), so key k takes the ranks r with fnv(r) % 1001 == k; id 1000 is
    # never readable and is redrawn (nextKeynum), which scales every share up alike.
    theta, loaded = 0.99, 1000
    chooser = d.make_key_chooser(ycsb_cfg(), loaded, rng())
    keys = take(chooser, 200_000)
    space = loaded + 1
    ranks = 1 << 16
    item_count = d.SCRAMBLED_ITEM_COUNT
    zetan = d.SCRAMBLED_ZETAN_099
    rank_shares = ycsb_zipfian_shares(ranks, item_count, theta, zetan, ycsb_eta(item_count, theta, zetan))
    key_shares = np.bincount(d.fnv_hash64_array(np.arange(ranks)) % space, weights=rank_shares, minlength=space)
    key_shares += (1.0 - rank_shares.sum()) / space  # the tail: ~uniform over the ids
    key_shares = key_shares[:loaded] / key_shares[:loaded].sum()
    top = np.argsort(key_shares)[::-1][:5]
    assert top[0] == d.fnv_hash64(0) % space  # = 144, not fnv(0) % 1000 = 211
    assert_shares(keys, {int(key): float(key_shares[key]) for key in top})
    assert collections.Counter(keys.tolist()).most_common(1)[0][0] == top[0]
