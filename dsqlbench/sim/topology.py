"""Placement: which node sits in which region and AZ, derived from a topology config.

- Full regions run QPs, adjudicator leaders, storage replicas (one per AZ per shard)
  and a crossbar; witness regions hold only journal replicas.
- QPs: ``qp_per_az`` in every AZ of every full region; clients are spread over QPs
  round-robin, so a client's reads go to the storage replicas in its QP's AZ.
- Adjudicator shard ``i`` leads from the ``i``-th AZ of the full regions, round-robin.
- Journal replicas: one per AZ in a one-region topology (quorum 2 of 3 AZs); one per
  region, in the journal's leader-side AZ where it can, across regions (2 of 3 regions).
- One crossbar per full region, in its first AZ; it feeds that region's replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsqlbench.sim.network import Place


@dataclass(frozen=True)
class Placement:
    region_names: tuple[str, ...]
    full_regions: tuple[int, ...]
    qps: tuple[Place, ...]
    adjudicators: tuple[Place, ...]
    journal_replicas: tuple[tuple[Place, ...], ...]  # per journal (= per adjudicator shard)
    crossbars: tuple[Place, ...]  # one per full region, index-aligned with full_regions
    storage_azs: tuple[Place, ...]  # every AZ that holds a replica of every shard

    def crossbar_of_region(self, region: int) -> int:
        return self.full_regions.index(region)


def build_placement(topology: dict) -> Placement:
    regions = topology["regions"]
    names = tuple(r["name"] for r in regions)
    full = tuple(i for i, r in enumerate(regions) if r["role"] == "full")
    assert full, "a topology needs at least one full region"
    full_azs = tuple((i, az) for i in full for az in range(regions[i]["azs"]))
    qps = tuple(place for place in full_azs for _ in range(topology["placement"]["qp_per_az"]))
    shards = topology["adjudicator"]["shards"]
    adjudicators = tuple(full_azs[i % len(full_azs)] for i in range(shards))
    journals = tuple(_journal_replicas(regions, leader) for leader in adjudicators)
    crossbars = tuple((i, 0) for i in full)
    return Placement(names, full, qps, adjudicators, journals, crossbars, full_azs)


def _journal_replicas(regions: list[dict], leader: Place) -> tuple[Place, ...]:
    if len(regions) == 1:
        return tuple((0, az) for az in range(regions[0]["azs"]))
    replicas = []
    for index, region in enumerate(regions):
        az = leader[1] % region["azs"] if index == leader[0] else 0
        replicas.append((index, az))
    return tuple(replicas)
