"""Workers: a node's finite capacity, as ``workers`` servers in front of one FIFO queue.

Role: a QP or a storage replica does each piece of work (a statement, a read) on one
of its workers; when all are busy, the work waits its turn. Requests are served first
come, first served in the order they are admitted (the runtime admits each when it
arrives), non-preemptively, so the wait is known at admission and costs no simulated
event: ``admit`` returns the queue wait plus the service time, which the runtime folds
into the hop's one timeout. FIFO over processor sharing because a statement holds a
QP's worker (a microVM's vCPU) to completion, and because the two edges it must show
are simplest to hold to: an idle node adds no wait, and a saturated one completes
``workers / service time`` requests per second.

Invariants: no worker serves two requests at once; a request never starts before it
was admitted nor before an earlier-admitted one started; utilisation is at most 1.
"""

from __future__ import annotations

import heapq
from array import array

import numpy as np


class WorkerPool:
    __slots__ = ("name", "workers", "_free_at", "_at_ns", "_wait_ns", "_service_ns")

    def __init__(self, name: str, workers: int):
        assert workers >= 1
        self.name = name
        self.workers = workers
        self._free_at = [0] * workers  # a heap: when each worker is next free
        self._at_ns = array("q")  # admission times
        self._wait_ns = array("q")  # queue wait of each admitted request
        self._service_ns = array("q")

    def admit(self, at_ns: int, service_ns: int) -> int:
        """Work of ``service_ns`` arriving at ``at_ns``: nanoseconds until it is done."""
        assert service_ns >= 0
        start = max(at_ns, self._free_at[0])  # the worker free soonest takes it
        heapq.heapreplace(self._free_at, start + service_ns)
        self._at_ns.append(at_ns)
        self._wait_ns.append(start - at_ns)
        self._service_ns.append(service_ns)
        return start - at_ns + service_ns

    def summary(self, from_ns: int, end_ns: int) -> dict:
        """Load over ``[from_ns, end_ns)``: requests admitted, utilisation (busy worker
        time over available worker time; work is counted when admitted), mean queue
        length (Little's law: waits summed over the span) and queue wait percentiles."""
        at = np.frombuffer(self._at_ns, dtype=np.int64)
        measured_mask = at >= from_ns
        waits = np.frombuffer(self._wait_ns, dtype=np.int64)[measured_mask]
        busy = float(np.frombuffer(self._service_ns, dtype=np.int64)[measured_mask].sum())
        span_ns = max(1, end_ns - from_ns)
        measured = len(waits)
        return {
            "workers": self.workers,
            "requests": measured,
            "utilisation": round(min(1.0, busy / (self.workers * span_ns)), 6),
            "queue_length_mean": round(float(waits.sum()) / span_ns, 6) if measured else 0.0,
            "queue_wait_ms": {
                "p50": round(float(np.percentile(waits, 50)) / 1e6, 6) if measured else 0.0,
                "p99": round(float(np.percentile(waits, 99)) / 1e6, 6) if measured else 0.0,
                "max": round(float(waits.max()) / 1e6, 6) if measured else 0.0,
            },
        }
