"""Expressions: bound IR compiled into Python closures ``fn(row, ctx) -> value``.

Role: the planner binds column references to positions, then compiles each expression
once per plan; executing a statement only calls closures. ``row`` is a tuple (one
table's row, or the concatenation of joined rows, or a grouped row), ``ctx`` the
statement's ``EvalContext`` (parameters and the transaction's timestamp), so a cached
plan serves every execution with new parameters.

SQL semantics kept: NULL propagates through operators and functions; AND/OR/NOT and IN
use three-valued logic; integer division truncates toward zero; numeric is exact
(Decimal). Errors are SqlErrors with PostgreSQL's SQLSTATEs (22012 division by zero,
42883 unknown function or operator).

Pushdown: ``pushable(expr)`` says whether storage may evaluate ``expr`` (the lab's
storage understands comparisons, arithmetic, boolean logic, IN, BETWEEN, IS NULL, CASE,
casts and a few functions; LIKE and string functions stay in the query processor, as
DSQL's EXPLAIN shows them as query-processor filters).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Callable

from dsqlbench.sql import ir
from dsqlbench.sql.errors import (
    DIVISION_BY_ZERO,
    INVALID_TEXT,
    SqlError,
    UNDEFINED_FUNCTION,
)
from dsqlbench.sql.types import SqlType as _SqlType
from dsqlbench.sql.types import coerce, format_timestamp, to_decimal

Compiled = Callable[[tuple, "EvalContext"], Any]


class EvalContext:
    """What an expression may read besides the row: parameters and the clock."""

    __slots__ = ("params", "now")

    def __init__(self, params: tuple, now: dt.datetime):
        self.params = params
        self.now = now


NON_PUSHABLE_OPS = frozenset({"like", "notlike", "ilike", "notilike", "||"})
NON_PUSHABLE_FUNCTIONS = frozenset({"lower", "upper", "length", "char_length", "substr",
                                    "substring", "concat"})


def pushable(expr) -> bool:
    """Whether storage can evaluate ``expr`` (no QP-only operators or functions)."""
    if isinstance(expr, ir.BinOp) and expr.op in NON_PUSHABLE_OPS:
        return False
    if isinstance(expr, ir.Func) and (expr.name in NON_PUSHABLE_FUNCTIONS or expr.name in ir.AGGREGATES):
        return False
    return all(pushable(child) for child in children(expr))


def children(expr) -> tuple:
    if isinstance(expr, ir.BinOp):
        return (expr.left, expr.right)
    if isinstance(expr, ir.Unary):
        return (expr.arg,)
    if isinstance(expr, ir.BoolOp):
        return expr.args
    if isinstance(expr, ir.InList):
        return (expr.arg, *expr.items)
    if isinstance(expr, ir.Between):
        return (expr.arg, expr.low, expr.high)
    if isinstance(expr, ir.IsNull):
        return (expr.arg,)
    if isinstance(expr, ir.Func):
        return expr.args
    if isinstance(expr, ir.Case):
        return tuple(x for pair in expr.whens for x in pair) + (expr.default,)
    if isinstance(expr, ir.Cast):
        return (expr.arg,)
    return ()


def walk(expr):
    yield expr
    for child in children(expr):
        yield from walk(child)


def columns_of(expr) -> set:
    """Every bound column (``ir.Col``) that ``expr`` reads."""
    return {node for node in walk(expr) if isinstance(node, ir.Col)}


def has_aggregate(expr) -> bool:
    return any(isinstance(node, ir.Func) and node.name in ir.AGGREGATES for node in walk(expr))


# --- compilation ------------------------------------------------------------------------

def compile_expr(expr, slot_of: Callable[[ir.Col], int], overrides: dict | None = None) -> Compiled:
    """A closure for ``expr``. ``slot_of(col)`` gives a column's index in the row tuple;
    ``overrides`` maps whole sub-expressions (group keys, aggregates) to row indexes."""
    if overrides and expr in overrides:
        index = overrides[expr]
        return lambda row, ctx: row[index]
    sub = lambda e: compile_expr(e, slot_of, overrides)  # noqa: E731
    if isinstance(expr, ir.Const):
        value = expr.value
        return lambda row, ctx: value
    if isinstance(expr, ir.Param):
        index = expr.number - 1
        return lambda row, ctx: ctx.params[index]
    if isinstance(expr, ir.Col):
        index = slot_of(expr)
        return lambda row, ctx: row[index]
    if isinstance(expr, ir.BinOp):
        return _compile_binop(expr.op, sub(expr.left), sub(expr.right))
    if isinstance(expr, ir.Unary):
        return _compile_unary(expr.op, sub(expr.arg))
    if isinstance(expr, ir.BoolOp):
        return _compile_boolop(expr.op, [sub(arg) for arg in expr.args])
    if isinstance(expr, ir.InList):
        return _compile_in(sub(expr.arg), [sub(item) for item in expr.items], expr.negated)
    if isinstance(expr, ir.Between):
        return _compile_between(sub(expr.arg), sub(expr.low), sub(expr.high), expr.negated)
    if isinstance(expr, ir.IsNull):
        arg = sub(expr.arg)
        if expr.negated:
            return lambda row, ctx: arg(row, ctx) is not None
        return lambda row, ctx: arg(row, ctx) is None
    if isinstance(expr, ir.Case):
        return _compile_case([(sub(c), sub(r)) for c, r in expr.whens], sub(expr.default))
    if isinstance(expr, ir.Cast):
        arg, sql_type = sub(expr.arg), expr.sql_type
        return lambda row, ctx: coerce(arg(row, ctx), sql_type, explicit=True)
    if isinstance(expr, ir.Func):
        if expr.name in ir.AGGREGATES:
            raise SqlError("42803", "aggregate functions are not allowed here", position=expr.pos)
        return _compile_function(expr, [sub(arg) for arg in expr.args])
    if isinstance(expr, ir.Star):
        raise SqlError("42601", "* is only allowed in a select list")
    raise AssertionError(f"cannot compile {expr!r}")


def _compile_binop(op: str, left: Compiled, right: Compiled) -> Compiled:
    function = _BINARY[op]

    def binop(row, ctx):
        a = left(row, ctx)
        if a is None:
            return None
        b = right(row, ctx)
        if b is None:
            return None
        return function(a, b)
    return binop


def _compile_unary(op: str, arg: Compiled) -> Compiled:
    if op == "not":
        def negate(row, ctx):
            value = arg(row, ctx)
            return None if value is None else not value
        return negate
    if op == "-":
        def minus(row, ctx):
            value = arg(row, ctx)
            return None if value is None else -_number(value)
        return minus
    return arg


def _compile_boolop(op: str, args: list[Compiled]) -> Compiled:
    if op == "and":
        def conjunction(row, ctx):
            unknown = False
            for arg in args:
                value = arg(row, ctx)
                if value is None:
                    unknown = True
                elif not value:
                    return False
            return None if unknown else True
        return conjunction

    def disjunction(row, ctx):
        unknown = False
        for arg in args:
            value = arg(row, ctx)
            if value is None:
                unknown = True
            elif value:
                return True
        return None if unknown else False
    return disjunction


def _compile_in(arg: Compiled, items: list[Compiled], negated: bool) -> Compiled:
    def membership(row, ctx):
        value = arg(row, ctx)
        if value is None:
            return None
        unknown = False
        for item in items:
            candidate = item(row, ctx)
            if candidate is None:
                unknown = True
            elif _equal(value, candidate):
                return not negated
        return None if unknown else negated
    return membership


def _compile_between(arg: Compiled, low: Compiled, high: Compiled, negated: bool) -> Compiled:
    def between(row, ctx):
        value = arg(row, ctx)
        lo, hi = low(row, ctx), high(row, ctx)
        above = None if value is None or lo is None else _compare(value, lo) >= 0
        below = None if value is None or hi is None else _compare(value, hi) <= 0
        if above is False or below is False:
            result = False
        elif above is None or below is None:
            return None
        else:
            result = True
        return not result if negated else result
    return between


def _compile_case(whens: list, default: Compiled) -> Compiled:
    def case(row, ctx):
        for condition, result in whens:
            if condition(row, ctx) is True:
                return result(row, ctx)
        return default(row, ctx)
    return case


# --- operators --------------------------------------------------------------------------

def _number(value):
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return to_decimal(value)
    raise SqlError(UNDEFINED_FUNCTION, f"operator does not exist for {type(value).__name__}")


def _align(a, b):
    """Two numbers in a common Python type (int, Decimal or float)."""
    a, b = _number(a), _number(b)
    if type(a) is type(b) or isinstance(a, int) and isinstance(b, int):
        return a, b
    if isinstance(a, float) or isinstance(b, float):
        return float(a), float(b)
    return to_decimal(a), to_decimal(b)


def _add(a, b):
    a, b = _align(a, b)
    return a + b


def _sub(a, b):
    a, b = _align(a, b)
    return a - b


def _mul(a, b):
    a, b = _align(a, b)
    return a * b


def _div(a, b):
    a, b = _align(a, b)
    if b == 0:
        raise SqlError(DIVISION_BY_ZERO, "division by zero")
    if isinstance(a, int):
        quotient = abs(a) // abs(b)
        return quotient if (a >= 0) == (b > 0) else -quotient
    try:
        return a / b
    except InvalidOperation:
        raise SqlError(DIVISION_BY_ZERO, "division by zero") from None


def _mod(a, b):
    a, b = _align(a, b)
    if b == 0:
        raise SqlError(DIVISION_BY_ZERO, "division by zero")
    if isinstance(a, int):
        return a - b * _div(a, b)
    return a % b  # Decimal's % keeps the dividend's sign, as PostgreSQL's


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    return str(value)


def _concat(a, b):
    return _text(a) + _text(b)


def _comparable(a, b):
    """Bring literals to the other side's type, as PostgreSQL types unknown literals."""
    if type(a) is type(b):
        return a, b
    if isinstance(a, str) and not isinstance(b, str):
        return _from_text(a, b), b
    if isinstance(b, str) and not isinstance(a, str):
        return a, _from_text(b, a)
    if isinstance(a, bool) != isinstance(b, bool):
        raise SqlError(UNDEFINED_FUNCTION, "operator does not exist: boolean compared to a number")
    if isinstance(a, (int, Decimal, float)) and isinstance(b, (int, Decimal, float)):
        if isinstance(a, float) or isinstance(b, float):
            return float(a), float(b)
        return a, b
    return a, b


def _from_text(text: str, like):
    if isinstance(like, dt.datetime):
        return coerce(text, _TIMESTAMP)
    if isinstance(like, bool):
        return coerce(text, _BOOLEAN)
    if isinstance(like, (int, Decimal, float)):
        try:
            return _number(text)
        except SqlError:
            raise SqlError(INVALID_TEXT, f'invalid input syntax for type numeric: "{text}"') from None
    if isinstance(like, bytes):
        return coerce(text, _BYTEA)
    return text


def _compare(a, b) -> int:
    a, b = _comparable(a, b)
    try:
        return (a > b) - (a < b)
    except TypeError:
        raise SqlError(UNDEFINED_FUNCTION, f"operator does not exist: {type(a).__name__} "
                                           f"compared with {type(b).__name__}") from None


def _equal(a, b) -> bool:
    return _compare(a, b) == 0


@lru_cache(maxsize=256)
def like_regex(pattern: str, case_insensitive: bool) -> re.Pattern:
    parts, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _like(a, b, negate=False, case_insensitive=False):
    matched = like_regex(_text(b), case_insensitive).fullmatch(_text(a)) is not None
    return matched != negate


_TIMESTAMP, _BOOLEAN, _BYTEA = _SqlType("timestamp"), _SqlType("boolean"), _SqlType("bytea")

_BINARY = {
    "+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod, "||": _concat,
    "=": lambda a, b: _compare(a, b) == 0,
    "<>": lambda a, b: _compare(a, b) != 0,
    "<": lambda a, b: _compare(a, b) < 0,
    "<=": lambda a, b: _compare(a, b) <= 0,
    ">": lambda a, b: _compare(a, b) > 0,
    ">=": lambda a, b: _compare(a, b) >= 0,
    "like": _like,
    "notlike": lambda a, b: _like(a, b, negate=True),
    "ilike": lambda a, b: _like(a, b, case_insensitive=True),
    "notilike": lambda a, b: _like(a, b, negate=True, case_insensitive=True),
}


# --- functions --------------------------------------------------------------------------

def _strict(function):
    """A function that returns NULL when any argument is NULL."""
    def call(*args):
        if any(arg is None for arg in args):
            return None
        return function(*args)
    return call


def _round(value, digits=0):
    value = _number(value)
    if isinstance(value, int) and digits >= 0:
        return value
    if isinstance(value, float):
        return float(round(Decimal(repr(value)), int(digits)))
    return to_decimal(value).quantize(Decimal(1).scaleb(-int(digits)), rounding="ROUND_HALF_UP")


def _substr(text, start, length=None):
    begin = max(int(start) - 1, 0)
    if length is None:
        return _text(text)[begin:]
    end = int(start) - 1 + int(length)
    return _text(text)[begin:max(end, begin)]


def _nonnull(values):
    return [v for v in values if v is not None]


_SCALAR = {
    "abs": (1, 1, _strict(lambda a: abs(_number(a)))),
    "lower": (1, 1, _strict(lambda a: _text(a).lower())),
    "upper": (1, 1, _strict(lambda a: _text(a).upper())),
    "length": (1, 1, _strict(lambda a: len(_text(a)))),
    "char_length": (1, 1, _strict(lambda a: len(_text(a)))),
    "round": (1, 2, _strict(_round)),
    "mod": (2, 2, _strict(_mod)),
    "substr": (2, 3, _strict(_substr)),
    "substring": (2, 3, _strict(_substr)),
    "coalesce": (1, 100, None),  # special: lazy
    "greatest": (1, 100, lambda *a: max(_nonnull(a), key=_SortKey, default=None)),
    "least": (1, 100, lambda *a: min(_nonnull(a), key=_SortKey, default=None)),
    "concat": (1, 100, lambda *a: "".join(_text(v) for v in a if v is not None)),
}


class _SortKey:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return _compare(self.value, other.value) < 0


def _compile_function(expr: ir.Func, args: list[Compiled]) -> Compiled:
    if expr.name == "now":
        return lambda row, ctx: ctx.now
    spec = _SCALAR.get(expr.name)
    if spec is None or not spec[0] <= len(args) <= spec[1] or expr.distinct or expr.star:
        raise SqlError(UNDEFINED_FUNCTION, f"function {expr.name}({len(args)} arguments) does not exist",
                       position=expr.pos)
    if expr.name == "coalesce":
        def coalesce(row, ctx):
            for arg in args:
                value = arg(row, ctx)
                if value is not None:
                    return value
            return None
        return coalesce
    function = spec[2]
    if len(args) == 1:
        only = args[0]
        return lambda row, ctx: function(only(row, ctx))
    return lambda row, ctx: function(*(arg(row, ctx) for arg in args))


def compare_values(a, b) -> int:
    """SQL comparison of two non-NULL values (-1, 0, 1), for sorting and grouping."""
    return _compare(a, b)

