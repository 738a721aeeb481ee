"""``dsqlbench serve``: the command line of the PostgreSQL endpoint (``dsqlbench.serve``).

It resolves the workload and topology like ``run`` does (faults from the workload file
apply live), builds the cluster (preloaded with the workload's SQL tables when the
workload is a SQL one and ``--preload`` is given, else empty), listens, prints one
``listening`` line, and on SIGINT/SIGTERM writes the results folder and exits 0.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from dsqlbench.errors import UserError


@click.command("serve")
@click.argument("workload", required=False)
@click.option("--topology", "-t", help="Topology name (workloads/topologies/NAME.toml) or file.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=5432, show_default=True,
              help="Port (0: any free port, printed).")
@click.option("--seed", type=int, help="Run seed (every random choice derives from it).")
@click.option("--time", "time_mode", type=click.Choice(["fast", "real"]), default="real",
              show_default=True, help="real: simulated time follows the wall clock; fast: it "
                                      "advances as soon as every session waits.")
@click.option("--inject-conflicts", "inject_rate", type=click.FloatRange(0.0, 1.0), default=0.0,
              show_default=True, help="Seeded fraction of read-write COMMITs failing with OC000.")
@click.option("--password", help="Require this password (SCRAM-SHA-256) instead of loopback trust.")
@click.option("--max-connections", "connections_max", type=click.IntRange(1), default=10_000,
              show_default=True, help="Connections beyond are refused with 53300.")
@click.option("--idle-timeout", "idle_timeout_s", type=click.FloatRange(0.001), default=3600.0,
              show_default=True, help="Seconds an idle session is kept (DSQL: 1 h).")
@click.option("--compat", "compat", type=click.Choice(["none", "pgbench"]), default="none",
              show_default=True, help="pgbench: accept what `pgbench -i` sends (see README).")
@click.option("--preload", is_flag=True, help="Load a SQL workload's tables (pgbench, tpcc) first.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config key.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Results folder written at shutdown (default results/serve-s<seed>-NNN).")
def serve_command(workload, topology, host, port, seed, time_mode, inject_rate, password,
                  connections_max, idle_timeout_s, compat, preload, overrides, out_dir) -> None:
    """Serve the simulated cluster over the PostgreSQL protocol (Ctrl-C stops and writes results)."""
    from dsqlbench import config as config_mod
    from dsqlbench.results.folder import default_run_dir
    from dsqlbench.serve.server import ServeOptions, is_loopback

    cfg = config_mod.load_config(workload or "tpcb", topology=topology, seed=seed,
                                 overrides=list(overrides))
    target = out_dir or default_run_dir(Path("results"), "serve", cfg["run"]["seed"])
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target}: already exists and is not empty; choose another --out")
    if not is_loopback(host) and password is None:
        click.echo(f"dsqlbench serve: warning: listening on {host} beyond loopback with no "
                   "--password: anyone who can reach it is trusted", err=True)
    options = ServeOptions(host=host, port=port, time_mode=time_mode, password=password,
                           connections_max=connections_max, idle_timeout_s=idle_timeout_s,
                           compat_pgbench=compat == "pgbench", out_dir=target)
    try:
        asyncio.run(_serve(cfg, options, inject_rate, preload))
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


async def _serve(cfg: dict, options, inject_rate: float, preload: bool) -> None:
    from dsqlbench.serve.backend import ClusterBackend
    from dsqlbench.serve.server import Server

    engine, items = _preloaded(cfg) if preload else (None, ())
    backend = ClusterBackend(cfg, inject_rate, engine, items)
    server = Server(backend, options)
    port = await server.start()
    server.install_signal_handlers()
    print(f"dsqlbench serve: listening on {options.host}:{port} SEED={backend.seed} "
          f"time={options.time_mode} topology={cfg['topology']['topology']['name']}", flush=True)
    await server.wait_stopped()
    await server.stop()
    server.write_results(options.out_dir)
    print(f"dsqlbench serve: stopped; {backend.counts['statements']} statements, "
          f"{backend.counts['committed']} committed, {backend.counts['aborted']} aborted; "
          f"results: {options.out_dir}", flush=True)
    sys.stdout.flush()


def _preloaded(cfg: dict):
    kind = cfg["workload"]["kind"]
    if kind not in ("pgbench", "tpcc"):
        raise UserError(f"--preload needs a SQL workload (pgbench or tpcc), not {kind}")
    from dsqlbench.sim.run import make_workload

    workload = make_workload(cfg)
    return workload.engine, workload.load_items()
