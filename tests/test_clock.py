"""Node clocks: offset, drift, a bound that grows between syncs, never backwards."""

import pytest

from dsqlbench.clock import NodeClock, t_start_from

S = 10**9


def test_reading_brackets_true_time_within_the_bound():
    clock = NodeClock("n", offset_ns=5_000, drift_ppm=10, error_bound_ns=20_000,
                      drift_bound_ppm=50, sync_interval_ns=S)
    for t in range(S // 7, 5 * S, S // 7):
        r = clock.read(t)
        assert r.earliest_ns <= t <= r.latest_ns
        assert clock.is_honest(t)


def test_bound_grows_with_time_since_sync_and_resets():
    clock = NodeClock("n", 0, 0, 1_000, drift_bound_ppm=50, sync_interval_ns=S)
    assert clock.bound_at(0) == 1_000
    assert clock.bound_at(S // 2) == 1_000 + 25_000
    assert clock.bound_at(S) == 1_000


def test_readings_never_run_backwards_across_a_sync():
    clock = NodeClock("n", 0, drift_ppm=100, error_bound_ns=0, drift_bound_ppm=0,
                      sync_interval_ns=S)
    before = clock.read(S - 1)
    after = clock.read(S)  # the sync pulls the clock back by the drift it gathered
    assert after.now_ns >= before.now_ns


def test_commit_wait_target_is_the_first_time_earliest_passes():
    clock = NodeClock("n", offset_ns=-3_000, drift_ppm=0, error_bound_ns=2_000,
                      drift_bound_ppm=0, sync_interval_ns=S)
    t = clock.true_time_when_earliest_passes(100_000, true_now_ns=0)
    assert t + clock.offset_at(t) - clock.bound_at(t) > 100_000
    assert (t - 1) + clock.offset_at(t - 1) - clock.bound_at(t - 1) <= 100_000


def test_t_start_policy_names():
    r = NodeClock("n", 0, 0, 10, 0, S).read(1_000)
    assert [t_start_from(r, p) for p in ("earliest", "now", "latest")] == [990, 1_000, 1_010]
    with pytest.raises(ValueError):
        t_start_from(r, "soon")


def faulty(**faults):
    from dsqlbench.clock import ClockFaults

    return NodeClock("n", 0, 0, error_bound_ns=1_000, drift_bound_ppm=0, sync_interval_ns=S,
                     faults=ClockFaults(**faults))


def test_an_offset_beyond_the_bound_makes_the_clock_lie_and_is_counted():
    clock = faulty(offset_ns=-5_000)
    reading = clock.read(S)
    assert reading.latest_ns < S  # true time is outside [earliest, latest]
    assert not clock.is_honest(S) and clock.bound_violations == 1
    assert clock.max_abs_offset_ns == 5_000


def test_strobing_jumps_back_and_forth_but_readings_never_go_back():
    clock = faulty(strobe_ns=3_000, strobe_period_ns=10_000)
    assert clock.offset_at(0) == 3_000 and clock.offset_at(5_000) == -3_000
    nows = [clock.read(t).now_ns for t in range(10_000, 60_000, 1_000)]
    assert nows == sorted(nows)  # clamped: the reader never sees time run backwards


def test_a_step_applies_from_its_time_on():
    clock = faulty(step_ns=7_000, step_at_ns=S)
    assert clock.offset_at(S - 1) == 0 and clock.offset_at(S) == 7_000


def test_a_disrupted_clock_has_no_valid_bound_in_its_window():
    clock = faulty(disrupted_from_ns=S, disrupted_until_ns=2 * S)
    assert clock.read(S - 1).valid
    assert not clock.read(S).valid and clock.invalid_readings == 1
    assert clock.read(2 * S).valid


def test_readings_never_fall_below_the_epoch():
    clock = faulty(offset_ns=-10 * S)
    assert clock.read(S).earliest_ns >= 1


from hypothesis import given, settings, strategies as st  # noqa: E402

from dsqlbench.clock import ClockFaults  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(offset_us=st.integers(-50_000, 50_000), drift_ppm=st.floats(-200, 200),
       bound_us=st.integers(0, 100), fault_offset_us=st.integers(-30_000, 30_000),
       strobe_us=st.integers(0, 5_000), step_us=st.integers(-10_000, 10_000),
       times=st.lists(st.integers(0, 20 * S), min_size=1, max_size=40))
def test_no_reading_falls_below_the_floor(offset_us, drift_ppm, bound_us, fault_offset_us,
                                          strobe_us, step_us, times):
    """Storage GC keeps every version at or above each QP clock's floor: no reading,
    at that time or later, may have an ``earliest`` below it, whatever the faults."""
    faults = ClockFaults(offset_ns=fault_offset_us * 1000, strobe_ns=strobe_us * 1000,
                         strobe_period_ns=7 * 10**6, step_ns=step_us * 1000, step_at_ns=3 * S)
    clock = NodeClock("n", offset_us * 1000, drift_ppm, bound_us * 1000, 50.0, S // 3,
                      S // 5, faults)
    times = sorted(times)
    for at, later in zip(times, times[1:] + times[-1:]):
        floor = clock.floor_at(at)
        assert clock.read(later).earliest_ns >= floor
