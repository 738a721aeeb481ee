"""Without Chromium the dashboard test is skipped, and the run's last line says why and
how to get the full suite (issue 14, item 8); the README says it too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_missing_chromium_is_named_in_the_summary_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # CI fails instead of skipping
    env["PATH"] = str(tmp_path)  # an empty folder: no browser to be found
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "tests/results/test_report.py", "-k", "headless_chromium"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "2 skipped (no Chromium: apt-get install chromium)" in last, done.stdout[-3000:]
    assert "install it with: apt-get update && apt-get install -y chromium" in done.stdout


def test_readme_says_how_to_get_the_full_suite():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "apt-get install -y chromium" in readme
    assert "skipped (no Chromium: apt-get install chromium)" in readme
