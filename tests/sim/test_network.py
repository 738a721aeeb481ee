"""The network's link classes, and the per-pair region links of ``region_rtt_ms``."""

import numpy as np

from dsqlbench import config
from dsqlbench.sim.network import Network
from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


def multi_region_network(region_rtt_ms=None):
    topo = config.load_config("read-mostly", topology="multi-region")["topology"]
    if region_rtt_ms is not None:
        topo["network"]["region_rtt_ms"] = region_rtt_ms
    names = tuple(r["name"] for r in topo["regions"])
    return Network(topo["network"], seed=1, region_names=names), names, topo["network"]["region_rtt_ms"]


def median_ms(sample, n=4001):
    return float(np.median([sample() for _ in range(n)])) / 1e6


def test_each_listed_region_pair_has_half_its_round_trip_one_way():
    network, names, rtt_ms = multi_region_network()
    assert rtt_ms, "the shipped multi-region topology lists its region pairs"
    for pair, rtt in rtt_ms.items():
        a, b = (names.index(name) for name in pair.split("/"))
        there = median_ms(lambda: network.delay_ns((a, 0), (b, 0)))
        back = median_ms(lambda: network.delay_ns((b, 0), (a, 0)))
        assert abs(there - rtt / 2) < 0.05 * rtt / 2, (pair, there)
        assert abs(back - rtt / 2) < 0.05 * rtt / 2, (pair, back)
        assert network.link((a, 0), (b, 0)).name == f"region/{pair}"


def test_an_unlisted_pair_falls_back_to_cross_region():
    _, names, _ = multi_region_network()
    network, _, _ = multi_region_network({f"{names[0]}/{names[1]}": 4.0})
    cross_ms = network.links["cross_region"].median_ns / 1e6
    assert abs(median_ms(lambda: network.delay_ns((0, 0), (1, 0))) - 2.0) < 0.1
    assert abs(median_ms(lambda: network.delay_ns((0, 0), (2, 0))) - cross_ms) < 0.05 * cross_ms
    assert network.link((1, 0), (2, 0)).name == "cross_region"


def test_region_rtt_changes_a_multi_region_run():
    """Defect of issue 13: every pair at 2 ms once gave byte-identical figures."""
    # Without heartbeats promising ahead: commit-wait would then pay the promise, not
    # the round trips (tests/sim/test_multi_region_reads.py).
    no_ahead = "topology.adjudicator.heartbeat_ahead_us=0"
    base = small_config("read-mostly", no_ahead, topology="multi-region", duration_s=0.4)
    names = [r["name"] for r in base["topology"]["regions"]]
    fast = small_config("read-mostly", no_ahead,
                        *[f'topology.network.region_rtt_ms."{a}/{b}"=2.0'
                          for i, a in enumerate(names) for b in names[i + 1:]],
                        topology="multi-region", duration_s=0.4)
    slow_commit = simulate(base).simulated["statement_latency_ms"]["commit"]["p50"]
    fast_commit = simulate(fast).simulated["statement_latency_ms"]["commit"]["p50"]
    assert fast_commit < slow_commit - 5, (fast_commit, slow_commit)
