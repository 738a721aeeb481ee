"""Usage errors are one line too (issue 14, bad-input table): click's four-line
usage block becomes ``dsqlbench: error: <what> (see '<command> --help')``, exit 2."""

from __future__ import annotations

import pytest

from dsqlbench.cli import main


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.mark.parametrize("args, expected", [
    (["run", "--repeat", "0"], "Invalid value for '--repeat': 0 is not in the range 1<=x<=1000. "
                               "(see 'dsqlbench run --help')"),
    (["run", "--seed", "abc"], "'abc' is not a valid integer"),
    (["compare"], "Missing argument 'BASE'. (see 'dsqlbench compare --help')"),
    (["frobnicate"], "No such command 'frobnicate'. (see 'dsqlbench --help')"),
    (["run", "--transactions", "0"], "--transactions 0: must be >= 1"),
])
def test_a_usage_error_is_one_line_exit_2(tmp_path, capsys, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("dsqlbench: error: ") and expected in err
    assert list(tmp_path.iterdir()) == []


def test_help_and_version_still_exit_0(capsys):
    assert run_cli(capsys, "--version")[0] == 0
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0 and out.startswith("Usage: dsqlbench run")
