"""One simulated run: build the cluster, load it, drive it, judge it, summarise it.

``simulate(cfg)`` is a pure function of the resolved config (seed included) for every
figure in its ``simulated`` section and its tables: nothing from the wall clock, process
hash salt or set order reaches them. Wall-clock figures about the lab itself go to the
separate ``host`` section.

The run ends at ``run.duration_s`` of simulated time, or earlier once
``run.transactions`` measured transactions have completed. The consistency oracle
judges the whole history at the end; a violation is a bug in the lab (or a deliberately
broken control in tests), and is reported in ``simulated.checks``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import simpy

from dsqlbench import kernels
from dsqlbench.checkers.oracle import Oracle
from dsqlbench.checkers.verdict import history_table, judge
from dsqlbench.metrics import Recorder
from dsqlbench.sim.cluster import Cluster, S
from dsqlbench.sim.driver import Driver
from dsqlbench.sim.sql_client import serve_offline
from dsqlbench.workload.bank import BankWorkload, audit
from dsqlbench.workload.listappend import ListAppendWorkload
from dsqlbench.workload.ycsb import YcsbWorkload

PROGRESS_STEPS = 100
TRIM_INTERVAL_NS = 10 * S


@dataclass
class RunOutput:
    simulated: dict
    tables: dict[str, pa.Table]
    host: dict
    kernels: dict


def simulate(cfg: dict, progress: Callable[[int, dict], None] | None = None) -> RunOutput:
    wall_start = time.perf_counter()  # host figures only; never enters the simulation
    run = cfg["run"]
    duration_ns = int(run["duration_s"] * S)
    warmup_end_ns = int(run["warmup_s"] * S)
    env = simpy.Environment()
    recorder = Recorder(warmup_end_ns, int(run["timeseries_interval_s"] * S))
    oracle = Oracle()
    workload = make_workload(cfg)
    items = workload.load_items() if hasattr(workload, "load_items") else None
    load_keys = [k for k, _ in items] if items is not None else workload.load_keys()
    cluster = Cluster(env, cfg, recorder, oracle, load_keys)
    stop = env.event()
    driver = Driver(env, cluster, workload, cfg, recorder, oracle, stop)
    if items is not None:
        cluster.load_items(items)
    else:
        cluster.load(load_keys, _load_value(workload, driver))
    cluster.start()
    driver.start()
    _every(env, TRIM_INTERVAL_NS, cluster.trim)
    if progress is not None:
        step_ns = max(1, duration_ns // PROGRESS_STEPS)
        _every(env, step_ns, lambda: progress(env.now, recorder.progress(env.now)))
    deadline = env.timeout(duration_ns)
    deadline.callbacks.append(lambda _e: stop.triggered or stop.succeed())
    env.run(until=stop)
    end_ns = env.now
    events = next(env._eid)  # SimPy's event counter: how many events were scheduled
    checks = oracle.check()
    _record_clocks(cluster, recorder, checks["oracle"])
    simulated = recorder.summarize(duration_ns - warmup_end_ns, end_ns)
    simulated["checks"] = checks
    if isinstance(workload, BankWorkload):
        simulated["checks"]["bank"] = audit(cluster.audit_replicas(), workload.expected_total())
    if hasattr(workload, "final_check"):
        session = workload.engine.session(cluster.limits)
        simulated["checks"][cfg["workload"]["kind"]] = serve_offline(
            cluster, workload.final_check(session))
    wall_s = time.perf_counter() - wall_start
    attempts = simulated["transactions"]["attempted"]
    host = {
        "wall_s": wall_s,
        "sim_txn_per_wall_s": _per(driver.attempts_total, wall_s),
        "events_per_wall_s": _per(events, wall_s),
        "events": events,
        "measured_attempts": attempts,
        "sim_attempts": driver.attempts_total,
    }
    tables = {"transactions": recorder.transactions_table(),
              "timeseries": recorder.timeseries_table(end_ns)}
    if driver.history:
        tables["history"] = history_table(driver.history)
    return RunOutput(simulated, tables, host, kernels.implementations())


def check_history(simulated: dict, history: list[dict] | None, strict: bool) -> dict:
    """Run the black-box checker on a list-append history (if any) and combine it with
    the oracle's verdict already in ``simulated``; returns the combined verdict."""
    elle = None
    if history:
        from dsqlbench.checkers.elle import check_list_append

        model = "strong-snapshot-isolation" if strict else "snapshot-isolation"
        elle = check_list_append(history, realtime=True, model=model)
        simulated["checks"]["elle"] = elle
    verdict = judge(simulated["checks"]["oracle"], elle, strict)
    simulated["checks"]["verdict"] = verdict
    return verdict


def make_workload(cfg: dict):
    """The load generator named by ``workload.kind``."""
    kind = cfg["workload"]["kind"]
    if kind == "bank":
        return BankWorkload(cfg)
    if kind == "list-append":
        return ListAppendWorkload(cfg)
    if kind in ("pgbench", "tpcc"):
        from dsqlbench.workload.sql import PgbenchSqlWorkload, TpccSqlWorkload

        cls = PgbenchSqlWorkload if kind == "pgbench" else TpccSqlWorkload
        return cls(cfg, cfg["workload"].get("source"))
    assert kind == "ycsb", kind
    return YcsbWorkload(cfg)


def _load_value(workload, driver: Driver):
    """What the load phase stores: the workload's initial value, else YCSB's row."""
    initial_value = getattr(workload, "initial_value", None)
    if initial_value is not None:
        return lambda _txn_id, key: initial_value(key)
    return driver.value_for


def _per(count: int, wall_s: float) -> float:
    return count / wall_s if wall_s > 0 else 0.0


def _every(env: simpy.Environment, interval_ns: int, action: Callable[[], None]) -> None:
    def tick(_event):
        action()
        env.timeout(interval_ns).callbacks.append(tick)

    env.timeout(interval_ns).callbacks.append(tick)


def _record_clocks(cluster: Cluster, recorder: Recorder, oracle_verdict: dict) -> None:
    """The clock-skew figures of the run: configuration, what the clocks really did,
    and what it cost (read waits and commit waits are in their own sections)."""
    clock_cfg = cluster.topo["clock"]
    recorder.clock("error_bound_us", clock_cfg["error_bound_us"])
    recorder.clock("t_start_from", clock_cfg["t_start_from"])
    recorder.clock("commit_wait", clock_cfg["commit_wait"])
    recorder.clock("invalid_clock", clock_cfg["invalid_clock"])
    for role in ("qp", "adjudicator"):
        clocks = [c for c in cluster.clocks if c.name.startswith(role + "-")]
        recorder.clock(f"{role}_max_abs_offset_us", max(c.max_abs_offset_ns for c in clocks) / 1e3)
        recorder.clock(f"{role}_bound_violations", sum(c.bound_violations for c in clocks))
        recorder.clock(f"{role}_invalid_readings", sum(c.invalid_readings for c in clocks))
    recorder.clock("stale_reads", oracle_verdict["stale_reads"])
    recorder.clock("realtime_violations", oracle_verdict["realtime_violations"])
