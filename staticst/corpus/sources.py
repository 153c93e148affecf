"""Corpus inputs read as a stream of records: text lines, JSON lines, CSV, Parquet and stdin.

Each source yields :class:`Record` objects one at a time (memory is bounded by one Parquet record batch at
most) and says where each came from (the line number, or the row for Parquet). A record that cannot be
read -- a line that is not UTF-8, a JSON line that does not parse, a missing field, a value that is not a
string -- is a :class:`BadRecord`; the caller decides whether it fails the run or is skipped and listed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from staticst.errors import CorpusInputError, MissingDependencyError

__all__ = ["FORMATS", "BadRecord", "Record", "Source", "open_source"]

#: Input formats by name, and the file extensions that select them.
#: Bytes of a text file read (and decoded) at a time.
_TEXT_BLOCK_BYTES = 1 << 20
FORMATS = {"text": (".txt", ".text", ""), "jsonl": (".jsonl", ".ndjson"), "csv": (".csv",), "parquet": (".parquet",)}


class Record(NamedTuple):
    """One text of the corpus (a named tuple: one is made per line, so it must be cheap).

    Attributes:
        line: Where it came from: the 1-based line of a text / JSON lines / CSV file, the 0-based row of a
            Parquet file.
        text: The text.
        id: The value of the id field, when one was asked for.
    """

    line: int
    text: str
    id: Any = None


class BadRecord(NamedTuple):
    """A record that could not be read: its location and why."""

    line: int
    reason: str


class Source:
    """A corpus input: iterate :meth:`records`; :attr:`size` and :meth:`position` drive a progress bar.

    Args:
        path: The file, or ``None`` / ``"-"`` for standard input.
        format: ``"text"``, ``"jsonl"``, ``"csv"`` or ``"parquet"``.
        field: The text field (JSON lines, CSV, Parquet; default ``"text"``).
        id_field: A field whose values are kept with the vectors (optional).

    Raises:
        CorpusInputError: The file does not exist or cannot be opened.
    """

    def __init__(self, path: str | Path | None, format: str, field: str | None = None, id_field: str | None = None) -> None:
        self.path = None if path is None or str(path) == "-" else Path(path)
        self.format = format
        self.field = field or "text"
        self.id_field = id_field
        self.name = "<stdin>" if self.path is None else str(self.path)
        if self.path is not None and not self.path.is_file():
            raise CorpusInputError(f"{self.name}: no such file. Give an existing corpus file, or - for standard input.")
        self.size = self.path.stat().st_size if self.path is not None else None
        self._handle: BinaryIO | None = None

    def position(self) -> int:
        """Bytes read so far (for a progress bar over :attr:`size`)."""
        try:
            return self._handle.tell() if self._handle is not None else 0
        except (OSError, ValueError):
            return 0

    def _open(self) -> BinaryIO:
        if self.path is None:
            self._handle = sys.stdin.buffer
        else:
            try:
                self._handle = self.path.open("rb")
            except OSError as exc:
                raise CorpusInputError(f"{self.name}: cannot be read ({exc.strerror}).") from None
        return self._handle

    def records(self) -> Iterator[Record | BadRecord]:
        """Every record of the input, in order."""
        reader = {"text": self._text, "jsonl": self._jsonl, "csv": self._csv, "parquet": self._parquet}[self.format]
        yield from reader()

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        handle = self._open()
        try:
            yield from enumerate(handle, start=1)
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()

    def _text(self) -> Iterator[Record | BadRecord]:
        handle = self._open()
        number = 0
        try:
            while block := handle.readlines(_TEXT_BLOCK_BYTES):
                joined = b"".join(block)
                try:  # the common case: a whole block of valid UTF-8, decoded and split in two C calls
                    lines = joined.decode("utf-8").split("\n")
                except UnicodeDecodeError:
                    for raw in block:  # find the bad lines, one by one
                        number += 1
                        try:
                            yield Record(number, raw.decode("utf-8").rstrip("\r\n"))
                        except UnicodeDecodeError as exc:
                            yield BadRecord(number, f"not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})")
                    continue
                if joined.endswith(b"\n"):
                    lines.pop()  # the empty string after the block's last newline
                if b"\r" in joined:
                    lines = [line.rstrip("\r") for line in lines]
                first = number + 1
                number += len(lines)
                yield from map(Record, range(first, number + 1), lines)
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()

    def _field(self, number: int, row: Any) -> Record | BadRecord:
        if not isinstance(row, dict):
            return BadRecord(number, f"a JSON {type(row).__name__}, not an object")
        if self.field not in row:
            return BadRecord(number, f"no field {self.field!r} (fields: {', '.join(map(repr, list(row)[:8]))})")
        text = row[self.field]
        if not isinstance(text, str):
            return BadRecord(number, f"field {self.field!r} is {type(text).__name__}, not a string")
        if self.id_field is not None and self.id_field not in row:
            return BadRecord(number, f"no id field {self.id_field!r}")
        return Record(number, text, row.get(self.id_field) if self.id_field is not None else None)

    def _jsonl(self) -> Iterator[Record | BadRecord]:
        for number, raw in self._lines():
            if not raw.strip():
                yield BadRecord(number, "an empty line")
                continue
            try:
                row = json.loads(raw)
            except UnicodeDecodeError as exc:
                yield BadRecord(number, f"not UTF-8 (at byte {exc.start + 1})")
                continue
            except ValueError as exc:
                yield BadRecord(number, f"not JSON ({exc})")
                continue
            yield self._field(number, row)

    def _csv(self) -> Iterator[Record | BadRecord]:
        handle = self._open()
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="strict", newline="")
        try:
            reader = csv.DictReader(text)
            if reader.fieldnames is None or self.field not in reader.fieldnames:
                raise CorpusInputError(
                    f"{self.name}: no column {self.field!r} (columns: {reader.fieldnames}); name it with --field."
                )
            if self.id_field is not None and self.id_field not in reader.fieldnames:
                raise CorpusInputError(f"{self.name}: no id column {self.id_field!r} (columns: {reader.fieldnames}).")
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:
                    raise CorpusInputError(
                        f"{self.name}: after line {reader.line_num}, the file is not UTF-8 ({exc.reason}); a CSV file "
                        "cannot be read past it: convert it with iconv, or use text / JSON lines input."
                    ) from None
                except csv.Error as exc:
                    yield BadRecord(reader.line_num, f"not CSV ({exc})")
                    continue
                yield self._field(reader.line_num, row)
        finally:
            text.detach()
            if handle is not sys.stdin.buffer:
                handle.close()

    def _parquet(self) -> Iterator[Record | BadRecord]:
        if self.path is None:
            raise CorpusInputError("Parquet input cannot come from standard input: give the file.")
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingDependencyError("Parquet input needs pyarrow: pip install 'staticst[corpus]'.") from exc
        try:
            parquet = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
            raise CorpusInputError(f"{self.name}: not a Parquet file ({exc}).") from None
        names = parquet.schema_arrow.names
        for column in [self.field] + ([self.id_field] if self.id_field else []):
            if column not in names:
                raise CorpusInputError(f"{self.name}: no column {column!r} (columns: {names}); name it with --field.")
        columns = [self.field] + ([self.id_field] if self.id_field else [])
        row = 0
        for batch in parquet.iter_batches(batch_size=8192, columns=columns):
            texts = batch.column(0).to_pylist()
            ids = batch.column(1).to_pylist() if self.id_field else [None] * len(texts)
            for text, ident in zip(texts, ids, strict=True):
                if isinstance(text, str):
                    yield Record(row, text, ident)
                else:
                    yield BadRecord(row, f"column {self.field!r} is {'null' if text is None else type(text).__name__}")
                row += 1


def open_source(
    path: str | Path | None, *, format: str | None = None, field: str | None = None, id_field: str | None = None
) -> Source:
    """A corpus input: the format from ``format`` or the file's extension (text for stdin and unknown ones).

    Raises:
        CorpusInputError: An unknown format name, or a missing file.
    """
    if format is None:
        suffix = "" if path in (None, "-") else Path(str(path)).suffix.lower()
        format = next((name for name, suffixes in FORMATS.items() if suffix in suffixes), "text")
    if format not in FORMATS:
        raise CorpusInputError(f"unknown input format {format!r}; use one of {', '.join(FORMATS)}.")
    return Source(path, format, field, id_field)
