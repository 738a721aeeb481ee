"""The command line: a run writes its folder; bad input is one line, exit 2, no files."""

import json
import math

import pytest

from dsqlbench.cli import main

SMALL = ["--set", "load.record_count=2000", "--set", "clients.count=8", "--duration", "0.4",
         "--set", "run.warmup_s=0.1", "--progress", "none"]


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_run_writes_the_three_result_files_and_prints_the_summary(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "run", *SMALL, "--out", str(out_dir))
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "summary.json", "timeseries.parquet", "transactions.parquet"]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["config"]["workload"]["name"] == "ycsb-a"
    assert out.startswith("SEED=1 workload=ycsb-a")
    assert "latency" in out and "host (wall clock" in out


def test_workloads_lists_every_shipped_workload_and_topology(capsys):
    code, out, _ = run_cli(capsys, "workloads")
    assert code == 0
    for name in ("ycsb-a", "ycsb-f", "hot-key", "bank", "single-region", "multi-region"):
        assert name in out


def bad(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


BAD_INPUTS = {
    "missing file": (lambda tmp: [str(tmp / "nope.toml")], "nope.toml"),
    "toml syntax": (lambda tmp: [bad(tmp, '[workload]\nname = "x\n')], "bad.toml"),
    "unknown key": (lambda tmp: [bad(tmp, '[workload]\nname = "x"\n[clients]\ncout = 3\n')],
                    "did you mean 'clients.count'"),
    "wrong type": (lambda tmp: ["--set", "clients.count=\"many\""], "clients.count"),
    "bool is no int": (lambda tmp: ["--set", "clients.count=true"], "clients.count"),
    "zero clients": (lambda tmp: ["--set", "clients.count=0"], "clients.count = 0"),
    "negative rate": (lambda tmp: ["--set", "clients.mode=\"open\"", "--set", "clients.rate_per_s=-5"],
                      "clients.rate_per_s"),
    "nan": (lambda tmp: ["--set", "topology.network.client.median_us=nan"], "median_us"),
    "k+m > 255": (lambda tmp: ["--set", "topology.crossbar.erasure_k=200",
                               "--set", "topology.crossbar.erasure_m=100"], "255"),
    "unknown workload": (lambda tmp: ["ycsb-z"], "ycsb-a"),
    "binary file": (lambda tmp: [bad(tmp, b"\x00\xff\xfe garbage")], "bad.toml"),
    "bad override syntax": (lambda tmp: ["--set", "clients.count"], "clients.count"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    make_args, expected = BAD_INPUTS[case]
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "run", *make_args(tmp_path), "--out", str(out_dir),
                             "--progress", "none")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dsqlbench: error: ") and expected in lines[0]
    assert "Traceback" not in err
    assert not out_dir.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_debug_shows_the_traceback_for_bad_input(capsys):
    with pytest.raises(Exception) as info:
        main(["--debug", "run", "--set", "clients.count=0"])
    assert "clients.count" in str(info.value)


def test_an_occupied_out_folder_is_refused_before_simulating(tmp_path, capsys):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, "run", *SMALL, "--out", str(out_dir))
    assert code == 2 and "already exists" in err
    assert (out_dir / "keep.txt").read_text() == "mine"


def test_duration_and_transactions_are_exclusive(capsys):
    code, _, err = run_cli(capsys, "run", "--duration", "1", "--transactions", "5")
    assert code == 2 and "exclusive" in err


def test_a_load_too_large_for_memory_is_refused_before_allocating(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--set", "load.record_count=100000000",
                           "--set", "load.value_bytes=1048576", "--out", str(tmp_path / "x"))
    assert code == 2 and "load.record_count" in err and "GiB" in err


def test_an_interrupted_run_says_where_it_stopped_and_writes_nothing(capsys, tmp_path, monkeypatch):
    import dsqlbench.runner

    def interrupted(cfg, progress_factory=None, **_):
        with progress_factory() as bar:
            bar.update({"sim_s": 2.5, "committed": 1, "aborted": 0, "throughput_per_s": 1.0,
                        "warmup": False})
        raise KeyboardInterrupt

    monkeypatch.setattr(dsqlbench.runner, "run_config", interrupted)
    out_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "--progress", "none", "--out", str(out_dir))
    assert code == 130 and "interrupted at simulated 2.50 s of 10 s" in err
    assert not out_dir.exists() and list(tmp_path.iterdir()) == []
