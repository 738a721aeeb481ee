"""SQL workloads for the simulator: pgbench scripts (TPC-B among them) and TPC-C.

Role: like the key-value workloads, each ``next_operation()`` is one logical
transaction; here it carries a *program*: a generator function that, given a SQL
session, runs the transaction's statements through it (``session.execute`` yields
protocol requests that the runtime serves with simulated time). A retry runs the same
program again on a fresh session, as pgbench and TPC-C drivers retry 40001.

Invariants:
- one ``SqlEngine`` per run: the catalog and the statement cache are shared by every
  client's sessions, as the cluster's catalog is;
- the load phase is computed once, as ``(key, value)`` pairs (``load_items``), and goes
  straight into storage at timestamp 1, like ``pgbench -i``;
- every random choice comes from the named stream ``workload/sql`` of the run seed.
"""

from __future__ import annotations

from pathlib import Path

from dsqlbench.config import shipped_dir
from dsqlbench.errors import ConfigError
from dsqlbench.seeds import stream
from dsqlbench.sql.engine import SqlEngine
from dsqlbench.workload import pgbench, tpcb, tpcc
from dsqlbench.workload.ycsb import Operation

SQL_DIR = shipped_dir() / "sql"  # the shipped schemas and pgbench scripts


class SqlOperation(Operation):
    """A SQL transaction: ``program(session)`` is a generator over its statements."""

    __slots__ = ("txn_type", "program")

    def __init__(self, txn_type: str, program):
        super().__init__("sql", 0, 0, 0, 0)
        self.txn_type = txn_type
        self.program = program


class PgbenchSqlWorkload:
    """pgbench: a weighted mix of script files over pgbench's TPC-B tables."""

    def __init__(self, cfg: dict, source: str | None = None):
        spec = cfg["pgbench"]
        self.rng = stream(cfg["run"]["seed"], "workload/sql")
        self.engine = SqlEngine()
        base = Path(source).parent if source else Path.cwd()
        scripts = [pgbench.load_script(_locate_script(s, base)) for s in spec["scripts"]]
        self.scale = spec["scale"]
        self.schema = spec["schema"]
        if self.schema == "ycsb":
            records = self.records = cfg["load"]["record_count"]
            self.mix = pgbench.PgbenchWorkload(scripts, {"scale": self.scale, "records": records})
            self.items = ycsb_setup(self.engine, records)
        else:
            self.mix = tpcb.workload(self.scale, scripts)
            self.items = tpcb.setup_bulk(self.engine, self.scale)

    def load_items(self) -> list[tuple[int, bytes]]:
        return self.items

    def next_operation(self) -> SqlOperation:
        script = self.mix.pick(self.rng)
        txn = pgbench.run_script(script, self.rng, dict(self.mix.variables))
        name = script.name.removesuffix(".pgbench")
        return SqlOperation(name, lambda session: _script_program(session, txn))

    def final_check(self, session):
        """Generator: pgbench's balances agree (branches = tellers = accounts = history);
        on YCSB's table, every row is still there."""
        if self.schema == "ycsb":
            result = yield from session.execute("SELECT count(*) FROM usertable")
            count = result.rows[0][0] if result.error is None else None
            return {"ok": count == self.records, "rows": count}
        return (yield from tpcb.check_balances(session))


YCSB_FIELD = "x" * 100


def ycsb_setup(engine, records: int) -> list[tuple[int, bytes]]:
    """YCSB's usertable with ``records`` rows, as (key, value) pairs to load."""
    pairs = engine.bootstrap((SQL_DIR / "ycsb.sql").read_text())
    rows = [(key,) + (YCSB_FIELD,) * 10 for key in range(1, records + 1)]
    return pairs + engine.load_rows("usertable", rows, coerce_values=False)


def _script_program(session, txn):
    outcome = yield from pgbench.execute_transaction(session, txn)
    return SqlOutcome(outcome.committed, outcome.error)


class TpccSqlWorkload:
    """TPC-C's five transactions in the standard mix, over ``warehouses``."""

    def __init__(self, cfg: dict, source: str | None = None):
        spec = cfg["tpcc"]
        self.rng = stream(cfg["run"]["seed"], "workload/sql")
        warehouses = spec["warehouses"]
        self.scale = (tpcc.TpccScale.small(warehouses) if spec["small"]
                      else tpcc.TpccScale(warehouses=warehouses))
        self.engine = SqlEngine()
        self.items = tpcc.setup(self.engine, self.scale, stream(cfg["run"]["seed"], "workload/tpcc-load"))
        self.mix = tpcc.TpccWorkload(self.scale, self.rng)
        self.warehouses = warehouses

    def load_items(self) -> list[tuple[int, bytes]]:
        return self.items

    def next_operation(self) -> SqlOperation:
        home = int(self.rng.integers(1, self.warehouses + 1))
        txn = self.mix.next_transaction(self.rng, home)
        return SqlOperation(txn.kind, lambda session: _tpcc_program(session, txn, self.scale))

    def final_check(self, session):
        """Generator: TPC-C's consistency conditions 1-4; ``{"ok", "violations"}``."""
        violations = yield from tpcc.check_consistency(session)
        return {"ok": not violations, "violations": violations[:5]}


def _tpcc_program(session, txn, scale):
    outcome = yield from tpcc.run_transaction(session, txn, scale)
    # New-Order's 1% invalid item rolls back by design: final, counted, not retried.
    return SqlOutcome(outcome.committed, outcome.error, rolled_back=outcome.rolled_back)


class SqlOutcome:
    """How a SQL program ended: committed, failed with an error, or rolled back."""

    __slots__ = ("committed", "error", "rolled_back")

    def __init__(self, committed: bool, error=None, rolled_back: bool = False):
        self.committed = committed
        self.error = error
        self.rolled_back = rolled_back


def _locate_script(spec: str, base: Path) -> str:
    """``NAME[@W]``: a shipped script under workloads/sql, else a path from ``base``."""
    name, at, weight = spec.rpartition("@") if "@" in Path(spec).name else (spec, "", "")
    for candidate in (SQL_DIR / name, base / name, Path(name)):
        if candidate.is_file():
            return f"{candidate}{at}{weight}"
    raise ConfigError("pgbench.scripts", spec, f"no such script (looked in {SQL_DIR} and {base})")
