"""Selection of kernel implementations (DSQLBENCH_KERNELS) and the Numba cache folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import dsqlbench.kernels as kernels
from dsqlbench.errors import UserError
from dsqlbench.kernels import KernelSelectionError, parse_selection


def selected_in_subprocess(setting: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != kernels.ENV_VAR}
    if setting is not None:
        env[kernels.ENV_VAR] = setting
    code = "import json, dsqlbench.kernels as k; print(json.dumps(k.implementations()))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_default_is_compiled_and_recorded():
    result = selected_in_subprocess(None)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"merge": "cython", "erasure": "cython", "conflicts": "numba"}


def test_reference_on_request_and_per_kernel_override():
    result = selected_in_subprocess("reference")
    assert json.loads(result.stdout) == {k: "reference" for k in kernels.KERNELS}
    result = selected_in_subprocess("merge=reference, conflicts=compiled")
    assert json.loads(result.stdout) == {"merge": "reference", "erasure": "cython", "conflicts": "numba"}


def test_bad_setting_is_a_clear_error():
    result = selected_in_subprocess("fast")
    assert result.returncode != 0 and "DSQLBENCH_KERNELS='fast'" in result.stderr


@pytest.mark.parametrize("value, expected", [
    (None, "compiled"), ("", "compiled"), ("compiled", "compiled"), ("CYTHON", "compiled"), ("reference", "reference"),
])
def test_parse_selection_whole_settings(value, expected):
    assert parse_selection(value) == {k: expected for k in kernels.KERNELS}


@pytest.mark.parametrize("value", ["erasure", "merge=slow", "kernel=reference", "fast"])
def test_parse_selection_rejects(value):
    with pytest.raises(KernelSelectionError):
        parse_selection(value)


def test_missing_compiled_module_says_how_to_build_or_fall_back(monkeypatch):
    monkeypatch.setitem(kernels.COMPILED, "merge", ("dsqlbench._native.not_built", "cython"))
    with pytest.raises(KernelSelectionError) as caught:
        kernels._load("merge", "compiled")
    message = str(caught.value)
    assert "pip install -e ." in message and "DSQLBENCH_KERNELS=reference" in message
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, UserError)


def test_exports():
    assert set(kernels.implementations()) == set(kernels.KERNELS)
    for name in ("merge_until", "ErasureCode", "ErasureDecodeError", "ConflictTable", "split_payload", "join_payload"):
        assert hasattr(kernels, name)


def test_numba_cache_goes_to_a_user_folder_when_the_package_is_read_only(monkeypatch, tmp_path):
    import numba

    from dsqlbench.kernels import conflicts_numba

    package_dir = os.path.dirname(conflicts_numba.__file__)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == package_dir else real_access(p, mode))
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    chosen = conflicts_numba.configure_numba_cache()
    assert chosen == str(tmp_path / "dsqlbench" / "numba") and os.path.isdir(chosen)
    assert numba.config.CACHE_DIR == chosen


def test_numba_cache_respects_the_users_setting(monkeypatch, tmp_path):
    import numba

    from dsqlbench.kernels import conflicts_numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    assert conflicts_numba.configure_numba_cache() == str(tmp_path)
