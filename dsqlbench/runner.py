"""One run, from a resolved config to the summary and tables a run folder holds.

``dsqlbench run``, ``sweep`` workers and the CI ``baseline`` suite all go through
``run_config``, so a run folder means the same thing whichever of them wrote it:
simulate (N times when repeating), check that repeats agree, judge the history with
both checkers, and build the summary.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa

from dsqlbench import __version__


@dataclass
class RunResult:
    summary: dict
    tables: dict[str, pa.Table]
    verdict: dict


def run_config(cfg: dict, *, repeat: int = 1, strict: bool = False,
               progress_factory: Callable[[], object] | None = None,
               git_revision: str | None = None, config_sha256: str | None = None) -> RunResult:
    """Simulate ``cfg`` ``repeat`` times and build the run's summary.

    ``progress_factory`` makes a context manager with ``update(snapshot)`` per repeat
    (a progress bar); ``strict`` holds the verdict to strong snapshot isolation.
    """
    from dsqlbench.config import config_sha256 as sha256_of
    from dsqlbench.results.folder import build_summary
    from dsqlbench.sim.run import check_history, simulate

    assert repeat >= 1
    outputs = []
    for _ in range(repeat):
        if progress_factory is None:
            outputs.append(simulate(cfg))
            continue
        with progress_factory() as bar:
            outputs.append(simulate(cfg, progress=lambda _now, snap: bar.update(snap)))
    output = outputs[0]
    host = repeated_host(outputs)  # before the checks add their verdict to the first
    verdict = check_history(output.simulated, history_of(output.tables), strict=strict)
    summary = build_summary(cfg, config_sha256 or sha256_of(cfg), cfg["run"]["seed"],
                            output.kernels, output.simulated, host, __version__, git_revision)
    return RunResult(summary, output.tables, verdict)


def history_of(tables: dict[str, pa.Table]) -> list[dict] | None:
    from dsqlbench.checkers.verdict import history_from_table

    table = tables.get("history")
    return history_from_table(table) if table is not None else None


def repeated_host(outputs) -> dict:
    """Host figures of N repeats: medians as headline, every sample kept.

    Repeats of one config and seed must agree exactly on every simulated figure; a
    difference is a determinism bug, and it fails loudly here.
    """
    first = json.dumps(outputs[0].simulated, sort_keys=True)
    for index, other in enumerate(outputs[1:], start=2):
        if json.dumps(other.simulated, sort_keys=True) != first:
            raise AssertionError(f"repeat {index} simulated different figures: determinism bug")
    names = [k for k, v in outputs[0].host.items() if isinstance(v, float)]
    samples = {name: [o.host[name] for o in outputs] for name in names}
    host = dict(outputs[0].host)
    host.update({name: statistics.median(values) for name, values in samples.items()})
    host["repeats"] = len(outputs)
    host["samples"] = samples
    return host


def cwd_revision() -> str | None:
    from dsqlbench.results.folder import git_revision

    return git_revision(Path.cwd())
