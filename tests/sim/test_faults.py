"""Faults and durability: the shipped fault workload loses nothing and returns no
wrong data; each broken durability guarantee is caught."""

import pytest

from dsqlbench import config
from dsqlbench.errors import ConfigError
from dsqlbench.sim import controls
from dsqlbench.sim.run import simulate

SMALL = ["load.record_count=2000", "clients.count=24", "run.duration_s=6.5"]


def fault_run(*overrides):
    return simulate(config.load_config("faults", overrides=SMALL + list(overrides))).simulated


def short_run(faults: str, *overrides):
    """Two simulated seconds of the fault workload with only ``faults`` injected."""
    return fault_run("run.duration_s=2.5", f"faults=[{faults}]", *overrides)


@pytest.fixture(scope="module")
def clean():
    return fault_run()


def test_nothing_acknowledged_is_lost_and_no_wrong_data_is_returned(clean):
    faults = clean["checks"]["faults"]
    assert faults["ok"], faults
    assert faults["acknowledged_commits"] > 1000
    assert faults["acknowledged_commits_lost"] == 0 and faults["wrong_data_returned"] == 0
    assert faults["replicas_unlike_replay_model"] == []  # every replica = replay from the start
    assert clean["checks"]["oracle"]["ok"]


def test_every_injected_fault_shows_its_effect(clean):
    faults = clean["checks"]["faults"]
    counters = faults["counters"]
    assert faults["injected"] == {"corrupt_fragments": 1, "crash": 3, "lose_fragments": 2,
                                  "partition": 1, "pause": 1}
    assert [f["shard"] for f in faults["failovers"]] == [2, 3]  # a crash and a long pause
    assert counters["crossbar.fragments_decoded_from_parity"] > 0
    assert counters["faults.unrecoverable_deliveries"] > 0  # m + 1 lost: never decoded ...
    assert counters["faults.retransmissions"] >= counters["faults.unrecoverable_deliveries"]
    assert counters["faults.checksum_mismatches"] > 0  # ... and flipped bits never used
    assert counters["faults.storage_rebuilds"] == 1 and counters["faults.reads_rerouted"] > 0
    assert faults["unknown_outcomes"] == (faults["unknown_resolved_committed"]
                                          + faults["unknown_resolved_not_committed"])
    assert [t["kind"] for t in faults["timeline"]][:2] == ["crash", "crash"]


def test_acknowledging_before_the_quorum_is_caught():
    # Many leader crashes under load, so some catch commits between decision and quorum.
    crashes = '{kind="crash", target="adjudicator:0", at_s=0.3, duration_s=0.1, count=10, spread_s=2.0}'
    busy = ("clients.count=64", "ycsb.update_proportion=0.9", "ycsb.read_proportion=0.1")
    kept = short_run(crashes, *busy)["checks"]["faults"]
    assert kept["ok"] and kept["counters"]["faults.undurable_commits_lost"] > 0  # none acked
    with controls.ack_before_quorum():
        faults = short_run(crashes, *busy)["checks"]["faults"]
    assert faults["acknowledged_commits_lost"] > 0 and not faults["ok"]


def test_leases_without_fencing_are_caught():
    pause = '{kind="pause", target="adjudicator:3", at_s=0.5, duration_s=0.6}'
    assert short_run(pause)["checks"]["oracle"]["ok"]  # fenced: the stale leader is refused
    with controls.leases_without_fencing():
        sim = short_run(pause)
    assert not sim["checks"]["oracle"]["ok"]  # the stale leader's commits overlap the new one's


def test_fragments_without_checksums_are_caught():
    flips = '{kind="corrupt_fragments", target="storage", at_s=0.5, duration_s=1.0, probability=0.5}'
    with controls.fragments_without_checksums():
        faults = short_run(flips)["checks"]["faults"]
    assert faults["wrong_data_returned"] > 0 and not faults["ok"]


def test_a_bad_fault_target_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"faults\.0\.target = 'adjudicator:x'"):
        cfg = config.load_config("ycsb-a", overrides=[
            'faults=[{kind="crash", target="adjudicator:x"}]'])
        from dsqlbench.sim.faults import FaultSchedule
        FaultSchedule.from_config(cfg)
