"""Workload and topology config: defaults, overrides, shipped files and every kind of
bad input (each one ConfigError line naming the file, the key and what is allowed)."""

from __future__ import annotations

import json
import math

import pytest

from dsqlbench import config
from dsqlbench.config import (
    config_sha256,
    load_config,
    schema_keys,
    shipped_dir,
    shipped_topologies,
    shipped_workloads,
    validate_config,
)
from dsqlbench.errors import ConfigError

SHIPPED = ["bank", "faults", "hot-key", "list-append", "read-mostly", "tpcb", "tpcc", "ycsb-a", "ycsb-b", "ycsb-c", "ycsb-d", "ycsb-e", "ycsb-f", "ycsb-sql"]
MINIMAL = '[workload]\nname = "mini"\n'


def write(folder, text: str, name: str = "w.toml"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(*args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    return caught.value


def file_error(tmp_path, text: str, *fragments: str) -> str:
    """Load a workload file with ``text``; its error must name the file and fragments."""
    path = write(tmp_path, text)
    message = str(error_of(str(path)))
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for name, value in tree.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name == "region_rtt_ms":
            out.update({f"{dotted}.<key>": rtt for rtt in value.values()})
        elif isinstance(value, dict):
            out.update(flatten(value, dotted))
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
            for item in value:
                out.update(flatten(item, f"{dotted}[]"))
        else:
            out[dotted] = value
    return out


# --- defaults and shipped files -------------------------------------------------------


def test_minimal_file_fills_every_default(tmp_path):
    cfg = load_config(str(write(tmp_path, MINIMAL)))
    flat = flatten(cfg)
    documented = {doc.key: doc for doc in schema_keys()}
    named = ("workload.name", "topology.topology.name", "topology.topology.description", "topology.regions[].name")
    for key, value in flat.items():
        assert key in documented, key
        if key not in named and not key.startswith("topology."):  # the topology file sets those
            assert value == documented[key].default, key
    assert cfg["run"] == {"duration_s": 10.0, "warmup_s": 1.0, "transactions": 0, "seed": 1, "timeseries_interval_s": 1.0}
    assert cfg["clients"] == {"mode": "closed", "count": 64, "think_time_ms": 0.0, "rate_per_s": None}
    assert cfg["retry"] == {"max_attempts": 10, "backoff_ms": 1.0, "backoff_max_ms": 50.0, "jitter": True}
    assert cfg["ycsb"]["request_distribution"] == "zipfian" and cfg["ycsb"]["zipfian_constant"] == 0.99
    assert cfg["workload"]["topology"] == "single-region"
    assert cfg["topology"]["topology"]["name"] == "single-region"
    assert json.loads(json.dumps(cfg)) == cfg


def test_topology_defaults_fill_and_name_defaults_to_file_stem(tmp_path):
    write(tmp_path, '[[regions]]\nname = "r1"\n', "tiny.toml")
    cfg = load_config(str(write(tmp_path, MINIMAL + 'topology = "tiny.toml"\n')))
    topology = cfg["topology"]
    assert topology["topology"]["name"] == "tiny"
    assert topology["regions"] == [{"name": "r1", "azs": 3, "role": "full"}]
    assert topology["crossbar"] == {"tick_us": 250.0, "erasure_k": 4, "erasure_m": 2}
    assert topology["network"]["cross_region"] == {"median_us": 30000.0, "sigma": 0.1, "tail_probability": 0.001, "tail_multiplier": 3.0}
    assert topology["network"]["region_rtt_ms"] == {}
    assert topology["clock"]["t_start_from"] == "latest" and topology["clock"]["commit_wait"] is True
    assert topology["limits"] == {"max_modified_rows": 3000, "max_modified_bytes": 10485760, "max_txn_duration_s": 300.0}


def test_every_shipped_workload_loads():
    names = [name for name, _, _ in shipped_workloads()]
    assert names == SHIPPED
    for name, description, path in shipped_workloads():
        assert description and "\n" not in description
        cfg = load_config(name)
        assert cfg["workload"]["name"] == name == path.stem
        if cfg["workload"]["kind"] == "ycsb" and name != "faults":
            assert cfg["load"]["record_count"] == 100_000
        assert load_config(str(path)) == cfg


def test_shipped_mixes_are_the_ycsb_core_workloads():
    def mix(name):
        ycsb = load_config(name)["ycsb"]
        shares = {key.removesuffix("_proportion"): ycsb[key] for key in config.PROPORTION_KEYS if ycsb[key]}
        return shares, ycsb["request_distribution"]

    assert mix("ycsb-a") == ({"read": 0.5, "update": 0.5}, "zipfian")
    assert mix("ycsb-b") == ({"read": 0.95, "update": 0.05}, "zipfian")
    assert mix("ycsb-c") == ({"read": 1.0}, "zipfian")
    assert mix("ycsb-d") == ({"read": 0.95, "insert": 0.05}, "latest")
    assert mix("ycsb-e") == ({"insert": 0.05, "scan": 0.95}, "zipfian")
    assert mix("ycsb-f") == ({"read": 0.5, "rmw": 0.5}, "zipfian")
    assert mix("read-mostly") == ({"read": 0.95, "update": 0.05}, "uniform")
    assert mix("hot-key") == ({"update": 1.0}, "hotkey")
    hot = load_config("hot-key")
    assert hot["ycsb"]["hot_key_count"] == 1 and hot["clients"]["count"] == 64
    e = load_config("ycsb-e")["ycsb"]
    assert e["scan_length_max"] == 100 and e["scan_length_distribution"] == "uniform"


def test_default_workload_is_ycsb_a_and_topologies_ship():
    assert load_config(None) == load_config("ycsb-a")
    assert (shipped_dir() / "ycsb-a.toml").is_file()
    assert [name for name, _, _ in shipped_topologies()] == ["multi-region", "single-region"]
    multi = load_config(None, topology="multi-region")["topology"]
    assert [r["role"] for r in multi["regions"]] == ["full", "full", "witness"]
    single = load_config(None)["topology"]
    assert single["regions"] == [{"name": "us-east-1", "azs": 3, "role": "full"}]


def test_schema_documents_every_key_once():
    keys = [doc.key for doc in schema_keys()]
    assert len(keys) == len(set(keys))
    assert all(doc.description and doc.allowed for doc in schema_keys())
    resolved = set(flatten(load_config("ycsb-a")))
    assert resolved <= set(keys)
    assert "topology.network.region_rtt_ms.<key>" in keys and "clients.rate_per_s" in keys


# --- hashing --------------------------------------------------------------------------


def test_config_sha256_is_stable_and_canonical(tmp_path):
    a = load_config("ycsb-a")
    assert config_sha256(a) == config_sha256(load_config("ycsb-a"))
    assert len(config_sha256(a)) == 64
    reordered = json.loads(json.dumps(a, sort_keys=True))
    assert config_sha256(reordered) == config_sha256(a)
    # A float written as an integer resolves to the same float.
    as_int = load_config(str(write(tmp_path, MINIMAL + "[run]\nduration_s = 10\n")))
    as_float = load_config(str(write(tmp_path, MINIMAL + "[run]\nduration_s = 10.0\n", "x.toml")))
    assert config_sha256(as_int) == config_sha256(as_float)
    assert config_sha256(load_config("ycsb-a", seed=2)) != config_sha256(a)


# --- overrides ------------------------------------------------------------------------


def test_overrides_set_nested_keys():
    cfg = load_config(
        "ycsb-a",
        overrides=[
            "clients.count=8",
            "topology.journal.write_median_us=3000",
            "ycsb.request_distribution=uniform",
            "workload.description=two words",
            "ycsb.scrambled=false",
            "topology.network.client={median_us=500, sigma=0.5}",
        ],
    )
    assert cfg["clients"]["count"] == 8
    assert cfg["topology"]["journal"]["write_median_us"] == 3000.0
    assert isinstance(cfg["topology"]["journal"]["write_median_us"], float)
    assert cfg["ycsb"]["request_distribution"] == "uniform"
    assert cfg["workload"]["description"] == "two words"
    assert cfg["ycsb"]["scrambled"] is False
    assert cfg["topology"]["network"]["client"] == {"median_us": 500.0, "sigma": 0.5, "tail_probability": 0.001, "tail_multiplier": 10.0}


def test_overrides_into_arrays_maps_and_string_keys():
    cfg = load_config(
        None,
        topology="multi-region",
        overrides=["topology.regions.2.azs=3", 'topology.network.region_rtt_ms."us-east-1/us-east-2"=20', "workload.name=2024"],
    )
    assert cfg["topology"]["regions"][2]["azs"] == 3
    assert cfg["topology"]["network"]["region_rtt_ms"]["us-east-1/us-east-2"] == 20.0
    assert cfg["workload"]["name"] == "2024"
    regions = load_config(None, overrides=['topology.regions=[{name="a"}, {name="b", role="witness"}]'])["topology"]["regions"]
    assert regions == [{"name": "a", "azs": 3, "role": "full"}, {"name": "b", "azs": 3, "role": "witness"}]


def test_override_can_fix_a_cross_field_problem_and_open_mode_works():
    cfg = load_config(None, overrides=["clients.mode=open", "clients.rate_per_s=500"])
    assert cfg["clients"]["mode"] == "open" and cfg["clients"]["rate_per_s"] == 500.0
    cfg = load_config(None, overrides=["ycsb.read_proportion=0.25", "ycsb.update_proportion=0.75"])
    assert cfg["ycsb"]["update_proportion"] == 0.75


def test_override_of_workload_topology_loads_that_topology():
    cfg = load_config(None, overrides=["workload.topology=multi-region", "topology.regions.1.azs=2"])
    assert cfg["topology"]["topology"]["name"] == "multi-region"
    assert cfg["topology"]["regions"][1]["azs"] == 2


def test_cli_parameters_set_run_keys():
    cfg = load_config("ycsb-b", seed=42, duration_s=5, transactions=1000)
    assert cfg["run"]["seed"] == 42 and cfg["run"]["duration_s"] == 5.0 and cfg["run"]["transactions"] == 1000


def test_topology_parameter_beats_the_file_and_takes_paths(tmp_path):
    path = write(tmp_path, '[topology]\nname = "mine"\n[[regions]]\nname = "x"\nazs = 1\n', "mine.toml")
    cfg = load_config("ycsb-a", topology=str(path))
    assert cfg["topology"]["topology"]["name"] == "mine" and cfg["workload"]["topology"] == str(path)


def test_bad_override_values_are_validated():
    assert str(error_of(None, overrides=["clients.count=0"])) == "--set: clients.count = 0: must be an integer in 1..100000"
    assert "must be an integer in 1..100000, got a boolean" in str(error_of(None, overrides=["clients.count=true"]))
    assert "got a string" in str(error_of(None, overrides=["clients.count=eight"]))
    message = str(error_of(None, overrides=["topology.crossbar.erasure_m=252"]))
    assert message.startswith("--set: topology.crossbar.erasure_m = 252") and "<= 255" in message
    assert "nan and inf are not allowed" in str(error_of(None, overrides=["topology.clock.qp.offset_us=nan"]))
    assert "index must be in 0..0" in str(error_of(None, overrides=["topology.regions.3.azs=1"]))
    assert str(error_of(None, seed=-1)).startswith("--seed: run.seed = -1: must be an integer in 0..")
    assert str(error_of(None, duration_s=0)).startswith("--duration: run.duration_s = 0.0: must be")


def test_bad_override_syntax_names_the_override():
    assert str(error_of(None, overrides=["clientscount8"])).startswith("--set clientscount8: expected key=value")
    assert str(error_of(None, overrides=["=8"])).startswith("--set =8: expected key=value")
    assert str(error_of(None, overrides=["clients..count=8"])).startswith("--set clients..count=8:")


def test_unknown_override_key_suggests_the_nearest():
    assert str(error_of(None, overrides=["clients.cout=3"])) == "--set: unknown key 'clients.cout'; did you mean 'clients.count'?"
    message = str(error_of(None, overrides=["topology.jurnal.write_median_us=3"]))
    assert "did you mean 'topology.journal.write_median_us'?" in message
    assert "did you mean 'clients.count'?" in str(error_of(None, overrides=["count=3"]))
    assert "unknown key 'clients.count.x'" in str(error_of(None, overrides=["clients.count.x=3"]))


def test_cross_field_error_from_an_override_names_the_override():
    message = str(error_of(None, overrides=["topology.regions.0.role=witness"]))
    assert message.startswith("--set: topology.regions:") and 'role = "full"' in message


# --- bad files ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.toml"
    assert str(error_of(str(missing))) == f"{missing}: no such file"


def test_folder_binary_and_non_utf8_files(tmp_path):
    assert "is a folder" in str(error_of(str(tmp_path) + "/"))
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert str(error_of(str(binary))) == f"{binary}: not a TOML file: it holds binary data"
    latin = tmp_path / "l.toml"
    latin.write_bytes(b'[workload]\nname = "caf\xe9"\n')
    assert str(error_of(str(latin))).startswith(f"{latin}: not a TOML file: byte")


def test_toml_syntax_error_has_line_and_column(tmp_path):
    message = file_error(tmp_path, MINIMAL + "[clients]\ncount 8\n", "TOML syntax error", "line 4", "column")
    assert message.count(":") >= 2


def test_unknown_shipped_name_lists_the_available_ones():
    message = str(error_of("ycsb-z"))
    assert message.startswith("ycsb-z: ")
    assert all(name in message for name in SHIPPED)
    message = str(error_of(None, topology="mars"))
    assert 'workload.topology = "mars"' in message and "multi-region, single-region" in message


def test_unknown_keys_in_a_file_suggest_the_nearest(tmp_path):
    message = file_error(tmp_path, MINIMAL + "[clients]\ncout = 8\n")
    assert message.endswith("unknown key 'clients.cout'; did you mean 'clients.count'?")
    file_error(tmp_path, MINIMAL + "[client]\ncount = 8\n", "unknown key 'client'; did you mean 'clients'?")
    file_error(tmp_path, MINIMAL + "[topology]\nname = 'x'\n", "unknown key 'topology'")
    file_error(tmp_path, MINIMAL + "[ycsb]\nread_proportoin = 1.0\n", "did you mean 'ycsb.read_proportion'?")


def test_missing_required_workload_name(tmp_path):
    file_error(tmp_path, "[run]\nseed = 3\n", "workload.name: missing: required, a string")


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[clients]\ncount = true", ["clients.count = true", "must be an integer in 1..100000, got a boolean"]),
        ("[clients]\ncount = 8.0", ["clients.count = 8.0", "got a float"]),
        ('[clients]\ncount = "8"', ['clients.count = "8"', "got a string"]),
        ('[run]\nduration_s = "10"', ["run.duration_s", "must be a finite number in (0, 86400], got a string"]),
        ("[ycsb]\nscrambled = 1", ["ycsb.scrambled = 1", "must be true or false, got an integer"]),
        ("[workload.description]\nx = 1", ["workload.description", "must be a string, got a table"]),
        ('[ycsb]\nrequest_distribution = "pareto"', ["ycsb.request_distribution", '"zipfian", "uniform", "latest", "hotspot", "hotkey"']),
    ],
)
def test_wrong_types(tmp_path, text, fragments):
    file_error(tmp_path, MINIMAL + text + "\n", *fragments)


def test_a_section_that_is_not_a_table(tmp_path):
    file_error(tmp_path, "clients = 3\n" + MINIMAL, "clients = 3", "must be a table, got an integer")


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[clients]\ncount = 0", ["clients.count = 0", "must be an integer in 1..100000"]),
        ('[clients]\nmode = "open"\nrate_per_s = -5.0', ["clients.rate_per_s = -5.0", "must be a finite number > 0"]),
        ('[clients]\nmode = "open"', ["clients.rate_per_s", 'required when clients.mode = "open"']),
        ("[clients]\nrate_per_s = 100", ["clients.rate_per_s = 100.0", 'allowed only when clients.mode = "open"']),
        ('[clients]\nmode = "open"\nrate_per_s = 10\nthink_time_ms = 5', ["clients.think_time_ms = 5.0", "must be 0"]),
        ("[run]\nwarmup_s = nan", ["run.warmup_s = nan", "nan and inf are not allowed"]),
        ("[run]\nduration_s = inf", ["run.duration_s = inf", "nan and inf are not allowed"]),
        ("[run]\nduration_s = 86401", ["run.duration_s = 86401.0", "(0, 86400]"]),
        ("[run]\nwarmup_s = 10.0", ["run.warmup_s = 10.0", "must be < run.duration_s (10)"]),
        ("[run]\nseed = 9223372036854775808", ["run.seed", "0..9223372036854775807"]),
        ("[run]\ntransactions = -1", ["run.transactions = -1", "must be an integer >= 0"]),
        ("[load]\nrecord_count = 0", ["load.record_count = 0", "1..100000000"]),
        ("[ycsb]\nread_proportion = 0.6", ["ycsb.*_proportion", "= 1.1", "must sum to 1"]),
        ("[ycsb]\nread_proportion = 0.4", ["ycsb.*_proportion", "must sum to 1"]),
        ("[ycsb]\nread_proportion = 1.5\nupdate_proportion = -0.5", ["ycsb.read_proportion = 1.5", "in [0, 1]"]),
        ("[ycsb]\nzipfian_constant = 1.0", ["ycsb.zipfian_constant = 1.0", "in (0, 1)"]),
        ("[ycsb]\nhot_key_count = 0", ["ycsb.hot_key_count = 0", ">= 1"]),
        ("[load]\nrecord_count = 5\n[ycsb]\nhot_key_count = 6", ["ycsb.hot_key_count = 6", "<= load.record_count (5)"]),
        ("[retry]\nmax_attempts = 0", ["retry.max_attempts = 0", "1..1000"]),
        ("[retry]\nbackoff_ms = 10\nbackoff_max_ms = 5", ["retry.backoff_max_ms = 5.0", ">= retry.backoff_ms (10)"]),
    ],
)
def test_out_of_range(tmp_path, text, fragments):
    file_error(tmp_path, MINIMAL + text + "\n", *fragments)


def test_proportions_sum_within_tolerance(tmp_path):
    text = MINIMAL + "[ycsb]\nread_proportion = 0.1\nupdate_proportion = 0.2\nscan_proportion = 0.7\n"
    cfg = load_config(str(write(tmp_path, text)))  # 0.1 + 0.2 + 0.7 is not exactly 1.0
    assert math.isclose(sum(cfg["ycsb"][k] for k in config.PROPORTION_KEYS), 1.0)


# --- bad topology files ---------------------------------------------------------------

REGION = '[[regions]]\nname = "r1"\n'


def topology_error(tmp_path, text: str, *fragments: str) -> str:
    topology = write(tmp_path, text, "topo.toml")
    workload = write(tmp_path, MINIMAL + 'topology = "topo.toml"\n')
    message = str(error_of(str(workload)))
    assert message.startswith(f"{topology}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.mark.parametrize(
    "text, fragments",
    [
        (REGION + "[crossbar]\nerasure_k = 200\nerasure_m = 100", [": crossbar.erasure_m = 100: erasure_k + erasure_m = 300; must be <= 255"]),
        (REGION + "[crossbar]\nerasure_k = 0", ["crossbar.erasure_k = 0", "1..255"]),
        (REGION + "[network.same_az]\nmedian_us = nan", ["network.same_az.median_us = nan", "nan and inf"]),
        (REGION + "[network.cross_az]\ntail_multiplier = 0.5", ["network.cross_az.tail_multiplier = 0.5", ">= 1"]),
        (REGION + "[clock]\ndrift_ppm = 1001", ["clock.drift_ppm = 1001.0", "[0, 1000]"]),
        (REGION + '[clock]\nt_start_from = "middle"', ["clock.t_start_from", '"earliest", "now", "latest"']),
        (REGION + "[adjudicator]\nshards = 0", ["adjudicator.shards = 0", "1..256"]),
        (REGION + "[storage]\nshards = 2000", ["storage.shards = 2000", "1..1024"]),
        (REGION + "[placement]\nqp_per_az = 65", ["placement.qp_per_az = 65", "1..64"]),
        (REGION + "[journal]\nwrite_median_us = 0", ["journal.write_median_us = 0.0", "> 0"]),
        (REGION + "[limits]\nmax_modified_rows = 0", ["limits.max_modified_rows = 0", ">= 1"]),
        (REGION + "[jurnal]\nwrite_median_us = 3", ["unknown key 'jurnal'", "did you mean 'journal'?"]),
        ('[[regions]]\nname = "r1"\nazz = 3', ["unknown key 'regions.0.azz'", "did you mean 'regions.0.azs'?"]),
        ('[[regions]]\nname = "r1"\nazs = 7', ["regions.0.azs = 7", "1..6"]),
        ('[[regions]]\nname = "r1"\nrole = "witness"', ["regions: must hold", 'at least one region with role = "full"']),
        ('[[regions]]\nname = "r1"\n[[regions]]\nname = "r1"', ["regions.1.name = \"r1\"", "unique"]),
        ('[[regions]]\nazs = 3', ["regions.0.name: missing: required"]),
        ("[placement]\nqp_per_az = 2", ["regions: missing: required, an array"]),
        ("regions = 3", ["regions = 3", "must be an array of tables"]),
        (REGION + '[network.region_rtt_ms]\n"r1/r9" = 5.0', ['region_rtt_ms."r1/r9"', 'two different regions as "a/b"']),
        (REGION + '[network.region_rtt_ms]\n"r1/r2" = -5.0', ['region_rtt_ms.r1/r2 = -5.0', "> 0"]),
    ],
)
def test_bad_topologies(tmp_path, text, fragments):
    topology_error(tmp_path, text + "\n", *fragments)


def test_topology_path_is_relative_to_the_workload_file(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", REGION, "t.toml")
    workload = write(tmp_path / "sub", MINIMAL + 'topology = "t.toml"\n')
    assert load_config(str(workload))["topology"]["regions"][0]["name"] == "r1"
    missing = write(tmp_path, MINIMAL + 'topology = "gone.toml"\n')
    message = str(error_of(str(missing)))
    assert message.startswith(f'{missing}: workload.topology = "gone.toml": no such topology file')


def test_unknown_topology_name_in_a_file(tmp_path):
    file_error(tmp_path, MINIMAL + 'topology = "moon"\n', 'workload.topology = "moon"', "shipped: multi-region, single-region")


# --- re-validation --------------------------------------------------------------------


def test_validate_config_round_trips_and_rejects():
    cfg = load_config("ycsb-e", topology="multi-region")
    assert validate_config(json.loads(json.dumps(cfg))) == cfg
    cfg["clients"]["count"] = 0
    with pytest.raises(ConfigError, match=r"^summary.json: clients.count = 0: must be an integer in 1..100000$"):
        validate_config(cfg, "summary.json")
