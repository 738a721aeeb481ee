"""PostgreSQL frontend/backend protocol v3: message framing, decoding and encoding.

Role: the sans-I/O codec of ``dsqlbench serve``. ``decode_startup`` and
``decode_message`` turn bytes a client sent into plain values; the ``*_msg`` builders
turn the server's answers into bytes. Nothing here touches a socket or the cluster.

Invariants:
- every decoder checks lengths and terminators and raises ``ProtocolViolation``
  (SQLSTATE 08P01) on malformed input, never IndexError or struct.error;
- a message whose declared length exceeds ``MESSAGE_BYTES_MAX`` is refused before its
  body is read;
- builders produce exactly one framed message: type byte, int32 length, body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PROTOCOL_V3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
STARTUP_BYTES_MAX = 10_000
MESSAGE_BYTES_MAX = 64 * 1024 * 1024  # one message's body; larger is refused (08P01)

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_HEADER = struct.Struct("!ci")


class ProtocolViolation(Exception):
    """Malformed, oversized or out-of-order input: 08P01, then the connection closes."""

    sqlstate = "08P01"


# --- reading ----------------------------------------------------------------------------

class Reader:
    """Cursor over one message body; every read is bounds-checked."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolViolation("message too short")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> bytes:
        return self._take(1)

    def int16(self) -> int:
        return _I16.unpack(self._take(2))[0]

    def int32(self) -> int:
        return _I32.unpack(self._take(4))[0]

    def cstr(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolViolation("string not terminated")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ProtocolViolation(f"invalid UTF-8 in message: {error.reason}") from None

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    def count(self, what: str) -> int:
        n = self.int16()
        if n < 0:
            raise ProtocolViolation(f"negative {what} count")
        return n

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolViolation("message has trailing bytes")


@dataclass(frozen=True)
class Startup:
    kind: str                      # "startup" | "ssl" | "gssenc" | "cancel"
    params: dict | None = None     # startup parameters (user, database, ...)
    pid: int = 0                   # cancel: the backend's process id and secret key
    secret: int = 0


def decode_startup(body: bytes) -> Startup:
    """The first packet (length already stripped): startup, SSL/GSSENC or cancel."""
    r = Reader(body)
    code = r.int32()
    if code == SSL_REQUEST:
        r.end()
        return Startup("ssl")
    if code == GSSENC_REQUEST:
        r.end()
        return Startup("gssenc")
    if code == CANCEL_REQUEST:
        pid, secret = r.int32(), r.int32()
        r.end()
        return Startup("cancel", pid=pid, secret=secret)
    if code >> 16 != 3:
        raise ProtocolViolation(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                                "server supports 3.0")
    params = {}
    while True:
        name = r.cstr()
        if not name:
            break
        params[name] = r.cstr()
    r.end()
    return Startup("startup", params)


@dataclass(frozen=True)
class Query:
    sql: str


@dataclass(frozen=True)
class Parse:
    name: str
    sql: str
    param_oids: tuple


@dataclass(frozen=True)
class Bind:
    portal: str
    statement: str
    param_formats: tuple
    params: tuple                  # bytes or None per parameter
    result_formats: tuple


@dataclass(frozen=True)
class Describe:
    target: str                    # "S" statement | "P" portal
    name: str


@dataclass(frozen=True)
class Execute:
    portal: str
    rows_max: int                  # 0: no limit


@dataclass(frozen=True)
class Close:
    target: str
    name: str


@dataclass(frozen=True)
class Simple:
    kind: str                      # "sync" | "flush" | "terminate" | "copy_done"


@dataclass(frozen=True)
class CopyData:
    data: bytes


@dataclass(frozen=True)
class CopyFail:
    message: str


@dataclass(frozen=True)
class Password:
    data: bytes


def _formats(r: Reader, what: str) -> tuple:
    formats = tuple(r.int16() for _ in range(r.count(what)))
    if any(f not in (0, 1) for f in formats):
        raise ProtocolViolation(f"unsupported {what} code")
    return formats


def _decode_bind(r: Reader) -> Bind:
    portal, statement = r.cstr(), r.cstr()
    param_formats = _formats(r, "format")
    params = []
    for _ in range(r.count("parameter")):
        n = r.int32()
        params.append(None if n == -1 else r._take(n))
    result_formats = _formats(r, "result format")
    if len(param_formats) > 1 and len(param_formats) != len(params):
        raise ProtocolViolation(f"bind message has {len(param_formats)} parameter formats "
                                f"but {len(params)} parameters")
    return Bind(portal, statement, param_formats, tuple(params), result_formats)


def _target(r: Reader) -> str:
    target = r.byte().decode("latin-1")
    if target not in ("S", "P"):
        raise ProtocolViolation(f"invalid DESCRIBE/CLOSE message subtype {ord(target)}")
    return target


def decode_message(kind: bytes, body: bytes):
    """One frontend message after startup, from its type byte and body."""
    r = Reader(body)
    if kind == b"Q":
        message = Query(r.cstr())
    elif kind == b"P":
        name, sql = r.cstr(), r.cstr()
        message = Parse(name, sql, tuple(r.int32() for _ in range(r.count("parameter type"))))
    elif kind == b"B":
        message = _decode_bind(r)
    elif kind == b"D":
        message = Describe(_target(r), r.cstr())
    elif kind == b"E":
        message = Execute(r.cstr(), r.int32())
    elif kind == b"C":
        message = Close(_target(r), r.cstr())
    elif kind in _SIMPLE:
        message = Simple(_SIMPLE[kind])
    elif kind == b"d":
        return CopyData(r.rest())
    elif kind == b"f":
        message = CopyFail(r.cstr())
    elif kind == b"p":
        return Password(r.rest())
    else:
        raise ProtocolViolation(f"invalid frontend message type {kind[0]}")
    r.end()
    return message


_SIMPLE = {b"S": "sync", b"H": "flush", b"X": "terminate", b"c": "copy_done"}


# --- writing ----------------------------------------------------------------------------

def frame(kind: bytes, body: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(body) + 4) + body


def _cstr(text: str) -> bytes:
    return text.encode("utf-8") + b"\x00"


def auth_ok_msg() -> bytes:
    return frame(b"R", _I32.pack(0))


def auth_request_msg(code: int, payload: bytes = b"") -> bytes:
    return frame(b"R", _I32.pack(code) + payload)


def parameter_status_msg(name: str, value: str) -> bytes:
    return frame(b"S", _cstr(name) + _cstr(value))


def backend_key_msg(pid: int, secret: int) -> bytes:
    return frame(b"K", _I32.pack(pid) + _I32.pack(secret))


def ready_msg(status: str) -> bytes:
    assert status in ("I", "T", "E"), status
    return frame(b"Z", status.encode())


@dataclass(frozen=True)
class Field:
    """One RowDescription column."""

    name: str
    type_oid: int
    type_size: int = -1
    type_modifier: int = -1
    table_oid: int = 0
    column_number: int = 0


def row_description_msg(fields: list, formats: list) -> bytes:
    parts = [_I16.pack(len(fields))]
    for f, fmt in zip(fields, formats):
        parts.append(_cstr(f.name) + struct.pack("!ihihih", f.table_oid, f.column_number,
                                                 f.type_oid, f.type_size, f.type_modifier, fmt))
    return frame(b"T", b"".join(parts))


def data_row_msg(cells: list) -> bytes:
    """``cells``: encoded values (bytes) or None for NULL."""
    parts = [_I16.pack(len(cells))]
    for cell in cells:
        if cell is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(_I32.pack(len(cell)) + cell)
    return frame(b"D", b"".join(parts))


def command_complete_msg(tag: str) -> bytes:
    return frame(b"C", _cstr(tag))


def error_msg(sqlstate: str, message: str, *, severity: str = "ERROR", detail: str | None = None,
              position: int | None = None, hint: str | None = None) -> bytes:
    return frame(b"E", _notice_fields(sqlstate, message, severity, detail, position, hint))


def notice_msg(sqlstate: str, message: str, severity: str = "WARNING") -> bytes:
    return frame(b"N", _notice_fields(sqlstate, message, severity, None, None, None))


def _notice_fields(sqlstate, message, severity, detail, position, hint) -> bytes:
    parts = [b"S" + _cstr(severity), b"V" + _cstr(severity), b"C" + _cstr(sqlstate),
             b"M" + _cstr(message)]
    if detail:
        parts.append(b"D" + _cstr(detail))
    if hint:
        parts.append(b"H" + _cstr(hint))
    if position is not None:
        parts.append(b"P" + _cstr(str(position)))
    return b"".join(parts) + b"\x00"


def parameter_description_msg(oids: list) -> bytes:
    return frame(b"t", _I16.pack(len(oids)) + b"".join(_I32.pack(o) for o in oids))


def copy_in_response_msg(columns: int) -> bytes:
    return frame(b"G", b"\x00" + _I16.pack(columns) + _I16.pack(0) * columns)


PARSE_COMPLETE = frame(b"1")
BIND_COMPLETE = frame(b"2")
CLOSE_COMPLETE = frame(b"3")
NO_DATA = frame(b"n")
EMPTY_QUERY = frame(b"I")
PORTAL_SUSPENDED = frame(b"s")
