# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Crossbar erasure code: the compiled twin (Cython over C with run-time SIMD dispatch).

Same API as the reference ``dsqlbench.kernels.erasure`` (the specification, which is
in turn held to ``reedsolo``'s codewords): ``ErasureCode(k, m).encode(data)`` and
``.decode(indices, fragments)``, raising the reference's ``ErasureDecodeError``.
Parameters, the parity matrix and decode matrices come from the reference (they are
computed once per code and per loss pattern); only the byte work is compiled.
``ErasureDecodeError`` is the reference's class, so callers catch one type.

Decoding computes only the lost data rows, and copies the data fragments that arrived
in the same pass over memory; the decode matrix and its tables are cached per loss
pattern (LRU, ``DECODERS_MAX``). The common case is checked in C; anything unusual
(wrong types, repeated or out-of-range indices) goes to the reference's validation,
which raises the error the reference raises.

The SIMD path is picked at import from what the CPU supports (``active_path()``);
``use_path(name)`` switches it, so tests can hold every path the CPU has to the
reference. Both optional ``out=`` arguments take a preallocated result array.
"""

from collections import OrderedDict

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memset

cnp.import_array()

# The reference module is imported on first use, not at import: importing it runs
# dsqlbench.kernels, which imports this module to select it (a cycle otherwise).
_reference = None


cdef object _ref():
    global _reference
    if _reference is None:
        import dsqlbench.kernels.erasure as reference
        _reference = reference
    return _reference


def __getattr__(name):
    if name == "ErasureDecodeError":  # the one error type both twins raise
        return _ref().ErasureDecodeError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


cdef extern from "erasure_core.h":
    int EC_PATH_SCALAR, EC_PATH_SSSE3, EC_PATH_AVX2, EC_PATH_GFNI, EC_PATH_NEON
    void ec_init_tables()
    void ec_prepare(const uint8_t *coeffs, size_t count, uint8_t *nibbles, uint64_t *affine)
    uint64_t ec_affine_matrix(uint8_t c)
    unsigned ec_supported_paths()
    int ec_best_path(unsigned paths)
    void ec_apply(int path, const uint8_t *coeffs, const uint8_t *nibbles, const uint64_t *affine,
                  int rows, int cols, const uint8_t *const *src, uint8_t *const *dst,
                  uint8_t *const *copy, size_t length) nogil


ec_init_tables()

PATH_NAMES = {EC_PATH_SCALAR: "scalar", EC_PATH_SSSE3: "ssse3", EC_PATH_AVX2: "avx2",
              EC_PATH_GFNI: "gfni", EC_PATH_NEON: "neon"}
DECODERS_MAX = 1024  # cached loss patterns per code; each costs O(k * lost) bytes
cdef enum:
    FRAGMENTS_MAX = 255  # k + m <= 255

cdef unsigned _supported = ec_supported_paths()
cdef int _path = ec_best_path(_supported)


def available_paths():
    """Names of the multiply paths this CPU can run, best first."""
    order = [EC_PATH_GFNI, EC_PATH_AVX2, EC_PATH_NEON, EC_PATH_SSSE3, EC_PATH_SCALAR]
    return [PATH_NAMES[p] for p in order if _supported & (1u << p)]


def active_path():
    """The multiply path in use (picked at import as the best the CPU supports)."""
    return PATH_NAMES[_path]


def use_path(name):
    """Switch the multiply path (for tests and benchmarks); returns the previous name."""
    global _path
    wanted = {v: k for k, v in PATH_NAMES.items()}.get(name)
    if wanted is None or not (_supported & (1u << wanted)):
        raise ValueError(f"path {name!r} is not supported here; available: {available_paths()}")
    previous = PATH_NAMES[_path]
    _path = wanted
    return previous


def affine_matrix(int c):
    """The GF2P8AFFINEQB operand that multiplies by c (exposed so tests can check it
    on CPUs without GFNI)."""
    assert 0 <= c <= 255
    return int(ec_affine_matrix(<uint8_t>c))


cdef class _Tables:
    """A coefficient matrix, its prepared multiply tables, and (for a decoder) which
    data rows it rebuilds."""
    cdef object coeffs, nibbles, affine  # numpy arrays owning the memory below
    cdef const uint8_t *coeffs_ptr
    cdef const uint8_t *nibbles_ptr
    cdef const uint64_t *affine_ptr
    cdef int rows, cols
    cdef int lost[FRAGMENTS_MAX]  # decoder: the data row each output row rebuilds

    def __init__(self, coeffs, lost=()):
        self.coeffs = np.ascontiguousarray(coeffs, dtype=np.uint8)
        self.rows, self.cols = self.coeffs.shape
        count = self.rows * self.cols
        self.nibbles = np.zeros(max(count, 1) * 32, dtype=np.uint8)
        self.affine = np.zeros(max(count, 1), dtype=np.uint64)
        self.coeffs_ptr = <const uint8_t *>cnp.PyArray_DATA(self.coeffs)
        self.nibbles_ptr = <const uint8_t *>cnp.PyArray_DATA(self.nibbles)
        self.affine_ptr = <const uint64_t *>cnp.PyArray_DATA(self.affine)
        if count:
            ec_prepare(self.coeffs_ptr, count, <uint8_t *>self.nibbles_ptr, <uint64_t *>self.affine_ptr)
        for r, d in enumerate(lost):
            self.lost[r] = d


cdef bint _rows_ok(object array, int rows):
    """A uint8 2-D ndarray with that many rows, each row contiguous."""
    if not isinstance(array, np.ndarray):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>array
    return (cnp.PyArray_TYPE(a) == cnp.NPY_UINT8 and cnp.PyArray_NDIM(a) == 2
            and cnp.PyArray_DIMS(a)[0] == rows and (cnp.PyArray_DIMS(a)[1] <= 1 or cnp.PyArray_STRIDES(a)[1] == 1))


cdef uint8_t *_row(cnp.ndarray a, Py_ssize_t i):
    return <uint8_t *>cnp.PyArray_DATA(a) + i * cnp.PyArray_STRIDES(a)[0]


cdef cnp.ndarray _result(object out, int rows, Py_ssize_t length):
    if out is None:
        return np.empty((rows, length), dtype=np.uint8)
    if not _rows_ok(out, rows) or cnp.PyArray_DIMS(<cnp.ndarray>out)[1] != length \
            or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
        raise ValueError(f"out must be a writable uint8 array of shape ({rows}, {length}) with contiguous rows")
    return <cnp.ndarray>out


cdef class ErasureCode:
    """Systematic RS(k+m, k) over GF(2^8), byte-compatible with reedsolo."""
    cdef readonly int k, m
    cdef object _parity, _generator, _decoders
    cdef _Tables _encoder

    def __init__(self, k, m):
        _ref().validate_parameters(k, m)
        self.k = k
        self.m = m
        self._parity = _ref().parity_matrix(k, m)
        self._generator = np.concatenate([np.eye(k, dtype=np.uint8), self._parity], axis=0)
        self._encoder = _Tables(self._parity)
        self._decoders = OrderedDict()

    def __repr__(self):
        return f"ErasureCode(k={self.k}, m={self.m})"

    def encode(self, data, out=None):
        """The m parity rows for k data rows (uint8, shape (k, L) -> (m, L))."""
        if not _rows_ok(data, self.k):
            if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[0] == self.k:
                data = np.ascontiguousarray(data)  # rows not contiguous: copy once
            else:
                raise ValueError(f"data must be a uint8 array of shape ({self.k}, L)")
        cdef cnp.ndarray source = <cnp.ndarray>data
        cdef Py_ssize_t length = cnp.PyArray_DIMS(source)[1]
        cdef cnp.ndarray parity = _result(out, self.m, length)
        cdef const uint8_t *src[FRAGMENTS_MAX]
        cdef uint8_t *dst[FRAGMENTS_MAX]
        cdef int i
        if self.m == 0 or length == 0:
            return parity
        for i in range(self.k):
            src[i] = _row(source, i)
        for i in range(self.m):
            dst[i] = _row(parity, i)
        cdef _Tables t = self._encoder
        cdef int path = _path
        with nogil:
            ec_apply(path, t.coeffs_ptr, t.nibbles_ptr, t.affine_ptr, t.rows, t.cols, src, dst, NULL, length)
        return parity

    cdef _Tables _decoder(self, bytes key, const int *sorted_indices):
        """Tables for the lost data rows of one loss pattern (LRU cached)."""
        tables = self._decoders.get(key)
        if tables is not None:
            self._decoders.move_to_end(key)
            return tables
        rows = [sorted_indices[i] for i in range(self.k)]
        present = set(rows)
        lost = [d for d in range(self.k) if d not in present]
        inverse = _ref().gf_invert_matrix(self._generator[rows])
        tables = _Tables(inverse[lost], lost)
        self._decoders[key] = tables
        if len(self._decoders) > DECODERS_MAX:
            self._decoders.popitem(last=False)
        return tables

    def decode(self, indices, fragments, out=None):
        """The k data rows from k distinct fragments; row i of ``fragments`` is
        fragment ``indices[i]``. ``out`` must not overlap ``fragments``."""
        cdef int k = self.k, n = self.k + self.m, i, v, j
        cdef int row_of[FRAGMENTS_MAX]          # fragment index -> row of fragments
        cdef int sorted_indices[FRAGMENTS_MAX]
        cdef uint8_t seen[FRAGMENTS_MAX + 1]    # +1: the key is a bitmap in bytes
        memset(seen, 0, sizeof(seen))
        if not (_rows_ok(fragments, k) and isinstance(indices, (list, tuple)) and len(indices) == k):
            # Unusual input: the reference's checks raise what the reference raises.
            indices = _ref().validate_fragments(k, self.m, indices, fragments)
            fragments = np.ascontiguousarray(fragments)  # valid after all: rows were strided
        for i in range(k):
            try:
                v = indices[i]  # ints and anything with __index__ (numpy integers)
            except (TypeError, OverflowError):
                v = -1
            if v < 0 or v >= n or seen[v]:
                _ref().validate_fragments(k, self.m, indices, fragments)
                raise AssertionError("validate_fragments accepted what the fast check refused")
            seen[v] = 1
            row_of[v] = i
        j = 0
        for v in range(n):
            if seen[v]:
                sorted_indices[j] = v
                j += 1
        cdef cnp.ndarray source = <cnp.ndarray>fragments
        cdef Py_ssize_t length = cnp.PyArray_DIMS(source)[1]
        cdef cnp.ndarray data = _result(out, k, length)
        if length == 0:
            return data
        cdef _Tables t = self._decoder((<char *>seen)[:n], sorted_indices)
        cdef const uint8_t *src[FRAGMENTS_MAX]
        cdef uint8_t *copy[FRAGMENTS_MAX]
        cdef uint8_t *dst[FRAGMENTS_MAX]
        for j in range(k):  # sources in the order of the decode matrix's columns
            v = sorted_indices[j]
            src[j] = _row(source, row_of[v])
            copy[j] = _row(data, v) if v < k else NULL  # a data fragment that arrived is its row
        for i in range(t.rows):
            dst[i] = _row(data, t.lost[i])
        cdef int path = _path
        with nogil:
            ec_apply(path, t.coeffs_ptr, t.nibbles_ptr, t.affine_ptr, t.rows, t.cols, src, dst, copy, length)
        return data
