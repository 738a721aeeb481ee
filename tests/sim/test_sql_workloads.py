"""SQL workloads through the whole simulated pipeline."""

import pytest

from dsqlbench.sim.run import simulate
from tests.sim.conftest import small_config


def sql_config(workload, *overrides, duration_s=0.8):
    return small_config(workload, *overrides, duration_s=duration_s)


@pytest.mark.parametrize("scale,clients", [(1, 4), (1, 16), (2, 8)])
def test_pgbench_default_tpcb_script_runs_unmodified(scale, clients):
    sim = simulate(sql_config("tpcb", f"pgbench.scale={scale}", f"clients.count={clients}")).simulated
    assert sim["logical"]["committed"] > 5
    assert sim["checks"]["oracle"]["ok"]
    assert sim["checks"]["pgbench"]["ok"]  # branches = tellers = accounts = history
    assert set(sim["latency_ms"]) >= {"all", "tpcb-builtin"}
    if clients >= 8:  # scale factor 1 or 2 means one or two hot branch rows
        assert sim["aborts"]["OC000"] > 0 and sim["transactions"]["retried"] > 0


def test_tpcc_subset_keeps_its_consistency_conditions():
    sim = simulate(sql_config("tpcc", "clients.count=8", duration_s=1.5)).simulated
    assert sim["logical"]["committed"] > 20
    assert sim["checks"]["tpcc"] == {"ok": True, "violations": []}
    assert sim["checks"]["oracle"]["ok"]
    assert {"new_order", "payment"} <= set(sim["latency_ms"])


def test_pushdown_moves_fewer_rows_than_storage_examines():
    sim = simulate(sql_config("tpcc", "clients.count=8", duration_s=1.0)).simulated
    counters = sim["counters"]
    assert counters["storage.rows_examined"] > counters["storage.rows_returned"] > 0


def test_ycsb_through_sql_runs_reads_and_updates_through_the_engine():
    sim = simulate(sql_config("ycsb-sql", "clients.count=8", "load.record_count=2000")).simulated
    assert {"ycsb-read", "ycsb-update"} <= set(sim["latency_ms"])
    assert sim["checks"]["pgbench"] == {"ok": True, "rows": 2000}
    assert sim["checks"]["oracle"]["ok"]


def _commit_statements(tmp_path, transactions: int):
    script = tmp_path / f"txns{transactions}.pgbench"
    script.write_text("".join(
        f"BEGIN;\nUPDATE usertable SET field3 = 'v' WHERE ycsb_key = {k};\nEND;\n"
        for k in range(1, transactions + 1)))
    sim = simulate(sql_config("ycsb-sql", f'pgbench.scripts=["{script}"]', "clients.count=1",
                              "load.record_count=100", duration_s=1.5)).simulated
    return sim["statement_latency_ms"]["commit"], sim["transactions"]["committed"]


def test_each_commit_of_a_script_is_its_own_statement(tmp_path):
    """A script of two transactions records two COMMIT statements per execution, each
    as long as a one-transaction script's COMMIT (not the sum of both)."""
    one, one_attempts = _commit_statements(tmp_path, 1)
    two, two_attempts = _commit_statements(tmp_path, 2)
    assert abs(two["count"] - 2 * two_attempts) <= 2  # warm-up edges
    assert abs(one["count"] - one_attempts) <= 2
    assert abs(two["p50"] - one["p50"]) < 0.1 * one["p50"]


def test_a_schema_change_on_a_one_shard_cluster_commits(tmp_path):
    """A DDL commit is a vote on every adjudicator shard; with one shard it was routed
    as a plain commit and crashed the flush (found by ``dsqlbench serve``)."""
    script = tmp_path / "ddl.pgbench"
    script.write_text("CREATE TABLE IF NOT EXISTS extra (id int PRIMARY KEY);\n"
                      "INSERT INTO extra VALUES (1) ON CONFLICT DO NOTHING;\n")
    sim = simulate(sql_config("ycsb-sql", f'pgbench.scripts=["{script}"]',
                              "topology.adjudicator.shards=1", "clients.count=1",
                              "load.record_count=200")).simulated
    assert sim["checks"]["oracle"]["ok"] and sim["logical"]["committed"] > 5
