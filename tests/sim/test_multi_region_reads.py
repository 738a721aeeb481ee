"""Multi-region reads stay local; commits pay the cross-region quorum (issue 13).

DSQL's multi-region reads are served by the reader's own region without waiting for
another region, and stay strongly consistent; only commits pay the cross-region round
trip. The lab gets there by heartbeats that promise ahead of the leader's clock
(``adjudicator.heartbeat_ahead_us``), paid by commits in commit-wait. The oracle holds
every read to snapshot isolation and every start to real-time order.
"""

from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


def _read_mostly(*overrides):
    sim = simulate(small_config("read-mostly", "clients.count=32", *overrides,
                                topology="multi-region", duration_s=1.5)).simulated
    oracle = sim["checks"]["oracle"]
    assert oracle["ok"] and oracle["ok_realtime"], oracle["witnesses"]
    assert oracle["stale_reads"] == 0 and oracle["realtime_violations"] == 0
    return sim["statement_latency_ms"]


def test_reads_are_local_and_commits_pay_the_cross_region_round_trip():
    latency = _read_mostly()
    assert latency["read"]["p50"] < 1.5  # same-AZ storage, no wait for another region
    assert latency["commit"]["p50"] > 12.0  # the nearest other region's round trip


def test_without_promising_ahead_reads_wait_for_the_other_region():
    latency = _read_mostly("topology.adjudicator.heartbeat_ahead_us=0")
    assert latency["read"]["p50"] > 10.0
