"""The planner: binds a statement to the catalog and decides what storage does.

Role: for every table a statement reads, pick an access path over a keyspace
(``KeyPath``): a point lookup when the whole primary key is fixed by equalities (or IN
lists), else a range over the primary key or a secondary index (an equality prefix and
at most one range on the next key column), else a full scan. Then split the WHERE and ON
conditions three ways, as DSQL's EXPLAIN does:
- *index conditions* become the key range (they are also rechecked at storage, so a
  bound that does not fit the column's type exactly only widens the range);
- *storage filters*: every condition storage can evaluate (``expr.pushable``) is pushed
  into the Scan's ``row_filter``, so rows that do not match never reach the QP;
- *query-processor filters*: the rest (LIKE, string functions) run after transfer.
Only the columns the QP needs cross the network (``projection``); a single-table
aggregate whose inputs are all pushable is folded at storage (``AggPushdown``); a LIMIT
goes to storage when nothing after the scan can drop or reorder rows.

Joins are inner nested loops in FROM order. A table whose best path uses a column of an
earlier table is read per outer row (an index lookup); otherwise it is read once and
joined in the QP (its cross-table conditions become the join filter).

Plans hold compiled closures that read parameters from the execution context, so one
plan serves every execution of its statement text under one catalog version.

Row layouts (where a column sits in the tuple a closure sees): the QP row of a join is
the concatenation of each table's *projected* row; a storage filter sees the outer QP
row followed by the table's full row; an index filter sees the outer row followed by the
index entry's columns (indexed columns, then primary-key columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from dsqlbench.sql import ir
from dsqlbench.sql.catalog import CatalogSnapshot, Index, Table
from dsqlbench.sql.codec import KeySpace
from dsqlbench.sql.errors import (
    AMBIGUOUS_COLUMN,
    GROUPING_ERROR,
    SYNTAX_ERROR,
    UNDEFINED_COLUMN,
    UNDEFINED_TABLE,
    SqlError,
)
from dsqlbench.sql.expr import Compiled, children, columns_of, compile_expr, has_aggregate, pushable, walk

MAX_IN_COMBINATIONS = 1000
_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


# --- binding ----------------------------------------------------------------------------

class Scope:
    """The tables of a FROM list, by slot; resolves column names to ``ir.Col``."""

    def __init__(self, refs: list[tuple[ir.TableRef, Table]]):
        self.refs = refs
        aliases = [ref.alias for ref, _ in refs]
        for alias in aliases:
            if aliases.count(alias) > 1:
                raise SqlError("42712", f'table name "{alias}" specified more than once')

    def resolve(self, ref: ir.ColRef) -> ir.Col:
        matches = []
        for slot, (table_ref, table) in enumerate(self.refs):
            if ref.table is not None and ref.table != table_ref.alias:
                continue
            position = table.positions.get(ref.name)
            if position is not None:
                matches.append(ir.Col(slot, position, ref.name, table_ref.alias))
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise SqlError(AMBIGUOUS_COLUMN, f'column reference "{ref.name}" is ambiguous',
                           position=ref.pos)
        if ref.table is not None and all(ref.table != r.alias for r, _ in self.refs):
            raise SqlError(UNDEFINED_TABLE, f'missing FROM-clause entry for table "{ref.table}"',
                           position=ref.pos)
        shown = f"{ref.table}.{ref.name}" if ref.table else ref.name
        raise SqlError(UNDEFINED_COLUMN, f'column "{shown}" does not exist', position=ref.pos)

    def bind(self, expr):
        return transform(expr, lambda node: self.resolve(node) if isinstance(node, ir.ColRef) else None)

    def star_columns(self, star: ir.Star) -> list[ir.Col]:
        cols = []
        for slot, (table_ref, table) in enumerate(self.refs):
            if star.table is None or star.table == table_ref.alias:
                cols.extend(ir.Col(slot, i, c.name, table_ref.alias) for i, c in enumerate(table.columns))
        if star.table is not None and not cols:
            raise SqlError(UNDEFINED_TABLE, f'missing FROM-clause entry for table "{star.table}"')
        if not self.refs:
            raise SqlError("42601", "SELECT * with no tables specified is not valid")
        return cols


def transform(expr, visit):
    """Rebuild ``expr`` bottom-up; ``visit(node)`` may return a replacement (or None)."""
    replacement = visit(expr)
    if replacement is not None:
        return replacement
    if not hasattr(expr, "__dataclass_fields__") or isinstance(expr, (ir.Const, ir.Param, ir.Col)):
        return expr
    changes = {}
    for f in fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, tuple):
            new = tuple(_transform_item(item, visit) for item in value)
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, ir.Default):
            new = transform(value, visit)
        else:
            continue
        if new is not value:
            changes[f.name] = new
    return replace(expr, **changes) if changes else expr


def _transform_item(item, visit):
    if isinstance(item, tuple):
        return tuple(_transform_item(x, visit) for x in item)
    if hasattr(item, "__dataclass_fields__"):
        return transform(item, visit)
    return item


def lookup_table(catalog: CatalogSnapshot, ref: ir.TableRef) -> Table:
    table = catalog.table(ref.name)
    if table is None:
        raise SqlError(UNDEFINED_TABLE, f'relation "{ref.name}" does not exist', position=ref.pos)
    return table


def conjuncts(expr) -> list:
    if expr is None:
        return []
    if isinstance(expr, ir.BoolOp) and expr.op == "and":
        return [c for arg in expr.args for c in conjuncts(arg)]
    return [expr]


def slots_of(expr) -> set[int]:
    return {col.slot for col in columns_of(expr)}


def output_name(expr, alias: str | None) -> str:
    if alias:
        return alias
    if isinstance(expr, (ir.ColRef, ir.Col)):
        return expr.name
    if isinstance(expr, ir.Func):
        return expr.name
    if isinstance(expr, ir.Cast):
        return output_name(expr.arg, None)
    if isinstance(expr, ir.Case):
        return "case"
    return "?column?"


# --- access paths -----------------------------------------------------------------------

@dataclass
class Sarg:
    """A condition usable as a key bound: ``column op value`` (value has no own column)."""

    column: int
    op: str            # = < <= > >= in
    values: tuple      # IR value expressions (one, or the IN list)
    cond: Any          # the conjunct it came from
    uses_outer: bool


@dataclass
class KeyPath:
    kind: str                     # point | range | full
    index: Index | None           # None: the primary key
    keyspace: KeySpace
    key_columns: tuple            # table column per keyspace part (-1: hidden row id)
    eq: list = field(default_factory=list)      # per prefix part: [Compiled value fns]
    low: tuple | None = None      # (Compiled, inclusive)
    high: tuple | None = None
    conds: list = field(default_factory=list)   # IR conjuncts used as index conditions
    sargs: list = field(default_factory=list)
    uses_outer: bool = False

    @property
    def keyspace_name(self) -> str:
        return self.index.name if self.index is not None else ""


def find_sargs(conds: list, slot: int) -> list[Sarg]:
    sargs = []
    for cond in conds:
        for column, op, values in _sarg_forms(cond, slot):
            if any(slot in slots_of(v) or has_aggregate(v) for v in values):
                continue
            outer = any(slots_of(v) for v in values)
            sargs.append(Sarg(column, op, tuple(values), cond, outer))
    return sargs


def _sarg_forms(cond, slot: int):
    if isinstance(cond, ir.BinOp) and cond.op in _FLIP:
        if isinstance(cond.left, ir.Col) and cond.left.slot == slot:
            yield cond.left.column, cond.op, (cond.right,)
        elif isinstance(cond.right, ir.Col) and cond.right.slot == slot:
            yield cond.right.column, _FLIP[cond.op], (cond.left,)
    elif isinstance(cond, ir.Between) and not cond.negated:
        if isinstance(cond.arg, ir.Col) and cond.arg.slot == slot:
            yield cond.arg.column, ">=", (cond.low,)
            yield cond.arg.column, "<=", (cond.high,)
    elif isinstance(cond, ir.InList) and not cond.negated:
        if isinstance(cond.arg, ir.Col) and cond.arg.slot == slot:
            yield cond.arg.column, "in", cond.items


def choose_path(table: Table, sargs: list[Sarg], compile_outer, point_ok: bool = True) -> KeyPath:
    """The best key path: a point lookup, else the longest equality prefix (+ range)."""
    candidates = [(None, table.keyspace, tuple(table.pk) if table.pk else (-1,))]
    for index in table.indexes:
        key_columns = index.columns + (tuple(table.pk) if table.pk else (-1,))
        candidates.append((index, table.index_keyspaces[index.name], key_columns))
    best, best_score = None, None
    for rank, (index, keyspace, key_columns) in enumerate(candidates):
        path = _path_over(index, keyspace, key_columns, sargs, compile_outer)
        is_point = path.kind == "point" and point_ok
        score = (is_point, len(path.eq), path.low is not None or path.high is not None, -rank)
        if best_score is None or score > best_score:
            best, best_score = path, score
    if best.kind == "point" and not point_ok:
        best.kind = "range"
    if not best.eq and best.low is None and best.high is None:
        return KeyPath("full", None, table.keyspace, candidates[0][2])
    return best


def _path_over(index, keyspace, key_columns, sargs, compile_outer) -> KeyPath:
    path = KeyPath("range", index, keyspace, key_columns)
    combinations = 1
    for column in key_columns:
        eq = [s for s in sargs if s.column == column and s.op == "="]
        ins = [s for s in sargs if s.column == column and s.op == "in"]
        chosen = eq[0] if eq else ins[0] if ins else None
        if chosen is None or column < 0:
            break
        combinations *= len(chosen.values)
        if combinations > MAX_IN_COMBINATIONS:
            break
        path.eq.append([compile_outer(v) for v in chosen.values])
        path.conds.append(chosen.cond)
        path.sargs.append(chosen)
    if len(path.eq) == len(key_columns) and index is None:
        path.kind = "point"
    elif len(path.eq) < len(key_columns):
        column = key_columns[len(path.eq)]
        lows = [s for s in sargs if s.column == column and s.op in (">", ">=")]
        highs = [s for s in sargs if s.column == column and s.op in ("<", "<=")]
        if lows:
            path.low = (compile_outer(lows[0].values[0]), lows[0].op == ">=")
            path.conds.append(lows[0].cond)
            path.sargs.append(lows[0])
        if highs:
            path.high = (compile_outer(highs[0].values[0]), highs[0].op == "<=")
            if highs[0].cond not in path.conds:
                path.conds.append(highs[0].cond)
            path.sargs.append(highs[0])
    path.uses_outer = any(s.uses_outer for s in path.sargs)
    return path


# --- plans ------------------------------------------------------------------------------

@dataclass
class SlotPlan:
    """How one FROM table is read."""

    slot: int
    alias: str
    table: Table
    path: KeyPath
    dependent: bool                 # re-read per outer row (index lookup join)
    index_only: bool = True         # no base-row lookup after an index scan
    index_conds: list = field(default_factory=list)     # pushed to the index scan
    storage_conds: list = field(default_factory=list)   # pushed to the base-row scan/lookup
    qp_conds: list = field(default_factory=list)        # evaluated in the QP after transfer
    join_conds: list = field(default_factory=list)      # cross-table, in the QP (read-once slots)
    projection: tuple | None = None  # columns transferred (None: the whole row)
    descending: bool = False
    ordered: bool = False            # the scan's key order serves the ORDER BY
    limit_pushed: bool = False
    point_reads: bool = False        # DML point path: PointRead (full row, QP filter)
    storage_filter: Compiled | None = None
    index_filter: Compiled | None = None
    qp_filter: Compiled | None = None

    @property
    def width(self) -> int:
        return len(self.projection) if self.projection is not None else len(self.table.columns)


@dataclass
class AggSpec:
    name: str                   # count sum min max avg
    arg: Compiled | None        # None: count(*)
    distinct: bool = False
    expr: Any = None


@dataclass
class AggPushdown:
    """A single-table aggregate folded at storage into per-group partial states."""

    group_fns: list
    aggs: list                  # AggSpec over the projected row


@dataclass
class SelectPlan:
    slots: list
    targets: list               # Compiled over the QP row (or the grouped row)
    names: list
    const_filter: Compiled | None = None
    grouped: bool = False
    group_fns: list = field(default_factory=list)
    aggs: list = field(default_factory=list)
    having: Compiled | None = None
    agg_pushdown: AggPushdown | None = None
    order: list = field(default_factory=list)   # (Compiled, descending, nulls_first)
    order_satisfied: bool = False
    distinct: bool = False
    limit: Compiled | None = None
    offset: Compiled | None = None
    for_update: bool = False
    group_exprs: list = field(default_factory=list)
    agg_exprs: list = field(default_factory=list)


@dataclass
class InsertPlan:
    table: Table
    columns: tuple               # target positions for each VALUES item
    rows: list                   # [[Compiled or None (default)]]
    defaults: list               # per table column: Compiled default or None
    select: SelectPlan | None = None
    returning: list = field(default_factory=list)
    names: list = field(default_factory=list)
    on_conflict_do_nothing: bool = False


@dataclass
class ModifyPlan:
    """UPDATE or DELETE: read the target rows through ``scan``, then write."""

    kind: str
    table: Table
    scan: SlotPlan
    assignments: list = field(default_factory=list)   # (column, Compiled over the old row)
    returning: list = field(default_factory=list)
    names: list = field(default_factory=list)


# --- layouts ----------------------------------------------------------------------------

class Layout:
    """Offsets of each slot's projected row in the QP row."""

    def __init__(self, slots: list[SlotPlan]):
        self.offsets, self.positions = [], []
        offset = 0
        for slot in slots:
            self.offsets.append(offset)
            columns = slot.projection if slot.projection is not None else range(len(slot.table.columns))
            self.positions.append({c: i for i, c in enumerate(columns)})
            offset += slot.width
        self.width = offset

    def qp(self, upto: int):
        def slot_of(col: ir.Col) -> int:
            assert col.slot <= upto, "column of a later table"
            return self.offsets[col.slot] + self.positions[col.slot][col.column]
        return slot_of

    def storage(self, slot: int):
        def slot_of(col: ir.Col) -> int:
            if col.slot == slot:
                return self.offsets[slot] + col.column
            assert col.slot < slot
            return self.offsets[col.slot] + self.positions[col.slot][col.column]
        return slot_of

    def index(self, slot: int, key_columns: tuple):
        where = {c: i for i, c in enumerate(key_columns) if c >= 0}

        def slot_of(col: ir.Col) -> int:
            if col.slot == slot:
                return self.offsets[slot] + where[col.column]
            return self.offsets[col.slot] + self.positions[col.slot][col.column]
        return slot_of


def _compile_all(conds: list, slot_of) -> Compiled | None:
    if not conds:
        return None
    expr = conds[0] if len(conds) == 1 else ir.BoolOp("and", tuple(conds))
    return compile_expr(expr, slot_of)


# --- SELECT -----------------------------------------------------------------------------

class SelectPlanner:
    """Plans one bound SELECT (also the read side of INSERT ... SELECT)."""

    def __init__(self, catalog: CatalogSnapshot, stmt: ir.Select):
        self.stmt = stmt
        self.scope = Scope([(ref, lookup_table(catalog, ref)) for ref in stmt.tables])
        self.n = len(stmt.tables)

    def plan(self) -> SelectPlan:
        stmt, scope = self.stmt, self.scope
        where = [scope.bind(c) for c in conjuncts(stmt.where)]
        for cond in where:
            if has_aggregate(cond):
                raise SqlError(GROUPING_ERROR, "aggregate functions are not allowed in WHERE")
        targets, names = self._targets()
        group_exprs = [self._group_expr(g, targets) for g in stmt.group_by]
        having = scope.bind(stmt.having) if stmt.having is not None else None
        order_items = [(self._order_expr(item, targets, names), item) for item in stmt.order_by]
        agg_exprs = _aggregates(targets + ([having] if having is not None else [])
                                + [e for e, _ in order_items if not isinstance(e, int)])
        grouped = bool(group_exprs or agg_exprs)
        if grouped and stmt.for_update:
            raise SqlError("0A000", "FOR UPDATE is not allowed with aggregate functions")
        const_conds = [c for c in where if not slots_of(c)] if self.n else where
        slots = self._slots(where, const_conds, targets, group_exprs, having, order_items, agg_exprs)
        plan = SelectPlan(slots, [], names, distinct=stmt.distinct, for_update=stmt.for_update,
                          grouped=grouped, group_exprs=group_exprs, agg_exprs=agg_exprs)
        layout = Layout(slots)
        self._compile_slots(slots, layout)
        plan.const_filter = _compile_all(const_conds, _no_columns)
        self._finish(plan, layout, targets, group_exprs, agg_exprs, having, order_items)
        return plan

    def _targets(self) -> tuple[list, list]:
        targets, names = [], []
        for expr, alias in self.stmt.targets:
            if isinstance(expr, ir.Star):
                for col in self.scope.star_columns(expr):
                    targets.append(col)
                    names.append(col.name)
            else:
                targets.append(self.scope.bind(expr))
                names.append(output_name(expr, alias))
        return targets, names

    def _group_expr(self, expr, targets):
        if isinstance(expr, ir.Const) and isinstance(expr.value, int):
            return self._ordinal(expr.value, targets, "GROUP BY")
        if isinstance(expr, ir.ColRef) and expr.table is None:
            for (target, alias), bound in zip(self.stmt.targets, targets):
                if alias == expr.name and not self._is_column(expr.name):
                    return bound
        bound = self.scope.bind(expr)
        if has_aggregate(bound):
            raise SqlError(GROUPING_ERROR, "aggregate functions are not allowed in GROUP BY")
        return bound

    def _is_column(self, name: str) -> bool:
        return any(name in table.positions for _, table in self.scope.refs)

    def _ordinal(self, number: int, targets, clause: str):
        if not 1 <= number <= len(targets):
            raise SqlError("42P10", f"{clause} position {number} is not in select list")
        return targets[number - 1]

    def _order_expr(self, item: ir.OrderItem, targets, names):
        expr = item.expr
        if isinstance(expr, ir.Const) and isinstance(expr.value, int):
            return self._ordinal(expr.value, targets, "ORDER BY")
        if isinstance(expr, ir.ColRef) and expr.table is None and expr.name in names:
            return targets[names.index(expr.name)]
        return self.scope.bind(expr)

    # -- per-table access ---------------------------------------------------------------
    def _slots(self, where, const_conds, targets, group_exprs, having, order_items, agg_exprs):
        assigned = {i: [] for i in range(self.n)}
        for cond in where:
            used = slots_of(cond)
            if used:
                assigned[max(used)].append(cond)
        slots = []
        for slot, (ref, table) in enumerate(self.scope.refs):
            slots.append(self._slot_plan(slot, ref.alias, table, assigned[slot], point_ok=True))
        self._assign_projections(slots, targets, group_exprs, having, order_items)
        return slots

    def _slot_plan(self, slot: int, alias: str, table: Table, conds: list, point_ok: bool) -> SlotPlan:
        sargs = find_sargs(conds, slot)
        path = choose_path(table, sargs, lambda e: e, point_ok)  # compiled later
        dependent = path.uses_outer
        local = [c for c in conds if slots_of(c) <= {slot}]
        cross = [c for c in conds if not slots_of(c) <= {slot}]
        plan = SlotPlan(slot, alias, table, path, dependent)
        candidates = conds if dependent else local
        if not dependent:
            plan.join_conds = cross
        if not dependent and path.uses_outer:
            raise AssertionError("read-once slot with an outer-dependent path")
        index_columns = set(path.key_columns) if path.index is not None else set()
        for cond in candidates:
            if cond in path.conds:
                continue
            if not pushable(cond):
                plan.qp_conds.append(cond)
            elif path.index is not None and {c.column for c in columns_of(cond) if c.slot == slot} <= index_columns:
                plan.index_conds.append(cond)
            else:
                plan.storage_conds.append(cond)
        return plan

    def _assign_projections(self, slots, targets, group_exprs, having, order_items):
        """Each table transfers only the columns the QP reads after the scan: those of the
        output, of QP filters, and those later tables' lookups take from the outer row."""
        after_scan = list(targets) + list(group_exprs) + ([having] if having is not None else [])
        after_scan += [e for e, _ in order_items]
        for plan in slots:
            after_scan += plan.qp_conds + plan.join_conds
        outer_refs = [(later.slot, e) for later in slots if later.dependent
                      for e in later.storage_conds + later.index_conds + later.path.conds]
        for plan in slots:
            needed = {col.column for e in after_scan for col in columns_of(e) if col.slot == plan.slot}
            needed |= {col.column for user, e in outer_refs for col in columns_of(e)
                       if col.slot == plan.slot and user > plan.slot}
            needed = sorted(needed)
            plan.projection = None if len(needed) == len(plan.table.columns) else tuple(needed)
            if plan.path.index is not None:
                covered = set(plan.path.key_columns)
                plan.index_only = not plan.storage_conds and set(needed) <= covered

    def _compile_slots(self, slots, layout: Layout) -> None:
        for plan in slots:
            _compile_slot(plan, layout)

    # -- after the scan -----------------------------------------------------------------
    def _finish(self, plan: SelectPlan, layout, targets, group_exprs, agg_exprs, having, order_items):
        stmt = self.stmt
        final = layout.qp(self.n - 1) if self.n else (lambda col: 0)
        if plan.grouped:
            overrides = {expr: i for i, expr in enumerate(group_exprs)}
            overrides.update({agg: len(group_exprs) + j for j, agg in enumerate(agg_exprs)})
            for expr in targets + ([having] if having is not None else []) + [e for e, _ in order_items]:
                _check_grouped(expr, group_exprs)
            plan.group_fns = [compile_expr(e, final) for e in group_exprs]
            plan.aggs = [_agg_spec(a, final) for a in agg_exprs]
            row_fn = lambda e: compile_expr(e, final, overrides)  # noqa: E731
            plan.having = row_fn(having) if having is not None else None
            self._try_agg_pushdown(plan, group_exprs, agg_exprs)
        else:
            if having is not None:
                raise SqlError(GROUPING_ERROR, "HAVING requires GROUP BY or an aggregate")
            row_fn = lambda e: compile_expr(e, final)  # noqa: E731
        plan.targets = [row_fn(t) for t in targets]
        plan.order = [(row_fn(e), item.descending,
                       item.nulls_first if item.nulls_first is not None else item.descending)
                      for e, item in order_items]
        plan.limit = compile_expr(stmt.limit, final) if stmt.limit is not None else None
        plan.offset = compile_expr(stmt.offset, final) if stmt.offset is not None else None
        for clause in (stmt.limit, stmt.offset):
            if clause is not None and columns_of(self.scope.bind(clause)):
                raise SqlError("42P10", "argument of LIMIT must not contain variables")
        self._order_and_limit(plan, [e for e, _ in order_items], order_items)

    def _order_and_limit(self, plan: SelectPlan, order_exprs, order_items) -> None:
        """Use the scan's key order for ORDER BY, and push LIMIT when nothing drops rows."""
        if self.n != 1 or plan.grouped:
            return
        slot = plan.slots[0]
        satisfied, descending = _order_from_path(slot, order_exprs, order_items)
        if not satisfied:
            return
        plan.order_satisfied = True
        slot.descending = descending
        slot.ordered = bool(order_exprs)
        lookups_filter = slot.path.index is not None and not slot.index_only and slot.storage_conds
        if plan.limit is not None and not plan.distinct and not slot.qp_conds and \
                not lookups_filter and slot.path.kind != "point":
            slot.limit_pushed = True

    def _try_agg_pushdown(self, plan: SelectPlan, group_exprs, agg_exprs) -> None:
        if self.n != 1:
            return
        slot = plan.slots[0]
        if slot.qp_conds or (slot.path.index is not None and not slot.index_only):
            return
        if any(a.distinct for a in agg_exprs) or not all(pushable(e) for e in group_exprs):
            return
        if not all(all(pushable(arg) for arg in a.args) for a in agg_exprs):
            return
        if slot.path.index is not None:
            return  # aggregates over index entries: kept in the QP (rare in workloads)
        projected = Layout([slot]).qp(0)
        plan.agg_pushdown = AggPushdown([compile_expr(e, projected) for e in group_exprs],
                                        [_agg_spec(a, projected) for a in agg_exprs])


def _no_columns(col):
    raise AssertionError(f"no columns are in scope here: {col}")


def _compile_slot(plan: SlotPlan, layout: Layout) -> None:
    slot = plan.slot
    outer = layout.qp(slot - 1) if slot else _no_columns
    path = plan.path
    path.eq = [[compile_expr(v, outer) for v in sarg.values] for sarg in path.sargs[:len(path.eq)]]
    if path.low is not None:
        sarg = next(s for s in path.sargs[len(path.eq):] if s.op in (">", ">="))
        path.low = (compile_expr(sarg.values[0], outer), sarg.op == ">=")
    if path.high is not None:
        sarg = next(s for s in path.sargs[len(path.eq):] if s.op in ("<", "<="))
        path.high = (compile_expr(sarg.values[0], outer), sarg.op == "<=")
    storage_slot = layout.storage(slot)
    # Index conditions are rechecked at storage: a loose bound only widens the range.
    recheck = [c for c in path.conds if c not in plan.storage_conds]
    if path.index is None or not plan.index_only:
        base = plan.storage_conds + (recheck if path.index is None else [])
        plan.storage_filter = _compile_all(base, storage_slot)
    if path.index is not None:
        plan.index_filter = _compile_all(plan.index_conds + recheck,
                                         layout.index(slot, path.key_columns))
    plan.qp_filter = _compile_all(plan.qp_conds + plan.join_conds, layout.qp(slot))


def _order_from_path(slot: SlotPlan, order_exprs, order_items) -> tuple[bool, bool]:
    if not order_exprs:
        return True, False
    directions = {item.descending for _, item in order_items}
    if len(directions) != 1:
        return False, False
    descending = directions.pop()
    for _, item in order_items:
        if item.nulls_first is not None and item.nulls_first != descending:
            return False, False
    key_columns = slot.path.key_columns[len(slot.path.eq):]
    if slot.path.kind == "full":
        key_columns = slot.path.key_columns
    if len(order_exprs) > len(key_columns):
        return False, False
    for expr, column in zip(order_exprs, key_columns):
        if not (isinstance(expr, ir.Col) and expr.slot == slot.slot and expr.column == column):
            return False, False
    return True, descending


def _aggregates(exprs) -> list:
    found = []
    for expr in exprs:
        for node in walk(expr):
            if isinstance(node, ir.Func) and node.name in ir.AGGREGATES:
                for arg in node.args:
                    if has_aggregate(arg):
                        raise SqlError(GROUPING_ERROR, "aggregate function calls cannot be nested")
                if node not in found:
                    found.append(node)
    return found


def _agg_spec(agg: ir.Func, slot_of) -> AggSpec:
    if agg.star:
        if agg.name != "count":
            raise SqlError(SYNTAX_ERROR, f"{agg.name}(*) is not valid", position=agg.pos)
        return AggSpec("count", None, expr=agg)
    if len(agg.args) != 1:
        raise SqlError("42883", f"function {agg.name} takes one argument", position=agg.pos)
    return AggSpec(agg.name, compile_expr(agg.args[0], slot_of), agg.distinct, agg)


def _check_grouped(expr, group_exprs) -> None:
    """Every column outside an aggregate must be a GROUP BY expression."""
    if expr in group_exprs:
        return
    if isinstance(expr, ir.Func) and expr.name in ir.AGGREGATES:
        return
    if isinstance(expr, ir.Col):
        raise SqlError(GROUPING_ERROR, f'column "{expr.qualifier}.{expr.name}" must appear in the '
                                       "GROUP BY clause or be used in an aggregate function")
    for child in children(expr):
        _check_grouped(child, group_exprs)


# --- INSERT, UPDATE, DELETE ---------------------------------------------------------------

def plan_insert(catalog: CatalogSnapshot, stmt: ir.Insert) -> InsertPlan:
    table = lookup_table(catalog, stmt.table)
    if stmt.columns is None:
        positions = tuple(range(len(table.columns)))
    else:
        positions = []
        for name in stmt.columns:
            position = table.positions.get(name)
            if position is None:
                raise SqlError(UNDEFINED_COLUMN, f'column "{name}" of relation "{table.name}" does not exist')
            if position in positions:
                raise SqlError("42701", f'column "{name}" specified more than once')
            positions.append(position)
        positions = tuple(positions)
    no_columns = _no_columns
    empty_scope = Scope([])
    rows = []
    for values in stmt.rows:
        if len(values) > len(positions):
            raise SqlError(SYNTAX_ERROR, "INSERT has more expressions than target columns")
        if len(values) < len(positions) and stmt.columns is not None:
            raise SqlError(SYNTAX_ERROR, "INSERT has more target columns than expressions")
        rows.append([None if isinstance(v, ir.Default) else compile_expr(empty_scope.bind(v), no_columns)
                     for v in values])
    defaults = [compile_expr(c.default, no_columns) if c.default is not None else None
                for c in table.columns]
    plan = InsertPlan(table, positions, rows, defaults,
                      on_conflict_do_nothing=stmt.on_conflict_do_nothing)
    if stmt.conflict_target and [table.columns[i].name for i in table.pk] != list(stmt.conflict_target):
        raise SqlError("42P10", "there is no unique or exclusion constraint matching the ON "
                                "CONFLICT specification (only the primary key is supported)")
    if stmt.select is not None:
        plan.select = SelectPlanner(catalog, stmt.select).plan()
        if len(plan.select.targets) != len(positions):
            raise SqlError(SYNTAX_ERROR, "INSERT has more target columns than expressions"
                           if len(plan.select.targets) < len(positions)
                           else "INSERT has more expressions than target columns")
    plan.returning, plan.names = _returning(stmt.table, table, stmt.returning)
    return plan


def _returning(ref: ir.TableRef, table: Table, items) -> tuple[list, list]:
    scope = Scope([(ref, table)])
    slot_of = lambda col: col.column  # noqa: E731
    fns, names = [], []
    for expr, alias in items:
        if isinstance(expr, ir.Star):
            for col in scope.star_columns(expr):
                fns.append(compile_expr(col, slot_of))
                names.append(col.name)
            continue
        bound = scope.bind(expr)
        if has_aggregate(bound):
            raise SqlError(GROUPING_ERROR, "aggregate functions are not allowed in RETURNING")
        fns.append(compile_expr(bound, slot_of))
        names.append(output_name(expr, alias))
    return fns, names


def plan_modify(catalog: CatalogSnapshot, stmt) -> ModifyPlan:
    """UPDATE or DELETE: the target rows are read whole (their post-image is written)."""
    table = lookup_table(catalog, stmt.table)
    scope = Scope([(stmt.table, table)])
    where = [scope.bind(c) for c in conjuncts(stmt.where)]
    for cond in where:
        if has_aggregate(cond):
            raise SqlError(GROUPING_ERROR, "aggregate functions are not allowed in WHERE")
    planner = SelectPlanner.__new__(SelectPlanner)
    planner.n = 1
    const = [c for c in where if not slots_of(c)]
    scan = planner._slot_plan(0, stmt.table.alias, table, [c for c in where if slots_of(c)],
                              point_ok=True)
    scan.qp_conds += const
    scan.projection = None
    scan.index_only = scan.path.index is None
    scan.point_reads = scan.path.kind == "point"
    if scan.point_reads:  # PointRead returns the whole row: every filter runs in the QP
        scan.qp_conds = scan.storage_conds + scan.qp_conds + scan.path.conds
        scan.storage_conds = []
    _compile_slot(scan, Layout([scan]))
    plan = ModifyPlan(stmt.kind, table, scan)
    row_slot = lambda col: col.column  # noqa: E731
    if stmt.kind == "update":
        seen = set()
        for name, value in stmt.assignments:
            position = table.positions.get(name)
            if position is None:
                raise SqlError(UNDEFINED_COLUMN, f'column "{name}" of relation "{table.name}" does not exist')
            if position in seen:
                raise SqlError("42601", f'multiple assignments to same column "{name}"')
            seen.add(position)
            if isinstance(value, ir.Default):
                default = table.columns[position].default
                fn = compile_expr(default, row_slot) if default is not None else (lambda row, ctx: None)
            else:
                bound = scope.bind(value)
                if has_aggregate(bound):
                    raise SqlError(GROUPING_ERROR, "aggregate functions are not allowed in UPDATE")
                fn = compile_expr(bound, row_slot)
            plan.assignments.append((position, fn))
    plan.returning, plan.names = _returning(stmt.table, table, stmt.returning)
    return plan

