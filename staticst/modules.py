"""sentence-transformers' module API without torch: ``StaticEmbedding`` and ``Normalize``.

sentence-transformers users build static models from modules::

    from staticst import Normalize, StaticEmbedding, StaticSentenceTransformer   # the only line that changes

    static_embedding = StaticEmbedding.from_model2vec("minishlab/potion-base-8M")
    # or StaticEmbedding(tokenizer, embedding_weights=weights), StaticEmbedding(tokenizer, embedding_dim=256)
    model = StaticSentenceTransformer(modules=[static_embedding, Normalize()])

The classes keep sentence-transformers 6.3's constructors, attributes (``tokenizer``, ``embedding.weight``,
``num_embeddings``, ``embedding_dim``, ``max_seq_length``, ``modalities``, ``config_keys``,
``save_in_root``, ``forward_kwargs``), ``preprocess`` / ``forward`` (called on a features dict, as a torch
module is) and ``save`` / ``load`` (folders sentence-transformers loads back). Arrays are numpy where
sentence-transformers holds tensors. The numbers come from the engine (:class:`staticst.engine.Embedder`)
under the sentence-transformers family: nothing here tokenizes or pools by itself.

A model loaded from a folder exposes the same objects as ``model[0]`` / ``model[1]``; there ``model[0]``
follows the model's settings in force (``max_seq_length``, truncation side).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst.engine import Embedder
from staticst.families import SENTENCE_TRANSFORMERS
from staticst.persistence.load import ModelParts, parts_in_memory, read_model
from staticst.persistence.save import SavedModel
from staticst.pooling import normalize_rows
from staticst.tokenization.reloadable import real_tokenizer

__all__ = ["Module", "Normalize", "StaticEmbedding", "fold_model2vec_weights", "parts_from_table"]

#: The config file of a module folder (sentence-transformers' ``Module.config_file_name``).
CONFIG_FILE = "config.json"


def fold_model2vec_weights(
    embeddings: np.ndarray, token_mapping: np.ndarray | None = None, token_weights: np.ndarray | None = None
) -> np.ndarray:
    """One row per token id, ``embeddings[token_mapping[id]] * token_weights[id]``, as sentence-transformers folds them.

    sentence-transformers 6.3's ``StaticEmbedding._fold_model2vec_weights``: the rows of a vocabulary-quantized
    model2vec table are gathered, and per-token weights multiply them in (at least) float32.
    """
    table = np.asarray(embeddings)
    if token_mapping is not None:
        table = table[np.asarray(token_mapping, dtype=np.int64)]
    if token_weights is not None:
        dtype = np.promote_types(table.dtype, np.float32)
        table = (table.astype(dtype) * np.asarray(token_weights)[:, None]).astype(dtype)
    return np.ascontiguousarray(table)


def _as_numpy(value: Any) -> np.ndarray:
    """A numpy copy of an array or a torch tensor (``detach().cpu().numpy()``), without importing torch."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)


def _as_tokenizer(tokenizer: Any) -> Tokenizer:
    """A copy of the ``tokenizers.Tokenizer`` behind ``tokenizer`` (a Tokenizer or a transformers fast tokenizer).

    Raises:
        ValueError: ``tokenizer`` is neither (sentence-transformers' message).
    """
    if isinstance(tokenizer, Tokenizer):
        return Tokenizer.from_str(tokenizer.to_str())
    backend = getattr(tokenizer, "_tokenizer", None)
    if isinstance(backend, Tokenizer) and type(tokenizer).__name__.endswith("Fast"):
        return Tokenizer.from_str(backend.to_str())
    raise ValueError(
        "The tokenizer must be fast (i.e. Rust-backed) to use this class. "
        "Use Tokenizer.from_pretrained() from `tokenizers` to load a fast tokenizer."
    )


def parts_from_table(table: np.ndarray, tokenizer: Tokenizer, normalize: bool) -> ModelParts:
    """The checked parts of a static model held in memory (:func:`~staticst.persistence.load.parts_in_memory`).

    The parts hold private copies, independent of ``table``; every check of a folder load applies (the table fits the tokenizer, no NaN / Inf, a supported dtype).

    Raises:
        VocabularyMismatchError: The table has fewer rows than the tokenizer has ids.
        NonFiniteEmbeddingError: The table holds NaN or Inf.
        CorruptModelError: The table is not 2-D or its dtype is not supported.
    """
    truncation = tokenizer.truncation
    model = SavedModel(
        layout="sentence-transformers",
        table=np.ascontiguousarray(table),
        mapping=None,
        weights=None,
        tokenizer=tokenizer,
        normalize=normalize,
        max_length=int(truncation["max_length"]) if truncation else None,
        truncation_side=str(truncation.get("direction", "right")).lower() if truncation else "right",
        config={},
        st_config={},
    )
    return parts_in_memory(model)


class Module:
    """What every module shares (sentence-transformers' ``Module``): config keys, ``save_config``, call = forward.

    Attributes:
        config_keys: The attributes :meth:`get_config_dict` saves.
        save_in_root: Whether a model saves this module in its root folder (the input module) or in ``<i>_<Name>``.
        forward_kwargs: Extra ``encode`` keyword arguments this module takes (none for a static model's modules).
    """

    config_keys: list[str] = []
    config_file_name: str = CONFIG_FILE
    save_in_root: bool = False
    forward_kwargs: set[str] = set()

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Compute this module's outputs into ``features`` (and return it)."""
        raise NotImplementedError

    def __call__(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Same as :meth:`forward` (as calling a torch module runs its ``forward``)."""
        return self.forward(features, **kwargs)

    def get_config_dict(self) -> dict[str, Any]:
        """The module's configuration: its :attr:`config_keys` and their values."""
        return {key: getattr(self, key) for key in self.config_keys}

    def save_config(self, output_path: str | os.PathLike[str], filename: str | None = None) -> None:
        """Write :meth:`get_config_dict` as JSON to ``output_path/filename`` (default ``config.json``)."""
        path = Path(output_path) / (filename or self.config_file_name)
        path.write_text(json.dumps(self.get_config_dict(), indent=4), encoding="utf-8")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config_dict()})"


class StaticEmbedding(Module):
    """Mean of per-token vectors: sentence-transformers' ``StaticEmbedding``, on numpy.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` or a transformers fast tokenizer (its backend tokenizer is copied;
            padding is switched off, its truncation is kept and applied, as in sentence-transformers).
        embedding_weights: ``(vocab, dim)`` table (numpy or a torch tensor).
        embedding_dim: Width of a new table drawn from N(0, 1) (as ``nn.EmbeddingBag`` initialises one) when
            ``embedding_weights`` is not given.
        **kwargs: ``base_model`` (for the model card), as in sentence-transformers.

    Raises:
        ValueError: A tokenizer that is not fast, or neither ``embedding_weights`` nor ``embedding_dim``
            (sentence-transformers' messages).
    """

    modalities: list[str] = ["text"]  # noqa: RUF012  (sentence-transformers' class attribute)
    save_in_root: bool = True

    def __init__(
        self,
        tokenizer: Any,
        embedding_weights: Any = None,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        tok = _as_tokenizer(tokenizer)
        if embedding_weights is not None:
            table = _as_numpy(embedding_weights)
        elif embedding_dim is not None:
            rng = np.random.default_rng()
            table = rng.standard_normal((tok.get_vocab_size(), int(embedding_dim)), dtype=np.float32)
        else:
            raise ValueError("Either `embedding_weights` or `embedding_dim` must be provided.")
        if table.ndim != 2:
            raise ValueError(f"embedding_weights must be a 2-D (vocab, dim) array, got shape {table.shape}.")
        tok.no_padding()
        self._tokenizer = tok
        self._table = table
        self._own: Embedder | None = None
        self._bound: Any = None
        self.embedding = _EmbeddingBag(self)
        self.base_model: str | None = kwargs.get("base_model")

    @classmethod
    def _bound_to(cls, owner: Any, base_model: str | None = None) -> StaticEmbedding:
        """The input module of a loaded model: it reads ``owner._engine``, the model's engine in force (no copy)."""
        module = cls.__new__(cls)
        module._tokenizer = None  # type: ignore[assignment]
        module._table = None  # type: ignore[assignment]
        module._own = None
        module._bound = owner
        module.embedding = _EmbeddingBag(module)
        module.base_model = base_model
        return module

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the table and tokenizer (or the model this module belongs to), not the engine built from them."""
        state = self.__dict__.copy()
        state["_own"] = None
        state.pop("_pair_tokenizer", None)
        return state

    # ------------------------------------------------------------------ attributes

    @property
    def engine(self) -> Embedder:
        """The engine this module tokenizes and pools with (built on first use)."""
        if self._bound is not None:
            engine: Embedder = self._bound._engine
            return engine
        if self._own is None:
            self._own = Embedder.from_parts(
                parts_from_table(self._table, self._tokenizer, normalize=False), family=SENTENCE_TRANSFORMERS
            )
        return self._own

    @property
    def tokenizer(self) -> Tokenizer:
        """The ``tokenizers.Tokenizer`` (padding off)."""
        return real_tokenizer(self.engine.tokenizer.tokenizer) if self._bound is not None else self._tokenizer

    @property
    def weight(self) -> np.ndarray:
        """The ``(num_embeddings, embedding_dim)`` table, one row per token id (``embedding.weight``)."""
        if self._bound is None:
            return self._table
        engine = self.engine
        if engine.mapping is None and engine.weights is None:
            return engine.table
        return fold_model2vec_weights(engine.table, engine.mapping, engine.weights)

    @property
    def num_embeddings(self) -> int:
        """Rows of the table (token ids)."""
        if self._bound is None:
            return int(self._table.shape[0])
        engine = self.engine
        return int(len(engine.mapping) if engine.mapping is not None else engine.table.shape[0])

    @property
    def embedding_dim(self) -> int:
        """Width of the table."""
        return int(self._table.shape[1]) if self._bound is None else self.engine.dim

    @property
    def max_seq_length(self) -> float:
        """``math.inf``, as sentence-transformers' ``StaticEmbedding`` reports (the tokenizer's truncation applies)."""
        return math.inf

    def get_embedding_dimension(self) -> int:
        """Width of the vectors."""
        return self.embedding_dim

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the vectors (the older name)."""
        return self.embedding_dim

    # ------------------------------------------------------------------ computing

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, np.ndarray]:
        """Token ids of ``inputs`` (texts or text pairs): ``{"input_ids": flat int64 ids, "offsets": starts}``.

        The prompt is prepended to each text (to the first text of a pair). ``kwargs`` are accepted and
        ignored, as sentence-transformers' ``StaticEmbedding.preprocess`` does.
        """
        from staticst._pairs import token_ids
        from staticst._st_args import as_texts, prompted

        items, _ = as_texts(list(inputs) if isinstance(inputs, tuple) else inputs)
        ids, offsets = token_ids(self.engine, prompted(prompt, items), self.__dict__)
        return {"input_ids": ids, "offsets": offsets[:-1]}

    def tokenize(self, texts: Sequence[Any], **kwargs: Any) -> dict[str, np.ndarray]:
        """Alias of :meth:`preprocess` (the older name)."""
        return self.preprocess(texts, **kwargs)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``"sentence_embedding"``: the mean row of each text's ids (``features`` from :meth:`preprocess`)."""
        ids = np.asarray(features["input_ids"], dtype=np.int64).reshape(-1)
        starts = np.asarray(features["offsets"], dtype=np.int64).reshape(-1)
        offsets = np.append(starts, len(ids)).astype(np.int64)
        features["sentence_embedding"] = self.engine.pool_ids(ids, offsets)
        return features

    # ------------------------------------------------------------------ saving and loading

    def save(
        self, output_path: str | os.PathLike[str], *args: Any, safe_serialization: bool = True, **kwargs: Any
    ) -> None:
        """Write ``model.safetensors`` (``embedding.weight``) and ``tokenizer.json`` into ``output_path``.

        ``safe_serialization`` is accepted for compatibility: staticst always writes safetensors.
        """
        from staticst.persistence.io import write_safetensors

        folder = Path(output_path)
        folder.mkdir(parents=True, exist_ok=True)
        write_safetensors(folder / "model.safetensors", {"embedding.weight": np.ascontiguousarray(self.weight)})
        self.tokenizer.save(str(folder / "tokenizer.json"))

    @classmethod
    def load(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> StaticEmbedding:
        """Load the static module of a folder or a Hub repository (any layout staticst reads).

        A model2vec ``mapping`` and per-token ``weights`` are folded into one row per token id, as
        sentence-transformers does.

        Raises:
            ModelNotFoundError: No such folder, or not on the Hub / in the cache.
            UnknownLayoutError: The folder holds no static model.
        """
        from staticst.persistence.hub import resolve_model

        folder, _, _ = resolve_model(
            model_name_or_path,
            revision=revision,
            token=token,
            cache_folder=cache_folder,
            local_files_only=local_files_only,
        )
        folder = folder / subfolder if subfolder else folder
        if (folder / "modules.json").is_file() or (folder / "config.json").is_file():
            parts = read_model(folder)
            table = fold_model2vec_weights(parts.table, parts.mapping, parts.weights)
            return cls(parts.tokenizer, embedding_weights=table)
        return cls._load_module_folder(folder)

    @classmethod
    def _load_module_folder(cls, folder: Path) -> StaticEmbedding:
        """A module's own folder (``model.safetensors`` + ``tokenizer.json``, as :meth:`save` writes it).

        Raises:
            ModelNotFoundError: A file is missing.
            CorruptModelError: No ``embedding.weight`` / ``embeddings`` tensor.
        """
        from staticst.errors import CorruptModelError, ModelNotFoundError
        from staticst.persistence.io import read_safetensors
        from staticst.persistence.load import read_tokenizer

        weights_path = folder / "model.safetensors"
        if not weights_path.is_file():
            raise ModelNotFoundError(
                f"{folder} holds no model.safetensors: save the module there first (module.save(folder))."
            )
        tokenizer = read_tokenizer(folder / "tokenizer.json")
        tensors = read_safetensors(weights_path)
        if "embedding.weight" in tensors.tensors:
            table = tensors.get("embedding.weight")
        elif "embeddings" in tensors.tensors:
            table = fold_model2vec_weights(
                tensors.get("embeddings"),
                tensors.get("mapping") if "mapping" in tensors.tensors else None,
                tensors.get("weights") if "weights" in tensors.tensors else None,
            )
        else:
            raise CorruptModelError(
                f"{weights_path} has no 'embedding.weight' (or model2vec 'embeddings') tensor; found {sorted(tensors.tensors)}."
            )
        return cls(tokenizer, embedding_weights=table)

    @classmethod
    def from_model2vec(cls, model_id_or_path: str | os.PathLike[str]) -> StaticEmbedding:
        """The module of a model2vec model, loaded as ``model2vec.StaticModel.from_pretrained`` loads it.

        As in sentence-transformers, the tokenizer is the model2vec model's, which truncates at its
        ``max_length`` (512 unless its config says otherwise).
        """
        from staticst.static_model import StaticModel

        model = StaticModel.from_pretrained(model_id_or_path)
        table = fold_model2vec_weights(model.embedding, model.token_mapping, model.weights)
        return cls(model.tokenizer, embedding_weights=table, base_model=str(model_id_or_path))

    @classmethod
    def from_distillation(
        cls,
        model_name: str,
        vocabulary: list[str] | None = None,
        device: str | None = None,
        pca_dims: int | None = 256,
        apply_zipf: bool = True,
        sif_coefficient: float | None = 1e-4,
        token_remove_pattern: str | None = r"\[unused\d+\]",
        quantize_to: str = "float32",
        use_subword: bool = True,
        **kwargs: Any,
    ) -> StaticEmbedding:
        """Distill a static module from a transformer, without torch (sentence-transformers' ``from_distillation``).

        The transformer runs in ONNX Runtime from its folder's ``onnx/model.onnx`` (the ``distill`` extra);
        the arguments and defaults are sentence-transformers' (``apply_zipf`` and ``use_subword`` are
        ignored as there). See ``docs/distill.md``.

        Raises:
            ImportError: The ``distill`` extra (onnxruntime, scikit-learn) is not installed.
            staticst.errors.ModelNotFoundError: The model folder has no ONNX export (the message names the file).
        """
        from staticst.distill import distill_module_parts

        tokenizer, table, base_model = distill_module_parts(
            model_name, vocabulary, device, pca_dims, apply_zipf, sif_coefficient, token_remove_pattern,
            quantize_to, use_subword, **kwargs,
        )  # fmt: skip
        return cls(tokenizer, embedding_weights=table, base_model=base_model)

    def __repr__(self) -> str:
        return "StaticEmbedding({})"


class _EmbeddingBag:
    """``StaticEmbedding.embedding``: what code reads of the ``nn.EmbeddingBag`` (``weight``, sizes, ``mode``)."""

    mode = "mean"

    def __init__(self, module: StaticEmbedding) -> None:
        self._module = module

    @property
    def weight(self) -> np.ndarray:
        """The table, one row per token id (numpy)."""
        return self._module.weight

    @property
    def num_embeddings(self) -> int:
        """Rows of the table."""
        return self._module.num_embeddings

    @property
    def embedding_dim(self) -> int:
        """Width of the table."""
        return self._module.embedding_dim

    def __repr__(self) -> str:
        return f"EmbeddingBag({self.num_embeddings}, {self.embedding_dim}, mode='mean')"


class Normalize(Module):
    """L2-normalises ``features[module_input_name]`` (sentence-transformers' ``Normalize``, on numpy).

    Args:
        module_input_name: The feature to normalise (default ``"sentence_embedding"``).
        module_output_name: Where to write it (default: ``module_input_name``).
    """

    config_keys: list[str] = ["module_input_name", "module_output_name"]  # noqa: RUF012

    def __init__(self, module_input_name: str = "sentence_embedding", module_output_name: str | None = None) -> None:
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name if module_output_name is not None else module_input_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """``x / max(||x||, 1e-12)`` per row, as ``torch.nn.functional.normalize``."""
        x = features.get(self.module_input_name)
        if x is not None:
            rows = np.asarray(x, dtype=np.float32)
            features[self.module_output_name] = (
                normalize_rows(rows.reshape(-1, rows.shape[-1]), "sentence-transformers")
                .reshape(rows.shape)
                .astype(np.float32, copy=False)
            )
        return features

    def save(
        self, output_path: str | os.PathLike[str], *args: Any, safe_serialization: bool = True, **kwargs: Any
    ) -> None:
        """Write the module's ``config.json`` into ``output_path`` (created if needed)."""
        Path(output_path).mkdir(parents=True, exist_ok=True)
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str | os.PathLike[str] = "", subfolder: str = "", **kwargs: Any) -> Normalize:
        """The module saved in ``model_name_or_path`` (its ``config.json``); the default one with no path."""
        if not model_name_or_path:
            return cls()
        path = Path(model_name_or_path) / subfolder / CONFIG_FILE
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return cls(**{key: value for key, value in config.items() if key in cls.config_keys})
