"""Corpus outputs written as they go, resumable, and moved into place only when complete.

Every sink writes into ``<output>.partial/`` and records, at each checkpoint, how far its data is durable
(``fsync``-ed): ``.npy`` and raw ``.f32`` / ``.bin`` files and JSON lines are one growing file that a resumed
run truncates back to the last checkpoint; Parquet is one part file per checkpoint, merged at the end.
:meth:`Sink.finish` writes the final file under a temporary name in the output's folder and renames it over
``output`` (atomic on POSIX); an interrupted run leaves ``output`` untouched.

==========  ==============================================================================================
extension   what is written
==========  ==============================================================================================
``.npy``    an array ``(rows, width)``; the header is written last (its space is reserved)
``.f32``,   raw little-endian rows, plus ``<output>.json``: ``{"shape": [rows, width], "dtype": "<f4"}``
``.bin``
``.jsonl``  one JSON object per line: ``{"id" or "index": ..., "embedding": [...]}`` (float32 shortest repr),
            plus ``"text"`` when asked
``.parquet`` ``id`` / ``text`` columns when asked, and ``embedding`` as ``fixed_size_list<float32>[width]``
==========  ==============================================================================================

``width`` is the width of the vectors written: the model's dimension, or ``truncate_dim``; with
``precision="binary"`` / ``"ubinary"`` (8 dimensions packed per byte, as sentence-transformers packs them) the
rows are ``int8`` / ``uint8`` of ``ceil(width / 8)`` bytes (``fixed_size_list<int8>``, ``"|i1"``, ...). Every
batch is checked against it before it is written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from staticst.errors import CorpusOutputError, MissingDependencyError

__all__ = ["DTYPES", "SINKS", "Sink", "check_output", "open_sink", "remove_partial"]

_NPY_HEADER = 128  # bytes reserved for the .npy header: enough for any (rows, dim) float32 header
#: The row dtypes a sink writes: float32 vectors, or binary vectors packed 8 dimensions per byte.
DTYPES = {"float32": "<f4", "int8": "i1", "uint8": "u1"}


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


class Sink:
    """Base class: a growing data file in the partial folder, truncated to the checkpoint on resume.

    Args:
        output: The final file.
        partial: The work folder (``<output>.partial``).
        dim: The width of a row (vector dimensions; bytes for packed binary vectors).
        state: The state of a resumed run (from :meth:`checkpoint`), or ``None`` for a fresh one.
        keep_ids: Write the records' ids.
        keep_texts: Write the records' texts.
        dtype: ``float32``, or ``int8`` / ``uint8`` (packed binary vectors).
    """

    suffixes: tuple[str, ...] = ()

    def __init__(
        self,
        output: Path,
        partial: Path,
        dim: int,
        state: dict[str, Any] | None,
        keep_ids: bool,
        keep_texts: bool,
        dtype: str = "float32",
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
        self.output = output
        self.partial = partial
        self.dim = dim
        self.dtype = np.dtype(DTYPES[dtype])
        self.keep_ids = keep_ids
        self.keep_texts = keep_texts
        self.rows = int(state["rows"]) if state else 0
        self.data = partial / "data.tmp"
        self._open(state)

    def _open(self, state: dict[str, Any] | None) -> None:
        offset = int(state["bytes"]) if state else self._start()
        mode = "r+b" if state else "wb"
        self._handle = self.data.open(mode)
        if state:
            self._handle.truncate(offset)
        else:
            self._handle.write(b"\0" * offset)
        self._handle.seek(offset)

    def _start(self) -> int:
        """Bytes before the first row (a reserved header)."""
        return 0

    def check(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` as this sink's rows: exactly ``(n, dim)`` of its dtype, else an error (never a silent reshape)."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or vectors.dtype != self.dtype:
            raise CorpusOutputError(
                f"{self.output}: got a batch of {vectors.dtype} vectors of shape {vectors.shape}, but the file holds rows "
                f"of {self.dim} {self.dtype} values (please report: nothing wrong was written)."
            )
        return vectors

    def write(self, vectors: np.ndarray, ids: Sequence[Any], texts: Sequence[str]) -> None:
        """Append rows."""
        rows = self.check(vectors)
        self._handle.write(np.ascontiguousarray(rows, dtype=self.dtype.newbyteorder("<")).data)  # no copy
        self.rows += len(vectors)

    def checkpoint(self) -> dict[str, Any]:
        """Make everything written so far durable; returns the state a resumed run starts from."""
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return {"rows": self.rows, "bytes": self._handle.tell()}

    def _finalize(self) -> Path:
        """Turn the partial data into the final file's content; returns the file to move into place."""
        return self.data

    def finish(self) -> None:
        """Complete the output: finalize, then atomically replace ``output``."""
        self.checkpoint()
        self._handle.close()
        final = self._finalize()
        os.replace(final, self.output)

    def close(self) -> None:
        """Close without finishing (an interrupted run keeps its partial folder for ``resume``)."""
        if not self._handle.closed:
            self._handle.close()


class NpySink(Sink):
    """A ``.npy`` file: rows appended after a reserved header, the header written when the row count is known."""

    suffixes = (".npy",)

    def _start(self) -> int:
        return _NPY_HEADER

    def _finalize(self) -> Path:
        header = {"descr": self.dtype.newbyteorder("<").str, "fortran_order": False, "shape": (self.rows, self.dim)}
        with self.data.open("r+b") as handle:
            text = repr(header).encode("latin1")
            body = b"\x93NUMPY\x01\x00"
            pad = _NPY_HEADER - len(body) - 2 - len(text) - 1
            if pad < 0:
                raise CorpusOutputError(
                    f"{self.output}: the .npy header does not fit its reserved space (please report)."
                )
            payload = text + b" " * pad + b"\n"
            handle.write(body + len(payload).to_bytes(2, "little") + payload)
            handle.flush()
            os.fsync(handle.fileno())
        return self.data


class RawSink(Sink):
    """Raw little-endian float32 rows, with a JSON sidecar ``<output>.json`` for shape and dtype."""

    suffixes = (".f32", ".bin")

    def finish(self) -> None:  # noqa: D102 - see Sink.finish; the sidecar is in place before the data
        sidecar = self.output.with_name(self.output.name + ".json")
        tmp = self.partial / "sidecar.json"
        dtype = self.dtype.newbyteorder("<").str
        tmp.write_text(json.dumps({"shape": [self.rows, self.dim], "dtype": dtype, "byte_order": "little"}))
        _fsync(tmp)
        os.replace(tmp, sidecar)
        super().finish()


class JsonlSink(Sink):
    """JSON lines: the id (or the row index), the embedding as float32 shortest round-trip numbers, the text."""

    suffixes = (".jsonl",)

    def _open(self, state: dict[str, Any] | None) -> None:
        try:
            import orjson
        except ImportError as exc:  # orjson is a dependency of staticst; kept explicit for a broken install
            raise MissingDependencyError("JSON lines output needs orjson: pip install orjson.") from exc
        self._dumps = orjson.dumps
        self._numpy = orjson.OPT_SERIALIZE_NUMPY
        super()._open(state)

    def write(self, vectors: np.ndarray, ids: Sequence[Any], texts: Sequence[str]) -> None:  # noqa: D102
        key = "id" if self.keep_ids else "index"
        lines = []
        for i, row in enumerate(np.ascontiguousarray(self.check(vectors))):
            item: dict[str, Any] = {key: ids[i] if self.keep_ids else self.rows + i, "embedding": row}
            if self.keep_texts:
                item["text"] = texts[i]
            lines.append(self._dumps(item, option=self._numpy))
        self._handle.write(b"\n".join(lines) + (b"\n" if lines else b""))
        self.rows += len(vectors)


class ParquetSink(Sink):
    """Parquet: one part file per checkpoint in the partial folder, merged into one file at the end."""

    suffixes = (".parquet",)

    def _open(self, state: dict[str, Any] | None) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingDependencyError("Parquet output needs pyarrow: pip install 'staticst[corpus]'.") from exc
        self._pa, self._pq = pa, pq
        self.parts = int(state["parts"]) if state else 0
        for stale in self.partial.glob("part-*.parquet"):  # parts written after the last checkpoint
            if int(stale.stem.split("-")[1]) >= self.parts:
                stale.unlink()
        self._pending: list[Any] = []

    def _schema(self) -> Any:
        pa = self._pa
        fields = []
        if self.keep_ids:
            fields.append(pa.field("id", pa.string()))
        if self.keep_texts:
            fields.append(pa.field("text", pa.string()))
        fields.append(pa.field("embedding", pa.list_(self._value_type(), self.dim)))
        return pa.schema(fields)

    def write(self, vectors: np.ndarray, ids: Sequence[Any], texts: Sequence[str]) -> None:  # noqa: D102
        pa = self._pa
        flat = pa.array(np.ascontiguousarray(self.check(vectors)).reshape(-1), type=self._value_type())
        columns: list[Any] = []
        if self.keep_ids:
            columns.append(pa.array([None if i is None else str(i) for i in ids], type=pa.string()))
        if self.keep_texts:
            columns.append(pa.array(list(texts), type=pa.string()))
        columns.append(pa.FixedSizeListArray.from_arrays(flat, self.dim))
        self._pending.append(pa.Table.from_arrays(columns, schema=self._schema()))
        self.rows += len(vectors)

    def _options(self) -> dict[str, Any]:
        """Writer options: dictionary encoding and statistics for the id and text columns only.

        A vector column has no repeated values for a dictionary to find, and min / max over its elements help no
        reader; pyarrow's defaults try both on it, which took about 40% of writing (and half of reading back).
        """
        small = [name for name, keep in (("id", self.keep_ids), ("text", self.keep_texts)) if keep]
        return {"use_dictionary": small, "write_statistics": small}

    def _value_type(self) -> Any:
        return {"float32": self._pa.float32(), "int8": self._pa.int8(), "uint8": self._pa.uint8()}[self.dtype.name]

    def checkpoint(self) -> dict[str, Any]:  # noqa: D102
        if self._pending:
            table = self._pa.concat_tables(self._pending)
            part = self.partial / f"part-{self.parts:06d}.parquet"
            self._pq.write_table(table, part, **self._options())
            _fsync(part)
            self.parts += 1
            self._pending = []
        return {"rows": self.rows, "parts": self.parts}

    def finish(self) -> None:  # noqa: D102
        self.checkpoint()
        merged = self.partial / "merged.parquet"
        with self._pq.ParquetWriter(merged, self._schema(), **self._options()) as writer:
            for index in range(self.parts):
                writer.write_table(self._pq.read_table(self.partial / f"part-{index:06d}.parquet"))
        _fsync(merged)
        os.replace(merged, self.output)

    def close(self) -> None:  # noqa: D102
        self._pending = []


#: The sink of each output extension.
SINKS: dict[str, type[Sink]] = {
    suffix: sink for sink in (NpySink, RawSink, JsonlSink, ParquetSink) for suffix in sink.suffixes
}


def check_output(output: str | os.PathLike[str]) -> Path:
    """The output path, checked before any work: a known extension, a writable existing folder, not a folder.

    Raises:
        CorpusOutputError: The extension is unknown, the path is a folder, or its folder is missing or read-only.
    """
    path = Path(output)
    if path.suffix.lower() not in SINKS:
        raise CorpusOutputError(
            f"{path}: unknown output format {path.suffix or '(no extension)'!r}; use one of {', '.join(sorted(SINKS))}."
        )
    if path.is_dir():
        raise CorpusOutputError(f"{path} is a folder; name a file, e.g. {path / ('embeddings' + path.suffix)}.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CorpusOutputError(f"{path}: the folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise CorpusOutputError(f"{path}: the folder {parent} is not writable.")
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError as exc:  # before any work: no partial folder is created
            raise MissingDependencyError("Parquet output needs pyarrow: pip install 'staticst[corpus]'.") from exc
    return path


def open_sink(
    output: Path,
    partial: Path,
    dim: int,
    state: dict[str, Any] | None,
    *,
    keep_ids: bool,
    keep_texts: bool,
    dtype: str = "float32",
) -> Sink:
    """The sink for ``output``'s extension (see :data:`SINKS`)."""
    return SINKS[output.suffix.lower()](output, partial, dim, state, keep_ids, keep_texts, dtype)


def remove_partial(partial: Path) -> None:
    """Delete a work folder (after a completed run)."""
    shutil.rmtree(partial, ignore_errors=True)
