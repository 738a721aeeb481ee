"""PostgreSQL type OIDs and the text and binary wire formats of the engine's types.

Role: ``dsqlbench serve`` describes result columns with PostgreSQL's built-in type OIDs
(so psycopg, asyncpg and psql decode them without catalog look-ups), encodes result
values in the format each client asked for, and decodes bound parameters.

Invariants:
- only built-in OIDs are ever sent, so no client needs ``pg_type`` to read a result;
- ``encode(value, oid, fmt)`` is what PostgreSQL sends for that type and format;
  ``decode_param(data, oid, fmt)`` inverts it for parameters, and a parameter of an
  unspecified type (OID 0) or ``unknown`` stays text for the engine to coerce;
- a value that does not fit its format raises ``SqlError`` 22P03/22P02, never a crash.
"""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal

from dsqlbench.sql.errors import SqlError
from dsqlbench.sql.types import SqlType

BOOL, BYTEA, NAME, INT8, INT2, INT4, TEXT, OID = 16, 17, 19, 20, 21, 23, 25, 26
FLOAT4, FLOAT8, UNKNOWN, BPCHAR, VARCHAR = 700, 701, 705, 1042, 1043
TIMESTAMP, TIMESTAMPTZ, NUMERIC, CHAR = 1114, 1184, 1700, 18

_KIND_OID = {"smallint": INT2, "integer": INT4, "bigint": INT8, "numeric": NUMERIC,
             "double": FLOAT8, "text": TEXT, "varchar": VARCHAR, "char": BPCHAR,
             "boolean": BOOL, "timestamp": TIMESTAMP, "bytea": BYTEA}
TYPE_SIZE = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, OID: 4, FLOAT4: 4, FLOAT8: 8, TIMESTAMP: 8,
             TIMESTAMPTZ: 8, NAME: 64, CHAR: 1}
TYPE_NAME = {BOOL: "bool", BYTEA: "bytea", NAME: "name", INT8: "int8", INT2: "int2",
             INT4: "int4", TEXT: "text", OID: "oid", FLOAT4: "float4", FLOAT8: "float8",
             UNKNOWN: "unknown", BPCHAR: "bpchar", VARCHAR: "varchar", TIMESTAMP: "timestamp",
             TIMESTAMPTZ: "timestamptz", NUMERIC: "numeric", CHAR: "char"}
EPOCH_2000 = dt.datetime(2000, 1, 1)
_INT_FORMATS = {INT2: struct.Struct("!h"), INT4: struct.Struct("!i"), INT8: struct.Struct("!q"),
                OID: struct.Struct("!I")}
_FLOAT_FORMATS = {FLOAT4: struct.Struct("!f"), FLOAT8: struct.Struct("!d")}
_Q = struct.Struct("!q")


def oid_of(sql_type: SqlType) -> int:
    return _KIND_OID[sql_type.kind]


def type_modifier(sql_type: SqlType) -> int:
    """PostgreSQL's atttypmod: varchar(n)/char(n) -> n + 4, numeric(p, s) -> (p << 16 | s) + 4."""
    if sql_type.kind in ("varchar", "char") and sql_type.length:
        return sql_type.length + 4
    if sql_type.kind == "numeric" and sql_type.precision is not None:
        return (sql_type.precision << 16 | (sql_type.scale or 0)) + 4
    return -1


def oid_of_value(value) -> int | None:
    """The OID a computed value gets when no column type is known (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT8
    if isinstance(value, Decimal):
        return NUMERIC
    if isinstance(value, float):
        return FLOAT8
    if isinstance(value, dt.datetime):
        return TIMESTAMP
    if isinstance(value, (bytes, bytearray)):
        return BYTEA
    return TEXT


# --- results ----------------------------------------------------------------------------

def encode(value, oid: int, fmt: int) -> bytes | None:
    """One result cell in text (0) or binary (1) format."""
    if value is None:
        return None
    if fmt == 0:
        return text_of(value).encode("utf-8")
    return _binary(value, oid)


def text_of(value) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) \
            else {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    return str(value)


def _binary(value, oid: int) -> bytes:
    try:
        if oid in _INT_FORMATS:
            return _INT_FORMATS[oid].pack(int(value))
        if oid in _FLOAT_FORMATS:
            return _FLOAT_FORMATS[oid].pack(float(value))
        if oid == BOOL:
            return b"\x01" if value else b"\x00"
        if oid == BYTEA:
            return bytes(value) if isinstance(value, (bytes, bytearray)) else text_of(value).encode()
        if oid in (TIMESTAMP, TIMESTAMPTZ):
            return _Q.pack(_us_since_2000(value))
        if oid == NUMERIC:
            return numeric_binary(Decimal(value))
    except (struct.error, TypeError, ValueError, ArithmeticError) as error:
        raise SqlError("22P03", f"cannot send {value!r} as binary {TYPE_NAME.get(oid, oid)}: {error}")
    return text_of(value).encode("utf-8")


def _us_since_2000(value: dt.datetime) -> int:
    delta = value.replace(tzinfo=None) - EPOCH_2000
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def numeric_binary(value: Decimal) -> bytes:
    """PostgreSQL's numeric send format: base-10000 digits, weight, sign, scale."""
    if value.is_nan():
        return struct.pack("!hhHH", 0, 0, 0xC000, 0)
    sign, digits, exponent = value.as_tuple()
    scale = max(0, -exponent)
    text = "".join(map(str, digits)) or "0"
    if exponent > 0:
        text += "0" * exponent
        exponent = 0
    int_part = text[:len(text) + exponent] if exponent < 0 else text
    frac_part = text[len(text) + exponent:] if exponent < 0 else ""
    int_part = int_part.lstrip("0")
    int_part = "0" * (-len(int_part) % 4) + int_part
    frac_part = frac_part + "0" * (-len(frac_part) % 4)
    groups = [int(int_part[i:i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i:i + 4]) for i in range(0, len(frac_part), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    header = struct.pack("!hhHH", len(groups), weight, 0x4000 if sign else 0, scale)
    return header + b"".join(struct.pack("!H", g) for g in groups)


def numeric_from_binary(data: bytes) -> Decimal:
    count, weight, sign, scale = struct.unpack("!hhHH", data[:8])
    if sign == 0xC000:
        return Decimal("NaN")
    groups = struct.unpack(f"!{count}H", data[8:8 + 2 * count])
    value = sum(Decimal(g) * Decimal(10000) ** (weight - i) for i, g in enumerate(groups))
    value = value.quantize(Decimal(1).scaleb(-scale)) if count else Decimal(0).scaleb(-scale)
    return -value if sign == 0x4000 else value


# --- parameters -------------------------------------------------------------------------

def decode_param(data: bytes | None, oid: int, fmt: int):
    """A bound parameter as the engine takes it (text of unknown types stays text)."""
    if data is None:
        return None
    try:
        return _decode_binary(data, oid) if fmt == 1 else _decode_text(data.decode("utf-8"), oid)
    except (struct.error, ValueError, ArithmeticError, UnicodeDecodeError) as error:
        raise SqlError("22P02", f"invalid input for parameter of type "
                                f"{TYPE_NAME.get(oid, oid)}: {error}") from None


def _decode_text(text: str, oid: int):
    if oid in (INT2, INT4, INT8, OID):
        return int(text)
    if oid in _FLOAT_FORMATS:
        return float(text)
    if oid == NUMERIC:
        return Decimal(text)
    if oid == BOOL:
        return text.strip().lower() in ("t", "true", "yes", "on", "1", "y")
    return text


def _decode_binary(data: bytes, oid: int):
    if oid in _INT_FORMATS:
        return _INT_FORMATS[oid].unpack(data)[0]
    if oid in _FLOAT_FORMATS:
        return _FLOAT_FORMATS[oid].unpack(data)[0]
    if oid == BOOL:
        return data != b"\x00"
    if oid == BYTEA:
        return bytes(data)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        return EPOCH_2000 + dt.timedelta(microseconds=_Q.unpack(data)[0])
    if oid == NUMERIC:
        return numeric_from_binary(data)
    return data.decode("utf-8")
