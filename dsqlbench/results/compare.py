"""Regression comparison of two results: ``dsqlbench compare BASE NEW``.

Place in the pipeline: reads two run folders or summary files (``results.load_run``,
so an unreadable input is a ``ResultError``, exit 3), flattens their numeric figures to
one row per metric, judges each row, and renders the rows as a table, Markdown or JSON.
``baseline check`` uses the same judgement against the committed baselines.

Metric names are the dotted paths of numeric (and boolean) leaves of the summary's
``simulated`` section (``throughput_per_s``, ``latency_ms.all.p99``, ``aborts.OC000``),
and ``host.<name>`` for the wall-clock figures. Each also has a *flat* alias: the
dotted name without an ``.all`` segment, dots turned into ``_`` (``latency_ms_p99``).

Two kinds of numbers are judged apart (STYLE.md, "Two kinds of numbers never mix"):

- Simulated metrics are deterministic. When both results have the same config hash and
  seed the basis is *exact*: any change in the worse direction is a regression unless a
  ``--fail-on`` rule states a tolerance. Otherwise the basis is *thresholds*: each
  metric may move by its default threshold (``METRIC_RULES``) before it counts.
- Host metrics are noisy. Like asv, a host metric regresses only when its median moved
  beyond the factor threshold in the worse direction AND an exact two-sided
  Mann-Whitney U test over the ``--repeat`` samples says the two sets differ at
  ``alpha``. When the samples are too few for the test ever to reach ``alpha``, the
  row says so (mark ``?``) and never fails.

Marks (one character, like ``asv compare``):

    +  worse beyond the threshold: a regression, exit 1
    -  better beyond the threshold
    =  the same value
    ~  changed, but within the threshold, not significant, or the metric has no
       better/worse direction (counts, config echoes)
    ?  cannot tell: too few samples for the statistical test
    x  not comparable: missing or null on one side, or a count over a different
       measured duration (compare its rate instead)

Invariants: comparing a result with itself gives only ``=`` rows and exit 0; the
per-metric direction lives in ``METRIC_RULES`` and nowhere else.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsqlbench.errors import UserError
from dsqlbench.results.folder import load_run

WORSE, BETTER, SAME, CHANGED, UNKNOWN, NOT_COMPARABLE = "+", "-", "=", "~", "?", "x"
MARKS = {
    WORSE: "worse beyond the threshold (regression)",
    BETTER: "better beyond the threshold",
    SAME: "same value",
    CHANGED: "changed within the threshold, not significant, or no direction",
    UNKNOWN: "cannot tell: too few samples for the statistical test",
    NOT_COMPARABLE: "not comparable: missing or null on one side, or a count over a "
                    "different measured duration",
}

HIGHER_IS_WORSE, HIGHER_IS_BETTER, NO_DIRECTION = 1, -1, 0
ALPHA_DEFAULT = 0.05
EXIT_OK, EXIT_REGRESSION = 0, 1


@dataclass(frozen=True)
class Rule:
    """Direction and default threshold of the metrics whose dotted name matches
    ``pattern`` (``fnmatch``; the first matching rule wins).

    ``threshold`` is the relative move in the worse direction that is tolerated: for
    simulated metrics when the configs differ (same config and seed: exact, 0), for
    host metrics always (the factor of asv's rule, as ``factor - 1``).
    """

    pattern: str
    direction: int
    threshold: float


# The one table of metric directions. Tail percentiles get wider thresholds because
# they rest on few samples and move most between seeds.
METRIC_RULES = (
    Rule("checks.*.ok", HIGHER_IS_BETTER, 0.0),
    Rule("checks.*.wrong_reads", HIGHER_IS_WORSE, 0.0),
    Rule("checks.*.overlapping_writers", HIGHER_IS_WORSE, 0.0),
    Rule("checks.*", NO_DIRECTION, 0.0),
    Rule("*.count", NO_DIRECTION, 0.0),
    Rule("throughput_per_s", HIGHER_IS_BETTER, 0.05),
    Rule("goodput_per_s", HIGHER_IS_BETTER, 0.05),
    Rule("transactions.committed", HIGHER_IS_BETTER, 0.05),
    Rule("logical.committed", HIGHER_IS_BETTER, 0.05),
    Rule("logical.completed", HIGHER_IS_BETTER, 0.05),
    Rule("abort_rate", HIGHER_IS_WORSE, 0.10),
    Rule("aborted_per_s", HIGHER_IS_WORSE, 0.10),
    Rule("aborts.*", HIGHER_IS_WORSE, 0.10),
    Rule("transactions.aborted", HIGHER_IS_WORSE, 0.10),
    Rule("transactions.retried", HIGHER_IS_WORSE, 0.10),
    Rule("logical.failed", HIGHER_IS_WORSE, 0.10),
    Rule("logical.retried", HIGHER_IS_WORSE, 0.10),
    Rule("*_ms.*.max", HIGHER_IS_WORSE, 0.25),
    Rule("*_ms.*.p99_9", HIGHER_IS_WORSE, 0.25),
    Rule("*_ms.max", HIGHER_IS_WORSE, 0.25),
    Rule("*_ms.p99_9", HIGHER_IS_WORSE, 0.25),
    Rule("*_ms.*", HIGHER_IS_WORSE, 0.10),
    Rule("host.wall_s", HIGHER_IS_WORSE, 0.10),
    Rule("host.*_per_wall_s", HIGHER_IS_BETTER, 0.10),
    Rule("*", NO_DIRECTION, 0.0),  # counters, gauges, clock and config echoes
)


# Counts taken over the measured window: two runs measured for different durations have
# counts that say nothing about each other (their rates, ``*_per_s``, still compare).
WINDOW_COUNTS = ("transactions.*", "logical.*", "aborts.*", "counters.*", "*.count",
                 "checks.*_checked")


@dataclass(frozen=True)
class Limit:
    """How far a metric may move before it counts: ``amount`` (relative when
    ``relative``, else in the metric's unit) in the ``sign`` direction (+1 a rise is
    worse, -1 a fall is worse, 0 no direction: never a regression)."""

    sign: int
    amount: float
    relative: bool = True

    def text(self) -> str:
        if self.sign == 0:
            return "off"
        size = f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"
        return ("+" if self.sign > 0 else "-") + size


@dataclass(frozen=True)
class FailOn:
    """One ``--fail-on NAME:LIMIT`` rule. ``name`` with a dot matches dotted metric
    names, without one flat aliases (and one-word names); both may hold ``fnmatch``
    wildcards. ``sign`` None means "the metric's own worse direction"."""

    name: str
    sign: int | None  # None: the metric's direction
    amount: float
    relative: bool
    off: bool = False

    def matches(self, metric: str) -> bool:
        if "." in self.name:
            return fnmatch.fnmatchcase(metric, self.name)
        return (fnmatch.fnmatchcase(flat_name(metric), self.name)
                or fnmatch.fnmatchcase(metric, self.name))

    def limit_for(self, direction: int) -> Limit:
        if self.off:
            return Limit(0, 0.0)
        return Limit(direction if self.sign is None else self.sign, self.amount, self.relative)


_FAIL_ON = re.compile(r"(?P<name>[^:]+):(?P<sign>[+-]?)(?P<amount>\d+(?:\.\d*)?|\.\d+)"
                      r"(?P<percent>%?)")


def parse_fail_on(text: str) -> FailOn:
    """``NAME:[+|-]AMOUNT[%]`` or ``NAME:off``; a ``UserError`` (exit 2) otherwise.

    ``+`` a rise beyond AMOUNT fails, ``-`` a fall beyond it fails, no sign: a move in
    the metric's worse direction; ``%`` makes AMOUNT relative to the base value,
    without it AMOUNT is in the metric's unit (``aborts.OC000:+10`` is 10 aborts).
    """
    name, _, rest = text.partition(":")
    if name and rest == "off":
        return FailOn(name, None, 0.0, True, off=True)
    match = _FAIL_ON.fullmatch(text)
    if not match:
        raise UserError(
            f"--fail-on {text!r}: expected METRIC:[+|-]AMOUNT[%] or METRIC:off, "
            "e.g. latency_ms_p99:+5% or latency_ms.all.p99:+0.5")
    sign = {"+": 1, "-": -1, "": None}[match["sign"]]
    amount = float(match["amount"])
    relative = bool(match["percent"])
    return FailOn(match["name"], sign, amount / 100 if relative else amount, relative)


def flat_name(metric: str) -> str:
    """The flat alias of a dotted metric name: ``latency_ms.all.p99`` ->
    ``latency_ms_p99``, ``aborts.OC000`` -> ``aborts_OC000``."""
    return "_".join(part for part in metric.split(".") if part != "all")


def rule_for(metric: str) -> Rule:
    """The first rule of ``METRIC_RULES`` that matches ``metric``."""
    return next(rule for rule in METRIC_RULES if fnmatch.fnmatchcase(metric, rule.pattern))


# ---------------------------------------------------------------------- flattening


def flatten_numbers(section: Any, prefix: str = "") -> dict[str, float | bool | None]:
    """Dotted name -> value of every number, boolean or null leaf; lists and text are
    not metrics and are left out."""
    found: dict[str, float | bool | None] = {}
    if isinstance(section, dict):
        for key, value in section.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                found.update(flatten_numbers(value, name))
            elif value is None or isinstance(value, (bool, int, float)):
                found[name] = value
    return found


def host_samples(host: dict) -> dict[str, list[float]]:
    """``host.<name>`` -> its samples: ``host.samples`` when the run was repeated, else
    the one headline value of each float figure."""
    samples = host.get("samples")
    if isinstance(samples, dict) and samples:
        return {f"host.{name}": [float(v) for v in values]
                for name, values in samples.items()
                if isinstance(values, list) and values
                and all(_is_number(v) for v in values)}
    return {f"host.{name}": [float(value)] for name, value in host.items()
            if isinstance(value, float)}


def config_differences(base: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, base value, new value)`` for every config leaf that differs
    (a missing leaf is ``None``); lists are leaves. Sorted by key."""
    if isinstance(base, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(base) | set(new)):
            name = f"{prefix}.{key}" if prefix else key
            found += config_differences(base.get(key), new.get(key), name)
        return found
    return [] if base == new else [(prefix, base, new)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------------- statistics


def mann_whitney_u(x: list[float], y: list[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: ``(U of x, p-value)``.

    Exact (the null distribution of U counted by dynamic programming) when there are no
    ties and both samples have at most 50 values; otherwise the normal approximation
    with tie and continuity corrections.
    """
    x_np, y_np = np.asarray(x, float), np.asarray(y, float)
    n_x, n_y = x_np.size, y_np.size
    if n_x == 0 or n_y == 0:
        raise ValueError("Mann-Whitney U needs at least one value on each side")
    both = np.concatenate([x_np, y_np])
    ranks = _midranks(both)
    u_x = float(ranks[:n_x].sum() - n_x * (n_x + 1) / 2)
    has_ties = np.unique(both).size < both.size
    if not has_ties and max(n_x, n_y) <= 50:
        return u_x, _exact_p(u_x, n_x, n_y)
    return u_x, _normal_p(u_x, n_x, n_y, both)


def min_p_value(n_x: int, n_y: int) -> float:
    """The smallest two-sided p-value the exact test can give for these sizes: below
    ``alpha`` is needed before a host change can ever count as significant."""
    return min(1.0, 2.0 / math.comb(n_x + n_y, n_x))


def _midranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    sorted_values = values[order]
    start = 0
    while start < values.size:
        end = start
        while end + 1 < values.size and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1  # ties share the mean rank
        start = end + 1
    return ranks


def _u_distribution(n_x: int, n_y: int) -> np.ndarray:
    """Count of arrangements giving each U in ``0..n_x*n_y`` (Mann and Whitney's
    recurrence f(m, n, u) = f(m-1, n, u-n) + f(m, n-1, u))."""
    # table[n] holds f(m, n, .) for the current m; m = 0 gives one arrangement, U = 0.
    table = [np.ones(1) for _ in range(n_y + 1)]
    for m in range(1, n_x + 1):
        row = [np.ones(1)]  # n = 0: one arrangement, U = 0
        for n in range(1, n_y + 1):
            counts = np.zeros(m * n + 1)
            take_x = table[n]  # f(m-1, n, .), shifted by n
            counts[n:n + take_x.size] += take_x
            counts[:row[n - 1].size] += row[n - 1]  # f(m, n-1, .)
            row.append(counts)
        table = row
    return table[n_y]


def _exact_p(u: float, n_x: int, n_y: int) -> float:
    counts = _u_distribution(n_x, n_y)
    total = counts.sum()
    u_int = int(round(u))
    low = counts[:u_int + 1].sum() / total
    high = counts[u_int:].sum() / total
    return float(min(1.0, 2 * min(low, high)))


def _normal_p(u: float, n_x: int, n_y: int, both: np.ndarray) -> float:
    n = n_x + n_y
    _, tie_sizes = np.unique(both, return_counts=True)
    tie_term = float((tie_sizes ** 3 - tie_sizes).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n_x * n_y / 12 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0  # every value equal: no evidence of a difference
    z = (abs(u - n_x * n_y / 2) - 0.5) / math.sqrt(variance)
    return float(min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


# ---------------------------------------------------------------------- rows


@dataclass
class Row:
    """One metric of a comparison, judged."""

    metric: str
    kind: str  # "simulated" or "host"
    base: float | bool | None
    new: float | bool | None
    ratio: float | None  # new / base; None when base is 0 or either is missing
    mark: str
    limit: str  # the threshold applied, e.g. "+5%", "+0%" (exact), "off"
    note: str = ""
    p_value: float | None = None

    @property
    def regression(self) -> bool:
        return self.mark == WORSE


def judge_simulated(metric: str, base: Any, new: Any, limit: Limit) -> Row:
    """A simulated metric's row: exact equality first, then the limit."""
    row = Row(metric, "simulated", base, new, _ratio(base, new), SAME, limit.text())
    if base == new:
        return row
    if base is None or new is None:
        row.mark, row.note = NOT_COMPARABLE, "null on one side"
        return row
    row.mark, row.note = _judge_move(float(base), float(new), limit)
    return row


def judge_host(metric: str, base: list[float], new: list[float], limit: Limit,
               alpha: float) -> Row:
    """A host metric's row: median move beyond the limit AND Mann-Whitney p < alpha."""
    base_median, new_median = float(np.median(base)), float(np.median(new))
    row = Row(metric, "host", base_median, new_median, _ratio(base_median, new_median),
              SAME, limit.text())
    if base_median == new_median:
        return row
    mark, note = _judge_move(base_median, new_median, limit)
    if mark not in (WORSE, BETTER):
        row.mark, row.note = mark, note
        return row
    sizes = f"n={len(base)}/{len(new)}"
    if min_p_value(len(base), len(new)) >= alpha:
        row.mark = UNKNOWN
        row.note = f"{note}; {sizes} too few samples for p<{alpha:g} (--repeat more)"
        return row
    _, row.p_value = mann_whitney_u(base, new)
    if row.p_value < alpha:
        row.mark, row.note = mark, f"{note}; p={row.p_value:.3g} ({sizes})"
    else:
        row.mark, row.note = CHANGED, f"not significant: p={row.p_value:.3g} ({sizes})"
    return row


def _judge_move(base: float, new: float, limit: Limit) -> tuple[str, str]:
    if limit.sign == 0:
        return CHANGED, "not judged (no direction, or off)"
    change = new - base
    if limit.relative:
        size = abs(change) / abs(base) if base else math.inf
    else:
        size = abs(change)
    if size <= limit.amount:
        return CHANGED, f"within {limit.text()[1:]}"
    worse = change * limit.sign > 0
    return (WORSE, "worse") if worse else (BETTER, "better")


def _ratio(base: Any, new: Any) -> float | None:
    if base is None or new is None:
        return None
    if float(base) == 0:
        return 1.0 if float(new) == 0 else None
    return float(new) / float(base)


# ---------------------------------------------------------------------- comparison


@dataclass
class Side:
    """What identifies one input of a comparison."""

    label: str
    workload: str | None
    seed: int
    config_sha256: str

    @classmethod
    def of(cls, label: str, summary: dict) -> Side:
        workload = (summary["config"].get("workload") or {}).get("name")
        return cls(label, workload, summary["seed"], summary["config_sha256"])


@dataclass
class Comparison:
    """The judged rows of BASE against NEW, and what they rest on."""

    base: Side
    new: Side
    basis: str  # "exact" (same config and seed) or "thresholds"
    config_differences: list[tuple[str, Any, Any]]
    rows: list[Row]
    alpha: float
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [row for row in self.rows if row.regression]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.regressions else EXIT_OK

    def counts(self) -> dict[str, int]:
        return {mark: sum(row.mark == mark for row in self.rows) for mark in MARKS}


def compare_summaries(base: dict, new: dict, fail_on: list[FailOn] = (),
                      alpha: float = ALPHA_DEFAULT, base_label: str = "base",
                      new_label: str = "new") -> Comparison:
    """Judge every metric of ``new`` against ``base`` (two loaded summaries).

    ``fail_on`` rules apply in order, the last matching one winning; a rule that
    matches no metric of either side is a ``UserError`` (a typo must not disable a
    gate silently).
    """
    exact = (base["config_sha256"] == new["config_sha256"] and base["seed"] == new["seed"])
    sim_base, sim_new = flatten_numbers(base["simulated"]), flatten_numbers(new["simulated"])
    host_base, host_new = host_samples(base["host"]), host_samples(new["host"])
    _check_rules_match(fail_on, set(sim_base) | set(sim_new) | set(host_base) | set(host_new))
    same_window = sim_base.get("duration_s") == sim_new.get("duration_s")
    rows = []
    for metric in _ordered(set(sim_base) | set(sim_new)):
        limit = _limit(metric, exact, fail_on)
        if metric not in sim_base or metric not in sim_new:
            rows.append(_one_sided(metric, "simulated", sim_base.get(metric),
                                   sim_new.get(metric), metric in sim_base, limit))
            continue
        row = judge_simulated(metric, sim_base[metric], sim_new[metric], limit)
        if not same_window and row.mark != SAME and _is_window_count(metric):
            row.mark, row.note = NOT_COMPARABLE, "count over a different measured duration"
        rows.append(row)
    for metric in sorted(set(host_base) & set(host_new)):
        limit = _limit(metric, False, fail_on)
        rows.append(judge_host(metric, host_base[metric], host_new[metric], limit, alpha))
    comparison = Comparison(
        Side.of(base_label, base), Side.of(new_label, new), "exact" if exact else "thresholds",
        config_differences(base["config"], new["config"]), rows, alpha)
    if bool(host_base) != bool(host_new):
        side = "new" if host_base else "base"
        comparison.notes.append(f"{side} has no host figures: host metrics not compared")
    return comparison


def compare_paths(base: Path, new: Path, fail_on: list[FailOn] = (),
                  alpha: float = ALPHA_DEFAULT) -> Comparison:
    """Load (``ResultError`` on bad input) and compare two run folders or summary files."""
    return compare_summaries(load_run(base), load_run(new), fail_on, alpha,
                             str(base), str(new))


def _limit(metric: str, exact: bool, fail_on: list[FailOn]) -> Limit:
    rule = rule_for(metric)
    threshold = 0.0 if exact and not metric.startswith("host.") else rule.threshold
    limit = Limit(rule.direction, threshold)
    for candidate in fail_on:
        if candidate.matches(metric):
            limit = candidate.limit_for(rule.direction)
    return limit


def _is_window_count(metric: str) -> bool:
    return any(fnmatch.fnmatchcase(metric, pattern) for pattern in WINDOW_COUNTS)


def _one_sided(metric: str, kind: str, base: Any, new: Any, in_base: bool,
               limit: Limit) -> Row:
    where = "base only" if in_base else "new only"
    return Row(metric, kind, base, new, None, NOT_COMPARABLE, limit.text(), where)


def _check_rules_match(fail_on: list[FailOn], metrics: set[str]) -> None:
    for rule in fail_on:
        if not any(rule.matches(metric) for metric in metrics):
            names = sorted(metrics | {flat_name(m) for m in metrics})
            close = difflib.get_close_matches(rule.name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"--fail-on {rule.name!r}: matches no metric{hint}")


# Headline metrics first, then the rest alphabetically: the top of the table is what a
# reader looks at first.
_HEAD = ("throughput_per_s", "goodput_per_s", "abort_rate", "latency_ms.all.")


def _ordered(metrics: set[str]) -> list[str]:
    def key(metric: str) -> tuple[int, str]:
        for index, head in enumerate(_HEAD):
            if metric == head or (head.endswith(".") and metric.startswith(head)):
                return index, metric
        return len(_HEAD), metric
    return sorted(metrics, key=key)


# ---------------------------------------------------------------------- output


def to_json(comparison: Comparison) -> dict:
    """The comparison as plain JSON data (no NaN or inf: a missing ratio is null)."""
    return {
        "schema_version": 1,
        "base": asdict(comparison.base),
        "new": asdict(comparison.new),
        "basis": comparison.basis,
        "alpha": comparison.alpha,
        "config_differences": [
            {"key": key, "base": base, "new": new}
            for key, base, new in comparison.config_differences],
        "marks": MARKS,
        "counts": comparison.counts(),
        "regressions": [row.metric for row in comparison.regressions],
        "exit_code": comparison.exit_code,
        "notes": comparison.notes,
        "rows": [dict(asdict(row), flat=flat_name(row.metric)) for row in comparison.rows],
    }


def header_lines(comparison: Comparison) -> list[str]:
    """What the comparison rests on, in a few lines of plain text."""
    lines = [f"base: {_side_text(comparison.base)}", f"new:  {_side_text(comparison.new)}"]
    if comparison.basis == "exact":
        lines.append("basis: exact (same config and seed: simulated metrics must match; "
                     "--fail-on states tolerances)")
    else:
        lines.append("basis: thresholds (config or seed differ: simulated metrics judged "
                     "with per-metric thresholds)")
        for key, base, new in comparison.config_differences[:8]:
            lines.append(f"  config {key}: {_value_text(base)} -> {_value_text(new)}")
        extra = len(comparison.config_differences) - 8
        if extra > 0:
            lines.append(f"  ... and {extra} more config differences")
    lines += comparison.notes
    return lines


def verdict_line(comparison: Comparison) -> str:
    counts = comparison.counts()
    tally = ", ".join(f"{n} {mark}" for mark, n in counts.items() if n)
    regressions = comparison.regressions
    if regressions:
        names = ", ".join(row.metric for row in regressions[:5])
        more = f" and {len(regressions) - 5} more" if len(regressions) > 5 else ""
        return f"REGRESSION in {len(regressions)} metric(s): {names}{more} ({tally})"
    return f"no regression ({tally})"


def shown_rows(comparison: Comparison, show_all: bool) -> list[Row]:
    """All rows, or only those that are not ``=`` (the default for people)."""
    return list(comparison.rows) if show_all else [
        row for row in comparison.rows if row.mark != SAME]


def to_markdown(comparison: Comparison, show_all: bool = False, legend: bool = True) -> str:
    """A Markdown report for a CI comment: verdict, header, a table of the rows and
    (with ``legend``) what the marks mean."""
    lines = [f"**dsqlbench compare**: {verdict_line(comparison)}", ""]
    lines += [f"- {_escape_md(line.strip())}" for line in header_lines(comparison)]
    rows = shown_rows(comparison, show_all)
    if rows:
        lines += ["", "| | metric | base | new | ratio | limit | note |",
                  "|---|---|---:|---:|---:|---:|---|"]
        for row in rows:
            cells = (f"`{row.mark}`", f"`{row.metric}`", format_value(row.base),
                     format_value(row.new), format_ratio(row.ratio), row.limit,
                     _escape_md(row.note))
            lines.append("| " + " | ".join(cells) + " |")
    hidden = len(comparison.rows) - len(rows)
    if hidden:
        lines += ["", f"{hidden} metrics unchanged (`=`) are not shown."]
    if legend:
        lines += ["", "Marks: " + "; ".join(f"`{m}` {text}" for m, text in MARKS.items())]
    return "\n".join(lines) + "\n"


def render_table(comparison: Comparison, console: Any, show_all: bool = False) -> None:
    """Print the comparison as a terminal table (plain text when not a terminal)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    for line in header_lines(comparison):
        console.print(escape(line), highlight=False, soft_wrap=True)
    rows = shown_rows(comparison, show_all)
    if rows:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False)
        # On a narrow terminal names and numbers fold onto a second line rather than
        # lose characters to an ellipsis: a log is read and grepped for them.
        table.add_column("", min_width=1, no_wrap=True)
        for name, justify in (("metric", "left"), ("base", "right"), ("new", "right"),
                              ("ratio", "right"), ("limit", "right"), ("note", "left")):
            table.add_column(name, justify=justify, overflow="fold")
        for row in rows:
            style = {WORSE: "red", BETTER: "green"}.get(row.mark)
            table.add_row(escape(row.mark), escape(row.metric), format_value(row.base),
                          format_value(row.new), format_ratio(row.ratio), row.limit,
                          escape(row.note), style=style)
        console.print(table)
    hidden = len(comparison.rows) - len(rows)
    if hidden:
        console.print(f"{hidden} metrics unchanged (=) not shown; --all shows them",
                      highlight=False)
    console.print(verdict_line(comparison), highlight=False, soft_wrap=True)


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"


def format_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}"


def _side_text(side: Side) -> str:
    return (f"{side.label} (workload {side.workload or '-'}, seed {side.seed}, "
            f"config {side.config_sha256[:12]})")


def _value_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if value is not None else "(absent)"


def _escape_md(text: str) -> str:
    return text.replace("|", "\\|")
