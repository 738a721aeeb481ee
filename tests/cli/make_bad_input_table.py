"""Regenerate tests/cli/BAD_INPUT.md: every bad input tried for issue 14, as a user
would type it, each in a fresh folder; its exit code, its last line on stderr, and
whether anything was written (every path, hidden ones included, compared before and
after).

    .venv/bin/python tests/cli/make_bad_input_table.py > tests/cli/BAD_INPUT.md

Not a test (pytest does not collect it): the assertions live in the test files; this
is the closing note's table, kept reproducible. Takes about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY = "from dsqlbench.cli import main; main()"
SMALL = ["--duration", "1.5", "--set", "run.warmup_s=0.5", "--set", "load.record_count=2000",
         "--set", "clients.count=8", "--progress", "none", "-q"]
PGBENCH_TOML = """[workload]
name = "p"
kind = "pgbench"
[run]
duration_s = 1.5
warmup_s = 0.5
[load]
record_count = 2000
[pgbench]
schema = "ycsb"
scripts = ["s.pgbench"]
"""
SWEEP = """[sweep]
name = "s"
workload = "ycsb-a"
set = ["run.duration_s=1.5", "run.warmup_s=0.5", "load.record_count=2000"]
[sweep.grid]
{grid}
"""
TOPOLOGY = '{body}\n[topology]\nname = "t"\n'


def _good_run(root: Path) -> Path:
    """One small list-append run folder (it has a history table), made once."""
    folder = root / "good"
    if not folder.exists():
        subprocess.run([sys.executable, "-c", ENTRY, "run", "list-append", *SMALL, "--out",
                        str(folder)], check=True, capture_output=True)
    return folder


def _with_run(name: str = "r", damage=None):
    def setup(case: Path, shared: Path) -> None:
        shutil.copytree(_good_run(shared), case / name)
        if damage is not None:
            damage(case / name)
    return setup


def _files(**files: str | bytes):
    def setup(case: Path, shared: Path) -> None:
        for name, content in files.items():
            path = case / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def _truncate(name: str, size: int):
    return lambda run: os.truncate(run / name, size)


def _flip(name: str):
    def damage(run: Path) -> None:
        data = bytearray((run / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (run / name).write_bytes(bytes(data))
    return damage


def _edit_summary(change):
    def damage(run: Path) -> None:
        summary = json.loads((run / "summary.json").read_text())
        change(summary)
        (run / "summary.json").write_text(json.dumps(summary))
    return damage


def _set(summary: dict, **values) -> None:
    summary.update(values)


# (input as described in the table, argv after "dsqlbench", setup)
CASES = [
    # the issue's own items
    ("item 1: `--out` under /proc", ["run", *SMALL, "--out", "/proc/dsqlbench-x"], None),
    ("item 1: `--out` whose parent is a file", ["run", *SMALL, "--out", "afile/run"],
     _files(afile="x")),
    ("item 1: `sweep --out` whose parent is a file", ["sweep", "zipfian", "--out", "afile/s"],
     _files(afile="x")),
    ("item 1: `baseline update --dir` under /proc", ["baseline", "update", "--dir", "/proc/b"], None),
    ("item 2: pgbench script uses an undefined `:nokey`", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": PGBENCH_TOML,
               "s.pgbench": "\\set k random(1, :records)\nSELECT * FROM usertable "
                            "WHERE ycsb_key = :nokey;\n"})),
    ("item 3: crash of adjudicator shard 99 on 4 shards",
     ["run", "faults", "--set", 'faults=[{kind="crash", target="adjudicator:99"}]', "--out", "out"], None),
    ("item 4: `compare` with transactions.parquet truncated to 100 bytes",
     ["compare", "good", "r"], lambda c, s: (_with_run("good")(c, s),
                                             _with_run("r", _truncate("transactions.parquet", 100))(c, s))),
    ("item 4: `check` with one bit flipped in history.parquet", ["check", "r"],
     _with_run("r", _flip("history.parquet"))),
    ("item 4: `report` with timeseries.parquet truncated", ["report", "r", "-o", "d.html"],
     _with_run("r", _truncate("timeseries.parquet", 10))),
    ("item 4: `export --format csv` with transactions.parquet deleted",
     ["export", "r", "--format", "csv"], _with_run("r", lambda run: (run / "transactions.parquet").unlink())),
    # configs
    ("workload file: unknown table `[wrkload]`", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": '[wrkload]\nname = "x"\n'})),
    ("workload file: `clients.count = \"8\"` (a string)", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": '[workload]\nname = "x"\n[clients]\ncount = "8"\n'})),
    ("workload file: empty", ["run", "w.toml", "--out", "out"], _files(**{"w.toml": ""})),
    ("workload file: a folder", ["run", "wdir", "--out", "out"], _files(**{"wdir__x": ""})),
    ("workload file: not UTF-8", ["run", "w.toml", "--out", "out"], _files(**{"w.toml": b"\xff\xfe[w"})),
    ("`--set run.duration_s=-1`", ["run", "--set", "run.duration_s=-1", "--out", "out"], None),
    ("`--duration nan`", ["run", "--duration", "nan", "--out", "out"], None),
    ("`--seed -1`", ["run", "--seed", "-1", "--out", "out"], None),
    ("`--seed` of 2^64", ["run", "--seed", str(2**64), "--out", "out"], None),
    ("`--set clients.mode=open` without a rate", ["run", "--set", "clients.mode=open", "--out", "out"], None),
    ("`--set topology.regions.5.azs=2` (no region 5)",
     ["run", "--set", "topology.regions.5.azs=2", "--out", "out"], None),
    ("`--set ycsb.request_distribution=pareto`",
     ["run", "--set", "ycsb.request_distribution=pareto", "--out", "out"], None),
    ("fault of unknown kind `explode`",
     ["run", "--set", 'faults=[{kind="explode", target="qp:0"}]', "--out", "out"], None),
    ("fault without a target", ["run", "--set", 'faults=[{kind="crash"}]', "--out", "out"], None),
    ("fault `qp:01` (would never match QP 1)",
     ["run", "--set", 'faults=[{kind="crash", target="qp:01"}]', "--out", "out"], None),
    ("partition to region r3 of a one-region topology",
     ["run", "--set", 'faults=[{kind="partition", target="r0|r3"}]', "--out", "out"], None),
    # pgbench scripts
    ("pgbench script: unknown function `random_uniform()`", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": PGBENCH_TOML, "s.pgbench": "\\set k random_uniform(1, 9)\nSELECT :k;\n"})),
    ("pgbench script: unsupported `\\if`", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": PGBENCH_TOML, "s.pgbench": "\\if 1\nSELECT 1;\n"})),
    ("pgbench script: missing file", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": PGBENCH_TOML})),
    ("pgbench script: empty", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": PGBENCH_TOML, "s.pgbench": "-- nothing\n"})),
    ("pgbench script: `\\set k 1 / 0` (only a run can tell)", ["run", "w.toml", "--out", "out"],
     _files(**{"w.toml": PGBENCH_TOML, "s.pgbench": "\\set k 1 / 0\nSELECT :k;\n"})),
    ("pgbench script: weight `@x`", ["run", "w.toml", "--set", 'pgbench.scripts=["s.pgbench@x"]',
                                     "--out", "out"],
     _files(**{"w.toml": PGBENCH_TOML, "s.pgbench": "SELECT 1;\n"})),
    # topology files
    ("topology file: `regions = []`", ["run", "--topology", "t.toml", "--out", "out"],
     _files(**{"t.toml": TOPOLOGY.format(body="regions = []")})),
    ("topology file: only witness regions", ["run", "--topology", "t.toml", "--out", "out"],
     _files(**{"t.toml": TOPOLOGY.format(body='[[regions]]\nname = "a"\nrole = "witness"')})),
    ("topology file: two regions named alike", ["run", "--topology", "t.toml", "--out", "out"],
     _files(**{"t.toml": TOPOLOGY.format(body='[[regions]]\nname = "a"\n[[regions]]\nname = "a"')})),
    ("topology file: `azs = 0`", ["run", "--topology", "t.toml", "--out", "out"],
     _files(**{"t.toml": TOPOLOGY.format(body='[[regions]]\nname = "a"\nazs = 0')})),
    ("`--topology nowhere`", ["run", "--topology", "nowhere", "--out", "out"], None),
    # sweeps
    ("sweep file: missing", ["sweep", "nope.toml"], None),
    ("sweep file: unknown key `[sweep] repeat`", ["sweep", "s.toml"],
     _files(**{"s.toml": SWEEP.format(grid='"clients.count" = [1, 2]').replace(
         'name = "s"', 'name = "s"\nrepeat = 2')})),
    ("sweep: axis on an unknown config key", ["sweep", "s.toml"],
     _files(**{"s.toml": SWEEP.format(grid='"clients.cont" = [1, 2]')})),
    ("sweep: empty axis `[]`", ["sweep", "s.toml"],
     _files(**{"s.toml": SWEEP.format(grid='"clients.count" = []')})),
    ("sweep: a point's value invalid (`clients.count = 0`)", ["sweep", "s.toml"],
     _files(**{"s.toml": SWEEP.format(grid='"clients.count" = [1, 0]')})),
    ("sweep `--out` holding another sweep", ["sweep", "zipfian", "--out", "o"],
     _files(**{"o__sweep.json": '{"spec_sha256": "0"}'})),
    # result folders
    ("`compare` with a missing folder", ["compare", "nope", "nope2"], None),
    ("`compare` with a folder without summary.json", ["compare", "empty", "empty"], _files(**{"empty__x": ""})),
    ("`compare` with summary.json cut in half", ["compare", "r", "r"],
     _with_run("r", lambda run: os.truncate(run / "summary.json", 500))),
    ("`compare` with a config edited in summary.json", ["compare", "r", "r"],
     _with_run("r", _edit_summary(lambda s: s["config"]["clients"].update(count=99)))),
    ("`compare` with schema_version 99", ["compare", "r", "r"],
     _with_run("r", _edit_summary(lambda s: _set(s, schema_version=99)))),
    ("`compare` with a malformed `files` manifest", ["compare", "r", "r"],
     _with_run("r", _edit_summary(lambda s: _set(s, files=["transactions.parquet"])))),
    ("`report` of an empty folder", ["report", "empty", "-o", "d.html"], _files(**{"empty__x": ""})),
    ("`export --format csv` of two runs", ["export", "r", "r", "--format", "csv"], _with_run("r")),
    ("`export --format hgrm` of a garbage .hlog", ["export", "x.hlog", "--format", "hgrm"],
     _files(**{"x.hlog": "0.0,1.0,2.0,bm90IGEgaGlzdG9ncmFt\n"})),
    ("`compare -o` into a missing folder", ["compare", "r", "r", "-o", "no/c.md"], _with_run("r")),
    ("`baseline check --dir` without baselines", ["baseline", "check", "--dir", "nobase"], None),
    ("`--out` is an existing file", ["run", *SMALL, "--out", "afile"], _files(afile="x")),
    ("`--out` is a folder holding other files", ["run", *SMALL, "--out", "d"], _files(d__keep="x")),
    ("`--set` of an unknown key", ["run", "--set", "clients.cuont=3", "--out", "out"], None),
    ("`--repeat 0`", ["run", "--repeat", "0", "--out", "out"], None),
    ("`--transactions 0` (was: ran the whole duration, exit 0)",
     ["run", "--transactions", "0", "--out", "out"], None),
    ("`--duration 1 --transactions 5`", ["run", "--duration", "1", "--transactions", "5"], None),
    ("an unknown command", ["frobnicate"], None),
    ("`compare -o` over the input's summary.json", ["compare", "r", "r", "-o", "r/summary.json"],
     _with_run("r")),
    ("`compare` of a sweep folder (not a run)", ["compare", "sw", "sw"],
     _files(**{"sw__sweep.json": "{}", "sw__p000-r0__summary.json": "{}"})),
    ("`--set faults.0.target=...` with no faults", ["run", "--set", 'faults.0.target="qp:1"',
                                                  "--out", "out"], None),
    ("storage fault with more storage shards than keys",
     ["run", "--set", "load.record_count=10", "--set", "topology.storage.shards=20", "--set",
      'faults=[{kind="crash", target="storage:15:0"}]', "--out", "out"], None),
    ("`--results-root` is a file", ["run", *SMALL, "--results-root", "afile"], _files(afile="x")),
]

SIGNAL_CASES = [
    ("SIGINT 1 s into `run`", ["run", "--duration", "60", "--out", "out", "--progress", "none"],
     signal.SIGINT, None),
    ("SIGTERM 1 s into `run`", ["run", "--duration", "60", "--out", "out", "--progress", "none"],
     signal.SIGTERM, None),
    ("SIGINT 1 s into `sweep` (the driver)", ["sweep", "zipfian", "--out", "s", "--jobs", "1"],
     signal.SIGINT, "no, by design: `sweep.json` and an index of the finished runs, kept "
                    "for `--resume`; each run folder is written atomically"),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _last_line(err: str) -> str:
    """The line that answers: the last one dsqlbench begins with ``dsqlbench:``
    (an interrupted sweep follows its line with the command that resumes it)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    ours = [i for i, line in enumerate(lines) if line.startswith("dsqlbench:")]
    if not ours:
        return (lines or [""])[-1]
    answer = lines[ours[-1]]
    following = lines[ours[-1] + 1:ours[-1] + 2]
    if answer.endswith(":") and following:  # "Resume with:" and the command
        answer += " " + following[0].strip()
    return answer


def run_case(argv, setup, shared: Path, signum=None) -> tuple[int, str, bool]:
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        case = Path(tmp)
        if setup is not None:
            setup(case, shared)
        before = _snapshot(case)
        process = subprocess.Popen([sys.executable, "-c", ENTRY, *argv], cwd=case,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=_default_sigint)
        if signum is not None:
            time.sleep(3.0)  # start-up, config, and about a second of work
            process.send_signal(signum)
        _, err = process.communicate(timeout=600)
        line = _last_line(err).replace(f"{case}/", "").replace(str(case), ".")
        if "Traceback" in err:
            line = f"TRACEBACK: {line}"
        return process.returncode, line, _snapshot(case) == before


def main() -> None:
    shared = Path(tempfile.mkdtemp(prefix="bad-input-shared-"))
    rows = []
    try:
        for label, argv, setup in CASES:
            code, line, clean = run_case(argv, setup, shared)
            rows.append((label, argv, code, line, "yes" if clean else "no"))
        for label, argv, signum, note in SIGNAL_CASES:
            code, line, clean = run_case(argv, None, shared, signum)
            rows.append((label, argv, code, line, "yes" if clean else note or "no"))
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    print("# Bad input: what dsqlbench answers (issue 14)\n")
    print("Generated by `tests/cli/make_bad_input_table.py`, each input in a fresh folder; "
          "*nothing written* compares every path (hidden ones included) before and after. "
          "Exit codes: 2 bad input, 3 unreadable result, 130 interrupted. Items 5-8 of the issue "
          "are not bad input (generators, anomaly names, Hermitage tests, the dashboard skip) "
          "and are covered by their own commits.\n")
    print("| # | input | command | exit | the one line printed (last line of stderr) | nothing written |")
    print("|---|---|---|---|---|---|")
    for number, (label, argv, code, line, clean) in enumerate(rows, start=1):
        command = " ".join(_shell_word(a) for a in ["dsqlbench", *argv]).replace("|", "\\|")
        text = line.replace("|", "\\|")
        print(f"| {number} | {label} | `{command}` | {code} | {text} | {clean} |")
    print(NOTES)


NOTES = """
## What changed to get here (each with a test)

- Items 1-4 of the issue: `tests/cli/test_unwritable_out.py`,
  `tests/workload/test_pgbench_checks.py`, `tests/test_fault_targets.py`,
  `tests/results/test_damaged_folder_cli.py` (and `tests/results/test_folder.py`).
- SIGTERM during a run used to kill the process mid-way; it now unwinds like Ctrl-C, so
  the temporary folder is removed (`tests/cli/test_signals.py`).
- click's usage errors were four lines (usage, hint, blank, error); now one line with
  a pointer to `--help` (`tests/cli/test_usage_errors.py`).
- `--transactions 0` ran the whole duration and exited 0; now refused (same file).
- `--out` naming an existing file said "not empty"; now "exists and is not a folder".
- `-o FILE` of compare, report and export into a missing or read-only folder was a
  traceback; now one line, exit 2. Writing over an input, or into a run folder being
  read (`compare a b -o a/summary.json` destroyed run a), is refused.
- A storage fault with more storage shards than loaded keys was an `IndexError` (the
  run builds fewer shards); now refused before the run.
- `--set faults.0.target=...` without faults said "index in 0..-1"; now "the array is
  empty". A sweep folder given as a run folder names a run inside it.
- A pgbench runtime error (`\\set k 1 / 0`) was a `TypeError` out of simpy; now one
  line, exit 2 (the run stops, nothing is written).

## Known and left alone

- A sweep interrupted keeps its folder (by design, for `--resume`).
- A `kill -9` during a run leaves an empty hidden `.tmp-<name>-<pid>` next to `--out`
  (nothing can run on SIGKILL); a later run with the same pid, or a sweep's resume,
  removes it.
- pgbench scripts are found next to the current folder or among the shipped ones, not
  next to the workload file that names them (`dsqlbench/workload/sql.py`).
- pgbench's predefined `:client_id` is not defined for scripts in a simulated run
  (`workload/sql.py` passes only `:scale` and `:records`); the check says so up front.
- `bench --json FILE` is written at the end, not atomically, and an unwritable FILE is
  a traceback after the benchmarks (`dsqlbench/bench.py`, not in this change).
"""


def _shell_word(word: str) -> str:
    return word if word and all(c.isalnum() or c in "-_./=:@" for c in word) else f"'{word}'"


if __name__ == "__main__":
    main()
