"""pgbench scripts: parsing, \\set expressions, random functions, weights, determinism."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from dsqlbench.errors import ConfigError
from dsqlbench.sql.harness import Harness
from dsqlbench.workload.pgbench import (
    PgbenchWorkload,
    SleepStep,
    SqlStep,
    execute_transaction,
    iterative_zipfian,
    load_script,
    parse_script,
    run_script,
)

SCRIPT = """
-- a comment
\\set n 10 * :scale
\\set id random(1, :n)
\\set x (:id + 3) / 2 % 7
\\set d double(:id) / 4
\\set neg -7 / 2
\\set big greatest(:id, 5, -1)
\\sleep 2 ms
SELECT * FROM t
  WHERE a = :id AND b = :x   -- :ignored? no: comments are dropped
  AND c::text = :id;
INSERT INTO t VALUES (:id, 'it''s; fine');
"""


def test_parse_and_run_a_script():
    script = parse_script(SCRIPT, "s.pgbench")
    txn = run_script(script, np.random.default_rng(1), {"scale": 3})
    sleep, select, insert = txn.steps
    assert sleep == SleepStep(2000)
    assert select.sql == "SELECT * FROM t\n  WHERE a = $1 AND b = $2\n  AND c::text = $1"
    assert insert.sql == "INSERT INTO t VALUES ($1, 'it''s; fine')"
    identifier, x = select.params
    assert 1 <= identifier <= 30 and x == ((identifier + 3) // 2) % 7
    assert insert.params == (identifier,)
    assert txn.statements == [select, insert]


def test_arithmetic_follows_pgbench():
    script = parse_script("\\set a -7 / 2\n\\set b -7 % 3\n\\set c 7.0 / 2\n\\set d 1 + 2 * 3\n"
                          "\\set e abs(-4) + int(2.9) + mod(10, 4)\n\\set f 2 > 1 AND NOT 1 = 2\n"
                          "SELECT :a, :b, :c, :d, :e, :f;")
    step = run_script(script, np.random.default_rng(0), {}).steps[0]
    assert step.params == (-3, -1, 3.5, 7, 8, True)


def test_random_functions_stay_in_range_and_match_their_shape():
    rng = np.random.default_rng(42)
    script = parse_script("\\set u random(1, 10)\n\\set e random_exponential(1, 100, 5)\n"
                          "\\set g random_gaussian(1, 100, 2.5)\n\\set z random_zipfian(1, 100, 1.5)\n"
                          "SELECT :u, :e, :g, :z;")
    draws = np.array([run_script(script, rng, {}).steps[0].params for _ in range(4000)])
    assert draws.min() >= 1 and draws.max() <= 100
    assert set(draws[:, 0]) == set(range(1, 11))
    assert np.mean(draws[:, 1]) < 30            # exponential: skewed to the low end
    assert 40 < np.mean(draws[:, 2]) < 61       # gaussian: centred
    counts = collections.Counter(draws[:, 3])
    assert counts[1] > counts[2] > counts[4] > counts[10]  # zipfian: rank 1 hottest


def test_zipfian_matches_pgbench_distribution():
    rng = np.random.default_rng(7)
    s, n = 2.0, 50
    draws = collections.Counter(iterative_zipfian(rng, n, s) for _ in range(20000))
    harmonic = sum(k ** -s for k in range(1, n + 1))
    assert draws[1] / 20000 == pytest.approx(1 / harmonic, abs=0.02)
    assert iterative_zipfian(rng, 1, s) == 1


def test_same_generator_same_transactions():
    script = parse_script(SCRIPT)
    w = PgbenchWorkload([script], {"scale": 2})
    a = [w.next_transaction(np.random.default_rng(9)) for _ in range(3)]
    b = [w.next_transaction(np.random.default_rng(9)) for _ in range(3)]
    assert a == b


def test_weights_mix_scripts(tmp_path):
    (tmp_path / "a.sql").write_text("SELECT 1;\n")
    (tmp_path / "b.sql").write_text("SELECT 2;\n")
    w = PgbenchWorkload([load_script(f"{tmp_path}/a.sql@3"), load_script(tmp_path / "b.sql")])
    rng = np.random.default_rng(3)
    counts = collections.Counter(w.next_transaction(rng).script for _ in range(4000))
    assert counts["a.sql"] / 4000 == pytest.approx(0.75, abs=0.03)
    assert [s.weight for s in w.scripts] == [3, 1]


@pytest.mark.parametrize("text, problem", [
    ("\\set x random(1,\nSELECT 1;", "\\set x"),
    ("\\shell echo hi", "unsupported pgbench meta-command \\shell"),
    ("\\sleep 1 hours", "\\sleep takes"),
    ("", "no commands"),
])
def test_bad_scripts_are_config_errors(text, problem):
    with pytest.raises(ConfigError) as raised:
        parse_script(text, "bad.pgbench")
    assert problem in str(raised.value) and "bad.pgbench" in str(raised.value)


def test_runtime_errors_name_the_line():
    script = parse_script("\\set x random(5, 1)\nSELECT :x;", "r.pgbench")
    with pytest.raises(ConfigError, match="r.pgbench: line 1: empty range"):
        run_script(script, np.random.default_rng(0), {})
    script = parse_script("SELECT :missing;", "m.pgbench")
    with pytest.raises(ConfigError, match='undefined variable "missing"'):
        run_script(script, np.random.default_rng(0), {})
    with pytest.raises(ConfigError, match="zipfian parameter"):
        run_script(parse_script("\\set z random_zipfian(1, 10, 0.5)\nSELECT 1;"),
                   np.random.default_rng(0), {})


def test_scripts_run_through_sessions():
    harness = Harness()
    harness.bootstrap("CREATE TABLE kv (k int PRIMARY KEY, v int)")
    session = harness.session()
    script = parse_script("\\set k random(1, 5)\nBEGIN;\nINSERT INTO kv VALUES (:k, :client_id);\n"
                          "SELECT v FROM kv WHERE k = :k;\nEND;\n")
    w = PgbenchWorkload([script])
    rng = np.random.default_rng(0)
    outcomes = [harness.drive(session, execute_transaction(session, w.next_transaction(rng, client_id=7)))
                for _ in range(12)]
    committed = sum(o.committed for o in outcomes)
    assert 1 <= committed <= 5  # later draws of a used key fail with 23505 and roll back
    failed = [o for o in outcomes if not o.committed]
    assert all(o.error.sqlstate == "23505" and not o.retryable for o in failed)
    assert not session.in_transaction
    assert harness.run(session, "SELECT count(*), min(v) FROM kv").rows == [(committed, 7)]
    assert all(isinstance(s, SqlStep) for s in w.next_transaction(rng).steps)
    assert math.isfinite(sum(w.weights))
