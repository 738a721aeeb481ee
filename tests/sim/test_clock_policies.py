"""Clock policies in whole runs: no timestamps from a clock without a bound; skew
within the bound costs only latency; skew beyond it is detected or found."""

from tests.sim.conftest import small_config
from dsqlbench.sim.run import simulate


def test_an_adjudicator_without_a_valid_bound_refuses_to_commit(run_small):
    sim = run_small("ycsb-a", "topology.clock.adjudicator.disrupted_from_s=0.2",
                    "topology.clock.adjudicator.disrupted_for_s=0.2").simulated
    assert sim["aborts"]["CLOCK_UNAVAILABLE"] > 0
    assert sim["clock"]["adjudicator_invalid_readings"] > 0


def test_a_qp_without_a_valid_bound_begins_nothing(run_small):
    sim = run_small("ycsb-c", "topology.clock.qp.disrupted_from_s=0.2",
                    "topology.clock.qp.disrupted_for_s=0.1").simulated
    assert sim["aborts"]["CLOCK_UNAVAILABLE"] > 0


def test_skew_within_the_bound_adds_latency_and_no_anomaly(run_small):
    base = run_small("hot-key").simulated
    ahead = run_small("hot-key", "topology.clock.qp.offset_us=16").simulated  # 0.8 x bound
    assert ahead["checks"]["oracle"]["ok_realtime"]
    assert ahead["read_wait_ms"]["p50"] > base["read_wait_ms"]["p50"]


def test_an_adjudicator_ahead_beyond_its_bound_is_detected_and_found(run_small):
    sim = run_small("hot-key", "topology.clock.adjudicator.offset_us=5000").simulated
    assert sim["counters"]["clock.skew_detections"] > 0
    assert sim["checks"]["oracle"]["stale_reads"] > 0
    assert sim["clock"]["adjudicator_bound_violations"] > 0
