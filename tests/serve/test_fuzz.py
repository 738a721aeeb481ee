"""Fuzz: thousands of random and mutated protocol messages against one server. Whatever
arrives, the server stays up, answers a new client normally, and once the fuzzing
connections are gone holds no connection, task, session or statement for them."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest

from serving import ServerThread

psycopg = pytest.importorskip("psycopg")

CONNECTIONS = 250
MESSAGES_PER_CONNECTION = 12  # 3,000 messages in all
SEED = 12


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _startup() -> bytes:
    body = struct.pack("!i", 196608) + b"user\x00admin\x00database\x00postgres\x00\x00"
    return struct.pack("!i", len(body) + 4) + body


VALID = [
    _msg(b"Q", b"SELECT 1\x00"),
    _msg(b"Q", b"CREATE TABLE IF NOT EXISTS f (id int PRIMARY KEY, v text)\x00"),
    _msg(b"Q", b"INSERT INTO f VALUES (1, 'a')\x00"),
    _msg(b"Q", b"BEGIN; UPDATE f SET v = 'b' WHERE id = 1\x00"),
    _msg(b"Q", b"SHOW TimeZone\x00"),
    _msg(b"P", b"s1\x00SELECT $1::int\x00\x00\x01\x00\x00\x00\x17"),
    _msg(b"B", b"\x00s1\x00\x00\x00\x00\x01\x00\x00\x00\x015\x00\x00"),
    _msg(b"D", b"P\x00"),
    _msg(b"E", b"\x00\x00\x00\x00\x00"),
    _msg(b"S", b""),
    _msg(b"H", b""),
    _msg(b"C", b"Ss1\x00"),
    _msg(b"Q", b"COPY f FROM STDIN\x00"),
    _msg(b"d", b"2\tx\n"),
    _msg(b"c", b""),
]


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    raw = bytearray(data)
    action = rng.integers(0, 5)
    if action == 0 and raw:       # flip bytes
        for _ in range(int(rng.integers(1, 4))):
            raw[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))
    elif action == 1:             # truncate
        raw = raw[:int(rng.integers(0, len(raw) + 1))]
    elif action == 2:             # random garbage
        raw = bytearray(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes())
    elif action == 3 and len(raw) >= 5:  # lie about the length
        raw[1:5] = struct.pack("!i", int(rng.choice([-1, 0, 3, 5, 1 << 30, len(raw) + 7])))
    return bytes(raw)


def _drain(sock: socket.socket, wait_s: float) -> bool:
    """Read what the server sent; False once it closed the connection."""
    sock.settimeout(wait_s)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return False
    except (TimeoutError, socket.timeout):
        return True
    except OSError:
        return False


def _fuzz_connection(port: int, rng: np.random.Generator) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        start = _startup()
        sock.sendall(_mutate(rng, start) if rng.random() < 0.15 else start)
        for _ in range(MESSAGES_PER_CONNECTION):
            message = VALID[int(rng.integers(0, len(VALID)))]
            if rng.random() < 0.5:
                message = _mutate(rng, message)
            try:
                sock.sendall(message)
            except OSError:
                return
            if rng.random() < 0.2 and not _drain(sock, 0.01):
                return
        _drain(sock, 0.01)
    finally:
        sock.close()


def test_fuzzed_messages_leave_server_healthy():
    server = ServerThread(time_mode="fast", seed=SEED).start()
    try:
        rng = np.random.default_rng(SEED)
        for _ in range(CONNECTIONS):
            _fuzz_connection(server.port, rng)
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.execute("CREATE TABLE IF NOT EXISTS f (id int PRIMARY KEY, v text)")
            assert conn.execute("SELECT count(*) FROM f").fetchone()[0] >= 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = server.call(lambda: (len(server.server.connections), len(server.server.tasks),
                                         len(server.server.backend.open_sessions),
                                         server.server.driver.inflight))
            if state == (0, 0, 0, 0):
                break
            time.sleep(0.05)
        assert state == (0, 0, 0, 0), "connections, tasks, sessions, statements left behind"
        assert server.server.driver.crashed is None
        assert server.server.connection_bugs == 0
    finally:
        server.stop()
