"""``dsqlbench bench --e2e``: the whole lab's speed as ratios to a bare event loop (issue 11).

Role: host (wall-clock) figures only; nothing here feeds a simulation. In one process
and one run it measures

- a bare Python ``heapq`` event loop (push, pop, call a function): events per wall s,
  the median of several rounds; the reference every other figure is divided by;
- YCSB-A (default topology, 64 clients): simulated attempts per wall s and SimPy events
  per attempt (SimPy's own event counter ``env._eid``, as ``sim/run.py`` reports it);
- TPC-B over the SQL path (``clients.count=64``, ``pgbench.scale=10``): simulated
  attempts per wall s;
- a bulk load (pgbench scale 10, the load phase alone): rows per wall s;

and prints issue 11's table with "now", "ratio (per bare event)", "must reach" and
whether each target is met. The ratio is the figure; the absolutes are noisy.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
import time
from dataclasses import dataclass

TARGETS = {"ycsb": 0.024, "tpcb": 0.0032, "load": 0.33}


@dataclass(frozen=True)
class E2ESizes:
    bare_events: int
    bare_rounds: int
    ycsb_duration_s: float
    ycsb_clients: int
    tpcb_duration_s: float
    tpcb_clients: int
    tpcb_scale: int
    load_scale: int
    warmup_s: float


FULL = E2ESizes(300_000, 5, 2.0, 64, 1.0, 64, 10, 10, 0.5)
QUICK = E2ESizes(100_000, 3, 1.0, 64, 0.5, 64, 10, 10, 0.2)
TINY = E2ESizes(20_000, 2, 0.1, 4, 0.1, 4, 1, 1, 0.02)  # for tests: exercises the code only


@dataclass
class Row:
    key: str
    job: str
    now: str
    rate: float  # per wall s
    ratio: float  # rate / bare events per wall s
    must_reach: float | None

    @property
    def met(self) -> bool | None:
        return None if self.must_reach is None else self.ratio >= self.must_reach


def bare_loop_events_per_s(n_events: int, rounds: int) -> float:
    """Median events per wall s of a heapq loop: pop (time, id, fn), call fn, which
    pushes its successor at a later time; 64 events in flight, like 64 clients."""
    delays = [1 + (i * 7919) % 1000 for i in range(1024)]
    rates = []
    for _ in range(rounds):
        heap: list = []
        push, pop = heapq.heappush, heapq.heappop
        ids = itertools.count()
        cycle = itertools.cycle(delays)

        def fn(now, heap=heap, push=push, ids=ids, cycle=cycle):
            push(heap, (now + next(cycle), next(ids), fn))

        for i in range(64):
            push(heap, (i, next(ids), fn))
        start = time.perf_counter()
        for _ in range(n_events):
            now, _eid, call = pop(heap)
            call(now)
        rates.append(n_events / (time.perf_counter() - start))
    return statistics.median(rates)


def _simulate(workload: str, duration_s: float, overrides: list[str]) -> dict:
    from dsqlbench import config
    from dsqlbench.sim.run import simulate

    cfg = config.load_config(workload, duration_s=duration_s, overrides=overrides)
    return simulate(cfg).host


def bulk_load_rows_per_s(scale: int) -> tuple[int, float]:
    """The pgbench load phase alone, as ``simulate`` does it: build the workload (its
    rows), the cluster, and load every replica and the oracle. (rows, wall s)."""
    import simpy

    from dsqlbench import config
    from dsqlbench.checkers.oracle import Oracle
    from dsqlbench.metrics import Recorder
    from dsqlbench.sim.cluster import Cluster, S
    from dsqlbench.sim.run import make_workload

    cfg = config.load_config("tpcb", duration_s=1.0, overrides=[f"pgbench.scale={scale}"])
    start = time.perf_counter()
    env = simpy.Environment()
    recorder = Recorder(int(cfg["run"]["warmup_s"] * S), int(cfg["run"]["timeseries_interval_s"] * S))
    oracle = Oracle()
    workload = make_workload(cfg)
    items = workload.load_items()
    cluster = Cluster(env, cfg, recorder, oracle, [k for k, _ in items])
    cluster.load_items(items)
    return len(items), time.perf_counter() - start


def measure(sizes: E2ESizes, progress=None) -> tuple[float, list[Row]]:
    say = progress or (lambda _text: None)
    say("bare heapq event loop")
    bare = bare_loop_events_per_s(sizes.bare_events, sizes.bare_rounds)
    rows = [Row("bare", "bare Python heapq loop (push, pop, call)", f"{bare / 1e6:.2f} M events/s",
                bare, 1.0, None)]
    say("YCSB-A")
    warm = f"run.warmup_s={sizes.warmup_s}"
    host = _simulate("ycsb-a", sizes.ycsb_duration_s, [warm, f"clients.count={sizes.ycsb_clients}"])
    rate = host["sim_txn_per_wall_s"]
    per_txn = host["events"] / max(1, host["sim_attempts"])
    rows.append(Row("ycsb", f"run ycsb-a (default topology, {sizes.ycsb_clients} clients, "
                            f"{sizes.ycsb_duration_s:g} sim s)",
                    f"{rate:,.0f} sim txn/wall s; {per_txn:.1f} SimPy events/txn at "
                    f"{host['events_per_wall_s']:,.0f} events/s", rate, rate / bare, TARGETS["ycsb"]))
    say("TPC-B (SQL)")
    host = _simulate("tpcb", sizes.tpcb_duration_s,
                     [warm, f"clients.count={sizes.tpcb_clients}", f"pgbench.scale={sizes.tpcb_scale}"])
    rate = host["sim_txn_per_wall_s"]
    rows.append(Row("tpcb", f"run tpcb (SQL, {sizes.tpcb_clients} clients, scale {sizes.tpcb_scale}, "
                            f"{sizes.tpcb_duration_s:g} sim s; wall incl. load)",
                    f"{rate:,.0f} sim attempts/wall s", rate, rate / bare, TARGETS["tpcb"]))
    say("bulk load")
    n_rows, wall_s = bulk_load_rows_per_s(sizes.load_scale)
    rate = n_rows / wall_s
    rows.append(Row("load", f"load pgbench scale {sizes.load_scale} ({n_rows:,} rows)",
                    f"{wall_s:.1f} s wall; {rate:,.0f} rows/wall s", rate, rate / bare, TARGETS["load"]))
    return bare, rows


def render(rows: list[Row]):
    from rich.table import Table

    table = Table(title="issue 11: the lab end to end, as ratios to a bare event loop (one run; noisy host)")
    for column in ("job", "now", "ratio (per bare event)", "must reach", "met"):
        table.add_column(column)
    for row in rows:
        met = "" if row.met is None else ("[green]yes[/green]" if row.met else "[red]no[/red]")
        table.add_row(row.job, row.now, f"{row.ratio:.2g}",
                      "" if row.must_reach is None else f">= {row.must_reach:g}", met)
    return table


def run_e2e(console, quick: bool) -> list[Row]:
    sizes = QUICK if quick else FULL
    with console.status("end to end ...") as status:
        _bare, rows = measure(sizes, status.update)
    console.print(render(rows))
    return rows
