"""What code written for a torch ``SentenceTransformer`` calls besides ``encode``, on the static facade.

:class:`STCompatMixin` gives :class:`staticst.StaticSentenceTransformer` the rest of the surface a user's
existing code hits: pickling and ``copy.deepcopy``, ``preprocess`` / ``is_singular_input``, text pairs and
``output_value=None`` in ``encode``, the torch module calls (``to``, ``eval``, ``train``, ``half``, ...),
``model[0]`` / ``len(model)`` / iteration, and ``push_to_hub`` / ``save_to_hub``. Nothing here is numeric:
vectors come from :class:`staticst.engine.Embedder`.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst._st_args import as_texts, input_length, invalid_text, prompted, warn_once
from staticst.engine import Embedder
from staticst.persistence.hub import BUILTIN_MODEL_PATH
from staticst.persistence.load import ModelParts, read_model

__all__ = ["CPUDevice", "NormalizeModule", "STCompatMixin", "StaticEmbeddingModule"]

logger = logging.getLogger("staticst.model")


class CPUDevice(str):
    """What ``model.device`` is: the string ``"cpu"`` that also behaves like ST's ``torch.device("cpu")``.

    It has ``type`` (``"cpu"``) and ``index`` (``None``) as a ``torch.device`` does, and compares equal to
    ``torch.device("cpu")`` (so ``tensor.device == model.device`` holds, as in sentence-transformers), with
    no torch import.
    """

    __slots__ = ()

    def __new__(cls) -> CPUDevice:
        return super().__new__(cls, "cpu")

    @property
    def type(self) -> str:
        """``"cpu"``, as ``torch.device("cpu").type``."""
        return "cpu"

    @property
    def index(self) -> None:  # type: ignore[override]  # torch.device.index, not str.index
        """``None``, as ``torch.device("cpu").index``."""
        return None

    def __eq__(self, other: object) -> bool:
        if type(other).__name__ == "device" and type(other).__module__ == "torch":
            return getattr(other, "type", None) == "cpu" and getattr(other, "index", None) in (None, 0)
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    def __reduce__(self) -> tuple[builtins.type[CPUDevice], tuple[()]]:
        return (CPUDevice, ())


@dataclass(frozen=True)
class StaticEmbeddingModule:
    """What ``model[0]`` is: a read-only view of the model's input module, as ST's ``StaticEmbedding`` exposes it.

    Attributes:
        tokenizer: The model's ``tokenizers.Tokenizer``.
        embedding_dim: Width of the table.
        num_embeddings: Rows of the table (the token ids it covers).
        weight: The embedding table (numpy; ST holds it as ``embedding.weight``).
    """

    tokenizer: Tokenizer
    embedding_dim: int
    num_embeddings: int
    weight: np.ndarray

    @property
    def max_seq_length(self) -> float:
        """``math.inf``, as ST's ``StaticEmbedding`` reports."""
        return float("inf")

    def get_embedding_dimension(self) -> int:
        """Width of the table."""
        return self.embedding_dim

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the table (older ST name)."""
        return self.embedding_dim


@dataclass(frozen=True)
class NormalizeModule:
    """What ``model[1]`` is on a model whose output is L2-normalised (ST's ``Normalize`` module)."""


class STCompatMixin:
    """The torch-model surface of the facade (see the module docstring)."""

    _engine: Embedder
    _parts: ModelParts
    model_path: Path
    model_id: str
    model_card_data: Any
    training: bool = False

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the parts read from disk and the settings in force, not the native kernel or the word cache.

        The table travels with the pickle (it is the model's private memory, as ST pickles its weights), so
        the copy works where the folder does not exist; the built-in model travels as a reference to the copy
        inside the package. The engine, its native kernel and its word cache are rebuilt on unpickling.
        """
        state = self.__dict__.copy()
        engine: Embedder = state.pop("_engine")
        state.pop("_pair_tokenizer", None)
        state["_engine_state"] = (engine.kernel_request, engine.threads, engine.settings, engine.pooling)
        if Path(self.model_path) == BUILTIN_MODEL_PATH:
            state["_parts"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the engine from the pickled parts and settings (see :meth:`__getstate__`)."""
        kernel, threads, settings, pooling = state.pop("_engine_state")
        if state["_parts"] is None:
            state["_parts"] = read_model(BUILTIN_MODEL_PATH)
            state["model_path"] = BUILTIN_MODEL_PATH
        self.__dict__.update(state)
        engine = Embedder.from_parts(self._parts, kernel=kernel, threads=threads)
        self._engine = engine.with_settings(settings, pooling)

    # ------------------------------------------------------------------ torch module calls

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """No effect for ``"cpu"``; any other device or a dtype warns once (staticst runs float32 on the CPU)."""
        for value in (*args, *kwargs.values()):
            if str(value) not in ("cpu", "torch.float32", "None"):
                warn_once(f"to:{value}", f"staticst runs on the CPU in float32; .to({value!r}) has no effect.")
        return self

    def cpu(self) -> Any:
        """No effect (staticst always runs on the CPU)."""
        return self

    def cuda(self, device: Any = None) -> Any:
        """No effect, with a warning once: staticst runs on the CPU."""
        warn_once("to:cuda", "staticst runs on the CPU; .cuda() has no effect.")
        return self

    def eval(self) -> Any:
        """No effect: a static model is always in inference mode."""
        return self

    def train(self, mode: bool = True) -> Any:
        """``train(False)`` has no effect; ``train(True)`` warns once (staticst does not train)."""
        if mode:
            warn_once("train", "staticst does not train models; .train() has no effect (training stays False).")
        return self

    def half(self) -> Any:
        """No effect, with a warning once: vectors stay float32 (cast them with ``.astype(np.float16)``)."""
        warn_once("half", "staticst computes in float32; .half() has no effect. Cast the output: emb.astype(np.float16).")
        return self

    def bfloat16(self) -> Any:
        """No effect, with a warning once: vectors stay float32."""
        warn_once("bfloat16", "staticst computes in float32; .bfloat16() has no effect.")
        return self

    def float(self) -> Any:
        """No effect: vectors are already float32."""
        return self

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """No effect, as in sentence-transformers on a model without a ``Pooling`` module (a static model has none)."""

    def requires_grad_(self, requires_grad: bool = True) -> Any:
        """No effect: there are no gradients."""
        return self

    def _modules_list(self) -> list[StaticEmbeddingModule | NormalizeModule]:
        engine = self._engine
        first = StaticEmbeddingModule(
            tokenizer=engine.tokenizer.tokenizer,
            embedding_dim=engine.dim,
            num_embeddings=int(engine.table.shape[0]),
            weight=engine.table,
        )
        return [first, NormalizeModule()] if engine.pooling.normalize else [first]

    def __getitem__(self, index: int) -> StaticEmbeddingModule | NormalizeModule:
        """``model[0]``: the input module (tokenizer, table); ``model[1]``: ``Normalize`` when the output is normalised."""
        return self._modules_list()[index]

    def __len__(self) -> int:
        """The number of modules, as ST counts them (``StaticEmbedding``, plus ``Normalize`` when normalised)."""
        return len(self._modules_list())

    def __iter__(self) -> Iterator[StaticEmbeddingModule | NormalizeModule]:
        """The modules (see :meth:`__getitem__`)."""
        return iter(self._modules_list())

    # ------------------------------------------------------------------ inputs

    def is_singular_input(self, inputs: Any) -> bool:
        """Whether ``encode`` treats ``inputs`` as one example (ST's rule: anything but a list, tuple or array)."""
        if isinstance(inputs, (list, tuple)):
            return False
        return not (isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in ("U", "O"))

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, np.ndarray]:
        """The ids ``encode`` pools: ``{"input_ids": flat int64 ids, "offsets": start of each input}`` (ST 6's name).

        Args:
            inputs: A list of texts or text pairs.
            prompt: Text prepended to every input.
            **kwargs: Accepted for compatibility (``processing_kwargs``); no effect.

        Returns:
            numpy arrays where sentence-transformers returns tensors; ``{}`` for no input, as ST.
        """
        if not len(inputs):
            return {}
        items, _ = as_texts(list(inputs) if isinstance(inputs, tuple) else inputs)
        ids, offsets = self._ids(prompted(prompt, items))
        return {"input_ids": ids, "offsets": offsets[:-1]}

    # ------------------------------------------------------------------ pairs and token ids

    def _pair_ids(self, pairs: list[tuple[str, str]]) -> list[np.ndarray]:
        """The ids of text pairs: both texts in one encoding, under the model's token limit.

        sentence-transformers family: the tokenizer's own pair encoding (``add_special_tokens=False``), with
        its truncation; model2vec family (which has no pairs): each text under the model2vec rules, joined.
        """
        engine = self._engine
        if engine.family.name != "sentence-transformers":
            flat = [t for pair in pairs for t in pair]
            ids, offsets = engine.tokenize(flat)
            return [ids[offsets[2 * i] : offsets[2 * i + 2]] for i in range(len(pairs))]
        key = (engine.settings.max_length, engine.settings.truncation_side)
        cached = self.__dict__.get("_pair_tokenizer")
        if cached is None or cached[0] != key:
            tokenizer = Tokenizer.from_str(engine.tokenizer.tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.no_truncation()
            if key[0] is not None:
                tokenizer.enable_truncation(key[0], direction=key[1])
            cached = (key, tokenizer)
            self.__dict__["_pair_tokenizer"] = cached
        tokenizer = cached[1]
        encodings = tokenizer.encode_batch(pairs, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]

    def _ids(self, items: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids and ``len(items) + 1`` offsets of texts and text pairs, as :meth:`_embed_items` pools them."""
        engine = self._engine
        pair_at = [i for i, t in enumerate(items) if not isinstance(t, str)]
        if not pair_at:
            return engine.tokenize(items)
        singles = [i for i, t in enumerate(items) if isinstance(t, str)]
        ids_s, off_s = engine.tokenize([items[i] for i in singles])
        per_item: list[np.ndarray] = [np.empty(0, np.int64)] * len(items)
        for k, i in enumerate(singles):
            per_item[i] = ids_s[off_s[k] : off_s[k + 1]]
        for i, ids in zip(pair_at, self._pair_ids([items[i] for i in pair_at]), strict=True):
            per_item[i] = ids
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in per_item], out=offsets[1:])
        flat = np.concatenate(per_item) if per_item else np.empty(0, np.int64)
        return flat.astype(np.int64, copy=False), offsets

    def _embed_items(self, items: list[Any]) -> np.ndarray:
        """Model vectors of a batch holding text pairs (texts alone go through the engine's fast path)."""
        try:
            ids, offsets = self._ids(items)
            return self._engine.pool_ids(ids, offsets)
        except (TypeError, ValueError) as exc:
            error = invalid_text(items)
            if error is None:
                raise
            raise error from exc

    def _output_dicts(self, raw: list[Any], items: list[Any], emb: np.ndarray, batch_size: int) -> list[dict[str, Any]]:
        """``output_value=None``: per input, the dict sentence-transformers returns, with numpy values.

        sentence-transformers runs inputs longest first in batches of ``batch_size``; each dict holds the
        batch's ``input_ids`` (the input's own id when the batch has as many ids as inputs), the input's
        ``offsets`` entry within its batch, and its ``sentence_embedding`` (after ``truncate_dim``, before
        ``normalize_embeddings``, as in ST).
        """
        order = np.argsort([-input_length(t) for t in raw])
        out: list[dict[str, Any]] = [{} for _ in raw]
        for start in range(0, len(order), batch_size):
            batch = [int(i) for i in order[start : start + batch_size]]
            ids, offsets = self._ids([items[i] for i in batch])
            for j, i in enumerate(batch):
                out[i] = {
                    "input_ids": ids[j] if len(ids) == len(batch) else ids,
                    "offsets": offsets[j],
                    "sentence_embedding": emb[i],
                }
        return out

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
            return _pr_description(name, repr(self), repo)

        def save(folder: str, repo: str, card: bool) -> None:
            self.model_card_data.model_id = repo
            self.save(folder, model_name=repo, create_model_card=card)  # type: ignore[attr-defined]

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

    def save_to_hub(
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
        """Deprecated alias of :meth:`push_to_hub`, with sentence-transformers' ``organization`` handling.

        Raises:
            ValueError: ``organization`` disagrees with the organisation in ``repo_id``.
        """
        logger.warning(
            "The `save_to_hub` method is deprecated and will be removed in a future version of SentenceTransformers."
            " Please use `push_to_hub` instead for future model uploads."
        )
        if organization:
            if "/" not in repo_id:
                repo_id = f"{organization}/{repo_id}"
            elif repo_id.split("/")[0] != organization:
                raise ValueError(
                    f"organization={organization!r} does not match repo_id={repo_id!r}: pass repo_id='org/name' only."
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


def _pr_description(name: str, architecture: str, repo_id: str) -> str:
    """The pull request description sentence-transformers writes, naming staticst's class and import."""
    return f"""\
Hello!

This pull request has been automatically generated to add {name} compatibility.

## Full Model Architecture:
```
{architecture}
```

## Testing this pull request
You can test this pull request before merging by loading the model from this PR with the `revision` argument:
```python
from staticst import {name}

# NOTE: Update this to the number of your pull request
pr_number = 2
model = {name}(
    "{repo_id}",
    revision=f"refs/pr/{{pr_number}}",
)
```
"""

