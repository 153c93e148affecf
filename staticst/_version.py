"""The package version, in a module of its own so that any module can read it without importing the package face."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
