"""``dsqlbench bench``: the hot-path kernels against well-known peers, in one run.

Role: host (wall-clock) measurements of the three compiled kernels and of the whole
lab, next to peers doing the same job on the same inputs in the same process, printed
as one table of medians, throughputs and ratios, then checked against issue 3's
targets. ``tests/bench/test_bench_kernels.py`` runs the same cases under
pytest-benchmark. These numbers are noisy host figures: they never feed a simulation.

Groups (sizes of the full run; ``--quick`` shrinks them):
- erasure: encode and rebuild (the first m data fragments lost), k+m = 4+2 and 6+3,
  64 KiB and 1 MiB payloads; peers: the reference twin, reedsolo (pure Python),
  creedsolo (when importable), zfec, and Intel ISA-L through ctypes (when
  ``libisal.so`` is installed, e.g. Debian's ``libisal2``);
- merge: about 2 million records over k = 4, 16, 64 journals, randomly interleaved and
  in bursts (geometric, mean 256 records); peers: the reference twin,
  ``heapq.merge``, ``sorted``, ``numpy.argsort`` (default and stable);
- conflicts: 1 million transactions of 1-8 distinct keys, uniform or zipfian (0.99)
  over 10^5 and 10^7 keys, in batches of 10,000; peers: the reference twin (a Python
  dict) and the same loop over a Numba ``typed.Dict``;
- end to end: simulated YCSB-A transactions per wall-clock second, compiled against
  reference kernels (each in a subprocess, selected by ``DSQLBENCH_KERNELS``);
- start-up: the Numba kernels loaded in a fresh process, cold (empty cache) and warm.

Every input is generated from a fixed seed, and every case's output is checked
against a peer's before anything is timed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import heapq
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

import click
import numpy as np

SEED = 20241203
OURS = "dsqlbench"
INT64_MAX = np.iinfo(np.int64).max


# ------------------------------------------------------------------ the runner --

@dataclass
class Case:
    """One implementation doing one group's job.

    ``prepare()`` runs untimed before every timed call and returns the zero-argument
    callable to time (stateless cases return the same one; stateful ones a fresh
    table). ``items`` is the work of one call in ``unit``s, for throughput.
    """

    group: str
    name: str
    prepare: Callable[[], Callable[[], object]]
    items: float
    unit: str
    ours: bool = False
    rounds_max: int = 25
    key: str = ""  # a short stable id of the implementation ("ours", "isal", ...)


@dataclass
class Result:
    group: str
    name: str
    ours: bool
    unit: str
    items: float
    times_s: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s) if self.times_s else float("nan")

    @property
    def per_s(self) -> float:
        return self.items / self.median_s if self.times_s else float("nan")


def measure_group(cases: list[Case], budget_s: float) -> list[Result]:
    """Time one group's cases round-robin (one call of each per round), so that a
    burst of noise on the host hits every implementation alike. Each case gets one
    untimed warm-up call if a call fits its budget, then calls until it has spent
    budget_s (at least one, at most its rounds_max)."""
    results = [Result(c.group, c.name, c.ours, c.unit, c.items) for c in cases]
    active = []
    for case, result in zip(cases, results):
        try:
            first = _timed(case)
            if first >= budget_s:
                result.times_s.append(first)  # too slow to spend a call on warming up
            active.append((case, result))
        except Exception as error:  # a broken peer is reported, not fatal
            result.error = f"{type(error).__name__}: {error}"
    while active:
        still = []
        for case, result in active:
            if sum(result.times_s) >= budget_s or len(result.times_s) >= case.rounds_max:
                continue
            try:
                result.times_s.append(_timed(case))
                still.append((case, result))
            except Exception as error:
                result.error = f"{type(error).__name__}: {error}"
        active = still
    return results


def _timed(case: Case) -> float:
    call = case.prepare()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# ------------------------------------------------------------------- erasure --

@cache
def isal_library():
    """Intel ISA-L through ctypes, or None when it is not installed."""
    path = ctypes.util.find_library("isal") or "libisal.so.2"
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    u8p = ctypes.POINTER(ctypes.c_ubyte)
    lib.ec_init_tables.argtypes = [ctypes.c_int, ctypes.c_int, u8p, u8p]
    lib.ec_init_tables.restype = None
    lib.ec_encode_data.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, u8p,
                                   ctypes.POINTER(u8p), ctypes.POINTER(u8p)]
    lib.ec_encode_data.restype = None
    return lib


def _row_pointers(rows: np.ndarray):
    u8p = ctypes.POINTER(ctypes.c_ubyte)
    return (u8p * rows.shape[0])(*[row.ctypes.data_as(u8p) for row in rows])


def isal_apply(matrix: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> Callable[[], None]:
    """A call of ISA-L's ec_encode_data computing targets = matrix @ sources; the
    tables are prepared here, untimed (as our codes cache theirs)."""
    lib = isal_library()
    rows, cols = matrix.shape
    matrix = np.ascontiguousarray(matrix)
    tables = np.zeros(32 * rows * cols, dtype=np.uint8)
    u8p = ctypes.POINTER(ctypes.c_ubyte)
    lib.ec_init_tables(cols, rows, matrix.ctypes.data_as(u8p), tables.ctypes.data_as(u8p))
    src, dst, table_pointer = _row_pointers(sources), _row_pointers(targets), tables.ctypes.data_as(u8p)
    length = sources.shape[1]

    def call():
        lib.ec_encode_data(length, cols, rows, table_pointer, src, dst)
        _keep = (tables, sources, targets)  # noqa: F841  (alive while callable is)
    return call


def reedsolo_modules() -> list[tuple[str, object]]:
    import reedsolo

    modules = [("reedsolo", reedsolo)]
    try:
        import creedsolo
        modules.append(("creedsolo", creedsolo))
    except ImportError:
        pass
    return modules


@dataclass
class ErasureJob:
    """One erasure group's input: k data rows, and the rebuild's worst case (the first
    m data fragments lost, so that every parity fragment is needed)."""

    k: int
    m: int
    payload_bytes: int
    data: np.ndarray
    parity: np.ndarray
    cases: list[Case] = field(default_factory=list)

    @property
    def survivors(self) -> list[int]:
        return list(range(self.m, self.k + self.m))

    @property
    def fragments(self) -> np.ndarray:
        return np.concatenate([self.data, self.parity])[self.survivors]

    def add(self, op: str, key: str, name: str, call, ours: bool = False, rounds_max: int = 25) -> None:
        size = self.payload_bytes
        label = f"{size // 1024} KiB" if size < 1 << 20 else f"{size >> 20} MiB"
        self.cases.append(Case(f"erasure {op} {self.k}+{self.m} {label}", name, lambda: call, size, "B",
                               ours, rounds_max, key))


def erasure_cases(k: int, m: int, payload_bytes: int, slow_peers: bool) -> list[Case]:
    from dsqlbench import kernels
    from dsqlbench.kernels import erasure as reference

    rng = np.random.default_rng([SEED, k, m, payload_bytes])
    data = kernels.split_payload(rng.bytes(payload_bytes), k)
    ours = kernels.ErasureCode(k, m)
    job = ErasureJob(k, m, payload_bytes, data, ours.encode(data))
    survivors, fragments = job.survivors, job.fragments
    assert (ours.decode(survivors, fragments) == data).all()
    parity_out, data_out = np.empty_like(job.parity), np.empty_like(data)
    path = _erasure_path()
    job.add("encode", "ours", f"{OURS} ({path})", lambda: ours.encode(data, out=parity_out), True)
    job.add("rebuild", "ours", f"{OURS} ({path})", lambda: ours.decode(survivors, fragments, out=data_out), True)
    ref_code = reference.ErasureCode(k, m)
    job.add("encode", "reference", "reference (numpy)", lambda: ref_code.encode(data), rounds_max=5)
    job.add("rebuild", "reference", "reference (numpy)", lambda: ref_code.decode(survivors, fragments), rounds_max=5)
    if isal_library() is not None:
        _isal_cases(job)
    _zfec_cases(job)
    if slow_peers:
        _reedsolo_cases(job)
    return job.cases


def _isal_cases(job: ErasureJob) -> None:
    from dsqlbench.kernels import erasure as reference

    k, m, data, fragments = job.k, job.m, job.data, job.fragments
    length = data.shape[1]
    parity_matrix = reference.parity_matrix(k, m)
    isal_parity = np.zeros_like(job.parity)
    encode_call = isal_apply(parity_matrix, data, isal_parity)
    encode_call()
    assert (isal_parity == job.parity).all(), "ISA-L disagrees with reedsolo's code"
    generator = np.concatenate([np.eye(k, dtype=np.uint8), parity_matrix])
    rebuild_matrix = reference.gf_invert_matrix(generator[job.survivors])[:m]  # the lost rows 0..m-1
    rebuilt = np.zeros((m, length), dtype=np.uint8)
    rebuild_call = isal_apply(rebuild_matrix, fragments, rebuilt)
    rebuild_call()
    assert (rebuilt == data[:m]).all()
    job.add("encode", "isal", "ISA-L (ctypes)", encode_call)
    job.add("rebuild", "isal", "ISA-L (ctypes)", rebuild_call)
    # Our rebuild returns all k data rows; ISA-L's call writes only the lost ones.
    # The same job for ISA-L: rebuild the lost rows straight into the whole-data
    # array, and copy in the data rows that arrived.
    whole = np.empty_like(data)
    rebuild_into_whole = isal_apply(rebuild_matrix, fragments, whole[:m])
    # (destination, source) rows: survivors m..k-1 are the first k-m fragments.
    moves = [(whole[d].ctypes.data, fragments[d - m].ctypes.data) for d in range(m, k)]

    def rebuild_whole(keep_alive=(whole, fragments)):  # moves point into these
        rebuild_into_whole()
        for destination, source in moves:
            ctypes.memmove(destination, source, length)
    rebuild_whole()
    assert (whole == data).all()
    job.add("rebuild", "isal-copy", "ISA-L + copy (whole data)", rebuild_whole)


def _zfec_cases(job: ErasureJob) -> None:
    import zfec

    k, m, survivors = job.k, job.m, job.survivors
    rows = [bytes(row) for row in job.data]
    encoder, decoder = zfec.Encoder(k, k + m), zfec.Decoder(k, k + m)
    blocks = rows[m:] + encoder.encode(rows, list(range(k, k + m)))  # zfec's own parity
    assert [bytes(b) for b in decoder.decode(blocks, survivors)] == rows
    job.add("encode", "zfec", "zfec", lambda: encoder.encode(rows, list(range(k, k + m))))
    job.add("rebuild", "zfec", "zfec", lambda: decoder.decode(blocks, survivors))


def _reedsolo_cases(job: ErasureJob) -> None:
    """reedsolo encodes one codeword per byte column: message j is data[:, j]."""
    k, m = job.k, job.m
    erased = list(range(m))
    for name, module in reedsolo_modules():
        codec = module.RSCodec(nsym=m, nsize=k + m)
        message = bytearray(job.data.T.tobytes())
        codewords = bytes(codec.encode(message))
        chunks = [bytearray(codewords[i:i + k + m]) for i in range(0, len(codewords), k + m)]
        label = f"{name} (pure Python)" if name == "reedsolo" else name
        job.add("encode", name, label, lambda codec=codec, message=message: codec.encode(message), rounds_max=3)
        job.add("rebuild", name, label,
                lambda codec=codec, chunks=chunks: [codec.decode(c, erase_pos=erased) for c in chunks],
                rounds_max=3)


def _erasure_path() -> str:
    from dsqlbench import kernels

    if kernels.implementations()["erasure"] == "reference":
        return "reference"
    from dsqlbench._native import erasure

    return f"cython {erasure.active_path()}"


# --------------------------------------------------------------------- merge --

def merge_input(k: int, n: int, bursty: bool, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """n sorted timestamps (1 µs apart on average, with duplicates) dealt to k
    journals, randomly or in geometric bursts of mean 256; segments concatenated."""
    rng = np.random.default_rng([seed, k, n, int(bursty)])
    ts = np.cumsum(rng.integers(0, 2000, n))
    if bursty:
        runs = rng.geometric(1 / 256, n // 64 + 1)
        journal = np.repeat(rng.integers(0, k, len(runs)), runs)[:n]
        journal = np.concatenate([journal, rng.integers(0, k, n - len(journal))])
    else:
        journal = rng.integers(0, k, n)
    order = np.argsort(journal, kind="stable")
    offsets = np.zeros(k + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(journal, minlength=k))
    return np.ascontiguousarray(ts[order], dtype=np.int64), offsets


def merge_cases(k: int, n: int, bursty: bool, slow_peers: bool) -> list[Case]:
    from dsqlbench import kernels
    from dsqlbench.kernels import merge as reference

    ts_flat, offsets = merge_input(k, n, bursty)
    out_pos = np.empty(n, dtype=np.int64)
    group = f"merge k={k} {'bursty' if bursty else 'random'} {n / 1e6:g}M"
    expected = np.argsort(ts_flat, kind="stable")
    assert kernels.merge_until(ts_flat, offsets, INT64_MAX, out_pos) == n and (out_pos == expected).all()
    label = kernels.implementations()["merge"]
    cases = [
        Case(group, f"{OURS} ({label})", lambda: lambda: kernels.merge_until(ts_flat, offsets, INT64_MAX, out_pos),
             n, "rec", ours=True, key="ours"),
        Case(group, "reference (numpy)", lambda: lambda: reference.merge_until(ts_flat, offsets, INT64_MAX, out_pos),
             n, "rec", rounds_max=10, key="reference"),
        Case(group, "numpy.argsort", lambda: lambda: np.argsort(ts_flat), n, "rec", rounds_max=10, key="argsort"),
        Case(group, "numpy.argsort stable", lambda: lambda: np.argsort(ts_flat, kind="stable"), n, "rec",
             rounds_max=10, key="argsort-stable"),
    ]
    if slow_peers:
        # Python peers work on Python objects, converted untimed: (ts, position)
        # tuples order exactly like (ts, journal, position).
        ts_list = ts_flat.tolist()
        segments = [list(zip(ts_list[offsets[j]:offsets[j + 1]], range(offsets[j], offsets[j + 1])))
                    for j in range(k)]
        cases += [
            Case(group, "heapq.merge", lambda: lambda: [p for _, p in heapq.merge(*segments)], n, "rec",
                 rounds_max=3, key="heapq"),
            Case(group, "sorted", lambda: lambda: sorted(range(n), key=ts_list.__getitem__), n, "rec",
                 rounds_max=3, key="sorted"),
        ]
    return cases


# ----------------------------------------------------------------- conflicts --

BATCH_TXNS = 10_000
WINDOW_NS = 300 * 10**9


def zipf_ranks(rng: np.random.Generator, n_keys: int, count: int, theta: float = 0.99) -> np.ndarray:
    """count draws of ranks 0..n_keys-1 with P(rank r) proportional to 1/(r+1)^theta."""
    cdf = np.cumsum(1.0 / np.arange(1, n_keys + 1) ** theta)
    return np.minimum(np.searchsorted(cdf, rng.random(count) * cdf[-1]), n_keys - 1)


def conflict_input(n_txns: int, n_keys: int, zipfian: bool, seed: int = SEED):
    """Write sets of 1-8 distinct keys; t_start lags arrival (1 µs apart) by 0-5 ms."""
    rng = np.random.default_rng([seed, n_txns, n_keys, int(zipfian)])
    lengths = rng.integers(1, 9, n_txns)
    txn = np.repeat(np.arange(n_txns), lengths)
    if zipfian:
        keys = rng.permutation(n_keys)[zipf_ranks(rng, n_keys, len(txn))]  # hot keys anywhere
    else:
        keys = rng.integers(0, n_keys, len(txn))
    order = np.lexsort((keys, txn))  # drop repeats within a transaction
    txn, keys = txn[order], keys[order].astype(np.int64)
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = (txn[1:] != txn[:-1]) | (keys[1:] != keys[:-1])
    txn, keys = txn[keep], keys[keep]
    offsets = np.zeros(n_txns + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(txn, minlength=n_txns))
    arrival_ns = 10**9 + np.arange(n_txns, dtype=np.int64) * 1000
    t_start_ns = arrival_ns - rng.integers(0, 5_000_000, n_txns)
    return keys, offsets, t_start_ns, arrival_ns


def run_batches(table, keys, offsets, t_start_ns, arrival_ns) -> int:
    """Feed the workload in batches; t_propose is the last arrival of the batch."""
    floor_ns, committed = 0, 0
    for b in range(0, len(t_start_ns), BATCH_TXNS):
        e = min(b + BATCH_TXNS, len(t_start_ns))
        lo, hi = offsets[b], offsets[e]
        decisions, _, floor_ns = table.check_commit(
            keys[lo:hi], offsets[b:e + 1] - lo, t_start_ns[b:e], int(arrival_ns[e - 1]), floor_ns)
        committed += int(np.count_nonzero(decisions == 0))
    return committed


@cache
def typed_dict_kernel():
    """The conflict loop over a Numba typed.Dict: the peer for our open addressing."""
    from numba import njit, types
    from numba.typed import Dict

    @njit
    def check_commit(table, key_flat, key_offsets, t_start_ns, t_propose_ns, floor_ns, window_ns,
                     decisions, t_commit_ns):
        for i in range(len(t_start_ns)):
            lo, hi = key_offsets[i], key_offsets[i + 1]
            t_start = t_start_ns[i]
            t_commit_ns[i] = -1
            if t_start < t_propose_ns - window_ns:
                decisions[i] = 2
                continue
            latest = 0
            for p in range(lo, hi):
                latest = max(latest, table.get(key_flat[p], 0))
            if latest > t_start:
                decisions[i] = 1
                continue
            t_commit = max(t_propose_ns, floor_ns + 1, t_start + 1, latest + 1)
            floor_ns = t_commit
            decisions[i] = 0
            t_commit_ns[i] = t_commit
            for p in range(lo, hi):
                table[key_flat[p]] = t_commit
        return floor_ns

    class TypedDictTable:
        def __init__(self, window_ns):
            self.window_ns = window_ns
            self.table = Dict.empty(key_type=types.int64, value_type=types.int64)

        def check_commit(self, key_flat, key_offsets, t_start_ns, t_propose_ns, floor_ns):
            decisions = np.empty(len(t_start_ns), dtype=np.int8)
            t_commit_ns = np.empty(len(t_start_ns), dtype=np.int64)
            floor_ns = check_commit(self.table, key_flat, key_offsets, t_start_ns, np.int64(t_propose_ns),
                                    np.int64(floor_ns), np.int64(self.window_ns), decisions, t_commit_ns)
            return decisions, t_commit_ns, int(floor_ns)

    return TypedDictTable


def conflict_cases(n_txns: int, n_keys: int, zipfian: bool) -> list[Case]:
    from dsqlbench import kernels
    from dsqlbench.kernels import conflicts as reference

    workload = conflict_input(n_txns, n_keys, zipfian)
    group = f"conflicts {n_txns / 1e6:g}M txn {'zipf' if zipfian else 'uniform'} 10^{round(np.log10(n_keys))} keys"
    typed_dict_table = typed_dict_kernel()
    committed = run_batches(kernels.ConflictTable(WINDOW_NS), *workload)
    assert run_batches(typed_dict_table(WINDOW_NS), *workload) == committed

    def case(key, name, make_table, ours=False, rounds_max=10):
        def prepare():
            table = make_table(WINDOW_NS)  # a fresh, empty table each round, untimed
            return lambda: run_batches(table, *workload)
        return Case(group, name, prepare, n_txns, "txn", ours, rounds_max, key)

    return [
        case("ours", f"{OURS} ({kernels.implementations()['conflicts']})", kernels.ConflictTable, ours=True),
        case("reference", "reference (Python dict)", reference.ConflictTable, rounds_max=3),
        case("typed-dict", "numba typed.Dict", typed_dict_table),
    ]


# ---------------------------------------------------------- end to end, start-up --

E2E_CODE = """
import json, sys
from dsqlbench import config
from dsqlbench.sim.run import simulate
cfg = config.load_config("ycsb-a", duration_s=float(sys.argv[1]), overrides=["run.warmup_s=0.5"])
output = simulate(cfg)
print(json.dumps({"wall_s": output.host["wall_s"], "attempts": output.host["sim_attempts"],
                  "kernels": output.kernels}))
"""


def _subprocess_json(code: str, args: list[str], env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def end_to_end_results(duration_s: float, rounds: int) -> list[Result]:
    """YCSB-A, compiled against reference kernels, each in its own process."""
    results = []
    for name, setting, ours in ((f"{OURS} (compiled kernels)", "compiled", True),
                                ("reference kernels", "reference", False)):
        result = Result("end to end YCSB-A (sim txn per wall s)", name, ours, "txn", 0.0)
        try:
            for _ in range(rounds):
                run = _subprocess_json(E2E_CODE, [str(duration_s)], {"DSQLBENCH_KERNELS": setting})
                result.times_s.append(run["wall_s"])
                result.items = run["attempts"]  # the same every round: the sim is deterministic
        except Exception as error:
            result.error = f"{type(error).__name__}: {error}"
        results.append(result)
    return results


STARTUP_CODE = """
import json, time
start = time.perf_counter()
import dsqlbench.kernels
from dsqlbench.kernels import conflicts_numba
conflicts_numba.warm_up()
print(json.dumps({"startup_s": time.perf_counter() - start, "cache_dir": conflicts_numba.CACHE_DIR}))
"""


def startup_results(rounds: int) -> list[Result]:
    """Import of the kernels plus the first call of every Numba kernel, in a fresh
    process: cold (an empty cache folder, so everything compiles) and warm."""
    results = []
    with tempfile.TemporaryDirectory() as empty_cache:
        cold = Result("numba start-up (import + first calls)", "cold (empty cache)", True, "", 1.0)
        warm = Result("numba start-up (import + first calls)", "warm (cached)", True, "", 1.0)
        try:
            for _ in range(rounds):
                with tempfile.TemporaryDirectory(dir=empty_cache) as fresh:
                    cold.times_s.append(_subprocess_json(STARTUP_CODE, [], {"NUMBA_CACHE_DIR": fresh})["startup_s"])
            _subprocess_json(STARTUP_CODE, [], {})  # fill the normal cache if empty
            for _ in range(rounds):
                warm.times_s.append(_subprocess_json(STARTUP_CODE, [], {})["startup_s"])
        except Exception as error:
            cold.error = warm.error = f"{type(error).__name__}: {error}"
        results += [cold, warm]
    return results


# -------------------------------------------------------------------- the plan --

@dataclass(frozen=True)
class Sizes:
    merge_records: int
    merge_ks: tuple[int, ...]
    erasure_bytes: tuple[int, ...]
    conflict_txns: int
    conflict_keys: tuple[int, ...]
    e2e_duration_s: float
    budget_s: float
    rounds: int


FULL = Sizes(2_000_000, (4, 16, 64), (64 << 10, 1 << 20), 1_000_000, (10**5, 10**7), 3.0, 2.0, 3)
QUICK = Sizes(200_000, (4, 64), (64 << 10,), 100_000, (10**5, 10**7), 1.0, 0.3, 1)
GROUPS = ("erasure", "merge", "conflicts", "e2e", "startup")


def case_batches(sizes: Sizes, only: set[str], slow_peers: bool):
    """The timed cases of the selected groups, a few groups at a time, so that only
    one batch's inputs live in memory. Setup (inputs, correctness checks) happens
    here, untimed."""
    if "erasure" in only:
        for k, m in ((4, 2), (6, 3)):
            for size in sizes.erasure_bytes:
                yield erasure_cases(k, m, size, slow_peers)
    if "merge" in only:
        for k in sizes.merge_ks:
            for bursty in (False, True):
                yield merge_cases(k, sizes.merge_records, bursty, slow_peers)
    if "conflicts" in only:
        for n_keys in sizes.conflict_keys:
            for zipfian in (False, True):
                yield conflict_cases(sizes.conflict_txns, n_keys, zipfian)


def run_cases(sizes: Sizes, only: set[str], slow_peers: bool, budget_s: float, progress=None) -> list[Result]:
    """Measure every case, group by group (see measure_group)."""
    results: list[Result] = []
    for batch in case_batches(sizes, only, slow_peers):
        groups: dict[str, list[Case]] = {}
        for case in batch:
            groups.setdefault(case.group, []).append(case)
        for group, cases in groups.items():
            if progress is not None:
                progress(group)
            results += measure_group(cases, budget_s)
    return results


# ------------------------------------------------------------------ reporting --

def _format_time(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _format_rate(result: Result) -> str:
    if not result.times_s or not result.unit:
        return "-"
    rate = result.per_s
    if result.unit == "B":
        return f"{rate / 1e9:.3g} GB/s" if rate >= 1e8 else f"{rate / 1e6:.3g} MB/s"
    if rate >= 1e6:
        return f"{rate / 1e6:.3g} M{result.unit}/s"
    return f"{rate / 1e3:.3g} k{result.unit}/s" if rate >= 1e3 else f"{rate:.3g} {result.unit}/s"


def ratios(results: list[Result]) -> dict[tuple[str, str], float]:
    """(group, peer) -> how many times faster ours is (peer median / our median)."""
    ours = {r.group: r for r in results if r.ours and r.times_s}
    out = {}
    for r in results:
        mine = ours.get(r.group)
        if mine is not None and not r.ours and r.times_s:
            # Throughput ratio: equal to the time ratio when both did the same work.
            out[(r.group, r.name)] = mine.per_s / r.per_s
    return out


def render_table(results: list[Result]):
    from rich.table import Table

    table = Table(title="dsqlbench bench: medians, throughput, and how many times faster dsqlbench is",
                  show_lines=False)
    for column, justify in (("group", "left"), ("implementation", "left"), ("median", "right"),
                            ("throughput", "right"), ("rounds", "right"), ("dsqlbench is", "right")):
        table.add_column(column, justify=justify)
    ratio = ratios(results)
    previous_group = None
    for r in results:
        if previous_group is not None and r.group != previous_group:
            table.add_section()
        shown_group = r.group if r.group != previous_group else ""
        previous_group = r.group
        if r.error:
            table.add_row(shown_group, r.name, "[red]failed[/red]", r.error[:60], "", "")
            continue
        factor = ratio.get((r.group, r.name))
        table.add_row(shown_group, f"[bold]{r.name}[/bold]" if r.ours else r.name, _format_time(r.median_s),
                      _format_rate(r), str(len(r.times_s)), "" if factor is None else f"{factor:.2f}x")
    return table


def target_checks(results: list[Result]) -> list[tuple[str, str, float, float]]:
    """Issue 3's targets that this run can check: (target, group, measured, needed)."""
    ratio = ratios(results)
    checks = []

    def need(target, group, peer, needed):
        if (group, peer) in ratio:
            checks.append((target, group, ratio[(group, peer)], needed))

    groups = sorted({r.group for r in results})
    for group in groups:
        if group.startswith("erasure"):
            at_1mib = group.endswith("1 MiB")
            needed = 1.0 if at_1mib else 0.5
            need(f"erasure vs ISA-L (>= {needed:g}x)", group, "ISA-L (ctypes)", needed)
            need(f"erasure vs ISA-L + copy (>= {needed:g}x)", group, "ISA-L + copy (whole data)", needed)
            need("erasure vs zfec (>= 5x)", group, "zfec", 5.0)
        elif group.startswith("merge"):
            if "bursty" in group:
                need("merge bursty vs argsort (>= 5x)", group, "numpy.argsort", 5.0)
                need("merge bursty vs stable argsort (>= 5x)", group, "numpy.argsort stable", 5.0)
            elif group.startswith("merge k=4 "):
                need("merge random k=4 vs argsort (>= 2.5x)", group, "numpy.argsort", 2.5)
                need("merge random k=4 vs stable argsort (>= 2.5x)", group, "numpy.argsort stable", 2.5)
            elif group.startswith("merge k=64 "):
                need("merge random k=64 vs argsort (>= 1x)", group, "numpy.argsort", 1.0)
                need("merge random k=64 vs stable argsort (>= 1x)", group, "numpy.argsort stable", 1.0)
        elif group.startswith("conflicts"):
            need("conflicts vs Python dict (>= 30x)", group, "reference (Python dict)", 30.0)
            need("conflicts vs typed.Dict (>= 3x)", group, "numba typed.Dict", 3.0)
    for r in results:
        if r.name == "warm (cached)" and r.times_s:
            checks.append(("numba warm start-up (< 1 s)", r.group, r.median_s, 1.0))
    return checks


def render_targets(checks):
    from rich.table import Table

    table = Table(title="issue 3 targets (one run, one core; noisy host figures)")
    for column in ("target", "group", "measured", "needed", "met"):
        table.add_column(column)
    for target, group, measured, needed in checks:
        is_time = "start-up" in target
        met = measured < needed if is_time else measured >= needed
        shown = f"{measured:.2f} s" if is_time else f"{measured:.2f}x"
        table.add_row(target, group, shown, f"{'<' if is_time else '>='} {needed:g}",
                      "[green]yes[/green]" if met else "[red]no[/red]")
    return table


def host_description() -> str:
    from dsqlbench import kernels

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    isal = "ISA-L found" if isal_library() is not None else "ISA-L not installed"
    return f"{cpu}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}; kernels {kernels.implementations()}; {isal}"


# ------------------------------------------------------------------ the command --

@click.command("bench")
@click.option("--quick", is_flag=True, help="Small sizes and short budgets (about a minute).")
@click.option("--only", "only", multiple=True, type=click.Choice(GROUPS),
              help="Run only these groups (repeatable). Default: all.")
@click.option("--no-slow-peers", is_flag=True,
              help="Skip the pure-Python peers (reedsolo, heapq.merge, sorted), which take seconds a call.")
@click.option("--budget", type=float, help="Seconds of timing per case (default 2, quick 0.3).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write every measurement to this JSON file.")
@click.option("--e2e", is_flag=True,
              help="Instead: the whole lab end to end (YCSB-A, TPC-B SQL, bulk load) as ratios to a "
                   "bare heapq event loop, against issue 11's targets.")
def bench_command(quick, only, no_slow_peers, budget, json_path, e2e):
    """Measure the compiled kernels against well-known peers in one run and print a
    table of medians, throughput and ratios, then issue 3's targets."""
    from dsqlbench.results.folder import atomic_output

    # The JSON file's temporary sibling is made first: an unwritable --json fails in
    # one line before any measuring, and the file appears whole at the end or not at all.
    with (atomic_output(Path(json_path)) if json_path else contextlib.nullcontext()) as json_out:
        report = _bench(quick, only, no_slow_peers, budget, e2e)
        if json_out is not None:
            json_out.write(json.dumps(report, indent=2).encode())


def _bench(quick, only, no_slow_peers, budget, e2e) -> dict:
    """Run the benchmarks, print their tables; the measurements for ``--json``."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 150)
    if e2e:
        from dsqlbench.bench_e2e import run_e2e

        console.print(f"[dim]{host_description()}[/dim]")
        rows = run_e2e(console, quick)
        return {"host": host_description(), "quick": quick,
                "e2e": [{"key": r.key, "job": r.job, "per_wall_s": r.rate, "ratio": r.ratio,
                         "must_reach": r.must_reach, "met": r.met} for r in rows]}
    sizes = QUICK if quick else FULL
    selected = set(only or GROUPS)
    budget_s = budget if budget is not None else sizes.budget_s
    console.print(f"[dim]{host_description()}[/dim]")
    results: list[Result] = []
    with console.status("preparing inputs and checking outputs ...") as status:
        results += run_cases(sizes, selected, not no_slow_peers, budget_s, status.update)
        if "e2e" in selected:
            status.update("end to end: YCSB-A, compiled and reference kernels")
            results += end_to_end_results(sizes.e2e_duration_s, sizes.rounds)
        if "startup" in selected:
            status.update("numba start-up, cold and warm")
            results += startup_results(sizes.rounds)
    console.print(render_table(results))
    console.print(render_targets(target_checks(results)))
    return {"host": host_description(), "quick": quick,
            "results": [{"group": r.group, "name": r.name, "ours": r.ours, "unit": r.unit,
                         "items": r.items, "times_s": r.times_s, "median_s": r.median_s,
                         "error": r.error} for r in results],
            "ratios": [{"group": g, "peer": p, "ours_x": x} for (g, p), x in ratios(results).items()]}
