"""DDL: CREATE TABLE, CREATE INDEX, DROP TABLE, DROP INDEX as catalog changes.

Role: each function checks a DDL statement against the catalog a transaction sees and
returns the schema changes it makes (``(table name, new Table or None)``); the session
writes them as catalog rows, commits them with ``schema_change=True``, and installs
them in the shared catalog once committed. The engine's bootstrap path applies the same
changes directly at version 0 (schema for a bulk loader).

Rules kept from DSQL: every table is organised by its primary key (a hidden row id when
there is none); UNIQUE constraints are unique indexes; foreign keys, CHECK, serial and
the like are refused by the parser.
"""

from __future__ import annotations

from dataclasses import replace

from dsqlbench.sql import ir
from dsqlbench.sql.catalog import CatalogSnapshot, Column, Index, SchemaChange, Table
from dsqlbench.sql.errors import (
    DUPLICATE_COLUMN,
    DUPLICATE_TABLE,
    INVALID_TABLE_DEFINITION,
    UNDEFINED_COLUMN,
    UNDEFINED_TABLE,
    SqlError,
    unsupported,
)
from dsqlbench.sql.expr import walk

NAME_BYTES_MAX = 63


def relation_exists(catalog: CatalogSnapshot, name: str) -> bool:
    return catalog.table(name) is not None or catalog.index_owner(name) is not None


def create_table(catalog: CatalogSnapshot, stmt: ir.CreateTable, allocate_oid) -> list[SchemaChange]:
    if relation_exists(catalog, stmt.name):
        if stmt.if_not_exists:
            return []
        raise SqlError(DUPLICATE_TABLE, f'relation "{stmt.name}" already exists')
    names = [c.name for c in stmt.columns]
    for name in names:
        if names.count(name) > 1:
            raise SqlError(DUPLICATE_COLUMN, f'column "{name}" specified more than once')
    pk_names = [c.name for c in stmt.columns if c.primary_key]
    if len(pk_names) > 1 or (pk_names and stmt.primary_key):
        raise SqlError(INVALID_TABLE_DEFINITION,
                       f'multiple primary keys for table "{stmt.name}" are not allowed')
    pk_names = pk_names or list(stmt.primary_key)
    pk = tuple(_position(names, name, "key") for name in pk_names)
    columns = tuple(_column(c, i in pk) for i, c in enumerate(stmt.columns))
    table = Table(stmt.name, allocate_oid(), columns, pk)  # builds the key layout (may refuse types)
    unique_sets = [(c.name,) for c in stmt.columns if c.unique] + list(stmt.unique)
    indexes = []
    for cols in unique_sets:
        positions = tuple(_position(names, name, "key") for name in cols)
        index_name = _default_name(stmt.name, cols, "key", catalog, indexes)
        indexes.append(Index(index_name, allocate_oid(), positions, unique=True))
    if indexes:
        table = replace(table, indexes=tuple(indexes))
    return [(stmt.name, table)]


def _column(definition: ir.ColumnDef, in_pk: bool) -> Column:
    if definition.default is not None:
        if any(isinstance(node, ir.ColRef) for node in walk(definition.default)):
            raise unsupported("column references in DEFAULT expressions")
    return Column(definition.name, definition.sql_type, definition.not_null or in_pk,
                  definition.default_sql, definition.default)


def _position(names: list[str], name: str, what: str) -> int:
    if name not in names:
        raise SqlError(UNDEFINED_COLUMN, f'column "{name}" named in {what} does not exist')
    return names.index(name)


def _default_name(table: str, columns, suffix: str, catalog: CatalogSnapshot, pending=()) -> str:
    base = f"{table}_{'_'.join(columns)}"[:NAME_BYTES_MAX - len(suffix) - 1]
    name, n = f"{base}_{suffix}", 0
    taken = {index.name for index in pending}
    while relation_exists(catalog, name) or name in taken:
        n += 1
        name = f"{base}_{suffix}{n}"
    return name


def create_index(catalog: CatalogSnapshot, stmt: ir.CreateIndex, allocate_oid):
    """``(changes, table, index)``; no changes when IF NOT EXISTS finds the name taken."""
    table = catalog.table(stmt.table)
    if table is None:
        raise SqlError(UNDEFINED_TABLE, f'relation "{stmt.table}" does not exist')
    names = [c.name for c in table.columns]
    positions = []
    for name in stmt.columns:
        if name not in names:
            raise SqlError(UNDEFINED_COLUMN, f'column "{name}" does not exist')
        positions.append(names.index(name))
    name = stmt.name or _default_name(table.name, stmt.columns, "idx", catalog)
    if relation_exists(catalog, name):
        if stmt.if_not_exists:
            return [], table, None
        raise SqlError(DUPLICATE_TABLE, f'relation "{name}" already exists')
    index = Index(name, allocate_oid(), tuple(positions), unique=stmt.unique)
    new_table = replace(table, indexes=table.indexes + (index,))
    return [(table.name, new_table)], new_table, index


def drop_table(catalog: CatalogSnapshot, stmt: ir.DropTable) -> list[SchemaChange]:
    changes = []
    for name in stmt.names:
        if catalog.table(name) is None:
            if stmt.if_exists:
                continue
            raise SqlError(UNDEFINED_TABLE, f'table "{name}" does not exist')
        changes.append((name, None))
    return changes


def drop_index(catalog: CatalogSnapshot, stmt: ir.DropIndex) -> list[SchemaChange]:
    changes = []
    for name in stmt.names:
        table = catalog.index_owner(name)
        if table is None:
            if stmt.if_exists:
                continue
            raise SqlError("42704", f'index "{name}" does not exist')
        indexes = tuple(ix for ix in table.indexes if ix.name != name)
        changes.append((table.name, replace(table, indexes=indexes)))
    return changes


def apply_changes(catalog: CatalogSnapshot, changes: list[SchemaChange]) -> CatalogSnapshot:
    """A transaction's own view of the catalog after its (uncommitted) DDL."""
    for name, table in changes:
        catalog = catalog.with_table(name, table, catalog.version_ts_ns)
    return catalog
