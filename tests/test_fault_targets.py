"""Fault targets are checked against the topology before a run (issue 14, item 3):
a node that does not exist is one ConfigError line naming the fault, the target and
the valid range, never an IndexError mid-run or a fault that silently hits nothing."""

from __future__ import annotations

import pytest

from dsqlbench.cli import main
from dsqlbench.config import load_config
from dsqlbench.errors import ConfigError


def faults(kind: str, target: str) -> list[str]:
    return [f'faults=[{{kind="{kind}", target="{target}"}}]']


# target -> what the one line must say (single-region: 3 AZs, 4 + 4 shards, 6 QPs)
MISSING = {
    ("crash", "adjudicator:99"): "no adjudicator shard 99; valid 0..3 (topology.adjudicator.shards = 4)",
    ("pause", "adjudicator:4"): "no adjudicator shard 4; valid 0..3",
    ("crash", "journal:4:0"): "no journal 4; valid 0..3",
    ("crash", "journal:0:3"): "no journal 0 replica 3; valid 0..2 (one per AZ of the region)",
    ("crash", "storage:4:0"): "no storage shard 4; valid 0..3 (topology.storage.shards = 4)",
    ("crash", "storage:0:3"): "no storage replica 3; valid 0..2",
    ("crash", "qp:6"): "no QP 6; valid 0..5 (topology.placement.qp_per_az = 2 x 3 AZs",
    ("crash", "qp:01"): "write '01' as 1",
    ("lose_fragments", "storage:4"): "no storage shard 4; valid 0..3",
    ("corrupt_fragments", "storage:9"): "no storage shard 9",
    ("partition", "r0.az1|r1"): "no region r1; valid r0 (1 in topology.regions)",
    ("slow_link", "r0.az3|r0"): "no AZ az3 in r0 (us-east-1); valid az0..az2",
}


@pytest.mark.parametrize(("kind", "target"), sorted(MISSING))
def test_a_target_outside_the_topology_names_the_fault_target_and_range(kind, target):
    with pytest.raises(ConfigError) as error:
        load_config("faults", overrides=faults(kind, target))
    line = str(error.value)
    assert "\n" not in line
    assert f'faults.0.target = "{target}": {kind} fault: ' in line
    assert MISSING[(kind, target)] in line


def test_every_target_inside_the_topology_is_accepted():
    for target in ("adjudicator:3", "journal:3:2", "storage:3:2", "qp:5"):
        load_config("faults", overrides=faults("crash", target))
    load_config("faults", overrides=faults("lose_fragments", "storage:3"))
    load_config("faults", overrides=faults("partition", "r0.az0|*"))
    load_config("faults")  # the shipped fault workload


def test_the_range_follows_the_topology_and_blames_its_override():
    cfg = load_config("faults", topology="multi-region",
                      overrides=faults("crash", "journal:0:2"))  # 3 regions: 3 replicas
    assert cfg["faults"][0]["target"] == "journal:0:2"
    with pytest.raises(ConfigError, match=r"^--set: faults\.2\.target = \"adjudicator:2\": .*"
                                          r"valid 0\.\.1 \(topology\.adjudicator\.shards = 2\)"):
        load_config("faults", overrides=["topology.adjudicator.shards=2"])


def test_a_form_error_is_still_one_line():
    with pytest.raises(ConfigError, match="not a target for 'pause'"):
        load_config("faults", overrides=faults("pause", "qp:1"))


def test_the_cli_refuses_before_simulating_exit_2_nothing_written(tmp_path, capsys):
    out_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "faults", *sum((["--set", s] for s in faults("crash", "adjudicator:99")), []),
              "--out", str(out_dir), "--progress", "none"])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "no adjudicator shard 99; valid 0..3" in err
    assert "Traceback" not in err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_a_storage_fault_with_more_shards_than_loaded_keys_is_refused():
    """The run splits 10 keys into fewer than 20 shards: storage:15:0 would not exist."""
    with pytest.raises(ConfigError, match=r"topology\.storage\.shards = 20 is more than the "
                                          r"10 loaded keys \(load\.record_count\)"):
        load_config("ycsb-a", overrides=["load.record_count=10", "topology.storage.shards=20",
                                         *faults("crash", "storage:15:0")])
    load_config("ycsb-a", overrides=["load.record_count=10", "topology.storage.shards=20",
                                     *faults("crash", "adjudicator:15"),
                                     "topology.adjudicator.shards=20"])


def test_an_element_of_an_empty_array_says_the_array_is_empty():
    with pytest.raises(ConfigError, match=r"faults\.0: no such array element: the array is empty"):
        load_config("ycsb-a", overrides=['faults.0.target="qp:1"'])
