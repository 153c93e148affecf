"""Builds the optional compiled kernel ``staticst._kernel`` (C11 through the CPython API).

Everything else about the package is in ``pyproject.toml``. The extension is optional: without a C
compiler the build goes on and staticst runs its pure numpy path (``staticst info`` says which backend
runs and why). ``STATICST_SANITIZE=1`` builds it with AddressSanitizer and UndefinedBehaviorSanitizer
(for CI); ``STATICST_NO_KERNEL=1`` skips it.
"""

from __future__ import annotations

import os

import numpy
from setuptools import Extension, setup

_SOURCES = ["module.c", "kernel_type.c", "batch.c", "wordtable.c", "tokenize.c", "pool.c", "threads.c"]
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
            sources=[f"staticst/_kernel/{name}" for name in _SOURCES],
            depends=["staticst/_kernel/kernel.h", "staticst/_kernel/objects.h"],
            include_dirs=[numpy.get_include()],
            extra_compile_args=_FLAGS,
            extra_link_args=_LINK,
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
