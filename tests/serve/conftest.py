import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from serving import ServerThread  # noqa: E402


@pytest.fixture
def server():
    """A fresh server (fast time, seed 1) per test, stopped afterwards."""
    thread = ServerThread(time_mode="fast").start()
    yield thread
    thread.stop()
