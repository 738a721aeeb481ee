"""dsqlbench shell: statements through the simulated cluster, results and latencies."""

from click.testing import CliRunner

from dsqlbench.cli.shell import shell_command, statements

SCRIPT = """SELECT bid, bbalance FROM pgbench_branches;
EXPLAIN SELECT abalance FROM pgbench_accounts WHERE aid = 5;
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 10
  WHERE aid = 5;
COMMIT;
SELECT abalance FROM pgbench_accounts WHERE aid = 5;
SELEC 1;
"""


def test_the_shell_runs_statements_and_shows_latency_plans_and_errors():
    result = CliRunner().invoke(shell_command, [], input=SCRIPT)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "(1 row)" in out and "Storage Scan" in out
    assert "UPDATE 1" in out and "COMMIT" in out
    assert out.count("simulated ") == 7
    assert "10" in out.split("COMMIT")[1]  # the committed update is visible afterwards
    assert "syntax error" in out and "42601" in out


def test_statements_end_at_semicolons_and_quit_stops():
    lines = ["SELECT 1", "  ;", "SELECT 2;", "\\q", "SELECT 3;"]
    assert list(statements(lines)) == ["SELECT 1\n  ;", "SELECT 2;"]
