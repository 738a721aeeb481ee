"""Erasure code: the reference against reedsolo, every implementation against the
reference, and every loss pattern of up to m fragments rebuilt (or refused)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reedsolo
from hypothesis import given, settings
from hypothesis import strategies as st

from dsqlbench.kernels.erasure import GF_MUL, ErasureDecodeError, join_payload, split_payload
from kernel_twins import COMPILED, REF


def random_data(seed: int, k: int, length: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (k, length), dtype=np.uint8)


def reedsolo_parity(data: np.ndarray, m: int) -> np.ndarray:
    """Parity column by column, as reedsolo encodes each byte position."""
    k, length = data.shape
    codec = reedsolo.RSCodec(nsym=m, nsize=k + m)
    parity = np.zeros((m, length), dtype=np.uint8)
    for j in range(length):
        codeword = bytes(codec.encode(bytes(data[:, j])))
        assert codeword[:k] == bytes(data[:, j]), "reedsolo's code is systematic"
        parity[:, j] = np.frombuffer(codeword[k:], dtype=np.uint8)
    return parity


def fragments_of(code, data: np.ndarray) -> np.ndarray:
    return np.concatenate([data, code.encode(data)], axis=0)


def decode_from(impl, k, m, data, indices) -> np.ndarray:
    code = impl.erasure.ErasureCode(k, m)
    everything = fragments_of(REF.erasure.ErasureCode(k, m), data)
    return code.decode(list(indices), everything[list(indices)])


@pytest.mark.parametrize("k, m", [(1, 1), (2, 1), (4, 2), (6, 3), (3, 5), (10, 4), (1, 254), (254, 1), (128, 127)])
def test_parity_is_reedsolos_codeword(impl, k, m):
    data = random_data(k * 31 + m, k, 24)
    np.testing.assert_array_equal(impl.erasure.ErasureCode(k, m).encode(data), reedsolo_parity(data, m))


@settings(max_examples=80, deadline=None)
@given(k=st.integers(1, 12), m=st.integers(0, 6), length=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_encode_matches_reference(impl, k, m, length, seed):
    data = random_data(seed, k, length)
    parity = impl.erasure.ErasureCode(k, m).encode(data)
    assert parity.shape == (m, length) and parity.dtype == np.uint8
    np.testing.assert_array_equal(parity, REF.erasure.ErasureCode(k, m).encode(data))


@pytest.mark.parametrize("k, m", [(2, 1), (4, 2), (6, 3)])
def test_every_loss_pattern_of_up_to_m_fragments(impl, k, m):
    rng = np.random.default_rng(k)
    for length in (1, 33, 1000):  # below, across and well past a SIMD block
        data = random_data(length, k, length)
        for lost_count in range(m + 1):
            for lost in itertools.combinations(range(k + m), lost_count):
                survivors = [i for i in range(k + m) if i not in lost]
                indices = list(rng.permutation(survivors)[:k])  # arrival order is arbitrary
                np.testing.assert_array_equal(decode_from(impl, k, m, data, indices), data)


@pytest.mark.parametrize("k, m", [(2, 1), (4, 2), (6, 3)])
def test_losing_m_plus_one_fragments_is_a_clear_error(impl, k, m):
    data = random_data(9, k, 40)
    code = impl.erasure.ErasureCode(k, m)
    everything = fragments_of(code, data)
    for lost in itertools.combinations(range(k + m), m + 1):
        survivors = [i for i in range(k + m) if i not in lost]
        with pytest.raises(ErasureDecodeError, match=f"need {k} distinct fragments"):
            code.decode(survivors, everything[survivors])
        # Padding the short list with a repeat is still only k-1 distinct fragments.
        padded = survivors + survivors[:1]
        with pytest.raises(ErasureDecodeError):
            code.decode(padded, everything[padded])


@pytest.mark.parametrize("bad_indices", [[0, 1, 2, 6], [-1, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3, 4], ["a", 1, 2, 3]])
def test_bad_indices_raise_never_wrong_bytes(impl, bad_indices):
    code = impl.erasure.ErasureCode(4, 2)
    with pytest.raises(ErasureDecodeError):
        code.decode(bad_indices, np.zeros((len(bad_indices), 8), dtype=np.uint8))


def test_bad_fragment_shapes_raise(impl):
    code = impl.erasure.ErasureCode(4, 2)
    with pytest.raises(ErasureDecodeError):
        code.decode([0, 1, 2, 3], np.zeros((3, 8), dtype=np.uint8))
    with pytest.raises(ErasureDecodeError):
        code.decode([0, 1, 2, 3], np.zeros((4, 8), dtype=np.int16))
    with pytest.raises(ValueError):
        code.encode(np.zeros((3, 8), dtype=np.uint8))


@pytest.mark.parametrize("k, m", [(0, 1), (1, -1), (200, 56), (255, 1)])
def test_bad_parameters_raise(impl, k, m):
    with pytest.raises(ValueError):
        impl.erasure.ErasureCode(k, m)


@pytest.mark.parametrize("k, m", [(1, 254), (254, 1), (128, 127)])
def test_k_plus_m_255_rebuilds(impl, k, m):
    rng = np.random.default_rng(k)
    data = random_data(k, k, 40)
    patterns = [list(range(m, k + m))[:k],             # the first m fragments lost
                list(rng.permutation(k + m)[:k])]     # a random pattern, random order
    for indices in patterns:
        np.testing.assert_array_equal(decode_from(impl, k, m, data, indices), data)


def test_out_arguments_and_strided_rows(impl):
    code = impl.erasure.ErasureCode(4, 2)
    wide = random_data(3, 4, 200)
    data = wide[:, 50:150]  # rows are contiguous, the array is not
    parity = np.empty((2, 100), dtype=np.uint8)
    assert code.encode(data, out=parity) is parity
    np.testing.assert_array_equal(parity, REF.erasure.ErasureCode(4, 2).encode(np.ascontiguousarray(data)))
    rebuilt = np.empty((4, 100), dtype=np.uint8)
    fragments = np.concatenate([data[2:], parity])
    assert code.decode([2, 3, 4, 5], fragments, out=rebuilt) is rebuilt
    np.testing.assert_array_equal(rebuilt, data)
    with pytest.raises(ValueError):
        code.encode(data, out=np.empty((2, 99), dtype=np.uint8))


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=200), k=st.integers(1, 9))
def test_split_and_join_round_trip(payload, k):
    data = split_payload(payload, k)
    assert data.shape == (k, max(1, -(-len(payload) // k)))
    assert join_payload(data, len(payload)) == payload


@pytest.mark.skipif(COMPILED is None, reason="compiled kernels not built")
def test_gfni_affine_matrices_multiply_in_our_field():
    """GF2P8AFFINEQB semantics, emulated: bit i of the result is the parity of
    (byte 7 - i of the matrix) & x. Checks the GFNI path's constants on any CPU."""
    x = np.arange(256, dtype=np.uint8)
    for c in range(256):
        matrix = COMPILED.erasure.affine_matrix(c)
        result = np.zeros(256, dtype=np.uint8)
        for i in range(8):
            row = (matrix >> (8 * (7 - i))) & 0xFF
            parity = np.unpackbits((x & row)[:, None], axis=1).sum(axis=1) & 1
            result |= (parity << i).astype(np.uint8)
        np.testing.assert_array_equal(result, GF_MUL[c])


@pytest.mark.skipif(COMPILED is None, reason="compiled kernels not built")
def test_simd_path_selection():
    erasure = COMPILED.erasure
    paths = erasure.available_paths()
    assert paths[-1] == "scalar" and erasure.active_path() in paths
    with pytest.raises(ValueError):
        erasure.use_path("no-such-path")


def test_indices_may_be_any_integer_sequence(impl):
    code = impl.erasure.ErasureCode(4, 2)
    data = random_data(11, 4, 70)
    everything = fragments_of(code, data)
    for indices in ([5, 1, 3, 0], (5, 1, 3, 0), np.array([5, 1, 3, 0]), [np.int64(5), np.uint8(1), 3, 0]):
        rows = everything[[int(i) for i in indices]]
        np.testing.assert_array_equal(code.decode(indices, rows), data)


def test_many_loss_patterns_share_one_code(impl):
    """Decode matrices are cached per pattern; interleaving patterns must not mix them."""
    code = impl.erasure.ErasureCode(3, 3)
    data = random_data(12, 3, 50)
    everything = fragments_of(code, data)
    patterns = list(itertools.permutations(range(6), 3))
    for indices in patterns + patterns[::-1]:
        np.testing.assert_array_equal(code.decode(list(indices), everything[list(indices)]), data)
