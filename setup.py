"""Build the compiled media engine: every vosmedia/*.pyx becomes an optimised extension.

`_codec` links libbcg729 (G.729); the build checks first that its header and library are
there and otherwise stops, naming the Debian package to install."""
import sys
import tempfile
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPTIMISE = ["-O3", "-fno-strict-aliasing", "-Wno-unused-function"]
LIBRARIES = {"_codec": ["bcg729"]}

BCG729_PROBE = """\
#include <bcg729/encoder.h>
#include <bcg729/decoder.h>
int main(void) {
    closeBcg729EncoderChannel(initBcg729EncoderChannel(1));
    closeBcg729DecoderChannel(initBcg729DecoderChannel());
    return 0;
}
"""
BCG729_MISSING = ("vosmedia: cannot build vosmedia._codec: the G.729 library bcg729 (header "
                  "<bcg729/encoder.h> and libbcg729) was not found.\n"
                  "Install the Debian package libbcg729-dev (apt-get install libbcg729-dev), "
                  "or run scripts/setup.sh, then build again.")


def bcg729_available():
    """Compile and link a small program against bcg729 with the compiler the build uses."""
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "bcg729_probe.c")
        source.write_text(BCG729_PROBE)
        try:
            objects = compiler.compile([str(source)], output_dir=tmp)
            compiler.link_executable(objects, "bcg729_probe", output_dir=tmp, libraries=["bcg729"])
        except Exception:     # CompileError, LinkError: which module defines them varies
            return False
    return True


class BuildExt(build_ext):
    def run(self):
        if any("bcg729" in ext.libraries for ext in self.extensions) and not bcg729_available():
            sys.exit(BCG729_MISSING)
        super().run()


def extensions():
    for pyx in sorted(Path("vosmedia").glob("*.pyx")):
        name = f"vosmedia.{pyx.stem}"
        libraries = ["pthread"] + LIBRARIES.get(pyx.stem, [])
        yield Extension(name, [str(pyx)], extra_compile_args=OPTIMISE, libraries=libraries)


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        list(extensions()),
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
