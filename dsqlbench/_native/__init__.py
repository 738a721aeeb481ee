"""Compiled twins of the hot-path kernels, built from ``native/*.pyx`` by setup.py.

- ``merge``: the crossbar's k-way merge cut at a watermark (``native/merge_core.h``);
- ``erasure``: the Reed-Solomon erasure code over GF(2^8) with run-time SIMD dispatch
  (``native/erasure_core.h``).

Nothing here is imported directly by the lab: ``dsqlbench.kernels`` selects the
implementations (and says how to build these when they are missing).
"""
