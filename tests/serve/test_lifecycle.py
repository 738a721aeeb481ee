"""Serve's life cycle and limits: injected conflicts (seeded, and by hint), SIGTERM ->
57P01 and a results folder, the connection limit (53300), bad input (08P01, that
connection only), the idle timeout (57P05) and DSQL's transaction row limit (54000)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving import ServerThread

psycopg = pytest.importorskip("psycopg")
REPO = Path(__file__).resolve().parents[2]


def _outcomes(server, commits: int) -> list[str]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE c (id int PRIMARY KEY, v int)")
        outcomes = []
        for i in range(commits):
            try:
                conn.execute("INSERT INTO c VALUES (%s, 0)", (i,))
                outcomes.append("ok")
            except psycopg.errors.SerializationFailure as error:
                assert "(OC000)" in str(error)
                outcomes.append("OC000")
        assert conn.execute("SELECT count(*) FROM c").fetchone() == (outcomes.count("ok"),)
    return outcomes


def test_injected_conflicts_are_seeded():
    runs = []
    for seed in (3, 3, 4):
        server = ServerThread(seed=seed, inject_conflicts_rate=0.5, time_mode="fast").start()
        try:
            runs.append(_outcomes(server, 40))
            assert server.server.backend.counts["injected"] == runs[-1].count("OC000")
        finally:
            server.stop()
    assert runs[0] == runs[1] != runs[2]
    assert 5 < runs[0].count("OC000") < 35


def test_conflict_hint_fails_that_commit_only(server):
    with psycopg.connect(server.dsn) as conn:
        conn.execute("CREATE TABLE h (id int PRIMARY KEY)")
        conn.commit()
        conn.execute("INSERT INTO h VALUES (1) /* dsqlbench:conflict */")
        with pytest.raises(psycopg.errors.SerializationFailure):
            conn.commit()
        conn.execute("INSERT INTO h VALUES (1)")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM h").fetchone() == (1,)


def test_connection_limit_is_53300():
    server = ServerThread(time_mode="fast", connections_max=2).start()
    try:
        held = [psycopg.connect(server.dsn) for _ in range(2)]
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            psycopg.connect(server.dsn)
        held[0].close()
        time.sleep(0.2)
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        held[1].close()
    finally:
        server.stop()


def _raw_startup(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = struct.pack("!i", 196608) + b"user\x00admin\x00database\x00postgres\x00\x00"
    sock.sendall(struct.pack("!i", len(body) + 4) + body)
    _read_until(sock, b"Z")
    return sock


def _read_until(sock: socket.socket, kind: bytes) -> list[tuple[bytes, bytes]]:
    """Messages up to and including the first of ``kind`` (or the connection's end)."""
    messages, buffer = [], b""
    while True:
        while len(buffer) >= 5:
            length = struct.unpack("!i", buffer[1:5])[0]
            if len(buffer) < 1 + length:
                break
            messages.append((buffer[:1], buffer[5:1 + length]))
            buffer = buffer[1 + length:]
            if messages[-1][0] == kind:
                return messages
        chunk = sock.recv(65536)
        if not chunk:
            return messages
        buffer += chunk


@pytest.mark.parametrize("payload", [
    b"\x00\x00\x00\x00\x04",                                   # unknown message type 0
    b"Q\x7f\xff\xff\xff",                                      # length over the limit
    b"Q\x00\x00\x00\x08abcd",                                  # query not terminated
    b"d\x00\x00\x00\x05x",                                     # CopyData outside COPY
    b"B\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x05",               # Bind with a bad format code
])
def test_bad_messages_are_08P01_and_close_only_that_connection(server, payload):
    bystander = psycopg.connect(server.dsn, autocommit=True)
    sock = _raw_startup(server.port)
    sock.sendall(payload)
    messages = _read_until(sock, b"E")
    assert messages and messages[-1][0] == b"E"
    assert b"C08P01\x00" in messages[-1][1]
    assert sock.recv(1) == b""  # closed
    sock.close()
    assert bystander.execute("SELECT 1").fetchone() == (1,)
    bystander.close()


def test_idle_session_is_closed_with_57P05():
    server = ServerThread(time_mode="fast", idle_timeout_s=0.3).start()
    try:
        conn = psycopg.connect(server.dsn, autocommit=True)
        time.sleep(0.8)
        with pytest.raises(psycopg.OperationalError) as caught:
            conn.execute("SELECT 1")
        assert "idle-session timeout" in str(caught.value) or conn.closed
    finally:
        server.stop()


def test_transaction_row_limit_is_54000(server):
    with psycopg.connect(server.dsn) as conn:
        conn.execute("CREATE TABLE big (id int PRIMARY KEY)")
        conn.commit()
        values = ", ".join(f"({i})" for i in range(3001))
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="row limit"):
            conn.execute(f"INSERT INTO big VALUES {values}")


def test_sigterm_ends_sessions_with_57P01_and_writes_results(tmp_path):
    out = tmp_path / "serve-run"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from dsqlbench.cli import main; main()", "serve", "--port", "0",
                             "--time", "fast", "--seed", "5", "--out", str(out)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        startup_s = time.perf_counter() - started
        assert "listening on 127.0.0.1:" in line, line + proc.stderr.read()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        assert startup_s < 3.0, f"serve took {startup_s:.2f} s to listen"
        conn = psycopg.connect(f"host=127.0.0.1 port={port} user=admin dbname=postgres")
        conn.execute("CREATE TABLE s (id int PRIMARY KEY)")
        conn.commit()
        conn.execute("INSERT INTO s VALUES (1)")
        conn.commit()
        conn.execute("INSERT INTO s VALUES (2)")  # left open: rolled back at shutdown
        idle = _raw_startup(port)  # sends nothing: it must be told why it ends
        proc.send_signal(signal.SIGTERM)
        messages = _read_until(idle, b"E")
        assert messages and b"C57P01\x00" in messages[-1][1]
        assert b"terminating connection due to administrator command" in messages[-1][1]
        idle.close()
        with pytest.raises(psycopg.OperationalError):  # AdminShutdown, or the closed socket
            for _ in range(50):
                conn.execute("SELECT 1")
                time.sleep(0.05)
        assert proc.wait(20) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    from dsqlbench.results.folder import load_run

    simulated = load_run(out)["simulated"]
    assert simulated["transactions"]["committed"] >= 2
    assert simulated["serve"]["rolled_back"] == 1
    assert {p.name for p in out.iterdir()} >= {"summary.json", "transactions.parquet",
                                               "timeseries.parquet"}


def test_real_time_follows_the_wall_clock():
    """Simulated time advances while idle, and never runs ahead of the wall clock (it
    may lag on a busy host and catch up later)."""
    started = time.perf_counter()
    server = ServerThread(time_mode="real").start()
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            sim0 = server.call(lambda: server.server.backend.env.now)
            time.sleep(0.4)
            conn.execute("SELECT 1")
            sim_ns = server.call(lambda: server.server.backend.env.now)
            wall_s = time.perf_counter() - started
        assert (sim_ns - sim0) / 1e9 > 0.3
        assert sim_ns / 1e9 <= wall_s + 0.01, (sim_ns, wall_s)
    finally:
        server.stop()


def test_fast_time_stands_still_between_statements(server):
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        before = server.call(lambda: server.server.backend.env.now)
        time.sleep(0.2)
        assert server.call(lambda: server.server.backend.env.now) == before


def test_password_uses_scram():
    server = ServerThread(time_mode="fast", password="s3cret").start()
    try:
        with psycopg.connect(server.dsn + " password=s3cret") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.dsn + " password=wrong")
    finally:
        server.stop()
