"""An unwritable ``--out`` is found before any simulation work (issue 14, item 1): the
temporary folder is created first, so a read-only file system, a place under /proc or
a parent that is a file is one line, exit 2, and nothing is written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import dsqlbench.results.baseline
import dsqlbench.runner
from dsqlbench.cli import main
from dsqlbench.errors import UserError
from dsqlbench.results.folder import check_writable_dir, reserve_run_dir


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture
def no_simulation(monkeypatch):
    """Any simulation started is a failure: the check must come first."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("simulated although --out cannot be written")

    monkeypatch.setattr(dsqlbench.runner, "run_config", refuse)
    monkeypatch.setattr(dsqlbench.results.baseline, "run_entry", refuse)


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder that behaves like a read-only file system (EROFS on mkdir/open),
    whoever runs the tests (root ignores permission bits)."""
    root = tmp_path / "ro"
    root.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).is_relative_to(root):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    return root


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dsqlbench: error: ") and "Traceback" not in err
    return lines[0]


def nothing_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.usefixtures("no_simulation")
def test_run_under_a_file_is_refused_before_simulating(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, out, err = run_cli(capsys, "run", "--out", str(tmp_path / "afile" / "run"),
                             "--progress", "none")
    assert code == 2 and out == ""
    assert "afile is a file, not a folder" in one_line(err)
    assert nothing_in(tmp_path) == ["afile"]


@pytest.mark.usefixtures("no_simulation")
def test_run_on_a_read_only_file_system_is_refused(read_only, tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", "--out", str(read_only / "a" / "run"),
                             "--progress", "none")
    assert code == 2 and out == ""
    assert "Read-only file system" in one_line(err)
    assert nothing_in(tmp_path) == ["ro"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
@pytest.mark.usefixtures("no_simulation")
def test_run_under_proc_is_refused(capsys):
    code, out, err = run_cli(capsys, "run", "--out", f"/proc/dsqlbench-{os.getpid()}",
                             "--progress", "none")
    assert code == 2 and out == ""
    assert "cannot write there" in one_line(err)


@pytest.mark.usefixtures("no_simulation")
def test_sweep_with_an_unwritable_out_starts_no_run(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, "sweep", "clock-skew", "--jobs", "1",
                           "--out", str(tmp_path / "afile" / "sweep"))
    assert code == 2 and "afile is a file, not a folder" in one_line(err)
    assert nothing_in(tmp_path) == ["afile"]


@pytest.mark.usefixtures("no_simulation")
def test_baseline_update_and_runs_dir_are_checked_first(read_only, tmp_path, capsys):
    code, _, err = run_cli(capsys, "baseline", "update", "--dir", str(read_only / "b"))
    assert code == 2 and "Read-only file system" in one_line(err)
    code, _, err = run_cli(capsys, "baseline", "check", "--runs-dir", str(read_only / "smoke"))
    assert code == 2 and "Read-only file system" in one_line(err)
    assert nothing_in(tmp_path) == ["ro"]


def test_report_and_compare_outputs_are_one_line(read_only, tmp_path, capsys):
    base = Path(__file__).parents[2] / "results" / "baselines" / "bank.json"
    code, _, err = run_cli(capsys, "compare", str(base), str(base), "-o", str(tmp_path / "no" / "c.md"))
    assert code == 2 and "cannot write: No such file or directory" in one_line(err)
    code, _, err = run_cli(capsys, "compare", str(base), str(base), "-o", str(tmp_path))
    assert code == 2 and "is a folder" in one_line(err)
    assert nothing_in(tmp_path) == ["ro"]


def test_a_failure_after_reserving_leaves_no_folder_behind(tmp_path):
    target = tmp_path / "a" / "b" / "run"
    with pytest.raises(RuntimeError):
        with reserve_run_dir(target):
            assert nothing_in(tmp_path) == ["a", "a/b", f"a/b/.tmp-run-{os.getpid()}"]
            raise RuntimeError("the simulation failed")
    assert nothing_in(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):
        with reserve_run_dir(target):
            raise KeyboardInterrupt
    assert nothing_in(tmp_path) == []


def test_check_writable_dir_leaves_nothing(tmp_path, read_only):
    check_writable_dir(tmp_path / "x" / "y")
    (tmp_path / "sweep").mkdir()
    check_writable_dir(tmp_path / "sweep")
    assert nothing_in(tmp_path) == ["ro", "sweep"]
    with pytest.raises(UserError, match="Read-only file system"):
        check_writable_dir(read_only / "sweep")


def test_run_with_out_an_existing_file_says_so(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, out, err = run_cli(capsys, "run", "--out", str(tmp_path / "afile"), "--progress", "none")
    assert code == 2 and out == ""
    assert "afile: exists and is not a folder; choose another --out" in one_line(err)
    assert (tmp_path / "afile").read_text() == "x"
