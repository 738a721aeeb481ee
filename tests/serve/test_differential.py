"""Differential test: the same two-session schedules through psycopg against
``dsqlbench serve`` and a real PostgreSQL 15 at REPEATABLE READ (initdb into a temp
folder, a local port). Hermitage's sequences plus seeded random interleavings.

The outcomes must agree, except where DSQL differs on purpose. Each difference is
named, and the comparison allows exactly that:

- ``ABORT_AT_COMMIT``: PostgreSQL fails an UPDATE of a row changed since the snapshot
  at the UPDATE (40001); DSQL lets it run and fails the COMMIT (OC000). Compared:
  each transaction's fate (committed or 40001), the rows it read before either system
  failed it, and the final table.
- ``NO_LOCKS``: PostgreSQL makes the second writer of a row wait for the first; DSQL
  never waits, so the first to COMMIT wins where PostgreSQL's first to write wins.
  In schedules where PostgreSQL waited, fates may differ; both must still let at
  most one of two transactions that wrote a common row commit.
- ``SNAPSHOT_AT_BEGIN``: DSQL takes ``t_start`` at BEGIN, PostgreSQL at the first
  statement; the schedules send BEGIN with the transaction's first statement, so this
  difference is not exercised (and therefore not allowed).

Skips, with the reason, when PostgreSQL 15's server binaries are absent (.ci/run
installs them).
"""

from __future__ import annotations

import os
import pwd
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from serving import ServerThread

psycopg = pytest.importorskip("psycopg")

PG_BIN = Path("/usr/lib/postgresql/15/bin")
INTERLEAVINGS = 200
SEED = 20
BLOCK_WAIT_S = 0.1  # a statement still running after this is taken to wait for a lock
ABORT_AT_COMMIT, NO_LOCKS = "ABORT_AT_COMMIT", "NO_LOCKS"
DIFFERENCES = (ABORT_AT_COMMIT, NO_LOCKS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list) -> list:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@pytest.fixture(scope="module")
def postgres():
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 server not installed (Debian: apt-get install postgresql-15)")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run initdb as")
    folder = Path(tempfile.mkdtemp(prefix="dsqlbench-pg-"))
    if os.geteuid() == 0:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, port = folder / "data", _free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "admin"]),
                   check=True, capture_output=True)
    options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c default_transaction_isolation='repeatable read'")
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                                 "-l", str(folder / "log"), "start"]), check=True, capture_output=True)
    try:
        endpoint = Endpoint(f"host=127.0.0.1 port={port} user=admin dbname=postgres")
        yield endpoint
        endpoint.close()
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                     "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def dsql():
    server = ServerThread(time_mode="fast").start()
    endpoint = Endpoint(server.dsn)
    yield endpoint
    endpoint.close()
    server.stop()


# --- running a schedule -------------------------------------------------------------------

class Session:
    """A connection on its own thread, so a statement that waits for a lock can wait."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.jobs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            sql, future = job
            try:
                cur = self.conn.execute(sql)
                rows = tuple(cur.fetchall()) if cur.description else None
                future.set_result(("ok", rows))
            except psycopg.Error as error:
                future.set_result(("error", error.sqlstate))

    def submit(self, sql: str) -> Future:
        future: Future = Future()
        self.jobs.put((sql, future))
        return future

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(5)
        self.conn.close()


class Endpoint:
    """One system under test: a connection for setup and checks, and two sessions."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.sessions = [Session(dsn), Session(dsn)]

    def close(self) -> None:
        for session in self.sessions:
            session.close()
        self.conn.close()


def run_schedule(endpoint: Endpoint, setup: list, steps: list) -> dict:
    """Run ``steps`` ``[(session, sql)]``; a session whose statement waits (a lock)
    keeps its later steps until it is released. Returns outcomes per step, whether
    anything waited, and the final rows of ``test``."""
    for sql in setup:
        endpoint.conn.execute(sql)
    sessions = endpoint.sessions
    outcomes: dict[int, tuple] = {}
    waiting: dict[int, tuple] = {}      # session -> (step, future)
    held: dict[int, list] = {0: [], 1: []}
    waited = False

    def settle(block_s: float) -> None:
        for s, (i, future) in list(waiting.items()):
            try:
                outcomes[i] = future.result(block_s)
            except TimeoutError:
                continue
            del waiting[s]
            while held[s] and s not in waiting:
                start(s, *held[s].pop(0))

    def start(s: int, i: int, sql: str) -> None:
        nonlocal waited
        future = sessions[s].submit(sql)
        try:
            outcomes[i] = future.result(BLOCK_WAIT_S)
        except TimeoutError:
            waiting[s] = (i, future)
            waited = True

    for i, (s, sql) in enumerate(steps):
        settle(0)
        if s in waiting:
            held[s].append((i, sql))
        else:
            start(s, i, sql)
        settle(0.01)
    for _ in range(50):
        if not waiting:
            break
        settle(0.2)
    assert not waiting, "a statement never finished"
    for session in sessions:  # every program ended its transaction; make sure
        session.submit("ROLLBACK").result(5)
    final = endpoint.conn.execute("SELECT id, value FROM test ORDER BY id").fetchall()
    return {"outcomes": outcomes, "waited": waited, "final": final}


def fates(steps: list, outcomes: dict) -> dict:
    """Per session: its transaction's fate, the step where it failed (or None), reads."""
    result = {}
    for s in (0, 1):
        mine = [i for i, (who, _) in enumerate(steps) if who == s]
        failed_at = next((i for i in mine if outcomes[i][0] == "error"), None)
        last_sql = steps[mine[-1]][1].upper()
        if failed_at is not None:
            fate = "40001" if outcomes[failed_at][1] == "40001" else outcomes[failed_at][1]
        else:
            fate = "rolled back" if last_sql.startswith("ROLLBACK") else "committed"
        result[s] = (fate, failed_at, mine)
    return result


def compare(steps: list, pg: dict, ds: dict) -> str | None:
    """None when the outcomes agree; else what differs (named differences allowed)."""
    pg_fates, ds_fates = fates(steps, pg["outcomes"]), fates(steps, ds["outcomes"])
    if pg["waited"]:  # NO_LOCKS: the winner may differ; no lost update in either
        for run in (pg, ds):
            f = fates(steps, run["outcomes"])
            if f[0][0] == f[1][0] == "committed" and _common_write(steps):
                return "both writers of a common row committed"
        return None
    for s in (0, 1):
        if pg_fates[s][0] != ds_fates[s][0]:
            return f"session {s}: PostgreSQL {pg_fates[s][0]}, DSQL {ds_fates[s][0]}"
        cut = min(i for i in (pg_fates[s][1], ds_fates[s][1], 10**9) if i is not None)
        for i in pg_fates[s][2]:  # ABORT_AT_COMMIT: reads compared up to the first failure
            if i < cut and pg["outcomes"][i] != ds["outcomes"][i]:
                return f"step {i} {steps[i]}: PostgreSQL {pg['outcomes'][i]}, DSQL {ds['outcomes'][i]}"
    if pg["final"] != ds["final"]:
        return f"final rows: PostgreSQL {pg['final']}, DSQL {ds['final']}"
    return None


def _common_write(steps: list) -> bool:
    written = [set(), set()]
    for s, sql in steps:
        if "UPDATE" in sql.upper():
            written[s].add(sql.rsplit("=", 1)[1].strip())
    return bool(written[0] & written[1])


# --- schedules ------------------------------------------------------------------------------

SETUP = ["CREATE TABLE IF NOT EXISTS test (id int PRIMARY KEY, value int)", "DELETE FROM test",
         "INSERT INTO test (id, value) VALUES (1, 10), (2, 20)"]
READ_ALL = "SELECT id, value FROM test ORDER BY id"

HERMITAGE = {
    "G0": [(0, "BEGIN; UPDATE test SET value = 11 WHERE id = 1"),
           (1, "BEGIN; UPDATE test SET value = 12 WHERE id = 1"),
           (0, "UPDATE test SET value = 21 WHERE id = 2"), (0, "COMMIT"),
           (1, "UPDATE test SET value = 22 WHERE id = 2"), (1, "COMMIT")],
    "G1a": [(0, "BEGIN; UPDATE test SET value = 101 WHERE id = 1"), (1, f"BEGIN; {READ_ALL}"),
            (0, "ROLLBACK"), (1, READ_ALL), (1, "COMMIT")],
    "G1b": [(0, "BEGIN; UPDATE test SET value = 101 WHERE id = 1"), (1, f"BEGIN; {READ_ALL}"),
            (0, "UPDATE test SET value = 11 WHERE id = 1"), (0, "COMMIT"), (1, READ_ALL),
            (1, "COMMIT")],
    "G1c": [(0, "BEGIN; UPDATE test SET value = 11 WHERE id = 1"),
            (1, "BEGIN; UPDATE test SET value = 22 WHERE id = 2"),
            (0, "SELECT value FROM test WHERE id = 2"), (1, "SELECT value FROM test WHERE id = 1"),
            (0, "COMMIT"), (1, "COMMIT")],
    "P4-lost-update": [(0, "BEGIN; SELECT value FROM test WHERE id = 1"),
                       (1, "BEGIN; SELECT value FROM test WHERE id = 1"),
                       (0, "UPDATE test SET value = 11 WHERE id = 1"),
                       (1, "UPDATE test SET value = 11 WHERE id = 1"), (0, "COMMIT"), (1, "COMMIT")],
    "G-single-read-skew": [(0, "BEGIN; SELECT value FROM test WHERE id = 1"),
                           (1, "BEGIN; SELECT value FROM test WHERE id = 1"),
                           (1, "SELECT value FROM test WHERE id = 2"),
                           (1, "UPDATE test SET value = 12 WHERE id = 1"),
                           (1, "UPDATE test SET value = 18 WHERE id = 2"), (1, "COMMIT"),
                           (0, "SELECT value FROM test WHERE id = 2"), (0, "COMMIT")],
    "G2-item-write-skew": [(0, f"BEGIN; {READ_ALL}"), (1, f"BEGIN; {READ_ALL}"),
                           (0, "UPDATE test SET value = 11 WHERE id = 1"),
                           (1, "UPDATE test SET value = 21 WHERE id = 2"),
                           (0, "COMMIT"), (1, "COMMIT")],
    "OTV": [(0, "BEGIN; UPDATE test SET value = 11 WHERE id = 1"),
            (0, "UPDATE test SET value = 19 WHERE id = 2"), (1, f"BEGIN; {READ_ALL}"),
            (0, "COMMIT"), (1, READ_ALL), (1, "COMMIT")],
}


def random_schedule(rng: np.random.Generator) -> list:
    """Two transactions of 1-3 reads/updates on rows 1 and 2, randomly interleaved."""
    programs = []
    for _ in (0, 1):
        ops = []
        for _ in range(int(rng.integers(1, 4))):
            row = int(rng.integers(1, 3))
            if rng.random() < 0.5:
                ops.append(f"SELECT value FROM test WHERE id = {row}")
            else:
                ops.append(f"UPDATE test SET value = value + {int(rng.integers(1, 9))} WHERE id = {row}")
        ops[0] = "BEGIN; " + ops[0]
        ops.append("ROLLBACK" if rng.random() < 0.1 else "COMMIT")
        programs.append(ops)
    order = [0] * len(programs[0]) + [1] * len(programs[1])
    rng.shuffle(order)
    positions = [0, 0]
    steps = []
    for s in order:
        steps.append((int(s), programs[s][positions[s]]))
        positions[s] += 1
    return steps


def test_hermitage_sequences_agree(postgres, dsql):
    for name, steps in HERMITAGE.items():
        pg = run_schedule(postgres, SETUP, steps)
        ds = run_schedule(dsql, SETUP, steps)
        difference = compare(steps, pg, ds)
        assert difference is None, f"{name}: {difference}"


def test_random_interleavings_agree(postgres, dsql):
    rng = np.random.default_rng(SEED)
    waited = 0
    for n in range(INTERLEAVINGS):
        steps = random_schedule(rng)
        pg = run_schedule(postgres, SETUP, steps)
        ds = run_schedule(dsql, SETUP, steps)
        waited += pg["waited"]
        difference = compare(steps, pg, ds)
        assert difference is None, f"interleaving {n} {steps}: {difference}"
    assert 0 < waited < INTERLEAVINGS  # both kinds of schedule were exercised
