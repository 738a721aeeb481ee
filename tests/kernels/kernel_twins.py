"""The implementations under test, shared by the kernel suite's fixture and tests.

``REF`` is the reference twins (the specification); ``COMPILED`` the compiled twins, or
None when they are not built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from dsqlbench.kernels import conflicts as ref_conflicts
from dsqlbench.kernels import erasure as ref_erasure
from dsqlbench.kernels import merge as ref_merge


@dataclass(frozen=True)
class Impl:
    name: str
    merge: ModuleType
    erasure: ModuleType
    conflicts: ModuleType
    erasure_path: str | None = None  # the compiled erasure's SIMD path, if pinned


REF = Impl("reference", ref_merge, ref_erasure, ref_conflicts)


def _compiled() -> Impl | None:
    try:
        return Impl(
            "compiled",
            importlib.import_module("dsqlbench._native.merge"),
            importlib.import_module("dsqlbench._native.erasure"),
            importlib.import_module("dsqlbench.kernels.conflicts_numba"),
        )
    except ImportError:
        return None


COMPILED = _compiled()
