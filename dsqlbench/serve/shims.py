"""Catalog shims: what clients send on connect that is not the engine's SQL.

Role: before a statement reaches the SQL engine, ``answer`` recognises the session
commands and catalog look-ups that psycopg, asyncpg, psql and pgbench send (SET, RESET,
SHOW, DISCARD, ``SELECT version()``, ``current_setting``, ``current_database()``,
pgbench's partition check on ``pg_catalog``, psql's ``\\d`` listing) and answers them
from the session's settings and the engine's catalog. Anything else returns None and
goes to the engine, which rejects what DSQL does not support.

Invariants: a shim never touches storage or a transaction; settings are per
connection; a setting PostgreSQL reports (``REPORTED``) is reported again when changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dsqlbench import __version__
from dsqlbench.serve import pgtypes as T
from dsqlbench.serve.messages import Field

SERVER_VERSION = "16.9"
VERSION_TEXT = (f"PostgreSQL {SERVER_VERSION} on x86_64-pc-linux-gnu, compiled by dsqlbench "
                f"{__version__} (simulated Aurora DSQL), 64-bit")
DEFAULT_SETTINGS = {
    "server_version": SERVER_VERSION, "server_version_num": "160009",
    "server_encoding": "UTF8", "client_encoding": "UTF8", "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres", "integer_datetimes": "on", "standard_conforming_strings": "on",
    "TimeZone": "UTC", "is_superuser": "on", "session_authorization": "admin",
    "application_name": "", "default_transaction_isolation": "repeatable read",
    "transaction_isolation": "repeatable read", "search_path": "public",
    "default_transaction_read_only": "off", "in_hot_standby": "off", "extra_float_digits": "1",
    "statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
    "max_connections": "10000", "synchronous_commit": "on", "datestyle": "ISO, MDY",
}
REPORTED = ("server_version", "server_encoding", "client_encoding", "DateStyle", "IntervalStyle",
            "integer_datetimes", "standard_conforming_strings", "TimeZone", "is_superuser",
            "session_authorization", "application_name", "default_transaction_read_only",
            "in_hot_standby")
_CANONICAL = {name.lower(): name for name in DEFAULT_SETTINGS}


@dataclass
class ShimResult:
    tag: str
    fields: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    reports: list = field(default_factory=list)   # (name, value) ParameterStatus to send


class Settings:
    """One connection's run-time parameters."""

    def __init__(self, startup: dict):
        self.values = dict(DEFAULT_SETTINGS)
        for name, value in startup.items():
            if name not in ("user", "database", "replication", "options"):
                self.values[_CANONICAL.get(name.lower(), name)] = value
        self.user = startup.get("user", "admin")
        self.database = startup.get("database", self.user)

    def get(self, name: str) -> str | None:
        return self.values.get(_CANONICAL.get(name.lower(), name.lower()))

    def set(self, name: str, value: str) -> list:
        key = _CANONICAL.get(name.lower(), name.lower())
        if key == "datestyle":
            key = "DateStyle"
        self.values[key] = value
        if key == "DateStyle":
            self.values["datestyle"] = value
        return [(key, value)] if key in REPORTED else []


_WS = re.compile(r"\s+")
_SET = re.compile(r"^set\s+(?:session\s+|local\s+)?([a-z_][a-z0-9_.]*)\s*(?:=|\s+to\s+)\s*(.+)$", re.I)
_SET_TZ = re.compile(r"^set\s+(?:session\s+|local\s+)?time\s+zone\s+(.+)$", re.I)
_SET_NAMES = re.compile(r"^set\s+names\s+(.+)$", re.I)
_SET_TXN = re.compile(r"^set\s+(?:session\s+characteristics\s+as\s+)?transaction\s+(.+)$", re.I)
_RESET = re.compile(r"^reset\s+([a-z_][a-z0-9_.]*)$", re.I)
_SHOW = re.compile(r"^show\s+([a-z_][a-z0-9_.]*|time\s+zone|transaction\s+isolation\s+level)$", re.I)
_SELECT_FUNC = re.compile(
    r"^select\s+(?:pg_catalog\.)?(version|current_database|current_schema|current_user|session_user|"
    r"current_setting|pg_backend_pid)\s*(?:\(\s*(?:'([^']*)')?\s*\))?(?:\s+as\s+\"?(\w+)\"?)?$", re.I)
_PARTITIONS = re.compile(r"pg_partitioned_table.*where\s+c\.relname\s*=\s*'([^']+)'", re.I | re.S)
_PSQL_LIST = re.compile(r"^select n\.nspname as \"schema\",\s*c\.relname as \"name\".*"
                        r"from pg_catalog\.pg_class c", re.I | re.S)
_UNQUOTE = re.compile(r"^'(.*)'$|^\"(.*)\"$", re.S)


def normalise(sql: str) -> str:
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return _WS.sub(" ", text)


def _value(raw: str) -> str:
    raw = raw.strip()
    match = _UNQUOTE.match(raw)
    if match:
        return (match.group(1) if match.group(1) is not None else match.group(2)).replace("''", "'")
    return raw


def answer(sql: str, settings: Settings, catalog, backend_pid: int) -> ShimResult | None:
    """The shim's answer to ``sql``, or None when the engine should run it."""
    text = normalise(sql)
    head = text[:8].lower()
    if head.startswith(("set", "reset", "show", "discard")):
        return _session_command(text, settings)
    if head.startswith("select"):
        return _select(text, settings, catalog, backend_pid)
    return None


def _session_command(text: str, settings: Settings) -> ShimResult | None:
    lower = text.lower()
    if lower in ("discard all", "reset all"):
        return ShimResult(lower.split()[0].upper() + (" ALL" if lower.startswith("discard") else ""))
    for pattern, name in ((_SET_TZ, "TimeZone"), (_SET_NAMES, "client_encoding")):
        match = pattern.match(text)
        if match:
            return ShimResult("SET", reports=settings.set(name, _value(match.group(1))))
    if _SET_TXN.match(text):
        return ShimResult("SET")
    match = _SET.match(text)
    if match:
        value = _value(match.group(2))
        if value.lower() == "default":
            value = DEFAULT_SETTINGS.get(_CANONICAL.get(match.group(1).lower(), ""), "")
        return ShimResult("SET", reports=settings.set(match.group(1), value))
    match = _RESET.match(text)
    if match:
        name = match.group(1)
        default = DEFAULT_SETTINGS.get(_CANONICAL.get(name.lower(), ""), "")
        return ShimResult("RESET", reports=settings.set(name, default))
    match = _SHOW.match(text)
    if match:
        name = _WS.sub("_", match.group(1).lower())
        name = {"time_zone": "TimeZone", "transaction_isolation_level": "transaction_isolation"}.get(name, name)
        value = settings.get(name)
        if value is None:
            return None  # the engine answers: unrecognized configuration parameter
        return ShimResult("SHOW", [Field(name, T.TEXT)], [(value,)])
    return None


def _select(text: str, settings: Settings, catalog, backend_pid: int) -> ShimResult | None:
    match = _SELECT_FUNC.match(text)
    if match:
        return _function(match.group(1).lower(), match.group(2), match.group(3), settings, backend_pid)
    if "pg_catalog" not in text.lower():
        return None
    match = _PARTITIONS.search(text)
    if match:
        return _partitions(match.group(1), catalog)
    if _PSQL_LIST.match(text):
        return _psql_list(text, settings, catalog)
    return describe_table(text, catalog)


def _function(name, argument, alias, settings: Settings, backend_pid: int) -> ShimResult | None:
    if name == "version":
        value = VERSION_TEXT
    elif name == "current_database":
        value = settings.database
    elif name == "current_schema":
        value = "public"
    elif name in ("current_user", "session_user"):
        value = settings.user
    elif name == "pg_backend_pid":
        return ShimResult("SELECT 1", [Field(alias or name, T.INT4, 4)], [(backend_pid,)])
    else:
        value = settings.get(argument or "")
        if value is None:
            return None
    return ShimResult("SELECT 1", [Field(alias or name, T.TEXT)], [(value,)])


def _partitions(table: str, catalog) -> ShimResult:
    """pgbench's check of how pgbench_accounts is partitioned: never, here."""
    fields = [Field("n", T.INT4, 4), Field("partstrat", T.CHAR, 1), Field("count", T.INT8, 8)]
    rows = [(1, None, 0)] if catalog.table(table) is not None else []
    return ShimResult(f"SELECT {len(rows)}", fields, rows)


def _psql_list(text: str, settings: Settings, catalog) -> ShimResult:
    """psql's ``\\d`` / ``\\dt`` / ``\\di``: the relations of the catalog."""
    lower = text.lower()
    want_tables = "'r'" in lower
    want_indexes = "'i'" in lower
    pattern = re.search(r"c\.relname operator\(pg_catalog\.~\) '\^\((.*?)\)\$'", text, re.I)
    rows = []
    for name in sorted(catalog.tables):
        table = catalog.tables[name]
        if want_tables:
            rows.append(("public", name, "table", settings.user))
        if want_indexes:
            rows.extend(("public", index.name, "index", settings.user, name) for index in table.indexes)
    if pattern:
        regex = re.compile("^(" + pattern.group(1) + ")$")
        rows = [row for row in rows if regex.match(row[1])]
    rows.sort(key=lambda row: (row[0], row[1]))
    names = ["Schema", "Name", "Type", "Owner"] + (["Table"] if want_indexes and not want_tables else [])
    if want_indexes and want_tables:
        rows = [row[:4] for row in rows]
    return ShimResult(f"SELECT {len(rows)}", [Field(n, T.NAME if n in ("Schema", "Name") else T.TEXT)
                                              for n in names], rows)


# --- psql's \d TABLE: the nine catalog queries psql 15 sends, answered from the catalog --

_OID_LITERAL = re.compile(r"(?:c\.oid|a\.attrelid|pol\.polrelid|stxrelid|pc\.oid|i\.inhrelid|"
                          r"i\.inhparent)\s*=\s*'(\d+)'", re.I)
_DESCRIBE_EMPTY = (  # (fragment, columns): psql sections DSQL has nothing for
    ("from pg_catalog.pg_policy", 6), ("from pg_catalog.pg_statistic_ext", 9),
    ("from pg_catalog.pg_publication", 3), ("i.inhrelid = '", 1), ("i.inhparent = '", 4),
)


def _table_by_oid(catalog, oid: int):
    return next((t for t in catalog.tables.values() if t.oid == oid), None)


def _texts(names: list, rows: list) -> ShimResult:
    return ShimResult(f"SELECT {len(rows)}", [Field(n, T.TEXT) for n in names], rows)


def describe_table(text: str, catalog) -> ShimResult | None:
    """psql's ``\\d NAME`` queries, or None when ``text`` is not one of them."""
    lower = text.lower()
    if lower.startswith("select c.oid, n.nspname, c.relname from pg_catalog.pg_class c"):
        pattern = re.search(r"operator\(pg_catalog\.~\) '\^\((.*?)\)\$'", text, re.I)
        regex = re.compile("^(" + (pattern.group(1) if pattern else ".*") + ")$")
        rows = [(str(t.oid), "public", name) for name, t in sorted(catalog.tables.items())
                if regex.match(name)]
        return _texts(["oid", "nspname", "relname"], rows)
    match = _OID_LITERAL.search(text)
    if match is None:
        return None
    table = _table_by_oid(catalog, int(match.group(1)))
    for fragment, width in _DESCRIBE_EMPTY:
        if fragment in lower:
            return _texts([f"c{i}" for i in range(width)], [])
    if table is None:
        return None
    if lower.startswith("select c.relchecks"):
        row = ("0", "r", "t" if table.pk or table.indexes else "f", "f", "f", "f", "f", "f", "f",
               "", "0", "", "p", "d", "heap")
        return _texts([f"c{i}" for i in range(len(row))], [row])
    if lower.startswith("select a.attname"):
        rows = [(c.name, str(c.sql_type), c.default_sql, "t" if c.not_null or i in table.pk else "f",
                 None, "", "") for i, c in enumerate(table.columns)]
        return _texts(["attname", "format_type", "default", "attnotnull", "attcollation",
                       "attidentity", "attgenerated"], rows)
    if lower.startswith("select c2.relname, i.indisprimary"):
        return _texts([f"c{i}" for i in range(12)], _index_rows(table))
    return None


def _index_rows(table) -> list:
    rows = []
    if table.pk:
        cols = ", ".join(table.columns[i].name for i in table.pk)
        name = table.pk_name
        rows.append((name, "t", "t", "f", "t", f"CREATE UNIQUE INDEX {name} ON public.{table.name} "
                     f"USING btree ({cols})", f"PRIMARY KEY ({cols})", "p", "f", "f", "f", "0"))
    for index in table.indexes:
        cols = ", ".join(table.columns[i].name for i in index.columns)
        unique = "UNIQUE " if index.unique else ""
        rows.append((index.name, "f", "t" if index.unique else "f", "f", "t",
                     f"CREATE {unique}INDEX {index.name} ON public.{table.name} USING btree ({cols})",
                     None, None, None, None, "f", "0"))
    return rows
