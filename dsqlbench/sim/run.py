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
from dsqlbench.components.storage import BulkLoad
from dsqlbench.metrics import Recorder
from dsqlbench.sim.cluster import Cluster, S
from dsqlbench.sim.driver import Driver
from dsqlbench.sim.sql_client import serve_offline
from dsqlbench.workload.bank import BankWorkload, audit
from dsqlbench.workload.listappend import ListAppendWorkload
from dsqlbench.workload.ycsb import YcsbWorkload, bulk_load as ycsb_bulk_load

PROGRESS_STEPS = 100
TRIM_INTERVAL_NS = 1 * S  # storage GC, journal and adjudicator trimming


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
    if items is None and isinstance(workload, YcsbWorkload):  # a columnar bulk load
        items = ycsb_bulk_load(workload.load_keys(), cfg["load"]["value_bytes"])
    if isinstance(items, BulkLoad):
        load_keys = items
    else:
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
    cluster.finish()
    end_ns = env.now
    events = next(env._eid)  # SimPy's event counter: how many events were scheduled
    checks = oracle.check()
    if cluster.faults:
        checks["faults"] = fault_report(cluster, oracle, driver, recorder)
    _record_clocks(cluster, recorder, checks["oracle"])
    simulated = recorder.summarize(duration_ns - warmup_end_ns, end_ns)
    simulated["nodes"] = cluster.node_load(warmup_end_ns, end_ns)
    simulated["checks"] = checks
    if isinstance(workload, BankWorkload):
        simulated["checks"]["bank"] = audit(cluster.audit_replicas(), workload.expected_total())
    if hasattr(workload, "final_check"):
        simulated["checks"][cfg["workload"]["kind"]] = final_check(cluster, workload)
    wall_s = time.perf_counter() - wall_start  # host figures only
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


FAULT_COUNTERS = (
    "faults.checksum_mismatches", "faults.deliveries_hit", "faults.unrecoverable_deliveries",
    "faults.retransmissions", "faults.wrong_data_returned", "faults.fenced_appends",
    "faults.storage_rebuilds", "faults.reads_rerouted", "faults.qp_reconnects",
    "faults.promises_expired", "faults.deliveries_to_down_replicas_dropped",
    "faults.undurable_commits_lost",
    "crossbar.fragments_decoded_from_parity",
)


def fault_report(cluster: Cluster, oracle: Oracle, driver: Driver, recorder: Recorder) -> dict:
    """What a fault run must show: what was injected and when, that no acknowledged
    commit was lost and no wrong data was returned, how unknown outcomes resolved,
    and that every storage replica equals a replay of the journals from the start."""
    counters = recorder.counters()
    durable = oracle.durables
    unknown = driver.unknown_outcomes
    lost = _acknowledged_commits_lost(cluster, oracle)
    mismatched = _replicas_unlike_model(cluster)
    report = {
        "timeline": cluster.faults.timeline(),
        "injected": cluster.faults.injected_by_kind(),
        "failovers": cluster.failovers,
        "acknowledged_commits": len(oracle.acknowledged()),
        "acknowledged_commits_lost": lost,
        "unknown_outcomes": len(unknown),
        "unknown_resolved_committed": sum(1 for uid in unknown if uid in durable),
        "unknown_resolved_not_committed": sum(1 for uid in unknown if uid not in durable),
        "replicas_unlike_replay_model": mismatched,
        "wrong_data_returned": counters.get("faults.wrong_data_returned", 0),
        "counters": {name: counters.get(name, 0) for name in FAULT_COUNTERS},
    }
    report["ok"] = lost == 0 and report["wrong_data_returned"] == 0 and not mismatched
    return report


def _acknowledged_commits_lost(cluster: Cluster, oracle: Oracle) -> int:
    """Acknowledged commits whose version is missing from storage although storage
    has applied past their commit time (first replica of each shard, caught up)."""
    replicas = cluster.audit_replicas()
    shard_of = cluster.storage_ranges.shard_of
    lost = len(oracle.acked_lost)
    for _uid, t_commit, keys in oracle.acknowledged():
        for key in keys:
            replica = replicas[shard_of(key)]
            if t_commit > replica.applied_watermark_ns:
                continue  # not applied yet at the end of the run: in flight, not lost
            if all(ts != t_commit for ts, _ in replica.versions.get(key, ())):
                lost += 1
                break
    return lost


def _replicas_unlike_model(cluster: Cluster) -> list[str]:
    """Every replica, caught up, against a model replayed from the journals' start."""
    unlike = []
    now = cluster.env.now
    for shard, nodes in enumerate(cluster.replicas):
        for node in nodes:
            if now < node.down_until_ns:
                continue
            node.catch_up(now)
            model = cluster.replay_model(shard, node.core.applied_watermark_ns)
            if model.versions != node.core.versions:
                unlike.append(node.core.name)
    return unlike


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


def final_check(cluster: Cluster, workload):
    """The workload's end-of-run audit (SQL), served against caught-up storage with
    no simulated time."""
    return serve_offline(cluster, workload.final_check(workload.engine.session(cluster.limits)))


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
