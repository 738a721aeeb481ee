"""Speed of the black-box list-append checker on 5,000 transactions.

Run with ``pytest tests/bench --benchmark-only``. The history is a valid strong
snapshot-isolation one with write skew (``dsqlbench.checkers.synthetic``), generated once
outside the timed rounds; each round loads and judges it under the strong model with
real-time edges, as the lab's runs do.
"""

import pytest

from dsqlbench.checkers.elle import check_list_append
from dsqlbench.checkers.synthetic import snapshot_history

TRANSACTIONS = 5_000


@pytest.fixture(scope="module")
def history():
    return snapshot_history(TRANSACTIONS, seed=1)


def test_bench_elle_5000(benchmark, history):
    verdict = benchmark.pedantic(check_list_append, args=(history,),
                                 kwargs={"model": "strong-snapshot-isolation"},
                                 rounds=5, iterations=1, warmup_rounds=1)
    assert verdict["valid"]
    benchmark.extra_info["transactions"] = TRANSACTIONS
    benchmark.extra_info["transactions_per_s"] = TRANSACTIONS / benchmark.stats.stats.median
