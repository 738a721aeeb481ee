"""Storage GC during the run: versions no snapshot can read go as the run goes.

In runs without faults, ``Cluster.trim`` drops every version older than the oldest
snapshot still open or yet to be taken (each open attempt's ``t_start``; each QP
clock's floor, below which no later reading falls), not only those older than the
trim horizon. Reads must stay exactly right (the oracle checks every one), including
when a QP clock runs far behind true time, and memory no longer holds every version
ever written.
"""

from tests.sim.conftest import small_config
from dsqlbench.sim.run import simulate


def _run(*overrides, duration_s=2.5):
    sim = simulate(small_config("ycsb-a", "load.record_count=500", *overrides,
                                duration_s=duration_s)).simulated
    assert sim["checks"]["oracle"]["ok"], sim["checks"]["oracle"]["witnesses"]
    assert sim["checks"]["oracle"]["wrong_reads"] == 0
    return sim


def test_versions_no_snapshot_can_read_are_dropped_during_the_run():
    sim = _run()
    trimmed = sim["counters"].get("storage.versions_trimmed", 0)
    updates = sim["transactions"]["committed"] // 2  # ycsb-a: half are updates
    assert trimmed > updates  # every replica drops most versions of each hot key


def test_a_qp_clock_far_behind_still_reads_right():
    # One client on ten keys whose QP clock is 200 ms behind true time, idle most of
    # the time: GC runs while no attempt is open, and the next snapshot is taken far
    # in the past. The QP clock's floor must hold back GC so those reads stay right.
    sim = _run("topology.clock.qp.offset_us=-200000", "clients.count=1",
               "clients.think_time_ms=40", "load.record_count=10", duration_s=6.0)
    assert sim["counters"].get("storage.versions_trimmed", 0) > 0
