"""Result folders: writing a run atomically, and reading one back with checks.

Place in the pipeline: after a run, the CLI builds the summary (``build_summary``) from
the resolved config, the kernels picked, the recorder's deterministic ``simulated``
section and the noisy ``host`` wall-clock figures, then ``write_run`` stores it with the
recorder's tables. ``compare`` and ``report`` read folders back with ``load_run``.

A run folder (DESIGN.md section 4)::

    <run>/summary.json           schema_version, versions, seed, config (+ sha256),
                                 kernels, simulated (deterministic), host (noisy)
    <run>/transactions.parquet   one row per transaction attempt
    <run>/timeseries.parquet     one row per time interval

Invariants:

- A folder appears whole or not at all: everything is written into a hidden sibling
  (``.tmp-<name>-<pid>``, same parent, so same file system) and renamed into place.
  On any failure the temporary folder is removed. An existing non-empty folder is never
  overwritten unless asked; then the old one is renamed aside, the new one renamed in,
  and the old one deleted.
- ``summary.json`` is ``json.dumps(indent=2, sort_keys=True, allow_nan=False)`` plus a
  newline: the same summary always gives the same bytes, and NaN or inf can never be
  written (they are not JSON, and would hide a bug as a number).
- Every Parquet file carries ``schema_version`` and ``dsqlbench_version`` in its
  key-value metadata. Readers refuse a schema version they do not know, never misread.
- ``summary.json`` lists every other file of the folder under ``files``: its size and
  SHA-256, taken when it was written (``{"transactions.parquet": {"bytes": 123,
  "sha256": "..."}}``). Every reader of a run folder (``load_run``, ``read_run_table``)
  checks them, so a truncated, corrupt or swapped table is a ``ResultError`` (exit 3)
  and never read as data. ``files`` is a key added to schema version 1 ("names may
  grow"): a folder written before it has no ``files`` and is still read, unverified.
- ``config_sha256`` is ``config_sha256(config)``: SHA-256 of the canonical JSON of the
  config exactly as stored, so a reader can tell whether the config it holds is the one
  the run used.
- Single files written by the lab (baselines, dashboards, exports) go through
  ``atomic_output``: a hidden sibling, synced, renamed over the target.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from dsqlbench.errors import ResultError, UserError

SCHEMA_VERSION = 1
SUMMARY_FILE = "summary.json"
FILES_KEY = "files"  # the manifest in summary.json: file name -> {"bytes", "sha256"}
TABLE_NAMES = ("transactions", "timeseries")
SUMMARY_KEYS = (
    "schema_version", "dsqlbench_version", "git_revision", "seed", "config",
    "config_sha256", "kernels", "simulated", "host",
)
_RUN_DIR_PATTERN = r"{prefix}-(\d+)"


# ---------------------------------------------------------------------- summary


def build_summary(
    cfg: Any, cfg_sha256: str | None, seed: int, kernels: dict, simulated: dict,
    host: dict, version: str, git_revision: str | None,
) -> dict:
    """The whole ``summary.json`` document, with exactly ``SUMMARY_KEYS`` at the top.

    ``cfg`` is the resolved config: a mapping, a dataclass or an object with
    ``to_dict()``; it is stored as plain JSON (paths as strings, tuples as lists).
    ``cfg_sha256`` must equal ``config_sha256`` of that stored form (pass ``None`` to
    have it computed); a mismatch is a bug in the caller, so it raises ``ValueError``.
    """
    config = to_json_value(cfg)
    digest = config_sha256(config)
    if cfg_sha256 is not None and cfg_sha256 != digest:
        raise ValueError(
            f"config_sha256 {cfg_sha256} is not the hash of the config as stored "
            f"({digest}); compute it with dsqlbench.results.folder.config_sha256")
    return {
        "schema_version": SCHEMA_VERSION,
        "dsqlbench_version": version,
        "git_revision": git_revision,
        "seed": int(seed),
        "config": config,
        "config_sha256": digest,
        "kernels": to_json_value(kernels),
        "simulated": to_json_value(simulated),
        "host": to_json_value(host),
    }


def config_sha256(config: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config``: sorted keys, no spaces."""
    # ensure_ascii=True as in dsqlbench.config.config_sha256, so the two agree on a
    # config holding non-ASCII text (a workload description, say).
    canonical = json.dumps(to_json_value(config), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_json_value(value: Any) -> Any:
    """``value`` as plain JSON data (dicts with str keys, lists, str, int, float, bool,
    None). Dataclasses, ``to_dict()`` objects, paths, tuples and numpy scalars convert;
    anything else is a bug and raises ``TypeError``."""
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json_value(dataclasses.asdict(value))
    if hasattr(value, "to_dict"):
        return to_json_value(value.to_dict())
    if hasattr(value, "item"):  # numpy scalar
        return to_json_value(value.item())
    raise TypeError(f"cannot store {type(value).__name__} in summary.json: {value!r}")


def summary_bytes(summary: dict) -> bytes:
    """The exact bytes of ``summary.json`` (raises ``ValueError`` on NaN or inf)."""
    text = json.dumps(summary, indent=2, sort_keys=True, allow_nan=False,
                      ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def git_revision(path: Path) -> str | None:
    """``git rev-parse HEAD`` in ``path``, or ``None`` (not a repository, no commit
    yet, or no git at all). Never raises and never prints."""
    try:
        done = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    revision = done.stdout.strip()
    if done.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40,64}", revision):
        return None
    return revision


# ---------------------------------------------------------------------- writing


def write_run(out_dir: Path, summary: dict, tables: dict[str, pa.Table],
              overwrite: bool = False) -> Path:
    """Write ``summary.json`` and ``<name>.parquet`` per table into ``out_dir``,
    atomically; returns ``out_dir``.

    ``out_dir`` must not exist, or be an empty folder, unless ``overwrite`` is true
    (then an existing run folder is replaced). Raises ``ResultError`` when it refuses,
    ``UserError`` when the folder cannot be created there.
    """
    with reserve_run_dir(out_dir, overwrite) as reservation:
        return reservation.write(summary, tables)


class RunReservation:
    """A run folder claimed before the work that fills it: the target was checked and
    its hidden temporary sibling created (so an unwritable ``--out`` fails at once, not
    after the simulation). ``write`` fills the sibling and renames it into place."""

    def __init__(self, out_dir: Path, overwrite: bool, tmp_dir: Path):
        self.out_dir = out_dir
        self.overwrite = overwrite
        self.tmp_dir = tmp_dir
        self.written = False

    def write(self, summary: dict, tables: dict[str, pa.Table]) -> Path:
        assert not self.written, "a reservation is written once"
        summary_bytes(summary)  # fails on NaN before anything touches the disk
        metadata = _parquet_metadata(summary)
        _check_target(self.out_dir, self.overwrite)  # may have appeared meanwhile
        manifest = {}
        for name, table in sorted(tables.items()):
            path = self.tmp_dir / f"{_table_file_stem(name)}.parquet"
            _write_table(path, table, metadata)
            manifest[path.name] = file_entry(path)
        # The summary last, with the manifest of what is already on disk.
        _write_file(self.tmp_dir / SUMMARY_FILE, summary_bytes(dict(summary, files=manifest)))
        _fsync_dir(self.tmp_dir)
        _move_into_place(self.tmp_dir, self.out_dir, self.overwrite)
        self.written = True
        _fsync_dir(self.out_dir.parent)
        return self.out_dir


@contextlib.contextmanager
def reserve_run_dir(out_dir: Path, overwrite: bool = False) -> Iterator[RunReservation]:
    """Claim ``out_dir`` for a run before doing the run's work.

    Checks the target (``ResultError`` when occupied), creates missing parent folders
    and the temporary sibling, and proves a file can be written there; a read-only file
    system, a parent that is a file or a place like ``/proc`` is a ``UserError`` (one
    line, exit 2) before anything else happens. When the block ends without
    ``write`` having been called (an error, an interrupt), the sibling and any parent
    folders created for it are removed: nothing is left behind.
    """
    out_dir = Path(out_dir)
    _check_target(out_dir, overwrite)
    created = _make_parents(out_dir.parent, out_dir)
    tmp_dir = out_dir.parent / f".tmp-{out_dir.name}-{os.getpid()}"
    try:
        shutil.rmtree(tmp_dir, ignore_errors=True)  # a leftover of a crashed run of our pid
        _make_writable_dir(tmp_dir, out_dir)
        yield RunReservation(out_dir, overwrite, tmp_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        _remove_empty(created)


def check_writable_dir(folder: Path) -> None:
    """Prove that ``folder`` can be created (or, when it exists, written into) without
    leaving anything behind; else one-line ``UserError`` (exit 2). For commands that
    write a folder only after long work (a sweep, the smoke suite's ``--runs-dir``)."""
    folder = Path(folder)
    if folder.is_dir():
        probe = folder / f".tmp-probe-{os.getpid()}"
        _make_writable_dir(probe, folder)
        shutil.rmtree(probe, ignore_errors=True)
        return
    if folder.exists() or folder.is_symlink():
        raise UserError(f"{folder}: exists and is not a folder; choose another one")
    created = _make_parents(folder.parent, folder)
    probe = folder.parent / f".tmp-probe-{folder.name}-{os.getpid()}"
    try:
        _make_writable_dir(probe, folder)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
        _remove_empty(created)


def _make_parents(parent: Path, target: Path) -> list[Path]:
    """Create the missing folders down to ``parent``; returns those created (outermost
    first). A file in the way, or a folder that refuses, is a ``UserError``."""
    missing = []
    node = parent
    while not node.is_dir():
        if node.exists() or node.is_symlink():
            raise UserError(f"{target}: cannot write there: {node} is a file, not a folder")
        if node == node.parent:
            break
        missing.append(node)
        node = node.parent
    created: list[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                _remove_empty(created)
                raise UserError(f"{target}: cannot write there: {folder} is a file, "
                                "not a folder") from None
            continue  # made meanwhile by someone else: not ours to remove
        except OSError as error:
            _remove_empty(created)
            raise UserError(f"{target}: cannot write there: cannot create {folder}: "
                            f"{error.strerror or error}") from None
        created.append(folder)
    return created


def _make_writable_dir(folder: Path, target: Path) -> None:
    """``mkdir folder`` and write (then remove) one small file in it, or ``UserError``."""
    try:
        folder.mkdir()
        probe = folder / ".probe"
        with open(probe, "wb") as handle:
            handle.write(b"dsqlbench")
        probe.unlink()
    except OSError as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"{target}: cannot write there: cannot create a folder in "
                        f"{folder.parent}: {error.strerror or error}") from None


def _remove_empty(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (the run landed there, or someone else uses it)


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ResultError(f"{out_dir}: exists and is not a folder; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ResultError(
            f"{out_dir}: already exists and is not empty; choose another --out "
            "or allow overwriting")


def _move_into_place(tmp_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename ``tmp_dir`` to ``out_dir``; with ``overwrite``, swap out the old one."""
    try:
        os.rename(tmp_dir, out_dir)  # atomic; also replaces an empty folder
        return
    except OSError:
        if not (overwrite and out_dir.is_dir()):
            _check_target(out_dir, overwrite)  # appeared meanwhile: say so clearly
            raise
    old_dir = out_dir.parent / f".old-{out_dir.name}-{os.getpid()}"
    shutil.rmtree(old_dir, ignore_errors=True)
    os.rename(out_dir, old_dir)
    try:
        os.rename(tmp_dir, out_dir)
    except BaseException:
        os.rename(old_dir, out_dir)  # put the previous run back as it was
        raise
    shutil.rmtree(old_dir, ignore_errors=True)


def _parquet_metadata(summary: dict) -> dict[bytes, bytes]:
    version = summary.get("dsqlbench_version")
    if version is None:
        from dsqlbench import __version__ as version
    return {
        b"schema_version": str(summary.get("schema_version", SCHEMA_VERSION)).encode(),
        b"dsqlbench_version": str(version).encode(),
    }


def _table_file_stem(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"table name {name!r}: use lowercase letters, digits and _")
    return name


def _write_table(path: Path, table: pa.Table, metadata: dict[bytes, bytes]) -> None:
    merged = dict(table.schema.metadata or {})
    merged.update(metadata)
    pq.write_table(table.replace_schema_metadata(merged), path)
    _fsync_file(path)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file handle whose content appears at ``path`` whole or not at all:
    written to a hidden sibling, synced, then renamed over ``path`` when the block
    ends without an exception (on one, the sibling is removed and ``path`` is left
    as it was)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name to write")
    try:
        handle = open(tmp, "wb")
    except OSError as error:
        raise UserError(f"{path}: cannot write: {error.strerror or error}") from None
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """``payload`` as the whole content of ``path``, replacing it atomically."""
    with atomic_output(path) as handle:
        handle.write(payload)


def _write_file(path: Path, payload: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # So the renames survive a power cut, not only a crash of this process.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the data files are synced
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- reading


def load_run(path: Path) -> dict:
    """Read and check a run's ``summary.json``; ``path`` is the folder or the file.

    Each problem is a ``ResultError`` whose message is one line naming the file: a
    missing folder or file, invalid JSON (e.g. truncated), a missing key, a schema
    version that is unknown or newer than this dsqlbench, a section of the wrong type,
    or a ``config_sha256`` that does not match the config the file holds.
    """
    path = Path(path)
    file = path if path.suffix == ".json" else path / SUMMARY_FILE
    if not file.parent.is_dir():
        raise ResultError(f"{file.parent}: no such result folder")
    if not file.is_file():
        if (file.parent / "sweep.json").is_file():  # dsqlbench.sweep.SWEEP_FILE
            runs = sorted(p.name for p in file.parent.iterdir() if (p / SUMMARY_FILE).is_file())
            example = f", e.g. {file.parent / runs[0]}" if runs else ""
            raise ResultError(f"{file.parent}: a sweep folder, not a run; give one of its "
                              f"run folders{example}")
        raise ResultError(f"{file}: missing; not a dsqlbench result folder")
    summary = _parse_summary(file)
    _check_schema_version(file, summary.get("schema_version"))
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise ResultError(f"{file}: missing key(s) {', '.join(missing)}")
    _check_section_types(file, summary)
    _check_config_hash(file, summary)
    manifest = _manifest(file, summary)
    if path.suffix != ".json":  # a folder: its tables must be the ones written with it
        for name in sorted(manifest):
            _verify_file(file.parent / name, manifest[name])
    return summary  # a summary file given alone stands alone: its tables are not read


def file_entry(path: Path) -> dict:
    """``{"bytes": size, "sha256": hex}`` of a file, as ``summary.json`` lists it."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _manifest(file: Path, summary: dict) -> dict[str, dict]:
    """The ``files`` section checked for shape (absent in folders written before it)."""
    manifest = summary.get(FILES_KEY, {})
    if not isinstance(manifest, dict):
        raise ResultError(f"{file}: {FILES_KEY} must be a JSON object, "
                          f"got {type(manifest).__name__}")
    for name, entry in manifest.items():
        plain = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) and name != SUMMARY_FILE
        good = (isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
                and not isinstance(entry.get("bytes"), bool)
                and isinstance(entry.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]))
        if not plain or not good:
            raise ResultError(f"{file}: {FILES_KEY}.{name}: must name a file of the folder "
                              'and hold {"bytes": integer, "sha256": 64 hex digits}')
    return manifest


# (path, size, mtime) of files whose hash was checked in this process: a command that
# loads a folder and then reads its tables hashes each file once.
_VERIFIED: set[tuple[str, int, int]] = set()


def _verify_file(path: Path, entry: dict) -> None:
    """``path`` has the size and SHA-256 ``summary.json`` recorded, or ``ResultError``."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ResultError(f"{path}: missing, though {SUMMARY_FILE} lists it; the run "
                          "folder is incomplete") from None
    except OSError as error:
        raise ResultError(f"{path}: cannot read: {error.strerror}") from None
    if stat.st_size != entry["bytes"]:
        raise ResultError(f"{path}: {stat.st_size} bytes, but {SUMMARY_FILE} records "
                          f"{entry['bytes']}; the file is truncated or was replaced")
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    try:
        actual = file_entry(path)["sha256"]
    except OSError as error:
        raise ResultError(f"{path}: cannot read: {error.strerror}") from None
    if actual != entry["sha256"]:
        raise ResultError(f"{path}: SHA-256 {actual[:12]}... differs from the "
                          f"{entry['sha256'][:12]}... {SUMMARY_FILE} records; the file is "
                          "corrupt or was replaced")
    _VERIFIED.add(key)


# What each top-level section must be, so a reader never indexes into the wrong type.
_SECTION_TYPES = {"config": dict, "simulated": dict, "host": dict, "kernels": dict,
                  "seed": int, "config_sha256": str}
_JSON_NAMES = {dict: "object", int: "integer", str: "string"}


def _check_section_types(file: Path, summary: dict) -> None:
    for key, kind in _SECTION_TYPES.items():
        value = summary[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ResultError(f"{file}: {key} must be a JSON {_JSON_NAMES[kind]}, "
                              f"got {type(value).__name__}")


def _parse_summary(file: Path) -> dict:
    try:
        text = file.read_text(encoding="utf-8")
        summary = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        raise ResultError(f"{file}: not UTF-8 text ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise ResultError(
            f"{file}: invalid JSON (truncated or corrupt?): {error.msg} at line "
            f"{error.lineno} column {error.colno}") from None
    except ValueError as error:
        raise ResultError(f"{file}: invalid JSON: {error}") from None
    except OSError as error:
        raise ResultError(f"{file}: cannot read: {error.strerror}") from None
    if not isinstance(summary, dict):
        raise ResultError(f"{file}: expected a JSON object, got {type(summary).__name__}")
    return summary


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a result")


def _check_schema_version(file: Path, version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultError(f"{file}: unknown schema_version {version!r}; expected "
                          f"an integer <= {SCHEMA_VERSION}")
    if version > SCHEMA_VERSION:
        raise ResultError(
            f"{file}: schema_version {version} is newer than this dsqlbench reads "
            f"({SCHEMA_VERSION}); upgrade dsqlbench")
    if version < 1:
        raise ResultError(f"{file}: unknown schema_version {version}")


def _check_config_hash(file: Path, summary: dict) -> None:
    stored = summary["config_sha256"]
    try:
        actual = config_sha256(summary["config"])
    except (TypeError, ValueError) as error:
        raise ResultError(f"{file}: config cannot be hashed: {error}") from None
    if stored != actual:
        raise ResultError(
            f"{file}: config_sha256 {str(stored)[:12]}... does not match the config "
            f"it holds ({actual[:12]}...); the file was edited or is corrupt")


def read_table(path: Path) -> tuple[pa.Table, dict[str, str]]:
    """A Parquet table of a run and its key-value metadata (as text), checked for a
    schema version this dsqlbench reads."""
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"{path}: missing; the run folder is incomplete")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        # Arrow messages can span lines; the user gets one.
        reason = " ".join(str(error).split())
        raise ResultError(f"{path}: cannot read as Parquet (truncated or corrupt?): "
                          f"{reason}") from None
    metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    raw = metadata.get("schema_version")
    try:
        version = int(raw) if raw is not None else None
    except ValueError:
        version = raw
    _check_schema_version(path, version)
    return table, metadata


def read_run_table(run_dir: Path, name: str) -> pa.Table:
    """Table ``name`` (``transactions`` or ``timeseries``) of the run folder ``run_dir``,
    checked like ``read_table``; a summary file or a baseline has no tables, which is a
    ``ResultError`` naming what is missing."""
    run_dir = Path(run_dir)
    if run_dir.suffix == ".json":
        raise ResultError(f"{run_dir}: a summary file has no {name} table; "
                          "give the run folder")
    path = run_dir / f"{_table_file_stem(name)}.parquet"
    verify_folder(run_dir)
    return read_table(path)[0]


def verify_folder(run_dir: Path) -> None:
    """Check every file a run folder's ``summary.json`` lists (size and SHA-256), so a
    damaged folder is refused whole, whichever of its tables a command reads; nothing
    to check when the summary is absent or predates the manifest."""
    file = Path(run_dir) / SUMMARY_FILE
    if not file.is_file():
        return
    manifest = _manifest(file, _parse_summary(file))
    for name in sorted(manifest):
        _verify_file(file.parent / name, manifest[name])


# ---------------------------------------------------------------------- naming


def default_run_dir(results_root: Path, workload_name: str, seed: int) -> Path:
    """A new folder ``<results_root>/<workload>-s<seed>-<NNN>``: the counter is one
    more than the highest already there for this workload and seed (001 when none).
    Deterministic: no wall clock in the name."""
    results_root = Path(results_root)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", workload_name).strip("-.") or "run"
    prefix = f"{slug}-s{int(seed)}"
    pattern = re.compile(_RUN_DIR_PATTERN.format(prefix=re.escape(prefix)))
    highest = 0
    if results_root.is_dir():
        for entry in results_root.iterdir():
            match = pattern.fullmatch(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
    return results_root / f"{prefix}-{highest + 1:03d}"
