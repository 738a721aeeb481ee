"""Finite capacity (issue 13): QPs and storage replicas queue work beyond their workers.

Both edges: with idle nodes the figures are what unlimited capacity gives (no wait
anywhere); with too few workers a QP completes ``workers / statement service`` per
simulated second whatever the offered load, and the wait shows in its queue figures.
"""

from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


def _run(*overrides, clients=16):
    return simulate(small_config("ycsb-c", f"clients.count={clients}", *overrides,
                                 duration_s=1.1)).simulated


def test_idle_nodes_change_no_figure():
    plenty = _run("topology.qp.workers=100000", "topology.storage.workers=100000")
    default = _run()
    plenty.pop("nodes"), default.pop("nodes")
    assert plenty == default


def test_a_saturated_qp_serves_workers_per_service_time():
    # One worker per QP at 800 us a statement: at most 1,250 statements/s per QP, i.e.
    # 1,250 YCSB-C reads (one statement each; read-only commits are local) per QP.
    sim = _run("topology.qp.workers=1", clients=256)
    qps = {name: load for name, load in sim["nodes"].items() if name.startswith("qp-")}
    assert len(qps) == 6
    for load in qps.values():
        assert load["utilisation"] > 0.97
        assert load["queue_wait_ms"]["p50"] > 10  # 256 clients behind 6 workers
    measured_s = 1.0  # duration 1.1 s minus the 0.1 s warm-up
    served_per_qp = sum(load["requests"] for load in qps.values()) / 6 / measured_s
    assert abs(served_per_qp - 1_250) < 0.05 * 1_250


def test_storage_queues_too():
    sim = _run("topology.storage.workers=1", "topology.storage.read_service_us=2000",
               clients=64)
    storage = [load for name, load in sim["nodes"].items() if name.startswith("storage-")]
    assert max(load["utilisation"] for load in storage) > 0.9
    assert max(load["queue_wait_ms"]["p99"] for load in storage) > 2
