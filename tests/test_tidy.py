"""Tidy: no wall clock, stray randomness or salted hashing in simulated code.

Like TigerBeetle's tidy.zig, this reads the source rather than trusting reviews: the
same config and seed must give byte-identical simulated figures, so the packages that
compute them may not read the wall clock, draw from an unseeded generator or use
``hash()`` (salted per process for strings). Each rule names what to use instead. A
wall-clock read that only feeds the ``host`` section is allowed on a line marked
``# host figures only``.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dsqlbench"
SIMULATED = ["clock.py", "components", "sim", "kernels", "workload", "sql", "checkers"]
# Seeded by design: generates checker test histories from an explicit seed.
ALLOWED_FILES = {"checkers/synthetic.py"}
HOST_MARK = "host figures only"

WALL_CLOCK = {("time", "time"), ("time", "perf_counter"), ("time", "monotonic"),
              ("time", "process_time"), ("time", "time_ns"), ("time", "perf_counter_ns"),
              ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}
SEEDED_NUMPY = {"Generator", "PCG64", "SeedSequence"}


def simulated_files() -> list[Path]:
    files = []
    for entry in SIMULATED:
        path = PACKAGE / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [f for f in files if str(f.relative_to(PACKAGE)) not in ALLOWED_FILES]


def dotted(node: ast.AST) -> list[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def violations(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{_shown(path)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if "random" in names:
                found.append(f"{where}: the random module; draw from dsqlbench.seeds.stream(seed, name)")
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func)
        line = lines[node.lineno - 1]
        if tuple(name[-2:]) in WALL_CLOCK and HOST_MARK not in line:
            found.append(f"{where}: {'.'.join(name)}(); simulated code reads env.now or a NodeClock")
        if len(name) >= 3 and name[-3:-1] in (["np", "random"], ["numpy", "random"]) \
                and name[-1] not in SEEDED_NUMPY:
            found.append(f"{where}: {'.'.join(name)}(); use a Generator from dsqlbench.seeds.stream")
        if name == ["hash"]:
            found.append(f"{where}: hash() is salted per process; use hashlib or an explicit hash")
    return found


def _shown(path: Path) -> str:
    return str(path.relative_to(PACKAGE)) if path.is_relative_to(PACKAGE) else path.name


@pytest.mark.parametrize("path", simulated_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_simulated_code_is_deterministic(path):
    assert violations(path) == []


def test_the_rules_catch_what_they_ban(tmp_path):
    sample = tmp_path / "probe.py"
    sample.write_text("import random\nimport time\nimport numpy as np\n"
                      "a = time.time()\nb = np.random.default_rng()\nc = hash('x')\n"
                      "d = time.perf_counter()  # host figures only\n"
                      "e = np.random.Generator(np.random.PCG64(1))\n")
    found = violations(sample)
    assert len(found) == 4, found  # random, time.time, default_rng, hash; not the rest
