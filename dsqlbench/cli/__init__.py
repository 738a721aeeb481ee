"""The command line: ``dsqlbench run``, ``check``, ``workloads``; the other commands
live beside this module (``cli.results``: compare, baseline, report, export;
``cli.sweep``; ``cli.shell``) and ``bench`` in ``dsqlbench.bench``.

Every user error (``dsqlbench.errors.UserError``) becomes one line on stderr and the
exit code of its class (2 bad input, 3 unreadable result), with no traceback unless
``--debug``. Any other exception is a bug: it is printed in full with the seed that
reproduces it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from dsqlbench import __version__
from dsqlbench.errors import UserError

EXIT_CHECK_FAILED = 1
EXIT_BUG = 70


class _State:
    debug = False
    seed: int | None = None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dsqlbench")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors too.")
def cli(debug: bool) -> None:
    """A benchmark and performance lab for distributed SQL databases built like
    Amazon Aurora DSQL: a deterministic simulation of the whole transaction pipeline."""
    _State.debug = debug


@cli.command()
@click.argument("workload", required=False)
@click.option("--topology", "-t", help="Topology name (workloads/topologies/NAME.toml) or file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, e.g. clients.count=8 or topology.journal.write_median_us=900.")
@click.option("--seed", type=int, help="Run seed (every random choice derives from it).")
@click.option("--duration", type=float, help="Simulated seconds to run (warm-up included).")
@click.option("--transactions", type=int, help="Stop after this many measured transactions.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Run folder to write (default results/<workload>-s<seed>-NNN).")
@click.option("--results-root", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Where default run folders go.")
@click.option("--progress", type=click.Choice(["auto", "bar", "jsonl", "none"]), default="auto",
              show_default=True, help="Progress display (a bar only on a terminal).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it holds a previous run.")
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Simulate N times: host (wall-clock) figures become samples for "
                   "statistical comparison; the simulated figures must repeat exactly.")
@click.option("--check", "strict_check", is_flag=True,
              help="Hold the run to strong snapshot isolation: exit 1 on any forbidden "
                   "anomaly (stale reads included) or a checker disagreement.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the run folder.")
def run(workload, topology, overrides, seed, duration, transactions, out_dir, results_root,
        progress, overwrite, repeat, strict_check, quiet) -> None:
    """Run WORKLOAD (a shipped name or a TOML file; default ycsb-a) and write its results."""
    from dsqlbench import config as config_mod
    from dsqlbench.results.folder import default_run_dir, reserve_run_dir
    from dsqlbench.results.summary_table import render_summary

    if duration is not None and transactions is not None:
        raise UserError("--duration and --transactions are exclusive: give one")
    if transactions is not None and transactions < 1:
        raise UserError(f"--transactions {transactions}: must be >= 1 (for no limit, leave it "
                        "out: the run then lasts run.duration_s)")
    cfg = config_mod.load_config(workload, topology=topology, overrides=list(overrides),
                                 seed=seed, duration_s=duration, transactions=transactions)
    _State.seed = cfg["run"]["seed"]
    console = Console()
    target = out_dir or default_run_dir(results_root, cfg["workload"]["name"], _State.seed)
    _refuse_occupied(target, overwrite)
    with reserve_run_dir(target, overwrite) as reservation:  # an unwritable --out fails now
        result = _simulate(cfg, console, progress, quiet, repeat, strict_check)
        summary = result.summary
        reservation.write(summary, result.tables)
    if quiet:
        click.echo(str(target))
    else:
        render_summary(summary, console)
        console.print(f"results: {target}", highlight=False)
    _fail_on_checks(summary["simulated"], result.verdict, strict_check)


def _simulate(cfg, console, progress, quiet, repeat, strict_check):
    from dsqlbench.results.summary_table import ProgressReporter
    from dsqlbench.runner import cwd_revision, run_config

    if not quiet:
        console.print(f"SEED={_State.seed} workload={cfg['workload']['name']} "
                      f"topology={cfg['topology']['topology']['name']}", highlight=False)
    total_s = None if cfg["run"]["transactions"] else cfg["run"]["duration_s"]
    reached = _Reached(lambda: ProgressReporter(total_s, console=console,
                                                mode="none" if quiet else progress))
    try:
        return run_config(cfg, repeat=repeat, strict=strict_check, git_revision=cwd_revision(),
                          progress_factory=reached.reporter)
    except KeyboardInterrupt:
        click.echo(f"dsqlbench: interrupted at simulated {reached.sim_s:.2f} s of "
                   f"{cfg['run']['duration_s']:g} s (SEED={_State.seed}); no result folder "
                   "was written", err=True)
        sys.exit(130)


class _Reached:
    """Remembers how far the simulation got, for an interrupted run's last words."""

    def __init__(self, make_reporter):
        self.make_reporter = make_reporter
        self.sim_s = 0.0

    def reporter(self):
        outer = self

        class _Tracking:
            def __enter__(self):
                self.inner = outer.make_reporter().__enter__()
                return self

            def __exit__(self, *exc):
                return self.inner.__exit__(*exc)

            def update(self, snapshot):
                outer.sim_s = snapshot.get("sim_s", outer.sim_s)
                self.inner.update(snapshot)

        return _Tracking()


def _refuse_occupied(target: Path, overwrite: bool) -> None:
    """Fail before simulating, not after, when the run folder cannot be written."""
    if (target.exists() or target.is_symlink()) and not target.is_dir():
        raise UserError(f"{target}: exists and is not a folder; choose another --out")
    if target.exists() and not (target.is_dir() and (overwrite or not any(target.iterdir()))):
        raise UserError(f"{target}: already exists and is not empty; choose another --out "
                        "or pass --overwrite")


def _fail_on_checks(simulated: dict, verdict: dict, strict: bool) -> None:
    """Exit 1 when the run broke snapshot isolation (always: that is a lab bug or a
    control), or, with ``--check``, anything strong snapshot isolation forbids."""
    oracle = simulated["checks"]["oracle"]
    failed = not oracle["ok"] or (strict and not (verdict["ok"] and verdict["agree"]))
    if not failed:
        return
    click.echo(f"dsqlbench: consistency check FAILED (model {verdict['model']}, "
               f"seed {_State.seed}):", err=True)
    for line in _witness_lines(simulated):
        click.echo(f"  {line}", err=True)
    if not verdict["agree"]:
        click.echo(f"  checker fault: {verdict.get('checker_fault')}", err=True)
    sys.exit(EXIT_CHECK_FAILED)


def _witness_lines(simulated: dict) -> list[str]:
    checks = simulated["checks"]
    lines = list(checks["oracle"].get("witnesses", []))
    elle = checks.get("elle") or {}
    for name in elle.get("forbidden", []):
        lines += [f"{name}: {w}" for w in elle.get("witnesses", {}).get(name, [])]
    return lines


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--model", type=click.Choice(["strong-snapshot-isolation", "snapshot-isolation"]),
              default="strong-snapshot-isolation", show_default=True)
def check(run_dir: Path, model: str) -> None:
    """Re-check a finished run: the Elle-style checker on its list-append history,
    against the oracle's verdict stored with it. Exit 1 on a forbidden anomaly."""
    from dsqlbench.checkers.verdict import history_from_table
    from dsqlbench.results.folder import load_run, read_table
    from dsqlbench.sim.run import check_history

    summary = load_run(run_dir)
    _State.seed = summary["seed"]
    history = None
    if (run_dir / "history.parquet").exists():
        history = history_from_table(read_table(run_dir / "history.parquet")[0])
    simulated = summary["simulated"]
    verdict = check_history(simulated, history, strict=model == "strong-snapshot-isolation")
    console = Console()
    elle = simulated["checks"].get("elle")
    console.print(f"oracle: {'ok' if verdict['oracle_ok'] else 'VIOLATIONS'}", highlight=False)
    if elle is not None:
        console.print(f"elle: {'valid' if elle['valid'] else 'INVALID'}; anomalies "
                      f"{elle['anomalies'] or 'none'}; allowed {elle['allowed'] or 'none'}",
                      highlight=False, markup=False)
    console.print(f"verdict ({model}): {'ok' if verdict['ok'] else 'FAILED'}"
                  f"{'' if verdict['agree'] else ' (checkers disagree)'}", highlight=False)
    _fail_on_checks(simulated, verdict, strict=True)


@cli.command()
@click.option("--keys", is_flag=True, help="List every config key with its type, default and allowed values.")
def workloads(keys: bool) -> None:
    """List the shipped workloads and topologies, one line each."""
    from dsqlbench import config as config_mod

    console = Console()
    if keys:
        for doc in config_mod.schema_keys():
            console.print(f"{doc.key:<44} {doc.type:<6} default {doc.default!r:<14} "
                          f"{doc.allowed}  {doc.description}", highlight=False, soft_wrap=True, markup=False)
        return
    console.print("workloads:", highlight=False)
    for name, description, _path in config_mod.shipped_workloads():
        console.print(f"  {name:<14} {description}", highlight=False, soft_wrap=True, markup=False)
    console.print("topologies:", highlight=False)
    for name, description, _path in config_mod.shipped_topologies():
        console.print(f"  {name:<14} {description}", highlight=False, soft_wrap=True, markup=False)


def _register_optional_commands() -> None:
    from dsqlbench.cli.results import register

    register(cli)
    from dsqlbench.cli.sweep import sweep_command

    cli.add_command(sweep_command, "sweep")
    from dsqlbench.bench import bench_command
    from dsqlbench.cli.shell import shell_command

    cli.add_command(bench_command, "bench")
    cli.add_command(shell_command, "shell")
    from dsqlbench.cli.serve import serve_command; cli.add_command(serve_command, "serve")  # noqa: E702


_register_optional_commands()


def _terminated(_signum, _frame) -> None:
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C: temporary folders are removed
    # and the interrupted command says what it kept, instead of dying mid-write.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line and an exit code."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        _main(argv)
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="dsqlbench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("dsqlbench: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as error:  # a usage error: one line too, with a pointer
        hint = ""
        if isinstance(error, click.UsageError) and error.ctx is not None:
            hint = f" (see '{error.ctx.command_path} --help')"
        message = " ".join(error.format_message().split())
        click.echo(f"dsqlbench: error: {message}{hint}", err=True)
        sys.exit(error.exit_code)
    except UserError as error:
        if _State.debug:
            raise
        click.echo(f"dsqlbench: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("dsqlbench: interrupted; no result folder was written", err=True)
        sys.exit(130)
    except Exception:
        import traceback

        traceback.print_exc()
        if _State.seed is not None:
            click.echo(f"dsqlbench: internal error; SEED={_State.seed} reproduces it", err=True)
        sys.exit(EXIT_BUG)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
