"""``StaticSentenceTransformer``: a torch-free drop-in for ``SentenceTransformer`` on static models."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tokenizers import Tokenizer

from staticst import util
from staticst._version import __version__
from staticst.errors import (
    CorruptModelError,
    MissingDependencyError,
    ModelNotFoundError,
    NonFiniteEmbeddingError,
    VocabularyMismatchError,
)
from staticst.persistence.hub import BUILTIN_MODEL_PATH, resolve_model
from staticst.persistence.io import read_safetensors, write_safetensors
from staticst.persistence.layout import ResolvedLayout, detect_layout
from staticst.pooling import PoolingConfig, normalize_rows, pool, pool_one
from staticst.tokenization import TextTokenizer, TokenizerSettings, median_token_length

__all__ = ["ModelCardData", "StaticSentenceTransformer"]

logger = logging.getLogger(__name__)

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
ALLOWED_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
#: model2vec 0.10's default token limit when config.json has no ``max_length``.
MODEL2VEC_DEFAULT_MAX_LENGTH = 512
#: Texts handled per internal step of ``encode`` (bounds the memory of one step).
ENCODE_STEP = 8192
#: Characters handled per internal step of ``encode`` (long texts: bounds the words held at once).
ENCODE_STEP_CHARS = 1 << 20
_GATHER_COPY_TOKENS = 1 << 16  # a float16 table's float32 copy is made for the first step this large
_TABLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.float64), np.dtype(np.int8))
_NO_EFFECT_INIT = ("model_kwargs", "processor_kwargs", "tokenizer_kwargs", "config_kwargs")
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, UserWarning, stacklevel=3)


@dataclass
class ModelCardData:
    """Model card metadata, with the fields sentence-transformers' ``model_card_data`` exposes to tools."""

    language: list[str] = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    base_model: str | None = None
    base_model_revision: str | None = None
    train_datasets: list[dict[str, str]] = field(default_factory=list)
    eval_datasets: list[dict[str, str]] = field(default_factory=list)
    task_name: str = "semantic textual similarity, semantic search, paraphrase mining, text classification, clustering"
    tags: list[str] = field(default_factory=lambda: ["sentence-transformers", "static-embeddings", "staticst"])

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view (for JSON)."""
        return asdict(self)


def _read_tokenizer(path: Path) -> Tokenizer:
    if not path.is_file():
        raise ModelNotFoundError(f"Missing tokenizer file {path}. Re-download or re-save the model.")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on parse errors
        raise CorruptModelError(f"Could not load tokenizer {path}: {exc}. Re-download or re-save the model.") from exc


def _check_finite(name: str, arr: np.ndarray, path: Path) -> None:
    if arr.dtype.kind == "f":
        step = 1 << 20
        flat = arr.reshape(-1)
        # float16 has no fast isfinite: its NaN / Inf are exactly the values with all exponent bits set
        exponent = np.uint16(0x7C00) if arr.dtype == np.float16 else None
        for lo in range(0, flat.size, step):
            block = flat[lo : lo + step]
            if exponent is not None:
                finite = not ((block.view(np.uint16) & exponent) == exponent).any()
            else:
                finite = bool(np.isfinite(block).all())
            if not finite:
                bad = lo + int(np.flatnonzero(~np.isfinite(block))[0])
                row = bad // arr.shape[1] if arr.ndim == 2 else bad
                raise NonFiniteEmbeddingError(
                    f"{path}: tensor {name!r} holds NaN or Inf (first at row {row}). The model is corrupt: "
                    "re-export it with finite values."
                )


class StaticSentenceTransformer:
    """Load a static embedding model and encode text like ``sentence_transformers.SentenceTransformer``.

    Args:
        model_name_or_path: A local folder, a Hugging Face Hub id, or ``None`` for the built-in model
            (``minishlab/potion-base-8M``, shipped in the package: no download).
        device: Accepted for compatibility; staticst always runs on the CPU (warns once if not ``"cpu"``).
        prompts: Prompt name -> text prepended to inputs; overrides prompts saved with the model.
        default_prompt_name: Prompt used when ``encode`` gets neither ``prompt`` nor ``prompt_name``.
        cache_folder: Hub cache folder (default ``SENTENCE_TRANSFORMERS_HOME`` or the HF cache).
        trust_remote_code: Accepted for compatibility; staticst never runs remote code.
        revision: Hub branch, tag or commit.
        local_files_only: Never use the network.
        token: Hub token.
        use_auth_token: Deprecated alias of ``token``.
        truncate_dim: Truncate embeddings to this many dimensions (Matryoshka).
        similarity_fn_name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        model_card_data: Metadata for the model card.
        backend: Accepted for compatibility (``"torch"``, ``"onnx"``, ``"openvino"``); no effect.
        **kwargs: ``model_kwargs``, ``processor_kwargs``, ``tokenizer_kwargs``, ``config_kwargs`` are accepted
            with a warning (no effect on a static model); anything else raises ``TypeError``.

    Raises:
        ModelNotFoundError: The model or one of its files does not exist.
        UnknownLayoutError: The folder is in no known layout.
        CorruptModelError: A file is truncated or malformed.
        VocabularyMismatchError: The table does not fit the tokenizer's vocabulary.
        NonFiniteEmbeddingError: The table holds NaN or Inf.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        truncate_dim: int | None = None,
        similarity_fn_name: str | None = None,
        model_card_data: ModelCardData | None = None,
        backend: str = "torch",
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - set(_NO_EFFECT_INIT))
        if unknown:
            raise TypeError(
                f"StaticSentenceTransformer() got unexpected keyword argument(s) {unknown}. Accepted: "
                "device, prompts, default_prompt_name, cache_folder, trust_remote_code, revision, local_files_only, "
                f"token, truncate_dim, similarity_fn_name, model_card_data, backend, {', '.join(_NO_EFFECT_INIT)}."
            )
        for key in kwargs:
            if kwargs[key]:
                _warn_once(f"init:{key}", f"StaticSentenceTransformer ignores {key}: a static model has no {key[:-7]}.")
        if use_auth_token is not None:
            if token is not None:
                raise ValueError("Both `token` and `use_auth_token` are specified. Please only specify `token`.")
            token = use_auth_token
        self._check_device(device)
        if backend not in ("torch", "onnx", "openvino"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino', got {backend!r}.")
        if trust_remote_code:
            _warn_once("init:trust_remote_code", "staticst never runs remote code; trust_remote_code has no effect.")
        if truncate_dim is not None:
            self._check_truncate_dim(truncate_dim)

        folder, model_id, resolved_revision = resolve_model(
            model_name_or_path,
            revision=revision,
            token=token,
            cache_folder=cache_folder,
            local_files_only=local_files_only,
        )
        self.model_path = folder
        self.model_id = model_id
        self.revision = resolved_revision
        self._load(folder)

        saved_prompts = self._resolved.st_config.get("prompts") or {}
        self.prompts: dict[str, str] = {"query": "", "document": ""}
        self.prompts.update({str(k): str(v) for k, v in dict(saved_prompts).items() if v is not None})
        if prompts:
            self.prompts.update(prompts)
        saved_default = self._resolved.st_config.get("default_prompt_name")
        self.default_prompt_name: str | None = default_prompt_name if default_prompt_name is not None else saved_default
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"Default prompt name {self.default_prompt_name!r} is not in the prompts {sorted(self.prompts)}. "
                "Add it to `prompts` or pick one of those names."
            )
        self.truncate_dim: int | None = truncate_dim
        self._similarity_fn_name: str | None = None
        self.similarity_fn_name = similarity_fn_name or self._resolved.st_config.get("similarity_fn_name")
        self.model_card_data = model_card_data or ModelCardData(
            model_id=model_id,
            base_model=None if Path(str(model_id)).expanduser().exists() else model_id,
            base_model_revision=resolved_revision,
            license="mit" if folder == BUILTIN_MODEL_PATH else None,
        )

    # ------------------------------------------------------------------ loading

    def _load(self, folder: Path) -> None:
        resolved = detect_layout(folder)
        self._resolved: ResolvedLayout = resolved
        layout = resolved.layout
        tokenizer = _read_tokenizer(resolved.tokenizer_path)
        st_file = read_safetensors(resolved.weights_path)
        name = next((t for t in layout.table_tensors if t in st_file.tensors), None)
        if name is None:
            raise CorruptModelError(
                f"{resolved.weights_path} has no embedding table: expected a tensor named "
                f"{' or '.join(repr(t) for t in layout.table_tensors)} for the {layout.name} layout, "
                f"found {sorted(st_file.tensors)}."
            )
        table = st_file.get(name)
        if table.ndim != 2 or table.shape[1] == 0:
            raise CorruptModelError(f"{resolved.weights_path}: {name!r} must be a 2-D (rows, dim) table, got shape {table.shape}.")
        if table.dtype not in _TABLE_DTYPES:
            raise CorruptModelError(
                f"{resolved.weights_path}: table dtype {table.dtype} is not supported; use float32, float16 or int8."
            )
        mapping = st_file.get("mapping") if "mapping" in st_file.tensors and name == "embeddings" else None
        weights = st_file.get("weights") if "weights" in st_file.tensors and name == "embeddings" else None
        vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        if mapping is not None:
            if mapping.ndim != 1 or mapping.dtype.kind not in "iu":
                raise CorruptModelError(f"{resolved.weights_path}: 'mapping' must be a 1-D integer array, got {mapping.dtype} {mapping.shape}.")
            if len(mapping) != vocab_size:
                raise VocabularyMismatchError(
                    f"{resolved.weights_path}: 'mapping' has {len(mapping)} entries but the tokenizer has {vocab_size} "
                    "tokens. The tokenizer and the table belong to different models: save them together."
                )
            if len(mapping) and (int(mapping.min()) < 0 or int(mapping.max()) >= table.shape[0]):
                raise CorruptModelError(
                    f"{resolved.weights_path}: 'mapping' points at rows outside 0..{table.shape[0] - 1} "
                    f"(min {int(mapping.min())}, max {int(mapping.max())})."
                )
            mapping = np.ascontiguousarray(mapping, dtype=np.int64)
        elif table.shape[0] != vocab_size:
            raise VocabularyMismatchError(
                f"{resolved.weights_path}: the table has {table.shape[0]} rows but the tokenizer "
                f"({resolved.tokenizer_path}) has {vocab_size} tokens. The tokenizer and the table belong to "
                "different models: save them together, or add a 'mapping' tensor for a vocabulary-quantized table."
            )
        if weights is not None:
            if weights.ndim != 1 or weights.dtype.kind != "f" or len(weights) != vocab_size:
                raise VocabularyMismatchError(
                    f"{resolved.weights_path}: 'weights' must be 1-D float with one entry per token ({vocab_size}), "
                    f"got {weights.dtype} {weights.shape}."
                )
            _check_finite("weights", weights, resolved.weights_path)
        _check_finite(name, table, resolved.weights_path)

        self._table = table
        # float16 rows are converted to float32 for every sum anyway; one exact copy makes batch pooling ~5x
        # faster. Made on the first batch (see _batch_gather_table): a single encode(str) does not need it.
        self._gather_table: np.ndarray | None = None
        self._mapping = mapping
        self._weights = weights
        # padding / truncation as saved with the model: restored by save(); encoding runs without them
        self._saved_tokenizer_options = (tokenizer.padding, tokenizer.truncation)
        if layout.semantics == "model2vec":
            max_length = resolved.config.get("max_length", MODEL2VEC_DEFAULT_MAX_LENGTH)
            self._tok_median = median_token_length(tokenizer)
            self._settings = TokenizerSettings(
                max_length=max_length,
                drop_unknown=True,
                char_limit=None if max_length is None else max_length * self._tok_median,
            )
            self.pooling_config = PoolingConfig(arithmetic="model2vec", normalize=resolved.normalize_module)
        else:
            trunc = tokenizer.truncation
            self._tok_median = 0
            self._settings = TokenizerSettings(
                max_length=int(trunc["max_length"]) if trunc else None,
                truncation_side="left" if trunc and str(trunc.get("direction", "")).lower() == "left" else "right",
            )
            self.pooling_config = PoolingConfig(arithmetic="sentence-transformers", normalize=resolved.normalize_module)
        self._tokenizer = TextTokenizer(tokenizer, self._settings, copy=False)  # read here: ours to modify

    # ------------------------------------------------------------------ properties

    @property
    def layout(self) -> str:
        """Name of the disk layout the model was loaded from."""
        return self._resolved.layout.name

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's ``tokenizers.Tokenizer`` (padding and truncation disabled; rules applied by staticst)."""
        return self._tokenizer.tokenizer

    @property
    def tokenizer_settings(self) -> TokenizerSettings:
        """Truncation and unknown-token rules in force (see ``docs/model-formats.md``)."""
        return self._settings

    @property
    def device(self) -> str:
        """Always ``"cpu"``."""
        return "cpu"

    @property
    def embedding_table(self) -> np.ndarray:
        """The (read-only, possibly memory-mapped) embedding table."""
        return self._table

    @property
    def max_seq_length(self) -> int | float:
        """Token limit per text (``math.inf`` when there is none, as sentence-transformers reports)."""
        return math.inf if self._settings.max_length is None else self._settings.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | float | None) -> None:
        if value is None or value == math.inf:
            new: int | None = None
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"max_seq_length must be a positive int, None or math.inf, got {value!r}.")
        else:
            new = value
        char_limit = None
        if self.pooling_config.arithmetic == "model2vec" and new is not None:
            char_limit = new * self._tok_median
        self._settings = TokenizerSettings(
            max_length=new,
            truncation_side=self._settings.truncation_side,
            drop_unknown=self._settings.drop_unknown,
            char_limit=char_limit,
        )
        self._tokenizer = self._tokenizer.with_settings(self._settings)

    @property
    def similarity_fn_name(self) -> str:
        """Similarity used by :meth:`similarity`; defaults to ``"cosine"`` on first access, as in ST."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | None) -> None:
        value = getattr(value, "value", value)
        if value is not None and value not in SIMILARITY_FN_NAMES:
            raise ValueError(f"similarity_fn_name must be one of {SIMILARITY_FN_NAMES}, got {value!r}.")
        self._similarity_fn_name = value

    def get_sentence_embedding_dimension(self) -> int:
        """Dimension of the vectors ``encode`` returns (after ``truncate_dim``)."""
        dim = int(self._table.shape[1])
        return min(dim, self.truncate_dim) if self.truncate_dim is not None else dim

    def get_embedding_dimension(self) -> int:
        """Alias of :meth:`get_sentence_embedding_dimension` (sentence-transformers 6 name)."""
        return self.get_sentence_embedding_dimension()

    def get_max_seq_length(self) -> int | float:
        """Same as :attr:`max_seq_length`."""
        return self.max_seq_length

    def get_model_kwargs(self) -> list[str]:
        """Extra ``encode`` keyword arguments this model uses: none, as for ST static models."""
        return []

    def num_parameters(self) -> int:
        """Number of stored parameters (table entries, plus per-token weights)."""
        n = int(self._table.size)
        return n + (int(self._weights.size) if self._weights is not None else 0)

    def info(self) -> dict[str, Any]:
        """A summary of the model: id, layout, dimensions, vocabulary, dtype and numeric settings."""
        return {
            "model": self.model_id,
            "revision": self.revision,
            "path": str(self.model_path),
            "layout": self.layout,
            "dim": int(self._table.shape[1]),
            "vocab_size": int(self.tokenizer.get_vocab_size(with_added_tokens=True)),
            "table_rows": int(self._table.shape[0]),
            "dtype": str(self._table.dtype),
            "vocabulary_quantized": self._mapping is not None,
            "token_weights": self._weights is not None,
            "normalize": self.pooling_config.normalize,
            "arithmetic": self.pooling_config.arithmetic,
            "max_length": self._settings.max_length,
            "drop_unknown": self._settings.drop_unknown,
            "num_parameters": self.num_parameters(),
            "fast_tokenizer": self._tokenizer.fast_path,
        }

    def __repr__(self) -> str:
        i = self.info()
        return (
            f"StaticSentenceTransformer(model={i['model']!r}, layout={i['layout']!r}, dim={i['dim']}, "
            f"dtype={i['dtype']!r}, normalize={i['normalize']}, max_length={i['max_length']})"
        )

    # ------------------------------------------------------------------ validation helpers

    @staticmethod
    def _check_device(device: Any) -> None:
        if device is None:
            return
        if isinstance(device, list) or str(device) != "cpu":
            _warn_once(
                f"device:{device}",
                f"staticst runs on the CPU with numpy; device={device!r} has no effect.",
            )

    @staticmethod
    def _check_truncate_dim(truncate_dim: Any) -> None:
        if isinstance(truncate_dim, bool) or not isinstance(truncate_dim, (int, np.integer)) or truncate_dim <= 0:
            raise ValueError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}.")

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is None:
            if prompt_name is not None:
                if prompt_name not in self.prompts:
                    raise ValueError(
                        f"Prompt name '{prompt_name}' not found in the configured prompts dictionary with keys "
                        f"{list(self.prompts.keys())!r}."
                    )
                return self.prompts[prompt_name]
            if self.default_prompt_name is not None:
                return self.prompts.get(self.default_prompt_name)
            return None
        if prompt_name is not None:
            logger.warning(
                "Provide either a `prompt`, a `prompt_name`, or neither, but not both. "
                "Ignoring the `prompt_name` in favor of `prompt`."
            )
        return prompt

    @staticmethod
    def _as_texts(inputs: Any) -> tuple[list[str], bool]:
        if isinstance(inputs, str):
            return [inputs], True
        if isinstance(inputs, np.ndarray):
            if inputs.ndim != 1 or inputs.dtype.kind not in "UO":
                raise TypeError(f"encode() takes a str or a 1-D array of str; got an array of {inputs.dtype} {inputs.shape}.")
            texts = inputs.tolist()
        elif isinstance(inputs, (list, tuple)) or (
            hasattr(inputs, "__iter__") and hasattr(inputs, "__len__") and not isinstance(inputs, (bytes, dict))
        ):
            texts = list(inputs)
        else:
            raise TypeError(f"encode() takes a str or a list of str, got {type(inputs).__name__}.")
        if not all(issubclass(kind, str) for kind in set(map(type, texts))):  # one C-level pass over texts
            i, t = next((i, t) for i, t in enumerate(texts) if not isinstance(t, str))
            raise TypeError(f"encode() inputs must all be str; item {i} is {type(t).__name__}: {t!r:.80}.")
        return texts, False

    # ------------------------------------------------------------------ encoding

    def _pool(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return pool(
            self._table,
            ids,
            offsets,
            self.pooling_config,
            mapping=self._mapping,
            weights=self._weights,
            gather_table=self._batch_gather_table(len(ids)),
        )

    def _batch_gather_table(self, n_tokens: int) -> np.ndarray | None:
        # The copy costs about what converting 64K gathered float16 rows costs: made for the first large step.
        if self._gather_table is None and self._table.dtype == np.float16 and n_tokens >= _GATHER_COPY_TOKENS:
            self._gather_table = self._table.astype(np.float32)  # racing threads compute the same copy
        return self._gather_table

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Pool ``texts`` into model vectors (the model's own normalisation, no prompt, no truncation).

        This is the core of :meth:`encode`: ``(len(texts), dim)`` float32, memory bounded per step.
        """
        n = len(texts)
        dim = int(self._table.shape[1])
        bounds = _steps(texts)
        if len(bounds) == 2:
            ids, offsets = self._tokenizer.encode_flat(texts)
            return self._pool(ids, offsets)
        out = np.empty((n, dim), dtype=np.float32)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            ids, offsets = self._tokenizer.encode_flat(texts[lo:hi])
            out[lo:hi] = self._pool(ids, offsets)
        return out

    def encode(
        self,
        inputs: str | Sequence[str] | np.ndarray,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        precision: Precision = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | list[str] | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embed one text or a batch, with sentence-transformers 6.2 semantics.

        Args:
            inputs: A ``str`` (returns shape ``(dim,)``) or a list / tuple / 1-D array of ``str``
                (returns ``(n, dim)`` in input order).
            prompt_name: Key of :attr:`prompts` whose text is prepended to every input.
            prompt: Text prepended to every input; wins over ``prompt_name``.
            batch_size: Progress-bar granularity (results do not depend on it); must be positive.
            show_progress_bar: Show a tqdm bar; ``None`` shows it when this logger is at INFO/DEBUG.
            output_value: ``"sentence_embedding"``, or ``None`` for a list of dicts per input.
            precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``
                (``staticst.util.quantize_embeddings``; ranges from the batch itself, as in ST).
            convert_to_numpy: Return numpy (default). ``False`` returns a list of torch tensors (needs torch).
            convert_to_tensor: Return one torch tensor (needs torch; imported only then).
            device: Accepted for compatibility (warns once if not ``"cpu"``); a list such as ``["cpu", "cpu"]``
                encodes large inputs in that many temporary worker processes, as in sentence-transformers.
            normalize_embeddings: L2-normalise after truncation.
            truncate_dim: Keep the first ``truncate_dim`` dimensions (default: the model's ``truncate_dim``).
            pool: A pool from :meth:`start_multi_process_pool`: inputs of at least
                ``staticst.multiprocess.POOL_MIN_TEXTS`` texts are encoded by its worker processes.
            chunk_size: Texts per chunk sent to a worker (default: about a quarter of each worker's share,
                between 1,024 and 8,192); no effect without a pool (warns once).
            **kwargs: ``task`` is accepted (no effect, as on ST static models); anything else raises.

        Returns:
            ``np.ndarray`` float32 (or int8/uint8 for quantized precisions); for ``encode([])`` the empty
            ``np.array([])`` sentence-transformers returns.

        Raises:
            ValueError: Unknown keyword argument, bad ``batch_size``, ``precision``, ``truncate_dim`` or
                ``prompt_name``.
            TypeError: Inputs that are not strings.
            MissingDependencyError: A torch output was requested and torch is not installed.
        """
        if (
            type(inputs) is str
            and not kwargs
            and precision == "float32"
            and output_value == "sentence_embedding"
            and convert_to_numpy
            and not convert_to_tensor
            and device is None
            and pool is None
            and chunk_size is None
            and type(batch_size) is int
            and batch_size > 0
        ):
            return self._encode_single(inputs, prompt_name, prompt, normalize_embeddings, truncate_dim)
        unused = set(kwargs) - {"task", "processing_kwargs"}
        if unused:
            raise ValueError(
                f"{type(self).__name__}.encode() has been called with additional keyword arguments that this model "
                f"does not use: {sorted(unused)}. As per {type(self).__name__}.get_model_kwargs(), this model does "
                "not accept any additional keyword arguments."
            )
        if kwargs.get("processing_kwargs"):
            _warn_once("encode:processing_kwargs", "processing_kwargs has no effect on a static model.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        if precision not in ALLOWED_PRECISIONS:
            raise ValueError(f"Precision {precision!r} is not supported, must be one of {set(ALLOWED_PRECISIONS)}")
        if output_value not in ("sentence_embedding", None):
            raise ValueError(
                f"output_value={output_value!r} is not available: a static model has no contextual token embeddings. "
                "Use output_value='sentence_embedding' (or None)."
            )
        devices = device if isinstance(device, list) else None
        if pool is not None:
            from staticst.multiprocess import check_pool

            check_pool(pool)
        if devices is not None:
            if not devices:
                raise ValueError("device=[] names no worker: pass a list such as ['cpu', 'cpu'], or a single device.")
            _warn_non_cpu_workers(devices)
        else:
            self._check_device(device)
        if chunk_size is not None:
            if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
                raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}.")
            if pool is None and devices is None:
                _warn_once("encode:chunk_size", "chunk_size only applies with a pool (or a list of devices); no effect.")
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None:
            self._check_truncate_dim(truncate_dim)
        texts, single = self._as_texts(inputs)
        resolved_prompt = self._resolve_prompt(prompt, prompt_name)
        if resolved_prompt:
            texts = [resolved_prompt + t for t in texts]
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        if convert_to_tensor or not convert_to_numpy or output_value is None:
            want_torch = convert_to_tensor or (not convert_to_numpy and output_value is not None)
        else:
            want_torch = False

        emb = self._embed_pooled(texts, pool, devices, chunk_size)
        if emb is None:
            emb = self._embed_with_progress(texts, batch_size, bool(show_progress_bar))
        if truncate_dim is not None:
            emb = emb[:, :truncate_dim]
        if normalize_embeddings:
            emb = normalize_rows(emb, "sentence-transformers").astype(np.float32, copy=False)
        emb = np.ascontiguousarray(emb)

        if output_value is None:
            rows = [{"sentence_embedding": row} for row in emb]
            return rows[0] if single else rows
        result: Any = emb
        if len(texts) and precision != "float32":
            result = util.quantize_embeddings(emb, precision=precision)
        if want_torch:
            torch = _import_torch()
            if convert_to_tensor:
                result = torch.as_tensor(result) if len(texts) else torch.tensor([])
            else:
                result = list(torch.from_numpy(np.asarray(result)))
        elif not len(texts):
            result = np.array([])
        if single:
            return result[0]
        return result

    def _encode_single(
        self, text: str, prompt_name: str | None, prompt: str | None, normalize: bool, truncate_dim: int | None
    ) -> np.ndarray:
        """The short path of ``encode(str)``: same results, no batching machinery."""
        if prompt is not None or prompt_name is not None or self.default_prompt_name is not None:
            resolved = self._resolve_prompt(prompt, prompt_name)
            if resolved:
                text = resolved + text
        ids = self._tokenizer.encode_one(text)
        vec = pool_one(
            self._table,
            ids,
            self.pooling_config,
            mapping=self._mapping,
            weights=self._weights,
            gather_table=self._gather_table,
        )
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None:
            self._check_truncate_dim(truncate_dim)
            vec = vec[:truncate_dim]
        if normalize:
            vec = normalize_rows(vec[None, :], "sentence-transformers")[0].astype(np.float32, copy=False)
        return np.ascontiguousarray(vec)

    def _embed_pooled(
        self, texts: list[str], pool: dict[str, Any] | None, devices: list[Any] | None, chunk_size: int | None
    ) -> np.ndarray | None:
        """The vectors from worker processes, or ``None`` when this call encodes in-process."""
        if pool is None and devices is None:
            return None
        from staticst import multiprocess

        if len(texts) < multiprocess.POOL_MIN_TEXTS:  # the round trip would cost more than it saves
            return None
        if pool is not None:
            return multiprocess.encode_with_pool(self, texts, pool, chunk_size)
        temporary = self.start_multi_process_pool([str(d) for d in devices or ()])
        try:
            return multiprocess.encode_with_pool(self, texts, temporary, chunk_size)
        finally:
            self.stop_multi_process_pool(temporary)

    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> dict[str, Any]:
        """Start worker processes that ``encode(..., pool=pool)`` spreads large inputs over.

        The sentence-transformers API: a dict with ``"input"`` / ``"output"`` queues and ``"processes"``.
        Workers are spawned (not forked), load this model's folder once, and follow this model's
        current settings on every call; the vectors are bit-identical to in-process encoding. Inputs of
        fewer than ``staticst.multiprocess.POOL_MIN_TEXTS`` texts are still encoded in-process. Call from
        under ``if __name__ == "__main__":`` in scripts, as with any spawned process.

        Args:
            target_devices: One entry per worker (e.g. ``["cpu", "cpu"]``); ``None``: one worker per usable
                CPU (sentence-transformers starts 4 CPU workers).

        Returns:
            The pool, for ``encode(..., pool=pool)`` and :meth:`stop_multi_process_pool`.
        """
        from staticst.multiprocess import start_pool

        if isinstance(target_devices, (list, tuple)):
            _warn_non_cpu_workers(target_devices)
        return start_pool(str(self.model_path), target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: dict[str, Any]) -> None:
        """Stop the workers started by :meth:`start_multi_process_pool` and close the pool's queues."""
        from staticst.multiprocess import stop_pool

        stop_pool(pool)

    def _embed_with_progress(self, texts: list[str], batch_size: int, show: bool) -> np.ndarray:
        if not show or len(texts) <= batch_size:
            return self.embed_texts(texts)
        from tqdm.auto import tqdm

        step = max(batch_size, min(ENCODE_STEP, len(texts) // 20 or 1))
        out = np.empty((len(texts), self._table.shape[1]), dtype=np.float32)
        with tqdm(total=len(texts), desc="Batches", unit="text") as bar:
            for lo in range(0, len(texts), step):
                hi = min(len(texts), lo + step)
                out[lo:hi] = self.embed_texts(texts[lo:hi])
                bar.update(hi - lo)
        return out

    def encode_query(self, inputs: str | Sequence[str] | np.ndarray, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any) -> Any:
        """Like :meth:`encode`, using the ``"query"`` prompt when neither prompt argument is given."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, task="query", **kwargs)

    def encode_document(self, inputs: str | Sequence[str] | np.ndarray, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any) -> Any:
        """Like :meth:`encode`, using the first of the ``"document"`` / ``"passage"`` / ``"corpus"`` prompts."""
        if prompt_name is None and prompt is None:
            for candidate in ("document", "passage", "corpus"):
                if candidate in self.prompts:
                    prompt_name = candidate
                    break
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, task="document", **kwargs)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """All-pairs similarity matrix under :attr:`similarity_fn_name` (numpy, float32)."""
        return util.similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Row-wise similarity ``sim(a[i], b[i])`` under :attr:`similarity_fn_name` (numpy, float32)."""
        return util.pairwise_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    @contextlib.contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Temporarily set :attr:`truncate_dim` (a context manager, as in ST)."""
        if truncate_dim is not None:
            self._check_truncate_dim(truncate_dim)
        original = self.truncate_dim
        try:
            self.truncate_dim = truncate_dim
            yield
        finally:
            self.truncate_dim = original

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Token ids as ``encode`` pools them: ``{"input_ids": flat ids, "offsets": start of each text}``."""
        batch, _ = self._as_texts(texts)
        ids, offsets = self._tokenizer.encode_flat(batch)
        return {"input_ids": ids, "offsets": offsets[:-1]}

    # ------------------------------------------------------------------ saving

    def _saved_tokenizer(self) -> Tokenizer:
        """A copy of the working tokenizer with the padding / truncation it was loaded with."""
        copy = Tokenizer.from_str(self._tokenizer.tokenizer.to_str())
        padding, truncation = self._saved_tokenizer_options
        if truncation:
            copy.enable_truncation(**truncation)
        if padding:
            copy.enable_padding(**padding)
        return copy

    def save(self, path: str | os.PathLike[str], model_name: str | None = None, create_model_card: bool = True, **kwargs: Any) -> None:
        """Save to a folder that staticst, model2vec and sentence-transformers all load.

        A model loaded from the model2vec layout is written in that layout (``config.json`` +
        ``model.safetensors`` + ``tokenizer.json`` + ``modules.json``); a sentence-transformers model in
        the sentence-transformers root layout. Either way the vectors staticst loads back are identical.

        Args:
            path: Target folder (created if needed).
            model_name: Name used in the model card.
            create_model_card: Write a short ``README.md``.
            **kwargs: Accepted for ST compatibility (``safe_serialization`` etc.); no effect.
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        normalize = self.pooling_config.normalize
        modules: list[dict[str, Any]] = []
        if self.pooling_config.arithmetic == "model2vec":
            tensors = {"embeddings": np.asarray(self._table)}
            if self._mapping is not None:
                tensors["mapping"] = self._mapping
            if self._weights is not None:
                tensors["weights"] = np.asarray(self._weights)
            write_safetensors(folder / "model.safetensors", tensors)
            config = dict(self._resolved.config)
            config["normalize"] = normalize
            config["max_length"] = self._settings.max_length
            config["embedding_dtype"] = str(self._table.dtype)
            if self._mapping is not None:
                config["vocabulary_quantization"] = int(self._table.shape[0])
            (folder / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
            modules.append({"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"})
        else:
            table = np.asarray(self._table)
            if self._mapping is not None or self._weights is not None:
                rows = table[self._mapping] if self._mapping is not None else table
                table = rows.astype(np.float32) * (self._weights[:, None] if self._weights is not None else 1.0)
            write_safetensors(folder / "model.safetensors", {"embedding.weight": np.ascontiguousarray(table)})
            modules.append(
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}
            )
        if normalize:
            modules.append({"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"})
            (folder / "1_Normalize").mkdir(exist_ok=True)
            (folder / "1_Normalize" / "config.json").write_text("{}", encoding="utf-8")
        (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
        self._saved_tokenizer().save(str(folder / "tokenizer.json"))
        st_config = {
            "__version__": {"staticst": __version__},
            "model_type": "SentenceTransformer",
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
            "similarity_fn_name": self._similarity_fn_name,
        }
        (folder / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2), encoding="utf-8")
        if create_model_card:
            name = model_name or self.model_card_data.model_name or self.model_id
            card = (
                "---\nlibrary_name: sentence-transformers\ntags:\n- static-embeddings\n- staticst\n"
                + (f"license: {self.model_card_data.license}\n" if self.model_card_data.license else "")
                + f"---\n\n# {name}\n\nA static embedding model ({self.layout} layout, {self._table.shape[1]} dimensions), "
                "saved by staticst. Load it with `staticst.StaticSentenceTransformer`, "
                "`sentence_transformers.SentenceTransformer` or `model2vec.StaticModel`.\n"
            )
            (folder / "README.md").write_text(card, encoding="utf-8")

    def save_pretrained(self, path: str | os.PathLike[str], model_name: str | None = None, **kwargs: Any) -> None:
        """Alias of :meth:`save`."""
        self.save(path, model_name=model_name, **kwargs)

    def push_to_hub(
        self,
        repo_id: str,
        token: str | None = None,
        private: bool | None = None,
        commit_message: str | None = None,
        exist_ok: bool = False,
        revision: str | None = None,
        create_pr: bool = False,
        **kwargs: Any,
    ) -> str:
        """Save the model to a temporary folder and upload it with ``huggingface_hub``.

        Returns:
            The URL of the commit.
        """
        import tempfile

        from huggingface_hub import HfApi

        if not isinstance(repo_id, str) or repo_id.count("/") > 1 or not repo_id.strip("/"):
            raise ValueError(f"repo_id must look like 'name' or 'org/name', got {repo_id!r}.")
        api = HfApi(token=token)
        repo_url = api.create_repo(repo_id=repo_id, private=private, repo_type="model", exist_ok=exist_ok or True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save(tmp, model_name=repo_url.repo_id)
            info = api.upload_folder(
                repo_id=repo_url.repo_id,
                folder_path=tmp,
                commit_message=commit_message or "Add static embedding model (staticst)",
                revision=revision,
                create_pr=create_pr,
            )
        return str(getattr(info, "commit_url", info))


def _warn_non_cpu_workers(devices: Sequence[Any]) -> None:
    """Warn once that worker devices other than ``"cpu"`` still start CPU workers."""
    if any(str(d) != "cpu" for d in devices):
        _warn_once(f"device:{list(devices)}", f"staticst runs on the CPU; devices {list(devices)!r} start CPU workers.")


def _steps(texts: Sequence[str]) -> list[int]:
    """Step boundaries ``[0, ..., len(texts)]`` of :meth:`StaticSentenceTransformer.embed_texts`.

    A step holds at most ``ENCODE_STEP`` texts and about ``ENCODE_STEP_CHARS`` characters (a single longer
    text is a step of its own).
    """
    n = len(texts)
    if n <= ENCODE_STEP and sum(map(len, texts)) <= ENCODE_STEP_CHARS:
        return [0, n]
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=n))
    bounds = [0]
    while bounds[-1] < n:
        lo = bounds[-1]
        base = int(ends[lo - 1]) if lo else 0
        by_chars = int(np.searchsorted(ends, base + ENCODE_STEP_CHARS, side="right"))
        bounds.append(min(n, lo + ENCODE_STEP, max(lo + 1, by_chars)))
    return bounds


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            "convert_to_tensor=True / convert_to_numpy=False return torch tensors, but torch is not installed. "
            "Install it (`pip install torch`) or keep the default numpy output."
        ) from exc
    return torch
