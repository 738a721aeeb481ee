"""Every command that reads a run folder refuses a damaged one (issue 14, item 4):
summary.json records each file's size and SHA-256 when the run is written, and
compare, report, export and check verify them: one line, exit 3."""

from __future__ import annotations

import shutil

import pytest

from dsqlbench.cli import main

SMALL = ["--set", "load.record_count=500", "--set", "clients.count=4", "--duration", "0.4",
         "--set", "run.warmup_s=0.1", "--progress", "none", "-q"]


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "good"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "list-append", *SMALL, "--out", str(out)])
        raise SystemExit(0)
    assert exit_info.value.code == 0
    return out


def damaged(good_run, tmp_path, name, how):
    copy = tmp_path / "damaged"
    shutil.copytree(good_run, copy)
    path = copy / name
    data = path.read_bytes()
    path.write_bytes(data[:100] if how == "truncate" else
                     data[:200] + bytes([data[200] ^ 0x10]) + data[201:])
    return copy


COMMANDS = {
    "compare": lambda good, bad, tmp: ["compare", str(good), str(bad)],
    "report": lambda good, bad, tmp: ["report", str(bad), "-o", str(tmp / "d.html")],
    "export csv": lambda good, bad, tmp: ["export", str(bad), "--format", "csv"],
    "export hgrm": lambda good, bad, tmp: ["export", str(bad), "--format", "hgrm"],
    "check": lambda good, bad, tmp: ["check", str(bad)],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name, how", [("transactions.parquet", "truncate"),
                                       ("timeseries.parquet", "flip"),
                                       ("history.parquet", "flip")])
def test_a_damaged_file_is_one_line_exit_3(good_run, tmp_path, capsys, command, name, how):
    bad = damaged(good_run, tmp_path, name, how)
    code, out, err = run_cli(capsys, *COMMANDS[command](good_run, bad, tmp_path))
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dsqlbench: error: ") and "Traceback" not in err
    assert str(bad / name) in lines[0]
    assert ("truncated or was replaced" if how == "truncate" else "corrupt or was replaced") in lines[0]
    assert not (tmp_path / "d.html").exists()


def test_the_good_folder_passes_every_command(good_run, tmp_path, capsys):
    for command in sorted(COMMANDS):
        code, _, err = run_cli(capsys, *COMMANDS[command](good_run, good_run, tmp_path))
        assert code == 0, (command, err)


SWEEP = """[sweep]
name = "s"
workload = "ycsb-a"
set = ["run.duration_s=0.4", "run.warmup_s=0.1", "load.record_count=500", "clients.count=4"]
[sweep.grid]
"clients.think_time_ms" = [0.0, 1.0]
"""


def test_a_sweep_resume_redoes_a_damaged_run(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SWEEP)
    out = tmp_path / "o"
    code, _, err = run_cli(capsys, "sweep", str(tmp_path / "s.toml"), "--out", str(out), "--jobs", "1")
    assert code == 0, err
    good = (out / "p000-r0" / "transactions.parquet").read_bytes()
    damaged_table = out / "p001-r0" / "transactions.parquet"
    damaged_table.write_bytes(damaged_table.read_bytes()[:100])
    code, out_text, err = run_cli(capsys, "sweep", str(tmp_path / "s.toml"), "--out", str(out),
                                  "--jobs", "1")
    assert code == 0, err
    assert "resuming: 1 of 2 runs already done" in out_text and "p001-r0" in out_text
    assert (out / "p000-r0" / "transactions.parquet").read_bytes() == good
    code, _, err = run_cli(capsys, "compare", str(out / "p000-r0"), str(out / "p001-r0"))
    assert code in (0, 1), err  # readable again


@pytest.mark.parametrize("make_args", [
    lambda run: ["compare", str(run), str(run), "-o", str(run / "summary.json")],
    lambda run: ["report", str(run), "-o", str(run / "dashboard.html")],
    lambda run: ["export", str(run), "--format", "csv", "-o", str(run / "transactions.parquet")],
])
def test_output_over_or_into_an_input_folder_is_refused(good_run, tmp_path, capsys, make_args):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, _, err = run_cli(capsys, *make_args(run))
    assert code == 2 and err.count("\n") == 1 and "would write over or into the input" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_sweep_folder_given_as_a_run_names_its_runs(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SWEEP)
    out = tmp_path / "o"
    assert run_cli(capsys, "sweep", str(tmp_path / "s.toml"), "--out", str(out), "--jobs", "1")[0] == 0
    code, _, err = run_cli(capsys, "compare", str(out), str(out))
    assert code == 3 and err.count("\n") == 1
    assert f"{out}: a sweep folder, not a run; give one of its run folders, e.g. {out / 'p000-r0'}" in err
