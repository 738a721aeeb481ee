"""The dashboard: ``dsqlbench report RUN... -o dashboard.html``.

Place in the pipeline: reads run folders (``results.load_run`` and the Parquet tables,
so unreadable input is a ``ResultError``, exit 3), reduces each to the small data the
plots need (``run_data``), and fills the static template ``templates/dashboard.html``
with that data as JSON and with plotly.js. The page's own script draws every plot from
the JSON; no HTML is built from strings here (asv's habit: a static page fed with data).

Invariants:

- One self-contained file that opens offline: plotly.js is inlined once, nothing is
  fetched. The JSON is embedded with every ``<`` escaped, so no value can close the
  script element it sits in.
- Deterministic: the same runs give the same bytes (no wall clock, sorted keys).
- Written atomically (``results.atomic_output``): a reader never sees half a page.
- The page reports its own health: when done it writes ``#dashboard-status`` (JSON:
  ``ok``, JavaScript ``errors``, and the number of points each plot drew), which the
  headless-browser test reads.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dsqlbench.errors import UserError
from dsqlbench.metrics import COMMIT_PHASES
from dsqlbench.results.compare import config_differences
from dsqlbench.results.folder import atomic_output, load_run, read_run_table

# How many points a CDF keeps: an evenly spaced body plus a log-spaced tail, so the
# file stays small while p99.9 and the maximum are still drawn where they are.
CDF_BODY_POINTS = 200
CDF_TAIL_POINTS = 120
NS_PER_MS = 1_000_000

_PLACEHOLDER = re.compile(r"\{\{(PLOTLY_JS|DATA_JSON|TITLE)\}\}")
_TIMESERIES_COLUMNS = ("start_s", "end_s", "throughput_per_s", "abort_rate",
                       "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                       "latency_ms_max", "read_wait_ms_p99", "warmup")


def build_dashboard(runs: list[Path], output: Path, title: str | None = None) -> Path:
    """Write the dashboard of ``runs`` (run folders) to ``output``; returns ``output``."""
    if not runs:
        raise UserError("report: give at least one run folder")
    data = dashboard_data(runs)
    page = render_page(data, title or _default_title(data))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(output) as handle:
        handle.write(page.encode("utf-8"))
    return output


def dashboard_data(runs: list[Path]) -> dict:
    """Everything the page draws, as plain JSON data."""
    from dsqlbench import __version__

    loaded = [(Path(path), load_run(path)) for path in runs]
    names = _unique_names([path.name for path, _ in loaded])
    return {
        "generator": f"dsqlbench {__version__}",
        "runs": [run_data(path, summary, name)
                 for (path, summary), name in zip(loaded, names)],
        "sweep": sweep_parameter([summary["config"] for _, summary in loaded]),
    }


def render_page(data: dict, title: str) -> str:
    """The template with plotly.js, the data and the title put in (one pass, so a
    value that looks like a placeholder stays text)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise UserError("report needs plotly: pip install 'dsqlbench[dashboard]'") from None
    template = resources.files("dsqlbench").joinpath("templates/dashboard.html").read_text(
        encoding="utf-8")
    data_json = json.dumps(data, sort_keys=True, allow_nan=False, separators=(",", ":"))
    values = {
        "PLOTLY_JS": get_plotlyjs(),
        "DATA_JSON": data_json.replace("<", "\\u003c"),
        "TITLE": html.escape(title),
    }
    return _PLACEHOLDER.sub(lambda match: values[match[1]], template)


# ---------------------------------------------------------------------- one run


def run_data(path: Path, summary: dict, name: str) -> dict:
    """The figures of one run that the page draws."""
    sim = summary["simulated"]
    config = summary["config"]
    transactions = read_run_table(path, "transactions")
    timeseries = read_run_table(path, "timeseries")
    return {
        "name": name,
        "path": str(path),
        "workload": (config.get("workload") or {}).get("name"),
        "topology": ((config.get("topology") or {}).get("topology") or {}).get("name"),
        "seed": summary["seed"],
        "config_sha256": summary["config_sha256"],
        "headline": headline(sim),
        "timeseries": {column: timeseries[column].to_pylist()
                       for column in _TIMESERIES_COLUMNS if column in timeseries.column_names},
        "cdf": latency_cdfs(transactions),
        "phases": phase_percentiles(sim),
        "phase_means": phase_breakdown(sim),
        "counters": counters(sim),
        "faults": ((sim.get("checks") or {}).get("faults") or {}).get("timeline", []),
    }


def headline(sim: dict) -> dict:
    """The few figures a reader compares first (``None`` where the run has none)."""
    latency = (sim.get("latency_ms") or {}).get("all") or {}
    return {
        "throughput_per_s": sim.get("throughput_per_s"),
        "goodput_per_s": sim.get("goodput_per_s"),
        "abort_rate": sim.get("abort_rate"),
        "latency_ms_p50": latency.get("p50"),
        "latency_ms_p99": latency.get("p99"),
        "latency_ms_p99_9": latency.get("p99_9"),
        "latency_ms_max": latency.get("max"),
        "committed": (sim.get("transactions") or {}).get("committed"),
        "duration_s": sim.get("duration_s"),
    }


def latency_cdfs(transactions: pa.Table) -> dict[str, dict[str, list[float]]]:
    """Per transaction type (and ``all``): latency (ms) and the fraction of final,
    committed, measured transactions at or below it, thinned to a few hundred points."""
    keep = pc.and_(pc.and_(transactions["final"], transactions["measured"]),
                   pc.equal(transactions["outcome"].cast(pa.string()), "committed"))
    chosen = transactions.filter(keep)
    latency_ns = chosen["latency_ns"].to_numpy(zero_copy_only=False)
    types = np.asarray(chosen["txn_type"].cast(pa.string()).to_pylist(), dtype=object)
    cdfs = {"all": _cdf(latency_ns)}
    for txn_type in sorted(set(types.tolist())):
        cdfs[txn_type] = _cdf(latency_ns[types == txn_type])
    return cdfs


def _cdf(latency_ns: np.ndarray) -> dict[str, list[float]]:
    ordered = np.sort(latency_ns)
    n = ordered.size
    if n == 0:
        return {"latency_ms": [], "fraction": []}
    body = np.linspace(0.0, 1.0, CDF_BODY_POINTS + 1)
    tail = 1.0 - np.logspace(-1, -max(np.log10(n), 1.0), CDF_TAIL_POINTS)
    positions = np.unique(np.round(np.concatenate([body, tail]) * (n - 1)).astype(np.int64))
    return {"latency_ms": [round(float(v) / NS_PER_MS, 6) for v in ordered[positions]],
            "fraction": [round(float(p + 1) / n, 9) for p in positions]}


def phase_percentiles(sim: dict) -> dict[str, Any]:
    """p50, p90 and p99 (ms) of each commit phase, in pipeline order."""
    phases = sim.get("commit_phase_ms") or {}
    names = [name for name in COMMIT_PHASES if name in phases]
    return {"names": names,
            **{key: [phases[name].get(key) for name in names] for key in ("p50", "p90", "p99")}}


def phase_breakdown(sim: dict) -> dict[str, Any]:
    """Where a committed read-write transaction's time goes, as disjoint means (ms).

    The recorded phases nest (``read`` includes ``read_wait``; ``commit`` includes
    ``adjudicate``, ``journal`` and ``commit_wait``), and means subtract exactly over
    the same attempts, so the parts below add up to read + commit.
    """
    phases = sim.get("commit_phase_ms") or {}
    mean = {name: (phases.get(name) or {}).get("mean") for name in COMMIT_PHASES}
    if any(value is None for value in mean.values()):
        return {"labels": [], "mean_ms": []}
    parts = {
        "storage read wait": mean["read_wait"],
        "QP reads (excl. wait)": mean["read"] - mean["read_wait"],
        "adjudicator": mean["adjudicate"],
        "journal quorum": mean["journal"],
        "commit wait": mean["commit_wait"],
        "commit network and QP": (mean["commit"] - mean["adjudicate"] - mean["journal"]
                                  - mean["commit_wait"]),
    }
    return {"labels": list(parts), "mean_ms": [round(max(v, 0.0), 6) for v in parts.values()]}


def counters(sim: dict) -> dict[str, float]:
    """Per-component counters (``component.name``) and transaction outcomes: what the
    counters plot shows, zeros left out (a log axis cannot draw them)."""
    found = dict(sim.get("counters") or {})
    found.update({f"gauge {name}": value for name, value in (sim.get("gauges") or {}).items()})
    found.update({f"aborts {reason}": n for reason, n in (sim.get("aborts") or {}).items()})
    found.update({f"transactions {key}": n
                  for key, n in (sim.get("transactions") or {}).items()})
    return {name: value for name, value in sorted(found.items())
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0}


# ---------------------------------------------------------------------- several runs


def sweep_parameter(configs: list[dict]) -> dict | None:
    """``{"parameter": key, "values": [...]}`` when the runs' configs differ in exactly
    one leaf besides the seed (a sweep, repeats included), else ``None``."""
    if len(configs) < 2:
        return None
    # Repeats of a sweep point differ only in their derived seeds: not a parameter.
    keys = {key for config in configs[1:]
            for key, _, _ in config_differences(configs[0], config)} - {"run.seed"}
    if len(keys) != 1:
        return None
    key = keys.pop()
    return {"parameter": key, "values": [_leaf(config, key) for config in configs]}


def _leaf(config: dict, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _default_title(data: dict) -> str:
    runs = data["runs"]
    if len(runs) == 1:
        return f"dsqlbench: {runs[0]['name']}"
    if data["sweep"]:
        return f"dsqlbench: sweep of {data['sweep']['parameter']} ({len(runs)} runs)"
    return f"dsqlbench: {len(runs)} runs"
