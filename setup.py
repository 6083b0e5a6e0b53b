"""Build the compiled media engine: every vosmedia/*.pyx becomes an optimised extension."""
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

OPTIMISE = ["-O3", "-fno-strict-aliasing", "-Wno-unused-function"]


def extensions():
    for pyx in sorted(Path("vosmedia").glob("*.pyx")):
        name = f"vosmedia.{pyx.stem}"
        yield Extension(name, [str(pyx)], extra_compile_args=OPTIMISE, libraries=["pthread"])


setup(
    ext_modules=cythonize(
        list(extensions()),
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
