"""Saving, publishing and worker pools of the facade.

``save`` / ``save_pretrained``, ``push_to_hub`` / ``save_to_hub``, and ST's multi-process pool API.

:class:`STSaveMixin` is part of :class:`staticst.StaticSentenceTransformer`; it wires the facade's state into
:mod:`staticst.persistence.save` (the files), :mod:`staticst.model_card` (every card text),
:mod:`staticst.persistence.hub` (the upload) and :mod:`staticst.multiprocess`.
"""

from __future__ import annotations

import json
import logging
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
from staticst.model_card import pull_request_description, st_card
from staticst.persistence.load import ModelParts
from staticst.persistence.save import SavedModel, write_model

__all__ = ["STSaveMixin"]

logger = logging.getLogger("staticst.model")


class STSaveMixin:
    """``save`` / ``save_pretrained``, ``push_to_hub`` / ``save_to_hub`` and the multi-process pool API."""

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
            card = st_card(str(name), layout, engine.dim, self.model_card_data.license, self.model_card_data.model_id)
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

    # ------------------------------------------------------------------ hub

    def push_to_hub(
        self,
        repo_id: str,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str | None = None,
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Upload the model to a Hugging Face Hub repository, creating it (and the ``revision`` branch) if needed.

        The calls sentence-transformers 6.2 makes: ``create_repo`` (``exist_ok`` also when ``create_pr``),
        ``create_branch`` for a ``revision``, a README probe unless ``replace_model_card``, ``upload_folder``
        with the same commit message and, for a pull request, description.

        Args:
            repo_id: ``"name"`` or ``"org/name"``.
            token: Hub token.
            private: Create the repository private.
            safe_serialization: Accepted for compatibility (staticst always writes safetensors).
            commit_message: Default ``"Add new StaticSentenceTransformer model"``.
            local_model_path: Upload this folder instead of saving the model.
            exist_ok: Allow an existing repository.
            replace_model_card: Write a model card even if the repository already has a ``README.md``.
            train_datasets: Accepted for compatibility; no effect.
            revision: Branch to push to (created if missing).
            create_pr: Open a pull request instead of committing to the branch.

        Returns:
            The pull request URL when ``create_pr``, else the commit URL.
        """
        from staticst.persistence.hub import push_folder

        name = type(self).__name__

        def describe(repo: str) -> str:
            return pull_request_description(name, repr(self), repo)

        def save(folder: str, repo: str, card: bool) -> None:
            self.model_card_data.model_id = repo
            self.save(folder, model_name=repo, create_model_card=card)

        return push_folder(
            save,
            repo_id,
            token=token,
            private=private,
            commit_message=commit_message if commit_message is not None else f"Add new {name} model",
            exist_ok=exist_ok,
            revision=revision,
            create_pr=create_pr,
            local_model_path=local_model_path,
            replace_model_card=replace_model_card,
            describe=describe,
        )

    def save_to_hub(self, *args: Any, **kwargs: Any) -> str:
        """Deprecated alias of :meth:`push_to_hub`, with sentence-transformers 6.3's argument handling.

        ``save_to_hub(repo_id, organization=None, token=None, private=None, safe_serialization=True,
        commit_message="Add new model.", local_model_path=None, exist_ok=False, replace_model_card=False,
        train_datasets=None)``; the older ``repo_name=`` keyword and the positional order from before ``token``
        existed (``repo_id, organization, private, ...``) are taken, with sentence-transformers' warnings.

        Raises:
            ValueError: ``organization`` disagrees with the organisation in ``repo_id`` (sentence-transformers' message).
        """
        repo_name = kwargs.pop("repo_name", None)
        if repo_name and "repo_id" not in kwargs:
            logger.warning(
                "Providing a `repo_name` keyword argument to `save_to_hub` is deprecated. Please use `repo_id` instead."
            )
            kwargs["repo_id"] = repo_name
        if len(args) >= 2:  # positional arguments from before `token` was added
            args = (*args[:2], None, *args[2:])
        return self._save_to_hub(*args, **kwargs)

    def _save_to_hub(
        self,
        repo_id: str,
        organization: str | None = None,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str = "Add new model.",
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
    ) -> str:
        logger.warning(
            "The `save_to_hub` method is deprecated and will be removed in a future version of SentenceTransformers."
            " Please use `push_to_hub` instead for future model uploads."
        )
        if organization:
            if "/" not in repo_id:
                logger.warning(
                    f'Providing an `organization` to `save_to_hub` is deprecated. Please use `repo_id="{organization}/{repo_id}"` instead.'
                )
                repo_id = f"{organization}/{repo_id}"
            elif repo_id.split("/")[0] != organization:
                raise ValueError(
                    "Providing an `organization` to `save_to_hub` is deprecated. Please use `repo_id` instead."
                )
            else:
                logger.warning(
                    f'Providing an `organization` to `save_to_hub` is deprecated. Please use `repo_id="{repo_id}"` instead.'
                )
        return self.push_to_hub(
            repo_id=repo_id,
            token=token,
            private=private,
            safe_serialization=safe_serialization,
            commit_message=commit_message,
            local_model_path=local_model_path,
            exist_ok=exist_ok,
            replace_model_card=replace_model_card,
            train_datasets=train_datasets,
        )
