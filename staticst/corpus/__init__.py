"""Bulk encoding: a corpus of any size, streamed in bounded memory, resumable, written atomically.

``run`` (:func:`embed_corpus`, :func:`encode_iter`), ``sources`` (text lines, JSON lines, CSV, Parquet,
stdin) and ``sinks`` (``.npy``, ``.parquet``, ``.jsonl``, raw ``.f32`` / ``.bin`` with a JSON sidecar).
The ``staticst encode`` command is a thin layer over :func:`embed_corpus`; see ``docs/scale.md``.
"""

from __future__ import annotations

from staticst.corpus.run import CorpusReport, embed_corpus, encode_iter
from staticst.corpus.sinks import SINKS, check_output
from staticst.corpus.sources import FORMATS, open_source

__all__ = ["FORMATS", "SINKS", "CorpusReport", "check_output", "embed_corpus", "encode_iter", "open_source"]
