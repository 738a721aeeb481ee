"""Shared helpers for simulation tests: small, fast configs of shipped workloads."""

import pytest

from dsqlbench import config
from dsqlbench.sim.run import simulate


def small_config(workload="ycsb-a", *overrides, duration_s=0.6, seed=1, topology=None):
    """A shipped workload shrunk to run in about a second of wall time."""
    base = ["load.record_count=2000", "run.warmup_s=0.1", "clients.count=16"]
    return config.load_config(workload, topology=topology, overrides=base + list(overrides),
                              seed=seed, duration_s=duration_s)


@pytest.fixture
def run_small():
    def run(workload="ycsb-a", *overrides, **kwargs):
        output = simulate(small_config(workload, *overrides, **kwargs))
        oracle = output.simulated["checks"]["oracle"]
        # After every simulated run: first committer wins and snapshot reads hold.
        assert oracle["ok"], oracle["witnesses"]
        assert oracle["reads_checked"] > 0
        return output
    return run
