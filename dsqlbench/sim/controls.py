"""Deliberately broken variants of the system, for tests of the checkers only.

A checker that never fails proves nothing. Each control here breaks one guarantee the
way a real bug would, and the tests (``tests/sim/test_controls.py``) show that the
white-box oracle and the black-box Elle checker both catch it. Controls are selectable
only from Python (a context manager that patches a class for its duration); no config
key, command-line flag or environment variable reaches them, so no run can use one by
accident.

- ``no_first_committer_wins``: the adjudicator commits every write set, conflicts or
  not (lost updates, overlapping writers).
- ``crossbar_above_watermark``: the crossbar releases every entry it has seen and claims
  the highest timestamp seen as its watermark, not the lowest, so storage serves reads
  at times some journal has not reached yet (reads miss commits below their snapshot).
- A QP trusting a lying clock needs no patch: it is a clock configured beyond its bound
  with ``t_start_from = "now"`` (the skew lab), and the same tests cover it.
- ``ack_before_quorum``, ``leases_without_fencing``, ``fragments_without_checksums``:
  the durability guarantees of the fault lab (``tests/sim/test_faults.py``).
"""

from __future__ import annotations

from bisect import insort
from contextlib import contextmanager
from unittest import mock

import numpy as np

from dsqlbench.components.crossbar import Crossbar
from dsqlbench.components.storage import StorageReplica
from dsqlbench.kernels import conflicts as reference_conflicts
from dsqlbench.sim import cluster as cluster_module


class _NoFirstCommitterWins(reference_conflicts.ConflictTable):
    """Every write set commits; commit times still rise, so the pipeline runs on."""

    def check_commit(self, key_flat, key_offsets, t_start_ns, t_propose_ns, floor_ns):
        t_commit = []
        for t_start in np.asarray(t_start_ns).tolist():
            floor_ns = max(t_propose_ns, floor_ns + 1, t_start + 1)
            t_commit.append(floor_ns)
        return np.zeros(len(t_commit), np.int8), np.asarray(t_commit, np.int64), floor_ns

    def check_vote(self, key_flat, key_offsets, t_start_ns, t_propose_ns):
        t_low = np.maximum(np.asarray(t_start_ns, np.int64) + 1, t_propose_ns)
        return np.zeros(len(t_low), np.int8), t_low, np.zeros(len(key_flat), np.int64)

    def assign(self, keys, values_ns):
        pass


def _apply_out_of_order(self: StorageReplica, batch) -> None:
    """Storage that files late versions in timestamp order instead of refusing them,
    so the checkers, not an assertion, are what notice the broken crossbar."""
    self.applied_watermark_ns = max(self.applied_watermark_ns, batch.watermark_ns)
    for key, ts, value in zip(batch.keys, batch.ts, batch.values):
        history = self.versions.get(key)
        if history is None:
            self.versions[key] = [(ts, value)]
            insort(self.sorted_keys, key)
        elif all(ts != t for t, _ in history):
            insort(history, (ts, value))


@contextmanager
def no_first_committer_wins():
    with mock.patch.object(cluster_module.kernels, "ConflictTable", _NoFirstCommitterWins):
        yield


@contextmanager
def crossbar_above_watermark():
    with mock.patch.object(Crossbar, "watermark", lambda self: max(self.last_seen_ns)), \
            mock.patch.object(StorageReplica, "apply", _apply_out_of_order):
        yield


@contextmanager
def ack_before_quorum():
    """Acknowledge a commit as soon as it is decided, before the journal quorum has it:
    a leader that dies in between loses commits its clients were told of."""
    with mock.patch.object(cluster_module.Cluster, "ACK_AFTER_QUORUM", False):
        yield


@contextmanager
def leases_without_fencing():
    """Journals accept appends from a leader whose epoch was superseded."""
    with mock.patch.object(cluster_module.Cluster, "FENCING", False):
        yield


@contextmanager
def fragments_without_checksums():
    """Corrupted fragments are decoded as if intact: wrong bytes reach storage."""
    with mock.patch.object(cluster_module.Cluster, "FRAGMENT_CHECKSUMS", False):
        yield
