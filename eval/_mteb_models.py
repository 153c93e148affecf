"""MTEB harness, models: load the staticst model and the sentence-transformers ones behind mteb's encoder
protocol, and run one model over the prepared tasks with ``mteb.evaluate``."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, cast

from _mteb_data import PreparedTask

if TYPE_CHECKING:
    from _adapter import TimedSentenceTransformerWrapper, TimedStaticSTEncoder
    from mteb.models import ModelMeta
    from mteb.types import EncodeKwargs

    TimedEncoder: TypeAlias = TimedStaticSTEncoder | TimedSentenceTransformerWrapper
    """The two encoders the harness runs; both record ``encode_stats``."""

logger = logging.getLogger("staticst.eval.mteb")


@dataclass
class ModelRun:
    """One model's results over the tasks."""

    role: str
    encoder: TimedEncoder
    scores: dict[str, float] = field(default_factory=dict)
    result_files: dict[str, str] = field(default_factory=dict)
    texts: int = 0
    seconds: float = 0.0

    @property
    def meta(self) -> ModelMeta:
        """The encoder's mteb ``ModelMeta``."""
        return self.encoder.mteb_model_meta

    @property
    def throughput(self) -> float | None:
        """Texts encoded per second over the whole run."""
        return self.texts / self.seconds if self.texts and self.seconds > 0 else None


def load_static_encoder(
    model: str | None, name: str | None = None, revision: str | None = None, *, family: str | None = None
) -> TimedStaticSTEncoder:
    """The staticst model ``model`` (hub id or folder; None = built-in) behind mteb's encoder protocol (timed).

    ``family="model2vec"`` reads it under model2vec's rules (``[UNK]`` dropped, 512-token cut), as model2vec's
    published scores were computed; the default is sentence-transformers' (what ``SentenceTransformer`` gives).
    """
    from _adapter import TimedStaticSTEncoder

    from staticst import StaticSentenceTransformer

    return TimedStaticSTEncoder(StaticSentenceTransformer(model, family=family), name=name, revision=revision)


def load_st_encoder(
    model: str, name: str | None = None, revision: str | None = None, *, offline: bool = False
) -> TimedSentenceTransformerWrapper:
    """``sentence_transformers.SentenceTransformer(model)`` on the CPU behind mteb's own wrapper (timed).

    With ``offline`` a hub id is only looked up in the local cache (``local_files_only``).
    """
    from _adapter import TimedSentenceTransformerWrapper
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model, device="cpu", local_files_only=offline)
    if name is None and os.path.isdir(model):
        name = f"local/{Path(model).resolve().name}"
    return TimedSentenceTransformerWrapper(st, name=name, revision=revision)


def run_model(
    role: str, encoder: TimedEncoder, tasks: Sequence[PreparedTask], output: Path, seed: int, batch_size: int
) -> ModelRun:
    """Evaluate ``encoder`` on every available task with ``mteb.evaluate``; write mteb's result JSON."""
    import mteb

    run = ModelRun(role=role, encoder=encoder)
    # a cast, not an annotation: mteb imports NotRequired from typing, which mypy's target (3.10) lacks, so every
    # EncodeKwargs key reads as required
    encode_kwargs = cast("EncodeKwargs", {"batch_size": batch_size, "show_progress_bar": False})
    cache = mteb.ResultCache(output / "results" / role)
    for p in tasks:
        if p.task is None:
            continue
        before_texts, before_s = encoder.encode_stats.texts, encoder.encode_stats.seconds
        start = time.perf_counter()
        with _superseded_quiet():
            result = mteb.evaluate(
                encoder,
                p.fresh(seed),
                cache=cache,
                overwrite_strategy="always",
                show_progress_bar=False,
                co2_tracker=False,
                encode_kwargs=encode_kwargs,
            )
        task_result = result.task_results[0]
        run.scores[p.name] = float(task_result.get_score())
        run.result_files[p.name] = str(cache.get_task_result_path(p.name, encoder.mteb_model_meta))
        logger.info(
            "%s %s: %s=%.4f (%.1fs, %d texts in %.2fs encode)",
            role, p.name, p.metric, run.scores[p.name], time.perf_counter() - start,
            encoder.encode_stats.texts - before_texts, encoder.encode_stats.seconds - before_s,
        )  # fmt: skip
    run.texts, run.seconds = encoder.encode_stats.texts, encoder.encode_stats.seconds
    return run


@contextlib.contextmanager
def _superseded_quiet() -> Iterator[None]:
    """mteb's "task X is superseded by X.v2" (a warning and a log record per task and model), silenced here.

    The harness runs the paper's task versions on purpose (STSBenchmark, not STSBenchmark.v2); the notice
    was most of a run's output. Only that message is dropped, only for the duration of the block.
    """
    from _adapter import _DropRecords

    drop = _DropRecords("The task '")
    task_logger = logging.getLogger("mteb.abstasks.abstask")
    task_logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"The task '.*' is superseded by", category=UserWarning)
            yield
    finally:
        task_logger.removeFilter(drop)
