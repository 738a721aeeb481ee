"""COPY ... FROM STDIN for ``dsqlbench serve``: the statement, the text format, the load.

Role: recognise ``COPY table [(columns)] FROM STDIN [[WITH] (options)]``, decode the
data PostgreSQL's text format carries (tab-separated, ``\\N`` for NULL, backslash
escapes; CSV with ``FORMAT csv``), and turn rows into multi-row INSERT statements
with parameters, which the engine runs like any other statement (so primary keys,
NOT NULL, types and DSQL's limits all apply).

Invariants: a row with the wrong number of fields is 22P04 with its line number; rows
are inserted in input order; each INSERT carries at most ``ROWS_PER_INSERT`` rows.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from dsqlbench.sql.errors import SqlError

ROWS_PER_INSERT = 500
_COPY = re.compile(r"^\s*copy\s+(\w+)\s*(?:\(([^)]*)\))?\s+from\s+stdin\b(.*)$", re.I | re.S)
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class CopySpec:
    table: str
    columns: tuple | None
    csv: bool
    header: bool


def match_copy(sql: str) -> CopySpec | None:
    match = _COPY.match(sql)
    if not match:
        if re.match(r"^\s*copy\b", sql, re.I):
            raise SqlError("0A000", "unsupported: COPY other than FROM STDIN")
        return None
    columns = tuple(c.strip().lower() for c in match.group(2).split(",")) if match.group(2) else None
    options = match.group(3).lower()
    return CopySpec(match.group(1).lower(), columns, "csv" in options,
                    bool(re.search(r"header(\s+(true|on|1))?\b", options)))


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), field)


def decode_rows(data: bytes, spec: CopySpec, width: int) -> list[tuple]:
    """Rows of ``width`` fields (None for NULL) from the COPY data stream."""
    text = data.decode("utf-8")
    if spec.csv:
        lines = list(csv.reader(io.StringIO(text)))
        if spec.header and lines:
            lines = lines[1:]
        rows = [tuple(None if f == "" else f for f in line) for line in lines if line]
    else:
        rows = []
        for line in text.split("\n"):
            if line == "\\." or line == "":
                continue
            rows.append(tuple(None if f == "\\N" else _unescape(f) for f in line.split("\t")))
    for number, row in enumerate(rows, 1):
        if len(row) != width:
            what = "extra data after last expected column" if len(row) > width else \
                "missing data for column"
            raise SqlError("22P04", f"{what}", detail=f"COPY {spec.table}, line {number}")
    return rows


def insert_statements(spec: CopySpec, columns: list, rows: list):
    """``(sql, params)`` INSERTs for ``rows`` in chunks of ``ROWS_PER_INSERT``."""
    names = ", ".join(columns)
    width = len(columns)
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        values = ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")"
            for i in range(len(chunk)))
        params = tuple(v for row in chunk for v in row)
        yield f"INSERT INTO {spec.table} ({names}) VALUES {values}", params, len(chunk)
