"""Recovery: snapshot plus replay equals a replay from the start; idempotence; trimming."""

import tempfile

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dsqlbench.components.crossbar import Crossbar
from dsqlbench.components.journal import Journal
from dsqlbench.components.messages import JournalEntry, StorageBatch
from dsqlbench.components.recovery import (
    first_position_after,
    journal_from_start,
    model_from_journals,
    replay_into,
    restore_storage,
    storage_snapshots_cover_ns,
    trim_point,
)
from dsqlbench.components.routing import KeyRanges
from dsqlbench.components.snapshot import SnapshotError, SnapshotStore
from dsqlbench.components.storage import StorageReplica
from dsqlbench.kernels.merge import merge_until

LOAD_NS = 1


def state(replica):
    return (replica.shard, replica.applied_watermark_ns, replica.versions,
            replica.sorted_keys, set(replica.multi_version_keys))


def reads(replica, keys, times_ns):
    """What every read at the given times answers: the observable state (a deleted key
    and one trimmed away entirely both read as absent)."""
    answers = {(k, t): replica.read(k, t) for k in keys for t in times_ns}
    return {at: None if v is None or v[1] is None else v for at, v in answers.items()}


# -- a random multi-journal history, run through the crossbar ------------------------------


@st.composite
def histories(draw):
    """Journals with ties across journals, heartbeats, deletes and wide keys.

    Conflict checks make (key, t_commit) unique across journals; ties of different keys
    at one timestamp are allowed and exercise the journal-index tie-break.
    """
    journal_count = draw(st.integers(1, 3))
    pool = draw(st.lists(st.one_of(st.integers(1, 2**63 - 1), st.integers(2**64, 2**90)),
                         min_size=3, max_size=10, unique=True))
    written_at: dict[int, set] = {}
    journals = []
    txn_id = 0
    for j in range(journal_count):
        journal = Journal(j, 3)
        ts = LOAD_NS
        for _ in range(draw(st.integers(1, 10))):
            ts += draw(st.integers(1, 4))
            keys = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))
            taken = written_at.setdefault(ts, set())
            keys = [k for k in keys if k not in taken]
            taken.update(keys)
            writes = tuple((k, draw(st.one_of(st.none(), st.binary(max_size=4)))) for k in keys)
            txn_id += 1
            journal.append(JournalEntry(ts, txn_id if writes else -1, writes, ts))
        journals.append(journal)
    end_ns = 1 + max(journal.last_ts_ns for journal in journals)
    for journal in journals:  # idle journals heartbeat, so the watermark moves on
        journal.append(JournalEntry(end_ns, -1))
    loaded = pool[:draw(st.integers(0, len(pool)))]
    load = (loaded, [b"L%d" % i for i in range(len(loaded))], LOAD_NS)
    ranges = KeyRanges.split_evenly(pool, draw(st.integers(1, 3)))
    return journals, load, ranges


class LiveRun:
    """Journals delivered to the crossbar in random chunks, batches applied to replicas."""

    def __init__(self, journals, load, ranges, store):
        self.journals, self.ranges, self.store = journals, ranges, store
        self.crossbar = Crossbar(len(journals), ranges, merge_until)
        self.sent = [0] * len(journals)
        self.batches: list[StorageBatch] = []
        self.replicas = []
        for shard in range(ranges.count):
            replica = StorageReplica(shard, f"storage-{shard}")
            mine = [(k, v) for k, v in zip(*load[:2]) if ranges.shard_of(k) == shard]
            replica.load([k for k, _ in mine], [v for _, v in mine], LOAD_NS)
            self.replicas.append(replica)
        self.snapshot()  # the bulk load is in no journal: snapshot it first

    def deliver(self, journal, count):
        entries = self.journals[journal].entries[self.sent[journal]:self.sent[journal] + count]
        self.sent[journal] += len(entries)
        self.crossbar.receive(journal, entries)
        _, batches = self.crossbar.release()
        for replica, batch in zip(self.replicas, batches):
            if batch.watermark_ns > replica.applied_watermark_ns:
                replica.apply(batch)
        self.batches.extend(batches)

    def snapshot(self):
        for replica in self.replicas:
            self.store.write_storage_snapshot(replica, replica.name)

    @property
    def upto_ns(self):
        return self.crossbar.released_watermark_ns


def run_history(data, journals, load, ranges, store, trim_horizon_ns=None):
    """Phases of deliveries (journals in a random order, random chunk sizes); the
    replicas take a snapshot at the end of some phases, and a last phase follows."""
    run = LiveRun(journals, load, ranges, store)
    phases = data.draw(st.integers(2, 5))
    snapshot_phases = data.draw(st.sets(st.integers(0, phases - 2), min_size=1, max_size=2))
    for phase in range(phases):
        for journal in data.draw(st.permutations(range(len(journals)))):
            run.deliver(journal, data.draw(st.integers(1, 5)))
        if trim_horizon_ns is not None:
            for replica in run.replicas:
                replica.trim(min(trim_horizon_ns, replica.applied_watermark_ns))
        if phase in snapshot_phases:
            run.snapshot()
    return run


def pairs(journals, positions=None):
    """(journal index, entry) for every entry from the given positions on."""
    return [(j, entry) for j, journal in enumerate(journals)
            for entry in journal.read_from(positions[j] if positions else 0)]


@settings(max_examples=60, deadline=None)
@given(histories(), st.data())
def test_restore_equals_a_replay_from_the_start_on_every_shard(history, data):
    journals, load, ranges = history
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(folder)
        run = run_history(data, journals, load, ranges, store)
        upto_ns = run.upto_ns
        for shard in range(ranges.count):
            expected = state(model_from_journals(journals, shard, ranges, upto_ns, load=load))
            assert state(run.replicas[shard]) == expected  # the live path agrees too
            snapshot_ns = store.latest_storage_snapshot(shard).applied_watermark_ns
            event(f"replay after the snapshot: {upto_ns > snapshot_ns > LOAD_NS}")
            event(f"shards: {ranges.count}, journals: {len(journals)}")
            after = [first_position_after(j, snapshot_ns) for j in journals]
            replays = {
                "after the snapshot": pairs(journals, after),
                "from the start (older than the snapshot)": pairs(journals),
                "everything twice": pairs(journals) + pairs(journals, after),
                "merged batches, twice": run.batches + run.batches,
            }
            for how, replay in replays.items():
                restored = restore_storage(store, shard, replay, ranges, upto_ns=upto_ns)
                assert state(restored) == expected, how
                assert replay_into(restored, replay, ranges, upto_ns=upto_ns) == 0, how
                assert state(restored) == expected, f"{how}, replayed again"
            # What the crossbar was sent fixes the watermark by itself (crossbar rule).
            sent = [(j, e) for j, journal in enumerate(journals)
                    for e in journal.entries[:run.sent[j]]]
            restored = restore_storage(store, shard, sent, ranges, journal_count=len(journals))
            assert state(restored) == expected


@settings(max_examples=30, deadline=None)
@given(histories(), st.integers(LOAD_NS, 30), st.data())
def test_restore_of_a_trimmed_replica_answers_every_read_the_model_does(history, horizon_ns,
                                                                          data):
    journals, load, ranges = history
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(folder)
        run = run_history(data, journals, load, ranges, store, trim_horizon_ns=horizon_ns)
        upto_ns = run.upto_ns
        times_ns = range(min(horizon_ns, upto_ns), upto_ns + 1)
        for shard in range(ranges.count):
            model = model_from_journals(journals, shard, ranges, upto_ns, load=load)
            restored = restore_storage(store, shard, pairs(journals), ranges, upto_ns=upto_ns)
            keys = sorted(set(model.versions) | set(restored.versions))
            assert reads(restored, keys, times_ns) == reads(model, keys, times_ns)


# -- replay rules, by example -------------------------------------------------------------


def entry(ts, *writes, txn=None):
    return JournalEntry(ts, ts if txn is None else txn, tuple(writes))


def test_replay_skips_what_the_replica_has_and_stops_at_the_watermark():
    ranges = KeyRanges([100])
    replica = StorageReplica(0, "storage-0")
    replica.load([1], [b"a"], 1)
    replica.apply(StorageBatch(0, 20, (1,), (20,), (b"a20",)))
    replay = [(0, entry(20, (1, b"a20"))), (0, entry(30, (1, b"a30"), (150, b"x"))),
              (1, entry(30, (2, b"b30"))), (0, entry(40, (1, b"a40"))), (1, JournalEntry(35, -1))]
    assert replay_into(replica, replay, ranges, journal_count=2) == 2  # up to min(40, 35)
    assert replica.applied_watermark_ns == 35
    assert replica.versions[1] == [(1, b"a"), (20, b"a20"), (30, b"a30")]
    assert replica.versions[2] == [(30, b"b30")] and 150 not in replica.versions
    assert replay_into(replica, replay, ranges, journal_count=3) == 0  # journal 2 silent


def test_replay_refuses_broken_or_ambiguous_input():
    ranges = KeyRanges([])
    replica = StorageReplica(0, "storage-0")
    with pytest.raises(ValueError, match="upto_ns or journal_count"):
        replay_into(replica, [(0, entry(5, (1, b"x")))], ranges)
    with pytest.raises(ValueError, match="two different entries"):
        replay_into(replica, [(0, entry(5, (1, b"x"))), (0, entry(5, (1, b"y")))], ranges,
                    upto_ns=9)
    with pytest.raises(ValueError, match="written twice"):
        replay_into(replica, [(0, entry(5, (1, b"x"))), (1, entry(5, (1, b"x")))], ranges,
                    upto_ns=9)
    with pytest.raises(ValueError, match="mixes"):
        replay_into(replica, [StorageBatch(0, 5, (), (), ()), (0, entry(5))], ranges, upto_ns=9)
    with pytest.raises(ValueError, match="two post-images"):
        replay_into(replica, [StorageBatch(0, 5, (1,), (5,), (b"x",)),
                              StorageBatch(0, 5, (1,), (5,), (b"y",))], ranges)
    assert replica.applied_watermark_ns == 0 and not replica.versions


def test_restore_without_any_snapshot_replays_into_an_empty_replica(tmp_path):
    store = SnapshotStore(str(tmp_path))
    journal = Journal(0, 3)
    journal.append(entry(5, (1, b"x")))
    journal.append(entry(9, (1, None)))
    restored = restore_storage(store, 0, pairs([journal]), KeyRanges([]), journal_count=1)
    assert state(restored) == state(model_from_journals([journal], 0, KeyRanges([]), 9))
    assert restored.read(1, 9) == (9, None)


# -- trimming ----------------------------------------------------------------------------


def journal_with(count, base=0):
    journal = Journal(0, 3)
    for i in range(count):
        journal.append(entry(10 * (i + 1), (i, b"v")))
    journal.trim_before(base)
    return journal


def test_trim_point_is_the_lowest_of_consumers_and_snapshot():
    journal = journal_with(10, base=2)
    assert trim_point(journal, {"crossbar": 8, "archiver": 6}, 7) == 6
    assert trim_point(journal, {"crossbar": 8}, 5) == 5  # the snapshot holds less
    assert trim_point(journal, {"crossbar": 1}, 9) == 2  # never below the base
    assert trim_point(journal, {"crossbar": 10}, 99) == 10  # never past the end
    assert trim_point(journal, {}, 9) == 2  # nobody registered: keep everything
    with pytest.raises(ValueError, match="beyond the end"):
        trim_point(journal, {"crossbar": 11}, 9)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12), st.integers(0, 12),
       st.dictionaries(st.sampled_from(["crossbar", "archiver", "replica"]),
                       st.integers(0, 12)),
       st.integers(0, 20))
def test_trimming_never_drops_what_is_needed_or_unsaved(count, base, consumed, covers):
    journal = journal_with(count, base=min(base, count))
    consumed = {name: max(p, journal.base_position) for name, p in consumed.items()
                if p <= count}
    point = trim_point(journal, consumed, covers)
    assert journal.base_position <= point <= count
    if point > journal.base_position:  # anything trimmed is consumed by all and saved
        assert consumed and all(point <= p for p in consumed.values()) and point <= covers
    # ... and it is the highest such point.
    best = min([*consumed.values(), covers, count]) if consumed else journal.base_position
    assert point == max(journal.base_position, best)


def test_first_position_after_finds_what_storage_snapshots_cover():
    journal = journal_with(5, base=1)  # ts 20, 30, 40, 50 at positions 1..4
    assert first_position_after(journal, 0) == 1
    assert first_position_after(journal, 30) == 3
    assert first_position_after(journal, 35) == 3
    assert first_position_after(journal, 50) == 5


def test_lifecycle_snapshot_archive_trim_crash_restore(tmp_path):
    """Snapshot storage, archive and trim the journals, lose a replica, rebuild it."""
    store = SnapshotStore(str(tmp_path))
    ranges = KeyRanges([2**64])
    journals = [Journal(0, 3), Journal(1, 3)]
    for i in range(40):
        journal = journals[i % 2]
        journal.append(entry(10 + i, (i % 7, b"%d" % i), (2**64 + i % 5, None if i % 4 else b"w")))
    run = LiveRun(journals, ([], [], LOAD_NS), ranges, store)
    for step in range(6):
        run.deliver(step % 2, 5)
    run.snapshot()
    originals = [list(journal.entries) for journal in journals]
    covered_ns = storage_snapshots_cover_ns(store, range(ranges.count))
    assert covered_ns == run.upto_ns
    for j, journal in enumerate(journals):
        store.write_journal_snapshot(journal, run.sent[j])
        covers = min(first_position_after(journal, covered_ns),
                     store.journal_covered_position(j))
        point = trim_point(journal, {"crossbar": run.sent[j]}, covers)
        assert point > 0
        journal.trim_before(point)
    run.deliver(0, 10)
    run.deliver(1, 10)
    lost = 1
    replay = [(j, e) for j, journal in enumerate(journals)
              for e in journal.read_from(journal.base_position)]
    restored = restore_storage(store, lost, replay, ranges, upto_ns=run.upto_ns)
    full = [journal_from_start(store, journal) for journal in journals]
    assert full == originals  # archive plus live log: the whole history
    expected = model_from_journals(full, lost, ranges, run.upto_ns)
    assert state(restored) == state(expected) == state(run.replicas[lost])


def test_journal_from_start_refuses_a_gap(tmp_path):
    store = SnapshotStore(str(tmp_path))
    journal = journal_with(10)
    store.write_journal_snapshot(journal, 4)
    journal.trim_before(6)  # trimmed past what was archived
    with pytest.raises(SnapshotError, match="archived only up to 4"):
        journal_from_start(store, journal)
    with pytest.raises(ValueError, match="trimmed"):
        model_from_journals([journal], 0, KeyRanges([]), 100)
