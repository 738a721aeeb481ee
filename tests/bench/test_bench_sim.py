"""End-to-end speed of the lab: simulated transactions per wall-clock second.

Run with ``pytest tests/bench --benchmark-only``. Each round simulates YCSB-A on the
single-region topology; ``extra_info`` carries the simulated attempts of the round so
the rate (attempts / median round time) is in the saved benchmark JSON. The compiled
kernels are measured against the reference twins in the same run.
"""

import pytest

from dsqlbench import config
from dsqlbench.sim import cluster as cluster_module
from dsqlbench.sim.run import simulate

SIM_SECONDS = 1.5


def ycsb_a():
    return config.load_config("ycsb-a", duration_s=SIM_SECONDS, overrides=["run.warmup_s=0.5"])


def run_once(expected_kernels: str):
    output = simulate(ycsb_a())
    assert set(output.kernels.values()) <= ({"reference"} if expected_kernels == "reference"
                                            else {"cython", "numba"})
    return output.host["sim_attempts"]


@pytest.mark.parametrize("kernels", ["compiled", "reference"])
def test_bench_ycsb_a_single_region(benchmark, kernels, monkeypatch):
    if kernels == "reference":
        from dsqlbench.kernels import conflicts, erasure, merge

        monkeypatch.setattr(cluster_module.kernels, "ConflictTable", conflicts.ConflictTable)
        monkeypatch.setattr(cluster_module.kernels, "ErasureCode", erasure.ErasureCode)
        monkeypatch.setattr(cluster_module.kernels, "merge_until", merge.merge_until)
        monkeypatch.setattr(cluster_module.kernels, "split_payload", erasure.split_payload)
        monkeypatch.setattr(cluster_module.kernels, "join_payload", erasure.join_payload)
        # ... and results say so, as they would under DSQLBENCH_KERNELS=reference.
        monkeypatch.setattr(cluster_module.kernels, "implementations",
                            lambda: {name: "reference" for name in ("merge", "erasure", "conflicts")})
    attempts = benchmark.pedantic(run_once, args=(kernels,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["sim_attempts_per_round"] = attempts
    if benchmark.stats is not None:  # None under --benchmark-disable (a plain smoke run)
        benchmark.extra_info["sim_txn_per_wall_s"] = attempts / benchmark.stats.stats.median
