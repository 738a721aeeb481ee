"""Parameter sweeps: one workload run at many points of a parameter space.

Place in the pipeline: ``dsqlbench sweep SWEEP.toml`` (``cli.sweep``) calls
``load_sweep`` to read and validate a sweep file and expand it into runs,
``check_folder`` and ``prepare_folder`` to start or resume the sweep folder, then
``execute`` to run what is unfinished on an executor (``dsqlbench.executors``).
Workers run ``run_point``; the driver writes each run folder and the index. ``report``
and ``compare`` read the folder back with ``read_index`` (and ``load_run`` per run).

A sweep file::

    [sweep]
    name = "clock-skew"               # folder name: results/sweeps/<name>-s<seed>
    description = "..."
    workload = "hot-key"              # shipped name, or a path relative to this file
    topology = "single-region"        # optional: replaces the workload's
    repeats = 2                       # runs per point, each with its own derived seed
    seed = 1                          # optional: base seed (default: the workload's)
    set = ["run.duration_s=2"]        # base overrides, as ``dsqlbench run --set``

    [sweep.grid]                      # cartesian product of every axis
    "topology.adjudicator.shards" = [1, 2, 4]
    "ycsb.zipfian_constant" = {start = 0.5, stop = 1.0, step = 0.1}

    [[sweep.points]]                  # explicit points (times the grid, when both)
    label = "qp behind 4 ms"
    set = {"topology.clock.qp.offset_us" = -4000}

The sweep folder::

    <sweep>/sweep.json        the normalised spec, its SHA-256, and every run:
                              point, repeat, name, label, overrides, params, seed,
                              config_sha256
    <sweep>/index.parquet     one row per run (see ``INDEX_METRICS``)
    <sweep>/p000-r0/ ...      one ordinary run folder per run (as ``dsqlbench run``)

Invariants:

- Everything is validated before anything runs: the sweep file's keys and values, and
  every run's resolved config (through ``load_config``). Each problem is one
  ``ConfigError`` line naming the sweep file and the point.
- Expansion is deterministic: grid axes in file order, the last axis varying fastest;
  explicit points in file order (outer) times grid combinations (inner); repeats
  innermost. Runs are named ``p<point>-r<repeat>``, zero-based, zero-padded.
- Repeat ``r`` of every point runs with ``derive_seed(base_seed, r)`` (SHA-256 of
  both): the seed depends on the repeat only, so the points of one repeat share their
  random streams (common random numbers: differences between points come from the
  parameters, not from luck), and adding points never changes another point's seed.
- A run folder appears whole (``write_run`` is atomic) or not at all. A run counts as
  finished when its folder loads with ``load_run``, holds its tables and carries the
  expected ``config_sha256``; resuming redoes every other run, never a finished one.
- The index is rewritten atomically after every finished run, so it always reflects
  what finished. Its ``status`` is ``ok``, ``failed`` (with ``error``) or ``pending``
  (not run yet: interrupted). Simulated metrics are exact; ``host.wall_s`` is the only
  wall-clock column, and nothing about the host feeds a simulated figure.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import shutil
import tomllib
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dsqlbench import __version__
from dsqlbench import config as config_mod
from dsqlbench.errors import ConfigError, ResultError, UserError

SWEEP_SCHEMA_VERSION = 1
SWEEP_FILE = "sweep.json"
INDEX_FILE = "index.parquet"
INDEX_KIND = "dsqlbench-sweep-index"
SWEEP_KEYS = ("name", "description", "workload", "topology", "repeats", "seed", "set",
              "grid", "points")
POINT_KEYS = ("label", "set")
RANGE_KEYS = ("start", "stop", "step")
REPEATS_MAX = 1000
RANGE_VALUES_MAX = 10_000
RUNS_MAX = 100_000
# A range value this close to ``stop`` (in steps) counts as reaching it: excluded.
RANGE_TOLERANCE_STEPS = 1e-9
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

# Headline figures copied into the index: (column = path in summary["simulated"], type).
# Read defensively: a figure missing from a summary (older or newer) is null.
INDEX_METRICS: tuple[tuple[str, str], ...] = (
    ("throughput_per_s", "float"),
    ("goodput_per_s", "float"),
    ("abort_rate", "float"),
    ("transactions.attempted", "int"),
    ("transactions.committed", "int"),
    ("transactions.aborted", "int"),
    ("aborts.OC000", "int"),
    ("latency_ms.all.p50", "float"),
    ("latency_ms.all.p99", "float"),
    ("latency_ms.all.p99_9", "float"),
    ("latency_ms.all.max", "float"),
    ("read_wait_ms.p50", "float"),
    ("read_wait_ms.p99", "float"),
    ("commit_phase_ms.commit.p50", "float"),
    ("commit_phase_ms.commit_wait.p50", "float"),
    ("commit_phase_ms.commit_wait.p99", "float"),
    ("visibility_lag_ms.p50", "float"),
    ("visibility_lag_ms.p99", "float"),
    ("checks.oracle.ok", "bool"),
    ("checks.oracle.stale_reads", "int"),
    ("checks.oracle.realtime_violations", "int"),
    ("checks.verdict.ok", "bool"),
    ("checks.bank.ok", "bool"),
    ("clock.stale_reads", "int"),
    ("clock.realtime_violations", "int"),
    ("clock.qp_max_abs_offset_us", "float"),
    ("clock.adjudicator_max_abs_offset_us", "float"),
    ("clock.qp_bound_violations", "int"),
    ("clock.adjudicator_bound_violations", "int"),
    ("counters.crossbar.fragments_decoded_from_parity", "int"),
    ("counters.crossbar.batches_rebuilt_from_data", "int"),
)
HOST_METRICS: tuple[tuple[str, str], ...] = (("wall_s", "float"),)
_ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}


# ---------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Run:
    """One run of a sweep: point ``point``, repeat ``repeat``, its resolved config."""

    name: str
    point: int
    repeat: int
    label: str
    overrides: dict[str, Any]  # this point's own dotted key -> value (grid and point)
    params: dict[str, Any]  # every varied key -> its resolved value in ``config``
    seed: int
    config: dict = field(repr=False)
    config_sha256: str = ""


@dataclass(frozen=True)
class Sweep:
    source: str
    spec: dict  # normalised: what the sweep file says, with the effective seed and sets
    spec_sha256: str
    varied: tuple[str, ...]  # dotted keys some point sets, in first-seen order
    runs: tuple[Run, ...]

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def seed(self) -> int:
        return self.spec["seed"]


@dataclass
class Outcome:
    """What became of a run: ``ok`` (with its summary), ``failed`` (with the error
    text) or ``pending`` (never finished)."""

    status: str
    error: str | None = None
    summary: dict | None = None


# ---------------------------------------------------------------------- loading


def locate_sweep(spec: str | Path) -> Path:
    """A sweep file: a path, else a shipped sweep's name (``workloads/sweeps/NAME.toml``)."""
    path = Path(spec)
    text = str(spec)
    if path.exists() or "/" in text or "\\" in text or text.endswith(".toml"):
        return path
    shipped = shipped_sweeps()
    if text in shipped:
        return shipped[text]
    names = ", ".join(shipped) or "none"
    raise ConfigError(text, None, f"no such sweep file, and no shipped sweep of that name "
                                  f"(shipped: {names})")


def shipped_sweeps() -> dict[str, Path]:
    """Shipped sweep name -> file, sorted by name."""
    folder = config_mod.shipped_dir() / "sweeps"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def load_sweep(path: Path | str, seed: int | None = None,
               overrides: Iterable[str] = ()) -> Sweep:
    """The sweep file at ``path`` validated and expanded into runs, every run's config
    resolved. ``seed`` replaces the base seed; ``overrides`` append to ``[sweep] set``.
    Raises ``ConfigError`` (one line) on any problem; nothing has run yet."""
    path = Path(path)
    source = str(path)
    raw = _read_sweep_file(path)
    spec = _normalise(raw, source)
    for item in overrides:
        _refuse_seed_key(item.partition("=")[0].strip(), source, f"--set {item}")
    spec["set"] = spec["set"] + list(overrides)
    base_dir = path.parent
    workload, topology = _reference(spec["workload"], base_dir), _topology_ref(spec, base_dir)
    base = _resolve(source, "base config", workload, topology, spec["set"], seed)
    if seed is None:
        seed = spec["seed"] if spec["seed"] is not None else base["run"]["seed"]
    spec["seed"] = _check_seed(seed, source)
    points = expand_points(spec, source)
    if len(points) * spec["repeats"] > RUNS_MAX:
        raise ConfigError(source, None, f"{len(points) * spec['repeats']} runs; at most "
                                        f"{RUNS_MAX} per sweep")
    context = _Context(source, spec, workload, topology, _varied_keys(points), len(points))
    runs = []
    for index, (label, point_set) in enumerate(points):
        runs += _point_runs(context, index, label, point_set)
    return Sweep(source, spec, canonical_sha256(spec), context.varied, tuple(runs))


def _read_sweep_file(path: Path) -> dict:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(source, None, "no such sweep file") from None
    except IsADirectoryError:
        raise ConfigError(source, None, "is a folder, not a sweep file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, None, f"cannot read the sweep file: {error}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, None, f"TOML syntax error: {error}") from None


def _normalise(raw: dict, source: str) -> dict:
    """The ``[sweep]`` table checked key by key, as a plain JSON-able dict."""
    _no_unknown(raw, ("sweep",), source, "")
    sweep = raw.get("sweep")
    if not isinstance(sweep, dict):
        raise ConfigError(source, "sweep", "missing: a sweep file is one [sweep] table")
    _no_unknown(sweep, SWEEP_KEYS, source, "sweep")
    spec = {
        "name": _name(sweep, source),
        "description": _typed(sweep, "description", str, "", source),
        "workload": _required_str(sweep, "workload", source),
        "topology": _typed(sweep, "topology", str, None, source),
        "repeats": _repeats(sweep, source),
        "seed": _optional_seed(sweep, source),
        "set": _base_set(sweep, source),
        "grid": _grid(sweep, source),
        "points": _points(sweep, source),
    }
    if not spec["grid"] and not spec["points"]:
        raise ConfigError(source, "sweep", "nothing to vary: give [sweep.grid] or "
                                           "[[sweep.points]]")
    return spec


def _no_unknown(table: dict, known: tuple[str, ...], source: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            dotted = f"{prefix}.{key}" if prefix else key
            raise ConfigError(source, dotted, f"unknown key; allowed: {', '.join(known)}")


def _typed(table: dict, key: str, kind: type, default: Any, source: str) -> Any:
    value = table.get(key, default)
    if value is not default and (not isinstance(value, kind) or isinstance(value, bool)
                                 and kind is not bool):
        raise ConfigError(source, f"sweep.{key}", f"must be a {_kind_name(kind)}, "
                                                  f"got {_show(value)}")
    return value


def _required_str(table: dict, key: str, source: str) -> str:
    value = _typed(table, key, str, None, source)
    if not value:
        raise ConfigError(source, f"sweep.{key}", "required: a non-empty string")
    return value


def _name(sweep: dict, source: str) -> str:
    name = _required_str(sweep, "name", source)
    if not _NAME_PATTERN.fullmatch(name):
        raise ConfigError(source, "sweep.name", f"{_show(name)}: use letters, digits, "
                                                "'.', '_' and '-' (it names a folder)")
    return name


def _repeats(sweep: dict, source: str) -> int:
    repeats = _typed(sweep, "repeats", int, 1, source)
    if not 1 <= repeats <= REPEATS_MAX:
        raise ConfigError(source, "sweep.repeats", f"{repeats}: must be an integer in "
                                                   f"1..{REPEATS_MAX}")
    return repeats


def _optional_seed(sweep: dict, source: str) -> int | None:
    seed = _typed(sweep, "seed", int, None, source)
    return None if seed is None else _check_seed(seed, source)


def _check_seed(seed: int, source: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= config_mod.SEED_MAX:
        raise ConfigError(source, "sweep.seed", f"{_show(seed)}: must be an integer in "
                                                f"0..{config_mod.SEED_MAX}")
    return seed


def _base_set(sweep: dict, source: str) -> list[str]:
    items = _typed(sweep, "set", list, [], source)
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(source, "sweep.set", f"{_show(item)}: each item must be a "
                                                   '"key=value" string, as for --set')
        _refuse_seed_key(item.partition("=")[0].strip(), source, "sweep.set")
    return list(items)


def _refuse_seed_key(dotted: str, source: str, where: str) -> None:
    # Repeats own the seed; a point that set it would silently defeat them.
    if dotted.replace('"', "").replace(" ", "") == "run.seed":
        raise ConfigError(source, where, "run.seed cannot be set in a sweep; use "
                                         "[sweep] seed (repeats derive their seeds from it)")


def _kind_name(kind: type) -> str:
    return {str: "string", int: "integer", list: "array", dict: "table"}.get(kind, kind.__name__)


# ---------------------------------------------------------------------- grid and points


def _grid(sweep: dict, source: str) -> dict[str, Any]:
    """``[sweep.grid]`` flattened to dotted key -> list of values or range table."""
    grid = sweep.get("grid")
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        raise ConfigError(source, "sweep.grid", f"must be a table, got {_show(grid)}")
    axes = dict(_flatten(grid, "", is_leaf=_is_axis))
    if not axes:
        raise ConfigError(source, "sweep.grid", "empty: give at least one key = [values]")
    for key, axis in axes.items():
        _refuse_seed_key(key, source, f"sweep.grid.{key}")
        axis_values(axis, source, key)  # validated now, expanded again when needed
    return axes


def _is_axis(value: Any) -> bool:
    return not isinstance(value, dict) or _is_range(value)


def _is_range(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and set(value) <= set(RANGE_KEYS)


def _flatten(table: dict, prefix: str, is_leaf: Callable[[Any], bool]) -> Iterator[tuple[str, Any]]:
    """Nested TOML tables (``a.b.c = x`` in a file) as dotted keys; a quoted dotted key
    (``"a.b.c" = x``) is already one."""
    for key, value in table.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if is_leaf(value):
            yield dotted, value
        else:
            yield from _flatten(value, dotted, is_leaf)


def axis_values(axis: Any, source: str, key: str) -> list[Any]:
    """The values of one grid axis: a non-empty array, or a range table."""
    where = f"sweep.grid.{key}"
    if isinstance(axis, dict):
        return float_range(axis, source, where)
    if not isinstance(axis, list) or not axis:
        raise ConfigError(source, where, f"{_show(axis)}: must be a non-empty array of "
                                         "values or a range table {start, stop, step}")
    for value in axis:
        _check_plain(value, source, where)
    return list(axis)


def float_range(table: dict, source: str, where: str) -> list[int | float]:
    """Python's ``range(start, stop, step)`` that also takes floats.

    Value ``i`` is ``start + i * step`` (computed, never accumulated, so errors do not
    add up), for every ``i`` whose value lies strictly before ``stop``; a value within
    1e-9 of a step of ``stop`` counts as reaching it, so ``{start = 0, stop = 1,
    step = 0.1}`` gives ten values, 0.0 to 0.9, whatever the float rounding. ``step``
    defaults to 1. All integers give integers; otherwise floats rounded to 12
    significant digits (0.30000000000000004 becomes 0.3).
    """
    missing = [k for k in ("start", "stop") if k not in table]
    if missing:
        raise ConfigError(source, where, f"range table misses {', '.join(missing)}: "
                                         "give {start, stop, step}")
    start, stop, step = table["start"], table["stop"], table.get("step", 1)
    for name, value in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(source, f"{where}.{name}", f"{_show(value)}: must be a finite number")
    if step == 0:
        raise ConfigError(source, f"{where}.step", "must not be 0")
    count = max(0, math.ceil((stop - start) / step - RANGE_TOLERANCE_STEPS))
    if count == 0:
        raise ConfigError(source, where, f"range from {start} to {stop} by {step} is empty")
    if count > RANGE_VALUES_MAX:
        raise ConfigError(source, where, f"range has {count} values; at most {RANGE_VALUES_MAX}")
    if all(isinstance(v, int) for v in (start, stop, step)):
        return list(range(start, stop, step))
    return [float(f"{start + i * step:.12g}") for i in range(count)]


def _points(sweep: dict, source: str) -> list[dict]:
    """``[[sweep.points]]``: each ``{label, set}``, labels unique, ``set`` flattened."""
    points = sweep.get("points")
    if points is None:
        return []
    if not isinstance(points, list) or not points:
        raise ConfigError(source, "sweep.points", "must be a non-empty array of tables "
                                                  "[[sweep.points]]")
    seen: set[str] = set()
    normalised = []
    for number, point in enumerate(points):
        where = f"sweep.points[{number}]"
        if not isinstance(point, dict):
            raise ConfigError(source, where, f"must be a table, got {_show(point)}")
        _no_unknown(point, POINT_KEYS, source, where)
        label = point.get("label")
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(source, f"{where}.label", "required: a non-empty string")
        if label in seen:
            raise ConfigError(source, f"{where}.label", f"{_show(label)}: used twice; "
                                                        "labels must be unique")
        seen.add(label)
        normalised.append({"label": label, "set": _point_set(point, source, where)})
    return normalised


def _point_set(point: dict, source: str, where: str) -> dict[str, Any]:
    raw = point.get("set", {})
    if not isinstance(raw, dict):
        raise ConfigError(source, f"{where}.set", f"must be a table of dotted key = value, "
                                                  f"got {_show(raw)}")
    flat = dict(_flatten(raw, "", is_leaf=lambda v: not isinstance(v, dict)))
    for key, value in flat.items():
        _refuse_seed_key(key, source, f"{where}.set.{key}")
        _check_plain(value, source, f"{where}.set.{key}")
    return flat


def _check_plain(value: Any, source: str, where: str) -> None:
    """Only what a config can hold and JSON can store (no TOML dates, no NaN)."""
    if isinstance(value, list):
        for item in value:
            _check_plain(item, source, where)
    elif isinstance(value, dict):
        for item in value.values():
            _check_plain(item, source, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(source, where, f"{value}: must be a finite number")
    elif not isinstance(value, (str, int, float, bool)):
        raise ConfigError(source, where, f"{_show(value)}: values must be strings, numbers, "
                                         "booleans, arrays or tables")


def expand_points(spec: dict, source: str = "sweep") -> list[tuple[str, dict[str, Any]]]:
    """Every point as ``(label, {dotted key: value})``: explicit points (outer, file
    order) times grid combinations (inner; last axis fastest)."""
    combos = _grid_combos(spec["grid"], source)
    points = spec["points"] or [None]
    expanded = []
    for point in points:
        for combo_label, combo in combos:
            if point is None:
                expanded.append((combo_label, combo))
                continue
            _refuse_overlap(point, combo, source)
            label = f"{point['label']} {combo_label}".strip()
            expanded.append((label, {**point["set"], **combo}))
    return expanded


def _grid_combos(grid: dict[str, Any], source: str) -> list[tuple[str, dict[str, Any]]]:
    if not grid:
        return [("", {})]
    keys = list(grid)
    short = _short_names(keys)
    values = [axis_values(grid[key], source, key) for key in keys]
    combos = []
    for combo in itertools.product(*values):
        label = " ".join(f"{short[k]}={_value_text(v)}" for k, v in zip(keys, combo))
        combos.append((label, dict(zip(keys, combo))))
    return combos


def _refuse_overlap(point: dict, combo: dict, source: str) -> None:
    both = sorted(set(point["set"]) & set(combo))
    if both:
        raise ConfigError(source, both[0], f"set both by [sweep.grid] and by point "
                                           f"{_show(point['label'])}; vary it in one place")


def _short_names(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix that tells each key apart (``qp.offset_us``)."""
    parts = {key: key.split(".") for key in keys}
    short = {}
    for key, segments in parts.items():
        for width in range(1, len(segments) + 1):
            suffix = ".".join(segments[-width:])
            clash = [k for k, s in parts.items() if k != key and ".".join(s[-width:]) == suffix]
            if not clash:
                break
        short[key] = suffix
    return short


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _varied_keys(points: list[tuple[str, dict[str, Any]]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for _label, overrides in points:
        seen.update(dict.fromkeys(overrides))
    return tuple(seen)


# ---------------------------------------------------------------------- seeds, configs


def derive_seed(base_seed: int, repeat: int) -> int:
    """The seed of repeat ``repeat``: the first 8 bytes of SHA-256 of both, as an
    integer in 0..2**63-1. Stable across versions and machines (no hash salt)."""
    digest = hashlib.sha256(f"dsqlbench-sweep:{int(base_seed)}:{int(repeat)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & config_mod.SEED_MAX


def run_name(point: int, repeat: int, points: int, repeats: int) -> str:
    """``p003-r1``: zero-based, padded so names sort in sweep order."""
    point_width = max(3, len(str(points - 1)))
    repeat_width = len(str(repeats - 1))
    return f"p{point:0{point_width}d}-r{repeat:0{repeat_width}d}"


@dataclass(frozen=True)
class _Context:
    """What every point of one sweep resolves against."""

    source: str
    spec: dict
    workload: str
    topology: str | None
    varied: tuple[str, ...]
    points: int


def _point_runs(ctx: _Context, index: int, label: str, point_set: dict[str, Any]) -> list[Run]:
    """The runs (one per repeat) of one point, each with its config resolved."""
    spec = ctx.spec
    overrides = spec["set"] + [f"{key}={toml_literal(value)}" for key, value in point_set.items()]
    where = f"point {index} {_show(label)}" if label else f"point {index}"
    runs = []
    for repeat in range(spec["repeats"]):
        seed = derive_seed(spec["seed"], repeat)
        cfg = _resolve(ctx.source, where, ctx.workload, ctx.topology, overrides, seed)
        runs.append(Run(
            name=run_name(index, repeat, ctx.points, spec["repeats"]), point=index,
            repeat=repeat, label=label, overrides=dict(point_set),
            params={key: _lookup(cfg, key) for key in ctx.varied}, seed=seed, config=cfg,
            config_sha256=config_mod.config_sha256(cfg)))
    return runs


def _resolve(source: str, where: str, workload: str, topology: str | None,
             overrides: list[str], seed: int | None) -> dict:
    """``load_config`` for one run; its error re-worded to name the sweep and point."""
    try:
        return config_mod.load_config(workload, topology=topology, overrides=overrides,
                                      seed=seed)
    except ConfigError as error:
        raise ConfigError(source, where, str(error)) from None


def _reference(spec: str, base_dir: Path) -> str:
    """A workload or topology: a shipped name as is; a path relative to the sweep file."""
    looks_like_path = ("/" in spec or "\\" in spec or spec.endswith(".toml")
                       or spec.startswith("."))
    if looks_like_path and not Path(spec).is_absolute():
        return str(base_dir / spec)
    return spec


def _topology_ref(spec: dict, base_dir: Path) -> str | None:
    return None if spec["topology"] is None else _reference(spec["topology"], base_dir)


def toml_literal(value: Any) -> str:
    """``value`` as a TOML literal, so it goes through ``load_config`` exactly like a
    ``--set key=value`` typed by hand (same parsing, same checks, same errors)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return '"' + "".join(_toml_char(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_toml_key(k)} = {toml_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML literal for {type(value).__name__}")


def _toml_char(char: str) -> str:
    if char in '"\\' or ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\u{ord(char):04x}"
    return char


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_literal(key)


def _lookup(cfg: dict, dotted: str) -> Any:
    """The resolved value at a dotted key (array elements by index), or None."""
    node: Any = cfg
    for part in dotted.split("."):
        part = part.strip().strip('"')
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def canonical_sha256(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------- the folder


def default_sweep_dir(results_root: Path, sweep: Sweep) -> Path:
    """``<results_root>/sweeps/<name>-s<seed>``: one folder per sweep and seed, so
    running the same sweep again resumes it."""
    return Path(results_root) / "sweeps" / f"{sweep.name}-s{sweep.seed}"


def sweep_document(sweep: Sweep) -> dict:
    """The content of ``sweep.json``."""
    return {
        "schema_version": SWEEP_SCHEMA_VERSION,
        "kind": "dsqlbench-sweep",
        "dsqlbench_version": __version__,
        "source": sweep.source,
        "spec": sweep.spec,
        "spec_sha256": sweep.spec_sha256,
        "varied": list(sweep.varied),
        "runs": [{"name": r.name, "point": r.point, "repeat": r.repeat, "label": r.label,
                  "set": r.overrides, "params": r.params, "seed": r.seed,
                  "config_sha256": r.config_sha256} for r in sweep.runs],
    }


def check_folder(sweep: Sweep, out_dir: Path, resume: bool) -> dict[str, Outcome]:
    """Read-only: may this sweep use ``out_dir``, and which of its runs are finished
    there (name -> ok ``Outcome``)? A folder holding a different sweep, or something
    else, is a ``UserError`` (exit 2); ``resume`` demands a sweep folder."""
    out_dir = Path(out_dir)
    existing = _existing_spec_sha(out_dir)
    if existing is None and resume:
        raise UserError(f"{out_dir}: no sweep to resume there ({SWEEP_FILE} missing)")
    if existing is not None and existing != sweep.spec_sha256:
        raise UserError(
            f"{out_dir}: holds a different sweep (spec {existing[:12]}, this file "
            f"{sweep.spec_sha256[:12]}); give another --out or remove that folder")
    if existing is None:
        return {}
    return {run.name: outcome for run in sweep.runs
            if (outcome := finished_run(out_dir, run)) is not None}


def prepare_folder(sweep: Sweep, out_dir: Path) -> None:
    """Create the folder (after ``check_folder``), remove leftovers of an interrupted
    write, and (re)write ``sweep.json``: the expanded runs with their config hashes as
    this version resolves them."""
    from dsqlbench.results.folder import write_bytes_atomically

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    text = json.dumps(sweep_document(sweep), indent=2, sort_keys=True, allow_nan=False)
    write_bytes_atomically(out_dir / SWEEP_FILE, (text + "\n").encode("utf-8"))


def _existing_spec_sha(out_dir: Path) -> str | None:
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a folder; give another --out")
    file = out_dir / SWEEP_FILE
    if not file.is_file():
        if any(out_dir.iterdir()):
            raise UserError(f"{out_dir}: exists, is not empty and holds no {SWEEP_FILE}; "
                            "give another --out")
        return None
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
        return str(document["spec_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{file}: unreadable ({error}); remove the folder or give "
                        "another --out") from None


def _remove_leftovers(out_dir: Path) -> None:
    # Hidden siblings of write_run/atomic_output that a killed driver left behind.
    for entry in out_dir.iterdir():
        if entry.name.startswith((".tmp-", ".old-")):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def finished_run(out_dir: Path, run: Run) -> Outcome | None:
    """The run's outcome when its folder is complete and is this run; else None."""
    from dsqlbench.results.folder import TABLE_NAMES, load_run

    folder = out_dir / run.name
    if not folder.is_dir():
        return None
    try:
        summary = load_run(folder)
    except ResultError:
        return None
    tables_present = all((folder / f"{name}.parquet").is_file() for name in TABLE_NAMES)
    if summary["config_sha256"] != run.config_sha256 or not tables_present:
        return None
    return Outcome("ok", summary=summary)


# ---------------------------------------------------------------------- the worker


def payload_for(run: Run, git_revision: str | None) -> dict:
    """What a worker needs: the resolved config (no file is read on the worker, so
    workers need no shared file system) and the hash it must reproduce."""
    return {"name": run.name, "config": run.config, "config_sha256": run.config_sha256,
            "seed": run.seed, "git_revision": git_revision}


def run_point(payload: dict) -> dict:
    """Simulate one run; returns ``{"name", "status": "ok", "summary", "tables"}``
    (tables as Arrow IPC stream bytes) or ``{"name", "status": "failed", "error",
    "traceback"}``. Never raises for a failing run: the sweep goes on.

    Runs on a worker (a local process, a Dask worker or in-process), so it is a
    top-level function of an importable module and takes and returns plain data.
    """
    try:
        summary, tables = _simulate_payload(payload)
        return {"name": payload["name"], "status": "ok", "summary": summary,
                "tables": {name: table_to_ipc(table) for name, table in tables.items()}}
    except Exception as error:  # noqa: BLE001 - any failure marks this run failed
        return {"name": payload.get("name"), "status": "failed", "error": error_text(error),
                "traceback": traceback.format_exc(limit=20)}


def _simulate_payload(payload: dict) -> tuple[dict, dict[str, pa.Table]]:
    """The same steps as ``dsqlbench run`` (``runner.run_config``); a sweep records
    anomalies in its index rather than stopping on them, so the check is not strict."""
    from dsqlbench.runner import run_config

    # A worker with another dsqlbench version may resolve the config differently;
    # refuse rather than file its figures under this config's hash.
    cfg = config_mod.validate_config(payload["config"], source=f"run {payload['name']}")
    digest = config_mod.config_sha256(cfg)
    if digest != payload["config_sha256"]:
        raise RuntimeError(f"the worker's dsqlbench {__version__} resolves this config "
                           "differently (version skew between driver and worker?)")
    result = run_config(cfg, git_revision=payload["git_revision"], config_sha256=digest)
    return result.summary, result.tables


def error_text(error: BaseException) -> str:
    """One line: the exception type and its message."""
    message = " ".join(str(error).split())
    name = type(error).__name__
    return f"{name}: {message}" if message else name


def table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_ipc(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


# ---------------------------------------------------------------------- the driver


def execute(sweep: Sweep, out_dir: Path, pool, runs: list[Run],
            outcomes: dict[str, Outcome], git_revision: str | None,
            on_outcome: Callable[[Run, Outcome], None] = lambda run, outcome: None,
            ) -> dict[str, Outcome]:
    """Run ``runs`` on ``pool`` (``dsqlbench.executors.Pool``), writing each finished
    run's folder and the index as results arrive; ``outcomes`` (name -> Outcome) is
    updated in place and returned. At most ``pool.window`` runs are in flight, so an
    interruption leaves little to cancel. A ``KeyboardInterrupt`` propagates after the
    index has been written."""
    in_flight: dict[Future, Run] = {}
    queue = list(reversed(runs))

    def record(run: Run, outcome: Outcome) -> None:
        outcomes[run.name] = outcome
        write_index(out_dir, sweep, outcomes)
        on_outcome(run, outcome)

    try:
        while queue or in_flight:
            while queue and len(in_flight) < pool.window:
                run = queue.pop()
                try:
                    in_flight[pool.executor.submit(run_point, payload_for(run, git_revision))] = run
                except Exception as error:  # noqa: BLE001 - e.g. a broken pool: fail, go on
                    record(run, Outcome("failed", error=f"not started: {error_text(error)}"))
            if not in_flight:
                continue
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: in_flight[f].name):
                run = in_flight.pop(future)
                record(run, _store(out_dir, run, future))
    finally:
        write_index(out_dir, sweep, outcomes)
    return outcomes


def _store(out_dir: Path, run: Run, future: Future) -> Outcome:
    """The run's outcome; when ok, its folder written (atomically) first."""
    from dsqlbench.results.folder import write_run

    try:
        result = future.result()
    except Exception as error:  # noqa: BLE001 - a lost worker fails this run only
        return Outcome("failed", error=f"worker lost: {error_text(error)}")
    if not isinstance(result, dict) or result.get("status") != "ok":
        error = result.get("error") if isinstance(result, dict) else f"bad result {result!r:.60}"
        return Outcome("failed", error=error or "unknown error")
    try:
        summary = result["summary"]
        if summary["config_sha256"] != run.config_sha256:
            raise ValueError("the result is for another config")
        tables = {name: table_from_ipc(data) for name, data in result["tables"].items()}
        # overwrite: only a stale or broken folder of this very run can be in the way.
        write_run(out_dir / run.name, summary, tables, overwrite=True)
    except Exception as error:  # noqa: BLE001 - an incomplete result fails this run only
        return Outcome("failed", error=f"result not stored: {error_text(error)}")
    return Outcome("ok", summary=summary)


# ---------------------------------------------------------------------- the index


def index_table(sweep: Sweep, outcomes: dict[str, Outcome]) -> pa.Table:
    """One row per run, in sweep order: identity, varied parameters (column = dotted
    key), status, then the headline figures (column = path in the summary)."""
    pending = Outcome("pending")
    rows = [(run, outcomes.get(run.name, pending)) for run in sweep.runs]
    columns: dict[str, tuple[list, pa.DataType]] = {
        "run": ([r.name for r, _ in rows], pa.string()),
        "point": ([r.point for r, _ in rows], pa.int64()),
        "repeat": ([r.repeat for r, _ in rows], pa.int64()),
        "label": ([r.label for r, _ in rows], pa.string()),
    }
    for key in sweep.varied:
        values = [r.params.get(key) for r, _ in rows]
        columns[key] = _param_column(values)
    columns.update({
        "seed": ([r.seed for r, _ in rows], pa.int64()),
        "config_sha256": ([r.config_sha256 for r, _ in rows], pa.string()),
        "status": ([o.status for _, o in rows], pa.string()),
        "error": ([o.error for _, o in rows], pa.string()),
    })
    for path, kind in INDEX_METRICS:
        columns[path] = ([_figure(o, "simulated", path, kind) for _, o in rows], _ARROW_TYPES[kind])
    for path, kind in HOST_METRICS:
        columns[f"host.{path}"] = ([_figure(o, "host", path, kind) for _, o in rows],
                                   _ARROW_TYPES[kind])
    arrays = {name: pa.array(values, type=kind) for name, (values, kind) in columns.items()}
    return pa.table(arrays).replace_schema_metadata(_index_metadata(sweep))


def _param_column(values: list[Any]) -> tuple[list, pa.DataType]:
    """A parameter column typed by its values: bool, int, float, else text (JSON)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return values, pa.bool_()
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return values, pa.int64()
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return [None if v is None else float(v) for v in values], pa.float64()
    return [None if v is None else v if isinstance(v, str) else json.dumps(v)
            for v in values], pa.string()


def _figure(outcome: Outcome, section: str, path: str, kind: str) -> Any:
    node: Any = (outcome.summary or {}).get(section)
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if kind == "bool":
        return node if isinstance(node, bool) else None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None
    if kind == "int":
        return int(node) if float(node).is_integer() else None
    return float(node)


def _index_metadata(sweep: Sweep) -> dict[bytes, bytes]:
    from dsqlbench.results.folder import SCHEMA_VERSION

    return {
        b"schema_version": str(SCHEMA_VERSION).encode(),
        b"dsqlbench_version": __version__.encode(),
        b"kind": INDEX_KIND.encode(),
        b"sweep_name": sweep.name.encode(),
        b"spec_sha256": sweep.spec_sha256.encode(),
        b"params": json.dumps(list(sweep.varied)).encode(),
        b"metrics": json.dumps([p for p, _ in INDEX_METRICS]
                               + [f"host.{p}" for p, _ in HOST_METRICS]).encode(),
    }


def write_index(out_dir: Path, sweep: Sweep, outcomes: dict[str, Outcome]) -> None:
    """``index.parquet``, replaced atomically."""
    from dsqlbench.results.folder import atomic_output

    table = index_table(sweep, outcomes)
    with atomic_output(Path(out_dir) / INDEX_FILE) as handle:
        pq.write_table(table, handle)


def read_index(path: Path) -> tuple[pa.Table, dict]:
    """A sweep's index table and ``sweep.json``; ``path`` is the sweep folder.
    ``ResultError`` (one line) when it is not a sweep folder this version reads.
    Columns: ``params`` (metadata, JSON list) are the varied keys; ``metrics`` the
    figures; rows with ``status != "ok"`` carry null figures."""
    from dsqlbench.results.folder import read_table

    path = Path(path)
    if not (path / SWEEP_FILE).is_file():
        raise ResultError(f"{path}: not a sweep folder ({SWEEP_FILE} missing)")
    try:
        document = json.loads((path / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ResultError(f"{path / SWEEP_FILE}: unreadable: {error}") from None
    if document.get("schema_version") != SWEEP_SCHEMA_VERSION:
        raise ResultError(f"{path / SWEEP_FILE}: unknown schema_version "
                          f"{document.get('schema_version')!r}")
    table, metadata = read_table(path / INDEX_FILE)
    if metadata.get("kind") != INDEX_KIND:
        raise ResultError(f"{path / INDEX_FILE}: not a sweep index")
    return table, document


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    tally = {"ok": 0, "failed": 0, "pending": 0}
    for outcome in outcomes:
        tally[outcome.status] += 1
    return tally

