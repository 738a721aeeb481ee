"""Parsing: PostgreSQL's own grammar (pglast, i.e. libpg_query) into the engine's IR.

Role: ``parse(sql)`` turns one statement's text into an ``ir`` statement, or raises
``SqlError``: 42601 with PostgreSQL's message and character position for a syntax
error, 0A000 naming the feature for anything the engine does not support (the
translation is a whitelist: a node it does not know is unsupported, never ignored).

The engine caches the result per distinct text (``engine.SqlEngine.parse``), so the
grammar runs once per statement text however often a workload sends it; ``$n``
parameters keep texts few.

DSQL's ``CREATE INDEX ASYNC`` is accepted: ASYNC is blanked out before parsing (the
PostgreSQL grammar does not know it), so positions in the text stay right.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from dsqlbench.sql import ir
from dsqlbench.sql.errors import (
    FEATURE_NOT_SUPPORTED,
    SYNTAX_ERROR,
    SqlError,
    char_position,
    unsupported,
)
from dsqlbench.sql.types import type_from_name

_ASYNC_INDEX = re.compile(r"^(\s*create\s+(?:unique\s+)?index\s+)(async)\b", re.IGNORECASE)

_BINARY_OPS = {"+", "-", "*", "/", "%", "||", "=", "<>", "!=", "<", "<=", ">", ">="}
_TIME_FUNCTIONS = {"now", "current_timestamp", "localtimestamp", "transaction_timestamp",
                   "statement_timestamp"}


def parse(sql: str):
    """One statement's IR; SqlError for bad syntax, several statements or unsupported SQL."""
    text = _ASYNC_INDEX.sub(lambda m: m.group(1) + " " * len(m.group(2)), sql, count=1)
    try:
        raw = parse_sql(text)
    except ParseError as error:
        message, offset = error.args[0], error.args[1] if len(error.args) > 1 else None
        position = char_position(sql, offset) if offset is not None else len(sql) + 1
        raise SqlError(SYNTAX_ERROR, message, position=position) from None
    if len(raw) != 1:
        if not raw:
            raise SqlError(SYNTAX_ERROR, "empty statement")
        raise SqlError(SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement")
    return _Translator(sql).statement(raw[0].stmt)


class _Translator:
    """pglast AST -> IR for one statement text (positions need the text)."""

    def __init__(self, sql: str):
        self.sql = sql

    def pos(self, node) -> int | None:
        location = getattr(node, "location", None)
        return char_position(self.sql, location) if location is not None else None

    def fail(self, feature: str, node=None) -> SqlError:
        return unsupported(feature, self.pos(node) if node is not None else None)

    # -- statements -------------------------------------------------------------------
    def statement(self, node):
        handler = getattr(self, f"_stmt_{type(node).__name__}", None)
        if handler is None:
            raise self.fail(f"statement {_statement_name(node)}")
        return handler(node)

    def _stmt_SelectStmt(self, node) -> ir.Select:
        if node.op != enums.SetOperation.SETOP_NONE:
            raise self.fail("UNION/INTERSECT/EXCEPT")
        if node.withClause is not None:
            raise self.fail("WITH (common table expressions)")
        if node.valuesLists:
            raise self.fail("VALUES lists outside INSERT")
        if node.intoClause is not None:
            raise self.fail("SELECT INTO")
        if node.windowClause:
            raise self.fail("window functions")
        if getattr(node, "groupDistinct", False):
            raise self.fail("GROUP BY DISTINCT")
        distinct = False
        if node.distinctClause:
            if any(item is not None for item in node.distinctClause):
                raise self.fail("DISTINCT ON")
            distinct = True
        tables, on_conditions = self._from_clause(node.fromClause or ())
        where = self.expr(node.whereClause) if node.whereClause is not None else None
        conditions = on_conditions + ([where] if where is not None else [])
        if node.limitOption == enums.LimitOption.LIMIT_OPTION_WITH_TIES:
            raise self.fail("FETCH ... WITH TIES")
        return ir.Select(
            targets=tuple(self._target(t) for t in node.targetList or ()),
            tables=tuple(tables),
            where=_and(conditions),
            group_by=tuple(self._group_item(g) for g in node.groupClause or ()),
            having=self.expr(node.havingClause) if node.havingClause is not None else None,
            order_by=tuple(self._order_item(s) for s in node.sortClause or ()),
            limit=self.expr(node.limitCount) if node.limitCount is not None else None,
            offset=self.expr(node.limitOffset) if node.limitOffset is not None else None,
            distinct=distinct,
            for_update=self._locking(node.lockingClause or ()),
        )

    def _locking(self, clauses) -> bool:
        for clause in clauses:
            if clause.strength == enums.LockClauseStrength.LCS_FORKEYSHARE:
                continue  # DSQL accepts FOR KEY SHARE; it adds nothing under OCC
            if clause.strength != enums.LockClauseStrength.LCS_FORUPDATE:
                raise SqlError(FEATURE_NOT_SUPPORTED,
                               "locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported")
            if clause.waitPolicy != enums.LockWaitPolicy.LockWaitBlock:
                raise self.fail("FOR UPDATE NOWAIT/SKIP LOCKED")
            if clause.lockedRels:
                raise self.fail("FOR UPDATE OF")
        return any(c.strength == enums.LockClauseStrength.LCS_FORUPDATE for c in clauses)

    def _from_clause(self, items) -> tuple[list, list]:
        tables: list[ir.TableRef] = []
        conditions: list = []
        for item in items:
            self._from_item(item, tables, conditions)
        return tables, conditions

    def _from_item(self, node, tables: list, conditions: list) -> None:
        if isinstance(node, ast.RangeVar):
            tables.append(self._range_var(node))
        elif isinstance(node, ast.JoinExpr):
            if node.jointype != enums.JoinType.JOIN_INNER:
                raise self.fail("outer joins")
            if node.isNatural or node.usingClause:
                raise self.fail("NATURAL and USING joins")
            if node.alias is not None:
                raise self.fail("aliases on joins")
            self._from_item(node.larg, tables, conditions)
            self._from_item(node.rarg, tables, conditions)
            if node.quals is not None:
                conditions.append(self.expr(node.quals))
        elif isinstance(node, ast.RangeSubselect):
            raise self.fail("subqueries in FROM", node)
        elif isinstance(node, ast.RangeFunction):
            raise self.fail("functions in FROM", node)
        else:
            raise self.fail(f"FROM item {type(node).__name__}", node)

    def _range_var(self, node) -> ir.TableRef:
        if node.schemaname not in (None, "public"):
            raise self.fail("schemas other than public", node)
        if node.relpersistence == "t":
            raise self.fail("temporary tables", node)
        if node.alias is not None and node.alias.colnames:
            raise self.fail("column aliases in FROM", node)
        alias = node.alias.aliasname if node.alias is not None else node.relname
        return ir.TableRef(node.relname, alias, self.pos(node))

    def _target(self, node) -> tuple:
        if getattr(node, "indirection", None):
            raise self.fail("subscripts and field selection", node)
        return (self.expr(node.val, allow_star=True), node.name)

    def _group_item(self, node):
        if isinstance(node, ast.GroupingSet):
            raise self.fail("GROUPING SETS, ROLLUP and CUBE", node)
        return self.expr(node)

    def _order_item(self, node) -> ir.OrderItem:
        if node.useOp:
            raise self.fail("ORDER BY ... USING")
        descending = node.sortby_dir == enums.SortByDir.SORTBY_DESC
        nulls = None
        if node.sortby_nulls == enums.SortByNulls.SORTBY_NULLS_FIRST:
            nulls = True
        elif node.sortby_nulls == enums.SortByNulls.SORTBY_NULLS_LAST:
            nulls = False
        return ir.OrderItem(self.expr(node.node), descending, nulls)

    def _returning(self, node) -> tuple:
        clause = getattr(node, "returningClause", None)
        items = clause.exprs if clause is not None else getattr(node, "returningList", None)
        return tuple(self._target(t) for t in items or ())

    def _stmt_InsertStmt(self, node) -> ir.Insert:
        if node.withClause is not None:
            raise self.fail("WITH (common table expressions)")
        conflict = self._on_conflict(node.onConflictClause)
        if node.override != enums.OverridingKind.OVERRIDING_NOT_SET:
            raise self.fail("OVERRIDING")
        columns = None
        if node.cols:
            for col in node.cols:
                if col.indirection:
                    raise self.fail("subscripts in INSERT columns", col)
            columns = tuple(col.name for col in node.cols)
        table = self._range_var(node.relation)
        source = node.selectStmt
        if source is None:
            raise self.fail("INSERT ... DEFAULT VALUES")
        if source.valuesLists:
            rows = tuple(tuple(self._value(v) for v in row) for row in source.valuesLists)
            return ir.Insert(table, columns, rows=rows, returning=self._returning(node), **conflict)
        return ir.Insert(table, columns, select=self._stmt_SelectStmt(source),
                         returning=self._returning(node), **conflict)

    def _on_conflict(self, clause) -> dict:
        """``ON CONFLICT [(columns)] DO NOTHING``; DO UPDATE is not supported yet."""
        if clause is None:
            return {}
        if clause.action != enums.OnConflictAction.ONCONFLICT_NOTHING:
            raise self.fail("INSERT ... ON CONFLICT DO UPDATE")
        target = ()
        if clause.infer is not None:
            if clause.infer.whereClause is not None or clause.infer.conname:
                raise self.fail("ON CONFLICT with a constraint name or WHERE")
            target = tuple(elem.name for elem in clause.infer.indexElems or ())
        return {"on_conflict_do_nothing": True, "conflict_target": target}

    def _value(self, node):
        if isinstance(node, ast.SetToDefault):
            return ir.Default()
        return self.expr(node)

    def _stmt_UpdateStmt(self, node) -> ir.Update:
        if node.withClause is not None:
            raise self.fail("WITH (common table expressions)")
        if node.fromClause:
            raise self.fail("UPDATE ... FROM")
        assignments = []
        for target in node.targetList:
            if target.indirection:
                raise self.fail("subscripts in UPDATE ... SET", target)
            if isinstance(target.val, ast.MultiAssignRef):
                raise self.fail("multiple-column assignment", target)
            assignments.append((target.name, self._value(target.val)))
        return ir.Update(self._range_var(node.relation), tuple(assignments),
                         where=self.expr(node.whereClause) if node.whereClause is not None else None,
                         returning=self._returning(node))

    def _stmt_DeleteStmt(self, node) -> ir.Delete:
        if node.withClause is not None:
            raise self.fail("WITH (common table expressions)")
        if node.usingClause:
            raise self.fail("DELETE ... USING")
        return ir.Delete(self._range_var(node.relation),
                         where=self.expr(node.whereClause) if node.whereClause is not None else None,
                         returning=self._returning(node))

    def _stmt_TransactionStmt(self, node) -> ir.Transaction:
        kind = node.kind
        kinds = enums.TransactionStmtKind
        if kind in (kinds.TRANS_STMT_BEGIN, kinds.TRANS_STMT_START):
            for option in node.options or ():
                self._transaction_option(option)
            return ir.Transaction("begin")
        if kind == kinds.TRANS_STMT_COMMIT:
            return ir.Transaction("commit")
        if kind == kinds.TRANS_STMT_ROLLBACK:
            return ir.Transaction("rollback")
        if kind in (kinds.TRANS_STMT_SAVEPOINT, kinds.TRANS_STMT_RELEASE,
                    kinds.TRANS_STMT_ROLLBACK_TO):
            raise self.fail("savepoints")
        raise self.fail("two-phase commit")

    def _transaction_option(self, option) -> None:
        if option.defname == "transaction_isolation":
            level = option.arg.val.sval
            if level != "repeatable read":
                raise SqlError(FEATURE_NOT_SUPPORTED,
                               f"unsupported transaction isolation level: {level}; "
                               "Aurora DSQL supports REPEATABLE READ only")
        elif option.defname not in ("transaction_read_only", "transaction_deferrable"):
            raise self.fail(f"transaction option {option.defname}")

    def _stmt_ExplainStmt(self, node) -> ir.Explain:
        analyze = False
        for option in node.options or ():
            if option.defname == "analyze":
                analyze = option.arg is None or _truthy(option.arg)
            elif option.defname not in ("verbose", "costs", "format", "timing", "summary", "buffers"):
                raise self.fail(f"EXPLAIN option {option.defname}")
        inner = self.statement(node.query)
        if inner.kind in ("ddl", "transaction", "explain"):
            raise self.fail(f"EXPLAIN of {inner.kind} statements")
        return ir.Explain(inner, analyze)

    # -- DDL --------------------------------------------------------------------------
    def _stmt_CreateStmt(self, node) -> ir.CreateTable:
        if node.inhRelations:
            raise self.fail("table inheritance")
        if node.partbound is not None or node.partspec is not None:
            raise self.fail("partitioned tables")
        if node.ofTypename is not None:
            raise self.fail("typed tables")
        relation = self._range_var(node.relation)
        columns, primary_key, unique = [], (), []
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                columns.append(self._column_def(element))
            elif isinstance(element, ast.Constraint):
                kind = element.contype
                if kind == enums.ConstrType.CONSTR_PRIMARY:
                    if primary_key:
                        raise SqlError("42P16", f'multiple primary keys for table "{relation.name}" '
                                                "are not allowed")
                    primary_key = tuple(k.sval for k in element.keys)
                elif kind == enums.ConstrType.CONSTR_UNIQUE:
                    unique.append(tuple(k.sval for k in element.keys))
                else:
                    raise self._constraint_unsupported(element)
            else:
                raise self.fail(f"table element {type(element).__name__}", element)
        return ir.CreateTable(relation.name, tuple(columns), primary_key, tuple(unique),
                              bool(node.if_not_exists))

    def _constraint_unsupported(self, constraint) -> SqlError:
        names = {enums.ConstrType.CONSTR_FOREIGN: "foreign keys",
                 enums.ConstrType.CONSTR_CHECK: "CHECK constraints",
                 enums.ConstrType.CONSTR_EXCLUSION: "exclusion constraints",
                 enums.ConstrType.CONSTR_IDENTITY: "identity columns",
                 enums.ConstrType.CONSTR_GENERATED: "generated columns"}
        return self.fail(names.get(constraint.contype, f"constraint {constraint.contype.name}"),
                         constraint)

    def _column_def(self, node) -> ir.ColumnDef:
        sql_type = self.type_name(node.typeName)
        not_null = primary_key = unique = False
        default = default_sql = None
        for constraint in node.constraints or ():
            kind = constraint.contype
            if kind == enums.ConstrType.CONSTR_NOTNULL:
                not_null = True
            elif kind == enums.ConstrType.CONSTR_NULL:
                not_null = False
            elif kind == enums.ConstrType.CONSTR_PRIMARY:
                primary_key = True
            elif kind == enums.ConstrType.CONSTR_UNIQUE:
                unique = True
            elif kind == enums.ConstrType.CONSTR_DEFAULT:
                default = self.expr(constraint.raw_expr)
                default_sql = RawStream()(constraint.raw_expr)
            else:
                raise self._constraint_unsupported(constraint)
        return ir.ColumnDef(node.colname, sql_type, not_null, primary_key, unique, default, default_sql)

    def type_name(self, node):
        if node.arrayBounds:
            raise self.fail("arrays", node)
        if node.setof or node.pct_type:
            raise self.fail("SETOF and %TYPE", node)
        name = node.names[-1].sval
        if name in ("serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"):
            raise self.fail("serial types (use an explicit key)", node)
        modifiers = []
        for modifier in node.typmods or ():
            if not (isinstance(modifier, ast.A_Const) and isinstance(modifier.val, ast.Integer)):
                raise self.fail("type modifiers other than integers", node)
            modifiers.append(modifier.val.ival)
        try:
            return type_from_name(name, tuple(modifiers))
        except SqlError as error:
            error.position = self.pos(node)
            raise

    def _stmt_IndexStmt(self, node) -> ir.CreateIndex:
        if node.whereClause is not None:
            raise SqlError(FEATURE_NOT_SUPPORTED, "WHERE not supported for CREATE INDEX")
        if node.concurrent:
            raise SqlError(FEATURE_NOT_SUPPORTED, "CONCURRENTLY not supported for CREATE INDEX")
        if node.indexIncludingParams:
            raise self.fail("INCLUDE columns")
        if node.accessMethod not in ("btree", "btree_index"):
            raise SqlError(FEATURE_NOT_SUPPORTED, "USING not supported for CREATE INDEX")
        columns = []
        for element in node.indexParams:
            if element.expr is not None:
                raise self.fail("expression indexes")
            columns.append(element.name)
        return ir.CreateIndex(node.idxname, node.relation.relname, tuple(columns),
                              bool(node.unique), bool(node.if_not_exists))

    def _stmt_DropStmt(self, node):
        names = tuple(obj[-1].sval for obj in node.objects)
        if node.removeType == enums.ObjectType.OBJECT_TABLE:
            return ir.DropTable(names, bool(node.missing_ok))
        if node.removeType == enums.ObjectType.OBJECT_INDEX:
            if node.concurrent:
                raise self.fail("DROP INDEX CONCURRENTLY")
            return ir.DropIndex(names, bool(node.missing_ok))
        raise self.fail(f"DROP {node.removeType.name.removeprefix('OBJECT_')}")

    def _stmt_TruncateStmt(self, node):
        raise SqlError(FEATURE_NOT_SUPPORTED, "unsupported statement: Truncate")

    # -- expressions ------------------------------------------------------------------
    def expr(self, node, allow_star: bool = False):
        handler = getattr(self, f"_expr_{type(node).__name__}", None)
        if handler is None:
            raise self.fail(_EXPRESSION_FEATURES.get(type(node).__name__,
                                                     f"expression {type(node).__name__}"), node)
        if isinstance(node, ast.ColumnRef):
            return handler(node, allow_star)
        return handler(node)

    def _expr_A_Const(self, node):
        if node.isnull:
            return ir.Const(None)
        value = node.val
        if isinstance(value, ast.Integer):
            return ir.Const(value.ival)
        if isinstance(value, ast.Float):
            text = value.fval
            return ir.Const(int(text) if text.isdigit() else Decimal(text))
        if isinstance(value, ast.String):
            return ir.Const(value.sval)
        if isinstance(value, ast.Boolean):
            return ir.Const(bool(value.boolval))
        raise self.fail("bit-string constants", node)

    def _expr_ParamRef(self, node):
        return ir.Param(node.number)

    def _expr_ColumnRef(self, node, allow_star: bool):
        fields = node.fields
        if isinstance(fields[-1], ast.A_Star):
            if not allow_star:
                raise SqlError(SYNTAX_ERROR, "* is only allowed in a select list",
                               position=self.pos(node))
            return ir.Star(fields[0].sval if len(fields) == 2 else None)
        if len(fields) == 1:
            return ir.ColRef(None, fields[0].sval, self.pos(node))
        if len(fields) == 2:
            return ir.ColRef(fields[0].sval, fields[1].sval, self.pos(node))
        raise self.fail("schema-qualified column references", node)

    def _expr_A_Expr(self, node):
        kinds = enums.A_Expr_Kind
        kind = node.kind
        op = node.name[-1].sval if node.name else ""
        if kind == kinds.AEXPR_OP:
            if node.lexpr is None:
                if op not in ("-", "+"):
                    raise self.fail(f"prefix operator {op}", node)
                return ir.Unary(op, self.expr(node.rexpr))
            if op not in _BINARY_OPS:
                raise self.fail(f"operator {op}", node)
            return ir.BinOp("<>" if op == "!=" else op, self.expr(node.lexpr), self.expr(node.rexpr))
        if kind == kinds.AEXPR_IN:
            items = tuple(self.expr(item) for item in node.rexpr)
            return ir.InList(self.expr(node.lexpr), items, negated=op == "<>")
        if kind in (kinds.AEXPR_BETWEEN, kinds.AEXPR_NOT_BETWEEN):
            low, high = node.rexpr
            return ir.Between(self.expr(node.lexpr), self.expr(low), self.expr(high),
                              negated=kind == kinds.AEXPR_NOT_BETWEEN)
        if kind in (kinds.AEXPR_LIKE, kinds.AEXPR_ILIKE):
            name = ("like" if kind == kinds.AEXPR_LIKE else "ilike")
            name = "not" + name if op.startswith("!") else name
            return ir.BinOp(name, self.expr(node.lexpr), self.expr(node.rexpr))
        if kind in (kinds.AEXPR_DISTINCT, kinds.AEXPR_NOT_DISTINCT):
            raise self.fail("IS [NOT] DISTINCT FROM", node)
        if kind == kinds.AEXPR_NULLIF:
            raise self.fail("NULLIF", node)
        raise self.fail(f"operator kind {kind.name}", node)

    def _expr_BoolExpr(self, node):
        kinds = enums.BoolExprType
        args = tuple(self.expr(arg) for arg in node.args)
        if node.boolop == kinds.AND_EXPR:
            return ir.BoolOp("and", args)
        if node.boolop == kinds.OR_EXPR:
            return ir.BoolOp("or", args)
        return ir.Unary("not", args[0])

    def _expr_NullTest(self, node):
        if node.argisrow:
            raise self.fail("row IS NULL", node)
        return ir.IsNull(self.expr(node.arg),
                         negated=node.nulltesttype == enums.NullTestType.IS_NOT_NULL)

    def _expr_FuncCall(self, node):
        name = node.funcname[-1].sval
        if node.over is not None:
            raise self.fail("window functions", node)
        if node.agg_filter is not None:
            raise self.fail("aggregate FILTER", node)
        if node.agg_order or node.agg_within_group:
            raise self.fail("ordered aggregates", node)
        if node.func_variadic:
            raise self.fail("VARIADIC", node)
        args = tuple(self.expr(arg) for arg in node.args or ())
        if name in _TIME_FUNCTIONS:
            return ir.Func("now", pos=self.pos(node))
        return ir.Func(name, args, distinct=bool(node.agg_distinct), star=bool(node.agg_star),
                       pos=self.pos(node))

    def _expr_SQLValueFunction(self, node):
        ops = enums.SQLValueFunctionOp
        if node.op in (ops.SVFOP_CURRENT_TIMESTAMP, ops.SVFOP_LOCALTIMESTAMP,
                       ops.SVFOP_CURRENT_TIMESTAMP_N, ops.SVFOP_LOCALTIMESTAMP_N):
            return ir.Func("now", pos=self.pos(node))
        raise self.fail(node.op.name.removeprefix("SVFOP_"), node)

    def _expr_CoalesceExpr(self, node):
        return ir.Func("coalesce", tuple(self.expr(arg) for arg in node.args), pos=self.pos(node))

    def _expr_MinMaxExpr(self, node):
        name = "greatest" if node.op == enums.MinMaxOp.IS_GREATEST else "least"
        return ir.Func(name, tuple(self.expr(arg) for arg in node.args), pos=self.pos(node))

    def _expr_TypeCast(self, node):
        return ir.Cast(self.expr(node.arg), self.type_name(node.typeName))

    def _expr_CaseExpr(self, node):
        subject = self.expr(node.arg) if node.arg is not None else None
        whens = []
        for when in node.args:
            condition = self.expr(when.expr)
            if subject is not None:
                condition = ir.BinOp("=", subject, condition)
            whens.append((condition, self.expr(when.result)))
        default = self.expr(node.defresult) if node.defresult is not None else ir.Const(None)
        return ir.Case(tuple(whens), default)


_EXPRESSION_FEATURES = {
    "SubLink": "subqueries",
    "BooleanTest": "IS TRUE/IS FALSE tests",
    "A_ArrayExpr": "arrays",
    "A_Indirection": "subscripts and field selection",
    "RowExpr": "row constructors",
    "CollateClause": "COLLATE",
    "GroupingFunc": "GROUPING",
    "XmlExpr": "XML",
    "JsonObjectConstructor": "JSON",
}


def _statement_name(node) -> str:
    return type(node).__name__.removesuffix("Stmt")


def _truthy(node) -> bool:
    value = getattr(node, "val", node)
    if isinstance(value, ast.Boolean):
        return bool(value.boolval)
    if isinstance(value, ast.String):
        return value.sval.lower() in ("true", "on", "1")
    if isinstance(value, ast.Integer):
        return bool(value.ival)
    return True


def _and(conditions: list):
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    return ir.BoolOp("and", tuple(conditions))
