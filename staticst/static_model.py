"""``StaticModel``: a model2vec 0.10-compatible face over the same engine (``from staticst import StaticModel``).

For code written as ``from model2vec import StaticModel``: the constructor, ``from_pretrained``, ``encode``,
``encode_as_sequence``, ``tokenize``, the attributes (``dim``, ``tokens``, ``embedding``, ``weights``,
``token_mapping``, ``normalize``, ``max_length``, ``config``, ...) and ``save_pretrained`` /
``push_to_hub`` behave as model2vec 0.10's, and the vectors are model2vec's (float16 where model2vec
returns float16). Every folder is read under model2vec's rules (``[UNK]`` dropped, ``max_length`` from
``config.json``, the character cut), whatever its layout, as model2vec reads it. Vectors come from
:class:`staticst.engine.Embedder` (the unnormalised means of a float64 table kept in float64, as model2vec
does, from :meth:`~staticst.engine.Embedder.embed_float64`), with one model2vec-only step here:
``vocabulary_quantization`` clusters the vocabulary with scikit-learn as model2vec does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst._version import __version__
from staticst.engine import Embedder
from staticst.errors import MissingDependencyError, VocabularyMismatchError
from staticst.families import MODEL2VEC
from staticst.model_card import model2vec_card
from staticst.persistence.hub import resolve_model
from staticst.persistence.layout import all_layout_files
from staticst.persistence.load import TABLE_DTYPES, ModelParts, check_finite, parts_in_memory, read_model
from staticst.persistence.save import SavedModel, write_model

__all__ = ["DEFAULT_MAX_LENGTH", "StaticModel"]

logger = logging.getLogger("staticst.static_model")

DEFAULT_MAX_LENGTH = 512


class _UnsetType:
    """The type of :data:`_UNSET`: "argument not passed" (``None`` means "no limit")."""

    def __repr__(self) -> str:
        return "_UNSET"


_UNSET: Any = _UnsetType()


def _is_unset(value: Any) -> bool:
    """Whether ``value`` is staticst's or model2vec's "not passed" marker (``model2vec.types._UNSET``).

    model2vec's own code (``StaticModelPipeline``, the trainers) passes its marker to ``encode``; it is recognised
    by its type, without importing model2vec.
    """
    kind = type(value)
    return kind is _UnsetType or (kind.__name__ == "_UnsetType" and kind.__module__.startswith("model2vec"))


_QUANTIZE_TO = {"float16": np.float16, "float32": np.float32, "float64": np.float64, "int8": np.int8}


def _quantized(table: np.ndarray, quantize_to: Any, dimensionality: int | None) -> np.ndarray:
    """model2vec's ``quantize_and_reduce_dim``: a dtype change (int8: symmetric scale) and/or a dimension cut.

    Raises:
        ValueError: An unknown dtype, or ``dimensionality`` above the model's.
    """
    if quantize_to is not None:
        name = str(getattr(quantize_to, "value", quantize_to))
        if name not in _QUANTIZE_TO:
            raise ValueError(
                f"quantize_to={quantize_to!r} is not a dtype model2vec knows; use one of {list(_QUANTIZE_TO)}."
            )
        dtype = np.dtype(_QUANTIZE_TO[name])
        if table.dtype != dtype:
            if dtype == np.int8:  # model2vec: scale to [-127, 127] in float16, round, clip
                scale = np.max(np.abs(table)) / 127.0
                buf = table.astype(np.float16, copy=True)
                np.divide(buf, scale, out=buf)
                np.rint(buf, out=buf)
                np.clip(buf, -127, 127, out=buf)
                table = buf.astype(np.int8)
            else:
                table = table.astype(dtype)
    if dimensionality is not None:
        if dimensionality > table.shape[1]:
            raise ValueError(
                f"Dimensionality {dimensionality} is greater than the model dimensionality {table.shape[1]}: "
                "pass a smaller dimensionality (or None)."
            )
        table = table[:, :dimensionality]
    return table


def _vocabulary_quantized(
    table: np.ndarray, weights: np.ndarray | None, n_clusters: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """model2vec 0.10's ``quantize_vocabulary``: k-means over the rows; returns ``(centres, mapping, weights)``.

    Without weights, each row's norm becomes its weight and the rows are clustered by direction. The call
    is model2vec's (scikit-learn ``KMeans(random_state=42, init="random")`` on float32 rows), so the same
    scikit-learn gives the same model.

    Raises:
        MissingDependencyError: scikit-learn is not installed.
    """
    try:
        from sklearn.cluster import KMeans
    except ImportError as exc:
        raise MissingDependencyError(
            "vocabulary_quantization clusters the vocabulary with scikit-learn, which is not installed: "
            "pip install scikit-learn"
        ) from exc
    if weights is None:
        weights = np.linalg.norm(table, axis=1) + 1e-32
        table = table / weights[:, None]
    rows = table.astype(np.float32)
    kmeans = KMeans(n_clusters=n_clusters, random_state=42, init="random")
    kmeans.fit(rows)
    mapping = kmeans.predict(rows)
    return kmeans.cluster_centers_.astype(table.dtype), mapping, weights


def _readme_metadata(folder: Path) -> dict[str, Any]:
    """The YAML metadata of ``README.md`` (``language``, ``base_model``, ...), as model2vec reads it."""
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    from huggingface_hub import ModelCard

    data: dict[str, Any] = ModelCard.load(readme).data.to_dict()
    return data


def _resolve(path: str | os.PathLike[str], token: str | None, subfolder: str | None) -> Path:
    """The local folder of ``path`` (a folder, else a Hub id; only ``subfolder``'s files are fetched)."""
    local = Path(path).expanduser()
    if local.exists():
        return local / subfolder if subfolder else local
    if not subfolder:
        folder, _, _ = resolve_model(str(path), token=token)
        return folder
    import huggingface_hub

    prefix = subfolder.strip("/")
    patterns = [f"{prefix}/{name}" for name in all_layout_files()]
    snapshot = huggingface_hub.snapshot_download(str(path), repo_type="model", token=token, allow_patterns=patterns)
    return Path(snapshot) / prefix


class StaticModel:
    """A static embedding model with model2vec 0.10's API.

    Args:
        vectors: ``(rows, dim)`` embedding table (float16, float32, float64 or int8).
        tokenizer: The ``tokenizers.Tokenizer`` (copied; its padding is switched off).
        config: Metadata config (copied); ``normalize`` and ``max_length`` are written into it.
        normalize: L2-normalise the output (authoritative over ``config``).
        base_model_name: The base model, for the model card.
        language: The model's languages, for the model card.
        weights: Per-token weights (vocabulary-quantized models).
        token_mapping: Token id -> table row (vocabulary-quantized models).
        max_length: Token limit per text used by :meth:`encode` (``None``: none).
        kernel: staticst's backend (``"auto"``, ``"native"``, ``"numpy"``); results never depend on it.

    Raises:
        VocabularyMismatchError: The table does not fit the tokenizer (also a ``ValueError``, as model2vec).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        tokenizer: Tokenizer,
        config: Mapping[str, Any] | None = None,
        normalize: bool = False,
        base_model_name: str | None = None,
        language: list[str] | None = None,
        weights: np.ndarray | None = None,
        token_mapping: np.ndarray | None = None,
        max_length: int | None = DEFAULT_MAX_LENGTH,
        *,
        kernel: str | None = None,
    ) -> None:
        # the parts a model2vec folder of these would give, built in memory (private copies of the arrays)
        parts = parts_in_memory(
            SavedModel(
                layout="model2vec",
                table=np.ascontiguousarray(vectors),
                mapping=None if token_mapping is None else np.asarray(token_mapping, dtype=np.int64),
                weights=None if weights is None else np.ascontiguousarray(weights),
                tokenizer=tokenizer,
                normalize=bool(normalize),
                max_length=max_length,
                truncation_side="right",
                config={},
                st_config={},
            )
        )
        self._setup(parts, config or {}, normalize, max_length, base_model_name, language, kernel)

    def _setup(
        self,
        parts: ModelParts,
        config: Mapping[str, Any],
        normalize: bool,
        max_length: int | None,
        base_model_name: str | None,
        language: list[str] | None,
        kernel: str | None,
    ) -> None:
        self._parts = parts
        # what needs the Hugging Face tokenizer is read before the engine is built: the engine lets go of a large
        # one once its native pipeline tokenizes every text, and a later read would rebuild it (hundreds of MB)
        vocab = parts.tokenizer.get_vocab()
        self.tokens: tuple[str, ...] = tuple(t for t, _ in sorted(vocab.items(), key=lambda x: x[1]))
        self.median_token_length = int(np.median([len(t) for t in self.tokens]))
        self._engine = Embedder.from_parts(parts, kernel=kernel, family=MODEL2VEC, normalize=bool(normalize))
        self._engines: dict[Any, Embedder] = {}
        self._tokenizer: Tokenizer | None = None  # model2vec's `tokenizer` attribute, copied on first use
        self.config: dict[str, Any] = dict(config)
        self.base_model_name = base_model_name
        self.language = language
        self._normalize = bool(normalize)
        self._max_length: int | None = None
        self.max_length = max_length
        self.normalize = bool(normalize)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        token: str | None = None,
        normalize: bool | None = None,
        subfolder: str | None = None,
        quantize_to: Any = None,
        dimensionality: int | None = None,
        vocabulary_quantization: int | None = None,
        max_length: Any = _UNSET,
        force_download: bool = True,
        *,
        kernel: str | None = None,
    ) -> StaticModel:
        """Load a model from a folder or the Hugging Face Hub, as ``model2vec.StaticModel.from_pretrained``.

        Args:
            path: A local folder or a Hub id.
            token: Hub token.
            normalize: Override the config's ``normalize`` (default: the config's, else ``False``).
            subfolder: Load from this subfolder (of the folder or the Hub repository).
            quantize_to: ``"float16"``, ``"float32"``, ``"float64"`` or ``"int8"`` (model2vec's conversion).
            dimensionality: Keep the first ``dimensionality`` dimensions.
            vocabulary_quantization: Cluster the vocabulary into this many rows (k-means; needs scikit-learn),
                as model2vec does, before ``quantize_to`` / ``dimensionality``.
            max_length: Token limit (default: the config's, else 512; ``None``: no limit).
            force_download: Accepted for compatibility: the Hub cache is used as ``huggingface_hub`` decides.
            kernel: staticst's backend (``"auto"``, ``"native"``, ``"numpy"``).

        Raises:
            ValueError: No model files in the folder (``UnknownLayoutError``), a bad ``quantize_to`` or
                ``dimensionality``, or ``vocabulary_quantization`` on a model already vocabulary-quantized.
            MissingDependencyError: ``vocabulary_quantization`` without scikit-learn installed.
        """
        folder = _resolve(path, token, subfolder)
        parts = read_model(folder)
        metadata = _readme_metadata(folder)
        # model2vec reads config.json, or config_sentence_transformers.json for a sentence-transformers layout
        config = dict(parts.config) if parts.resolved.layout.config_file else dict(parts.st_config)
        resolved_normalize = normalize if normalize is not None else bool(config.get("normalize", False))
        resolved_max = config.get("max_length", DEFAULT_MAX_LENGTH) if _is_unset(max_length) else max_length
        base, language = metadata.get("base_model"), metadata.get("language")
        if not any([vocabulary_quantization, quantize_to, dimensionality]):  # model2vec's test
            model = cls.__new__(cls)
            model._setup(parts, config, resolved_normalize, resolved_max, base, language, kernel)
            return model
        table, mapping, weights = np.asarray(parts.table), parts.mapping, parts.weights
        if vocabulary_quantization is not None:
            if mapping is not None or len(table) != parts.tokenizer.get_vocab_size():
                raise ValueError("Model already has been vocabulary quantized, cannot quantize again.")
            table, mapping, weights = _vocabulary_quantized(table, weights, vocabulary_quantization)
        table = _quantized(table, quantize_to, dimensionality)
        return cls(
            table,
            parts.tokenizer,
            config,
            resolved_normalize,
            base,
            language,
            weights,
            mapping,
            resolved_max,
            kernel=kernel,
        )

    # ------------------------------------------------------------------ attributes

    @property
    def embedding(self) -> np.ndarray:
        """The ``(rows, dim)`` table (read-only array); assignable, as in model2vec (the model is rebuilt on it).

        ``model.embedding = np.nan_to_num(model.embedding)`` is what model2vec's ``StaticModelPipeline`` and trainers do.
        """
        return self._engine.table

    @embedding.setter
    def embedding(self, value: Any) -> None:
        self._replace_parts(table=np.asarray(value))

    @property
    def weights(self) -> np.ndarray | None:
        """Per-token weights, or ``None``; assignable."""
        return self._engine.weights

    @weights.setter
    def weights(self, value: Any) -> None:
        self._replace_parts(weights=None if value is None else np.asarray(value))

    @property
    def token_mapping(self) -> np.ndarray | None:
        """Token id -> table row, or ``None``; assignable."""
        return self._engine.mapping

    @token_mapping.setter
    def token_mapping(self, value: Any) -> None:
        self._replace_parts(mapping=None if value is None else np.asarray(value, dtype=np.int64))

    def _replace_parts(self, **changes: Any) -> None:
        """Rebuild the model on a new table / weights / mapping (checked as a folder's are), settings kept.

        Raises:
            ValueError: The new table does not fit the tokenizer (``VocabularyMismatchError``), is not a 2-D
                table of a supported dtype, or holds NaN / Inf (``NonFiniteEmbeddingError``).
        """
        parts = dataclasses.replace(self._parts, **changes)
        table, mapping, weights = parts.table, parts.mapping, parts.weights
        if table.ndim != 2 or table.dtype not in TABLE_DTYPES:
            raise ValueError(
                f"embedding must be a 2-D table of float16, float32, float64 or int8; got {table.dtype} {table.shape}."
            )
        n_ids = len(mapping) if mapping is not None else table.shape[0]
        if mapping is None and n_ids != len(self.tokens):
            raise VocabularyMismatchError(
                f"Number of tokens ({len(self.tokens)}) does not match number of vectors ({n_ids}). "
                "Please provide a token mapping or ensure the number of tokens matches the number of vectors."
            )
        if mapping is not None and len(mapping) and int(mapping.max()) >= table.shape[0]:
            raise ValueError(
                f"token_mapping points at row {int(mapping.max())}, but the table has {table.shape[0]} rows."
            )
        if weights is not None and len(weights) != n_ids:
            raise ValueError(f"weights has {len(weights)} entries, one per token id ({n_ids}) is needed.")
        check_finite("embedding", table, Path("<assigned>"))
        engine = self._engine
        self._parts = dataclasses.replace(parts, table=np.ascontiguousarray(table))
        rebuilt = Embedder.from_parts(
            self._parts,
            kernel=engine.kernel_request,
            threads=engine.threads,
            family=MODEL2VEC,
            normalize=self._normalize,
        )
        self._engine = rebuilt.with_max_length(self._max_length)
        self._engines.clear()

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        return self._engine.dim

    @property
    def embedding_dtype(self) -> str:
        """The table's dtype name."""
        return np.dtype(self.embedding.dtype).name

    @property
    def vocabulary_quantization(self) -> int | None:
        """Number of table rows of a vocabulary-quantized model, else ``None``."""
        quantized = self.token_mapping is not None or len(self.embedding) != len(self.tokens)
        return int(self.embedding.shape[0]) if quantized else None

    @property
    def unk_token_id(self) -> int | None:
        """The id dropped from every text (the unknown token), or ``None``."""
        model = self.tokenizer.model
        if hasattr(model, "unk_token"):
            token = model.unk_token
            return None if token is None else self.tokenizer.token_to_id(token)
        unk: int | None = json.loads(self.tokenizer.to_str())["model"].get("unk_id")
        return unk

    @property
    def engine(self) -> Embedder:
        """The engine in force (staticst's own; table, tokenizer and pooling settings)."""
        return self._engine

    @property
    def normalize(self) -> bool:
        """L2-normalise the output of :meth:`encode`; settable (updates ``config``, as model2vec)."""
        return self._normalize

    @normalize.setter
    def normalize(self, value: bool) -> None:
        current = self.config.get("normalize")
        if current is not None and value != current:
            logger.warning(
                f"Set normalization to `{value}`, which does not match config value `{current}`. Updating config."
            )
        self._normalize = value
        self.config["normalize"] = value
        self._engine = self._engine.with_settings(
            pooling=dataclasses.replace(self._engine.pooling, normalize=bool(value))
        )
        self._engines.clear()

    @property
    def max_length(self) -> int | None:
        """Token limit :meth:`encode` uses when not given one; settable (updates ``config`` and ``tokenizer``)."""
        return self._max_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        current = self.config.get("max_length")
        if current is not None and value != current:
            logger.warning(
                f"Set max_length to `{value}`, which does not match config value `{current}`. Updating config."
            )
        self._max_length = value
        self.config["max_length"] = value
        self._set_tokenizer_limit(value)
        self._engine = self._engine.with_max_length(value)
        self._engines.clear()

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's ``tokenizers.Tokenizer`` (a copy of the loaded one, truncated at :attr:`max_length`).

        As model2vec's attribute; settable. The copy is made on first use: a model that only encodes never holds
        it (its engine tokenizes natively and keeps a large tokenizer's JSON compressed).
        """
        tokenizer = self._tokenizer
        if tokenizer is None:
            tokenizer = Tokenizer.from_str(self._parts.tokenizer.to_str())
            padding = self._parts.padding
            if padding is not None:  # model2vec keeps the pad token but stops padding
                tokenizer.enable_padding(
                    pad_id=padding["pad_id"], pad_token=padding["pad_token"], pad_type_id=padding["pad_type_id"], length=0
                )
            self._tokenizer = tokenizer
            self._set_tokenizer_limit(self._max_length)
        return tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Tokenizer) -> None:
        self._tokenizer = value

    def _set_tokenizer_limit(self, value: int | None) -> None:
        tokenizer = self._tokenizer
        if tokenizer is None:  # applied when the copy is made
            return
        if value is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(value)

    def _engine_for(self, max_length: int | None, normalize: bool, char_cut: bool = True) -> Embedder:
        """The engine under a per-call token limit / normalisation (cached; the table and word cache are shared)."""
        key = (max_length, normalize, char_cut)
        if key == (self._max_length, self._normalize, True):
            return self._engine
        engine = self._engines.get(key)
        if engine is None:
            engine = self._engine.with_max_length(max_length)
            if not char_cut:
                engine = engine.with_settings(dataclasses.replace(engine.settings, char_limit=None))
            engine = engine.with_settings(pooling=dataclasses.replace(engine.pooling, normalize=normalize))
            self._engines[key] = engine
        return engine

    # ------------------------------------------------------------------ encoding

    def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
        """Token ids per sentence under the model's ``max_length`` (no character cut), ``[UNK]`` removed."""
        engine = self._engine_for(self._max_length, self._normalize, char_cut=False)
        ids, offsets = engine.tokenize(list(sentences))
        bounds = offsets.tolist()
        return [ids[lo:hi].tolist() for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]

    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        show_progress_bar: bool = False,
        max_length: Any = _UNSET,
        normalize: bool | None = None,
        batch_size: int = 1024,
        use_multiprocessing: bool = True,
        multiprocessing_threshold: int = 10_000,
        **kwargs: Any,
    ) -> np.ndarray:
        """Mean token vector per sentence, as model2vec: ``(dim,)`` for one ``str``, else ``(n, dim)``.

        Args:
            sentences: A sentence or a sequence of sentences.
            show_progress_bar: Show a bar over the batches.
            max_length: Token limit for this call (default: :attr:`max_length`; ``None``: none).
            normalize: L2-normalise for this call (default: :attr:`normalize`).
            batch_size: Sentences per progress step (results never depend on it).
            use_multiprocessing: Accepted (staticst spreads large batches over native threads).
            multiprocessing_threshold: Accepted (see ``use_multiprocessing``).
            **kwargs: Ignored, as model2vec ignores them.

        Returns:
            The table's dtype (float16 tables give float16, as model2vec; int8 tables give float32).
        """
        single = isinstance(sentences, str)
        texts: list[str] = [sentences] if isinstance(sentences, str) else list(sentences)
        engine = self._engine_for(
            self._max_length if _is_unset(max_length) else max_length,
            self._normalize if normalize is None else bool(normalize),
        )
        # The engine returns float32. model2vec keeps a float64 table's means in float64 (it normalises in
        # float32, so normalised vectors are float32 values either way): those come from Embedder.embed_float64.
        embed = (
            Embedder.embed_float64
            if self.embedding.dtype == np.float64 and not engine.pooling.normalize
            else Embedder.embed
        )
        out = self._batched(embed, engine, texts, batch_size, show_progress_bar)
        dtype = np.float32 if self.embedding.dtype == np.int8 else self.embedding.dtype
        out = out.astype(dtype, copy=False)
        return out[0] if single else out

    @staticmethod
    def _batched(embed: Any, engine: Embedder, texts: list[str], batch_size: int, show: bool) -> np.ndarray:
        if not show or len(texts) <= batch_size:
            return np.asarray(embed(engine, texts))
        from tqdm.auto import tqdm

        parts = [embed(engine, texts[lo : lo + batch_size]) for lo in tqdm(range(0, len(texts), batch_size))]
        return np.concatenate(parts, axis=0)

    def encode_as_sequence(
        self,
        sentences: str | Sequence[str],
        *,
        max_length: int | None = None,
        batch_size: int = 1024,
        show_progress_bar: bool = False,
        use_multiprocessing: bool = True,
        multiprocessing_threshold: int = 10_000,
    ) -> np.ndarray | list[np.ndarray]:
        """The vector of every token of each sentence (model2vec: for NER-style work).

        Unlike :meth:`encode`, the model's ``max_length`` is not applied: only this call's ``max_length``.
        Rows keep the table's dtype; a sentence with no token gives a ``(0, dim)`` array.
        """
        single = isinstance(sentences, str)
        texts: list[str] = [sentences] if isinstance(sentences, str) else list(sentences)
        rows = self._engine_for(max_length, self._normalize).token_rows(texts)
        return rows[0] if single else rows

    # ------------------------------------------------------------------ saving

    def save_pretrained(
        self, path: str | os.PathLike[str], model_name: str | None = None, subfolder: str | None = None
    ) -> None:
        """Save in the model2vec layout (``model.safetensors``, ``tokenizer.json``, ``config.json``, ``modules.json``).

        Args:
            path: Target folder (created if needed).
            model_name: Name in the model card.
            subfolder: Save into this subfolder of ``path``.
        """
        folder = Path(path) / subfolder if subfolder else Path(path)
        engine = self._engine
        model = SavedModel(
            layout="model2vec",
            table=engine.table,
            mapping=engine.mapping,
            weights=engine.weights,
            tokenizer=Tokenizer.from_str(self.tokenizer.to_str()),
            normalize=self._normalize,
            max_length=self._max_length,
            truncation_side="right",
            config=self.config,
            st_config={"__version__": {"staticst": __version__}},
        )
        write_model(folder, model, None)
        title = model_name or self.base_model_name or "static embedding model"
        card = model2vec_card(title, len(self.tokens), self.dim, self.language, self.base_model_name)
        (folder / "README.md").write_text(card, encoding="utf-8")

    def push_to_hub(
        self, repo_id: str, private: bool = False, token: str | None = None, subfolder: str | None = None
    ) -> None:
        """Save to a temporary folder and upload it, as model2vec does (creating the repository if needed)."""
        from staticst.persistence.hub import push_model2vec_folder

        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, model_name=repo_id)
            push_model2vec_folder(Path(tmp), repo_id, private=private, token=token, subfolder=subfolder)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the parts and settings; the engine (native kernel, word cache) is rebuilt on unpickling."""
        state = self.__dict__.copy()
        engine: Embedder = state.pop("_engine")
        state.pop("_engines", None)
        state["_engine_state"] = (engine.kernel_request, engine.threads)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the engine from the pickled parts (see :meth:`__getstate__`)."""
        kernel, threads = state.pop("_engine_state")
        if "tokenizer" in state:  # pickled before the copy was made on first use
            state["_tokenizer"] = state.pop("tokenizer")
        state.setdefault("_tokenizer", None)
        self.__dict__.update(state)
        engine = Embedder.from_parts(
            self._parts, kernel=kernel, threads=threads, family=MODEL2VEC, normalize=self._normalize
        )
        self._engine = engine.with_max_length(self._max_length)
        self._engines = {}

    def __repr__(self) -> str:
        return (
            f"StaticModel(tokens={len(self.tokens)}, dim={self.dim}, dtype={self.embedding_dtype!r}, "
            f"normalize={self._normalize}, max_length={self._max_length})"
        )
