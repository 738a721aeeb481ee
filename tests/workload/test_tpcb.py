"""TPC-B as pgbench runs it: pgbench's tables and rows, and its default script running
unmodified, from the shipped file, at two scale factors with concurrent clients."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from dsqlbench.sql.harness import Harness
from dsqlbench.sql.types import SqlType
from dsqlbench.workload import tpcb
from dsqlbench.workload.pgbench import execute_transaction


def test_shipped_script_is_pgbench_builtin_unmodified():
    assert tpcb.BUILTIN_SCRIPT_PATH.read_text() == tpcb.TPCB_LIKE
    script = tpcb.builtin_script()
    assert script.name == "tpcb-builtin.pgbench" and len(script.commands) == 11


def test_schema_and_rows_match_pgbench_init():
    harness = Harness()
    pairs = tpcb.setup(harness.engine, 2)
    catalog = harness.engine.catalog.latest
    accounts = catalog.table("pgbench_accounts")
    assert [(c.name, c.sql_type) for c in accounts.columns] == [
        ("aid", SqlType("integer")), ("bid", SqlType("integer")), ("abalance", SqlType("integer")),
        ("filler", SqlType("char", length=84))]
    assert catalog.table("pgbench_history").hidden_pk
    rows = tpcb.rows(2)
    assert {name: len(r) for name, r in rows.items()} == {
        "pgbench_branches": 2, "pgbench_tellers": 20, "pgbench_accounts": 200_000}
    assert rows["pgbench_accounts"][100_000] == (100_001, 2, 0, " " * 84)
    assert rows["pgbench_tellers"][10] == (11, 2, 0, None)
    assert len(pairs) == 4 + 2 + 20 + 200_000


@pytest.fixture(scope="module", params=[1, 2], ids=["scale1", "scale2"])
def loaded(request):
    harness = Harness()
    harness.load(tpcb.setup(harness.engine, request.param))
    return harness, request.param


def _client(session, workload, rng, client_id: int, transactions: int, stats: collections.Counter):
    """A pgbench client: run the script; on 40001 retry it with the same values."""
    for _ in range(transactions):
        txn = workload.next_transaction(rng, client_id)
        while True:
            outcome = yield from execute_transaction(session, txn)
            if outcome.committed:
                stats["committed"] += 1
                break
            assert outcome.retryable, outcome.error
            stats[outcome.error.code] += 1
            stats["retries"] += 1


def test_default_script_runs_unmodified_with_concurrent_clients(loaded):
    harness, scale = loaded
    workload = tpcb.workload(scale)
    stats = collections.Counter()
    clients = 4
    tasks = []
    for client_id in range(clients):
        session = harness.session(name=f"client{client_id}")
        rng = np.random.default_rng([scale, client_id])
        tasks.append((session, _client(session, workload, rng, client_id, 15, stats)))
    harness.interleave(tasks)
    assert stats["committed"] == clients * 15
    assert stats["OC000"] > 0 and stats["retries"] == stats["OC000"]  # hot branch rows conflict
    assert harness.counts.aborts == {"OC000": stats["OC000"]}
    checker = harness.session(name="audit")
    sums = harness.drive(checker, tpcb.check_balances(checker))
    assert sums["ok"], sums
    history = harness.run(checker, "SELECT count(*), min(mtime) FROM pgbench_history").rows[0]
    assert history[0] == clients * 15 and history[1] is not None


def test_script_statements_use_point_reads_and_pushdown(loaded):
    harness, scale = loaded
    session = harness.session()
    txn = tpcb.workload(scale).next_transaction(np.random.default_rng(5))
    outcome = harness.drive(session, execute_transaction(session, txn))
    kinds = [r.kind for r in outcome.statements]
    assert kinds == ["begin", "update", "select", "update", "update", "insert", "commit"]
    select = outcome.statements[2]
    assert select.rows == [(txn.steps[1].params[0],)]  # abalance = delta: read back from own write
    assert (select.rows_examined, select.rows_returned, select.storage_requests) == (0, 0, 0)
    assert outcome.statements[-1].attempt_ended == "committed"


@pytest.mark.parametrize("scale", [1, 2])
def test_bulk_setup_equals_row_by_row_setup(scale):
    from dsqlbench.sql.engine import SqlEngine

    pairs = tpcb.setup(SqlEngine(), scale)
    bulk = tpcb.setup_bulk(SqlEngine(), scale)
    assert bulk.items() == sorted(pairs)
    assert len(bulk.keys) == tpcb.NACCOUNTS * scale  # the accounts, as one columnar image


def test_every_replica_equals_the_load_model_after_a_bulk_load():
    """TPC-B's load in bulk: every replica of every shard reads, key by key, like the
    model built from the load's pairs (the journals are still empty)."""
    import simpy

    from dsqlbench import config
    from dsqlbench.checkers.oracle import Oracle
    from dsqlbench.metrics import Recorder
    from dsqlbench.sim.cluster import Cluster
    from dsqlbench.workload.sql import PgbenchSqlWorkload

    cfg = config.load_config("tpcb", overrides=["pgbench.scale=1"], duration_s=1)
    workload = PgbenchSqlWorkload(cfg)
    load = workload.load_items()
    env = simpy.Environment()
    cluster = Cluster(env, cfg, Recorder(0, 10**9), Oracle(), load)
    cluster.load_items(load)
    assert all(node.core.base is not None for nodes in cluster.replicas for node in nodes)
    assert sum(len(nodes[0].core.base) for nodes in cluster.replicas) == tpcb.NACCOUNTS
    for shard, nodes in enumerate(cluster.replicas):
        model = cluster.replay_model(shard, 1)
        for node in nodes:
            replica = node.core
            assert list(replica.versions_in_range(-1, 2**9000, 1)) == list(
                model.versions_in_range(-1, 2**9000, 1)), replica.name
