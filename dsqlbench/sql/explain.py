"""EXPLAIN: the plan as text, in the shape of DSQL's EXPLAIN.

Role: render a plan so a user sees what crosses the network: which keyspace is read
(``Index Only Scan using t_pkey``, ``Index Scan using ix``, ``Full Scan (btree-table)``),
the key range (``Index Cond``), what storage filters and projects (``-> Storage Scan``
with ``Filters`` and ``Projections``, ``-> Storage Lookup`` for base rows fetched after
an index scan), what the QP filters after transfer (``Filter``), and aggregates folded
at storage (``Aggregates``). Rendering only: EXPLAIN ANALYZE, which also runs the
statement, is the session's (``SqlSession._explain``), so this module never imports the
session.
"""

from __future__ import annotations

from decimal import Decimal

from dsqlbench.sql import ir
from dsqlbench.sql.planner import InsertPlan, ModifyPlan, SelectPlan, SlotPlan

def plan_lines(plan) -> list[str]:
    out: list[str] = []
    if isinstance(plan, SelectPlan):
        _select(plan, out)
    elif isinstance(plan, InsertPlan):
        out.append(f"Insert on {plan.table.name}")
        if plan.select is not None:
            sub: list[str] = []
            _select(plan.select, sub)
            _child(out, sub, 1)
        else:
            out.append(f"  ->  Values Scan  (rows={len(plan.rows)})")
    elif isinstance(plan, ModifyPlan):
        out.append(f"{plan.kind.capitalize()} on {plan.table.name}")
        sub = []
        _scan(plan.scan, sub, qualify=False, multi=False)
        _child(out, sub, 1)
    return out


def _child(out: list, lines: list, depth: int) -> None:
    pad = "  " * (2 * depth - 1)
    out.append(f"{pad}->  {lines[0]}")
    out.extend(f"{pad}    {line}" for line in lines[1:])


def _select(plan: SelectPlan, out: list) -> None:
    layers = []
    qualify = len(plan.slots) > 1
    if plan.limit is not None:
        layers.append(["Limit"])
    if plan.distinct:
        layers.append(["Unique"])
    if plan.order and not plan.order_satisfied:
        layers.append(["Sort"])
    if plan.grouped and plan.agg_pushdown is None:
        node = "HashAggregate" if plan.group_exprs else "Aggregate"
        lines = [node]
        if plan.group_exprs:
            lines.append("  Group Key: " + ", ".join(deparse(e, qualify) for e in plan.group_exprs))
        layers.append(lines)
    elif plan.agg_pushdown is not None:
        node = "HashAggregate" if plan.group_exprs else "Aggregate"
        layers.append([f"{node} (partial aggregates from storage)"])
    if not plan.slots:
        body = ["Result"]
    elif len(plan.slots) == 1:
        body = []
        _scan(plan.slots[0], body, qualify, multi=False, pushdown=plan)
    else:
        body = _join(plan.slots, qualify)
    lines = body
    for layer in reversed(layers):
        nested = list(layer)
        _child(nested, lines, 1)
        lines = nested
    out.extend(lines)


def _join(slots: list, qualify: bool) -> list:
    left = []
    _scan(slots[0], left, qualify, multi=True)
    for slot in slots[1:]:
        right = []
        _scan(slot, right, qualify, multi=True)
        node = ["Nested Loop"]
        if slot.join_conds:
            node.append("  Join Filter: " + _conds(slot.join_conds, qualify))
        _child(node, left, 1)
        if not slot.dependent:
            right = ["Materialize"] + _indent_child(right)
        _child(node, right, 1)
        left = node
    return left


def _indent_child(lines: list) -> list:
    return [f"  ->  {lines[0]}"] + [f"      {line}" for line in lines[1:]]


def _scan(slot: SlotPlan, out: list, qualify: bool, multi: bool, pushdown: SelectPlan | None = None) -> None:
    table, path = slot.table, slot.path
    name = table.name if slot.alias == table.name else f"{table.name} {slot.alias}"
    keyspace = path.index.name if path.index is not None else table.pk_name
    backward = " Backward" if slot.descending else ""
    index_cond = _conds(path.conds, qualify) if path.conds else None
    qp_filter = slot.qp_conds
    if slot.point_reads:
        out.append(f"Index Scan using {keyspace} on {name}")
        if index_cond:
            out.append(f"  Index Cond: {index_cond}")
        _lookup(out, table, None, [])
        return
    full = path.kind == "full" and not slot.ordered  # an ordered full range reads the pkey
    if full:
        out.append(f"Full Scan (btree-table) on {name}")
    elif path.index is None or slot.index_only:
        out.append(f"Index Only Scan{backward} using {keyspace} on {name}")
    else:
        out.append(f"Index Scan{backward} using {keyspace} on {name}")
    if index_cond:
        out.append(f"  Index Cond: {index_cond}")
    if qp_filter:
        out.append(f"  Filter: {_conds(qp_filter, qualify)}")
    storage_target = table.name if full else keyspace
    out.append(f"  ->  Storage Scan on {storage_target}")
    if path.index is None:
        if slot.projection is not None or pushdown is not None and pushdown.agg_pushdown:
            out.append(f"        Projections: {_projection(table, slot.projection)}")
        if slot.storage_conds:
            out.append(f"        Filters: {_conds(slot.storage_conds, qualify)}")
        if pushdown is not None and pushdown.agg_pushdown is not None:
            out.append("        Aggregates: " + ", ".join(deparse(a, qualify) for a in pushdown.agg_exprs))
            if pushdown.group_exprs:
                out.append("        Group Key: " + ", ".join(deparse(e, qualify) for e in pushdown.group_exprs))
    elif slot.index_conds:
        out.append(f"        Filters: {_conds(slot.index_conds, qualify)}")
    if slot.limit_pushed:
        out.append("        Limit: pushed to storage")
    out.append(f"        ->  B-Tree Scan on {storage_target}")
    if index_cond:
        out.append(f"              Index Cond: {index_cond}")
    if path.index is not None and not slot.index_only:
        _lookup(out, table, slot.projection, slot.storage_conds, qualify)


def _lookup(out: list, table, projection, conds, qualify: bool = False) -> None:
    out.append(f"  ->  Storage Lookup on {table.name}")
    if projection is not None:
        out.append(f"        Projections: {_projection(table, projection)}")
    if conds:
        out.append(f"        Filters: {_conds(conds, qualify)}")
    out.append(f"        ->  B-Tree Lookup on {table.name}")


def _projection(table, projection) -> str:
    columns = projection if projection is not None else range(len(table.columns))
    return ", ".join(table.columns[i].name for i in columns) or "(none)"


def _conds(conds: list, qualify: bool) -> str:
    if len(conds) == 1:
        return _wrap(deparse(conds[0], qualify))
    return "(" + " AND ".join(_wrap(deparse(c, qualify)) for c in conds) + ")"


def _wrap(text: str) -> str:
    return text if text.startswith("(") and text.endswith(")") else f"({text})"


def deparse(expr, qualify: bool = False) -> str:
    """SQL text of a bound expression (for plans)."""
    d = lambda e: deparse(e, qualify)  # noqa: E731
    if isinstance(expr, ir.Const):
        return _literal(expr.value)
    if isinstance(expr, ir.Param):
        return f"${expr.number}"
    if isinstance(expr, ir.Col):
        return f"{expr.qualifier}.{expr.name}" if qualify and expr.qualifier else expr.name
    if isinstance(expr, ir.ColRef):
        return f"{expr.table}.{expr.name}" if expr.table else expr.name
    if isinstance(expr, ir.BinOp):
        op = {"like": "~~", "notlike": "!~~", "ilike": "~~*", "notilike": "!~~*"}.get(expr.op, expr.op)
        return f"({d(expr.left)} {op} {d(expr.right)})"
    if isinstance(expr, ir.Unary):
        return f"(NOT {d(expr.arg)})" if expr.op == "not" else f"({expr.op}{d(expr.arg)})"
    if isinstance(expr, ir.BoolOp):
        return "(" + f" {expr.op.upper()} ".join(d(a) for a in expr.args) + ")"
    if isinstance(expr, ir.InList):
        items = ", ".join(d(i) for i in expr.items)
        return f"({d(expr.arg)} {'NOT IN' if expr.negated else 'IN'} ({items}))"
    if isinstance(expr, ir.Between):
        word = "NOT BETWEEN" if expr.negated else "BETWEEN"
        return f"({d(expr.arg)} {word} {d(expr.low)} AND {d(expr.high)})"
    if isinstance(expr, ir.IsNull):
        return f"({d(expr.arg)} IS {'NOT ' if expr.negated else ''}NULL)"
    if isinstance(expr, ir.Func):
        if expr.star:
            return f"{expr.name}(*)"
        return f"{expr.name}({'DISTINCT ' if expr.distinct else ''}{', '.join(d(a) for a in expr.args)})"
    if isinstance(expr, ir.Case):
        whens = " ".join(f"WHEN {d(c)} THEN {d(r)}" for c, r in expr.whens)
        return f"CASE {whens} ELSE {d(expr.default)} END"
    if isinstance(expr, ir.Cast):
        return f"({d(expr.arg)})::{expr.sql_type}"
    return repr(expr)


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal, float)):
        return str(value)
    text = str(value).replace("'", "''")
    return f"'{text}'"
