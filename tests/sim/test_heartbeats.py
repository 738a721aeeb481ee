"""Caught-up heartbeats: the same simulation as one event per heartbeat.

``Cluster.CATCH_UP_HEARTBEATS`` runs each adjudicator's heartbeat grid when something
can observe it (a flush, a vote, a crossbar tick, a trim, the end of the run) instead
of as SimPy events. It is an economy only: every simulated figure and every recorded
row must be byte-identical to the event-per-heartbeat run, on one region and on three,
with single- and multi-shard commits, and under clock disruptions.
"""

import pytest

from dsqlbench.sim.cluster import Cluster
from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


def _both_ways(monkeypatch, cfg):
    outputs = []
    for catch_up in (True, False):
        monkeypatch.setattr(Cluster, "CATCH_UP_HEARTBEATS", catch_up)
        outputs.append(simulate(cfg))
    return outputs


CASES = {
    "ycsb-a single-region": ("ycsb-a", (), None),
    "hot-key, one row": ("hot-key", (), None),
    "multi-shard transfers": ("bank", (), None),
    "multi-region reads": ("read-mostly", (), "multi-region"),
    "adjudicator clock disrupted": ("ycsb-a", (
        "topology.clock.adjudicator.offset_us=400",
        "topology.clock.adjudicator.disrupted_from_s=0.2",
        "topology.clock.adjudicator.disrupted_for_s=0.2"), None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_caught_up_heartbeats_change_no_simulated_figure(monkeypatch, case):
    workload, overrides, topology = CASES[case]
    cfg = small_config(workload, *overrides, duration_s=0.5, topology=topology)
    caught_up, evented = _both_ways(monkeypatch, cfg)
    assert caught_up.simulated == evented.simulated
    for name, table in evented.tables.items():
        assert caught_up.tables[name].equals(table), name
    # ... for far fewer events: one per heartbeat is most of an idle cluster's events.
    assert caught_up.host["events"] < evented.host["events"]
