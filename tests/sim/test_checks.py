"""The end-of-run checks must be able to fail: break the system, see them catch it."""

import numpy as np
import pytest

from dsqlbench.kernels import conflicts as reference_conflicts
from dsqlbench.sim import cluster as cluster_module
from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


class NoFirstCommitterWins(reference_conflicts.ConflictTable):
    """A deliberately broken adjudicator: every write set commits, conflicts ignored."""

    def check_commit(self, key_flat, key_offsets, t_start_ns, t_propose_ns, floor_ns):
        t_commit = []
        for t_start in np.asarray(t_start_ns).tolist():
            floor_ns = max(t_propose_ns, floor_ns + 1, t_start + 1)
            t_commit.append(floor_ns)
        n = len(t_commit)
        return np.zeros(n, np.int8), np.asarray(t_commit, np.int64), floor_ns

    def check_vote(self, key_flat, key_offsets, t_start_ns, t_propose_ns):
        t_low = np.maximum(np.asarray(t_start_ns, np.int64) + 1, t_propose_ns)
        return np.zeros(len(t_low), np.int8), t_low, np.zeros(len(key_flat), np.int64)

    def assign(self, keys, values_ns):
        pass


def test_clean_bank_run_conserves_the_total(run_small):
    checks = run_small("bank", "clients.count=32").simulated["checks"]
    assert checks["bank"]["ok"]
    assert checks["bank"]["accounts"] == 2000


def test_oracle_catches_lost_updates_on_a_hot_key(monkeypatch):
    monkeypatch.setattr(cluster_module.kernels, "ConflictTable", NoFirstCommitterWins)
    checks = simulate(small_config("hot-key", "clients.count=32")).simulated["checks"]
    oracle = checks["oracle"]
    assert not oracle["ok"] and oracle["overlapping_writers"] > 0
    assert any("overlaps" in w for w in oracle["witnesses"])


def test_bank_audit_catches_lost_updates(monkeypatch):
    monkeypatch.setattr(cluster_module.kernels, "ConflictTable", NoFirstCommitterWins)
    # One adjudicator shard: the broken commits still get distinct commit times, so the
    # pipeline runs on and only the checks can tell.
    cfg = small_config("bank", "clients.count=32", "ycsb.request_distribution=\"hotkey\"",
                       "ycsb.hot_key_count=8", "topology.adjudicator.shards=1")
    checks = simulate(cfg).simulated["checks"]
    assert not checks["oracle"]["ok"]
    assert not checks["bank"]["ok"]  # lost updates create or destroy money
    assert checks["bank"]["total_found"] != checks["bank"]["total_expected"]
