"""A run stopped by SIGINT or SIGTERM writes nothing, not even its temporary folder,
and says so in one line (exit 130)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

ENTRY = "from dsqlbench.cli import main; main()"


def _default_sigint() -> None:  # a shell's background job starts with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_run_leaves_nothing(tmp_path, signum):
    process = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "run", "ycsb-a", "--duration", "60", "--out", "run",
         "--progress", "none"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint)
    try:
        assert process.stdout.readline().startswith("SEED=1 ")  # the run has begun
        deadline = time.monotonic() + 30
        while not any(p.name.startswith(".tmp-run-") for p in tmp_path.iterdir()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("dsqlbench: interrupted")
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
