"""Recovery: storage rebuilt from its latest snapshot plus journal replay; journal trimming.

Role in the pipeline: when a storage replica restarts, the runtime calls
``restore_storage`` with the shard's latest snapshot (``SnapshotStore``) and what the
journals still hold after it, up to the crossbar's released watermark; the replica then
follows the crossbar's live batches from there. Journals are trimmed with
``trim_point``, only below what every subscriber has consumed and a snapshot covers.
``model_from_journals`` is the specification: a replica built by replaying every
journal from the start, which a restored replica must equal.

Invariants:
- replay is idempotent: records at or below the replica's applied watermark are
  skipped (the snapshot has them), duplicates are applied once, so replaying an entry
  the snapshot holds, or replaying everything twice, changes nothing;
- replay never goes past a watermark every journal has passed (the crossbar's rule),
  so the crossbar's later batches, all above it, continue the replica in order;
- records are applied in (t_commit, journal index) order, as the crossbar releases
  them; two different post-images of one key at one time are a broken history and
  raise;
- a trim point is never below the journal's base, above its end, above any
  subscriber's consumed position or above what a snapshot covers.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence

from dsqlbench.components.journal import Journal
from dsqlbench.components.messages import JournalEntry, StorageBatch
from dsqlbench.components.routing import KeyRanges
from dsqlbench.components.snapshot import SnapshotError, SnapshotStore
from dsqlbench.components.storage import StorageReplica

# A replay record: (t_commit_ns, journal index or -1, key, value).
_Record = tuple[int, int, int, "bytes | None"]


# -- restore ---------------------------------------------------------------------------


def restore_storage(store: SnapshotStore, shard: int, journal_entries_after: Iterable,
                    ranges: KeyRanges, *, upto_ns: int | None = None,
                    journal_count: int | None = None,
                    replica_name: str | None = None) -> StorageReplica:
    """The shard's latest snapshot (or an empty replica) plus a replay.

    ``journal_entries_after`` holds either ``(journal index, JournalEntry)`` pairs
    (heartbeats included; entries older than the snapshot may be in it) or
    ``StorageBatch``es the crossbar already merged. See ``replay_into`` for how far
    the replay goes (``upto_ns``, ``journal_count``). The bulk load before the run is
    in no journal, so the runtime snapshots every shard right after it; without any
    snapshot the replica is rebuilt from the journals alone.
    """
    info = store.latest_storage_snapshot(shard)
    name = replica_name if replica_name is not None else f"storage-{shard}"
    if info is None:
        replica = StorageReplica(shard, name)
    else:
        replica = store.read_storage_snapshot(info, name)
    replay_into(replica, journal_entries_after, ranges, upto_ns=upto_ns,
                journal_count=journal_count)
    return replica


def replay_into(replica: StorageReplica, replay: Iterable, ranges: KeyRanges, *,
                upto_ns: int | None = None, journal_count: int | None = None) -> int:
    """Apply what ``replay`` holds for the replica's shard above its applied watermark.

    The replica ends at watermark ``upto_ns``: every record above its current
    watermark and at or below ``upto_ns`` is applied, and the caller promises that
    ``replay`` holds every such record (the runtime passes the crossbar's released
    watermark). Without ``upto_ns``: for journal pairs, the crossbar's watermark over
    journals ``0 .. journal_count - 1`` (the lowest last timestamp seen; a journal
    with no entry in ``replay`` holds it at 0); for batches, their highest watermark.
    Returns how many records were applied; 0 when the replica was already there.
    """
    items = list(replay)
    batches = [i for i in items if isinstance(i, StorageBatch)]
    if batches and len(batches) != len(items):
        raise ValueError("replay mixes StorageBatches with (journal, entry) pairs")
    shard = replica.shard
    if batches:
        records = _records_from_batches(batches, shard)
        target_ns = upto_ns if upto_ns is not None else max(
            (b.watermark_ns for b in batches if b.shard == shard), default=0)
    else:
        records = _records_from_entries(items, shard, ranges)
        target_ns = upto_ns if upto_ns is not None else _journals_watermark(items, journal_count)
    return _apply_above_watermark(replica, records, target_ns)


def _apply_above_watermark(replica: StorageReplica, records: list[_Record],
                           target_ns: int) -> int:
    floor_ns = replica.applied_watermark_ns
    if target_ns <= floor_ns:
        return 0  # already there: replaying again changes nothing
    fresh = [r for r in records if floor_ns < r[0] <= target_ns]
    replica.apply(StorageBatch(
        replica.shard, target_ns, tuple(r[2] for r in fresh), tuple(r[0] for r in fresh),
        tuple(r[3] for r in fresh)))
    return len(fresh)


def _journals_watermark(items: list, journal_count: int | None) -> int:
    """Crossbar rule: the lowest, over journals, of the last timestamp seen."""
    if journal_count is None:
        raise ValueError("replaying journal entries needs upto_ns or journal_count")
    last_seen_ns = [0] * journal_count
    for journal, entry in items:
        if not 0 <= journal < journal_count:
            raise ValueError(f"journal index {journal} outside 0..{journal_count - 1}")
        last_seen_ns[journal] = max(last_seen_ns[journal], entry.ts_ns)
    return min(last_seen_ns)


def _records_from_entries(items: list, shard: int, ranges: KeyRanges) -> list[_Record]:
    """This shard's post-images, each entry once, in (ts, journal index) order."""
    entries: dict[tuple[int, int], JournalEntry] = {}
    for journal, entry in items:
        assert isinstance(entry, JournalEntry), f"not a journal entry: {entry!r}"
        seen = entries.setdefault((entry.ts_ns, journal), entry)
        if seen != entry:  # a journal's timestamps are unique: same ts, same entry
            raise ValueError(f"journal {journal} has two different entries at {entry.ts_ns}")
    records: list[_Record] = []
    for (ts_ns, journal), entry in sorted(entries.items(), key=lambda item: item[0]):
        for key, value in entry.writes:
            if ranges.shard_of(key) == shard:
                records.append((ts_ns, journal, key, value))
    _check_one_image_per_version(records)
    return records


def _records_from_batches(batches: list[StorageBatch], shard: int) -> list[_Record]:
    """This shard's records, each (key, ts) once, in ts order (key order within a ts)."""
    unique: dict[tuple[int, int], bytes | None] = {}
    for batch in batches:
        if batch.shard != shard:
            continue
        for key, ts_ns, value in zip(batch.keys, batch.ts, batch.values):
            seen = unique.setdefault((ts_ns, key), value)
            if seen != value:
                raise ValueError(f"two post-images of key {key} at {ts_ns}")
    return [(ts_ns, -1, key, value) for (ts_ns, key), value in sorted(unique.items())]


def _check_one_image_per_version(records: list[_Record]) -> None:
    # Conflict checks make (key, t_commit) unique across journals; a repeat is a bug.
    seen: dict[tuple[int, int], None] = {}
    for ts_ns, journal, key, _ in records:
        if (key, ts_ns) in seen:
            raise ValueError(f"key {key} written twice at {ts_ns} (journal {journal})")
        seen[(key, ts_ns)] = None


# -- the reference model -----------------------------------------------------------------


def model_from_journals(journals: Sequence, shard: int, ranges: KeyRanges, upto_ns: int, *,
                        load: tuple[Sequence[int], Sequence, int] | None = None,
                        replica_name: str | None = None) -> StorageReplica:
    """The replica that replaying every journal from the start gives (the specification).

    ``journals[j]`` is journal ``j``: an untrimmed ``Journal`` or its entries from
    position 0 (see ``journal_from_start`` for a trimmed one). ``load`` is the bulk load
    before the run, ``(keys, values, t_ns)``. Entries up to ``upto_ns`` are merged in
    (t_commit, journal index) order and routed by ``ranges``; deliberately written
    without the replay code it checks.
    """
    replica = StorageReplica(shard, replica_name or f"model-{shard}")
    if load is not None:
        keys, values, load_ns = load
        mine = [(k, v) for k, v in zip(keys, values) if ranges.shard_of(k) == shard]
        replica.load([k for k, _ in mine], [v for _, v in mine], load_ns)
    merged = sorted(((entry.ts_ns, j, entry) for j, journal in enumerate(journals)
                     for entry in _entries_from_start(journal) if entry.ts_ns <= upto_ns),
                    key=lambda item: (item[0], item[1]))
    keys, ts, values = [], [], []
    for ts_ns, _, entry in merged:
        for key, value in entry.writes:
            if ranges.shard_of(key) == shard:
                keys.append(key)
                ts.append(ts_ns)
                values.append(value)
    replica.apply(StorageBatch(shard, max(upto_ns, replica.applied_watermark_ns),
                               tuple(keys), tuple(ts), tuple(values)))
    return replica


def _entries_from_start(journal) -> Sequence[JournalEntry]:
    if isinstance(journal, Journal):
        if journal.base_position != 0:
            raise ValueError(f"journal {journal.index} is trimmed below "
                             f"{journal.base_position}; use journal_from_start")
        return journal.entries
    return journal


def journal_from_start(store: SnapshotStore, journal: Journal) -> list[JournalEntry]:
    """Every entry of ``journal`` from position 0: archived segments, then the live log.

    Raises ``SnapshotError`` when part of the history is in neither (a segment was
    pruned, or the journal was trimmed past what was archived).
    """
    entries: list[JournalEntry] = []
    for info in store.list_journal_snapshots(journal.index):
        segment = store.read_journal_snapshot(info)
        if segment.first_position > len(entries):
            raise SnapshotError(f"journal {journal.index}: positions {len(entries)} to "
                                f"{segment.first_position} are not archived")
        entries.extend(segment.entries[len(entries) - segment.first_position:])
    if journal.base_position > len(entries):
        raise SnapshotError(f"journal {journal.index}: trimmed to {journal.base_position} "
                            f"but archived only up to {len(entries)}")
    entries.extend(journal.read_from(max(len(entries), journal.base_position)))
    return entries


# -- trimming --------------------------------------------------------------------------


def trim_point(journal: Journal, consumed_positions_by_subscriber: Mapping[str, int],
               snapshot_covers_position: int) -> int:
    """The position below which ``journal`` may be trimmed (``journal.trim_before``).

    ``consumed_positions_by_subscriber`` maps each subscriber to the first position it
    has not consumed yet; ``snapshot_covers_position`` is the first position no
    snapshot holds. The result is the lowest of those, kept within the journal's live
    range. A journal with no subscriber yet keeps everything: one that has not
    registered must not find its entries gone.
    """
    base = journal.base_position
    end = base + len(journal.entries)
    if not consumed_positions_by_subscriber:
        return base
    for subscriber, position in sorted(consumed_positions_by_subscriber.items()):
        if position > end:
            raise ValueError(f"journal {journal.index}: subscriber {subscriber} consumed "
                             f"{position}, beyond the end {end}")
    point = min(min(consumed_positions_by_subscriber.values()), snapshot_covers_position, end)
    return max(base, point)


def first_position_after(journal: Journal, ts_ns: int) -> int:
    """The first position whose entry is above ``ts_ns`` (the end if none is).

    Entries below it are at or below ``ts_ns``, so storage snapshots at a watermark of
    at least ``ts_ns`` on every shard cover them.
    """
    return journal.base_position + bisect_right(journal.entries, ts_ns, key=lambda e: e.ts_ns)


def storage_snapshots_cover_ns(store: SnapshotStore, shards: Iterable[int]) -> int:
    """The watermark that every listed shard's latest snapshot reaches (0 if one has none)."""
    covered_ns = None
    for shard in shards:
        info = store.latest_storage_snapshot(shard)
        watermark_ns = 0 if info is None else info.applied_watermark_ns
        covered_ns = watermark_ns if covered_ns is None else min(covered_ns, watermark_ns)
    return covered_ns or 0
