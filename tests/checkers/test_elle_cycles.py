"""The cycle classifier held to brute force: every simple cycle of small random graphs.

The reference enumerates simple cycles (networkx), tries every edge kind on every step,
classifies each cycle as Elle does and labels each edge with the most severe cycle it
lies on. The checker must agree on every verdict, exactly on the counts of G0, G1c,
G-single-item and their realtime variants, and on how many rw edges lie on some cycle
(it may call a few of them G-nonadjacent-item where only a closed walk, not a simple
cycle, shows it: see ``cycles.py``). Every witness must be a real cycle of the kind it names.
"""

from __future__ import annotations

import itertools
import re

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.checkers.cycles import (CYCLE_ANOMALIES, RT, RW, WR, WW, DependencyGraph,
                                       find_cycle_anomalies)

SI_FORBIDDEN = {"G0", "G1c", "G-single-item", "G-nonadjacent-item"}
STRONG_FORBIDDEN = SI_FORBIDDEN | {name + "-realtime" for name in SI_FORBIDDEN}
EXACT = {"G0", "G1c", "G-single-item", "G0-realtime", "G1c-realtime"}
RW_KINDS = {"G-single-item", "G-nonadjacent-item", "G2-item"}
DETAIL = {WW: (0, 1, 2), WR: (0, 1), RW: (0, 1, 2)}
STEP = re.compile(r" -(ww|wr|rw|rt)(?:\(k\d+\))?-> T(\d+)")


def classify(kinds: list[str]) -> str:
    rw = kinds.count(RW)
    if rw == 0:
        base = "G1c" if WR in kinds else "G0"
    elif rw == 1:
        base = "G-single-item"
    else:
        pairs = zip(kinds, kinds[1:] + kinds[:1])
        base = "G2-item" if any(p == (RW, RW) for p in pairs) else "G-nonadjacent-item"
    return base + ("-realtime" if RT in kinds else "")


def real_time_pairs(graph: DependencyGraph):
    n = len(graph.ids)
    return [(u, v) for u in range(n) for v in range(n)
            if u != v and graph.committed[u] and graph.possible[v]
            and graph.complete_ns[u] < graph.invoke_ns[v]]


def brute_force(graph: DependencyGraph, realtime: bool) -> dict[str, int]:
    kinds_of: dict[tuple[int, int], set[str]] = {}
    for kind, edges in graph.edges.items():
        for edge in edges:
            kinds_of.setdefault(edge, set()).add(kind)
    for edge in real_time_pairs(graph) if realtime else []:
        kinds_of.setdefault(edge, set()).add(RT)
    labels: dict[tuple[str, tuple[int, int]], str] = {}
    for cycle in nx.simple_cycles(nx.DiGraph(list(kinds_of))):
        steps = list(zip(cycle, cycle[1:] + cycle[:1]))
        for kinds in itertools.product(*(sorted(kinds_of[s]) for s in steps)):
            name = classify(list(kinds))
            defining = {"G0": WW, "G1c": WR}.get(name.removesuffix("-realtime"), RW)
            for step, kind in zip(steps, kinds):
                current = labels.get((kind, step))
                if kind == defining and (current is None or _severity(name) < _severity(current)):
                    labels[(kind, step)] = name
    counts: dict[str, int] = {}
    for name in labels.values():
        counts[name] = counts.get(name, 0) + 1
    return counts


def _severity(name: str) -> int:
    return CYCLE_ANOMALIES.index(name)


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 6))
    pairs = [(u, v) for u in range(n) for v in range(n) if u != v]
    graph = DependencyGraph(ids=list(range(10, 10 + n)), invoke_ns=[], complete_ns=[],
                            committed=[], possible=[])
    for kind in (WW, WR, RW):
        for u, v in draw(st.lists(st.sampled_from(pairs), max_size=2 * n, unique=True)):
            graph.add(kind, u, v, DETAIL[kind])
    for _ in range(n):
        invoke = draw(st.integers(0, 40))
        graph.invoke_ns.append(invoke)
        graph.complete_ns.append(invoke + draw(st.integers(0, 20)))
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "info"]))
        graph.committed.append(outcome == "ok")
        graph.possible.append(True)
    return graph


@settings(max_examples=250, deadline=None)
@given(graphs(), st.booleans())
def test_cycle_classes_agree_with_brute_force(graph, realtime):
    found = find_cycle_anomalies(graph, realtime)
    mine = {name: f["count"] for name, f in found.items()}
    reference = brute_force(graph, realtime)
    for forbidden in (SI_FORBIDDEN, STRONG_FORBIDDEN):
        assert bool(forbidden & set(mine)) == bool(forbidden & set(reference))
    assert {k: v for k, v in mine.items() if k in EXACT} == \
           {k: v for k, v in reference.items() if k in EXACT}
    assert _rw_total(mine) == _rw_total(reference)
    for name, finding in found.items():
        for witness in finding["witnesses"]:
            assert_witness_is_a_cycle_of_kind(graph, name, witness)


def _rw_total(counts: dict[str, int]) -> int:
    return sum(c for name, c in counts.items() if name.removesuffix("-realtime") in RW_KINDS)


def assert_witness_is_a_cycle_of_kind(graph: DependencyGraph, name: str, witness: str):
    chain = witness.split(":")[0]
    start = int(re.match(r"T(\d+)", chain).group(1))
    node = {id_: i for i, id_ in enumerate(graph.ids)}
    rt = set(real_time_pairs(graph))
    x, kinds = start, []
    for kind, y in STEP.findall(chain):
        edge = (node[x], node[int(y)])
        assert edge in rt if kind == RT else edge in graph.edges[kind], witness
        kinds.append(kind)
        x = int(y)
    assert x == start, witness
    if name.startswith("G-nonadjacent-item"):
        assert kinds.count(RW) >= 2 and (RT in kinds) == name.endswith("-realtime")
    else:
        assert classify(kinds) == name, witness
