"""The catalog: tables, columns, primary keys and indexes, versioned by commit time.

Role: the engine keeps one ``Catalog`` per cluster. A session reads the catalog "as of"
its transaction's ``t_start`` (``Catalog.as_of``), exactly as it reads rows; a DDL
transaction commits catalog rows (``catalog_rows``) with ``Commit(schema_change=True)``
and, once the commit reply says committed, the session installs the change at its
``t_commit`` (``Catalog.install``).

Invariants:
- versions are ordered by ``t_commit``; ``as_of(t)`` is the newest version at or below
  ``t``. A change whose reply arrives out of commit order is re-applied in order, so
  every version equals the ordered application of the changes before it;
- object ids (oids) come from one counter shared by every session and never repeat, so
  an oid is also a keyspace id (see ``codec``) that no other table or index ever used,
  even after a DROP or an aborted CREATE;
- a table without a primary key gets a hidden ``bigint`` row id as its key, as DSQL
  gives such tables a hidden unique key.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from dsqlbench.sql.codec import KEYSPACE_ID_MAX, KeyPart, KeySpace, RowCodec, dumps_raw, loads_raw
from dsqlbench.sql.types import SqlType

CATALOG_KEYSPACE_ID = 0
FIRST_OID = 1
HIDDEN_KEY_NAME = "__dsql_rowid"
_CATALOG_KEYSPACE = KeySpace(CATALOG_KEYSPACE_ID, [KeyPart(SqlType("varchar", length=63))])
_ROWID_TYPE = SqlType("bigint")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql_type: SqlType
    not_null: bool = False
    default_sql: str | None = None  # the DEFAULT expression's text (None: NULL)
    default: Any = None              # its compiled IR expression (not serialised)


@dataclass(frozen=True)
class Index:
    name: str
    oid: int
    columns: tuple[int, ...]  # column positions in the table
    unique: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    oid: int
    columns: tuple[Column, ...]
    pk: tuple[int, ...] = ()  # column positions; empty: a hidden row id is the key
    indexes: tuple[Index, ...] = ()
    # derived, built in __post_init__
    codec: RowCodec = field(init=False, repr=False, compare=False)
    pk_codec: RowCodec = field(init=False, repr=False, compare=False)
    keyspace: KeySpace = field(init=False, repr=False, compare=False)
    index_keyspaces: dict = field(init=False, repr=False, compare=False)
    positions: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "codec", RowCodec([c.sql_type for c in self.columns]))
        set_(self, "positions", {c.name: i for i, c in enumerate(self.columns)})
        set_(self, "keyspace", KeySpace(self.oid, self._pk_parts()))
        set_(self, "pk_codec", RowCodec([part.sql_type for part in self.keyspace.parts]))
        set_(self, "index_keyspaces", {index.name: self._index_keyspace(index) for index in self.indexes})

    # -- keys -------------------------------------------------------------------------
    @property
    def hidden_pk(self) -> bool:
        return not self.pk

    @property
    def pk_name(self) -> str:
        return f"{self.name}_pkey"

    def _pk_parts(self) -> list[KeyPart]:
        if self.hidden_pk:
            return [KeyPart(_ROWID_TYPE)]
        return [KeyPart(self.columns[i].sql_type) for i in self.pk]

    def _index_keyspace(self, index: Index) -> KeySpace:
        parts = [KeyPart(self.columns[i].sql_type, nullable=not self.columns[i].not_null)
                 for i in index.columns]
        return KeySpace(index.oid, parts + self._pk_parts())

    def pk_values(self, row: tuple) -> tuple:
        return tuple(row[i] for i in self.pk)

    def row_key(self, row: tuple, rowid: int | None = None) -> int:
        """The storage key of a row (``rowid`` for tables with a hidden key)."""
        if self.hidden_pk:
            assert rowid is not None
            return self.keyspace.key((rowid,))
        return self.keyspace.key(self.pk_values(row))

    def index_entry(self, index: Index, row: tuple, key: int) -> tuple[int, bytes]:
        """The index entry ``(key, value)`` that ``row`` (stored at ``key``) owns.

        A unique index entry without NULLs is keyed by the indexed values alone (the
        primary-key part left zero) so that two transactions inserting the same value
        write the same key and conflict; its value names the row's primary key.
        """
        space = self.index_keyspaces[index.name]
        values = tuple(row[i] for i in index.columns)
        pk = self.keyspace.decode(key)
        if index.unique and None not in values:
            bits = [part.encode(v) for part, v in zip(space.parts, values)]
            return space.prefix_range(bits)[0], dumps_raw(self.pk_codec.to_raw(pk))
        return space.key(values + pk), b""

    def index_entry_values(self, index: Index, key: int, value: bytes) -> tuple:
        """An index entry's columns: the indexed values, then the primary key."""
        decoded = self.index_keyspaces[index.name].decode(key)
        if index.unique and value:
            n = len(index.columns)
            return decoded[:n] + self.pk_codec.from_raw(tuple(loads_raw(value)))
        return decoded

    def index_entry_pk(self, index: Index, key: int, value: bytes) -> tuple:
        """The primary-key tuple an index entry points at."""
        return self.index_entry_values(index, key, value)[len(index.columns):]

    def column(self, name: str) -> Column | None:
        position = self.positions.get(name)
        return None if position is None else self.columns[position]

    # -- serialisation ----------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "name": self.name, "oid": self.oid,
            "columns": [[c.name, c.sql_type.to_json(), c.not_null, c.default_sql] for c in self.columns],
            "pk": list(self.pk),
            "indexes": [[ix.name, ix.oid, list(ix.columns), ix.unique] for ix in self.indexes],
        }


def catalog_key(name: str) -> int:
    return _CATALOG_KEYSPACE.key((name,))


def catalog_value(table: Table | None) -> bytes | None:
    if table is None:
        return None
    return json.dumps(table.to_json(), sort_keys=True, separators=(",", ":")).encode()


def catalog_keyspace_range() -> tuple[int, int]:
    return _CATALOG_KEYSPACE.full_range()


# --- versions ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class CatalogSnapshot:
    """The schema at one commit time: table name -> Table, and index name -> table name."""

    version_ts_ns: int = 0
    tables: dict = field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def index_owner(self, index_name: str) -> Table | None:
        for table in self.tables.values():
            if any(index.name == index_name for index in table.indexes):
                return table
        return None

    def with_table(self, name: str, table: Table | None, version_ts_ns: int) -> "CatalogSnapshot":
        tables = dict(self.tables)
        if table is None:
            tables.pop(name, None)
        else:
            tables[name] = table
        return CatalogSnapshot(version_ts_ns, tables)


# A schema change: name of the table it replaces, and the new definition (None: dropped).
SchemaChange = tuple[str, "Table | None"]


class Catalog:
    """Every catalog version this engine knows, ordered by commit time."""

    def __init__(self):
        self._times_ns: list[int] = [0]
        self._snapshots: list[CatalogSnapshot] = [CatalogSnapshot()]
        self._changes: list[tuple[int, list[SchemaChange]]] = []
        self._next_oid = FIRST_OID

    def allocate_oid(self) -> int:
        oid = self._next_oid
        assert oid <= KEYSPACE_ID_MAX, "out of keyspace ids"
        self._next_oid += 1
        return oid

    def as_of(self, t_ns: int) -> CatalogSnapshot:
        return self._snapshots[bisect_right(self._times_ns, t_ns) - 1]

    @property
    def latest(self) -> CatalogSnapshot:
        return self._snapshots[-1]

    @property
    def latest_change_ns(self) -> int:
        return self._times_ns[-1]

    def install(self, t_commit_ns: int, changes: list[SchemaChange]) -> None:
        """Record a transaction's committed schema changes at ``t_commit_ns`` (any arrival
        order: a change older than the newest version is re-applied in commit order)."""
        assert t_commit_ns > 0
        assert all(t != t_commit_ns for t, _ in self._changes), "two schema changes at one time"
        self._changes.append((t_commit_ns, list(changes)))
        self._changes.sort(key=lambda item: item[0])
        if t_commit_ns > self._times_ns[-1]:
            self._append(t_commit_ns, changes)
        else:
            self._rebuild()

    def _append(self, t_ns: int, changes: list[SchemaChange]) -> None:
        snapshot = self._snapshots[-1]
        for name, table in changes:
            snapshot = snapshot.with_table(name, table, t_ns)
        self._times_ns.append(t_ns)
        self._snapshots.append(snapshot)

    def _rebuild(self) -> None:
        base = self._snapshots[0]
        self._times_ns, self._snapshots = [0], [base]
        for t_ns, changes in self._changes:
            self._append(t_ns, changes)

    def bootstrap(self, change: SchemaChange) -> None:
        """Apply a change before any transaction ran (version 0): schema for a loader."""
        assert not self._changes, "bootstrap only before the first committed change"
        name, table = change
        self._snapshots[0] = self._snapshots[0].with_table(name, table, 0)

