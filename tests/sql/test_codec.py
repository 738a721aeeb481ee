"""Keys and rows: order-preserving keys, disjoint keyspaces, lossless rows, catalog versions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.sql.catalog import Catalog, Column, Table
from dsqlbench.sql.codec import KeyPart, KeySpace, RowCodec, wire_dumps, wire_loads
from dsqlbench.sql.protocol import ScanReply, Scan, evaluate_scan
from dsqlbench.sql.types import SqlType

PARTS = [KeyPart(SqlType("integer")), KeyPart(SqlType("varchar", length=6), nullable=True),
         KeyPart(SqlType("numeric", precision=6, scale=2)), KeyPart(SqlType("timestamp")),
         KeyPart(SqlType("boolean"))]
SPACE = KeySpace(7, PARTS)

_text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FFF), max_size=6)
_tuples = st.tuples(
    st.integers(-2**31, 2**31 - 1), st.none() | _text,
    st.decimals(min_value=-9999, max_value=9999, places=2, allow_nan=False),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.booleans())


def _sort_key(values):
    a, text, number, when, flag = values
    # NULLs last, text in code-point order (PostgreSQL's C collation, DSQL's only one)
    return (a, text is None, text or "", number, when, flag)


@settings(max_examples=200, deadline=None)
@given(st.lists(_tuples, min_size=2, max_size=20))
def test_keys_sort_like_their_tuples_and_decode_back(values):
    keys = [SPACE.key(v) for v in values]
    assert [SPACE.decode(k) for k in keys] == [tuple(v) for v in values]
    by_key = [v for _, v in sorted(zip(keys, values), key=lambda item: item[0])]
    assert [_sort_key(v) for v in by_key] == sorted(_sort_key(v) for v in values)
    low, high = SPACE.full_range()
    assert all(low <= k < high for k in keys)


@settings(max_examples=100, deadline=None)
@given(_tuples, st.integers(-100, 100), st.integers(-100, 100))
def test_prefix_ranges_hold_exactly_the_matching_keys(values, lo, hi):
    prefix = [PARTS[0].encode(values[0])]
    start, end = SPACE.prefix_range(prefix, (PARTS[1].encode("b"), True), None)
    key = SPACE.key(values)
    text = values[1]
    inside = text is None or text >= "b"  # NULLs sort last, inside an open-ended range
    assert (start <= key < end) == inside
    narrow = KeySpace(3, [KeyPart(SqlType("integer")), KeyPart(SqlType("integer"))])
    s, e = narrow.prefix_range([PARTS[0].encode(5)], (lo + 2**31, True), (hi + 2**31, False))
    for b in range(-101, 102):
        assert (s <= narrow.key((5, b)) < e) == (lo <= b < hi)


def test_keyspaces_of_different_widths_never_interleave():
    small = KeySpace(1, [KeyPart(SqlType("integer"))])
    wide = KeySpace(2, [KeyPart(SqlType("bigint")), KeyPart(SqlType("integer"))])
    other = KeySpace(3, [KeyPart(SqlType("integer"))])
    ranges = sorted([small.full_range(), wide.full_range(), other.full_range()])
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    assert small.key((2**31 - 1,)) < 2**53  # a table keyed by integer keeps keys in int64


def test_rows_roundtrip_with_every_type():
    types = [SqlType("integer"), SqlType("numeric", precision=12, scale=2), SqlType("numeric"),
             SqlType("timestamp"), SqlType("text"), SqlType("bytea"), SqlType("boolean"), SqlType("double")]
    codec = RowCodec(types)
    row = (5, Decimal("12.34"), Decimal("1.000001"), dt.datetime(2025, 3, 4, 5, 6, 7, 8), "é", b"\0",
           False, 1.5)
    assert codec.decode(codec.encode(row)) == row
    assert codec.encode(row) == codec.encode(tuple(row))  # bytes depend on values only
    assert codec.decode(codec.encode((None,) * 8)) == (None,) * 8
    nested = ((1, Decimal("2.50")), (dt.datetime(2025, 1, 1), None))
    assert wire_loads(wire_dumps(nested)) == nested


def test_evaluate_scan_counts_and_limits():
    rows = [(k, bytes([k])) for k in range(10)]
    reply = evaluate_scan(Scan(0, 10, limit=2, row_filter=lambda k, v: k % 3 == 0), iter(rows))
    assert isinstance(reply, ScanReply)
    assert [k for k, _ in reply.rows] == [0, 3] and reply.rows_examined == 4 and reply.rows_returned == 2
    assert reply.bytes_returned == 1 + 1 + 1  # keys 0 and 3 take 0 and 1 bytes; values 1 byte each
    folded = evaluate_scan(Scan(0, 10, aggregate=lambda values: b"%d" % len(values)), iter(rows))
    assert (folded.aggregate, folded.rows_returned, folded.rows_examined) == (b"10", 1, 10)


def _table(name: str, oid: int) -> Table:
    return Table(name, oid, (Column("a", SqlType("integer"), True),), (0,))


def test_catalog_versions_follow_commit_time_in_any_arrival_order():
    catalog = Catalog()
    catalog.install(200, [("b", _table("b", 2))])
    catalog.install(100, [("a", _table("a", 1))])  # its reply arrived late
    assert sorted(catalog.as_of(150).tables) == ["a"]
    assert sorted(catalog.as_of(250).tables) == ["a", "b"]
    assert catalog.as_of(50).tables == {}
    catalog.install(300, [("a", None)])
    assert sorted(catalog.latest.tables) == ["b"] and catalog.latest_change_ns == 300
    assert catalog.allocate_oid() != catalog.allocate_oid()
