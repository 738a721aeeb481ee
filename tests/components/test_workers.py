"""Worker pools: FIFO over a node's workers; the idle and the saturated edge."""

from hypothesis import given, settings, strategies as st

from dsqlbench.components.workers import WorkerPool


def test_an_idle_node_adds_no_wait():
    pool = WorkerPool("n", 2)
    assert [pool.admit(t, 100) for t in (0, 1_000, 2_000)] == [100, 100, 100]
    assert pool.summary(0, 3_000)["queue_wait_ms"]["max"] == 0


def test_a_saturated_node_completes_workers_per_service_time():
    pool = WorkerPool("n", 4)
    done = [pool.admit(0, 1_000) for _ in range(400)]  # everything arrives at once
    assert max(done) == 100 * 1_000  # 400 requests / (4 workers / 1 us)
    load = pool.summary(0, max(done))
    assert load["utilisation"] == 1.0 and load["requests"] == 400


@settings(max_examples=80, deadline=None)
@given(workers=st.integers(1, 5),
       jobs=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 30)), min_size=1, max_size=60))
def test_fifo_matches_a_reference_queue(workers, jobs):
    """Against a plain reference: each request, in admission order, starts on the
    worker free soonest, never before it arrives; no worker serves two at once."""
    pool = WorkerPool("n", workers)
    free = [0] * workers
    at = 0
    for gap, service in jobs:
        at += gap
        worker = min(range(workers), key=lambda w: free[w])
        start = max(at, free[worker])
        free[worker] = start + service
        assert pool.admit(at, service) == start - at + service
    load = pool.summary(0, max(free) or 1)
    assert 0 <= load["utilisation"] <= 1
