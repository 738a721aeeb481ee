"""The executor: runs plans as generators of storage requests.

Role: every function here is a generator that yields through an ``Access`` (the
session's transaction: its snapshot reads, its spooled writes) and returns rows. The
closures handed to storage (``row_filter``, ``projection``, ``aggregate``) are built
here per execution, binding the statement's parameters and, for a lookup join, the
outer row.

Invariants:
- a storage-side closure never raises: a SqlError inside one (say, a division by zero
  in a pushed filter) is caught into the statement's ``ErrorBox`` and raised in the QP
  once the reply arrives, as a storage error reply would be;
- UPDATE and DELETE read every target row before writing any, so a statement never
  sees its own writes (no Halloween problem);
- every write goes through ``Access.write``, which keeps the transaction's limits and
  the statement's undo log.
"""

from __future__ import annotations

import functools

from decimal import Decimal, localcontext
from functools import cmp_to_key
from itertools import product

from dsqlbench.sql.catalog import Table
from dsqlbench.sql.codec import NotEncodable, RowCodec, dumps_raw, loads_raw, wire_dumps, wire_loads
from dsqlbench.sql.errors import NOT_NULL_VIOLATION, SqlError, duplicate_key_error
from dsqlbench.sql.expr import compare_values
from dsqlbench.sql.planner import AggPushdown, InsertPlan, ModifyPlan, SelectPlan, SlotPlan
from dsqlbench.sql.types import coerce


AVG_QUANTUM = Decimal(1).scaleb(-16)


class ErrorBox:
    """The first SqlError a storage-side closure met during a statement."""

    __slots__ = ("error",)

    def __init__(self):
        self.error = None

    def guard(self, function):
        if function is None:
            return None

        @functools.wraps(function)  # keeps what the function says of itself (``pushdown``)
        def guarded(*args):
            try:
                return function(*args)
            except SqlError as error:
                if self.error is None:
                    self.error = error
                return False
        return guarded

    def check(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


# --- storage-side closures --------------------------------------------------------------

def _row_filter(fn, decode, outer: tuple, ctx):
    if fn is None:
        return None
    return lambda key, value: fn(outer + decode(value), ctx) is True


def _index_filter(fn, table: Table, index, outer: tuple, ctx):
    if fn is None:
        return None
    return lambda key, value: fn(outer + table.index_entry_values(index, key, value), ctx) is True


def _projection(columns):
    if columns is None:
        return None
    return lambda key, value: dumps_raw(tuple(raw[i] for raw in (loads_raw(value),) for i in columns))


_CODECS: dict = {}


def projected_codec(table: Table, columns) -> RowCodec:
    """Decoder of a storage projection of ``columns`` (cached per table and columns)."""
    if columns is None:
        return table.codec
    cache_key = (id(table), columns)
    codec = _CODECS.get(cache_key)
    if codec is None:
        if len(_CODECS) > 4096:
            _CODECS.clear()
        codec = _CODECS[cache_key] = (table, RowCodec([table.columns[i].sql_type for i in columns]))
    return codec[1]


# --- key ranges -------------------------------------------------------------------------

def key_ranges(plan: SlotPlan, outer: tuple, ctx) -> list[tuple[int, int]]:
    """The key ranges (``[low, high)``, in scan order) that the slot's path reads."""
    path = plan.path
    keyspace = path.keyspace
    if path.kind == "full":
        return [keyspace.full_range()]
    prefixes = [[]]
    parts = keyspace.parts
    usable = len(path.eq)
    options = []
    for i, fns in enumerate(path.eq):
        bits = set()
        try:
            for fn in fns:
                value = fn(outer, ctx)
                if value is None:
                    continue  # col = NULL matches nothing
                encoded, exact = parts[i].encode_bound(value, low=True)
                if exact:
                    bits.add(encoded)
                # an inexact value (2.5 for an integer column) equals no stored value
        except NotEncodable:
            usable = i
            break
        if not bits:
            return []
        options.append(sorted(bits))
    prefixes = [list(combo) for combo in product(*options[:usable])]
    low = high = None
    if usable == len(path.eq):
        low = _bound(plan, usable, path.low, outer, ctx, low_side=True)
        high = _bound(plan, usable, path.high, outer, ctx, low_side=False)
        if low == "empty" or high == "empty":
            return []
    ranges = []
    for prefix in prefixes:
        if len(prefix) == len(parts):
            start, end = keyspace.prefix_range(prefix)
        else:
            start, end = keyspace.prefix_range(prefix, low, high)
        if start < end:
            ranges.append((start, end))
    ranges = sorted(set(ranges))
    return ranges[::-1] if plan.descending else ranges


def _bound(plan: SlotPlan, part_index: int, bound, outer, ctx, low_side: bool):
    if bound is None or part_index >= len(plan.path.keyspace.parts):
        return None
    fn, inclusive = bound
    value = fn(outer, ctx)
    if value is None:
        return "empty"
    try:
        bits, exact = plan.path.keyspace.parts[part_index].encode_bound(value, low=low_side)
    except NotEncodable:
        return None
    return bits, inclusive or not exact


# --- reading one table ------------------------------------------------------------------

def fetch_slot(plan: SlotPlan, outer: tuple, access, limit: int | None = None):
    """Rows of one FROM table for one outer row: ``[(key, projected row)]``."""
    ctx = access.ctx
    table = plan.table
    path = plan.path
    ranges = key_ranges(plan, outer, ctx)
    if plan.point_reads:
        return (yield from _point_reads(plan, ranges, access))
    if path.index is not None:
        return (yield from _index_scan(plan, ranges, outer, access, limit))
    row_filter = access.errors.guard(_row_filter(plan.storage_filter, table.codec.decode, outer, ctx))
    projection = _projection(plan.projection)
    decode = projected_codec(table, plan.projection).decode
    out = []
    for low, high in ranges:
        remaining = None if limit is None else limit - len(out)
        if remaining is not None and remaining <= 0:
            break
        rows, _ = yield from access.scan(low, high, row_filter, projection,
                                         remaining if plan.limit_pushed else None, plan.descending)
        access.errors.check()
        out.extend((key, decode(value)) for key, value in rows)
    return _qp_filter(plan, out, outer, ctx)


def _point_reads(plan: SlotPlan, ranges, access):
    """DML's point path: read whole rows by key (the filter runs in the QP)."""
    out = []
    for low, high in ranges:
        assert high == low + 1, "a point path reads single keys"
        value = yield from access.read(low)
        if value is not None:
            out.append((low, plan.table.codec.decode(value)))
    return _qp_filter(plan, out, (), access.ctx)


def _index_scan(plan: SlotPlan, ranges, outer, access, limit):
    """Scan index entries (filters on indexed columns pushed), then look up base rows."""
    ctx = access.ctx
    table, index = plan.table, plan.path.index
    index_filter = access.errors.guard(_index_filter(plan.index_filter, table, index, outer, ctx))
    entries = []
    for low, high in ranges:
        remaining = None if limit is None else limit - len(entries)
        if remaining is not None and remaining <= 0:
            break
        rows, _ = yield from access.scan(low, high, index_filter, None,
                                         remaining if plan.limit_pushed else None, plan.descending)
        access.errors.check()
        entries.extend(rows)
    if plan.index_only:
        columns = plan.projection if plan.projection is not None else range(len(table.columns))
        where = {c: i for i, c in enumerate(plan.path.key_columns) if c >= 0}
        out = []
        for key, value in entries:
            values = table.index_entry_values(index, key, value)
            base_key = table.keyspace.key(values[len(index.columns):])
            out.append((base_key, tuple(values[where[c]] for c in columns)))
        return _qp_filter(plan, out, outer, ctx)
    out = yield from _lookups(plan, entries, outer, access)
    return _qp_filter(plan, out, outer, ctx)


def _lookups(plan: SlotPlan, entries, outer, access):
    """Fetch the base row of each index entry (DSQL's Storage Lookup), filters pushed."""
    ctx = access.ctx
    table, index = plan.table, plan.path.index
    row_filter = access.errors.guard(_row_filter(plan.storage_filter, table.codec.decode, outer, ctx))
    projection = _projection(plan.projection)
    decode = projected_codec(table, plan.projection).decode
    out = []
    for key, value in entries:
        base_key = table.keyspace.key(table.index_entry_pk(index, key, value))
        if plan.point_reads or projection is None and row_filter is None:
            row = yield from access.read(base_key)
            if row is not None:
                out.append((base_key, table.codec.decode(row)))
            continue
        rows, _ = yield from access.scan(base_key, base_key + 1, row_filter, projection, None, False)
        access.errors.check()
        out.extend((k, decode(v)) for k, v in rows)
    return out


def _qp_filter(plan: SlotPlan, rows, outer, ctx):
    if plan.qp_filter is None or _filters_at_join(plan):
        return rows
    fn = plan.qp_filter
    return [(key, row) for key, row in rows if fn(outer + row, ctx) is True]


def _filters_at_join(plan: SlotPlan) -> bool:
    """A read-once table after the first filters its rows when joined to each outer row
    (its QP filter is laid out for the joined row)."""
    return not plan.dependent and plan.slot > 0


# --- SELECT -----------------------------------------------------------------------------

def run_select(plan: SelectPlan, access):
    """The SELECT's output rows (list of tuples); locks rows for FOR UPDATE."""
    ctx = access.ctx
    if plan.const_filter is not None and plan.const_filter((), ctx) is not True:
        joined = []
    elif plan.agg_pushdown is not None:
        groups = yield from _pushed_groups(plan, access)
        return _finish_grouped(plan, groups, ctx)
    else:
        joined = yield from _join(plan, access)
    if plan.for_update:
        for _, keys in joined:
            for key in keys:
                access.lock(key)
    if plan.grouped:
        return _finish_grouped(plan, _group(plan, [row for row, _ in joined], ctx), ctx)
    return _finish(plan, [row for row, _ in joined], ctx)


def _join(plan: SelectPlan, access):
    ctx = access.ctx
    rows = [((), ())]
    limit = _pushed_limit(plan, ctx)
    for slot in plan.slots:
        cached = None
        joined = []
        for outer, keys in rows:
            if slot.dependent or cached is None:
                fetched = yield from fetch_slot(slot, outer if slot.dependent else (), access, limit)
                if not slot.dependent:
                    cached = fetched
            else:
                fetched = cached
            if _filters_at_join(slot) and slot.qp_filter is not None:
                fn = slot.qp_filter
                joined.extend((outer + row, keys + (key,)) for key, row in fetched
                              if fn(outer + row, ctx) is True)
            else:
                joined.extend((outer + row, keys + (key,)) for key, row in fetched)
        rows = joined
    return rows


def _pushed_limit(plan: SelectPlan, ctx) -> int | None:
    if not plan.slots or not plan.slots[0].limit_pushed:
        return None
    limit = _count(plan.limit, ctx, "LIMIT")
    if limit is None:
        return None
    return limit + (_count(plan.offset, ctx, "OFFSET") or 0)


def _count(fn, ctx, clause: str) -> int | None:
    if fn is None:
        return None
    value = fn((), ctx)
    if value is None:
        return None
    value = int(value)
    if value < 0:
        raise SqlError("2201W" if clause == "LIMIT" else "2201X", f"{clause} must not be negative")
    return value


def _finish(plan: SelectPlan, rows: list, ctx) -> list:
    if plan.order and not plan.order_satisfied:
        keyed = [(tuple(fn(row, ctx) for fn, _, _ in plan.order), row) for row in rows]
        keyed.sort(key=cmp_to_key(_order_comparator(plan.order)))
        rows = [row for _, row in keyed]
    out = [tuple(fn(row, ctx) for fn in plan.targets) for row in rows]
    if plan.distinct:
        out = list(dict.fromkeys(out))
    offset = _count(plan.offset, ctx, "OFFSET") or 0
    limit = _count(plan.limit, ctx, "LIMIT")
    end = None if limit is None else offset + limit
    return out[offset:end]


def _order_comparator(order):
    def compare(a, b):
        for value_a, value_b, (_, descending, nulls_first) in zip(a[0], b[0], order):
            if value_a is None or value_b is None:
                if value_a is None and value_b is None:
                    continue
                return (-1 if nulls_first else 1) * (1 if value_a is None else -1)
            result = compare_values(value_a, value_b)
            if result:
                return -result if descending else result
        return 0
    return compare


# --- aggregation ------------------------------------------------------------------------

def _initial(spec):
    if spec.name == "count":
        return 0
    if spec.name == "avg":
        return (None, 0)
    return None


def _accumulate(spec, state, value):
    if spec.name == "count":
        return state + 1 if spec.arg is None or value is not None else state
    if value is None:
        return state
    if spec.name == "sum":
        return value if state is None else _add(state, value)
    if spec.name == "min":
        return value if state is None or compare_values(value, state) < 0 else state
    if spec.name == "max":
        return value if state is None or compare_values(value, state) > 0 else state
    total, n = state
    return (value if total is None else _add(total, value), n + 1)


def _merge(spec, a, b):
    if spec.name == "count":
        return a + b
    if spec.name == "avg":
        total = b[0] if a[0] is None else a[0] if b[0] is None else _add(a[0], b[0])
        return (total, a[1] + b[1])
    if b is None:
        return a
    return _accumulate(spec, a, b)


def _add(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) + Decimal(b)
    return a + b


def _final(spec, state):
    if spec.name != "avg":
        return state
    total, n = state
    if not n:
        return None
    if isinstance(total, float):
        return total / n
    with localcontext() as context:  # PostgreSQL shows avg() with 16 decimal places
        context.prec = max(60, len(str(total)) + 20)
        return (Decimal(total) / Decimal(n)).quantize(AVG_QUANTUM)


def _fold(group_fns, aggs, rows, ctx) -> dict:
    """``{group key: [state per aggregate]}`` over ``rows`` (distinct aggregates keep
    their seen values in a dict as the state)."""
    groups: dict = {}
    for row in rows:
        key = tuple(fn(row, ctx) for fn in group_fns)
        states = groups.get(key)
        if states is None:
            states = groups[key] = [({} if spec.distinct else _initial(spec)) for spec in aggs]
        for i, spec in enumerate(aggs):
            value = spec.arg(row, ctx) if spec.arg is not None else None
            if spec.distinct:
                if value is not None:
                    states[i][value] = None
            else:
                states[i] = _accumulate(spec, states[i], value)
    return groups


def _group(plan: SelectPlan, rows, ctx) -> dict:
    groups = _fold(plan.group_fns, plan.aggs, rows, ctx)
    for states in groups.values():
        for i, spec in enumerate(plan.aggs):
            if spec.distinct:
                state = _initial(spec)
                for value in states[i]:
                    state = _accumulate(spec, state, value)
                states[i] = state
    return groups


def _finish_grouped(plan: SelectPlan, groups: dict, ctx) -> list:
    if not groups and not plan.group_fns:
        groups = {(): [_initial(spec) for spec in plan.aggs]}
    rows = []
    for key, states in groups.items():
        row = key + tuple(_final(spec, state) for spec, state in zip(plan.aggs, states))
        if plan.having is None or plan.having(row, ctx) is True:
            rows.append(row)
    return _finish(plan, rows, ctx)


def _storage_aggregate(pushdown: AggPushdown, decode, ctx):
    """The ``aggregate`` closure storage runs: per-group partial states, as bytes."""
    def aggregate(projected: list) -> bytes:
        groups = _fold(pushdown.group_fns, pushdown.aggs, (decode(v) for v in projected), ctx)
        return wire_dumps(tuple((key, tuple(states)) for key, states in groups.items()))
    aggregate.pushdown = pushdown  # what it folds: storage may fold loaded columns alike (sql.columnar)
    return aggregate


def _pushed_groups(plan: SelectPlan, access):
    slot = plan.slots[0]
    ctx = access.ctx
    decode = projected_codec(slot.table, slot.projection).decode
    aggregate = access.errors.guard(_storage_aggregate(plan.agg_pushdown, decode, ctx))
    row_filter = access.errors.guard(_row_filter(slot.storage_filter, slot.table.codec.decode, (), ctx))
    projection = _projection(slot.projection) or (lambda key, value: value)
    groups: dict = {}
    for low, high in key_ranges(slot, (), ctx):
        _, partials = yield from access.scan(low, high, row_filter, projection, None, False, aggregate)
        access.errors.check()
        for data in partials:
            for key, states in wire_loads(data):
                current = groups.get(key)
                if current is None:
                    groups[key] = list(states)
                else:
                    groups[key] = [_merge(spec, a, b) for spec, a, b in zip(plan.aggs, current, states)]
    return groups


# --- INSERT, UPDATE, DELETE -------------------------------------------------------------

def check_row(table: Table, row: list) -> tuple:
    """Coerce a row to its columns' types and check NOT NULL (the key's columns too)."""
    for i, column in enumerate(table.columns):
        value = coerce(row[i], column.sql_type)
        if value is None and (column.not_null or i in table.pk):
            raise SqlError(NOT_NULL_VIOLATION, f'null value in column "{column.name}" of relation '
                                               f'"{table.name}" violates not-null constraint')
        row[i] = value
    return tuple(row)


INSERT_RANGE_CHECK_ROWS = 8  # multi-row INSERTs from here on check their keys in one scan


def run_insert(plan: InsertPlan, access):
    """Insert every row; returns (rowcount, RETURNING rows)."""
    ctx = access.ctx
    table = plan.table
    if plan.select is not None:
        source = yield from run_select(plan.select, access)
    else:
        source = [tuple(fn((), ctx) if fn is not None else _default(plan, pos, ctx)
                        for pos, fn in zip(plan.columns, row)) for row in plan.rows]
    rows = []
    for values in source:
        row = [_default(plan, i, ctx) for i in range(len(table.columns))]
        for position, value in zip(plan.columns, values):
            row[position] = value
        row = check_row(table, row)
        rows.append((table.row_key(row, access.next_rowid() if table.hidden_pk else None), row))
    existing_keys = None
    if not table.hidden_pk and len(rows) >= INSERT_RANGE_CHECK_ROWS:
        existing_keys = yield from _existing_keys(rows, access)
    returned = []
    inserted = 0
    for key, row in rows:
        if not table.hidden_pk:
            if existing_keys is not None:
                existing = key in existing_keys
                existing_keys.add(key)  # a later row of this statement with the same key
            else:
                existing = (yield from access.read(key)) is not None
            if existing and plan.on_conflict_do_nothing:
                continue
            if existing:
                raise duplicate_key_error(table.pk_name, [table.columns[i].name for i in table.pk],
                                          table.pk_values(row))
        yield from _write_row(table, key, None, row, access)
        inserted += 1
        returned.append(tuple(fn(row, ctx) for fn in plan.returning))
    return inserted, returned


def _existing_keys(rows: list, access):
    """Which of a multi-row INSERT's keys exist (own writes included): one range scan
    over the keys' span with the key set pushed down, instead of a point read per row.
    Only the keys cross the network."""
    keys = frozenset(key for key, _ in rows)
    low, high = min(keys), max(keys) + 1
    found, _ = yield from access.scan(low, high, lambda k, v: k in keys, lambda k, v: b"",
                                      None, False)
    return {key for key, _ in found}


def _default(plan: InsertPlan, position: int, ctx):
    fn = plan.defaults[position]
    return fn((), ctx) if fn is not None else None


def _write_row(table: Table, key: int, old_row, new_row, access):
    """Write a row's post-image and keep every index in step (entries in the write set)."""
    for index in table.indexes:
        old = table.index_entry(index, old_row, key) if old_row is not None else None
        new = table.index_entry(index, new_row, key) if new_row is not None else None
        if old == new:
            continue
        if old is not None and (new is None or old[0] != new[0]):
            access.write(old[0], None, row=False)
        if new is not None:
            if index.unique and (old is None or old[0] != new[0]) and new[1]:
                existing = yield from access.read(new[0])
                if existing is not None:
                    values = tuple(new_row[i] for i in index.columns)
                    raise duplicate_key_error(index.name, [table.columns[i].name for i in index.columns],
                                              values)
            access.write(new[0], new[1], row=False)
    access.write(key, table.codec.encode(new_row) if new_row is not None else None, row=True)


def run_modify(plan: ModifyPlan, access):
    """UPDATE or DELETE: returns (rowcount, RETURNING rows)."""
    ctx = access.ctx
    table = plan.table
    targets = yield from fetch_slot(plan.scan, (), access)
    returned = []
    for key, row in targets:
        if plan.kind == "delete":
            yield from _write_row(table, key, row, None, access)
            returned.append(tuple(fn(row, ctx) for fn in plan.returning))
            continue
        new = list(row)
        for position, fn in plan.assignments:
            new[position] = fn(row, ctx)
        new = check_row(table, new)
        new_key = key if table.hidden_pk else table.row_key(new)
        if new_key != key:
            existing = yield from access.read(new_key)
            if existing is not None:
                raise duplicate_key_error(table.pk_name, [table.columns[i].name for i in table.pk],
                                          table.pk_values(new))
            yield from _write_row(table, key, row, None, access)
            yield from _write_row(table, new_key, None, new, access)
        else:
            yield from _write_row(table, key, row, new, access)
        returned.append(tuple(fn(new, ctx) for fn in plan.returning))
    return len(targets), returned

