"""mteb adapters for the harness: staticst's mteb encoder and mteb's sentence-transformers wrapper, both timed.

The encoder itself lives in the library, :class:`staticst.integrations.mteb.StaticSTEncoder` (re-exported here,
with :func:`~staticst.integrations.mteb.static_model_meta`): it puts a :class:`staticst.StaticSentenceTransformer`
behind mteb's ``EncoderProtocol`` exactly as mteb's own ``SentenceTransformerEncoderWrapper`` does for a
``SentenceTransformer``, so the same model gives the same scores through either path.

The harness runs both through thin subclasses that record how many texts they encoded and for how long
(``encode_stats``), which it turns into the throughput axis of its quality-vs-speed plot.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mteb.models import SentenceTransformerEncoderWrapper

from staticst.integrations.mteb import StaticSTEncoder, static_model_meta

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.types import Array, BatchedInput, PromptType
    from torch.utils.data import DataLoader

__all__ = [
    "EncodeStats",
    "StaticSTEncoder",
    "TimedSentenceTransformerWrapper",
    "TimedStaticSTEncoder",
    "static_model_meta",
]


@dataclass
class EncodeStats:
    """Texts encoded and wall-clock seconds spent in ``encode`` (accumulated over calls)."""

    texts: int = 0
    seconds: float = 0.0

    def add(self, texts: int, seconds: float) -> None:
        """Record one ``encode`` call."""
        self.texts += texts
        self.seconds += seconds

    @property
    def throughput(self) -> float | None:
        """Texts per second, or None before anything was encoded."""
        if self.texts == 0 or self.seconds <= 0:
            return None
        return self.texts / self.seconds


class TimedStaticSTEncoder(StaticSTEncoder):
    """:class:`staticst.integrations.mteb.StaticSTEncoder`, unchanged except that it records ``encode_stats``.

    Takes the same arguments (``TimedStaticSTEncoder(model, name=..., revision=...)``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encode_stats = EncodeStats()

    def encode(
        self,
        inputs: DataLoader[BatchedInput],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> Array:
        """Encode through ``StaticSTEncoder.encode`` and record the time it took."""
        start = time.perf_counter()
        out = super().encode(
            inputs,
            task_metadata=task_metadata,
            hf_split=hf_split,
            hf_subset=hf_subset,
            prompt_type=prompt_type,
            **kwargs,
        )
        self.encode_stats.add(int(out.shape[0]), time.perf_counter() - start)
        return out


class _DropRecords(logging.Filter):
    """Drops the log records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def _static_table_parameters(model: Any) -> int | None:
    """Rows x dimensions of a sentence-transformers model's ``StaticEmbedding`` table (None for other models)."""
    first = model[0] if len(model) else None
    weight = getattr(getattr(first, "embedding", None), "weight", None)
    if type(first).__name__ != "StaticEmbedding" or weight is None:
        return None
    return int(weight.shape[0] * weight.shape[1])


class TimedSentenceTransformerWrapper(SentenceTransformerEncoderWrapper):
    """mteb's own sentence-transformers wrapper, unchanged except that it records ``encode_stats``.

    Args:
        model: A loaded ``SentenceTransformer``.
        name: Name to record in ``ModelMeta`` (default: what mteb derives from the model).
        revision: Revision to record in ``ModelMeta``.
    """

    def __init__(self, model: Any, *, name: str | None = None, revision: str | None = None) -> None:
        # mteb counts embedding parameters as len(tokenizer.vocab) x dim; a StaticEmbedding's tokenizer (a
        # tokenizers.Tokenizer) has no .vocab, so mteb logs "Could not determine vocab size" and leaves the
        # count empty. Here the table itself gives it; only those two records of mteb's logger are dropped.
        quiet = _DropRecords("Could not determine vocab size", "Model does not have a recognized architecture")
        meta_logger = logging.getLogger("mteb.models.model_meta")
        meta_logger.addFilter(quiet)
        try:
            with warnings.catch_warnings():  # mteb 2.26 still calls sentence-transformers 6's renamed method
                warnings.filterwarnings("ignore", message=r"The `get_sentence_embedding_dimension` method", category=FutureWarning)
                super().__init__(model)
        finally:
            meta_logger.removeFilter(quiet)
        updates: dict[str, Any] = {}
        table = _static_table_parameters(model)
        if table is not None and self.mteb_model_meta.n_embedding_parameters is None:
            updates["n_embedding_parameters"] = table
        if name is not None:
            updates["name"] = name
        if revision is not None:
            updates["revision"] = revision
        if updates:
            self.mteb_model_meta = self.mteb_model_meta.model_copy(update=updates)
        self.encode_stats = EncodeStats()

    def encode(
        self,
        inputs: DataLoader[BatchedInput],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> Array:
        """Encode through ``SentenceTransformerEncoderWrapper.encode`` and record the time it took."""
        start = time.perf_counter()
        out = super().encode(
            inputs,
            task_metadata=task_metadata,
            hf_split=hf_split,
            hf_subset=hf_subset,
            prompt_type=prompt_type,
            **kwargs,
        )
        self.encode_stats.add(int(out.shape[0]), time.perf_counter() - start)  # one embedding per input
        return out
