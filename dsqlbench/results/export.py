"""Results for people and tools outside Arrow: CSV, JSON lines, HdrHistogram.

Place in the pipeline: ``dsqlbench export`` reads a run folder's Parquet tables
(``results.read_run_table``, so a truncated or future-schema file is a ``ResultError``,
exit 3) and writes them as CSV or JSON lines; or it builds the run's latency histogram
and writes it in one of HdrHistogram's own formats:

- ``hgrm``: the percentile distribution text of ``Histogram.outputPercentileDistribution``
  (what HdrHistogram's plotter reads), values in milliseconds;
- ``hlog``: a histogram log (format 1.3): one line per run, each histogram in the V2
  compressed encoding, base64. Logs merge: ``export A B --format hgrm`` or feeding
  ``.hlog`` files back in adds the histograms up, and so do HdrHistogram's own tools.

Invariants:

- The histogram holds the same latencies as ``summary.json``'s ``latency_ms``: final,
  committed, measured attempts, from intended start to end, in integer nanoseconds.
  Its total count equals ``latency_ms.<type>.count``, and every value is kept to 3
  significant decimal digits (HdrHistogram's guarantee), so its percentiles agree with
  the summary's exact ones within 0.1%.
- Every histogram has one layout (``LOWEST_NS``, ``HIGHEST_NS``, ``DIGITS``), so two of
  them add index by index; a histogram decoded with another layout is re-recorded.
- Nothing here depends on the wall clock: timestamps in a log are simulated seconds.
- Files are written atomically (``results.atomic_output``).
"""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dsqlbench.errors import ResultError, UserError
from dsqlbench.results.folder import load_run, read_run_table

TABLES = ("transactions", "timeseries")
TABLE_FORMATS = ("csv", "jsonl")
HISTOGRAM_FORMATS = ("hgrm", "hlog")

LOWEST_NS = 1
HIGHEST_NS = 24 * 3600 * 10**9  # one simulated day: far beyond any transaction's limit
DIGITS = 3
NS_PER_MS = 1_000_000

# HdrHistogram's V2 encoding (word size byte 0x10: LEB128 ZigZag counts).
_V2_ENCODING_COOKIE = 0x1C849303 | 0x10
_V2_COMPRESSED_COOKIE = 0x1C849304 | 0x10
_COOKIE_BASE_MASK = ~0xF0 & 0xFFFFFFFF
_HEADER = struct.Struct(">iiiiqqd")  # cookie, payload length, offset, digits, low, high, ratio
_COMPRESSED_HEADER = struct.Struct(">ii")
_LOG_VERSION = "1.3"
_LOG_LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'


# ---------------------------------------------------------------------- tables


def export_table(run_dir: Path, table_name: str, fmt: str, out: BinaryIO) -> int:
    """Write table ``table_name`` of a run as ``csv`` or ``jsonl`` to ``out``; returns
    the number of rows. Dictionary columns become plain text; nulls are empty CSV
    fields and JSON ``null``."""
    table = plain_columns(read_run_table(run_dir, table_name))
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, out)
    elif fmt == "jsonl":
        for batch in table.to_batches(max_chunksize=8192):
            lines = (json.dumps(row, allow_nan=False) + "\n" for row in batch.to_pylist())
            out.write("".join(lines).encode("utf-8"))
    else:
        raise UserError(f"--format {fmt}: tables export as {' or '.join(TABLE_FORMATS)}")
    return table.num_rows


def plain_columns(table: pa.Table) -> pa.Table:
    """``table`` with dictionary-encoded columns decoded to their value type."""
    columns = [pc.cast(column, column.type.value_type)
               if pa.types.is_dictionary(column.type) else column
               for column in table.columns]
    return pa.table(columns, names=table.column_names)


# ---------------------------------------------------------------------- histogram


class Histogram:
    """An HdrHistogram (integer values, ``DIGITS`` significant digits) over
    ``[lowest, highest]``, laid out exactly as HdrHistogram's Java implementation
    lays it out, so counts, percentiles and encodings agree with it."""

    def __init__(self, lowest: int = LOWEST_NS, highest: int = HIGHEST_NS,
                 digits: int = DIGITS):
        if not (lowest >= 1 and highest >= 2 * lowest and 0 <= digits <= 5):
            raise ValueError(f"bad histogram layout: lowest {lowest}, highest {highest}, "
                             f"digits {digits}")
        self.lowest, self.highest, self.digits = lowest, highest, digits
        largest_single_unit = 2 * 10**digits
        self.unit_magnitude = int(math.floor(math.log2(lowest)))
        self.sub_bucket_count_magnitude = int(math.ceil(math.log2(largest_single_unit)))
        self.sub_bucket_half_count_magnitude = max(self.sub_bucket_count_magnitude - 1, 0)
        self.sub_bucket_count = 1 << self.sub_bucket_count_magnitude
        self.sub_bucket_half_count = self.sub_bucket_count // 2
        self.sub_bucket_mask = (self.sub_bucket_count - 1) << self.unit_magnitude
        self.bucket_count = self._buckets_needed()
        length = (self.bucket_count + 1) * self.sub_bucket_half_count
        self.counts = np.zeros(length, dtype=np.int64)

    def _buckets_needed(self) -> int:
        smallest_untrackable = self.sub_bucket_count << self.unit_magnitude
        buckets = 1
        while smallest_untrackable <= self.highest:
            if smallest_untrackable > (2**63 - 1) // 2:
                return buckets + 1
            smallest_untrackable <<= 1
            buckets += 1
        return buckets

    def same_layout(self, other: Histogram) -> bool:
        return (self.lowest, self.highest, self.digits) == (
            other.lowest, other.highest, other.digits)

    # -- recording

    def record(self, values: Iterable[int] | np.ndarray) -> Histogram:
        """Count every value (integers in ``[0, highest]``); returns ``self``."""
        values = np.asarray(values, dtype=np.int64)
        if values.size == 0:
            return self
        if values.min() < 0 or values.max() > self.highest:
            raise ValueError(f"values must lie in [0, {self.highest}], got "
                             f"[{values.min()}, {values.max()}]")
        self.counts += np.bincount(self.index_of(values), minlength=self.counts.size)
        return self

    def add(self, other: Histogram) -> Histogram:
        """Add ``other``'s counts; a different layout is re-recorded value by value
        (at each bucket's lowest value, as HdrHistogram's ``add`` does)."""
        if self.same_layout(other):
            self.counts += other.counts
            return self
        for index in np.flatnonzero(other.counts):
            value = other.value_at_index(int(index))
            self.counts[self.index_of(np.array([value]))[0]] += other.counts[index]
        return self

    def index_of(self, values: np.ndarray) -> np.ndarray:
        """Counts index of each value (vectorised ``countsArrayIndex``)."""
        bucket = (_bit_length(values | self.sub_bucket_mask) - self.unit_magnitude
                  - self.sub_bucket_count_magnitude)
        sub_bucket = values >> (bucket + self.unit_magnitude)
        return ((bucket + 1) << self.sub_bucket_half_count_magnitude) + (
            sub_bucket - self.sub_bucket_half_count)

    # -- reading

    def value_at_index(self, index: int) -> int:
        """The lowest value counted at ``index``."""
        bucket = (index >> self.sub_bucket_half_count_magnitude) - 1
        sub_bucket = (index & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count
        if bucket < 0:
            sub_bucket -= self.sub_bucket_half_count
            bucket = 0
        return sub_bucket << (bucket + self.unit_magnitude)

    def _range_at_index(self, index: int) -> int:
        """How many values share ``index`` (its equivalent value range)."""
        bucket = max((index >> self.sub_bucket_half_count_magnitude) - 1, 0)
        return 1 << (self.unit_magnitude + bucket)

    def highest_equivalent(self, index: int) -> int:
        return self.value_at_index(index) + self._range_at_index(index) - 1

    def median_equivalent(self, index: int) -> int:
        return self.value_at_index(index) + (self._range_at_index(index) >> 1)

    @property
    def total_count(self) -> int:
        return int(self.counts.sum())

    def max_value(self) -> int:
        nonzero = np.flatnonzero(self.counts)
        return self.highest_equivalent(int(nonzero[-1])) if nonzero.size else 0

    def mean(self) -> float:
        indexes, counts = self._nonzero()
        if not counts.size:
            return 0.0
        medians = np.array([self.median_equivalent(int(i)) for i in indexes], float)
        return float((medians * counts).sum() / counts.sum())

    def stddev(self) -> float:
        indexes, counts = self._nonzero()
        if not counts.size:
            return 0.0
        medians = np.array([self.median_equivalent(int(i)) for i in indexes], float)
        mean = float((medians * counts).sum() / counts.sum())
        return math.sqrt(float((((medians - mean) ** 2) * counts).sum() / counts.sum()))

    def value_at_percentile(self, percentile: float) -> int:
        """The highest value equivalent to the one at ``percentile`` (0-100), as
        HdrHistogram's ``getValueAtPercentile``."""
        indexes, counts = self._nonzero()
        if not counts.size:
            return 0
        # One ulp down first, as Java's HdrHistogram does, so 99.9% of 20000 is the
        # 19980th value and not, by float round-off, the 19981st.
        requested = min(max(math.nextafter(percentile, -math.inf), 0.0), 100.0)
        target = max(1, int(math.ceil(requested / 100.0 * counts.sum())))
        position = int(np.searchsorted(np.cumsum(counts), target))
        return self.highest_equivalent(int(indexes[position]))

    def _nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        indexes = np.flatnonzero(self.counts)
        return indexes, self.counts[indexes]

    # -- HdrHistogram formats

    def percentile_distribution(self, scale: float = NS_PER_MS,
                                ticks_per_half_distance: int = 5) -> str:
        """The ``outputPercentileDistribution`` text (``.hgrm``), values divided by
        ``scale`` (default: nanoseconds shown as milliseconds)."""
        value_format = f"%12.{self.digits}f"
        lines = ["%12s %14s %10s %14s\n\n" % (
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)")]
        for value, level, count in self._percentile_steps(ticks_per_half_distance):
            fraction = level / 100.0
            if level != 100.0:
                lines.append((value_format + " %2.12f %10d %14.2f\n") % (
                    value / scale, fraction, count, 1 / (1 - fraction)))
            else:
                lines.append((value_format + " %2.12f %10d\n") % (value / scale, fraction, count))
        lines.append(("#[Mean    = %s, StdDeviation   = %s]\n" % (value_format, value_format))
                     % (self.mean() / scale, self.stddev() / scale))
        lines.append(("#[Max     = %s, Total count    = %%12d]\n" % value_format)
                     % (self.max_value() / scale, self.total_count))
        lines.append("#[Buckets = %12d, SubBuckets     = %12d]\n" % (
            self.bucket_count, self.sub_bucket_count))
        return "".join(lines)

    def _percentile_steps(self, ticks_per_half_distance: int):
        """(value, percentile level, count so far) as HdrHistogram's PercentileIterator
        gives them: levels closer together towards 100, then a last step at 100."""
        indexes, counts = self._nonzero()
        total = int(counts.sum())
        if not total:
            return
        level, so_far = 0.0, 0
        for index, count in zip(indexes.tolist(), counts.tolist()):
            so_far += count
            value = self.highest_equivalent(index)
            while 100.0 * so_far / total >= level:
                yield value, level, so_far
                level += 100.0 / (ticks_per_half_distance * 2 ** (
                    int(math.log(100.0 / (100.0 - level)) / math.log(2)) + 1))
                if so_far == total:
                    break  # the count is complete: only the final 100% step remains
        yield value, 100.0, so_far

    def encode(self) -> bytes:
        """The V2 compressed encoding (``encodeIntoCompressedByteBuffer``)."""
        nonzero = np.flatnonzero(self.counts)
        relevant = int(nonzero[-1]) + 1 if nonzero.size else 0
        payload = _zigzag_counts(self.counts[:relevant].tolist())
        header = _HEADER.pack(_V2_ENCODING_COOKIE, len(payload), 0, self.digits,
                              self.lowest, self.highest, 1.0)
        compressed = zlib.compress(header + payload)
        return _COMPRESSED_HEADER.pack(_V2_COMPRESSED_COOKIE, len(compressed)) + compressed

    @classmethod
    def decode(cls, data: bytes, source: str = "histogram") -> Histogram:
        """A histogram from its V2 compressed encoding; ``ResultError`` naming
        ``source`` when the bytes are not one."""
        try:
            cookie, length = _COMPRESSED_HEADER.unpack_from(data)
            if cookie & _COOKIE_BASE_MASK != 0x1C849304:
                raise ValueError("not a V2 compressed HdrHistogram encoding")
            raw = zlib.decompress(data[8:8 + length])
            cookie, payload_length, offset, digits, low, high, _ = _HEADER.unpack_from(raw)
            if cookie & _COOKIE_BASE_MASK != 0x1C849303 or offset != 0:
                raise ValueError("unsupported HdrHistogram encoding")
            histogram = cls(low, high, digits)
            payload = raw[_HEADER.size:_HEADER.size + payload_length]
            counts = _unzigzag_counts(payload, histogram.counts.size)
        except (struct.error, zlib.error, ValueError, OverflowError) as error:
            raise ResultError(f"{source}: not an HdrHistogram: {error}") from None
        histogram.counts[:counts.size] = counts
        return histogram


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Exact ``int.bit_length`` of non-negative int64 values (floats would round)."""
    values = values.copy()
    length = np.zeros(values.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        high = values >= (1 << shift)
        length[high] += shift
        values[high] >>= shift
    return length + (values > 0)


def _zigzag_counts(counts: list[int]) -> bytes:
    """Counts as LEB128 ZigZag longs; a run of two or more zeros is one negative
    number (HdrHistogram's ``fillBufferFromCountsArray``)."""
    out = bytearray()
    index = 0
    while index < len(counts):
        count = counts[index]
        index += 1
        if count == 0:
            zeros = 1
            while index < len(counts) and counts[index] == 0:
                zeros += 1
                index += 1
            if zeros > 1:
                count = -zeros
        _put_zigzag(out, count)
    return bytes(out)


def _put_zigzag(out: bytearray, value: int) -> None:
    value = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    for _ in range(8):  # at most 8 bytes of 7 bits, then one byte of 8 (9 in all)
        if value < 0x80:
            out.append(value)
            return
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value & 0xFF)


def _unzigzag_counts(payload: bytes, length: int) -> np.ndarray:
    counts = np.zeros(length, dtype=np.int64)
    position = index = 0
    while position < len(payload):
        raw, shift = 0, 0
        for byte_number in range(9):
            byte = payload[position]
            position += 1
            if byte_number == 8:
                raw |= byte << 56
                break
            raw |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        value = (raw >> 1) ^ -(raw & 1)
        if value < 0:
            index += -value
        else:
            if index >= length:
                raise ValueError("more counts than the layout holds")
            counts[index] = value
            index += 1
    return counts


# ---------------------------------------------------------------------- runs


@dataclass
class Interval:
    """One histogram line of a log: a tag, simulated start and length in seconds."""

    tag: str
    start_s: float
    length_s: float
    histogram: Histogram


def latency_histogram(run_dir: Path, txn_type: str | None = None) -> Interval:
    """The run's latency histogram (nanoseconds) of final, committed, measured
    transactions, of one type or all; tagged with the run folder's name."""
    summary = load_run(run_dir)
    table = read_run_table(run_dir, "transactions")
    keep = pc.and_(pc.and_(table["final"], table["measured"]),
                   pc.equal(table["outcome"].cast(pa.string()), "committed"))
    if txn_type is not None:
        types = set(pc.unique(table["txn_type"].cast(pa.string())).to_pylist())
        if txn_type not in types:
            raise UserError(f"--txn-type {txn_type}: not in {run_dir}; it has "
                            f"{', '.join(sorted(types))}")
        keep = pc.and_(keep, pc.equal(table["txn_type"].cast(pa.string()), txn_type))
    latency_ns = table["latency_ns"].filter(keep).to_numpy(zero_copy_only=False)
    simulated = summary["simulated"]
    warmup_s = float(simulated.get("warmup_s") or 0.0)
    tag = Path(run_dir).name + (f":{txn_type}" if txn_type else "")
    return Interval(_safe_tag(tag), warmup_s, float(simulated.get("duration_s") or 0.0),
                    Histogram().record(latency_ns))


def read_hlog(path: Path) -> list[Interval]:
    """Every histogram line of an HdrHistogram log (``Tag=...,`` optional)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ResultError(f"{path}: cannot read: {error}") from None
    intervals = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#") or line.startswith('"'):
            continue
        tag = ""
        if line.startswith("Tag="):
            tag, _, line = line[4:].partition(",")
        fields = line.split(",")
        where = f"{path}:{number}"
        try:
            start_s, length_s = float(fields[0]), float(fields[1])
            data = base64.b64decode(fields[3], validate=True)
        except (IndexError, ValueError) as error:
            raise ResultError(f"{where}: not a histogram log line: {error}") from None
        intervals.append(Interval(tag, start_s, length_s, Histogram.decode(data, where)))
    if not intervals:
        raise ResultError(f"{path}: no histogram lines; not an HdrHistogram log")
    return intervals


def load_intervals(inputs: list[Path], txn_type: str | None = None) -> list[Interval]:
    """Histograms of run folders and ``.hlog`` files, in the order given."""
    intervals = []
    for path in inputs:
        if Path(path).suffix == ".hlog":
            intervals += read_hlog(path)
        else:
            intervals.append(latency_histogram(path, txn_type))
    return intervals


def merged(intervals: list[Interval]) -> Histogram:
    total = Histogram()
    for interval in intervals:
        total.add(interval.histogram)
    return total


def hlog_text(intervals: list[Interval]) -> str:
    """An HdrHistogram log (format 1.3) with one tagged line per interval."""
    lines = [f"#[Histogram log format version {_LOG_VERSION}]",
             "#[dsqlbench latency histograms: values in nanoseconds, timestamps in "
             "simulated seconds]",
             _LOG_LEGEND]
    for interval in intervals:
        encoded = base64.b64encode(interval.histogram.encode()).decode("ascii")
        max_ms = interval.histogram.max_value() / NS_PER_MS
        tag = f"Tag={interval.tag}," if interval.tag else ""
        lines.append(f"{tag}{interval.start_s:.3f},{interval.length_s:.3f},"
                     f"{max_ms:.3f},{encoded}")
    return "\n".join(lines) + "\n"


def _safe_tag(tag: str) -> str:
    # A tag ends at the first comma and may not hold whitespace (the log's grammar).
    return "".join("_" if char in ", \t\r\n" else char for char in tag)
