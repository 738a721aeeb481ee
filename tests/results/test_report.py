"""The dashboard: its data, one self-contained file, and a headless Chromium that opens
it offline and reports from the page itself that every plot drew data."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dsqlbench.results.baseline import SuiteEntry, run_entry
from dsqlbench.cli import main
from dsqlbench.results.report import build_dashboard, dashboard_data, render_page, sweep_parameter
from dsqlbench.results.folder import write_run

TINY = ("run.duration_s=0.6", "run.warmup_s=0.1", "clients.count=8",
        "load.record_count=2000", "run.timeseries_interval_s=0.1")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Every plot of a two-run sweep page: the comparison, the sweep and one run's detail.
EXPECTED_PLOTS = {
    "compare-throughput", "compare-latency", "compare-aborts", "compare-cdf",
    "compare-throughput-time", "sweep-throughput", "sweep-latency", "detail-throughput",
    "detail-latency-time", "detail-cdf", "detail-counters", "detail-phases-breakdown",
    "detail-phases-percentiles",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs that differ only in the journal's median write time (a sweep)."""
    root = tmp_path_factory.mktemp("report")
    paths = []
    for journal_us in (200, 1000):
        extra = (f"topology.journal.write_median_us={journal_us}",)
        summary, tables = run_entry(SuiteEntry("r", "ycsb-a", TINY + extra))
        paths.append(write_run(root / f"journal-{journal_us}", summary, tables))
    return paths


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


# ---------------------------------------------------------------------- data


def test_sweep_is_the_one_parameter_that_differs():
    base = {"clients": {"count": 8}, "topology": {"journal": {"write_median_us": 200.0}}}
    other = {"clients": {"count": 8}, "topology": {"journal": {"write_median_us": 900.0}}}
    assert sweep_parameter([base, other]) == {
        "parameter": "topology.journal.write_median_us", "values": [200.0, 900.0]}
    two_keys = {"clients": {"count": 16}, "topology": {"journal": {"write_median_us": 900.0}}}
    assert sweep_parameter([base, other, two_keys]) is None
    assert sweep_parameter([base]) is None
    assert sweep_parameter([base, base]) is None


def test_dashboard_data_of_a_sweep(runs):
    data = dashboard_data(runs)
    assert data["sweep"]["parameter"] == "topology.journal.write_median_us"
    first = data["runs"][0]
    assert first["name"] == "journal-200"
    assert set(first["cdf"]) == {"all", "read", "update"}
    cdf = first["cdf"]["all"]
    assert cdf["fraction"][-1] == 1.0 and cdf["latency_ms"] == sorted(cdf["latency_ms"])
    assert len(cdf["latency_ms"]) <= 400
    assert first["headline"]["latency_ms_max"] == cdf["latency_ms"][-1]
    assert len(first["timeseries"]["start_s"]) == 6
    # The breakdown's disjoint parts add up to read + commit (mean ms).
    phases = json.loads((runs[0] / "summary.json").read_text())["simulated"]["commit_phase_ms"]
    assert sum(first["phase_means"]["mean_ms"]) == pytest.approx(
        phases["read"]["mean"] + phases["commit"]["mean"], abs=1e-5)


def test_page_is_self_contained_and_data_cannot_escape_its_script(tmp_path):
    hostile = "</script><script>alert(1)</script>{{TITLE}}"
    page = render_page({"generator": "x", "runs": [], "sweep": None, "note": hostile},
                       title="<b>t</b>")
    template_scripts = 4  # error hooks, plotly.js, the data, the page's script
    assert page.count("</script>") == template_scripts
    assert "\\u003c/script>\\u003cscript>alert(1)\\u003c/script>{{TITLE}}" in page
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    assert page.count("Plotly") > 0 and page.count("plotly.js v") == 1  # inlined once
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # nothing fetched


def test_report_command_writes_one_file_atomically_and_deterministically(runs, capsys, tmp_path):
    target = tmp_path / "out" / "dashboard.html"
    code, out, err = run_cli(capsys, "report", *map(str, runs), "-o", str(target))
    assert code == 0, err
    assert out.startswith(str(target))
    first = target.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == ["dashboard.html"]
    build_dashboard(runs, target)
    assert target.read_bytes() == first  # same runs, same bytes


def test_report_of_a_truncated_table_exits_3(runs, capsys, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(runs[0], broken)
    data = (broken / "timeseries.parquet").read_bytes()
    (broken / "timeseries.parquet").write_bytes(data[:100])
    code, _, err = run_cli(capsys, "report", str(broken), "-o", str(tmp_path / "d.html"))
    assert code == 3 and "timeseries.parquet" in err and err.count("\n") == 1
    assert not (tmp_path / "d.html").exists()


def test_report_needs_a_run(capsys):
    code, _, _ = run_cli(capsys, "report")
    assert code == 2


# ---------------------------------------------------------------------- browser


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    reason = ("no Chromium on PATH (looked for " + ", ".join(CHROMIUM_NAMES) +
              "); install it with: apt-get update && apt-get install -y chromium")
    if os.environ.get("CI"):
        pytest.fail(reason)  # CI installs it; a missing browser must not pass silently
    pytest.skip(reason)


def chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with networking off: any request goes to a dead proxy."""
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        "--virtual-time-budget=15000", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("count", [1, 2])
def test_dashboard_draws_every_plot_offline_in_headless_chromium(runs, tmp_path, count):
    browser = find_chromium()
    page = build_dashboard(runs[:count], tmp_path / "dashboard.html")
    done = chromium(browser, tmp_path / "profile", "--dump-dom", page.resolve().as_uri())
    match = re.search(r'<pre id="dashboard-status">(.*?)</pre>', done.stdout, re.S)
    assert match, f"no status element in the DOM; chromium said: {done.stderr[-2000:]}"
    status = json.loads(html.unescape(match.group(1)))
    assert status["errors"] == []
    expected = EXPECTED_PLOTS if count > 1 else {
        plot for plot in EXPECTED_PLOTS if plot.startswith("detail-")}
    assert set(status["plots"]) == expected
    for plot, drawn in status["plots"].items():
        assert drawn["points"] > 0 and drawn["traces_drawn"] > 0, plot
    assert status["ok"] is True
    screenshot = os.environ.get("DSQLBENCH_DASHBOARD_SCREENSHOT")
    if screenshot and count > 1:  # for a person to look at: how the page reads
        chromium(browser, tmp_path / "profile-shot", "--hide-scrollbars",
                 "--window-size=1400,2600", f"--screenshot={screenshot}", page.resolve().as_uri())
