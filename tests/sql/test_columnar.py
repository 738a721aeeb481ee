"""Columnar folds of loaded images give what folding their rows one by one gives.

After a short TPC-B run (so the accounts image has rows written since the load, whose
version lists shadow the image, and rows still only in the image), each query runs
through the offline audit path twice: with ``sql.columnar`` folding the image, and
with it switched off (every row decoded and folded by the engine). Results must be
equal, value for value and type for type; queries that cannot be folded by columns
(GROUP BY, WHERE, DISTINCT, expressions) must fall back and agree too.
"""

import numpy as np
import pytest

from dsqlbench.sim import run as sim_run
from dsqlbench.sim import sql_client
from dsqlbench.sql.columnar import image_states, integer_columns
from dsqlbench.sql.planner import AggSpec
from tests.sim.test_sql_workloads import sql_config

QUERIES = [
    "SELECT sum(abalance) FROM pgbench_accounts",
    "SELECT count(*), sum(abalance), min(abalance), max(abalance), avg(abalance) FROM pgbench_accounts",
    "SELECT count(aid), sum(bid), min(aid), max(aid), avg(bid) FROM pgbench_accounts",
    "SELECT sum(abalance) FROM pgbench_accounts WHERE aid > 5000",
    "SELECT bid, sum(abalance) FROM pgbench_accounts GROUP BY bid",
    "SELECT count(DISTINCT abalance) FROM pgbench_accounts",
    "SELECT sum(abalance + 1) FROM pgbench_accounts",
    "SELECT sum(tbalance), count(*) FROM pgbench_tellers",
    "SELECT sum(delta) FROM pgbench_history",
]


def _queries(session):
    results = []
    for sql in QUERIES:
        result = yield from session.execute(sql)
        assert result.error is None, (sql, result.error)
        results.append([tuple((type(v).__name__, v) for v in row) for row in result.rows])
    return results


@pytest.fixture(scope="module")
def both_ways():
    seen = {}
    original = sim_run.final_check

    def final_check(cluster, workload):
        def queries():
            return _queries(workload.engine.session(cluster.limits))
        seen["columnar"] = sql_client.serve_offline(cluster, queries())
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sql_client, "foldable_columns", lambda aggregate: None)
            seen["rows"] = sql_client.serve_offline(cluster, queries())
        return original(cluster, workload)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim_run, "final_check", final_check)
        output = sim_run.simulate(sql_config("tpcb", "pgbench.scale=1", "clients.count=8"))
    return output, seen


def test_columnar_folds_equal_row_folds(both_ways):
    output, seen = both_ways
    assert output.simulated["checks"]["pgbench"]["ok"]
    assert seen["columnar"] == seen["rows"]
    balance, = seen["columnar"][0][0]
    assert balance[0] == "int"  # sum(int4) is an integer, not a numpy scalar


def test_some_accounts_were_written_since_the_load(both_ways):
    # Otherwise the image would never be shadowed and the test above proves less.
    output, seen = both_ways
    assert output.simulated["transactions"]["committed"] > 10
    (balance,), = seen["columnar"][0]
    assert balance[1] != 0  # money moved into or out of the accounts: written rows counted


def test_integer_columns_are_views_of_the_row_bytes():
    rows = np.zeros((5, 12), np.uint8)
    rows[:, 3:7] = np.array([1, -2, 3, 2**31 - 1, -2**31], "<i4").view(np.uint8).reshape(5, 4)
    column = integer_columns(rows, {0: 3})[0]
    assert column.tolist() == [1, -2, 3, 2**31 - 1, -2**31]
    assert np.shares_memory(column, rows)


def test_image_states_of_no_rows_are_the_initial_states():
    aggs = [AggSpec("count", None), AggSpec("sum", object()), AggSpec("avg", object()),
            AggSpec("min", object())]
    empty = np.empty(0, np.int32)
    assert image_states(aggs, [None, empty, empty, empty], 0) == [0, None, (None, 0), None]
