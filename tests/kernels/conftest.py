"""The one fixture of the kernel suite: ``impl``, every implementation of the kernels.

Each test takes ``impl`` and holds it to the reference twins (``REF``), so a test is
written once and runs on the reference (which then checks itself against independent
oracles such as reedsolo) and on the compiled twins. Erasure tests also run once per
SIMD path the CPU supports beyond the default, so every multiply path is held to the
reference on the machine that runs the suite.
"""

from __future__ import annotations

import pytest

from kernel_twins import COMPILED, REF, Impl


def _params(module_name: str) -> list:
    if COMPILED is None:
        # A missing build is a failure, not a skip: CI must build the kernels.
        return [pytest.param(REF, id="reference"), pytest.param(None, id="compiled-missing")]
    params = [pytest.param(REF, id="reference"), pytest.param(COMPILED, id="compiled")]
    if "erasure" in module_name:
        default, *others = COMPILED.erasure.available_paths()
        params += [pytest.param(Impl(f"compiled-{p}", COMPILED.merge, COMPILED.erasure, COMPILED.conflicts, p),
                                id=f"compiled-{p}") for p in others]
    return params


def pytest_generate_tests(metafunc):
    if "impl" in metafunc.fixturenames:
        metafunc.parametrize("impl", _params(metafunc.module.__name__), indirect=True, scope="module")


@pytest.fixture(scope="module")
def impl(request):
    chosen = request.param
    if chosen is None:
        pytest.fail("compiled kernels are not built: run `pip install -e .` "
                    "or `python setup.py build_ext --inplace`")
    if chosen.erasure_path is None:
        yield chosen
        return
    previous = chosen.erasure.use_path(chosen.erasure_path)
    try:
        yield chosen
    finally:
        chosen.erasure.use_path(previous)
