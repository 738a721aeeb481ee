"""Suite-wide hooks.

The dashboard test needs a headless Chromium, which a fresh machine may not have (only
``.ci/run`` installs it). Its skip is counted apart from the benchmarks' (skipped by
``--benchmark-skip``) so the last line of a run says what is missing and how to get it::

    910 passed, 108 skipped, 2 skipped (no Chromium: apt-get install chromium) in 120.00s
"""

from __future__ import annotations

NO_CHROMIUM_REASON = "no Chromium on PATH"  # how tests/results/test_report.py skips
NO_CHROMIUM_CATEGORY = "skipped (no Chromium: apt-get install chromium)"


def _skipped_for_no_chromium(report) -> bool:
    return bool(report.skipped and NO_CHROMIUM_REASON in str(report.longrepr))


def pytest_report_teststatus(report, config):
    if _skipped_for_no_chromium(report):
        return NO_CHROMIUM_CATEGORY, "s", "SKIPPED"
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # A category of its own leaves pytest's "-ra" list of skips: give its reason here.
    reports = terminalreporter.stats.get(NO_CHROMIUM_CATEGORY, [])
    if not reports:
        return
    longrepr = reports[0].longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    terminalreporter.write_sep("=", "dashboard not tested", yellow=True)
    terminalreporter.write_line(f"SKIPPED [{len(reports)}] {reason.removeprefix('Skipped: ')}")
