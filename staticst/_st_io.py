"""Saving and worker pools of the facade: ``save`` / ``save_pretrained`` and ST's multi-process pool API.

:class:`STSaveMixin` is part of :class:`staticst.StaticSentenceTransformer`; it wires the facade's state into
:mod:`staticst.persistence.save` and :mod:`staticst.multiprocess`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from staticst._st_args import warn_non_cpu_workers
from staticst._version import __version__
from staticst.engine import Embedder
from staticst.persistence.load import ModelParts
from staticst.persistence.save import SavedModel, model_card, write_model

__all__ = ["STSaveMixin"]


def _usage(model_id: str) -> str:
    """The card's usage section; like ST's, its snippet loads ``model_id`` (ST's placeholder when unnamed)."""
    return (
        "\n## Usage\n\n```python\nfrom sentence_transformers import SentenceTransformer"
        "  # or: from staticst import StaticSentenceTransformer as SentenceTransformer\n\n"
        f'model = SentenceTransformer("{model_id}")\n'
        'embeddings = model.encode(["The weather is lovely today.", "It\'s so sunny outside!"])\n'
        "similarities = model.similarity(embeddings, embeddings)\n```\n"
    )


class STSaveMixin:
    """``save`` / ``save_pretrained`` and ``start_multi_process_pool`` / ``stop_multi_process_pool``."""

    _engine: Embedder
    _parts: ModelParts
    model_path: Path
    model_id: str
    model_card_data: Any
    prompts: dict[str, str]
    default_prompt_name: str | None
    _similarity_fn_name: str | None

    def start_multi_process_pool(self, target_devices: list[str] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Start worker processes that ``encode(..., pool=pool)`` spreads large inputs over.

        The sentence-transformers API: a dict with ``"input"`` / ``"output"`` queues and ``"processes"``.
        Workers are spawned (not forked), load this model's folder once, and follow this model's
        current settings on every call; the vectors are bit-identical to in-process encoding. Inputs of
        fewer than ``staticst.multiprocess.POOL_MIN_TEXTS`` texts are still encoded in-process. Call from
        under ``if __name__ == "__main__":`` in scripts, as with any spawned process.

        Args:
            target_devices: One entry per worker (e.g. ``["cpu", "cpu"]``); ``None``: one worker per usable
                CPU (sentence-transformers starts 4 CPU workers).
            timeout: Seconds a pooled ``encode`` waits with no chunk finishing before it raises ``TimeoutError``
                (a stopped or starved worker); a staticst extension.

        Returns:
            The pool, for ``encode(..., pool=pool)`` and :meth:`stop_multi_process_pool`.
        """
        from staticst.multiprocess import start_pool

        if isinstance(target_devices, (list, tuple)):
            warn_non_cpu_workers(target_devices)
        return start_pool(str(self.model_path), target_devices, timeout)

    @staticmethod
    def stop_multi_process_pool(pool: dict[str, Any]) -> None:
        """Stop the workers started by :meth:`start_multi_process_pool` and close the pool's queues."""
        from staticst.multiprocess import stop_pool

        stop_pool(pool)

    def save(self, path: str | os.PathLike[str], model_name: str | None = None, create_model_card: bool = True, **kwargs: Any) -> None:
        """Save to a folder that staticst, model2vec and sentence-transformers all load.

        A model of the model2vec family is written in the model2vec layout (``config.json`` +
        ``model.safetensors`` + ``tokenizer.json`` + ``modules.json``); a sentence-transformers model in
        the sentence-transformers root layout. Either way the vectors staticst loads back are identical, and
        the prompts, default prompt name and similarity function are kept.

        Args:
            path: Target folder (created if needed).
            model_name: Name used in the model card.
            create_model_card: Write a short ``README.md``.
            **kwargs: Accepted for ST compatibility (``safe_serialization`` etc.); no effect.
        """
        engine = self._engine
        layout = engine.family.save_layout
        saved_tokenizer = Tokenizer.from_str(engine.tokenizer.tokenizer.to_str())
        if self._parts.truncation:
            saved_tokenizer.enable_truncation(**self._parts.truncation)
        if self._parts.padding:
            saved_tokenizer.enable_padding(**self._parts.padding)
        st_config = {
            "__version__": {"staticst": __version__},
            "model_type": "SentenceTransformer",
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
            "similarity_fn_name": self._similarity_fn_name,
        }
        if model_name:  # as ST's save: the card's usage snippet (this save's and later ones') loads this id
            self.model_card_data.model_id = model_name
        card = None
        if create_model_card:
            name = model_name or self.model_card_data.model_name or self.model_id
            card = model_card(str(name), layout, engine.dim, self.model_card_data.license) + _usage(
                self.model_card_data.model_id or "sentence_transformers_model_id"
            )
        model = SavedModel(
            layout=layout,
            table=engine.table,
            mapping=engine.mapping,
            weights=engine.weights,
            tokenizer=saved_tokenizer,
            normalize=engine.pooling.normalize,
            max_length=engine.settings.max_length,
            truncation_side=engine.settings.truncation_side,
            config=self._parts.config,
            st_config=st_config,
        )
        write_model(Path(path), model, card)

    def save_pretrained(self, path: str | os.PathLike[str], model_name: str | None = None, **kwargs: Any) -> None:
        """Alias of :meth:`save`."""
        self.save(path, model_name=model_name, **kwargs)
