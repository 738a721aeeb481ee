"""Column types: what the engine stores, how values are coerced into it, and how they
are represented in encoded rows.

Role: the catalog records a ``SqlType`` per column; INSERT and UPDATE coerce every value
to its column's type (PostgreSQL's assignment rules: range checks, length checks,
numeric rounding), so an encoded row always holds valid values.

In-memory values (what expressions see and results return):
    smallint/integer/bigint -> int, numeric -> Decimal, double precision -> float,
    text/varchar/char -> str (char(n) blank-padded to n), boolean -> bool,
    timestamp -> datetime.datetime (naive, UTC), bytea -> bytes, NULL -> None.

Raw values (what encoded rows and storage-side projections carry): the same, except
numeric(p,s) is the integer ``value * 10**s`` (unconstrained numeric: its string) and
timestamp is microseconds since the Unix epoch, so rows marshal compactly and exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from dsqlbench.sql.errors import (
    DATATYPE_MISMATCH,
    INVALID_DATETIME,
    INVALID_TEXT,
    OUT_OF_RANGE,
    STRING_TOO_LONG,
    SqlError,
    unsupported,
)

EPOCH = dt.datetime(1970, 1, 1)
ONE_MICROSECOND = dt.timedelta(microseconds=1)

INTEGER_BOUNDS = {"smallint": 1 << 15, "integer": 1 << 31, "bigint": 1 << 63}
INTEGER_KINDS = frozenset(INTEGER_BOUNDS)
TEXT_KINDS = frozenset({"text", "varchar", "char"})
NUMERIC_PRECISION_MAX = 1000

# pglast type names (the last part of TypeName.names) -> our kinds.
_TYPE_NAMES = {
    "int2": "smallint", "smallint": "smallint",
    "int4": "integer", "int": "integer", "integer": "integer",
    "int8": "bigint", "bigint": "bigint",
    "numeric": "numeric", "decimal": "numeric",
    "float8": "double", "float4": "double", "real": "double", "double precision": "double",
    "text": "text", "varchar": "varchar", "bpchar": "char", "char": "char",
    "bool": "boolean", "boolean": "boolean",
    "timestamp": "timestamp", "timestamptz": "timestamp",
    "bytea": "bytea",
}


@dataclass(frozen=True, slots=True)
class SqlType:
    kind: str
    length: int | None = None      # varchar(n), char(n)
    precision: int | None = None   # numeric(p, s)
    scale: int | None = None

    def __str__(self) -> str:
        if self.kind == "varchar":
            return f"character varying({self.length})" if self.length else "character varying"
        if self.kind == "char":
            return f"character({self.length})"
        if self.kind == "numeric" and self.precision is not None:
            return f"numeric({self.precision},{self.scale})"
        if self.kind == "double":
            return "double precision"
        if self.kind == "timestamp":
            return "timestamp without time zone"
        return self.kind

    def to_json(self) -> list:
        return [self.kind, self.length, self.precision, self.scale]

    @staticmethod
    def from_json(data: list) -> "SqlType":
        return SqlType(*data)


def type_from_name(name: str, modifiers: tuple[int, ...] = ()) -> SqlType:
    """Our type for a PostgreSQL type name and its modifiers; 0A000 if unsupported."""
    kind = _TYPE_NAMES.get(name)
    if kind is None:
        raise unsupported(f"type {name}")
    if kind in ("varchar", "char"):
        length = modifiers[0] if modifiers else (1 if kind == "char" else None)
        if length is not None and length < 1:
            raise SqlError(DATATYPE_MISMATCH, f"length for type {name} must be at least 1")
        return SqlType(kind, length=length)
    if kind == "numeric" and modifiers:
        precision = modifiers[0]
        scale = modifiers[1] if len(modifiers) > 1 else 0
        if not 1 <= precision <= NUMERIC_PRECISION_MAX or not 0 <= scale <= precision:
            raise SqlError(DATATYPE_MISMATCH, f"NUMERIC precision {precision} must be between 1 and "
                           f"{NUMERIC_PRECISION_MAX}, scale {scale} between 0 and the precision")
        return SqlType(kind, precision=precision, scale=scale)
    return SqlType(kind)


# --- coercion (assignment and explicit casts) -------------------------------------------

def coerce(value, sql_type: SqlType, *, explicit: bool = False):
    """``value`` as a valid value of ``sql_type``, or SqlError (PostgreSQL's rules)."""
    if value is None:
        return None
    kind = sql_type.kind
    if kind in INTEGER_KINDS:
        return _to_integer(value, kind)
    if kind == "numeric":
        return _to_numeric(value, sql_type)
    if kind in TEXT_KINDS:
        return _to_text(value, sql_type, explicit)
    if kind == "boolean":
        return _to_boolean(value)
    if kind == "timestamp":
        return _to_timestamp(value)
    if kind == "double":
        return _to_double(value)
    if kind == "bytea":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            return _bytea_from_text(value)
        raise _mismatch(value, sql_type)
    raise AssertionError(f"unknown type kind {kind}")


def _mismatch(value, sql_type: SqlType) -> SqlError:
    return SqlError(DATATYPE_MISMATCH, f"cannot convert {type(value).__name__} value {value!r} "
                    f"to type {sql_type}")


def _to_integer(value, kind: str) -> int:
    if isinstance(value, bool):
        raise SqlError(DATATYPE_MISMATCH, f"cannot cast type boolean to {kind}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise SqlError(OUT_OF_RANGE, f"{kind} out of range")
        result = int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SqlError(OUT_OF_RANGE, f"{kind} out of range")
        result = int(round(value))
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            raise SqlError(INVALID_TEXT, f'invalid input syntax for type {kind}: "{value}"') from None
    else:
        raise SqlError(DATATYPE_MISMATCH, f"cannot convert {value!r} to {kind}")
    bound = INTEGER_BOUNDS[kind]
    if not -bound <= result < bound:
        raise SqlError(OUT_OF_RANGE, f"{kind} out of range")
    return result


def to_decimal(value) -> Decimal:
    """A number (or numeric text) as Decimal, for arithmetic and numeric columns."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise SqlError(DATATYPE_MISMATCH, "cannot cast type boolean to numeric")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise SqlError(INVALID_TEXT, f'invalid input syntax for type numeric: "{value}"') from None
    raise SqlError(DATATYPE_MISMATCH, f"cannot convert {value!r} to numeric")


def _to_numeric(value, sql_type: SqlType) -> Decimal:
    number = to_decimal(value)
    if sql_type.precision is None:
        return number
    scale = sql_type.scale or 0
    try:
        rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise SqlError(OUT_OF_RANGE, "numeric field overflow") from None
    if abs(rounded) >= Decimal(10) ** (sql_type.precision - scale):
        raise SqlError(OUT_OF_RANGE, "numeric field overflow",
                       detail=f"A field with precision {sql_type.precision}, scale {scale} must "
                              f"round to an absolute value less than 10^{sql_type.precision - scale}.")
    return rounded


def _to_text(value, sql_type: SqlType, explicit: bool) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.datetime):
        text = format_timestamp(value)
    elif isinstance(value, (int, Decimal, float)):
        text = str(value)
    else:
        raise _mismatch(value, sql_type)
    if "\x00" in text:
        raise SqlError(INVALID_TEXT, "invalid byte sequence for encoding \"UTF8\": 0x00")
    length = sql_type.length
    if length is not None and len(text) > length:
        # PostgreSQL drops excess trailing blanks silently; explicit casts truncate.
        if explicit or not text[length:].strip(" "):
            text = text[:length]
        else:
            raise SqlError(STRING_TOO_LONG, f"value too long for type {sql_type}")
    if sql_type.kind == "char" and length is not None:
        text = text.ljust(length)
    return text


def _to_boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("t", "true", "y", "yes", "on", "1"):
            return True
        if word in ("f", "false", "n", "no", "off", "0"):
            return False
        raise SqlError(INVALID_TEXT, f'invalid input syntax for type boolean: "{value}"')
    if isinstance(value, int):
        return value != 0
    raise SqlError(DATATYPE_MISMATCH, f"cannot convert {value!r} to boolean")


def _to_timestamp(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else \
            value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise SqlError(INVALID_DATETIME,
                           f'invalid input syntax for type timestamp: "{value}"') from None
        return _to_timestamp(parsed)
    raise SqlError(DATATYPE_MISMATCH, f"cannot convert {value!r} to timestamp")


def _to_double(value) -> float:
    if isinstance(value, bool):
        raise SqlError(DATATYPE_MISMATCH, "cannot cast type boolean to double precision")
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise SqlError(INVALID_TEXT,
                           f'invalid input syntax for type double precision: "{value}"') from None
    raise SqlError(DATATYPE_MISMATCH, f"cannot convert {value!r} to double precision")


def _bytea_from_text(text: str) -> bytes:
    if text.startswith("\\x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise SqlError(INVALID_TEXT, "invalid hexadecimal data") from None
    return text.encode("utf-8")


def format_timestamp(value: dt.datetime) -> str:
    return value.isoformat(sep=" ")


def timestamp_from_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def timestamp_to_us(value: dt.datetime) -> int:
    return (value - EPOCH) // ONE_MICROSECOND


# --- raw representation in encoded rows -------------------------------------------------

def raw_converters(sql_type: SqlType):
    """``(to_raw, from_raw)`` for a column, or ``(None, None)`` when raw is the value."""
    if sql_type.kind == "numeric":
        if sql_type.precision is None:
            return str, Decimal
        scale = sql_type.scale or 0
        return (lambda d: int(d.scaleb(scale))), (lambda raw: Decimal(raw).scaleb(-scale))
    if sql_type.kind == "timestamp":
        return timestamp_to_us, timestamp_from_us
    return None, None
