"""Real clients nobody here wrote, against ``dsqlbench serve``: asyncpg (prepared
statements, binary format), psql (``-c``, ``\\d``) and the unmodified pgbench binary
(``pgbench -i -s 1``, then ``pgbench -c 4 -T 5 --max-tries 10``, whose failures and
retries must match the server's own counts)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_tool(name: str) -> str | None:
    candidate = PG_BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def needs(name: str) -> str:
    path = pg_tool(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian: apt-get install postgresql-client-15)")
    return path


def run_tool(args: list, timeout_s: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGPASSWORD="unused")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, env=env)


def test_asyncpg_prepared_statements_in_binary(server):
    asyncpg = pytest.importorskip("asyncpg")

    async def scenario():
        conn = await asyncpg.connect(host="127.0.0.1", port=server.port, user="admin",
                                     database="postgres")
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v bigint, s text, n numeric(10,2), "
                           "b bool, ts timestamp, f float8)")
        row = (1, 2**40, "x", Decimal("1.25"), True, dt.datetime(2024, 1, 1, 1, 2, 3), 2.5)
        await conn.execute("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7)", *row)
        statement = await conn.prepare("SELECT * FROM t WHERE id = $1")
        assert [a.type.name for a in statement.get_attributes()] == \
            ["int4", "int8", "text", "numeric", "bool", "timestamp", "float8"]
        assert tuple(await statement.fetchrow(1)) == row
        assert await statement.fetchrow(2) is None
        async with conn.transaction():
            await conn.execute("UPDATE t SET v = v + $1 WHERE id = $2", 1, 1)
        assert await conn.fetchval("SELECT v FROM t WHERE id = 1") == 2**40 + 1
        assert await conn.fetchval("SELECT count(*) FROM t") == 1
        await conn.close()

    asyncio.run(scenario())


def test_psql_c_and_describe(server):
    psql = needs("psql")
    base = [psql, "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", "admin", "postgres"]
    created = run_tool(base + ["-c", "CREATE TABLE items (id int PRIMARY KEY, name varchar(20) NOT NULL)",
                               "-c", "INSERT INTO items VALUES (1, 'one'), (2, 'two')"])
    assert created.returncode == 0, created.stderr
    assert created.stdout.split() == ["CREATE", "TABLE", "INSERT", "0", "2"]
    shown = run_tool(base + ["-c", "SELECT * FROM items ORDER BY id", "-c", "\\d", "-c", "\\d items"])
    assert shown.returncode == 0, shown.stderr
    assert "(2 rows)" in shown.stdout and " 2 | two" in shown.stdout
    assert "public | items | table | admin" in shown.stdout
    assert 'Table "public.items"' in shown.stdout
    assert re.search(r"name\s+\|\s+character varying\(20\)\s+\|\s+\|\s+not null", shown.stdout)
    assert '"items_pkey" PRIMARY KEY, btree (id)' in shown.stdout
    failed = run_tool(base + ["-c", "SELECT * FROM nowhere"])
    assert failed.returncode == 1 and 'relation "nowhere" does not exist' in failed.stderr


@pytest.fixture
def pgbench_server():
    from serving import ServerThread

    thread = ServerThread(time_mode="fast", compat_pgbench=True).start()
    yield thread
    thread.stop()


def _report_number(text: str, label: str) -> int:
    match = re.search(rf"^{re.escape(label)}: (\d+)", text, re.M)
    assert match, f"{label!r} not in pgbench's report:\n{text}"
    return int(match.group(1))


def test_pgbench_init_and_run_counts_match_server(pgbench_server):
    pgbench = needs("pgbench")
    connection = ["-h", "127.0.0.1", "-p", str(pgbench_server.port), "-U", "admin", "postgres"]
    init = run_tool([pgbench, "-i", "-s", "1", *connection], timeout_s=120)
    assert init.returncode == 0, init.stderr
    assert "done in" in init.stderr
    backend = pgbench_server.server.backend
    before = pgbench_server.call(lambda: dict(backend.counts["aborts"]))
    clients, tries_max = 4, 10
    bench = run_tool([pgbench, "-c", str(clients), "-T", "5", "--max-tries", str(tries_max),
                      "--verbose-errors", *connection], timeout_s=60)
    assert bench.returncode in (0, 2), bench.stderr  # 2: some transactions failed (reported)
    after = pgbench_server.call(lambda: dict(backend.counts["aborts"]))
    report = bench.stdout
    processed = _report_number(report, "number of transactions actually processed")
    failed = _report_number(report, "number of failed transactions")
    retries = _report_number(report, "total number of retries")
    conflicts = after.get("OC000", 0) - before.get("OC000", 0)
    assert processed > 0 and retries > 0
    # Every 40001 the server sent is one pgbench saw, retried or gave up on ...
    assert bench.stderr.count("got an error") == conflicts
    assert all("(OC000)" in line for line in bench.stderr.splitlines() if "got an error" in line)
    # ... and its report counts them all except those of the transactions still running
    # when -T ran out (pgbench drops those from its figures): at most one per try per client.
    assert retries + failed <= conflicts <= retries + failed + clients * tries_max
