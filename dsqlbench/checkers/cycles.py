"""Cycle anomalies in a transaction dependency graph, classified as Elle classifies them.

Input: the inferred dependency edges between committed (or possibly committed)
transactions, from ``elle.py``: ``ww`` (write-write: the next version of a key),
``wr`` (write-read: the version a read observed), ``rw`` (read-write anti-dependency:
a read that missed the next version), and with real time the order ``rt`` (T1 completed
before T2 was invoked, in true time). Output: per anomaly name, a count and up to
three witnesses a person can follow.

Classification (Adya; Elle; Cerone and Gotsman, "Analysing Snapshot Isolation"), with
Elle's names: a cycle of ww edges is G0; of ww and wr edges with a wr, G1c; with exactly
one rw, G-single-item; with two or more rw of which none are adjacent (cyclically),
G-nonadjacent-item; with two or more rw, some adjacent, G2-item. Every edge here is
between items (keys), never a predicate, hence Elle's "-item" names. A cycle that needs
an rt edge gets the "-realtime" suffix. Snapshot isolation holds exactly when
``(ww | wr) ; rw?`` is acyclic, i.e. no G0, G1c, G-single-item or G-nonadjacent-item;
strong snapshot isolation adds ``rt`` to the left side, forbidding their realtime
variants too. G2-item (write skew) is allowed by both.

How it stays fast (no enumeration of cycles; one networkx pass per subgraph):

- Real time is encoded with one node per distinct completion time, chained in time
  order: ``T -> time(complete T)`` for committed T, ``time(c) -> T`` for the latest
  completion ``c < invoke T``. A path through time nodes is exactly ``T1 -rt-> T2``,
  with O(n) edges instead of O(n * concurrency).
- Everything runs inside the strongly connected components (networkx) of the whole
  graph; a valid serial history has none and stops there.
- Each edge is labelled with the most severe kind of cycle it lies on, in this order:
  anomalies snapshot isolation forbids, then those only strong snapshot isolation
  forbids, then allowed ones; so each model's verdict is exact. An edge lies on a cycle
  of a subgraph iff both ends share a strongly connected component of that subgraph;
  ``a -rw-> b`` closes a G-single-item iff ``b`` reaches ``a`` over ww/wr(/rt), answered
  with reachability bitsets over the condensation; and it lies on a cycle with no two
  adjacent rw edges iff ``(a, plain)`` and ``(b, after-rw)`` share a component of the
  two-state graph whose rw edges lead only from "plain" to "after-rw".
- The count of an anomaly is the number of distinct edges of its defining kind (ww for
  G0, wr for G1c, rw for the rest) lying on such a cycle, so it grows with the number of
  anomalous transactions instead of collapsing into one component. A witness is the
  shortest cycle through such an edge (BFS; time nodes cost nothing), for the first
  such edges in (id, id) order, skipping a cycle already shown.

One deliberate difference from Elle: whether an edge lies on a *simple* cycle with no
two adjacent rw edges is NP-hard in general, so "G-nonadjacent-item" here means a closed
walk with that property (which is exactly what Cerone and Gotsman's acyclicity condition
forbids). Rarely such a walk repeats a transaction, where Elle, searching simple
cycles, would name that rw edge's cycles G2-item or G-single-item-realtime instead; the
verdict under either model is the same (held to a brute-force enumeration of simple
cycles in ``tests/checkers/test_elle_cycles.py``), and the witness then shows a walk
that visits some transaction twice.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field

import networkx as nx

WW, WR, RW, RT = "ww", "wr", "rw", "rt"
WITNESSES_MAX = 3
CANDIDATES_MAX = 8  # edges tried for witnesses, until three distinct cycles are found
STEPS_SHOWN_MAX = 12  # a longer cycle is shown with its middle elided

# Most severe first: SI-forbidden, then strong-SI-forbidden, then allowed (see above).
CYCLE_ANOMALIES = ("G0", "G1c", "G-single-item", "G-nonadjacent-item",
                   "G0-realtime", "G1c-realtime", "G-single-item-realtime",
                   "G-nonadjacent-item-realtime",
                   "G2-item", "G2-item-realtime")


@dataclass
class DependencyGraph:
    """Nodes are ``0..n-1`` (transactions in id order); edges map ``(u, v)`` to the detail
    of the first edge of that kind added between them: ww ``(key, value_u, value_v)``,
    wr ``(key, value)``, rw ``(key, last_read_or_None, value_v)``."""

    ids: list[int]
    invoke_ns: list[int]
    complete_ns: list[int]
    committed: list[bool]  # ok: completion known, so only these have outgoing rt edges
    possible: list[bool]  # ok or info: may have committed, so may be in a cycle
    edges: dict[str, dict[tuple[int, int], tuple]] = field(
        default_factory=lambda: {WW: {}, WR: {}, RW: {}})

    def add(self, kind: str, u: int, v: int, detail: tuple) -> None:
        if u != v:  # a transaction's edges to itself say nothing
            self.edges[kind].setdefault((u, v), detail)


@dataclass
class Finding:
    count: int = 0
    edges: list[tuple[int, int]] = field(default_factory=list)  # the first few: candidates


def find_cycle_anomalies(graph: DependencyGraph, realtime: bool) -> dict[str, dict]:
    """``{name: {"count": n, "witnesses": [...]}}`` for every cycle anomaly found."""
    n = len(graph.ids)
    rt_links = _time_links(graph) if realtime else []
    typed = {kind: sorted(graph.edges[kind]) for kind in (WW, WR, RW)}
    whole = _Components(typed[WW] + typed[WR] + typed[RW] + rt_links)
    if not whole.index:
        return {}
    # Every cycle lies inside one component of the whole graph: drop the other edges.
    inside = {kind: [e for e in es if whole.same(*e)] for kind, es in typed.items()}
    rt_inside = [e for e in rt_links if whole.same(*e)]
    plain = _Variant(n, inside, [])
    timed = _Variant(n, inside, rt_inside) if realtime else None
    (timed or plain).seed("f", whole)  # the whole graph is that variant's "f" subgraph
    findings = _classify(inside, plain, timed)
    return {name: {"count": f.count, "witnesses": _witnesses(graph, name, f.edges, plain, timed)}
            for name, f in findings.items()}


def _classify(inside, plain: "_Variant", timed: "_Variant | None") -> dict[str, Finding]:
    variants = [(plain, "")] + ([(timed, "-realtime")] if timed else [])
    labels: list[tuple[str, tuple[int, int]]] = []
    for u, v in inside[WW]:
        name = _first(variants, lambda var: var.same("ww+rt", u, v), "G0")
        if name:
            labels.append((name, (u, v)))
    for u, v in inside[WR]:
        name = _first(variants, lambda var: var.same("d", u, v), "G1c")
        if name:
            labels.append((name, (u, v)))
    for a, b in inside[RW]:
        name = _rw_label(variants, a, b)
        if name:
            labels.append((name, (a, b)))
    findings: dict[str, Finding] = {}
    for name, edge in labels:
        finding = findings.setdefault(name, Finding())
        finding.count += 1
        if len(finding.edges) < CANDIDATES_MAX:
            finding.edges.append(edge)
    return {name: findings[name] for name in CYCLE_ANOMALIES if name in findings}


def _rw_label(variants, a: int, b: int) -> str | None:
    forbidden = (("G-single-item", lambda var: var.d_reaches(b, a)),
                 ("G-nonadjacent-item", lambda var: var.nonadjacent(a, b)))
    # Every forbidden kind of a variant before the next variant, and the allowed kind
    # last: each model's verdict stays exact.
    for variant, suffix in variants:
        for base, test in forbidden:
            if test(variant):
                return base + suffix
    return _first(variants, lambda var: var.same("f", a, b), "G2-item")


def _first(variants, test, base: str) -> str | None:
    for variant, suffix in variants:
        if test(variant):
            return base + suffix
    return None


class _Variant:
    """The graph without (plain) or with (timed) real-time edges; everything lazy.

    Each subgraph keeps only the edges inside the components of the one containing it
    (f holds d, d holds ww+rt), since a cycle never leaves a component: a history with
    few cycles does little work after the first, whole-graph pass."""

    SUBGRAPHS = {"ww+rt": (WW, RT), "d": (WW, WR, RT), "f": (WW, WR, RW, RT)}
    CONTAINER = {"ww+rt": "d", "d": "f", "f": None}

    def __init__(self, n: int, inside: dict, rt_links: list[tuple[int, int]]):
        self.n = n
        self.typed = {WW: inside[WW], WR: inside[WR], RW: inside[RW], RT: rt_links}
        self._edges: dict[str, list[tuple[int, int, str]]] = {}
        self._components: dict[str, _Components] = {}
        self._adjacency: dict[str, dict] = {}
        self._reach = None

    def seed(self, subgraph: str, components: "_Components") -> None:
        self._components[subgraph] = components

    def components(self, subgraph: str) -> "_Components":
        if subgraph not in self._components:
            edges = [(u, v) for u, v, _ in self.edges_of(subgraph)]
            self._components[subgraph] = _Components(edges)
        return self._components[subgraph]

    def same(self, subgraph: str, u: int, v: int) -> bool:
        return self.components(subgraph).same(u, v)

    def d_reaches(self, src: int, dst: int) -> bool:
        """Is there a path ``src ~> dst`` over ww, wr (and rt) edges?"""
        if self._reach is None:
            self._reach = _Reachability(self.components("d"))
        return self._reach.reaches(src, dst)

    def nonadjacent(self, a: int, b: int) -> bool:
        """Does ``a -rw-> b`` lie on a cycle with no two adjacent rw edges?"""
        return self.components("two-state").same(2 * a, 2 * b + 1)

    def edges_of(self, subgraph: str) -> list[tuple[int, int, str]]:
        if subgraph not in self._edges:
            self._edges[subgraph] = (self._two_state_edges() if subgraph == "two-state"
                                     else self._subgraph_edges(subgraph))
        return self._edges[subgraph]

    def _subgraph_edges(self, subgraph: str) -> list[tuple[int, int, str]]:
        edges = [(u, v, k) for k in self.SUBGRAPHS[subgraph] for u, v in self.typed[k]]
        container = self.CONTAINER[subgraph]
        if container is None:
            return edges
        components = self.components(container)
        return [e for e in edges if components.same(e[0], e[1])]

    def _two_state_edges(self) -> list[tuple[int, int, str]]:
        """Node ``2x`` is x reached plainly, ``2x + 1`` is x reached by an rw edge; an rw
        edge may only leave a plain state, so cycles here never have adjacent rw edges."""
        edges = []
        for u, v, kind in self.edges_of("d"):
            edges.append((2 * u, 2 * v, kind))
            edges.append((2 * u + 1, 2 * v, kind))
        edges.extend((2 * u, 2 * v + 1, RW) for u, v, kind in self.edges_of("f") if kind == RW)
        return edges

    def adjacency(self, subgraph: str) -> dict[int, list[tuple[int, str]]]:
        if subgraph not in self._adjacency:
            adjacency: dict[int, list[tuple[int, str]]] = {}
            for u, v, kind in self.edges_of(subgraph):
                adjacency.setdefault(u, []).append((v, kind))
            for targets in adjacency.values():
                targets.sort()  # BFS order, hence witnesses, must not depend on input order
            self._adjacency[subgraph] = adjacency
        return self._adjacency[subgraph]


class _Components:
    """Strongly connected components (networkx) of a graph given by its edges; the
    graphs here have no self-loops, so only components of 2+ nodes hold cycles."""

    def __init__(self, edges):
        self.graph = nx.DiGraph()
        self.graph.add_edges_from(edges)
        self.all = list(nx.strongly_connected_components(self.graph))
        self.index: dict[int, int] = {}  # node -> component number, nontrivial ones only
        for number, component in enumerate(self.all):
            if len(component) > 1:
                for node in component:
                    self.index[node] = number

    def same(self, u: int, v: int) -> bool:
        cu = self.index.get(u)
        return cu is not None and cu == self.index.get(v)


class _Reachability:
    """Reachability over a graph's condensation, one integer bitset per component."""

    def __init__(self, components: "_Components"):
        dag = nx.condensation(components.graph, scc=components.all)
        self.component = dag.graph["mapping"]
        self.reach: dict[int, int] = {}
        for c in reversed(list(nx.topological_sort(dag))):
            bits = 1 << c
            for s in dag.successors(c):
                bits |= self.reach[s]
            self.reach[c] = bits

    def reaches(self, src: int, dst: int) -> bool:
        if src not in self.component or dst not in self.component:
            return False
        return bool(self.reach[self.component[src]] >> self.component[dst] & 1)


def _time_links(graph: DependencyGraph) -> list[tuple[int, int]]:
    """Real-time order as paths through time nodes ``n + i`` (see the module docstring)."""
    n = len(graph.ids)
    times = sorted({c for c, ok in zip(graph.complete_ns, graph.committed) if ok})
    links = [(n + i, n + i + 1) for i in range(len(times) - 1)]
    for t in range(n):
        if graph.committed[t]:
            links.append((t, n + bisect_left(times, graph.complete_ns[t])))
        before = bisect_left(times, graph.invoke_ns[t]) - 1  # latest completion < invoke
        if before >= 0 and graph.possible[t]:
            links.append((n + before, t))
    return links


# --- witnesses ---------------------------------------------------------------------------

def _witnesses(graph, name: str, edges, plain: _Variant, timed) -> list[str]:
    """Distinct shortest cycles through the first candidate edges, at most three."""
    kept: list[list] = []
    seen: set[frozenset] = set()
    for edge in edges:
        steps = _cycle_through(graph, name, edge, plain, timed)
        if frozenset(steps) not in seen:  # else the same cycle, found from another edge
            seen.add(frozenset(steps))
            kept.append(steps)
            if len(kept) == WITNESSES_MAX:
                break
    return [_render(graph, steps) for steps in kept]


def _cycle_through(graph, name: str, edge: tuple[int, int], plain: _Variant, timed):
    """Shortest cycle of kind ``name`` through ``edge``: ``[(x, kind, y), ...]``."""
    variant = timed if name.endswith("-realtime") else plain
    base = name.removesuffix("-realtime")
    u, v = edge
    n = len(graph.ids)
    if base == "G-nonadjacent-item":
        path = _shortest_path(variant.adjacency("two-state"), 2 * v + 1, 2 * u, 2 * n)
        path = path and [(x >> 1, kind, y >> 1) for x, kind, y in path]
    else:
        subgraph = {"G0": "ww+rt", "G1c": "d", "G-single-item": "d"}.get(base, "f")
        path = _shortest_path(variant.adjacency(subgraph), v, u, n)
    assert path is not None, f"{name}: no cycle through {edge}"
    first = {"G0": WW, "G1c": WR}.get(base, RW)
    return _collapse_time([(u, first, v)] + path, n)


def _shortest_path(adjacency, src: int, dst: int, first_time_node: int):
    """Fewest transaction hops ``src ~> dst`` (0-1 BFS: entering a time node, numbered
    from ``first_time_node`` on, is free); returns ``[(x, kind, y), ...]`` or None."""
    best = {src: 0}
    parent: dict[int, tuple[int, str]] = {}
    queue = deque([src])
    while queue:
        x = queue.popleft()
        if x == dst:
            break
        cost_x = best[x]
        for y, kind in adjacency.get(x, ()):
            free = y >= first_time_node
            cost = cost_x if free else cost_x + 1
            if cost < best.get(y, cost + 1):
                best[y] = cost
                parent[y] = (x, kind)
                if free:
                    queue.appendleft(y)
                else:
                    queue.append(y)
    if dst not in best:
        return None
    path, y = [], dst
    while y != src:
        x, kind = parent[y]
        path.append((x, kind, y))
        y = x
    return path[::-1]


def _collapse_time(steps, n: int) -> list[tuple[int, str, int]]:
    """Turn ``T1 -> time ... time -> T2`` runs into one ``T1 -rt-> T2`` step."""
    out, start = [], None
    for x, kind, y in steps:
        if y >= n:
            start = x if x < n else start
            continue
        if x >= n:
            out.append((start, RT, y))
        else:
            out.append((x, kind, y))
    return out


def _render(graph: DependencyGraph, steps) -> str:
    ids = graph.ids
    links, reasons = [], []
    for x, kind, y in steps:
        if kind == RT:
            links.append(f" -rt-> T{ids[y]}")
            reasons.append(f"T{ids[x]} completed at {graph.complete_ns[x]} ns before "
                           f"T{ids[y]} began at {graph.invoke_ns[y]} ns")
            continue
        detail = graph.edges[kind][(x, y)]
        links.append(f" -{kind}(k{detail[0]})-> T{ids[y]}")
        reasons.append(_reason(kind, f"T{ids[x]}", f"T{ids[y]}", detail))
    if len(steps) > STEPS_SHOWN_MAX:
        # A person cannot follow a hundred steps; show both ends and say what is missing.
        head, tail = STEPS_SHOWN_MAX // 2, STEPS_SHOWN_MAX // 2 - 1
        elided = f" ... ({len(steps) - head - tail} steps elided) ..."
        links = links[:head] + [elided] + links[-tail:]
        reasons = reasons[:head] + ["..."] + reasons[-tail:]
    return f"T{ids[steps[0][0]]}{''.join(links)}: {'; '.join(reasons)}"


def _reason(kind: str, a: str, b: str, detail: tuple) -> str:
    if kind == WW:
        key, before, after = detail
        return f"{b} appended {after} after {a}'s {before} on k{key}"
    if kind == WR:
        key, value = detail
        return f"{b} read {a}'s {value} on k{key}"
    key, last, missed = detail
    seen = "empty" if last is None else f"up to {last}"
    return f"{a} read k{key} {seen}, missing {b}'s {missed}"
