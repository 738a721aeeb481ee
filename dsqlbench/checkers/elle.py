"""Black-box consistency checker for list-append histories, in the style of Jepsen's Elle.

It sees only what clients saw (``history.py`` documents the format): each transaction
appends unique values to lists and reads whole lists. From the values read it infers
the order of versions of every key and the dependencies between transactions, finds
cycles (``cycles.py``) and checks the facts that need no cycle. It is independent of
the lab's timestamps on purpose: the white-box ``oracle.py`` checks those, and the two
must agree.

Inference (as Elle's list-append):

- the version order of a key is its longest list read by a committed transaction; every
  other read of the key must be a prefix of it, else ``incompatible-order``;
- ``Ti -ww-> Tj``: Tj appended the value right after Ti's in the version order; an
  append nobody read came after every value read, so it follows the last one;
- ``Ti -wr-> Tj``: Ti appended the last value of Tj's read, Tj's own appends excluded;
- ``Tj -rw-> Ti``: Tj read a state (possibly empty) whose next value Ti appended;
- ``Ti -rt-> Tj`` (with ``realtime``): Ti completed (ok) before Tj was invoked, in true
  time. Only ok transactions have a known completion; info ones have none.

Anomalies (each forbidden by both models unless said otherwise):

- cycles: G0, G1c, G-single-item, and G-nonadjacent-item (two or more rw edges, none
  adjacent: Elle's snapshot isolation forbids it too, after Cerone and Gotsman); G2-item
  (write skew) is allowed. The names are Elle's: every edge is between items (keys),
  never a predicate, so the rw-cycles carry Elle's "-item" suffix; with ``realtime``, the variants that need a real-time edge,
  ``<name>-realtime``, which only ``strong-snapshot-isolation`` forbids
  (G2-item-realtime stays allowed);
- G1a (aborted read): an ok read contains a value appended by a failed transaction;
- dirty-update: in a key's version order, a value appended by a failed transaction is
  followed (directly, or through appends of info transactions) by one a committed
  transaction appended: a committed write built on an aborted one. Elle reports it
  besides the G1a of the read that shows it;
- G1b (intermediate read): an ok read ends at a value that was not the final append of
  its writer to that key;
- lost-update: two ok transactions read the same state of a key, then both appended to it;
- incompatible-order, garbage-read (a value nobody appended to that key),
  duplicate-elements (a value twice in one read);
- internal: a read disagrees with the transaction's own earlier reads and appends;
  future-read: a read contains a value the same transaction appends only later;
- stale-read (with ``realtime``; strong-snapshot-isolation only): an ok read misses an
  append by a transaction that was acknowledged before the reader was invoked. Every
  stale read also closes a G-single-item-realtime cycle; this count is per read.

Counts: cycle anomalies count edges (see ``cycles.py``); lost-update counts groups of
transactions that read the same state; incompatible-order counts keys; dirty-update
counts committed appends that follow a failed one; every other anomaly counts reads. Output is deterministic: witnesses are the first in id order.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate

from dsqlbench.checkers.cycles import RW, WR, WW, DependencyGraph, find_cycle_anomalies
from dsqlbench.checkers.history import APPEND, Txn, from_dicts, validate
from dsqlbench.errors import UserError

WITNESSES_MAX = 3
SHOW_VALUES_MAX = 6

SI_FORBIDDEN = frozenset({
    "G0", "G1a", "G1b", "G1c", "G-single-item", "G-nonadjacent-item", "lost-update",
    "dirty-update", "incompatible-order", "garbage-read", "duplicate-elements", "internal",
    "future-read"})
MODELS = {
    "snapshot-isolation": SI_FORBIDDEN,
    "strong-snapshot-isolation": SI_FORBIDDEN | {
        "G0-realtime", "G1c-realtime", "G-single-item-realtime", "G-nonadjacent-item-realtime",
        "stale-read"},
}


def check_list_append(history, *, realtime: bool = True,
                      model: str = "snapshot-isolation") -> dict:
    """Judge a list-append history (dicts as in ``history.py``, or loaded ``Txn``s).

    Returns a JSON-serialisable verdict: ``valid`` (no anomaly the model forbids),
    ``anomalies`` ``{name: count}``, ``witnesses`` ``{name: [text, ...]}`` (at most 3),
    ``forbidden`` and ``allowed`` (names found), and ``counts``.
    """
    if model not in MODELS:
        raise UserError(f"unknown consistency model {model!r}: expected one of "
                        f"{', '.join(sorted(MODELS))}")
    txns = _as_txns(history)
    found = _Found()
    index = _Index(txns, found)
    _check_reads(index, found)
    _check_dirty_updates(index, found)
    _check_lost_updates(index, found)
    graph = _dependencies(index)
    if realtime:
        _check_stale_reads(index, found)
    for name, cycles in find_cycle_anomalies(graph, realtime).items():
        found.counts[name] = cycles["count"]
        found.witnesses[name] = cycles["witnesses"]
    return _verdict(found, MODELS[model], index, graph, realtime, model)


def _as_txns(history) -> list[Txn]:
    history = list(history)
    if history and all(isinstance(t, Txn) for t in history):
        return validate(history)
    return from_dicts(history)


class _Found:
    """Anomaly counts and the first few witnesses of each."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.witnesses: dict[str, list[str]] = {}

    def add(self, name: str, witness) -> None:
        """``witness`` is a string, or a function making one (only called if kept)."""
        self.counts[name] = self.counts.get(name, 0) + 1
        kept = self.witnesses.setdefault(name, [])
        if len(kept) < WITNESSES_MAX:
            kept.append(witness if isinstance(witness, str) else witness())


@dataclass(frozen=True, slots=True)
class _Read:
    node: int
    key: int
    full: tuple  # the list as read
    external: tuple  # without the transaction's own earlier appends: the snapshot's state
    position: int  # op index in the transaction


class _Index:
    """Who appended what, the reads of committed transactions, and the version orders."""

    def __init__(self, txns: list[Txn], found: _Found):
        self.txns = txns
        self.writer: dict[tuple[int, int], int] = {}  # (key, value) -> node
        self.final: dict[tuple[int, int], int] = {}  # (node, key) -> last value appended
        self.own_appends: dict[tuple[int, int], list] = {}  # (node, key) -> [(op index, value)]
        self.reads: list[_Read] = []
        for node, txn in enumerate(txns):
            self._index_appends(node, txn)
        for node, txn in enumerate(txns):
            if txn.type == "ok":
                self._index_reads(node, txn, found)
        self.version_order = self._version_orders(found)
        self.order_position = {key: {v: j for j, v in enumerate(order)}
                               for key, order in self.version_order.items()}
        self.unobserved = self._unobserved_appends()
        self.clean_length = {key: self._clean_length(key) for key in self.version_order}

    def is_clean_prefix(self, key: int, values: tuple) -> bool:
        """Is ``values`` a prefix of the version order made only of ok/info appends?
        Such a read has no duplicates, aborted or garbage values: the common, fast case."""
        return (len(values) <= self.clean_length.get(key, 0)
                and self.version_order[key][:len(values)] == values)

    def _clean_length(self, key: int) -> int:
        order = self.version_order[key]
        for j, value in enumerate(order):
            if self.possible_writer(key, value) is None:
                return j
        return len(order)

    def possible_writer(self, key: int, value) -> int | None:
        """The ok or info transaction that appended ``value`` to ``key``, if any."""
        node = self.writer.get((key, value))
        if node is None or self.txns[node].type == "fail":
            return None
        return node

    def _index_appends(self, node: int, txn: Txn) -> None:
        for i, op in enumerate(txn.ops):
            if op.f == APPEND:
                self.writer[(op.key, op.value)] = node
                self.final[(node, op.key)] = op.value
                self.own_appends.setdefault((node, op.key), []).append((i, op.value))

    def _index_reads(self, node: int, txn: Txn, found: _Found) -> None:
        state: dict[int, tuple[bool, tuple]] = {}  # key -> (prefix known, expected list)
        own: dict[int, tuple] = {}  # key -> own appends so far
        for i, op in enumerate(txn.ops):
            if op.f == APPEND:
                known, expected = state.get(op.key, (False, ()))
                state[op.key] = (known, expected + (op.value,))
                own[op.key] = own.get(op.key, ()) + (op.value,)
                continue
            full = op.value
            if op.key in state and not _agrees(*state[op.key], full):
                found.add("internal", lambda: (
                    f"T{txn.id} read k{op.key} = {_show(full)} but its own earlier ops "
                    f"imply {_show_expected(*state[op.key])}"))
            state[op.key] = (True, full)
            self.reads.append(_Read(node, op.key, full, _external(full, own.get(op.key)), i))

    def _version_orders(self, found: _Found) -> dict[int, tuple]:
        observed: dict[int, dict[tuple, int]] = {}  # key -> distinct list -> first reader
        for read in self.reads:
            observed.setdefault(read.key, {}).setdefault(read.full, read.node)
        orders = {}
        for key in sorted(observed):
            states = sorted(observed[key], key=lambda s: (len(s), s))
            for shorter, longer in zip(states, states[1:]):
                if longer[:len(shorter)] != shorter:
                    found.add("incompatible-order", self._incompatible(
                        key, shorter, longer, observed[key]))
                    break
            orders[key] = tuple(dict.fromkeys(states[-1]))  # distinct, in order
        return orders

    def _incompatible(self, key, a, b, readers):
        def text():
            ta, tb = self.txns[readers[a]].id, self.txns[readers[b]].id
            return (f"k{key}: T{ta} read {_show(a)} and T{tb} read {_show(b)}; "
                    f"neither is a prefix of the other")
        return text

    def _unobserved_appends(self) -> dict[int, list[tuple[int, int]]]:
        """key -> [(node, value)] of ok/info appends no committed read observed."""
        unobserved: dict[int, list[tuple[int, int]]] = {}
        for (key, value), node in sorted(self.writer.items(), key=lambda kv: (kv[1], kv[0])):
            if self.txns[node].type == "fail":
                continue
            if value not in self.order_position.get(key, {}):
                unobserved.setdefault(key, []).append((node, value))
        return unobserved


def _external(full: tuple, mine: tuple | None) -> tuple:
    """The snapshot's state of a key: the read without the reader's own appends."""
    if mine and full[len(full) - len(mine):] == mine:
        return full[:len(full) - len(mine)]
    return full  # the own appends are missing: an internal anomaly, already reported


def _agrees(known: bool, expected: tuple, full: tuple) -> bool:
    if known:
        return full == expected
    # Only our own appends are known: the read must end with them.
    return len(full) >= len(expected) and full[len(full) - len(expected):] == expected


# --- anomalies seen in single reads ------------------------------------------------------

def _check_reads(index: _Index, found: _Found) -> None:
    for read in index.reads:
        txn = index.txns[read.node]
        if not index.is_clean_prefix(read.key, read.full):
            _check_values(index, found, read, txn)
        _check_future(index, found, read, txn)
        _check_intermediate(index, found, read, txn)


def _check_values(index: _Index, found: _Found, read: _Read, txn: Txn) -> None:
    """Duplicates, aborted reads (G1a) and garbage: the slow path, value by value."""
    where = f"T{txn.id} read k{read.key} = {_show(read.full)}"
    if len(set(read.full)) != len(read.full):
        found.add("duplicate-elements", f"{where}, which holds a value twice")
    aborted, garbage = [], []
    for value in read.full:
        node = index.writer.get((read.key, value))
        if node is None:
            garbage.append(value)
        elif index.txns[node].type == "fail":
            aborted.append((value, index.txns[node].id))
    if aborted:
        found.add("G1a", lambda: where + ", including " + ", ".join(
            f"{v} appended by T{t}, which failed" for v, t in aborted[:SHOW_VALUES_MAX]))
    if garbage:
        found.add("garbage-read", lambda: f"{where}, including {_show(garbage)}, "
                                          f"which no transaction appended to k{read.key}")


def _check_future(index: _Index, found: _Found, read: _Read, txn: Txn) -> None:
    later = [v for i, v in index.own_appends.get((read.node, read.key), ()) if i > read.position]
    if not later:
        return
    seen = set(read.full)
    future = [v for v in later if v in seen]
    if future:
        found.add("future-read", lambda: (
            f"T{txn.id} read k{read.key} = {_show(read.full)}, including {_show(future)}, "
            f"which T{txn.id} appends only later"))


def _check_intermediate(index: _Index, found: _Found, read: _Read, txn: Txn) -> None:
    if not read.external:
        return
    last = read.external[-1]
    node = index.possible_writer(read.key, last)
    if node is None or node == read.node:
        return
    final = index.final[(node, read.key)]
    if final != last:
        writer = index.txns[node].id
        found.add("G1b", lambda: (
            f"T{txn.id} read k{read.key} = {_show(read.external)}, ending at {last}, which "
            f"T{writer} appended before its final append {final} to k{read.key}"))


def _check_dirty_updates(index: _Index, found: _Found) -> None:
    """Elle's dirty-update: a committed append right after a failed one in a key's version
    order, info appends between them not telling either way (Elle's
    ``dirty-update-cases``; a value nobody appended, already garbage, counts as info)."""
    for key in sorted(index.version_order):
        before, values = "ok", []  # the initial, empty state is committed
        failed = None  # (node, value) of the failed append the run of values started at
        for value in index.version_order[key]:
            node = index.writer.get((key, value))
            kind = "info" if node is None else index.txns[node].type
            if kind == "info" or (kind == "fail" and before == "fail"):
                values.append(value)  # can't say yet, or still aborted state
                continue
            if kind == "ok" and before == "fail":
                found.add("dirty-update", _dirty_update_text(index, key, failed, node,
                                                             values + [value]))
            before, values = kind, [value]
            failed = (node, value) if kind == "fail" else None


def _dirty_update_text(index: _Index, key: int, failed: tuple[int, int], node: int,
                       values: list):
    def text():
        bad, ok = index.txns[failed[0]].id, index.txns[node].id
        between = f" (then {_show(values[1:-1])}, of unknown outcome)" if len(values) > 2 else ""
        return (f"k{key}: T{ok} appended {values[-1]} after {failed[1]}{between}, "
                f"appended by T{bad}, which failed")
    return text


def _check_lost_updates(index: _Index, found: _Found) -> None:
    """Two committed transactions read the same state of a key, then both appended to it."""
    groups: dict[tuple[int, tuple], list[int]] = {}
    first_read: dict[tuple[int, int], tuple] = {}
    for read in index.reads:
        first_read.setdefault((read.node, read.key), (read.position, read.full))
    for (node, key), (position, state) in first_read.items():
        appends = index.own_appends.get((node, key))
        if appends and appends[0][0] > position:
            groups.setdefault((key, state), []).append(node)
    for (key, state), nodes in sorted(groups.items()):
        if len(nodes) > 1:
            names = [f"T{index.txns[n].id}" for n in sorted(nodes)]
            found.add("lost-update", lambda: (
                f"{', '.join(names[:-1])} and {names[-1]} {'both' if len(names) == 2 else 'all'} "
                f"read k{key} = {_show(state)}, then appended to it"))


# --- dependencies ------------------------------------------------------------------------

def _dependencies(index: _Index) -> DependencyGraph:
    txns = index.txns
    graph = DependencyGraph(
        ids=[t.id for t in txns], invoke_ns=[t.invoke_ns for t in txns],
        complete_ns=[t.complete_ns for t in txns],
        committed=[t.type == "ok" for t in txns],
        possible=[t.type != "fail" for t in txns])
    for key in sorted(index.version_order):
        _write_write(index, graph, key)
    for read in index.reads:
        _read_edges(index, graph, read)
    return graph


def _write_write(index: _Index, graph: DependencyGraph, key: int) -> None:
    order = index.version_order[key]
    writers = [index.possible_writer(key, v) for v in order]
    for j in range(1, len(order)):
        if writers[j - 1] is not None and writers[j] is not None:
            graph.add(WW, writers[j - 1], writers[j], (key, order[j - 1], order[j]))
    if order and writers[-1] is not None:
        for node, value in index.unobserved.get(key, ()):
            graph.add(WW, writers[-1], node, (key, order[-1], value))


def _read_edges(index: _Index, graph: DependencyGraph, read: _Read) -> None:
    key, state = read.key, read.external
    last = state[-1] if state else None
    if last is not None:
        writer = index.possible_writer(key, last)
        if writer is not None:
            graph.add(WR, writer, read.node, (key, last))
    for node, value in _next_appends(index, key, last):
        graph.add(RW, read.node, node, (key, last, value))


def _next_appends(index: _Index, key: int, last) -> list[tuple[int, int]]:
    """The (node, value) appends that came right after state ``last`` (None: empty)."""
    order = index.version_order.get(key, ())
    j = -1 if last is None else index.order_position.get(key, {}).get(last)
    if j is None:
        return []  # a value outside the version order: already an anomaly
    if j + 1 < len(order):
        node = index.possible_writer(key, order[j + 1])
        return [] if node is None else [(node, order[j + 1])]
    return index.unobserved.get(key, [])


# --- real time ---------------------------------------------------------------------------

def _check_stale_reads(index: _Index, found: _Found) -> None:
    """An ok read that misses an append acknowledged before the reader was invoked."""
    later = {key: _earliest_acks(index, key) for key in _read_keys(index)}
    for read in index.reads:
        last = read.external[-1] if read.external else None
        order_position = index.order_position.get(read.key, {})
        j = -1 if last is None else order_position.get(last)
        if j is None:
            continue
        earliest = later[read.key][j + 1]
        txn = index.txns[read.node]
        if earliest is not None and earliest[0] < txn.invoke_ns:
            found.add("stale-read", _stale_text(read, txn, earliest))


def _read_keys(index: _Index) -> list[int]:
    return sorted({read.key for read in index.reads})


def _earliest_acks(index: _Index, key: int) -> list:
    """For each position j of the version order (and one past it), the earliest
    acknowledged append at or after j, unobserved appends included (they come last)."""
    order = index.version_order.get(key, ())
    tail = [(index.txns[n].complete_ns, index.txns[n].id, v)
            for n, v in index.unobserved.get(key, ()) if index.txns[n].type == "ok"]
    acks = [_ack(index, key, v) for v in order] + [min(tail) if tail else None]
    return list(accumulate(reversed(acks), _earlier))[::-1]


def _ack(index: _Index, key: int, value: int):
    node = index.writer.get((key, value))
    if node is None or index.txns[node].type != "ok":
        return None
    return (index.txns[node].complete_ns, index.txns[node].id, value)


def _earlier(a, b):
    if a is None:
        return b
    return a if b is None else min(a, b)


def _stale_text(read: _Read, txn: Txn, earliest):
    complete_ns, writer, value = earliest
    return lambda: (f"T{txn.id} (invoked at {txn.invoke_ns} ns) read k{read.key} = "
                    f"{_show(read.external)}, missing {value} appended by T{writer}, "
                    f"acknowledged at {complete_ns} ns")


def _rt_reduction_count(index: _Index) -> int:
    """Edges in the transitive reduction of the real-time order over ok/info transactions:
    ``T1 -rt-> T2`` is kept when no ok T3 ran entirely between T1's completion and T2's
    invocation."""
    done = sorted((t.complete_ns, t.invoke_ns) for t in index.txns if t.type == "ok")
    completes = [c for c, _ in done]
    latest_invoke = list(accumulate((i for _, i in done), max))
    count = 0
    for t in index.txns:
        if t.type == "fail":
            continue
        before = bisect_left(completes, t.invoke_ns)
        if before:
            count += before - bisect_left(completes, latest_invoke[before - 1])
    return count


# --- verdict -----------------------------------------------------------------------------

def _verdict(found: _Found, forbidden: frozenset, index: _Index, graph: DependencyGraph,
             realtime: bool, model: str) -> dict:
    names = sorted(found.counts)
    types = [t.type for t in index.txns]
    bad = [name for name in names if name in forbidden]
    return {
        "valid": not bad,
        "model": model,
        "realtime": realtime,
        "anomalies": {name: found.counts[name] for name in names},
        "witnesses": {name: found.witnesses[name] for name in names},
        "forbidden": bad,
        "allowed": [name for name in names if name not in forbidden],
        "counts": {
            "transactions": len(types), "ok": types.count("ok"),
            "fail": types.count("fail"), "info": types.count("info"),
            "edges": {WW: len(graph.edges[WW]), WR: len(graph.edges[WR]),
                      RW: len(graph.edges[RW]),
                      "rt": _rt_reduction_count(index) if realtime else 0},
        },
    }


def _show(values) -> str:
    values = list(values)
    if len(values) > SHOW_VALUES_MAX:
        return "[..., " + ", ".join(map(str, values[-SHOW_VALUES_MAX:])) + "]"
    return "[" + ", ".join(map(str, values)) + "]"


def _show_expected(known: bool, expected: tuple) -> str:
    return _show(expected) if known else "a list ending " + _show(expected)
