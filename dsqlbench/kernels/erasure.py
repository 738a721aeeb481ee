"""Crossbar-to-storage erasure code: reference twin (the specification).

The crossbar splits each batch for a storage shard into k data fragments and adds m
parity fragments; a replica rebuilds the batch from the first k of the k+m fragments
to arrive, so delivery latency is the k-th fastest path, not the slowest.

The code is a systematic Reed-Solomon code over GF(2^8) and is *exactly* the one
``reedsolo`` defines (primitive polynomial 0x11d, generator 2, fcr 0): for every byte
column j,

    bytes(data[:, j]) + bytes(parity[:, j])
        == reedsolo.RSCodec(nsym=m, nsize=k+m).encode(bytes(data[:, j]))

The code is linear, so the parity is ``P @ data`` over GF(2^8) where column i of the
m x k matrix P is reedsolo's parity of the unit vector e_i. Fragment i of the k+m is
row i of the generator ``G = [I_k; P]``. Decoding from fragments ``indices`` inverts the
k x k submatrix ``G[indices]`` (cached per loss pattern) and multiplies.

Invariants:
- k >= 1, m >= 0, k + m <= 255 (the field has 255 non-zero elements);
- decode returns the data or raises ``ErasureDecodeError``: never wrong bytes;
- no randomness, no wall clock: the same inputs give the same bytes.

The compiled twin is ``dsqlbench._native.erasure.ErasureCode``, same API; both raise
this module's ``ErasureDecodeError``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

GF_PRIMITIVE_POLY = 0x11D
GF_GENERATOR = 2


class ErasureDecodeError(Exception):
    """The fragments given cannot rebuild the data (too few, repeated or bad indices,
    wrong shapes). Raised instead of ever returning wrong bytes."""


def _build_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """exp/log tables for GF(2^8) with poly 0x11d and generator 2, and the full
    256 x 256 multiplication table that the reference vectorises with."""
    exp = np.zeros(512, dtype=np.int64)
    log = np.zeros(256, dtype=np.int64)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1  # generator 2: multiply by x
        if x & 0x100:
            x ^= GF_PRIMITIVE_POLY
    exp[255:510] = exp[:255]  # doubled so log[a] + log[b] never needs a modulo
    a = np.arange(256)
    mul = exp[(log[a][:, None] + log[a][None, :])].astype(np.uint8)
    mul[0, :] = 0
    mul[:, 0] = 0
    return exp, log, mul


GF_EXP, GF_LOG, GF_MUL = _build_tables()


def gf_inverse(a: int) -> int:
    assert 1 <= a <= 255, "zero has no inverse"
    return int(GF_EXP[255 - GF_LOG[a]])


def gf_matmul(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``matrix (r x c) @ rows (c x L)`` over GF(2^8), uint8 in and out."""
    assert matrix.shape[1] == rows.shape[0]
    out = np.zeros((matrix.shape[0], rows.shape[1]), dtype=np.uint8)
    for r in range(matrix.shape[0]):
        for c in range(matrix.shape[1]):
            coefficient = matrix[r, c]
            if coefficient:
                out[r] ^= GF_MUL[coefficient][rows[c]]
    return out


def gf_invert_matrix(matrix: np.ndarray) -> np.ndarray:
    """Gauss-Jordan inverse over GF(2^8); raises ErasureDecodeError if singular."""
    n = matrix.shape[0]
    assert matrix.shape == (n, n)
    work = np.concatenate([matrix.astype(np.uint8), np.eye(n, dtype=np.uint8)], axis=1)
    for col in range(n):
        candidates = np.nonzero(work[col:, col])[0]
        if len(candidates) == 0:
            raise ErasureDecodeError("fragment matrix is singular")
        pivot = col + int(candidates[0])
        if pivot != col:
            work[[col, pivot]] = work[[pivot, col]]
        work[col] = GF_MUL[gf_inverse(int(work[col, col]))][work[col]]
        factors = work[:, col].copy()
        factors[col] = 0
        # Eliminate the column from every other row in one vectorised step.
        work ^= GF_MUL[factors[:, None], work[col][None, :]]
    return work[:, n:].copy()


@lru_cache(maxsize=None)
def parity_matrix(k: int, m: int) -> np.ndarray:
    """The m x k matrix P with parity = P @ data, derived from reedsolo itself."""
    if m == 0:
        return np.zeros((0, k), dtype=np.uint8)
    import reedsolo

    codec = reedsolo.RSCodec(nsym=m, nsize=k + m)
    matrix = np.zeros((m, k), dtype=np.uint8)
    for i in range(k):
        unit = bytearray(k)
        unit[i] = 1
        codeword = codec.encode(bytes(unit))
        assert len(codeword) == k + m
        matrix[:, i] = np.frombuffer(bytes(codeword[k:]), dtype=np.uint8)
    matrix.setflags(write=False)
    return matrix


def validate_parameters(k: int, m: int) -> None:
    if not (isinstance(k, int) and isinstance(m, int)):
        raise ValueError(f"k and m must be integers, got k={k!r} m={m!r}")
    if k < 1 or m < 0 or k + m > 255:
        raise ValueError(f"need k >= 1, m >= 0, k + m <= 255; got k={k} m={m}")


def validate_fragments(k: int, m: int, indices: Sequence[int], fragments: np.ndarray) -> tuple[int, ...]:
    """The decode preconditions, shared by both twins; returns the indices as ints."""
    try:
        index_tuple = tuple(int(i) for i in indices)
    except (TypeError, ValueError) as error:
        raise ErasureDecodeError(f"fragment indices must be integers: {error}") from None
    if len(set(index_tuple)) < k:
        raise ErasureDecodeError(
            f"need {k} distinct fragments of {k + m} to rebuild, got {len(set(index_tuple))}")
    if len(index_tuple) != k:
        raise ErasureDecodeError(f"pass exactly k={k} fragment indices, got {len(index_tuple)}")
    if any(i < 0 or i >= k + m for i in index_tuple):
        raise ErasureDecodeError(f"fragment indices must be in [0, {k + m}), got {index_tuple}")
    if not isinstance(fragments, np.ndarray) or fragments.dtype != np.uint8 or fragments.ndim != 2 \
            or fragments.shape[0] != k:
        raise ErasureDecodeError(f"fragments must be a uint8 array of shape ({k}, L)")
    return index_tuple


def _into(out: np.ndarray | None, result: np.ndarray) -> np.ndarray:
    if out is None:
        return result
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != result.shape:
        raise ValueError(f"out must be a uint8 array of shape {result.shape}")
    out[...] = result
    return out


class ErasureCode:
    """Systematic RS(k+m, k) over GF(2^8), byte-compatible with reedsolo."""

    def __init__(self, k: int, m: int):
        validate_parameters(k, m)
        self.k = k
        self.m = m
        self._parity = parity_matrix(k, m)
        self._generator = np.concatenate([np.eye(k, dtype=np.uint8), self._parity], axis=0)
        self._decoders: dict[tuple[int, ...], np.ndarray] = {}

    def __repr__(self) -> str:
        return f"ErasureCode(k={self.k}, m={self.m})"

    def encode(self, data: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The m parity rows for k data rows (uint8, shape (k, L) -> (m, L)), written
        into ``out`` when given (a preallocated uint8 (m, L) array)."""
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[0] != self.k:
            raise ValueError(f"data must be a uint8 array of shape ({self.k}, L)")
        return _into(out, gf_matmul(self._parity, data))

    def decoder_matrix(self, sorted_indices: tuple[int, ...]) -> np.ndarray:
        """Inverse of the generator rows for one loss pattern, cached."""
        matrix = self._decoders.get(sorted_indices)
        if matrix is None:
            matrix = gf_invert_matrix(self._generator[list(sorted_indices)])
            self._decoders[sorted_indices] = matrix
        return matrix

    def decode(self, indices: Sequence[int], fragments: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
        """The k data rows from k distinct fragments; row i of ``fragments`` is
        fragment ``indices[i]``. Written into ``out`` when given (uint8 (k, L))."""
        index_tuple = validate_fragments(self.k, self.m, indices, fragments)
        order = sorted(range(self.k), key=index_tuple.__getitem__)
        sorted_indices = tuple(index_tuple[i] for i in order)
        rows = fragments[order]
        if sorted_indices == tuple(range(self.k)):
            return _into(out, np.ascontiguousarray(rows))  # every data fragment arrived
        return _into(out, gf_matmul(self.decoder_matrix(sorted_indices), rows))


def split_payload(payload: bytes, k: int) -> np.ndarray:
    """The payload as k rows of L = max(1, ceil(len/k)) bytes, zero padded at the end."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    length = max(1, -(-len(payload) // k))
    buffer = np.zeros(k * length, dtype=np.uint8)
    buffer[: len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    return buffer.reshape(k, length)


def join_payload(data: np.ndarray, original_length: int) -> bytes:
    """Inverse of split_payload: the rows concatenated, padding cut off."""
    assert data.dtype == np.uint8 and data.ndim == 2
    assert 0 <= original_length <= data.size, "original_length exceeds the fragments"
    return np.ascontiguousarray(data).reshape(-1)[:original_length].tobytes()
