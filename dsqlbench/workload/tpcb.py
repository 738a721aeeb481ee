"""TPC-B as pgbench runs it: pgbench's tables, scale factor, loader and default script.

Role: ``setup(engine, scale)`` creates pgbench's four tables in the engine's catalog and
returns every ``(key, value)`` pair to put into storage before the run (catalog rows,
then branches, tellers, accounts: 1, 10 and 100,000 rows per scale unit, filled as
``pgbench -i`` fills them); ``workload(scale)`` gives the ``PgbenchWorkload`` that draws
transactions from pgbench's builtin "tpcb-like" script, read unmodified from
``workloads/sql/tpcb-builtin.pgbench``. ``check_balances`` is the audit: money moves
but is never created, so the four sums agree after any run.

Rows as pgbench writes them: branches ``(bid, 0, NULL)``, tellers
``(tid, (tid-1)/10+1, 0, NULL)``, accounts ``(aid, (aid-1)/100000+1, 0, '')`` whose
``char(84)`` filler is 84 blanks, as PostgreSQL stores it.
"""

from __future__ import annotations

import numpy as np

from dsqlbench.components.storage import BulkLoad
from dsqlbench.config import shipped_dir
from dsqlbench.sql.columnar import integer_columns
from dsqlbench.errors import ConfigError
from dsqlbench.workload.pgbench import PgbenchWorkload, Script, load_script, parse_script

NBRANCHES = 1       # per scale unit, as pgbench's nbranches
NTELLERS = 10
NACCOUNTS = 100_000

SQL_DIR = shipped_dir() / "sql"  # the checkout's workloads/sql, or the installed copy
SCHEMA_PATH = SQL_DIR / "tpcb.sql"
BUILTIN_SCRIPT_PATH = SQL_DIR / "tpcb-builtin.pgbench"

# pgbench.c's builtin_script[0] ("tpcb-like"), with naccounts/nbranches/ntellers
# substituted as CppAsString2 does; the shipped file must equal it byte for byte.
TPCB_LIKE = (
    "\\set aid random(1, 100000 * :scale)\n"
    "\\set bid random(1, 1 * :scale)\n"
    "\\set tid random(1, 10 * :scale)\n"
    "\\set delta random(-5000, 5000)\n"
    "BEGIN;\n"
    "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
    "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
    "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
    "END;\n"
)


def schema_sql() -> str:
    try:
        return SCHEMA_PATH.read_text()
    except OSError as error:
        raise ConfigError(str(SCHEMA_PATH), None, f"cannot read the TPC-B schema: {error.strerror}") from None


def builtin_script() -> Script:
    """pgbench's default script, from the shipped file (the string if it is missing)."""
    if BUILTIN_SCRIPT_PATH.exists():
        return load_script(BUILTIN_SCRIPT_PATH)
    return parse_script(TPCB_LIKE, "tpcb-like")


def workload(scale: int, scripts: list[Script] | None = None) -> PgbenchWorkload:
    _check_scale(scale)
    return PgbenchWorkload(scripts or [builtin_script()], {"scale": scale})


def _check_scale(scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ConfigError("tpcb", "scale", f"must be an integer >= 1, got {scale!r}")


def rows(scale: int) -> dict[str, list[tuple]]:
    """The rows ``pgbench -i -s scale`` loads, per table, in column order."""
    _check_scale(scale)
    blank_filler = " " * 84
    return {
        "pgbench_branches": [(bid, 0, None) for bid in range(1, NBRANCHES * scale + 1)],
        "pgbench_tellers": [(tid, (tid - 1) // NTELLERS + 1, 0, None)
                            for tid in range(1, NTELLERS * scale + 1)],
        "pgbench_accounts": [(aid, (aid - 1) // NACCOUNTS + 1, 0, blank_filler)
                             for aid in range(1, NACCOUNTS * scale + 1)],
    }


def setup(engine, scale: int) -> list[tuple[int, bytes]]:
    """Create the schema in ``engine`` and return all pairs to load into storage."""
    pairs = engine.bootstrap(schema_sql())
    for table, table_rows in rows(scale).items():
        # Rows are built typed and valid above; skip per-value coercion for speed.
        pairs.extend(engine.load_rows(table, table_rows, coerce_values=False))
    return pairs


def setup_bulk(engine, scale: int) -> BulkLoad:
    """``setup`` as a bulk load: the same pairs, with pgbench_accounts (all but a few
    rows of the load) built as one columnar image with numpy instead of a Python
    object per row. Spot-checked against the row codec row by row (first, last and
    every 99,991st row); the tests compare it with ``setup`` in full."""
    _check_scale(scale)
    pairs = engine.bootstrap(schema_sql())
    table_rows = rows_small(scale)
    for table, table_rows in table_rows.items():
        pairs.extend(engine.load_rows(table, table_rows, coerce_values=False))
    keys, values, columns = _accounts_image(engine, scale)
    return BulkLoad(pairs, keys, values, columns)


def rows_small(scale: int) -> dict[str, list[tuple]]:
    """The rows of ``rows`` but pgbench_accounts'."""
    all_rows = {"pgbench_branches": [(bid, 0, None) for bid in range(1, NBRANCHES * scale + 1)],
                "pgbench_tellers": [(tid, (tid - 1) // NTELLERS + 1, 0, None)
                                    for tid in range(1, NTELLERS * scale + 1)]}
    return all_rows


def _accounts_image(engine, scale: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Keys, encoded rows ``(aid, (aid-1)/100000+1, 0, filler)`` of pgbench_accounts
    and their integer columns (aid, bid, abalance) as views into the rows' bytes.

    A row's bytes are a fixed template (every column but aid and bid is constant, and
    the codec gives 32-bit integers a fixed-width little-endian field), so the image is
    the template repeated with aid and bid written in; the key of integer ``aid`` is
    ``key(0) + aid``. Both facts are checked on sample rows before use."""
    table = engine.table("pgbench_accounts")
    assert not table.indexes and not table.hidden_pk
    n = NACCOUNTS * scale
    aid = np.arange(1, n + 1, dtype=np.int64)
    bid = (aid - 1) // NACCOUNTS + 1
    filler = " " * 84
    first, other, paid = (table.codec.encode(row) for row in (
        (1, 1, 0, filler), (2, 2, 0, filler), (1, 1, 1, filler)))
    varying = [i for i in range(len(first)) if first[i] != other[i]]
    abalance_at, = [i for i in range(len(first)) if first[i] != paid[i]]
    template = np.frombuffer(first, np.uint8)
    aid_at, bid_at = varying[0], varying[1]  # each the low byte of a 4-byte LE field
    assert len(first) == len(other) and varying == [aid_at, bid_at] and bid_at >= aid_at + 4
    values = np.empty((n, len(first)), np.uint8)
    values[:] = template
    values[:, aid_at:aid_at + 4] = aid.astype("<i4").view(np.uint8).reshape(n, 4)
    values[:, bid_at:bid_at + 4] = bid.astype("<i4").view(np.uint8).reshape(n, 4)
    key0 = table.keyspace.key((0,))
    keys = aid + np.int64(key0)
    columns = integer_columns(values, {0: aid_at, 1: bid_at, 2: abalance_at})
    for i in sorted({0, n - 1, *range(0, n, 99_991)}):
        a = i + 1
        row = (a, (a - 1) // NACCOUNTS + 1, 0, filler)
        assert int(keys[i]) == table.row_key(row)
        assert values[i].tobytes() == table.codec.encode(row)
        assert tuple(int(columns[c][i]) for c in range(3)) == row[:3]
    return keys, values, columns


BALANCE_QUERIES = {
    "branches": "SELECT sum(bbalance) FROM pgbench_branches",
    "tellers": "SELECT sum(tbalance) FROM pgbench_tellers",
    "accounts": "SELECT sum(abalance) FROM pgbench_accounts",
    "history": "SELECT sum(delta) FROM pgbench_history",
}


def check_balances(session):
    """Generator (run it through a session's driver): ``{name: sum}`` of the four
    balances and ``ok`` when they agree (an empty history sums to NULL, i.e. 0)."""
    sums = {}
    for name, sql in BALANCE_QUERIES.items():
        result = yield from session.execute(sql)
        if result.error is not None:
            raise result.error
        sums[name] = result.rows[0][0] or 0
    sums["ok"] = len({sums[name] for name in BALANCE_QUERIES}) == 1
    return sums
