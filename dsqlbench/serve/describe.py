"""What a statement returns and takes, before or after it runs: RowDescription fields
and parameter types for ``dsqlbench serve``.

Role: the engine's results carry values, not types. PostgreSQL clients need the type
OID of every result column (and asyncpg of every parameter, from Describe) up front.
Here the statement's IR is read against the catalog: a column reference has its
column's type, a cast its target type, ``count`` is int8, a comparison is boolean, and
so on; what the IR cannot tell is taken from the values once the statement has run,
else ``text``.

Invariants: only built-in OIDs (``serve.pgtypes``); the same statement and catalog give
the same description; nothing here runs a statement or touches storage.
"""

from __future__ import annotations

from decimal import Decimal

from dsqlbench.serve import pgtypes as T
from dsqlbench.serve.messages import Field
from dsqlbench.sql import ir

_COMPARISONS = {"=", "<>", "!=", "<", "<=", ">", ">=", "like", "notlike", "ilike", "notilike"}


class _Scope:
    def __init__(self, catalog, tables):
        self.tables = []
        for ref in tables:
            table = catalog.table(ref.name)
            if table is not None:
                self.tables.append((ref.alias or ref.name, ref.name, table))

    def column(self, ref: ir.ColRef):
        for alias, name, table in self.tables:
            if ref.table in (None, alias, name):
                position = table.positions.get(ref.name) if hasattr(table, "positions") else None
                if position is None:
                    column = table.column(ref.name)
                    if column is None:
                        continue
                    position = table.columns.index(column)
                return table, position
        return None


def _column_field(name: str, table, position: int) -> Field:
    column = table.columns[position]
    oid = T.oid_of(column.sql_type)
    return Field(name, oid, T.TYPE_SIZE.get(oid, -1), T.type_modifier(column.sql_type),
                 table.oid, position + 1)


def expr_oid(expr, scope: _Scope) -> int | None:
    """The OID of an expression's value, or None when only its value can tell."""
    if isinstance(expr, ir.ColRef):
        found = scope.column(expr)
        return T.oid_of(found[0].columns[found[1]].sql_type) if found else None
    if isinstance(expr, ir.Cast):
        return T.oid_of(expr.sql_type)
    if isinstance(expr, ir.Const):
        value = expr.value
        if isinstance(value, bool):
            return T.BOOL
        if isinstance(value, int):
            return T.INT4 if -2**31 <= value < 2**31 else T.INT8
        if isinstance(value, Decimal):
            return T.NUMERIC
        if isinstance(value, str):
            return T.TEXT
        return None
    if isinstance(expr, (ir.BoolOp, ir.IsNull, ir.InList, ir.Between)) or \
            (isinstance(expr, ir.Unary) and expr.op == "not"):
        return T.BOOL
    if isinstance(expr, ir.BinOp):
        return _binop_oid(expr, scope)
    if isinstance(expr, ir.Func):
        return _func_oid(expr, scope)
    return None


def _binop_oid(expr: ir.BinOp, scope: _Scope) -> int | None:
    if expr.op in _COMPARISONS:
        return T.BOOL
    if expr.op == "||":
        return T.TEXT
    left, right = expr_oid(expr.left, scope), expr_oid(expr.right, scope)
    ints = (T.INT2, T.INT4, T.INT8)
    if left in ints and right in ints:
        return max(left, right, key=ints.index)
    return None


def _func_oid(expr: ir.Func, scope: _Scope) -> int | None:
    name = expr.name.lower()
    if name == "count":
        return T.INT8
    arg = expr_oid(expr.args[0], scope) if expr.args else None
    if name in ("min", "max", "coalesce", "abs"):
        return arg
    if name == "sum":
        return {T.INT2: T.INT8, T.INT4: T.INT8, T.FLOAT8: T.FLOAT8}.get(arg, T.NUMERIC) if arg else None
    if name == "avg":
        return T.FLOAT8 if arg == T.FLOAT8 else T.NUMERIC
    if name in ("lower", "upper", "concat", "substr", "substring", "trim", "version"):
        return T.TEXT
    if name in ("length", "char_length"):
        return T.INT4
    return None


def _target_fields(targets, scope: _Scope, names: list | None) -> list:
    """``(Field or None-typed name)`` per output column, Star expanded."""
    out = []
    for expr, alias in targets:
        if isinstance(expr, ir.Star):
            for alias_name, _name, table in scope.tables:
                if expr.table in (None, alias_name):
                    out.extend(_column_field(c.name, table, i) for i, c in enumerate(table.columns))
            continue
        name = alias or (expr.name if isinstance(expr, ir.ColRef) else None)
        if isinstance(expr, ir.ColRef):
            found = scope.column(expr)
            if found:
                out.append(_column_field(name, *found))
                continue
        out.append(Field(name or "?column?", expr_oid(expr, scope) or 0))
    if names is not None and len(names) == len(out):
        out = [Field(n, f.type_oid, f.type_size, f.type_modifier, f.table_oid, f.column_number)
               for n, f in zip(names, out)]
    return out


def statement_fields(stmt, catalog, names: list | None = None) -> list | None:
    """The result columns of ``stmt`` (OID 0 where unknown), or None if it returns no rows."""
    if isinstance(stmt, ir.Explain):
        return [Field("QUERY PLAN", T.TEXT)]
    if isinstance(stmt, ir.Select):
        return _target_fields(stmt.targets, _Scope(catalog, stmt.tables), names)
    if isinstance(stmt, (ir.Insert, ir.Update, ir.Delete)) and stmt.returning:
        return _target_fields(stmt.returning, _Scope(catalog, [stmt.table]), names)
    return None


def finish_fields(fields: list, rows: list) -> list:
    """Unknown OIDs (0) settled from the first non-null value of each column, else text."""
    out = []
    for i, f in enumerate(fields):
        oid = f.type_oid
        if oid == 0:
            oid = next((T.oid_of_value(row[i]) for row in rows if row[i] is not None), None) or T.TEXT
            f = Field(f.name, oid, T.TYPE_SIZE.get(oid, -1), -1, f.table_oid, f.column_number)
        out.append(f)
    return out


def fields_for_values(names: list, rows: list) -> list:
    return finish_fields([Field(str(n), 0) for n in names], rows)


# --- parameters -------------------------------------------------------------------------

def param_oids(stmt, catalog, count: int, declared: tuple) -> list:
    """Each ``$n``'s type: what Parse declared, else what its context implies, else text."""
    inferred: dict[int, int] = {}
    tables = getattr(stmt, "tables", None) or ([stmt.table] if hasattr(stmt, "table") else [])
    scope = _Scope(catalog, tables)
    _walk_params(stmt, scope, inferred)
    if isinstance(stmt, ir.Insert):
        _insert_params(stmt, scope, inferred)
    out = []
    for n in range(1, count + 1):
        given = declared[n - 1] if n - 1 < len(declared) else 0
        out.append(given or inferred.get(n, T.TEXT))
    return out


def _walk_params(node, scope: _Scope, inferred: dict) -> None:
    if isinstance(node, ir.Cast) and isinstance(node.arg, ir.Param):
        inferred.setdefault(node.arg.number, T.oid_of(node.sql_type))
    elif isinstance(node, ir.BinOp):
        _pair(node.left, node.right, scope, inferred)
        _pair(node.right, node.left, scope, inferred)
    elif isinstance(node, (ir.InList, ir.Between)):
        others = node.items if isinstance(node, ir.InList) else (node.low, node.high)
        for other in others:
            _pair(other, node.arg, scope, inferred)
    elif isinstance(node, ir.Update):
        for name, value in node.assignments:
            _pair(value, ir.ColRef(None, name), scope, inferred)
    elif isinstance(node, ir.Select):
        for clause in (node.limit, node.offset):
            if isinstance(clause, ir.Param):
                inferred.setdefault(clause.number, T.INT8)
    if isinstance(node, (tuple, list)):
        for item in node:
            _walk_params(item, scope, inferred)
    elif hasattr(node, "__dataclass_fields__") and not isinstance(node, (ir.Const, ir.Param)):
        for name in node.__dataclass_fields__:
            _walk_params(getattr(node, name), scope, inferred)


def _pair(param, other, scope: _Scope, inferred: dict) -> None:
    if isinstance(param, ir.Param):
        oid = expr_oid(other, scope)
        if oid:
            inferred.setdefault(param.number, oid)


def _insert_params(stmt: ir.Insert, scope: _Scope, inferred: dict) -> None:
    if not scope.tables:
        return
    table = scope.tables[0][2]
    names = stmt.columns or [c.name for c in table.columns]
    for row in stmt.rows:
        for name, value in zip(names, row):
            column = table.column(name)
            if isinstance(value, ir.Param) and column is not None:
                inferred.setdefault(value.number, T.oid_of(column.sql_type))
