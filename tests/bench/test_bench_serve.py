"""Statements per wall second through ``dsqlbench serve --time fast`` for 16 psycopg
connections (issue 12). ``test_serve_rate_tiny`` runs the same code briefly in normal
CI (no timing assertion: host figures are noisy); the benchmark runs under
``pytest tests/bench/test_bench_serve.py --benchmark-only`` and reports the rate in
``extra_info["statements_per_wall_s"]``."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serving import ServerThread  # noqa: E402

CONNECTIONS = 16
ROWS = 1000


def _client(dsn: str, index: int, statements: int, done: list) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(statements):
            key = (index * 7919 + i * 104729) % ROWS + 1
            if i % 4 == 3:
                try:
                    conn.execute("UPDATE kv SET v = v + 1 WHERE k = %s", (key,))
                except psycopg.errors.SerializationFailure:
                    pass  # a conflict is an answer too
            else:
                conn.execute("SELECT v FROM kv WHERE k = %s", (key,))
    done.append(statements)


def statements_per_wall_s(statements_per_connection: int) -> float:
    """Run 16 connections (3 point reads : 1 single-row update) and time them."""
    server = ServerThread(time_mode="fast").start()
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kv (k int PRIMARY KEY, v int)")
            for start in range(1, ROWS + 1, 500):
                values = ", ".join(f"({k}, 0)" for k in range(start, min(start + 500, ROWS + 1)))
                conn.execute(f"INSERT INTO kv VALUES {values}")
        done: list = []
        threads = [threading.Thread(target=_client, args=(server.dsn, i, statements_per_connection, done))
                   for i in range(CONNECTIONS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall_s = time.perf_counter() - started
        assert len(done) == CONNECTIONS
        return sum(done) / wall_s
    finally:
        server.stop()


def test_serve_rate_tiny():
    assert statements_per_wall_s(10) > 0


def test_bench_serve_16_connections(benchmark):
    rate = benchmark.pedantic(statements_per_wall_s, args=(200,), rounds=1, iterations=1)
    benchmark.extra_info["statements_per_wall_s"] = rate
    print(f"\nserve --time fast, {CONNECTIONS} psycopg connections: {rate:.0f} statements/wall s")
