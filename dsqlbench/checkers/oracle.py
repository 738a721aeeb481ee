"""White-box consistency oracle over a run's history, from the lab's own timestamps.

It checks the two properties that make the modelled system snapshot isolation:

1. first committer wins: no two committed transactions that wrote the same key have
   overlapping ``[t_start, t_commit]`` (the later one must start at or after the
   earlier one's commit);
2. snapshot reads: every storage read at ``t_start`` returned the newest version of
   its key committed at or before ``t_start`` (or nothing, when none exists).

It is fed as the run goes (``load``, ``committed``, ``reads``) and judged once at the
end (``check``). A violation is reported with a short witness a person can follow; the
runner fails loudly on any. Reads of a transaction's own writes never reach storage
and are not recorded here.
"""

from __future__ import annotations

from bisect import bisect_right

WITNESSES_MAX = 5


class Oracle:
    def __init__(self):
        self.writes: dict[int, list[tuple[int, int, int]]] = {}  # key -> [(t_commit, t_start, uid)]
        self.reads_log: list[tuple[int, int, int, int]] = []  # (uid, t_start, key, version_ts)
        self.loaded_ts_ns = 0

    def load(self, keys, t_ns: int) -> None:
        """The bulk load: every key has a version at ``t_ns``."""
        self.loaded_ts_ns = t_ns
        for key in keys.tolist():
            self.writes[key] = [(t_ns, 0, 0)]

    def committed(self, uid: int, t_start_ns: int, t_commit_ns: int, keys) -> None:
        assert t_commit_ns > t_start_ns
        writes = self.writes
        for key in keys:
            history = writes.get(key)
            if history is None:
                writes[key] = [(t_commit_ns, t_start_ns, uid)]
            else:
                history.append((t_commit_ns, t_start_ns, uid))

    def reads(self, uid: int, t_start_ns: int, reads: list[tuple[int, int]]) -> None:
        log = self.reads_log
        for key, version_ts in reads:
            log.append((uid, t_start_ns, key, version_ts))

    def check(self) -> dict:
        overlaps, overlap_witnesses = self._check_writers()
        wrong, read_witnesses = self._check_reads()
        return {
            "oracle": {
                "writers_checked": sum(len(h) for h in self.writes.values()),
                "reads_checked": len(self.reads_log),
                "overlapping_writers": overlaps,
                "wrong_reads": wrong,
                "witnesses": overlap_witnesses + read_witnesses,
                "ok": overlaps == 0 and wrong == 0,
            }
        }

    def _check_writers(self) -> tuple[int, list[str]]:
        count, witnesses = 0, []
        for key, history in self.writes.items():
            history.sort()
            for (prev_commit, _, prev_uid), (commit, start, uid) in zip(history, history[1:]):
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
        for uid, t_start, key, version_ts in self.reads_log:
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
