"""Corpus inputs read as a stream of records: text lines, JSON lines, CSV, Parquet and stdin; many files; shards.

A :class:`Source` is an ordered list of files (or standard input): one file, several, a glob (``"data/*.jsonl"``)
or a folder (every file in it, recursively, in sorted order, except names starting with ``.`` or ``_`` such as
Spark's ``_SUCCESS`` and ``.crc`` files). Its records come one at a time (memory is bounded by one Parquet
record batch at most), each saying where it came from (the file and line, or the row for Parquet). A record
that cannot be read -- a line that is not UTF-8, a JSON line that does not parse, a missing field, a value that
is not a string, a string that is not valid Unicode (an escaped lone surrogate) -- is a :class:`BadRecord`; the
caller decides whether it fails the run or is skipped and listed.

**Shards** (``shard=(i, n)``, the CLI's ``--shard i/n``) split the input into ``n`` contiguous, deterministic
parts that concatenate, in shard order, to the whole input: the files are laid end to end and cut into ``n``
equal byte ranges; a text or JSON line belongs to the shard holding its first byte, a Parquet row group to the
shard holding its share of the file's bytes, and a CSV file (a quoted field may hold a newline, so it cannot be
cut safely) to the shard holding its first byte. Every machine computes the same cut from the same files,
reading nothing but their sizes (and Parquet footers).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from staticst.errors import CorpusInputError, MissingDependencyError

__all__ = ["FORMATS", "BadRecord", "Record", "RecordBatch", "Source", "expand_inputs", "open_source", "parse_shard"]

#: Input formats by name, and the file extensions that select them.
FORMATS = {"text": (".txt", ".text", ""), "jsonl": (".jsonl", ".ndjson"), "csv": (".csv",), "parquet": (".parquet",)}
#: Bytes of a text file read (and decoded) at a time.
_TEXT_BLOCK_BYTES = 1 << 20
_PARQUET_BATCH = 8192
_PYARROW_HINT = "Parquet input needs pyarrow: pip install 'staticst[corpus]'."


class Record(NamedTuple):
    """One text of the corpus (a named tuple: one is made per line, so it must be cheap).

    Attributes:
        line: Where it came from in its file piece (see :meth:`Source.location`).
        text: The text.
        id: The value of the id field, when one was asked for.
    """

    line: int
    text: str
    id: Any = None


class RecordBatch(NamedTuple):
    """Consecutive readable records of one file piece, as three parallel sequences (no object per record).

    Attributes:
        lines: Where each came from in its piece (as :attr:`Record.line`).
        texts: The texts.
        ids: The id field's values, or ``None`` when no id field was asked for.
    """

    lines: Sequence[int]
    texts: list[str]
    ids: list[Any] | None = None


class BadRecord(NamedTuple):
    """A record that could not be read: where it is and why.

    Attributes:
        line: The 1-based line of a text / JSON lines / CSV file, or the 0-based row index of a Parquet file
            (as pyarrow and pandas count; ``unit`` says which).
        reason: Why it cannot be read.
        file: The file (``<stdin>`` for standard input).
        unit: ``"line"`` or ``"row"``.
    """

    line: int
    reason: str
    file: str = ""
    unit: str = "line"

    @property
    def where(self) -> str:
        """``file:line`` for lines, ``file: row index N`` for Parquet rows."""
        return f"{self.file}:{self.line}" if self.unit == "line" else f"{self.file}: row index {self.line}"

    def as_json(self) -> dict[str, Any]:
        """The entry of ``<output>.errors.jsonl``: ``{"file", "line" or "row", "reason"}``."""
        return {"file": self.file, self.unit: self.line, "reason": self.reason}


def parse_shard(value: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/n"`` or ``(i, n)`` checked: ``0 <= i < n``.

    Raises:
        ValueError: Not two integers with ``0 <= i < n``.
    """
    if value is None:
        return None
    try:
        if isinstance(value, str):
            index_text, count_text = value.split("/")
            index, count = int(index_text), int(count_text)
        else:
            index, count = (int(v) for v in value)
    except (ValueError, TypeError):
        raise ValueError(f"a shard is 'i/n' with 0 <= i < n (e.g. 0/4 ... 3/4), got {value!r}.") from None
    if not 0 <= index < count:
        raise ValueError(f"a shard is 'i/n' with 0 <= i < n (e.g. 0/4 ... 3/4), got {value!r}.")
    return index, count


def _shard_of(position: int, total: int, count: int) -> int:
    """The shard whose byte range ``[k * total // count, (k + 1) * total // count)`` holds ``position``."""
    if total <= 0:
        return 0
    shard = min(count - 1, position * count // total)
    while shard + 1 < count and (shard + 1) * total // count <= position:
        shard += 1
    while shard > 0 and shard * total // count > position:
        shard -= 1
    return shard


def _hidden(relative: Path) -> bool:
    return any(part.startswith((".", "_")) for part in relative.parts)


def expand_inputs(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> list[Path] | None:
    """The files named by ``paths``, in order: files as given, globs and folders expanded and sorted.

    Returns:
        The files, or ``None`` for standard input (``None`` or ``"-"``).

    Raises:
        CorpusInputError: A name that is no file, folder or matching glob; an empty folder; ``-`` among files.
    """
    if paths is None or (isinstance(paths, (str, os.PathLike)) and os.fspath(paths) == "-"):
        return None
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise CorpusInputError("no input given: name a corpus file, folder or glob, or - for standard input.")
    files: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if text == "-":
            raise CorpusInputError("standard input (-) cannot be mixed with files: give files only, or - alone.")
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
            if not found:
                raise CorpusInputError(
                    f"{path}: the folder holds no corpus file (names starting with . or _ are skipped)."
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not found:
                raise CorpusInputError(f"{text}: the pattern matches no file.")
            files.extend(found)
        elif path.exists():
            raise CorpusInputError(f"{path}: not a regular file or folder.")
        else:
            raise CorpusInputError(
                f"{path}: no such file. Give an existing corpus file, folder or glob, or - for standard input."
            )
    return files


def _format_of(path: Path | None, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise CorpusInputError(f"unknown input format {format!r}; use one of {', '.join(FORMATS)}.")
        return format
    suffix = "" if path is None else path.suffix.lower()
    return next((name for name, suffixes in FORMATS.items() if suffix in suffixes), "text")


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(_PYARROW_HINT) from exc
    return pq


@dataclass
class _Piece:
    """One file, or the part of it a shard reads: bytes ``[start, end)`` (text, JSON lines) or row groups."""

    path: Path | None  # None: standard input
    format: str
    size: int  # bytes this piece covers (for the progress estimate)
    start: int = 0  # first byte (text / jsonl)
    end: int | None = None  # end byte (text / jsonl), None: to the end
    row_groups: tuple[int, int] | None = None  # Parquet: [first, last) row group; None: all
    line_base: int | None = None  # lines before the piece (counted only when a location is needed)

    @property
    def name(self) -> str:
        return "<stdin>" if self.path is None else str(self.path)


class Source:
    """A corpus input: iterate :meth:`records`; :attr:`size` and :meth:`position` drive a progress bar.

    Args:
        path: A file, or ``None`` / ``"-"`` for standard input (see :func:`open_source` for many files).
        format: ``"text"``, ``"jsonl"``, ``"csv"`` or ``"parquet"`` (``None``: by each file's extension).
        field: The text field (JSON lines, CSV, Parquet; default ``"text"``).
        id_field: A field whose values are kept with the vectors (optional).
        shard: ``(i, n)``: read only the ``i``-th of ``n`` contiguous parts (see the module docstring).

    Raises:
        CorpusInputError: A file does not exist or cannot be opened, or a bad shard.
        MissingDependencyError: Parquet input without pyarrow.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
        format: str | None = None,
        field: str | None = None,
        id_field: str | None = None,
        shard: str | tuple[int, int] | None = None,
    ) -> None:
        self.files = expand_inputs(path)
        self.field = field or "text"
        self.id_field = id_field
        try:
            self.shard = parse_shard(shard)
        except ValueError as exc:
            raise CorpusInputError(str(exc)) from None
        if self.files is None:
            if self.shard is not None and self.shard[1] > 1:
                raise CorpusInputError(
                    "--shard needs input files (every machine must see the same input), not standard input."
                )
            self.formats = [_format_of(None, format)]
            if self.formats[0] == "parquet":
                raise CorpusInputError("Parquet input cannot come from standard input: give the file.")
            pieces = [_Piece(None, self.formats[0], 0)]
        else:
            self.formats = [_format_of(p, format) for p in self.files]
            if "parquet" in self.formats:
                _pyarrow_parquet()  # before any work: the output is not started without it
            pieces = self._plan()
        self.pieces = pieces
        self.format = self.formats[0] if len(set(self.formats)) == 1 else "mixed"
        self.path = None if self.files is None else self.files[0]  # the first file (None: stdin)
        if self.files is None:
            self.name = "<stdin>"
        elif len(self.files) == 1:
            self.name = str(self.files[0])
        else:
            self.name = f"{self.files[0]} and {len(self.files) - 1} more file(s)"
        if self.shard is not None:
            self.name += f" (shard {self.shard[0]}/{self.shard[1]})"
        self.size: int | None = None if self.files is None else sum(p.size for p in pieces)
        self.current: _Piece | None = None
        self._done_bytes = 0
        self._handle: BinaryIO | None = None

    @property
    def stdin(self) -> bool:
        """Whether the input is standard input (which cannot be resumed)."""
        return self.files is None

    # ------------------------------------------------------------------ the shard plan

    def _plan(self) -> list[_Piece]:
        assert self.files is not None
        sizes = []
        for path in self.files:
            try:
                sizes.append(path.stat().st_size)
            except OSError as exc:
                raise CorpusInputError(f"{path}: cannot be read ({exc.strerror}).") from None
        index, count = self.shard or (0, 1)
        total = sum(sizes)
        lo, hi = index * total // count, (index + 1) * total // count
        pieces: list[_Piece] = []
        offset = 0
        for path, fmt, size in zip(self.files, self.formats, sizes, strict=True):
            begin = offset
            offset += size
            if count == 1:
                pieces.append(_Piece(path, fmt, size))
            elif fmt in ("text", "jsonl"):  # a line belongs to the shard holding its first byte
                a, b = max(lo, begin) - begin, min(hi, begin + size) - begin
                if a < b:
                    pieces.append(_Piece(path, fmt, b - a, start=a, end=None if b >= size else b))
            elif fmt == "csv":  # whole files: a quoted field may hold a newline
                if _shard_of(begin, total, count) == index:
                    pieces.append(_Piece(path, fmt, size))
            else:  # parquet: row group j of k stands for the bytes from begin + size * j / k
                groups = self._row_groups(path)
                mine = [j for j in range(groups) if _shard_of(begin + size * j // groups, total, count) == index]
                if mine:
                    pieces.append(_Piece(path, fmt, size * len(mine) // groups, row_groups=(mine[0], mine[-1] + 1)))
        return pieces

    @staticmethod
    def _row_groups(path: Path) -> int:
        pq = _pyarrow_parquet()
        try:
            return int(pq.ParquetFile(path).metadata.num_row_groups)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
            raise CorpusInputError(f"{path}: not a Parquet file ({exc}).") from None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this input for ``resume``: every file's name, size and modification time, the shard."""
        files = []
        for path in self.files or []:
            stat = path.stat()
            files.append([str(path), stat.st_size, stat.st_mtime_ns])
        return {
            "files": files if self.files is not None else None,
            "formats": sorted(set(self.formats)),
            "field": self.field,
            "id_field": self.id_field,
            "shard": list(self.shard) if self.shard else None,
        }

    # ------------------------------------------------------------------ reading

    def position(self) -> int:
        """Bytes read so far (for a progress estimate over :attr:`size`)."""
        try:
            inside = (
                self._handle.tell() - (self.current.start if self.current else 0) if self._handle is not None else 0
            )
        except (OSError, ValueError):
            inside = 0
        return self._done_bytes + max(0, inside)

    def records(self) -> Iterator[Record | BadRecord]:
        """Every record of the input (of this shard), in order; :attr:`current` is the piece being read."""
        for item in self.items():
            if isinstance(item, RecordBatch):
                yield from map(Record, item.lines, item.texts, item.ids if item.ids is not None else repeat(None))
            else:
                yield item

    def items(self) -> Iterator[RecordBatch | Record | BadRecord]:
        """:meth:`records`, with runs of readable records as one :class:`RecordBatch` each (the runner's input)."""
        self._done_bytes = 0
        for piece in self.pieces:
            self.current = piece
            reader = {"text": self._text, "jsonl": self._jsonl, "csv": self._csv, "parquet": self._parquet}[
                piece.format
            ]
            yield from reader(piece)
            self._handle = None
            self._done_bytes += piece.size

    def location(self, line: int, piece: Any = None) -> str:
        """``file:line`` (or ``file: row index N``) of a record's ``line`` in ``piece`` (default: the one being read)."""
        piece = piece or self.current
        if piece is None:
            return self.name
        if piece.format == "parquet":
            return f"{piece.name}: row index {line}"
        return f"{piece.name}:{self._base(piece) + line}"

    def span(self, first: int, last: int, first_piece: Any = None, last_piece: Any = None) -> str:
        """Where a run of records lies: ``file, lines 9 to 12`` (``row indices`` for Parquet), or two locations."""
        start: _Piece | None = first_piece or self.current
        end: _Piece | None = last_piece or self.current
        if start is None or end is None or start is not end:
            return f"{self.location(first, start)} to {self.location(last, end)}"
        if start.format == "parquet":
            return f"{start.name}, row indices {first} to {last}"
        base = self._base(start)
        return f"{start.name}, lines {base + first} to {base + last}"

    @staticmethod
    def _base(piece: _Piece) -> int:
        """Lines before the piece (counted only when a location is needed: a shard rarely needs it)."""
        if piece.line_base is None:
            count = 0
            if piece.path is not None and piece.start:
                with piece.path.open("rb") as handle:
                    remaining = piece.start
                    while remaining > 0:
                        block = handle.read(min(remaining, 1 << 24))
                        if not block:
                            break
                        count += block.count(b"\n")
                        remaining -= len(block)
            piece.line_base = count
        return piece.line_base

    def _bad(self, piece: _Piece, line: int, reason: str) -> BadRecord:
        if piece.format == "parquet":
            return BadRecord(line, reason, piece.name, "row")
        return BadRecord(self._base(piece) + line, reason, piece.name, "line")

    def _open(self, piece: _Piece) -> BinaryIO:
        if piece.path is None:
            handle: BinaryIO = sys.stdin.buffer
        else:
            try:
                handle = piece.path.open("rb")
            except OSError as exc:
                raise CorpusInputError(f"{piece.name}: cannot be read ({exc.strerror}).") from None
            if piece.start:
                handle.seek(piece.start - 1)
                if handle.read(1) != b"\n":  # inside a line: it belongs to the previous shard
                    handle.readline()
                piece.start = handle.tell()  # the first byte of the first line of this piece
        self._handle = handle
        return handle

    def _close(self, handle: BinaryIO) -> None:
        if handle is not sys.stdin.buffer:
            handle.close()

    def _blocks(self, piece: _Piece, handle: BinaryIO) -> Iterator[list[bytes]]:
        """Blocks of whole lines (``readlines`` of about 1 MB), cut at the piece's end."""
        end = piece.end
        position = piece.start
        while block := handle.readlines(_TEXT_BLOCK_BYTES):
            if end is not None:
                size = sum(map(len, block))
                if position + size > end:  # lines starting at or after the end belong to the next shard
                    kept = []
                    for raw in block:
                        if position >= end:
                            break
                        kept.append(raw)
                        position += len(raw)
                    if kept:
                        yield kept
                    return
                position += size
            yield block

    def _text(self, piece: _Piece) -> Iterator[RecordBatch | Record | BadRecord]:
        handle = self._open(piece)
        number = 0
        try:
            for block in self._blocks(piece, handle):
                joined = b"".join(block)
                try:  # the common case: a whole block of valid UTF-8, decoded and split in two C calls
                    lines = joined.decode("utf-8").split("\n")
                except UnicodeDecodeError:
                    for raw in block:  # find the bad lines, one by one
                        number += 1
                        try:
                            yield Record(number, raw.decode("utf-8").rstrip("\r\n"))
                        except UnicodeDecodeError as exc:
                            yield self._bad(
                                piece, number, f"not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
                            )
                    continue
                if joined.endswith(b"\n"):
                    lines.pop()  # the empty string after the block's last newline
                if b"\r" in joined:
                    lines = [line.rstrip("\r") for line in lines]
                first = number + 1
                number += len(lines)
                yield RecordBatch(range(first, number + 1), lines)
        finally:
            self._close(handle)

    def _field(self, piece: _Piece, number: int, row: Any) -> Record | BadRecord:
        if not isinstance(row, dict):
            return self._bad(piece, number, f"a JSON {type(row).__name__}, not an object")
        if self.field not in row:
            return self._bad(piece, number, f"no field {self.field!r} (fields: {', '.join(map(repr, list(row)[:8]))})")
        text = row[self.field]
        if not isinstance(text, str):
            return self._bad(piece, number, f"field {self.field!r} is {type(text).__name__}, not a string")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # json.loads accepts an escaped lone surrogate ("\ud800")
                return self._bad(
                    piece,
                    number,
                    f"field {self.field!r} holds a lone surrogate ({text[exc.start]!r} at character {exc.start + 1}), "
                    "which is not valid Unicode",
                )
        ident = None
        if self.id_field is not None:
            if self.id_field not in row:
                return self._bad(piece, number, f"no id field {self.id_field!r}")
            ident = row[self.id_field]
            if isinstance(ident, str) and not ident.isascii():
                try:
                    ident.encode("utf-8")
                except UnicodeEncodeError:
                    return self._bad(
                        piece, number, f"id field {self.id_field!r} holds a lone surrogate, which is not valid Unicode"
                    )
        return Record(number, text, ident)

    def _jsonl(self, piece: _Piece) -> Iterator[Record | BadRecord]:
        handle = self._open(piece)
        number = 0
        try:
            for block in self._blocks(piece, handle):
                for raw in block:
                    number += 1
                    if not raw.strip():
                        yield self._bad(piece, number, "an empty line")
                        continue
                    try:
                        row = json.loads(raw)
                    except UnicodeDecodeError as exc:
                        yield self._bad(piece, number, f"not UTF-8 (at byte {exc.start + 1})")
                        continue
                    except ValueError as exc:
                        yield self._bad(piece, number, f"not JSON ({exc})")
                        continue
                    yield self._field(piece, number, row)
        finally:
            self._close(handle)

    def _csv(self, piece: _Piece) -> Iterator[Record | BadRecord]:
        handle = self._open(piece)
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="strict", newline="")
        try:
            reader = csv.DictReader(text)
            if reader.fieldnames is None or self.field not in reader.fieldnames:
                raise CorpusInputError(
                    f"{piece.name}: no column {self.field!r} (columns: {reader.fieldnames}); name it with --field."
                )
            if self.id_field is not None and self.id_field not in reader.fieldnames:
                raise CorpusInputError(f"{piece.name}: no id column {self.id_field!r} (columns: {reader.fieldnames}).")
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:
                    raise CorpusInputError(
                        f"{piece.name}: after line {reader.line_num}, the file is not UTF-8 ({exc.reason}); a CSV file "
                        "cannot be read past it: convert it with iconv, or use text / JSON lines input."
                    ) from None
                except csv.Error as exc:
                    yield self._bad(piece, reader.line_num, f"not CSV ({exc})")
                    continue
                yield self._field(piece, reader.line_num, row)
        finally:
            text.detach()
            self._close(handle)

    def _parquet(self, piece: _Piece) -> Iterator[RecordBatch | Record | BadRecord]:
        import pyarrow as pa

        pq = _pyarrow_parquet()
        try:
            parquet = pq.ParquetFile(piece.path)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
            raise CorpusInputError(f"{piece.name}: not a Parquet file ({exc}).") from None
        names = parquet.schema_arrow.names
        for column in [self.field] + ([self.id_field] if self.id_field else []):
            if column not in names:
                raise CorpusInputError(f"{piece.name}: no column {column!r} (columns: {names}); name it with --field.")
        columns = [self.field] + ([self.id_field] if self.id_field else [])
        first, last = piece.row_groups or (0, parquet.metadata.num_row_groups)
        row = sum(parquet.metadata.row_group(j).num_rows for j in range(first))  # 0-based, as pyarrow and pandas count
        groups = list(range(first, last))
        if not groups:
            return
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=columns, row_groups=groups):
            column = batch.column(0)
            texts = column.to_pylist()
            if column.null_count == 0 and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                # every value a string: one batch (string_view and dictionary columns take the per-row check)
                yield RecordBatch(
                    range(row, row + len(texts)), texts, batch.column(1).to_pylist() if self.id_field else None
                )
                row += len(texts)
                continue
            ids = batch.column(1).to_pylist() if self.id_field else [None] * len(texts)
            for text, ident in zip(texts, ids, strict=True):
                if isinstance(text, str):
                    yield Record(row, text, ident)
                else:
                    yield self._bad(
                        piece, row, f"column {self.field!r} is {'null' if text is None else type(text).__name__}"
                    )
                row += 1


def open_source(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    *,
    format: str | None = None,
    field: str | None = None,
    id_field: str | None = None,
    shard: str | tuple[int, int] | None = None,
) -> Source:
    """A corpus input: one file, several, globs or folders (see the module docstring), or ``None`` / ``"-"`` for stdin.

    Args:
        path: What to read.
        format: ``"text"``, ``"jsonl"``, ``"csv"`` or ``"parquet"`` for every file (``None``: by each file's
            extension; text for stdin and unknown extensions).
        field: The text field of JSON lines / CSV / Parquet input (default ``"text"``).
        id_field: A field whose values are kept with the vectors.
        shard: ``"i/n"`` or ``(i, n)``: this machine's part of the input.

    Raises:
        CorpusInputError: An unknown format name, a missing file, a pattern matching nothing, a bad shard.
        MissingDependencyError: Parquet input without pyarrow.
    """
    return Source(path, format, field, id_field, shard)
