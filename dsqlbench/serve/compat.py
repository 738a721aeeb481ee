"""``--compat pgbench``: what ``pgbench -i`` sends that DSQL rejects, made to work.

Role: with the switch, the connection rewrites a few statements before the engine sees
them; without it every one of them fails with DSQL's error, as on DSQL. The rewrites:

- ``CREATE TABLE pgbench_{branches,tellers,accounts}(x int not null, ...)`` gets
  ``x`` as its primary key at once (pgbench adds it afterwards with ALTER TABLE, which
  DSQL does not support), and table storage options ``WITH (fillfactor=...)`` go;
- ``ALTER TABLE t ADD PRIMARY KEY (cols)`` is accepted when ``t``'s key is already
  ``cols``;
- ``VACUUM`` / ``ANALYZE`` are accepted and do nothing (DSQL has no vacuum);
- ``TRUNCATE [TABLE] a, b`` becomes ``DELETE FROM`` each table (one statement each);
- ``COPY ... FROM STDIN`` loads in transactions of at most DSQL's row and size limits,
  committed on their own (so pgbench's single 100,000-row load fits DSQL's limits);
  without the switch COPY is one statement of the client's transaction, limits and all.

Invariant: nothing here changes how any other statement runs.
"""

from __future__ import annotations

import re

PGBENCH_KEYS = {"pgbench_branches": "bid", "pgbench_tellers": "tid", "pgbench_accounts": "aid"}
_CREATE = re.compile(r"^\s*create\s+table\s+(\w+)\s*\(", re.I)
_WITH_OPTIONS = re.compile(r"\)\s*with\s*\([^)]*\)\s*$", re.I)
_ALTER_PK = re.compile(r"^\s*alter\s+table\s+(\w+)\s+add\s+primary\s+key\s*\(([^)]*)\)\s*$", re.I)
_VACUUM = re.compile(r"^\s*(vacuum|analyze)\b", re.I)
_TRUNCATE = re.compile(r"^\s*truncate\s+(?:table\s+)?(.+?)\s*$", re.I | re.S)


def rewrite(sql: str, catalog) -> tuple[str, object] | None:
    """``("noop", tag)``, ``("sql", [statements])`` or ``("error", message)``; None: unchanged."""
    match = _VACUUM.match(sql)
    if match:
        return "noop", match.group(1).upper()
    match = _TRUNCATE.match(sql)
    if match:
        names = [n.strip() for n in match.group(1).split(",")]
        return "sql", [f"DELETE FROM {name}" for name in names if name]
    match = _ALTER_PK.match(sql)
    if match:
        return _alter_primary_key(match.group(1), match.group(2), catalog)
    match = _CREATE.match(sql)
    if match:
        text = _WITH_OPTIONS.sub(")", sql.rstrip())
        key = PGBENCH_KEYS.get(match.group(1).lower())
        if key:
            text = re.sub(rf"\b{key}(\s+int)\s+not\s+null", rf"{key}\1 primary key", text, count=1,
                          flags=re.I)
        return ("sql", [text]) if text != sql else None
    return None


def _alter_primary_key(table_name: str, columns: str, catalog):
    table = catalog.table(table_name.lower())
    wanted = [c.strip().lower() for c in columns.split(",")]
    if table is not None and [table.columns[i].name for i in table.pk] == wanted:
        return "noop", "ALTER TABLE"
    return "error", "unsupported ALTER TABLE ADD PRIMARY KEY: the key must be declared at CREATE TABLE"
