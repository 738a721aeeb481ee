"""The engine's own small IR: what the parser makes of PostgreSQL's AST.

Role: ``parser`` translates pglast's AST into these immutable nodes once per distinct
statement text; the planner binds and compiles them. Nothing here knows the catalog:
column references are still names until the planner binds them.

Expressions are frozen dataclasses (hashable), so equal sub-expressions compare equal
(GROUP BY and ORDER BY match select-list expressions that way). ``pos`` fields are
PostgreSQL character positions (1-based) for error messages, and do not take part in
equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsqlbench.sql.types import SqlType

# --- expressions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True)
class Param:
    number: int  # $1 is 1


@dataclass(frozen=True, slots=True)
class ColRef:
    table: str | None
    name: str
    pos: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Star:
    table: str | None = None


@dataclass(frozen=True, slots=True)
class Col:
    """A bound column: ``slot`` indexes the FROM list, ``column`` the table's columns."""

    slot: int
    column: int
    name: str = field(compare=False)
    qualifier: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # + - * / % || = <> < <= > >= like notlike ilike notilike
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # - + not
    arg: Any


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and | or
    args: tuple


@dataclass(frozen=True, slots=True)
class InList:
    arg: Any
    items: tuple
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Between:
    arg: Any
    low: Any
    high: Any
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IsNull:
    arg: Any
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Func:
    name: str
    args: tuple = ()
    distinct: bool = False
    star: bool = False
    pos: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Case:
    whens: tuple  # ((condition, result), ...)
    default: Any = None


@dataclass(frozen=True, slots=True)
class Cast:
    arg: Any
    sql_type: SqlType


AGGREGATES = frozenset({"count", "sum", "min", "max", "avg"})

# --- statements -------------------------------------------------------------------------


@dataclass(frozen=True)
class TableRef:
    name: str
    alias: str
    pos: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class OrderItem:
    expr: Any
    descending: bool = False
    nulls_first: bool | None = None  # None: PostgreSQL's default (last for ASC)


@dataclass(frozen=True)
class Select:
    targets: tuple            # ((expr, alias or None), ...); expr may be Star
    tables: tuple = ()        # TableRef, in FROM/JOIN order (inner joins only)
    where: Any = None         # WHERE and every ON condition, ANDed
    group_by: tuple = ()
    having: Any = None
    order_by: tuple = ()
    limit: Any = None
    offset: Any = None
    distinct: bool = False
    for_update: bool = False
    kind: str = "select"


@dataclass(frozen=True)
class Insert:
    table: TableRef
    columns: tuple | None     # column names, or None: all in order
    rows: tuple = ()          # ((expr, ...), ...); Default() marks DEFAULT
    select: Select | None = None
    returning: tuple = ()
    on_conflict_do_nothing: bool = False  # ON CONFLICT [(primary key)] DO NOTHING
    conflict_target: tuple = ()           # its column names, or () for any key
    kind: str = "insert"


@dataclass(frozen=True, slots=True)
class Default:
    """DEFAULT in a VALUES list."""


@dataclass(frozen=True)
class Update:
    table: TableRef
    assignments: tuple        # ((column name, expr), ...)
    where: Any = None
    returning: tuple = ()
    kind: str = "update"


@dataclass(frozen=True)
class Delete:
    table: TableRef
    where: Any = None
    returning: tuple = ()
    kind: str = "delete"


@dataclass(frozen=True)
class ColumnDef:
    name: str
    sql_type: SqlType
    not_null: bool = False
    primary_key: bool = False
    unique: bool = False
    default: Any = None
    default_sql: str | None = None


@dataclass(frozen=True)
class CreateTable:
    name: str
    columns: tuple
    primary_key: tuple = ()   # column names from a table-level PRIMARY KEY
    unique: tuple = ()        # ((column names), ...) from table-level UNIQUE
    if_not_exists: bool = False
    kind: str = "ddl"


@dataclass(frozen=True)
class CreateIndex:
    name: str | None
    table: str
    columns: tuple
    unique: bool = False
    if_not_exists: bool = False
    kind: str = "ddl"


@dataclass(frozen=True)
class DropTable:
    names: tuple
    if_exists: bool = False
    kind: str = "ddl"


@dataclass(frozen=True)
class DropIndex:
    names: tuple
    if_exists: bool = False
    kind: str = "ddl"


@dataclass(frozen=True)
class Transaction:
    action: str  # begin | commit | rollback
    kind: str = "transaction"


@dataclass(frozen=True)
class Explain:
    statement: Any
    analyze: bool = False
    kind: str = "explain"
