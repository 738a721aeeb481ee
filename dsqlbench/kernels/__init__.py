"""The hot-path kernels, and the ONE place that picks which implementation runs.

Three kernels, each with a pure-Python reference twin that is its specification and a
compiled twin with the same names and signatures:

| kernel    | reference                       | compiled                                 |
|-----------|---------------------------------|------------------------------------------|
| merge     | ``kernels.merge.merge_until``   | ``_native.merge`` (Cython)               |
| erasure   | ``kernels.erasure.ErasureCode`` | ``_native.erasure`` (Cython, SIMD)       |
| conflicts | ``kernels.conflicts``           | ``kernels.conflicts_numba`` (Numba)      |

Selection, by the ``DSQLBENCH_KERNELS`` environment variable, read once at import:

- unset or ``compiled``: the compiled twins. A missing compiled module is an error
  *here*, at selection time, naming the module and saying how to build it or how to
  fall back; the lab never falls back silently.
- ``reference``: the reference twins.
- per kernel: ``merge=reference,erasure=compiled`` (kernels not named take
  ``compiled``); the implementation names ``cython``/``numba`` are accepted for
  ``compiled``.

``implementations()`` says what was picked; every result records it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from dsqlbench.errors import UserError
from dsqlbench.kernels.erasure import ErasureDecodeError, join_payload, split_payload

ENV_VAR = "DSQLBENCH_KERNELS"
KERNELS = ("merge", "erasure", "conflicts")

# kernel -> (compiled module, the name results record for it)
COMPILED = {
    "merge": ("dsqlbench._native.merge", "cython"),
    "erasure": ("dsqlbench._native.erasure", "cython"),
    "conflicts": ("dsqlbench.kernels.conflicts_numba", "numba"),
}
REFERENCE = {
    "merge": "dsqlbench.kernels.merge",
    "erasure": "dsqlbench.kernels.erasure",
    "conflicts": "dsqlbench.kernels.conflicts",
}
_COMPILED_ALIASES = {"compiled", "cython", "numba", "native"}


class KernelSelectionError(ImportError, UserError):
    """A requested kernel implementation cannot be loaded, or the setting is invalid.

    An ImportError (it is raised while importing this package) and a UserError (the
    CLI shows it as one line: the fix is a build or a setting, not a bug)."""


def parse_selection(value: str | None) -> dict[str, str]:
    """``DSQLBENCH_KERNELS`` -> {kernel: "compiled" | "reference"}."""
    text = (value or "compiled").strip().lower()
    if text in _COMPILED_ALIASES:
        return {kernel: "compiled" for kernel in KERNELS}
    if text == "reference":
        return {kernel: "reference" for kernel in KERNELS}
    choice = {kernel: "compiled" for kernel in KERNELS}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kernel, _, impl = part.partition("=")
        kernel, impl = kernel.strip(), impl.strip()
        if kernel not in KERNELS or impl not in _COMPILED_ALIASES | {"reference"}:
            raise KernelSelectionError(
                f"{ENV_VAR}={value!r}: expected 'compiled', 'reference' or a list like "
                f"'merge=reference,erasure=compiled' over kernels {', '.join(KERNELS)}")
        choice[kernel] = "reference" if impl == "reference" else "compiled"
    return choice


def _load(kernel: str, how: str) -> tuple[ModuleType, str]:
    if how == "reference":
        return importlib.import_module(REFERENCE[kernel]), "reference"
    module_name, label = COMPILED[kernel]
    try:
        return importlib.import_module(module_name), label
    except ImportError as error:
        raise KernelSelectionError(
            f"the compiled {kernel} kernel ({module_name}) is not available: {error}. "
            f"Build it with `pip install -e .` (or `python setup.py build_ext --inplace`) "
            f"from the source checkout, or run on the pure-Python reference kernels with "
            f"{ENV_VAR}=reference (slow; recorded in results).") from error


def _select() -> tuple[dict[str, ModuleType], dict[str, str]]:
    choice = parse_selection(os.environ.get(ENV_VAR))
    modules: dict[str, ModuleType] = {}
    labels: dict[str, str] = {}
    for kernel in KERNELS:
        modules[kernel], labels[kernel] = _load(kernel, choice[kernel])
    return modules, labels


_modules, _labels = _select()

merge_until = _modules["merge"].merge_until
ErasureCode = _modules["erasure"].ErasureCode
ConflictTable = _modules["conflicts"].ConflictTable


def implementations() -> dict[str, str]:
    """Which implementation runs per kernel: "cython", "numba" or "reference"."""
    return dict(_labels)


__all__ = [
    "ConflictTable",
    "ErasureCode",
    "ErasureDecodeError",
    "KernelSelectionError",
    "implementations",
    "join_payload",
    "merge_until",
    "split_payload",
]
