"""Result folders: atomic writes, overwrite refusal, Parquet metadata, load checks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsqlbench.results import folder as results
from dsqlbench.errors import ResultError
from dsqlbench.metrics import Recorder
from dsqlbench.results.folder import (
    SCHEMA_VERSION, SUMMARY_KEYS, build_summary, config_sha256, default_run_dir,
    git_revision, load_run, read_table, write_run,
)

MS = 1_000_000
S = 1_000_000_000
CONFIG = {"workload": {"name": "ycsb-a", "clients": 8, "mix": {"read": 0.5}},
          "topology": {"name": "single-region", "azs": ["a", "b", "c"]}}
KERNELS = {"conflicts": "python", "erasure": "python", "merge": "python"}
HOST = {"events_per_wall_s": 1000.0, "sim_txn_per_wall_s": 10.0, "wall_s": 1.5}


def make_run() -> tuple[dict, dict[str, pa.Table]]:
    recorder = Recorder(0, S)
    for i in range(5):
        recorder.attempt(i, 1, "update", 0, "qp-0", "r1", "az1", i * MS, i * MS,
                         i * MS + 5 * MS, i * MS, i * MS + 4 * MS, "committed", "", True,
                         0, MS, 4 * MS, MS, 2 * MS, 0, 0, 1, 1)
    summary = build_summary(CONFIG, None, 7, KERNELS, recorder.summarize(S, S), HOST,
                            "0.1.0", None)
    tables = {"transactions": recorder.transactions_table(),
              "timeseries": recorder.timeseries_table()}
    return summary, tables


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_build_summary_has_exactly_the_top_level_keys():
    summary, _ = make_run()
    assert sorted(summary) == sorted(SUMMARY_KEYS)
    assert summary["schema_version"] == SCHEMA_VERSION == 1
    assert summary["config_sha256"] == config_sha256(CONFIG)
    with pytest.raises(ValueError, match="config_sha256"):
        build_summary(CONFIG, "0" * 64, 7, KERNELS, {}, HOST, "0.1.0", None)


def test_write_and_load_round_trip(tmp_path):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    assert sorted(p.name for p in out.iterdir()) == [
        "summary.json", "timeseries.parquet", "transactions.parquet"]
    raw = (out / "summary.json").read_bytes()
    assert raw.endswith(b"}\n")
    stored = dict(summary, files=manifest_of(out))
    assert raw == (json.dumps(stored, indent=2, sort_keys=True) + "\n").encode()
    assert load_run(out) == stored
    assert load_run(out / "summary.json") == stored
    assert leftovers(tmp_path) == []


def manifest_of(out: Path) -> dict:
    """What summary.json must list: every other file's size and SHA-256."""
    import hashlib

    return {p.name: {"bytes": p.stat().st_size,
                     "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
            for p in sorted(out.iterdir()) if p.name != "summary.json"}


def test_parquet_round_trip_keeps_data_and_metadata(tmp_path):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    for name, table in tables.items():
        back, metadata = read_table(out / f"{name}.parquet")
        assert metadata["schema_version"] == str(SCHEMA_VERSION)
        assert metadata["dsqlbench_version"] == "0.1.0"
        assert back.to_pylist() == table.to_pylist()
        assert back.schema.remove_metadata() == table.schema.remove_metadata()


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    summary, tables = make_run()
    calls = []

    def failing_write(table, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the summary and one table are already on disk
            raise OSError("disk full (simulated)")
        return pq.write_table(table, path, *args, **kwargs)

    monkeypatch.setattr(results.pq, "write_table", failing_write)
    with pytest.raises(OSError, match="disk full"):
        write_run(tmp_path / "run", summary, tables)
    assert list(tmp_path.iterdir()) == []


def test_nan_is_refused_before_anything_is_written(tmp_path):
    summary, tables = make_run()
    summary["host"]["wall_s"] = float("nan")
    with pytest.raises(ValueError):
        write_run(tmp_path / "run", summary, tables)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    summary, tables = make_run()
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ResultError, match="not empty"):
        write_run(out, summary, tables)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert leftovers(tmp_path) == []


def test_an_empty_folder_is_filled(tmp_path):
    summary, tables = make_run()
    (tmp_path / "run").mkdir()
    write_run(tmp_path / "run", summary, tables)
    assert load_run(tmp_path / "run") == dict(summary, files=manifest_of(tmp_path / "run"))


def test_overwrite_swaps_the_whole_folder(tmp_path):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    (out / "stale.txt").write_text("from the old run")
    summary["seed"] = 8
    write_run(out, summary, tables, overwrite=True)
    assert load_run(out)["seed"] == 8
    assert not (out / "stale.txt").exists()
    assert leftovers(tmp_path) == []


def test_failed_overwrite_keeps_the_old_run(tmp_path, monkeypatch):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    before = (out / "summary.json").read_bytes()
    monkeypatch.setattr(results.pq, "write_table",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        write_run(out, dict(summary, seed=9), tables, overwrite=True)
    assert (out / "summary.json").read_bytes() == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("damage, message", [
    ("truncate", "invalid JSON"),
    ("future", "newer than this dsqlbench"),
    ("unknown_version", "unknown schema_version"),
    ("hash", "config_sha256"),
    ("missing_key", "missing key"),
    ("nan", "invalid JSON"),
])
def test_load_run_errors_name_the_file(tmp_path, damage, message):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    file = out / "summary.json"
    text = file.read_text()
    if damage == "truncate":
        file.write_text(text[: len(text) // 2])
    elif damage == "future":
        file.write_text(json.dumps(dict(summary, schema_version=SCHEMA_VERSION + 1)))
    elif damage == "unknown_version":
        file.write_text(json.dumps(dict(summary, schema_version="one")))
    elif damage == "hash":
        edited = json.loads(text)
        edited["config"]["workload"]["clients"] = 9
        file.write_text(json.dumps(edited))
    elif damage == "missing_key":
        file.write_text(json.dumps({k: v for k, v in summary.items() if k != "host"}))
    elif damage == "nan":
        file.write_text(text.replace('"wall_s": 1.5', '"wall_s": NaN'))
    with pytest.raises(ResultError, match=message) as caught:
        load_run(out)
    assert str(file) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 3


def test_load_run_missing_folder_and_file(tmp_path):
    with pytest.raises(ResultError, match="no such result folder"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultError, match="summary.json: missing"):
        load_run(tmp_path / "empty")


def test_read_table_refuses_a_future_schema(tmp_path):
    table = pa.table({"x": [1]}).replace_schema_metadata({"schema_version": "99"})
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(ResultError, match="newer"):
        read_table(tmp_path / "t.parquet")


def test_default_run_dir_counts_up(tmp_path):
    first = default_run_dir(tmp_path, "ycsb-a", 7)
    assert first == tmp_path / "ycsb-a-s7-001"
    first.mkdir()
    (tmp_path / "ycsb-a-s7-004").mkdir()
    (tmp_path / "ycsb-a-s70-009").mkdir()  # another seed: not counted
    assert default_run_dir(tmp_path, "ycsb-a", 7).name == "ycsb-a-s7-005"
    assert default_run_dir(tmp_path, "my workload/x", 1).name == "my-workload-x-s1-001"
    assert default_run_dir(tmp_path / "absent", "w", 0).name == "w-s0-001"


def test_git_revision(tmp_path):
    assert git_revision(tmp_path) is None
    revision = git_revision(Path(__file__).parent)
    assert revision is None or len(revision) == 40


def test_failure_during_the_swap_puts_the_old_run_back(tmp_path, monkeypatch):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    before = (out / "summary.json").read_bytes()
    real_rename = results.os.rename
    tries = []

    def rename(src, dst):
        if Path(src).name.startswith(".tmp-") and Path(dst) == out:
            tries.append(src)
            if len(tries) == 2:  # the second try is the swap, after the old moved aside
                raise OSError("rename failed (simulated)")
        return real_rename(src, dst)

    monkeypatch.setattr(results.os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        write_run(out, dict(summary, seed=9), tables, overwrite=True)
    assert (out / "summary.json").read_bytes() == before
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- the files manifest


@pytest.mark.parametrize("damage, message", [
    ("truncate", "bytes, but summary.json records"),
    ("flip", "SHA-256 .* differs from the .* summary.json records"),
    ("delete", "missing, though summary.json lists it"),
    ("swap", "summary.json records"),
])
def test_a_damaged_table_fails_load_run_with_one_line(tmp_path, damage, message):
    """Issue 14, item 4: compare, report, export, check and baseline all load a
    folder with load_run; a damaged table must not pass."""
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    table = out / "transactions.parquet"
    data = table.read_bytes()
    if damage == "truncate":
        table.write_bytes(data[:100])
    elif damage == "flip":
        table.write_bytes(data[:50] + bytes([data[50] ^ 1]) + data[51:])
    elif damage == "delete":
        table.unlink()
    else:
        table.write_bytes((out / "timeseries.parquet").read_bytes())
    with pytest.raises(ResultError, match=message) as caught:
        load_run(out)
    assert str(table) in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 3
    with pytest.raises(ResultError, match=message):
        results.read_run_table(out, "transactions")
    assert load_run(out / "summary.json")["seed"] == 7  # a summary file stands alone


def test_a_folder_written_before_the_manifest_is_still_read(tmp_path):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    (out / "summary.json").write_bytes(results.summary_bytes(summary))  # no "files"
    assert load_run(out) == summary
    assert results.read_run_table(out, "transactions").num_rows == 5


@pytest.mark.parametrize("files", [
    [], {"../etc/passwd": {"bytes": 1, "sha256": "0" * 64}},
    {"transactions.parquet": {"bytes": "1", "sha256": "0" * 64}},
    {"transactions.parquet": {"bytes": 1, "sha256": "xyz"}},
])
def test_a_malformed_manifest_is_refused(tmp_path, files):
    summary, tables = make_run()
    out = write_run(tmp_path / "run", summary, tables)
    (out / "summary.json").write_bytes(results.summary_bytes(dict(summary, files=files)))
    with pytest.raises(ResultError, match="files"):
        load_run(out)
