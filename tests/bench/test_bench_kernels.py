"""The hot-path kernels against their peers, under pytest-benchmark.

Run with ``pytest tests/bench/test_bench_kernels.py --benchmark-only`` (add
``--benchmark-group-by=group`` to see each job's peers side by side). The cases,
inputs and peers are those of ``dsqlbench bench`` (``dsqlbench.bench``); every case's
output is checked against a peer's before it is timed. Sizes are issue 3's; set
``DSQLBENCH_BENCH_SIZES=quick`` for small ones. Peers that are not installed here
(ISA-L, creedsolo) are skipped. End-to-end simulation speed is measured by
``test_bench_sim.py``.
"""

from __future__ import annotations

import functools
import os

import pytest

from dsqlbench import bench

SIZES = bench.QUICK if os.environ.get("DSQLBENCH_BENCH_SIZES") == "quick" else bench.FULL

ERASURE_KEYS = ["ours", "reference", "isal", "isal-copy", "zfec", "reedsolo", "creedsolo"]
MERGE_KEYS = ["ours", "reference", "argsort", "argsort-stable", "heapq", "sorted"]
CONFLICT_KEYS = ["ours", "reference", "typed-dict"]


@functools.lru_cache(maxsize=1)  # one batch of inputs in memory at a time
def cases_of(spec: tuple) -> dict[tuple[str, str], bench.Case]:
    kind, *args = spec
    build = {"erasure": bench.erasure_cases, "merge": bench.merge_cases, "conflicts": bench.conflict_cases}[kind]
    if kind != "conflicts":
        args.append(True)  # slow peers too: this file is run on purpose
    return {(case.group.split()[1] if kind == "erasure" else "", case.key): case for case in build(*args)}


def run(benchmark, spec: tuple, op: str, key: str) -> None:
    case = cases_of(spec).get((op, key))
    if case is None:
        pytest.skip(f"peer {key!r} is not available here")
    benchmark.group = case.group
    benchmark.name = case.name
    benchmark.extra_info.update(items=case.items, unit=case.unit, ours=case.ours)
    rounds = max(1, min(case.rounds_max, 10))
    benchmark.pedantic(lambda call: call(), setup=lambda: ((case.prepare(),), {}), rounds=rounds,
                       iterations=1, warmup_rounds=1 if case.rounds_max > 3 else 0)


@pytest.mark.parametrize("key", ERASURE_KEYS)
@pytest.mark.parametrize("op", ["encode", "rebuild"])
@pytest.mark.parametrize("payload_bytes", SIZES.erasure_bytes)
@pytest.mark.parametrize("k, m", [(4, 2), (6, 3)])
def test_bench_erasure(benchmark, k, m, payload_bytes, op, key):
    run(benchmark, ("erasure", k, m, payload_bytes), op, key)


@pytest.mark.parametrize("key", MERGE_KEYS)
@pytest.mark.parametrize("bursty", [False, True], ids=["random", "bursty"])
@pytest.mark.parametrize("k", SIZES.merge_ks)
def test_bench_merge(benchmark, k, bursty, key):
    run(benchmark, ("merge", k, SIZES.merge_records, bursty), "", key)


@pytest.mark.parametrize("key", CONFLICT_KEYS)
@pytest.mark.parametrize("zipfian", [False, True], ids=["uniform", "zipfian"])
@pytest.mark.parametrize("n_keys", SIZES.conflict_keys)
def test_bench_conflicts(benchmark, n_keys, zipfian, key):
    run(benchmark, ("conflicts", SIZES.conflict_txns, n_keys, zipfian), "", key)


def test_bench_numba_warm_startup(benchmark):
    """Import of the kernels plus the first call of every Numba kernel, in a fresh
    process with a warm cache (target: under 1 s)."""
    bench._subprocess_json(bench.STARTUP_CODE, [], {})  # make sure the cache is warm
    benchmark.group = "numba start-up"
    benchmark.pedantic(lambda: bench._subprocess_json(bench.STARTUP_CODE, [], {}), rounds=3, iterations=1)
