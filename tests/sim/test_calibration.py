"""The single-region topology lands on DSQL's published latency figures (simulated)."""

from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


def test_read_mostly_on_single_region_matches_published_latencies():
    cfg = small_config("read-mostly", "clients.count=64", "load.record_count=20000",
                       duration_s=1.5)
    sim = simulate(cfg).simulated
    read_p50_ms = sim["statement_latency_ms"]["read"]["p50"]
    commit_p50_ms = sim["statement_latency_ms"]["commit"]["p50"]
    assert 0.5 <= read_p50_ms <= 1.2, read_p50_ms
    assert 5.0 <= commit_p50_ms <= 7.0, commit_p50_ms
