"""The summary table renders to a plain (non-terminal) console with the key figures,
and the progress reporter draws nothing off a terminal and JSON lines on request."""

from __future__ import annotations

import io
import json

from rich.console import Console

from dsqlbench.metrics import Recorder
from dsqlbench.results.folder import build_summary
from dsqlbench.results.summary_table import ProgressReporter, render_summary

MS = 1_000_000
S = 1_000_000_000


def make_summary(recorder: Recorder | None = None) -> dict:
    if recorder is None:
        recorder = Recorder(0, S)
        for i in range(10):
            committed = i != 3
            recorder.attempt(
                i, 1, "update" if i % 2 else "read", 0, "qp-0", "r1", "az1", i * MS,
                i * MS, i * MS + (i + 1) * MS, i * MS, i * MS + MS if committed else -1,
                "committed" if committed else "aborted", "" if committed else "OC000",
                True, 1000 * i, MS, 4 * MS, MS, 2 * MS, 0, 0, 1, 1)
            recorder.statement("read", 800_000, i * MS)
            recorder.read_wait(1000 * (i % 2), i * MS)
            recorder.visibility(3 * MS, i * MS)
    config = {"workload": {"name": "ycsb-a"}, "topology": {"topology": {"name": "single-region"}}}
    kernels = {"conflicts": "python", "erasure": "python", "merge": "python"}
    host = {"wall_s": 2.5, "sim_txn_per_wall_s": 12345.0, "events_per_wall_s": 98765.0}
    return build_summary(config, None, 42, kernels, recorder.summarize(S, S), host,
                         "0.1.0", None)


def render(summary: dict) -> str:
    buffer = io.StringIO()
    render_summary(summary, Console(file=buffer, width=120))
    return buffer.getvalue()


def test_renders_plain_text_with_key_figures():
    text = render(make_summary())
    assert "\x1b[" not in text  # no escape codes when not a terminal
    for expected in ("ycsb-a", "single-region", "seed 42", "kernels conflicts=python",
                     "throughput 9.000 committed/s", "goodput 9.000 txn/s",
                     "p99.9", "OC000", "10.00%", "retries 0", "read_wait",
                     "adjudicate", "journal", "commit-to-visible", "0.800"):
        assert expected in text, expected
    latency_rows = [line.split() for line in text.splitlines()
                    if line.strip().startswith(("all ", "read ", "update "))]
    assert ["all", "9", "6.000"] == latency_rows[0][:3]  # count 9, median 6 ms
    host_line = text.strip().splitlines()[-1]
    assert host_line.startswith("host (wall clock, noisy)")
    assert "12,345 sim txn/wall s" in host_line and "98,765 events/wall s" in host_line


def test_renders_an_empty_run():
    text = render(make_summary(Recorder(0, S)))
    assert "nan" not in text.lower()
    assert "none" in text  # no aborts


def test_progress_is_silent_off_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer)
    with ProgressReporter(10.0, console=console) as progress:
        assert progress.mode == "none"
        progress.update({"sim_s": 1.0, "committed": 3})
    assert buffer.getvalue() == ""


def test_progress_jsonl_lines():
    stream = io.StringIO()
    recorder = Recorder(0, S)
    with ProgressReporter(2.0, mode="jsonl", stream=stream) as progress:
        progress.update(recorder.progress(S))
        progress.update(recorder.progress(2 * S))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["sim_s"] for line in lines] == [1.0, 2.0]
    assert all(line["total_s"] == 2.0 and line["committed"] == 0 for line in lines)


def test_progress_bar_on_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with ProgressReporter(None, console=console) as progress:
        assert progress.mode == "bar"
        progress.update({"sim_s": 0.5, "committed": 7})
