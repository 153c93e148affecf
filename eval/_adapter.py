"""mteb adapters: a staticst model as an mteb encoder, and a timed sentence-transformers wrapper.

``StaticSTEncoder`` satisfies mteb's ``EncoderProtocol`` (``encode`` over a ``DataLoader``, ``similarity``,
``similarity_pairwise``, ``mteb_model_meta``) for a :class:`staticst.StaticSentenceTransformer`. It mirrors
what mteb's own ``SentenceTransformerEncoderWrapper`` does for a ``SentenceTransformer`` -- prompts resolved
from the model's ``prompts`` with mteb's precedence rules, ``encode_query`` / ``encode_document`` chosen by
the prompt type, the encode kwargs passed through unchanged -- so that the same model gives the same scores
through either path.

Both encoders record how many texts they encoded and for how long (``encode_stats``), which the harness
turns into the throughput axis of its quality-vs-speed plot.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
from mteb.models.abs_encoder import AbsEncoder, get_prompt_name
from mteb.models.model_meta import ScoringFunction
from mteb.types import PromptType

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.types import Array, BatchedInput
    from torch.utils.data import DataLoader

    from staticst import StaticSentenceTransformer


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


def _texts(inputs: DataLoader[BatchedInput]) -> list[str]:
    texts: list[str] = []
    for batch in inputs:
        if "text" not in batch:
            raise ValueError(
                f"StaticSTEncoder encodes text only, but the task's batches hold {sorted(batch)}; "
                "choose a text task."
            )
        texts.extend(batch["text"])
    return texts


_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _looks_like_path(name: str) -> bool:
    return os.path.isdir(name) or not _HUB_ID.match(name)


def static_model_meta(
    model: StaticSentenceTransformer,
    *,
    name: str | None = None,
    revision: str | None = None,
) -> ModelMeta:
    """Build mteb's ``ModelMeta`` for a staticst model from what the model itself reports (``info()``).

    Args:
        model: The loaded staticst model.
        name: Model name to record (``org/name``); default: the hub id the model was loaded from, or
            ``local/<folder name>`` for a model loaded from a folder.
        revision: Revision to record; default: the revision the model reports (None for a local folder).

    Returns:
        The metadata: name, revision, embedding dimension, parameter count (all of them are embedding
        parameters), max tokens (infinite when the model does not truncate), memory, similarity function,
        framework ``NumPy`` + ``safetensors``.
    """
    info = model.info()
    model_id = str(info.get("model") or "")
    if name is None:
        if not model_id:
            name = "local/static-model"
        elif _looks_like_path(model_id):
            name = f"local/{Path(model_id).expanduser().resolve().name}"
        else:
            name = model_id
    if revision is None:
        revision = info.get("revision") or None
    n_params = int(info["num_parameters"])
    itemsize = np.dtype(str(info["dtype"])).itemsize
    max_length = info.get("max_length")
    sim = getattr(model, "similarity_fn_name", None)
    prompts = {k: v for k, v in (getattr(model, "prompts", None) or {}).items() if v}
    return ModelMeta.create_empty(
        overwrites={
            "loader": StaticSTEncoder,
            "name": name,
            "revision": revision,
            "n_parameters": n_params,
            "n_embedding_parameters": n_params,
            "memory_usage_mb": round(n_params * itemsize / 2**20, 2),
            "max_tokens": float(max_length) if max_length else math.inf,
            "embed_dim": int(info["dim"]),
            "similarity_fn_name": ScoringFunction.from_str(sim) if sim else None,
            "framework": ["NumPy", "safetensors"],
            "use_instructions": bool(prompts),
            "open_weights": True,
            "modalities": ["text"],
            "model_type": ["dense"],
        }
    )


def _resolve_prompts(prompts: dict[str, str] | None) -> dict[str, str] | None:
    resolved, _invalid = AbsEncoder.validate_task_to_prompt_name(
        prompts or None, raise_for_invalid_keys=False
    )
    return resolved


def _encode_function(model: Any, prompt_type: PromptType | None) -> Any:
    if prompt_type == PromptType.query:
        return model.encode_query
    if prompt_type == PromptType.document:
        return model.encode_document
    if prompt_type is not None:
        raise ValueError(f"Unknown prompt type {prompt_type!r}; expected query, document or None.")
    return model.encode


class StaticSTEncoder(AbsEncoder):
    """A :class:`staticst.StaticSentenceTransformer` behind mteb's ``EncoderProtocol``.

    Args:
        model_name: Hub id or folder of a static model (what ``StaticSentenceTransformer`` accepts); used
            when ``model`` is not given. This is the signature mteb calls through ``ModelMeta.loader``.
        revision: Hub revision to load (when loading by name) and to record in the metadata.
        device: Accepted for the protocol; staticst runs on the CPU.
        model: An already loaded staticst model to wrap instead of loading ``model_name``.
        name: Name to record in ``ModelMeta`` (see :func:`static_model_meta`).
        **kwargs: Passed to ``StaticSentenceTransformer`` when loading.
    """

    # always set by __init__ (AbsEncoder declares it optional; mteb's EncoderProtocol needs a ModelMeta, and
    # mteb's own SentenceTransformerEncoderWrapper narrows it the same way)
    mteb_model_meta: ModelMeta

    def __init__(
        self,
        model_name: str | None = None,
        revision: str | None = None,
        *,
        device: str | None = None,
        model: StaticSentenceTransformer | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            from staticst import StaticSentenceTransformer

            if revision is not None:
                kwargs["revision"] = revision
            model = StaticSentenceTransformer(model_name, **kwargs)
        self.model = model
        self.mteb_model_meta = static_model_meta(model, name=name, revision=revision)
        self.model_prompts = _resolve_prompts(getattr(model, "prompts", None))
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
        """Encode the texts of ``inputs`` with the static model (see ``EncoderProtocol.encode``).

        The prompt is looked up in the model's ``prompts`` with mteb's precedence (task+type, task, task
        type+type, task type, prompt type); queries go through ``encode_query`` and documents through
        ``encode_document``, exactly as mteb does for a sentence-transformers model.

        Returns:
            A float32 array of shape ``(len(texts), dim)``.
        """
        texts = _texts(inputs)
        prompt_name = get_prompt_name(self.model_prompts, task_metadata, prompt_type)
        prompt = self.model_prompts.get(prompt_name) if (self.model_prompts and prompt_name) else None
        encode = _encode_function(self.model, prompt_type)
        start = time.perf_counter()
        embeddings = encode(texts, prompt=prompt, **kwargs)
        self.encode_stats.add(len(texts), time.perf_counter() - start)
        return np.asarray(embeddings)


class TimedSentenceTransformerWrapper(SentenceTransformerEncoderWrapper):
    """mteb's own sentence-transformers wrapper, unchanged except that it records ``encode_stats``.

    Args:
        model: A loaded ``SentenceTransformer``.
        name: Name to record in ``ModelMeta`` (default: what mteb derives from the model).
        revision: Revision to record in ``ModelMeta``.
    """

    def __init__(self, model: Any, *, name: str | None = None, revision: str | None = None) -> None:
        super().__init__(model)
        updates: dict[str, Any] = {}
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
