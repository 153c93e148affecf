"""Embedding a corpus of any size in bounded memory: :func:`embed_corpus` and :func:`encode_iter`.

``embed_corpus`` reads the input a batch at a time, encodes each batch (the compiled kernel uses every
core), writes it, and checkpoints: after each batch the output so far is durable and
``<output>.partial/manifest.json`` says how many input records were consumed. A killed run is continued
with ``resume=True`` and produces the same file as an uninterrupted one; ``output`` itself appears only
when the run is complete. Memory does not grow with the corpus: one batch of texts and vectors at a time.

A run holds an exclusive lock on ``<output>.partial/lock`` (holding its pid) from start to end, so a second run
on the same output fails at once naming the first one's pid. ``resume`` checks that everything that makes the
vectors is unchanged, by content: the table, ``mapping`` and ``weights`` (SHA-256 of their bytes, free for a
table in the node's shared copy, about 0.4 s per 0.5 GB otherwise), the tokenizer (its full serialisation), the
settings (token limit, truncation, pooling, family, prompts) and the encode options.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from staticst._version import __version__
from staticst.corpus.sinks import check_output, open_sink, remove_partial
from staticst.corpus.sources import BadRecord, RecordBatch, Source, open_source
from staticst.errors import CorpusInputError, CorpusOutputError
from staticst.persistence.io import array_digest

__all__ = ["CorpusReport", "embed_corpus", "encode_iter", "model_fingerprint"]

#: Texts encoded per batch (and per checkpoint).
BATCH_TEXTS = 32_768
_ON_ERROR = ("fail", "skip")
#: Precisions a streamed corpus can be written in: binary ones need no calibration (a sign per dimension).
STREAM_PRECISIONS = ("float32", "binary", "ubinary")
_DTYPE_OF = {"float32": "float32", "binary": "int8", "ubinary": "uint8"}


@dataclass(frozen=True)
class CorpusReport:
    """What :func:`embed_corpus` did.

    Attributes:
        output: The file written.
        rows: Vectors written.
        skipped: Input records skipped (``on_error="skip"``), listed in :attr:`errors`.
        errors: ``<output>.errors.jsonl`` with one ``{"file", "line" or "row", "reason"}`` object per skipped
            record, or ``None``.
        resumed_from: Input records a resumed run found already done (0 for a fresh run).
        seconds: Wall time of this run.
        texts: Records read by this run (written or skipped; a resumed run's earlier records excluded).
    """

    output: Path
    rows: int
    skipped: int
    errors: Path | None
    resumed_from: int
    seconds: float
    texts: int = 0

    @property
    def rows_per_second(self) -> float:
        """Records this run read per second of :attr:`seconds`."""
        return self.texts / self.seconds if self.seconds > 0 else 0.0


def encode_iter(
    model: Any, texts: Iterable[str], *, batch_size: int = BATCH_TEXTS, **encode_kwargs: Any
) -> Iterator[np.ndarray]:
    """Encode an iterable of texts of any length, yielding one ``(n, dim)`` array per batch of ``batch_size``.

    Args:
        model: A :class:`~staticst.StaticSentenceTransformer`.
        texts: Any iterable of ``str`` (a generator, a file's lines, ...); consumed lazily.
        batch_size: Texts per yielded array.
        **encode_kwargs: Passed to ``model.encode`` (e.g. ``normalize_embeddings``, ``truncate_dim``).

    Raises:
        ValueError: ``batch_size`` is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            yield model.encode(batch, **encode_kwargs)
            batch = []
    if batch:
        yield model.encode(batch, **encode_kwargs)


def model_fingerprint(model: Any) -> dict[str, Any]:
    """SHA-256 digests of everything in ``model`` that changes a vector: table, mapping, weights, tokenizer, settings.

    The table's digest costs nothing when it is the node's shared copy (its digest is known from loading) and
    about 0.4 s per 0.5 GB otherwise; the tokenizer's is of its full serialisation (``Tokenizer.to_str``).
    """
    engine = model.engine
    settings = {
        "tokenizer": repr(engine.tokenizer.settings),
        "pooling": repr(engine.pooling),
        "family": str(getattr(engine.family, "name", engine.family)),
        "prompts": getattr(model, "prompts", None),
        "default_prompt_name": getattr(model, "default_prompt_name", None),
        "truncate_dim": getattr(model, "truncate_dim", None),
    }
    return {
        "table": f"{engine.table.dtype.str}{list(engine.table.shape)}:{array_digest(engine.table)}",
        "mapping": None if engine.mapping is None else array_digest(engine.mapping),
        "weights": None if engine.weights is None else array_digest(engine.weights),
        "tokenizer": hashlib.sha256(engine.tokenizer.tokenizer.to_str().encode("utf-8")).hexdigest(),
        "settings": hashlib.sha256(json.dumps(settings, sort_keys=True, default=repr).encode("utf-8")).hexdigest(),
    }


def _fingerprint(model: Any, source: Source, output: Path, options: dict[str, Any]) -> dict[str, Any]:
    info = model.info()
    return {
        "staticst": __version__,
        "model": {k: info.get(k) for k in ("model", "revision", "layout", "dim", "family", "normalize", "max_length")},
        "content": model_fingerprint(model),
        "options": options,
        "input": source.fingerprint(),
        "output": output.suffix.lower(),
    }


def _mismatch(partial: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why a partial run cannot be resumed with these settings, naming what changed."""
    names = {
        "staticst": "the staticst version",
        "model": "the model (name, layout, dimension or settings)",
        "options": "the options",
        "input": "the input (files, sizes, modification times, fields or shard)",
        "output": "the output format",
    }
    changed = [names[k] for k in names if old.get(k) != new.get(k)]
    content_old, content_new = old.get("content") or {}, new["content"]
    parts = {
        "table": "table",
        "mapping": "mapping",
        "weights": "weights",
        "tokenizer": "tokenizer",
        "settings": "settings",
    }
    differ = [name for key, name in parts.items() if content_old.get(key) != content_new.get(key)]
    if differ:
        changed.insert(0, f"the model's content (its {', '.join(differ)} differ: another model, or its files changed)")
    return (
        f"{partial} belongs to another run: {'; '.join(changed) or 'its manifest'} changed. Its rows would mix with "
        "rows from this run: resume only the same model, options, input and output, or delete it to start again."
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _terminal_size() -> tuple[int, int]:
    """Stderr's terminal size; a terminal that reports 0 x 0 (``script``, some CI runners) counts as 80 x 24."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
        return size.columns or 80, size.lines or 24
    except (OSError, ValueError, AttributeError):
        return 80, 24


def _progress(show: bool | None, initial: int) -> Any:
    """A bar counting texts (its total estimated from the bytes read), or ``None``."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return None
    from tqdm.auto import tqdm

    columns, lines = _terminal_size()
    # tqdm takes a 0-line terminal for one that shows no bar at all: give it the size explicitly
    return tqdm(
        unit=" texts", unit_scale=True, desc="embedding", file=sys.stderr, initial=initial, ncols=columns, nrows=lines
    )


class _Lock:
    """The exclusive lock of one output: ``<output>.partial/lock`` holds the pid of the run writing it."""

    def __init__(self, output: Path, partial: Path) -> None:
        import fcntl

        self.fd = -1
        for _ in range(5):
            self.created = False
            try:
                partial.mkdir()
                self.created = True
            except FileExistsError:
                if not partial.is_dir():
                    raise CorpusOutputError(f"{partial} exists and is not a folder: delete it.") from None
            lock = partial / "lock"
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:  # the folder was removed meanwhile (a run finished): look again
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise CorpusOutputError(
                        f"{lock} cannot be locked ({exc.strerror}); write the output on a local disk."
                    ) from None
                raise CorpusOutputError(
                    f"{output} is in use by another staticst run (pid {holder}): wait for it to finish or stop it "
                    "(two runs must not write one output), or write to another file."
                ) from None
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # locked a file its finished run had just deleted: look again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            self.fd = fd
            return
        raise CorpusOutputError(f"{partial}: could not take the output's lock (it kept changing); try again.")

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _clear_partial(partial: Path) -> None:
    """Empty a partial folder (all but its lock): a run killed before its first checkpoint left nothing to continue."""
    for entry in partial.iterdir():
        if entry.name != "lock":
            if entry.is_dir():
                remove_partial(entry)
            else:
                entry.unlink()


def embed_corpus(
    model: Any,
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Source | None,
    output: str | os.PathLike[str],
    *,
    resume: bool = False,
    on_error: str = "fail",
    progress: bool | None = None,
    batch_texts: int = BATCH_TEXTS,
    keep_texts: bool = False,
    input_format: str | None = None,
    field: str | None = None,
    id_field: str | None = None,
    normalize_embeddings: bool = False,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    precision: str = "float32",
    shard: str | tuple[int, int] | None = None,
) -> CorpusReport:
    """Embed every record of ``source`` into ``output``, in bounded memory, resumably and atomically.

    Args:
        model: A :class:`~staticst.StaticSentenceTransformer`, or a model name / folder to load.
        source: A corpus file (text lines, ``.jsonl``, ``.csv``, ``.parquet``), several, a glob or a folder
            (see :mod:`staticst.corpus.sources`), ``None`` / ``"-"`` for standard input, or an
            :func:`~staticst.corpus.open_source` result.
        output: ``.npy``, ``.parquet``, ``.jsonl``, ``.f32`` or ``.bin`` (see :mod:`staticst.corpus.sinks`).
        resume: Continue the interrupted run that left ``<output>.partial``; it must be the same model (by
            content), options and input (checked). Without it, a leftover partial folder is an error.
        on_error: ``"fail"``: a record that cannot be read stops the run with its file and line; ``"skip"``:
            it is skipped, counted and listed in ``<output>.errors.jsonl``.
        progress: A progress bar on stderr, counting texts (``None``: when stderr is a terminal).
        batch_texts: Texts per batch and per checkpoint.
        keep_texts: Also write each text (JSON lines, Parquet).
        input_format: Override the format chosen from the extension (``text``, ``jsonl``, ``csv``, ``parquet``).
        field: The text field of JSON lines / CSV / Parquet input (default ``"text"``).
        id_field: A field whose values are written with each vector (JSON lines, Parquet).
        normalize_embeddings: L2-normalise the vectors.
        truncate_dim: Keep the first dimensions (Matryoshka); the output's width is this.
        prompt_name: Prepend the model's prompt of this name.
        precision: ``"float32"``, or ``"binary"`` / ``"ubinary"`` (int8 / uint8 rows of ``ceil(width / 8)``
            packed bits, as sentence-transformers packs them). ``int8`` / ``uint8`` take their ranges from the
            whole call, which a stream does not have: quantize the float32 output afterwards.
        shard: ``"i/n"`` or ``(i, n)``: embed only this machine's part of the input (see
            :mod:`staticst.corpus.sources`); the ``n`` outputs concatenate to the single-machine output.

    Returns:
        What was written.

    Raises:
        CorpusOutputError: A bad output path, a leftover partial folder without ``resume``, a mismatched resume,
            or another run writing the same output.
        CorpusInputError: A record that cannot be read (with ``on_error="fail"``), or a bad input.
        ValueError: A bad option.
    """
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}.")
    if isinstance(batch_texts, bool) or not isinstance(batch_texts, int) or batch_texts < 1:
        raise ValueError(f"batch_texts must be a positive integer, got {batch_texts!r}.")
    if precision not in STREAM_PRECISIONS:
        raise ValueError(
            f"precision={precision!r} cannot be streamed: int8 / uint8 take their ranges from the embeddings of the "
            "whole call, which a corpus streamed in batches never has in one piece. Write float32 and quantize "
            "afterwards with staticst.util.quantize_embeddings(emb, 'int8', calibration_embeddings=a_sample); "
            "'binary' and 'ubinary' need no calibration and stream."
        )
    out = check_output(output)
    if isinstance(model, (str, Path)) or model is None:
        from staticst.model import StaticSentenceTransformer

        model = StaticSentenceTransformer(model)
    if not isinstance(source, Source):
        source = open_source(source, format=input_format, field=field, id_field=id_field, shard=shard)
    kwargs: dict[str, Any] = {
        "normalize_embeddings": normalize_embeddings,
        "truncate_dim": truncate_dim,
        "prompt_name": prompt_name,
    }
    if precision != "float32":
        kwargs["precision"] = precision
    probe = np.asarray(model.encode(["width"], **kwargs))  # the effective width and dtype, exactly as encode gives them
    width, dtype = int(probe.shape[1]), str(probe.dtype)
    if dtype != _DTYPE_OF[precision]:
        raise CorpusOutputError(f"precision={precision!r} gave {dtype} vectors (please report).")
    options = {
        "normalize_embeddings": bool(normalize_embeddings),
        "truncate_dim": truncate_dim,
        "prompt_name": prompt_name,
        "precision": precision,
        "width": width,
        "keep_texts": bool(keep_texts),
        "on_error": on_error,
    }
    partial = out.with_name(out.name + ".partial")
    lock = _Lock(out, partial)
    try:
        return _run(
            model, source, out, partial, lock, resume, on_error, progress, batch_texts, keep_texts, options, kwargs
        )
    finally:
        lock.release()


def _run(
    model: Any,
    source: Source,
    out: Path,
    partial: Path,
    lock: _Lock,
    resume: bool,
    on_error: str,
    progress: bool | None,
    batch_texts: int,
    keep_texts: bool,
    options: dict[str, Any],
    kwargs: dict[str, Any],
) -> CorpusReport:
    manifest_path = partial / "manifest.json"
    state: dict[str, Any] | None = None
    if not lock.created:
        if not resume:
            raise CorpusOutputError(
                f"{partial} was left by an interrupted run: pass resume=True (--resume) to continue it, or delete it."
            )
        if not manifest_path.exists():
            _clear_partial(partial)  # killed before its first checkpoint: nothing durable to continue from
        else:
            if source.stdin:
                raise CorpusOutputError(
                    "a run reading standard input cannot be resumed: write the input to a file first."
                )
            try:
                state = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CorpusOutputError(
                    f"{manifest_path} is unreadable ({exc}); delete {partial} and start again."
                ) from None
            if not isinstance(state, dict):
                raise CorpusOutputError(f"{manifest_path} is not a manifest; delete {partial} and start again.")
    fingerprint = _fingerprint(model, source, out, options)
    if state is not None and state.get("fingerprint") != fingerprint:
        raise CorpusOutputError(_mismatch(partial, state.get("fingerprint") or {}, fingerprint))
    consumed = int(state["consumed"]) if state else 0
    skipped = int(state["skipped"]) if state else 0
    errors_path = partial / "errors.jsonl"
    with errors_path.open("ab") as errors:
        errors.truncate(int(state["errors_bytes"]) if state else 0)
    sink = open_sink(
        out,
        partial,
        int(options["width"]),
        state["sink"] if state else None,
        keep_ids=source.id_field is not None,
        keep_texts=keep_texts,
        dtype=_DTYPE_OF[options["precision"]],
    )
    started = time.perf_counter()
    bar = _progress(progress, consumed)
    read = 0
    try:
        # the batch being gathered: the readable records as parallel lists (no object per record), the bad ones
        texts: list[str] = []
        ids: list[Any] = []
        lines: list[int] = []
        bad: list[BadRecord] = []
        pieces: list[tuple[int, Any]] = []  # (index in the batch, the file piece its records come from)
        seen = 0

        def piece_of(index: int) -> Any:
            return next(p for i, p in reversed(pieces) if i <= index) if pieces else None

        def encode() -> np.ndarray:
            try:
                return np.asarray(model.encode(texts, **kwargs))
            except Exception as exc:  # any failure of the model on these texts: say which records
                last = len(texts) - 1
                span = source.span(lines[0], lines[last], piece_of(0), piece_of(last))
                raise CorpusInputError(
                    f"{span}: encoding these {len(texts):,} records failed ({type(exc).__name__}: {exc})."
                ) from exc

        def flush() -> None:
            nonlocal consumed, skipped, texts, ids, lines, bad, pieces, read
            if texts:
                sink.write(encode(), ids, texts)
            sink_state = sink.checkpoint()
            with errors_path.open("ab") as handle:
                handle.write(b"".join(json.dumps(b.as_json()).encode() + b"\n" for b in bad))
                handle.flush()
                os.fsync(handle.fileno())
                errors_bytes = handle.tell()
            done = len(texts) + len(bad)
            consumed += done
            skipped += len(bad)
            read += done
            _write_json(
                manifest_path,
                {
                    "fingerprint": fingerprint,
                    "consumed": consumed,
                    "skipped": skipped,
                    "errors_bytes": errors_bytes,
                    "sink": sink_state,
                },
            )
            if bar is not None and done:
                bar.update(done)
                if source.size and source.position() > 0:  # the total, estimated from the bytes read so far
                    bar.total = max(bar.n, int(bar.n * source.size / source.position()))
                bar.refresh()
            texts, ids, lines, bad, pieces = [], [], [], [], []

        if state is None:
            flush()  # the first checkpoint (nothing consumed yet): from here on the run can be resumed
        current = None
        for item in source.items():
            if isinstance(item, RecordBatch):  # a run of readable records: taken in slices, a checkpoint between
                n = len(item.texts)
                i = max(0, consumed - seen)  # the first i were done by the run being resumed
                seen += n
                while i < n:
                    if source.current is not current:
                        current = source.current
                        pieces.append((len(texts), current))
                    take = min(n - i, batch_texts - len(texts) - len(bad))
                    texts += item.texts[i : i + take]
                    lines += item.lines[i : i + take]
                    ids += item.ids[i : i + take] if item.ids is not None else repeat(None, take)
                    i += take
                    if len(texts) + len(bad) >= batch_texts:
                        flush()
                        current = None
                continue
            seen += 1
            if seen <= consumed:  # done by the run being resumed
                continue
            if source.current is not current:
                current = source.current
                pieces.append((len(texts), current))
            if isinstance(item, BadRecord):
                if on_error == "fail":
                    raise CorpusInputError(
                        f"{item.where}: {item.reason}. Fix the input, or pass on_error='skip' (--on-error skip) "
                        "to skip such records and list them."
                    )
                bad.append(item)
            else:
                texts.append(item.text)
                ids.append(item.id)
                lines.append(item.line)
            if len(texts) + len(bad) >= batch_texts:
                flush()
                current = None
        flush()
        sink.finish()
    except BaseException:
        sink.close()
        if bar is not None:
            bar.close()
        raise
    if bar is not None:
        bar.total = bar.n
        bar.close()
    errors_out: Path | None = None
    if skipped:
        errors_out = out.with_name(out.name + ".errors.jsonl")
        os.replace(errors_path, errors_out)
    remove_partial(partial)
    return CorpusReport(
        out, sink.rows, skipped, errors_out, int(state["consumed"]) if state else 0, time.perf_counter() - started, read
    )
