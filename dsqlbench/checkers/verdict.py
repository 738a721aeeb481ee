"""One verdict from the two checkers, and the history table a run folder keeps.

The white-box oracle (``oracle.py``) judges with the lab's own timestamps and true
time; the black-box Elle-style checker (``elle.py``) judges a list-append history from
what clients saw alone. They must agree: when the oracle finds the run clean under
strong snapshot isolation, Elle must find no forbidden anomaly, and when Elle finds
one, the oracle must have found a violation too. A disagreement is a checker fault,
reported as such (it means one of the two checkers is wrong).

Anomalies the model allows (write skew, G2-item, under snapshot isolation) are counted,
never failed. Stale reads are forbidden only under strong snapshot isolation, which is
what DSQL claims and what ``--check`` holds a run to.
"""

from __future__ import annotations

import json

import pyarrow as pa

HISTORY_SCHEMA = pa.schema([
    ("id", pa.int64()), ("process", pa.int64()), ("type", pa.string()),
    ("invoke_ns", pa.int64()), ("complete_ns", pa.int64()), ("ops_json", pa.string()),
])


def history_table(history: list[dict]) -> pa.Table:
    """The list-append history as a table (micro-ops as compact JSON per row)."""
    columns = {name: [h[name] for h in history] for name in ("id", "process", "type",
                                                             "invoke_ns", "complete_ns")}
    columns["ops_json"] = [json.dumps(h["ops"], separators=(",", ":")) for h in history]
    return pa.table(columns, schema=HISTORY_SCHEMA)


def history_from_table(table: pa.Table) -> list[dict]:
    rows = table.to_pylist()
    for row in rows:
        row["ops"] = json.loads(row.pop("ops_json"))
    return rows


def judge(oracle: dict, elle: dict | None, strict: bool) -> dict:
    """Combine the verdicts: ``ok`` is what the run is held to (``strict``: realtime too)."""
    oracle_clean = oracle["ok"] and (oracle["ok_realtime"] or not strict)
    verdict = {"model": "strong-snapshot-isolation" if strict else "snapshot-isolation",
               "oracle_ok": oracle_clean}
    if elle is None:
        verdict.update(ok=oracle_clean, agree=True, elle="not applicable (no list-append history)")
        return verdict
    elle_clean = bool(elle["valid"])
    agree = elle_clean == oracle_clean
    verdict.update(ok=oracle_clean and elle_clean, agree=agree, elle_ok=elle_clean,
                   elle_forbidden=sorted(elle.get("forbidden", [])),
                   elle_allowed=sorted(elle.get("allowed", [])))
    if not agree:
        verdict["checker_fault"] = (
            "oracle found violations Elle did not see" if elle_clean
            else "Elle found anomalies the oracle did not see")
    return verdict
