"""Model persistence: disk layouts (``layout``), file reading/writing (``io``) and name resolution (``hub``)."""

from __future__ import annotations
