"""Fault targets checked against the topology, before a run starts.

Place in the pipeline: ``config.load_config`` (and ``validate_config``) call
``check_fault_targets`` with the resolved tree, after the topology is known. The
simulator (``dsqlbench.sim.faults``) checks a target's *form* (``adjudicator:N``); this
module checks that the node or place it names *exists* in the topology, so
``adjudicator:99`` on 4 shards is one line naming the fault, its target and the valid
range, and never an ``IndexError`` (or, for a journal or QP, a fault that silently hits
nothing) in the middle of a run.

What exists, as ``dsqlbench.sim.topology.build_placement`` lays it out:

| target | index range |
|---|---|
| ``adjudicator:N`` | N < ``adjudicator.shards`` |
| ``journal:J:R`` | J < ``adjudicator.shards`` (one journal per shard); R < its replicas (AZs of a one-region topology, else regions) |
| ``storage:S:R`` | S < ``storage.shards``; R < the AZs of the full regions |
| ``qp:N`` | N < ``placement.qp_per_az`` x the AZs of the full regions |
| ``storage:S`` (fragment faults) | S < ``storage.shards`` |
| ``rR`` / ``rR.azA`` (link faults) | R < regions; A < ``regions.R.azs`` |

With fewer loaded keys than ``storage.shards`` (a YCSB or bank ``load.record_count``,
list-append's ``list_append.keys``) the run builds fewer storage shards, so a storage
fault is refused there.

Numbers must be written plainly (``3``, not ``03``): the simulator matches targets as
text, so ``qp:03`` would never hit QP 3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LINK_KINDS = ("partition", "slow_link")
FRAGMENT_KINDS = ("lose_fragments", "corrupt_fragments")

# fail(dotted key, value, problem, blame keys) raises the ConfigError; config passes
# its ``_fail`` bound to the key origins, so the message names the right file.
Fail = Callable[[str, Any, str, tuple], None]


def check_fault_targets(cfg: dict, fail: Fail, source_of: Callable[[str], str]) -> None:
    """Every ``[[faults]]`` target names a node or place of ``cfg["topology"]``.
    ``source_of(dotted)`` names the file or override a key came from."""
    from dsqlbench.sim.faults import _check_target

    topo = cfg["topology"]
    for index, spec in enumerate(cfg.get("faults", [])):
        where = f"faults.{index}"
        kind, target = spec["kind"], spec["target"]
        _check_target(kind, target, source_of(f"{where}.target"), where)  # the form first
        problem = _range_problem(kind, target, topo) or _few_keys_problem(kind, target, cfg)
        if problem is not None:
            fail(f"{where}.target", target, f"{kind} fault: {problem}", _blame(kind, target))


# Where the workload's count of loaded keys is known: with fewer keys than storage
# shards the run splits the keys into fewer shards than configured.
_LOADED_KEYS = {"ycsb": "load.record_count", "bank": "load.record_count",
                "list-append": "list_append.keys"}


def _few_keys_problem(kind: str, target: str, cfg: dict) -> str | None:
    if not target.startswith("storage:"):
        return None
    key = _LOADED_KEYS.get(cfg["workload"]["kind"])
    if key is None:
        return None
    section, name = key.split(".")
    loaded, shards = cfg[section][name], cfg["topology"]["storage"]["shards"]
    if loaded >= shards:
        return None
    return (f"topology.storage.shards = {shards} is more than the {loaded} loaded keys "
            f"({key}), so the run builds fewer storage shards; a storage fault needs "
            f"storage.shards <= {key}")


def _blame(kind: str, target: str) -> tuple[str, ...]:
    """The topology keys that decide the range: an override of one is to blame."""
    role = "link" if kind in LINK_KINDS else target.split(":")[0]
    return {"adjudicator": ("topology.adjudicator.shards",),
            "journal": ("topology.adjudicator.shards", "topology.regions"),
            "storage": ("topology.storage.shards", "topology.regions"),
            "qp": ("topology.placement.qp_per_az", "topology.regions"),
            }.get(role, ("topology.regions",))


def _range_problem(kind: str, target: str, topo: dict) -> str | None:
    if kind in LINK_KINDS:
        for side in target.split("|"):
            problem = _place_problem(side.strip(), topo)
            if problem:
                return problem
        return None
    parts = target.split(":")
    for part in parts[1:]:
        if part != str(int(part)):
            return f"write {part!r} as {int(part)} (targets are matched as written)"
    numbers = [int(p) for p in parts[1:]]
    ranges = _ranges(topo)
    role = parts[0]
    if kind in FRAGMENT_KINDS:
        return _index_problem("storage shard", numbers[0], ranges["storage"]) if numbers else None
    if role == "journal":
        journal, replica = numbers
        problem = _index_problem("journal", journal, ranges["journal"])
        return problem or _index_problem(f"journal {journal} replica", replica,
                                         ranges["journal_replicas"][journal])
    if role == "storage":
        shard, replica = numbers
        problem = _index_problem("storage shard", shard, ranges["storage"])
        return problem or _index_problem("storage replica", replica, ranges["storage_replicas"])
    return _index_problem("QP" if role == "qp" else "adjudicator shard", numbers[0], ranges[role])


def _ranges(topo: dict) -> dict:
    """``(count, what decides it)`` per kind of node, as the simulator builds them."""
    from dsqlbench.sim.topology import build_placement

    placement = build_placement(topo)
    full_azs = len(placement.storage_azs)
    shards = topo["adjudicator"]["shards"]
    qp_per_az = topo["placement"]["qp_per_az"]
    one_region = len(topo["regions"]) == 1
    return {
        "adjudicator": (shards, f"topology.adjudicator.shards = {shards}"),
        "journal": (shards, f"one per adjudicator shard; topology.adjudicator.shards = {shards}"),
        "journal_replicas": [(len(replicas), "one per AZ of the region" if one_region
                              else "one per region") for replicas in placement.journal_replicas],
        "storage": (topo["storage"]["shards"],
                    f"topology.storage.shards = {topo['storage']['shards']}"),
        "storage_replicas": (full_azs, f"one per AZ of the full regions, {full_azs} AZs"),
        "qp": (full_azs * qp_per_az,
               f"topology.placement.qp_per_az = {qp_per_az} x {full_azs} AZs of the full regions"),
    }


def _index_problem(what: str, number: int, count_why: tuple[int, str]) -> str | None:
    count, why = count_why
    if number < count:
        return None
    valid = "0" if count == 1 else f"0..{count - 1}"
    return f"no {what} {number}; valid {valid} ({why})"


def _place_problem(text: str, topo: dict) -> str | None:
    if text == "*":
        return None
    region_text, _, az_text = text.partition(".")
    regions = topo["regions"]
    region = int(region_text[1:])
    if region >= len(regions):
        valid = "r0" if len(regions) == 1 else f"r0..r{len(regions) - 1}"
        return f"no region r{region}; valid {valid} ({len(regions)} in topology.regions)"
    if not az_text:
        return None
    az = int(az_text[2:])
    azs = regions[region]["azs"]
    if az >= azs:
        valid = "az0" if azs == 1 else f"az0..az{azs - 1}"
        return (f"no AZ az{az} in r{region} ({regions[region]['name']}); valid {valid} "
                f"(topology.regions.{region}.azs = {azs})")
    return None
