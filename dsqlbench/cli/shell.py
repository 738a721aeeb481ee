"""``dsqlbench shell``: an interactive SQL prompt against a simulated cluster.

Each statement runs through the same SQL engine and the same simulated pipeline as
the SQL workloads (``dsqlbench.sim.sql_client.serve``): reads at the session's
``t_start`` from the replicas of its QP's AZ, commits through the adjudicators and
journals. The shell prints each result, EXPLAIN plans, and the statement's simulated
latency (client round trip included). Between statements no simulated time passes
beyond what the cluster needed, so a person's typing speed never shows in the figures.

The cluster starts loaded with pgbench's TPC-B tables at ``--scale`` (so there is
something to query at once: ``SELECT * FROM pgbench_branches``).
"""

from __future__ import annotations

import sys

import click
import simpy
from rich.console import Console
from rich.table import Table

from dsqlbench import config as config_mod
from dsqlbench.checkers.oracle import Oracle
from dsqlbench.metrics import Recorder
from dsqlbench.sim.cluster import Cluster
from dsqlbench.sim.sql_client import SqlAttempt, serve
from dsqlbench.workload.sql import PgbenchSqlWorkload

PROMPT = "dsql=> "
CONTINUE = "dsql-> "


class SimulatedSqlClient:
    """One SQL session on a simulated cluster, statement by statement."""

    def __init__(self, cfg: dict):
        self.env = simpy.Environment()
        self.workload = PgbenchSqlWorkload(cfg)
        items = self.workload.load_items()
        self.recorder = Recorder(0, 10**9)
        self.cluster = Cluster(self.env, cfg, self.recorder, Oracle(), [k for k, _ in items])
        self.cluster.load_items(items)
        self.cluster.start()
        self.session = self.workload.engine.session(self.cluster.limits, "shell")
        self.attempt = SqlAttempt(None)
        self.qp = 0

    def execute(self, sql: str):
        """Run one statement; returns ``(StatementResult, simulated latency in ns)``.
        (``serve`` takes this client as its driver: it reads ``.cluster`` and ``.env``.)"""
        box = {}
        process = self.env.process(self._run(sql, box))
        self.env.run(until=process)
        return box["result"], box["latency_ns"]

    def _run(self, sql: str, box: dict):
        started = self.env.now
        network = self.cluster.network
        to_qp_ns = network.client_delay_ns()
        yield self.env.timeout(to_qp_ns + self.cluster.qp_statement_ns(self.qp, self.env.now + to_qp_ns))
        times = {"read_ns": 0, "read_wait_ns": 0, "commit_ns": 0}
        program = self.session.execute(sql)
        try:
            request = program.send(None)
            while True:
                if _is_begin(request):
                    self.attempt = SqlAttempt(self.cluster.begin(self.qp, 0, 1))
                reply = yield from serve(self, self.qp, self.attempt, request, times)
                request = program.send(reply)
        except StopIteration as stop:
            box["result"] = stop.value
        yield self.env.timeout(network.client_delay_ns())
        box["latency_ns"] = self.env.now - started


def _is_begin(request) -> bool:
    from dsqlbench.sql.protocol import Begin

    return isinstance(request, Begin)


def render(console: Console, result, latency_ns: int) -> None:
    if result.error is not None:
        error = result.error
        where = f" at character {error.position}" if getattr(error, "position", None) else ""
        console.print(f"ERROR:  {error.message} (SQLSTATE {error.sqlstate}){where}",
                      highlight=False, markup=False)
    elif result.kind == "explain":
        for row in result.rows:
            console.print(str(row[0]), highlight=False, markup=False)
    elif result.columns:
        table = Table(*[str(c) for c in result.columns], show_edge=False)
        for row in result.rows:
            table.add_row(*["NULL" if v is None else str(v) for v in row])
        console.print(table)
        console.print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})",
                      highlight=False)
    else:
        console.print(result.tag, highlight=False)
    moved = (f"; storage examined {result.rows_examined} rows, returned {result.rows_returned}"
             if result.rows_examined else "")
    console.print(f"[dim]simulated {latency_ns / 1e6:.3f} ms{moved}[/dim]", highlight=False)


def statements(lines):
    """Complete statements from input lines: a statement ends with ``;``."""
    buffer: list[str] = []
    for line in lines:
        if not buffer and line.strip() in ("\\q", "quit", "exit"):
            return
        buffer.append(line)
        text = "\n".join(buffer).strip()
        if text.endswith(";"):
            buffer = []
            yield text


@click.command("shell")
@click.option("--topology", "-t", help="Topology name or file (default single-region).")
@click.option("--scale", type=int, default=1, show_default=True, help="pgbench scale of the sample data.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config key.")
def shell_command(topology, scale, seed, overrides) -> None:
    """An interactive SQL prompt against a simulated cluster (\\q to quit)."""
    cfg = config_mod.load_config("tpcb", topology=topology, seed=seed,
                                 overrides=[f"pgbench.scale={scale}", *overrides])
    client = SimulatedSqlClient(cfg)
    console = Console()
    interactive = sys.stdin.isatty()
    if interactive:
        console.print(f"dsqlbench shell: simulated {cfg['topology']['topology']['name']} cluster, "
                      f"pgbench tables at scale {scale}. End statements with ';', \\q quits.",
                      highlight=False)
    for sql in statements(_lines(interactive)):
        result, latency_ns = client.execute(sql)
        render(console, result, latency_ns)


def _lines(interactive: bool):
    while True:
        try:
            line = input(PROMPT) if interactive else sys.stdin.readline()
        except EOFError:
            return
        if not interactive and line == "":
            return
        yield line.rstrip("\n")
