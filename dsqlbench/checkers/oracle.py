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

from bisect import bisect_left, bisect_right
from itertools import accumulate

WITNESSES_MAX = 5


class Oracle:
    def __init__(self):
        # key -> [(t_commit, t_start, uid, acked_true_ns)]
        self.writes: dict[int, list[tuple[int, int, int, int]]] = {}
        self.reads_log: list[tuple[int, int, int, int, int]] = []  # (uid, t_start, key, version, began)
        self.starts: list[tuple[int, int, int]] = []  # (began_true_ns, t_start, uid)
        self.commits: list[tuple[int, int, int]] = []  # (acked_true_ns, t_commit, uid)

    def load(self, keys, t_ns: int) -> None:
        """The bulk load: every key has a version at ``t_ns``, acknowledged at time 0."""
        for key in (keys.tolist() if hasattr(keys, "tolist") else keys):
            self.writes[key] = [(t_ns, 0, 0, 0)]

    def attempt(self, uid: int, t_start_ns: int, began_true_ns: int,
                reads: list[tuple[int, int]], t_commit_ns: int = -1, keys=(),
                acked_true_ns: int = 0) -> None:
        """One attempt: its storage reads, and its writes if it committed (t_commit >= 0)."""
        self.starts.append((began_true_ns, t_start_ns, uid))
        log = self.reads_log
        for key, version_ts in reads:
            log.append((uid, t_start_ns, key, version_ts, began_true_ns))
        if t_commit_ns < 0:
            return
        assert t_commit_ns > t_start_ns and acked_true_ns >= began_true_ns
        self.commits.append((acked_true_ns, t_commit_ns, uid))
        writes = self.writes
        record = (t_commit_ns, t_start_ns, uid, acked_true_ns)
        for key in keys:
            history = writes.get(key)
            if history is None:
                writes[key] = [record]
            else:
                history.append(record)

    def check(self) -> dict:
        for history in self.writes.values():
            history.sort()
        overlaps, overlap_witnesses = self._check_writers()
        wrong, read_witnesses = self._check_reads()
        late, realtime_witnesses = self._check_realtime()
        stale, stale_witnesses = self._check_stale_reads()
        return {
            "oracle": {
                "writers_checked": sum(len(h) for h in self.writes.values()),
                "reads_checked": len(self.reads_log),
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
        for uid, t_start, key, version_ts, _ in self.reads_log:
            times = commit_times.get(key)
            expected = 0
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
        for began, t_start, uid in self.starts:
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
        by_ack = {}
        for key, history in self.writes.items():
            ordered = sorted((h[3], h[0], h[2]) for h in history)
            by_ack[key] = ([o[0] for o in ordered], list(accumulate((o[1] for o in ordered), max)),
                           ordered)
        count, witnesses = 0, []
        for uid, _, key, version_ts, began in self.reads_log:
            acked, highest, ordered = by_ack.get(key, ((), (), ()))
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
