"""Saving and worker pools of the facade: ``save`` / ``save_pretrained`` and ST's multi-process pool API.

:class:`STSaveMixin` is part of :class:`staticst.StaticSentenceTransformer`; it wires the facade's state into
:mod:`staticst.persistence.save` and :mod:`staticst.multiprocess`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
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
    model_path: Path | None
    model_id: str | None
    model_card_data: Any
    prompts: dict[str, str]
    default_prompt_name: str | None
    truncate_dim: int | None
    similarity_fn_name: str
    model_type: str

    def _worker_folder(self) -> str:
        """The folder worker processes load the model from: its own, or (a model built from modules) a saved copy.

        The copy is written once, into a temporary folder removed when the model is garbage-collected.
        """
        if self.model_path is not None:
            return str(self.model_path)
        folder: str | None = self.__dict__.get("_worker_tmp")
        if folder is None or not Path(folder).is_dir():
            folder = tempfile.mkdtemp(prefix="staticst-pool-")
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
            self.save(folder, create_model_card=False)
            self.__dict__["_worker_tmp"] = folder
        return folder

    def start_multi_process_pool(
        self, target_devices: list[str] | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
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
        return start_pool(self._worker_folder(), target_devices, timeout)

    @staticmethod
    def stop_multi_process_pool(pool: dict[str, Any]) -> None:
        """Stop the workers started by :meth:`start_multi_process_pool` and close the pool's queues."""
        from staticst.multiprocess import stop_pool

        stop_pool(pool)

    def save(
        self, path: str | os.PathLike[str], model_name: str | None = None, create_model_card: bool = True, **kwargs: Any
    ) -> None:
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
        st_config: dict[str, Any] = {
            "__version__": {"staticst": __version__},
            "model_type": self.model_type,
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
            "similarity_fn_name": self.similarity_fn_name,  # as ST: reading it sets the default ("cosine")
        }
        if self.truncate_dim is not None:
            st_config["truncate_dim"] = self.truncate_dim
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
        self._save_extra_modules(Path(path))

    def _save_extra_modules(self, folder: Path) -> None:
        """Modules after the first ``Normalize`` (added with ``add_module``), saved as ``<i>_Normalize`` as ST saves them."""
        modules = list(getattr(self, "_st_modules", ()))
        if len(modules) <= 2:
            return
        listing = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        for i, module in enumerate(modules[2:], start=2):
            name = f"{i}_{type(module).__name__}"
            module.save(folder / name)
            listing.append({"idx": i, "name": str(i), "path": name, "type": "sentence_transformers.models.Normalize"})
        (folder / "modules.json").write_text(json.dumps(listing, indent=2), encoding="utf-8")

    def save_pretrained(self, path: str | os.PathLike[str], model_name: str | None = None, **kwargs: Any) -> None:
        """Alias of :meth:`save`."""
        self.save(path, model_name=model_name, **kwargs)
