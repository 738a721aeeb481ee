"""The TPC-C subset: population, input rules, the mix, and consistency conditions 1-4
holding after a few hundred concurrent transactions with conflicts and retries."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from dsqlbench.errors import ConfigError
from dsqlbench.sql.harness import Harness
from dsqlbench.workload import tpcc

SCALE = tpcc.TpccScale.small(warehouses=2)


@pytest.fixture(scope="module")
def loaded():
    harness = Harness()
    harness.load(tpcc.setup(harness.engine, SCALE, np.random.default_rng(11)))
    return harness


def test_population_follows_the_scale():
    rows = tpcc.load_rows(SCALE, np.random.default_rng(1))
    counts = {name: len(r) for name, r in rows.items()}
    districts = 2 * 10
    assert counts["item"] == 200 and counts["warehouse"] == 2 and counts["stock"] == 400
    assert counts["district"] == districts and counts["customer"] == districts * 30
    assert counts["orders"] == districts * 30 and counts["new_order"] == districts * 9
    assert counts["history"] == districts * 30
    assert counts["order_line"] == sum(o[6] for o in rows["orders"])
    assert {c[5] for c in rows["customer"]} == {tpcc.last_name(n) for n in range(30)}
    assert tpcc.last_name(371) == "PRICALLYOUGHT"
    assert rows == tpcc.load_rows(SCALE, np.random.default_rng(1))  # seeded: same rows


def test_mix_and_inputs():
    workload = tpcc.TpccWorkload(SCALE, np.random.default_rng(2))
    rng = np.random.default_rng(3)
    txns = [workload.next_transaction(rng, 1) for _ in range(4000)]
    shares = collections.Counter(t.kind for t in txns)
    for kind, percent in zip(tpcc.KINDS, tpcc.MIX_PERCENT):
        assert shares[kind] / 4000 == pytest.approx(percent / 100, abs=0.02)
    orders = [t.inputs for t in txns if t.kind == "new_order"]
    assert all(5 <= len(o["lines"]) <= 15 for o in orders)
    invalid = sum(o["lines"][-1][0] == SCALE.items + 1 for o in orders)
    assert 0 < invalid < len(orders) * 0.03  # about 1% roll back on an unused item
    by_name = sum(isinstance(t.inputs["customer"], str) for t in txns if t.kind == "payment")
    assert by_name / shares["payment"] == pytest.approx(0.6, abs=0.05)
    with pytest.raises(ConfigError):
        tpcc.TpccScale(warehouses=0)


def test_consistency_holds_after_load(loaded):
    session = loaded.session()
    assert loaded.drive(session, tpcc.check_consistency(session)) == []


def _terminal(session, workload, rng, w_id: int, transactions: int, stats: collections.Counter):
    for _ in range(transactions):
        txn = workload.next_transaction(rng, w_id)
        while True:
            outcome = yield from tpcc.run_transaction(session, txn, SCALE)
            if outcome.committed or outcome.rolled_back:
                stats[(txn.kind, "rolled_back" if outcome.rolled_back else "committed")] += 1
                break
            assert outcome.retryable, (txn, outcome.error)
            stats["retries"] += 1


def test_consistency_holds_after_concurrent_transactions(loaded):
    workload = tpcc.TpccWorkload(SCALE, np.random.default_rng(4))
    stats = collections.Counter()
    tasks = []
    for terminal in range(4):
        session = loaded.session(name=f"terminal{terminal}")
        rng = np.random.default_rng([5, terminal])
        tasks.append((session, _terminal(session, workload, rng, 1 + terminal % 2, 60, stats)))
    loaded.interleave(tasks)
    finished = sum(n for key, n in stats.items() if key != "retries")
    assert finished == 240
    assert stats["retries"] > 0  # warehouse and district rows are hot: OC000 and retries
    assert all(stats[(kind, "committed")] > 0 for kind in tpcc.KINDS)
    session = loaded.session(name="auditor")
    assert loaded.drive(session, tpcc.check_consistency(session)) == []
    delivered = loaded.run(session, "SELECT count(*) FROM orders WHERE o_carrier_id IS NULL").rows[0][0]
    undelivered = loaded.run(session, "SELECT count(*) FROM new_order").rows[0][0]
    assert delivered == undelivered  # every order without a carrier is still a new order


def test_checker_finds_violations(loaded):
    session = loaded.session()
    loaded.run(session, "UPDATE district SET d_ytd = d_ytd + 1 WHERE d_w_id = 2 AND d_id = 3")
    loaded.run(session, "UPDATE district SET d_next_o_id = d_next_o_id + 5 WHERE d_w_id = 1 AND d_id = 1")
    violations = loaded.drive(session, tpcc.check_consistency(session))
    assert any(v.startswith("1: warehouse 2") for v in violations)
    assert any(v.startswith("2: district 1/1") for v in violations)
    loaded.run(session, "UPDATE district SET d_ytd = d_ytd - 1 WHERE d_w_id = 2 AND d_id = 3")
    loaded.run(session, "UPDATE district SET d_next_o_id = d_next_o_id - 5 WHERE d_w_id = 1 AND d_id = 1")
    assert loaded.drive(session, tpcc.check_consistency(session)) == []


def test_stock_level_joins_with_lookups(loaded):
    session = loaded.session()
    txn = tpcc.TpccTransaction("stock_level", {"w_id": 1, "d_id": 2, "threshold": 100})
    outcome = loaded.drive(session, tpcc.run_transaction(session, txn, SCALE))
    assert outcome.committed
    count = outcome.statements[2]
    assert count.rows[0][0] > 0 and count.storage_requests > 1  # one range scan, then stock lookups
