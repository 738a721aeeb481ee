"""White-box consistency oracle over a run's history, from the lab's own timestamps
and simulated true time.

It checks the properties that make the modelled system strong snapshot isolation:

1. first committer wins: no two committed transactions that wrote the same key have
   overlapping ``[t_start, t_commit]`` (the later one must start at or after the
   earlier one's commit);
2. snapshot reads: every storage read at ``t_start`` returned the newest version of
   its key committed at or before ``t_start`` (or nothing, when none exists);
3. real-time order: a transaction acknowledged before another began, in true time, has
   a commit time at or below the other's ``t_start`` (``realtime_violations``); and the
   visible consequence, a read that missed a commit acknowledged before its transaction
   began (``stale_reads``).

Properties 1 and 2 hold whatever the clocks do; 3 holds only while clocks stay within
their bounds (or commit-wait and ``t_start`` from ``latest`` absorb the error), which
is what the clock-skew lab measures. It is fed one call per attempt as the run goes and
judged once at the end (``check``); each violation comes with a short witness.
Reads of a transaction's own writes never reach storage and are not recorded here.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from itertools import accumulate

import numpy as np

WITNESSES_MAX = 5


NEVER = 1 << 62  # the acknowledgement time of a commit no client heard of


class Oracle:
    """Fed by the runtime: ``durable`` when a commit reaches its journal quorum (the
    commit point, whether or not any client hears of it), ``attempt`` when a client's
    attempt ends (its reads; ``acked_true_ns`` when it was told "committed")."""

    def __init__(self):
        self.durables: dict[int, list] = {}  # uid -> [t_start, t_commit, keys, acked_true_ns]
        self.acked_lost: list[int] = []  # acknowledged commits that never became durable
        self.writes: dict[int, list[tuple[int, int, int, int]]] = {}
        # Every storage read and every start, as columns (a run logs millions: a tuple
        # per read would cost ~100 bytes, a row of columns ~40). Keys may be wider than
        # 64 bits, so they are a list; the rest are int64 arrays.
        self.reads = _Columns("uid", "t_start", "version", "began")
        self.read_keys: list[int] = []
        self.starts = _Columns("began", "t_start", "uid")
        self.commits: list[tuple[int, int, int]] = []  # (acked_true_ns, t_commit, uid)
        # The bulk load's baseline kept as a sorted int64 array (no Python object per
        # row): each of these keys has a version at ``base_t_ns``, acknowledged at 0.
        self.base_keys = np.empty(0, np.int64)
        self.base_t_ns = 0

    def load(self, keys, t_ns: int, image_keys: np.ndarray | None = None) -> None:
        """The bulk load: every key has a version at ``t_ns``, acknowledged at time 0.
        ``image_keys`` (sorted, unique int64, none among ``keys``) are kept as one array."""
        for key in (keys.tolist() if hasattr(keys, "tolist") else keys):
            self.writes[key] = [(t_ns, 0, 0, 0)]
        if image_keys is not None and len(image_keys):
            assert not len(self.base_keys), "one bulk image per run"
            self.base_keys, self.base_t_ns = image_keys, t_ns

    def _loaded(self, key: int) -> bool:
        """Whether ``key`` is in the bulk image (and so has the load's version)."""
        keys = self.base_keys
        if not len(keys) or not -(1 << 63) <= key < (1 << 63):
            return False
        i = int(keys.searchsorted(key))
        return i < len(keys) and keys[i] == key

    def durable(self, uid: int, t_start_ns: int, t_commit_ns: int, keys) -> None:
        """A commit reached its journal quorum: it happened, acknowledged or not."""
        assert t_commit_ns > t_start_ns and uid not in self.durables
        self.durables[uid] = [t_start_ns, t_commit_ns, tuple(keys), NEVER]

    def forget(self, uid: int) -> None:
        """A commit that turned out not durable after all (its leader died before the
        quorum): it never happened. If a client was already told otherwise, that is
        an acknowledged commit lost, which ``check`` reports."""
        record = self.durables.pop(uid, None)
        if record is not None and record[3] != NEVER:
            self.acked_lost.append(uid)

    def attempt(self, uid: int, t_start_ns: int, began_true_ns: int,
                reads: list[tuple[int, int]], acked_true_ns: int | None = None) -> None:
        """One attempt as its client saw it: its storage reads, and when it was told
        "committed" (``acked_true_ns``; None when it was not)."""
        self.starts.append(began_true_ns, t_start_ns, uid)
        if reads:
            n = len(reads)
            keys, versions = zip(*reads)
            self.read_keys.extend(keys)
            columns = self.reads.columns
            columns[0].extend((uid,) * n)
            columns[1].extend((t_start_ns,) * n)
            columns[2].extend(versions)
            columns[3].extend((began_true_ns,) * n)
        if acked_true_ns is not None:
            record = self.durables.get(uid)
            if record is None:  # acknowledged, but its commit was lost (a control)
                self.acked_lost.append(uid)
                return
            assert acked_true_ns >= began_true_ns
            record[3] = acked_true_ns

    def acknowledged(self) -> list[tuple[int, int, tuple]]:
        """``(uid, t_commit, keys)`` of every commit a client was told of."""
        return [(uid, r[1], r[2]) for uid, r in self.durables.items() if r[3] != NEVER]

    def _index(self) -> None:
        writes = self.writes
        for uid, (t_start, t_commit, keys, acked) in self.durables.items():
            if acked != NEVER:
                self.commits.append((acked, t_commit, uid))
            record = (t_commit, t_start, uid, acked)
            for key in keys:
                history = writes.get(key)
                if history is None:
                    writes[key] = ([(self.base_t_ns, 0, 0, 0), record] if self._loaded(key)
                                   else [record])
                else:
                    history.append(record)

    def check(self) -> dict:
        self._index()
        for history in self.writes.values():
            history.sort()
        overlaps, overlap_witnesses = self._check_writers()
        wrong, read_witnesses = self._check_reads()
        late, realtime_witnesses = self._check_realtime()
        stale, stale_witnesses = self._check_stale_reads()
        return {
            "oracle": {
                "writers_checked": sum(len(h) for h in self.writes.values())
                + self._image_only_keys(),
                "reads_checked": len(self.read_keys),
                "overlapping_writers": overlaps,
                "wrong_reads": wrong,
                "realtime_violations": late,
                "stale_reads": stale,
                "witnesses": (overlap_witnesses + read_witnesses + realtime_witnesses
                              + stale_witnesses),
                "ok": overlaps == 0 and wrong == 0,
                "ok_realtime": late == 0 and stale == 0,
            }
        }

    def _image_only_keys(self) -> int:
        """Image keys no commit wrote: their one version (the load's) is checked too."""
        keys = self.base_keys
        if not len(keys):
            return 0
        written = np.fromiter((k for k in self.writes if -(1 << 63) <= k < (1 << 63)), np.int64)
        return len(keys) - int(np.isin(written, keys, assume_unique=True).sum())

    def _check_writers(self) -> tuple[int, list[str]]:
        count, witnesses = 0, []
        for key, history in self.writes.items():
            for (prev_commit, _, prev_uid, _), (commit, start, uid, _) in zip(history, history[1:]):
                if start < prev_commit:
                    count += 1
                    if len(witnesses) < WITNESSES_MAX:
                        witnesses.append(
                            f"key {key}: txn {uid} [t_start {start}, t_commit {commit}] overlaps "
                            f"txn {prev_uid} committed at {prev_commit}")
        return count, witnesses

    def _check_reads(self) -> tuple[int, list[str]]:
        commit_times = {key: [h[0] for h in history] for key, history in self.writes.items()}
        count, witnesses = 0, []
        for (uid, t_start, version_ts, _), key in zip(self.reads.rows(), self.read_keys):
            times = commit_times.get(key)
            expected = 0
            if times is None and self._loaded(key):
                times = [self.base_t_ns]
            if times:
                i = bisect_right(times, t_start)
                expected = times[i - 1] if i else 0
            if expected != version_ts:
                count += 1
                if len(witnesses) < WITNESSES_MAX:
                    witnesses.append(
                        f"key {key}: txn {uid} read at t_start {t_start} got version {version_ts}, "
                        f"newest committed at or before it is {expected}")
        return count, witnesses

    def _check_realtime(self) -> tuple[int, list[str]]:
        """Every start must be at or above every commit acknowledged before it began."""
        commits = sorted(self.commits)
        acked = [c[0] for c in commits]
        highest = list(accumulate((c[1] for c in commits), max))
        count, witnesses = 0, []
        for began, t_start, uid in self.starts.rows():
            i = bisect_left(acked, began)  # commits acknowledged strictly before it began
            if i and highest[i - 1] > t_start:
                count += 1
                if len(witnesses) < WITNESSES_MAX:
                    j = next(k for k in range(i) if commits[k][1] == highest[i - 1])
                    witnesses.append(
                        f"txn {uid} began at true {began} with t_start {t_start}, below "
                        f"t_commit {commits[j][1]} of txn {commits[j][2]} acknowledged at true "
                        f"{commits[j][0]}")
        return count, witnesses

    def _check_stale_reads(self) -> tuple[int, list[str]]:
        """A read that missed a commit of its key acknowledged before its txn began."""
        by_ack: dict[int, tuple] = {}
        count, witnesses = 0, []
        for (uid, _, version_ts, began), key in zip(self.reads.rows(), self.read_keys):
            history = self.writes.get(key)
            if history is None or len(history) < 2:
                continue  # only the load's version: nothing newer to miss
            index = by_ack.get(key)
            if index is None:
                ordered = sorted((h[3], h[0], h[2]) for h in history)
                index = by_ack[key] = ([o[0] for o in ordered],
                                       list(accumulate((o[1] for o in ordered), max)), ordered)
            acked, highest, ordered = index
            i = bisect_left(acked, began)
            if i and highest[i - 1] > version_ts:
                count += 1
                if len(witnesses) < WITNESSES_MAX:
                    missed = next(o for o in ordered[:i] if o[1] == highest[i - 1])
                    witnesses.append(
                        f"key {key}: txn {uid} (began at true {began}) read version {version_ts}, "
                        f"missing version {missed[1]} of txn {missed[2]} acknowledged at true "
                        f"{missed[0]}")
        return count, witnesses


class _Columns:
    """Rows of int64 fields kept as one ``array('q')`` per field (8 bytes a value)."""

    __slots__ = ("names", "columns")

    def __init__(self, *names: str):
        self.names = names
        self.columns = tuple(array("q") for _ in names)

    def append(self, *values: int) -> None:
        for column, value in zip(self.columns, values):
            column.append(value)

    def __len__(self) -> int:
        return len(self.columns[0])

    def rows(self):
        """The rows as tuples, in the order appended."""
        return zip(*self.columns)
