"""Embedding a corpus of any size in bounded memory: :func:`embed_corpus` and :func:`encode_iter`.

``embed_corpus`` reads the input a batch at a time, encodes each batch (the compiled kernel uses every
core), writes it, and checkpoints: after each batch the output so far is durable and
``<output>.partial/manifest.json`` says how many input records were consumed. A killed run is continued
with ``resume=True`` and produces the same file as an uninterrupted one; ``output`` itself appears only
when the run is complete. Memory does not grow with the corpus: one batch of texts and vectors at a time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from staticst._version import __version__
from staticst.corpus.sinks import check_output, open_sink, remove_partial
from staticst.corpus.sources import BadRecord, Record, Source, open_source
from staticst.errors import CorpusInputError, CorpusOutputError

__all__ = ["CorpusReport", "embed_corpus", "encode_iter"]

#: Texts encoded per batch (and per checkpoint).
BATCH_TEXTS = 32_768
_ON_ERROR = ("fail", "skip")


@dataclass(frozen=True)
class CorpusReport:
    """What :func:`embed_corpus` did.

    Attributes:
        output: The file written.
        rows: Vectors written.
        skipped: Input records skipped (``on_error="skip"``), listed in :attr:`errors`.
        errors: ``<output>.errors.jsonl`` with one ``{"line", "reason"}`` object per skipped record, or ``None``.
        resumed_from: Input records a resumed run found already done (0 for a fresh run).
        seconds: Wall time of this run.
    """

    output: Path
    rows: int
    skipped: int
    errors: Path | None
    resumed_from: int
    seconds: float


def encode_iter(model: Any, texts: Iterable[str], *, batch_size: int = BATCH_TEXTS, **encode_kwargs: Any) -> Iterator[np.ndarray]:
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


def _fingerprint(model: Any, source: Source, output: Path, options: dict[str, Any]) -> dict[str, Any]:
    info = model.info()
    stat = source.path.stat() if source.path is not None else None
    return {
        "staticst": __version__,
        "model": {k: info.get(k) for k in ("model", "revision", "layout", "dim", "family", "normalize", "max_length")},
        "options": options,
        "input": {
            "name": source.name,
            "format": source.format,
            "field": source.field,
            "id_field": source.id_field,
            "size": stat.st_size if stat else None,
            "mtime_ns": stat.st_mtime_ns if stat else None,
        },
        "output": output.suffix.lower(),
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _progress(source: Source, show: bool | None) -> Any:
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return None
    from tqdm.auto import tqdm

    if source.size is not None:
        return tqdm(total=source.size, unit="B", unit_scale=True, desc="embedding", file=sys.stderr)
    return tqdm(unit=" texts", desc="embedding", file=sys.stderr)


def embed_corpus(
    model: Any,
    source: str | Path | Source | None,
    output: str | Path,
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
) -> CorpusReport:
    """Embed every record of ``source`` into ``output``, in bounded memory, resumably and atomically.

    Args:
        model: A :class:`~staticst.StaticSentenceTransformer`, or a model name / folder to load.
        source: A corpus file (text lines, ``.jsonl``, ``.csv``, ``.parquet``), ``None`` / ``"-"`` for standard
            input, or a :func:`~staticst.corpus.open_source` result.
        output: ``.npy``, ``.parquet``, ``.jsonl``, ``.f32`` or ``.bin`` (see :mod:`staticst.corpus.sinks`).
        resume: Continue the interrupted run that left ``<output>.partial``; it must be the same model, options
            and input (checked). Without it, a leftover partial folder is an error.
        on_error: ``"fail"``: a record that cannot be read stops the run with its file and line; ``"skip"``:
            it is skipped, counted and listed in ``<output>.errors.jsonl``.
        progress: A progress bar on stderr (``None``: when stderr is a terminal).
        batch_texts: Texts per batch and per checkpoint.
        keep_texts: Also write each text (JSON lines, Parquet).
        input_format: Override the format chosen from the extension (``text``, ``jsonl``, ``csv``, ``parquet``).
        field: The text field of JSON lines / CSV / Parquet input (default ``"text"``).
        id_field: A field whose values are written with each vector (JSON lines, Parquet).
        normalize_embeddings: L2-normalise the vectors.
        truncate_dim: Keep the first dimensions (Matryoshka).
        prompt_name: Prepend the model's prompt of this name.

    Returns:
        What was written.

    Raises:
        CorpusOutputError: A bad output path, a leftover partial folder without ``resume``, or a mismatched resume.
        CorpusInputError: A record that cannot be read (with ``on_error="fail"``), or a bad input.
    """
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}.")
    if isinstance(batch_texts, bool) or not isinstance(batch_texts, int) or batch_texts < 1:
        raise ValueError(f"batch_texts must be a positive integer, got {batch_texts!r}.")
    out = check_output(output)
    if isinstance(model, (str, Path)) or model is None:
        from staticst.model import StaticSentenceTransformer

        model = StaticSentenceTransformer(model)
    if not isinstance(source, Source):
        source = open_source(source, format=input_format, field=field, id_field=id_field)
    options = {
        "normalize_embeddings": bool(normalize_embeddings),
        "truncate_dim": truncate_dim,
        "prompt_name": prompt_name,
        "keep_texts": bool(keep_texts),
        "on_error": on_error,
    }
    fingerprint = _fingerprint(model, source, out, options)
    partial = out.with_name(out.name + ".partial")
    manifest_path = partial / "manifest.json"
    state: dict[str, Any] | None = None
    if partial.exists() and resume and not manifest_path.exists():
        remove_partial(partial)  # killed before its first checkpoint: nothing durable to continue from
    if partial.exists():
        if not resume:
            raise CorpusOutputError(
                f"{partial} was left by an interrupted run: pass resume=True (--resume) to continue it, or delete it."
            )
        if source.path is None:
            raise CorpusOutputError("a run reading standard input cannot be resumed: write the input to a file first.")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorpusOutputError(f"{manifest_path} is unreadable ({exc}); delete {partial} and start again.") from None
        if manifest.get("fingerprint") != fingerprint:
            changed = [k for k in fingerprint if manifest.get("fingerprint", {}).get(k) != fingerprint[k]]
            raise CorpusOutputError(
                f"{partial} belongs to another run (different {', '.join(changed)}); resume only the same model, "
                "options, input and output, or delete it."
            )
        state = manifest
    else:
        partial.mkdir()
    consumed = int(state["consumed"]) if state else 0
    skipped = int(state["skipped"]) if state else 0
    errors_path = partial / "errors.jsonl"
    with errors_path.open("ab") as errors:
        errors.truncate(int(state["errors_bytes"]) if state else 0)
    dim = int(model.get_sentence_embedding_dimension())
    sink = open_sink(
        out, partial, dim, state["sink"] if state else None, keep_ids=source.id_field is not None, keep_texts=keep_texts
    )
    started = time.perf_counter()
    bar = _progress(source, progress)
    kwargs = {"normalize_embeddings": normalize_embeddings, "truncate_dim": truncate_dim, "prompt_name": prompt_name}
    try:
        records: list[Record] = []
        bad: list[BadRecord] = []
        seen = 0

        def flush() -> None:
            nonlocal consumed, skipped, records, bad
            if records:
                vectors = model.encode([r.text for r in records], **kwargs)
                sink.write(np.asarray(vectors, dtype=np.float32), [r.id for r in records], [r.text for r in records])
            sink_state = sink.checkpoint()
            with errors_path.open("ab") as handle:
                handle.write(b"".join(json.dumps({"line": b.line, "reason": b.reason}).encode() + b"\n" for b in bad))
                handle.flush()
                os.fsync(handle.fileno())
                errors_bytes = handle.tell()
            consumed += len(records) + len(bad)
            skipped += len(bad)
            _write_json(
                manifest_path,
                {"fingerprint": fingerprint, "consumed": consumed, "skipped": skipped, "errors_bytes": errors_bytes, "sink": sink_state},
            )
            if bar is not None:
                if source.size is not None:
                    bar.update(max(0, source.position() - bar.n))
                else:
                    bar.update(len(records) + len(bad))
                bar.set_postfix(texts=f"{sink.rows:,}", refresh=False)
            records, bad = [], []

        if state is None:
            flush()  # the first checkpoint (nothing consumed yet): from here on the run can be resumed
        for item in source.records():
            seen += 1
            if seen <= consumed:  # done by the run being resumed
                continue
            if isinstance(item, BadRecord):
                if on_error == "fail":
                    raise CorpusInputError(
                        f"{source.name}:{item.line}: {item.reason}. Fix the input, or pass on_error='skip' (--on-error skip) "
                        "to skip such records and list them."
                    )
                bad.append(item)
            else:
                records.append(item)
            if len(records) + len(bad) >= batch_texts:
                flush()
        flush()
        sink.finish()
    except BaseException:
        sink.close()
        if bar is not None:
            bar.close()
        raise
    if bar is not None:
        bar.close()
    errors_out: Path | None = None
    if skipped:
        errors_out = out.with_name(out.name + ".errors.jsonl")
        os.replace(errors_path, errors_out)
    remove_partial(partial)
    return CorpusReport(out, sink.rows, skipped, errors_out, int(state["consumed"]) if state else 0, time.perf_counter() - started)
