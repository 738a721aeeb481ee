"""Crossbar merge: every implementation against the reference and an oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel_twins import REF

I64 = np.iinfo(np.int64)


def flatten(segments: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ts_flat = np.array([t for s in segments for t in sorted(s)], dtype=np.int64)
    offsets = np.zeros(len(segments) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in segments])
    return ts_flat, offsets


def oracle(ts_flat: np.ndarray, offsets: np.ndarray, watermark_ns: int) -> list[int]:
    """The specification spelled out: sort qualifying entries by (ts, j, position)."""
    entries = [(int(ts_flat[p]), j, p)
               for j in range(len(offsets) - 1)
               for p in range(offsets[j], offsets[j + 1]) if ts_flat[p] <= watermark_ns]
    return [p for _, _, p in sorted(entries)]


def run(impl, ts_flat, offsets, watermark_ns, slack=3) -> np.ndarray:
    """merge_until into a poisoned buffer; asserts nothing past n is written."""
    out = np.full(len(ts_flat) + slack, -7, dtype=np.int64)
    n = impl.merge.merge_until(ts_flat, offsets, watermark_ns, out)
    assert (out[n:] == -7).all(), "wrote past n"
    return out[:n]


def check(impl, ts_flat, offsets, watermark_ns) -> None:
    got = run(impl, ts_flat, offsets, watermark_ns)
    expected = run(REF, ts_flat, offsets, watermark_ns)
    np.testing.assert_array_equal(got, expected)
    if len(ts_flat) <= 2000:
        assert expected.tolist() == oracle(ts_flat, offsets, watermark_ns)


segments_st = st.lists(st.lists(st.integers(0, 12), max_size=12), max_size=9)


@settings(max_examples=300, deadline=None)
@given(segments=segments_st, watermark_ns=st.integers(-1, 14))
def test_random_small_inputs_with_duplicate_timestamps(impl, segments, watermark_ns):
    check(impl, *flatten(segments), watermark_ns)


@settings(max_examples=60, deadline=None)
@given(segments=st.lists(st.lists(st.integers(I64.min, I64.max), max_size=6), max_size=5),
       watermark_ns=st.integers(I64.min, I64.max))
def test_full_int64_range(impl, segments, watermark_ns):
    check(impl, *flatten(segments), watermark_ns)


@pytest.mark.parametrize("segments", [[], [[]], [[], [], []], [[5]], [[], [5], []], [[1, 1, 1], [1, 1], [1]]])
@pytest.mark.parametrize("watermark_ns", [0, 1, 5, I64.max])
def test_empty_and_single_element_inputs(impl, segments, watermark_ns):
    check(impl, *flatten(segments), watermark_ns)


def make_journals(rng, k: int, n: int, burst_mean: float | None, ts_max: int):
    """n sorted timestamps dealt to k journals, randomly or in bursts."""
    ts = np.sort(rng.integers(0, ts_max, n))
    if burst_mean:
        runs = rng.geometric(1 / burst_mean, n)
        journal = np.repeat(rng.integers(0, k, len(runs)), runs)[:n]
    else:
        journal = rng.integers(0, k, n)
    order = np.argsort(journal, kind="stable")
    offsets = np.zeros(k + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(journal, minlength=k))
    return np.ascontiguousarray(ts[order]), offsets


@pytest.mark.parametrize("k", [2, 4, 17, 64])
@pytest.mark.parametrize("burst_mean", [None, 3.0, 200.0])
@pytest.mark.parametrize("ts_max", [40, 10**12])
def test_large_random_and_bursty(impl, k, burst_mean, ts_max):
    # Above the size where the compiled merge splits into two chains and gallops.
    rng = np.random.default_rng(k * 1000 + int(burst_mean or 0) + ts_max % 97)
    ts_flat, offsets = make_journals(rng, k, 30_000, burst_mean, ts_max)
    for watermark_ns in (I64.max, int(np.median(ts_flat)), int(ts_flat.min()) - 1):
        check(impl, ts_flat, offsets, watermark_ns)


def test_extreme_timestamps_need_wide_keys(impl):
    rng = np.random.default_rng(5)
    ts = np.concatenate([rng.integers(I64.min, I64.max, 20_000, endpoint=True), [I64.min, I64.max] * 3])
    journal = rng.integers(0, 5, len(ts))
    segments = [sorted(ts[journal == j].tolist()) for j in range(5)]
    ts_flat, offsets = flatten(segments)
    for watermark_ns in (I64.max, I64.min, 0):
        check(impl, ts_flat, offsets, watermark_ns)


def test_output_is_ordered_by_ts_then_journal(impl):
    ts_flat, offsets = flatten([[3, 3, 7], [1, 3], [3]])
    assert run(impl, ts_flat, offsets, 5).tolist() == [3, 0, 1, 4, 5]


def test_rejects_offsets_that_do_not_span_the_input(impl):
    ts_flat = np.array([1, 2, 3], dtype=np.int64)
    out = np.empty(3, dtype=np.int64)
    with pytest.raises(AssertionError):
        impl.merge.merge_until(ts_flat, np.array([0, 2], dtype=np.int64), 5, out)
    with pytest.raises(AssertionError):
        impl.merge.merge_until(ts_flat, np.array([0, 3], dtype=np.int64), 5, out[:2])
