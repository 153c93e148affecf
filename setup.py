"""Builds the optional compiled kernel ``staticst._kernel`` (C11 through the CPython API).

Everything else about the package is in ``pyproject.toml``. The extension is optional: without a C
compiler the build goes on and staticst runs its pure numpy path. The outcome is written next to the
extension, ``staticst/_kernel_build.json`` (``built``, or ``failed`` with the compiler's reason),
which ``staticst info`` and the first model load report (a failed build warns once per process). Every
build compiles afresh and a failed one removes the extension it would have replaced, so a reused clone's
``build/`` folder never ships an old ``.so``. ``STATICST_SANITIZE=1`` builds it with AddressSanitizer and
UndefinedBehaviorSanitizer (for CI); ``STATICST_NO_KERNEL=1`` skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_RECORD = "_kernel_build.json"


def _say(text: str) -> None:
    """Print a framed message on stderr (pip shows a build's output with ``-v``, or when it fails)."""
    bar = "!" * 78
    print(f"\n{bar}\n{text}\n{bar}\n", file=sys.stderr, flush=True)


class OptionalKernel(build_ext):
    """``build_ext`` that never reuses an earlier build and records (and announces) whether the kernel built."""

    def run(self) -> None:
        """Build every extension afresh: objects or a ``.so`` left in ``build/`` by an earlier build are never reused."""
        self.force = True
        super().run()

    def build_extension(self, ext: Any) -> None:
        """Build ``ext``; on failure remove any stale copy, record the reason and say it loudly."""
        target = Path(self.get_ext_fullpath(ext.name))
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - any compiler or linker failure: the numpy path takes over
            target.unlink(missing_ok=True)  # a stale .so from an earlier build would be packaged instead
            compiler = (getattr(self.compiler, "compiler_so", None) or ["the C compiler"])[0]
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            if len(detail) > 300:
                detail = f"{detail[:150]} ... {detail[-140:]}"
            reason = f"{compiler} failed ({detail})"
            self._record(target.parent, "failed", reason)
            _say(
                "WARNING: staticst's compiled kernel (staticst._kernel) could not be built:\n"
                f"  {reason}\n"
                "staticst is installed with its pure numpy backend: the same vectors, several times slower.\n"
                "`staticst info` shows the backend. To get the kernel: install a C compiler (e.g. gcc, or\n"
                "build-essential) and reinstall; to install without it on purpose, set STATICST_NO_KERNEL=1."
            )
            return
        compiler = getattr(self.compiler, "compiler_so", None) or ["the C compiler"]
        self._record(target.parent, "built", f"compiled by {compiler[0]}")

    def copy_extensions_to_source(self) -> None:
        """``--inplace`` and editable installs: copy the record too, and remove an extension that failed to build."""
        super().copy_extensions_to_source()
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            inplace_file, regular_file = (Path(f) for f in self._get_inplace_equivalent(build_py, ext))
            if not regular_file.exists():
                inplace_file.unlink(missing_ok=True)  # an old in-place build must not stay importable
            record = regular_file.parent / _RECORD
            if record.exists():
                shutil.copyfile(record, inplace_file.parent / _RECORD)

    @staticmethod
    def _record(package: Path, status: str, reason: str) -> None:
        package.mkdir(parents=True, exist_ok=True)
        (package / _RECORD).write_text(json.dumps({"status": status, "reason": reason}) + "\n", encoding="utf-8")

# Every C file in csrc/ is one translation unit of the kernel (sorted: the same build everywhere).
_SOURCES = sorted(p.name for p in Path("csrc").glob("*.c"))
_HEADERS = sorted(f"csrc/{p.name}" for p in Path("csrc").glob("*.h"))
# Exactness: no fused multiply-add contraction and no value-changing math flags; SIMD comes from -O3 and
# per-function target clones (AVX-512 / AVX2 / baseline), never from -march=native.
_FLAGS = ["-std=c11", "-O3", "-ffp-contract=off", "-fno-math-errno", "-D_GNU_SOURCE", "-Wall", "-Wno-unused-function", "-Wno-psabi"]
_LINK: list[str] = ["-pthread"]
if os.environ.get("STATICST_SANITIZE"):
    _FLAGS += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-O1"]
    _LINK += ["-fsanitize=address,undefined"]

ext_modules = []
if not os.environ.get("STATICST_NO_KERNEL"):
    ext_modules.append(
        Extension(
            "staticst._kernel",
            sources=[f"csrc/{name}" for name in _SOURCES],
            depends=_HEADERS,
            include_dirs=[numpy.get_include()],
            extra_compile_args=_FLAGS,
            extra_link_args=_LINK,
            optional=True,
        )
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalKernel})
