"""Columnar aggregate folds: a pushed-down aggregate over a bulk-loaded image, in numpy.

Role: storage folds a pushed-down aggregate (``executor._storage_aggregate``) row by
row over the rows it holds. A replica's bulk-loaded image (``components.storage.
BaseImage``) can also carry its rows' decoded columns; an aggregate with no GROUP BY
whose every term is ``count(*)`` or ``count | sum | min | max | avg`` of a bare column
the image has decoded is then folded over the image's live rows with numpy, and merged
into the partial states of the other rows with the engine's own rules (``_merge``).
The result is the same bytes the row-by-row fold gives: the tests hold the two to
each other. End-of-run audits over millions of loaded rows (pgbench's balance sums at
scale 100 are over 10 M accounts) take milliseconds instead of minutes.

Invariants: only integer columns are folded (exact sums: int64 accumulators over fewer
than 2**32 rows of 32-bit values cannot overflow); anything else falls back to rows.
"""

from __future__ import annotations

import numpy as np

from dsqlbench.sql import ir
from dsqlbench.sql.codec import wire_dumps, wire_loads
from dsqlbench.sql.executor import _initial, _merge  # the engine's own state rules

FOLDABLE = ("count", "sum", "min", "max", "avg")
MAX_ROWS = 1 << 32  # int64 sums of 32-bit values stay exact below this many rows


def foldable_columns(aggregate) -> tuple[int | None, ...] | None:
    """The table column each term of ``aggregate`` folds (None: ``count(*)``), or None
    when it cannot be folded by columns (GROUP BY, DISTINCT, an expression)."""
    pushdown = getattr(aggregate, "pushdown", None)
    if pushdown is None or pushdown.group_fns:
        return None
    columns: list[int | None] = []
    for spec in pushdown.aggs:
        if spec.name not in FOLDABLE or spec.distinct:
            return None
        if spec.arg is None:
            columns.append(None)
            continue
        arg = spec.expr.args[0] if spec.expr is not None and spec.expr.args else None
        if not isinstance(arg, ir.Col):
            return None
        columns.append(arg.column)
    return tuple(columns)


def image_states(aggs, columns: list[np.ndarray | None], rows: int) -> list:
    """The partial state of each term over ``rows`` live image rows (``columns[i]``
    holds term i's column values of those rows; None for ``count(*)``)."""
    assert rows < MAX_ROWS
    states = []
    for spec, values in zip(aggs, columns):
        if spec.name == "count":
            states.append(rows)
        elif rows == 0:
            states.append(_initial(spec))
        elif spec.name == "sum":
            states.append(int(values.sum(dtype=np.int64)))
        elif spec.name == "min":
            states.append(int(values.min()))
        elif spec.name == "max":
            states.append(int(values.max()))
        else:  # avg: (total, n)
            states.append((int(values.sum(dtype=np.int64)), rows))
    return states


def fold_image(aggregate, partial: bytes, columns: list[np.ndarray | None], rows: int) -> bytes:
    """``partial`` (the row-by-row fold's bytes) with ``rows`` image rows folded in."""
    aggs = aggregate.pushdown.aggs
    groups = dict(wire_loads(partial))
    assert set(groups) <= {()}, "no GROUP BY here"
    if rows == 0:
        return partial
    folded = image_states(aggs, columns, rows)
    current = groups.get(())
    if current is not None:
        folded = [_merge(spec, a, b) for spec, a, b in zip(aggs, current, folded)]
    return wire_dumps((((), tuple(folded)),))


def integer_columns(image_values: np.ndarray, offsets: dict[int, int]) -> dict[int, np.ndarray]:
    """Views of 32-bit little-endian integer fields of fixed-width rows: ``{column:
    the field at byte offset offsets[column] of every row}`` (no copy)."""
    n = len(image_values)
    return {column: image_values[:, at:at + 4].view("<i4").reshape(n)
            for column, at in offsets.items()}
