"""A pgbench script's variables and functions are checked before the run (issue 14,
item 2): one line naming the script file, line and variable, exit 2, never a
``TypeError`` out of simpy."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from dsqlbench.cli import main
from dsqlbench.config import load_config
from dsqlbench.errors import ConfigError
from dsqlbench.workload.pgbench import (
    PgbenchWorkload,
    ScriptError,
    check_script,
    parse_script,
    run_script,
)

WORKLOAD = """\
[workload]
name = "badvar"
kind = "pgbench"
topology = "single-region"
[run]
duration_s = 1.5
warmup_s = 0.5
[load]
record_count = 2000
[pgbench]
schema = "ycsb"
scripts = ["{script}"]
"""


def test_an_undefined_variable_names_file_line_and_variable():
    script = parse_script("\\set k random(1, :records)\n-- note\nSELECT :k, :nokey;\n", "x.pgbench")
    with pytest.raises(ConfigError) as error:
        check_script(script, ["scale", "records"], source="dir/x.pgbench")
    assert str(error.value).startswith('dir/x.pgbench: line 3: undefined variable ":nokey" '
                                       "(defined at this line: :k, :records, :scale;")


def test_a_variable_set_later_is_undefined_where_it_is_used():
    script = parse_script("\\set a :b + 1\n\\set b 2\nSELECT :a;\n", "x.pgbench")
    with pytest.raises(ConfigError, match=r'^x\.pgbench: line 1: undefined variable ":b"'):
        check_script(script, [])
    script = parse_script("\\sleep :pause ms\nSELECT 1;\n", "s.pgbench")
    with pytest.raises(ConfigError, match=r'line 1: undefined variable ":pause"'):
        check_script(script, ["scale"])


def test_an_unknown_function_is_refused_before_the_run():
    script = parse_script("\\set k random_uniform(1, 10)\nSELECT :k;\n", "f.pgbench")
    with pytest.raises(ConfigError, match=r"^f\.pgbench: line 1: unknown function random_uniform\(\)"):
        check_script(script, [])


def test_the_workload_refuses_a_bad_script_when_built():
    script = parse_script("SELECT :missing;\n", "m.pgbench")
    with pytest.raises(ConfigError, match='undefined variable ":missing"'):
        PgbenchWorkload([script])
    PgbenchWorkload([parse_script("SELECT :client_id, :scale;\n", "ok.pgbench")])


def test_a_script_error_survives_simpy_re_raising_it():
    """simpy re-raises a process's exception as ``type(e)(*e.args)``."""
    script = parse_script("\\set k 1 / 0\nSELECT :k;\n", "z.pgbench")
    env = simpy.Environment()

    def process():
        yield env.timeout(1)
        run_script(script, np.random.default_rng(1), {})

    env.process(process())
    with pytest.raises(ScriptError) as error:
        env.run()
    assert str(error.value) == "z.pgbench: line 1: division by zero"


def test_load_config_refuses_the_script_before_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.pgbench").write_text("\\set k random(1, :records)\nSELECT :nokey;\n")
    (tmp_path / "w.toml").write_text(WORKLOAD.format(script="bad.pgbench"))
    with pytest.raises(ConfigError, match=r'bad\.pgbench: line 2: undefined variable ":nokey"'):
        load_config(str(tmp_path / "w.toml"))
    (tmp_path / "good.pgbench").write_text("\\set k random(1, :records)\nSELECT :k, :scale;\n")
    load_config(str(tmp_path / "w.toml"), overrides=['pgbench.scripts=["good.pgbench@2"]'])


def test_the_cli_answers_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.pgbench").write_text("-- bad\n\\set k random(1, :records)\n"
                                          "SELECT * FROM usertable WHERE ycsb_key = :nokey;\n")
    (tmp_path / "w.toml").write_text(WORKLOAD.format(script="bad.pgbench"))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "w.toml", "--out", "run", "--progress", "none"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert out == ""  # refused before the run started (no SEED= line)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert 'bad.pgbench: line 3: undefined variable ":nokey"' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pgbench", "w.toml"]
