"""Key and row codecs: how SQL rows become the storage's ``int -> bytes`` pairs.

Keys. Every table (its primary key), every secondary index and the catalog is a
*keyspace* with an id and a fixed list of key parts. A key is

    key = 1 << (W + KEYSPACE_BITS) | keyspace_id << W | payload

where ``W`` is the keyspace's payload width in bits and ``payload`` packs the parts,
each in a fixed number of bits, in an order-preserving way (integers biased, text as
zero-padded UTF-8 bytes, a leading null flag for nullable parts so NULLs sort last).
Hence:
- within a keyspace, integer order of keys is the order of the key tuples, so a range
  of tuples (an equality prefix, then a range on the next part) is a range of ints;
- keyspaces never interleave: a keyspace occupies ``[base, base + 2**W)``, and two
  keyspaces of different widths have keys of different bit lengths;
- small integer keys stay small: a table keyed by one ``integer`` has keys below 2**53.
  Wider keys exceed 64 bits (the protocol allows it); ``components.adjudicator.conflict_key`` folds
  them into int64 for conflict tables.

Rows. A row value is ``marshal`` (format version 2: no back-references, so the bytes
depend only on the values) of the tuple of the row's raw values (see ``types``).
Storage-side projections are marshalled raw tuples too, so their size is what crosses
the network.
"""

from __future__ import annotations

import marshal
from decimal import Decimal
from math import ceil, floor

import datetime as dt

from dsqlbench.sql.errors import LIMIT_EXCEEDED, SqlError, unsupported
from dsqlbench.sql.types import (
    INTEGER_BOUNDS,
    coerce,
    SqlType,
    raw_converters,
    timestamp_from_us,
    timestamp_to_us,
    to_decimal,
)

KEYSPACE_BITS = 20
KEYSPACE_ID_MAX = (1 << KEYSPACE_BITS) - 1
TEXT_KEY_BYTES = 1024  # unbounded text in a key: DSQL's 1 KiB key-size bound
MARSHAL_VERSION = 2


class NotEncodable(Exception):
    """A bound value that cannot be placed in a key part (the planner drops the bound)."""


class KeyPart:
    """One column of a key: fixed width in bits, order-preserving encoding."""

    __slots__ = ("sql_type", "nullable", "value_bits", "width", "_bias", "_bytes")

    def __init__(self, sql_type: SqlType, nullable: bool = False):
        self.sql_type = sql_type
        self.nullable = nullable
        kind = sql_type.kind
        self._bias = 0
        self._bytes = 0
        if kind in INTEGER_BOUNDS:
            self._bias = INTEGER_BOUNDS[kind]
            self.value_bits = self._bias.bit_length()
        elif kind == "timestamp":
            self._bias = 1 << 63
            self.value_bits = 64
        elif kind == "boolean":
            self.value_bits = 1
        elif kind == "numeric":
            if sql_type.precision is None:
                raise unsupported("numeric without precision in a key")
            self._bias = 10 ** sql_type.precision
            self.value_bits = (2 * self._bias).bit_length()
        elif kind in ("varchar", "char"):
            self._bytes = 4 * sql_type.length if sql_type.length else TEXT_KEY_BYTES
            self.value_bits = 8 * self._bytes
        elif kind == "text":
            self._bytes = TEXT_KEY_BYTES
            self.value_bits = 8 * self._bytes
        else:
            raise unsupported(f"datatype {sql_type} in a key")
        self.width = self.value_bits + (1 if nullable else 0)

    def encode(self, value) -> int:
        """The part's bits for a stored (already coerced) value."""
        if value is None:
            assert self.nullable, "NULL in a NOT NULL key part"
            return 1 << self.value_bits
        kind = self.sql_type.kind
        if self._bytes:
            data = value.encode("utf-8")
            if len(data) > self._bytes:
                raise SqlError(LIMIT_EXCEEDED, f"key size {len(data)} exceeds maximum {self._bytes}")
            return int.from_bytes(data.ljust(self._bytes, b"\x00"), "big")
        if kind == "boolean":
            return int(value)
        if kind == "timestamp":
            return timestamp_to_us(value) + self._bias
        if kind == "numeric":
            return int(value.scaleb(self.sql_type.scale or 0)) + self._bias
        return value + self._bias

    def decode(self, bits: int):
        if self.nullable and bits >> self.value_bits:
            return None
        kind = self.sql_type.kind
        if self._bytes:
            return bits.to_bytes(self._bytes, "big").rstrip(b"\x00").decode("utf-8")
        if kind == "boolean":
            return bool(bits)
        if kind == "timestamp":
            return timestamp_from_us(bits - self._bias)
        if kind == "numeric":
            return Decimal(bits - self._bias).scaleb(-(self.sql_type.scale or 0))
        return bits - self._bias

    def encode_bound(self, value, low: bool) -> tuple[int, bool]:
        """``(bits, exact)`` for a comparison bound. When ``value`` does not fit the
        column's type exactly, the bits are those of the nearest stored value inside the
        bound (rounded up for a low bound, down for a high one), to be used inclusively.
        NotEncodable when no bound can be placed (the planner then drops the bound; the
        condition is rechecked at storage either way)."""
        kind = self.sql_type.kind
        if value is None or isinstance(value, bool) and kind != "boolean":
            raise NotEncodable
        try:
            if isinstance(value, str) and not self._bytes:  # a literal typed by its column
                value = to_decimal(value) if kind == "numeric" else coerce(value, self.sql_type)
            if kind in INTEGER_BOUNDS:
                return self._integer_bound(value, low)
            if kind == "numeric":
                return self._numeric_bound(value, low)
            if self._bytes:
                if not isinstance(value, str):
                    raise NotEncodable
                if kind == "char" and self.sql_type.length:
                    value = value.ljust(self.sql_type.length)
                return self.encode(value), True
            if kind == "timestamp" and isinstance(value, dt.datetime):
                return self.encode(value), True
            if kind == "boolean" and isinstance(value, bool):
                return self.encode(value), True
        except (SqlError, ValueError, ArithmeticError):
            raise NotEncodable from None
        raise NotEncodable

    def _integer_bound(self, value, low: bool) -> tuple[int, bool]:
        if isinstance(value, int):
            number, exact = value, True
        elif isinstance(value, (Decimal, float)):
            # Stored values are integers: col >= 2.5 means col >= 3, col <= 2.5 col <= 2.
            number = ceil(value) if low else floor(value)
            exact = number == value
        else:
            raise NotEncodable
        clamped = min(max(number, -self._bias), self._bias - 1)
        return clamped + self._bias, exact and clamped == number

    def _numeric_bound(self, value, low: bool) -> tuple[int, bool]:
        if not isinstance(value, (int, Decimal, float)):
            raise NotEncodable
        scaled = Decimal(repr(value) if isinstance(value, float) else value).scaleb(
            self.sql_type.scale or 0)
        number = ceil(scaled) if low else floor(scaled)  # stored values are whole units
        clamped = min(max(number, -self._bias + 1), self._bias - 1)
        return clamped + self._bias, number == scaled and clamped == number


class KeySpace:
    """A table's primary key, an index, or the catalog: keys of a fixed layout."""

    __slots__ = ("keyspace_id", "parts", "width", "base", "shifts")

    def __init__(self, keyspace_id: int, parts: list[KeyPart]):
        assert 0 <= keyspace_id <= KEYSPACE_ID_MAX
        self.keyspace_id = keyspace_id
        self.parts = tuple(parts)
        self.width = sum(part.width for part in parts)
        self.base = (1 << (self.width + KEYSPACE_BITS)) | (keyspace_id << self.width)
        shifts = []
        remaining = self.width
        for part in parts:
            remaining -= part.width
            shifts.append(remaining)
        self.shifts = tuple(shifts)

    def key(self, values) -> int:
        payload = 0
        for part, value in zip(self.parts, values):
            payload = (payload << part.width) | part.encode(value)
        return self.base | payload

    def decode(self, key: int) -> tuple:
        payload = key - self.base
        assert 0 <= payload < (1 << self.width), "key outside this keyspace"
        return tuple(part.decode((payload >> shift) & ((1 << part.width) - 1))
                     for part, shift in zip(self.parts, self.shifts))

    def full_range(self) -> tuple[int, int]:
        return self.base, self.base + (1 << self.width)

    def contains(self, key: int) -> bool:
        return self.base <= key < self.base + (1 << self.width)

    def prefix_range(self, prefix_bits: list[int], low: tuple[int, bool] | None = None,
                     high: tuple[int, bool] | None = None) -> tuple[int, int]:
        """``[low_key, high_key)`` of keys whose first parts equal ``prefix_bits`` and whose
        next part lies within ``low``/``high`` (each ``(bits, inclusive)``) when given."""
        k = len(prefix_bits)
        assert k <= len(self.parts) and (k < len(self.parts) or (low is None and high is None))
        payload = 0
        for part, bits in zip(self.parts, prefix_bits):
            payload = (payload << part.width) | bits
        tail = self.shifts[k - 1] if k else self.width  # bits below the prefix
        start = self.base | (payload << tail)
        end = start + (1 << tail)
        if k == len(self.parts):
            return start, end
        shift = self.shifts[k]
        if low is not None:
            bits, inclusive = low
            start = max(start, (self.base | (payload << tail)) + ((bits if inclusive else bits + 1) << shift))
        if high is not None:
            bits, inclusive = high
            end = min(end, (self.base | (payload << tail)) + ((bits + 1 if inclusive else bits) << shift))
        return start, max(start, end)


def key_bytes(key: int) -> int:
    """Bytes a key occupies on the wire and in a write set."""
    return (key.bit_length() + 7) // 8


# --- rows -------------------------------------------------------------------------------

class RowCodec:
    """Encode and decode a table's rows (tuples of in-memory values) as bytes."""

    __slots__ = ("types", "_converters")

    def __init__(self, types: list[SqlType]):
        self.types = tuple(types)
        self._converters = tuple((i, to_raw, from_raw) for i, t in enumerate(types)
                                 for to_raw, from_raw in [raw_converters(t)] if to_raw)

    def to_raw(self, row: tuple) -> tuple:
        if not self._converters:
            return tuple(row)
        raw = list(row)
        for i, to_raw, _ in self._converters:
            if raw[i] is not None:
                raw[i] = to_raw(raw[i])
        return tuple(raw)

    def from_raw(self, raw: tuple) -> tuple:
        if not self._converters:
            return raw
        row = list(raw)
        for i, _, from_raw in self._converters:
            if row[i] is not None:
                row[i] = from_raw(row[i])
        return tuple(row)

    def encode(self, row: tuple) -> bytes:
        return marshal.dumps(self.to_raw(row), MARSHAL_VERSION)

    def decode(self, data: bytes) -> tuple:
        return self.from_raw(marshal.loads(data))


def dumps_raw(values: tuple) -> bytes:
    return marshal.dumps(values, MARSHAL_VERSION)


loads_raw = marshal.loads


# --- generic values on the wire (aggregate partial states) ------------------------------

_DECIMAL_TAG = "\x00decimal"
_TIMESTAMP_TAG = "\x00timestamp"


def _to_wire(value):
    if isinstance(value, Decimal):
        return (_DECIMAL_TAG, str(value))
    if isinstance(value, dt.datetime):
        return (_TIMESTAMP_TAG, timestamp_to_us(value))
    if isinstance(value, (tuple, list)):
        return tuple(_to_wire(v) for v in value)
    return value


def _from_wire(value):
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == _DECIMAL_TAG:
            return Decimal(value[1])
        if len(value) == 2 and value[0] == _TIMESTAMP_TAG:
            return timestamp_from_us(value[1])
        return tuple(_from_wire(v) for v in value)
    return value


def wire_dumps(value) -> bytes:
    """Any nesting of tuples of in-memory values as bytes (aggregate results)."""
    return marshal.dumps(_to_wire(value), MARSHAL_VERSION)


def wire_loads(data: bytes):
    return _from_wire(marshal.loads(data))
