"""Regression comparison: the rules (exact, tolerance, thresholds, factor plus
Mann-Whitney), the metric syntax, the output formats and every exit code."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.results import compare
from dsqlbench.results.baseline import SuiteEntry, run_entry
from dsqlbench.cli import main
from dsqlbench.results.compare import (
    FailOn, Limit, compare_summaries, flat_name, flatten_numbers, judge_host,
    judge_simulated, mann_whitney_u, min_p_value, parse_fail_on,
)
from dsqlbench.errors import UserError
from dsqlbench.results.folder import SCHEMA_VERSION, build_summary, write_run

CONFIG = {"run": {"seed": 1, "duration_s": 2.0}, "workload": {"name": "ycsb-a"}}
SIMULATED = {
    "duration_s": 1.5,
    "throughput_per_s": 1000.0,
    "abort_rate": 0.02,
    "latency_ms": {"all": {"count": 1500, "p50": 5.0, "p99": 10.0, "max": 30.0},
                   "update": {"count": 700, "p50": 7.0, "p99": 12.0, "max": 30.0}},
    "aborts": {"OC000": 30, "OC001": 0},
    "transactions": {"committed": 1500, "aborted": 30},
    "checks": {"oracle": {"ok": True, "wrong_reads": 0, "reads_checked": 900}},
    "counters": {"crossbar.batches": 77},
    "clock": {"t_start_from": "latest", "error_bound_us": 20.0},
}
HOST = {"wall_s": 2.0, "sim_txn_per_wall_s": 750.0, "events": 5000}


def summary(simulated=None, config=None, host=None, seed=1):
    return build_summary(config or CONFIG, None, seed, {"merge": "python"},
                         simulated or SIMULATED, HOST if host is None else host, "0.1.0", None)


def edited(base: dict, path: str, value) -> dict:
    """A deep copy of ``base`` with the dotted ``path`` set to ``value`` (a key may hold
    dots itself, like the counter ``crossbar.batches``)."""
    copied = copy.deepcopy(base)
    node, parts = copied, path.split(".")
    while len(parts) > 1 and parts[0] in node and isinstance(node[parts[0]], dict):
        node = node[parts.pop(0)]
    node[".".join(parts)] = value
    return copied


def rows_by_metric(comparison):
    return {row.metric: row for row in comparison.rows}


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


# ---------------------------------------------------------------------- names


def test_flatten_keeps_number_and_boolean_leaves_only():
    flat = flatten_numbers(SIMULATED)
    assert flat["latency_ms.all.p99"] == 10.0
    assert flat["aborts.OC000"] == 30
    assert flat["checks.oracle.ok"] is True
    assert "clock.t_start_from" not in flat  # text is not a metric


def test_flat_alias_drops_all_and_joins_with_underscores():
    assert flat_name("latency_ms.all.p99") == "latency_ms_p99"
    assert flat_name("latency_ms.update.p99_9") == "latency_ms_update_p99_9"
    assert flat_name("aborts.OC000") == "aborts_OC000"
    assert flat_name("host.wall_s") == "host_wall_s"


@pytest.mark.parametrize("text, sign, amount, relative", [
    ("latency_ms_p99:+5%", 1, 0.05, True),
    ("throughput_per_s:-2.5%", -1, 0.025, True),
    ("latency_ms.all.p99:0.5", None, 0.5, False),
    ("aborts.OC000:+10", 1, 10.0, False),
    ("latency_ms.*.p99:.5%", None, 0.005, True),
])
def test_parse_fail_on(text, sign, amount, relative):
    rule = parse_fail_on(text)
    assert (rule.sign, rule.relative) == (sign, relative)
    assert rule.amount == pytest.approx(amount)


@pytest.mark.parametrize("text", ["latency", "latency_ms_p99:", "x:5%%", "x:+-5", ":5%",
                                  "x:five"])
def test_bad_fail_on_is_a_usage_error(text):
    with pytest.raises(UserError, match="--fail-on") as caught:
        parse_fail_on(text)
    assert caught.value.exit_code == 2


def test_fail_on_names_match_dotted_flat_and_globs():
    assert parse_fail_on("latency_ms_p99:5%").matches("latency_ms.all.p99")
    assert parse_fail_on("latency_ms.all.p99:5%").matches("latency_ms.all.p99")
    assert not parse_fail_on("latency_ms.all.p99:5%").matches("latency_ms.update.p99")
    assert parse_fail_on("latency_ms.*.p99:5%").matches("latency_ms.update.p99")
    assert parse_fail_on("throughput_per_s:5%").matches("throughput_per_s")
    assert parse_fail_on("*:off").matches("host.wall_s")


# ---------------------------------------------------------------------- rules


def test_a_result_compared_with_itself_is_all_equal():
    base = summary()
    comparison = compare_summaries(base, copy.deepcopy(base))
    assert comparison.basis == "exact"
    assert {row.mark for row in comparison.rows} == {"="}
    assert comparison.exit_code == 0


@pytest.mark.parametrize("metric, value, mark", [
    ("latency_ms.all.p99", 10.000001, "+"),   # exact basis: any worse move regresses
    ("latency_ms.all.p99", 9.9, "-"),
    ("throughput_per_s", 999.0, "+"),        # higher is better
    ("throughput_per_s", 1200.0, "-"),
    ("abort_rate", 0.03, "+"),
    ("aborts.OC000", 29, "-"),
    ("checks.oracle.ok", False, "+"),        # a check that stops passing is worse
    ("checks.oracle.wrong_reads", 1, "+"),
    ("counters.crossbar.batches", 99, "~"),  # no direction: shown, never a regression
    ("latency_ms.all.count", 1400, "~"),
])
def test_exact_basis_marks_by_direction(metric, value, mark):
    base = summary()
    new = edited(base, f"simulated.{metric}", value)
    row = rows_by_metric(compare_summaries(base, new))[metric]
    assert row.mark == mark, row
    assert row.regression == (mark == "+")


def test_stated_tolerance_allows_a_small_move_on_the_exact_basis():
    base = summary()
    new = edited(base, "simulated.latency_ms.all.p99", 10.4)  # +4%
    loose = [parse_fail_on("latency_ms_p99:+5%")]
    assert rows_by_metric(compare_summaries(base, new, loose))["latency_ms.all.p99"].mark == "~"
    tight = [parse_fail_on("latency_ms_p99:+3%")]
    comparison = compare_summaries(base, new, tight)
    assert rows_by_metric(comparison)["latency_ms.all.p99"].mark == "+"
    assert comparison.exit_code == 1


def test_absolute_tolerance_is_in_the_metric_unit():
    base = summary()
    new = edited(base, "simulated.aborts.OC000", 39)
    rows = rows_by_metric(compare_summaries(base, new, [parse_fail_on("aborts.OC000:+10")]))
    assert rows["aborts.OC000"].mark == "~"
    rows = rows_by_metric(compare_summaries(base, new, [parse_fail_on("aborts.OC000:+5")]))
    assert rows["aborts.OC000"].mark == "+"


def test_fail_on_sign_overrides_direction_off_disables_and_last_rule_wins():
    base = summary()
    new = edited(base, "simulated.counters.crossbar.batches", 100)
    rows = rows_by_metric(compare_summaries(base, new, [parse_fail_on("counters.*:+10%")]))
    assert rows["counters.crossbar.batches"].mark == "+"
    worse = edited(base, "simulated.latency_ms.all.p99", 50.0)
    rules = [parse_fail_on("*:off")]
    assert compare_summaries(base, worse, rules).exit_code == 0
    rules.append(parse_fail_on("latency_ms_p99:+100%"))
    assert compare_summaries(base, worse, rules).regressions[0].metric == "latency_ms.all.p99"


def test_a_rule_that_matches_nothing_is_a_usage_error():
    with pytest.raises(UserError, match="did you mean latency_ms_p99"):
        compare_summaries(summary(), summary(), [parse_fail_on("latency_ms_p98:+5%")])


def test_different_configs_are_judged_with_thresholds():
    base = summary()
    other_config = edited(CONFIG, "workload.name", "ycsb-b")
    small = edited(summary(config=other_config), "simulated.latency_ms.all.p99", 10.5)
    comparison = compare_summaries(base, small)
    assert comparison.basis == "thresholds"
    assert comparison.config_differences == [("workload.name", "ycsb-a", "ycsb-b")]
    assert rows_by_metric(comparison)["latency_ms.all.p99"].mark == "~"  # +5% < 10%
    large = edited(small, "simulated.latency_ms.all.p99", 12.0)
    assert rows_by_metric(compare_summaries(base, large))["latency_ms.all.p99"].mark == "+"
    tail = edited(small, "simulated.latency_ms.all.max", 36.0)  # +20%: tails get 25%
    assert rows_by_metric(compare_summaries(base, tail))["latency_ms.all.max"].mark == "~"


def test_a_different_seed_is_not_exact():
    assert compare_summaries(summary(), summary(seed=2)).basis == "thresholds"


def test_counts_over_different_durations_are_not_comparable():
    base = summary()
    longer = edited(base, "simulated.duration_s", 3.0)
    longer = edited(longer, "simulated.transactions.committed", 3000)
    longer = edited(longer, "simulated.aborts.OC000", 90)
    rows = rows_by_metric(compare_summaries(base, longer))
    assert rows["transactions.committed"].mark == "x"
    assert rows["aborts.OC000"].mark == "x"
    assert not rows["aborts.OC000"].regression


def test_one_sided_and_null_metrics_are_not_comparable():
    base = summary()
    new = copy.deepcopy(base)
    del new["simulated"]["latency_ms"]["update"]
    new["simulated"]["latency_ms"]["all"]["p50"] = None
    rows = rows_by_metric(compare_summaries(base, new))
    assert rows["latency_ms.update.p99"].mark == "x"
    assert rows["latency_ms.update.p99"].note == "base only"
    assert rows["latency_ms.all.p50"].mark == "x"
    assert not any(row.regression for row in rows.values())


def test_judge_simulated_ratio_and_zero_base():
    row = judge_simulated("aborts.OC001", 0, 3, Limit(1, 0.0))
    assert row.mark == "+" and row.ratio is None
    assert judge_simulated("aborts.OC001", 0, 0, Limit(1, 0.0)).ratio == 1.0
    assert judge_simulated("x", 2.0, 3.0, Limit(1, 0.0)).ratio == 1.5


# ---------------------------------------------------------------------- host


FACTOR = Limit(1, 0.10)  # wall_s: a rise of more than 10% is worse


def test_host_regression_needs_factor_and_significance():
    slow = judge_host("host.wall_s", [1.0, 1.01, 0.99, 1.02, 0.98],
                      [1.5, 1.52, 1.48, 1.51, 1.49], FACTOR, 0.05)
    assert slow.mark == "+" and slow.p_value < 0.05
    fast = judge_host("host.wall_s", [1.5, 1.52, 1.48, 1.51, 1.49],
                      [1.0, 1.01, 0.99, 1.02, 0.98], FACTOR, 0.05)
    assert fast.mark == "-"


def test_host_move_within_the_factor_is_not_a_regression_even_if_significant():
    row = judge_host("host.wall_s", [1.0, 1.0, 1.01, 1.0, 0.99],
                     [1.05, 1.06, 1.05, 1.04, 1.05], FACTOR, 0.05)
    assert row.mark == "~" and "within" in row.note


def test_host_move_beyond_the_factor_but_not_significant_is_not_a_regression():
    row = judge_host("host.wall_s", [1.0, 2.0, 1.1, 1.9, 1.2],
                     [1.3, 2.1, 1.4, 1.95, 1.5], FACTOR, 0.05)
    assert row.ratio > 1.1
    assert row.mark == "~" and "not significant" in row.note


def test_too_few_host_samples_say_so_and_never_fail():
    row = judge_host("host.wall_s", [1.0, 1.01, 0.99], [2.0, 2.01, 1.99], FACTOR, 0.05)
    assert row.mark == "?" and "too few samples" in row.note
    assert not row.regression


def test_host_metrics_come_from_repeat_samples():
    base_host = dict(HOST, samples={"wall_s": [1.0, 1.01, 0.99, 1.02, 0.98]})
    new_host = dict(HOST, wall_s=1.5, samples={"wall_s": [1.5, 1.52, 1.48, 1.51, 1.49]})
    comparison = compare_summaries(summary(host=base_host), summary(host=new_host))
    assert [row.metric for row in comparison.regressions] == ["host.wall_s"]
    assert comparison.exit_code == 1
    off = [parse_fail_on("host.*:off")]
    assert compare_summaries(summary(host=base_host), summary(host=new_host), off).exit_code == 0


def test_a_baseline_without_host_figures_compares_simulated_only():
    comparison = compare_summaries(summary(host={}), summary())
    assert all(row.kind == "simulated" for row in comparison.rows)
    assert comparison.notes == ["base has no host figures: host metrics not compared"]
    assert compare_summaries(summary(host={}), summary(host={})).notes == []


# ---------------------------------------------------------------------- statistics


def brute_force_p(x, y):
    """Two-sided exact p by enumerating every split of the pooled values."""
    pooled = list(x) + list(y)
    u_obs, _ = mann_whitney_u(x, y)
    low = high = total = 0
    for chosen in itertools.combinations(range(len(pooled)), len(x)):
        sample = [pooled[i] for i in chosen]
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        u, _ = mann_whitney_u(sample, rest) if len(rest) else (0.0, 1.0)
        total += 1
        low += u <= u_obs
        high += u >= u_obs
    return min(1.0, 2 * min(low, high) / total)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=5, unique=True),
       st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=5, unique=True))
def test_exact_mann_whitney_matches_enumeration(x, y):
    if set(x) & set(y):
        return  # ties take the normal approximation; covered below
    _, p = mann_whitney_u(x, y)
    assert p == pytest.approx(brute_force_p(x, y))


def test_mann_whitney_known_values():
    # Completely separated samples of 5: U = 0, exact p = 2 / C(10, 5).
    u, p = mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert u == 0 and p == pytest.approx(2 / 252)
    assert min_p_value(5, 5) == pytest.approx(2 / 252)
    assert min_p_value(3, 3) == pytest.approx(0.1)
    # Identical samples (all ties): no evidence of a difference.
    assert mann_whitney_u([1, 1, 1], [1, 1, 1])[1] == 1.0
    # Past 50 values, or with ties, the normal approximation is used: where both
    # apply it agrees with the exact test.
    x = [float(v) for v in range(40)]
    y = [v + 5.5 for v in x]
    u, exact_p = mann_whitney_u(x, y)
    assert 0.04 < exact_p < 0.06
    assert compare._normal_p(u, 40, 40, np.array(x + y)) == pytest.approx(exact_p, rel=0.05)
    # By hand: ranks of x 1, 2.5, 2.5, 4.5, 7 -> U = 2.5; ties (2, 2, 3) give a variance
    # of 25/12 * (11 - 36/90); z = (12.5 - 2.5 - 0.5) / 4.699 = 2.0216 -> p = 0.0432.
    u, tied_p = mann_whitney_u([1, 2, 2, 3, 4], [3, 4, 4, 5, 6])
    assert u == 2.5 and tied_p == pytest.approx(0.0432, abs=2e-4)


# ---------------------------------------------------------------------- output


def test_json_output_is_plain_json_with_every_row():
    base = summary()
    new = edited(base, "simulated.aborts.OC001", 2)  # ratio undefined (base 0)
    document = compare.to_json(compare_summaries(base, new))
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text)["regressions"] == ["aborts.OC001"]
    row = next(r for r in document["rows"] if r["metric"] == "aborts.OC001")
    assert row["ratio"] is None and row["flat"] == "aborts_OC001" and row["mark"] == "+"
    assert set(document["marks"]) == set("+-=~?x")


def test_markdown_lists_changed_rows_and_the_mark_legend():
    base = summary()
    new = edited(base, "simulated.latency_ms.all.p99", 11.0)
    text = compare.to_markdown(compare_summaries(base, new))
    assert "| `+` | `latency_ms.all.p99` | 10 | 11 | 1.100 | +0% | worse |" in text
    assert "REGRESSION in 1 metric(s)" in text
    assert "metrics unchanged" in text and "Marks:" in text


# ---------------------------------------------------------------------- CLI


TINY = ("run.duration_s=0.4", "run.warmup_s=0.1", "clients.count=8",
        "load.record_count=2000")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny ycsb-a run, and the same with a deliberately slower journal."""
    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for name, extra in (("base", ()), ("slow", ("topology.journal.write_median_us=2000",))):
        summary_, tables = run_entry(SuiteEntry(name, "ycsb-a", TINY + extra))
        paths[name] = write_run(root / name, summary_, tables)
    return paths


def test_cli_a_run_against_itself_exits_0(runs, capsys):
    code, out, err = run_cli(capsys, "compare", str(runs["base"]), str(runs["base"]))
    assert code == 0, err
    assert "basis: exact" in out and "no regression" in out


def test_cli_a_slower_journal_is_a_latency_regression(runs, capsys):
    code, out, _ = run_cli(capsys, "compare", str(runs["base"]), str(runs["slow"]),
                           "--format", "json")
    assert code == 1
    document = json.loads(out)
    marks = {row["metric"]: row["mark"] for row in document["rows"]}
    assert document["basis"] == "thresholds"
    assert document["config_differences"] == [{
        "key": "topology.journal.write_median_us", "base": 200.0, "new": 2000.0}]
    for metric in ("latency_ms.all.p50", "latency_ms.all.p99", "commit_phase_ms.journal.p50",
                   "latency_ms.update.mean"):
        assert marks[metric] == "+", metric
    assert marks["throughput_per_s"] == "+"  # closed loop: slower commits, fewer of them
    # Reversed, the same figures are improvements.
    _, out, _ = run_cli(capsys, "compare", str(runs["slow"]), str(runs["base"]),
                        "--format", "json")
    marks = {row["metric"]: row["mark"] for row in json.loads(out)["rows"]}
    for metric in ("latency_ms.all.p50", "latency_ms.all.p99", "commit_phase_ms.journal.p50",
                   "throughput_per_s"):
        assert marks[metric] == "-", metric


def test_cli_fail_on_and_markdown_to_a_file(runs, capsys, tmp_path):
    report = tmp_path / "compare.md"
    code, out, _ = run_cli(capsys, "compare", str(runs["base"]), str(runs["slow"]),
                           "--fail-on", "*:off", "--fail-on", "latency_ms_p99:+1000%",
                           "--format", "markdown", "-o", str(report))
    assert code == 0 and out == ""
    assert report.read_text().startswith("**dsqlbench compare**: no regression")


def damaged(run, tmp_path, how):
    """A copy of ``run``'s summary.json, damaged ``how``."""
    text = (run / "summary.json").read_text()
    target = tmp_path / f"{how}.json"
    if how == "truncated":
        target.write_text(text[: len(text) // 3])
    elif how == "corrupt":
        target.write_bytes(b"\x00\xff" + text.encode()[2:])
    elif how == "future":
        target.write_text(json.dumps(dict(json.loads(text), schema_version=SCHEMA_VERSION + 1)))
    elif how == "hash":
        target.write_text(text.replace('"seed": 1,', '"seed": 2,', 1))
    return target


@pytest.mark.parametrize("how, message", [
    ("truncated", "invalid JSON (truncated or corrupt?)"),
    ("corrupt", "not UTF-8"),
    ("future", "newer than this dsqlbench reads"),
    ("hash", "config_sha256"),
])
def test_cli_unreadable_input_exits_3_with_one_line(runs, capsys, tmp_path, how, message):
    bad = damaged(runs["base"], tmp_path, how)
    code, out, err = run_cli(capsys, "compare", str(runs["base"]), str(bad))
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1 and message in err and str(bad) in err


def test_cli_missing_input_exits_3(runs, capsys, tmp_path):
    code, _, err = run_cli(capsys, "compare", str(tmp_path / "nope"), str(runs["base"]))
    assert code == 3 and "no such result folder" in err


@pytest.mark.parametrize("args", [
    ["--fail-on", "latency_ms_p99"],
    ["--fail-on", "latency_ms_p98:+5%"],
    ["--format", "html"],
    ["--alpha", "2"],
])
def test_cli_usage_errors_exit_2(runs, capsys, args):
    code, _, err = run_cli(capsys, "compare", str(runs["base"]), str(runs["base"]), *args)
    assert code == 2, err


def test_cli_missing_argument_exits_2(runs, capsys):
    code, _, _ = run_cli(capsys, "compare", str(runs["base"]))
    assert code == 2


def test_failon_dataclass_limit_for():
    rule = FailOn("x", None, 0.05, True)
    assert rule.limit_for(-1) == Limit(-1, 0.05)
    assert FailOn("x", None, 0.0, True, off=True).limit_for(1).sign == 0
    assert math.isclose(parse_fail_on("x:-5%").limit_for(1).amount, 0.05)


# ---------------------------------------------------------------------- schema checks


def test_non_ascii_config_hashes_the_same_in_config_and_results():
    from dsqlbench import config as config_mod
    from dsqlbench.results import folder as results

    cfg = config_mod.load_config("ycsb-a", overrides=['workload.description="café ☕"'])
    assert results.config_sha256(cfg) == config_mod.config_sha256(cfg)


@pytest.mark.parametrize("key, value, message", [
    ("simulated", [], "simulated must be a JSON object, got list"),
    ("seed", "1", "seed must be a JSON integer"),
    ("seed", True, "seed must be a JSON integer"),
    ("host", None, "host must be a JSON object"),
])
def test_a_section_of_the_wrong_type_is_refused(tmp_path, capsys, key, value, message):
    file = tmp_path / "summary.json"
    document = dict(summary(), **{key: value})
    file.write_text(json.dumps(document))
    code, _, err = run_cli(capsys, "compare", str(file), str(file))
    assert code == 3 and message in err and err.count("\n") == 1


def test_a_missing_table_is_named(tmp_path):
    from dsqlbench.results.folder import read_run_table

    with pytest.raises(UserError, match="transactions.parquet: missing") as caught:
        read_run_table(tmp_path, "transactions")
    assert caught.value.exit_code == 3
