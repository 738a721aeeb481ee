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
