"""What the SQL layer asks of the cluster: the QP's storage and commit vocabulary.

The SQL engine (parser, catalog, planner, executor) is sans-I/O: executing a statement
is a generator that *yields* requests from this module and is *sent* their replies.
The runtime decides how long each takes (network, waits, batching) and carries it out
against the simulated cluster; a test harness can carry it out against plain storage
with no time at all. The same engine runs in both.

    def execute(...) -> Generator[Request, Reply, Result]

Keys are non-negative Python ints (the SQL layer encodes ``(table, primary key)``
order-preservingly; they may exceed 64 bits). Values are ``bytes`` (an encoded row) or
``None`` (a deleted row).

Helpers for whoever serves requests (added with the SQL engine): ``evaluate_scan``
applies a Scan to the live rows of its range. Keys wider than 63 bits are folded for
the conflict check by the adjudicator itself (``components.adjudicator.conflict_key``).

Invariants the runtime guarantees:
- every read of one transaction attempt is "as of" the same ``t_start``;
- a ``Scan`` evaluates ``row_filter`` and ``projection`` at storage, so rows that do
  not match never cross the simulated network; the reply counts what moved;
- ``Commit`` is atomic: all of ``writes`` become visible at one ``t_commit`` or none do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True, slots=True)
class Begin:
    """Start a transaction attempt: the QP takes ``t_start`` from its clock.

    Reply: ``BeginReply``. Sent at BEGIN, or before the first statement of an
    autocommit transaction. Must precede every other request of the attempt.
    """


@dataclass(frozen=True, slots=True)
class Rollback:
    """Discard the attempt's spooled state. Reply: None."""


@dataclass(frozen=True, slots=True)
class PointRead:
    """Read one key as of the transaction's ``t_start``. Reply: ``ReadReply``."""

    key: int


@dataclass(frozen=True, slots=True)
class Scan:
    """Rows with ``low_key <= key < high_key`` in key order, as of ``t_start``.

    Evaluated at storage (pushdown): ``row_filter(key, value) -> bool`` drops rows;
    ``projection(key, value) -> Any`` shapes what is returned (None: the raw value);
    ``limit`` counts rows *after* the filter (None: no limit); ``aggregate`` (optional)
    folds the projected rows at storage: ``aggregate(list_of_projected) -> Any`` and the
    reply carries its single result instead of the rows. Reply: ``ScanReply``.

    The SQL engine's projections and aggregates return ``bytes`` (what would cross the
    network), so their sizes are what ``bytes_returned`` counts; ``evaluate_scan`` below
    is the reference for serving a Scan, shared by the harness and the runtime.
    """

    low_key: int
    high_key: int
    limit: int | None = None
    row_filter: Callable[[int, bytes], bool] | None = None
    projection: Callable[[int, bytes], Any] | None = None
    aggregate: Callable[[list], Any] | None = None
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Commit:
    """Commit the attempt. Reply: ``CommitReply``.

    ``writes``: post-images (``None`` deletes). ``lock_keys``: keys read ``FOR UPDATE``;
    they join the write-write conflict check without a post-image. ``schema_change``:
    the transaction is DDL (its writes are catalog rows); a transaction that started
    before a schema change and commits after it fails with OC001.
    """

    writes: dict[int, bytes | None] = field(default_factory=dict)
    lock_keys: tuple[int, ...] = ()
    schema_change: bool = False


@dataclass(frozen=True, slots=True)
class BeginReply:
    t_start_ns: int
    wall_time_us: int  # what CURRENT_TIMESTAMP shows: the QP clock, microseconds since epoch


@dataclass(frozen=True, slots=True)
class ReadReply:
    version_ts_ns: int  # 0 when the key has no version at t_start
    value: bytes | None  # None: absent or deleted


@dataclass(frozen=True, slots=True)
class ScanReply:
    rows: list  # [(key, projected value)], or [] when aggregated
    aggregate: Any = None
    rows_examined: int = 0  # rows storage looked at
    rows_returned: int = 0  # rows that crossed the network to the QP
    bytes_returned: int = 0


@dataclass(frozen=True, slots=True)
class CommitReply:
    committed: bool
    t_commit_ns: int = -1
    reason: str = ""  # an AbortReason code when not committed


Request = Begin | Rollback | PointRead | Scan | Commit
Reply = BeginReply | ReadReply | ScanReply | CommitReply | None


# --- helpers for whoever serves these requests (the runtime's storage, the harness) ----

def _payload_bytes(value) -> int:
    """Bytes a returned value occupies on the wire (projections and aggregates are bytes)."""
    if value is None:
        return 0
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return 8


def evaluate_scan(scan: Scan, rows) -> ScanReply:
    """The storage side of a ``Scan``: apply filter, projection, limit and aggregate to
    ``rows``, the live ``(key, value)`` pairs of ``[low_key, high_key)`` as of
    ``t_start`` in scan order (descending when ``scan.descending``), consumed lazily so
    ``rows_examined`` stops at the limit. ``bytes_returned`` counts each returned key
    and value (or the one aggregate result)."""
    examined = 0
    out: list = []
    row_filter, projection, limit = scan.row_filter, scan.projection, scan.limit
    if limit is None or limit > 0:
        for key, value in rows:
            examined += 1
            if row_filter is not None and not row_filter(key, value):
                continue
            out.append((key, projection(key, value) if projection is not None else value))
            if limit is not None and len(out) >= limit:
                break
    if scan.aggregate is not None:
        result = scan.aggregate([value for _, value in out])
        return ScanReply([], result, examined, 1, _payload_bytes(result))
    size = sum((key.bit_length() + 7) // 8 + _payload_bytes(value) for key, value in out)
    return ScanReply(out, None, examined, len(out), size)
