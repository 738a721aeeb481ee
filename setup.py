"""Build script: package metadata lives in pyproject.toml; this file adds what
setuptools cannot say declaratively there.

- The Cython hot paths in ``native/*.pyx`` are compiled into ``dsqlbench._native``.
- The shipped workload and topology files in ``workloads/`` are installed as the
  data package ``dsqlbench._workloads`` so that ``dsqlbench run`` finds its
  built-in default from any install, not only from a source checkout.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def native_extensions():
    """One extension per ``native/*.pyx``; none when Cython or the sources are absent.

    Flags are chosen for speed but stay portable: no ``-march=native``. The SIMD code
    paths in ``native/*_core.h`` are compiled with per-function target attributes and
    picked at run time by CPU feature detection, so one build runs on any x86-64 or
    AArch64 machine. Every extension depends on the C cores it includes, so editing a
    header rebuilds it.
    """
    sources = sorted((HERE / "native").glob("*.pyx"))
    if not sources:
        return []
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension

    headers = [str(h.relative_to(HERE)) for h in sorted((HERE / "native").glob("*.h"))]
    extensions = [
        Extension(
            f"dsqlbench._native.{source.stem}",
            [str(source.relative_to(HERE))],
            include_dirs=[numpy.get_include(), "native"],
            depends=headers,
            extra_compile_args=["-O3"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for source in sources
    ]
    return cythonize(extensions, language_level=3, quiet=True)

setup(
    ext_modules=native_extensions(),
    package_dir={"dsqlbench._workloads": "workloads"},
    packages=find_packages(include=["dsqlbench", "dsqlbench.*"]) + ["dsqlbench._workloads"],
    package_data={"dsqlbench._workloads": ["*.toml", "topologies/*.toml", "sweeps/*.toml",
                                           "sql/*.sql", "sql/*.pgbench"]},
)
