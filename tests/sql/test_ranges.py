"""Key ranges from WHERE clauses agree with plain filtering, whatever the bound's type."""

from __future__ import annotations

import functools
import operator
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.sql.harness import Harness

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq}
INTS = list(range(0, 21))
TENTHS = [Decimal(i).scaleb(-1) for i in range(0, 21)]


@functools.lru_cache(maxsize=1)
def _loaded():
    harness = Harness()
    harness.bootstrap("CREATE TABLE i (k int PRIMARY KEY); CREATE TABLE n (k numeric(4,1) PRIMARY KEY);"
                      "CREATE TABLE c (a int, b int, PRIMARY KEY (a, b))")
    harness.load(harness.engine.load_rows("i", [(k,) for k in INTS]))
    harness.load(harness.engine.load_rows("n", [(k,) for k in TENTHS]))
    harness.load(harness.engine.load_rows("c", [(a, b) for a in range(4) for b in range(5)]))
    return harness, harness.session()


_bounds = st.one_of(st.integers(-3, 24), st.decimals(-3, 24, places=2),
                    st.floats(-3, 24, allow_nan=False).map(lambda f: round(f, 3)),
                    st.integers(-3, 24).map(str))


@settings(max_examples=150, deadline=None)
@given(op=st.sampled_from(sorted(OPS)), bound=_bounds, table=st.sampled_from(["i", "n"]))
def test_single_bounds(op, bound, table):
    harness, session = _loaded()
    values = INTS if table == "i" else TENTHS
    result = harness.run(session, f"SELECT k FROM {table} WHERE k {op} $1", (bound,))
    number = Decimal(bound) if isinstance(bound, str) else Decimal(repr(bound)) if isinstance(bound, float) \
        else bound
    expected = [v for v in values if OPS[op](v, number)]
    assert [r[0] for r in result.rows] == expected
    assert result.rows_examined <= len(expected) + 1  # the range, not the table


@settings(max_examples=60, deadline=None)
@given(a=st.integers(-1, 4), low=st.integers(-1, 5), high=st.integers(-1, 5), ins=st.lists(st.integers(-1, 4), max_size=3))
def test_prefix_and_range_on_a_composite_key(a, low, high, ins):
    harness, session = _loaded()
    rows = harness.run(session, "SELECT a, b FROM c WHERE a = $1 AND b > $2 AND b <= $3 ORDER BY a, b",
                       (a, low, high))
    assert rows.rows == [(a, b) for b in range(5) if 0 <= a < 4 and low < b <= high]
    if ins:
        listed = ", ".join(str(v) for v in ins)
        found = harness.run(session, f"SELECT a, b FROM c WHERE a IN ({listed}) AND b = 2 ORDER BY a DESC")
        assert found.rows == [(v, 2) for v in sorted(set(ins), reverse=True) if 0 <= v < 4]
