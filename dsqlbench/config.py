"""Load, validate and resolve workload and topology files into one config tree.

Role: the only way a run gets its parameters. ``load_config`` reads a workload file
(TOML), the topology file it names, ``--set key=value`` overrides and the CLI's
``--seed/--duration/--transactions``, checks everything against the declarative
``SCHEMA`` below and returns one nested dict:

    {"workload": ..., "run": ..., "load": ..., "clients": ..., "ycsb": ..., "retry": ...,
     "topology": {"topology": ..., "regions": [...], "placement": ..., ...}}

Invariants:
- The resolved tree has every key of the schema filled (defaults included), holds
  only JSON types (dict, list, str, int, float, bool, None) and no NaN or infinity, so
  ``config_sha256`` of two equal configs is equal however they were written (a float
  key given as ``10`` resolves to ``10.0``).
- Every problem with the input is one ``ConfigError`` whose single line names the
  file (or the override), the dotted key, the value and what is allowed; nothing is
  half-loaded.
- Overrides use the dotted keys of the resolved tree (``clients.count=8``,
  ``topology.journal.write_median_us=3000``, ``topology.regions.0.azs=2``) and go
  through the same checks as file values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from dsqlbench.errors import ConfigError

DEFAULT_WORKLOAD = "ycsb-a"
DEFAULT_TOPOLOGY = "single-region"
SEED_MAX = 2**63 - 1
PROPORTION_TOLERANCE = 1e-9
ERASURE_SYMBOLS_MAX = 255  # k + m fragments: GF(2^8) Reed-Solomon has 255 symbols
PROPORTION_KEYS = (
    "read_proportion", "update_proportion", "insert_proportion", "scan_proportion", "rmw_proportion",
)


# --- the schema vocabulary ------------------------------------------------------------


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()
_MISSING: Any = object()


@dataclasses.dataclass(frozen=True)
class Field:
    """One leaf key: its type ("int", "float", "bool", "str"), default, bounds."""

    type: str
    default: Any
    description: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False  # may be absent; resolves to None (JSON null)

    def allowed(self) -> str:
        """What a valid value is, as the end of "must be ..."."""
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        if self.type == "bool":
            return "true or false"
        if self.type == "str":
            return "a string"
        if self.type == "str_list":
            return "a list of strings"
        noun = "an integer" if self.type == "int" else "a finite number"
        return noun + self._bounds_text()

    def _bounds_text(self) -> str:
        lo = self.ge if self.ge is not None else self.gt
        hi = self.le if self.le is not None else self.lt
        if self.type == "int" and self.ge is not None and self.le is not None:
            return f" in {_num(self.ge)}..{_num(self.le)}"
        if lo is not None and hi is not None:
            left = "[" if self.ge is not None else "("
            right = "]" if self.le is not None else ")"
            return f" in {left}{_num(lo)}, {_num(hi)}{right}"
        if lo is not None:
            return f" {'>=' if self.ge is not None else '>'} {_num(lo)}"
        if hi is not None:
            return f" {'<=' if self.le is not None else '<'} {_num(hi)}"
        return ""


@dataclasses.dataclass(frozen=True)
class ArrayOf:
    """An array of tables (``[[regions]]``), each checked against ``table``."""

    table: dict
    description: str
    min_items: int = 1


@dataclasses.dataclass(frozen=True)
class MapOf:
    """A table whose keys are free-form (``"a/b" = 12.0``), each value one ``Field``."""

    value: Field
    description: str


def _int(default, description, **bounds) -> Field:
    return Field("int", default, description, **bounds)


def _float(default, description, **bounds) -> Field:
    return Field("float", float(default) if isinstance(default, int) else default, description, **bounds)


def _str(default, description, choices=None) -> Field:
    return Field("str", default, description, choices=tuple(choices) if choices else None)


def _bool(default, description) -> Field:
    return Field("bool", default, description)


def _link(median_us, sigma, tail_probability, tail_multiplier, what) -> dict:
    return {
        "median_us": _float(median_us, f"{what}: median one-way latency (lognormal), microseconds", gt=0),
        "sigma": _float(sigma, f"{what}: lognormal sigma of the latency", ge=0),
        "tail_probability": _float(
            tail_probability,
            f"{what}: chance a message hits the slow tail",
            ge=0, le=1,
        ),
        "tail_multiplier": _float(tail_multiplier, f"{what}: latency multiplier for a tail message", ge=1),
    }


def _clock_role(role: str) -> dict:
    """Faults of every clock of one role, on top of the per-node offset and drift."""
    return {
        "offset_us": _float(0, f"extra fixed true error of every {role} clock, its bound unchanged (may be negative)"),
        "strobe_us": _float(0, f"{role} clocks jump back and forth by +-strobe_us every strobe_period_ms", ge=0),
        "strobe_period_ms": _float(10, f"{role} clocks: period of the strobing", gt=0),
        "step_us": _float(0, f"{role} clocks step by this much at step_at_s (may be negative)"),
        "step_at_s": _float(0, f"{role} clocks: simulated time of the step", ge=0),
        "disrupted_from_s": _float(0, f"{role} clocks lose their bound (status disrupted) from this time", ge=0),
        "disrupted_for_s": _float(0, f"{role} clocks: how long the disruption lasts (0: none)", ge=0),
    }


# --- the schema -----------------------------------------------------------------------

WORKLOAD_SCHEMA: dict = {
    "workload": {
        "name": _str(REQUIRED, "name of the workload, shown in results"),
        "description": _str("", "one line saying what the workload measures"),
        "kind": _str(
            "ycsb",
            "which load generator runs it: ycsb (the [ycsb] mix), bank (two-account transfers), list-append (Elle's checkable workload), pgbench (SQL scripts) or tpcc (TPC-C subset)",
            choices=["ycsb", "bank", "list-append", "pgbench", "tpcc"],
        ),
        "topology": _str(
            DEFAULT_TOPOLOGY,
            "shipped topology name, or path to a topology file (relative to this file)",
        ),
    },
    "run": {
        "duration_s": _float(
            10.0,
            "simulated seconds to run (an upper bound when transactions > 0)",
            gt=0, le=86400,
        ),
        "warmup_s": _float(
            1.0,
            "simulated seconds at the start excluded from statistics; < duration_s",
            ge=0,
        ),
        "transactions": _int(
            0,
            "stop after this many measured logical transactions complete (0: no limit)",
            ge=0,
        ),
        "seed": _int(1, "run seed; every random draw derives from it", ge=0, le=SEED_MAX),
        "timeseries_interval_s": _float(1.0, "simulated seconds per time-series interval", gt=0),
    },
    "load": {
        "record_count": _int(100_000, "rows loaded before the run", ge=1, le=100_000_000),
        "value_bytes": _int(100, "bytes of value per row", ge=1, le=1_048_576),
    },
    "clients": {
        "mode": _str(
            "closed",
            "closed: clients wait for each reply; open: Poisson arrivals at rate_per_s",
            choices=["closed", "open"],
        ),
        "count": _int(64, "number of clients (sessions)", ge=1, le=100_000),
        "think_time_ms": _float(0.0, "closed mode: pause between a reply and the next request", ge=0),
        "rate_per_s": Field(
            "float",
            None,
            "open mode (required there, not allowed otherwise): arrivals per simulated second",
            gt=0, optional=True,
        ),
    },
    "ycsb": {
        "read_proportion": _float(0.5, "share of operations that read one row", ge=0, le=1),
        "update_proportion": _float(0.5, "share of operations that update one row", ge=0, le=1),
        "insert_proportion": _float(0.0, "share of operations that insert a new row", ge=0, le=1),
        "scan_proportion": _float(0.0, "share of operations that scan a key range", ge=0, le=1),
        "rmw_proportion": _float(0.0, "share of read-modify-write transactions", ge=0, le=1),
        "request_distribution": _str(
            "zipfian",
            "how keys are chosen",
            choices=["zipfian", "uniform", "latest", "hotspot", "hotkey"],
        ),
        "zipfian_constant": _float(
            0.99,
            "zipfian skew theta (also for latest and zipfian scan lengths)",
            gt=0, lt=1,
        ),
        "scrambled": _bool(
            True,
            "zipfian: scatter popular keys over the key space with FNV-1a (YCSB's default)",
        ),
        "hotspot_data_fraction": _float(0.2, "hotspot: fraction of the keys that are hot", gt=0, lt=1),
        "hotspot_op_fraction": _float(0.8, "hotspot: fraction of operations on hot keys", ge=0, le=1),
        "hot_key_count": _int(
            1,
            "hotkey: every operation picks one of this many keys; <= load.record_count",
            ge=1,
        ),
        "scan_length_max": _int(1000, "longest scan, in rows (CoreWorkload's maxscanlength)", ge=1),
        "scan_length_distribution": _str(
            "uniform",
            "how scan lengths in 1..scan_length_max are drawn",
            choices=["uniform", "zipfian"],
        ),
        "insert_order": _str(
            "hashed",
            "ordered: storage key = key id; hashed: FNV-1a of the key id",
            choices=["ordered", "hashed"],
        ),
    },
    "bank": {
        "initial_balance": _int(1000, "bank: every account's balance after the load", ge=0, le=10**12),
        "amount_max": _int(100, "bank: each transfer moves 1..amount_max", ge=1, le=10**9),
    },
    "pgbench": {
        "scripts": Field("str_list", ["tpcb-builtin.pgbench"],
                         "pgbench: script files, each NAME[@WEIGHT]; shipped ones under workloads/sql, "
                         "else paths relative to the workload file"),
        "scale": _int(1, "pgbench: scale factor (branches; 10 tellers and 100,000 accounts each)",
                      ge=1, le=10_000),
        "schema": _str("tpcb", "pgbench: the tables the scripts run on: pgbench's TPC-B tables, "
                       "or YCSB's usertable with load.record_count rows (:records in scripts)",
                       choices=["tpcb", "ycsb"]),
    },
    "tpcc": {
        "warehouses": _int(1, "tpcc: warehouses", ge=1, le=1000),
        "small": _bool(True, "tpcc: shrink items and customers per district (fast loads for the lab)"),
    },
    "list_append": {
        "keys": _int(16, "list-append: how many lists (keys) transactions share", ge=1, le=1_000_000),
        "ops_max": _int(4, "list-append: micro-operations per transaction, drawn in 1..ops_max", ge=1, le=100),
        "read_fraction": _float(0.5, "list-append: share of micro-operations that read a list", ge=0, le=1),
    },
    "faults": ArrayOf(
        {
            "kind": _str(REQUIRED, "what goes wrong",
                         choices=["crash", "pause", "partition", "slow_link", "lose_fragments",
                                  "corrupt_fragments"]),
            "target": _str(REQUIRED, "journal:J:R, storage:S:R, adjudicator:N, qp:N, "
                                     "'rR.azA|rR.azB' (links), storage[:S] (fragments)"),
            "at_s": _float(0.0, "simulated time the fault begins", ge=0),
            "duration_s": _float(1.0, "how long it lasts", gt=0),
            "count": _int(1, "occurrences; starts drawn in [at_s, at_s + spread_s] from the seed",
                          ge=1, le=10_000),
            "spread_s": _float(0.0, "window for random starts", ge=0),
            "fragments": _int(1, "lose_fragments: fragments lost per delivery", ge=1, le=255),
            "probability": _float(1.0, "fragment faults: chance a delivery is hit", ge=0, le=1),
            "multiplier": _float(10.0, "slow_link: latency multiplier", ge=1),
        },
        "scheduled faults (see dsqlbench/sim/faults.py)",
        min_items=0,
    ),
    "retry": {
        "max_attempts": _int(10, "attempts per logical transaction, first try included", ge=1, le=1000),
        "backoff_ms": _float(1.0, "backoff before the first retry, doubled per retry", ge=0),
        "backoff_max_ms": _float(50.0, "cap on the backoff; >= backoff_ms", ge=0),
        "jitter": _bool(True, "draw each backoff uniformly in [0, backoff]"),
    },
}

TOPOLOGY_SCHEMA: dict = {
    "topology": {
        "name": _str("", "name of the topology (defaults to the file name)"),
        "description": _str("", "one line describing the topology"),
    },
    "regions": ArrayOf(
        {
            "name": _str(REQUIRED, "region name, unique"),
            "azs": _int(3, "availability zones in the region", ge=1, le=6),
            "role": _str(
                "full",
                "full: every component; witness: journal replicas only",
                choices=["full", "witness"],
            ),
        },
        "regions, at least one full; journal quorum is 2 of 3 AZs (one region) or 2 of 3 regions",
    ),
    "placement": {
        "qp_per_az": _int(2, "query processors per AZ of each full region", ge=1, le=64),
    },
    "adjudicator": {
        "shards": _int(4, "adjudicator shards (key ranges)", ge=1, le=256),
        "batch_window_us": _float(50, "time an adjudicator collects commit requests into one batch", ge=0),
        "batch_service_us": _float(20, "fixed cost of checking one batch", ge=0),
        "per_txn_service_us": _float(2, "cost per transaction in a batch", ge=0),
        "promise_ms": _float(20, "multi-shard: how long a participant's vote holds", gt=0),
        "lease_ms": _float(200, "leader lease: a new leader starts once the old lease surely expired", gt=0),
        "commit_timeout_ms": _float(100, "a QP gives up waiting for a commit reply after this (outcome unknown)", gt=0),
        "heartbeat_interval_us": _float(500, "interval of journal heartbeats from an idle adjudicator", gt=0),
        "heartbeat_ahead_us": _float(
            0, "a heartbeat promises no commit below its clock's earliest plus this: storage "
               "far from the leader then serves reads without waiting, and commits pay it "
               "in commit-wait (needs clock.commit_wait)", ge=0),
    },
    "journal": {
        "write_median_us": _float(400, "replica persist time, lognormal median", gt=0),
        "write_sigma": _float(0.3, "lognormal sigma of the persist time", ge=0),
    },
    "storage": {
        "shards": _int(4, "storage shards (key ranges)", ge=1, le=1024),
        "read_service_us": _float(40, "cost of a point read", ge=0),
        "workers": _int(8, "reads one storage replica serves at once; more wait their turn (FIFO)",
                        ge=1, le=100000),
        "scan_row_service_us": _float(1, "cost per row of a scan", ge=0),
        "apply_service_us": _float(5, "cost of applying one post-image", ge=0),
        "trim_horizon_s": _float(
            300,
            "versions older than this are dropped (never a live row's newest)",
            gt=0,
        ),
    },
    "crossbar": {
        "tick_us": _float(250, "interval at which the crossbar cuts and ships batches", gt=0),
        "erasure_k": _int(4, "data fragments per batch; k + m <= 255", ge=1, le=255),
        "erasure_m": _int(2, "parity fragments per batch; k + m <= 255", ge=0, le=254),
    },
    "qp": {
        "statement_service_us": _float(80, "QP cost per SQL statement", ge=0),
        "workers": _int(16, "statements one QP runs at once; more wait their turn (FIFO)", ge=1, le=100000),
    },
    "network": {
        "client": _link(1000, 0.2, 0.001, 10, "client to QP"),
        "same_az": _link(100, 0.3, 0.001, 10, "within one AZ"),
        "cross_az": _link(400, 0.3, 0.001, 10, "between AZs of one region"),
        "cross_region": _link(30000, 0.1, 0.001, 3, "between regions"),
        "region_rtt_ms": MapOf(
            _float(REQUIRED, "round trip between the two regions", gt=0),
            '"regionA/regionB" = round-trip ms, overriding cross_region for that pair (optional)',
        ),
    },
    "clock": {
        "error_bound_us": _float(20, "clock error bound right after a sync", ge=0),
        "drift_ppm": _float(5, "actual drift of node clocks", ge=0, le=1000),
        "drift_bound_ppm": _float(50, "drift the error bound assumes between syncs", ge=0),
        "sync_interval_ms": _float(1000, "interval between clock syncs", gt=0),
        "offset_us": _float(10, "each node's offset is drawn uniformly in +-offset_us", ge=0),
        "qp": _clock_role("QP"),
        "adjudicator": _clock_role("adjudicator"),
        "t_start_from": _str(
            "latest",
            "which clock reading the QP takes t_start from",
            choices=["earliest", "now", "latest"],
        ),
        "commit_wait": _bool(True, "adjudicator acknowledges only once its earliest has passed t_commit"),
        "invalid_clock": _str(
            "refuse",
            "a node whose clock has no valid bound: refuse (abort CLOCK_UNAVAILABLE) or trust it anyway",
            choices=["refuse", "trust"],
        ),
    },
    "limits": {
        "max_modified_rows": _int(3000, "rows a transaction may modify", ge=1),
        "max_modified_bytes": _int(10_485_760, "bytes a transaction may modify", ge=1),
        "max_txn_duration_s": _float(300, "longest a transaction may run", gt=0),
    },
}

SCHEMA: dict = {**WORKLOAD_SCHEMA, "topology": TOPOLOGY_SCHEMA}


# --- public API -----------------------------------------------------------------------


class KeyDoc(NamedTuple):
    """One documented key, for ``dsqlbench workloads --keys``."""

    key: str
    type: str
    default: Any
    allowed: str
    description: str


def load_config(
    workload: str | None,
    topology: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    seed: int | None = None,
    duration_s: float | None = None,
    transactions: int | None = None,
) -> dict:
    """The resolved config for a workload (shipped name or path; None: ``ycsb-a``).

    ``topology`` (shipped name, or a path relative to the current folder) replaces the
    workload's; ``overrides`` are ``key=value`` strings (the value parsed as TOML, else
    taken as a bare string); ``seed``, ``duration_s`` and ``transactions`` set
    ``run.*``. Raises ``ConfigError`` on any bad input.
    """
    path = _locate_workload(workload or DEFAULT_WORKLOAD)
    origins = _Origins(workload=str(path))
    cfg = _resolve_table(WORKLOAD_SCHEMA, _read_toml(path, str(path)), str(path), "", WORKLOAD_SCHEMA)
    parsed = [_parse_override(text) for text in overrides]
    # Workload keys first: an override may change which topology is loaded.
    for parts, value, raw in parsed:
        if parts[0] != "topology":
            _apply(cfg, parts, value, "--set", origins, raw)
    if topology is not None:
        _apply(cfg, ["workload", "topology"], topology, "--topology", origins)
    # A topology path is relative to the file that names it, else to the current folder.
    named_in_file = origins.of("workload.topology") == origins.workload
    base = path.parent if named_in_file else None
    named_by = origins.of("workload.topology")
    cfg["topology"], origins.topology = _load_topology(cfg["workload"]["topology"], base, named_by)
    origins.topology_file = origins.topology
    for parts, value, raw in parsed:
        if parts[0] == "topology":
            _apply(cfg, parts, value, "--set", origins, raw)
    flags = (("--seed", "seed", seed), ("--duration", "duration_s", duration_s),
             ("--transactions", "transactions", transactions))
    for flag, key, value in flags:
        if value is not None:
            _apply(cfg, ["run", key], value, flag, origins)
    _check_cross_fields(cfg, origins)
    return cfg


def validate_config(cfg: dict, source: str = "config") -> dict:
    """Re-check an already resolved tree (e.g. the ``config`` of a ``summary.json``);
    returns it resolved again, with defaults added by newer versions filled in."""
    resolved = _resolve_table(SCHEMA, cfg, source, "", SCHEMA)
    _check_cross_fields(resolved, _Origins(workload=source))
    return resolved


def config_sha256(cfg: dict) -> str:
    """SHA-256 of the canonical JSON of ``cfg``: the one definition, in ``results``,
    which readers of result folders check against."""
    from dsqlbench.results.folder import config_sha256 as canonical_sha256

    return canonical_sha256(cfg)


def shipped_dir() -> Path:
    """The shipped ``workloads/`` folder: the source checkout's, else the installed
    data package ``dsqlbench._workloads``."""
    checkout = Path(__file__).resolve().parent.parent / "workloads"
    if checkout.is_dir() and any(checkout.glob("*.toml")):
        return checkout
    try:
        return Path(str(resources.files("dsqlbench._workloads")))
    except ModuleNotFoundError:
        return checkout  # neither exists: lookups fail with "no shipped workload"


def shipped_workloads() -> list[tuple[str, str, Path]]:
    """``(name, description, path)`` of every shipped workload, sorted by name."""
    return [(p.stem, _description(p, "workload"), p) for p in sorted(shipped_dir().glob("*.toml"))]


def shipped_topologies() -> list[tuple[str, str, Path]]:
    """``(name, description, path)`` of every shipped topology, sorted by name."""
    paths = sorted((shipped_dir() / "topologies").glob("*.toml"))
    return [(p.stem, _description(p, "topology"), p) for p in paths]


def schema_keys() -> list[KeyDoc]:
    """Every key of the resolved tree with its type, default, allowed values and
    description (array elements as ``topology.regions[].name``)."""
    return list(_walk_docs(SCHEMA, ""))


# --- files ----------------------------------------------------------------------------


def _read_toml(path: Path, source: str) -> dict:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, None, "no such file") from None
    except IsADirectoryError:
        raise ConfigError(source, None, "is a folder, not a TOML file") from None
    except OSError as error:
        raise ConfigError(source, None, f"cannot read the file: {error.strerror}") from None
    if b"\x00" in data:
        raise ConfigError(source, None, "not a TOML file: it holds binary data")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(source, None, f"not a TOML file: byte {error.start} is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, None, f"TOML syntax error: {error}") from None


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.endswith(".toml") or spec.startswith(".")


def _locate_workload(spec: str) -> Path:
    if _looks_like_path(spec) or Path(spec).is_file():
        return Path(spec)
    path = shipped_dir() / f"{spec}.toml"
    if path.is_file():
        return path
    names = ", ".join(name for name, _, _ in shipped_workloads())
    raise ConfigError(spec, None, f"no such file, and no shipped workload of that name (shipped: {names})")


def _load_topology(spec: str, base: Path | None, source: str) -> tuple[dict, str]:
    """The resolved topology named ``spec`` (by ``source``) and the file it came from."""
    key = f'workload.topology = "{spec}"'
    if _looks_like_path(spec):
        path = Path(spec) if base is None or Path(spec).is_absolute() else base / spec
        if not path.is_file():
            raise ConfigError(source, key, f"no such topology file: {path}")
    else:
        path = shipped_dir() / "topologies" / f"{spec}.toml"
        if not path.is_file():
            names = ", ".join(name for name, _, _ in shipped_topologies())
            problem = f"no shipped topology of that name (shipped: {names}; or give a path)"
            raise ConfigError(source, key, problem)
    topology_source = str(path)
    raw = _read_toml(path, topology_source)
    resolved = _resolve_table(TOPOLOGY_SCHEMA, raw, topology_source, "", TOPOLOGY_SCHEMA)
    if not resolved["topology"]["name"]:
        resolved["topology"]["name"] = path.stem
    return resolved, topology_source


def _description(path: Path, table: str) -> str:
    try:
        section = tomllib.loads(path.read_text(encoding="utf-8")).get(table, {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""
    description = section.get("description", "") if isinstance(section, dict) else ""
    return description if isinstance(description, str) else ""


# --- resolving values against the schema ----------------------------------------------


def _resolve_table(schema: dict, raw: Any, source: str, prefix: str, root: dict) -> dict:
    """``raw`` checked against ``schema`` with defaults filled; ``root`` is the schema
    of the whole file (or tree), searched for unknown-key suggestions."""
    if not isinstance(raw, dict):
        raise ConfigError(source, f"{prefix} = {_show(raw)}", f"must be a table, got {_type_name(raw)}")
    for name in raw:
        if name not in schema:
            _unknown_key(source, _join(prefix, name), schema, prefix, root)
    return {
        name: _resolve_entry(spec, raw.get(name, _MISSING), source, _join(prefix, name), root)
        for name, spec in schema.items()
    }


def _resolve_entry(spec: Any, value: Any, source: str, dotted: str, root: dict) -> Any:
    if isinstance(spec, dict):
        return _resolve_table(spec, {} if value is _MISSING else value, source, dotted, root)
    if isinstance(spec, ArrayOf):
        return _resolve_array(spec, value, source, dotted, root)
    if isinstance(spec, MapOf):
        return _resolve_map(spec, {} if value is _MISSING else value, source, dotted)
    if value is _MISSING:
        if spec.default is REQUIRED:
            raise ConfigError(source, dotted, f"missing: required, {spec.allowed()} ({spec.description})")
        return spec.default
    return _coerce(spec, value, source, dotted)


def _resolve_array(spec: ArrayOf, value: Any, source: str, dotted: str, root: dict) -> list:
    if value is _MISSING and spec.min_items == 0:
        return []
    if value is _MISSING:
        problem = f"missing: required, an array of at least {spec.min_items} table(s): {spec.description}"
        raise ConfigError(source, dotted, problem)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problem = f"must be an array of tables ([[{dotted.split('.')[-1]}]])"
        raise ConfigError(source, f"{dotted} = {_show(value)}", problem)
    if len(value) < spec.min_items:
        raise ConfigError(source, dotted, f"must hold at least {spec.min_items} table(s), got {len(value)}")
    return [_resolve_table(spec.table, item, source, f"{dotted}.{i}", root) for i, item in enumerate(value)]


def _resolve_map(spec: MapOf, value: Any, source: str, dotted: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(source, f"{dotted} = {_show(value)}", f"must be a table: {spec.description}")
    return {name: _coerce(spec.value, item, source, f"{dotted}.{name}") for name, item in value.items()}


def _coerce(field: Field, value: Any, source: str, dotted: str) -> Any:
    """``value`` checked against ``field`` (an int is accepted for a float key)."""
    if value is None and field.optional:
        return None
    value = _typed(field, value, source, dotted)
    if not _in_bounds(field, value):
        raise ConfigError(source, f"{dotted} = {_show(value)}", f"must be {field.allowed()}")
    return value


def _typed(field: Field, value: Any, source: str, dotted: str) -> Any:
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "str_list": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[field.type]
    if not ok:
        problem = f"must be {field.allowed()}, got {_type_name(value)}"
        raise ConfigError(source, f"{dotted} = {_show(value)}", problem)
    if field.type == "float":
        value = float(value)
        if not math.isfinite(value):
            problem = f"must be {field.allowed()}; nan and inf are not allowed"
            raise ConfigError(source, f"{dotted} = {_show(value)}", problem)
    return value


def _in_bounds(field: Field, value: Any) -> bool:
    if field.choices is not None:
        return value in field.choices
    if field.type not in ("int", "float"):
        return True
    return not (
        (field.ge is not None and value < field.ge)
        or (field.gt is not None and value <= field.gt)
        or (field.le is not None and value > field.le)
        or (field.lt is not None and value >= field.lt)
    )


# --- overrides ------------------------------------------------------------------------


def _parse_override(text: str) -> tuple[list[str], Any, str]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as TOML or a bare string, raw text)."""
    key, sep, raw = text.partition("=")
    parts = _split_key(key)
    if not sep or not all(parts):
        problem = "expected key=value with a dotted key, e.g. --set clients.count=8"
        raise ConfigError(f"--set {text}", None, problem)
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value, raw


def _split_key(key: str) -> list[str]:
    """A dotted key's parts; TOML quoting works (``a."b/c"``), else split on dots."""
    try:
        tree = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        return [part.strip() for part in key.split(".")]
    parts = []
    while isinstance(tree, dict) and len(tree) == 1:
        (name, tree), = tree.items()
        parts.append(name)
    return parts


def _apply(
    cfg: dict, parts: list[str], value: Any, source: str, origins: _Origins, raw: str | None = None
) -> None:
    _assign_path(cfg, parts, value, source, raw)
    origins.set(parts, source)


def _assign_path(tree: dict, parts: list[str], value: Any, source: str, raw: str | None = None) -> None:
    """Set ``tree[parts...] = value`` after checking the path and the value against
    ``SCHEMA``. ``raw`` is the override's text, used as is for string keys."""
    spec: Any = SCHEMA
    node: Any = tree
    for depth, part in enumerate(parts[:-1]):
        spec, node = _step(spec, node, parts, depth, source)
    _assign(node, spec, parts, value, source, raw)


def _step(spec: Any, node: Any, parts: list[str], depth: int, source: str) -> tuple[Any, Any]:
    """One level down a dotted path, in the schema and the tree together."""
    part = parts[depth]
    if isinstance(spec, dict) and part in spec:
        return spec[part], node[part]
    if isinstance(spec, ArrayOf):
        return spec.table, node[_array_index(parts[: depth + 1], node, source)]
    siblings = spec if isinstance(spec, dict) else {}
    _unknown_key(source, ".".join(parts), siblings, ".".join(parts[:depth]), SCHEMA)
    raise AssertionError("unreachable")


def _assign(node: Any, spec: Any, parts: list[str], value: Any, source: str, raw: str | None) -> None:
    dotted = ".".join(parts)
    if isinstance(spec, ArrayOf):
        node[_array_index(parts, node, source)] = _resolve_table(spec.table, value, source, dotted, SCHEMA)
        return
    if isinstance(spec, MapOf):
        node[parts[-1]] = _coerce(spec.value, value, source, dotted)
        return
    if not isinstance(spec, dict) or parts[-1] not in spec:
        _unknown_key(source, dotted, spec if isinstance(spec, dict) else {}, ".".join(parts[:-1]), SCHEMA)
    child = spec[parts[-1]]
    if isinstance(child, dict) and isinstance(value, dict):
        # An inline table merges key by key into the section.
        for name, item in value.items():
            _assign(node[parts[-1]], child, parts + [name], item, source, None)
        return
    if isinstance(child, Field) and child.type == "str" and not isinstance(value, str) and raw is not None:
        value = raw  # --set workload.name=2024 means the string "2024"
    node[parts[-1]] = _resolve_entry(child, value, source, dotted, SCHEMA)


def _array_index(parts: list[str], node: list, source: str) -> int:
    part = parts[-1]
    if not part.isdigit() or int(part) >= len(node):
        problem = (f"no such array element: the index must be in 0..{len(node) - 1}" if node
                   else "no such array element: the array is empty (set the whole array, "
                        "e.g. faults=[{...}])")
        raise ConfigError(source, ".".join(parts), problem)
    return int(part)


class _Origins:
    """Which source last set each dotted key, so that a cross-field error names the
    file or the override that caused it."""

    def __init__(self, workload: str, topology: str | None = None):
        self.workload = workload
        self.topology = workload if topology is None else topology
        # Keys of a topology file are shown relative to it ("crossbar.erasure_m").
        self.topology_file = topology
        self._set: dict[str, str] = {}  # dotted key -> source, in the order applied

    def set(self, parts: list[str], source: str) -> None:
        dotted = ".".join(parts)
        self._set.pop(dotted, None)
        self._set[dotted] = source

    def of(self, dotted: str) -> str:
        """The latest override of ``dotted``, of a table holding it or of a key inside
        it; else the file it came from."""
        for key in reversed(self._set):
            if key == dotted or dotted.startswith(key + ".") or key.startswith(dotted + "."):
                return self._set[key]
        return self.topology if dotted.split(".")[0] == "topology" else self.workload


# --- cross-field checks ---------------------------------------------------------------


# The loaded data lives in memory once per storage replica; refuse, before anything is
# allocated, a load that could not fit (this machine class has 24 GiB).
LOAD_MEMORY_BUDGET_BYTES = 12 * 1024**3
ROW_OVERHEAD_BYTES = 160  # a version's tuple, list and dict slot in a replica


def _check_cross_fields(cfg: dict, origin: _Origins) -> None:
    _check_sizes(cfg, origin)
    _check_run(cfg, origin)
    _check_clients(cfg, origin)
    _check_ycsb(cfg, origin)
    _check_retry(cfg, origin)
    _check_regions(cfg, origin)
    _check_crossbar(cfg, origin)
    _check_fault_targets(cfg, origin)
    _check_pgbench_scripts(cfg)


def _fail(origins: _Origins, dotted: str, value: Any, problem: str, blame: tuple[str, ...] = ()) -> None:
    """Raise for ``dotted``; the source is the latest override among ``blame`` keys,
    else the file ``dotted`` came from."""
    sources = [origins.of(key) for key in (dotted, *blame)]
    overridden = [s for s in sources if s.startswith("--")]
    source = overridden[-1] if overridden else sources[0]
    if source == origins.topology_file:
        dotted = dotted.removeprefix("topology.")
    shown = dotted if value is _MISSING else f"{dotted} = {_show(value)}"
    raise ConfigError(source, shown, problem)


def _check_sizes(cfg: dict, origin: _Origins) -> None:
    load = cfg["load"]
    replicas = sum(r["azs"] for r in cfg["topology"]["regions"] if r["role"] == "full")
    estimate = load["record_count"] * (load["value_bytes"] + ROW_OVERHEAD_BYTES) * replicas
    if estimate > LOAD_MEMORY_BUDGET_BYTES:
        problem = (f"record_count x (value_bytes + {ROW_OVERHEAD_BYTES}) x {replicas} storage "
                   f"replicas is about {estimate / 1024**3:,.1f} GiB; the lab keeps at most "
                   f"{LOAD_MEMORY_BUDGET_BYTES / 1024**3:.0f} GiB of loaded data in memory")
        _fail(origin, "load.record_count", load["record_count"], problem, ("load.value_bytes",))


def _check_run(cfg: dict, origin: _Origins) -> None:
    run = cfg["run"]
    if run["warmup_s"] >= run["duration_s"]:
        problem = f"must be < run.duration_s ({_num(run['duration_s'])})"
        _fail(origin, "run.warmup_s", run["warmup_s"], problem, ("run.duration_s",))


def _check_clients(cfg: dict, origin: _Origins) -> None:
    clients = cfg["clients"]
    rate, think_ms, mode = clients["rate_per_s"], clients["think_time_ms"], ("clients.mode",)
    if clients["mode"] == "open" and rate is None:
        problem = 'missing: required when clients.mode = "open", a finite number > 0'
        _fail(origin, "clients.rate_per_s", _MISSING, problem, mode)
    if clients["mode"] == "closed" and rate is not None:
        problem = 'allowed only when clients.mode = "open" (closed-loop clients have no rate)'
        _fail(origin, "clients.rate_per_s", rate, problem, mode)
    if clients["mode"] == "open" and think_ms > 0:
        problem = 'must be 0 when clients.mode = "open" (arrivals follow rate_per_s)'
        _fail(origin, "clients.think_time_ms", think_ms, problem, mode)


def _check_ycsb(cfg: dict, origin: _Origins) -> None:
    ycsb = cfg["ycsb"]
    total = math.fsum(ycsb[key] for key in PROPORTION_KEYS)
    if abs(total - 1.0) > PROPORTION_TOLERANCE:
        names = " + ".join(key.removesuffix("_proportion") for key in PROPORTION_KEYS)
        blame = tuple(f"ycsb.{key}" for key in PROPORTION_KEYS)
        problem = f"{names} = {total!r}; they must sum to 1 (within {PROPORTION_TOLERANCE})"
        _fail(origin, "ycsb.*_proportion", _MISSING, problem, blame)
    records = cfg["load"]["record_count"]
    if ycsb["hot_key_count"] > records:
        problem = f"must be <= load.record_count ({records})"
        _fail(origin, "ycsb.hot_key_count", ycsb["hot_key_count"], problem, ("load.record_count",))


def _check_retry(cfg: dict, origin: _Origins) -> None:
    retry = cfg["retry"]
    if retry["backoff_max_ms"] < retry["backoff_ms"]:
        problem = f"must be >= retry.backoff_ms ({_num(retry['backoff_ms'])})"
        _fail(origin, "retry.backoff_max_ms", retry["backoff_max_ms"], problem, ("retry.backoff_ms",))


def _check_regions(cfg: dict, origin: _Origins) -> None:
    regions = cfg["topology"]["regions"]
    seen: set[str] = set()
    for i, region in enumerate(regions):
        if not region["name"] or region["name"] in seen:
            problem = "must not be empty" if not region["name"] else "must be unique among regions"
            _fail(origin, f"topology.regions.{i}.name", region["name"], problem)
        seen.add(region["name"])
    if not any(region["role"] == "full" for region in regions):
        _fail(origin, "topology.regions", _MISSING, 'must hold at least one region with role = "full"')
    pairs: set[frozenset[str]] = set()
    for pair in cfg["topology"]["network"]["region_rtt_ms"]:
        a, sep, b = pair.partition("/")
        dotted = f'topology.network.region_rtt_ms."{pair}"'
        if not sep or a not in seen or b not in seen or a == b:
            problem = f'must name two different regions as "a/b" (regions: {", ".join(sorted(seen))})'
            _fail(origin, dotted, _MISSING, problem, ("topology.network.region_rtt_ms", "topology.regions"))
        if frozenset((a, b)) in pairs:
            problem = "this pair of regions is already given the other way round"
            _fail(origin, dotted, _MISSING, problem, ("topology.network.region_rtt_ms",))
        pairs.add(frozenset((a, b)))


def _check_crossbar(cfg: dict, origin: _Origins) -> None:
    crossbar = cfg["topology"]["crossbar"]
    k, m = crossbar["erasure_k"], crossbar["erasure_m"]
    if k + m > ERASURE_SYMBOLS_MAX:
        problem = f"erasure_k + erasure_m = {k + m}; must be <= {ERASURE_SYMBOLS_MAX} (GF(2^8))"
        _fail(origin, "topology.crossbar.erasure_m", m, problem, ("topology.crossbar.erasure_k",))


def _check_pgbench_scripts(cfg: dict) -> None:
    """Each pgbench script is found, parses, and uses only variables it or the run
    defines (``:scale``, and ``:records`` on YCSB's table), before the run starts; the
    error names the script file and line."""
    if cfg["workload"]["kind"] != "pgbench":
        return
    from dsqlbench.workload import pgbench
    from dsqlbench.workload.sql import _locate_script  # where the run will look

    spec = cfg["pgbench"]
    predefined = ["scale"] + (["records"] if spec["schema"] == "ycsb" else [])
    for entry in spec["scripts"]:
        located = _locate_script(entry, Path.cwd())
        path = located.rpartition("@")[0] if "@" in Path(located).name else located
        pgbench.check_script(pgbench.load_script(located), predefined, source=path)


def _check_fault_targets(cfg: dict, origin: _Origins) -> None:
    from dsqlbench.fault_targets import check_fault_targets

    def fail(dotted: str, value: Any, problem: str, blame: tuple[str, ...]) -> None:
        _fail(origin, dotted, value, problem, blame)

    check_fault_targets(cfg, fail, origin.of)


# --- errors and display helpers -------------------------------------------------------


def _unknown_key(source: str, dotted: str, siblings: dict, prefix: str, root: dict) -> None:
    """Raise "unknown key", suggesting the nearest valid key by its whole path (among
    the siblings and every key of ``root``), else the key with the nearest last part."""
    local = [_join(prefix, name) for name in siblings]
    everything = list(_walk_paths(root, ""))
    suggestion = _nearest(dotted, local + everything) or _nearest_leaf(dotted, everything)
    hint = f"; did you mean '{suggestion}'?" if suggestion else ""
    error = ConfigError(source, None, f"unknown key '{dotted}'{hint}")
    error.key = dotted
    raise error


def _nearest(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _nearest_leaf(dotted: str, candidates: list[str]) -> str | None:
    leaves = {}
    for candidate in candidates:
        leaves.setdefault(candidate.rpartition(".")[2], candidate)
    leaf = _nearest(dotted.rpartition(".")[2], list(leaves))
    return leaves[leaf] if leaf else None


def _walk_paths(schema: dict, prefix: str) -> Iterator[str]:
    for name, spec in schema.items():
        dotted = _join(prefix, name)
        yield dotted
        if isinstance(spec, dict):
            yield from _walk_paths(spec, dotted)


def _walk_docs(schema: dict, prefix: str) -> Iterator[KeyDoc]:
    for name, spec in schema.items():
        dotted = _join(prefix, name)
        if isinstance(spec, dict):
            yield from _walk_docs(spec, dotted)
        elif isinstance(spec, ArrayOf):
            yield from _walk_docs(spec.table, f"{dotted}[]")
        elif isinstance(spec, MapOf):
            yield KeyDoc(f"{dotted}.<key>", spec.value.type, None, spec.value.allowed(), spec.description)
        else:
            default = None if spec.default is REQUIRED else spec.default
            description = spec.description + (" (required)" if spec.default is REQUIRED else "")
            yield KeyDoc(dotted, spec.type, default, spec.allowed(), description)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _num(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = ((int, "an integer"), (float, "a float"), (str, "a string"), (list, "an array"),
             (dict, "a table"))
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return "a date/time"


def _show(value: Any) -> str:
    """``value`` as it would be written in TOML (shortened)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else str(value)  # nan, inf, -inf as in TOML
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
