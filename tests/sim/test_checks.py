"""The end-of-run checks must be able to fail: break the system, see them catch it."""

from dsqlbench.sim import controls
from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


def test_clean_bank_run_conserves_the_total(run_small):
    checks = run_small("bank", "clients.count=32").simulated["checks"]
    assert checks["bank"]["ok"]
    assert checks["bank"]["accounts"] == 2000


def test_oracle_catches_lost_updates_on_a_hot_key():
    with controls.no_first_committer_wins():
        checks = simulate(small_config("hot-key", "clients.count=32")).simulated["checks"]
    oracle = checks["oracle"]
    assert not oracle["ok"] and oracle["overlapping_writers"] > 0
    assert any("overlaps" in w for w in oracle["witnesses"])


def test_bank_audit_catches_lost_updates():
    # One adjudicator shard: the broken commits still get distinct commit times, so the
    # pipeline runs on and only the checks can tell.
    cfg = small_config("bank", "clients.count=32", "ycsb.request_distribution=\"hotkey\"",
                       "ycsb.hot_key_count=8", "topology.adjudicator.shards=1")
    with controls.no_first_committer_wins():
        checks = simulate(cfg).simulated["checks"]
    assert not checks["oracle"]["ok"]
    assert not checks["bank"]["ok"]  # lost updates create or destroy money
    assert checks["bank"]["total_found"] != checks["bank"]["total_expected"]
