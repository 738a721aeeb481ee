"""Sweeps: the spec is validated up front, expands deterministically, runs into ordinary
run folders plus an index, and resumes without redoing finished runs."""

import json

import pyarrow.parquet as pq
import pytest

from dsqlbench import sweep as sweep_mod
from dsqlbench.cli import main
from dsqlbench.errors import ConfigError
from dsqlbench.results.folder import load_run

SMALL_SET = ('set = ["load.record_count=2000", "clients.count=8", "run.duration_s=0.3", '
             '"run.warmup_s=0.1"]')


def write(tmp_path, body, name="s.toml", header=True):
    text = (f'[sweep]\nname = "t"\nworkload = "ycsb-a"\n{SMALL_SET}\n' if header else "") + body
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *map(str, args)])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


# ---------------------------------------------------------------------- validation

BAD_SPECS = {
    "unknown top-level key": ('[sweeps]\nname = "x"\n', False, "sweeps: unknown key"),
    "unknown sweep key": ('[sweep]\nname = "x"\nworkload = "ycsb-a"\nrepeat = 2\n', False,
                          "sweep.repeat: unknown key"),
    "no workload": ('[sweep]\nname = "x"\n[sweep.grid]\n"clients.count" = [1]\n', False,
                    "sweep.workload: required"),
    "bad name": ('[sweep]\nname = "a b"\nworkload = "ycsb-a"\n', False, "sweep.name"),
    "nothing varied": ("", True, "nothing to vary"),
    "empty grid": ("[sweep.grid]\n", True, "sweep.grid: empty"),
    "empty axis": ('[sweep.grid]\n"clients.count" = []\n', True, "non-empty array"),
    "zero step": ('[sweep.grid]\n"clients.count" = {start = 1, stop = 4, step = 0}\n', True,
                  "step: must not be 0"),
    "empty range": ('[sweep.grid]\n"clients.count" = {start = 4, stop = 1}\n', True,
                    "is empty"),
    "range without stop": ('[sweep.grid]\n"clients.count" = {start = 4}\n', True,
                           "misses stop"),
    "bad repeats": ('repeats = 0\n[sweep.grid]\n"clients.count" = [1]\n', True, "sweep.repeats"),
    "duplicate label": ('[[sweep.points]]\nlabel = "a"\n[[sweep.points]]\nlabel = "a"\n', True,
                        "used twice"),
    "point key": ('[[sweep.points]]\nlabel = "a"\nsets = {}\n', True, "unknown key"),
    "seed in grid": ('[sweep.grid]\n"run.seed" = [1, 2]\n', True, "use [sweep] seed"),
    "grid and point overlap": ('[sweep.grid]\n"clients.count" = [1]\n[[sweep.points]]\n'
                               'label = "a"\nset = {"clients.count" = 2}\n', True,
                               "set both by [sweep.grid] and by point"),
    "unknown config key": ('[sweep.grid]\n"clients.cout" = [1, 2]\n', True,
                           "point 0 \"cout=1\": --set"),
    "bad config value": ('[[sweep.points]]\nlabel = "none"\nset = {"clients.count" = 0}\n',
                         True, 'point 0 "none"'),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_a_bad_sweep_file_is_one_config_error_line(tmp_path, case):
    body, header, expected = BAD_SPECS[case]
    path = write(tmp_path, body, header=header)
    with pytest.raises(ConfigError) as error:
        sweep_mod.load_sweep(path)
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert message.startswith(str(path))


def test_a_bad_point_fails_before_anything_runs(tmp_path, capsys):
    path = write(tmp_path, '[sweep.grid]\n"clients.count" = [4, 0]\n')
    code, _, err = run_cli(capsys, path, "--out", tmp_path / "out")
    assert code == 2 and "clients.count" in err and "point 1" in err
    assert not (tmp_path / "out").exists()


def test_float_ranges_follow_one_rule_and_integer_ranges_stay_integers():
    def values(start, stop, step):
        return sweep_mod.float_range({"start": start, "stop": stop, "step": step}, "s", "k")

    assert values(0, 1, 0.1) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert values(0.5, 1.0, 0.25) == [0.5, 0.75]
    assert values(1.0, 0.0, -0.5) == [1.0, 0.5]
    assert values(1, 9, 3) == [1, 4, 7] and all(isinstance(v, int) for v in values(1, 9, 3))


# ---------------------------------------------------------------------- expansion


def test_points_times_grid_times_repeats_expand_in_a_fixed_order(tmp_path):
    path = write(tmp_path, (
        "repeats = 2\n"
        "[sweep.grid]\n"
        "topology.adjudicator.shards = [1, 2]\n"  # nested TOML keys work like quoted ones
        '"ycsb.zipfian_constant" = {start = 0.5, stop = 0.8, step = 0.1}\n'
        '[[sweep.points]]\nlabel = "few"\nset = {"clients.count" = 4}\n'
        '[[sweep.points]]\nlabel = "many"\nset = {clients = {count = 16}}\n'))
    sweep = sweep_mod.load_sweep(path)
    assert len(sweep.runs) == 2 * 2 * 3 * 2
    assert [r.name for r in sweep.runs[:3]] == ["p000-r0", "p000-r1", "p001-r0"]
    assert sweep.runs[0].label == "few shards=1 zipfian_constant=0.5"
    assert sweep.runs[-1].label == "many shards=2 zipfian_constant=0.7"
    assert sweep.varied == ("clients.count", "topology.adjudicator.shards",
                            "ycsb.zipfian_constant")
    last = sweep.runs[-1]
    assert last.params == {"clients.count": 16, "topology.adjudicator.shards": 2,
                           "ycsb.zipfian_constant": 0.7}
    assert last.config["clients"]["count"] == 16
    # The seed is the repeat's, shared by every point (common random numbers).
    assert {r.seed for r in sweep.runs if r.repeat == 0} == {sweep_mod.derive_seed(1, 0)}
    assert all(r.config["run"]["seed"] == r.seed for r in sweep.runs)


def test_derived_seeds_are_stable_and_the_spec_hash_follows_the_spec(tmp_path):
    assert sweep_mod.derive_seed(1, 0) == 2370234690656191764
    assert sweep_mod.derive_seed(1, 1) == 4958072019170822058
    assert sweep_mod.derive_seed(2, 0) != sweep_mod.derive_seed(1, 0)
    path = write(tmp_path, '[sweep.grid]\n"clients.count" = [2, 4]\n')
    first, again = sweep_mod.load_sweep(path), sweep_mod.load_sweep(path)
    assert first.spec_sha256 == again.spec_sha256
    assert [r.config_sha256 for r in first.runs] == [r.config_sha256 for r in again.runs]
    assert sweep_mod.load_sweep(path, seed=9).spec_sha256 != first.spec_sha256
    assert sweep_mod.load_sweep(path, seed=9).runs[0].seed == sweep_mod.derive_seed(9, 0)


def test_every_shipped_sweep_validates_and_clock_skew_covers_the_skews():
    shipped = sweep_mod.shipped_sweeps()
    assert set(shipped) >= {"clock-skew", "adjudicator-shards", "erasure", "zipfian"}
    sweeps = {name: sweep_mod.load_sweep(path) for name, path in shipped.items()}
    skew = sweeps["clock-skew"]
    assert skew.runs[0].config["workload"]["name"] == "hot-key"
    bound = skew.runs[0].config["topology"]["clock"]["error_bound_us"]
    qp = {r.params["topology.clock.qp.offset_us"] for r in skew.runs}
    adjudicator = {r.params["topology.clock.adjudicator.offset_us"] for r in skew.runs}
    for multiple in (0, 0.4, 0.8, 1, 2, 20, 200, 1000):
        assert multiple * bound in qp and multiple * bound in adjudicator
    assert -200 * bound in qp and -1000 * bound in adjudicator
    assert "now" in {r.params["topology.clock.t_start_from"] for r in skew.runs}
    assert any(r.params["topology.clock.qp.strobe_us"] for r in skew.runs)
    shards = {r.params["topology.adjudicator.shards"] for r in sweeps["adjudicator-shards"].runs}
    assert shards == {1, 2, 4, 8, 16}
    pairs = {(r.params["topology.crossbar.erasure_k"], r.params["topology.crossbar.erasure_m"])
             for r in sweeps["erasure"].runs}
    assert pairs == {(2, 1), (4, 2), (6, 3), (8, 4)}


# ---------------------------------------------------------------------- running


def small_sweep(tmp_path, points=3):
    values = ", ".join(str(v) for v in (4, 8, 12)[:points])
    return write(tmp_path, f'[sweep.grid]\n"clients.count" = [{values}]\n')


def test_a_sweep_writes_run_folders_and_an_index_then_resumes_only_what_is_missing(
        tmp_path, capsys):
    path, out = small_sweep(tmp_path), tmp_path / "out"
    code, stdout, err = run_cli(capsys, path, "--out", out, "--jobs", "2")
    assert code == 0, err
    assert "3 ok, 0 failed" in stdout and "commits/s" in stdout
    table = pq.read_table(out / "index.parquet")
    rows = table.to_pylist()
    assert [r["run"] for r in rows] == ["p000-r0", "p001-r0", "p002-r0"]
    assert [r["clients.count"] for r in rows] == [4, 8, 12]
    assert {r["status"] for r in rows} == {"ok"}
    document = json.loads((out / "sweep.json").read_text())
    for row in rows:
        summary = load_run(out / row["run"])
        assert summary["config_sha256"] == row["config_sha256"]
        assert row["throughput_per_s"] == summary["simulated"]["throughput_per_s"]
        assert row["host.wall_s"] > 0
        assert summary["config"]["clients"]["count"] == row["clients.count"]
    assert [r["name"] for r in document["runs"]] == [r["run"] for r in rows]
    assert json.loads(table.schema.metadata[b"params"]) == ["clients.count"]
    kept = (out / "p001-r0" / "summary.json").stat().st_mtime_ns

    # Interrupted or broken: one folder gone, one truncated. Only those two run again.
    import shutil

    shutil.rmtree(out / "p000-r0")
    (out / "p002-r0" / "summary.json").write_text('{"schema_version": 1, "se')
    code, stdout, err = run_cli(capsys, path, "--out", out, "--jobs", "1")
    assert code == 0, err
    assert "resuming: 1 of 3 runs already done" in stdout and "running 2 of 3" in stdout
    assert (out / "p001-r0" / "summary.json").stat().st_mtime_ns == kept
    assert {r["status"] for r in pq.read_table(out / "index.parquet").to_pylist()} == {"ok"}
    load_run(out / "p002-r0")


def test_a_failing_run_is_marked_failed_the_others_finish_and_a_rerun_redoes_it(
        tmp_path, capsys, monkeypatch):
    path, out = small_sweep(tmp_path), tmp_path / "out"
    real = sweep_mod._simulate_payload

    def flaky(payload):
        if payload["name"] == "p001-r0":
            raise RuntimeError("injected\nfailure")
        return real(payload)

    monkeypatch.setattr(sweep_mod, "_simulate_payload", flaky)
    code, stdout, err = run_cli(capsys, path, "--out", out, "--jobs", "1")
    assert code == 1 and "run the same command again" in err
    rows = {r["run"]: r for r in pq.read_table(out / "index.parquet").to_pylist()}
    assert rows["p001-r0"]["status"] == "failed"
    assert rows["p001-r0"]["error"] == "RuntimeError: injected failure"
    assert rows["p001-r0"]["throughput_per_s"] is None
    assert rows["p000-r0"]["status"] == rows["p002-r0"]["status"] == "ok"
    assert not (out / "p001-r0").exists()

    monkeypatch.setattr(sweep_mod, "_simulate_payload", real)
    code, stdout, _ = run_cli(capsys, path, "--out", out, "--jobs", "1")
    assert code == 0 and "running 1 of 3" in stdout


def test_an_interrupt_keeps_finished_runs_and_says_how_to_resume(tmp_path, capsys,
                                                                 monkeypatch):
    path, out = small_sweep(tmp_path), tmp_path / "out"
    real = sweep_mod._simulate_payload

    def interrupted(payload):
        if payload["name"] == "p001-r0":
            raise KeyboardInterrupt
        return real(payload)

    monkeypatch.setattr(sweep_mod, "_simulate_payload", interrupted)
    code, _, err = run_cli(capsys, path, "--out", out, "--jobs", "1")
    assert code == 130 and "--resume" in err and "1 of 3 runs are stored" in err
    statuses = [r["status"] for r in pq.read_table(out / "index.parquet").to_pylist()]
    assert statuses == ["ok", "pending", "pending"]
    assert sorted(p.name for p in out.iterdir()) == ["index.parquet", "p000-r0", "sweep.json"]


def test_a_folder_holding_another_sweep_is_refused(tmp_path, capsys):
    path, out = small_sweep(tmp_path, points=1), tmp_path / "out"
    assert run_cli(capsys, path, "--out", out, "--jobs", "1")[0] == 0
    code, _, err = run_cli(capsys, path, "--out", out, "--set", "clients.count=2")
    assert code == 2 and "holds a different sweep" in err
    code, _, err = run_cli(capsys, path, "--out", tmp_path / "none", "--resume")
    assert code == 2 and "no sweep to resume" in err


def test_the_index_reads_back_with_its_parameters_and_metrics(tmp_path, capsys):
    path, out = small_sweep(tmp_path, points=1), tmp_path / "out"
    assert run_cli(capsys, path, "--out", out, "--jobs", "1")[0] == 0
    table, document = sweep_mod.read_index(out)
    assert document["spec"]["name"] == "t" and table.num_rows == 1
    metrics = json.loads(table.schema.metadata[b"metrics"])
    assert "latency_ms.all.p99" in metrics and "checks.oracle.ok" in metrics
    assert table.column("checks.oracle.ok").to_pylist() == [True]
